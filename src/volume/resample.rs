//! Reorientation and resampling.
//!
//! Two peers define what "resample" means for our users, and they differ at the borders, so
//! the convention is explicit ([`Boundary`]) rather than hidden:
//!
//! * **nibabel** (`resample_from_to`, scipy `map_coordinates` with `mode='constant'`): a sample
//!   is taken only where the continuous source index lies in `[0, n−1]` on every axis; outside it
//!   is `0`. Nearest rounds halves up. This is what co-gridding sequences uses.
//! * **SimpleITK** (`sitk.Resample`, what PyRadiomics' `resampledPixelSpacing` calls): a sample
//!   is taken where the continuous index lies in `[−0.5, n−0.5)`; linear interpolation clamps
//!   to the edge voxel there, cubic B-spline mirrors its coefficients at the border (ITK's
//!   `BSplineDecompositionImageFilter` + `BSplineInterpolateImageFunction`, order 3).
//!
//! All position arithmetic is `f64`; the voxel-to-voxel transform is composed once
//! (`inv(A_src) · A_target`, as nibabel does) and applied per output voxel. Output slices are
//! computed in parallel, each voxel independently, so results do not depend on thread count.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::geometry::{Affine, Orientation};
use super::{Grid, Volume};

/// Interpolation kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interpolator {
    /// Nearest voxel (label maps).
    Nearest,
    /// Trilinear.
    Linear,
    /// Cubic B-spline (SimpleITK `sitkBSpline`).
    BSpline,
}

/// Which peer's border rule to follow (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Boundary {
    /// scipy `mode='constant'`, `cval=0` (nibabel).
    Scipy,
    /// ITK: inside `[−0.5, n−0.5)`, edge-clamped.
    Itk,
}

/// Resamples `src` onto `target` through both affines (world coordinates).
///
/// Returns `None` when `src`'s affine is singular.
pub fn resample_onto(
    src: &Volume,
    target: &Grid,
    interp: Interpolator,
    boundary: Boundary,
) -> Option<Volume> {
    let out = resample_into(src, target, interp, boundary, |v| v as f32)?;
    Volume::new(*target, out).ok()
}

/// [`resample_onto`] keeping the interpolated values in `f64` (for callers that cast them to an
/// integer type themselves, as SimpleITK does, rather than through `f32`).
pub fn resample_onto_f64(
    src: &Volume,
    target: &Grid,
    interp: Interpolator,
    boundary: Boundary,
) -> Option<Vec<f64>> {
    resample_into(src, target, interp, boundary, |v| v)
}

/// The resampling loop, storing each interpolated value through `store` (no intermediate
/// buffer of another type).
fn resample_into<T: Copy + Default + Send>(
    src: &Volume,
    target: &Grid,
    interp: Interpolator,
    boundary: Boundary,
    store: impl Fn(f64) -> T + Sync,
) -> Option<Vec<T>> {
    let to_src = src.affine().inverse()?.compose(&target.affine);
    let coeffs = match interp {
        Interpolator::BSpline => Some(bspline_coefficients(src)),
        _ => None,
    };
    let [nx, ny, nz] = target.dims;
    let mut out = vec![T::default(); target.len()];
    let sampler = Sampler {
        src,
        coeffs: coeffs.as_deref(),
        interp,
        boundary,
    };
    out.par_chunks_mut((nx * ny).max(1))
        .enumerate()
        .for_each(|(k, slice)| {
            for j in 0..ny {
                for i in 0..nx {
                    let c = to_src.apply([i as f64, j as f64, k as f64]);
                    slice[i + nx * j] = store(sampler.sample(c));
                }
            }
        });
    debug_assert_eq!(out.len(), nx * ny * nz);
    Some(out)
}

/// The grid SimpleITK produces when PyRadiomics-style code resamples to `spacing` keeping origin
/// and direction: size `ceil(n · zoom / spacing)` per axis.
pub fn grid_with_spacing(grid: &Grid, spacing: [f64; 3]) -> Grid {
    let zooms = grid.affine.zooms();
    let dir = grid.affine.direction();
    let mut dims = [0usize; 3];
    for d in 0..3 {
        // A zoom read from float32 header fields can exceed its true value by an ulp, which
        // would turn an exact 230.0 into 230.00001 and ceil it to 231.
        let extent = grid.dims[d] as f64 * zooms[d] / spacing[d];
        dims[d] = ((extent - 1e-6).ceil() as usize).max(1);
    }
    let mut lin = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            lin[r][c] = dir[r][c] * spacing[c];
        }
    }
    Grid {
        dims,
        affine: Affine::from_parts(lin, grid.affine.translation()),
    }
}

