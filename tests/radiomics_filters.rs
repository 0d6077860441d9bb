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

use glioedge::radiomics::filters::{derived_images_typed, ImageTypeSpec, LogSigma, WaveletSpec};
use glioedge::radiomics::preprocess::{resample_image_and_mask_typed, ResampleSettings};
use glioedge::volume::resample::Interpolator;
use glioedge::volume::{read_nifti, StoredType, Volume};
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

    fn finish(mut self, case: &str) {
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
            .filter(|(r, _)| r.is_nan() || *r > 1e-6)
            .collect();
        assert!(
            bad.is_empty(),
            "{case}: {} values off by more than 1e-6: {:?}",
            bad.len(),
            &bad[..bad.len().min(10)]
        );
    }
}

fn run_golden(name: &str) {
    let Some(data) = common::data_dir() else {
        return;
    };
    let golden_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("radiomics_filters_{name}.json"));
    let text = std::fs::read_to_string(&golden_path).expect("golden file");
    let g: Value = serde_json::from_str(&text).expect("golden JSON");
    let (image, pixel) = load(&data.join(g["image"].as_str().expect("image")));
    let (mask, _) = load(&data.join(g["mask"].as_str().expect("mask")));
    let label = g["label"].as_u64().expect("label") as u32;
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
        ImageTypeSpec::Wavelet(WaveletSpec::default()),
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
        for smp in w["samples"].as_array().expect("samples") {
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
                scale * 1e-3,
            );
        }
    }
    tally.finish(name);
}

#[test]
fn brats_t1c_union_1mm_reference_settings() {
    run_golden("brats_t1c_union_1mm");
}

#[test]
fn phantom_1mm_reference_settings() {
    run_golden("phantom_1mm");
}

#[test]
fn brats_t1c_bspline_anisotropic() {
    run_golden("brats_t1c_union_bspline_1p5x1p5x2");
}

#[test]
fn brats_t2w_segmentation_label2_linear() {
    run_golden("brats_t2w_seg2_linear_2mm");
}

#[test]
fn phantom_nearest() {
    run_golden("phantom_nearest_1p5mm");
}

#[test]
fn phantom_without_resampling() {
    run_golden("phantom_original");
}
