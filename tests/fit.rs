//! `glioedge fit` and `glioedge validate --cohort` on a tiny phantom cohort, through the real
//! binary: the fit writes a package that `ModelPackage::open` verifies, a second fit from the
//! same features gives the same bytes, `glioedge run` with the fitted package assesses a case
//! (SHAP summing to logit − baseline), and validation reports a missing label and a broken
//! case and goes on.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use glioedge::fusion::package::load_fitted;
use glioedge::model::ModelPackage;

fn glioedge(args: &[&str]) -> Output {
    Command::new(common::bin())
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .env("GLIOEDGE_LOG", "warn")
        .output()
        .expect("start glioedge")
}

fn ok(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed:\n{stdout}\n{stderr}");
    stdout
}

fn files_of(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("inside").to_path_buf();
                out.push((rel, std::fs::read(&p).expect("read file")));
            }
        }
    }
    out.sort();
    out
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn fit_run_and_validate_on_a_tiny_phantom_cohort() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let t = tmp.path();
    let cohort = t.join("cohort");
    ok(
        &glioedge(&[
            "phantom",
            "--out",
            s(&cohort),
            "--cases",
            "20",
            "--seed",
            "11",
            "--grid",
            "raw",
            "--task",
            "idh-ki67",
        ]),
        "phantom",
    );
    let labels = cohort.join("labels.csv");
    let cache = t.join("cache");
    let fit = |out: &Path| {
        glioedge(&[
            "fit",
            "--cohort",
            s(&cohort),
            "--labels",
            s(&labels),
            "--task",
            "idh",
            "--seed",
            "3",
            "--out",
            s(out),
            "--cache",
            s(&cache),
        ])
    };
    let a = t.join("pkg-a");
    let stdout = ok(&fit(&a), "fit");
    println!("{stdout}");
    assert!(stdout.contains("idh: n = 20"), "{stdout}");

    // A complete, verifiable package with the fitted task and heads.
    let pkg = ModelPackage::open(&a).expect("the fitted package verifies");
    // A new version of the package it was fitted from (the bundled one by default).
    let base = ModelPackage::open(&repo_root().join("models/demo-convnext-tiny"))
        .expect("the bundled package verifies");
    assert_ne!(pkg.manifest.version, base.manifest.version);
    assert_eq!(pkg.manifest.sequences, ["t1c", "t2", "flair"]);
    assert!(
        pkg.head("idh").expect("idh head").spec.fitted || {
            // No deep feature survived the LASSO on 20 cases: the head stays unfitted (seeded).
            let r = std::fs::read_to_string(a.join("fit_report.json")).expect("report");
            r.contains("\"head\": null")
        }
    );
    let fitted = load_fitted(&pkg).expect("tasks.json").expect("fitted");
    let idh = fitted.task("idh").expect("idh task");
    assert_eq!(idh.n, 20);
    assert!(a.join("fit_report.md").is_file());
    // Tampering is refused.
    let tasks_json = a.join("tasks.json");
    let original = std::fs::read(&tasks_json).expect("tasks.json");
    std::fs::write(&tasks_json, b"{}").expect("tamper");
    assert!(
        ModelPackage::open(&a).is_err(),
        "a changed tasks.json is refused"
    );
    std::fs::write(&tasks_json, &original).expect("restore");

    // Deterministic: the same features and seed give the same bytes.
    let b = t.join("pkg-b");
    ok(&fit(&b), "second fit");
    let (fa, fb) = (files_of(&a), files_of(&b));
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x == y, "{} differs between two fits", name.display());
    }
    // An existing output folder is refused.
    assert_eq!(fit(&a).status.code(), Some(2));

    // `run` with the fitted package: a training case is assessed, SHAP sums to the logit.
    let case = cohort.join("phantom-11-0000");
    let out = t.join("results");
    // The fit extracted f32 deep features (what `auto` means for a fit); `auto` runs a fitted
    // package at the precision it was fitted with, never at a start-up timing's choice.
    let stdout = ok(
        &glioedge(&["run", s(&case), "--model", s(&a), "--out", s(&out)]),
        "run",
    );
    assert!(stdout.contains("DEMO MODEL"), "{stdout}");
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("phantom-11-0000/result.json")).expect("result"),
    )
    .expect("JSON");
    assert_eq!(result["model"]["demo"], true);
    assert_eq!(
        result["precision"], "f32",
        "the fit's precision under `auto`"
    );
    let tasks = result["tasks"].as_array().expect("tasks");
    let t_idh = tasks.iter().find(|t| t["task"] == "idh").expect("idh");
    assert_eq!(t_idh["status"], "assessed", "{t_idh}");
    let p = t_idh["probability"].as_f64().expect("probability");
    let shap = &t_idh["shap"];
    let base = shap["baseline_logit"].as_f64().expect("baseline");
    let logit = shap["logit"].as_f64().expect("logit");
    let sum: f64 = shap["all"]
        .as_array()
        .expect("all")
        .iter()
        .map(|c| c["contribution"].as_f64().expect("contribution"))
        .sum();
    assert!(
        (base + sum - logit).abs() < 1e-9,
        "{base} + {sum} vs {logit}"
    );
    assert!((1.0 / (1.0 + (-logit).exp()) - p).abs() < 1e-12);
    assert!(t_idh["nomogram"]["variables"]
        .as_array()
        .is_some_and(|v| !v.is_empty()));
    // The unfitted tasks still say why they have no number.
    for k in ["ki67", "tp_psp"] {
        let t = tasks.iter().find(|t| t["task"] == k).expect("task");
        assert_eq!(t["status"], "not_assessable", "{t}");
    }
    let html = std::fs::read_to_string(out.join("phantom-11-0000/report.html")).expect("html");
    assert!(html.contains("DEMO"));
    // Deep features of another precision than the fit's: not assessable, and the reason says so.
    let config = t.join("int8.toml");
    std::fs::write(&config, "[inference]\nprecision = \"int8\"\n").expect("config");
    let out8 = t.join("results-int8");
    ok(
        &glioedge(&[
            "--config",
            s(&config),
            "run",
            s(&case),
            "--model",
            s(&a),
            "--out",
            s(&out8),
        ]),
        "run at int8",
    );
    let r8: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out8.join("phantom-11-0000/result.json")).expect("result"),
    )
    .expect("JSON");
    let idh8 = r8["tasks"]
        .as_array()
        .and_then(|ts| ts.iter().find(|t| t["task"] == "idh"))
        .expect("idh");
    assert_eq!(idh8["status"], "not_assessable", "{idh8}");
    assert!(
        idh8["reason"]
            .as_str()
            .is_some_and(|r| r.contains("fitted on f32 deep features") && r.contains("int8")),
        "{idh8}"
    );

    // validate --cohort: one label blanked, one case broken → both reported, the rest analysed.
    let text = std::fs::read_to_string(&labels).expect("labels");
    let blanked: Vec<String> = text
        .lines()
        .map(|l| {
            if l.starts_with("phantom-11-0001,") {
                let mut f: Vec<&str> = l.split(',').collect();
                f[1] = "";
                f.join(",")
            } else {
                l.to_string()
            }
        })
        .collect();
    let labels_b = t.join("labels-blanked.csv");
    std::fs::write(&labels_b, blanked.join("\n") + "\n").expect("labels");
    std::fs::write(cohort.join("phantom-11-0002/mask.nii.gz"), b"not a nifti").expect("break");
    let vout = t.join("validation");
    let stdout = ok(
        &glioedge(&[
            "validate",
            "--cohort",
            s(&cohort),
            "--labels",
            s(&labels_b),
            "--model",
            s(&a),
            "--out",
            s(&vout),
            "--bootstrap",
            "0",
            "--cache",
            s(&cache),
        ]),
        "validate --cohort",
    );
    println!("{stdout}");
    assert!(stdout.contains("skipped phantom-11-0002"), "{stdout}");
    assert!(stdout.contains("task idh: 18 cases"), "{stdout}");
    let m: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(vout.join("idh/metrics.json")).expect("metrics"),
    )
    .expect("JSON");
    let excluded = m["excluded"].as_array().expect("excluded");
    let reason = |id: &str| {
        excluded
            .iter()
            .find(|e| e["case"] == id)
            .and_then(|e| e["reason"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        reason("phantom-11-0001").contains("label missing"),
        "{excluded:?}"
    );
    assert!(reason("phantom-11-0002").contains("failed"), "{excluded:?}");
    let names: Vec<&str> = m["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names.last(), Some(&"nomogram"), "{names:?}");
    for f in ["idh/validation.csv", "idh/report.html", "metrics.json"] {
        assert!(vout.join(f).is_file(), "{f}");
    }
}

fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
