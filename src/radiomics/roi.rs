//! The ROI as the feature families see it: image and mask cropped to the mask's bounding box,
//! intensities as `f64`, and PyRadiomics' mask checks and grey-level discretisation.

use super::settings::Settings;
use super::RadiomicsError;
use crate::volume::Volume;

/// Image and mask cropped to the ROI bounding box (no padding), `x` (NIfTI `i`) fastest.
#[derive(Debug, Clone)]
pub struct Cropped {
    /// Box size in voxels (x, y, z).
    pub dims: [usize; 3],
    /// Voxel spacing in mm (x, y, z).
    pub spacing: [f64; 3],
    /// Intensities of the ROI voxels, box order (`x` fastest; numpy's `image[mask]` order).
    pub roi: Vec<f64>,
    /// ROI membership (whole box).
    pub mask: Vec<bool>,
    /// Number of ROI voxels.
    pub count: usize,
}

/// Bounding box of the ROI in voxel indices of the full image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RoiBox {
    /// First index per axis (x, y, z).
    pub lo: [usize; 3],
    /// Size per axis.
    pub size: [usize; 3],
}

/// Which voxels of a label volume belong to the ROI (`== label`, as PyRadiomics compares).
pub fn label_mask(mask: &Volume, label: i64) -> Vec<bool> {
    let l = label as f64;
    mask.data().iter().map(|&v| f64::from(v) == l).collect()
}

/// Labels present in a mask, sorted (for error messages).
pub fn present_labels(mask: &Volume) -> Vec<i64> {
    let mut seen = std::collections::BTreeSet::new();
    for &v in mask.data() {
        if v != 0.0 && v.is_finite() {
            seen.insert(v.round() as i64);
        }
    }
    seen.into_iter().collect()
}

/// The bounding box of a boolean mask on `dims`.
pub fn bounding_box(inside: &[bool], dims: [usize; 3]) -> Option<RoiBox> {
    let mut lo = [usize::MAX; 3];
    let mut hi = [0usize; 3];
    let mut any = false;
    for z in 0..dims[2] {
        for y in 0..dims[1] {
            let row = (z * dims[1] + y) * dims[0];
            for x in 0..dims[0] {
                if inside[row + x] {
                    any = true;
                    let p = [x, y, z];
                    for a in 0..3 {
                        lo[a] = lo[a].min(p[a]);
                        hi[a] = hi[a].max(p[a]);
                    }
                }
            }
        }
    }
    any.then(|| RoiBox {
        lo,
        size: [hi[0] - lo[0] + 1, hi[1] - lo[1] + 1, hi[2] - lo[2] + 1],
    })
}

/// PyRadiomics `checkMask`: the label must be present, the ROI must span at least
/// `minimumROIDimensions` dimensions and exceed `minimumROISize` voxels.
pub fn check_mask(
    inside: &[bool],
    dims: [usize; 3],
    mask: &Volume,
    settings: &Settings,
) -> Result<RoiBox, RadiomicsError> {
    let bb = match bounding_box(inside, dims) {
        Some(b) => b,
        None => {
            let present = present_labels(mask);
            return Err(if present.is_empty() {
                RadiomicsError::EmptyMask
            } else {
                RadiomicsError::LabelMissing {
                    label: settings.label,
                    present,
                }
            });
        }
    };
    let ndims = bb.size.iter().filter(|&&s| s > 1).count();
    if ndims == 0 {
        return Err(RadiomicsError::SingleVoxel);
    }
    if ndims < settings.minimum_roi_dimensions {
        return Err(RadiomicsError::TooFewDimensions {
            dims: ndims,
            minimum: settings.minimum_roi_dimensions,
        });
    }
    if let Some(min) = settings.minimum_roi_size {
        let n = inside.iter().filter(|&&b| b).count();
        if n <= min {
            return Err(RadiomicsError::RoiTooSmall {
                voxels: n,
                minimum: min,
            });
        }
    }
    Ok(bb)
}

/// Intensities of a whole image, as stored (float32 volumes) or computed (float64).
#[derive(Debug, Clone, Copy)]
pub enum Pixels<'a> {
    /// A volume's own values.
    F32(&'a [f32]),
    /// Values computed in double precision (normalisation).
    F64(&'a [f64]),
}

impl Pixels<'_> {
    /// Value at a flat index, as f64.
    #[inline]
    pub fn get(&self, i: usize) -> f64 {
        match self {
            Pixels::F32(v) => f64::from(v[i]),
            Pixels::F64(v) => v[i],
        }
    }
}

