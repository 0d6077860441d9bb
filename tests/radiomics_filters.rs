//! PyRadiomics pre-processing and filters against SimpleITK + PyWavelets.
//!
//! Goldens in `tests/golden/radiomics_filters_*.json` were written by
//! `tests/peers/radiomics_filters_peer.py` (SimpleITK 2.5.7, PyWavelets 1.8, numpy; called as
//! PyRadiomics 3.1 `imageoperations` calls them). Each holds, per derived image in PyRadiomics'
//! order, statistics inside the ROI and over the whole pre-processed grid plus sampled voxels.
//! We require agreement to 1e-6 relative (to the image's own magnitude for values that cancel,
//! such as sums of high-pass bands), and print how many values are bit-identical.

mod common;

use std::path::Path;

use glioedge::radiomics::filters::{
    derived_images, derived_images_typed, FilterError, ImageTypeSpec, LogSigma, WaveletSpec,
};
use glioedge::radiomics::preprocess::{
    crop_to_mask, resample_image_and_mask, resample_image_and_mask_typed, PreprocessError,
    ResampleSettings,
};
use glioedge::volume::resample::Interpolator;
use glioedge::volume::{read_nifti, Affine, Grid, StoredType, Volume};
use serde_json::Value;

const MAX_BYTES: u64 = 1 << 30;

fn load(path: &Path) -> (Volume, StoredType) {
    let (v, info) =
        read_nifti(path, MAX_BYTES).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (v, info.datatype)
}

