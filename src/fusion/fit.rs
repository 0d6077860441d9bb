//! Fitting a task from a feature table, no imaging needed — seed 001's chain:
//!
//! 1. **Reproducibility**: ICC (form chosen in [`FitConfig`], default ICC(2,1)) of every
//!    feature between the original ROI and the perturbed ROIs (1-voxel eroded and dilated);
//!    features below `icc_min` (0.75) are dropped.
//! 2. **Redundancy**: features are ranked by univariable discrimination (|AUC − ½|, ties by
//!    name) and kept greedily unless |Pearson r| > `max_abs_r` (0.9) with one already kept.
//! 3. **LASSO-CV** per signature (features grouped by name prefix): glmnet-style path and
//!    K-fold CV with folds stratified by the label from a seed; the coefficients at
//!    `lambda.min` (or `lambda.1se`) make the signature.
//! 4. **Nomogram**: univariable logistic regression of every signature score and clinical
//!    variable; those with p < `p_enter` go into a multivariable logistic model, whose
//!    Youden-optimal probability is the threshold. Signatures enter with their *out-of-fold*
//!    scores (each case scored by the LASSO fitted without its CV fold, same λ), so a
//!    signature that fits its training cases better than new ones is not over-weighted; a
//!    signature whose coefficient is not positive (alone, or beside the other variables) is
//!    left out, with the reason in [`Univariable::removed`]. The stored means and ranges are
//!    those of the signature as applied to the training cases.
//!
//! Every step is deterministic for a given seed.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::{assess, Assessment, Nomogram, Signature, Source, Variable};
use crate::error::{Classify, ErrorKind};
use crate::stats::agreement::icc;
use crate::stats::lasso::{cv_lasso, distinct_folds, lasso_path, without_fold, LassoOptions};
use crate::stats::logistic::{fit_logistic, LogisticFit};
use crate::stats::report::{Excluded, ScoreInput};
use crate::stats::rng::stratified_fold_ids;
use crate::stats::roc::{auc, youden};
use crate::stats::StatsError;

/// A fitting failure.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    /// The inputs are inconsistent or insufficient.
    #[error("fit {task}: {problem}")]
    Input {
        /// Task.
        task: String,
        /// What is wrong.
        problem: String,
    },
    /// A statistic failed.
    #[error("fit {task}: {source}")]
    Stats {
        /// Task.
        task: String,
        /// Cause.
        source: StatsError,
    },
}

impl Classify for FitError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::BadInput
    }
    fn hint(&self) -> Option<String> {
        Some("check the labels, that both classes are present and that features are numbers".into())
    }
}

/// Feature values of a cohort: `values[feature][case]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureTable {
    /// Case ids (row order of every column).
    pub case_ids: Vec<String>,
    /// Feature names.
    pub names: Vec<String>,
    /// Columns.
    pub values: Vec<Vec<f64>>,
    /// The same features from perturbed ROIs (e.g. eroded, dilated), same cases and names
    /// (a feature missing there is kept without an ICC); empty: no ICC filter.
    pub perturbed: Vec<FeatureTable>,
}

impl FeatureTable {
    fn column(&self, name: &str) -> Option<&Vec<f64>> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|j| &self.values[j])
    }
}

/// Clinical variables of a cohort: `values[variable][case]`, `None` when unknown.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ClinicalTable {
    /// Variable names (as `Clinical::numeric` names them).
    pub names: Vec<String>,
    /// Columns.
    pub values: Vec<Vec<Option<f64>>>,
}

/// Which signature a feature goes into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureSpec {
    /// Signature name (`rad_score`, `dl_score`).
    pub name: String,
    /// A feature belongs to it when its name starts with one of these.
    pub prefixes: Vec<String>,
}

/// Which ICC form the reproducibility filter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IccForm {
    /// ICC(1,1).
    Icc1,
    /// ICC(2,1), two-way random, absolute agreement.
    Icc2,
    /// ICC(3,1), two-way mixed, consistency.
    Icc3,
}

