//! The model package and the tract engine against the goldens the export script wrote
//! (ONNX Runtime and torch, fp32 and int8, torch autograd Grad-CAM), tamper detection, and a
//! real case end to end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use glioedge::case::study::load_study;
use glioedge::case::CaseFiles;
use glioedge::config::Config;
use glioedge::inference::{
    argmax, cosine, gradcam, pearson, BackboneOutput, Engine, EngineOptions, Precision,
};
use glioedge::model::{FileRole, ModelPackage};
use serde_json::Value;

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/demo-convnext-tiny")
}

fn package() -> &'static ModelPackage {
    static P: OnceLock<ModelPackage> = OnceLock::new();
    P.get_or_init(|| ModelPackage::open(&package_dir()).expect("demo package opens"))
}

fn engine(p: Precision) -> &'static Engine {
    static F32: OnceLock<Engine> = OnceLock::new();
    static INT8: OnceLock<Engine> = OnceLock::new();
    let cell = match p {
        Precision::F32 => &F32,
        _ => &INT8,
    };
    cell.get_or_init(|| {
        Engine::load(
            package(),
            EngineOptions {
                precision: p,
                threads: 2,
                mm_threads: 1,
            },
        )
        .expect("engine loads")
    })
}

struct Goldens {
    inputs: Vec<Vec<f32>>,
    json: Value,
}

fn goldens() -> &'static Goldens {
    static G: OnceLock<Goldens> = OnceLock::new();
    G.get_or_init(|| {
        let pkg = package();
        let json: Value = serde_json::from_slice(
            &std::fs::read(pkg.path_of(FileRole::Goldens).expect("goldens listed")).expect("read"),
        )
        .expect("JSON");
        let bytes = std::fs::read(pkg.path_of(FileRole::GoldenInputs).expect("inputs listed"))
            .expect("read");
        let vals: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let per = 3 * 224 * 224;
        assert_eq!(vals.len(), 3 * per, "three golden inputs");
        Goldens {
            inputs: vals.chunks(per).map(<[f32]>::to_vec).collect(),
            json,
        }
    })
}

fn vec_of(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

fn outputs(p: Precision) -> &'static Vec<BackboneOutput> {
    static F32: OnceLock<Vec<BackboneOutput>> = OnceLock::new();
    static INT8: OnceLock<Vec<BackboneOutput>> = OnceLock::new();
    let cell = match p {
        Precision::F32 => &F32,
        _ => &INT8,
    };
    cell.get_or_init(|| engine(p).run_many(&goldens().inputs).expect("runs"))
}

#[test]
fn f32_features_match_onnxruntime_and_torch() {
    let g = goldens();
    for (i, (out, case)) in outputs(Precision::F32)
        .iter()
        .zip(g.json["cases"].as_array().expect("cases"))
        .enumerate()
    {
        let ort = vec_of(&case["ort_fp32"]);
        let torch = vec_of(&case["torch_fp32"]);
        let c_ort = cosine(&out.features, &ort);
        let c_torch = cosine(&out.features, &torch);
        eprintln!("input {i}: f32 cosine vs ORT {c_ort:.7}, vs torch {c_torch:.7}");
        assert!(c_ort >= 0.9999, "input {i}: cosine vs ORT fp32 {c_ort}");
        assert!(
            c_torch >= 0.9999,
            "input {i}: cosine vs torch fp32 {c_torch}"
        );
        assert_eq!(out.features.len(), 768);
        assert_eq!(out.feature_map.len(), 768 * 49);
        let first = vec_of(&case["feature_map_ort_fp32_first16"]);
        for (a, b) in out.feature_map.iter().zip(&first) {
            assert!(
                (a - b).abs() <= 1e-3 * (1.0 + b.abs()),
                "feature map {a} vs {b}"
            );
        }
        // The goldens hold the seeded, unfitted heads' logits; fitted heads (written by
        // `glioedge fit`) have none — the features above are what the heads read.
        for h in package().heads.iter().filter(|h| !h.spec.fitted) {
            let ours = engine(Precision::F32)
                .head(&h.spec.name, &out.features)
                .expect("head");
            let theirs: Vec<f64> = case["heads"][&h.spec.name]["logits_torch_fp32"]
                .as_array()
                .expect("logits")
                .iter()
                .map(|x| x.as_f64().expect("num"))
                .collect();
            assert_eq!(
                argmax(&ours.logits),
                argmax(&theirs),
                "head {}",
                h.spec.name
            );
            for (a, b) in ours.logits.iter().zip(&theirs) {
                assert!(
                    (a - b).abs() < 1e-3,
                    "head {} logit {a} vs {b}",
                    h.spec.name
                );
            }
        }
    }
}