fn interpolator(name: &str) -> Interpolator {
    match name {
        "sitkBSpline" => Interpolator::BSpline,
        "sitkLinear" => Interpolator::Linear,
        "sitkNearestNeighbor" => Interpolator::Nearest,
        other => panic!("interpolator {other} not in the test's table"),
    }
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// Stats of a derived image in the golden's terms.
struct Stats {
    n: usize,
    sum: f64,
    mean: f64,
    std: f64,
    min: f64,
    max: f64,
    sum_abs: f64,
}

fn stats<'a>(vals: impl Iterator<Item = &'a f32> + Clone) -> Stats {
    let (mut n, mut sum, mut sum_abs) = (0usize, 0.0f64, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    for &v in vals.clone() {
        let v = f64::from(v);
        n += 1;
        sum += v;
        sum_abs += v.abs();
        min = min.min(v);
        max = max.max(v);
    }
    let mean = sum / n as f64;
    let var = vals.map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n as f64;
    Stats {
        n,
        sum,
        mean,
        std: var.sqrt(),
        min,
        max,
        sum_abs,
    }
}

#[derive(Default)]
struct Tally {
    compared: usize,
    identical: usize,
    worst: Vec<(f64, String)>,
}

impl Tally {
    /// `|ours − ref| <= 1e-6 · max(|ref|, scale)`.
    fn check(&mut self, what: String, ours: f64, reference: f64, scale: f64) {
        self.compared += 1;
        if ours == reference {
            self.identical += 1;
        }
        let denom = reference.abs().max(scale).max(f64::MIN_POSITIVE);
        let rel = (ours - reference).abs() / denom;
        self.worst
            .push((rel, format!("{what}: ours {ours} ref {reference}")));
    }

    fn finish(mut self, case: &str, tol: f64) {
        self.worst.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!(
            "{case}: {} values compared, {} bit-identical; worst relative errors:",
            self.compared, self.identical
        );
        for (rel, what) in self.worst.iter().take(10) {
            println!("  {rel:.3e}  {what}");
        }
        let bad: Vec<_> = self
            .worst
            .iter()
            .filter(|(r, _)| r.is_nan() || *r > tol)
            .collect();
        assert!(
            bad.is_empty(),
            "{case}: {} values off by more than {tol:e}: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
    }
}

/// Compares one golden; `tol` is relative (1e-6 unless a case says why not). Sampled voxels
/// (when `samples` is `Some(floor)`) are compared relative to `max(|ref|, floor · max|image|)`.
fn run_golden(name: &str, tol: f64, samples: Option<f64>) {
    let Some(data) = common::data_dir() else {
        return;
    };
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("radiomics_filters_{name}.json"));
    let text = std::fs::read_to_string(&golden_path).expect("golden file");
    let g: Value = serde_json::from_str(&text).expect("golden JSON");
    let (image, pixel) = load(&data.join(g["image"].as_str().expect("image")));
    let (mut mask, _) = load(&data.join(g["mask"].as_str().expect("mask")));
    let label = g["label"].as_u64().expect("label") as u32;
    if let Some(b) = g["mask_box"].as_array() {
        // A box ROI [lo, hi) drawn on the mask file's grid (the peer does the same).
        let c =
            |v: &Value, d: usize| v.as_array().expect("corner")[d].as_u64().expect("int") as usize;
        let [nx, ny, _] = mask.dims();
        for (n, v) in mask.data_mut().iter_mut().enumerate() {
            let idx = [n % nx, (n / nx) % ny, n / (nx * ny)];
            let inside = (0..3).all(|d| idx[d] >= c(&b[0], d) && idx[d] < c(&b[1], d));
            *v = if inside { label as f32 } else { 0.0 };
        }
    }
    let st = &g["settings"];
    let (image, mask) = if st["resampledPixelSpacing"].is_null() {
        (image, mask)
    } else {
        let sp: Vec<f64> = st["resampledPixelSpacing"]
            .as_array()
            .expect("spacing")
            .iter()
            .map(f)
            .collect();
        let s = ResampleSettings {
            spacing: [sp[0], sp[1], sp[2]],
            interpolator: interpolator(st["interpolator"].as_str().expect("interpolator")),
            label,
            pad_distance: st["padDistance"].as_u64().expect("pad") as usize,
        };
        resample_image_and_mask_typed(&image, pixel, &mask, &s).expect("preprocess")
    };
    // Grid as SimpleITK has it (LPS origin).
    let pre = &g["preprocessed"];
    let size: Vec<usize> = pre["size"]
        .as_array()
        .expect("size")
        .iter()
        .map(|v| v.as_u64().expect("int") as usize)
        .collect();
    assert_eq!(image.dims().to_vec(), size, "{name}: pre-processed size");
    assert_eq!(mask.dims(), image.dims());
    let o: Vec<f64> = pre["origin_lps"]
        .as_array()
        .expect("origin")
        .iter()
        .map(f)
        .collect();
    let t = image.affine().translation();
    let ras = [-o[0], -o[1], o[2]];
    for d in 0..3 {
        assert!(
            (t[d] - ras[d]).abs() < 1e-6,
            "{name}: origin {t:?} vs {ras:?}"
        );
    }
    let sp: Vec<f64> = pre["spacing"]
        .as_array()
        .expect("spacing")
        .iter()
        .map(f)
        .collect();
    for d in 0..3 {
        assert!((image.zooms()[d] - sp[d]).abs() < 1e-9, "{name}: spacing");
    }
    let roi: Vec<bool> = mask.data().iter().map(|&v| v == label as f32).collect();
    assert_eq!(
        roi.iter().filter(|&&b| b).count() as u64,
        pre["roi_voxels"].as_u64().expect("n")
    );

    // Derived images: Original, Wavelet (coif1, level 1), LoG with the golden's sigmas.
    let sigmas: Vec<LogSigma> = st["sigma"]
        .as_array()
        .expect("sigma")
        .iter()
        .map(|v| LogSigma::from_float(f(v)))
        .collect();
    let mut derived = Vec::new();
    for spec in [
        ImageTypeSpec::Original,
        ImageTypeSpec::Wavelet(WaveletSpec {
            wavelet: st["wavelet"].as_str().expect("wavelet").to_string(),
            level: st["level"].as_u64().expect("level") as usize,
            start_level: st["start_level"].as_u64().expect("start_level") as usize,
        }),
        ImageTypeSpec::LoG { sigmas },
    ] {
        let d = derived_images_typed(&image, pixel, &mask, &spec).expect("derived");
        assert_eq!(
            d.images.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
            spec.image_type_names()
                .into_iter()
                .filter(|n| !d.skipped.iter().any(|s| &s.name == n))
                .collect::<Vec<_>>()
        );
        derived.extend(d.images);
    }
    let want = g["derived"].as_array().expect("derived");
    assert_eq!(
        derived.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        want.iter()
            .map(|d| d["name"].as_str().expect("name"))
            .collect::<Vec<_>>(),
        "{name}: image types and order"
    );
    let mut tally = Tally::default();
    for ((dname, vol), w) in derived.iter().zip(want) {
        let inside = vol
            .data()
            .iter()
            .zip(&roi)
            .filter(|(_, &b)| b)
            .map(|(v, _)| v);
        for (part, s) in [("roi", stats(inside)), ("all", stats(vol.data().iter()))] {
            let r = &w[part];
            assert_eq!(
                s.n as u64,
                r["n"].as_u64().expect("n"),
                "{name} {dname} {part} n"
            );
            let mag = f(&r["sum_abs"]) / f(&r["n"]);
            let scale = f(&r["max"]).abs().max(f(&r["min"]).abs());
            tally.check(
                format!("{dname} {part} sum"),
                s.sum,
                f(&r["sum"]),
                f(&r["sum_abs"]),
            );
            tally.check(
                format!("{dname} {part} sum_abs"),
                s.sum_abs,
                f(&r["sum_abs"]),
                0.0,
            );
            tally.check(format!("{dname} {part} mean"), s.mean, f(&r["mean"]), mag);
            tally.check(format!("{dname} {part} std"), s.std, f(&r["std"]), mag);
            tally.check(format!("{dname} {part} min"), s.min, f(&r["min"]), scale);
            tally.check(format!("{dname} {part} max"), s.max, f(&r["max"]), scale);
        }
        let scale = f(&w["all"]["max"]).abs().max(f(&w["all"]["min"]).abs());
        let floor = samples.unwrap_or(0.0);
        let picked = if samples.is_some() {
            w["samples"].as_array().expect("samples").as_slice()
        } else {
            &[]
        };
        for smp in picked {
            let a = smp.as_array().expect("sample");
            let (i, j, k) = (
                a[0].as_u64().expect("i") as usize,
                a[1].as_u64().expect("j") as usize,
                a[2].as_u64().expect("k") as usize,
            );
            tally.check(
                format!("{dname} voxel ({i},{j},{k})"),
                f64::from(vol.at(i, j, k)),
                f(&a[3]),
                scale * floor,
            );
        }
    }
    tally.finish(name, tol);
}

#[test]
fn brats_t1c_union_1mm_reference_settings() {
    run_golden("brats_t1c_union_1mm", 1e-6, Some(1e-3));
}

#[test]
fn phantom_1mm_reference_settings() {
    run_golden("phantom_1mm", 1e-6, Some(1e-3));
}

#[test]
fn brats_t1c_bspline_anisotropic() {
    run_golden("brats_t1c_union_bspline_1p5x1p5x2", 1e-6, Some(1e-3));
}

#[test]
fn brats_t2w_segmentation_label2_linear() {
    run_golden("brats_t2w_seg2_linear_2mm", 1e-6, Some(1e-3));
}

#[test]
fn phantom_nearest() {
    run_golden("phantom_nearest_1p5mm", 1e-6, Some(1e-3));
}

/// Raw oblique int16 MRI, image and mask on different grids. The new grid agrees with
/// SimpleITK's to 1e-8 mm, but the two read the oblique NIfTI directions slightly differently
/// (ITK orthonormalises the qform, the volume module keeps nibabel's sform), so interpolated
/// doubles differ by up to ~1e-4; the int16 truncation turns that into a difference of 1 in
/// 6 of 90 988 voxels (measured with examples/radiomics_filters_dump.rs), which the derived
/// images spread to their neighbours (a sampled wavelet-HHH voxel next to one is 6e-4 off).
/// Hence statistics only, at 1e-4 — the tolerance for resampled/filtered features.
#[test]
fn tcga_int16_flair_bspline_onto_a_box_on_the_t1c_grid() {
    run_golden("tcga_flair_int16_on_t1c_box_bspline_1mm", 1e-4, None);
}

/// The integer-output path keeps the interpolated doubles; rounded to f32 they are exactly what
/// the shared resampler gives.
#[test]
fn double_resampling_matches_the_shared_resampler() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (image, _) = load(&data.join("tcga_fg_6692_raw/TCGA-FG-6692_flair.nii.gz"));
    let (t1c, _) = load(&data.join("tcga_fg_6692_raw/TCGA-FG-6692_t1c.nii.gz"));
    let target = t1c.crop([90, 80, 8], [150, 140, 18]);
    for interp in [
        Interpolator::Nearest,
        Interpolator::Linear,
        Interpolator::BSpline,
    ] {
        let grid = *target.grid();
        let a = glioedge::volume::resample::resample_onto(
            &image,
            &grid,
            interp,
            glioedge::volume::resample::Boundary::Itk,
        )
        .expect("invertible");
        let b = glioedge::radiomics::preprocess::resample_f64(&image, &grid, interp)
            .expect("invertible");
        assert!(
            a.data()
                .iter()
                .zip(&b)
                .all(|(x, y)| x.to_bits() == (*y as f32).to_bits()),
            "{interp:?}"
        );
    }
}