/// Settings of the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    /// Task key.
    pub task: String,
    /// Signatures to build.
    pub signatures: Vec<SignatureSpec>,
    /// Clinical variables offered to the nomogram.
    pub clinical: Vec<String>,
    /// ICC form.
    pub icc_form: IccForm,
    /// Minimum ICC.
    pub icc_min: f64,
    /// Redundancy threshold on |r|.
    pub max_abs_r: f64,
    /// CV folds.
    pub folds: usize,
    /// Seed of the folds.
    pub seed: u64,
    /// Use `lambda.1se` instead of `lambda.min`.
    pub use_1se: bool,
    /// Univariable p-value to enter the nomogram.
    pub p_enter: f64,
}

impl FitConfig {
    /// Seed 001's settings for a task with a rad-score (prefix `rad:`), a DL-score (prefix
    /// `dl:`) and the given clinical variables.
    pub fn seed001(task: &str, clinical: &[&str], seed: u64) -> FitConfig {
        FitConfig {
            task: task.to_string(),
            signatures: vec![
                SignatureSpec {
                    name: "rad_score".into(),
                    prefixes: vec!["rad:".into()],
                },
                SignatureSpec {
                    name: "dl_score".into(),
                    prefixes: vec!["dl:".into()],
                },
            ],
            clinical: clinical.iter().map(|s| s.to_string()).collect(),
            icc_form: IccForm::Icc2,
            icc_min: 0.75,
            max_abs_r: 0.9,
            folds: 10,
            seed,
            use_1se: false,
            p_enter: 0.05,
        }
    }
}

/// The LASSO step of one signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignatureFit {
    /// Signature name.
    pub name: String,
    /// Features offered (after ICC and redundancy filters).
    pub candidates: usize,
    /// `lambda.min`.
    pub lambda_min: f64,
    /// `lambda.1se`.
    pub lambda_1se: f64,
    /// The λ used.
    pub lambda: f64,
    /// CV deviance at the λ used.
    pub cv_deviance: f64,
    /// Training AUC of the score.
    pub training_auc: f64,
    /// The signature.
    pub signature: Signature,
    /// Set when the LASSO path stopped early (coordinate descent did not converge at a small
    /// λ; the solutions for the larger λ values are used, as glmnet does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_note: Option<String>,
}

/// One univariable screen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Univariable {
    /// Variable.
    pub name: String,
    /// Cases with a value.
    pub n: usize,
    /// Log odds ratio.
    pub coefficient: f64,
    /// Odds ratio.
    pub odds_ratio: f64,
    /// Wald p.
    pub p: f64,
    /// Entered the multivariable model (and stayed in it).
    pub entered: bool,
    /// Why a variable that passed the screen was taken out of the multivariable model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<String>,
}

/// What the chain did and what it produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Task.
    pub task: String,
    /// Cases used.
    pub n: usize,
    /// Positive cases.
    pub n_positive: usize,
    /// Features in the table.
    pub features_in: usize,
    /// Features with ICC ≥ minimum (or without perturbed values).
    pub features_reproducible: usize,
    /// Features dropped by the ICC filter, with their ICC.
    pub icc_dropped: Vec<(String, f64)>,
    /// Features left after the redundancy filter.
    pub features_non_redundant: usize,
    /// The signatures.
    pub signatures: Vec<SignatureFit>,
    /// The univariable screen.
    pub univariable: Vec<Univariable>,
    /// The multivariable model.
    pub multivariable: LogisticFit,
    /// Training AUC of the nomogram.
    pub training_auc: f64,
    /// The nomogram (with its signatures).
    pub nomogram: Nomogram,
    /// The clinical-only model (the clinical variables that entered), for the validation
    /// table; `None` when no clinical variable entered.
    pub clinical_model: Option<Nomogram>,
}

