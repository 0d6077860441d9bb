//! LASSO logistic regression as glmnet fits it (`family = "binomial"`, `alpha = 1`), and its
//! K-fold cross-validation as `cv.glmnet(type.measure = "deviance")` scores it.
//!
//! * Predictors are centred and scaled by their population SD (weights 1/n), the penalty acts on
//!   the standardised coefficients and the intercept is unpenalised; coefficients are returned
//!   on the original scale.
//! * The objective is `−loglik/n + λ·Σ|βⱼ|`, minimised for each λ of a decreasing path by
//!   proximal Newton steps (IRLS outer loop, coordinate descent inner loop), each λ warm-started
//!   from the previous solution, cycling over the active set until it stops changing.
//! * The default path is glmnet's: `λ_max` (the smallest λ with every coefficient zero) down to
//!   `λ_max · lambda.min.ratio` (0.01 when n < p, else 1e-4) over `nlambda` log-spaced values,
//!   stopped early when the deviance ratio gains less than 1e-5 or passes 0.999.
//! * Cross-validation refits each fold over the full-data path; the per-case deviance uses
//!   probabilities clamped to `[1e-5, 1 − 1e-5]`; `cvm` and `cvsd` are the fold-size weighted
//!   mean and standard error of the per-fold mean deviances; `lambda.min` is the largest λ with
//!   the smallest `cvm`, `lambda.1se` the largest λ whose `cvm` is within one `cvsd` of it.

use serde::{Deserialize, Serialize};

use super::{bad, check_binary, StatsError};

/// Options of a LASSO fit.
#[derive(Debug, Clone, PartialEq)]
pub struct LassoOptions {
    /// A fixed decreasing lambda grid; `None` computes glmnet's path.
    pub lambda: Option<Vec<f64>>,
    /// Path length when `lambda` is `None`.
    pub nlambda: usize,
    /// Smallest λ as a fraction of `λ_max`; `None` for glmnet's default.
    pub lambda_min_ratio: Option<f64>,
    /// Scale predictors to unit SD before penalising.
    pub standardize: bool,
    /// Convergence threshold on the largest weighted squared coefficient change
    /// (`Σwᵢxᵢⱼ²·Δβⱼ²`), relative to the null deviance per case.
    pub thresh: f64,
}

impl Default for LassoOptions {
    fn default() -> Self {
        LassoOptions {
            lambda: None,
            nlambda: 100,
            lambda_min_ratio: None,
            standardize: true,
            thresh: 1e-10,
        }
    }
}

/// Solutions along a lambda path (original predictor scale).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LassoPath {
    /// λ values, decreasing.
    pub lambda: Vec<f64>,
    /// Intercept at each λ.
    pub intercept: Vec<f64>,
    /// Coefficients at each λ (`beta[l][j]`).
    pub beta: Vec<Vec<f64>>,
    /// Fraction of the null deviance explained at each λ.
    pub dev_ratio: Vec<f64>,
    /// Null deviance.
    pub null_deviance: f64,
    /// Why the path stops before the last requested λ, when coordinate descent did not
    /// converge there (glmnet then returns the solutions for the larger λ values, with a
    /// warning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
}

impl LassoPath {
    /// The probability for one row of predictors at path index `l`.
    pub fn predict(&self, l: usize, row: &[f64]) -> f64 {
        let mut eta = self.intercept[l];
        for (b, v) in self.beta[l].iter().zip(row) {
            eta += b * v;
        }
        1.0 / (1.0 + (-eta).exp())
    }
}

fn sigmoid(eta: f64) -> f64 {
    1.0 / (1.0 + (-eta).exp())
}

fn binom_dev(y: &[f64], eta: &[f64]) -> f64 {
    let mut d = 0.0;
    for i in 0..y.len() {
        let p = sigmoid(eta[i]).clamp(1e-300, 1.0 - 1e-16);
        d -= 2.0 * (y[i] * p.ln() + (1.0 - y[i]) * (1.0 - p).ln());
    }
    d
}

