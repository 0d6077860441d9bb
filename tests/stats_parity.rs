//! Parity of `glioedge::stats` with R (glm, glmnet, pROC, psych) and the numpy DeLong
//! reference, on the cohort and reference values in `shared/data/reference/`.

mod common;

use std::path::Path;

use glioedge::stats::agreement::{icc, nri, pearson, spearman};
use glioedge::stats::calibration::{
    brier, calibration_line, decision_curve, default_dca_thresholds, hosmer_lemeshow,
};
use glioedge::stats::lasso::{cv_lasso, LassoOptions};
use glioedge::stats::logistic::fit_logistic;
use glioedge::stats::roc::{bootstrap_ci, delong, delong_paired};
use glioedge::stats::table::Table;
use serde_json::Value;

fn reference(dir: &Path, name: &str) -> Value {
    let text = std::fs::read_to_string(dir.join("reference").join(name)).expect("reference file");
    serde_json::from_str(&text).expect("reference JSON")
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("number")
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().expect("array").iter().map(num).collect()
}

#[track_caller]
fn close(what: &str, got: f64, want: f64, rel: f64) {
    let err = (got - want).abs() / want.abs().max(1e-300);
    let abs = (got - want).abs();
    assert!(
        err <= rel || abs <= rel * 1e-3,
        "{what}: got {got:.17e}, R {want:.17e} (rel {err:.2e} > {rel:.0e})"
    );
}

fn cohort(dir: &Path) -> Table {
    Table::read(&dir.join("reference/stats_cohort.csv")).expect("cohort")
}

fn col(t: &Table, name: &str) -> Vec<f64> {
    t.numeric_complete(name).expect("column")
}

#[test]
fn logistic_matches_glm() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let r = reference(&dir, "stats_reference.json");
    let t = cohort(&dir);
    let names: Vec<String> = ["age", "sex", "f01", "f04", "f09"]
        .map(String::from)
        .to_vec();
    let cols: Vec<Vec<f64>> = names.iter().map(|n| col(&t, n)).collect();
    let fit = fit_logistic(&cols, &names, &col(&t, "y"), None, true).expect("fit");
    let lr = &r["logistic"];
    let terms: Vec<&str> = lr["terms"]
        .as_array()
        .expect("terms")
        .iter()
        .map(|v| v.as_str().expect("str"))
        .collect();
    assert_eq!(fit.terms, terms);
    for (k, key) in ["coef", "se", "z", "p"].iter().enumerate() {
        let want = nums(&lr[*key]);
        let got = [&fit.coef, &fit.se, &fit.z, &fit.p][k];
        for i in 0..want.len() {
            close(&format!("{key}[{}]", terms[i]), got[i], want[i], 1e-6);
        }
    }
    close("deviance", fit.deviance, num(&lr["deviance"]), 1e-9);
    close("aic", fit.aic, num(&lr["aic"]), 1e-9);
    assert!(fit.converged);
}

#[test]
fn lasso_cv_matches_glmnet() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let r = reference(&dir, "stats_reference.json");
    let t = cohort(&dir);
    let names: Vec<String> = (1..=20).map(|i| format!("f{i:02}")).collect();
    let cols: Vec<Vec<f64>> = names.iter().map(|n| col(&t, n)).collect();
    let foldid: Vec<usize> = col(&t, "foldid").iter().map(|&v| v as usize).collect();
    let lr = &r["lasso"];
    let opts = LassoOptions {
        lambda: Some(nums(&lr["lambda"])),
        thresh: 1e-14,
        ..LassoOptions::default()
    };
    let cv = cv_lasso(&cols, &col(&t, "y"), &foldid, &opts).expect("cv");
    assert_eq!(cv.lambda_min, num(&lr["lambda_min"]), "lambda.min");
    assert_eq!(cv.lambda_1se, num(&lr["lambda_1se"]), "lambda.1se");
    for (l, (&got, want)) in cv.cvm.iter().zip(nums(&lr["cvm"])).enumerate() {
        close(&format!("cvm[{l}]"), got, want, 1e-6);
    }
    for (l, (&got, want)) in cv.cvsd.iter().zip(nums(&lr["cvsd"])).enumerate() {
        close(&format!("cvsd[{l}]"), got, want, 1e-5);
    }
    for (idx, key) in [
        (cv.index_min, "coef_lambda_min"),
        (cv.index_1se, "coef_lambda_1se"),
    ] {
        let want = &lr[key];
        let d = (cv.path.intercept[idx] - num(&want["(Intercept)"])).abs();
        assert!(d <= 1e-4, "{key} intercept off by {d:e}");
        for (j, n) in names.iter().enumerate() {
            let w = num(&want[n.as_str()]);
            let g = cv.path.beta[idx][j];
            assert!((g - w).abs() <= 1e-4, "{key} {n}: got {g}, glmnet {w}");
            assert_eq!(
                g == 0.0,
                w == 0.0,
                "{key} {n}: selection differs ({g} vs {w})"
            );
        }
    }
}