/// Runs the chain on one task. `labels` are 0/1 in the table's case order.
pub fn fit_task(
    table: &FeatureTable,
    labels: &[f64],
    clinical: &ClinicalTable,
    cfg: &FitConfig,
) -> Result<FitReport, FitError> {
    let task = cfg.task.clone();
    let input = |problem: String| FitError::Input {
        task: task.clone(),
        problem,
    };
    let st = |source: StatsError| FitError::Stats {
        task: task.clone(),
        source,
    };
    let n = table.case_ids.len();
    if labels.len() != n || table.values.iter().any(|c| c.len() != n) {
        return Err(input("labels and feature columns differ in length".into()));
    }
    if table.names.len() != table.values.len() {
        return Err(input("feature names and columns differ in number".into()));
    }
    if clinical.values.iter().any(|c| c.len() != n) || clinical.names.len() != clinical.values.len()
    {
        return Err(input(
            "clinical columns differ in length from the cases".into(),
        ));
    }
    if let Some(j) =
        (0..table.values.len()).find(|&j| table.values[j].iter().any(|v| !v.is_finite()))
    {
        return Err(input(format!(
            "feature {} has a value that is not a number",
            table.names[j]
        )));
    }
    for p in &table.perturbed {
        if p.case_ids != table.case_ids {
            return Err(input("a perturbed table lists other cases".into()));
        }
    }
    crate::stats::check_binary("fit", labels, n).map_err(st)?;

    // 1. ICC filter.
    let mut icc_dropped = Vec::new();
    let mut keep: Vec<usize> = Vec::new();
    for (j, name) in table.names.iter().enumerate() {
        let others: Vec<&Vec<f64>> = table
            .perturbed
            .iter()
            .filter_map(|p| p.column(name))
            .collect();
        if others.len() != table.perturbed.len() || others.is_empty() {
            keep.push(j);
            continue;
        }
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let mut r = vec![table.values[j][i]];
                r.extend(others.iter().map(|c| c[i]));
                r
            })
            .collect();
        let v = icc(&rows).map_err(st)?;
        let value = match cfg.icc_form {
            IccForm::Icc1 => v.ICC1,
            IccForm::Icc2 => v.ICC2,
            IccForm::Icc3 => v.ICC3,
        };
        if value >= cfg.icc_min {
            keep.push(j);
        } else {
            icc_dropped.push((name.clone(), value));
        }
    }
    let features_reproducible = keep.len();

    // 2. Redundancy filter: rank by |AUC − ½|, keep greedily.
    let mut ranked: Vec<(usize, f64)> = Vec::new();
    for &j in &keep {
        let sd_zero = table.values[j].iter().all(|&v| v == table.values[j][0]);
        if sd_zero {
            continue;
        }
        let a = auc(labels, &table.values[j]).map_err(st)?;
        ranked.push((j, (a - 0.5).abs()));
    }
    ranked.sort_by(|a, b| {
        b.1.total_cmp(&a.1)
            .then_with(|| table.names[a.0].cmp(&table.names[b.0]))
    });
    // Unit-norm centred columns: |r| is then one dot product per pair.
    let unit = |j: usize| -> Vec<f64> {
        let c = &table.values[j];
        let m = crate::stats::mean(c);
        let d: Vec<f64> = c.iter().map(|v| v - m).collect();
        let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
        d.into_iter().map(|v| v / norm).collect()
    };
    let mut kept: Vec<usize> = Vec::new();
    let mut kept_unit: Vec<Vec<f64>> = Vec::new();
    for (j, _) in ranked {
        let u = unit(j);
        let redundant = kept_unit.iter().any(|k| {
            let mut r = 0.0;
            for i in 0..n {
                r += u[i] * k[i];
            }
            r.abs() > cfg.max_abs_r
        });
        if !redundant {
            kept.push(j);
            kept_unit.push(u);
        }
    }
    kept.sort_unstable();
    let features_non_redundant = kept.len();

    // 3. LASSO-CV per signature.
    let foldid = stratified_fold_ids(labels, cfg.folds, cfg.seed);
    let mut signatures = Vec::new();
    let mut out_of_fold = Vec::new();
    for spec in &cfg.signatures {
        if let Some((s, oof)) =
            fit_signature(table, &kept, labels, &foldid, spec, cfg.use_1se).map_err(st)?
        {
            signatures.push(s);
            out_of_fold.push(oof);
        }
    }

    // 4. Univariable screen, then the multivariable nomogram on complete cases.
    // Signatures enter with their out-of-fold scores (`values`, what the coefficients are fitted
    // on) and their scores as applied to the training cases (`applied`, for the means and the
    // ranges a new case is checked against).
    struct Candidate {
        name: String,
        source: Source,
        values: Vec<Option<f64>>,
        applied: Vec<Option<f64>>,
    }
    let mut cands: Vec<Candidate> = signatures
        .iter()
        .zip(&out_of_fold)
        .map(|(s, oof)| Candidate {
            name: s.name.clone(),
            source: Source::Signature,
            values: oof.iter().map(|&v| Some(v)).collect(),
            applied: signature_scores(&s.signature, table)
                .into_iter()
                .map(Some)
                .collect(),
        })
        .collect();
    for name in &cfg.clinical {
        let j = clinical
            .names
            .iter()
            .position(|c| c == name)
            .ok_or_else(|| {
                input(format!(
                    "clinical variable {name} is not in the clinical table"
                ))
            })?;
        cands.push(Candidate {
            name: name.clone(),
            source: Source::Clinical,
            values: clinical.values[j].clone(),
            applied: clinical.values[j].clone(),
        });
    }
    if cands.is_empty() {
        return Err(input(
            "no signature could be built and no clinical variable was given".into(),
        ));
    }
    let mut univariable = Vec::new();
    for c in &cands {
        let idx: Vec<usize> = (0..n).filter(|&i| c.values[i].is_some()).collect();
        let x: Vec<f64> = idx
            .iter()
            .map(|&i| c.values[i].unwrap_or_default())
            .collect();
        let y: Vec<f64> = idx.iter().map(|&i| labels[i]).collect();
        let f = fit_logistic(&[x], std::slice::from_ref(&c.name), &y, None, true).map_err(st)?;
        univariable.push(Univariable {
            name: c.name.clone(),
            n: idx.len(),
            coefficient: f.coef[1],
            odds_ratio: f.coef[1].exp(),
            p: f.p[1],
            // A signature rises with the outcome by construction: one that falls with it on
            // out-of-fold scores does not enter.
            entered: f.p[1] < cfg.p_enter && (c.source != Source::Signature || f.coef[1] > 0.0),
            removed: None,
        });
    }
    if !univariable.iter().any(|u| u.entered) {
        // Keep the strongest candidate so the task still has a model; the report shows its p.
        let best = (0..univariable.len())
            .min_by(|&a, &b| univariable[a].p.total_cmp(&univariable[b].p))
            .unwrap_or(0);
        univariable[best].entered = true;
    }
    // The multivariable model; a signature whose coefficient turns non-positive beside the other
    // variables only corrects them (collinearity, e.g. a deep signature that also encodes age)
    // and that does not carry over to new cases: it is taken out and the model refitted.
    let (chosen, complete, cols, names, multi) = loop {
        let chosen: Vec<&Candidate> = cands
            .iter()
            .zip(&univariable)
            .filter(|(_, u)| u.entered)
            .map(|(c, _)| c)
            .collect();
        let complete: Vec<usize> = (0..n)
            .filter(|&i| chosen.iter().all(|c| c.values[i].is_some()))
            .collect();
        let cols: Vec<Vec<f64>> = chosen
            .iter()
            .map(|c| {
                complete
                    .iter()
                    .map(|&i| c.values[i].unwrap_or_default())
                    .collect()
            })
            .collect();
        let names: Vec<String> = chosen.iter().map(|c| c.name.clone()).collect();
        let y: Vec<f64> = complete.iter().map(|&i| labels[i]).collect();
        let multi = fit_logistic(&cols, &names, &y, None, true).map_err(st)?;
        let reversed = chosen
            .iter()
            .enumerate()
            .filter(|(k, c)| c.source == Source::Signature && multi.coef[k + 1] <= 0.0)
            .min_by(|a, b| multi.coef[a.0 + 1].total_cmp(&multi.coef[b.0 + 1]))
            .map(|(k, c)| (c.name.clone(), multi.coef[k + 1]));
        match reversed {
            Some((name, b)) if chosen.len() > 1 => {
                if let Some(u) = univariable.iter_mut().find(|u| u.name == name) {
                    u.entered = false;
                    u.removed = Some(format!(
                        "coefficient {b:.3} beside the other variables (sign reversed); removed"
                    ));
                }
            }
            _ => break (chosen, complete, cols, names, multi),
        }
    };
    let y: Vec<f64> = complete.iter().map(|&i| labels[i]).collect();
    let probs: Vec<f64> = (0..complete.len())
        .map(|i| {
            let row: Vec<f64> = cols.iter().map(|c| c[i]).collect();
            1.0 / (1.0 + (-multi.linear_predictor(&row)).exp())
        })
        .collect();
    let training_auc = auc(&y, &probs).map_err(st)?;
    let n_positive = y.iter().filter(|&&v| v == 1.0).count();
    let threshold = youden(&y, &probs).map_err(st)?.threshold.clamp(0.0, 1.0);
    let variables = chosen
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let col: Vec<f64> = complete
                .iter()
                .map(|&i| c.applied[i].unwrap_or_default())
                .collect();
            let (lo, hi) = col
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            Variable {
                name: c.name.clone(),
                source: c.source.clone(),
                coefficient: multi.coef[k + 1],
                mean: crate::stats::mean(&col),
                range: [lo, hi],
            }
        })
        .collect();
    let used: Vec<Signature> = signatures
        .iter()
        .filter(|s| names.contains(&s.name))
        .map(|s| s.signature.clone())
        .collect();
    let nomogram = Nomogram {
        task: cfg.task.clone(),
        intercept: multi.coef[0],
        variables,
        threshold,
        signatures: used,
    };
    let clin: Vec<(usize, &Candidate)> = cands
        .iter()
        .enumerate()
        .filter(|(k, c)| c.source == Source::Clinical && univariable[*k].entered)
        .collect();
    let clinical_model = if clin.is_empty() {
        None
    } else {
        let rows: Vec<usize> = (0..n)
            .filter(|&i| clin.iter().all(|(_, c)| c.values[i].is_some()))
            .collect();
        let cc: Vec<Vec<f64>> = clin
            .iter()
            .map(|(_, c)| {
                rows.iter()
                    .map(|&i| c.values[i].unwrap_or_default())
                    .collect()
            })
            .collect();
        let cn: Vec<String> = clin.iter().map(|(_, c)| c.name.clone()).collect();
        let cy: Vec<f64> = rows.iter().map(|&i| labels[i]).collect();
        let fit = fit_logistic(&cc, &cn, &cy, None, true).map_err(st)?;
        let probs: Vec<f64> = (0..rows.len())
            .map(|i| {
                let row: Vec<f64> = cc.iter().map(|c| c[i]).collect();
                1.0 / (1.0 + (-fit.linear_predictor(&row)).exp())
            })
            .collect();
        Some(Nomogram {
            task: format!("{}_clinical", cfg.task),
            intercept: fit.coef[0],
            variables: cc
                .iter()
                .enumerate()
                .map(|(k, col)| Variable {
                    name: cn[k].clone(),
                    source: Source::Clinical,
                    coefficient: fit.coef[k + 1],
                    mean: crate::stats::mean(col),
                    range: col
                        .iter()
                        .fold([f64::INFINITY, f64::NEG_INFINITY], |r, &v| {
                            [r[0].min(v), r[1].max(v)]
                        }),
                })
                .collect(),
            threshold: youden(&cy, &probs).map_err(st)?.threshold.clamp(0.0, 1.0),
            signatures: Vec::new(),
        })
    };
    Ok(FitReport {
        clinical_model,
        task: cfg.task.clone(),
        n: complete.len(),
        n_positive,
        features_in: table.names.len(),
        features_reproducible,
        icc_dropped,
        features_non_redundant,
        signatures,
        univariable,
        multivariable: multi,
        training_auc,
        nomogram,
    })
}

