//! `glioedge features` end to end, and the extractor's behaviour on bad or degenerate inputs.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use glioedge::radiomics::{extract, Extraction, NoFilters, Params, RadiomicsError};
use glioedge::volume::{read_nifti, write_nifti, Affine, Grid, StoredType, Volume};

fn reference(data: &Path, file: &str) -> (serde_json::Value, BTreeMap<String, f64>) {
    let text = std::fs::read_to_string(data.join("reference").join(file)).expect("reference");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let feats = json["features"]
        .as_object()
        .expect("features")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_f64().expect("number")))
        .collect();
    (json, feats)
}

fn assert_close(what: &str, got: f64, want: f64) {
    let err = if want.abs() < 1e-9 {
        (got - want).abs()
    } else {
        ((got - want) / want).abs()
    };
    let tol = if want.abs() < 1e-9 { 1e-9 } else { 1e-6 };
    assert!(err <= tol, "{what}: got {got}, want {want} (error {err:e})");
}

#[test]
fn json_output_of_the_phantom_matches_pyradiomics_and_names_the_inputs() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (json, want) = reference(&data, "pyradiomics_ibsi_digital_phantom_ibsi_settings.json");
    let dir = tempfile::tempdir().expect("tempdir");
    let params = dir.path().join("ibsi.yaml");
    std::fs::write(&params, json["settings_yaml"].as_str().expect("yaml")).expect("write params");
    let out = Command::new(common::bin())
        .arg("features")
        .arg("--image")
        .arg(data.join("ibsi/digital_phantom/phantom.nii.gz"))
        .arg("--mask")
        .arg(data.join("ibsi/digital_phantom/mask.nii.gz"))
        .arg("--params")
        .arg(&params)
        .arg("--json")
        .output()
        .expect("run glioedge");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let got = doc["features"].as_object().expect("features");
    assert_eq!(got.len(), 107);
    // Same names in the same (PyRadiomics) order.
    let ours: Vec<&String> = got.keys().collect();
    let theirs: Vec<&String> = json["features"]
        .as_object()
        .expect("features")
        .keys()
        .collect();
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    let mut theirs_sorted = theirs.clone();
    theirs_sorted.sort();
    assert_eq!(ours_sorted, theirs_sorted);
    for (k, v) in got {
        assert_close(k, v.as_f64().expect("number"), want[k]);
    }
    assert_eq!(doc["errors"].as_object().map(|e| e.len()), Some(0));
    let d = &doc["diagnostics"];
    assert_eq!(d["image_sha256"], json["image"]["sha256"]);
    assert_eq!(d["mask_sha256"], json["mask"]["sha256"]);
    assert_eq!(d["roi_voxels"], 74);
    assert_eq!(d["bounding_box"]["size"], serde_json::json!([5, 4, 4]));
    assert_eq!(d["settings_hash"].as_str().map(str::len), Some(64));
}

#[test]
fn csv_output_and_label_and_unknown_key_errors() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let image = data.join("ibsi/digital_phantom/phantom.nii.gz");
    let mask = data.join("ibsi/digital_phantom/mask.nii.gz");
    let out = Command::new(common::bin())
        .args(["features", "--csv", "--image"])
        .arg(&image)
        .arg("--mask")
        .arg(&mask)
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "feature,value,error");
    assert_eq!(lines.len(), 108);
    assert!(
        lines[1].starts_with("original_shape_Elongation,0.81632122808026"),
        "{}",
        lines[1]
    );

    let out = Command::new(common::bin())
        .args(["features", "--label", "7", "--image"])
        .arg(&image)
        .arg("--mask")
        .arg(&mask)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("label 7 is not present") && err.contains("[1]"),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let params = dir.path().join("typo.yaml");
    std::fs::write(
        &params,
        "setting:\n  binWidth: 25\n  resampledPixelSpaccing: [1, 1, 1]\n",
    )
    .expect("write");
    let out = Command::new(common::bin())
        .args(["features", "--image"])
        .arg(&image)
        .arg("--mask")
        .arg(&mask)
        .arg("--params")
        .arg(&params)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("resampledPixelSpaccing") && err.contains("typo.yaml"),
        "{err}"
    );
}