/// Fits the LASSO path of `y ~ columns`.
pub fn lasso_path(
    columns: &[Vec<f64>],
    y: &[f64],
    opts: &LassoOptions,
) -> Result<LassoPath, StatsError> {
    let n = y.len();
    let p = columns.len();
    check_binary("LASSO", y, n)?;
    if p == 0 {
        return Err(bad("LASSO", "no predictors"));
    }
    if columns.iter().any(|c| c.len() != n) {
        return Err(bad("LASSO", "predictors differ in length from the labels"));
    }
    if columns.iter().flatten().any(|v| !v.is_finite()) {
        return Err(bad("LASSO", "a predictor is not a finite number"));
    }
    let ybar = super::mean(y);
    if ybar <= 0.0 || ybar >= 1.0 {
        return Err(bad("LASSO", "needs both classes"));
    }
    let w = 1.0 / n as f64;
    // Standardise (two passes, as glmnet's lstandard1).
    let mut xm = vec![0.0; p];
    let mut xs = vec![1.0; p];
    let mut xt: Vec<Vec<f64>> = Vec::with_capacity(p);
    let mut usable = vec![true; p];
    for j in 0..p {
        let mut m = 0.0;
        for &v in &columns[j] {
            m += w * v;
        }
        xm[j] = m;
        let c: Vec<f64> = columns[j].iter().map(|&v| v - m).collect();
        let mut ss = 0.0;
        for &v in &c {
            ss += w * v * v;
        }
        let sd = ss.sqrt();
        if sd.is_nan() || sd <= 1e-10 * (m.abs() + 1.0) {
            usable[j] = false;
        }
        if opts.standardize && usable[j] {
            xs[j] = sd;
            xt.push(c.iter().map(|&v| v / sd).collect());
        } else {
            xt.push(c);
        }
    }
    let b0_null = (ybar / (1.0 - ybar)).ln();
    let null_eta = vec![b0_null; n];
    let null_dev = binom_dev(y, &null_eta);
    // λ_max on the standardised scale.
    let mut lmax: f64 = 0.0;
    for j in 0..p {
        if usable[j] {
            let mut g = 0.0;
            for i in 0..n {
                g += w * xt[j][i] * (y[i] - ybar);
            }
            lmax = lmax.max(g.abs());
        }
    }
    let (lambdas, user) = match &opts.lambda {
        Some(l) => {
            if l.is_empty() || l.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
                return Err(bad("LASSO", "the lambda grid must be non-negative numbers"));
            }
            if l.windows(2).any(|w| w[1] > w[0]) {
                return Err(bad("LASSO", "the lambda grid must decrease"));
            }
            (l.clone(), true)
        }
        None => {
            let ratio = opts
                .lambda_min_ratio
                .unwrap_or(if n < p { 0.01 } else { 1e-4 });
            let k = opts.nlambda.max(2);
            let step = ratio.ln() / (k - 1) as f64;
            (
                (0..k).map(|i| lmax * (i as f64 * step).exp()).collect(),
                false,
            )
        }
    };
    let mut b0 = b0_null;
    let mut beta = vec![0.0; p];
    let mut eta = null_eta;
    let mut out = LassoPath {
        lambda: Vec::new(),
        intercept: Vec::new(),
        beta: Vec::new(),
        dev_ratio: Vec::new(),
        null_deviance: null_dev,
        stopped: None,
    };
    let thr = opts.thresh * null_dev / n as f64;
    let mut v = vec![0.0; n];
    let mut r = vec![0.0; n];
    let mut xv = vec![0.0; p];
    for (li, &lam) in lambdas.iter().enumerate() {
        let mut outer = 0;
        let mut failed: Option<String> = None;
        loop {
            outer += 1;
            if outer > 200 {
                failed = Some(format!("no convergence at lambda {lam} (path index {li})"));
                break;
            }
            let mut sv = 0.0;
            for i in 0..n {
                let pr = sigmoid(eta[i]).clamp(1e-9, 1.0 - 1e-9);
                v[i] = w * pr * (1.0 - pr);
                r[i] = w * (y[i] - sigmoid(eta[i]));
                sv += v[i];
            }
            for j in 0..p {
                if usable[j] {
                    let mut s = 0.0;
                    for i in 0..n {
                        s += v[i] * xt[j][i] * xt[j][i];
                    }
                    xv[j] = s;
                }
            }
            let beta_start = beta.clone();
            let b0_start = b0;
            // Inner coordinate descent on the quadratic approximation.
            let mut full = true;
            let mut inner = 0;
            loop {
                inner += 1;
                if inner > 100_000 {
                    failed = Some(format!(
                        "coordinate descent did not converge at lambda {lam} (path index {li})"
                    ));
                    break;
                }
                let mut dlx: f64 = 0.0;
                for j in 0..p {
                    if !usable[j] || (!full && beta[j] == 0.0) {
                        continue;
                    }
                    let xj = &xt[j];
                    let mut u = 0.0;
                    for i in 0..n {
                        u += r[i] * xj[i];
                    }
                    u += xv[j] * beta[j];
                    let au = u.abs() - lam;
                    let nb = if au > 0.0 {
                        u.signum() * au / xv[j]
                    } else {
                        0.0
                    };
                    let d = nb - beta[j];
                    if d != 0.0 {
                        beta[j] = nb;
                        for i in 0..n {
                            r[i] -= v[i] * xj[i] * d;
                        }
                        dlx = dlx.max(xv[j] * d * d);
                    }
                }
                let mut sr = 0.0;
                for &ri in &r {
                    sr += ri;
                }
                let d0 = sr / sv;
                if d0 != 0.0 {
                    b0 += d0;
                    for i in 0..n {
                        r[i] -= v[i] * d0;
                    }
                    dlx = dlx.max(sv * d0 * d0);
                }
                if dlx < thr {
                    if full {
                        break;
                    }
                    full = true;
                } else {
                    full = false;
                }
            }
            if failed.is_some() {
                break;
            }
            for i in 0..n {
                let mut e = b0;
                for j in 0..p {
                    if beta[j] != 0.0 {
                        e += xt[j][i] * beta[j];
                    }
                }
                eta[i] = e;
            }
            let mut change = sv * (b0 - b0_start).powi(2);
            for j in 0..p {
                if usable[j] {
                    change = change.max(xv[j] * (beta[j] - beta_start[j]).powi(2));
                }
            }
            if change < thr {
                break;
            }
        }
        if let Some(problem) = failed {
            // glmnet: the solutions for the larger λ values are returned, with a warning.
            if li == 0 {
                return Err(StatsError::Fit {
                    what: "LASSO",
                    problem,
                });
            }
            tracing::warn!("LASSO: {problem}; the path stops at the previous lambda");
            out.stopped = Some(problem);
            break;
        }
        let dev = binom_dev(y, &eta);
        let dr = 1.0 - dev / null_dev;
        let orig: Vec<f64> = (0..p)
            .map(|j| if usable[j] { beta[j] / xs[j] } else { 0.0 })
            .collect();
        let mut int = b0;
        for j in 0..p {
            int -= orig[j] * xm[j];
        }
        out.lambda.push(lam);
        out.intercept.push(int);
        out.beta.push(orig);
        out.dev_ratio.push(dr);
        if !user && li >= 4 {
            let prev = out.dev_ratio[li - 1];
            if dr - prev < 1e-5 * dr || dr > 0.999 {
                break;
            }
        }
    }
    Ok(out)
}

