//! Logistic regression by iteratively reweighted least squares, iterating exactly as R's
//! `glm.fit` does (start `mu = (y + ½)/2`, convergence `|dev − dev_old| / (|dev| + 0.1) < 1e-8`,
//! at most 25 iterations, R's clamped logit link), so coefficients and Wald standard errors
//! agree with `summary(glm(..., family = binomial))`.

use serde::{Deserialize, Serialize};

use super::linalg::{cholesky, cholesky_inverse, cholesky_solve};
use super::{bad, qnorm, two_sided_p, StatsError};

const EPS: f64 = f64::EPSILON;

/// R's `binomial()$linkinv` (clamped at ±(−log ε)).
pub fn logit_inv(eta: f64) -> f64 {
    let thresh = -EPS.ln();
    if eta < -thresh {
        EPS
    } else if eta > thresh {
        1.0 - EPS
    } else {
        let e = eta.exp();
        e / (1.0 + e)
    }
}

fn mu_eta(eta: f64) -> f64 {
    let thresh = -EPS.ln();
    if eta > thresh || eta < -thresh {
        EPS
    } else {
        let op = 1.0 + eta.exp();
        eta.exp() / (op * op)
    }
}

/// `log(p / (1 − p))`.
pub fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

/// Binomial deviance of one observation (`y` in `[0, 1]`).
pub fn dev_resid(y: f64, mu: f64) -> f64 {
    let ylogy = |a: f64, b: f64| if a > 0.0 { a * (a / b).ln() } else { 0.0 };
    2.0 * (ylogy(y, mu) + ylogy(1.0 - y, 1.0 - mu))
}

/// A fitted logistic model with Wald inference.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogisticFit {
    /// Term names, `(Intercept)` first when fitted.
    pub terms: Vec<String>,
    /// Coefficients (log odds ratios).
    pub coef: Vec<f64>,
    /// Wald standard errors.
    pub se: Vec<f64>,
    /// `coef / se`.
    pub z: Vec<f64>,
    /// Two-sided Wald p-values.
    pub p: Vec<f64>,
    /// Residual deviance.
    pub deviance: f64,
    /// AIC (`deviance + 2k` for 0/1 outcomes).
    pub aic: f64,
    /// IRLS iterations used.
    pub iterations: usize,
    /// Whether the deviance criterion was met within 25 iterations (false: separation).
    pub converged: bool,
    /// Unscaled covariance matrix of the coefficients, row-major.
    pub covariance: Vec<f64>,
}

impl LogisticFit {
    /// Odds ratio and its Wald CI at `level` for every term.
    pub fn odds_ratios(&self, level: f64) -> Vec<(f64, f64, f64)> {
        let z = qnorm(1.0 - (1.0 - level) / 2.0);
        (0..self.coef.len())
            .map(|i| {
                let (b, s) = (self.coef[i], self.se[i]);
                (b.exp(), (b - z * s).exp(), (b + z * s).exp())
            })
            .collect()
    }

    /// The linear predictor of one row of predictors (without intercept, in term order).
    pub fn linear_predictor(&self, row: &[f64]) -> f64 {
        let has_int = self.terms.first().is_some_and(|t| t == "(Intercept)");
        let mut eta = if has_int { self.coef[0] } else { 0.0 };
        let off = usize::from(has_int);
        for (j, v) in row.iter().enumerate() {
            eta += self.coef[j + off] * v;
        }
        eta
    }
}

