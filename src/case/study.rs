//! Loading a case onto one grid: the [`Study`].
//!
//! Every sequence is read, checked, and — when it is not already on the reference sequence's
//! grid — resampled onto it through both affines (trilinear, nibabel semantics); the mask is
//! brought over with nearest-neighbour. How far each grid was from the reference is recorded,
//! so the report can say what was done and by how much.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use super::{CaseError, CaseFiles, Clinical, Sequence};
use crate::config::{Config, NonFinitePolicy};
use crate::volume::mask::{label_counts, BoundingBox, LabelSelection, Roi};
use crate::volume::resample::{resample_onto, Boundary, Interpolator};
use crate::volume::{read_nifti, Grid, NiftiInfo, Volume};

/// How a file's grid relates to the reference grid.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "relation", rename_all = "snake_case")]
pub enum GridRelation {
    /// This is the reference sequence.
    Reference,
    /// Same grid within the configured tolerance.
    SameGrid {
        /// Largest field-of-view corner displacement, mm.
        max_corner_displacement_mm: f64,
    },
    /// Resampled onto the reference grid.
    Resampled {
        /// Largest field-of-view corner displacement, mm.
        max_corner_displacement_mm: f64,
        /// How it was resampled.
        interpolation: Interpolator,
    },
}

/// Facts about one input file as read (native geometry).
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// What the file was read as (`t1c`…, or `mask`).
    pub role: String,
    /// Header and provenance facts.
    #[serde(flatten)]
    pub info: NiftiInfo,
    /// Native shape.
    pub shape: [usize; 3],
    /// Voxel size in mm as the header states it (`pixdim[1..4]`, nibabel's `get_zooms`).
    pub zooms: [f64; 3],
    /// Voxel size in mm as the affine implies it (column lengths; what resampling uses).
    pub affine_zooms: [f64; 3],
    /// nibabel orientation code.
    pub orientation: String,
    /// Native affine.
    pub affine: [[f64; 4]; 4],
    /// Finite intensity range.
    pub intensity_range: Option<(f32, f32)>,
    /// Relation to the reference grid.
    pub grid: GridRelation,
}

/// Per-label voxel count and volume.
#[derive(Debug, Clone, Serialize)]
pub struct LabelStat {
    /// Label value.
    pub label: i64,
    /// Voxels on the mask's native grid.
    pub voxels: usize,
    /// Volume in millilitres.
    pub volume_ml: f64,
}

/// Quality flags carried into the result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Quality {
    /// Sequences that were resampled onto the reference grid.
    pub resampled: Vec<Sequence>,
    /// Whether the mask was resampled.
    pub mask_resampled: bool,
    /// NaN/Inf voxels replaced by 0, per file role.
    pub non_finite_replaced: BTreeMap<String, usize>,
    /// ROI voxels on the reference grid.
    pub roi_voxels: usize,
}

/// A case loaded onto one grid.
#[derive(Debug)]
pub struct Study {
    /// Case id.
    pub id: String,
    /// The reference sequence.
    pub reference: Sequence,
    /// The common grid.
    pub grid: Grid,
    /// Images on the common grid.
    pub images: BTreeMap<Sequence, Volume>,
    /// The label map on the common grid.
    pub labels: Volume,
    /// The ROI (selected labels) on the common grid.
    pub roi: Roi,
    /// Which labels were selected.
    pub label_selection: LabelSelection,
    /// Clinical variables.
    pub clinical: Option<Clinical>,
    /// Per-file facts, images first (in sequence order), mask last.
    pub files: Vec<FileReport>,
    /// Labels of the mask on its native grid.
    pub label_stats: Vec<LabelStat>,
    /// Things a reader should know.
    pub warnings: Vec<String>,
    /// Quality flags.
    pub quality: Quality,
}

impl Study {
    /// Bounding box of the ROI on the common grid (never empty: loading refuses empty ROIs).
    pub fn roi_bbox(&self) -> Option<BoundingBox> {
        self.roi.bounding_box()
    }
}

fn fmt_box((lo, hi): ([f64; 3], [f64; 3])) -> String {
    format!(
        "[{:.1}, {:.1}] × [{:.1}, {:.1}] × [{:.1}, {:.1}] mm",
        lo[0], hi[0], lo[1], hi[1], lo[2], hi[2]
    )
}

fn boxes_overlap(a: ([f64; 3], [f64; 3]), b: ([f64; 3], [f64; 3])) -> bool {
    (0..3).all(|d| a.0[d] < b.1[d] && b.0[d] < a.1[d])
}

