//! Model packages: a folder with `manifest.toml`, `manifest.sha256` and the files the manifest
//! lists (the ONNX backbone, the final-norm parameters, the linear heads, goldens).
//!
//! [`ModelPackage::open`] checks everything before anything is used: the manifest's own checksum
//! (`manifest.sha256`), its schema (`deny_unknown_fields`), then the size and sha256 of every
//! listed file. Any difference is refused with an error naming the file, the expected and the
//! actual value. There is no signature: the checksums catch corruption and casual edits, not a
//! determined attacker who rewrites the manifest and its checksum together.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Classify, ErrorKind};

/// The manifest schema version this build reads.
pub const SCHEMA_VERSION: u32 = 1;
/// The largest decompressed model this build accepts (bytes).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;
/// The largest JSON side file (heads, final norm, goldens) this build reads (bytes).
const MAX_JSON_BYTES: u64 = 64 << 20;

/// Problems with a model package.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file cannot be read.
    #[error("model file {}: cannot read: {source}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML for this schema.
    #[error("model manifest {}: {message}", path.display())]
    Manifest {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A checksum differs.
    #[error("model file {}: checksum mismatch, expected {expected}, got {got}", path.display())]
    Checksum {
        /// File.
        path: PathBuf,
        /// Expected sha256 (hex).
        expected: String,
        /// Actual sha256 (hex).
        got: String,
    },
    /// A size differs.
    #[error("model file {}: size mismatch, expected {expected} bytes, got {got}", path.display())]
    Size {
        /// File.
        path: PathBuf,
        /// Declared.
        expected: u64,
        /// Actual.
        got: u64,
    },
    /// Anything else inconsistent in the package.
    #[error("model package {}: {problem}", path.display())]
    Invalid {
        /// File or folder.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
}

impl Classify for ModelError {
    fn kind(&self) -> ErrorKind {
        match self {
            ModelError::Read { source, .. }
                if source.kind() != std::io::ErrorKind::NotFound
                    && source.kind() != std::io::ErrorKind::PermissionDenied =>
            {
                ErrorKind::Internal
            }
            _ => ErrorKind::Config,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            "reinstall the model package (models/tools/export_convnext.py builds one); \
             `glioedge model verify DIR` checks it"
                .into(),
        )
    }
}

/// `manifest.toml`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must equal [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// A demonstration package (fixed-seed weights, no clinical meaning).
    pub demo: bool,
    /// Backbone architecture.
    pub architecture: String,
    /// Intended use, shown in reports.
    pub intended_use: String,
    /// Sequences the model is run on (glioedge names, e.g. `t1c`).
    pub sequences: Vec<String>,
    /// Network input.
    pub input: InputSpec,
    /// Which slices are taken and how they are cropped.
    pub slice_policy: SlicePolicy,
    /// Intensity normalisation of the input.
    pub normalisation: Normalisation,
    /// Output tensor names and sizes.
    pub outputs: OutputSpec,
    /// Precision variants the package supports.
    pub precision: PrecisionSpec,
    /// Linear heads over the features (weights in `heads.json`).
    #[serde(default)]
    pub heads: Vec<HeadSpec>,
    /// Every file of the package with its checksum.
    pub files: Vec<FileEntry>,
}

/// `[input]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    /// ONNX input name.
    pub name: String,
    /// Channels (3: slice−1, slice, slice+1).
    pub channels: usize,
    /// Square side in pixels.
    pub size: usize,
}

/// `[slice_policy]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlicePolicy {
    /// K axial slices with the largest ROI area.
    pub slices: usize,
    /// Margin added on each side of the ROI bounding box, as a fraction of its larger side.
    pub margin: f64,
    /// Smallest crop side in voxels.
    pub min_crop_voxels: usize,
    /// Neighbouring slices on each side used as channels (1 → slice−1, slice, slice+1).
    pub context: usize,
}

