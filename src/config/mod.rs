//! Configuration in two stages, as ripgrep does it.
//!
//! 1. [`RawConfig`] is exactly the TOML file: every key optional, unknown keys rejected
//!    (`deny_unknown_fields`), nothing checked beyond types.
//! 2. [`Config`] is resolved from it: defaults filled in, limits range-checked, paths made
//!    absolute. Everything below the CLI receives typed sub-structs of [`Config`], never the raw
//!    file and never a global.
//!
//! With no file at all, the embedded defaults are a working developer setup (`./var/` spool,
//! the bundled demo model). `glioedge config print` shows the effective configuration.

pub mod appliance;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::case::Sequence;
use crate::error::{Classify, ErrorKind};
use crate::volume::mask::LabelSelection;

/// Problems with the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{}: cannot read configuration: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML syntax error, wrong type, or unknown key (the parser names the key and line).
    #[error("{}: {message}", path.display())]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message (names the key and position).
        message: String,
    },
    /// A value out of its allowed range.
    #[error("{}: {key} = {value}: {problem}", path.display())]
    Invalid {
        /// File (or `<defaults>`).
        path: PathBuf,
        /// Dotted key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        problem: String,
    },
}

impl Classify for ConfigError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Config
    }

    fn hint(&self) -> Option<String> {
        Some(
            "fix the configuration file; `glioedge config print` shows every key with its default"
                .into(),
        )
    }
}

/// The configuration file as written. Every key is optional.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[limits]`
    #[serde(default)]
    pub limits: RawLimits,
    /// `[volume]`
    #[serde(default)]
    pub volume: RawVolume,
    /// `[case]`
    #[serde(default)]
    pub case: RawCase,
    /// `[spool]`
    #[serde(default)]
    pub spool: appliance::RawSpool,
    /// `[web]`
    #[serde(default)]
    pub web: appliance::RawWeb,
    /// `[board]`
    #[serde(default)]
    pub board: appliance::RawBoard,
    /// `[service]`
    #[serde(default)]
    pub service: appliance::RawService,
    /// `[inference]`
    #[serde(default)]
    pub inference: RawInference,
}

/// `[inference]`
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawInference {
    /// `"auto"` (default: time both at start-up, keep the faster), `"int8"` or `"f32"`.
    pub precision: Option<String>,
    /// Worker threads for slice-level parallelism (default: the number of cores).
    pub threads: Option<usize>,
    /// The model package folder (default `models/demo-convnext-tiny`).
    pub model: Option<PathBuf>,
}

/// Resolved `[inference]`.
#[derive(Debug, Clone, Serialize)]
pub struct InferenceConfig {
    /// Precision variant.
    pub precision: crate::inference::Precision,
    /// Worker threads (≥ 1).
    pub threads: usize,
    /// Model package folder.
    pub model: PathBuf,
}

/// `[limits]`
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest in-memory size (bytes) one input volume may declare in its header.
    pub max_volume_bytes: Option<u64>,
}

/// What to do with NaN or infinite voxels in an input image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Refuse the case, naming the file and the count (default).
    Reject,
    /// Replace them by 0 and record a quality flag in the result.
    Zero,
}

/// `[volume]`
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawVolume {
    /// `"reject"` (default) or `"zero"`.
    pub non_finite: Option<NonFinitePolicy>,
    /// Two grids whose field-of-view corners agree within this many mm are the same grid.
    pub grid_tolerance_mm: Option<f64>,
}

/// `[case]`
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawCase {
    /// The sequence whose grid the others are resampled onto (default `t1c`).
    pub reference_sequence: Option<String>,
    /// Which mask labels form the ROI: `"any"` (every non-zero label, default) or a list.
    pub mask_labels: Option<LabelSelection>,
}

