//! GLDM features (PyRadiomics `gldm.py`).

use super::features::Gldm;

const EPS: f64 = f64::EPSILON;

/// Computes the requested features from `dep[i * cols + d]` (dependence size `d + 1`).
pub fn compute(
    dep: &[f64],
    cols: usize,
    g: &[f64],
    which: &[Gldm],
) -> Vec<(Gldm, Result<f64, String>)> {
    let n = g.len();
    let nz: f64 = dep.iter().sum();
    let vals = (nz > 0.0).then(|| {
        let mut pg = vec![0.0; n];
        let mut pd = vec![0.0; cols];
        let (mut lgle, mut hgle, mut sdlgle, mut sdhgle, mut ldlgle, mut ldhgle, mut de) =
            (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        for i in 0..n {
            let i2 = g[i] * g[i];
            for d in 0..cols {
                let v = dep[i * cols + d];
                if v == 0.0 {
                    continue;
                }
                pg[i] += v;
                pd[d] += v;
                let j = (d + 1) as f64;
                let j2 = j * j;
                lgle += v / i2;
                hgle += v * i2;
                sdlgle += v / (i2 * j2);
                sdhgle += v * i2 / j2;
                ldlgle += v * j2 / i2;
                ldhgle += v * i2 * j2;
                let q = v / nz;
                de -= q * (q + EPS).log2();
            }
        }
        let sde: f64 = pd
            .iter()
            .enumerate()
            .map(|(d, v)| v / ((d + 1) as f64).powi(2))
            .sum();
        let lde: f64 = pd
            .iter()
            .enumerate()
            .map(|(d, v)| v * ((d + 1) as f64).powi(2))
            .sum();
        let dn: f64 = pd.iter().map(|v| v * v).sum();
        let gln: f64 = pg.iter().map(|v| v * v).sum();
        let ui: f64 = pg.iter().zip(g).map(|(v, gi)| v / nz * gi).sum();
        let glv: f64 = pg
            .iter()
            .zip(g)
            .map(|(v, gi)| v / nz * (gi - ui) * (gi - ui))
            .sum();
        let uj: f64 = pd
            .iter()
            .enumerate()
            .map(|(d, v)| v / nz * (d + 1) as f64)
            .sum();
        let dv: f64 = pd
            .iter()
            .enumerate()
            .map(|(d, v)| v / nz * ((d + 1) as f64 - uj).powi(2))
            .sum();
        [
            de,
            dn / nz,
            dn / (nz * nz),
            dv,
            gln / nz,
            glv,
            hgle / nz,
            lde / nz,
            ldhgle / nz,
            ldlgle / nz,
            lgle / nz,
            sde / nz,
            sdhgle / nz,
            sdlgle / nz,
        ]
    });
    which
        .iter()
        .map(|&f| {
            let k = Gldm::ALL.iter().position(|&x| x == f).unwrap_or(0);
            (
                f,
                vals.map(|v| v[k])
                    .ok_or_else(|| "no ROI voxels".to_string()),
            )
        })
        .collect()
}
