//! PyRadiomics pre-processing: resampling to a new spacing, pre-cropping, casting.
//!
//! What PyRadiomics 3.1 (`imageoperations.resampleImage`, `cropToTumorMask`, `_checkROI`) does
//! before any feature or filter sees the image, reproduced on our [`Volume`]s:
//!
//! * **The grid comes from the mask.** The label's bounding box (in mask voxels) is scaled to
//!   the new spacing, widened by half a voxel and by `padDistance` new voxels, clipped to the
//!   mask's extent; the new origin sits so that the new grid's voxel edges line up with the old
//!   grid's first voxel edge. Directions are the mask's. The image is then sampled onto that
//!   grid through world coordinates (so image and mask may have different grids), with
//!   SimpleITK's `sitkBSpline` / `sitkLinear` / `sitkNearestNeighbor`, and the mask with nearest
//!   neighbour. Outside the image the value is 0.
//! * **Where the new spacing equals the image's** (numpy `allclose`), nothing is interpolated:
//!   the mask is put on the image grid (nearest) and both are cropped to the bounding box plus
//!   `padDistance` — the branch the BraTS reference takes.
//! * **Axes where the ROI is one voxel thick keep their spacing.** A spacing of 0 means "keep".
//! * **The pixel type survives resampling.** SimpleITK resamples into the input's pixel type:
//!   an `int16` image interpolated with a B-spline is clamped to the type's range and
//!   *truncated toward zero* (ITK's `static_cast`), so it stays integer-valued. Our volumes
//!   hold `f32`, so the stored type is passed in ([`resample_image_and_mask_typed`]);
//!   [`resample_image_and_mask`] assumes a floating-point image (no casting).
//!
//! Interpolation itself is [`crate::volume::resample::resample_onto`] with ITK's border rule.

use crate::error::{Classify, ErrorKind};
use crate::volume::geometry::Affine;
use crate::volume::resample::{resample_onto, resample_onto_f64, Boundary, Interpolator};
use crate::volume::{Grid, StoredType, Volume};

/// Largest resampled grid we allocate (2^28 voxels: 1 GiB of `f32`, plus the source's B-spline
/// coefficients); checked before allocating.
pub const MAX_RESAMPLED_VOXELS: u128 = 1 << 28;

/// PyRadiomics' resampling settings (`resampledPixelSpacing`, `interpolator`, `label`,
/// `padDistance`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResampleSettings {
    /// New voxel spacing in mm, per voxel axis (`i`, `j`, `k`); 0 keeps the mask's spacing.
    pub spacing: [f64; 3],
    /// Interpolator for the image (the mask always uses nearest neighbour).
    pub interpolator: Interpolator,
    /// The ROI label in the mask.
    pub label: u32,
    /// Voxels (of the new grid) kept around the ROI bounding box.
    pub pad_distance: usize,
}

/// Why pre-processing could not be done.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The label does not occur in the mask.
    #[error("label {label} is not present in the mask (labels present: {present:?})")]
    LabelMissing {
        /// The requested label.
        label: u32,
        /// The non-zero labels that are present.
        present: Vec<i64>,
    },
    /// A spacing is negative or not finite.
    #[error("resampled pixel spacing {spacing:?} is invalid (each must be finite and >= 0)")]
    InvalidSpacing {
        /// The requested spacing.
        spacing: [f64; 3],
    },
    /// The ROI bounding box reaches outside the image (PyRadiomics `_checkROI`).
    #[error(
        "the ROI's bounding box lies outside the image: in image voxel coordinates it spans \
         {lo:?} to {hi:?}, the image is {size:?} voxels"
    )]
    RoiOutsideImage {
        /// ROI corner (continuous image index).
        lo: [f64; 3],
        /// Opposite ROI corner (continuous image index).
        hi: [f64; 3],
        /// Image size.
        size: [usize; 3],
    },
    /// Image and mask must share a grid for cropping.
    #[error("image grid {image:?} and mask grid {mask:?} differ; crop needs one grid")]
    GridMismatch {
        /// Image dims.
        image: [usize; 3],
        /// Mask dims.
        mask: [usize; 3],
    },
    /// The new grid would be larger than we allocate (a tiny spacing on a large mask).
    #[error(
        "resampling to {spacing:?} mm would make a {dims:?} grid ({voxels} voxels, limit {limit})"
    )]
    GridTooLarge {
        /// The effective spacing.
        spacing: [f64; 3],
        /// The grid it would make.
        dims: [usize; 3],
        /// Its voxel count.
        voxels: u128,
        /// [`MAX_RESAMPLED_VOXELS`].
        limit: u128,
    },
    /// An affine could not be inverted.
    #[error("the {what} affine is singular")]
    SingularAffine {
        /// `image` or `mask`.
        what: &'static str,
    },
}

