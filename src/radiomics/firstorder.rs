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

/// The order statistics a first-order feature set needs: minimum, maximum and the two
/// neighbouring ranks of each percentile, found by selection rather than a full sort (the
/// values at those ranks are the sorted array's, exactly).
struct Ranked {
    n: usize,
    ranks: Vec<usize>,
    values: Vec<f64>,
}

/// Percentiles (per cent) first-order features use.
const PERCENTILES: [f64; 5] = [10.0, 25.0, 50.0, 75.0, 90.0];

/// numpy.percentile's position of percentile `q` in `n` sorted values: (lower rank, upper rank,
/// fraction).
fn percentile_position(n: usize, q: f64) -> (usize, usize, f64) {
    let pos = q / 100.0 * (n - 1) as f64;
    let lo = pos.floor() as usize;
    (lo, (lo + 1).min(n - 1), pos - lo as f64)
}

impl Ranked {
    /// Selects the needed ranks of `x` (not empty) in a scratch copy.
    fn new(x: &[f64]) -> Ranked {
        let n = x.len();
        let mut ranks = vec![0, n - 1];
        for q in PERCENTILES {
            let (lo, hi, _) = percentile_position(n, q);
            ranks.extend([lo, hi]);
        }
        ranks.sort_unstable();
        ranks.dedup();
        let mut scratch = x.to_vec();
        let mut values = vec![0.0; ranks.len()];
        select_ranks(&mut scratch, 0, &ranks, &mut values);
        Ranked { n, ranks, values }
    }

    /// The value of rank `r` (one of the selected ranks).
    fn at(&self, r: usize) -> f64 {
        match self.ranks.binary_search(&r) {
            Ok(i) => self.values[i],
            Err(_) => f64::NAN,
        }
    }

    /// numpy.percentile with linear interpolation.
    fn percentile(&self, q: f64) -> f64 {
        let (lo, hi, frac) = percentile_position(self.n, q);
        lerp(self.at(lo), self.at(hi), frac)
    }
}

/// Puts the values of `ranks` (sorted, relative to the whole array; `v` starts at rank
/// `offset`) into `out`, recursively selecting the middle rank and splitting around it.
fn select_ranks(v: &mut [f64], offset: usize, ranks: &[usize], out: &mut [f64]) {
    if ranks.is_empty() || v.is_empty() {
        return;
    }
    let mid = ranks.len() / 2;
    let k = ranks[mid] - offset;
    let (left, pivot, right) = v.select_nth_unstable_by(k, f64::total_cmp);
    out[mid] = *pivot;
    let (out_l, out_r) = out.split_at_mut(mid);
    select_ranks(left, offset, &ranks[..mid], out_l);
    select_ranks(right, offset + k + 1, &ranks[mid + 1..], &mut out_r[1..]);
}

/// numpy's _lerp: a + (b - a) * t, computed from the other end when t >= 0.5.
fn lerp(a: f64, b: f64, frac: f64) -> f64 {
    let d = b - a;
    let r = a + d * frac;
    if frac >= 0.5 {
        b - d * (1.0 - frac)
    } else {
        r
    }
}

/// numpy.percentile with linear interpolation on sorted data.
#[cfg(test)]
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let (lo, hi, frac) = percentile_position(sorted.len(), q);
    lerp(sorted[lo], sorted[hi], frac)
}

fn mean(v: &[f64]) -> f64 {
    pairwise_sum(v) / v.len() as f64
}

/// Mean of `f(x)` over `v`, summed as [`pairwise_sum`] sums (no intermediate array).
fn mean_of(v: &[f64], f: impl Fn(f64) -> f64 + Copy) -> f64 {
    pairwise_sum_map(v, f) / v.len() as f64
}

/// numpy-like pairwise summation (blocks of 128 summed in 8 lanes, halves recursively).
pub fn pairwise_sum(v: &[f64]) -> f64 {
    pairwise_sum_map(v, |x| x)
}

