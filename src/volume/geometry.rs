//! Voxel-to-world geometry: affines, voxel sizes and orientation codes.
//!
//! Conventions are nibabel's, because that is what researchers check our numbers against:
//! world space is RAS+ millimetres (NIfTI convention), an affine maps voxel indices `(i, j, k)`
//! (NIfTI axis order, `i` fastest in memory) to world `(x, y, z)`, and an orientation code names,
//! for each voxel axis, the world direction that axis *increases toward* (`LPS` means `i` grows
//! toward Left, `j` toward Posterior, `k` toward Superior). ITK/SimpleITK call the same image
//! "RAI"; we never use ITK's naming.

use serde::Serialize;

/// A 4×4 homogeneous voxel→world transform (row-major, last row `0 0 0 1`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Affine(pub [[f64; 4]; 4]);

impl Affine {
    /// The identity transform.
    pub fn identity() -> Self {
        let mut m = [[0.0; 4]; 4];
        for (i, row) in m.iter_mut().enumerate() {
            row[i] = 1.0;
        }
        Affine(m)
    }

    /// A diagonal scaling with a translation.
    pub fn from_diag(zooms: [f64; 3], origin: [f64; 3]) -> Self {
        let mut a = Affine::identity();
        for d in 0..3 {
            a.0[d][d] = zooms[d];
            a.0[d][3] = origin[d];
        }
        a
    }

    /// Builds an affine from a 3×3 linear part and a translation.
    pub fn from_parts(linear: [[f64; 3]; 3], translation: [f64; 3]) -> Self {
        let mut a = Affine::identity();
        for r in 0..3 {
            a.0[r][..3].copy_from_slice(&linear[r]);
            a.0[r][3] = translation[r];
        }
        a
    }

    /// The 3×3 linear part (rotation × zooms × shears).
    pub fn linear(&self) -> [[f64; 3]; 3] {
        let mut l = [[0.0; 3]; 3];
        for (r, row) in l.iter_mut().enumerate() {
            row.copy_from_slice(&self.0[r][..3]);
        }
        l
    }

    /// The translation (world position of voxel `(0, 0, 0)`).
    pub fn translation(&self) -> [f64; 3] {
        [self.0[0][3], self.0[1][3], self.0[2][3]]
    }

    /// Applies the transform to a point.
    #[inline]
    pub fn apply(&self, p: [f64; 3]) -> [f64; 3] {
        let m = &self.0;
        [
            m[0][0] * p[0] + m[0][1] * p[1] + m[0][2] * p[2] + m[0][3],
            m[1][0] * p[0] + m[1][1] * p[1] + m[1][2] * p[2] + m[1][3],
            m[2][0] * p[0] + m[2][1] * p[1] + m[2][2] * p[2] + m[2][3],
        ]
    }

    /// Matrix product `self · other` (apply `other` first).
    pub fn compose(&self, other: &Affine) -> Affine {
        let mut out = [[0.0; 4]; 4];
        for (r, row) in out.iter_mut().enumerate() {
            for (c, cell) in row.iter_mut().enumerate() {
                *cell = (0..4).map(|k| self.0[r][k] * other.0[k][c]).sum();
            }
        }
        Affine(out)
    }

    /// The inverse, or `None` for a singular linear part.
    pub fn inverse(&self) -> Option<Affine> {
        let l = self.linear();
        let inv = invert3(&l)?;
        let t = self.translation();
        let mut it = [0.0; 3];
        for (r, v) in it.iter_mut().enumerate() {
            *v = -(inv[r][0] * t[0] + inv[r][1] * t[1] + inv[r][2] * t[2]);
        }
        Some(Affine::from_parts(inv, it))
    }

    /// Voxel sizes in mm: the lengths of the three columns of the linear part (nibabel's
    /// `voxel_sizes`).
    pub fn zooms(&self) -> [f64; 3] {
        let mut z = [0.0; 3];
        for (c, zc) in z.iter_mut().enumerate() {
            *zc = (0..3)
                .map(|r| self.0[r][c] * self.0[r][c])
                .sum::<f64>()
                .sqrt();
        }
        z
    }

    /// The direction cosines (columns of the linear part divided by the zooms).
    pub fn direction(&self) -> [[f64; 3]; 3] {
        let z = self.zooms();
        let mut d = self.linear();
        for row in d.iter_mut() {
            for c in 0..3 {
                if z[c] > 0.0 {
                    row[c] /= z[c];
                }
            }
        }
        d
    }

    /// The rotation (or rotation-reflection) nearest to the direction cosines.
    pub fn nearest_rotation(&self) -> [[f64; 3]; 3] {
        let d = self.direction();
        polar_orthogonal(&d).unwrap_or(d)
    }

    /// Largest absolute element-wise difference to another affine.
    pub fn max_abs_diff(&self, other: &Affine) -> f64 {
        let mut m: f64 = 0.0;
        for r in 0..4 {
            for c in 0..4 {
                m = m.max((self.0[r][c] - other.0[r][c]).abs());
            }
        }
        m
    }
}

