//! `result.json`: the versioned, machine-readable result of one case.
//!
//! The schema is `docs/result.schema.json` (JSON Schema 2020-12) and `docs/result.md` describes
//! every field. Everything except `timings` is a deterministic function of the inputs, the model
//! package and the software version, so two runs of one case give byte-identical files apart
//! from the timings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Schema identifier written into every result.
pub const SCHEMA: &str = "glioedge.result/1";

/// The result of one case.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CaseResult {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// What produced it.
    pub software: Software,
    /// Case id (folder name, sanitised).
    pub case_id: String,
    /// The model package used.
    pub model: ModelSummary,
    /// Which inference precision path ran (`int8` or `f32`).
    pub precision: String,
    /// The input files with their hashes and geometry.
    pub inputs: Vec<InputFile>,
    /// sha256 of the canonical radiomics settings.
    pub feature_settings_sha256: String,
    /// One entry per task of the model.
    pub tasks: Vec<TaskResult>,
    /// Quality flags.
    pub quality: QualityFlags,
    /// Things a reader should know (resampling done, files ignored…).
    pub warnings: Vec<String>,
    /// Wall time per stage (the only non-deterministic part).
    pub timings: Vec<StageTiming>,
}

/// Software name and version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Software {
    /// `glioedge`.
    pub name: String,
    /// Crate version.
    pub version: String,
}

impl Software {
    /// This build.
    pub fn current() -> Software {
        Software {
            name: "glioedge".into(),
            version: crate::VERSION.into(),
        }
    }
}

/// Identity of the model package.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModelSummary {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// sha256 of the manifest (which lists the sha256 of every file).
    pub sha256: String,
    /// A demo model, not for clinical use.
    pub demo: bool,
    /// Intended use as the package states it.
    pub intended_use: String,
}

/// One input file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// `t1c`, `t2`, …, `mask`, `clinical`.
    pub role: String,
    /// File name within the case folder.
    pub file: String,
    /// sha256 of the file's bytes.
    pub sha256: String,
    /// Native shape (absent for non-image files).
    pub shape: Option<[usize; 3]>,
    /// Native voxel size, mm.
    pub zooms: Option<[f64; 3]>,
    /// nibabel orientation code.
    pub orientation: Option<String>,
    /// `reference`, `same_grid` or `resampled`.
    pub grid: Option<String>,
}

/// Whether a task produced a number.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// A probability was computed.
    Assessed,
    /// An input was missing or out of the training range; see `reason`.
    NotAssessable,
}

/// The output of one task (IDH, Ki-67, TP vs PsP).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TaskResult {
    /// Task key: `idh`, `ki67`, `tp_psp`.
    pub task: String,
    /// Human title, e.g. "IDH mutation".
    pub title: String,
    /// What a positive class means, e.g. "IDH-mutant".
    pub positive_label: String,
    /// What a negative class means, e.g. "IDH-wildtype".
    pub negative_label: String,
    /// Assessed or not.
    pub status: TaskStatus,
    /// Why not assessable.
    pub reason: Option<String>,
    /// Probability of the positive class.
    pub probability: Option<f64>,
    /// `true` when `probability ≥ threshold`.
    pub positive: Option<bool>,
    /// Decision threshold stored in the model.
    pub threshold: f64,
    /// Radiomics signature value (logit scale), if the task has one.
    pub rad_score: Option<f64>,
    /// Deep-learning signature value (logit scale), if the task has one.
    pub dl_score: Option<f64>,
    /// Nomogram points per variable.
    pub nomogram: Option<NomogramPoints>,
    /// SHAP contributions in logit space.
    pub shap: Option<Shap>,
}

/// Nomogram points (0–100 per variable as R's rms does).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NomogramPoints {
    /// Per variable.
    pub variables: Vec<VariablePoints>,
    /// Sum.
    pub total_points: f64,
}

/// Points of one nomogram variable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VariablePoints {
    /// Variable name.
    pub name: String,
    /// Its value for this case.
    pub value: f64,
    /// Points.
    pub points: f64,
}

/// Exact SHAP values of a linear model in logit space.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Shap {
    /// Logit at the training means.
    pub baseline_logit: f64,
    /// This case's logit (= baseline + Σ contributions).
    pub logit: f64,
    /// The ten largest contributions by magnitude.
    pub top: Vec<Contribution>,
    /// Every contribution, largest magnitude first.
    pub all: Vec<Contribution>,
}

/// One SHAP contribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Contribution {
    /// Input name.
    pub name: String,
    /// Input value.
    pub value: f64,
    /// Contribution to the logit.
    pub contribution: f64,
}

/// Quality flags.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QualityFlags {
    /// ROI voxels on the reference grid.
    pub roi_voxels: usize,
    /// ROI volume, mL.
    pub roi_volume_ml: f64,
    /// Sequences resampled onto the reference grid.
    pub resampled: Vec<String>,
    /// Whether the mask was resampled.
    pub mask_resampled: bool,
    /// NaN/Inf voxels replaced by 0, per file role.
    pub non_finite_replaced: BTreeMap<String, usize>,
    /// Features that came out NaN or infinite (reported, never used).
    pub non_finite_features: Vec<String>,
}

/// Wall time of one stage.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StageTiming {
    /// Stage name.
    pub stage: String,
    /// Milliseconds.
    pub ms: f64,
}

impl Shap {
    /// Builds the SHAP block from unsorted contributions (sorted by magnitude, ties by name, so
    /// the order is deterministic).
    pub fn from_contributions(baseline_logit: f64, mut all: Vec<Contribution>) -> Shap {
        all.sort_by(|a, b| {
            b.contribution
                .abs()
                .total_cmp(&a.contribution.abs())
                .then_with(|| a.name.cmp(&b.name))
        });
        let logit = baseline_logit + all.iter().map(|c| c.contribution).sum::<f64>();
        Shap {
            baseline_logit,
            logit,
            top: all.iter().take(10).cloned().collect(),
            all,
        }
    }
}