/// `t2w.nii.gz` stores float64; volumes hold f32, so the input itself is rounded at 6e-8 of its
/// magnitude and high-pass voxels near zero can only agree to that resolution of the band's
/// magnitude (statistics still agree to 1e-6).
#[test]
fn brats_t2w_sym3_two_levels() {
    run_golden("brats_t2w_union_sym3_level2", 1e-6, Some(1.0));
}

#[test]
fn phantom_haar_start_level_1_two_levels() {
    run_golden("phantom_haar_start1_level2", 1e-6, Some(1e-3));
}

#[test]
fn phantom_without_resampling() {
    run_golden("phantom_original", 1e-6, Some(1e-3));
}

fn brats(data: &Path, file: &str) -> (Volume, StoredType) {
    load(&data.join("brats_case").join(file))
}

fn all_specs() -> Vec<ImageTypeSpec> {
    vec![
        ImageTypeSpec::Original,
        ImageTypeSpec::Wavelet(WaveletSpec::default()),
        ImageTypeSpec::LoG {
            sigmas: vec![LogSigma::from_float(1.0), LogSigma::from_float(3.0)],
        },
    ]
}

/// Derived images are the same bits run to run and with 1 or 2 worker threads.
#[test]
fn deterministic_and_thread_independent() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (image, pixel) = brats(&data, "t1c.nii.gz");
    let (mask, _) = brats(&data, "tumour_union_mask.nii.gz");
    let s = ResampleSettings {
        spacing: [1.5, 1.5, 2.0],
        interpolator: Interpolator::BSpline,
        label: 1,
        pad_distance: 5,
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("thread pool");
        pool.install(|| {
            let (im, ma) = resample_image_and_mask_typed(&image, pixel, &mask, &s).expect("pre");
            let mut out = vec![("resampled-mask".to_string(), ma.clone())];
            for spec in all_specs() {
                out.extend(
                    derived_images_typed(&im, pixel, &ma, &spec)
                        .expect("derived")
                        .images,
                );
            }
            out
        })
    };
    let one = run(1);
    let two = run(2);
    let again = run(2);
    assert_eq!(one.len(), 1 + 1 + 8 + 2);
    for ((a, b), c) in one.iter().zip(&two).zip(&again) {
        assert_eq!(a.0, b.0);
        let bits = |v: &Volume| v.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert!(bits(&a.1) == bits(&b.1), "{}: 1 vs 2 threads differ", a.0);
        assert!(bits(&b.1) == bits(&c.1), "{}: two runs differ", a.0);
    }
}