/// Normalisation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormMethod {
    /// z-score over brain voxels (value > threshold) of the whole volume.
    ZscoreBrain,
}

/// `[normalisation]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Normalisation {
    /// Method.
    pub method: NormMethod,
    /// Voxels above this value are brain.
    pub brain_threshold: f64,
    /// z-scores are clipped to ±clip.
    pub clip: f64,
    /// Then multiplied by this.
    pub scale: f64,
}

/// `[outputs]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Pooled, normalised features (N×D).
    pub features: String,
    /// Last feature map (N×D×S×S).
    pub feature_map: String,
    /// D.
    pub feature_dim: usize,
    /// S.
    pub map_size: usize,
}

/// `[precision]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionSpec {
    /// Supported variants (`int8`, `f32`).
    pub variants: Vec<String>,
    /// What `int8` means for this package.
    pub int8: String,
    /// What `f32` means for this package.
    pub f32: String,
}

/// `[[heads]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HeadSpec {
    /// Head name (`idh`, `ki67`).
    pub name: String,
    /// Class names; the last one is the class Grad-CAM explains.
    pub classes: Vec<String>,
    /// What it predicts.
    pub description: String,
    /// False for the seeded, unfitted weights of a backbone package (`glioedge fit` fits them).
    pub fitted: bool,
}

/// What a packaged file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// The zstd-compressed int8 ONNX backbone.
    Model,
    /// Final LayerNorm parameters (JSON).
    FinalNorm,
    /// Head weights (JSON).
    Heads,
    /// Golden outputs (JSON).
    Goldens,
    /// Golden inputs (raw little-endian f32).
    GoldenInputs,
    /// Fitted signatures and nomograms per task (JSON, written by `glioedge fit`).
    Tasks,
    /// The fit report (JSON).
    FitReport,
    /// The fit report for people (Markdown).
    FitReportText,
}

impl FileRole {
    /// Name as in the manifest.
    pub fn name(self) -> &'static str {
        match self {
            FileRole::Model => "model",
            FileRole::FinalNorm => "final_norm",
            FileRole::Heads => "heads",
            FileRole::Goldens => "goldens",
            FileRole::GoldenInputs => "golden_inputs",
            FileRole::Tasks => "tasks",
            FileRole::FitReport => "fit_report",
            FileRole::FitReportText => "fit_report_text",
        }
    }
}

/// `[[files]]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative path inside the package.
    pub path: String,
    /// Role.
    pub role: FileRole,
    /// Size on disk.
    pub bytes: u64,
    /// Decompressed size (compressed files).
    pub decompressed_bytes: Option<u64>,
    /// sha256, lower-case hex.
    pub sha256: String,
}

/// The LayerNorm applied to the pooled features.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FinalNorm {
    /// ε.
    pub eps: f64,
    /// γ.
    pub weight: Vec<f32>,
    /// β.
    pub bias: Vec<f32>,
}

