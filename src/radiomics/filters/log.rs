//! PyRadiomics' LoG image type: SimpleITK `LaplacianRecursiveGaussianImageFilter` with
//! `NormalizeAcrossScale(True)`, reproduced operation for operation.
//!
//! ITK computes the Laplacian as a sum over axes `d` of a recursive (Deriche, 4th-order IIR)
//! second-derivative Gaussian along `d` followed by zero-order Gaussians along the other two
//! axes (in increasing axis order), each term divided by `spacing[d]²` and accumulated in
//! `float`. Each 1-D pass runs in `double` on one line and stores `float`
//! (`RecursiveSeparableImageFilter::FilterDataArray`, causal + anti-causal with the border value
//! extended to infinity). The coefficients are Deriche's as ITK's
//! `RecursiveGaussianImageFilter::SetUp` computes them, with `σ` in voxels = `σ / spacing`; the
//! second derivative is scaled by `σ²` (normalised across scale), the zero order is not.
//!
//! PyRadiomics skips the whole image type when any axis has fewer than 4 voxels, and a sigma
//! when `size < ceil(σ / spacing) + 1` on any axis or `σ <= 0`, logging a warning; the caller
//! gets these as [`Skipped`](super::Skipped) entries.

use rayon::prelude::*;

use crate::volume::Volume;

/// Deriche recursive filter coefficients of one pass (ITK's `m_N*`, `m_D*`, `m_M*`, `m_B*`).
#[derive(Debug, Clone, Copy)]
struct Coefficients {
    n: [f64; 4],
    d: [f64; 4],
    m: [f64; 4],
    bn: [f64; 4],
    bm: [f64; 4],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Zero,
    Second,
}

fn n_coefficients(
    sigmad: f64,
    a1: f64,
    b1: f64,
    w1: f64,
    l1: f64,
    a2: f64,
    b2: f64,
    w2: f64,
    l2: f64,
) -> ([f64; 4], f64, f64, f64) {
    let sin1 = (w1 / sigmad).sin();
    let sin2 = (w2 / sigmad).sin();
    let cos1 = (w1 / sigmad).cos();
    let cos2 = (w2 / sigmad).cos();
    let exp1 = (l1 / sigmad).exp();
    let exp2 = (l2 / sigmad).exp();
    let n0 = a1 + a2;
    let mut n1 = exp2 * (b2 * sin2 - (a2 + 2.0 * a1) * cos2);
    n1 += exp1 * (b1 * sin1 - (a1 + 2.0 * a2) * cos1);
    let mut n2 = (a1 + a2) * cos2 * cos1;
    n2 -= b1 * cos2 * sin1 + b2 * cos1 * sin2;
    n2 *= 2.0 * exp1 * exp2;
    n2 += a2 * exp1 * exp1 + a1 * exp2 * exp2;
    let mut n3 = exp2 * exp1 * exp1 * (b2 * sin2 - a2 * cos2);
    n3 += exp1 * exp2 * exp2 * (b1 * sin1 - a1 * cos1);
    let sn = n0 + n1 + n2 + n3;
    let dn = n1 + 2.0 * n2 + 3.0 * n3;
    let en = n1 + 4.0 * n2 + 9.0 * n3;
    ([n0, n1, n2, n3], sn, dn, en)
}