/// The LASSO step for one signature over the columns `kept` of `table` whose names match the
/// spec; `None` when no column matches or no feature survives the penalty.
fn fit_signature(
    table: &FeatureTable,
    kept: &[usize],
    labels: &[f64],
    foldid: &[usize],
    spec: &SignatureSpec,
    use_1se: bool,
) -> Result<Option<(SignatureFit, Vec<f64>)>, StatsError> {
    let n = labels.len();
    let cols: Vec<usize> = kept
        .iter()
        .copied()
        .filter(|&j| {
            spec.prefixes
                .iter()
                .any(|p| table.names[j].starts_with(p.as_str()))
        })
        .collect();
    if cols.is_empty() {
        return Ok(None);
    }
    let x: Vec<Vec<f64>> = cols.iter().map(|&j| table.values[j].clone()).collect();
    let cv = cv_lasso(&x, labels, foldid, &LassoOptions::default())?;
    let mut idx = if use_1se { cv.index_1se } else { cv.index_min };
    if cv.path.beta[idx].iter().all(|&b| b == 0.0) {
        idx = cv.index_min;
    }
    if cv.path.beta[idx].iter().all(|&b| b == 0.0) {
        // No feature carries signal beyond the intercept: no signature.
        return Ok(None);
    }
    let mut sig = Signature {
        name: spec.name.clone(),
        features: Vec::new(),
        means: Vec::new(),
        sds: Vec::new(),
        coefficients: Vec::new(),
        intercept: cv.path.intercept[idx],
    };
    for (k, &j) in cols.iter().enumerate() {
        let b = cv.path.beta[idx][k];
        if b == 0.0 {
            continue;
        }
        let col = &table.values[j];
        let m = crate::stats::mean(col);
        let mut ss = 0.0;
        for &v in col {
            ss += (v - m) * (v - m);
        }
        let sd = (ss / n as f64).sqrt();
        sig.features.push(table.names[j].clone());
        sig.means.push(m);
        sig.sds.push(sd);
        sig.coefficients.push(b * sd);
        sig.intercept += b * m;
    }
    let scores = signature_scores(&sig, table);
    // Out-of-fold scores: each case scored by the LASSO fitted without its fold, at the same
    // λ. The nomogram is fitted on these, so that a signature which fits its training cases
    // better than new ones (many candidate features, few cases) is not over-weighted.
    let grid = cv.path.lambda[..=idx].to_vec();
    let opts = LassoOptions {
        lambda: Some(grid),
        ..LassoOptions::default()
    };
    let mut oof = vec![f64::NAN; n];
    for f in distinct_folds(foldid) {
        let (xc, yc, held_out) = without_fold(&x, labels, foldid, f);
        let fit = lasso_path(&xc, &yc, &opts)?;
        let l = fit.lambda.len() - 1;
        for i in held_out {
            let mut eta = fit.intercept[l];
            for (b, c) in fit.beta[l].iter().zip(&x) {
                eta += b * c[i];
            }
            oof[i] = eta;
        }
    }
    Ok(Some((
        SignatureFit {
            name: spec.name.clone(),
            candidates: cols.len(),
            lambda_min: cv.lambda_min,
            lambda_1se: cv.lambda_1se,
            lambda: cv.path.lambda[idx],
            cv_deviance: cv.cvm[idx],
            training_auc: auc(labels, &scores)?,
            signature: sig,
            path_note: cv.path.stopped.clone(),
        },
        oof,
    )))
}

