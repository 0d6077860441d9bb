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

    /// ITK `FilterDataArray`: causal pass into `out`, anti-causal pass into `scratch`, summed.
    /// `data.len()` must be at least 4.
    fn filter_line(&self, data: &[f64], out: &mut [f64], scratch: &mut [f64]) {
        let ln = data.len();
        let [n0, n1, n2, n3] = self.n;
        let [d1, d2, d3, d4] = self.d;
        let [m1, m2, m3, m4] = self.m;
        let [bn1, bn2, bn3, bn4] = self.bn;
        let [bm1, bm2, bm3, bm4] = self.bm;
        let ema = |a1: f64, b1: f64, a2: f64, b2: f64, a3: f64, b3: f64, a4: f64, b4: f64| {
            a1 * b1 + a2 * b2 + a3 * b3 + a4 * b4
        };
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
}

/// One recursive Gaussian pass along `axis` over a volume of `f32` (ITK's float internal
/// image): each line is read as `double`, filtered, stored as `float`.
fn pass(data: &[f32], dims: [usize; 3], axis: usize, c: &Coefficients) -> Vec<f32> {
    let [nx, ny, nz] = dims;
    let mut out = vec![0.0f32; data.len()];
    let ln = dims[axis];
    let run =
        |line: &[f64], res: &mut [f64], scratch: &mut [f64]| c.filter_line(line, res, scratch);
    match axis {
        0 => out
            .par_chunks_mut(nx * ny)
            .zip(data.par_chunks(nx * ny))
            .for_each(|(o, slice)| {
                let mut line = vec![0.0; ln];
                let mut res = vec![0.0; ln];
                let mut scratch = vec![0.0; ln];
                for (orow, xrow) in o.chunks_mut(nx).zip(slice.chunks(nx)) {
                    for (l, &v) in line.iter_mut().zip(xrow) {
                        *l = f64::from(v);
                    }
                    run(&line, &mut res, &mut scratch);
                    for (t, r) in orow.iter_mut().zip(res.iter()) {
                        *t = *r as f32;
                    }
                }
            }),
        1 => out
            .par_chunks_mut(nx * ny)
            .zip(data.par_chunks(nx * ny))
            .for_each(|(o, slice)| {
                let mut line = vec![0.0; ln];
                let mut res = vec![0.0; ln];
                let mut scratch = vec![0.0; ln];
                for i in 0..nx {
                    for j in 0..ny {
                        line[j] = f64::from(slice[i + nx * j]);
                    }
                    run(&line, &mut res, &mut scratch);
                    for j in 0..ny {
                        o[i + nx * j] = res[j] as f32;
                    }
                }
            }),
        _ => {
            let plane = nx * ny;
            let cols: Vec<Vec<f32>> = (0..plane)
                .into_par_iter()
                .map(|p| {
                    let line: Vec<f64> = (0..nz).map(|k| f64::from(data[p + plane * k])).collect();
                    let mut res = vec![0.0; ln];
                    let mut scratch = vec![0.0; ln];
                    run(&line, &mut res, &mut scratch);
                    res.iter().map(|&r| r as f32).collect()
                })
                .collect();
            for (p, col) in cols.iter().enumerate() {
                for (k, v) in col.iter().enumerate() {
                    out[p + plane * k] = *v;
                }
            }
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
