//! Applying a fitted model to one case: signatures (rad-score, DL-score), heads and nomograms,
//! the probability and class at the stored threshold, exact SHAP values in logit space and
//! nomogram points, or "not assessable" with the reason when an input is missing or outside
//! the training range — never a number made up from defaults.
//!
//! Everything here is plain data (serde), so a model package stores it as TOML or JSON:
//!
//! * [`Signature`]: `score = b₀ + Σ bⱼ·zⱼ`, `zⱼ = (xⱼ − meanⱼ) / sdⱼ` over selected features,
//!   with the training means and SDs.
//! * [`Nomogram`]: a logistic model over signature scores and clinical variables, with the
//!   training mean and range of each variable and a decision threshold. A seed-000 style head
//!   (logistic over deep features) is a nomogram over one signature ([`Nomogram::head`]).
//!
//! The model is linear in its raw inputs, so SHAP values are exact: with the baseline at the
//! training means, a clinical variable contributes `β·(x − mean)` and a feature inside a
//! signature contributes `β_sig·bⱼ·zⱼ`; the contributions sum to the case's logit minus the
//! baseline logit. [`fit`] builds these objects from a feature table.

pub mod fit;
pub mod package;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::result::{
    Contribution, NomogramPoints, Shap, TaskResult, TaskStatus, VariablePoints,
};

/// A linear signature over standardised features.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Name, e.g. `rad_score`, `dl_score`.
    pub name: String,
    /// Selected feature names.
    pub features: Vec<String>,
    /// Training mean of each feature.
    pub means: Vec<f64>,
    /// Training SD of each feature (population SD, as glmnet standardises).
    pub sds: Vec<f64>,
    /// Coefficient of each standardised feature.
    pub coefficients: Vec<f64>,
    /// Intercept (the score at the training means).
    pub intercept: f64,
}

/// Why a task produced no number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotAssessable {
    /// One sentence for the report.
    pub reason: String,
}

fn na(reason: String) -> NotAssessable {
    NotAssessable { reason }
}

impl Signature {
    /// Checks the stored arrays agree in length and the SDs are positive.
    pub fn check(&self) -> Result<(), String> {
        let k = self.features.len();
        if self.means.len() != k || self.sds.len() != k || self.coefficients.len() != k {
            return Err(format!(
                "signature {}: features, means, sds and coefficients differ in length",
                self.name
            ));
        }
        if let Some(j) = (0..k).find(|&j| !(self.sds[j] > 0.0 && self.sds[j].is_finite())) {
            return Err(format!(
                "signature {}: SD of {} is not positive",
                self.name, self.features[j]
            ));
        }
        Ok(())
    }

    /// Standardised values of the case's features, or why not.
    fn z(&self, features: &BTreeMap<String, f64>) -> Result<Vec<f64>, NotAssessable> {
        self.check().map_err(na)?;
        self.features
            .iter()
            .enumerate()
            .map(|(j, f)| match features.get(f) {
                None => Err(na(format!("{}: feature {f} is missing", self.name))),
                Some(v) if !v.is_finite() => {
                    Err(na(format!("{}: feature {f} is not a number", self.name)))
                }
                Some(v) => Ok((v - self.means[j]) / self.sds[j]),
            })
            .collect()
    }

    /// The score of one case.
    pub fn score(&self, features: &BTreeMap<String, f64>) -> Result<f64, NotAssessable> {
        let z = self.z(features)?;
        let mut s = self.intercept;
        for (b, zj) in self.coefficients.iter().zip(&z) {
            s += b * zj;
        }
        Ok(s)
    }
}

/// Where a nomogram variable comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The score of the signature with this name.
    Signature,
    /// A clinical variable (`Clinical::numeric` names: `age_years`, `sex_male`, `kps`, …).
    Clinical,
}

