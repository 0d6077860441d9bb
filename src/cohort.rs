//! A labelled cohort of case folders: feature extraction for every case (the pipeline's own
//! stages, plus radiomics on the 1-voxel eroded and dilated ROI for the reproducibility
//! filter), the tasks' case selections and labels from `labels.csv`, and the two cohort
//! commands built on them: [`fit_package`] (`glioedge fit`) and [`validate_cohort`]
//! (`glioedge validate --cohort`).
//!
//! A case that fails is reported with its stage and reason and skipped; a fit or a validation
//! never stops for one bad case. Everything is in case-id order, so the same inputs and seed
//! give byte-identical outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::case::study::load_study;
use crate::case::{CaseFiles, Sequence};
use crate::error::{Classify, ErrorKind};
use crate::fusion::fit::{
    fit_head, fit_task, models_scores, validation_models, ClinicalTable, FeatureTable, FitConfig,
    FitReport, SignatureFit, SignatureSpec,
};
use crate::fusion::package::{FittedTask, FittedTasks, TASKS_FORMAT};
use crate::fusion::Nomogram;
use crate::model::{write_file_atomic, write_manifest, FileEntry, FileRole, ModelPackage};
use crate::pipeline::{inference_of, radiomics_in, PipelineError, Runtime, Stage};
use crate::stats::report::{
    validate_scores, Excluded, ScoreInput, ValidateOptions, ValidationReport,
};
use crate::stats::table::Table;
use crate::volume::mask::Roi;

/// A cohort-level failure (the cohort as a whole cannot be used).
#[derive(Debug, thiserror::Error)]
pub enum CohortError {
    /// Bad input: a folder, the labels, too few usable cases.
    #[error("{0}")]
    Input(String),
    /// Writing the output failed, or another internal problem.
    #[error("{0}")]
    Internal(String),
}

impl Classify for CohortError {
    fn kind(&self) -> ErrorKind {
        match self {
            CohortError::Input(_) => ErrorKind::BadInput,
            CohortError::Internal(_) => ErrorKind::Internal,
        }
    }
    fn hint(&self) -> Option<String> {
        match self {
            CohortError::Input(_) => Some(
                "a cohort is a folder of case folders plus labels.csv (case_id, idh_mutant, \
                 ki67_high, post_treatment, true_progression); `glioedge phantom` makes one"
                    .into(),
            ),
            CohortError::Internal(_) => None,
        }
    }
}

fn input(msg: String) -> CohortError {
    CohortError::Input(msg)
}

/// The features of one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseFeatures {
    /// Case id (the folder name).
    pub id: String,
    /// Radiomics (`<seq>_<name>`) and deep features (`dl_<seq>_<i>`) on the case's ROI.
    pub features: BTreeMap<String, f64>,
    /// Radiomics on the ROI eroded by one voxel (6-connected).
    pub eroded: BTreeMap<String, f64>,
    /// Radiomics on the ROI dilated by one voxel (6-connected).
    pub dilated: BTreeMap<String, f64>,
    /// Clinical variables (`Clinical::numeric` names) the case gives.
    pub clinical: BTreeMap<String, f64>,
}

/// A case that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedCase {
    /// Case id (folder name).
    pub case: String,
    /// Stage that failed.
    pub stage: String,
    /// What went wrong.
    pub reason: String,
}

/// Clinical variables any task may offer to its nomogram.
pub const CLINICAL_VARIABLES: [&str; 7] = [
    "age_years",
    "sex_male",
    "kps",
    "post_treatment",
    "weeks_since_radiotherapy",
    "temozolomide",
    "mgmt_methylated",
];

/// Which cases of a cohort a task uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseSelection {
    /// `post_treatment = 0` (or no such column).
    Untreated,
    /// `post_treatment = 1` (or no such column).
    PostTreatment,
}

impl CaseSelection {
    fn name(self) -> &'static str {
        match self {
            CaseSelection::Untreated => "untreated",
            CaseSelection::PostTreatment => "post_treatment",
        }
    }
}

/// A task of the two seeds.
#[derive(Debug, Clone, Copy)]
pub struct TaskDef {
    /// Key in packages and results.
    pub key: &'static str,
    /// Name on the command line.
    pub cli: &'static str,
    /// `labels.csv` column.
    pub label: &'static str,
    /// Cases used.
    pub cases: CaseSelection,
    /// Clinical variables offered to the nomogram.
    pub clinical: &'static [&'static str],
    /// Fit a seed-000 head over the deep features (written into `heads.json`).
    pub head: bool,
}