impl Coefficients {
    /// ITK `RecursiveGaussianImageFilter::SetUp(spacing)` for `sigma` (mm), normalised across
    /// scale.
    fn new(sigma: f64, spacing: f64, order: Order) -> Coefficients {
        let spacing = spacing.abs();
        let sigmad = sigma / spacing;
        let (a1_0, b1_0, w1, l1, a2_0, b2_0, w2, l2) = (
            1.3530, 1.8151, 0.6681, -1.3932, -0.3531, 0.0902, 2.0787, -1.3732,
        );
        let (a1_2, b1_2, a2_2, b2_2) = (-1.3563, 5.2318, 0.3446, -2.2355);

        // D coefficients.
        let cos1 = (w1 / sigmad).cos();
        let cos2 = (w2 / sigmad).cos();
        let exp1 = (l1 / sigmad).exp();
        let exp2 = (l2 / sigmad).exp();
        let d4 = exp1 * exp1 * exp2 * exp2;
        let mut d3 = -2.0 * cos1 * exp1 * exp2 * exp2;
        d3 += -2.0 * cos2 * exp2 * exp1 * exp1;
        let mut d2 = 4.0 * cos2 * cos1 * exp1 * exp2;
        d2 += exp1 * exp1 + exp2 * exp2;
        let d1 = -2.0 * (exp2 * cos2 + exp1 * cos1);
        let sd = 1.0 + d1 + d2 + d3 + d4;
        let dd = d1 + 2.0 * d2 + 3.0 * d3 + 4.0 * d4;
        let ed = d1 + 4.0 * d2 + 9.0 * d3 + 16.0 * d4;

        let n = match order {
            Order::Zero => {
                let (mut n, sn, _, _) =
                    n_coefficients(sigmad, a1_0, b1_0, w1, l1, a2_0, b2_0, w2, l2);
                let alpha0 = 2.0 * sn / sd - n[0];
                for v in n.iter_mut() {
                    *v *= 1.0 / alpha0;
                }
                n
            }
            Order::Second => {
                let across = sigma * sigma;
                let (n_0, sn0, dn0, en0) =
                    n_coefficients(sigmad, a1_0, b1_0, w1, l1, a2_0, b2_0, w2, l2);
                let (n_2, sn2, dn2, en2) =
                    n_coefficients(sigmad, a1_2, b1_2, w1, l1, a2_2, b2_2, w2, l2);
                let beta = -(2.0 * sn2 - sd * n_2[0]) / (2.0 * sn0 - sd * n_0[0]);
                let mut n = [0.0; 4];
                for t in 0..4 {
                    n[t] = n_2[t] + beta * n_0[t];
                }
                let sn = sn2 + beta * sn0;
                let dn = dn2 + beta * dn0;
                let en = en2 + beta * en0;
                let mut alpha2 =
                    en * sd * sd - ed * sn * sd - 2.0 * dn * dd * sd + 2.0 * dd * dd * sn;
                alpha2 /= sd * sd * sd;
                for v in n.iter_mut() {
                    *v *= across / alpha2;
                }
                n
            }
        };
        // Both orders used here are symmetric kernels.
        let d = [d1, d2, d3, d4];
        let m = [
            n[1] - d1 * n[0],
            n[2] - d2 * n[0],
            n[3] - d3 * n[0],
            -d4 * n[0],
        ];
        let sn = n[0] + n[1] + n[2] + n[3];
        let sm = m[0] + m[1] + m[2] + m[3];
        let sd = 1.0 + d1 + d2 + d3 + d4;
        let bn = d.map(|di| di * sn / sd);
        let bm = d.map(|di| di * sm / sd);
        Coefficients { n, d, m, bn, bm }
    }

