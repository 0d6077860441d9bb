//! One case end to end: load → radiomics → inference → fusion → report.
//!
//! [`Runtime`] holds what is loaded once (configuration, model package, inference engine,
//! radiomics settings); [`run_case`] runs one case through every stage, times each, and returns
//! everything the report writes. A failed stage fails the case with the stage named; a task whose
//! inputs are missing is "not assessable", never a number made up from defaults.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use crate::case::study::{load_study, GridRelation, Study};
use crate::case::{CaseFiles, Sequence};
use crate::config::Config;
use crate::error::{Classify, ErrorKind};
use crate::radiomics::provider::PyRadiomicsFilters;
use crate::radiomics::{extract, FilterProvider, Params};
use crate::report::overlay::{self, Overlay};
use crate::report::result::{CaseResult, InputFile, QualityFlags, Software, StageTiming, SCHEMA};
use crate::report::CaseOutput;
use crate::volume::resample::as_closest_canonical;
use crate::volume::Volume;

/// The stages of one case, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Reading, checking and co-gridding the inputs.
    Load,
    /// Radiomics features per sequence.
    Radiomics,
    /// Deep features, heads and Grad-CAM.
    Inference,
    /// Signatures, nomograms, SHAP.
    Fusion,
    /// Overlays and the result structure.
    Report,
}

impl Stage {
    /// Lower-case name used in results and errors.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Load => "load",
            Stage::Radiomics => "radiomics",
            Stage::Inference => "inference",
            Stage::Fusion => "fusion",
            Stage::Report => "report",
        }
    }
}

/// A case that failed, with the stage where it failed.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {message}", stage = .stage.name())]
pub struct PipelineError {
    /// Where it failed.
    pub stage: Stage,
    /// Bad input or internal error.
    pub kind: ErrorKind,
    /// What went wrong (names the file where there is one).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl PipelineError {
    fn from_err<E: Classify + std::fmt::Display>(stage: Stage, e: E) -> PipelineError {
        PipelineError {
            stage,
            kind: e.kind(),
            message: e.to_string(),
            hint: e.hint(),
        }
    }

    fn internal(stage: Stage, message: impl Into<String>) -> PipelineError {
        PipelineError {
            stage,
            kind: ErrorKind::Internal,
            message: message.into(),
            hint: None,
        }
    }
}

impl Classify for PipelineError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
    fn hint(&self) -> Option<String> {
        self.hint.clone()
    }
}

/// Wall-clock timer over the stages of one case.
#[derive(Debug, Default)]
struct Timer {
    timings: Vec<StageTiming>,
}

impl Timer {
    fn run<T>(
        &mut self,
        stage: Stage,
        progress: &dyn Fn(Stage, f32),
        f: impl FnOnce() -> Result<T, PipelineError>,
    ) -> Result<T, PipelineError> {
        progress(stage, 0.0);
        let t = Instant::now();
        let out = f();
        self.timings.push(StageTiming {
            stage: stage.name().into(),
            ms: t.elapsed().as_secs_f64() * 1e3,
        });
        progress(stage, 1.0);
        out
    }
}

/// The input files as the result lists them.
fn inputs_of(study: &Study) -> Vec<InputFile> {
    study
        .files
        .iter()
        .map(|f| InputFile {
            role: f.role.clone(),
            file: f
                .info
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: f.info.sha256.clone(),
            shape: Some(f.shape),
            zooms: Some(f.zooms),
            orientation: Some(f.orientation.clone()),
            grid: Some(match &f.grid {
                GridRelation::Reference => "reference".to_owned(),
                GridRelation::SameGrid { .. } => "same grid".to_owned(),
                GridRelation::Resampled {
                    max_corner_displacement_mm,
                    ..
                } => format!(
                    "resampled onto the reference grid (corners up to {max_corner_displacement_mm:.2} mm apart)"
                ),
            }),
        })
        .collect()
}

fn quality_of(study: &Study, non_finite_features: Vec<String>) -> QualityFlags {
    let z = study
        .images
        .values()
        .next()
        .map(Volume::zooms)
        .unwrap_or([1.0; 3]);
    let voxel_ml = z[0] * z[1] * z[2] / 1000.0;
    QualityFlags {
        roi_voxels: study.quality.roi_voxels,
        roi_volume_ml: study.quality.roi_voxels as f64 * voxel_ml,
        resampled: study
            .quality
            .resampled
            .iter()
            .map(|s| s.name().to_owned())
            .collect(),
        mask_resampled: study.quality.mask_resampled,
        non_finite_replaced: study.quality.non_finite_replaced.clone(),
        non_finite_features,
    }
}