/// The resolved configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Where it came from (`None` = embedded defaults only).
    #[serde(skip)]
    pub source: Option<PathBuf>,
    /// Resource limits.
    pub limits: Limits,
    /// Volume handling.
    pub volume: VolumeConfig,
    /// Case handling.
    pub case: CaseConfig,
    /// The drop folder.
    pub spool: appliance::SpoolConfig,
    /// The status page.
    pub web: appliance::WebConfig,
    /// GPIO pins.
    pub board: appliance::BoardConfig,
    /// The daemon.
    pub service: appliance::ServiceConfig,
    /// Inference.
    pub inference: InferenceConfig,
}

/// Resolved `[limits]`.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Bytes.
    pub max_volume_bytes: u64,
}

/// Resolved `[volume]`.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeConfig {
    /// NaN/Inf policy.
    pub non_finite: NonFinitePolicy,
    /// mm.
    pub grid_tolerance_mm: f64,
}

/// Resolved `[case]`.
#[derive(Debug, Clone, Serialize)]
pub struct CaseConfig {
    /// Reference sequence.
    pub reference_sequence: Sequence,
    /// ROI labels.
    pub mask_labels: LabelSelection,
}

/// 1 GiB.
pub const DEFAULT_MAX_VOLUME_BYTES: u64 = 1 << 30;

impl RawConfig {
    /// Parses TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: one_line(&e.to_string()),
        })
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        RawConfig::parse(&text, path)
    }

    /// Second stage: fills defaults and checks every value.
    pub fn resolve(self, source: Option<&Path>) -> Result<Config, ConfigError> {
        let path = source
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("<defaults>"));
        let invalid = |key: &'static str, value: String, problem: &str| ConfigError::Invalid {
            path: path.clone(),
            key,
            value,
            problem: problem.to_string(),
        };
        let max_volume_bytes = self
            .limits
            .max_volume_bytes
            .unwrap_or(DEFAULT_MAX_VOLUME_BYTES);
        if !(1 << 20..=1 << 36).contains(&max_volume_bytes) {
            return Err(invalid(
                "limits.max_volume_bytes",
                max_volume_bytes.to_string(),
                "must be between 1 MiB and 64 GiB",
            ));
        }
        let grid_tolerance_mm = self.volume.grid_tolerance_mm.unwrap_or(0.01);
        if !(grid_tolerance_mm.is_finite() && grid_tolerance_mm > 0.0 && grid_tolerance_mm <= 5.0) {
            return Err(invalid(
                "volume.grid_tolerance_mm",
                grid_tolerance_mm.to_string(),
                "must be in (0, 5] mm",
            ));
        }
        let reference_sequence = match self.case.reference_sequence {
            None => Sequence::T1c,
            Some(s) => Sequence::from_name(&s).ok_or_else(|| {
                invalid(
                    "case.reference_sequence",
                    s.clone(),
                    "unknown sequence; use one of t1c, t2, flair, t1, adc, cbf",
                )
            })?,
        };
        let mask_labels = self.case.mask_labels.unwrap_or(LabelSelection::Any);
        if let LabelSelection::Labels(ls) = &mask_labels {
            if ls.is_empty() || ls.iter().any(|&l| l <= 0) {
                return Err(invalid(
                    "case.mask_labels",
                    format!("{ls:?}"),
                    "must be \"any\" or a non-empty list of positive labels",
                ));
            }
        }
        let (spool, web, board, service) =
            appliance::resolve(self.spool, self.web, self.board, self.service, &path)?;
        let precision = match self.inference.precision.as_deref() {
            None => crate::inference::Precision::Auto,
            Some(p) => crate::inference::Precision::from_name(p).ok_or_else(|| {
                invalid(
                    "inference.precision",
                    p.to_string(),
                    "must be \"auto\", \"int8\" or \"f32\"",
                )
            })?,
        };
        let threads = self.inference.threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        if !(1..=256).contains(&threads) {
            return Err(invalid(
                "inference.threads",
                threads.to_string(),
                "must be between 1 and 256",
            ));
        }
        let model = self
            .inference
            .model
            .unwrap_or_else(|| PathBuf::from("models/demo-convnext-tiny"));
        let model = match (model.is_absolute(), source.and_then(Path::parent)) {
            (false, Some(dir)) if !dir.as_os_str().is_empty() => dir.join(model),
            _ => model,
        };
        Ok(Config {
            source: source.map(Path::to_path_buf),
            limits: Limits { max_volume_bytes },
            volume: VolumeConfig {
                non_finite: self.volume.non_finite.unwrap_or(NonFinitePolicy::Reject),
                grid_tolerance_mm,
            },
            case: CaseConfig {
                reference_sequence,
                mask_labels,
            },
            spool,
            web,
            board,
            service,
            inference: InferenceConfig {
                precision,
                threads,
                model,
            },
        })
    }
}