fn read_checked(
    path: &std::path::Path,
    role: &str,
    config: &Config,
    quality: &mut Quality,
    warnings: &mut Vec<String>,
) -> Result<(Volume, NiftiInfo), CaseError> {
    let (mut vol, info) = read_nifti(path, config.limits.max_volume_bytes)?;
    if info.non_finite > 0 {
        match config.volume.non_finite {
            NonFinitePolicy::Reject => {
                return Err(CaseError::NonFinite {
                    path: path.to_path_buf(),
                    count: info.non_finite,
                })
            }
            NonFinitePolicy::Zero => {
                for v in vol.data_mut() {
                    if !v.is_finite() {
                        *v = 0.0;
                    }
                }
                warnings.push(format!(
                    "{}: {} NaN/infinite voxels replaced by 0",
                    display_name(path),
                    info.non_finite
                ));
                quality
                    .non_finite_replaced
                    .insert(role.to_string(), info.non_finite);
            }
        }
    }
    if let Some(d) = info.sform_qform_mismatch_mm {
        if d > 1.0 {
            warnings.push(format!(
                "{}: sform and qform disagree by {d:.2} mm; the sform was used (as nibabel does)",
                display_name(path)
            ));
        }
    }
    Ok((vol, info))
}

fn display_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn file_report(role: &str, vol: &Volume, info: NiftiInfo, grid: GridRelation) -> FileReport {
    FileReport {
        role: role.to_string(),
        shape: vol.dims(),
        zooms: info.pixdim.map(f64::abs),
        affine_zooms: vol.zooms(),
        orientation: vol.orientation_code(),
        affine: vol.affine().0,
        intensity_range: vol.finite_range(),
        info,
        grid,
    }
}

