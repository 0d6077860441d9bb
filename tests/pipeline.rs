//! One case end to end through the real binary: `glioedge run` on the BraTS case and on the
//! raw TCGA series (with a spherical mask made here), every file present, result.json valid
//! against its schema and byte-identical between runs apart from timings, radiomics in
//! features.csv equal to PyRadiomics' on the same image and ROI, bad input → exit 2.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use glioedge::volume::{read_nifti, write_nifti, StoredType};

fn run(case: &Path, out: &Path) -> std::process::Output {
    Command::new(common::bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("run")
        .arg(case)
        .arg("--out")
        .arg(out)
        .arg("--bundle")
        .env("GLIOEDGE_LOG", "warn")
        .output()
        .expect("start glioedge")
}

fn schema() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/result.schema.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("schema file")).expect("schema JSON")
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("result JSON")
}

fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("timings");
    }
    v
}

fn features(dir: &Path) -> BTreeMap<String, f64> {
    let text = std::fs::read_to_string(dir.join("features.csv")).expect("features.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("feature,value"));
    lines
        .map(|l| {
            let (k, v) = l.split_once(',').expect("two columns");
            (k.to_owned(), v.parse::<f64>().unwrap_or(f64::NAN))
        })
        .collect()
}

/// Runs a case twice and checks everything the result folder must hold; returns the folder.
fn check_case(case: &Path, id: &str, sequences: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let holder = tempfile::tempdir().expect("tempdir");
    let tmp = holder.path().to_path_buf();
    let first = run(case, &tmp.join("a"));
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "run failed:\n{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(
        stdout.contains("DEMO MODEL"),
        "the demo model is labelled: {stdout}"
    );
    let dir = tmp.join("a").join(id);
    for f in ["result.json", "report.html", "features.csv"] {
        assert!(dir.join(f).is_file(), "{f} missing in {}", dir.display());
    }
    assert!(
        dir.join(format!("{id}.tar.zst")).is_file(),
        "bundle missing"
    );
    for s in sequences {
        assert!(
            dir.join(format!("overlays/{s}_roi.png")).is_file(),
            "{s} ROI overlay"
        );
        assert!(
            dir.join(format!("overlays/{s}_gradcam.png")).is_file(),
            "{s} Grad-CAM overlay"
        );
    }
    let result = read_json(&dir.join("result.json"));
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&result)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_eq!(result["model"]["demo"], true);
    assert_eq!(result["case_id"], id);
    let stages: Vec<&str> = result["timings"]
        .as_array()
        .expect("timings")
        .iter()
        .filter_map(|t| t["stage"].as_str())
        .collect();
    assert_eq!(
        stages,
        ["load", "radiomics", "inference", "fusion", "report"]
    );
    // Every task has a number from the package's fitted nomogram, or says why it has none
    // (unfitted task, missing input, input outside the training range).
    for t in result["tasks"].as_array().expect("tasks") {
        match t["status"].as_str() {
            Some("assessed") => {
                let p = t["probability"].as_f64().expect("probability");
                assert!((0.0..=1.0).contains(&p), "{t}");
                assert!(t["shap"]["all"].is_array(), "{t}");
            }
            Some("not_assessable") => {
                assert!(t["probability"].is_null());
                assert!(t["reason"].as_str().is_some_and(|r| !r.is_empty()), "{t}");
            }
            other => panic!("task status {other:?}: {t}"),
        }
    }
    let html = std::fs::read_to_string(dir.join("report.html")).expect("report");
    assert!(html.contains("DEMO"), "report shows the demo banner");
    assert!(html.contains("data:image/png;base64,"), "overlays inline");
    // Deep features: 768 per sequence.
    let feats = features(&dir);
    for s in sequences {
        let n = feats
            .keys()
            .filter(|k| k.starts_with(&format!("dl_{s}_")))
            .count();
        assert_eq!(n, 768, "{s} deep features");
        assert!(feats.contains_key(&format!("{s}_original_firstorder_Mean")));
    }
    assert!(
        feats.values().all(|v| v.is_finite()),
        "every feature finite"
    );
    // Second run: identical result apart from timings, identical features and overlays.
    let second = run(case, &tmp.join("b"));
    assert!(second.status.success());
    let dir_b = tmp.join("b").join(id);
    assert_eq!(
        without_timings(result),
        without_timings(read_json(&dir_b.join("result.json"))),
        "result.json differs between runs"
    );
    assert_eq!(
        std::fs::read(dir.join("features.csv")).expect("a"),
        std::fs::read(dir_b.join("features.csv")).expect("b"),
        "features.csv differs between runs"
    );
    (holder, dir)
}

#[test]
fn brats_case_end_to_end_matches_pyradiomics() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let (_tmp, dir) = check_case(
        &data.join("brats_case"),
        "brats_case",
        &["t1c", "t2", "flair"],
    );
    // The case's ROI is the union of the segmentation's labels, exactly the reference's mask:
    // t1c radiomics in features.csv equal PyRadiomics' default extraction.
    let reference = read_json(&data.join("reference/pyradiomics_brats_t1c_union_default.json"));
    let ours = features(&dir);
    let (mut n, mut n_shape) = (0, 0);
    for (k, v) in reference["features"].as_object().expect("features") {
        let want = v.as_f64().expect("number");
        let got = ours
            .get(&format!("t1c_{k}"))
            .unwrap_or_else(|| panic!("t1c_{k} missing"));
        let err = if want.abs() < 1e-9 {
            (got - want).abs()
        } else {
            ((got - want) / want).abs()
        };
        assert!(err <= 1e-6, "t1c_{k}: ours {got}, PyRadiomics {want}");
        n += 1;
        // Shape depends on the mask and the grid only: every sequence of the co-gridded study
        // reports PyRadiomics' values (computed once for the study, given to each sequence).
        if k.starts_with("original_shape_") {
            for seq in ["t2", "flair", "t1"] {
                let other = ours
                    .get(&format!("{seq}_{k}"))
                    .unwrap_or_else(|| panic!("{seq}_{k} missing"));
                assert_eq!(other.to_bits(), got.to_bits(), "{seq}_{k} differs from t1c");
            }
            n_shape += 1;
        }
    }
    assert_eq!(n, 107);
    assert_eq!(n_shape, 14);
}