    /// ITK `FilterDataArray` on one line: causal pass into `out`, anti-causal pass into
    /// `scratch`, summed. `data.len()` must be at least 4. The reference for [`filter_lines`]
    /// (which must agree with it to the bit).
    #[cfg(test)]
    fn filter_line(&self, data: &[f64], out: &mut [f64], scratch: &mut [f64]) {
        let ln = data.len();
        let [n0, n1, n2, n3] = self.n;
        let [d1, d2, d3, d4] = self.d;
        let [m1, m2, m3, m4] = self.m;
        let [bn1, bn2, bn3, bn4] = self.bn;
        let [bm1, bm2, bm3, bm4] = self.bm;
        // Causal.
        let v1 = data[0];
        out[0] = ema(v1, n0, v1, n1, v1, n2, v1, n3);
        out[1] = ema(data[1], n0, v1, n1, v1, n2, v1, n3);
        out[2] = ema(data[2], n0, data[1], n1, v1, n2, v1, n3);
        out[3] = ema(data[3], n0, data[2], n1, data[1], n2, v1, n3);
        out[0] -= ema(v1, bn1, v1, bn2, v1, bn3, v1, bn4);
        out[1] -= ema(out[0], d1, v1, bn2, v1, bn3, v1, bn4);
        out[2] -= ema(out[1], d1, out[0], d2, v1, bn3, v1, bn4);
        out[3] -= ema(out[2], d1, out[1], d2, out[0], d3, v1, bn4);
        for i in 4..ln {
            out[i] = ema(
                data[i],
                n0,
                data[i - 1],
                n1,
                data[i - 2],
                n2,
                data[i - 3],
                n3,
            );
            out[i] -= ema(
                out[i - 1],
                d1,
                out[i - 2],
                d2,
                out[i - 3],
                d3,
                out[i - 4],
                d4,
            );
        }
        // Anti-causal.
        let v2 = data[ln - 1];
        let s = scratch;
        s[ln - 1] = ema(v2, m1, v2, m2, v2, m3, v2, m4);
        s[ln - 2] = ema(data[ln - 1], m1, v2, m2, v2, m3, v2, m4);
        s[ln - 3] = ema(data[ln - 2], m1, data[ln - 1], m2, v2, m3, v2, m4);
        s[ln - 4] = ema(data[ln - 3], m1, data[ln - 2], m2, data[ln - 1], m3, v2, m4);
        s[ln - 1] -= ema(v2, bm1, v2, bm2, v2, bm3, v2, bm4);
        s[ln - 2] -= ema(s[ln - 1], d1, v2, bm2, v2, bm3, v2, bm4);
        s[ln - 3] -= ema(s[ln - 2], d1, s[ln - 1], d2, v2, bm3, v2, bm4);
        s[ln - 4] -= ema(s[ln - 3], d1, s[ln - 2], d2, s[ln - 1], d3, v2, bm4);
        let mut i = ln - 4;
        while i > 0 {
            s[i - 1] = ema(
                data[i],
                m1,
                data[i + 1],
                m2,
                data[i + 2],
                m3,
                data[i + 3],
                m4,
            );
            s[i - 1] -= ema(s[i], d1, s[i + 1], d2, s[i + 2], d3, s[i + 3], d4);
            i -= 1;
        }
        for i in 0..ln {
            out[i] += s[i];
        }
    }