/// A linear head: `logits = W · features + b`.
#[derive(Debug, Clone)]
pub struct Head {
    /// Manifest entry.
    pub spec: HeadSpec,
    /// `classes × feature_dim`, row-major.
    pub weights: Vec<f32>,
    /// One per class.
    pub bias: Vec<f32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHead {
    weights: Vec<Vec<f32>>,
    bias: Vec<f32>,
}

impl Head {
    /// Logits (f64 accumulation, fixed order).
    pub fn logits(&self, features: &[f32]) -> Vec<f64> {
        let d = features.len();
        self.bias
            .iter()
            .enumerate()
            .map(|(c, &b)| {
                let row = &self.weights[c * d..(c + 1) * d];
                row.iter()
                    .zip(features)
                    .map(|(&w, &x)| f64::from(w) * f64::from(x))
                    .sum::<f64>()
                    + f64::from(b)
            })
            .collect()
    }
}

/// An opened, verified package.
#[derive(Debug, Clone)]
pub struct ModelPackage {
    /// The folder.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// sha256 of `manifest.toml` (identifies the package in results).
    pub manifest_sha256: String,
    /// Final norm parameters.
    pub final_norm: FinalNorm,
    /// Heads in manifest order.
    pub heads: Vec<Head>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The file at `path` and its length, refused if it is larger than `limit` bytes, and never
/// read past it.
fn open_limited(
    path: &Path,
    limit: u64,
) -> Result<(std::io::Take<std::fs::File>, u64), ModelError> {
    let read_err = |source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let len = f.metadata().map_err(read_err)?.len();
    if len > limit {
        return Err(ModelError::Invalid {
            path: path.to_path_buf(),
            problem: format!("{len} bytes, more than the {limit} allowed"),
        });
    }
    Ok((f.take(limit), len))
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ModelError> {
    let (mut f, len) = open_limited(path, limit)?;
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(buf)
}

/// The sha256 of the file at `path` (at most `limit` bytes), read in pieces: no buffer the size
/// of the file.
fn hash_file(path: &Path, limit: u64) -> Result<String, ModelError> {
    let (mut f, _) = open_limited(path, limit)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut f, &mut hasher).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(hasher.finalize()))
}

/// The zstd-compressed model `bytes` read from `path`, decompressed to exactly the `declared`
/// size (which bounds the allocation).
fn decompress(path: &Path, bytes: &[u8], declared: Option<u64>) -> Result<Vec<u8>, ModelError> {
    let declared = declared.ok_or_else(|| ModelError::Invalid {
        path: path.to_path_buf(),
        problem: "compressed model without decompressed_bytes".into(),
    })?;
    if declared > MAX_MODEL_BYTES {
        return Err(ModelError::Invalid {
            path: path.to_path_buf(),
            problem: format!("declares {declared} decompressed bytes, more than allowed"),
        });
    }
    let mut out = Vec::with_capacity(declared as usize);
    zstd::stream::read::Decoder::new(bytes)
        .and_then(|d| d.take(declared + 1).read_to_end(&mut out))
        .map_err(|e| ModelError::Invalid {
            path: path.to_path_buf(),
            problem: format!("cannot decompress: {e}"),
        })?;
    if out.len() as u64 != declared {
        return Err(ModelError::Size {
            path: path.to_path_buf(),
            expected: declared,
            got: out.len() as u64,
        });
    }
    Ok(out)
}

impl ModelPackage {
    /// Opens `dir`, verifying the manifest checksum, its schema, and every file's size and sha256.
    pub fn open(dir: &Path) -> Result<ModelPackage, ModelError> {
        let mpath = dir.join("manifest.toml");
        let text = read_limited(&mpath, 1 << 20)?;
        let spath = dir.join("manifest.sha256");
        let sums = read_limited(&spath, 4096)?;
        let sums = String::from_utf8_lossy(&sums);
        let expected = sums
            .split_whitespace()
            .next()
            .map(str::to_ascii_lowercase)
            .unwrap_or_default();
        let got = sha256_hex(&text);
        if expected != got {
            return Err(ModelError::Checksum {
                path: mpath,
                expected: format!("{expected} (from manifest.sha256)"),
                got,
            });
        }
        let text = String::from_utf8(text).map_err(|_| ModelError::Manifest {
            path: mpath.clone(),
            message: "not UTF-8".into(),
        })?;
        let manifest: Manifest = toml::from_str(&text).map_err(|e| ModelError::Manifest {
            path: mpath.clone(),
            message: e.to_string().lines().collect::<Vec<_>>().join(" "),
        })?;
        let invalid = |problem: String| ModelError::Invalid {
            path: mpath.clone(),
            problem,
        };
        if manifest.schema_version != SCHEMA_VERSION {
            return Err(invalid(format!(
                "schema_version {} not supported (this build reads {SCHEMA_VERSION})",
                manifest.schema_version
            )));
        }
        if manifest.input.channels != 2 * manifest.slice_policy.context + 1 {
            return Err(invalid(format!(
                "input.channels = {} but slice_policy.context = {} needs {}",
                manifest.input.channels,
                manifest.slice_policy.context,
                2 * manifest.slice_policy.context + 1
            )));
        }
        if !(1..=64).contains(&manifest.slice_policy.slices)
            || !(16..=1024).contains(&manifest.input.size)
            || !(0.0..=2.0).contains(&manifest.slice_policy.margin)
            || manifest.outputs.feature_dim == 0
            || manifest.outputs.map_size == 0
        {
            return Err(invalid(
                "slice_policy/input/outputs values out of range".into(),
            ));
        }
        for s in &manifest.sequences {
            if crate::case::Sequence::from_name(s).is_none() {
                return Err(invalid(format!("unknown sequence {s:?}")));
            }
        }
        let mut by_role: BTreeMap<&'static str, &FileEntry> = BTreeMap::new();
        for f in &manifest.files {
            let rel = Path::new(&f.path);
            if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
                return Err(invalid(format!(
                    "file path {:?} must be relative, inside the package",
                    f.path
                )));
            }
            let path = dir.join(rel);
            let meta = std::fs::metadata(&path).map_err(|source| ModelError::Read {
                path: path.clone(),
                source,
            })?;
            if meta.len() != f.bytes {
                return Err(ModelError::Size {
                    path,
                    expected: f.bytes,
                    got: meta.len(),
                });
            }
            let got = hash_file(&path, MAX_MODEL_BYTES)?;
            if got != f.sha256.to_ascii_lowercase() {
                return Err(ModelError::Checksum {
                    path,
                    expected: f.sha256.clone(),
                    got,
                });
            }
            let role = f.role.name();
            if by_role.insert(role, f).is_some() {
                return Err(invalid(format!("more than one file with role {role}")));
            }
        }
        for role in ["model", "final_norm", "heads"] {
            if !by_role.contains_key(role) {
                return Err(invalid(format!("no file with role {role}")));
            }
        }
        let d = manifest.outputs.feature_dim;
        let norm_path = dir.join(&by_role["final_norm"].path);
        let final_norm: FinalNorm =
            serde_json::from_slice(&read_limited(&norm_path, MAX_JSON_BYTES)?).map_err(|e| {
                ModelError::Manifest {
                    path: norm_path.clone(),
                    message: e.to_string(),
                }
            })?;
        if final_norm.weight.len() != d || final_norm.bias.len() != d {
            return Err(ModelError::Invalid {
                path: norm_path,
                problem: format!("final norm must have {d} weights and biases"),
            });
        }
        let heads_path = dir.join(&by_role["heads"].path);
        let mut raw: BTreeMap<String, RawHead> =
            serde_json::from_slice(&read_limited(&heads_path, MAX_JSON_BYTES)?).map_err(|e| {
                ModelError::Manifest {
                    path: heads_path.clone(),
                    message: e.to_string(),
                }
            })?;
        let mut heads = Vec::new();
        for spec in &manifest.heads {
            let Some(h) = raw.remove(&spec.name) else {
                return Err(ModelError::Invalid {
                    path: heads_path,
                    problem: format!("no weights for head {:?}", spec.name),
                });
            };
            let c = spec.classes.len();
            if c < 2
                || h.bias.len() != c
                || h.weights.len() != c
                || h.weights.iter().any(|r| r.len() != d)
            {
                return Err(ModelError::Invalid {
                    path: heads_path,
                    problem: format!(
                        "head {:?}: expected {c} classes × {d} weights and {c} biases",
                        spec.name
                    ),
                });
            }
            heads.push(Head {
                spec: spec.clone(),
                weights: h.weights.into_iter().flatten().collect(),
                bias: h.bias,
            });
        }
        if let Some(extra) = raw.keys().next() {
            return Err(ModelError::Invalid {
                path: heads_path,
                problem: format!("weights for head {extra:?}, which the manifest does not list"),
            });
        }
        Ok(ModelPackage {
            dir: dir.to_path_buf(),
            manifest,
            manifest_sha256: got,
            final_norm,
            heads,
        })
    }

