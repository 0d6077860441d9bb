//! GLSZM features (PyRadiomics `glszm.py`), from a sparse zone table.

use std::collections::BTreeMap;

use super::features::Glszm;

const EPS: f64 = f64::EPSILON;

/// Computes the requested features from `(level index, zone size) → zones`, present level
/// values `g`, ROI voxel count `np`.
pub fn compute(
    zones: &BTreeMap<(usize, usize), f64>,
    g: &[f64],
    np: f64,
    which: &[Glszm],
) -> Vec<(Glszm, Result<f64, String>)> {
    let nz: f64 = zones.values().sum();
    let vals = if nz == 0.0 {
        None
    } else {
        Some(features(zones, g, np, nz))
    };
    which
        .iter()
        .map(|&f| {
            let k = Glszm::ALL.iter().position(|&x| x == f).unwrap_or(0);
            (
                f,
                vals.map(|v| v[k])
                    .ok_or_else(|| "no zones in the ROI".to_string()),
            )
        })
        .collect()
}

fn features(zones: &BTreeMap<(usize, usize), f64>, g: &[f64], np: f64, nz: f64) -> [f64; 16] {
    let mut pg = vec![0.0; g.len()];
    let mut ps: BTreeMap<usize, f64> = BTreeMap::new();
    let (
        mut sae,
        mut lae,
        mut lglze,
        mut hglze,
        mut salgle,
        mut sahgle,
        mut lalgle,
        mut lahgle,
        mut ze,
    ) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (&(i, s), &v) in zones {
        pg[i] += v;
        *ps.entry(s).or_insert(0.0) += v;
        let i2 = g[i] * g[i];
        let j = s as f64;
        let j2 = j * j;
        sae += v / j2;
        lae += v * j2;
        lglze += v / i2;
        hglze += v * i2;
        salgle += v / (i2 * j2);
        sahgle += v * i2 / j2;
        lalgle += v * j2 / i2;
        lahgle += v * i2 * j2;
        let q = v / nz;
        ze -= q * (q + EPS).log2();
    }
    let gln: f64 = pg.iter().map(|v| v * v).sum();
    let szn: f64 = ps.values().map(|v| v * v).sum();
    let ui: f64 = pg.iter().zip(g).map(|(v, gi)| v / nz * gi).sum();
    let glv: f64 = pg
        .iter()
        .zip(g)
        .map(|(v, gi)| v / nz * (gi - ui) * (gi - ui))
        .sum();
    let uj: f64 = ps.iter().map(|(&s, v)| v / nz * s as f64).sum();
    let zv: f64 = ps
        .iter()
        .map(|(&s, v)| v / nz * (s as f64 - uj).powi(2))
        .sum();
    [
        gln / nz,
        gln / (nz * nz),
        glv,
        hglze / nz,
        lae / nz,
        lahgle / nz,
        lalgle / nz,
        lglze / nz,
        szn / nz,
        szn / (nz * nz),
        sae / nz,
        sahgle / nz,
        salgle / nz,
        ze,
        nz / np,
        zv,
    ]
}