/// ROI outline (and Grad-CAM, where there is one) on the largest-ROI axial slice of each
/// sequence, on RAS-canonical volumes.
fn overlays_of(
    study: &Study,
    gradcam: &BTreeMap<Sequence, Volume>,
) -> Result<Vec<Overlay>, PipelineError> {
    let roi = roi_volume(study, Stage::Report)?;
    let roi_ras = as_closest_canonical(&roi);
    let k = overlay::roi_slice(&roi_ras);
    let mut out = Vec::new();
    for (seq, image) in &study.images {
        let image_ras = as_closest_canonical(image);
        let png = overlay::render(seq.name(), &image_ras, &roi_ras, None, k)
            .map_err(|e| PipelineError::internal(Stage::Report, e.to_string()))?;
        out.push(Overlay {
            file: format!("{}_roi.png", seq.name()),
            caption: format!("{}: ROI outline, axial slice {k}", seq.name()),
            png,
        });
        if let Some(cam) = gradcam.get(seq) {
            let cam_ras = as_closest_canonical(cam);
            let png = overlay::render(seq.name(), &image_ras, &roi_ras, Some(&cam_ras), k)
                .map_err(|e| PipelineError::internal(Stage::Report, e.to_string()))?;
            out.push(Overlay {
                file: format!("{}_gradcam.png", seq.name()),
                caption: format!(
                    "{}: Grad-CAM of the deep features, axial slice {k}",
                    seq.name()
                ),
                png,
            });
        }
    }
    Ok(out)
}

/// What is loaded once and used for every case.
pub struct Runtime {
    /// The effective configuration.
    pub config: Config,
    /// Radiomics settings (the parameter file the model package names).
    pub params: Params,
    /// Resampling and derived image types for radiomics.
    pub filters: Box<dyn FilterProvider + Send>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("params", &self.params.hash())
            .finish_non_exhaustive()
    }
}

/// Radiomics of every sequence: `<sequence>_<PyRadiomics name>` → value, plus the names of
/// features the ROI did not allow (with the reason).
#[derive(Debug, Clone, Default)]
pub struct RadiomicsOutput {
    /// Feature values, sequence-prefixed.
    pub features: BTreeMap<String, f64>,
    /// Features without a value and why.
    pub missing: Vec<(String, String)>,
}

/// The ROI as a 0/1 label volume on the study grid.
fn roi_volume(study: &Study, stage: Stage) -> Result<Volume, PipelineError> {
    Volume::new(
        study.grid,
        study
            .roi
            .inside
            .iter()
            .map(|&b| if b { 1.0 } else { 0.0 })
            .collect(),
    )
    .map_err(|e| PipelineError::internal(stage, e.to_string()))
}

/// Radiomics per sequence on the co-gridded study, inside the study's ROI.
pub fn radiomics_of(study: &Study, rt: &Runtime) -> Result<RadiomicsOutput, PipelineError> {
    let mask = roi_volume(study, Stage::Radiomics)?;
    // The study's ROI already is the configured label selection, as label 1.
    let mut params = rt.params.clone();
    params.settings.label = 1;
    let per_seq: Vec<_> = study
        .images
        .par_iter()
        .map(|(seq, image)| {
            extract(image, &mask, &params, rt.filters.as_ref())
                .map(|x| (*seq, x))
                .map_err(|e| {
                    let mut err = PipelineError::from_err(Stage::Radiomics, e);
                    err.message = format!("{}: {}", seq.name(), err.message);
                    err
                })
        })
        .collect();
    let mut out = RadiomicsOutput::default();
    for r in per_seq {
        let (seq, x) = r?;
        for (k, v) in x.features() {
            out.features.insert(format!("{}_{k}", seq.name()), v);
        }
        for (k, why) in x.errors() {
            out.missing.push((format!("{}_{k}", seq.name()), why));
        }
    }
    Ok(out)
}

/// Runs one case through every stage.
pub fn run_case(
    case_dir: &Path,
    rt: &Runtime,
    progress: &dyn Fn(Stage, f32),
) -> Result<CaseOutput, PipelineError> {
    let mut timer = Timer::default();
    let study = timer.run(Stage::Load, progress, || {
        let files =
            CaseFiles::discover(case_dir).map_err(|e| PipelineError::from_err(Stage::Load, e))?;
        load_study(&files, &rt.config).map_err(|e| PipelineError::from_err(Stage::Load, e))
    })?;
    let radiomics = timer.run(Stage::Radiomics, progress, || radiomics_of(&study, rt))?;
    let gradcam: BTreeMap<Sequence, Volume> = BTreeMap::new();
    let overlays = timer.run(Stage::Report, progress, || overlays_of(&study, &gradcam))?;
    let mut warnings = study.warnings.clone();
    for (k, why) in &radiomics.missing {
        warnings.push(format!("feature {k} not computed: {why}"));
    }
    let result = CaseResult {
        schema: SCHEMA.into(),
        software: Software::current(),
        case_id: study.id.clone(),
        model: crate::report::result::ModelSummary {
            name: String::new(),
            version: String::new(),
            sha256: String::new(),
            demo: true,
            intended_use: String::new(),
        },
        precision: String::new(),
        inputs: inputs_of(&study),
        feature_settings_sha256: rt.params.hash(),
        tasks: Vec::new(),
        quality: quality_of(
            &study,
            radiomics.missing.iter().map(|(k, _)| k.clone()).collect(),
        ),
        warnings,
        timings: timer.timings,
    };
    Ok(CaseOutput {
        result,
        features: radiomics.features,
        overlays,
    })
}