/// A seed-000 style head: LASSO-logistic over the features matching `spec` (e.g. the `dl:`
/// deep features), no ICC or redundancy filter, as a [`Nomogram::head`] whose threshold is
/// the Youden-optimal training probability. `None` when no feature survives the penalty.
pub fn fit_head(
    table: &FeatureTable,
    labels: &[f64],
    spec: &SignatureSpec,
    task: &str,
    folds: usize,
    seed: u64,
) -> Result<Option<(SignatureFit, Nomogram)>, FitError> {
    let st = |source: StatsError| FitError::Stats {
        task: task.to_string(),
        source,
    };
    let n = table.case_ids.len();
    if labels.len() != n || table.values.iter().any(|c| c.len() != n) {
        return Err(FitError::Input {
            task: task.to_string(),
            problem: "labels and feature columns differ in length".into(),
        });
    }
    crate::stats::check_binary("fit", labels, n).map_err(st)?;
    let all: Vec<usize> = (0..table.names.len()).collect();
    let foldid = stratified_fold_ids(labels, folds, seed);
    let Some((sf, _)) = fit_signature(table, &all, labels, &foldid, spec, false).map_err(st)?
    else {
        return Ok(None);
    };
    let scores = signature_scores(&sf.signature, table);
    let probs: Vec<f64> = scores.iter().map(|&s| 1.0 / (1.0 + (-s).exp())).collect();
    let threshold = youden(labels, &probs)
        .map_err(st)?
        .threshold
        .clamp(0.0, 1.0);
    let range = scores
        .iter()
        .fold([f64::INFINITY, f64::NEG_INFINITY], |r, &v| {
            [r[0].min(v), r[1].max(v)]
        });
    let nomo = Nomogram::head(task, sf.signature.clone(), range, threshold);
    Ok(Some((sf, nomo)))
}