/// Inverse of a 3×3 matrix by cofactors; `None` when (nearly) singular.
pub fn invert3(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let c00 = m[1][1] * m[2][2] - m[1][2] * m[2][1];
    let c01 = m[1][2] * m[2][0] - m[1][0] * m[2][2];
    let c02 = m[1][0] * m[2][1] - m[1][1] * m[2][0];
    let det = m[0][0] * c00 + m[0][1] * c01 + m[0][2] * c02;
    let scale = m.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
    if !det.is_finite() || det.abs() <= f64::EPSILON * scale.powi(3) {
        return None;
    }
    let inv_det = 1.0 / det;
    Some([
        [
            c00 * inv_det,
            (m[0][2] * m[2][1] - m[0][1] * m[2][2]) * inv_det,
            (m[0][1] * m[1][2] - m[0][2] * m[1][1]) * inv_det,
        ],
        [
            c01 * inv_det,
            (m[0][0] * m[2][2] - m[0][2] * m[2][0]) * inv_det,
            (m[0][2] * m[1][0] - m[0][0] * m[1][2]) * inv_det,
        ],
        [
            c02 * inv_det,
            (m[0][1] * m[2][0] - m[0][0] * m[2][1]) * inv_det,
            (m[0][0] * m[1][1] - m[0][1] * m[1][0]) * inv_det,
        ],
    ])
}

/// Determinant of a 3×3 matrix.
pub fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

fn transpose3(m: &[[f64; 3]; 3]) -> [[f64; 3]; 3] {
    let mut t = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            t[r][c] = m[c][r];
        }
    }
    t
}

/// The orthogonal polar factor of `m` (the rotation nearest to it), which is what nibabel's
/// `io_orientation` gets from `P · Qᵀ` of the SVD. Newton iteration `X ← (X + X⁻ᵀ)/2`
/// converges quadratically for a non-singular matrix.
fn polar_orthogonal(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let mut x = *m;
    for _ in 0..100 {
        let inv_t = transpose3(&invert3(&x)?);
        let mut next = [[0.0; 3]; 3];
        let mut delta: f64 = 0.0;
        for r in 0..3 {
            for c in 0..3 {
                next[r][c] = 0.5 * (x[r][c] + inv_t[r][c]);
                delta = delta.max((next[r][c] - x[r][c]).abs());
            }
        }
        x = next;
        if delta < 1e-15 {
            break;
        }
    }
    Some(x)
}

/// For each voxel axis, which world axis (0 = x/R, 1 = y/A, 2 = z/S) it runs along and whether
/// it increases toward the positive (RAS) end of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AxisOrientation {
    /// World axis index.
    pub world_axis: usize,
    /// `true` when the voxel axis increases toward R, A or S.
    pub positive: bool,
}

/// Orientation of the three voxel axes, as nibabel's `io_orientation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Orientation(pub [AxisOrientation; 3]);

impl Orientation {
    /// Computes the orientation of an affine as nibabel does: normalise the columns, take the
    /// nearest orthogonal matrix, then assign each voxel axis, in order, the world axis with the
    /// largest absolute cosine among those not yet taken.
    pub fn of(affine: &Affine) -> Orientation {
        let zooms = affine.zooms();
        let mut rs = affine.linear();
        for row in rs.iter_mut() {
            for c in 0..3 {
                let z = if zooms[c] == 0.0 { 1.0 } else { zooms[c] };
                row[c] /= z;
            }
        }
        let mut r = polar_orthogonal(&rs).unwrap_or(rs);
        let mut out = [AxisOrientation {
            world_axis: 0,
            positive: true,
        }; 3];
        let mut taken = [false; 3];
        for (in_ax, slot) in out.iter_mut().enumerate() {
            let mut best = None;
            let mut best_abs = -1.0;
            for (w, row) in r.iter().enumerate() {
                if taken[w] {
                    continue;
                }
                if row[in_ax].abs() > best_abs {
                    best_abs = row[in_ax].abs();
                    best = Some(w);
                }
            }
            let w = best.unwrap_or(in_ax);
            *slot = AxisOrientation {
                world_axis: w,
                positive: r[w][in_ax] >= 0.0,
            };
            taken[w] = true;
            for v in r[w].iter_mut() {
                *v = 0.0;
            }
        }
        Orientation(out)
    }

    /// nibabel axis codes, e.g. `"LPS"`.
    pub fn code(&self) -> String {
        const LABELS: [[char; 2]; 3] = [['L', 'R'], ['P', 'A'], ['I', 'S']];
        self.0
            .iter()
            .map(|a| LABELS[a.world_axis][usize::from(a.positive)])
            .collect()
    }

    /// Whether this is already RAS (`as_closest_canonical` is then a no-op).
    pub fn is_ras(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .all(|(i, a)| a.world_axis == i && a.positive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lps_from_flipped_diagonal() {
        let a = Affine::from_diag([-1.0, -1.0, 1.0], [0.0, 239.0, 0.0]);
        assert_eq!(Orientation::of(&a).code(), "LPS");
        assert!(!Orientation::of(&a).is_ras());
    }

    #[test]
    fn inverse_roundtrip() {
        let a = Affine::from_parts(
            [
                [0.89, 0.01, -0.33],
                [-0.004, 0.89, -0.41],
                [0.02, 0.41, 5.4],
            ],
            [-115.0, -73.0, 20.0],
        );
        let inv = a.inverse().expect("invertible");
        let p = a.apply(inv.apply([3.0, -7.0, 11.0]));
        for (x, y) in p.iter().zip([3.0, -7.0, 11.0]) {
            assert!((x - y).abs() < 1e-12);
        }
    }

    #[test]
    fn permuted_axes_code() {
        // i runs toward Superior, j toward Right, k toward Posterior.
        let a = Affine::from_parts(
            [[0.0, 1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]],
            [0.0; 3],
        );
        assert_eq!(Orientation::of(&a).code(), "SRP");
    }
}