/// The three tasks: IDH and Ki-67 (seed 000, untreated gliomas), true progression vs
/// pseudoprogression (seed 001, after chemoradiation).
pub const TASK_DEFS: [TaskDef; 3] = [
    TaskDef {
        key: "idh",
        cli: "idh",
        label: "idh_mutant",
        cases: CaseSelection::Untreated,
        clinical: &["age_years", "sex_male", "kps"],
        head: true,
    },
    TaskDef {
        key: "ki67",
        cli: "ki67",
        label: "ki67_high",
        cases: CaseSelection::Untreated,
        clinical: &["age_years", "sex_male", "kps"],
        head: true,
    },
    TaskDef {
        key: "tp_psp",
        cli: "tp-psp",
        label: "true_progression",
        cases: CaseSelection::PostTreatment,
        clinical: &[
            "age_years",
            "kps",
            "weeks_since_radiotherapy",
            "mgmt_methylated",
            "temozolomide",
        ],
        head: false,
    },
];

/// The task definitions named on the command line (`idh`, `ki67`, `tp-psp`, `all`).
pub fn tasks_named(name: &str) -> Result<Vec<TaskDef>, CohortError> {
    if name == "all" {
        return Ok(TASK_DEFS.to_vec());
    }
    TASK_DEFS
        .iter()
        .find(|t| t.cli == name || t.key == name)
        .map(|t| vec![*t])
        .ok_or_else(|| input(format!("unknown task {name:?} (idh, ki67, tp-psp or all)")))
}

/// The case folders of a cohort: its sub-folders (not hidden), sorted by name.
pub fn list_cases(dir: &Path) -> Result<Vec<PathBuf>, CohortError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| input(format!("cohort {}: cannot read: {e}", dir.display())))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| input(format!("cohort {}: cannot read: {e}", dir.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if e.path().is_dir() {
            out.push(e.path());
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(input(format!("cohort {}: no case folders", dir.display())));
    }
    Ok(out)
}

/// `labels.csv`: per case id, per column, the value (`None` when empty).
#[derive(Debug, Clone, Default)]
pub struct CohortLabels {
    /// Columns other than `case_id`.
    pub columns: Vec<String>,
    /// Rows by case id.
    pub rows: BTreeMap<String, Vec<Option<f64>>>,
}

impl CohortLabels {
    /// Reads a `labels.csv` with a `case_id` column and numeric 0/1 label columns.
    pub fn read(path: &Path) -> Result<CohortLabels, CohortError> {
        let t = Table::read(path).map_err(|e| input(e.to_string()))?;
        let id = t
            .column_index("case_id")
            .map_err(|e| input(e.to_string()))?;
        let mut columns = Vec::new();
        let mut cols = Vec::new();
        for (j, name) in t.header.iter().enumerate() {
            if j == id {
                continue;
            }
            columns.push(name.clone());
            cols.push(t.numeric(name).map_err(|e| input(e.to_string()))?);
        }
        let mut rows = BTreeMap::new();
        for (i, row) in t.rows.iter().enumerate() {
            let key = row[id].trim().to_string();
            let values = cols.iter().map(|c| c[i]).collect();
            if rows.insert(key.clone(), values).is_some() {
                return Err(input(format!(
                    "{}: case {key} appears twice",
                    path.display()
                )));
            }
        }
        Ok(CohortLabels { columns, rows })
    }

    /// The value of `column` for `case`: `Err` with the reason when the case has no row.
    fn get(&self, case: &str, column: &str) -> Result<Option<f64>, String> {
        let row = self
            .rows
            .get(case)
            .ok_or_else(|| "no row in labels.csv".to_string())?;
        Ok(self
            .columns
            .iter()
            .position(|c| c == column)
            .and_then(|j| row[j]))
    }

    /// Whether `case` belongs to a task's selection (unknown treatment status: it does not).
    fn selected(&self, case: &str, sel: CaseSelection) -> bool {
        if !self.columns.iter().any(|c| c == "post_treatment") {
            return self.rows.contains_key(case);
        }
        match (self.get(case, "post_treatment"), sel) {
            (Ok(Some(v)), CaseSelection::Untreated) => v == 0.0,
            (Ok(Some(v)), CaseSelection::PostTreatment) => v == 1.0,
            _ => false,
        }
    }
}

/// The ROI eroded (`grow = false`) or dilated (`grow = true`) by one voxel, 6-connected;
/// voxels outside the grid count as outside the ROI.
pub fn morph(roi: &Roi, grow: bool) -> Roi {
    let [nx, ny, nz] = roi.dims;
    let at = |i: usize, j: usize, k: usize| roi.inside[i + nx * (j + ny * k)];
    let mut out = vec![false; roi.inside.len()];
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let n = [
                    (i > 0).then(|| at(i - 1, j, k)),
                    (i + 1 < nx).then(|| at(i + 1, j, k)),
                    (j > 0).then(|| at(i, j - 1, k)),
                    (j + 1 < ny).then(|| at(i, j + 1, k)),
                    (k > 0).then(|| at(i, j, k - 1)),
                    (k + 1 < nz).then(|| at(i, j, k + 1)),
                ];
                let me = at(i, j, k);
                out[i + nx * (j + ny * k)] = if grow {
                    me || n.contains(&Some(true))
                } else {
                    me && n.iter().all(|v| *v == Some(true))
                };
            }
        }
    }
    Roi {
        dims: roi.dims,
        inside: out,
    }
}

