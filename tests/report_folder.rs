//! The result folder writer: every file present, the JSON valid against its schema, output
//! deterministic, no partial folder left behind.

use std::collections::BTreeMap;
use std::path::Path;

use glioedge::report::overlay::{render, roi_slice, Overlay};
use glioedge::report::result::{
    CaseResult, Contribution, InputFile, ModelSummary, NomogramPoints, QualityFlags, Shap,
    Software, StageTiming, TaskResult, TaskStatus, VariablePoints, SCHEMA,
};
use glioedge::report::{CaseOutput, FolderSink, Sink};
use glioedge::volume::{Affine, Grid, Volume};

fn schema() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/result.schema.json");
    serde_json::from_str(&std::fs::read_to_string(p).expect("schema file")).expect("schema JSON")
}

fn sample() -> CaseOutput {
    let contributions = vec![
        Contribution {
            name: "rad_score".into(),
            value: 1.2,
            contribution: 0.9,
        },
        Contribution {
            name: "age_years".into(),
            value: 61.0,
            contribution: -0.4,
        },
        Contribution {
            name: "dl_score".into(),
            value: -0.3,
            contribution: -0.2,
        },
    ];
    let shap = Shap::from_contributions(-0.5, contributions);
    let assessed = TaskResult {
        task: "idh".into(),
        title: "IDH mutation".into(),
        positive_label: "IDH-mutant".into(),
        negative_label: "IDH-wildtype".into(),
        status: TaskStatus::Assessed,
        reason: None,
        probability: Some(1.0 / (1.0 + (-shap.logit).exp())),
        positive: Some(false),
        threshold: 0.5,
        rad_score: Some(1.2),
        dl_score: Some(-0.3),
        nomogram: Some(NomogramPoints {
            variables: vec![
                VariablePoints {
                    name: "rad_score".into(),
                    value: 1.2,
                    points: 70.0,
                },
                VariablePoints {
                    name: "age_years".into(),
                    value: 61.0,
                    points: 20.0,
                },
            ],
            total_points: 90.0,
        }),
        shap: Some(shap),
    };
    let not_assessable = TaskResult {
        task: "tp_psp".into(),
        title: "True progression vs pseudoprogression".into(),
        positive_label: "true progression".into(),
        negative_label: "pseudoprogression".into(),
        status: TaskStatus::NotAssessable,
        reason: Some(
            "clinical variable weeks_since_radiotherapy is missing (clinical.toml)".into(),
        ),
        probability: None,
        positive: None,
        threshold: 0.42,
        rad_score: None,
        dl_score: None,
        nomogram: None,
        shap: None,
    };
    let result = CaseResult {
        schema: SCHEMA.into(),
        software: Software::current(),
        case_id: "case-0001".into(),
        model: ModelSummary {
            name: "demo".into(),
            version: "0.1.0".into(),
            sha256: "ab".repeat(32),
            demo: true,
            intended_use: "software demonstration only".into(),
        },
        precision: "f32".into(),
        inputs: vec![InputFile {
            role: "t1c".into(),
            file: "t1c.nii.gz".into(),
            sha256: "cd".repeat(32),
            shape: Some([6, 5, 3]),
            zooms: Some([1.0, 1.0, 1.0]),
            orientation: Some("RAS".into()),
            grid: Some("reference".into()),
        }],
        feature_settings_sha256: "ef".repeat(32),
        tasks: vec![assessed, not_assessable],
        quality: QualityFlags {
            roi_voxels: 4,
            roi_volume_ml: 0.004,
            ..QualityFlags::default()
        },
        warnings: vec!["t2: resampled".into()],
        timings: vec![StageTiming {
            stage: "load".into(),
            ms: 1.5,
        }],
    };
    let grid = Grid {
        dims: [6, 5, 3],
        affine: Affine::identity(),
    };
    let image = Volume::new(grid, (0..90).map(|v| v as f32).collect()).expect("shape");
    let mut roi = vec![0.0f32; 90];
    for i in [31, 32, 37, 38] {
        roi[i] = 1.0;
    }
    let roi = Volume::new(grid, roi).expect("shape");
    let k = roi_slice(&roi);
    let plane = 30 * k..30 * (k + 1);
    let png = render(
        "t1c",
        [6, 5],
        &image.data()[plane.clone()],
        &roi.data()[plane.clone()],
        Some(&image.data()[plane]),
    )
    .expect("png");
    let mut features = BTreeMap::new();
    features.insert("t1c_original_firstorder_Mean".to_string(), 12.5);
    features.insert("dl_t1c_0".to_string(), -0.125);
    CaseOutput {
        result,
        features,
        overlays: vec![Overlay {
            file: "t1c_roi.png".into(),
            caption: "T1c".into(),
            png,
        }],
    }
}

#[test]
fn folder_is_complete_valid_and_deterministic() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = sample();
    let mut sink = FolderSink {
        out_dir: tmp.path().to_path_buf(),
        bundle: true,
        replace: true,
    };
    let dir = sink.publish(&out).expect("published");
    assert_eq!(dir, tmp.path().join("case-0001"));
    for f in [
        "result.json",
        "report.html",
        "features.csv",
        "overlays/t1c_roi.png",
        "case-0001.tar.zst",
    ] {
        assert!(dir.join(f).is_file(), "{f} missing");
    }
    // Nothing hidden or temporary left over.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("case-0001")]);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("result.json")).expect("read"))
            .expect("JSON");
    let validator = jsonschema::validator_for(&schema()).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&json)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    // And the schema does reject a broken result.
    let mut broken = json.clone();
    broken["tasks"][1]["probability"] = serde_json::json!(0.3);
    assert!(!validator.is_valid(&broken));
    // The JSON reads back into the same result.
    let back: CaseResult = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, out.result);

    let csv = std::fs::read_to_string(dir.join("features.csv")).expect("csv");
    assert_eq!(
        csv,
        "feature,value\ndl_t1c_0,-0.125\nt1c_original_firstorder_Mean,12.5\n"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).expect("html");
    assert!(
        html.contains("DEMO MODEL")
            && html.contains("not assessable")
            && html.contains("data:image/png;base64,")
    );
    assert!(html.contains("weeks_since_radiotherapy is missing"));

    let first: Vec<Vec<u8>> = ["result.json", "report.html", "case-0001.tar.zst"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).expect("read"))
        .collect();
    sink.publish(&out).expect("published again");
    let second: Vec<Vec<u8>> = ["result.json", "report.html", "case-0001.tar.zst"]
        .iter()
        .map(|f| std::fs::read(dir.join(f)).expect("read"))
        .collect();
    assert_eq!(first, second);
}

#[test]
fn shap_contributions_sum_to_logit() {
    let out = sample();
    let shap = out.result.tasks[0].shap.as_ref().expect("shap");
    let sum: f64 = shap.all.iter().map(|c| c.contribution).sum();
    assert!((shap.baseline_logit + sum - shap.logit).abs() < 1e-12);
    assert_eq!(shap.all[0].name, "rad_score");
}
