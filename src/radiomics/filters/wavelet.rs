//! PyRadiomics' wavelet image type: PyWavelets `swtn` (stationary, undecimated) at level 1.
//!
//! PyRadiomics (`imageoperations._swt3`) pads every odd axis by one voxel (numpy `wrap`: the
//! first slice is repeated at the end), calls `pywt.swtn(data, wavelet, level=1,
//! start_level=0, axes=(2, 1, 0))` once per requested level on the previous approximation
//! (so a second level is the level-1 transform applied again, not the à-trous level 2), and
//! crops the padding off. With numpy's `(z, y, x)` order, axes `(2, 1, 0)` are our `i`, `j`,
//! `k`: the first letter of `LLH` is the `i` filter, the last the `k` filter. The sub-bands come
//! out as `swtn` orders them (`aad`, `ada`, `add`, `daa`, …), then the approximation `LLL`.
//!
//! Each 1-D pass is PyWavelets' periodic convolution, `out[o] = Σ_j f[j] · x[(o + F/2 − j) mod
//! N]`, summed in the order its C loops use (so results are the same bits), in the working
//! precision PyWavelets picks: `float32` data stay `float32`, everything else is `float64`.

use std::ops::{Add, Mul};

use rayon::prelude::*;

use super::wavelet_filters::BANKS;
use super::{FilterError, WaveletSpec};
use crate::volume::Volume;

/// The arithmetic PyWavelets uses for an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// `float32` input.
    F32,
    /// Any other input (integers are converted to `float64`).
    F64,
}

trait Real: Copy + Send + Sync + Add<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    fn from_f32(v: f32) -> Self;
    fn to_f32(self) -> f32;
    /// The values as `f32` (no copy when they already are).
    fn into_f32s(v: Vec<Self>) -> Vec<f32>;
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn into_f32s(v: Vec<Self>) -> Vec<f32> {
        v
    }
}

impl Real for f64 {
    const ZERO: Self = 0.0;
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn into_f32s(v: Vec<Self>) -> Vec<f32> {
        v.into_iter().map(|x| x as f32).collect()
    }
}

/// Names of the wavelets this module knows (PyWavelets names).
pub fn supported_wavelets() -> Vec<&'static str> {
    BANKS.iter().map(|b| b.name).collect()
}

/// The wavelet decompositions of `image` in PyRadiomics' order and names
/// (`wavelet-LLH` … `wavelet-HHH`, then `wavelet-LLL`; `waveletN-…` for levels after the first).
pub fn wavelet_images(
    image: &Volume,
    spec: &WaveletSpec,
    precision: Precision,
) -> Result<Vec<(String, Volume)>, FilterError> {
    let bank = BANKS
        .iter()
        .find(|b| b.name == spec.wavelet)
        .ok_or_else(|| FilterError::UnknownWavelet {
            name: spec.wavelet.clone(),
            supported: supported_wavelets().join(", "),
        })?;
    match precision {
        Precision::F32 => {
            let lo: Vec<f32> = bank.lo32.iter().map(|&b| f32::from_bits(b)).collect();
            let hi: Vec<f32> = bank.hi32.iter().map(|&b| f32::from_bits(b)).collect();
            run::<f32>(image, spec, &lo, &hi)
        }
        Precision::F64 => {
            let lo: Vec<f64> = bank.lo64.iter().map(|&b| f64::from_bits(b)).collect();
            let hi: Vec<f64> = bank.hi64.iter().map(|&b| f64::from_bits(b)).collect();
            run::<f64>(image, spec, &lo, &hi)
        }
    }
}

