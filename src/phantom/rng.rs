//! The one random source of the phantom: ChaCha8 with an explicit seed, stream and word
//! position, so every number is the same on every machine and for any thread count.
//!
//! Streams: case `k` of a cohort uses streams `k · 16 + purpose` (see [`Purpose`]); noise of
//! one volume is drawn slice by slice from word position `slice · 2⁴⁰`, so slices can be
//! filled in parallel without sharing a generator. Uniforms take the top 53 bits of a `u64`;
//! normals use Marsaglia's polar method with `libm::log` (no platform maths library).

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// What a stream of a case is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Latent labels, clinical variables, anatomy, tumour and scanner parameters.
    Spec,
    /// Noise of one sequence (index 0..6 in [`super::signal::SEQUENCES`] order).
    Noise(usize),
}

impl Purpose {
    fn code(self) -> u64 {
        match self {
            Purpose::Spec => 0,
            Purpose::Noise(s) => 1 + s as u64,
        }
    }
}

/// A portable random generator.
#[derive(Debug, Clone)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// The generator of `purpose` for case `case` of the cohort with seed `seed`.
    pub fn for_case(seed: u64, case: u64, purpose: Purpose) -> Rng {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(case.wrapping_mul(16).wrapping_add(purpose.code()));
        Rng(r)
    }

    /// The same generator moved to the start of slice `slice`'s block of words.
    pub fn at_slice(&self, slice: usize) -> Rng {
        let mut r = self.0.clone();
        r.set_word_pos((slice as u128) << 40);
        Rng(r)
    }

    /// Uniform in `[0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * libm::log(s) / s).sqrt();
            }
        }
    }

    /// Two independent standard normals (one polar-method draw).
    pub fn normal_pair(&mut self) -> (f64, f64) {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * libm::log(s) / s).sqrt();
                return (u * f, v * f);
            }
        }
    }

    /// Normal with mean and standard deviation.
    pub fn gauss(&mut self, mean: f64, sd: f64) -> f64 {
        mean + sd * self.normal()
    }

    /// An index in `0..weights.len()` drawn with the given (non-negative) weights.
    pub fn pick(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.uniform() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

/// Logistic function.
pub fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + libm::exp(-x))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let a: Vec<u64> = {
            let mut r = Rng::for_case(7, 3, Purpose::Spec);
            (0..4).map(|_| r.0.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::for_case(7, 3, Purpose::Spec);
            (0..4).map(|_| r.0.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::for_case(7, 4, Purpose::Spec);
            (0..4).map(|_| r.0.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mut r = Rng::for_case(1, 0, Purpose::Noise(2));
        let n = 20_000;
        let xs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "var {var}");
    }
}