/// Resamples to a new voxel spacing keeping origin and direction (SimpleITK semantics, as
/// PyRadiomics' `resampledPixelSpacing`).
pub fn resample_to_spacing(
    src: &Volume,
    spacing: [f64; 3],
    interp: Interpolator,
) -> Option<Volume> {
    let grid = grid_with_spacing(src.grid(), spacing);
    resample_onto(src, &grid, interp, Boundary::Itk)
}

/// The closest canonical (RAS) reorientation of a grid: the new grid, and where each new voxel
/// is in the source. The map is a permutation with flips, so it is linear in the source's flat
/// index: a step along output axis o moves `step[o]` source elements (negative when flipped),
/// starting from `base` at the new voxel (0, 0, 0).
struct Reorientation {
    grid: Grid,
    base: isize,
    step: [isize; 3],
}

impl Reorientation {
    fn of(src: &Grid) -> Reorientation {
        let ornt = Orientation::of(&src.affine);
        let in_dims = src.dims;
        // For output axis o: which input axis feeds it, and whether it is flipped.
        let mut feed = [(0usize, false); 3];
        for (a, ax) in ornt.0.iter().enumerate() {
            feed[ax.world_axis] = (a, !ax.positive);
        }
        let out_dims = [in_dims[feed[0].0], in_dims[feed[1].0], in_dims[feed[2].0]];
        // new voxel → old voxel transform T; new affine = A · T.
        let mut t = Affine::from_parts([[0.0; 3]; 3], [0.0; 3]);
        for (o, &(a, flip)) in feed.iter().enumerate() {
            if flip {
                t.0[a][o] = -1.0;
                t.0[a][3] = (in_dims[a] - 1) as f64;
            } else {
                t.0[a][o] = 1.0;
            }
        }
        let grid = Grid {
            dims: out_dims,
            affine: src.affine.compose(&t),
        };
        let in_strides = [
            1isize,
            in_dims[0] as isize,
            (in_dims[0] * in_dims[1]) as isize,
        ];
        let mut step = [0isize; 3];
        let mut base = 0isize;
        for (o, &(a, flip)) in feed.iter().enumerate() {
            if flip {
                step[o] = -in_strides[a];
                base += in_strides[a] * (in_dims[a] as isize - 1);
            } else {
                step[o] = in_strides[a];
            }
        }
        Reorientation { grid, base, step }
    }

    /// Fills `out` with the new grid's axial slice `k` (x fastest) from the source's `data`.
    fn fill_slice(&self, data: &[f32], k: usize, out: &mut [f32]) {
        let ox = self.grid.dims[0];
        for (j, row) in out.chunks_exact_mut(ox.max(1)).enumerate() {
            let mut at = self.base + self.step[2] * k as isize + self.step[1] * j as isize;
            for v in row.iter_mut() {
                *v = data[at as usize];
                at += self.step[0];
            }
        }
    }
}

/// Reorients to the closest canonical (RAS) orientation by permuting and flipping axes, as
/// nibabel's `as_closest_canonical`: no interpolation, the data are only reordered, and the
/// affine changes so that every voxel keeps its world position.
pub fn as_closest_canonical(src: &Volume) -> Volume {
    if Orientation::of(src.affine()).is_ras() {
        return src.clone();
    }
    let map = Reorientation::of(src.grid());
    let mut out = vec![0.0f32; map.grid.len()];
    let [ox, oy, _] = map.grid.dims;
    out.par_chunks_mut((ox * oy).max(1))
        .enumerate()
        .for_each(|(k, slice)| map.fill_slice(src.data(), k, slice));
    Volume {
        grid: map.grid,
        data: out,
    }
}