fn run<T: Real>(
    image: &Volume,
    spec: &WaveletSpec,
    lo: &[T],
    hi: &[T],
) -> Result<Vec<(String, Volume)>, FilterError> {
    let dims = image.dims();
    let padded = dims.map(|n| n + n % 2);
    // numpy.pad(..., 'wrap') by one voxel on odd axes: index modulo the original size.
    let mut data: Vec<T> = Vec::with_capacity(padded[0] * padded[1] * padded[2]);
    for k in 0..padded[2] {
        for j in 0..padded[1] {
            for i in 0..padded[0] {
                data.push(T::from_f32(image.at(i % dims[0], j % dims[1], k % dims[2])));
            }
        }
    }
    for _ in 0..spec.start_level {
        data = swt3(data, padded, lo, hi).swap_remove(0).1;
    }
    let mut out = Vec::new();
    for idx in 1..=spec.level {
        let mut bands = swt3(data, padded, lo, hi).into_iter();
        let Some((_, approx)) = bands.next() else {
            return Err(FilterError::Internal("no approximation band".into()));
        };
        for (name, band) in bands {
            let label = if idx == 1 {
                format!("wavelet-{name}")
            } else {
                format!("wavelet{idx}-{name}")
            };
            out.push((label, crop(image, band, padded)?));
        }
        data = approx;
    }
    let label = if spec.level == 1 {
        "wavelet-LLL".to_string()
    } else {
        format!("wavelet{}-LLL", spec.level)
    };
    out.push((label, crop(image, data, padded)?));
    Ok(out)
}

/// The band on the image's grid: moved as it is when no axis was padded, cropped otherwise.
fn crop<T: Real>(image: &Volume, band: Vec<T>, padded: [usize; 3]) -> Result<Volume, FilterError> {
    let [nx, ny, nz] = image.dims();
    if padded == [nx, ny, nz] {
        return image
            .with_data(T::into_f32s(band))
            .map_err(|e| FilterError::Internal(e.to_string()));
    }
    let mut v = Vec::with_capacity(nx * ny * nz);
    for k in 0..nz {
        for j in 0..ny {
            let row = padded[0] * (j + padded[1] * k);
            v.extend(band[row..row + nx].iter().map(|x| x.to_f32()));
        }
    }
    image
        .with_data(v)
        .map_err(|e| FilterError::Internal(e.to_string()))
}

/// One level of `swtn` over axes `i`, `j`, `k`: the 8 sub-bands in PyWavelets' dict order,
/// named with `L`/`H` (first letter = `i`), the approximation `LLL` first. Each input is
/// released once both of its filtered copies exist.
fn swt3<T: Real>(data: Vec<T>, dims: [usize; 3], lo: &[T], hi: &[T]) -> Vec<(String, Vec<T>)> {
    let mut coeffs: Vec<(String, Vec<T>)> = vec![(String::new(), data)];
    for axis in 0..3 {
        let plan = Plan::new(dims[axis], lo.len());
        let mut next = Vec::with_capacity(coeffs.len() * 2);
        for (name, x) in coeffs {
            let a = filter_axis(&x, dims, axis, lo, &plan);
            let d = filter_axis(&x, dims, axis, hi, &plan);
            next.push((format!("{name}L"), a));
            next.push((format!("{name}H"), d));
        }
        coeffs = next;
    }
    coeffs
}

/// The terms of PyWavelets' periodic convolution (`downsampling_convolution_periodization`,
/// step 1) for a signal of `n` samples and a filter of `nf` taps: for every output sample,
/// the (filter tap, signal sample) pairs in the order its four loops add them (left overhang,
/// interior, filter longer than the signal, right overhang). Applying a plan to one line, or to
/// many lines side by side, performs exactly PyWavelets' operations for each line.
struct Plan {
    /// `terms[starts[o]..starts[o + 1]]` are output `o`'s terms.
    starts: Vec<usize>,
    terms: Vec<(usize, usize)>,
}

/// Output sample `i`'s terms past the end of the signal, wrapped to its start (taps `0..`
/// while `i - tap >= n`), in PyWavelets' order; returns the first tap left.
fn wrap_to_start(terms: &mut Vec<(usize, usize)>, n: usize, i: usize) -> usize {
    let mut j = 0;
    while i - j >= n {
        let mut k = 0;
        while k < n && i - j >= n {
            terms.push((i - n - j, k));
            k += 1;
            j += 1;
        }
    }
    j
}

/// Taps `j..nf` before the start of the signal, wrapped to its end (signal samples `n - 1`,
/// `n - 2`, …, repeating when the filter is longer than the signal), in PyWavelets' order.
fn wrap_to_end(terms: &mut Vec<(usize, usize)>, n: usize, nf: usize, mut j: usize) {
    while j < nf {
        let mut k = 0;
        while k < n && j < nf {
            terms.push((j, n - 1 - k));
            k += 1;
            j += 1;
        }
    }
}