fn toy(dims: [usize; 3], spacing: f64, f: impl Fn(usize, usize, usize) -> f32) -> Volume {
    let grid = Grid {
        dims,
        affine: Affine::from_diag([spacing; 3], [0.0; 3]),
    };
    let mut data = Vec::with_capacity(grid.len());
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                data.push(f(i, j, k));
            }
        }
    }
    Volume::new(grid, data).expect("shape")
}

#[test]
fn label_missing_and_empty_mask_are_errors_naming_the_labels() {
    let image = toy([8, 8, 8], 2.0, |i, j, k| (i + j + k) as f32);
    let mask = toy([8, 8, 8], 2.0, |i, j, k| {
        if (2..5).contains(&i) && (2..5).contains(&j) && (2..5).contains(&k) {
            2.0
        } else {
            0.0
        }
    });
    let s = ResampleSettings {
        spacing: [1.0; 3],
        interpolator: Interpolator::BSpline,
        label: 1,
        pad_distance: 5,
    };
    let e = resample_image_and_mask(&image, &mask, &s).expect_err("label 1 absent");
    assert!(
        matches!(&e, PreprocessError::LabelMissing { label: 1, present } if present == &vec![2]),
        "{e}"
    );
    assert!(e.to_string().contains("label 1 is not present"), "{e}");
    let empty = toy([8, 8, 8], 2.0, |_, _, _| 0.0);
    let e = resample_image_and_mask(&image, &empty, &s).expect_err("empty");
    assert!(
        matches!(&e, PreprocessError::LabelMissing { present, .. } if present.is_empty()),
        "{e}"
    );
    let e = crop_to_mask(&image, &empty, 1, 0).expect_err("empty");
    assert!(matches!(e, PreprocessError::LabelMissing { .. }));
    let bad = ResampleSettings {
        spacing: [1.0, -1.0, f64::NAN],
        ..s
    };
    assert!(matches!(
        resample_image_and_mask(&image, &mask, &bad),
        Err(PreprocessError::InvalidSpacing { .. })
    ));
    // A spacing that would need more memory than the limit: refused before allocating.
    let tiny = ResampleSettings {
        spacing: [0.001; 3],
        label: 2,
        ..s
    };
    let e = resample_image_and_mask(&image, &mask, &tiny).expect_err("too large");
    assert!(matches!(e, PreprocessError::GridTooLarge { .. }), "{e}");
}