/// Axial slice `k` of [`as_closest_canonical`]`(src)` without reordering the rest of the
/// volume: the slice's dimensions (x, y) and its values, x fastest. `None` if `k` is beyond
/// the canonical volume's last slice.
pub fn canonical_axial_slice(src: &Volume, k: usize) -> Option<([usize; 2], Vec<f32>)> {
    let map = Reorientation::of(src.grid());
    let [ox, oy, oz] = map.grid.dims;
    if k >= oz {
        return None;
    }
    let mut out = vec![0.0f32; ox * oy];
    map.fill_slice(src.data(), k, &mut out);
    Some(([ox, oy], out))
}

struct Sampler<'a> {
    src: &'a Volume,
    coeffs: Option<&'a [f64]>,
    interp: Interpolator,
    boundary: Boundary,
}

impl Sampler<'_> {
    #[inline]
    fn inside(&self, c: [f64; 3]) -> bool {
        let dims = self.src.dims();
        (0..3).all(|d| {
            let n = dims[d] as f64;
            match self.boundary {
                Boundary::Scipy => c[d] >= 0.0 && c[d] <= n - 1.0,
                Boundary::Itk => c[d] >= -0.5 && c[d] < n - 0.5,
            }
        })
    }

    #[inline]
    fn sample(&self, c: [f64; 3]) -> f64 {
        if !self.inside(c) {
            return 0.0;
        }
        let dims = self.src.dims();
        match self.interp {
            Interpolator::Nearest => {
                let idx =
                    [0, 1, 2].map(|d| ((c[d] + 0.5).floor().max(0.0) as usize).min(dims[d] - 1));
                f64::from(self.src.at(idx[0], idx[1], idx[2]))
            }
            Interpolator::Linear => self.linear(c, dims),
            Interpolator::BSpline => self.bspline(c, dims),
        }
    }

    #[inline]
    fn linear(&self, c: [f64; 3], dims: [usize; 3]) -> f64 {
        let mut lo = [0usize; 3];
        let mut hi = [0usize; 3];
        let mut w = [0.0f64; 3];
        for d in 0..3 {
            let x = c[d].clamp(0.0, (dims[d] - 1) as f64);
            let f = x.floor();
            lo[d] = f as usize;
            hi[d] = (lo[d] + 1).min(dims[d] - 1);
            w[d] = x - f;
        }
        let v = |i: usize, j: usize, k: usize| f64::from(self.src.at(i, j, k));
        let c00 = v(lo[0], lo[1], lo[2]) * (1.0 - w[0]) + v(hi[0], lo[1], lo[2]) * w[0];
        let c10 = v(lo[0], hi[1], lo[2]) * (1.0 - w[0]) + v(hi[0], hi[1], lo[2]) * w[0];
        let c01 = v(lo[0], lo[1], hi[2]) * (1.0 - w[0]) + v(hi[0], lo[1], hi[2]) * w[0];
        let c11 = v(lo[0], hi[1], hi[2]) * (1.0 - w[0]) + v(hi[0], hi[1], hi[2]) * w[0];
        let c0 = c00 * (1.0 - w[1]) + c10 * w[1];
        let c1 = c01 * (1.0 - w[1]) + c11 * w[1];
        c0 * (1.0 - w[2]) + c1 * w[2]
    }

    #[inline]
    fn bspline(&self, c: [f64; 3], dims: [usize; 3]) -> f64 {
        let coeffs = self.coeffs.unwrap_or(&[]);
        let mut idx = [[0usize; 4]; 3];
        let mut wts = [[0.0f64; 4]; 3];
        for d in 0..3 {
            let base = c[d].floor() as i64 - 1;
            let w = c[d] - (base + 1) as f64;
            let w3 = w * w * w / 6.0;
            let w0 = 1.0 / 6.0 + 0.5 * w * (w - 1.0) - w3;
            let w2 = w + w0 - 2.0 * w3;
            let w1 = 1.0 - w0 - w2 - w3;
            wts[d] = [w0, w1, w2, w3];
            for (t, slot) in idx[d].iter_mut().enumerate() {
                *slot = mirror(base + t as i64, dims[d]);
            }
        }
        let [nx, ny, _] = dims;
        let mut acc = 0.0;
        for (c2, &k) in idx[2].iter().enumerate() {
            let mut acc_j = 0.0;
            for (c1, &j) in idx[1].iter().enumerate() {
                let row = nx * (j + ny * k);
                let mut acc_i = 0.0;
                for (c0, &i) in idx[0].iter().enumerate() {
                    acc_i += wts[0][c0] * coeffs[row + i];
                }
                acc_j += wts[1][c1] * acc_i;
            }
            acc += wts[2][c2] * acc_j;
        }
        acc
    }
}

