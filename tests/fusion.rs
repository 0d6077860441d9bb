//! The fitting chain and the application of its nomogram, on the R reference cohort
//! (`stats_cohort.csv`: 20 correlated features, age, sex, a binary outcome driven by f01, f04,
//! f09, age and sex). The perturbed-ROI tables are made from it with seeded noise: f16–f20 get
//! noise as large as the feature itself, so the ICC filter must drop exactly those.

mod common;

use std::collections::BTreeMap;

use glioedge::fusion::fit::{fit_task, ClinicalTable, FeatureTable, FitConfig, FitReport};
use glioedge::fusion::{assess, Assessment, Nomogram};
use glioedge::stats::rng::Rng;
use glioedge::stats::table::Table;

struct Cohort {
    table: FeatureTable,
    labels: Vec<f64>,
    clinical: ClinicalTable,
}

fn noise(rng: &mut Rng) -> f64 {
    // Sum of 12 uniforms − 6: approximately standard normal, from the crate's seeded generator.
    (0..12)
        .map(|_| rng.below(1 << 20) as f64 / (1u64 << 20) as f64)
        .sum::<f64>()
        - 6.0
}

fn cohort() -> Option<Cohort> {
    let dir = common::data_dir()?;
    let t = Table::read(&dir.join("reference/stats_cohort.csv")).expect("cohort");
    let col = |n: &str| t.numeric_complete(n).expect("column");
    let names: Vec<String> = (1..=20).map(|i| format!("rad:f{i:02}")).collect();
    let values: Vec<Vec<f64>> = (1..=20).map(|i| col(&format!("f{i:02}"))).collect();
    let ids: Vec<String> = col("id").iter().map(|v| format!("{v}")).collect();
    let mut rng = Rng::new(5);
    let mut perturbed = Vec::new();
    for _ in 0..2 {
        let vals: Vec<Vec<f64>> = values
            .iter()
            .enumerate()
            .map(|(j, c)| {
                let s = if j >= 15 { 1.5 } else { 0.1 };
                c.iter().map(|v| v + s * noise(&mut rng)).collect()
            })
            .collect();
        perturbed.push(FeatureTable {
            case_ids: ids.clone(),
            names: names.clone(),
            values: vals,
            perturbed: Vec::new(),
        });
    }
    Some(Cohort {
        table: FeatureTable {
            case_ids: ids,
            names,
            values,
            perturbed,
        },
        labels: col("y"),
        clinical: ClinicalTable {
            names: vec!["age_years".into(), "sex_male".into()],
            values: vec![
                col("age").into_iter().map(Some).collect(),
                col("sex").into_iter().map(Some).collect(),
            ],
        },
    })
}

fn fit(c: &Cohort) -> FitReport {
    let cfg = FitConfig::seed001("tp_psp", &["age_years", "sex_male"], 42);
    fit_task(&c.table, &c.labels, &c.clinical, &cfg).expect("fit")
}

fn case_inputs(c: &Cohort, i: usize) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
    let f = c
        .table
        .names
        .iter()
        .zip(&c.table.values)
        .map(|(n, v)| (n.clone(), v[i]))
        .collect();
    let k = c
        .clinical
        .names
        .iter()
        .zip(&c.clinical.values)
        .filter_map(|(n, v)| v[i].map(|x| (n.clone(), x)))
        .collect();
    (f, k)
}