#[test]
fn roi_touching_the_border_crops_to_the_volume() {
    // ROI in the corner voxel rows: padding is clipped at the volume's edge (cropToTumorMask).
    let image = toy([10, 9, 8], 1.0, |i, j, k| (i * 100 + j * 10 + k) as f32);
    let mask = toy([10, 9, 8], 1.0, |i, j, k| {
        if i <= 1 && j >= 7 && k < 3 {
            1.0
        } else {
            0.0
        }
    });
    let (im, ma) = crop_to_mask(&image, &mask, 1, 5).expect("crop");
    assert_eq!(im.dims(), [7, 7, 8]);
    assert_eq!(ma.dims(), [7, 7, 8]);
    // world positions are kept: voxel (0,0,0) of the crop is (0,2,0) of the input.
    assert_eq!(im.at(0, 0, 0), image.at(0, 2, 0));
    assert_eq!(im.affine().translation(), [0.0, 2.0, 0.0]);
    // Same spacing → the resampling path is the crop path.
    let s = ResampleSettings {
        spacing: [1.0; 3],
        interpolator: Interpolator::BSpline,
        label: 1,
        pad_distance: 5,
    };
    let (im2, ma2) = resample_image_and_mask(&image, &mask, &s).expect("no-op resample");
    assert_eq!(im2, im);
    assert_eq!(ma2, ma);
    // Upsampled: the grid still stays inside the mask's extent.
    let s = ResampleSettings {
        spacing: [0.5, 0.5, 0.5],
        ..s
    };
    let (im3, ma3) = resample_image_and_mask(&image, &mask, &s).expect("resample");
    assert_eq!(im3.dims(), ma3.dims());
    // PyRadiomics' bounds: x floor((0-.5)·2-5) → 0 .. ceil((2-.5)·2+5) = 8; y 8 .. min(22, 17);
    // z 0 .. 10.
    assert_eq!(im3.dims(), [9, 10, 11]);
    assert_eq!(
        ma3.data().iter().filter(|&&v| v == 1.0).count(),
        2 * 2 * 3 * 8
    );
}

