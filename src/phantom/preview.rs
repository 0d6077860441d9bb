//! `glioedge phantom --preview CASE --out montage.png`: one picture of a case for a person.
//!
//! The case is loaded as the pipeline loads it ([`load_study`]: every series on the T1c grid),
//! made RAS-canonical, and the axial slice with the largest tumour area is shown for each of
//! the six sequences in a 3 × 2 montage (T1 T1C T2 / FLAIR ADC CBF), in radiological
//! convention (patient's right on the left, anterior up), each windowed to the 1st–99th
//! percentile of its non-zero pixels, with the mask outlined per label: 1 (necrosis /
//! non-enhancing) red, 2 (oedema) green, 3 (enhancing) yellow.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::PhantomError;
use crate::case::study::load_study;
use crate::case::{CaseFiles, Sequence};
use crate::config::Config;
use crate::report::overlay::window;
use crate::volume::resample::{as_closest_canonical, canonical_axial_slice};

/// What the preview showed.
#[derive(Debug, Clone)]
pub struct PreviewInfo {
    /// Axial slice index (RAS-canonical reference grid).
    pub slice: usize,
    /// Tumour voxels per label (1, 2, 3) on that slice.
    pub label_pixels: [usize; 3],
    /// Picture size.
    pub size: (u32, u32),
}

const PANELS: [(Sequence, &str); 6] = [
    (Sequence::T1, "T1"),
    (Sequence::T1c, "T1C"),
    (Sequence::T2, "T2"),
    (Sequence::Flair, "FLAIR"),
    (Sequence::Adc, "ADC"),
    (Sequence::Cbf, "CBF"),
];

/// Renders the montage of the case in `case_dir` to `out` (PNG).
pub fn preview(case_dir: &Path, out: &Path, config: &Config) -> Result<PreviewInfo, PhantomError> {
    let files = CaseFiles::discover(case_dir)?;
    let study = load_study(&files, config)?;
    let labels = as_closest_canonical(&study.labels);
    let [nx, ny, nz] = labels.dims();
    let plane = nx * ny;
    let mut best = (0usize, 0usize);
    for k in 0..nz {
        let area = labels.data()[k * plane..(k + 1) * plane]
            .iter()
            .filter(|&&v| v > 0.5)
            .count();
        if area > best.1 {
            best = (k, area);
        }
    }
    let k = best.0;
    let lab = &labels.data()[k * plane..(k + 1) * plane];
    let mut label_pixels = [0usize; 3];
    for &l in lab {
        let l = l.round() as usize;
        if (1..=3).contains(&l) {
            label_pixels[l - 1] += 1;
        }
    }
    let scale = if nx.max(ny) < 160 { 2 } else { 1 };
    let (pw, ph) = (nx * scale, ny * scale);
    let mut img = RgbImage::new((3 * pw) as u32, (2 * ph) as u32);
    for (n, (seq, title)) in PANELS.iter().enumerate() {
        let (ox, oy) = ((n % 3) * pw, (n / 3) * ph);
        let Some(vol) = study.images.get(seq) else {
            continue;
        };
        let Some((_, sl)) = canonical_axial_slice(vol, k) else {
            continue;
        };
        let (lo, hi) = window(&sl);
        let label_at = |i: usize, j: usize| lab[i + nx * j].round() as u8;
        for y in 0..ph {
            for x in 0..pw {
                let i = nx - 1 - x / scale;
                let j = ny - 1 - y / scale;
                let v = f64::from(sl[i + nx * j]);
                let g = (((v - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8;
                let mut rgb = [g, g, g];
                let l = label_at(i, j);
                if l > 0 {
                    let edge = (i == 0 || label_at(i - 1, j) != l)
                        || (i + 1 == nx || label_at(i + 1, j) != l)
                        || (j == 0 || label_at(i, j - 1) != l)
                        || (j + 1 == ny || label_at(i, j + 1) != l);
                    if edge {
                        rgb = match l {
                            1 => [255, 40, 40],
                            2 => [40, 220, 40],
                            _ => [255, 230, 0],
                        };
                    }
                }
                img.put_pixel((ox + x) as u32, (oy + y) as u32, Rgb(rgb));
            }
        }
        draw_text(&mut img, ox + 4, oy + 4, title);
    }
    let tmp = out.with_file_name(format!(
        ".{}.tmp-{}",
        out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| PhantomError::Internal(format!("PNG encoding failed: {e}")))?;
    std::fs::write(&tmp, &png)
        .and_then(|_| std::fs::rename(&tmp, out))
        .map_err(|source| PhantomError::Write {
            path: out.to_path_buf(),
            source,
        })?;
    Ok(PreviewInfo {
        slice: k,
        label_pixels,
        size: (img.width(), img.height()),
    })
}

/// 5 × 7 glyphs of the letters the titles need.
fn glyph(c: char) -> [u8; 7] {
    match c {
        'T' => [0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        '1' => [0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e],
        '2' => [0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f],
        'C' => [0x0e, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0e],
        'F' => [0x1f, 0x10, 0x10, 0x1e, 0x10, 0x10, 0x10],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1f],
        'A' => [0x0e, 0x11, 0x11, 0x1f, 0x11, 0x11, 0x11],
        'I' => [0x0e, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0e],
        'R' => [0x1e, 0x11, 0x11, 0x1e, 0x14, 0x12, 0x11],
        'D' => [0x1e, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1e],
        'B' => [0x1e, 0x11, 0x11, 0x1e, 0x11, 0x11, 0x1e],
        _ => [0; 7],
    }
}

fn draw_text(img: &mut RgbImage, x0: usize, y0: usize, text: &str) {
    let s = 2;
    for (n, c) in text.chars().enumerate() {
        let g = glyph(c);
        for (row, bits) in g.iter().enumerate() {
            for col in 0..5 {
                if bits & (0x10 >> col) != 0 {
                    for dy in 0..s {
                        for dx in 0..s {
                            let x = x0 + n * 6 * s + col * s + dx;
                            let y = y0 + row * s + dy;
                            if (x as u32) < img.width() && (y as u32) < img.height() {
                                img.put_pixel(x as u32, y as u32, Rgb([80, 200, 255]));
                            }
                        }
                    }
                }
            }
        }
    }
}