    /// [`filter_line`](Self::filter_line) on `w` lines at once, in lock step: `data`, `out`
    /// and `scratch` hold `len` rows of `w` values (row `k` = sample `k` of every line), so the
    /// inner loops run over independent lines and vectorise, while each line sees exactly the
    /// operations of the one-line filter, in the same order (bit-identical results).
    fn filter_lines(&self, data: &[f64], out: &mut [f64], scratch: &mut [f64], w: usize) {
        let ln = data.len() / w;
        let [n0, n1, n2, n3] = self.n;
        let [d1, d2, d3, d4] = self.d;
        let [m1, m2, m3, m4] = self.m;
        let [bn1, bn2, bn3, bn4] = self.bn;
        let [bm1, bm2, bm3, bm4] = self.bm;
        let row = |k: usize| k * w..(k + 1) * w;
        // Causal: rows 0..4 with the first sample extended, then the recursion.
        {
            let (head, _) = out.split_at_mut(4 * w);
            let (o0, rest) = head.split_at_mut(w);
            let (o1, rest) = rest.split_at_mut(w);
            let (o2, o3) = rest.split_at_mut(w);
            let (x0, x1, x2, x3) = (&data[row(0)], &data[row(1)], &data[row(2)], &data[row(3)]);
            for j in 0..w {
                let v1 = x0[j];
                let mut a0 = ema(v1, n0, v1, n1, v1, n2, v1, n3);
                let mut a1 = ema(x1[j], n0, v1, n1, v1, n2, v1, n3);
                let mut a2 = ema(x2[j], n0, x1[j], n1, v1, n2, v1, n3);
                let mut a3 = ema(x3[j], n0, x2[j], n1, x1[j], n2, v1, n3);
                a0 -= ema(v1, bn1, v1, bn2, v1, bn3, v1, bn4);
                a1 -= ema(a0, d1, v1, bn2, v1, bn3, v1, bn4);
                a2 -= ema(a1, d1, a0, d2, v1, bn3, v1, bn4);
                a3 -= ema(a2, d1, a1, d2, a0, d3, v1, bn4);
                o0[j] = a0;
                o1[j] = a1;
                o2[j] = a2;
                o3[j] = a3;
            }
        }
        for k in 4..ln {
            let (done, rest) = out.split_at_mut(k * w);
            let o = &mut rest[..w];
            let (y1, y2, y3, y4) = (
                &done[row(k - 1)],
                &done[row(k - 2)],
                &done[row(k - 3)],
                &done[row(k - 4)],
            );
            let (x0, x1, x2, x3) = (
                &data[row(k)],
                &data[row(k - 1)],
                &data[row(k - 2)],
                &data[row(k - 3)],
            );
            for j in 0..w {
                let a = ema(x0[j], n0, x1[j], n1, x2[j], n2, x3[j], n3);
                o[j] = a - ema(y1[j], d1, y2[j], d2, y3[j], d3, y4[j], d4);
            }
        }
        // Anti-causal: the last four rows with the last sample extended, then backwards.
        {
            let (_, tail) = scratch.split_at_mut((ln - 4) * w);
            let (s4, rest) = tail.split_at_mut(w);
            let (s3, rest) = rest.split_at_mut(w);
            let (s2, s1) = rest.split_at_mut(w);
            let (x1, x2, x3) = (&data[row(ln - 1)], &data[row(ln - 2)], &data[row(ln - 3)]);
            for j in 0..w {
                let v2 = x1[j];
                let mut b1 = ema(v2, m1, v2, m2, v2, m3, v2, m4);
                let mut b2 = ema(x1[j], m1, v2, m2, v2, m3, v2, m4);
                let mut b3 = ema(x2[j], m1, x1[j], m2, v2, m3, v2, m4);
                let mut b4 = ema(x3[j], m1, x2[j], m2, x1[j], m3, v2, m4);
                b1 -= ema(v2, bm1, v2, bm2, v2, bm3, v2, bm4);
                b2 -= ema(b1, d1, v2, bm2, v2, bm3, v2, bm4);
                b3 -= ema(b2, d1, b1, d2, v2, bm3, v2, bm4);
                b4 -= ema(b3, d1, b2, d2, b1, d3, v2, bm4);
                s1[j] = b1;
                s2[j] = b2;
                s3[j] = b3;
                s4[j] = b4;
            }
        }
        for i in (1..=ln - 4).rev() {
            let (before, done) = scratch.split_at_mut(i * w);
            let o = &mut before[(i - 1) * w..];
            let (y1, y2, y3, y4) = (
                &done[..w],
                &done[w..2 * w],
                &done[2 * w..3 * w],
                &done[3 * w..4 * w],
            );
            let (x0, x1, x2, x3) = (
                &data[row(i)],
                &data[row(i + 1)],
                &data[row(i + 2)],
                &data[row(i + 3)],
            );
            for j in 0..w {
                let a = ema(x0[j], m1, x1[j], m2, x2[j], m3, x3[j], m4);
                o[j] = a - ema(y1[j], d1, y2[j], d2, y3[j], d3, y4[j], d4);
            }
        }
        for (o, s) in out.iter_mut().zip(scratch.iter()) {
            *o += *s;
        }
    }
}

/// `a1·b1 + a2·b2 + a3·b3 + a4·b4`, summed left to right (ITK's order).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn ema(a1: f64, b1: f64, a2: f64, b2: f64, a3: f64, b3: f64, a4: f64, b4: f64) -> f64 {
    a1 * b1 + a2 * b2 + a3 * b3 + a4 * b4
}

/// Lines filtered together by [`Coefficients::filter_lines`].
const BLOCK: usize = 32;