/// One variable of a nomogram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Variable {
    /// Signature or clinical variable name.
    pub name: String,
    /// Where its value comes from.
    pub source: Source,
    /// Log-odds coefficient.
    pub coefficient: f64,
    /// Training mean (the SHAP baseline).
    pub mean: f64,
    /// Training range `[min, max]`; a case outside it is not assessable.
    pub range: [f64; 2],
}

/// A logistic nomogram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Nomogram {
    /// Task key (`idh`, `ki67`, `tp_psp`).
    pub task: String,
    /// Intercept.
    pub intercept: f64,
    /// Variables.
    pub variables: Vec<Variable>,
    /// Probability at or above which the case is called positive.
    pub threshold: f64,
    /// The signatures its `Signature` variables refer to.
    pub signatures: Vec<Signature>,
}

/// The assessment of one case by one nomogram.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Assessed {
    /// Probability of the positive class.
    pub probability: f64,
    /// `probability ≥ threshold`.
    pub positive: bool,
    /// Linear predictor.
    pub logit: f64,
    /// Each signature's score.
    pub signature_scores: BTreeMap<String, f64>,
    /// Exact SHAP values over raw inputs (features inside signatures, clinical variables).
    pub shap: Shap,
    /// rms-style points per nomogram variable.
    pub points: NomogramPoints,
}

/// Result of [`assess`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Assessment {
    /// A probability.
    Assessed(Box<Assessed>),
    /// No number, and why.
    NotAssessable(NotAssessable),
}

/// Human labels of a task for the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLabels {
    /// Human title, e.g. "IDH mutation".
    pub title: String,
    /// What a positive class means.
    pub positive: String,
    /// What a negative class means.
    pub negative: String,
}

impl TaskLabels {
    /// A `result.json` task block with no number in it: not assessable for `reason`.
    pub fn not_assessable(&self, task: &str, threshold: f64, reason: String) -> TaskResult {
        TaskResult {
            task: task.into(),
            title: self.title.clone(),
            positive_label: self.positive.clone(),
            negative_label: self.negative.clone(),
            status: TaskStatus::NotAssessable,
            reason: Some(reason),
            probability: None,
            positive: None,
            threshold,
            rad_score: None,
            dl_score: None,
            nomogram: None,
            shap: None,
        }
    }
}