/// Features of one case on the runtime's sequences (`sequences`, glioedge names): radiomics
/// on the ROI, the eroded and the dilated ROI, and the deep features.
pub fn extract_case(
    dir: &Path,
    rt: &Runtime,
    sequences: &[Sequence],
) -> Result<CaseFeatures, PipelineError> {
    let files = CaseFiles::discover(dir).map_err(|e| PipelineError::from_err(Stage::Load, e))?;
    let study =
        load_study(&files, &rt.config).map_err(|e| PipelineError::from_err(Stage::Load, e))?;
    let missing: Vec<&str> = sequences
        .iter()
        .filter(|s| !study.images.contains_key(s))
        .map(|s| s.name())
        .collect();
    if !missing.is_empty() {
        return Err(PipelineError::bad_input(
            Stage::Load,
            format!("sequence(s) {} missing", missing.join(", ")),
        ));
    }
    let rad = radiomics_in(&study, &study.roi, Some(sequences), &rt.params)?;
    let eroded_roi = morph(&study.roi, false);
    if eroded_roi.count() == 0 {
        return Err(PipelineError::bad_input(
            Stage::Radiomics,
            "the ROI vanishes when eroded by one voxel",
        ));
    }
    let eroded = radiomics_in(&study, &eroded_roi, Some(sequences), &rt.params)?;
    let dilated = radiomics_in(
        &study,
        &morph(&study.roi, true),
        Some(sequences),
        &rt.params,
    )?;
    let deep = inference_of(&study, rt)?;
    let mut features = rad.features;
    features.extend(deep.features);
    let clinical = CLINICAL_VARIABLES
        .iter()
        .filter_map(|n| {
            study
                .clinical
                .as_ref()
                .and_then(|c| c.numeric(n))
                .map(|v| ((*n).to_string(), v))
        })
        .collect();
    Ok(CaseFeatures {
        id: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        features,
        eroded: eroded.features,
        dilated: dilated.features,
        clinical,
    })
}

/// What identifies extracted features: a cached case is reused only when this matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CacheKey {
    software: String,
    model_sha256: String,
    final_norm_sha256: String,
    radiomics_sha256: String,
    precision: String,
    sequences: Vec<String>,
    inputs_sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheEntry {
    key: CacheKey,
    features: CaseFeatures,
}

/// sha256 over the names, sizes and modification-independent contents of a case folder's
/// files (so an edited case is extracted again).
fn folder_sha256(dir: &Path) -> Result<String, String> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    let mut h = Sha256::new();
    for p in names {
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        h.update(
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(Sha256::digest(&bytes));
    }
    Ok(hex::encode(h.finalize()))
}