#[test]
fn case_folder_prefixes_every_sequence_and_matches_the_reference() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (_, want) = reference(&data, "pyradiomics_brats_t1c_union_default.json");
    let out = Command::new(common::bin())
        .arg("features")
        .arg(data.join("brats_case"))
        .arg("--json")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let obj = doc.as_object().expect("object per sequence");
    assert!(
        obj.len() >= 4,
        "sequences: {:?}",
        obj.keys().collect::<Vec<_>>()
    );
    let t1c = doc["t1c"]["features"].as_object().expect("t1c features");
    assert_eq!(t1c.len(), 107);
    // The case ROI (all tumour labels) is the union mask of the reference.
    for (k, v) in &want {
        let key = format!("t1c_{k}");
        assert_close(&key, t1c[&key].as_f64().expect("number"), *v);
    }
    for (seq, body) in obj {
        for k in body["features"].as_object().expect("features").keys() {
            assert!(k.starts_with(&format!("{seq}_original_")), "{k}");
        }
    }
}

fn grid(dims: [usize; 3]) -> Grid {
    Grid {
        dims,
        affine: Affine::from_diag([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]),
    }
}

/// Image and mask from the BraTS case cropped around a 12³ block of the tumour.
fn brats_block(data: &Path) -> (Volume, Volume) {
    let (img, _) = read_nifti(&data.join("brats_case/t1c.nii.gz"), 1 << 30).expect("t1c");
    let (seg, _) =
        read_nifti(&data.join("brats_case/tumour_union_mask.nii.gz"), 1 << 30).expect("mask");
    // Block inside the bounding box [59..133, 78..186, 41..113] of the union mask.
    let lo = [90, 120, 70];
    let n = 12;
    let dims = img.dims();
    let mut iv = Vec::new();
    let mut mv = Vec::new();
    for z in 0..n {
        for y in 0..n {
            for x in 0..n {
                let i = ((lo[2] + z) * dims[1] + lo[1] + y) * dims[0] + lo[0] + x;
                iv.push(img.data()[i]);
                mv.push(seg.data()[i]);
            }
        }
    }
    (
        Volume::new(grid([n, n, n]), iv).expect("image"),
        Volume::new(grid([n, n, n]), mv).expect("mask"),
    )
}

fn pad(v: &Volume, p: usize, fill: f32) -> Volume {
    let d = v.dims();
    let nd = [d[0] + 2 * p, d[1] + 2 * p, d[2] + 2 * p];
    let mut out = vec![fill; nd[0] * nd[1] * nd[2]];
    for z in 0..d[2] {
        for y in 0..d[1] {
            for x in 0..d[0] {
                out[((z + p) * nd[1] + y + p) * nd[0] + x + p] =
                    v.data()[(z * d[1] + y) * d[0] + x];
            }
        }
    }
    Volume::new(grid(nd), out).expect("padded")
}

#[test]
fn roi_touching_the_border_gives_the_same_features_as_inside() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (img, msk) = brats_block(&data);
    let params = Params::default();
    let border = extract(&img, &msk, &params, &NoFilters).expect("border ROI");
    let inner =
        extract(&pad(&img, 3, 0.0), &pad(&msk, 3, 0.0), &params, &NoFilters).expect("padded ROI");
    assert!(border.errors().is_empty(), "{:?}", border.errors());
    assert_eq!(border.features().len(), 107);
    assert_eq!(border.features(), inner.features());
    let vv = border
        .features()
        .into_iter()
        .find(|(k, _)| k == "original_shape_VoxelVolume");
    let n = msk.data().iter().filter(|&&v| v == 1.0).count() as f64;
    assert_eq!(vv.map(|(_, v)| v), Some(n));
}

#[test]
fn results_are_bit_identical_for_any_thread_count() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (img, msk) = brats_block(&data);
    let params =
        Params::from_yaml("setting:\n  binWidth: 10\n  distances: [1, 2]\n").expect("params");
    let run = |threads: usize| -> Extraction {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        pool.install(|| extract(&img, &msk, &params, &NoFilters).expect("extract"))
    };
    let one = run(1);
    let four = run(4);
    let bits = |e: &Extraction| {
        e.features()
            .into_iter()
            .map(|(k, v)| (k, v.to_bits()))
            .collect::<Vec<_>>()
    };
    assert_eq!(bits(&one), bits(&four));
}