#[test]
fn roc_delong_matches_proc() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let r = reference(&dir, "stats_reference.json");
    let t = cohort(&dir);
    let (y, pf, pc) = (col(&t, "y"), col(&t, "p_full"), col(&t, "p_clin"));
    let rr = &r["roc"];
    let f = delong(&y, &pf, 0.95).expect("full");
    let c = delong(&y, &pc, 0.95).expect("clin");
    close("auc_full", f.auc, num(&rr["auc_full"]), 1e-9);
    close("auc_clin", c.auc, num(&rr["auc_clin"]), 1e-9);
    for i in 0..2 {
        close("ci_full", f.ci[i], nums(&rr["ci_full"])[i], 1e-9);
        close("ci_clin", c.ci[i], nums(&rr["ci_clin"])[i], 1e-9);
    }
    let test = delong_paired(&y, &pf, &pc).expect("paired");
    close("delong_z", test.z, num(&rr["delong_z"]), 1e-9);
    close("delong_p", test.p, num(&rr["delong_p"]), 1e-9);
}

#[test]
fn auc_delong_matches_reference_with_ties() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let r = reference(&dir, "auc_delong_reference.json");
    let t = Table::read(&dir.join("reference/auc_synthetic_scores_labels.csv")).expect("csv");
    let y = col(&t, "label");
    for res in r["results"].as_array().expect("results") {
        let name = res["score_column"].as_str().expect("name");
        let s = col(&t, name);
        let d = delong(&y, &s, 0.95).expect("delong");
        close("auc", d.auc, num(&res["auc"]), 1e-12);
        close("variance", d.variance, num(&res["delong_variance"]), 1e-9);
        close("S10", d.s10, num(&res["delong_S10"]), 1e-9);
        close("S01", d.s01, num(&res["delong_S01"]), 1e-9);
        for i in 0..2 {
            close("ci", d.ci[i], nums(&res["ci95_delong_normal"])[i], 1e-9);
        }
        let proc = &r["independent_check_R_pROC"]["results"][name];
        close("pROC lo", d.ci[0], num(&proc["lo"]), 1e-9);
        close("pROC hi", d.ci[1], num(&proc["hi"]), 1e-9);
        // The bootstrap uses a different generator than numpy's: same estimand, so the
        // percentile CI must land near the reference's, and be reproducible.
        let b = bootstrap_ci(&y, &s, 2000, 1, 0.95).expect("bootstrap");
        let rb = nums(&res["ci95_stratified_bootstrap_percentile_20000_seed1"]);
        assert!(
            (b[0] - rb[0]).abs() < 0.03 && (b[1] - rb[1]).abs() < 0.03,
            "{b:?} vs {rb:?}"
        );
        assert_eq!(b, bootstrap_ci(&y, &s, 2000, 1, 0.95).expect("again"));
    }
}