/// The seeds' validation scores of a fitted task on a (test) cohort: the clinical-only model,
/// each signature as a probability (`1/(1+e^−score)`, the signature's own logistic model) and
/// the nomogram, in that order (so `ValidateOptions::compare_last` compares the nomogram with
/// each). A case that any model cannot assess is left out with the reason; the labels of the
/// cases kept are returned alongside.
pub fn cohort_scores(
    report: &FitReport,
    table: &FeatureTable,
    labels: &[Option<f64>],
    clinical: &ClinicalTable,
) -> (Vec<f64>, Vec<ScoreInput>, Vec<Excluded>) {
    let sigs: Vec<Signature> = report
        .signatures
        .iter()
        .map(|s| s.signature.clone())
        .collect();
    let models = validation_models(
        &report.task,
        report.clinical_model.as_ref(),
        &sigs,
        &report.nomogram,
    );
    models_scores(&models, table, labels, clinical)
}

/// The models of the validation table: the clinical-only model, each signature as its own
/// logistic model, the nomogram last.
pub fn validation_models(
    task: &str,
    clinical_model: Option<&Nomogram>,
    signatures: &[Signature],
    nomogram: &Nomogram,
) -> Vec<(String, Nomogram)> {
    let mut models: Vec<(String, Nomogram)> = Vec::new();
    if let Some(c) = clinical_model {
        models.push(("clinical".into(), c.clone()));
    }
    for s in signatures {
        let mut head = Nomogram::head(task, s.clone(), [f64::NEG_INFINITY, f64::INFINITY], 0.5);
        head.task = s.name.clone();
        models.push((s.name.clone(), head));
    }
    models.push(("nomogram".into(), nomogram.clone()));
    models
}