/// Reads every file of a case and brings it onto the reference sequence's grid.
pub fn load_study(files: &CaseFiles, config: &Config) -> Result<Study, CaseError> {
    let reference = config.case.reference_sequence;
    if !files.sequences.contains_key(&reference) {
        let found = files
            .sequences
            .keys()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(CaseError::NoReference {
            dir: files.dir.clone(),
            reference,
            found,
        });
    }
    let selection = files
        .mask_labels
        .clone()
        .unwrap_or_else(|| config.case.mask_labels.clone());
    let clinical = files.clinical.as_deref().map(Clinical::load).transpose()?;

    // Read all files in parallel; errors are reported in a fixed order (sequence order, then mask).
    let mut jobs: Vec<(String, PathBuf)> = files
        .sequences
        .iter()
        .map(|(s, p)| (s.name().to_string(), p.clone()))
        .collect();
    jobs.push(("mask".into(), files.mask.clone()));
    type Read = Result<(Volume, NiftiInfo, Quality, Vec<String>), CaseError>;
    let read: Vec<Read> = jobs
        .par_iter()
        .map(|(role, path)| {
            let mut q = Quality::default();
            let mut w = Vec::new();
            let (v, i) = read_checked(path, role, config, &mut q, &mut w)?;
            Ok((v, i, q, w))
        })
        .collect();
    let mut quality = Quality::default();
    let mut warnings: Vec<String> = files
        .ignored
        .iter()
        .map(|(p, why)| format!("{}: ignored ({why})", display_name(p)))
        .collect();
    let mut loaded = Vec::with_capacity(read.len());
    for r in read {
        let (v, i, q, w) = r?;
        quality.non_finite_replaced.extend(q.non_finite_replaced);
        warnings.extend(w);
        loaded.push((v, i));
    }
    let (mask_native, mask_info) = loaded.pop().ok_or_else(|| CaseError::NoMask {
        dir: files.dir.clone(),
    })?;
    let seqs: Vec<Sequence> = files.sequences.keys().copied().collect();
    let ref_pos = seqs.iter().position(|s| *s == reference).unwrap_or(0);
    let ref_grid = *loaded[ref_pos].0.grid();
    let tol = config.volume.grid_tolerance_mm;

    // The mask: labels, emptiness, overlap, then onto the reference grid.
    let native_roi = Roi::from_labels(&mask_native, &selection);
    let counts = label_counts(&mask_native);
    if native_roi.count() == 0 {
        let present = counts
            .iter()
            .map(|(l, _)| l.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let labels = match &selection {
            LabelSelection::Any => format!(
                "(any non-zero; labels present: {})",
                if present.is_empty() {
                    "none".into()
                } else {
                    present
                }
            ),
            LabelSelection::Labels(l) => format!(
                "{l:?} (labels present: {})",
                if present.is_empty() {
                    "none".into()
                } else {
                    present
                }
            ),
        };
        return Err(CaseError::EmptyMask {
            path: files.mask.clone(),
            labels,
        });
    }
    let zooms = mask_native.zooms();
    let voxel_ml = zooms[0] * zooms[1] * zooms[2] / 1000.0;
    let label_stats = counts
        .iter()
        .map(|&(label, voxels)| LabelStat {
            label,
            voxels,
            volume_ml: voxels as f64 * voxel_ml,
        })
        .collect();
    let ref_extent = ref_grid.world_extent();
    let mask_extent = mask_native.grid().world_extent();
    if !boxes_overlap(ref_extent, mask_extent) {
        return Err(CaseError::NoOverlap {
            mask: files.mask.clone(),
            image: files.sequences[&reference].clone(),
            mask_extent: fmt_box(mask_extent),
            image_extent: fmt_box(ref_extent),
        });
    }
    let mask_same = mask_native.grid().same_as(&ref_grid, tol);
    let mask_disp = mask_native.grid().max_corner_displacement(&ref_grid);
    let labels = if mask_same {
        mask_native
            .with_data(mask_native.data().to_vec())
            .map_err(|_| CaseError::SingularAffine {
                path: files.mask.clone(),
            })?
    } else {
        quality.mask_resampled = true;
        warnings.push(format!("mask: on another grid than {reference} (corners up to {mask_disp:.2} mm apart); resampled onto it with nearest neighbour"));
        resample_onto(
            &mask_native,
            &ref_grid,
            Interpolator::Nearest,
            Boundary::Scipy,
        )
        .ok_or_else(|| CaseError::SingularAffine {
            path: files.mask.clone(),
        })?
    };
    let labels =
        Volume::new(ref_grid, labels.into_data()).map_err(|_| CaseError::SingularAffine {
            path: files.mask.clone(),
        })?;
    let roi = Roi::from_labels(&labels, &selection);
    if roi.count() == 0 {
        return Err(CaseError::RoiOutsideReference {
            mask: files.mask.clone(),
            image: files.sequences[&reference].clone(),
        });
    }
    quality.roi_voxels = roi.count();
    let mask_relation = if mask_same {
        GridRelation::SameGrid {
            max_corner_displacement_mm: mask_disp,
        }
    } else {
        GridRelation::Resampled {
            max_corner_displacement_mm: mask_disp,
            interpolation: Interpolator::Nearest,
        }
    };

    // The images.
    let mut images = BTreeMap::new();
    let mut reports = Vec::with_capacity(seqs.len() + 1);
    for (seq, (vol, info)) in seqs.iter().zip(loaded) {
        let path = info.path.clone();
        let disp = vol.grid().max_corner_displacement(&ref_grid);
        if *seq != reference && !boxes_overlap(ref_extent, vol.grid().world_extent()) {
            return Err(CaseError::NoOverlap {
                mask: path.clone(),
                image: files.sequences[&reference].clone(),
                mask_extent: fmt_box(vol.grid().world_extent()),
                image_extent: fmt_box(ref_extent),
            });
        }
        let (relation, on_ref) = if *seq == reference {
            (GridRelation::Reference, None)
        } else if vol.grid().same_as(&ref_grid, tol) {
            (
                GridRelation::SameGrid {
                    max_corner_displacement_mm: disp,
                },
                None,
            )
        } else {
            let r = resample_onto(&vol, &ref_grid, Interpolator::Linear, Boundary::Scipy)
                .ok_or_else(|| CaseError::SingularAffine { path: path.clone() })?;
            quality.resampled.push(*seq);
            warnings.push(format!(
                "{seq}: on another grid than {reference} (shape {:?} vs {:?}, corners up to {disp:.2} mm apart); resampled onto it (trilinear)",
                vol.dims(),
                ref_grid.dims
            ));
            (
                GridRelation::Resampled {
                    max_corner_displacement_mm: disp,
                    interpolation: Interpolator::Linear,
                },
                Some(r),
            )
        };
        reports.push(file_report(seq.name(), &vol, info, relation));
        let on_ref = match on_ref {
            Some(r) => r,
            // Same grid within tolerance: keep the data, adopt the reference geometry exactly.
            None => Volume::new(ref_grid, vol.into_data())
                .map_err(|_| CaseError::SingularAffine { path })?,
        };
        images.insert(*seq, on_ref);
    }
    reports.push(file_report("mask", &mask_native, mask_info, mask_relation));

    Ok(Study {
        id: files.id.clone(),
        reference,
        grid: ref_grid,
        images,
        labels,
        roi,
        label_selection: selection,
        clinical,
        files: reports,
        label_stats,
        warnings,
        quality,
    })
}
