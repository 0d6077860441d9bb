//! Agreement and association: intraclass correlation (the six Shrout–Fleiss forms from the
//! two-way ANOVA, as `psych::ICC`), Pearson and Spearman correlation, and the net
//! reclassification improvement (categorical with event and non-event parts, and continuous).

use serde::{Deserialize, Serialize};

use super::roc::midranks;
use super::{bad, check_binary, StatsError};

/// The six ICC forms and the mean squares they come from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[allow(non_snake_case)]
pub struct Icc {
    /// Single rater, one-way random (absolute agreement).
    pub ICC1: f64,
    /// Single rater, two-way random, absolute agreement.
    pub ICC2: f64,
    /// Single rater, two-way mixed, consistency.
    pub ICC3: f64,
    /// Mean of k raters, one-way random.
    pub ICC1k: f64,
    /// Mean of k raters, two-way random.
    pub ICC2k: f64,
    /// Mean of k raters, two-way mixed.
    pub ICC3k: f64,
    /// Between-subjects mean square.
    pub msb: f64,
    /// Within-subjects mean square.
    pub msw: f64,
    /// Between-raters mean square.
    pub msj: f64,
    /// Residual mean square.
    pub mse: f64,
    /// Subjects.
    pub n: usize,
    /// Raters.
    pub k: usize,
}

/// ICC of `ratings[subject][rater]` (every subject rated by every rater).
pub fn icc(ratings: &[Vec<f64>]) -> Result<Icc, StatsError> {
    let n = ratings.len();
    let k = ratings.first().map_or(0, Vec::len);
    if n < 2 || k < 2 {
        return Err(bad(
            "ICC",
            format!("needs ≥ 2 subjects and ≥ 2 raters, got {n}×{k}"),
        ));
    }
    if ratings.iter().any(|r| r.len() != k) {
        return Err(bad("ICC", "every subject needs the same number of ratings"));
    }
    if ratings.iter().flatten().any(|v| !v.is_finite()) {
        return Err(bad("ICC", "a rating is not a finite number"));
    }
    let (nf, kf) = (n as f64, k as f64);
    let mut grand = 0.0;
    for r in ratings {
        for &v in r {
            grand += v;
        }
    }
    grand /= nf * kf;
    let row_means: Vec<f64> = ratings.iter().map(|r| super::mean(r)).collect();
    let col_means: Vec<f64> = (0..k)
        .map(|j| ratings.iter().map(|r| r[j]).sum::<f64>() / nf)
        .collect();
    let mut ss_rows = 0.0;
    for &m in &row_means {
        ss_rows += (m - grand).powi(2);
    }
    ss_rows *= kf;
    let mut ss_cols = 0.0;
    for &m in &col_means {
        ss_cols += (m - grand).powi(2);
    }
    ss_cols *= nf;
    let mut ss_res = 0.0;
    for (i, r) in ratings.iter().enumerate() {
        for (j, &v) in r.iter().enumerate() {
            ss_res += (v - row_means[i] - col_means[j] + grand).powi(2);
        }
    }
    let msb = ss_rows / (nf - 1.0);
    let msj = ss_cols / (kf - 1.0);
    let mse = ss_res / ((nf - 1.0) * (kf - 1.0));
    let msw = (ss_cols + ss_res) / (nf * (kf - 1.0));
    Ok(Icc {
        ICC1: (msb - msw) / (msb + (kf - 1.0) * msw),
        ICC2: (msb - mse) / (msb + (kf - 1.0) * mse + kf * (msj - mse) / nf),
        ICC3: (msb - mse) / (msb + (kf - 1.0) * mse),
        ICC1k: (msb - msw) / msb,
        ICC2k: (msb - mse) / (msb + (msj - mse) / nf),
        ICC3k: (msb - mse) / msb,
        msb,
        msw,
        msj,
        mse,
        n,
        k,
    })
}

/// Pearson correlation (`NaN` when either variable is constant).
pub fn pearson(x: &[f64], y: &[f64]) -> Result<f64, StatsError> {
    if x.len() != y.len() || x.len() < 2 {
        return Err(bad(
            "correlation",
            "needs two variables of equal length ≥ 2",
        ));
    }
    let (mx, my) = (super::mean(x), super::mean(y));
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for i in 0..x.len() {
        let (a, b) = (x[i] - mx, y[i] - my);
        sxy += a * b;
        sxx += a * a;
        syy += b * b;
    }
    Ok(sxy / (sxx.sqrt() * syy.sqrt()))
}

/// Spearman correlation (Pearson on midranks).
pub fn spearman(x: &[f64], y: &[f64]) -> Result<f64, StatsError> {
    if x.len() != y.len() {
        return Err(bad("correlation", "variables differ in length"));
    }
    pearson(&midranks(x), &midranks(y))
}

/// Net reclassification improvement of a new model's probabilities over an old one's.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Nri {
    /// Risk-category cut-offs used for the categorical NRI.
    pub cutoffs: Vec<f64>,
    /// Categorical NRI (events + non-events).
    pub categorical: f64,
    /// P(up | event) − P(down | event) over categories.
    pub events_categorical: f64,
    /// P(down | non-event) − P(up | non-event) over categories.
    pub nonevents_categorical: f64,
    /// Category-free NRI.
    pub continuous: f64,
    /// Events part of the continuous NRI.
    pub events_continuous: f64,
    /// Non-events part of the continuous NRI.
    pub nonevents_continuous: f64,
}

/// NRI of `p_new` over `p_old`; categories are `(−∞, c₁], (c₁, c₂], …` as R's `cut`.
pub fn nri(y: &[f64], p_new: &[f64], p_old: &[f64], cutoffs: &[f64]) -> Result<Nri, StatsError> {
    check_binary("NRI", y, p_new.len())?;
    if p_old.len() != p_new.len() {
        return Err(bad("NRI", "the two predictions differ in length"));
    }
    let cat = |p: f64| cutoffs.partition_point(|&c| c < p);
    let parts = |up: &dyn Fn(usize) -> bool, down: &dyn Fn(usize) -> bool| {
        let (mut ev, mut ne) = (0usize, 0usize);
        let (mut up_e, mut dn_e, mut up_n, mut dn_n) = (0usize, 0usize, 0usize, 0usize);
        for i in 0..y.len() {
            if y[i] == 1.0 {
                ev += 1;
                up_e += usize::from(up(i));
                dn_e += usize::from(down(i));
            } else {
                ne += 1;
                up_n += usize::from(up(i));
                dn_n += usize::from(down(i));
            }
        }
        let e = up_e as f64 / ev as f64 - dn_e as f64 / ev as f64;
        let n = dn_n as f64 / ne as f64 - up_n as f64 / ne as f64;
        (e, n)
    };
    let n_ev = y.iter().filter(|&&v| v == 1.0).count();
    if n_ev == 0 || n_ev == y.len() {
        return Err(bad("NRI", "needs both events and non-events"));
    }
    let (ec, nc) = parts(&|i| cat(p_new[i]) > cat(p_old[i]), &|i| {
        cat(p_new[i]) < cat(p_old[i])
    });
    let (e, n) = parts(&|i| p_new[i] > p_old[i], &|i| p_new[i] < p_old[i]);
    Ok(Nri {
        cutoffs: cutoffs.to_vec(),
        categorical: ec + nc,
        events_categorical: ec,
        nonevents_categorical: nc,
        continuous: e + n,
        events_continuous: e,
        nonevents_continuous: n,
    })
}
