//! What a case is: one file per MRI sequence, a tumour mask, optional clinical variables.
//!
//! A case folder is found by file-name convention (with aliases, see [`Sequence::aliases`]) or
//! described explicitly by a `case.toml`. The rule for names is strict because a wrong guess is
//! silently wrong science: a file *is* a sequence when its name without `.nii`/`.nii.gz`,
//! lower-cased, equals an alias (`t1ce.nii.gz`) — an **exact** match — or ends in `_alias`,
//! `-alias` or `.alias` (`TCGA-FG-6692_t1c.nii.gz`) — a **suffix** match. Exact matches win
//! over suffix matches (so `segmentation.nii.gz` is the mask even when `tumour_union_mask.nii.gz`
//! lies beside it, and the other is reported as ignored); two matches of the same strength are
//! an error listing both, never a guess.
//!
//! [`study::load_study`] then reads every file and brings all of them onto the reference
//! sequence's grid.

pub mod clinical;
pub mod study;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Classify, ErrorKind};
use crate::volume::mask::LabelSelection;
use crate::volume::VolumeError;
pub use clinical::Clinical;

/// An MRI sequence the box knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Sequence {
    /// T1 post-contrast (T1CE / T1Gd).
    T1c,
    /// T2-weighted.
    T2,
    /// T2-FLAIR.
    Flair,
    /// T1 native.
    T1,
    /// Apparent diffusion coefficient map.
    Adc,
    /// Cerebral blood flow (ASL).
    Cbf,
}

impl Sequence {
    /// Every sequence, in report order.
    pub const ALL: [Sequence; 6] = [
        Sequence::T1c,
        Sequence::T2,
        Sequence::Flair,
        Sequence::T1,
        Sequence::Adc,
        Sequence::Cbf,
    ];

    /// Canonical short name (`t1c`), used in file names and feature-name prefixes.
    pub fn name(self) -> &'static str {
        match self {
            Sequence::T1c => "t1c",
            Sequence::T2 => "t2",
            Sequence::Flair => "flair",
            Sequence::T1 => "t1",
            Sequence::Adc => "adc",
            Sequence::Cbf => "cbf",
        }
    }

    /// File-name aliases (lower case).
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Sequence::T1c => &["t1c", "t1ce", "t1gd", "t1-contrast"],
            Sequence::T2 => &["t2", "t2w"],
            Sequence::Flair => &["flair", "t2f", "t2-flair"],
            Sequence::T1 => &["t1", "t1n", "t1w"],
            Sequence::Adc => &["adc"],
            Sequence::Cbf => &["cbf", "asl"],
        }
    }

    /// Parses a canonical name or an alias.
    pub fn from_name(s: &str) -> Option<Sequence> {
        let s = s.to_ascii_lowercase();
        Sequence::ALL
            .into_iter()
            .find(|q| q.aliases().contains(&s.as_str()))
    }
}

impl std::fmt::Display for Sequence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Aliases of the mask file.
pub const MASK_ALIASES: &[&str] = &["mask", "seg", "segmentation", "label", "roi"];