#[test]
fn int8_features_match_onnxruntime_int8_and_fp32() {
    let g = goldens();
    for (i, (out, case)) in outputs(Precision::Int8)
        .iter()
        .zip(g.json["cases"].as_array().expect("cases"))
        .enumerate()
    {
        let ort8 = vec_of(&case["ort_int8"]);
        let torch8 = vec_of(&case["torch_int8"]);
        let ort32 = vec_of(&case["ort_fp32"]);
        let c8 = cosine(&out.features, &ort8);
        let ct8 = cosine(&out.features, &torch8);
        let c32 = cosine(&out.features, &ort32);
        eprintln!(
            "input {i}: int8 cosine vs ORT int8 {c8:.5}, vs torch int8 {ct8:.5}, vs fp32 {c32:.5}"
        );
        assert!(c8 >= 0.99, "input {i}: cosine vs ORT int8 {c8}");
        assert!(c32 >= 0.99, "input {i}: cosine vs fp32 {c32}");
        // The int8 graph really differs from the f32 one (activation quantization runs).
        let f = &outputs(Precision::F32)[i].features;
        assert!(
            cosine(&out.features, f) < 0.999_999,
            "int8 identical to f32"
        );
        for h in &package().heads {
            let a = engine(Precision::Int8)
                .head(&h.spec.name, &out.features)
                .expect("head");
            let b = engine(Precision::Int8)
                .head(&h.spec.name, &ort32)
                .expect("head");
            assert_eq!(a.predicted, b.predicted, "input {i} head {}", h.spec.name);
        }
    }
}

#[test]
fn analytic_gradcam_equals_torch_autograd() {
    let g = goldens();
    let pkg = package();
    for (i, (out, case)) in outputs(Precision::F32)
        .iter()
        .zip(g.json["cases"].as_array().expect("cases"))
        .enumerate()
    {
        // torch goldens exist for the seeded, unfitted heads only; a head fitted by `glioedge fit`
        // goes through the same analytic code (any linear head) but has no golden here.
        for h in pkg.heads.iter().filter(|h| !h.spec.fitted) {
            let gold = &case["heads"][&h.spec.name];
            let cls = gold["gradcam_class"].as_u64().expect("class") as usize;
            let theirs = vec_of(&gold["gradcam_torch"]);
            let ours = gradcam(&out.feature_map, 768, 7, &pkg.final_norm, h, cls);
            let r = pearson(&ours, &theirs);
            eprintln!("input {i} head {}: Grad-CAM r = {r:.6}", h.spec.name);
            assert!(r >= 0.999, "input {i} head {}: r = {r}", h.spec.name);
            let max_t = theirs.iter().cloned().fold(0f32, f32::max);
            let max_o = ours.iter().cloned().fold(0f32, f32::max);
            assert!(
                max_t > 0.0 && (max_o / max_t - 1.0).abs() < 0.01,
                "scale {max_o} vs {max_t}"
            );
        }
    }
}

fn copy_package(to: &Path) {
    let from = package_dir();
    std::fs::create_dir_all(to.join("goldens")).expect("mkdir");
    for f in ["manifest.toml", "manifest.sha256"] {
        std::fs::copy(from.join(f), to.join(f)).expect("copy");
    }
    for f in &package().manifest.files {
        std::fs::copy(from.join(&f.path), to.join(&f.path)).expect("copy");
    }
}