/// [`pairwise_sum`] of `f(x)`: the same order of additions as summing the mapped array.
fn pairwise_sum_map(v: &[f64], f: impl Fn(f64) -> f64 + Copy) -> f64 {
    const BLOCK: usize = 128;
    if v.len() < 8 {
        let mut s = 0.0;
        for &x in v {
            s += f(x);
        }
        return s;
    }
    if v.len() <= BLOCK {
        let mut r = [0.0f64; 8];
        for k in 0..8 {
            r[k] = f(v[k]);
        }
        let mut i = 8;
        while i + 8 <= v.len() {
            for k in 0..8 {
                r[k] += f(v[i + k]);
            }
            i += 8;
        }
        let mut s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < v.len() {
            s += f(v[i]);
            i += 1;
        }
        return s;
    }
    let mut half = v.len() / 2;
    half -= half % 8;
    pairwise_sum_map(&v[..half], f) + pairwise_sum_map(&v[half..], f)
}

/// Computes the requested first-order features.
pub fn compute(
    input: &FirstOrderInput<'_>,
    which: &[FirstOrder],
) -> Vec<(FirstOrder, Result<f64, String>)> {
    let x = input.values;
    let n = x.len() as f64;
    if x.is_empty() {
        return which
            .iter()
            .map(|&f| (f, Err("no voxel in the ROI".to_string())))
            .collect();
    }
    let ranked = Ranked::new(x);
    let mu = mean(x);
    let m2 = mean_of(x, |v| {
        let d = v - mu;
        d * d
    });
    let m3 = mean_of(x, |v| {
        let d = v - mu;
        d * d * d
    });
    let m4 = mean_of(x, |v| {
        let d = v - mu;
        (d * d) * (d * d)
    });
    let shift = input.shift;
    let energy = pairwise_sum_map(x, |v| (v + shift) * (v + shift));
    // Histogram of discretised levels (including the empty level 0, as numpy.bincount does).
    let mut hist = vec![0.0f64; input.disc.ng as usize + 1];
    for &l in &input.disc.levels {
        if l != 0 {
            hist[l as usize] += 1.0;
        }
    }
    let total: f64 = hist.iter().sum();
    let p: Vec<f64> = hist.iter().map(|h| h / total).collect();
    let p10 = ranked.percentile(10.0);
    let p90 = ranked.percentile(90.0);
    let (min, max) = (ranked.at(0), ranked.at(ranked.n - 1));
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
                FirstOrder::InterquartileRange => ranked.percentile(75.0) - ranked.percentile(25.0),
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
                FirstOrder::Maximum => max,
                FirstOrder::Minimum => min,
                FirstOrder::Range => max - min,
                FirstOrder::Mean => mu,
                FirstOrder::Median => ranked.percentile(50.0),
                FirstOrder::MeanAbsoluteDeviation => mean_of(x, |v| (v - mu).abs()),
                FirstOrder::RobustMeanAbsoluteDeviation => {
                    let kept: Vec<f64> = x
                        .iter()
                        .copied()
                        .filter(|&v| v >= p10 && v <= p90)
                        .collect();
                    let km = mean(&kept);
                    mean_of(&kept, |v| (v - km).abs())
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

    #[test]
    fn selected_ranks_equal_the_sorted_array() {
        // Duplicates, negative values and both zeros; sizes around the small cases.
        for n in [1usize, 2, 3, 7, 10, 11, 128, 1001] {
            let x: Vec<f64> = (0..n)
                .map(|i| {
                    let v = ((i * 7919) % 113) as f64 - 56.0;
                    if v == 0.0 && i % 2 == 1 {
                        -0.0
                    } else {
                        v / 4.0
                    }
                })
                .collect();
            let mut sorted = x.clone();
            sorted.sort_by(f64::total_cmp);
            let r = Ranked::new(&x);
            assert_eq!(r.at(0).to_bits(), sorted[0].to_bits());
            assert_eq!(r.at(n - 1).to_bits(), sorted[n - 1].to_bits());
            for q in PERCENTILES {
                assert_eq!(
                    r.percentile(q).to_bits(),
                    percentile(&sorted, q).to_bits(),
                    "n={n} q={q}"
                );
            }
        }
    }

    #[test]
    fn mapped_sum_adds_in_the_same_order() {
        let v: Vec<f64> = (0..1037).map(|i| (i as f64 * 0.37).sin() * 1e3).collect();
        let mapped: Vec<f64> = v.iter().map(|x| x * x * x).collect();
        assert_eq!(
            pairwise_sum_map(&v, |x| x * x * x).to_bits(),
            pairwise_sum(&mapped).to_bits()
        );
    }
}
