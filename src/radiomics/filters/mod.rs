//! Derived image types (PyRadiomics `imageoperations.get*Image`).
//!
//! The image-type specification is shared by the settings parser (which reads it from a
//! PyRadiomics parameter file) and the filters (which compute the derived volumes):
//!
//! * [`derived_images`] / [`derived_images_typed`]: one `imageType` entry → named volumes in
//!   PyRadiomics' order (`original`; `wavelet-LLH` … `wavelet-HHH`, `wavelet-LLL`;
//!   `log-sigma-…-mm-3D` per sigma), on the pre-processed grid ([`super::preprocess`]).
//! * [`log`]: SimpleITK's `LaplacianRecursiveGaussianImageFilter` (Deriche IIR, float internal
//!   images, normalised across scale) and PyRadiomics' size checks.
//! * [`wavelet`]: PyWavelets' `swtn` as PyRadiomics calls it (wrap-padding odd axes, one level-1
//!   transform per level, cropping back), in PyWavelets' precision and summation order.
//!
//! Checked against SimpleITK 2.5.7 + PyWavelets 1.8 by `tests/radiomics_filters.rs`
//! (goldens from `tests/peers/radiomics_filters_peer.py`): bit-identical voxels for `float32`
//! images; for integer and `float64` images within `f32` rounding (volumes hold `f32`, PyWavelets
//! works in `float64` there). The filters ignore the mask except to check its grid (as
//! PyRadiomics' do); they depend on the whole pre-processed grid, so they must run before any
//! cropping to the ROI. Every voxel is computed independently of thread scheduling, so results
//! are the same bits for any number of threads.

/// One LoG sigma as written in the parameter file. PyRadiomics names the derived image from the
/// value's text form (`2` → `log-sigma-2-mm-3D`, `2.0` → `log-sigma-2-0-mm-3D`), so the
/// spelling is kept beside the value.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSigma {
    /// Sigma in millimetres.
    pub value: f64,
    /// The image-type name PyRadiomics gives it, e.g. `log-sigma-2-0-mm-3D`.
    pub name: String,
}

impl LogSigma {
    /// A sigma written as a float in YAML (`2.0`, `1.5`): Python `str(float)`, `.` → `-`.
    pub fn from_float(value: f64) -> Self {
        let mut text = format!("{value}");
        if !text.contains('.') && !text.contains('e') {
            text.push_str(".0");
        }
        Self {
            value,
            name: format!("log-sigma-{}-mm-3D", text.replace('.', "-")),
        }
    }

    /// A sigma written as an integer in YAML (`2`).
    pub fn from_int(value: i64) -> Self {
        Self {
            value: value as f64,
            name: format!("log-sigma-{value}-mm-3D"),
        }
    }
}

/// PyRadiomics' wavelet settings (`wavelet`, `level`, `start_level`).
#[derive(Debug, Clone, PartialEq)]
pub struct WaveletSpec {
    /// PyWavelets wavelet name (`coif1` by default).
    pub wavelet: String,
    /// Number of decomposition levels (PyRadiomics `level`, default 1).
    pub level: usize,
    /// First level returned (PyRadiomics `start_level`, default 0).
    pub start_level: usize,
}

impl Default for WaveletSpec {
    fn default() -> Self {
        Self {
            wavelet: "coif1".into(),
            level: 1,
            start_level: 0,
        }
    }
}

/// One entry of the parameter file's `imageType` section.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageTypeSpec {
    /// The image itself (`original`).
    Original,
    /// Laplacian of Gaussian at each sigma (`log-sigma-…-mm-3D`).
    LoG {
        /// The sigmas, in parameter-file order.
        sigmas: Vec<LogSigma>,
    },
    /// Stationary wavelet decompositions (`wavelet-LLH` … `wavelet-HHH`, `wavelet-LLL`).
    Wavelet(WaveletSpec),
}

pub mod log;
pub mod wavelet;
mod wavelet_filters;

pub use wavelet::Precision;

use crate::error::{Classify, ErrorKind};
use crate::volume::{StoredType, Volume};

/// Why derived images could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The wavelet name is not one PyWavelets (as far as we carry it) knows.
    #[error("wavelet {name:?} is not supported (supported: {supported})")]
    UnknownWavelet {
        /// The requested name.
        name: String,
        /// The names we have.
        supported: String,
    },
    /// Image and mask grids differ.
    #[error("image dims {image:?} and mask dims {mask:?} differ")]
    GridMismatch {
        /// Image dims.
        image: [usize; 3],
        /// Mask dims.
        mask: [usize; 3],
    },
    /// A bug.
    #[error("internal error in the filters: {0}")]
    Internal(String),
}