#[test]
fn bad_and_degenerate_rois() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (img, msk) = brats_block(&data);
    let params = Params::default();
    // Empty ROI.
    let empty = Volume::filled(*msk.grid(), 0.0);
    match extract(&img, &empty, &params, &NoFilters) {
        Err(e @ RadiomicsError::EmptyMask) => assert!(e.to_string().contains("no labels")),
        other => panic!("empty mask: {other:?}"),
    }
    // Single voxel.
    let mut one = vec![0.0f32; msk.data().len()];
    one[500] = 1.0;
    let one = Volume::new(*msk.grid(), one).expect("mask");
    assert!(matches!(
        extract(&img, &one, &params, &NoFilters),
        Err(RadiomicsError::SingleVoxel)
    ));
    // A one-voxel-thick line: one dimension, below minimumROIDimensions = 2.
    let mut line = vec![0.0f32; msk.data().len()];
    for x in 2..8 {
        line[(5 * 12 + 5) * 12 + x] = 1.0;
    }
    let line = Volume::new(*msk.grid(), line).expect("mask");
    match extract(&img, &line, &params, &NoFilters) {
        Err(
            e @ RadiomicsError::TooFewDimensions {
                dims: 1,
                minimum: 2,
            },
        ) => {
            assert!(e.to_string().contains("minimumROIDimensions"))
        }
        other => panic!("line: {other:?}"),
    }
    // A flat (2-D) ROI is allowed by default: texture angles in the flat axis are dropped.
    let mut flat = vec![0.0f32; msk.data().len()];
    for y in 2..9 {
        for x in 2..9 {
            flat[(5 * 12 + y) * 12 + x] = 1.0;
        }
    }
    let flat = Volume::new(*msk.grid(), flat).expect("mask");
    let ex = extract(&img, &flat, &params, &NoFilters).expect("flat ROI");
    assert!(ex
        .features()
        .iter()
        .any(|(k, _)| k == "original_glcm_Contrast"));
    // Label missing.
    let p7 = Params::from_yaml("setting:\n  label: 7\n").expect("params");
    match extract(&img, &msk, &p7, &NoFilters) {
        Err(RadiomicsError::LabelMissing { label: 7, present }) => assert_eq!(present, vec![1]),
        other => panic!("label 7: {other:?}"),
    }
    // Constant image: PyRadiomics' documented flat-region values, no NaN.
    let flat_img = Volume::filled(*img.grid(), 300.0);
    let ex = extract(&flat_img, &msk, &params, &NoFilters).expect("constant image");
    let f: BTreeMap<String, f64> = ex.features().into_iter().collect();
    assert!(ex.errors().is_empty(), "{:?}", ex.errors());
    assert_eq!(f["original_firstorder_Variance"], 0.0);
    assert_eq!(f["original_firstorder_Skewness"], 0.0);
    assert_eq!(f["original_firstorder_Kurtosis"], 0.0);
    assert_eq!(f["original_glcm_Correlation"], 1.0);
    assert_eq!(f["original_glcm_MCC"], 1.0);
    assert_eq!(f["original_glcm_Imc1"], 0.0);
    assert_eq!(f["original_ngtdm_Coarseness"], 1e6);
    assert_eq!(f["original_ngtdm_Contrast"], 0.0);
    // Mismatched grids.
    let small = Volume::filled(grid([5, 5, 5]), 1.0);
    assert!(matches!(
        extract(&img, &small, &params, &NoFilters),
        Err(RadiomicsError::GeometryMismatch(_))
    ));
    // A filter this build does not have is refused, not skipped.
    let wav = Params::from_yaml("imageType:\n  Original: {}\n  Wavelet: {}\n").expect("params");
    assert!(matches!(
        extract(&img, &msk, &wav, &NoFilters),
        Err(RadiomicsError::NotAvailable(_))
    ));
}

#[test]
fn cli_bad_inputs_exit_2_with_a_reason() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (img, _) = brats_block(&data);
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = dir.path().join("img.nii.gz");
    let mp = dir.path().join("mask.nii.gz");
    write_nifti(&ip, &img, StoredType::F32).expect("write image");
    write_nifti(&mp, &Volume::filled(*img.grid(), 0.0), StoredType::U8).expect("write mask");
    let out = Command::new(common::bin())
        .args(["features", "--image"])
        .arg(&ip)
        .arg("--mask")
        .arg(&mp)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing is segmented"));
    let out = Command::new(common::bin())
        .args(["features", "--image"])
        .arg(dir.path().join("missing.nii.gz"))
        .arg("--mask")
        .arg(&mp)
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.nii.gz"));
}

#[test]
fn listed_features_come_in_parameter_file_order() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (img, msk) = brats_block(&data);
    let p = Params::from_yaml("featureClass:\n  glcm: [MCC, Contrast]\n  firstorder: [Mean]\n")
        .expect("params");
    let ex = extract(&img, &msk, &p, &NoFilters).expect("extract");
    let keys: Vec<String> = ex.features().into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "original_glcm_MCC",
            "original_glcm_Contrast",
            "original_firstorder_Mean"
        ]
    );
}