/// Features of every case folder, in order; failures are reported (stderr) and listed.
/// With `cache`, each case's features are kept as `<cache>/<case>.json` and reused when the
/// case files, model, settings and sequences are the same.
pub fn extract_cohort(
    cases: &[PathBuf],
    rt: &Runtime,
    sequences: &[Sequence],
    cache: Option<&Path>,
) -> (Vec<CaseFeatures>, Vec<FailedCase>) {
    let pkg = rt.engine.package();
    let sha = |r: FileRole| pkg.file(r).map(|f| f.sha256.clone()).unwrap_or_default();
    let base_key = CacheKey {
        software: crate::VERSION.into(),
        model_sha256: sha(FileRole::Model),
        final_norm_sha256: sha(FileRole::FinalNorm),
        radiomics_sha256: rt.params.hash(),
        precision: rt.engine.precision().name().into(),
        sequences: sequences.iter().map(|s| s.name().to_string()).collect(),
        inputs_sha256: String::new(),
    };
    if let Some(c) = cache {
        if let Err(e) = std::fs::create_dir_all(c) {
            eprintln!("warning: feature cache {}: {e}; not caching", c.display());
        }
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let t0 = Instant::now();
    for (k, dir) in cases.iter().enumerate() {
        let id = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let t = Instant::now();
        let mut key = base_key.clone();
        let cached = cache.and_then(|c| {
            key.inputs_sha256 = folder_sha256(dir).ok()?;
            let bytes = std::fs::read(c.join(format!("{id}.json"))).ok()?;
            let e: CacheEntry = serde_json::from_slice(&bytes).ok()?;
            // Features of more sequences serve too (the tables take only theirs).
            let covers = key.sequences.iter().all(|s| e.key.sequences.contains(s));
            let same = CacheKey {
                sequences: key.sequences.clone(),
                ..e.key.clone()
            } == key;
            (same && covers).then_some(e.features)
        });
        let (res, how) = match cached {
            Some(f) => (Ok(f), "cached"),
            None => (extract_case(dir, rt, sequences), "extracted"),
        };
        match res {
            Ok(f) => {
                if let (Some(c), "extracted") = (cache, how) {
                    if !key.inputs_sha256.is_empty() {
                        let entry = CacheEntry {
                            key,
                            features: f.clone(),
                        };
                        if let Ok(bytes) = serde_json::to_vec(&entry) {
                            let _ = write_file_atomic(&c.join(format!("{id}.json")), &bytes);
                        }
                    }
                }
                eprintln!(
                    "[{}/{}] {id}: {how} in {:.1} s ({:.0} s so far)",
                    k + 1,
                    cases.len(),
                    t.elapsed().as_secs_f64(),
                    t0.elapsed().as_secs_f64()
                );
                ok.push(f);
            }
            Err(e) => {
                eprintln!(
                    "[{}/{}] {id}: FAILED at {}: {} (skipped)",
                    k + 1,
                    cases.len(),
                    e.stage.name(),
                    e.message
                );
                failed.push(FailedCase {
                    case: id,
                    stage: e.stage.name().into(),
                    reason: e.message,
                });
            }
        }
    }
    (ok, failed)
}

/// Whether a feature name belongs to one of `sequences` (radiomics `<seq>_…`, deep
/// `dl_<seq>_…`).
fn of_sequences(name: &str, sequences: &[String]) -> bool {
    sequences.iter().any(|s| {
        name.strip_prefix("dl_").map_or_else(
            || name.starts_with(&format!("{s}_")),
            |r| r.starts_with(&format!("{s}_")),
        )
    })
}

#[derive(Clone, Copy)]
enum Which {
    Roi,
    Eroded,
    Dilated,
}

impl Which {
    fn of(self, c: &CaseFeatures) -> &BTreeMap<String, f64> {
        match self {
            Which::Roi => &c.features,
            Which::Eroded => &c.eroded,
            Which::Dilated => &c.dilated,
        }
    }
}

/// The feature table of `cases` over the features of `sequences` that every case has
/// (with the eroded and dilated radiomics as perturbed tables), and the names left out
/// because some case lacks them.
pub fn feature_table(cases: &[&CaseFeatures], sequences: &[String]) -> (FeatureTable, Vec<String>) {
    let mut names: Vec<String> = Vec::new();
    let mut partial = Vec::new();
    if let Some(first) = cases.first() {
        for name in first.features.keys() {
            if !of_sequences(name, sequences) {
                continue;
            }
            if cases
                .iter()
                .all(|c| c.features.get(name).is_some_and(|v| v.is_finite()))
            {
                names.push(name.clone());
            } else {
                partial.push(name.clone());
            }
        }
    }
    let ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    let column = |which: Which, n: &str| {
        cases
            .iter()
            .map(|c| which.of(c).get(n).copied())
            .collect::<Option<Vec<f64>>>()
    };
    let perturbed = |which: Which| {
        let mut t = FeatureTable {
            case_ids: ids.clone(),
            names: Vec::new(),
            values: Vec::new(),
            perturbed: Vec::new(),
        };
        for n in &names {
            if let Some(col) = column(which, n).filter(|c| c.iter().all(|v| v.is_finite())) {
                t.names.push(n.clone());
                t.values.push(col);
            }
        }
        t
    };
    let eroded = perturbed(Which::Eroded);
    let dilated = perturbed(Which::Dilated);
    let values = names
        .iter()
        .map(|n| column(Which::Roi, n).unwrap_or_default())
        .collect();
    (
        FeatureTable {
            case_ids: ids,
            names,
            values,
            perturbed: vec![eroded, dilated],
        },
        partial,
    )
}

/// The clinical table of `cases` over `names`.
pub fn clinical_table(cases: &[&CaseFeatures], names: &[&str]) -> ClinicalTable {
    ClinicalTable {
        names: names.iter().map(|s| s.to_string()).collect(),
        values: names
            .iter()
            .map(|n| cases.iter().map(|c| c.clinical.get(*n).copied()).collect())
            .collect(),
    }
}

/// The cases of a task and their labels (`None`: missing), plus the cases left out of the
/// task with the reason (no row in labels.csv).
fn task_cases<'a>(
    def: &TaskDef,
    cases: &'a [CaseFeatures],
    labels: &CohortLabels,
) -> (Vec<&'a CaseFeatures>, Vec<Option<f64>>, Vec<Excluded>) {
    let mut sel = Vec::new();
    let mut y = Vec::new();
    let mut excluded = Vec::new();
    for c in cases {
        match labels.get(&c.id, def.label) {
            Err(reason) => excluded.push(Excluded {
                case: c.id.clone(),
                reason,
            }),
            Ok(v) => {
                if labels.selected(&c.id, def.cases) {
                    sel.push(c);
                    y.push(v);
                }
            }
        }
    }
    (sel, y, excluded)
}