/// Cross-validated LASSO.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LassoCv {
    /// The fit on all cases.
    pub path: LassoPath,
    /// Mean cross-validated deviance per λ.
    pub cvm: Vec<f64>,
    /// Its standard error.
    pub cvsd: Vec<f64>,
    /// λ with the smallest `cvm`.
    pub lambda_min: f64,
    /// Largest λ with `cvm ≤ cvm[min] + cvsd[min]`.
    pub lambda_1se: f64,
    /// Path index of `lambda_min`.
    pub index_min: usize,
    /// Path index of `lambda_1se`.
    pub index_1se: usize,
}

/// The distinct fold ids, ascending (the order in which folds are left out).
pub fn distinct_folds(foldid: &[usize]) -> Vec<usize> {
    let mut folds = foldid.to_vec();
    folds.sort_unstable();
    folds.dedup();
    folds
}

/// The training part without fold `f` — `columns` restricted to its cases, and their `y` —
/// and the indices of the held-out cases, ascending.
pub fn without_fold(
    columns: &[Vec<f64>],
    y: &[f64],
    foldid: &[usize],
    f: usize,
) -> (Vec<Vec<f64>>, Vec<f64>, Vec<usize>) {
    let (test, train): (Vec<usize>, Vec<usize>) = (0..y.len()).partition(|&i| foldid[i] == f);
    let xc = columns
        .iter()
        .map(|c| train.iter().map(|&i| c[i]).collect())
        .collect();
    let yc = train.iter().map(|&i| y[i]).collect();
    (xc, yc, test)
}

