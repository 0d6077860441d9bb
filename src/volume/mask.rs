//! Masks (tumour ROIs as label maps) and intensity normalisation inside a mask.

use serde::Serialize;

use super::Volume;

/// Which labels of a label map make up the ROI. In TOML: `"any"` or a list of labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(try_from = "LabelRepr", into = "LabelRepr")]
pub enum LabelSelection {
    /// Every non-zero label (the union, e.g. whole tumour).
    Any,
    /// These labels.
    Labels(Vec<i32>),
}

#[derive(Serialize, serde::Deserialize)]
#[serde(untagged)]
enum LabelRepr {
    Word(String),
    List(Vec<i32>),
}

impl TryFrom<LabelRepr> for LabelSelection {
    type Error = String;
    fn try_from(r: LabelRepr) -> Result<Self, String> {
        match r {
            LabelRepr::Word(w) if w == "any" => Ok(LabelSelection::Any),
            LabelRepr::Word(w) => Err(format!("expected \"any\" or a list of labels, got {w:?}")),
            LabelRepr::List(l) => Ok(LabelSelection::Labels(l)),
        }
    }
}

impl From<LabelSelection> for LabelRepr {
    fn from(s: LabelSelection) -> Self {
        match s {
            LabelSelection::Any => LabelRepr::Word("any".into()),
            LabelSelection::Labels(l) => LabelRepr::List(l),
        }
    }
}

impl LabelSelection {
    /// Whether a label-map value belongs to the ROI.
    #[inline]
    pub fn contains(&self, value: f32) -> bool {
        match self {
            LabelSelection::Any => value != 0.0 && !value.is_nan(),
            LabelSelection::Labels(ls) => ls.iter().any(|&l| value == l as f32),
        }
    }
}

/// A binary ROI on a volume's grid (`true` = inside), with the same voxel order.
#[derive(Debug, Clone, PartialEq)]
pub struct Roi {
    /// Grid dims.
    pub dims: [usize; 3],
    /// One flag per voxel.
    pub inside: Vec<bool>,
}

/// Inclusive-exclusive voxel bounding box `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BoundingBox {
    /// First voxel index per axis.
    pub lo: [usize; 3],
    /// One past the last voxel index per axis.
    pub hi: [usize; 3],
}

impl BoundingBox {
    /// Size per axis.
    pub fn size(&self) -> [usize; 3] {
        [
            self.hi[0] - self.lo[0],
            self.hi[1] - self.lo[1],
            self.hi[2] - self.lo[2],
        ]
    }
}

impl Roi {
    /// Selects labels from a label map.
    pub fn from_labels(labels: &Volume, sel: &LabelSelection) -> Roi {
        Roi {
            dims: labels.dims(),
            inside: labels.data().iter().map(|&v| sel.contains(v)).collect(),
        }
    }

    /// Number of voxels inside.
    pub fn count(&self) -> usize {
        self.inside.iter().filter(|&&b| b).count()
    }

    /// Bounding box of the inside voxels; `None` for an empty ROI.
    pub fn bounding_box(&self) -> Option<BoundingBox> {
        let [nx, ny, _] = self.dims;
        let mut lo = [usize::MAX; 3];
        let mut hi = [0usize; 3];
        let mut any = false;
        for (n, _) in self.inside.iter().enumerate().filter(|(_, &b)| b) {
            any = true;
            let idx = [n % nx, (n / nx) % ny, n / (nx * ny)];
            for d in 0..3 {
                lo[d] = lo[d].min(idx[d]);
                hi[d] = hi[d].max(idx[d] + 1);
            }
        }
        any.then_some(BoundingBox { lo, hi })
    }

    /// ROI voxel count in each slice along `axis` (0 = i, 1 = j, 2 = k).
    pub fn slice_areas(&self, axis: usize) -> Vec<usize> {
        let [nx, ny, _] = self.dims;
        let mut areas = vec![0usize; self.dims[axis]];
        for (n, _) in self.inside.iter().enumerate().filter(|(_, &b)| b) {
            let idx = [n % nx, (n / nx) % ny, n / (nx * ny)];
            areas[idx[axis]] += 1;
        }
        areas
    }
}

/// Voxel count per distinct non-zero label value, sorted by label (for label maps with small
/// integer labels; non-integer values are counted under their rounded value).
pub fn label_counts(labels: &Volume) -> Vec<(i64, usize)> {
    let mut counts = std::collections::BTreeMap::new();
    for &v in labels.data() {
        if v != 0.0 && v.is_finite() {
            *counts.entry(v.round() as i64).or_insert(0usize) += 1;
        }
    }
    counts.into_iter().collect()
}

