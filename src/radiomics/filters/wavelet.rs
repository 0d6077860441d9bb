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
}

impl Real for f32 {
    const ZERO: Self = 0.0;
    fn from_f32(v: f32) -> Self {
        v
    }
    fn to_f32(self) -> f32 {
        self
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
        data = swt3(&data, padded, lo, hi).swap_remove(0).1;
    }
    let mut out = Vec::new();
    for idx in 1..=spec.level {
        let mut bands = swt3(&data, padded, lo, hi);
        let (_, approx) = bands.remove(0);
        for (name, band) in bands {
            let label = if idx == 1 {
                format!("wavelet-{name}")
            } else {
                format!("wavelet{idx}-{name}")
            };
            out.push((label, crop(image, &band, padded)?));
        }
        data = approx;
    }
    let label = if spec.level == 1 {
        "wavelet-LLL".to_string()
    } else {
        format!("wavelet{}-LLL", spec.level)
    };
    out.push((label, crop(image, &data, padded)?));
    Ok(out)
}

fn crop<T: Real>(image: &Volume, band: &[T], padded: [usize; 3]) -> Result<Volume, FilterError> {
    let [nx, ny, nz] = image.dims();
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
/// named with `L`/`H` (first letter = `i`), the approximation `LLL` first.
fn swt3<T: Real>(data: &[T], dims: [usize; 3], lo: &[T], hi: &[T]) -> Vec<(String, Vec<T>)> {
    let mut coeffs: Vec<(String, Vec<T>)> = vec![(String::new(), data.to_vec())];
    for axis in 0..3 {
        let mut next = Vec::with_capacity(coeffs.len() * 2);
        for (name, x) in coeffs {
            let a = filter_axis(&x, dims, axis, lo);
            let d = filter_axis(&x, dims, axis, hi);
            next.push((format!("{name}L"), a));
            next.push((format!("{name}H"), d));
        }
        coeffs = next;
    }
    coeffs
}

/// Filters every line along `axis` with PyWavelets' periodic convolution.
fn filter_axis<T: Real>(x: &[T], dims: [usize; 3], axis: usize, f: &[T]) -> Vec<T> {
    let [nx, ny, nz] = dims;
    let mut out = vec![T::ZERO; x.len()];
    match axis {
        0 => {
            out.par_chunks_mut(nx * ny)
                .zip(x.par_chunks(nx * ny))
                .for_each(|(o, slice)| {
                    for (orow, line) in o.chunks_mut(nx).zip(slice.chunks(nx)) {
                        periodic_convolution(line, f, orow);
                    }
                });
        }
        1 => {
            out.par_chunks_mut(nx * ny)
                .zip(x.par_chunks(nx * ny))
                .for_each(|(o, slice)| {
                    let mut line = vec![T::ZERO; ny];
                    let mut res = vec![T::ZERO; ny];
                    for i in 0..nx {
                        for j in 0..ny {
                            line[j] = slice[i + nx * j];
                        }
                        periodic_convolution(&line, f, &mut res);
                        for j in 0..ny {
                            o[i + nx * j] = res[j];
                        }
                    }
                });
        }
        _ => {
            let plane = nx * ny;
            // Columns along k, in blocks of rows of i so writes stay contiguous per k.
            let cols: Vec<Vec<T>> = (0..plane)
                .into_par_iter()
                .map(|p| {
                    let line: Vec<T> = (0..nz).map(|k| x[p + plane * k]).collect();
                    let mut res = vec![T::ZERO; nz];
                    periodic_convolution(&line, f, &mut res);
                    res
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

/// PyWavelets `downsampling_convolution_periodization` with step 1 (the SWT at level 1):
/// `out[o] = Σ_j f[j] · x[(o + F/2 − j) mod N]`, with the terms added in the order of its four
/// loops (left overhang, interior, filter longer than signal, right overhang).
fn periodic_convolution<T: Real>(x: &[T], f: &[T], out: &mut [T]) {
    let n = x.len();
    let nf = f.len();
    let mut i = nf / 2;
    let mut o = 0;
    // Left overhang: j = 0..=i direct, then wrap to the end of the signal.
    while i < nf && i < n {
        let mut sum = T::ZERO;
        let mut j = 0;
        while j <= i {
            sum = sum + f[j] * x[i - j];
            j += 1;
        }
        while j < nf {
            let mut k = 0;
            while k < n && j < nf {
                sum = sum + f[j] * x[n - 1 - k];
                k += 1;
                j += 1;
            }
        }
        out[o] = sum;
        i += 1;
        o += 1;
    }
    // Interior.
    while i < n {
        let mut sum = T::ZERO;
        for j in 0..nf {
            sum = sum + x[i - j] * f[j];
        }
        out[o] = sum;
        i += 1;
        o += 1;
    }
    // Filter longer than the signal: wraps on both sides.
    while i < nf && i < n + nf / 2 {
        let mut sum = T::ZERO;
        let mut j = 0;
        while i - j >= n {
            let mut k = 0;
            while k < n && i - j >= n {
                sum = sum + f[i - n - j] * x[k];
                k += 1;
                j += 1;
            }
        }
        while j <= i {
            sum = sum + f[j] * x[i - j];
            j += 1;
        }
        while j < nf {
            let mut k = 0;
            while k < n && j < nf {
                sum = sum + f[j] * x[n - 1 - k];
                k += 1;
                j += 1;
            }
        }
        out[o] = sum;
        i += 1;
        o += 1;
    }
    // Right overhang.
    while i < n + nf / 2 {
        let mut sum = T::ZERO;
        let mut j = 0;
        while i - j >= n {
            let mut k = 0;
            while k < n && i - j >= n {
                sum = sum + f[i - n - j] * x[k];
                k += 1;
                j += 1;
            }
        }
        while j < nf {
            sum = sum + f[j] * x[i - j];
            j += 1;
        }
        out[o] = sum;
        i += 1;
        o += 1;
    }
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
            periodic_convolution(&x, &f, &mut out);
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