impl Classify for PreprocessError {
    fn kind(&self) -> ErrorKind {
        match self {
            PreprocessError::InvalidSpacing { .. } | PreprocessError::GridTooLarge { .. } => {
                ErrorKind::Config
            }
            _ => ErrorKind::BadInput,
        }
    }

    fn hint(&self) -> Option<String> {
        Some(
            match self {
                PreprocessError::LabelMissing { .. } => "choose a label that the mask contains",
                PreprocessError::InvalidSpacing { .. } => {
                    "set resampledPixelSpacing to three positive numbers (0 keeps an axis)"
                }
                PreprocessError::RoiOutsideImage { .. } => {
                    "the mask does not belong to this image: check the case's files"
                }
                PreprocessError::GridTooLarge { .. } => {
                    "use a coarser resampledPixelSpacing (PyRadiomics settings)"
                }
                PreprocessError::GridMismatch { .. } | PreprocessError::SingularAffine { .. } => {
                    "check that image and mask come from the same acquisition"
                }
            }
            .to_string(),
        )
    }
}

/// Bounding box of `label` in a label map: `(lo, size)` per voxel axis, as SimpleITK's
/// `LabelShapeStatisticsImageFilter.GetBoundingBox`.
pub fn label_bounding_box(
    mask: &Volume,
    label: u32,
) -> Result<([usize; 3], [usize; 3]), PreprocessError> {
    let [nx, ny, _] = mask.dims();
    let want = label as f32;
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    let mut any = false;
    // Row by row: only the first and last match of a row can move the x bounds.
    for (r, row) in mask.data().chunks_exact(nx.max(1)).enumerate() {
        let Some(first) = row.iter().position(|&v| v == want) else {
            continue;
        };
        let last = row.iter().rposition(|&v| v == want).unwrap_or(first);
        any = true;
        let (y, z) = (r % ny, r / ny);
        lo = [lo[0].min(first), lo[1].min(y), lo[2].min(z)];
        hi = [hi[0].max(last), hi[1].max(y), hi[2].max(z)];
    }
    if !any {
        return Err(PreprocessError::LabelMissing {
            label,
            present: crate::volume::mask::label_counts(mask)
                .into_iter()
                .map(|(l, _)| l)
                .collect(),
        });
    }
    Ok((lo, [0, 1, 2].map(|d| hi[d] - lo[d] + 1)))
}

/// PyRadiomics `cropToTumorMask`: crops image and mask (same grid) to the bounding box of
/// `label` widened by `pad` voxels on every side, clipped to the volume.
pub fn crop_to_mask(
    image: &Volume,
    mask: &Volume,
    label: u32,
    pad: usize,
) -> Result<(Volume, Volume), PreprocessError> {
    if image.dims() != mask.dims() {
        return Err(PreprocessError::GridMismatch {
            image: image.dims(),
            mask: mask.dims(),
        });
    }
    let (lo, size) = label_bounding_box(mask, label)?;
    Ok(crop_box(image, mask, lo, size, pad))
}