/// Problems with a case folder (before any image is read).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The folder cannot be listed.
    #[error("{}: cannot read case folder: {source}", path.display())]
    ReadDir {
        /// Folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Not a folder.
    #[error("{}: not a case folder (expected a directory with NIfTI files)", path.display())]
    NotADirectory {
        /// Path.
        path: PathBuf,
    },
    /// Two files match one role.
    #[error("{}: two files match {role}: {} and {}; keep one or name them in case.toml", dir.display(), first.display(), second.display())]
    Ambiguous {
        /// Folder.
        dir: PathBuf,
        /// `t1c`, `mask`…
        role: String,
        /// First candidate.
        first: PathBuf,
        /// Second candidate.
        second: PathBuf,
    },
    /// No mask.
    #[error("{}: no tumour mask found (expected a file named mask, seg, segmentation, label or roi)", dir.display())]
    NoMask {
        /// Folder.
        dir: PathBuf,
    },
    /// No image sequences.
    #[error("{}: no MRI sequence found (expected files named t1c, t2, flair, t1, adc or cbf, or aliases)", dir.display())]
    NoSequences {
        /// Folder.
        dir: PathBuf,
    },
    /// The reference sequence is missing.
    #[error("{}: the reference sequence {reference} is missing (found: {found})", dir.display())]
    NoReference {
        /// Folder.
        dir: PathBuf,
        /// Configured reference.
        reference: Sequence,
        /// Sequences present.
        found: String,
    },
    /// `case.toml` or `clinical.toml` is invalid.
    #[error("{}: {message}", path.display())]
    BadToml {
        /// File.
        path: PathBuf,
        /// Parser or validation message.
        message: String,
    },
    /// An image or the mask could not be used.
    #[error(transparent)]
    Volume(#[from] VolumeError),
    /// NaN/Inf voxels under the `reject` policy.
    #[error("{}: {count} voxels are NaN or infinite", path.display())]
    NonFinite {
        /// File.
        path: PathBuf,
        /// How many.
        count: usize,
    },
    /// Mask has no ROI voxels.
    #[error("{}: the mask is empty (no voxel has a selected label {labels})", path.display())]
    EmptyMask {
        /// Mask file.
        path: PathBuf,
        /// Selected labels.
        labels: String,
    },
    /// Mask and image do not overlap in the world.
    #[error("{}: the mask does not overlap {} in world coordinates (mask spans {mask_extent}, image spans {image_extent})", mask.display(), image.display())]
    NoOverlap {
        /// Mask file.
        mask: PathBuf,
        /// Image file.
        image: PathBuf,
        /// Mask world box.
        mask_extent: String,
        /// Image world box.
        image_extent: String,
    },
    /// After resampling onto the reference grid nothing of the ROI remains.
    #[error("{}: no ROI voxel falls inside the reference image {} after resampling", mask.display(), image.display())]
    RoiOutsideReference {
        /// Mask file.
        mask: PathBuf,
        /// Reference image.
        image: PathBuf,
    },
    /// A file's geometry cannot be inverted.
    #[error("{}: the voxel-to-world transform is singular", path.display())]
    SingularAffine {
        /// File.
        path: PathBuf,
    },
}

impl Classify for CaseError {
    fn kind(&self) -> ErrorKind {
        match self {
            CaseError::Volume(e) => e.kind(),
            _ => ErrorKind::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            CaseError::Volume(e) => e.hint(),
            CaseError::Ambiguous { .. } => Some("remove or rename one of the files, or list the files in case.toml".into()),
            CaseError::NonFinite { .. } => Some("fix the image, or set volume.non_finite = \"zero\" in the configuration to replace them by 0".into()),
            CaseError::EmptyMask { .. } => Some("check that the mask belongs to this study and that case.mask_labels matches its labels".into()),
            CaseError::NoOverlap { .. } | CaseError::RoiOutsideReference { .. } => Some("the mask was drawn on another study or another grid; export it on the same series".into()),
            CaseError::NoReference { .. } => Some("add the reference sequence or change case.reference_sequence".into()),
            _ => None,
        }
    }
}

/// The files of one case, before reading.
#[derive(Debug, Clone, Serialize)]
pub struct CaseFiles {
    /// The folder.
    pub dir: PathBuf,
    /// Case id (the folder name, sanitised).
    pub id: String,
    /// Sequence → file.
    pub sequences: BTreeMap<Sequence, PathBuf>,
    /// The mask file.
    pub mask: PathBuf,
    /// ROI labels from `case.toml`, overriding the configuration.
    pub mask_labels: Option<LabelSelection>,
    /// `clinical.toml`, if present.
    pub clinical: Option<PathBuf>,
    /// Files that were seen but not used, with the reason.
    pub ignored: Vec<(PathBuf, String)>,
}

/// `case.toml`: explicit file names, relative to the case folder.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseToml {
    sequences: BTreeMap<String, PathBuf>,
    mask: PathBuf,
    mask_labels: Option<LabelSelection>,
    clinical: Option<PathBuf>,
}

fn nifti_stem(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let stem = lower
        .strip_suffix(".nii.gz")
        .or_else(|| lower.strip_suffix(".nii"))?;
    Some(stem.to_string())
}

/// How a file name matches an alias list.
fn match_strength(stem: &str, aliases: &[&str]) -> Option<u8> {
    if aliases.contains(&stem) {
        return Some(2);
    }
    aliases
        .iter()
        .any(|a| {
            [b'_', b'-', b'.'].iter().any(|sep| {
                stem.len() > a.len()
                    && stem.ends_with(a)
                    && stem.as_bytes()[stem.len() - a.len() - 1] == *sep
            })
        })
        .then_some(1)
}

/// A case id safe for file names and logs: the folder name with anything but `[A-Za-z0-9._-]`
/// replaced by `_`.
pub fn sanitize_id(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_start_matches('.').to_string();
    if s.is_empty() {
        "case".into()
    } else {
        s
    }
}

