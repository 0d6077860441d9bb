//! Deterministic synthetic labelled cases: `glioedge phantom`.
//!
//! No labelled glioma cohort is reachable offline, so the box makes its own — for end-to-end
//! tests, for fitting and validating the demo models, for benchmarks of growing size, and as an
//! acceptance "QA phantom" for an installed box. A cohort is a folder of case folders in the
//! drop-folder layout (`t1 t1c t2 flair adc cbf .nii.gz`, `mask.nii.gz` with BraTS labels
//! 1 / 2 / 3, `clinical.toml`) plus `labels.csv` and `cohort.toml`.
//!
//! The pieces, in the order a case is made:
//! * [`rng`]: ChaCha8 streams per case and purpose (portable, thread-count independent);
//! * [`cohort`]: latent labels → clinical variables and recorded (noisy) labels;
//! * [`anatomy`]: the procedural head (grey/white matter, sulci, deep nuclei, ventricles, CSF,
//!   skull and scalp);
//! * [`tumour`]: compartments and MR parameters from the latent scores — the literature claim
//!   behind each parameter is tabulated there;
//! * [`signal`]: tissue parameters → T1 / T1c / T2 / FLAIR signal equations, ADC and CBF maps;
//! * [`render`]: grids (`brats`, `raw`), partial volume, bias field, Rician noise;
//! * [`field`]: smooth random fields and shapes;
//! * [`preview`]: a PNG montage of a case for a person to look at.
//!
//! Determinism: every random number comes from [`rng`]; all transcendental functions are
//! `libm`'s (pure Rust, the same bits on every CPU); reductions run in a fixed order; NIfTI
//! files are written with a fixed gzip level and no timestamp. The same seed and
//! [`cohort::GENERATOR_VERSION`] give byte-identical files on any machine and thread count.

pub mod anatomy;
pub mod cohort;
pub mod field;
pub mod preview;
pub mod render;
pub mod rng;
pub mod signal;
pub mod tumour;

use std::path::{Path, PathBuf};

use rayon::prelude::*;

pub use cohort::{case_id, draw_case, CaseSpec, CohortOptions, Labels, Params, Task};
pub use render::GridKind;

use crate::error::{Classify, ErrorKind};
use crate::volume::{write_nifti, StoredType, VolumeError};

/// Errors of the phantom generator.
#[derive(Debug, thiserror::Error)]
pub enum PhantomError {
    /// A bad option.
    #[error("phantom: {0}")]
    BadOption(String),
    /// A file or folder could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A volume could not be written.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// A case for the preview could not be read.
    #[error(transparent)]
    Case(#[from] crate::case::CaseError),
    /// Something that should not happen.
    #[error("phantom: internal error: {0}")]
    Internal(String),
}

impl Classify for PhantomError {
    fn kind(&self) -> ErrorKind {
        match self {
            PhantomError::BadOption(_) => ErrorKind::BadInput,
            PhantomError::Case(e) => e.kind(),
            PhantomError::Write { .. } | PhantomError::Volume(_) | PhantomError::Internal(_) => {
                ErrorKind::Internal
            }
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            PhantomError::Write { .. } => {
                Some("check that the output folder is writable and the disk has room".into())
            }
            PhantomError::Case(e) => e.hint(),
            _ => None,
        }
    }
}

/// What was generated.
#[derive(Debug, Clone)]
pub struct CohortSummary {
    /// Case ids in order.
    pub case_ids: Vec<String>,
    /// Recorded labels per case.
    pub labels: Vec<Labels>,
}

/// Upper bound on cases per call (about 60 MB per brats case on disk).
pub const MAX_CASES: usize = 100_000;

/// Writes one case folder `dir` (created if missing).
pub fn write_case(dir: &Path, spec: &CaseSpec, seed: u64) -> Result<(), PhantomError> {
    std::fs::create_dir_all(dir).map_err(|source| PhantomError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let rendered = spec.subject.render(seed, spec.index);
    let mut jobs: Vec<(String, &crate::volume::Volume, StoredType)> = signal::SEQUENCES
        .iter()
        .zip(rendered.images.iter())
        .map(|(name, v)| (format!("{name}.nii.gz"), v, StoredType::I16))
        .collect();
    jobs.push(("mask.nii.gz".into(), &rendered.mask, StoredType::U8));
    jobs.par_iter()
        .map(|(name, v, t)| write_nifti(&dir.join(name), v, *t))
        .collect::<Result<Vec<()>, VolumeError>>()?;
    cohort::write_text(
        &dir.join("clinical.toml"),
        &cohort::clinical_toml(&spec.clinical),
    )
}

/// Generates a cohort into `out` (created if missing): the case folders, `labels.csv` and
/// `cohort.toml`. `progress` is called after each case.
pub fn generate_cohort(
    out: &Path,
    opts: &CohortOptions,
    mut progress: impl FnMut(&CaseSpec),
) -> Result<CohortSummary, PhantomError> {
    if opts.cases == 0 || opts.cases > MAX_CASES {
        return Err(PhantomError::BadOption(format!(
            "--cases must be between 1 and {MAX_CASES}, got {}",
            opts.cases
        )));
    }
    let p = &opts.params;
    for (name, v, lo, hi) in [
        ("effect size (idh)", p.effect_idh, 0.0, 10.0),
        ("effect size (ki67)", p.effect_ki67, 0.0, 10.0),
        ("effect size (tp)", p.effect_tp, 0.0, 10.0),
        ("label noise", p.label_noise, 0.0, 0.5),
        ("IDH prevalence", p.p_idh_mutant, 0.0, 1.0),
        ("TP prevalence", p.p_true_progression, 0.0, 1.0),
    ] {
        if !(v.is_finite() && (lo..=hi).contains(&v)) {
            return Err(PhantomError::BadOption(format!(
                "{name} = {v} is outside {lo}..{hi}"
            )));
        }
    }
    std::fs::create_dir_all(out).map_err(|source| PhantomError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let mut csv = String::from(cohort::LABELS_HEADER);
    let mut summary = CohortSummary {
        case_ids: Vec::with_capacity(opts.cases),
        labels: Vec::with_capacity(opts.cases),
    };
    for k in 0..opts.cases as u64 {
        let spec = draw_case(opts, k);
        write_case(&out.join(&spec.id), &spec, opts.seed)?;
        csv.push_str(&cohort::labels_line(&spec.id, &spec.recorded));
        summary.case_ids.push(spec.id.clone());
        summary.labels.push(spec.recorded);
        progress(&spec);
    }
    cohort::write_text(&out.join("labels.csv"), &csv)?;
    cohort::write_text(&out.join("cohort.toml"), &cohort::cohort_toml(opts)?)?;
    Ok(summary)
}