impl Plan {
    fn new(n: usize, nf: usize) -> Plan {
        let mut starts = vec![0];
        let mut terms = Vec::new();
        let mut end = |terms: &Vec<(usize, usize)>| starts.push(terms.len());
        let mut i = nf / 2;
        // Left overhang: j = 0..=i direct, then wrap to the end of the signal.
        while i < nf && i < n {
            let mut j = 0;
            while j <= i {
                terms.push((j, i - j));
                j += 1;
            }
            wrap_to_end(&mut terms, n, nf, j);
            end(&terms);
            i += 1;
        }
        // Interior.
        while i < n {
            for j in 0..nf {
                terms.push((j, i - j));
            }
            end(&terms);
            i += 1;
        }
        // Filter longer than the signal: wraps on both sides.
        while i < nf && i < n + nf / 2 {
            let mut j = wrap_to_start(&mut terms, n, i);
            while j <= i {
                terms.push((j, i - j));
                j += 1;
            }
            wrap_to_end(&mut terms, n, nf, j);
            end(&terms);
            i += 1;
        }
        // Right overhang.
        while i < n + nf / 2 {
            let mut j = wrap_to_start(&mut terms, n, i);
            while j < nf {
                terms.push((j, i - j));
                j += 1;
            }
            end(&terms);
            i += 1;
        }
        Plan { starts, terms }
    }

    /// Output sample `o`'s terms.
    fn of(&self, o: usize) -> &[(usize, usize)] {
        &self.terms[self.starts[o]..self.starts[o + 1]]
    }

    /// Filters `w` lines side by side: sample `k` of line `j` at `x[k * w + j]`.
    fn apply<T: Real>(&self, x: &[T], f: &[T], w: usize, out: &mut [T]) {
        if w == 1 {
            for (o, r) in out.iter_mut().enumerate() {
                let mut sum = T::ZERO;
                for &(fj, xi) in self.of(o) {
                    sum = sum + f[fj] * x[xi];
                }
                *r = sum;
            }
            return;
        }
        for (o, row) in out.chunks_mut(w).enumerate() {
            row.fill(T::ZERO);
            for &(fj, xi) in self.of(o) {
                let (c, src) = (f[fj], &x[xi * w..(xi + 1) * w]);
                for (r, &v) in row.iter_mut().zip(src) {
                    *r = *r + c * v;
                }
            }
        }
    }
}

/// Filters every line along `axis` with PyWavelets' periodic convolution. Along `y` and `z`
/// the lines of a slab (or of the volume) are filtered side by side, rows of samples at a
/// time; along `x` line by line. Slabs run in parallel.
fn filter_axis<T: Real>(x: &[T], dims: [usize; 3], axis: usize, f: &[T], plan: &Plan) -> Vec<T> {
    let [nx, ny, _] = dims;
    let plane = nx * ny;
    let mut out = vec![T::ZERO; x.len()];
    if plane == 0 {
        return out;
    }
    match axis {
        0 => out
            .par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .for_each(|(o, slab)| {
                for (orow, line) in o.chunks_mut(nx).zip(slab.chunks(nx)) {
                    plan.apply(line, f, 1, orow);
                }
            }),
        1 => out
            .par_chunks_mut(plane)
            .zip(x.par_chunks(plane))
            .for_each(|(o, slab)| plan.apply(slab, f, nx, o)),
        _ => out.par_chunks_mut(plane).enumerate().for_each(|(k, o)| {
            o.fill(T::ZERO);
            for &(fj, zi) in plan.of(k) {
                let (c, src) = (f[fj], &x[zi * plane..(zi + 1) * plane]);
                for (r, &v) in o.iter_mut().zip(src) {
                    *r = *r + c * v;
                }
            }
        }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impulse_response_is_the_filter_shifted() {
        let f = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        for n in [2usize, 4, 6, 8, 12] {
            let mut x = vec![0.0f64; n];
            x[0] = 1.0;
            let mut out = vec![0.0; n];
            Plan::new(n, f.len()).apply(&x, &f, 1, &mut out);
            for o in 0..n {
                let want: f64 = (0..6)
                    .filter(|&j| (o + 3 + n * 6 - j) % n == 0)
                    .map(|j| f[j])
                    .sum();
                assert_eq!(out[o], want, "n={n} o={o}");
            }
        }
    }
}
