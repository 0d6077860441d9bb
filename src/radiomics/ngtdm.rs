//! NGTDM features (PyRadiomics `ngtdm.py`).

use super::features::Ngtdm;

/// Computes the requested features from per-level counts `n`, difference sums `s` and level
/// values `g`.
pub fn compute(
    n: &[f64],
    s: &[f64],
    g: &[f64],
    which: &[Ngtdm],
) -> Vec<(Ngtdm, Result<f64, String>)> {
    let np: f64 = n.iter().sum();
    let p: Vec<f64> = n.iter().map(|v| v / np).collect();
    let ngp = p.iter().filter(|&&v| v > 0.0).count() as f64;
    let k = g.len();
    let sum_s: f64 = s.iter().sum();
    let pisi: Vec<f64> = p.iter().zip(s).map(|(a, b)| a * b).collect();
    let sum_pisi: f64 = pisi.iter().sum();
    which
        .iter()
        .map(|&f| {
            if np == 0.0 {
                return (f, Err("no ROI voxels".to_string()));
            }
            let v = match f {
                Ngtdm::Coarseness => {
                    if sum_pisi != 0.0 {
                        1.0 / sum_pisi
                    } else {
                        1e6
                    }
                }
                Ngtdm::Contrast => {
                    let div = ngp * (ngp - 1.0);
                    if div == 0.0 {
                        0.0
                    } else {
                        let mut t = 0.0;
                        for i in 0..k {
                            for j in 0..k {
                                t += p[i] * p[j] * (g[i] - g[j]) * (g[i] - g[j]);
                            }
                        }
                        t * sum_s / np / div
                    }
                }
                Ngtdm::Busyness => {
                    let mut absdiff = 0.0;
                    for i in 0..k {
                        for j in 0..k {
                            if p[i] > 0.0 && p[j] > 0.0 {
                                absdiff += (g[i] * p[i] - g[j] * p[j]).abs();
                            }
                        }
                    }
                    if absdiff != 0.0 {
                        sum_pisi / absdiff
                    } else {
                        0.0
                    }
                }
                Ngtdm::Complexity => {
                    let mut t = 0.0;
                    for i in 0..k {
                        for j in 0..k {
                            if p[i] > 0.0 && p[j] > 0.0 {
                                t += (g[i] - g[j]).abs() * (pisi[i] + pisi[j]) / (p[i] + p[j]);
                            }
                        }
                    }
                    t / np
                }
                Ngtdm::Strength => {
                    if sum_s == 0.0 {
                        0.0
                    } else {
                        let mut t = 0.0;
                        for i in 0..k {
                            for j in 0..k {
                                if p[i] > 0.0 && p[j] > 0.0 {
                                    t += (p[i] + p[j]) * (g[i] - g[j]) * (g[i] - g[j]);
                                }
                            }
                        }
                        t / sum_s
                    }
                }
            };
            (f, Ok(v))
        })
        .collect()
}
