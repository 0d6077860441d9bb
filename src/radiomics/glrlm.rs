//! GLRLM features (PyRadiomics `glrlm.py`), averaged over non-empty angles.

use super::features::Glrlm;

const EPS: f64 = f64::EPSILON;

/// Computes the requested features from run matrices `runs[a][i * nr + j]` (present levels `g`),
/// `np` = ROI voxel count.
pub fn compute(
    runs: &[Vec<f64>],
    nr: usize,
    g: &[f64],
    np: f64,
    which: &[Glrlm],
) -> Vec<(Glrlm, Result<f64, String>)> {
    let mut mats: Vec<&Vec<f64>> = runs.iter().collect();
    if mats.len() > 1 {
        mats.retain(|m| m.iter().sum::<f64>() != 0.0);
    }
    let per: Vec<[f64; 16]> = mats.iter().filter_map(|m| angle(m, nr, g, np)).collect();
    which
        .iter()
        .map(|&f| {
            let k = Glrlm::ALL.iter().position(|&x| x == f).unwrap_or(0);
            if per.is_empty() {
                return (f, Err("no runs in the ROI".into()));
            }
            (
                f,
                Ok(per.iter().map(|a| a[k]).sum::<f64>() / per.len() as f64),
            )
        })
        .collect()
}

fn angle(p: &[f64], nr: usize, g: &[f64], np: f64) -> Option<[f64; 16]> {
    let n = g.len();
    let total: f64 = p.iter().sum();
    if total == 0.0 {
        return None;
    }
    let mut pg = vec![0.0; n];
    let mut pr = vec![0.0; nr];
    for i in 0..n {
        for j in 0..nr {
            pg[i] += p[i * nr + j];
            pr[j] += p[i * nr + j];
        }
    }
    let (
        mut sre,
        mut lre,
        mut lglre,
        mut hglre,
        mut srlgle,
        mut srhgle,
        mut lrlgle,
        mut lrhgle,
        mut re,
    ) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        let i2 = g[i] * g[i];
        for j in 0..nr {
            let v = p[i * nr + j];
            if v == 0.0 {
                continue;
            }
            let jf = (j + 1) as f64;
            let j2 = jf * jf;
            srlgle += v / (i2 * j2);
            srhgle += v * i2 / j2;
            lrlgle += v * j2 / i2;
            lrhgle += v * i2 * j2;
            let q = v / total;
            re -= q * (q + EPS).log2();
        }
    }
    for (j, &v) in pr.iter().enumerate() {
        let jf = (j + 1) as f64;
        sre += v / (jf * jf);
        lre += v * jf * jf;
    }
    for (i, &v) in pg.iter().enumerate() {
        lglre += v / (g[i] * g[i]);
        hglre += v * g[i] * g[i];
    }
    let gln: f64 = pg.iter().map(|v| v * v).sum();
    let rln: f64 = pr.iter().map(|v| v * v).sum();
    let ui: f64 = pg.iter().zip(g).map(|(v, gi)| v / total * gi).sum();
    let glv: f64 = pg
        .iter()
        .zip(g)
        .map(|(v, gi)| v / total * (gi - ui) * (gi - ui))
        .sum();
    let uj: f64 = pr
        .iter()
        .enumerate()
        .map(|(j, v)| v / total * (j + 1) as f64)
        .sum();
    let rv: f64 = pr
        .iter()
        .enumerate()
        .map(|(j, v)| v / total * ((j + 1) as f64 - uj).powi(2))
        .sum();
    let rp: f64 = pr.iter().map(|v| v / np).sum();
    Some([
        gln / total,
        gln / (total * total),
        glv,
        hglre / total,
        lre / total,
        lrhgle / total,
        lrlgle / total,
        lglre / total,
        re,
        rln / total,
        rln / (total * total),
        rp,
        rv,
        sre / total,
        srhgle / total,
        srlgle / total,
    ])
}