#[test]
fn raw_tcga_case_with_sphere_mask() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let raw = data.join("tcga_fg_6692_raw");
    let case = tempfile::tempdir().expect("tempdir");
    let case_dir = case.path().join("tcga_fg_6692");
    std::fs::create_dir(&case_dir).expect("mkdir");
    for s in ["t1", "t1c", "t2", "flair"] {
        std::fs::copy(
            raw.join(format!("TCGA-FG-6692_{s}.nii.gz")),
            case_dir.join(format!("{s}.nii.gz")),
        )
        .expect("copy");
    }
    // A 15 mm sphere in the middle of the T1c field of view.
    let (t1c, _) = read_nifti(&case_dir.join("t1c.nii.gz"), 1 << 30).expect("t1c");
    let [nx, ny, nz] = t1c.dims();
    let z = t1c.zooms();
    let c = [nx / 2, ny / 2, nz / 2];
    let mut mask = t1c.with_data(vec![0.0; nx * ny * nz]).expect("grid");
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                let d2 = [(i, c[0]), (j, c[1]), (k, c[2])]
                    .iter()
                    .zip(z)
                    .map(|(&(a, b), s)| ((a as f64 - b as f64) * s).powi(2))
                    .sum::<f64>();
                if d2 < 15.0f64.powi(2) {
                    let idx = mask.index(i, j, k);
                    mask.data_mut()[idx] = 1.0;
                }
            }
        }
    }
    write_nifti(&case_dir.join("mask.nii.gz"), &mask, StoredType::U8).expect("mask");
    let (_tmp, dir) = check_case(&case_dir, "tcga_fg_6692", &["t1c", "t2", "flair"]);
    let result = read_json(&dir.join("result.json"));
    let resampled: Vec<&str> = result["quality"]["resampled"]
        .as_array()
        .expect("resampled")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        resampled.contains(&"t2") && resampled.contains(&"flair"),
        "{resampled:?}"
    );
}

#[test]
fn bad_input_fails_with_exit_2_naming_the_file() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let case = tempfile::tempdir().expect("tempdir");
    let dir = case.path().join("broken");
    std::fs::create_dir(&dir).expect("mkdir");
    let src = data.join("brats_case");
    std::fs::copy(src.join("segmentation.nii.gz"), dir.join("mask.nii.gz")).expect("copy");
    let t1c = std::fs::read(src.join("t1c.nii.gz")).expect("read");
    std::fs::write(dir.join("t1c.nii.gz"), &t1c[..t1c.len() / 2]).expect("truncate");
    let out = tempfile::tempdir().expect("tempdir");
    let o = run(&dir, out.path());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("t1c.nii.gz"), "names the file: {stderr}");
    assert!(
        !out.path().join("broken").exists(),
        "no partial result folder"
    );
}

/// `glioedge run` computes the radiomics stage while the model loads
/// (`LoadedCase::with_radiomics`); the case's result must be the one `run_case` gives, and
/// radiomics computed with settings other than the runtime's must not be used.
#[test]
fn radiomics_computed_before_the_model_is_used_only_with_the_runtime_settings() {
    use glioedge::config::Config;
    use glioedge::pipeline::{load_case, run_case, run_loaded, Runtime};
    let Some(data) = common::data_dir() else {
        return;
    };
    let case = data.join("brats_case");
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-convnext-tiny");
    let rt = Runtime::load(Config::defaults(), Some(&model)).expect("model loads");
    let none = |_, _| {};
    let reference = run_case(&case, &rt, &none).expect("run_case");
    let radiomics_timings = |o: &glioedge::report::CaseOutput| {
        o.result
            .timings
            .iter()
            .filter(|t| t.stage == "radiomics")
            .count()
    };
    let same_features = |o: &glioedge::report::CaseOutput| {
        assert_eq!(o.features.len(), reference.features.len());
        for (k, v) in &reference.features {
            assert_eq!(o.features[k].to_bits(), v.to_bits(), "{k}");
        }
    };

    let early = load_case(&case, &rt.config, &none)
        .and_then(|c| c.with_radiomics(&Runtime::radiomics_settings(), &none))
        .and_then(|c| run_loaded(c, &rt, &none))
        .expect("early radiomics");
    same_features(&early);
    assert_eq!(radiomics_timings(&early), 1);

    // Bin width 10 instead of the runtime's 25: first-order entropy would differ, so the
    // stage must run again with the runtime's settings.
    let mut other = Runtime::radiomics_settings();
    other.settings.bin_width = 10.0;
    let loaded = load_case(&case, &rt.config, &none).expect("loads");
    let stale = loaded.with_radiomics(&other, &none).expect("radiomics");
    let redone = run_loaded(stale, &rt, &none).expect("radiomics again");
    same_features(&redone);
    assert_eq!(radiomics_timings(&redone), 1);
    let stage_order: Vec<&str> = redone
        .result
        .timings
        .iter()
        .map(|t| t.stage.as_str())
        .collect();
    assert_eq!(
        stage_order,
        ["load", "radiomics", "inference", "fusion", "report"]
    );
}
