//! 3-D MRI volumes with geometry.
//!
//! A [`Volume`] is a dense grid of `f32` intensities in NIfTI memory order (`i` fastest, then
//! `j`, then `k`) plus the voxel→world [`Affine`] that says where each voxel is. Everything
//! downstream (radiomics, slice selection for the network, overlays) works on these, so the
//! geometry rules live here and nowhere else:
//!
//! * [`io`]: NIfTI-1 reading and writing through the `nifti` crate, with the affine chosen as
//!   nibabel chooses it and the declared size checked against a limit *before* allocating.
//!   No other module sees the `nifti` crate's types (it brings its own `ndarray`).
//! * [`geometry`]: affines, zooms, orientation codes.
//! * [`resample`]: reorientation to the closest canonical RAS, resampling one volume onto
//!   another's grid through both affines (nibabel/scipy semantics), and resampling to a new
//!   voxel spacing keeping origin and direction (SimpleITK semantics, as PyRadiomics uses).
//! * [`mask`]: label selection, bounding boxes, per-slice ROI areas, normalisation inside a mask.
//!
//! Intensities are stored as `f32` (a brain volume at 1 mm is 36 MB, not 72) and all sums are
//! accumulated in `f64`.

pub mod geometry;
pub mod io;
pub mod mask;
pub mod resample;

pub use geometry::{Affine, Orientation};
pub use io::{read_nifti, write_nifti, NiftiInfo, StoredType, VolumeError};

/// The shape and placement of a voxel grid, without intensities.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Grid {
    /// Voxel counts along `i`, `j`, `k`.
    pub dims: [usize; 3],
    /// Voxel → world (RAS+ mm).
    pub affine: Affine,
}

impl Grid {
    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.dims[0] * self.dims[1] * self.dims[2]
    }

    /// Whether the grid has no voxels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// World positions of the eight corners of the field of view (voxel edges, half a voxel
    /// beyond the corner voxel centres).
    pub fn fov_corners(&self) -> [[f64; 3]; 8] {
        let mut out = [[0.0; 3]; 8];
        for (n, c) in out.iter_mut().enumerate() {
            let idx = [0, 1, 2].map(|d| {
                if n & (1 << d) == 0 {
                    -0.5
                } else {
                    self.dims[d] as f64 - 0.5
                }
            });
            *c = self.affine.apply(idx);
        }
        out
    }

    /// Largest distance (mm) between corresponding field-of-view corners of two grids: 0 for the
    /// same grid, and a measure of how far apart two different grids are.
    pub fn max_corner_displacement(&self, other: &Grid) -> f64 {
        let a = self.fov_corners();
        let b = other.fov_corners();
        a.iter()
            .zip(b.iter())
            .map(|(p, q)| dist(p, q))
            .fold(0.0, f64::max)
    }

    /// Whether two grids have the same dims and agree within `tol_mm` at every corner.
    pub fn same_as(&self, other: &Grid, tol_mm: f64) -> bool {
        self.dims == other.dims && self.max_corner_displacement(other) <= tol_mm
    }

    /// Axis-aligned world bounding box of the grid's voxels, including half a voxel around the
    /// centres: `(min, max)`.
    pub fn world_extent(&self) -> ([f64; 3], [f64; 3]) {
        let mut lo = [f64::INFINITY; 3];
        let mut hi = [f64::NEG_INFINITY; 3];
        for p in self.fov_corners() {
            for d in 0..3 {
                lo[d] = lo[d].min(p[d]);
                hi[d] = hi[d].max(p[d]);
            }
        }
        (lo, hi)
    }
}

fn dist(p: &[f64; 3], q: &[f64; 3]) -> f64 {
    ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt()
}

/// A 3-D image: intensities on a [`Grid`].
#[derive(Clone, PartialEq)]
pub struct Volume {
    grid: Grid,
    data: Vec<f32>,
}

impl std::fmt::Debug for Volume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("grid", &self.grid)
            .field("len", &self.data.len())
            .finish()
    }
}

/// Returned when data and grid disagree in size.
#[derive(Debug, thiserror::Error)]
#[error("volume data has {got} values but the grid {dims:?} needs {expected}")]
pub struct ShapeMismatch {
    /// Grid dims.
    pub dims: [usize; 3],
    /// Values needed.
    pub expected: usize,
    /// Values given.
    pub got: usize,
}

impl Volume {
    /// Wraps data (NIfTI order, `i` fastest) on a grid.
    pub fn new(grid: Grid, data: Vec<f32>) -> Result<Self, ShapeMismatch> {
        if data.len() != grid.len() {
            return Err(ShapeMismatch {
                dims: grid.dims,
                expected: grid.len(),
                got: data.len(),
            });
        }
        Ok(Volume { grid, data })
    }

    /// A volume filled with one value.
    pub fn filled(grid: Grid, value: f32) -> Self {
        Volume {
            data: vec![value; grid.len()],
            grid,
        }
    }

    /// The grid.
    pub fn grid(&self) -> &Grid {
        &self.grid
    }

    /// Voxel counts along `i`, `j`, `k`.
    pub fn dims(&self) -> [usize; 3] {
        self.grid.dims
    }

    /// Voxel → world transform.
    pub fn affine(&self) -> &Affine {
        &self.grid.affine
    }