#[test]
fn single_voxel_roi_keeps_its_spacing_on_every_axis() {
    // PyRadiomics does not resample along axes where the ROI is one voxel thick; a single
    // voxel ROI therefore takes the crop path (checkMask rejects it later, in the extractor).
    let image = toy([6, 6, 6], 2.0, |i, j, k| (i * j + k) as f32);
    let mask = toy([6, 6, 6], 2.0, |i, j, k| {
        if (i, j, k) == (3, 3, 3) {
            1.0
        } else {
            0.0
        }
    });
    let s = ResampleSettings {
        spacing: [1.0; 3],
        interpolator: Interpolator::Linear,
        label: 1,
        pad_distance: 1,
    };
    let (im, ma) = resample_image_and_mask(&image, &mask, &s).expect("crop path");
    assert_eq!(im.dims(), [3, 3, 3]);
    assert_eq!(im.zooms(), [2.0, 2.0, 2.0]);
    assert_eq!(ma.at(1, 1, 1), 1.0);
}

#[test]
fn roi_outside_the_image_is_rejected() {
    let image = toy([6, 6, 6], 1.0, |_, _, _| 1.0);
    let grid = Grid {
        dims: [6, 6, 6],
        affine: Affine::from_diag([1.0; 3], [20.0, 0.0, 0.0]),
    };
    let mut mask = Volume::filled(grid, 0.0);
    let n = mask.index(2, 2, 2);
    mask.data_mut()[n] = 1.0;
    let n = mask.index(3, 3, 3);
    mask.data_mut()[n] = 1.0;
    let s = ResampleSettings {
        spacing: [0.5; 3],
        interpolator: Interpolator::Linear,
        label: 1,
        pad_distance: 1,
    };
    let e = resample_image_and_mask(&image, &mask, &s).expect_err("outside");
    assert!(matches!(e, PreprocessError::RoiOutsideImage { .. }), "{e}");
}

#[test]
fn int16_bspline_is_truncated_like_simpleitk() {
    // SimpleITK resamples into the input pixel type: the cubic B-spline overshoot of an int16
    // step edge is cast toward zero, a float32 image keeps the fraction.
    let image = toy([12, 12, 12], 2.0, |i, _, _| if i < 6 { 0.0 } else { 100.0 });
    let mask = toy([12, 12, 12], 2.0, |i, j, k| {
        if (3..9).contains(&i) && (3..9).contains(&j) && (3..9).contains(&k) {
            1.0
        } else {
            0.0
        }
    });
    let s = ResampleSettings {
        spacing: [1.0; 3],
        interpolator: Interpolator::BSpline,
        label: 1,
        pad_distance: 2,
    };
    let (f, _) = resample_image_and_mask(&image, &mask, &s).expect("float");
    let (i16, _) =
        resample_image_and_mask_typed(&image, StoredType::I16, &mask, &s).expect("int16");
    assert!(f.data().iter().any(|v| v.fract() != 0.0));
    assert!(
        f.data().iter().any(|&v| v < 0.0),
        "B-spline undershoots at the edge"
    );
    for (a, b) in f.data().iter().zip(i16.data()) {
        assert_eq!(*b, a.trunc());
    }
    let (u8v, _) = resample_image_and_mask_typed(&image, StoredType::U8, &mask, &s).expect("uint8");
    assert!(u8v
        .data()
        .iter()
        .all(|&v| (0.0..=255.0).contains(&v) && v.fract() == 0.0));
}