    /// The entry of the file with `role`, if any.
    pub fn file(&self, role: FileRole) -> Option<&FileEntry> {
        self.manifest.files.iter().find(|f| f.role == role)
    }

    /// A listed file's bytes (at most `limit`), checked against its manifest sha256.
    fn read_checked(
        &self,
        entry: &FileEntry,
        limit: u64,
    ) -> Result<(PathBuf, Vec<u8>), ModelError> {
        let path = self.dir.join(&entry.path);
        let bytes = read_limited(&path, limit)?;
        let got = sha256_hex(&bytes);
        if got != entry.sha256.to_ascii_lowercase() {
            return Err(ModelError::Checksum {
                path,
                expected: entry.sha256.clone(),
                got,
            });
        }
        Ok((path, bytes))
    }

    /// The decompressed ONNX bytes, re-checked against the manifest (the file is read again, so
    /// a change since [`ModelPackage::open`] is caught too). Nothing is decompressed before the
    /// checksum matches.
    pub fn model_bytes(&self) -> Result<Vec<u8>, ModelError> {
        let entry = self
            .file(FileRole::Model)
            .ok_or_else(|| ModelError::Invalid {
                path: self.dir.clone(),
                problem: "no model file".into(),
            })?;
        let (path, bytes) = self.read_checked(entry, MAX_MODEL_BYTES)?;
        if !entry.path.ends_with(".zst") {
            return Ok(bytes);
        }
        decompress(&path, &bytes, entry.decompressed_bytes)
    }