#[test]
fn calibration_dca_nri_match_r() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let r = reference(&dir, "stats_reference.json");
    let t = cohort(&dir);
    let (y, pf, pc) = (col(&t, "y"), col(&t, "p_full"), col(&t, "p_clin"));
    let cr = &r["calibration"];
    let hl = hosmer_lemeshow(&y, &pf, 10).expect("hl");
    close(
        "HL",
        hl.statistic,
        num(&cr["hosmer_lemeshow"]["statistic"]),
        1e-9,
    );
    assert_eq!(hl.df as f64, num(&cr["hosmer_lemeshow"]["df"]));
    close("HL p", hl.p, num(&cr["hosmer_lemeshow"]["p"]), 1e-9);
    let line = calibration_line(&y, &pf).expect("line");
    close("slope", line.slope, num(&cr["calibration_slope"]), 1e-6);
    let ci = num(&cr["calibration_intercept"]);
    assert!(
        (line.intercept - ci).abs() < 1e-6,
        "intercept {} vs {ci}",
        line.intercept
    );
    close(
        "brier",
        brier(&y, &pf).expect("brier"),
        num(&cr["brier"]),
        1e-9,
    );

    let dr = &r["dca"];
    let th = nums(&dr["thresholds"]);
    // R's seq() gives 0.05 + i·0.05 (0.15000000000000002, …); the JSON holds 15 digits.
    let th_r = default_dca_thresholds();
    for (a, b) in th.iter().zip(&th_r) {
        assert!((a - b).abs() < 1e-14);
    }
    let th = th_r;
    let dca = decision_curve(&y, &pf, &th).expect("dca");
    let (nm, na) = (
        nums(&dr["net_benefit_model"]),
        nums(&dr["net_benefit_treat_all"]),
    );
    for (i, p) in dca.iter().enumerate() {
        close("nb model", p.net_benefit_model, nm[i], 1e-9);
        close("nb all", p.net_benefit_treat_all, na[i], 1e-9);
    }

    let nr = &r["nri"];
    let n = nri(&y, &pf, &pc, &nums(&nr["categorical_cutoffs"])).expect("nri");
    close("nri cat", n.categorical, num(&nr["nri_categorical"]), 1e-9);
    close(
        "nri ev",
        n.events_categorical,
        num(&nr["nri_events_categorical"]),
        1e-9,
    );
    close(
        "nri ne",
        n.nonevents_categorical,
        num(&nr["nri_nonevents_categorical"]),
        1e-9,
    );
    close("nri cont", n.continuous, num(&nr["nri_continuous"]), 1e-9);
}

#[test]
fn icc_and_correlation_match_psych_and_cor() {
    let Some(dir) = common::data_dir() else {
        return;
    };
    let r = reference(&dir, "stats_reference.json");
    let t = Table::read(&dir.join("reference/icc_ratings.csv")).expect("icc csv");
    let (a, b, c) = (col(&t, "r1"), col(&t, "r2"), col(&t, "r3"));
    let rows: Vec<Vec<f64>> = (0..a.len()).map(|i| vec![a[i], b[i], c[i]]).collect();
    let got = icc(&rows).expect("icc");
    let ir = &r["icc"];
    // The ratings file holds 15 significant digits of R's in-memory values.
    close("ICC1", got.ICC1, num(&ir["ICC1"]), 1e-9);
    close("ICC2", got.ICC2, num(&ir["ICC2"]), 1e-9);
    close("ICC3", got.ICC3, num(&ir["ICC3"]), 1e-9);
    close("ICC1k", got.ICC1k, num(&ir["ICC1k"]), 1e-9);
    close("ICC2k", got.ICC2k, num(&ir["ICC2k"]), 1e-9);
    close("ICC3k", got.ICC3k, num(&ir["ICC3k"]), 1e-9);

    let co = cohort(&dir);
    let (f1, f2, f3) = (col(&co, "f01"), col(&co, "f02"), col(&co, "f03"));
    let cr = &r["correlation"];
    close(
        "pearson12",
        pearson(&f1, &f2).expect("r"),
        num(&cr["pearson_f01_f02"]),
        1e-9,
    );
    close(
        "spearman12",
        spearman(&f1, &f2).expect("r"),
        num(&cr["spearman_f01_f02"]),
        1e-9,
    );
    close(
        "pearson13",
        pearson(&f1, &f3).expect("r"),
        num(&cr["pearson_f01_f03"]),
        1e-9,
    );
    close(
        "spearman13",
        spearman(&f1, &f3).expect("r"),
        num(&cr["spearman_f01_f03"]),
        1e-9,
    );
}
