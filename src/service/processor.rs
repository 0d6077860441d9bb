//! What the service runs on each case: the [`CaseProcessor`] seam.
//!
//! The service knows nothing about radiomics or models. It hands a claimed case folder and an
//! empty output folder to a processor and gets back a [`CaseSummary`] or a [`ProcessError`].
//! The shipped box plugs the real pipeline in here; tests inject their own processors.
//! Until the pipeline lands, `glioedge serve` uses [`InputCheckProcessor`], which really loads
//! and validates the study and writes a minimal result through [`crate::report`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::case::study::{load_study, GridRelation};
use crate::case::CaseFiles;
use crate::config::Config;
use crate::error::{Classify, ErrorKind};
use crate::report::result::{
    CaseResult, InputFile, ModelSummary, QualityFlags, Software, StageTiming, SCHEMA,
};

/// The stages of one case, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Claiming and checking the folder.
    Intake,
    /// Reading the images onto one grid.
    Load,
    /// Radiomics features.
    Radiomics,
    /// Deep-learning inference.
    Inference,
    /// Signatures, nomogram, SHAP.
    Fusion,
    /// Writing result files.
    Report,
    /// Moving the result into `outbox/`.
    Publish,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 7] = [
        Stage::Intake,
        Stage::Load,
        Stage::Radiomics,
        Stage::Inference,
        Stage::Fusion,
        Stage::Report,
        Stage::Publish,
    ];

    /// Lower-case name (as serialised).
    pub fn name(self) -> &'static str {
        match self {
            Stage::Intake => "intake",
            Stage::Load => "load",
            Stage::Radiomics => "radiomics",
            Stage::Inference => "inference",
            Stage::Fusion => "fusion",
            Stage::Report => "report",
            Stage::Publish => "publish",
        }
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the processor is (shown on the status page and in `/api/status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessorInfo {
    /// Model package name.
    pub model_name: String,
    /// Model package version.
    pub model_version: String,
    /// A demonstration model, not for clinical use (the page shows a banner).
    pub demo: bool,
    /// Inference precision path (`int8`, `f32`, or `none`).
    pub precision: String,
    /// One paragraph from the model card.
    pub card_summary: String,
}

/// What a processed case produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseSummary {
    /// One line for the status page, e.g. "IDH-mutant (p = 0.81)". No patient text.
    pub headline: String,
    /// The report, relative to the output folder (e.g. `report.html`).
    pub report: PathBuf,
    /// Every file written, relative to the output folder.
    pub files: Vec<PathBuf>,
    /// Things a reader should know.
    pub warnings: Vec<String>,
}

/// Why a case failed; becomes `failed/<case>/error.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{stage}: {message}")]
pub struct ProcessError {
    /// Bad input, configuration or internal.
    pub kind: ErrorKind,
    /// What went wrong, naming the file.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// Where it happened.
    pub stage: Stage,
}

impl ProcessError {
    /// From any classified error of the crate.
    pub fn from_classified<E: Classify + std::fmt::Display>(stage: Stage, e: &E) -> ProcessError {
        ProcessError {
            kind: e.kind(),
            message: e.to_string(),
            hint: e.hint(),
            stage,
        }
    }

    /// An internal fault with a message.
    pub fn internal(stage: Stage, message: impl Into<String>) -> ProcessError {
        ProcessError {
            kind: ErrorKind::Internal,
            message: message.into(),
            hint: None,
            stage,
        }
    }
}

/// The work done on one case. Must be callable from a blocking thread.
pub trait CaseProcessor: Send + Sync {
    /// Identity of the model and precision path.
    fn info(&self) -> ProcessorInfo;
    /// Processes `case_dir` (read-only) into the empty folder `out_dir`; everything written
    /// under `out_dir` becomes the published result. `progress(stage, fraction)` may be called
    /// any number of times, fractions in `0..=1` within a stage.
    fn process(
        &self,
        case_dir: &Path,
        out_dir: &Path,
        progress: &dyn Fn(Stage, f32),
    ) -> Result<CaseSummary, ProcessError>;
}

/// Stand-in until the pipeline (`glioedge run`) lands: validates the case for real
/// (`case::load_study`: every file read, geometry checked, ROI found) and writes a minimal
/// `result.json` + `report.html` with no task assessed. Its name says what it is on the page.
#[derive(Debug, Clone)]
pub struct InputCheckProcessor {
    config: Config,
}

impl InputCheckProcessor {
    /// With the case/volume configuration to load studies with.
    pub fn new(config: Config) -> InputCheckProcessor {
        InputCheckProcessor { config }
    }
}

impl CaseProcessor for InputCheckProcessor {
    fn info(&self) -> ProcessorInfo {
        ProcessorInfo {
            model_name: "input-check".into(),
            model_version: crate::VERSION.into(),
            demo: true,
            precision: "none".into(),
            card_summary: "Input check only: every case is loaded and validated (files, \
                           geometry, mask); no model is run and no task is assessed. The \
                           analysis pipeline replaces this."
                .into(),
        }
    }

    fn process(
        &self,
        case_dir: &Path,
        out_dir: &Path,
        progress: &dyn Fn(Stage, f32),
    ) -> Result<CaseSummary, ProcessError> {
        progress(Stage::Load, 0.0);
        let t0 = Instant::now();
        let files = CaseFiles::discover(case_dir)
            .map_err(|e| ProcessError::from_classified(Stage::Load, &e))?;
        let study = load_study(&files, &self.config)
            .map_err(|e| ProcessError::from_classified(Stage::Load, &e))?;
        let load_ms = t0.elapsed().as_secs_f64() * 1e3;
        progress(Stage::Load, 1.0);
        progress(Stage::Report, 0.0);
        let name_of = |p: &Path| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let inputs = study
            .files
            .iter()
            .map(|f| InputFile {
                role: f.role.clone(),
                file: name_of(&f.info.path),
                sha256: f.info.sha256.clone(),
                shape: Some(f.shape),
                zooms: Some(f.zooms),
                orientation: Some(f.orientation.clone()),
                grid: Some(
                    match f.grid {
                        GridRelation::Reference => "reference",
                        GridRelation::SameGrid { .. } => "same_grid",
                        GridRelation::Resampled { .. } => "resampled",
                    }
                    .into(),
                ),
            })
            .collect();
        let info = self.info();
        let voxel_ml = {
            let z = study.grid.affine.zooms();
            z[0] * z[1] * z[2] / 1000.0
        };
        let result = CaseResult {
            schema: SCHEMA.into(),
            software: Software::current(),
            case_id: study.id.clone(),
            model: ModelSummary {
                name: info.model_name,
                version: info.model_version,
                sha256: "0".repeat(64),
                demo: true,
                intended_use: "input validation only; no analysis".into(),
            },
            precision: info.precision,
            inputs,
            feature_settings_sha256: "0".repeat(64),
            tasks: Vec::new(),
            quality: QualityFlags {
                roi_voxels: study.roi.count(),
                roi_volume_ml: study.roi.count() as f64 * voxel_ml,
                resampled: study
                    .quality
                    .resampled
                    .iter()
                    .map(|s| s.name().to_string())
                    .collect(),
                mask_resampled: study.quality.mask_resampled,
                non_finite_replaced: study.quality.non_finite_replaced.clone(),
                non_finite_features: Vec::new(),
            },
            warnings: study.warnings.clone(),
            timings: vec![StageTiming {
                stage: "load".into(),
                ms: load_ms,
            }],
        };
        let report_err =
            |e: crate::report::ReportError| ProcessError::from_classified(Stage::Report, &e);
        crate::report::write_atomic(
            &out_dir.join("result.json"),
            &crate::report::result_json(&result).map_err(report_err)?,
        )
        .map_err(report_err)?;
        let page = crate::report::html::render(&result, &[])
            .map_err(|e| ProcessError::internal(Stage::Report, format!("report.html: {e}")))?;
        crate::report::write_atomic(&out_dir.join("report.html"), page.as_bytes())
            .map_err(report_err)?;
        progress(Stage::Report, 1.0);
        Ok(CaseSummary {
            headline: format!(
                "inputs valid: {} sequences, ROI {:.1} mL (no model run)",
                study.images.len(),
                result.quality.roi_volume_ml
            ),
            report: PathBuf::from("report.html"),
            files: vec![PathBuf::from("result.json"), PathBuf::from("report.html")],
            warnings: study.warnings,
        })
    }
}

/// Wraps a processor and sleeps at every progress report: a demonstration and test aid that
/// widens the time a case spends in each stage (`GLIOEDGE_STAGE_DELAY_MS` for `serve`), so a
/// status page can be watched or a crash injected mid-case. Never used otherwise.
#[derive(Debug)]
pub struct Slowed<P> {
    /// The wrapped processor.
    pub inner: P,
    /// Sleep per progress report.
    pub delay: std::time::Duration,
}

impl<P: CaseProcessor> CaseProcessor for Slowed<P> {
    fn info(&self) -> ProcessorInfo {
        self.inner.info()
    }

    fn process(
        &self,
        case_dir: &Path,
        out_dir: &Path,
        progress: &dyn Fn(Stage, f32),
    ) -> Result<CaseSummary, ProcessError> {
        let slow = |stage: Stage, fraction: f32| {
            progress(stage, fraction);
            std::thread::sleep(self.delay);
        };
        self.inner.process(case_dir, out_dir, &slow)
    }
}