    /// The bytes of the file with `role`, read again and re-checked against the manifest;
    /// `None` when the package has no such file.
    pub fn read_verified(&self, role: FileRole) -> Result<Option<Vec<u8>>, ModelError> {
        let Some(entry) = self.file(role) else {
            return Ok(None);
        };
        self.read_checked(entry, MAX_JSON_BYTES)
            .map(|(_, bytes)| Some(bytes))
    }

    /// Path of a packaged file by role.
    pub fn path_of(&self, role: FileRole) -> Option<PathBuf> {
        self.file(role).map(|f| self.dir.join(&f.path))
    }

    /// A head by name.
    pub fn head(&self, name: &str) -> Option<&Head> {
        self.heads.iter().find(|h| h.spec.name == name)
    }
}

/// Writes `bytes` to `path` through a temporary name in the same folder and a rename.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), ModelError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let res = (|| -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    res.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ModelError::Read {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Recomputes the size and sha256 of every file `manifest` lists (inside `dir`), then writes
/// `manifest.toml` and `manifest.sha256` — what `models/tools/rehash.py` does, so that
/// `glioedge fit` writes a complete, verifiable package by itself.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), ModelError> {
    let mut m = manifest.clone();
    for f in &mut m.files {
        let path = dir.join(&f.path);
        let bytes = read_limited(&path, MAX_MODEL_BYTES)?;
        f.bytes = bytes.len() as u64;
        f.sha256 = sha256_hex(&bytes);
    }
    let body = toml::to_string(&m).map_err(|e| ModelError::Manifest {
        path: dir.join("manifest.toml"),
        message: e.to_string(),
    })?;
    let text =
        format!("# glioedge model package manifest. Checked by `glioedge model verify`.\n{body}");
    write_file_atomic(&dir.join("manifest.toml"), text.as_bytes())?;
    let sum = format!("{}  manifest.toml\n", sha256_hex(text.as_bytes()));
    write_file_atomic(&dir.join("manifest.sha256"), sum.as_bytes())
}