impl CaseFiles {
    /// Finds the files of a case folder.
    pub fn discover(dir: &Path) -> Result<CaseFiles, CaseError> {
        let meta = std::fs::metadata(dir).map_err(|source| CaseError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(CaseError::NotADirectory {
                path: dir.to_path_buf(),
            });
        }
        let id = sanitize_id(
            &dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        let case_toml = dir.join("case.toml");
        if case_toml.is_file() {
            return Self::from_case_toml(dir, &case_toml, id);
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| CaseError::ReadDir {
                path: dir.to_path_buf(),
                source,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();

        // role → (strength, path) of the best candidate so far.
        let mut best: BTreeMap<String, (u8, PathBuf)> = BTreeMap::new();
        let mut ignored = Vec::new();
        let mut clinical = None;
        for path in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == "clinical.toml" {
                clinical = Some(path);
                continue;
            }
            let Some(stem) = nifti_stem(&name) else {
                continue;
            };
            let mut roles: Vec<(String, u8)> = Sequence::ALL
                .iter()
                .filter_map(|s| {
                    match_strength(&stem, s.aliases()).map(|m| (s.name().to_string(), m))
                })
                .collect();
            if let Some(m) = match_strength(&stem, MASK_ALIASES) {
                roles.push(("mask".into(), m));
            }
            if roles.is_empty() {
                ignored.push((path, "name matches no sequence or mask".into()));
                continue;
            }
            for (role, strength) in roles {
                match best.get(&role) {
                    None => {
                        best.insert(role, (strength, path.clone()));
                    }
                    Some((s, other)) if *s == strength => {
                        return Err(CaseError::Ambiguous {
                            dir: dir.to_path_buf(),
                            role,
                            first: other.clone(),
                            second: path,
                        });
                    }
                    Some((s, other)) if *s > strength => {
                        ignored.push((
                            path.clone(),
                            format!(
                                "also matches {role}, but {} matches it exactly",
                                file_name(other)
                            ),
                        ));
                    }
                    Some((_, other)) => {
                        ignored.push((
                            other.clone(),
                            format!(
                                "also matches {role}, but {} matches it exactly",
                                file_name(&path)
                            ),
                        ));
                        best.insert(role, (strength, path.clone()));
                    }
                }
            }
        }
        let mask = best
            .remove("mask")
            .map(|(_, p)| p)
            .ok_or_else(|| CaseError::NoMask {
                dir: dir.to_path_buf(),
            })?;
        let sequences: BTreeMap<Sequence, PathBuf> = best
            .into_iter()
            .filter_map(|(role, (_, p))| Sequence::from_name(&role).map(|s| (s, p)))
            .collect();
        if sequences.is_empty() {
            return Err(CaseError::NoSequences {
                dir: dir.to_path_buf(),
            });
        }
        Ok(CaseFiles {
            dir: dir.to_path_buf(),
            id,
            sequences,
            mask,
            mask_labels: None,
            clinical,
            ignored,
        })
    }

    fn from_case_toml(dir: &Path, path: &Path, id: String) -> Result<CaseFiles, CaseError> {
        let bad = |message: String| CaseError::BadToml {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let t: CaseToml = toml::from_str(&text).map_err(|e| bad(e.message().to_string()))?;
        let mut sequences = BTreeMap::new();
        for (name, file) in t.sequences {
            let seq = Sequence::from_name(&name)
                .ok_or_else(|| bad(format!("unknown sequence {name:?} in [sequences]")))?;
            if sequences.insert(seq, dir.join(&file)).is_some() {
                return Err(bad(format!("sequence {seq} is listed twice")));
            }
        }
        if sequences.is_empty() {
            return Err(CaseError::NoSequences {
                dir: dir.to_path_buf(),
            });
        }
        let clinical = t
            .clinical
            .map(|c| dir.join(c))
            .or_else(|| Some(dir.join("clinical.toml")).filter(|p| p.is_file()));
        Ok(CaseFiles {
            dir: dir.to_path_buf(),
            id,
            sequences,
            mask: dir.join(t.mask),
            mask_labels: t.mask_labels,
            clinical,
            ignored: Vec::new(),
        })
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_matching() {
        assert_eq!(match_strength("t1ce", Sequence::T1c.aliases()), Some(2));
        assert_eq!(
            match_strength("tcga-fg-6692_t1c", Sequence::T1c.aliases()),
            Some(1)
        );
        assert_eq!(
            match_strength("tcga-fg-6692_t1c", Sequence::T1.aliases()),
            None
        );
        assert_eq!(
            match_strength("brain_t2-flair", Sequence::Flair.aliases()),
            Some(1)
        );
        assert_eq!(match_strength("tumour_union_mask", MASK_ALIASES), Some(1));
        assert_eq!(match_strength("t2", Sequence::T2.aliases()), Some(2));
        assert_eq!(match_strength("xt2", Sequence::T2.aliases()), None);
    }

    #[test]
    fn sanitized_ids() {
        assert_eq!(sanitize_id("../etc/passwd"), "_etc_passwd");
        assert_eq!(sanitize_id("case 01 (Müller)"), "case_01__M_ller_");
        assert_eq!(sanitize_id(""), "case");
    }
}