/// One recursive Gaussian pass along `axis` over a volume of `f32` (ITK's float internal
/// image): each line is read as `double`, filtered, stored as `float`.
///
/// Lines are taken in blocks of up to [`BLOCK`] neighbours along the fastest other axis and
/// filtered in lock step. Passes along `x` and `y` work slab by slab (a slab's lines stay in
/// it); the pass along `z` filters blocks of neighbouring columns and then assembles the output
/// slab by slab. Everything runs in parallel and each line's result does not depend on the
/// schedule.
fn pass(data: &[f32], dims: [usize; 3], axis: usize, c: &Coefficients) -> Vec<f32> {
    let [nx, ny, nz] = dims;
    let plane = nx * ny;
    let mut out = vec![0.0f32; data.len()];
    if plane == 0 || nz == 0 {
        return out;
    }
    match axis {
        0 | 1 => {
            // Along x: lines are the rows of a slab (blocks of rows, transposed into lock-step
            // order); along y: lines are the columns of a slab (blocks of adjacent columns,
            // whose samples are contiguous row pieces).
            let (ln, lines) = if axis == 0 { (nx, ny) } else { (ny, nx) };
            out.par_chunks_mut(plane)
                .zip(data.par_chunks(plane))
                .for_each(|(o, slab)| {
                    let mut buf = vec![0.0f64; ln * BLOCK];
                    let mut res = vec![0.0f64; ln * BLOCK];
                    let mut scratch = vec![0.0f64; ln * BLOCK];
                    for first in (0..lines).step_by(BLOCK) {
                        let w = BLOCK.min(lines - first);
                        let (buf, res, scratch) = (
                            &mut buf[..ln * w],
                            &mut res[..ln * w],
                            &mut scratch[..ln * w],
                        );
                        if axis == 0 {
                            // Rows of the slab, transposed in and out.
                            for j in 0..w {
                                let row = &slab[(first + j) * nx..(first + j + 1) * nx];
                                for (b, &v) in buf.iter_mut().skip(j).step_by(w).zip(row) {
                                    *b = f64::from(v);
                                }
                            }
                            c.filter_lines(buf, res, scratch, w);
                            for j in 0..w {
                                let row = &mut o[(first + j) * nx..(first + j + 1) * nx];
                                for (r, &v) in row.iter_mut().zip(res.iter().skip(j).step_by(w)) {
                                    *r = v as f32;
                                }
                            }
                        } else {
                            // Pieces of the slab's rows, contiguous in and out.
                            for (k, b) in buf.chunks_mut(w).enumerate() {
                                let src = &slab[k * nx + first..k * nx + first + w];
                                for (b, &v) in b.iter_mut().zip(src) {
                                    *b = f64::from(v);
                                }
                            }
                            c.filter_lines(buf, res, scratch, w);
                            for (k, r) in res.chunks(w).enumerate() {
                                let dst = &mut o[k * nx + first..k * nx + first + w];
                                for (d, &v) in dst.iter_mut().zip(r) {
                                    *d = v as f32;
                                }
                            }
                        }
                    }
                });
        }
        _ => {
            // Along z: blocks of adjacent columns (each sample row a contiguous piece of a
            // slab), filtered in parallel; then each output slab is assembled from the blocks.
            let blocks: Vec<Vec<f32>> = (0..plane)
                .step_by(BLOCK)
                .collect::<Vec<_>>()
                .par_iter()
                .map(|&first| {
                    let w = BLOCK.min(plane - first);
                    let mut buf = vec![0.0f64; nz * w];
                    for (k, row) in buf.chunks_mut(w).enumerate() {
                        let src = &data[k * plane + first..k * plane + first + w];
                        for (b, &v) in row.iter_mut().zip(src) {
                            *b = f64::from(v);
                        }
                    }
                    let mut res = vec![0.0f64; nz * w];
                    let mut scratch = vec![0.0f64; nz * w];
                    c.filter_lines(&buf, &mut res, &mut scratch, w);
                    res.iter().map(|&r| r as f32).collect()
                })
                .collect();
            out.par_chunks_mut(plane).enumerate().for_each(|(k, o)| {
                for (b, res) in blocks.iter().enumerate() {
                    let first = b * BLOCK;
                    let w = BLOCK.min(plane - first);
                    o[first..first + w].copy_from_slice(&res[k * w..(k + 1) * w]);
                }
            });
        }
    }
    out
}

