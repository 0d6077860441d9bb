//! Radiomics at PyRadiomics parity (IBSI): settings, image types, feature families.
//!
//! * [`settings`]: PyRadiomics parameter files (`imageType`, `featureClass`, `setting`), read as
//!   they are; unknown keys are errors.
//! * [`features`]: the typed [`features::FeatureId`]s, named exactly as PyRadiomics names them.
//! * [`extractor`]: mask checks, resampling and filters through a [`extractor::FilterProvider`],
//!   families per image type in parallel, one `Result` per feature.
//! * [`roi`], [`matrices`], [`linalg`]: the ROI crop and discretisation, texture matrix
//!   builders (PyRadiomics' `cmatrices.c`), small eigenvalue solver.
//! * [`firstorder`], [`shape`], [`glcm`], [`glrlm`], [`glszm`], [`gldm`], [`ngtdm`]: the
//!   formulas, one module per family.
//! * [`output`]: JSON and CSV renderings.
//! * [`filters`]: derived image types (LoG, wavelet) and the shared [`filters::ImageTypeSpec`].
//! * [`preprocess`]: PyRadiomics' resampling, pre-cropping and casting before extraction.
pub mod extractor;
pub mod features;
pub mod filters;
pub mod firstorder;
pub mod glcm;
pub mod gldm;
pub mod glrlm;
pub mod glszm;
pub mod linalg;
pub mod matrices;
pub mod ngtdm;
pub mod output;
pub mod preprocess;
pub mod provider;
pub mod roi;
pub mod settings;
pub mod shape;

pub use extractor::{
    extract, Diagnostics, Extraction, FeatureResult, FilterProvider, NoFilters, ResampleRequest,
};
pub use settings::Params;

use std::path::PathBuf;

use crate::error::{Classify, ErrorKind};

/// Everything that can stop an extraction (per-feature problems are `Result`s in the output).
#[derive(Debug, thiserror::Error)]
pub enum RadiomicsError {
    /// The parameter file cannot be read.
    #[error("cannot read parameter file '{}': {source}", path.display())]
    ReadParams {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A problem inside a named parameter file.
    #[error("parameter file '{}': {source}", path.display())]
    InParams {
        /// The file.
        path: PathBuf,
        /// The problem.
        source: Box<RadiomicsError>,
    },
    /// Not YAML, or not the expected structure.
    #[error("invalid parameter YAML: {0}")]
    Yaml(String),
    /// A key PyRadiomics does not know, or this engine does not support.
    #[error("unknown or unsupported key '{key}' in {section}")]
    UnknownKey {
        /// Where.
        section: String,
        /// The key.
        key: String,
    },
    /// A setting with a bad value.
    #[error("setting '{key}': {problem}")]
    Setting {
        /// The key.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// Image and mask are not on the same grid.
    #[error("image and mask grids differ: {0}")]
    GeometryMismatch(String),
    /// The mask has no labelled voxel at all.
    #[error("no labels found in the mask (nothing is segmented)")]
    EmptyMask,
    /// The requested label is absent.
    #[error("label {label} is not present in the mask (labels present: {present:?})")]
    LabelMissing {
        /// Requested label.
        label: i64,
        /// Labels that are present.
        present: Vec<i64>,
    },
    /// A one-voxel ROI.
    #[error("the ROI is a single voxel; features cannot be extracted from one voxel")]
    SingleVoxel,
    /// Flatter than `minimumROIDimensions`.
    #[error("the ROI spans {dims} dimension(s), minimumROIDimensions requires {minimum}")]
    TooFewDimensions {
        /// Dimensions with more than one voxel.
        dims: usize,
        /// Required.
        minimum: usize,
    },
    /// Not larger than `minimumROISize`.
    #[error("the ROI has {voxels} voxels, minimumROISize requires more than {minimum}")]
    RoiTooSmall {
        /// ROI voxels.
        voxels: usize,
        /// The setting.
        minimum: usize,
    },
    /// No voxel of the ROI is left after `resegmentRange`.
    #[error("no ROI voxel is within resegmentRange {0:?}")]
    ResegmentedEmpty(Vec<f64>),
    /// A filter or resampling this build (or this provider) does not have.
    #[error("{0} is not available in this build")]
    NotAvailable(String),
    /// A filter or resampling step failed.
    #[error("{what} failed: {message}")]
    Filter {
        /// Which step.
        what: String,
        /// Why.
        message: String,
    },
}

impl Classify for RadiomicsError {
    fn kind(&self) -> ErrorKind {
        match self {
            RadiomicsError::ReadParams { .. }
            | RadiomicsError::InParams { .. }
            | RadiomicsError::Yaml(_)
            | RadiomicsError::UnknownKey { .. }
            | RadiomicsError::Setting { .. }
            | RadiomicsError::NotAvailable(_) => ErrorKind::Config,
            RadiomicsError::Filter { .. } => ErrorKind::Internal,
            _ => ErrorKind::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            RadiomicsError::UnknownKey { .. } | RadiomicsError::InParams { .. } => Some(
                "check the spelling against the PyRadiomics parameter-file documentation".into(),
            ),
            RadiomicsError::LabelMissing { .. } => {
                Some("choose one of the labels present with --label".into())
            }
            RadiomicsError::TooFewDimensions { .. } | RadiomicsError::SingleVoxel => {
                Some("the segmentation is too small or flat for 3-D features".into())
            }
            _ => None,
        }
    }
}