/// Options of [`fit_package`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Tasks to fit.
    pub tasks: Vec<TaskDef>,
    /// Sequences the package uses (glioedge names); the first is the one the heads read.
    pub sequences: Vec<String>,
    /// Seed of the CV folds.
    pub seed: u64,
    /// Package name of the new package (default: the base package's).
    pub name: Option<String>,
}

/// What a fit did, as `fit_report.json` holds it.
#[derive(Debug, Clone, Serialize)]
pub struct PackageFitReport {
    /// glioedge version.
    pub glioedge_version: String,
    /// Base package name and version.
    pub base_package: String,
    /// Sequences.
    pub sequences: Vec<String>,
    /// Seed.
    pub seed: u64,
    /// Inference precision of the deep features.
    pub precision: String,
    /// Case folders found.
    pub cases_found: usize,
    /// Cases whose features were extracted.
    pub cases_extracted: usize,
    /// Cases that failed (skipped).
    pub failed: Vec<FailedCase>,
    /// Features left out because some case lacks them.
    pub features_incomplete: Vec<String>,
    /// Per task.
    pub tasks: Vec<TaskFitReport>,
}

/// One task of a package fit.
#[derive(Debug, Clone, Serialize)]
pub struct TaskFitReport {
    /// Task key.
    pub task: String,
    /// Cases left out (no label, no row).
    pub excluded: Vec<Excluded>,
    /// The chain's report.
    pub fit: FitReport,
    /// The seed-000 head over the deep features of the first sequence, if fitted.
    pub head: Option<SignatureFit>,
}

fn bump_minor(v: &str) -> String {
    let parts: Vec<&str> = v.split('.').collect();
    match (
        parts.first().and_then(|p| p.parse::<u64>().ok()),
        parts.get(1).and_then(|p| p.parse::<u64>().ok()),
    ) {
        (Some(a), Some(b)) => format!("{a}.{}.0", b + 1),
        _ => format!("{v}.fitted"),
    }
}

fn internal(e: impl std::fmt::Display) -> CohortError {
    CohortError::Internal(e.to_string())
}

fn copy_atomic(from: &Path, to: &Path) -> Result<(), CohortError> {
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p).map_err(|e| internal(format!("{}: {e}", p.display())))?;
    }
    let bytes = std::fs::read(from).map_err(|e| internal(format!("{}: {e}", from.display())))?;
    write_file_atomic(to, &bytes).map_err(internal)
}