/// Image and mask (same grid) cropped to the box `lo`, `size` widened by `pad` voxels on every
/// side, clipped to the volume.
fn crop_box(
    image: &Volume,
    mask: &Volume,
    lo: [usize; 3],
    size: [usize; 3],
    pad: usize,
) -> (Volume, Volume) {
    let dims = mask.dims();
    let from = [0, 1, 2].map(|d| lo[d].saturating_sub(pad));
    let to = [0, 1, 2].map(|d| (lo[d] + size[d] + pad).min(dims[d]));
    (image.crop(from, to), mask.crop(from, to))
}

/// PyRadiomics `resampleImage` for a floating-point image (values are not cast).
pub fn resample_image_and_mask(
    image: &Volume,
    mask: &Volume,
    s: &ResampleSettings,
) -> Result<(Volume, Volume), PreprocessError> {
    resample_image_and_mask_typed(image, StoredType::F32, mask, s)
}

/// PyRadiomics `resampleImage` for an image whose file stores `image_type`: interpolated
/// values are cast to that type as SimpleITK does (clamped to its range, truncated toward zero
/// for integer types).
pub fn resample_image_and_mask_typed(
    image: &Volume,
    image_type: StoredType,
    mask: &Volume,
    s: &ResampleSettings,
) -> Result<(Volume, Volume), PreprocessError> {
    if s.spacing.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return Err(PreprocessError::InvalidSpacing { spacing: s.spacing });
    }
    let mask_spacing = mask.zooms();
    let image_spacing = image.zooms();
    let mut spacing = [0, 1, 2].map(|d| {
        if s.spacing[d] == 0.0 {
            mask_spacing[d]
        } else {
            s.spacing[d]
        }
    });
    let (bb_lo, bb_size) = check_roi(image, mask, s.label)?;
    for d in 0..3 {
        if bb_size[d] == 1 {
            spacing[d] = mask_spacing[d];
        }
    }
    // numpy.allclose(imageSpacing, resampledPixelSpacing): |a - b| <= 1e-8 + 1e-5 |b|.
    let same =
        (0..3).all(|d| (image_spacing[d] - spacing[d]).abs() <= 1e-8 + 1e-5 * spacing[d].abs());
    if same {
        if mask.grid() == image.grid() {
            // Same grid: the bounding box found above is the one to crop to (no copy of the
            // mask, no second scan).
            return Ok(crop_box(image, mask, bb_lo, bb_size, s.pad_distance));
        }
        let mask_on_image = resample_onto(mask, image.grid(), Interpolator::Nearest, Boundary::Itk)
            .ok_or(PreprocessError::SingularAffine { what: "mask" })?;
        return crop_to_mask(image, &mask_on_image, s.label, s.pad_distance);
    }

    let mask_size = mask.dims();
    let pad = s.pad_distance as f64;
    let mut new_size = [0usize; 3];
    let mut origin_index = [0.0f64; 3];
    for d in 0..3 {
        let ratio = mask_spacing[d] / spacing[d];
        let lo = ((bb_lo[d] as f64 - 0.5) * ratio - pad).floor();
        let up = (((bb_lo[d] + bb_size[d]) as f64 - 0.5) * ratio + pad).ceil();
        let max_up = (mask_size[d] as f64 * ratio).ceil() - 1.0;
        let lo = if lo < 0.0 { 0.0 } else { lo };
        let up = if up > max_up { max_up } else { up };
        // numpy's cast to int truncates toward zero.
        new_size[d] = (up - lo + 1.0).max(0.0) as usize;
        let new_origin_index = 0.5 * (spacing[d] - mask_spacing[d]) / mask_spacing[d];
        origin_index[d] = new_origin_index + lo / ratio;
    }
    let voxels = new_size.iter().map(|&n| n as u128).product::<u128>();
    if voxels > MAX_RESAMPLED_VOXELS {
        return Err(PreprocessError::GridTooLarge {
            spacing,
            dims: new_size,
            voxels,
            limit: MAX_RESAMPLED_VOXELS,
        });
    }
    let origin = mask.affine().apply(origin_index);
    let dir = mask.affine().direction();
    let mut lin = [[0.0; 3]; 3];
    for r in 0..3 {
        for c in 0..3 {
            lin[r][c] = dir[r][c] * spacing[c];
        }
    }
    let grid = Grid {
        dims: new_size,
        affine: Affine::from_parts(lin, origin),
    };
    let res_image = match image_type {
        // Floating-point output: the interpolated double rounded to f32, as SimpleITK stores it.
        StoredType::F32 | StoredType::F64 => {
            resample_onto(image, &grid, s.interpolator, Boundary::Itk)
                .ok_or(PreprocessError::SingularAffine { what: "image" })?
        }
        // Integer output: cast from the double itself (rounding to f32 first could carry
        // 2.99999999 up to 3 before truncation).
        _ => {
            let values = resample_f64(image, &grid, s.interpolator)
                .ok_or(PreprocessError::SingularAffine { what: "image" })?;
            let data = values
                .into_iter()
                .map(|v| cast_value(v, image_type))
                .collect();
            Volume::new(grid, data)
                .map_err(|_| PreprocessError::SingularAffine { what: "image" })?
        }
    };
    let res_mask = resample_onto(mask, &grid, Interpolator::Nearest, Boundary::Itk)
        .ok_or(PreprocessError::SingularAffine { what: "mask" })?;
    Ok((res_image, res_mask))
}