/// Probabilities of `models` on every labelled case that all of them can assess (see
/// [`cohort_scores`]).
pub fn models_scores(
    models: &[(String, Nomogram)],
    table: &FeatureTable,
    labels: &[Option<f64>],
    clinical: &ClinicalTable,
) -> (Vec<f64>, Vec<ScoreInput>, Vec<Excluded>) {
    let mut y = Vec::new();
    let mut scores: Vec<ScoreInput> = models
        .iter()
        .map(|(name, _)| ScoreInput {
            name: name.clone(),
            values: Vec::new(),
        })
        .collect();
    let mut excluded = Vec::new();
    'cases: for (i, id) in table.case_ids.iter().enumerate() {
        let label = match labels.get(i).copied().flatten() {
            Some(v) if v == 0.0 || v == 1.0 => v,
            Some(v) => {
                excluded.push(Excluded {
                    case: id.clone(),
                    reason: format!("label {v} is not 0 or 1"),
                });
                continue;
            }
            None => {
                excluded.push(Excluded {
                    case: id.clone(),
                    reason: "label missing".into(),
                });
                continue;
            }
        };
        let features: BTreeMap<String, f64> = table
            .names
            .iter()
            .zip(&table.values)
            .map(|(n, v)| (n.clone(), v[i]))
            .collect();
        let lookup = |name: &str| {
            clinical
                .names
                .iter()
                .position(|c| c == name)
                .and_then(|j| clinical.values[j].get(i).copied().flatten())
        };
        let mut row = Vec::with_capacity(models.len());
        for (name, m) in models {
            match assess(m, &features, &lookup) {
                Assessment::Assessed(a) => row.push(a.probability),
                Assessment::NotAssessable(e) => {
                    excluded.push(Excluded {
                        case: id.clone(),
                        reason: format!("{name}: {}", e.reason),
                    });
                    continue 'cases;
                }
            }
        }
        y.push(label);
        for (s, p) in scores.iter_mut().zip(row) {
            s.values.push(p);
        }
    }
    (y, scores, excluded)
}

/// A signature's score for every case of a table.
pub fn signature_scores(sig: &Signature, table: &FeatureTable) -> Vec<f64> {
    let cols: Vec<Option<&Vec<f64>>> = sig.features.iter().map(|f| table.column(f)).collect();
    (0..table.case_ids.len())
        .map(|i| {
            let mut s = sig.intercept;
            for (j, c) in cols.iter().enumerate() {
                // A feature absent from the table makes the score NaN, never a default.
                let x = c.map_or(f64::NAN, |c| c[i]);
                s += sig.coefficients[j] * (x - sig.means[j]) / sig.sds[j];
            }
            s
        })
        .collect()
}
