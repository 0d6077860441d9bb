//! First-order statistics (PyRadiomics `firstorder.py`).

use super::features::FirstOrder;
use super::roi::Discretised;

/// Everything first-order features need, computed once.
#[derive(Debug)]
pub struct FirstOrderInput<'a> {
    /// ROI intensities as float64, memory order.
    pub values: &'a [f64],
    /// Discretised ROI (for entropy and uniformity).
    pub disc: &'a Discretised,
    /// Voxel volume in mm³.
    pub voxel_volume: f64,
    /// `voxelArrayShift`.
    pub shift: f64,
}

/// numpy.percentile with linear interpolation on sorted data.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let pos = q / 100.0 * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    let frac = pos - lo as f64;
    // numpy's _lerp: a + (b - a) * t, computed from the other end when t >= 0.5.
    let (a, b) = (sorted[lo], sorted[hi]);
    let d = b - a;
    let r = a + d * frac;
    if frac >= 0.5 {
        b - d * (1.0 - frac)
    } else {
        r
    }
}

fn mean(v: &[f64]) -> f64 {
    pairwise_sum(v) / v.len() as f64
}

/// numpy-like pairwise summation (blocks of 128 summed in 8 lanes, halves recursively).
pub fn pairwise_sum(v: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    if v.len() < 8 {
        let mut s = 0.0;
        for &x in v {
            s += x;
        }
        return s;
    }
    if v.len() <= BLOCK {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&v[..8]);
        let mut i = 8;
        while i + 8 <= v.len() {
            for k in 0..8 {
                r[k] += v[i + k];
            }
            i += 8;
        }
        let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < v.len() {
            s += v[i];
            i += 1;
        }
        return s;
    }
    let mut half = v.len() / 2;
    half -= half % 8;
    pairwise_sum(&v[..half]) + pairwise_sum(&v[half..])
}

/// Computes the requested first-order features.
pub fn compute(
    input: &FirstOrderInput<'_>,
    which: &[FirstOrder],
) -> Vec<(FirstOrder, Result<f64, String>)> {
    let x = input.values;
    let n = x.len() as f64;
    let mut sorted = x.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mu = mean(x);
    let dev: Vec<f64> = x.iter().map(|v| v - mu).collect();
    let m2 = mean(&dev.iter().map(|d| d * d).collect::<Vec<_>>());
    let m3 = mean(&dev.iter().map(|d| d * d * d).collect::<Vec<_>>());
    let m4 = mean(&dev.iter().map(|d| (d * d) * (d * d)).collect::<Vec<_>>());
    let energy = pairwise_sum(
        &x.iter()
            .map(|v| (v + input.shift) * (v + input.shift))
            .collect::<Vec<_>>(),
    );
    // Histogram of discretised levels (including the empty level 0, as numpy.bincount does).
    let mut hist = vec![0.0f64; input.disc.ng as usize + 1];
    for &l in &input.disc.levels {
        if l != 0 {
            hist[l as usize] += 1.0;
        }
    }
    let total: f64 = hist.iter().sum();
    let p: Vec<f64> = hist.iter().map(|h| h / total).collect();
    let p10 = percentile(&sorted, 10.0);
    let p90 = percentile(&sorted, 90.0);
    which
        .iter()
        .map(|&f| {
            let v = match f {
                FirstOrder::P10 => p10,
                FirstOrder::P90 => p90,
                FirstOrder::Energy => energy,
                FirstOrder::TotalEnergy => input.voxel_volume * energy,
                FirstOrder::Entropy => {
                    let eps = f64::EPSILON;
                    -p.iter().map(|&pi| pi * (pi + eps).log2()).sum::<f64>()
                }
                FirstOrder::InterquartileRange => {
                    percentile(&sorted, 75.0) - percentile(&sorted, 25.0)
                }
                FirstOrder::Kurtosis => {
                    if m2 == 0.0 {
                        0.0
                    } else {
                        m4 / (m2 * m2)
                    }
                }
                FirstOrder::Skewness => {
                    if m2 == 0.0 {
                        0.0
                    } else {
                        m3 / m2.powf(1.5)
                    }
                }
                FirstOrder::Maximum => sorted[sorted.len() - 1],
                FirstOrder::Minimum => sorted[0],
                FirstOrder::Range => sorted[sorted.len() - 1] - sorted[0],
                FirstOrder::Mean => mu,
                FirstOrder::Median => percentile(&sorted, 50.0),
                FirstOrder::MeanAbsoluteDeviation => {
                    mean(&dev.iter().map(|d| d.abs()).collect::<Vec<_>>())
                }
                FirstOrder::RobustMeanAbsoluteDeviation => {
                    let kept: Vec<f64> = x
                        .iter()
                        .copied()
                        .filter(|&v| v >= p10 && v <= p90)
                        .collect();
                    let km = mean(&kept);
                    mean(&kept.iter().map(|v| (v - km).abs()).collect::<Vec<_>>())
                }
                FirstOrder::RootMeanSquared => (energy / n).sqrt(),
                FirstOrder::Uniformity => p.iter().map(|pi| pi * pi).sum(),
                FirstOrder::Variance => {
                    let sd = m2.sqrt();
                    sd * sd
                }
            };
            (f, Ok(v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_as_numpy() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), 2.5);
        assert_eq!(percentile(&s, 10.0), 1.3);
        assert_eq!(percentile(&[5.0], 90.0), 5.0);
        let v: Vec<f64> = (0..1000).map(|i| i as f64 * 0.1).collect();
        assert!((pairwise_sum(&v) - 49950.0).abs() < 1e-9);
    }
}