impl Classify for FilterError {
    fn kind(&self) -> ErrorKind {
        match self {
            FilterError::UnknownWavelet { .. } => ErrorKind::Config,
            FilterError::GridMismatch { .. } => ErrorKind::BadInput,
            FilterError::Internal(_) => ErrorKind::Internal,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            FilterError::UnknownWavelet { .. } => {
                Some("use one of the listed wavelets in the parameter file".into())
            }
            FilterError::GridMismatch { .. } => {
                Some("pre-process image and mask together so they share a grid".into())
            }
            FilterError::Internal(_) => None,
        }
    }
}

/// An image type PyRadiomics would have skipped, with the warning it logs.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The image-type name it would have had.
    pub name: String,
    /// PyRadiomics' warning.
    pub reason: String,
}

/// Derived images plus what was skipped.
#[derive(Debug, Clone)]
pub struct Derived {
    /// `(PyRadiomics image-type name, image)` in PyRadiomics' order.
    pub images: Vec<(String, Volume)>,
    /// Sigmas PyRadiomics skips (image too small), with its warnings.
    pub skipped: Vec<Skipped>,
}

impl ImageTypeSpec {
    /// The PyRadiomics names this entry can produce, in order (LoG sigmas that turn out too
    /// large for the image are skipped at computation time).
    pub fn image_type_names(&self) -> Vec<String> {
        match self {
            ImageTypeSpec::Original => vec!["original".into()],
            ImageTypeSpec::LoG { sigmas } => sigmas.iter().map(|s| s.name.clone()).collect(),
            ImageTypeSpec::Wavelet(w) => {
                let bands = ["LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH"];
                let mut names = Vec::new();
                for idx in 1..=w.level {
                    for b in bands {
                        names.push(if idx == 1 {
                            format!("wavelet-{b}")
                        } else {
                            format!("wavelet{idx}-{b}")
                        });
                    }
                }
                names.push(if w.level == 1 {
                    "wavelet-LLL".into()
                } else {
                    format!("wavelet{}-LLL", w.level)
                });
                names
            }
        }
    }
}

/// The images PyRadiomics derives from a (pre-processed) image for one `imageType` entry, named
/// and ordered as PyRadiomics names them. The image is taken to be `float32` data (the wavelet
/// then runs in single precision, as PyWavelets does); see [`derived_images_typed`].
pub fn derived_images(
    image: &Volume,
    mask: &Volume,
    spec: &ImageTypeSpec,
) -> Result<Vec<(String, Volume)>, FilterError> {
    Ok(derived_images_typed(image, StoredType::F32, mask, spec)?.images)
}

/// [`derived_images`] for an image whose pixel type is `pixel` (the type the file stores,
/// which PyRadiomics' resampling keeps): PyWavelets computes in `float32` for `float32` data and
/// in `float64` for everything else. LoG sigmas PyRadiomics skips are reported, and logged as
/// warnings.
pub fn derived_images_typed(
    image: &Volume,
    pixel: StoredType,
    mask: &Volume,
    spec: &ImageTypeSpec,
) -> Result<Derived, FilterError> {
    if image.dims() != mask.dims() {
        return Err(FilterError::GridMismatch {
            image: image.dims(),
            mask: mask.dims(),
        });
    }
    let mut skipped = Vec::new();
    let images = match spec {
        ImageTypeSpec::Original => vec![("original".to_string(), image.clone())],
        ImageTypeSpec::Wavelet(w) => {
            let precision = if pixel == StoredType::F32 {
                Precision::F32
            } else {
                Precision::F64
            };
            wavelet::wavelet_images(image, w, precision)?
        }
        ImageTypeSpec::LoG { sigmas } => {
            let mut out = Vec::new();
            for s in sigmas {
                match log::log_skip_reason(image.dims(), image.zooms(), s.value) {
                    Some(reason) => {
                        tracing::warn!("{reason}");
                        skipped.push(Skipped {
                            name: s.name.clone(),
                            reason,
                        });
                    }
                    None => {
                        let v = log::laplacian_of_gaussian(image, s.value).ok_or_else(|| {
                            FilterError::Internal(format!("LoG refused sigma {}", s.value))
                        })?;
                        out.push((s.name.clone(), v));
                    }
                }
            }
            out
        }
    };
    Ok(Derived { images, skipped })
}