/// Whole-sample mirror of an index into `[0, n)` (ITK's B-spline boundary rule).
#[inline]
fn mirror(i: i64, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let n = n as i64;
    let period = 2 * (n - 1);
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - m;
    }
    m as usize
}

/// Cubic B-spline coefficients of a volume (separable recursive prefilter with mirror boundary,
/// pole `√3 − 2`), as ITK's `BSplineDecompositionImageFilter`.
pub fn bspline_coefficients(src: &Volume) -> Vec<f64> {
    let dims = src.dims();
    let mut c: Vec<f64> = src.data().iter().map(|&v| f64::from(v)).collect();
    let [nx, ny, nz] = dims;
    // Along i: contiguous rows.
    c.par_chunks_mut(nx).for_each(prefilter_line);
    // Along j and k: gather, filter, scatter, slice by slice (k) for j; column by column for k.
    c.par_chunks_mut(nx * ny).for_each(|slice| {
        let mut line = vec![0.0; ny];
        for i in 0..nx {
            for j in 0..ny {
                line[j] = slice[i + nx * j];
            }
            prefilter_line(&mut line);
            for j in 0..ny {
                slice[i + nx * j] = line[j];
            }
        }
    });
    if nz > 1 {
        let plane = nx * ny;
        let columns: Vec<Vec<f64>> = (0..plane)
            .into_par_iter()
            .map(|p| {
                let mut line: Vec<f64> = (0..nz).map(|k| c[p + plane * k]).collect();
                prefilter_line(&mut line);
                line
            })
            .collect();
        for (p, line) in columns.iter().enumerate() {
            for (k, v) in line.iter().enumerate() {
                c[p + plane * k] = *v;
            }
        }
    }
    c
}

