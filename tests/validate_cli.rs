//! `glioedge validate --scores` on the R reference cohort: its metrics.json must reproduce the
//! `roc`, `calibration`, `dca` and `nri` sections of `stats_reference.json`; rows with a
//! missing label are reported and left out; bad input exits 2.

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[track_caller]
fn close(what: &str, got: &Value, want: &Value, tol: f64) {
    let (g, w) = (num(got), num(want));
    let err = (g - w).abs() / w.abs().max(1e-300);
    assert!(
        err <= tol || (g - w).abs() <= 1e-12,
        "{what}: {g} vs R {w} (rel {err:e})"
    );
}

fn score<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .find(|s| s["name"] == name)
        .expect("score present")
}

#[test]
fn reproduces_r_reference_sections() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let out = tempfile::tempdir().expect("tmp");
    let st = Command::new(common::bin())
        .args(["validate", "--scores"])
        .arg(dir.join("reference/stats_cohort.csv"))
        .args([
            "--label", "y", "--score", "p_clin", "--score", "p_full", "--out",
        ])
        .arg(out.path())
        .args(["--bootstrap", "200"])
        .output()
        .expect("run");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let m = json(&out.path().join("metrics.json"));
    let r = json(&dir.join("reference/stats_reference.json"));
    let (full, clin) = (score(&m, "p_full"), score(&m, "p_clin"));
    let roc = &r["roc"];
    close("auc_full", &full["roc"]["auc"], &roc["auc_full"], 1e-9);
    close("auc_clin", &clin["roc"]["auc"], &roc["auc_clin"], 1e-9);
    for i in 0..2 {
        close("ci_full", &full["roc"]["ci"][i], &roc["ci_full"][i], 1e-9);
        close("ci_clin", &clin["roc"]["ci"][i], &roc["ci_clin"][i], 1e-9);
    }
    let cmp = &m["comparisons"][0];
    assert_eq!(cmp["score"], "p_full");
    assert_eq!(cmp["reference"], "p_clin");
    close("delong_z", &cmp["delong"]["z"], &roc["delong_z"], 1e-9);
    close("delong_p", &cmp["delong"]["p"], &roc["delong_p"], 1e-9);

    let cal = &full["calibration"];
    let rc = &r["calibration"];
    let hl = &cal["hosmer_lemeshow"];
    close(
        "HL",
        &hl["statistic"],
        &rc["hosmer_lemeshow"]["statistic"],
        1e-9,
    );
    close("HL p", &hl["p"], &rc["hosmer_lemeshow"]["p"], 1e-9);
    assert_eq!(hl["df"], rc["hosmer_lemeshow"]["df"]);
    close(
        "slope",
        &cal["calibration_slope"],
        &rc["calibration_slope"],
        1e-6,
    );
    let ci = num(&cal["calibration_intercept"]) - num(&rc["calibration_intercept"]);
    assert!(ci.abs() < 1e-6, "calibration intercept off by {ci}");
    close("brier", &cal["brier"], &rc["brier"], 1e-9);

    let dca = full["dca"].as_array().expect("dca");
    let rd = &r["dca"];
    assert_eq!(dca.len(), rd["thresholds"].as_array().expect("th").len());
    for (i, p) in dca.iter().enumerate() {
        close("threshold", &p["threshold"], &rd["thresholds"][i], 1e-12);
        close(
            "nb",
            &p["net_benefit_model"],
            &rd["net_benefit_model"][i],
            1e-9,
        );
        close(
            "nb all",
            &p["net_benefit_treat_all"],
            &rd["net_benefit_treat_all"][i],
            1e-9,
        );
    }

    let nri = &cmp["nri"];
    let rn = &r["nri"];
    close("nri cat", &nri["categorical"], &rn["nri_categorical"], 1e-9);
    close(
        "nri ev",
        &nri["events_categorical"],
        &rn["nri_events_categorical"],
        1e-9,
    );
    close(
        "nri ne",
        &nri["nonevents_categorical"],
        &rn["nri_nonevents_categorical"],
        1e-9,
    );
    close("nri cont", &nri["continuous"], &rn["nri_continuous"], 1e-9);

    // The other outputs: CSV rows per score, decodable PNGs, SVGs, self-contained HTML.
    let csv = std::fs::read_to_string(out.path().join("validation.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 3);
    assert!(csv
        .lines()
        .nth(2)
        .expect("row")
        .starts_with("p_full,200,0.88018801880"));
    for chart in ["roc", "calibration", "dca"] {
        let png = std::fs::read(out.path().join(format!("{chart}.png"))).expect("png");
        let img = image::load_from_memory(&png).expect("decodes");
        assert_eq!((img.width(), img.height()), (640, 520));
        let svg = std::fs::read_to_string(out.path().join(format!("{chart}.svg"))).expect("svg");
        assert!(
            svg.contains("<svg") && svg.contains("p_full"),
            "{chart}.svg"
        );
    }
    let html = std::fs::read_to_string(out.path().join("report.html")).expect("html");
    assert!(html.contains("p_full") && html.contains("0.880 (0.834–0.927)"));
    assert!(!html.contains("src=\"http") && !html.contains("<script src"));
    assert_eq!(html.matches("<svg").count(), 3);
}

#[test]
fn missing_label_is_reported_and_the_rest_analysed() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("reference/stats_cohort.csv")).expect("csv");
    let tmp = tempfile::tempdir().expect("tmp");
    // Blank the label of case 7 (the `y` column is the second field).
    let edited: Vec<String> = text
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            if f[0] == "7" {
                f[1] = "";
            }
            f.join(",")
        })
        .collect();
    let csv = tmp.path().join("cohort.csv");
    std::fs::write(&csv, edited.join("\n")).expect("write");
    let out = tmp.path().join("out");
    let st = Command::new(common::bin())
        .args(["validate", "--scores"])
        .arg(&csv)
        .args(["--label", "y", "--score", "p_full", "--out"])
        .arg(&out)
        .args(["--bootstrap", "0"])
        .output()
        .expect("run");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(String::from_utf8_lossy(&st.stderr).contains("7 left out: label 'y' missing"));
    let m = json(&out.join("metrics.json"));
    assert_eq!(m["n"], 199);
    assert_eq!(m["excluded"][0]["case"], "7");
    let auc = num(&score(&m, "p_full")["roc"]["auc"]);
    assert!(auc > 0.85 && auc < 0.91, "{auc}");
}

#[test]
fn unknown_column_is_bad_input() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let st = Command::new(common::bin())
        .args(["validate", "--scores"])
        .arg(dir.join("reference/stats_cohort.csv"))
        .args(["--label", "y", "--score", "p_nope", "--out"])
        .arg(tmp.path())
        .output()
        .expect("run");
    assert_eq!(st.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&st.stderr).contains("no column 'p_nope'"));
}
