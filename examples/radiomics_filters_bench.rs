//! Speed of PyRadiomics-style pre-processing and filters on the BraTS case (release builds only):
//!
//! ```text
//! cargo run --release --example radiomics_filters_bench [-- DATA_DIR [REPEATS]]
//! ```
//!
//! Times, per repeat, (1) the reference settings' pre-processing (1 mm, sitkBSpline, padDistance
//! 5 — the crop branch, spacing is already 1 mm), (2) the 8 wavelet bands (coif1), (3) LoG at
//! σ = 1, 2, 3 mm, and (4) a real B-spline resampling of the same case to 1.5 × 1.5 × 2 mm; prints
//! the median of each in milliseconds.

use std::path::PathBuf;
use std::time::Instant;

use glioedge::radiomics::filters::{derived_images_typed, ImageTypeSpec, LogSigma, WaveletSpec};
use glioedge::radiomics::preprocess::{resample_image_and_mask_typed, ResampleSettings};
use glioedge::volume::read_nifti;
use glioedge::volume::resample::Interpolator;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let data = args
        .get(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let repeats: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(5);
    let (image, info) = read_nifti(&data.join("brats_case/t1c.nii.gz"), 1 << 30)?;
    let (mask, _) = read_nifti(&data.join("brats_case/tumour_union_mask.nii.gz"), 1 << 30)?;
    let pixel = info.datatype;
    let reference = ResampleSettings {
        spacing: [1.0, 1.0, 1.0],
        interpolator: Interpolator::BSpline,
        label: 1,
        pad_distance: 5,
    };
    let aniso = ResampleSettings {
        spacing: [1.5, 1.5, 2.0],
        ..reference.clone()
    };
    let wavelet = ImageTypeSpec::Wavelet(WaveletSpec::default());
    let log = ImageTypeSpec::LoG {
        sigmas: [1.0, 2.0, 3.0].map(LogSigma::from_float).to_vec(),
    };
    let (mut t_pre, mut t_wav, mut t_log, mut t_res) = (vec![], vec![], vec![], vec![]);
    let mut dims = [0; 3];
    for _ in 0..repeats {
        let t = Instant::now();
        let (im, ma) = resample_image_and_mask_typed(&image, pixel, &mask, &reference)?;
        t_pre.push(t.elapsed().as_secs_f64() * 1e3);
        dims = im.dims();
        let t = Instant::now();
        let w = derived_images_typed(&im, pixel, &ma, &wavelet)?;
        t_wav.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let l = derived_images_typed(&im, pixel, &ma, &log)?;
        t_log.push(t.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(
            w.images.len() == 8 && l.images.len() == 3,
            "unexpected image count"
        );
        let t = Instant::now();
        let _ = resample_image_and_mask_typed(&image, pixel, &mask, &aniso)?;
        t_res.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "BraTS t1c, union mask, grid {dims:?}, {} threads, {repeats} repeats (median ms):",
        rayon::current_num_threads()
    );
    println!(
        "  preprocess (1 mm, crop branch)       {:8.1}",
        median(t_pre)
    );
    println!(
        "  wavelet coif1, 8 bands               {:8.1}",
        median(t_wav)
    );
    println!(
        "  LoG sigma 1, 2, 3 mm                 {:8.1}",
        median(t_log)
    );
    println!(
        "  B-spline resample to 1.5x1.5x2 mm    {:8.1}",
        median(t_res)
    );
    Ok(())
}
