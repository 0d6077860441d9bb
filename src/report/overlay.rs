//! PNG overlays: the ROI slice of each sequence with the ROI outline, and the Grad-CAM heat map.
//!
//! Slices are taken from RAS-canonical volumes and shown in radiological convention (patient's
//! right on the left of the picture, anterior at the top), as a radiologist reads them. The grey
//! scale is windowed to the 1st–99th percentile of the non-zero voxels of the slice.

use image::{ImageBuffer, Rgb, RgbImage};

use crate::volume::mask::percentile;
use crate::volume::Volume;

/// One rendered picture.
#[derive(Debug, Clone)]
pub struct Overlay {
    /// File name under `overlays/`, e.g. `t1c_roi.png`.
    pub file: String,
    /// What it shows, for the report.
    pub caption: String,
    /// PNG bytes.
    pub png: Vec<u8>,
}

/// Errors rendering an overlay (internal: the inputs were already validated).
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The volumes do not share a grid.
    #[error("overlay {0}: image, ROI and heat map must share one grid")]
    GridMismatch(String),
    /// PNG encoding failed.
    #[error("overlay {0}: PNG encoding failed: {1}")]
    Encode(String, String),
}

/// The axial slice (`k` on a RAS volume) with the largest ROI area; ties go to the lower slice.
pub fn roi_slice(roi: &Volume) -> usize {
    let [nx, ny, nz] = roi.dims();
    let mut best = (0usize, 0usize);
    for k in 0..nz {
        let area = roi.data()[nx * ny * k..nx * ny * (k + 1)]
            .iter()
            .filter(|&&v| v > 0.5)
            .count();
        if area > best.1 {
            best = (k, area);
        }
    }
    best.0
}

/// Grey-scale window of a slice: 1st–99th percentile of its finite non-zero voxels.
pub fn window(slice: &[f32]) -> (f64, f64) {
    let mut vals: Vec<f64> = slice
        .iter()
        .filter(|v| v.is_finite() && **v != 0.0)
        .map(|&v| f64::from(v))
        .collect();
    vals.sort_by(f64::total_cmp);
    let lo = percentile(&vals, 1.0).unwrap_or(0.0);
    let hi = percentile(&vals, 99.0).unwrap_or(1.0);
    if hi > lo {
        (lo, hi)
    } else {
        (lo, lo + 1.0)
    }
}

/// Jet-like colour map for `t ∈ [0, 1]`.
fn heat(t: f64) -> [f64; 3] {
    let t = t.clamp(0.0, 1.0);
    let r = (1.5 - (4.0 * t - 3.0).abs()).clamp(0.0, 1.0);
    let g = (1.5 - (4.0 * t - 2.0).abs()).clamp(0.0, 1.0);
    let b = (1.5 - (4.0 * t - 1.0).abs()).clamp(0.0, 1.0);
    [r, g, b]
}

/// Renders one axial slice of a RAS-canonical `image` (`dims` = its x and y sizes, x fastest)
/// with the outline of `roi` and, if given, the heat map blended on top; all three are the same
/// slice of volumes on one grid.
pub fn render(
    name: &str,
    dims: [usize; 2],
    slice: &[f32],
    roi: &[f32],
    heatmap: Option<&[f32]>,
) -> Result<Vec<u8>, OverlayError> {
    let [nx, ny] = dims;
    let n = nx * ny;
    if slice.len() != n || roi.len() != n || heatmap.is_some_and(|h| h.len() != n) {
        return Err(OverlayError::GridMismatch(name.into()));
    }
    let (lo, hi) = window(slice);
    let inside = |i: usize, j: usize| roi[i + nx * j] > 0.5;
    let heat_max = heatmap
        .map(|h| h.iter().fold(0.0f32, |a, &v| a.max(v)))
        .unwrap_or(0.0);
    // Pixel (x, y): x = nx − 1 − i (patient right on the left), y = ny − 1 − j (anterior up).
    let img: RgbImage = ImageBuffer::from_fn(nx as u32, ny as u32, |x, y| {
        let i = nx - 1 - x as usize;
        let j = ny - 1 - y as usize;
        let v = f64::from(slice[i + nx * j]);
        let g = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
        let mut rgb = [g, g, g];
        if let Some(h) = heatmap {
            if heat_max > 0.0 {
                let t = f64::from(h[i + nx * j] / heat_max);
                if t > 0.05 {
                    let c = heat(t);
                    let a = 0.45 * t.sqrt();
                    for d in 0..3 {
                        rgb[d] = rgb[d] * (1.0 - a) + c[d] * a;
                    }
                }
            }
        }
        if inside(i, j) {
            let edge = (i == 0 || !inside(i - 1, j))
                || (i + 1 == nx || !inside(i + 1, j))
                || (j == 0 || !inside(i, j - 1))
                || (j + 1 == ny || !inside(i, j + 1));
            if edge {
                rgb = [1.0, 0.1, 0.1];
            }
        }
        Rgb(rgb.map(|c| (c * 255.0).round() as u8))
    });
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| OverlayError::Encode(name.into(), e.to_string()))?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::{Affine, Grid};

    #[test]
    fn renders_outline_in_radiological_orientation() {
        let grid = Grid {
            dims: [6, 5, 3],
            affine: Affine::identity(),
        };
        let image = Volume::new(grid, (0..90).map(|v| v as f32).collect()).expect("shape");
        let mut roi = vec![0.0f32; 90];
        // One voxel at i = 0 (RAS: the patient's left-most column), j = 4 (most anterior), k = 1.
        roi[6 * (4 + 5)] = 1.0;
        let roi = Volume::new(grid, roi).expect("shape");
        assert_eq!(roi_slice(&roi), 1);
        let png = render(
            "t",
            [6, 5],
            &image.data()[30..60],
            &roi.data()[30..60],
            None,
        )
        .expect("renders");
        let img = image::load_from_memory(&png).expect("png").to_rgb8();
        // Patient left (i = 0) is on the right of the picture; anterior (j = 4) at the top.
        assert_eq!(img.get_pixel(5, 0).0, [255, 26, 26]);
        assert_ne!(img.get_pixel(0, 0).0, [255, 26, 26]);
    }
}
