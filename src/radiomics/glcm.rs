//! GLCM features (PyRadiomics `glcm.py`): per-angle formulas averaged over non-empty angles.

use super::features::Glcm;
use super::linalg::symmetric_eigenvalues;
use super::settings::WeightingNorm;

const EPS: f64 = f64::EPSILON;

/// Angle weighting request: the norm, the angles (dx, dy, dz) and the spacing (x, y, z).
pub type Weighting<'a> = (WeightingNorm, &'a [[i64; 3]], [f64; 3]);

/// Normalised co-occurrence matrices of the non-empty angles, after symmetrisation and
/// optional weighting. Returns `None` when no neighbouring pair exists at all.
pub fn prepare(
    mut counts: Vec<Vec<f64>>,
    n: usize,
    symmetrical: bool,
    weighting: Option<Weighting<'_>>,
) -> Option<Vec<Vec<f64>>> {
    if symmetrical {
        for m in counts.iter_mut() {
            for i in 0..n {
                for j in (i + 1)..n {
                    let s = m[i * n + j] + m[j * n + i];
                    m[i * n + j] = s;
                    m[j * n + i] = s;
                }
                m[i * n + i] *= 2.0;
            }
        }
    }
    if let Some((norm, angles, spacing)) = weighting {
        let mut sum = vec![0.0f64; n * n];
        for (m, a) in counts.iter().zip(angles) {
            let w = angle_weight(norm, a, spacing);
            for (s, v) in sum.iter_mut().zip(m) {
                *s += v * w;
            }
        }
        counts = vec![sum];
    }
    if counts.len() > 1 {
        counts.retain(|m| m.iter().sum::<f64>() != 0.0);
    }
    let mut out = Vec::new();
    for mut m in counts {
        let s: f64 = m.iter().sum();
        if s == 0.0 {
            continue;
        }
        m.iter_mut().for_each(|v| *v /= s);
        out.push(m);
    }
    (!out.is_empty()).then_some(out)
}

/// PyRadiomics' angle weight `exp(-d²)` for a distance norm.
pub fn angle_weight(norm: WeightingNorm, a: &[i64; 3], spacing: [f64; 3]) -> f64 {
    let d: Vec<f64> = (0..3).map(|k| a[k].abs() as f64 * spacing[k]).collect();
    match norm {
        WeightingNorm::Infinity => (-d.iter().cloned().fold(0.0, f64::max).powi(2)).exp(),
        WeightingNorm::Euclidean => (-d.iter().map(|x| x * x).sum::<f64>()).exp(),
        WeightingNorm::Manhattan => (-d.iter().sum::<f64>().powi(2)).exp(),
        WeightingNorm::NoWeighting => 1.0,
    }
}

fn nanmean(v: &[f64]) -> Result<f64, String> {
    let ok: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if ok.is_empty() {
        Err("undefined for every angle".into())
    } else {
        Ok(ok.iter().sum::<f64>() / ok.len() as f64)
    }
}

/// Computes the requested GLCM features from normalised matrices (`n` present levels with
/// values `g`, highest level `ng`).
pub fn compute(
    mats: &[Vec<f64>],
    g: &[f64],
    ng: f64,
    which: &[Glcm],
) -> Vec<(Glcm, Result<f64, String>)> {
    let n = g.len();
    let per_angle: Vec<[f64; 24]> = mats.iter().map(|p| angle_features(p, g, ng, n)).collect();
    which
        .iter()
        .map(|&f| {
            let k = Glcm::ALL.iter().position(|&x| x == f).unwrap_or(0);
            if f == Glcm::Mcc && n < 2 {
                return (f, Ok(1.0)); // flat region: PyRadiomics returns 1
            }
            let vals: Vec<f64> = per_angle.iter().map(|a| a[k]).collect();
            (f, nanmean(&vals))
        })
        .collect()
}