/// PyRadiomics `_checkROI`: the label is present and its bounding box (voxel edges, in the
/// image's continuous index space) lies within the image, with a tolerance of 1e-3 voxel.
/// Returns the bounding box in mask voxels `(lo, size)`.
fn check_roi(
    image: &Volume,
    mask: &Volume,
    label: u32,
) -> Result<([usize; 3], [usize; 3]), PreprocessError> {
    let (lo, size) = label_bounding_box(mask, label)?;
    let to_image = image
        .affine()
        .inverse()
        .ok_or(PreprocessError::SingularAffine { what: "image" })?
        .compose(mask.affine());
    let a = to_image.apply([0, 1, 2].map(|d| lo[d] as f64 - 0.5));
    let b = to_image.apply([0, 1, 2].map(|d| (lo[d] + size[d]) as f64 - 0.5));
    let dims = image.dims();
    let tol = 1e-3;
    let outside =
        (0..3).any(|d| a[d].min(b[d]) < -0.5 - tol || a[d].max(b[d]) > dims[d] as f64 - 0.5 + tol);
    if outside {
        return Err(PreprocessError::RoiOutsideImage {
            lo: a,
            hi: b,
            size: dims,
        });
    }
    Ok((lo, size))
}

/// ITK's `ResampleImageFilter` cast of an interpolated value to the output pixel type: clamp to
/// the type's range, then `static_cast` (truncation toward zero for integers).
pub fn cast_like_itk(data: &mut [f32], ty: StoredType) {
    for v in data.iter_mut() {
        *v = cast_value(f64::from(*v), ty);
    }
}

/// [`cast_like_itk`] of one interpolated double.
fn cast_value(x: f64, ty: StoredType) -> f32 {
    let (lo, hi) = match ty {
        StoredType::F32 | StoredType::F64 => return x as f32,
        StoredType::U8 => (0.0, 255.0),
        StoredType::I8 => (-128.0, 127.0),
        StoredType::U16 => (0.0, 65535.0),
        StoredType::I16 => (-32768.0, 32767.0),
        StoredType::U32 => (0.0, 4294967295.0),
        StoredType::I32 => (-2147483648.0, 2147483647.0),
        StoredType::U64 => (0.0, 18446744073709551615.0),
        StoredType::I64 => (-9223372036854775808.0, 9223372036854775807.0),
    };
    if x < lo {
        lo as f32
    } else if x > hi {
        hi as f32
    } else {
        x.trunc() as f32
    }
}

/// Resampling onto `target` keeping the interpolated doubles (ITK border rule), for integer
/// outputs: the volume module's sampler without the final `f32` rounding, so
/// `resample_f64(..) as f32` equals `resample_onto(..)` bit for bit (tested).
pub fn resample_f64(src: &Volume, target: &Grid, interp: Interpolator) -> Option<Vec<f64>> {
    resample_onto_f64(src, target, interp, Boundary::Itk)
}