/// `glioedge fit`: fits the tasks on the cohort's features and writes a new package at `out`
/// (a copy of the base package with `tasks.json`, fitted heads, a fit report, the manifest
/// version bumped and every checksum recomputed). The package is assembled in a temporary
/// folder beside `out` and renamed into place.
#[allow(clippy::too_many_arguments)]
pub fn fit_package(
    base: &ModelPackage,
    cases: &[CaseFeatures],
    failed: Vec<FailedCase>,
    cases_found: usize,
    labels: &CohortLabels,
    precision: &str,
    opts: &FitOptions,
    out: &Path,
) -> Result<PackageFitReport, CohortError> {
    if out.exists() {
        return Err(input(format!(
            "{} exists; give a new folder for the fitted package",
            out.display()
        )));
    }
    let (_, incomplete) = feature_table(&cases.iter().collect::<Vec<_>>(), &opts.sequences);
    let mut fitted = Vec::new();
    let mut reports = Vec::new();
    let mut heads: BTreeMap<String, (Vec<f64>, f64)> = BTreeMap::new();
    for def in &opts.tasks {
        let (sel, y, mut excluded) = task_cases(def, cases, labels);
        let mut rows = Vec::new();
        let mut yy = Vec::new();
        for (c, v) in sel.iter().zip(&y) {
            match v {
                Some(v) if *v == 0.0 || *v == 1.0 => {
                    rows.push(*c);
                    yy.push(*v);
                }
                Some(v) => excluded.push(Excluded {
                    case: c.id.clone(),
                    reason: format!("{} = {v} is not 0 or 1", def.label),
                }),
                None => excluded.push(Excluded {
                    case: c.id.clone(),
                    reason: format!("{} missing", def.label),
                }),
            }
        }
        eprintln!(
            "fit {}: {} cases ({} positive), {} left out",
            def.key,
            rows.len(),
            yy.iter().filter(|&&v| v == 1.0).count(),
            excluded.len()
        );
        let (table, _) = feature_table(&rows, &opts.sequences);
        let clinical = clinical_table(&rows, def.clinical);
        let mut cfg = FitConfig::seed001(def.key, def.clinical, opts.seed);
        cfg.signatures = vec![
            SignatureSpec {
                name: "rad_score".into(),
                prefixes: opts.sequences.iter().map(|s| format!("{s}_")).collect(),
            },
            SignatureSpec {
                name: "dl_score".into(),
                prefixes: opts.sequences.iter().map(|s| format!("dl_{s}_")).collect(),
            },
        ];
        let t = Instant::now();
        let fit = fit_task(&table, &yy, &clinical, &cfg)
            .map_err(|e| input(format!("{e} ({} cases)", rows.len())))?;
        eprintln!(
            "fit {}: nomogram over {} (training AUC {:.3}) in {:.1} s",
            def.key,
            fit.nomogram
                .variables
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            fit.training_auc,
            t.elapsed().as_secs_f64()
        );
        let head = if def.head {
            let first = opts.sequences.first().cloned().unwrap_or_default();
            let spec = SignatureSpec {
                name: format!("{}_head", def.key),
                prefixes: vec![format!("dl_{first}_")],
            };
            let dl_only = FeatureTable {
                perturbed: Vec::new(),
                ..table.clone()
            };
            let h = fit_head(&dl_only, &yy, &spec, def.key, cfg.folds, opts.seed)
                .map_err(|e| input(e.to_string()))?;
            if let Some((sf, _)) = &h {
                // Back to raw feature space: logit = Σ (c/sd)·x + (b0 − Σ c·mean/sd).
                let d = base.manifest.outputs.feature_dim;
                let mut w = vec![0.0; d];
                let mut b = sf.signature.intercept;
                for (j, f) in sf.signature.features.iter().enumerate() {
                    let idx = f
                        .rsplit('_')
                        .next()
                        .and_then(|i| i.parse::<usize>().ok())
                        .filter(|&i| i < d)
                        .ok_or_else(|| internal(format!("head feature {f} has no index")))?;
                    let c = sf.signature.coefficients[j] / sf.signature.sds[j];
                    w[idx] += c;
                    b -= c * sf.signature.means[j];
                }
                heads.insert(def.key.to_string(), (w, b));
            }
            h.map(|(sf, _)| sf)
        } else {
            None
        };
        fitted.push(FittedTask {
            task: def.key.into(),
            label: def.label.into(),
            cases: def.cases.name().into(),
            n: fit.n,
            n_positive: fit.n_positive,
            training_auc: fit.training_auc,
            nomogram: fit.nomogram.clone(),
            clinical_model: fit.clinical_model.clone(),
            signatures: fit.signatures.iter().map(|s| s.signature.clone()).collect(),
        });
        reports.push(TaskFitReport {
            task: def.key.into(),
            excluded,
            fit,
            head,
        });
    }
    let report = PackageFitReport {
        glioedge_version: crate::VERSION.into(),
        base_package: format!("{} {}", base.manifest.name, base.manifest.version),
        sequences: opts.sequences.clone(),
        seed: opts.seed,
        precision: precision.into(),
        cases_found,
        cases_extracted: cases.len(),
        failed,
        features_incomplete: incomplete,
        tasks: reports,
    };
    let tasks = FittedTasks {
        format: TASKS_FORMAT.into(),
        sequences: opts.sequences.clone(),
        precision: precision.into(),
        seed: opts.seed,
        tasks: fitted,
    };
    write_package(base, &tasks, &heads, &report, opts, out)?;
    Ok(report)
}

#[derive(Serialize)]
struct RawHeadOut {
    weights: Vec<Vec<f64>>,
    bias: Vec<f64>,
}

fn json(v: &impl Serialize) -> Result<Vec<u8>, CohortError> {
    let mut j = serde_json::to_vec_pretty(v).map_err(internal)?;
    j.push(b'\n');
    Ok(j)
}

