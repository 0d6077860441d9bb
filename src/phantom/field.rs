//! Smooth random fields: value noise on a lattice and random radial shapes.
//!
//! Everything here is polynomial (no `sin`/`exp`), so evaluation is fast and bit-identical
//! everywhere. A [`Lattice`] holds uniform values in `[-1, 1]` on a cubic lattice over the head
//! box and interpolates them trilinearly with smoothstep weights (C¹ continuous); its standard
//! deviation is about 0.33. A [`RadialShape`] is a star-shaped body whose radius varies with
//! direction through low-order polynomials of the unit vector (spherical-harmonic-like).

use super::rng::Rng;

/// Value noise on a cubic lattice.
#[derive(Debug, Clone)]
pub struct Lattice {
    lo: [f64; 3],
    inv_spacing: f64,
    dims: [usize; 3],
    values: Vec<f32>,
}

impl Lattice {
    /// Draws a lattice with `spacing` mm covering the box `[lo, hi]` (head frame).
    pub fn new(rng: &mut Rng, lo: [f64; 3], hi: [f64; 3], spacing: f64) -> Lattice {
        let dims = [0, 1, 2].map(|d| ((hi[d] - lo[d]) / spacing).ceil() as usize + 2);
        let n = dims[0] * dims[1] * dims[2];
        let values = (0..n).map(|_| (2.0 * rng.uniform() - 1.0) as f32).collect();
        Lattice {
            lo,
            inv_spacing: 1.0 / spacing,
            dims,
            values,
        }
    }

    /// Value at a head-frame point (clamped to the box).
    pub fn at(&self, p: [f64; 3]) -> f64 {
        let mut idx = [0usize; 3];
        let mut w = [0.0f64; 3];
        for d in 0..3 {
            let x = ((p[d] - self.lo[d]) * self.inv_spacing).clamp(0.0, (self.dims[d] - 2) as f64);
            let f = x.floor();
            let i = (f as usize).min(self.dims[d] - 2);
            let t = x - i as f64;
            idx[d] = i;
            w[d] = t * t * (3.0 - 2.0 * t);
        }
        let [nx, ny, _] = self.dims;
        let at = |i: usize, j: usize, k: usize| f64::from(self.values[i + nx * (j + ny * k)]);
        let (i, j, k) = (idx[0], idx[1], idx[2]);
        let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
        let c00 = lerp(at(i, j, k), at(i + 1, j, k), w[0]);
        let c10 = lerp(at(i, j + 1, k), at(i + 1, j + 1, k), w[0]);
        let c01 = lerp(at(i, j, k + 1), at(i + 1, j, k + 1), w[0]);
        let c11 = lerp(at(i, j + 1, k + 1), at(i + 1, j + 1, k + 1), w[0]);
        lerp(lerp(c00, c10, w[1]), lerp(c01, c11, w[1]), w[2])
    }
}

/// A star-shaped body: radius `r0 · (1 + δ(u))` in direction `u`, with `δ` a random
/// combination of the nine first- and second-order polynomials of `u`.
#[derive(Debug, Clone, Copy)]
pub struct RadialShape {
    /// Centre (head frame, mm).
    pub centre: [f64; 3],
    /// Mean radius, mm.
    pub r0: f64,
    coeffs: [f64; 9],
}

impl RadialShape {
    /// A shape whose radius varies by about `irregularity` (relative standard deviation).
    pub fn new(rng: &mut Rng, centre: [f64; 3], r0: f64, irregularity: f64) -> RadialShape {
        let mut coeffs = [0.0; 9];
        for c in coeffs.iter_mut() {
            *c = irregularity * rng.normal();
        }
        RadialShape { centre, r0, coeffs }
    }

    /// Normalised radius: < 1 inside, 1 on the surface.
    pub fn rho(&self, p: [f64; 3]) -> f64 {
        let d = [
            p[0] - self.centre[0],
            p[1] - self.centre[1],
            p[2] - self.centre[2],
        ];
        let r = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        if r < 1e-9 {
            return 0.0;
        }
        let u = [d[0] / r, d[1] / r, d[2] / r];
        r / (self.r0 * self.scale(u))
    }

    fn scale(&self, u: [f64; 3]) -> f64 {
        let c = &self.coeffs;
        let delta = c[0] * u[0]
            + c[1] * u[1]
            + c[2] * u[2]
            + c[3] * (u[0] * u[0] - u[1] * u[1])
            + c[4] * (2.0 * u[2] * u[2] - u[0] * u[0] - u[1] * u[1]) * 0.5
            + c[5] * u[0] * u[1] * 2.0
            + c[6] * u[1] * u[2] * 2.0
            + c[7] * u[0] * u[2] * 2.0
            + c[8] * u[0] * u[1] * u[2] * 4.0;
        (1.0 + delta).clamp(0.5, 1.6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::rng::Purpose;

    #[test]
    fn lattice_is_smooth_and_bounded() {
        let mut rng = Rng::for_case(1, 0, Purpose::Spec);
        let l = Lattice::new(&mut rng, [-10.0; 3], [10.0; 3], 4.0);
        let a = l.at([0.0, 0.0, 0.0]);
        let b = l.at([0.01, 0.0, 0.0]);
        assert!((a - b).abs() < 0.01);
        for x in -30..30 {
            let v = l.at([x as f64, 1.3 * x as f64, 0.5]);
            assert!((-1.0..=1.0).contains(&v));
        }
    }
}