impl Cropped {
    /// Crops `values` (whole image) and `inside` to `bb`.
    pub fn new(
        values: Pixels<'_>,
        inside: &[bool],
        dims: [usize; 3],
        spacing: [f64; 3],
        bb: RoiBox,
    ) -> Cropped {
        let [nx, ny, nz] = bb.size;
        let mut m = Vec::with_capacity(nx * ny * nz);
        for z in 0..nz {
            for y in 0..ny {
                let start = ((bb.lo[2] + z) * dims[1] + bb.lo[1] + y) * dims[0] + bb.lo[0];
                m.extend_from_slice(&inside[start..start + nx]);
            }
        }
        let count = m.iter().filter(|&&b| b).count();
        let mut roi = Vec::with_capacity(count);
        for z in 0..nz {
            for y in 0..ny {
                let start = ((bb.lo[2] + z) * dims[1] + bb.lo[1] + y) * dims[0] + bb.lo[0];
                roi.extend(
                    (start..start + nx)
                        .filter(|&i| inside[i])
                        .map(|i| values.get(i)),
                );
            }
        }
        Cropped {
            dims: bb.size,
            spacing,
            roi,
            mask: m,
            count,
        }
    }

    /// The ROI intensities in memory order (numpy's `image[mask]` order is z, y, x — the same).
    pub fn roi_values(&self) -> &[f64] {
        &self.roi
    }
}

/// Discretised grey levels: 1-based levels inside the ROI, 0 outside.
#[derive(Debug, Clone)]
pub struct Discretised {
    /// Level (1-based) of each ROI voxel, in [`Cropped::roi`] order.
    pub levels: Vec<u32>,
    /// Highest level in the ROI (PyRadiomics `Ng`).
    pub ng: u32,
    /// Levels present in the ROI, ascending (PyRadiomics `grayLevels`).
    pub present: Vec<u32>,
}

/// Largest number of bins accepted before allocating texture matrices.
pub const MAX_BINS: usize = 100_000;

/// PyRadiomics `binImage`: fixed bin width (edges from the ROI minimum rounded down to a
/// multiple of the width) or fixed bin count (numpy.histogram edges), then `numpy.digitize`.
pub fn discretise(c: &Cropped, settings: &Settings) -> Result<Discretised, String> {
    let roi = c.roi_values();
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in roi {
        if !v.is_finite() {
            return Err("the image has non-finite values inside the ROI".into());
        }
        min = min.min(v);
        max = max.max(v);
    }
    let edges: Vec<f64> = match settings.bin_count {
        Some(n) => {
            let (first, last) = if min == max {
                (min - 0.5, max + 0.5)
            } else {
                (min, max)
            };
            // numpy.linspace(first, last, n + 1): start + i * step, the last edge exact.
            let step = (last - first) / n as f64;
            let mut e: Vec<f64> = (0..=n).map(|i| first + i as f64 * step).collect();
            e[n] = last + 1.0; // PyRadiomics: include the maximum in the top bin
            e
        }
        None => {
            let w = settings.bin_width;
            let low = min - min.rem_euclid(w);
            let high = max + 2.0 * w;
            let n = ((high - low) / w).ceil();
            if !(n.is_finite() && n >= 1.0) || n as usize > MAX_BINS {
                return Err(format!(
                    "bin width {w} gives {n} bins over the ROI range {min}..{max}; more than {MAX_BINS} is refused, use a larger binWidth or binCount"
                ));
            }
            let n = n as usize;
            let mut e: Vec<f64> = (0..n).map(|i| low + i as f64 * w).collect();
            if e.len() == 1 {
                e = vec![e[0] - 0.5, e[0] + 0.5];
            }
            e
        }
    };
    let mut levels = Vec::with_capacity(roi.len());
    let mut ng = 0u32;
    let mut seen = vec![false; edges.len() + 1];
    for &v in roi {
        // numpy.digitize (right=False): number of edges <= v.
        let l = edges.partition_point(|&e| e <= v) as u32;
        levels.push(l);
        ng = ng.max(l);
        seen[l as usize] = true;
    }
    let present = seen
        .iter()
        .enumerate()
        .filter_map(|(l, &s)| s.then_some(l as u32))
        .collect();
    Ok(Discretised {
        levels,
        ng,
        present,
    })
}