fn write_package(
    base: &ModelPackage,
    tasks: &FittedTasks,
    heads: &BTreeMap<String, (Vec<f64>, f64)>,
    report: &PackageFitReport,
    opts: &FitOptions,
    out: &Path,
) -> Result<(), CohortError> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let tmp = out.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| internal(format!("{}: {e}", tmp.display())))?;
    let res = (|| -> Result<(), CohortError> {
        let mut m = base.manifest.clone();
        m.version = bump_minor(&base.manifest.version);
        if let Some(n) = &opts.name {
            m.name = n.clone();
        }
        m.sequences = opts.sequences.clone();
        m.intended_use = format!(
            "{} Heads and nomograms fitted by `glioedge fit` on a labelled cohort (see \
             fit_report.md).",
            base.manifest.intended_use
        );
        // Heads: the fitted ones replace the seeded, unfitted ones.
        let mut raw_heads: BTreeMap<String, RawHeadOut> = BTreeMap::new();
        for h in &base.heads {
            let d = base.manifest.outputs.feature_dim;
            let c = h.spec.classes.len();
            let (weights, bias) = match heads.get(&h.spec.name) {
                Some((w, b)) if c == 2 => (vec![vec![0.0; d], w.clone()], vec![0.0, *b]),
                _ => (
                    h.weights
                        .chunks(d)
                        .map(|r| r.iter().map(|&x| f64::from(x)).collect())
                        .collect(),
                    h.bias.iter().map(|&x| f64::from(x)).collect(),
                ),
            };
            raw_heads.insert(h.spec.name.clone(), RawHeadOut { weights, bias });
        }
        for spec in &mut m.heads {
            if heads.contains_key(&spec.name) && spec.classes.len() == 2 {
                spec.fitted = true;
                spec.description = format!(
                    "{} — fitted: LASSO-logistic over the {} deep features (seed-000 head)",
                    spec.description
                        .replace(" (demo weights, not fitted)", "")
                        .replace("(demo weights, not fitted)", ""),
                    opts.sequences.first().map_or("", String::as_str)
                );
            }
        }
        let mut files: Vec<FileEntry> = Vec::new();
        for f in &base.manifest.files {
            let to = tmp.join(&f.path);
            if f.role == FileRole::Heads {
                if let Some(p) = to.parent() {
                    std::fs::create_dir_all(p).map_err(internal)?;
                }
                write_file_atomic(&to, &json(&raw_heads)?).map_err(internal)?;
            } else if matches!(
                f.role,
                FileRole::Tasks | FileRole::FitReport | FileRole::FitReportText
            ) {
                continue;
            } else {
                copy_atomic(&base.dir.join(&f.path), &to)?;
            }
            files.push(f.clone());
        }
        let card = base.dir.join("MODEL_CARD.md");
        if card.exists() {
            copy_atomic(&card, &tmp.join("MODEL_CARD.md"))?;
        }
        for (path, role, bytes) in [
            ("tasks.json", FileRole::Tasks, json(tasks)?),
            ("fit_report.json", FileRole::FitReport, json(report)?),
            (
                "fit_report.md",
                FileRole::FitReportText,
                fit_report_md(report, &m.name, &m.version).into_bytes(),
            ),
        ] {
            write_file_atomic(&tmp.join(path), &bytes).map_err(internal)?;
            files.push(FileEntry {
                path: path.into(),
                role,
                bytes: 0,
                decompressed_bytes: None,
                sha256: String::new(),
            });
        }
        m.files = files;
        write_manifest(&tmp, &m).map_err(internal)?;
        ModelPackage::open(&tmp).map_err(|e| internal(format!("the written package: {e}")))?;
        std::fs::rename(&tmp, out).map_err(|e| internal(format!("{}: {e}", out.display())))
    })();
    if res.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    res
}

