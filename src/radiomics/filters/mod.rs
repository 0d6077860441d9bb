//! Derived image types (PyRadiomics `imageoperations.get*Image`).
//!
//! The image-type specification is shared by the settings parser (which reads it from a
//! PyRadiomics parameter file) and the filters (which compute the derived volumes).

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