#[test]
fn chain_selects_the_true_signal_and_is_deterministic() {
    let Some(c) = cohort() else { return };
    let r = fit(&c);
    let dropped: Vec<&str> = r.icc_dropped.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        dropped,
        ["rad:f16", "rad:f17", "rad:f18", "rad:f19", "rad:f20"]
    );
    assert!(r.icc_dropped.iter().all(|(_, v)| *v < 0.75));
    assert_eq!(r.features_reproducible, 15);
    let rad = r
        .signatures
        .iter()
        .find(|s| s.name == "rad_score")
        .expect("rad-score");
    for f in ["rad:f01", "rad:f04", "rad:f09"] {
        assert!(
            rad.signature.features.iter().any(|x| x == f),
            "{f} not selected: {:?}",
            rad.signature.features
        );
    }
    assert!(rad.lambda_1se >= rad.lambda_min);
    assert!(rad.training_auc > 0.8, "rad AUC {}", rad.training_auc);
    // Univariable screen decides entry; the nomogram holds exactly the entered variables.
    let entered: Vec<&str> = r
        .univariable
        .iter()
        .filter(|u| u.entered)
        .map(|u| u.name.as_str())
        .collect();
    for u in &r.univariable {
        assert_eq!(u.entered, u.p < 0.05, "{}", u.name);
    }
    let vars: Vec<&str> = r
        .nomogram
        .variables
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(vars, entered);
    assert!(vars.contains(&"rad_score"));
    assert!(r.training_auc >= rad.training_auc - 1e-12);
    assert_eq!(r, fit(&c), "same seed, same fit");
}

#[test]
fn shap_sums_to_logit_minus_baseline_and_matches_the_fit() {
    let Some(c) = cohort() else { return };
    let r = fit(&c);
    let nomo = &r.nomogram;
    for i in 0..c.labels.len() {
        let (f, k) = case_inputs(&c, i);
        let a = match assess(nomo, &f, &|n| k.get(n).copied()) {
            Assessment::Assessed(a) => a,
            Assessment::NotAssessable(e) => panic!("case {i}: {}", e.reason),
        };
        let sum: f64 = a.shap.all.iter().map(|x| x.contribution).sum();
        assert!(
            (a.shap.logit - a.shap.baseline_logit - sum).abs() < 1e-10,
            "case {i}: logit {} baseline {} sum {sum}",
            a.shap.logit,
            a.shap.baseline_logit
        );
        // The same probability as the multivariable fit's own linear predictor.
        let row: Vec<f64> = nomo
            .variables
            .iter()
            .map(|v| {
                a.signature_scores
                    .get(&v.name)
                    .copied()
                    .or_else(|| k.get(&v.name).copied())
                    .expect("value")
            })
            .collect();
        let p = 1.0 / (1.0 + (-r.multivariable.linear_predictor(&row)).exp());
        assert!((a.probability - p).abs() < 1e-12);
        assert_eq!(a.positive, a.probability >= nomo.threshold);
        let pts = &a.points;
        assert!(pts
            .variables
            .iter()
            .all(|v| (-1e-9..=100.0 + 1e-9).contains(&v.points)));
        assert!(pts.variables.iter().any(|v| v.points > 0.0));
    }
}

#[test]
fn missing_or_out_of_range_inputs_are_not_assessable() {
    let Some(c) = cohort() else { return };
    let r = fit(&c);
    let nomo = &r.nomogram;
    let (mut f, k) = case_inputs(&c, 0);
    let clin_var = nomo
        .variables
        .iter()
        .find(|v| v.source == glioedge::fusion::Source::Clinical)
        .map(|v| v.name.clone());
    if let Some(name) = &clin_var {
        let mut k2 = k.clone();
        k2.remove(name);
        match assess(nomo, &f, &|n| k2.get(n).copied()) {
            Assessment::NotAssessable(e) => {
                assert!(e.reason.contains(name.as_str()), "{}", e.reason)
            }
            Assessment::Assessed(_) => panic!("assessed without {name}"),
        }
        let mut k3 = k.clone();
        k3.insert(name.clone(), 1e6);
        match assess(nomo, &f, &|n| k3.get(n).copied()) {
            Assessment::NotAssessable(e) => assert!(
                e.reason.contains("outside the training range"),
                "{}",
                e.reason
            ),
            Assessment::Assessed(_) => panic!("assessed out of range"),
        }
    }
    f.remove("rad:f01");
    match assess(nomo, &f, &|n| k.get(n).copied()) {
        Assessment::NotAssessable(e) => assert!(e.reason.contains("rad:f01"), "{}", e.reason),
        Assessment::Assessed(_) => panic!("assessed without rad:f01"),
    }
}