fn fit_report_md(r: &PackageFitReport, name: &str, version: &str) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "# Fit report: {name} {version}\n");
    let _ = writeln!(
        s,
        "Fitted by glioedge {} from {} on {} of {} case folders (sequences {}, deep features \
         at {} precision, CV seed {}). **Demo package: synthetic data, no clinical meaning.**\n",
        r.glioedge_version,
        r.base_package,
        r.cases_extracted,
        r.cases_found,
        r.sequences.join(", "),
        r.precision,
        r.seed
    );
    if !r.failed.is_empty() {
        let _ = writeln!(s, "Cases skipped because they failed:\n");
        for f in &r.failed {
            let _ = writeln!(s, "- {} ({}): {}", f.case, f.stage, f.reason);
        }
        s.push('\n');
    }
    let _ = writeln!(
        s,
        "| task | cases (positive) | features → ICC ≥ 0.75 → non-redundant | rad-score features | DL-score features | nomogram variables | training AUC |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for t in &r.tasks {
        let f = &t.fit;
        let count = |n: &str| {
            f.signatures
                .iter()
                .find(|s| s.name == n)
                .map_or("—".to_string(), |s| {
                    format!("{} of {}", s.signature.features.len(), s.candidates)
                })
        };
        let vars: Vec<String> = f
            .nomogram
            .variables
            .iter()
            .map(|v| format!("{} (β {:.3})", v.name, v.coefficient))
            .collect();
        let _ = writeln!(
            s,
            "| {} | {} ({}) | {} → {} → {} | {} | {} | {} | {:.3} |",
            t.task,
            f.n,
            f.n_positive,
            f.features_in,
            f.features_reproducible,
            f.features_non_redundant,
            count("rad_score"),
            count("dl_score"),
            vars.join(", "),
            f.training_auc
        );
    }
    s.push('\n');
    for t in &r.tasks {
        for u in &t.fit.univariable {
            if let Some(why) = &u.removed {
                let _ = writeln!(
                    s,
                    "Note (`{}`): `{}` passed the univariable screen (p = {:.1e}) but its \
                     {why}.\n",
                    t.task, u.name, u.p
                );
            }
        }
        let fits = t.fit.signatures.iter().chain(t.head.as_ref());
        for f in fits {
            if let Some(note) = &f.path_note {
                let _ = writeln!(
                    s,
                    "Note (`{}`, {}): the LASSO path stopped early — {note}; the solutions for \
                     the larger λ values were used (as glmnet does).\n",
                    t.task, f.name
                );
            }
        }
    }
    for t in &r.tasks {
        if let Some(h) = &t.head {
            let _ = writeln!(
                s,
                "Head `{}`: {} of {} deep features, training AUC {:.3}.",
                t.task,
                h.signature.features.len(),
                h.candidates,
                h.training_auc
            );
        }
    }
    s
}

/// The validation of one task on a cohort.
#[derive(Debug, Clone, Serialize)]
pub struct TaskValidation {
    /// Task key.
    pub task: String,
    /// The table.
    pub report: ValidationReport,
}

/// Labels, per-model probabilities and the cases left out, of one task.
pub type TaskScores = (Vec<f64>, Vec<ScoreInput>, Vec<Excluded>);

/// A task's validation with the labels and scores it was computed from (for the charts).
pub type ValidatedTask = (TaskValidation, Vec<f64>, Vec<ScoreInput>);

/// Labels and scores of a task for [`validate_cohort`]: per model the probabilities of the
/// cases every model can assess; failed cases and cases without a label are in `excluded`.
pub fn task_scores(
    fitted: &FittedTask,
    cases: &[CaseFeatures],
    failed: &[FailedCase],
    labels: &CohortLabels,
    sequences: &[String],
) -> Result<TaskScores, CohortError> {
    let def = TASK_DEFS
        .iter()
        .find(|d| d.key == fitted.task)
        .ok_or_else(|| input(format!("task {} unknown to this build", fitted.task)))?;
    let (sel, y, mut excluded) = task_cases(def, cases, labels);
    let mut names: Vec<&str> = Vec::new();
    let models: Vec<(String, Nomogram)> = validation_models(
        &fitted.task,
        fitted.clinical_model.as_ref(),
        &fitted.signatures,
        &fitted.nomogram,
    );
    for (_, m) in &models {
        for v in &m.variables {
            if v.source == crate::fusion::Source::Clinical && !names.contains(&v.name.as_str()) {
                names.push(&v.name);
            }
        }
    }
    let (table, _) = feature_table(&sel, sequences);
    let clinical = clinical_table(&sel, &names);
    let (yy, scores, more) = models_scores(&models, &table, &y, &clinical);
    excluded.extend(more);
    for f in failed {
        excluded.push(Excluded {
            case: f.case.clone(),
            reason: format!("failed at {}: {}", f.stage, f.reason),
        });
    }
    Ok((yy, scores, excluded))
}

/// `glioedge validate --cohort`: per fitted task of the package, the validation table with
/// the nomogram compared against each other model (clinical-only, rad-score, DL-score).
pub fn validate_cohort(
    tasks: &FittedTasks,
    cases: &[CaseFeatures],
    failed: &[FailedCase],
    labels: &CohortLabels,
    opts: &ValidateOptions,
) -> Result<Vec<ValidatedTask>, CohortError> {
    let mut out = Vec::new();
    let opts = ValidateOptions {
        compare_last: true,
        ..opts.clone()
    };
    for t in &tasks.tasks {
        let (y, scores, excluded) = task_scores(t, cases, failed, labels, &tasks.sequences)?;
        let report = validate_scores(&t.task, &y, &scores, excluded, &opts)
            .map_err(|e| input(format!("validate {}: {e}", t.task)))?;
        out.push((
            TaskValidation {
                task: t.task.clone(),
                report,
            },
            y,
            scores,
        ));
    }
    Ok(out)
}