#[test]
fn tampered_files_are_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("pkg");
    copy_package(&dir);
    ModelPackage::open(&dir).expect("untouched copy opens");

    // One byte of the model flipped.
    let model = dir.join("model.int8.onnx.zst");
    let mut bytes = std::fs::read(&model).expect("read");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&model, &bytes).expect("write");
    let e = ModelPackage::open(&dir)
        .expect_err("tampered model")
        .to_string();
    assert!(
        e.contains("model.int8.onnx.zst") && e.contains("checksum mismatch"),
        "{e}"
    );
    bytes[mid] ^= 0x01;
    std::fs::write(&model, &bytes).expect("restore");
    ModelPackage::open(&dir).expect("restored copy opens");

    // A head weight edited (the JSON stays valid).
    let heads = dir.join("heads.json");
    let text = std::fs::read_to_string(&heads).expect("read");
    let pos = text
        .char_indices()
        .skip(20)
        .find(|(_, c)| ('1'..='8').contains(c))
        .map(|(i, _)| i)
        .expect("a digit");
    let mut edited = text.clone().into_bytes();
    edited[pos] += 1;
    std::fs::write(&heads, &edited).expect("write");
    let e = ModelPackage::open(&dir)
        .expect_err("tampered heads")
        .to_string();
    assert!(
        e.contains("heads.json") && e.contains("checksum mismatch"),
        "{e}"
    );
    std::fs::write(&heads, &text).expect("restore");

    // The manifest edited: claims it is not a demo.
    let manifest = dir.join("manifest.toml");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(&manifest, text.replace("demo = true", "demo = false")).expect("write");
    let e = ModelPackage::open(&dir)
        .expect_err("tampered manifest")
        .to_string();
    assert!(
        e.contains("manifest.toml") && e.contains("checksum mismatch"),
        "{e}"
    );

    // And through the CLI: exit 2, the file named.
    let out = Command::new(common::bin())
        .args(["model", "verify"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("manifest.toml") && err.contains("checksum mismatch"),
        "{err}"
    );
    std::fs::write(&manifest, &text).expect("restore");
    let out = Command::new(common::bin())
        .args(["model", "verify"])
        .arg(&dir)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn real_case_end_to_end_deterministic_across_threads() {
    let Some(data) = common::data_dir() else {
        return;
    };
    let files = CaseFiles::discover(&data.join("brats_case")).expect("case");
    let study = load_study(&files, &Config::defaults()).expect("study");
    let e2 = engine(Precision::F32);
    let r2 = e2.run_study(&study).expect("runs");
    assert_eq!(r2.precision, Precision::F32);
    // Every sequence the package names (the BraTS case has them all), in the manifest's order.
    let names: Vec<&str> = r2.sequences.iter().map(|s| s.sequence.name()).collect();
    assert_eq!(names, e2.package().manifest.sequences);
    assert!(names.starts_with(&["t1c", "t2", "flair"]), "{names:?}");
    // The three slices with the largest ROI area (the study grid is LPS: k is axial either way).
    let areas = study.roi.slice_areas(2);
    let mut best: Vec<usize> = (0..areas.len()).collect();
    best.sort_by(|&a, &b| areas[b].cmp(&areas[a]).then(a.cmp(&b)));
    let mut best = best[..3].to_vec();
    best.sort_unstable();
    for s in &r2.sequences {
        assert_eq!(s.slices, best, "{:?}", s.sequence);
        assert_eq!(s.features.len(), 768);
        assert!(s.features.iter().all(|v| v.is_finite()));
        assert_eq!(s.heads.len(), 2);
        for (name, cam) in &s.gradcam {
            assert_eq!(cam.grid(), &study.grid, "{name} Grad-CAM on the study grid");
            let [nx, ny, nz] = cam.dims();
            let mut max = 0f32;
            for k in 0..nz {
                for j in 0..ny {
                    for i in 0..nx {
                        let v = cam.at(i, j, k);
                        if v != 0.0 {
                            assert!(best.contains(&k), "{name}: value {v} outside the slices");
                        }
                        max = max.max(v);
                    }
                }
            }
            assert!((max - 1.0).abs() < 1e-6, "{name}: max {max}");
        }
    }
    // Different sequences give different features.
    assert!(cosine(&r2.sequences[0].features, &r2.sequences[2].features) < 0.9999);
    // One worker gives bit-identical results.
    let r1 = e2.with_threads(1).run_study(&study).expect("runs");
    for (a, b) in r1.sequences.iter().zip(&r2.sequences) {
        assert_eq!(a.features, b.features);
        for (name, v) in &a.gradcam {
            assert_eq!(v.data(), b.gradcam[name].data());
        }
    }
}
