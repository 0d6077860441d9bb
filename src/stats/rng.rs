//! Seeded randomness for folds and bootstrap resamples: ChaCha8 from a `u64` seed, so a seed
//! gives the same folds and the same resamples on every machine and every run.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// A seeded generator.
#[derive(Debug, Clone)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// The generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// Uniform integer in `0..n` (`n > 0`), without modulo bias (rejection sampling).
    pub fn below(&mut self, n: usize) -> usize {
        let n = n as u64;
        if n <= 1 {
            return 0;
        }
        let zone = u64::MAX - (u64::MAX % n) - 1;
        loop {
            let v = self.0.next_u64();
            if v <= zone {
                return (v % n) as usize;
            }
        }
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i + 1);
            v.swap(i, j);
        }
    }
}

/// Fold ids `1..=k` for `n` observations, as `cv.glmnet` makes them
/// (`sample(rep(seq(k), length = n))`) but from this crate's seeded generator.
pub fn fold_ids(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut ids: Vec<usize> = (0..n).map(|i| i % k + 1).collect();
    Rng::new(seed).shuffle(&mut ids);
    ids
}

/// Fold ids stratified by a binary label: each class is dealt round-robin over the folds after
/// a seeded shuffle, so every fold holds both classes whenever a class has at least `k` cases.
pub fn stratified_fold_ids(y: &[f64], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut rng = Rng::new(seed);
    let mut ids = vec![0; y.len()];
    let mut next = 0usize;
    for class in [1.0, 0.0] {
        let mut idx: Vec<usize> = (0..y.len()).filter(|&i| y[i] == class).collect();
        rng.shuffle(&mut idx);
        for i in idx {
            ids[i] = next % k + 1;
            next += 1;
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_seeded_and_balanced() {
        let a = fold_ids(23, 5, 7);
        assert_eq!(a, fold_ids(23, 5, 7));
        assert_ne!(a, fold_ids(23, 5, 8));
        for f in 1..=5 {
            let c = a.iter().filter(|&&x| x == f).count();
            assert!(c == 4 || c == 5, "fold {f} has {c}");
        }
        let y: Vec<f64> = (0..30)
            .map(|i| if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let s = stratified_fold_ids(&y, 5, 1);
        for f in 1..=5 {
            assert_eq!((0..30).filter(|&i| s[i] == f && y[i] == 1.0).count(), 2);
        }
    }
}