impl Config {
    /// The embedded defaults.
    pub fn defaults() -> Config {
        // The defaults are constants checked by a test; resolving them cannot fail.
        RawConfig::default()
            .resolve(None)
            .unwrap_or_else(|e| panic!("embedded defaults invalid: {e}"))
    }

    /// Loads `path` if given, else the embedded defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => RawConfig::load(p)?.resolve(Some(p)),
            None => RawConfig::default().resolve(None),
        }
    }

    /// The effective configuration as TOML (what `glioedge config print` shows).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_resolve() {
        let c = Config::defaults();
        assert_eq!(c.limits.max_volume_bytes, DEFAULT_MAX_VOLUME_BYTES);
        assert_eq!(c.case.reference_sequence, Sequence::T1c);
        assert!(c.to_toml().contains("max_volume_bytes = 1073741824"));
    }

    #[test]
    fn unknown_key_is_named() {
        let e = RawConfig::parse("[limits]\nmax_volume_byte = 3\n", Path::new("/etc/g.toml"))
            .expect_err("unknown key");
        let msg = e.to_string();
        assert!(
            msg.contains("/etc/g.toml") && msg.contains("max_volume_byte"),
            "{msg}"
        );
        let e = RawConfig::parse("[spoool]\n", Path::new("x.toml")).expect_err("unknown section");
        assert!(e.to_string().contains("spoool"));
    }

    #[test]
    fn out_of_range_is_named() {
        let raw = RawConfig::parse("[limits]\nmax_volume_bytes = 10\n", Path::new("c.toml"))
            .expect("parses");
        let e = raw
            .resolve(Some(Path::new("c.toml")))
            .expect_err("too small");
        assert!(e.to_string().contains("limits.max_volume_bytes"));
        let raw = RawConfig::parse(
            "[case]\nreference_sequence = \"dwi\"\nmask_labels = [1, 3]\n",
            Path::new("c.toml"),
        )
        .expect("parses");
        assert!(raw
            .resolve(None)
            .expect_err("unknown")
            .to_string()
            .contains("dwi"));
        let raw = RawConfig::parse("[case]\nmask_labels = [1, 3]\n", Path::new("c.toml"))
            .expect("parses");
        assert_eq!(
            raw.resolve(None).expect("valid").case.mask_labels,
            LabelSelection::Labels(vec![1, 3])
        );
    }

    #[test]
    fn inference_section_resolves_and_checks() {
        let c = Config::defaults();
        assert_eq!(c.inference.precision, crate::inference::Precision::Auto);
        assert!(c.inference.threads >= 1);
        assert_eq!(
            c.inference.model,
            PathBuf::from("models/demo-convnext-tiny")
        );
        let raw = RawConfig::parse(
            "[inference]\nprecision = \"int8\"\nthreads = 2\nmodel = \"pkg\"\n",
            Path::new("/etc/glioedge/c.toml"),
        )
        .expect("parses");
        let c = raw
            .resolve(Some(Path::new("/etc/glioedge/c.toml")))
            .expect("valid");
        assert_eq!(c.inference.precision, crate::inference::Precision::Int8);
        assert_eq!(c.inference.threads, 2);
        assert_eq!(c.inference.model, PathBuf::from("/etc/glioedge/pkg"));
        let raw = RawConfig::parse("[inference]\nprecision = \"fp16\"\n", Path::new("c.toml"))
            .expect("parses");
        let e = raw.resolve(None).expect_err("fp16").to_string();
        assert!(
            e.contains("inference.precision") && e.contains("fp16"),
            "{e}"
        );
    }
}