impl Assessment {
    /// The `result.json` block of this assessment (`rad_score` / `dl_score` filled from the
    /// signatures of those names).
    pub fn task_result(&self, nomogram: &Nomogram, labels: &TaskLabels) -> TaskResult {
        let mut r = labels.not_assessable(&nomogram.task, nomogram.threshold, String::new());
        match self {
            Assessment::NotAssessable(e) => r.reason = Some(e.reason.clone()),
            Assessment::Assessed(a) => {
                r.status = TaskStatus::Assessed;
                r.probability = Some(a.probability);
                r.positive = Some(a.positive);
                r.rad_score = a.signature_scores.get("rad_score").copied();
                r.dl_score = a.signature_scores.get("dl_score").copied();
                r.nomogram = Some(a.points.clone());
                r.shap = Some(a.shap.clone());
            }
        }
        r
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

impl Nomogram {
    /// A head: the logistic of one signature's score (coefficient 1, intercept 0).
    pub fn head(task: &str, signature: Signature, range: [f64; 2], threshold: f64) -> Nomogram {
        Nomogram {
            task: task.to_string(),
            intercept: 0.0,
            variables: vec![Variable {
                name: signature.name.clone(),
                source: Source::Signature,
                coefficient: 1.0,
                mean: signature.intercept,
                range,
            }],
            threshold,
            signatures: vec![signature],
        }
    }

    fn signature(&self, name: &str) -> Option<&Signature> {
        self.signatures.iter().find(|s| s.name == name)
    }

    /// The logit at the training means of every raw input (signature features at their means,
    /// so a signature sits at its intercept; clinical variables at their means).
    pub fn baseline_logit(&self) -> f64 {
        let mut b = self.intercept;
        for v in &self.variables {
            let m = match v.source {
                Source::Signature => self.signature(&v.name).map_or(v.mean, |s| s.intercept),
                Source::Clinical => v.mean,
            };
            b += v.coefficient * m;
        }
        b
    }

    /// rms-style points: the variable with the widest effect over its training range spans
    /// 0–100; each variable's points are `100·(β·x − min β·x) / max range of β·x`.
    pub fn points(&self, values: &[f64]) -> NomogramPoints {
        let span = |v: &Variable| (v.coefficient * (v.range[1] - v.range[0])).abs();
        let max = self.variables.iter().map(span).fold(0.0, f64::max);
        let mut total = 0.0;
        let variables = self
            .variables
            .iter()
            .zip(values)
            .map(|(v, &x)| {
                let low = (v.coefficient * v.range[0]).min(v.coefficient * v.range[1]);
                let points = if max > 0.0 {
                    100.0 * (v.coefficient * x - low) / max
                } else {
                    0.0
                };
                total += points;
                VariablePoints {
                    name: v.name.clone(),
                    value: x,
                    points,
                }
            })
            .collect();
        NomogramPoints {
            variables,
            total_points: total,
        }
    }
}

/// Applies a nomogram to one case: `features` by name (radiomics and deep features) and
/// `clinical` looking up clinical variables by name (e.g. `|n| clinical.numeric(n)`).
pub fn assess(
    nomogram: &Nomogram,
    features: &BTreeMap<String, f64>,
    clinical: &dyn Fn(&str) -> Option<f64>,
) -> Assessment {
    match assess_inner(nomogram, features, clinical) {
        Ok(a) => Assessment::Assessed(Box::new(a)),
        Err(e) => Assessment::NotAssessable(e),
    }
}

fn assess_inner(
    nomo: &Nomogram,
    features: &BTreeMap<String, f64>,
    clinical: &dyn Fn(&str) -> Option<f64>,
) -> Result<Assessed, NotAssessable> {
    let mut values = Vec::with_capacity(nomo.variables.len());
    let mut contributions = Vec::new();
    let mut signature_scores = BTreeMap::new();
    for v in &nomo.variables {
        let x = match v.source {
            Source::Signature => {
                let s = nomo
                    .signature(&v.name)
                    .ok_or_else(|| na(format!("the model has no signature named {}", v.name)))?;
                let z = s.z(features)?;
                let mut score = s.intercept;
                for (j, (b, zj)) in s.coefficients.iter().zip(&z).enumerate() {
                    score += b * zj;
                    contributions.push(Contribution {
                        name: s.features[j].clone(),
                        value: features.get(&s.features[j]).copied().unwrap_or(f64::NAN),
                        contribution: v.coefficient * b * zj,
                    });
                }
                signature_scores.insert(s.name.clone(), score);
                score
            }
            Source::Clinical => {
                let x = clinical(&v.name)
                    .ok_or_else(|| na(format!("clinical variable {} is missing", v.name)))?;
                if !x.is_finite() {
                    return Err(na(format!("clinical variable {} is not a number", v.name)));
                }
                contributions.push(Contribution {
                    name: v.name.clone(),
                    value: x,
                    contribution: v.coefficient * (x - v.mean),
                });
                x
            }
        };
        if x < v.range[0] || x > v.range[1] {
            return Err(na(format!(
                "{} = {x:.4} is outside the training range {:.4} .. {:.4}",
                v.name, v.range[0], v.range[1]
            )));
        }
        values.push(x);
    }
    let mut logit = nomo.intercept;
    for (v, x) in nomo.variables.iter().zip(&values) {
        logit += v.coefficient * x;
    }
    let probability = sigmoid(logit);
    let mut shap = Shap::from_contributions(nomo.baseline_logit(), contributions);
    // `Shap::from_contributions` sums the contributions; keep the model's own logit, which
    // differs from that sum only by rounding.
    shap.logit = logit;
    Ok(Assessed {
        probability,
        positive: probability >= nomo.threshold,
        logit,
        signature_scores,
        points: nomo.points(&values),
        shap,
    })
}