/// Mean and population standard deviation of the image inside the ROI (f64 accumulation).
pub fn masked_mean_std(image: &Volume, roi: &Roi) -> Option<(f64, f64)> {
    let vals: Vec<f64> = masked_values(image, roi);
    if vals.is_empty() {
        return None;
    }
    let n = vals.len() as f64;
    let mean = vals.iter().sum::<f64>() / n;
    let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Some((mean, var.sqrt()))
}

fn masked_values(image: &Volume, roi: &Roi) -> Vec<f64> {
    image
        .data()
        .iter()
        .zip(&roi.inside)
        .filter(|(v, &m)| m && v.is_finite())
        .map(|(v, _)| f64::from(*v))
        .collect()
}

/// `q`-th percentile (0–100) with linear interpolation between order statistics (numpy's
/// default method).
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let pos = (q / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let w = pos - lo as f64;
    Some(sorted[lo] * (1.0 - w) + sorted[hi] * w)
}

/// Z-score normalisation with statistics from inside the ROI, applied to the whole volume.
/// `None` when the ROI is empty or the intensities inside are constant.
pub fn zscore_in_mask(image: &Volume, roi: &Roi) -> Option<Volume> {
    let (mean, std) = masked_mean_std(image, roi)?;
    if std <= 0.0 {
        return None;
    }
    let data = image
        .data()
        .iter()
        .map(|&v| ((f64::from(v) - mean) / std) as f32)
        .collect();
    image.with_data(data).ok()
}

/// Percentile normalisation: maps the `lo`-th and `hi`-th percentiles inside the ROI to 0 and 1
/// (values outside are not clipped). `None` when the ROI is empty or the range is zero.
pub fn percentile_in_mask(image: &Volume, roi: &Roi, lo: f64, hi: f64) -> Option<Volume> {
    let mut vals = masked_values(image, roi);
    vals.sort_by(f64::total_cmp);
    let a = percentile(&vals, lo)?;
    let b = percentile(&vals, hi)?;
    if b <= a {
        return None;
    }
    let data = image
        .data()
        .iter()
        .map(|&v| ((f64::from(v) - a) / (b - a)) as f32)
        .collect();
    image.with_data(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{Affine, Grid};

    fn vol(data: Vec<f32>, dims: [usize; 3]) -> Volume {
        Volume::new(
            Grid {
                dims,
                affine: Affine::identity(),
            },
            data,
        )
        .expect("shape")
    }

    #[test]
    fn bbox_and_areas() {
        let mut d = vec![0.0; 4 * 3 * 2];
        d[1 + 4 * 2 + 12] = 2.0; // (1,2,1)
        d[3 + 12] = 1.0; // (3,0,1)
        let v = vol(d, [4, 3, 2]);
        let roi = Roi::from_labels(&v, &LabelSelection::Any);
        assert_eq!(roi.count(), 2);
        let bb = roi.bounding_box().expect("non-empty");
        assert_eq!(bb.lo, [1, 0, 1]);
        assert_eq!(bb.hi, [4, 3, 2]);
        assert_eq!(roi.slice_areas(2), vec![0, 2]);
        let only2 = Roi::from_labels(&v, &LabelSelection::Labels(vec![2]));
        assert_eq!(only2.count(), 1);
        assert_eq!(label_counts(&v), vec![(1, 1), (2, 1)]);
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        let s = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(percentile(&s, 50.0), Some(3.0));
        assert!((percentile(&s, 90.0).expect("non-empty") - 7.6).abs() < 1e-12);
        assert_eq!(percentile(&s, 0.0), Some(1.0));
    }

    #[test]
    fn zscore_inside_mask() {
        let v = vol(vec![1.0, 3.0, 100.0, 100.0], [4, 1, 1]);
        let m = vol(vec![1.0, 1.0, 0.0, 0.0], [4, 1, 1]);
        let roi = Roi::from_labels(&m, &LabelSelection::Any);
        let z = zscore_in_mask(&v, &roi).expect("non-constant");
        assert_eq!(&z.data()[..2], &[-1.0, 1.0]);
        assert!(zscore_in_mask(&vol(vec![5.0; 4], [4, 1, 1]), &roi).is_none());
    }
}
