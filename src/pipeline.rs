//! One case end to end: load → radiomics → inference → fusion → report.
//!
//! [`Runtime`] holds what is loaded once (configuration, model package, inference engine,
//! radiomics settings); [`run_case`] runs one case through every stage, times each, and returns
//! everything the report writes ([`load_case`] and [`run_loaded`] are its two halves, for a
//! caller that loads the case while the model loads). A failed stage fails the case with the
//! stage named; a task whose inputs are missing is "not assessable", never a number made up from
//! defaults.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use crate::case::clinical::Clinical;
use crate::case::study::{load_study, GridRelation, Study};
use crate::case::{CaseFiles, Sequence};
use crate::config::Config;
use crate::error::{Classify, ErrorKind};
use crate::fusion::package::{load_fitted, FittedTasks};
use crate::fusion::{assess, TaskLabels};
use crate::inference::{Engine, EngineOptions};
use crate::model::ModelPackage;
use crate::radiomics::features::{FeatureClass, FeatureId};
use crate::radiomics::provider::PyRadiomicsFilters;
use crate::radiomics::{extract, FeatureResult, Params};
use crate::report::overlay::{self, Overlay};
use crate::report::result::{
    CaseResult, InputFile, ModelSummary, QualityFlags, Software, StageTiming, TaskResult, SCHEMA,
};
use crate::report::CaseOutput;
use crate::volume::mask::Roi;
use crate::volume::resample::{as_closest_canonical, canonical_axial_slice};
use crate::volume::StoredType;
use crate::volume::Volume;
use sha2::{Digest, Sha256};

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
    /// A classified error at `stage`.
    pub fn from_err<E: Classify + std::fmt::Display>(stage: Stage, e: E) -> PipelineError {
        PipelineError {
            stage,
            kind: e.kind(),
            message: e.to_string(),
            hint: e.hint(),
        }
    }

    /// Bad input at `stage`.
    pub fn bad_input(stage: Stage, message: impl Into<String>) -> PipelineError {
        PipelineError {
            stage,
            kind: ErrorKind::BadInput,
            message: message.into(),
            hint: None,
        }
    }

    /// An internal error at `stage`.
    pub fn internal(stage: Stage, message: impl Into<String>) -> PipelineError {
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
            grid: Some(
                match &f.grid {
                    GridRelation::Reference => "reference",
                    GridRelation::SameGrid { .. } => "same_grid",
                    GridRelation::Resampled { .. } => "resampled",
                }
                .to_owned(),
            ),
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
/// sequence, on RAS-canonical volumes. Only that slice of each image and heat map is
/// reoriented; the sequences are rendered in parallel, listed in sequence order.
fn overlays_of(
    study: &Study,
    gradcam: &BTreeMap<Sequence, Volume>,
) -> Result<Vec<Overlay>, PipelineError> {
    let roi = roi_volume(study, Stage::Report)?;
    let roi_ras = as_closest_canonical(&roi);
    let k = overlay::roi_slice(&roi_ras);
    let [nx, ny, _] = roi_ras.dims();
    let roi_k = &roi_ras.data()[nx * ny * k..nx * ny * (k + 1)];
    let internal = |e: String| PipelineError::internal(Stage::Report, e);
    let slice_of = |name: &str, v: &Volume| {
        canonical_axial_slice(v, k)
            .map(|(_, s)| s)
            .ok_or_else(|| internal(format!("overlay {name}: no axial slice {k}")))
    };
    let images: Vec<_> = study.images.iter().collect();
    let per_seq: Vec<Result<Vec<Overlay>, PipelineError>> = images
        .par_iter()
        .map(|&(seq, image)| {
            let image_k = slice_of(seq.name(), image)?;
            let png = overlay::render(seq.name(), [nx, ny], &image_k, roi_k, None)
                .map_err(|e| internal(e.to_string()))?;
            let mut out = vec![Overlay {
                file: format!("{}_roi.png", seq.name()),
                caption: format!("{}: ROI outline, axial slice {k}", seq.name()),
                png,
            }];
            if let Some(cam) = gradcam.get(seq) {
                let cam_k = slice_of(seq.name(), cam)?;
                let png = overlay::render(seq.name(), [nx, ny], &image_k, roi_k, Some(&cam_k))
                    .map_err(|e| internal(e.to_string()))?;
                out.push(Overlay {
                    file: format!("{}_gradcam.png", seq.name()),
                    caption: format!(
                        "{}: Grad-CAM of the deep features, axial slice {k}",
                        seq.name()
                    ),
                    png,
                });
            }
            Ok(out)
        })
        .collect();
    let mut out = Vec::new();
    for r in per_seq {
        out.extend(r?);
    }
    Ok(out)
}

/// What is loaded once and used for every case.
#[derive(Debug)]
pub struct Runtime {
    /// The effective configuration.
    pub config: Config,
    /// Radiomics settings.
    pub params: Params,
    /// The loaded network (it owns the verified model package).
    pub engine: Engine,
    /// sha256 of the package manifest (which lists the sha256 of every file).
    pub manifest_sha256: String,
    /// The package's fitted tasks (`tasks.json`), if it has been fitted.
    pub fitted: Option<FittedTasks>,
}

impl Runtime {
    /// The radiomics settings every runtime uses: PyRadiomics defaults (original image, bin
    /// width 25). They need no model, so a case's radiomics can run while the model loads.
    pub fn radiomics_settings() -> Params {
        Params::default()
    }

    /// Opens and verifies the model package (`model` or the configured one), loads the network
    /// once (timing both precisions when the configuration says `auto`) and the radiomics
    /// settings (PyRadiomics defaults: original image, bin width 25).
    pub fn load(config: Config, model: Option<&Path>) -> Result<Runtime, PipelineError> {
        Runtime::load_with(config, model, None)
    }

    /// As [`Runtime::load`], but the network runs on `sequences` instead of the ones the
    /// manifest names (for extracting a cohort's features before a fit).
    pub fn load_with(
        config: Config,
        model: Option<&Path>,
        sequences: Option<&[String]>,
    ) -> Result<Runtime, PipelineError> {
        let dir = model.map_or_else(|| config.inference.model.clone(), Path::to_path_buf);
        let mut package =
            ModelPackage::open(&dir).map_err(|e| PipelineError::from_err(Stage::Load, e))?;
        let fitted = load_fitted(&package).map_err(|e| PipelineError::from_err(Stage::Load, e))?;
        if let Some(seqs) = sequences {
            package.manifest.sequences = seqs.to_vec();
        }
        let manifest_path = dir.join("manifest.toml");
        let manifest_sha256 = std::fs::read(&manifest_path)
            .map(|b| hex::encode(Sha256::digest(&b)))
            .map_err(|e| {
                PipelineError::internal(Stage::Load, format!("{}: {e}", manifest_path.display()))
            })?;
        // A fitted package's scores hold only for deep features of the precision it was
        // fitted with (int8 and f32 features differ by more than rounding): `auto` takes that
        // one; an explicit other choice leaves the tasks not assessable (see `tasks_of`).
        let precision = match (config.inference.precision, fitted.as_ref()) {
            (crate::inference::Precision::Auto, Some(f)) => {
                crate::inference::Precision::from_name(&f.precision)
                    .unwrap_or(crate::inference::Precision::Auto)
            }
            (p, _) => p,
        };
        let engine = Engine::load(
            &package,
            EngineOptions {
                precision,
                threads: config.inference.threads,
                ..EngineOptions::default()
            },
        )
        .map_err(|e| PipelineError::from_err(Stage::Inference, e))?;
        Ok(Runtime {
            config,
            params: Runtime::radiomics_settings(),
            engine,
            manifest_sha256,
            fitted,
        })
    }

    /// The model summary every result carries.
    pub fn model_summary(&self) -> ModelSummary {
        let m = &self.engine.package().manifest;
        ModelSummary {
            name: m.name.clone(),
            version: m.version.clone(),
            sha256: self.manifest_sha256.clone(),
            demo: m.demo,
            intended_use: m.intended_use.clone(),
        }
    }
}

/// The tasks of the two published pipelines, with their labels for the report.
const TASKS: [(&str, &str, &str, &str); 3] = [
    ("idh", "IDH mutation", "IDH-mutant", "IDH-wildtype"),
    ("ki67", "Ki-67 level", "Ki-67 high", "Ki-67 low"),
    (
        "tp_psp",
        "True progression vs pseudoprogression",
        "true progression",
        "pseudoprogression",
    ),
];

/// The task results: each fitted nomogram of the package applied to the case (probability,
/// class, rad-score, DL-score, SHAP, points — or "not assessable" with the reason when an
/// input is missing or out of the training range). A package carries fitted nomograms only
/// once `glioedge fit` has been run on a cohort; until then the task is "not assessable" and
/// says why, rather than showing a number from unfitted weights.
pub fn tasks_of(
    rt: &Runtime,
    features: &BTreeMap<String, f64>,
    clinical: Option<&Clinical>,
) -> Vec<TaskResult> {
    let pkg = rt.engine.package();
    TASKS
        .iter()
        .map(|(task, title, pos, neg)| {
            let labels = TaskLabels {
                title: (*title).into(),
                positive: (*pos).into(),
                negative: (*neg).into(),
            };
            if let Some(fitted) = rt.fitted.as_ref().and_then(|f| f.task(task)) {
                let ran = rt.engine.precision().name();
                let fitted_with = rt.fitted.as_ref().map_or("", |f| f.precision.as_str());
                if ran != fitted_with {
                    return labels.not_assessable(
                        task,
                        fitted.nomogram.threshold,
                        format!(
                            "the {task} model was fitted on {fitted_with} deep features but this \
                         run computed {ran} features (set [inference] precision = \
                         \"{fitted_with}\" or \"auto\")"
                        ),
                    );
                }
                let lookup = |name: &str| clinical.and_then(|c| c.numeric(name));
                return assess(&fitted.nomogram, features, &lookup)
                    .task_result(&fitted.nomogram, &labels);
            }
            let head = pkg.head(task);
            let reason = match head {
                Some(h) if !h.spec.fitted => format!(
                    "model package '{}' has no fitted {task} model (its {task} head holds \
                     seeded, unfitted weights); fit one on a labelled cohort",
                    pkg.manifest.name
                ),
                _ => format!(
                    "model package '{}' has no fitted {task} nomogram; fit one on a labelled \
                     cohort",
                    pkg.manifest.name
                ),
            };
            labels.not_assessable(task, 0.5, reason)
        })
        .collect()
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
    roi_volume_of(study, &study.roi, stage)
}

/// `roi` as a 0/1 label volume on the study grid.
fn roi_volume_of(study: &Study, roi: &Roi, stage: Stage) -> Result<Volume, PipelineError> {
    Volume::new(
        study.grid,
        roi.inside
            .iter()
            .map(|&b| if b { 1.0 } else { 0.0 })
            .collect(),
    )
    .map_err(|e| PipelineError::internal(stage, e.to_string()))
}

/// What the network gave for one case.
#[derive(Debug, Clone)]
pub struct DeepOutput {
    /// The precision path that ran (`int8` or `f32`).
    pub precision: String,
    /// `dl_<sequence>_<index>` → value (the mean over the sequence's slices).
    pub features: BTreeMap<String, f64>,
    /// Grad-CAM of the first head per sequence, on the study grid.
    pub gradcam: BTreeMap<Sequence, Volume>,
}

/// Deep features and Grad-CAM per sequence.
pub fn inference_of(study: &Study, rt: &Runtime) -> Result<DeepOutput, PipelineError> {
    let inf = rt
        .engine
        .run_study(study)
        .map_err(|e| PipelineError::from_err(Stage::Inference, e))?;
    let mut features = BTreeMap::new();
    let mut cams = BTreeMap::new();
    for s in inf.sequences {
        for (i, v) in s.features.iter().enumerate() {
            features.insert(format!("dl_{}_{i:03}", s.sequence.name()), f64::from(*v));
        }
        if let Some(cam) = s.gradcam.into_values().next() {
            cams.insert(s.sequence, cam);
        }
    }
    Ok(DeepOutput {
        precision: inf.precision.name().to_owned(),
        features,
        gradcam: cams,
    })
}

/// Radiomics per sequence on the co-gridded study, inside the study's ROI.
pub fn radiomics_of(study: &Study, params: &Params) -> Result<RadiomicsOutput, PipelineError> {
    radiomics_in(study, &study.roi, None, params)
}

/// Radiomics inside `roi` (on the study grid) of the study's sequences, or of those among
/// `only` (for the perturbed ROIs of a fit's reproducibility filter).
pub fn radiomics_in(
    study: &Study,
    roi: &Roi,
    only: Option<&[Sequence]>,
    params: &Params,
) -> Result<RadiomicsOutput, PipelineError> {
    let mask = roi_volume_of(study, roi, Stage::Radiomics)?;
    // The study's ROI already is the configured label selection, as label 1.
    let mut params = params.clone();
    params.settings.label = 1;
    // Shape features depend on the mask, the grid and the settings only, and every sequence
    // of the co-gridded study shares all three: the first sequence computes them, the others
    // are given its values (the same numbers, computed once instead of once per sequence).
    let mut without_shape = params.clone();
    without_shape
        .feature_classes
        .retain(|(c, _)| *c != FeatureClass::Shape);
    let images: Vec<_> = study
        .images
        .iter()
        .filter(|(seq, _)| only.is_none_or(|o| o.contains(*seq)))
        .collect();
    let per_seq: Vec<_> = images
        .par_iter()
        .enumerate()
        .map(|(i, &(seq, image))| {
            let params = if i == 0 { &params } else { &without_shape };
            let filters = PyRadiomicsFilters {
                pixel: study
                    .files
                    .iter()
                    .find(|f| f.role == seq.name())
                    .map_or(StoredType::F32, |f| f.info.datatype),
            };
            extract(image, &mask, params, &filters)
                .map(|x| (*seq, x))
                .map_err(|e| {
                    let mut err = PipelineError::from_err(Stage::Radiomics, e);
                    err.message = format!("{}: {}", seq.name(), err.message);
                    err
                })
        })
        .collect();
    let mut out = RadiomicsOutput::default();
    let mut shape: Vec<FeatureResult> = Vec::new();
    for (i, r) in per_seq.into_iter().enumerate() {
        let (seq, mut x) = r?;
        if i == 0 {
            shape = x
                .results
                .iter()
                .filter(|r| matches!(r.feature, FeatureId::Shape(_)))
                .cloned()
                .collect();
        } else {
            // PyRadiomics order: shape first.
            x.results.splice(0..0, shape.iter().cloned());
        }
        for (k, v) in x.features() {
            out.features.insert(format!("{}_{k}", seq.name()), v);
        }
        for (k, why) in x.errors() {
            out.missing.push((format!("{}_{k}", seq.name()), why));
        }
    }
    Ok(out)
}

/// A case after the load stage: its files read and brought onto one grid, with the stage's
/// wall time, and possibly its radiomics stage already done.
#[derive(Debug)]
pub struct LoadedCase {
    study: Study,
    timer: Timer,
    /// The radiomics stage's output and the hash of the settings it used.
    radiomics: Option<(RadiomicsOutput, String)>,
}

impl LoadedCase {
    /// Runs the radiomics stage now, with `params` (timed as the stage). [`run_loaded`] uses
    /// the result if `params` are the runtime's settings and computes it again otherwise.
    pub fn with_radiomics(
        mut self,
        params: &Params,
        progress: &dyn Fn(Stage, f32),
    ) -> Result<LoadedCase, PipelineError> {
        let out = self.timer.run(Stage::Radiomics, progress, || {
            radiomics_of(&self.study, params)
        })?;
        self.radiomics = Some((out, params.hash()));
        Ok(self)
    }
}

/// The load stage alone: finds the case's files, reads them and co-grids the study. It needs
/// only the configuration, so `glioedge run` does it (and the radiomics stage, see
/// [`LoadedCase::with_radiomics`]) while the model loads.
pub fn load_case(
    case_dir: &Path,
    config: &Config,
    progress: &dyn Fn(Stage, f32),
) -> Result<LoadedCase, PipelineError> {
    let mut timer = Timer::default();
    let study = timer.run(Stage::Load, progress, || {
        let files =
            CaseFiles::discover(case_dir).map_err(|e| PipelineError::from_err(Stage::Load, e))?;
        load_study(&files, config).map_err(|e| PipelineError::from_err(Stage::Load, e))
    })?;
    Ok(LoadedCase {
        study,
        timer,
        radiomics: None,
    })
}

/// Runs one case through every stage.
pub fn run_case(
    case_dir: &Path,
    rt: &Runtime,
    progress: &dyn Fn(Stage, f32),
) -> Result<CaseOutput, PipelineError> {
    let case = load_case(case_dir, &rt.config, progress)?;
    run_loaded(case, rt, progress)
}

/// Every stage after the load stage (radiomics too, unless the case has it already), on a
/// loaded case.
pub fn run_loaded(
    case: LoadedCase,
    rt: &Runtime,
    progress: &dyn Fn(Stage, f32),
) -> Result<CaseOutput, PipelineError> {
    let LoadedCase {
        study,
        mut timer,
        radiomics,
    } = case;
    let radiomics = match radiomics {
        Some((out, hash)) if hash == rt.params.hash() => out,
        _ => {
            // Settings other than the runtime's (or none yet): the stage runs (again) here,
            // and only this run's timing is kept.
            timer.timings.retain(|t| t.stage != Stage::Radiomics.name());
            timer.run(Stage::Radiomics, progress, || {
                radiomics_of(&study, &rt.params)
            })?
        }
    };
    let DeepOutput {
        precision,
        features: deep,
        gradcam,
    } = timer.run(Stage::Inference, progress, || inference_of(&study, rt))?;
    let mut features = radiomics.features.clone();
    features.extend(deep);
    let tasks = timer.run(Stage::Fusion, progress, || {
        Ok(tasks_of(rt, &features, study.clinical.as_ref()))
    })?;
    let overlays = timer.run(Stage::Report, progress, || overlays_of(&study, &gradcam))?;
    let mut warnings = study.warnings.clone();
    for (k, why) in &radiomics.missing {
        warnings.push(format!("feature {k} not computed: {why}"));
    }
    let result = CaseResult {
        schema: SCHEMA.into(),
        software: Software::current(),
        case_id: study.id.clone(),
        model: rt.model_summary(),
        precision,
        inputs: inputs_of(&study),
        feature_settings_sha256: rt.params.hash(),
        tasks,
        quality: quality_of(
            &study,
            radiomics.missing.iter().map(|(k, _)| k.clone()).collect(),
        ),
        warnings,
        timings: timer.timings,
    };
    Ok(CaseOutput {
        result,
        features,
        overlays,
    })
}

/// The service's processor: the real pipeline, writing straight into the spool's output folder.
#[derive(Debug)]
pub struct PipelineProcessor {
    runtime: Runtime,
    bundle: bool,
}

impl PipelineProcessor {
    /// Wraps a loaded runtime; `bundle` also writes `<case-id>.tar.zst`.
    pub fn new(runtime: Runtime, bundle: bool) -> PipelineProcessor {
        PipelineProcessor { runtime, bundle }
    }
}

fn service_stage(stage: Stage) -> crate::service::processor::Stage {
    use crate::service::processor::Stage as S;
    match stage {
        Stage::Load => S::Load,
        Stage::Radiomics => S::Radiomics,
        Stage::Inference => S::Inference,
        Stage::Fusion => S::Fusion,
        Stage::Report => S::Report,
    }
}

/// One line for the status page: the assessed tasks, or that none could be assessed.
pub fn headline(result: &CaseResult) -> String {
    let assessed: Vec<String> = result
        .tasks
        .iter()
        .filter_map(|t| {
            let p = t.probability?;
            let label = if t.positive? {
                &t.positive_label
            } else {
                &t.negative_label
            };
            Some(format!("{label} (p = {p:.2})"))
        })
        .collect();
    if assessed.is_empty() {
        format!(
            "features computed (ROI {:.1} mL); no task assessable with this model",
            result.quality.roi_volume_ml
        )
    } else {
        assessed.join(" · ")
    }
}

impl crate::service::processor::CaseProcessor for PipelineProcessor {
    fn info(&self) -> crate::service::processor::ProcessorInfo {
        let m = &self.runtime.engine.package().manifest;
        crate::service::processor::ProcessorInfo {
            model_name: m.name.clone(),
            model_version: m.version.clone(),
            demo: m.demo,
            precision: self.runtime.engine.precision().name().to_owned(),
            card_summary: m.intended_use.clone(),
        }
    }

    fn process(
        &self,
        case_dir: &Path,
        out_dir: &Path,
        progress: &dyn Fn(crate::service::processor::Stage, f32),
    ) -> Result<crate::service::processor::CaseSummary, crate::service::processor::ProcessError>
    {
        use crate::service::processor::{CaseSummary, ProcessError, Stage as S};
        let to_process_error = |e: PipelineError| ProcessError {
            kind: e.kind,
            message: e.message,
            hint: e.hint,
            stage: service_stage(e.stage),
        };
        let output = run_case(case_dir, &self.runtime, &|s, f| {
            progress(service_stage(s), f)
        })
        .map_err(to_process_error)?;
        progress(S::Publish, 0.0);
        let files = crate::report::write_case_files(out_dir, &output, self.bundle)
            .map_err(|e| ProcessError::from_classified(S::Publish, &e))?;
        progress(S::Publish, 1.0);
        Ok(CaseSummary {
            headline: headline(&output.result),
            report: "report.html".into(),
            files,
            warnings: output.result.warnings.clone(),
        })
    }
}
