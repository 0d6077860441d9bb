//! The seeds' statistics, each matched against R (glm, glmnet, pROC, psych) by the parity tests
//! in `tests/stats_parity.rs`:
//!
//! * [`roc`]: ROC curve, AUC (ties count ½), DeLong variance, CI and paired test, stratified
//!   bootstrap CI, Youden operating point and the confusion-matrix metrics at a threshold.
//! * [`logistic`]: logistic regression by IRLS exactly as R's `glm` iterates it, Wald SE, z, p,
//!   odds ratios; Platt recalibration.
//! * [`lasso`]: LASSO logistic regression with glmnet's standardisation, lambda path and K-fold
//!   cross-validation on the binomial deviance (`lambda.min`, `lambda.1se`).
//! * [`calibration`]: Hosmer-Lemeshow, calibration slope and intercept, Brier score, decision
//!   curves.
//! * [`agreement`]: ICC (six Shrout–Fleiss forms, as psych), Pearson, Spearman, NRI.
//!
//! Why a hand-written port rather than a binding: the box has no R, and every number here must
//! be reproducible bit for bit — every reduction runs in a fixed sequential order.

pub mod agreement;
pub mod calibration;
pub mod lasso;
pub mod linalg;
pub mod logistic;
pub mod plots;
pub mod report;
pub mod rng;
pub mod roc;
pub mod table;

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

use crate::error::{Classify, ErrorKind};

/// What can go wrong in a statistic.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The inputs cannot give the statistic (too few cases, one class only, lengths differ).
    #[error("{what}: {problem}")]
    BadInput {
        /// Which statistic.
        what: &'static str,
        /// What is wrong with its input.
        problem: String,
    },
    /// A fit did not converge or its design is singular.
    #[error("{what}: {problem}")]
    Fit {
        /// Which fit.
        what: &'static str,
        /// What happened.
        problem: String,
    },
}

impl Classify for StatsError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
    fn hint(&self) -> Option<String> {
        Some(match self {
            StatsError::BadInput { .. } => {
                "check the labels (0/1, both classes present) and that every score is a number"
                    .into()
            }
            StatsError::Fit { .. } => {
                "the data separate perfectly or a variable is constant or collinear; drop it or add cases"
                    .into()
            }
        })
    }
}

pub(crate) fn bad(what: &'static str, problem: impl Into<String>) -> StatsError {
    StatsError::BadInput {
        what,
        problem: problem.into(),
    }
}

/// Standard normal CDF.
pub fn pnorm(x: f64) -> f64 {
    std_normal().cdf(x)
}

/// Standard normal quantile.
pub fn qnorm(p: f64) -> f64 {
    std_normal().inverse_cdf(p)
}

/// Upper tail of the chi-square distribution with `df` degrees of freedom.
pub fn pchisq_upper(x: f64, df: f64) -> f64 {
    match ChiSquared::new(df) {
        Ok(c) => c.sf(x),
        Err(_) => f64::NAN,
    }
}

fn std_normal() -> Normal {
    Normal::standard()
}

/// Two-sided p-value of a standard-normal statistic.
pub fn two_sided_p(z: f64) -> f64 {
    2.0 * pnorm(-z.abs())
}

/// Checks that labels are 0/1 and that the lengths agree.
pub(crate) fn check_binary(what: &'static str, y: &[f64], n: usize) -> Result<(), StatsError> {
    if y.len() != n {
        return Err(bad(what, format!("{} labels for {} values", y.len(), n)));
    }
    if let Some(v) = y.iter().find(|&&v| v != 0.0 && v != 1.0) {
        return Err(bad(what, format!("label {v} is not 0 or 1")));
    }
    Ok(())
}

/// Sample quantile of sorted data, R's default type 7, computed as R's `quantile.default` does
/// (`(1 − h)·x[lo] + h·x[hi]`), so the breaks agree bit for bit.
pub fn quantile_type7(sorted: &[f64], prob: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let index = 1.0 + (n - 1) as f64 * prob;
    let lo = index.floor();
    let hi = index.ceil();
    let (l, h) = ((lo as usize).clamp(1, n) - 1, (hi as usize).clamp(1, n) - 1);
    let qs = sorted[l];
    if index > lo && sorted[h] != qs {
        let w = index - lo;
        (1.0 - w) * qs + w * sorted[h]
    } else {
        qs
    }
}

/// Mean in index order.
pub fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}