    /// Voxel sizes in mm.
    pub fn zooms(&self) -> [f64; 3] {
        self.grid.affine.zooms()
    }

    /// nibabel orientation code (`"LPS"`, `"RAS"`…).
    pub fn orientation_code(&self) -> String {
        Orientation::of(&self.grid.affine).code()
    }

    /// The intensities, `i` fastest.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// Mutable intensities.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Takes the intensities out.
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }

    /// Linear index of voxel `(i, j, k)`.
    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        let [nx, ny, _] = self.grid.dims;
        i + nx * (j + ny * k)
    }

    /// Value at voxel `(i, j, k)`; panics when out of range (indices are the caller's, never
    /// the input's).
    #[inline]
    pub fn at(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[self.index(i, j, k)]
    }

    /// Same volume geometry, other data.
    pub fn with_data(&self, data: Vec<f32>) -> Result<Volume, ShapeMismatch> {
        Volume::new(self.grid, data)
    }

    /// Minimum and maximum of the finite values; `None` if there are none.
    pub fn finite_range(&self) -> Option<(f32, f32)> {
        // 16 independent lanes, branch-free (vectorised); min and max do not depend on the
        // order in which values are visited. A non-finite value is replaced by the bound that
        // can never be taken, so the lanes need no mask.
        const L: usize = 16;
        fn take(lo: &mut f32, hi: &mut f32, v: f32) {
            let finite = v.is_finite();
            let vl = if finite { v } else { f32::INFINITY };
            let vh = if finite { v } else { f32::NEG_INFINITY };
            *lo = if vl < *lo { vl } else { *lo };
            *hi = if vh > *hi { vh } else { *hi };
        }
        let mut lo = [f32::INFINITY; L];
        let mut hi = [f32::NEG_INFINITY; L];
        let chunks = self.data.chunks_exact(L);
        let rest = chunks.remainder();
        for c in chunks {
            for (k, &v) in c.iter().enumerate() {
                take(&mut lo[k], &mut hi[k], v);
            }
        }
        for (k, &v) in rest.iter().enumerate() {
            take(&mut lo[k], &mut hi[k], v);
        }
        let lo = lo
            .into_iter()
            .fold(f32::INFINITY, |a, b| if b < a { b } else { a });
        let hi = hi
            .into_iter()
            .fold(f32::NEG_INFINITY, |a, b| if b > a { b } else { a });
        // Only finite values were taken: an infinite bound means there were none.
        lo.is_finite().then_some((lo, hi))
    }

    /// Number of NaN or infinite voxels.
    pub fn count_non_finite(&self) -> usize {
        self.data.iter().filter(|v| !v.is_finite()).count()
    }

    /// A sub-volume `[lo, hi)` per axis, with the affine moved so that world positions are
    /// unchanged.
    pub fn crop(&self, lo: [usize; 3], hi: [usize; 3]) -> Volume {
        let dims = [hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]];
        let mut data = Vec::with_capacity(dims[0] * dims[1] * dims[2]);
        for k in lo[2]..hi[2] {
            for j in lo[1]..hi[1] {
                let start = self.index(lo[0], j, k);
                data.extend_from_slice(&self.data[start..start + dims[0]]);
            }
        }
        let origin = self
            .grid
            .affine
            .apply([lo[0] as f64, lo[1] as f64, lo[2] as f64]);
        let affine = Affine::from_parts(self.grid.affine.linear(), origin);
        Volume {
            grid: Grid { dims, affine },
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(data: Vec<f32>) -> Volume {
        let grid = Grid {
            dims: [data.len(), 1, 1],
            affine: Affine::identity(),
        };
        Volume::new(grid, data).expect("volume")
    }

    /// The laned range equals a plain scan over the finite values, wherever the extremes sit
    /// (any lane, the remainder) and with NaN and infinities anywhere.
    #[test]
    fn finite_range_equals_a_plain_scan() {
        let plain = |d: &[f32]| {
            let f: Vec<f32> = d.iter().copied().filter(|v| v.is_finite()).collect();
            (!f.is_empty()).then(|| {
                (
                    f.iter().copied().fold(f32::INFINITY, f32::min),
                    f.iter().copied().fold(f32::NEG_INFINITY, f32::max),
                )
            })
        };
        let mut seed = 7u32;
        for n in [1usize, 5, 15, 16, 17, 31, 32, 33, 100, 1001] {
            for at in [0, n / 2, n - 1] {
                let mut d: Vec<f32> = (0..n)
                    .map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        (seed >> 8) as f32 / 65_536.0 - 100.0
                    })
                    .collect();
                d[at] = -1e6;
                d[(at + 3) % n] = 1e6;
                d[(at + 1) % n] = f32::NAN;
                if n > 4 {
                    d[(at + 2) % n] = f32::NEG_INFINITY;
                    d[(at + 4) % n] = f32::INFINITY;
                }
                let got = volume(d.clone()).finite_range();
                assert_eq!(got, plain(&d), "n {n}, extremes at {at}");
            }
        }
        let none = volume(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]);
        assert_eq!(none.finite_range(), None);
        assert_eq!(volume(vec![3.5]).finite_range(), Some((3.5, 3.5)));
    }
}