/// Fits `y ~ [1 +] columns [+ offset(offset)]` by IRLS.
///
/// `columns` are the predictors (one `Vec` per variable), `names` their term names.
pub fn fit_logistic(
    columns: &[Vec<f64>],
    names: &[String],
    y: &[f64],
    offset: Option<&[f64]>,
    intercept: bool,
) -> Result<LogisticFit, StatsError> {
    let n = y.len();
    if names.len() != columns.len() {
        return Err(bad(
            "logistic regression",
            "names and columns differ in number",
        ));
    }
    if columns.iter().any(|c| c.len() != n) || offset.is_some_and(|o| o.len() != n) {
        return Err(bad(
            "logistic regression",
            "columns differ in length from y",
        ));
    }
    if let Some(v) = y.iter().find(|v| !(0.0..=1.0).contains(*v)) {
        return Err(bad(
            "logistic regression",
            format!("outcome {v} is outside 0..1"),
        ));
    }
    if columns.iter().flatten().any(|v| !v.is_finite()) {
        return Err(bad(
            "logistic regression",
            "a predictor is not a finite number",
        ));
    }
    let mut x: Vec<&[f64]> = Vec::new();
    let ones = vec![1.0; n];
    let mut terms = Vec::new();
    if intercept {
        x.push(&ones);
        terms.push("(Intercept)".to_string());
    }
    for (c, name) in columns.iter().zip(names) {
        x.push(c);
        terms.push(name.clone());
    }
    let k = x.len();
    if n <= k {
        return Err(bad(
            "logistic regression",
            format!("{n} observations for {k} coefficients"),
        ));
    }
    let off = |i: usize| offset.map_or(0.0, |o| o[i]);
    let mut mu: Vec<f64> = y.iter().map(|&v| (v + 0.5) / 2.0).collect();
    let mut eta: Vec<f64> = mu.iter().map(|&m| logit(m)).collect();
    let mut dev_old: f64 = (0..n).map(|i| dev_resid(y[i], mu[i])).sum();
    let mut coef = vec![0.0; k];
    let mut chol = Vec::new();
    let mut converged = false;
    let mut iterations = 0;
    let mut dev = dev_old;
    if k == 0 {
        // Offset only: nothing to fit.
        mu = (0..n).map(|i| logit_inv(off(i))).collect();
        dev = (0..n).map(|i| dev_resid(y[i], mu[i])).sum();
        converged = true;
    }
    while k > 0 && iterations < 25 {
        iterations += 1;
        let mut xtwx = vec![0.0; k * k];
        let mut xtwz = vec![0.0; k];
        for i in 0..n {
            let me = mu_eta(eta[i]);
            let var = mu[i] * (1.0 - mu[i]);
            let z = (eta[i] - off(i)) + (y[i] - mu[i]) / me;
            let w = me * me / var;
            for a in 0..k {
                let wa = w * x[a][i];
                xtwz[a] += wa * z;
                for b in 0..=a {
                    xtwx[a * k + b] += wa * x[b][i];
                }
            }
        }
        for a in 0..k {
            for b in 0..a {
                xtwx[b * k + a] = xtwx[a * k + b];
            }
        }
        chol = cholesky(&xtwx, k).ok_or_else(|| StatsError::Fit {
            what: "logistic regression",
            problem: "the design matrix is singular (a constant or collinear predictor)".into(),
        })?;
        coef = cholesky_solve(&chol, k, &xtwz);
        for i in 0..n {
            let mut e = off(i);
            for a in 0..k {
                e += x[a][i] * coef[a];
            }
            eta[i] = e;
            mu[i] = logit_inv(e);
        }
        dev = (0..n).map(|i| dev_resid(y[i], mu[i])).sum();
        if !dev.is_finite() {
            return Err(StatsError::Fit {
                what: "logistic regression",
                problem: "the deviance is not finite".into(),
            });
        }
        if (dev - dev_old).abs() / (dev.abs() + 0.1) < 1e-8 {
            converged = true;
            break;
        }
        dev_old = dev;
    }
    let covariance = if k > 0 {
        cholesky_inverse(&chol, k)
    } else {
        Vec::new()
    };
    let se: Vec<f64> = (0..k).map(|a| covariance[a * k + a].sqrt()).collect();
    let z: Vec<f64> = (0..k).map(|a| coef[a] / se[a]).collect();
    let p = z.iter().map(|&v| two_sided_p(v)).collect();
    Ok(LogisticFit {
        terms,
        coef,
        se,
        z,
        p,
        deviance: dev,
        aic: dev + 2.0 * k as f64,
        iterations,
        converged,
        covariance,
    })
}

/// Platt recalibration `p = 1 / (1 + exp(−(a + b·score)))`, fitted by maximum likelihood.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Platt {
    /// Intercept.
    pub a: f64,
    /// Slope on the raw score.
    pub b: f64,
}

impl Platt {
    /// Fits the recalibration on labelled scores.
    pub fn fit(y: &[f64], score: &[f64]) -> Result<Platt, StatsError> {
        let f = fit_logistic(&[score.to_vec()], &["score".to_string()], y, None, true)?;
        Ok(Platt {
            a: f.coef[0],
            b: f.coef[1],
        })
    }

    /// The recalibrated probability of a score.
    pub fn apply(&self, score: f64) -> f64 {
        logit_inv(self.a + self.b * score)
    }
}