#[test]
fn nomogram_round_trips_through_toml_and_json() {
    let Some(c) = cohort() else { return };
    let nomo = fit(&c).nomogram;
    let t = toml::to_string(&nomo).expect("toml");
    assert_eq!(toml::from_str::<Nomogram>(&t).expect("parse toml"), nomo);
    let j = serde_json::to_string(&nomo).expect("json");
    assert_eq!(
        serde_json::from_str::<Nomogram>(&j).expect("parse json"),
        nomo
    );
}

#[test]
fn head_over_features_is_a_logistic_of_its_signature() {
    use glioedge::fusion::fit::{fit_head, SignatureSpec};
    use glioedge::fusion::TaskLabels;
    use glioedge::report::result::TaskStatus;
    let Some(c) = cohort() else { return };
    let spec = SignatureSpec {
        name: "dl_score".into(),
        prefixes: vec!["rad:".into()],
    };
    let (sf, head) = fit_head(&c.table, &c.labels, &spec, "idh", 10, 7)
        .expect("fit")
        .expect("a head");
    assert!(sf.signature.features.iter().any(|f| f == "rad:f01"));
    let labels = TaskLabels {
        title: "IDH mutation".into(),
        positive: "IDH-mutant".into(),
        negative: "IDH-wildtype".into(),
    };
    let (f, k) = case_inputs(&c, 3);
    let a = assess(&head, &f, &|n| k.get(n).copied());
    let Assessment::Assessed(ref x) = a else {
        panic!("not assessed: {a:?}")
    };
    let score = x.signature_scores["dl_score"];
    assert!((x.probability - 1.0 / (1.0 + (-score).exp())).abs() < 1e-15);
    let sum: f64 = x.shap.all.iter().map(|c| c.contribution).sum();
    assert!((x.logit - x.shap.baseline_logit - sum).abs() < 1e-10);
    let tr = a.task_result(&head, &labels);
    assert_eq!(tr.status, TaskStatus::Assessed);
    assert_eq!(tr.dl_score, Some(score));
    assert_eq!(tr.threshold, head.threshold);
}

fn subset(c: &Cohort, rows: &[usize]) -> Cohort {
    let pick = |t: &FeatureTable| FeatureTable {
        case_ids: rows.iter().map(|&i| t.case_ids[i].clone()).collect(),
        names: t.names.clone(),
        values: t
            .values
            .iter()
            .map(|v| rows.iter().map(|&i| v[i]).collect())
            .collect(),
        perturbed: Vec::new(),
    };
    let mut table = pick(&c.table);
    table.perturbed = c.table.perturbed.iter().map(pick).collect();
    Cohort {
        table,
        labels: rows.iter().map(|&i| c.labels[i]).collect(),
        clinical: ClinicalTable {
            names: c.clinical.names.clone(),
            values: c
                .clinical
                .values
                .iter()
                .map(|v| rows.iter().map(|&i| v[i]).collect())
                .collect(),
        },
    }
}