/// Why PyRadiomics would not compute a LoG image for a sigma (its warning text).
pub fn log_skip_reason(dims: [usize; 3], spacing: [f64; 3], sigma: f64) -> Option<String> {
    if dims.iter().any(|&n| n < 4) {
        return Some(format!(
            "Image too small to apply LoG filter, size: {dims:?}"
        ));
    }
    if sigma <= 0.0 {
        return Some(format!("applyLoG: sigma must be greater than 0.0: {sigma}"));
    }
    let fits = (0..3).all(|d| dims[d] as f64 >= (sigma / spacing[d]).ceil() + 1.0);
    if !fits {
        return Some(format!(
            "applyLoG: sigma({sigma})/spacing({spacing:?}) + 1 must be greater than the size({dims:?}) of the inputImage"
        ));
    }
    None
}

/// The LoG image of `image` at `sigma` mm, as SimpleITK computes it; `None` when an axis has
/// fewer than 4 voxels or `sigma` is not positive (ITK refuses those; see [`log_skip_reason`]
/// for PyRadiomics' stricter rule).
pub fn laplacian_of_gaussian(image: &Volume, sigma: f64) -> Option<Volume> {
    let dims = image.dims();
    if dims.iter().any(|&n| n < 4) || sigma.is_nan() || sigma <= 0.0 {
        return None;
    }
    let spacing = image.zooms();
    let mut cumulative = vec![0.0f32; image.data().len()];
    for dim in 0..3 {
        let second = Coefficients::new(sigma, spacing[dim], Order::Second);
        let mut v = pass(image.data(), dims, dim, &second);
        for axis in (0..3).filter(|&a| a != dim) {
            let zero = Coefficients::new(sigma, spacing[axis], Order::Zero);
            v = pass(&v, dims, axis, &zero);
        }
        let scale = 1.0 / (spacing[dim] * spacing[dim]);
        cumulative
            .par_iter_mut()
            .zip(v.par_iter())
            .for_each(|(a, &b)| *a = (f64::from(*a) + f64::from(b) * scale) as f32);
    }
    image.with_data(cumulative).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lock-step filter gives, line for line, the one-line ITK filter's bits.
    #[test]
    fn lock_step_lines_match_single_line_filter_bitwise() {
        for (sigma, spacing, order) in [
            (1.0, 1.0, Order::Second),
            (3.0, 0.9, Order::Zero),
            (2.0, 5.5, Order::Second),
        ] {
            let c = Coefficients::new(sigma, spacing, order);
            for ln in [4usize, 5, 9, 37] {
                let w = 7;
                let line = |j: usize| -> Vec<f64> {
                    (0..ln)
                        .map(|k| ((k * 31 + j * 17) % 23) as f64 * 1.7 - 9.0 + (j as f64).sin())
                        .collect()
                };
                let mut block = vec![0.0; ln * w];
                for j in 0..w {
                    for (k, v) in line(j).into_iter().enumerate() {
                        block[k * w + j] = v;
                    }
                }
                let (mut out, mut scratch) = (vec![0.0; ln * w], vec![0.0; ln * w]);
                c.filter_lines(&block, &mut out, &mut scratch, w);
                for j in 0..w {
                    let (mut o, mut s) = (vec![0.0; ln], vec![0.0; ln]);
                    c.filter_line(&line(j), &mut o, &mut s);
                    for k in 0..ln {
                        assert_eq!(
                            o[k].to_bits(),
                            out[k * w + j].to_bits(),
                            "sigma {sigma} ln {ln} line {j} sample {k}"
                        );
                    }
                }
            }
        }
    }
}