/// K-fold cross-validation with the given fold ids (any distinct labels).
pub fn cv_lasso(
    columns: &[Vec<f64>],
    y: &[f64],
    foldid: &[usize],
    opts: &LassoOptions,
) -> Result<LassoCv, StatsError> {
    let n = y.len();
    if foldid.len() != n {
        return Err(bad("LASSO CV", "one fold id per case is needed"));
    }
    let path = lasso_path(columns, y, opts)?;
    let folds = distinct_folds(foldid);
    if folds.len() < 3 {
        return Err(bad("LASSO CV", "needs at least 3 folds"));
    }
    let nl = path.lambda.len();
    let fold_opts = LassoOptions {
        lambda: Some(path.lambda.clone()),
        ..opts.clone()
    };
    let mut fold_means: Vec<Vec<f64>> = Vec::new();
    let mut fold_w: Vec<f64> = Vec::new();
    for &f in &folds {
        let (xc, yc, test) = without_fold(columns, y, foldid, f);
        let fit = lasso_path(&xc, &yc, &fold_opts).map_err(|e| StatsError::Fit {
            what: "LASSO CV",
            problem: format!("fold {f}: {e}"),
        })?;
        let mut means = vec![0.0; nl];
        for l in 0..nl {
            // A fold path that stopped early predicts with its last λ (cv.glmnet).
            let fl = l.min(fit.lambda.len() - 1);
            let mut s = 0.0;
            for &i in &test {
                let row: Vec<f64> = columns.iter().map(|c| c[i]).collect();
                let pr = fit.predict(fl, &row).clamp(1e-5, 1.0 - 1e-5);
                s += -2.0 * (y[i] * pr.ln() + (1.0 - y[i]) * (1.0 - pr).ln());
            }
            means[l] = s / test.len() as f64;
        }
        fold_means.push(means);
        fold_w.push(test.len() as f64);
    }
    let sw: f64 = fold_w.iter().sum();
    let k = folds.len() as f64;
    let mut cvm = vec![0.0; nl];
    let mut cvsd = vec![0.0; nl];
    for l in 0..nl {
        let mut m = 0.0;
        for (fm, &fw) in fold_means.iter().zip(&fold_w) {
            m += fm[l] * fw;
        }
        m /= sw;
        let mut s = 0.0;
        for (fm, &fw) in fold_means.iter().zip(&fold_w) {
            s += (fm[l] - m).powi(2) * fw;
        }
        cvm[l] = m;
        cvsd[l] = (s / sw / (k - 1.0)).sqrt();
    }
    let min = cvm.iter().copied().fold(f64::INFINITY, f64::min);
    // λ decreases along the path, so the first index reaching the minimum is the largest λ.
    let index_min = cvm.iter().position(|&v| v <= min).unwrap_or(0);
    let semin = cvm[index_min] + cvsd[index_min];
    let index_1se = cvm.iter().position(|&v| v <= semin).unwrap_or(index_min);
    Ok(LassoCv {
        lambda_min: path.lambda[index_min],
        lambda_1se: path.lambda[index_1se],
        path,
        cvm,
        cvsd,
        index_min,
        index_1se,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_starts_at_lambda_max_and_warm_starts_down() {
        // y depends on the first of three predictors.
        let n = 60;
        let x0: Vec<f64> = (0..n)
            .map(|i| ((i * 37) % 61) as f64 / 61.0 - 0.5)
            .collect();
        let x1: Vec<f64> = (0..n).map(|i| ((i * 11) % 17) as f64).collect();
        let x2: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin()).collect();
        let y: Vec<f64> = (0..n)
            .map(|i| {
                if x0[i] + 0.2 * x2[i] > 0.0 || i % 9 == 0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let path = lasso_path(&[x0, x1, x2], &y, &LassoOptions::default()).expect("path");
        assert!(
            path.beta[0].iter().all(|&b| b == 0.0),
            "all zero at lambda_max"
        );
        assert!(path.beta[1][0] > 0.0, "x0 enters first");
        assert!(path.lambda.windows(2).all(|w| w[1] < w[0]));
        assert!(path.dev_ratio.windows(2).all(|w| w[1] >= w[0] - 1e-12));
        let again = lasso_path(
            &[path.beta.iter().map(|_| 0.0).take(0).collect::<Vec<f64>>()],
            &[],
            &LassoOptions::default(),
        );
        assert!(again.is_err(), "empty input is an error");
    }
}