#[test]
fn log_skips_sigmas_as_pyradiomics_and_wavelet_names_follow_its_order() {
    let image = toy([10, 10, 3], 1.0, |i, j, k| (i * j + k) as f32);
    let mask = toy([10, 10, 3], 1.0, |i, _, _| if i > 3 { 1.0 } else { 0.0 });
    let spec = ImageTypeSpec::LoG {
        sigmas: vec![LogSigma::from_float(1.0), LogSigma::from_int(2)],
    };
    // An axis shorter than 4 voxels: no LoG image at all.
    let d = derived_images_typed(&image, StoredType::F32, &mask, &spec).expect("ok");
    assert!(d.images.is_empty());
    assert_eq!(d.skipped.len(), 2);
    assert!(d.skipped[0]
        .reason
        .contains("Image too small to apply LoG filter"));
    // sigma / spacing + 1 larger than the size: that sigma only.
    let image = toy([6, 6, 6], 1.0, |i, j, k| (i * j + k) as f32);
    let mask = toy([6, 6, 6], 1.0, |i, _, _| if i > 3 { 1.0 } else { 0.0 });
    let spec = ImageTypeSpec::LoG {
        sigmas: vec![
            LogSigma::from_float(1.5),
            LogSigma::from_int(6),
            LogSigma::from_float(0.0),
        ],
    };
    let d = derived_images_typed(&image, StoredType::F32, &mask, &spec).expect("ok");
    assert_eq!(
        d.images.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["log-sigma-1-5-mm-3D"]
    );
    assert_eq!(d.skipped[0].name, "log-sigma-6-mm-3D");
    assert!(d.skipped[0]
        .reason
        .contains("must be greater than the size"));
    assert!(d.skipped[1]
        .reason
        .contains("sigma must be greater than 0.0"));
    // A constant image has a zero Laplacian everywhere (border value extended to infinity).
    let flat = toy([6, 6, 6], 1.0, |_, _, _| 7.0);
    let d = derived_images(
        &flat,
        &mask,
        &ImageTypeSpec::LoG {
            sigmas: vec![LogSigma::from_float(1.0)],
        },
    )
    .expect("ok");
    assert!(
        d[0].1.data().iter().all(|v| v.abs() < 1e-4),
        "{:?}",
        &d[0].1.data()[..6]
    );
    // Wavelet names: PyRadiomics' order; odd sizes are handled (wrap-padded, then cropped).
    let w = derived_images(
        &image,
        &mask,
        &ImageTypeSpec::Wavelet(WaveletSpec::default()),
    )
    .expect("ok");
    let names: Vec<_> = w.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "wavelet-LLH",
            "wavelet-LHL",
            "wavelet-LHH",
            "wavelet-HLL",
            "wavelet-HLH",
            "wavelet-HHL",
            "wavelet-HHH",
            "wavelet-LLL"
        ]
    );
    let odd = toy([5, 7, 9], 1.0, |i, j, k| (i + 2 * j + 3 * k) as f32);
    let odd_mask = toy([5, 7, 9], 1.0, |_, _, _| 1.0);
    let w2 = derived_images(
        &odd,
        &odd_mask,
        &ImageTypeSpec::Wavelet(WaveletSpec {
            wavelet: "haar".into(),
            level: 2,
            start_level: 1,
        }),
    )
    .expect("ok");
    assert_eq!(w2.len(), 15);
    assert_eq!(w2[7].0, "wavelet2-LLH");
    assert_eq!(w2[14].0, "wavelet2-LLL");
    assert!(w2.iter().all(|(_, v)| v.dims() == [5, 7, 9]));
    // Unknown wavelet, mismatched grids: errors.
    let e = derived_images(
        &image,
        &mask,
        &ImageTypeSpec::Wavelet(WaveletSpec {
            wavelet: "morl".into(),
            level: 1,
            start_level: 0,
        }),
    )
    .expect_err("unknown");
    assert!(
        matches!(&e, FilterError::UnknownWavelet { name, .. } if name == "morl"),
        "{e}"
    );
    assert!(e.to_string().contains("coif1"));
    let e = derived_images(&image, &odd_mask, &ImageTypeSpec::Original).expect_err("grid");
    assert!(matches!(e, FilterError::GridMismatch { .. }));
}