fn angle_features(p: &[f64], g: &[f64], ng: f64, n: usize) -> [f64; 24] {
    let mut px = vec![0.0; n];
    let mut py = vec![0.0; n];
    for i in 0..n {
        for j in 0..n {
            px[i] += p[i * n + j];
            py[j] += p[i * n + j];
        }
    }
    let ngu = ng as usize;
    let mut sum_k = vec![0.0; 2 * ngu + 1];
    let mut diff_k = vec![0.0; ngu + 1];
    let (mut ux, mut uy) = (0.0, 0.0);
    let mut hxy = 0.0;
    let mut maxp = 0.0f64;
    let mut energy = 0.0;
    let mut autoc = 0.0;
    let mut contrast = 0.0;
    for i in 0..n {
        for j in 0..n {
            let v = p[i * n + j];
            ux += g[i] * v;
            uy += g[j] * v;
            hxy -= v * (v + EPS).log2();
            maxp = maxp.max(v);
            energy += v * v;
            autoc += v * g[i] * g[j];
            contrast += v * (g[i] - g[j]) * (g[i] - g[j]);
            sum_k[(g[i] + g[j]) as usize] += v;
            diff_k[(g[i] - g[j]).abs() as usize] += v;
        }
    }
    let (mut cp, mut cs, mut ct, mut sigx2, mut sigy2, mut corm, mut hxy1, mut hxy2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            let v = p[i * n + j];
            let t = g[i] + g[j] - ux - uy;
            cp += v * t * t * t * t;
            cs += v * t * t * t;
            ct += v * t * t;
            sigx2 += v * (g[i] - ux) * (g[i] - ux);
            sigy2 += v * (g[j] - uy) * (g[j] - uy);
            corm += v * (g[i] - ux) * (g[j] - uy);
            let pxy = px[i] * py[j];
            hxy1 -= v * (pxy + EPS).log2();
            hxy2 -= pxy * (pxy + EPS).log2();
        }
    }
    let (sigx, sigy) = (sigx2.sqrt(), sigy2.sqrt());
    let corr = if sigx * sigy == 0.0 {
        1.0
    } else {
        corm / (sigx * sigy + EPS)
    };
    let hx = -px.iter().map(|&v| v * (v + EPS).log2()).sum::<f64>();
    let hy = -py.iter().map(|&v| v * (v + EPS).log2()).sum::<f64>();
    let div = hx.max(hy);
    let imc1 = if div == 0.0 { 0.0 } else { (hxy - hxy1) / div };
    let imc2 = if hxy2 == hxy {
        0.0
    } else {
        (1.0 - (-2.0 * (hxy2 - hxy)).exp()).sqrt() // NaN when negative: ignored by nanmean
    };
    let (mut da, mut de, mut id, mut idm, mut idmn, mut idn, mut iv) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (k, &v) in diff_k.iter().enumerate().take(ngu) {
        let kf = k as f64;
        da += kf * v;
        de -= v * (v + EPS).log2();
        id += v / (1.0 + kf);
        idm += v / (1.0 + kf * kf);
        idmn += v / (1.0 + kf * kf / (ng * ng));
        idn += v / (1.0 + kf / ng);
        if k >= 1 {
            iv += v / (kf * kf);
        }
    }
    let dv: f64 = diff_k
        .iter()
        .take(ngu)
        .enumerate()
        .map(|(k, &v)| (k as f64 - da).powi(2) * v)
        .sum();
    let (mut sa, mut se) = (0.0, 0.0);
    for (k, &v) in sum_k.iter().enumerate().skip(2) {
        sa += k as f64 * v;
        se -= v * (v + EPS).log2();
    }
    let ss = sigx2;
    let mcc = mcc(p, &px, &py, n);
    // Order as Glcm::ALL.
    [
        autoc, cp, cs, ct, contrast, corr, da, de, dv, id, idm, idmn, idn, imc1, imc2, iv, ux,
        energy, hxy, mcc, maxp, sa, se, ss,
    ]
}

/// sqrt of the second largest eigenvalue of Q(i,j) = Σ_k p(i,k) p(j,k) / (px(i) py(k)),
/// through the symmetric matrix similar to Q, S(i,j) = Σ_k p(i,k) (p(j,k) / py(k)) /
/// sqrt(px(i) px(j)), over the rows and columns with non-zero marginals.
fn mcc(p: &[f64], px: &[f64], py: &[f64], n: usize) -> f64 {
    let rows: Vec<usize> = (0..n).filter(|&i| px[i] > 0.0).collect();
    let cols: Vec<usize> = (0..n).filter(|&k| py[k] > 0.0).collect();
    let m = rows.len();
    // Compacted rows, zero-padded to a multiple of the 4 accumulation lanes: `a` = p(i, k),
    // `b` = p(i, k) / py(k).
    let w = cols.len().div_ceil(4) * 4;
    let mut a = vec![0.0; m * w];
    let mut b = vec![0.0; m * w];
    for (r, &i) in rows.iter().enumerate() {
        for (t, &k) in cols.iter().enumerate() {
            a[r * w + t] = p[i * n + k];
            b[r * w + t] = p[i * n + k] / py[k];
        }
    }
    let mut s = vec![0.0; m * m];
    for (r, &i) in rows.iter().enumerate() {
        let ar = &a[r * w..(r + 1) * w];
        for (c, &j) in rows.iter().enumerate().skip(r) {
            let bc = &b[c * w..(c + 1) * w];
            // Four lanes (terms k ≡ lane mod 4), added pairwise at the end: a fixed order.
            let mut acc = [0.0f64; 4];
            for (x, y) in ar.chunks_exact(4).zip(bc.chunks_exact(4)) {
                for lane in 0..4 {
                    acc[lane] += x[lane] * y[lane];
                }
            }
            let v = ((acc[0] + acc[1]) + (acc[2] + acc[3])) / (px[i] * px[j]).sqrt();
            s[r * m + c] = v;
            s[c * m + r] = v;
        }
    }
    let mut ev = symmetric_eigenvalues(&s, m);
    ev.extend(std::iter::repeat_n(0.0, n - m));
    ev.sort_by(f64::total_cmp);
    if ev.len() < 2 {
        return 1.0;
    }
    ev[ev.len() - 2].sqrt()
}