fn prefilter_line(c: &mut [f64]) {
    let n = c.len();
    if n < 2 {
        return;
    }
    let z: f64 = 3.0f64.sqrt() - 2.0;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    for v in c.iter_mut() {
        *v *= gain;
    }
    // Initial causal coefficient, mirror boundary (exact sum).
    let mut zn = z;
    let iz = 1.0 / z;
    let mut z2n = z.powi((n - 1) as i32);
    let mut sum = c[0] + z2n * c[n - 1];
    z2n = z2n * z2n * iz;
    for v in c.iter().take(n - 1).skip(1) {
        sum += (zn + z2n) * v;
        zn *= z;
        z2n *= iz;
    }
    c[0] = sum / (1.0 - zn * zn);
    for i in 1..n {
        c[i] += z * c[i - 1];
    }
    c[n - 1] = (z / (z * z - 1.0)) * (z * c[n - 2] + c[n - 1]);
    for i in (0..n - 1).rev() {
        c[i] = z * (c[i + 1] - c[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(dims: [usize; 3]) -> Volume {
        let grid = Grid {
            dims,
            affine: Affine::from_diag([2.0, 2.0, 3.0], [1.0, -4.0, 7.0]),
        };
        let data = (0..grid.len())
            .map(|n| {
                let i = n % dims[0];
                let j = (n / dims[0]) % dims[1];
                let k = n / (dims[0] * dims[1]);
                (1.0 + 2.0 * i as f64 - 0.5 * j as f64 + 3.0 * k as f64) as f32
            })
            .collect();
        Volume::new(grid, data).expect("shape")
    }

    #[test]
    fn identity_resampling_is_exact_for_every_kernel() {
        let v = ramp([6, 5, 4]);
        for interp in [
            Interpolator::Nearest,
            Interpolator::Linear,
            Interpolator::BSpline,
        ] {
            let r = resample_onto(&v, v.grid(), interp, Boundary::Itk).expect("invertible");
            for (a, b) in r.data().iter().zip(v.data()) {
                assert!((a - b).abs() < 1e-4, "{interp:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bspline_reproduces_linear_ramps_inside() {
        // Cubic B-splines reproduce polynomials up to degree 1 away from the mirrored border.
        let v = ramp([24, 24, 24]);
        let g = grid_with_spacing(v.grid(), [1.0, 1.0, 1.5]);
        let r = resample_onto(&v, &g, Interpolator::BSpline, Boundary::Itk).expect("invertible");
        let lin = resample_onto(&v, &g, Interpolator::Linear, Boundary::Itk).expect("invertible");
        let [nx, ny, _] = g.dims;
        // Output voxels 16..32 sample source voxels 8..16, far from the mirrored border.
        for k in 16..32 {
            for j in 16..32 {
                for i in 16..32 {
                    let n = i + nx * (j + ny * k);
                    assert!((r.data()[n] - lin.data()[n]).abs() < 1e-3);
                }
            }
        }
    }

    #[test]
    fn canonical_keeps_world_positions() {
        let grid = Grid {
            dims: [3, 4, 5],
            affine: Affine::from_diag([-1.0, -1.0, 2.0], [10.0, 20.0, 0.0]),
        };
        let v = Volume::new(grid, (0..60).map(|x| x as f32).collect()).expect("shape");
        let c = as_closest_canonical(&v);
        assert_eq!(c.orientation_code(), "RAS");
        assert_eq!(c.dims(), [3, 4, 5]);
        // Each voxel of the canonical volume holds the value found at the same world point.
        let inv = v.affine().inverse().expect("invertible");
        for (n, val) in c.data().iter().enumerate() {
            let idx = [n % 3, (n / 3) % 4, n / 12].map(|x| x as f64);
            let w = c.affine().apply(idx);
            let o = inv.apply(w).map(|x| x.round() as usize);
            assert_eq!(*val, v.at(o[0], o[1], o[2]));
        }
    }

    #[test]
    fn canonical_keeps_world_positions_for_every_permutation_and_flip() {
        let perms = [
            [0, 1, 2],
            [0, 2, 1],
            [1, 0, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
        ];
        for p in perms {
            for signs in 0..8 {
                // Voxel axis a points along world axis p[a], flipped when bit a of `signs` is set.
                let mut lin = [[0.0; 3]; 3];
                for a in 0..3 {
                    let sign = if signs & (1 << a) != 0 { -1.0 } else { 1.0 };
                    lin[p[a]][a] = sign * (a as f64 + 1.0);
                }
                let grid = Grid {
                    dims: [3, 4, 5],
                    affine: Affine::from_parts(lin, [1.0, -2.0, 3.0]),
                };
                let v = Volume::new(grid, (0..60).map(|x| x as f32).collect()).expect("shape");
                let c = as_closest_canonical(&v);
                assert_eq!(c.orientation_code(), "RAS", "{p:?} {signs}");
                let [cx, cy, _] = c.dims();
                let inv = v.affine().inverse().expect("invertible");
                for (n, val) in c.data().iter().enumerate() {
                    let idx = [n % cx, (n / cx) % cy, n / (cx * cy)].map(|x| x as f64);
                    let o = inv.apply(c.affine().apply(idx)).map(|x| x.round() as usize);
                    assert_eq!(*val, v.at(o[0], o[1], o[2]), "{p:?} {signs} voxel {n}");
                }
                // One axial slice alone equals that slice of the whole reoriented volume.
                let cz = c.dims()[2];
                for k in 0..cz {
                    let (dims, slice) = canonical_axial_slice(&v, k).expect("in range");
                    assert_eq!(dims, [cx, cy]);
                    assert_eq!(slice, c.data()[k * cx * cy..(k + 1) * cx * cy].to_vec());
                }
                assert!(canonical_axial_slice(&v, cz).is_none());
            }
        }
    }

    #[test]
    fn mirror_indices() {
        assert_eq!(mirror(-1, 5), 1);
        assert_eq!(mirror(-2, 5), 2);
        assert_eq!(mirror(5, 5), 3);
        assert_eq!(mirror(6, 5), 2);
        assert_eq!(mirror(3, 1), 0);
    }
}