#[test]
fn validation_on_held_out_cases_reports_exclusions_and_compares_with_the_nomogram() {
    use glioedge::fusion::fit::cohort_scores;
    use glioedge::stats::report::{validate_scores, ValidateOptions};
    let Some(c) = cohort() else { return };
    let train = subset(&c, &(0..140).collect::<Vec<_>>());
    let test = subset(&c, &(140..200).collect::<Vec<_>>());
    let r = fit(&train);
    let mut labels: Vec<Option<f64>> = test.labels.iter().map(|&v| Some(v)).collect();
    labels[0] = None;
    let (y, scores, excluded) = cohort_scores(&r, &test.table, &labels, &test.clinical);
    assert_eq!(excluded[0].case, test.table.case_ids[0]);
    assert_eq!(excluded[0].reason, "label missing");
    // Every other exclusion is a model refusing an input outside its training range.
    assert!(excluded[1..]
        .iter()
        .all(|e| e.reason.contains("outside the training range")));
    assert_eq!(y.len() + excluded.len(), 60);
    let names: Vec<&str> = scores.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"nomogram"));
    assert!(names.contains(&"rad_score"));
    let opts = ValidateOptions {
        bootstrap: 0,
        compare_last: true,
        ..ValidateOptions::default()
    };
    let v = validate_scores("y", &y, &scores, excluded, &opts).expect("validate");
    let auc = |n: &str| {
        v.scores
            .iter()
            .find(|s| s.name == n)
            .expect("score")
            .roc
            .auc
    };
    for s in &v.scores {
        eprintln!("{:<10} AUC {:.3} CI {:?}", s.name, s.roc.auc, s.roc.ci);
    }
    for cmp in &v.comparisons {
        assert_eq!(cmp.score, "nomogram");
        assert!(cmp.nri.is_some());
    }
    assert_eq!(v.comparisons.len(), scores.len() - 1);
    assert!(auc("nomogram") > auc("rad_score"), "nomogram vs rad-score");
    if names.contains(&"clinical") {
        assert!(auc("nomogram") > auc("clinical"), "nomogram vs clinical");
    }
}

/// A synthetic cohort in which the outcome follows a latent `u`; age and a radiomics feature
/// both measure `u`, and a deep feature is "age minus some of `u`": positively associated with
/// the outcome alone (through age) but negatively beside age. The nomogram must leave that
/// signature out (its sign reverses), keep the radiomics score and age, and say why.
#[test]
fn a_signature_whose_sign_reverses_beside_age_leaves_the_nomogram() {
    let n = 400;
    let mut rng = Rng::new(11);
    let (mut u, mut age, mut rad, mut dl, mut y) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..n {
        let ui = noise(&mut rng);
        let age_z = (ui + noise(&mut rng)) / 2f64.sqrt();
        u.push(ui);
        age.push(55.0 + 10.0 * age_z);
        rad.push(ui + 0.7 * noise(&mut rng));
        dl.push(age_z - 0.45 * ui + 0.2 * noise(&mut rng));
        let p = 1.0 / (1.0 + (-1.5 * ui).exp());
        y.push(f64::from(
            rng.below(1 << 20) < (p * f64::from(1 << 20)) as usize,
        ));
    }
    let names = vec!["rad:r1".to_string(), "dl:d1".to_string()];
    let ids: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let values = vec![rad, dl];
    // Reproducible features: the perturbed tables differ by a little noise.
    let perturbed = (0..2)
        .map(|_| FeatureTable {
            case_ids: ids.clone(),
            names: names.clone(),
            values: values
                .iter()
                .map(|c| c.iter().map(|v| v + 0.05 * noise(&mut rng)).collect())
                .collect(),
            perturbed: Vec::new(),
        })
        .collect();
    let table = FeatureTable {
        case_ids: ids,
        names,
        values,
        perturbed,
    };
    let clinical = ClinicalTable {
        names: vec!["age_years".into()],
        values: vec![age.into_iter().map(Some).collect()],
    };
    let cfg = FitConfig::seed001("idh", &["age_years"], 3);
    let r = fit_task(&table, &y, &clinical, &cfg).expect("fit");
    let uni = |name: &str| {
        r.univariable
            .iter()
            .find(|u| u.name == name)
            .unwrap_or_else(|| panic!("{name} screened: {:?}", r.univariable))
    };
    let dl = uni("dl_score");
    assert!(dl.p < 0.05 && dl.coefficient > 0.0, "{dl:?}");
    assert!(!dl.entered, "{dl:?}");
    assert!(
        dl.removed
            .as_deref()
            .is_some_and(|w| w.contains("sign reversed")),
        "{dl:?}"
    );
    let vars: Vec<&str> = r
        .nomogram
        .variables
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    assert_eq!(vars, ["rad_score", "age_years"]);
    assert!(r.nomogram.variables.iter().all(|v| v.coefficient > 0.0));
    // (Without the rule the nomogram keeps dl_score with a negative coefficient.)
    assert!(r.nomogram.signatures.iter().all(|s| s.name != "dl_score"));
}
