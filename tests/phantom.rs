//! `glioedge phantom`: byte-identical cohorts per seed (any thread count), every generated case
//! accepted by `inspect` and `load_study` on both grids, the grids of the real BraTS and raw
//! TCGA cases reproduced, phenotypes that follow the labels without giving them away, and the
//! preview montage.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use glioedge::case::clinical::Clinical;
use glioedge::case::study::load_study;
use glioedge::case::CaseFiles;
use glioedge::config::Config;
use glioedge::phantom::signal::compartment_mr;
use glioedge::phantom::tumour::Compartment;
use glioedge::phantom::{draw_case, generate_cohort, CohortOptions, GridKind, Params, Task};
use glioedge::volume::read_nifti;
use serde_json::Value;

fn opts(cases: usize, seed: u64, grid: GridKind, task: Task) -> CohortOptions {
    CohortOptions {
        cases,
        seed,
        grid,
        task,
        params: Params::default(),
    }
}

/// Every file under `dir` (relative path → bytes).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("prefix").to_path_buf();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

fn generate_with_threads(out: &Path, o: &CohortOptions, threads: usize) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    pool.install(|| generate_cohort(out, o, |_| {}).expect("generates"));
}

#[test]
fn same_seed_same_bytes_any_thread_count_other_seed_differs() {
    let tmp = tempfile::tempdir().expect("tmp");
    let o = opts(3, 20261130, GridKind::Brats, Task::All);
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    generate_with_threads(&a, &o, 1);
    generate_with_threads(&b, &o, 3);
    let ta = tree(&a);
    let tb = tree(&b);
    // 3 cases × (6 images + mask + clinical.toml) + labels.csv + cohort.toml.
    assert_eq!(ta.len(), 3 * 8 + 2, "{:?}", ta.keys().collect::<Vec<_>>());
    assert_eq!(ta.keys().collect::<Vec<_>>(), tb.keys().collect::<Vec<_>>());
    for (k, v) in &ta {
        assert!(tb[k] == *v, "{} differs between runs", k.display());
    }
    // Another seed: other ids, other images, other labels file.
    let c = tmp.path().join("c");
    let o2 = opts(1, 20261131, GridKind::Brats, Task::All);
    generate_with_threads(&c, &o2, 2);
    let tc = tree(&c);
    let t1c_a = &ta[Path::new("phantom-20261130-0000/t1c.nii.gz")];
    let t1c_c = &tc[Path::new("phantom-20261131-0000/t1c.nii.gz")];
    assert_ne!(t1c_a, t1c_c);
    assert_ne!(
        ta[Path::new("phantom-20261130-0000/mask.nii.gz")],
        tc[Path::new("phantom-20261131-0000/mask.nii.gz")]
    );
}

fn inspect_json(dir: &Path) -> Value {
    let out = Command::new(common::bin())
        .args(["inspect", "--json"])
        .arg(dir)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "inspect failed on {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn relation(report: &Value, role: &str) -> String {
    report["files"]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["role"] == role)
        .unwrap_or_else(|| panic!("{role} missing"))["grid"]["relation"]
        .as_str()
        .expect("relation")
        .to_string()
}

/// Runs the binary to make a cohort; returns the folder.
fn cli_cohort(root: &Path, grid: &str, task: &str, cases: usize, seed: u64) -> PathBuf {
    let out = root.join(format!("{grid}-{task}"));
    let res = Command::new(common::bin())
        .args(["phantom", "--out"])
        .arg(&out)
        .args(["--cases", &cases.to_string(), "--seed", &seed.to_string()])
        .args(["--grid", grid, "--task", task])
        .output()
        .expect("runs");
    assert!(
        res.status.success(),
        "phantom failed: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    out
}

fn labels_csv(dir: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(dir.join("labels.csv")).expect("labels.csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("case_id,idh_mutant,ki67_high,post_treatment,true_progression")
    );
    lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

fn check_cohort(dir: &Path, raw: bool) {
    let rows = labels_csv(dir);
    let cohort = std::fs::read_to_string(dir.join("cohort.toml")).expect("cohort.toml");
    let cohort: toml::Value = toml::from_str(&cohort).expect("toml");
    assert_eq!(
        cohort["grid"].as_str(),
        Some(if raw { "raw" } else { "brats" })
    );
    assert!(cohort["parameters"]["effect_idh"].as_float().is_some());
    for row in &rows {
        assert_eq!(row.len(), 5, "{row:?}");
        let case = dir.join(&row[0]);
        let report = inspect_json(&case);
        let clinical = Clinical::load(&case.join("clinical.toml")).expect("clinical.toml");
        let post = row[3] == "1";
        assert_eq!(clinical.post_treatment, Some(post));
        assert_eq!(clinical.weeks_since_radiotherapy.is_some(), post);
        assert_eq!(row[4].is_empty(), !post, "{row:?}");
        // Every tumour has oedema and a core.
        let labels: Vec<i64> = report["mask_labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|l| l["label"].as_i64().expect("label"))
            .collect();
        assert!(labels.contains(&2), "{}: labels {labels:?}", row[0]);
        assert!(labels.iter().any(|l| *l == 1 || *l == 3), "{labels:?}");
        assert!(labels.iter().all(|l| (0..=3).contains(l)));
        assert_eq!(report["reference_sequence"], "t1c");
        if raw {
            assert_eq!(relation(&report, "t1"), "same_grid");
            for role in ["t2", "flair", "adc", "cbf"] {
                assert_eq!(relation(&report, role), "resampled", "{role}");
            }
            assert_eq!(relation(&report, "mask"), "same_grid");
            let warnings = report["warnings"].as_array().expect("warnings");
            assert!(
                warnings
                    .iter()
                    .filter(|w| w.as_str().is_some_and(|s| s.contains("resampled")))
                    .count()
                    >= 4,
                "{warnings:?}"
            );
        } else {
            for role in ["t1", "t2", "flair", "adc", "cbf", "mask"] {
                assert_eq!(relation(&report, role), "same_grid", "{role}");
            }
        }
        // The library loads it too, with the ROI inside the brain.
        let files = CaseFiles::discover(&case).expect("discover");
        let study = load_study(&files, &Config::defaults()).expect("loads");
        assert!(study.roi.count() > 500, "{}", study.roi.count());
        assert_eq!(study.images.len(), 6);
    }
}

#[test]
fn inspect_accepts_brats_grid_cases_and_grid_matches_real_brats() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = cli_cohort(tmp.path(), "brats", "all", 2, 7);
    check_cohort(&dir, false);
    // The grid is the real BraTS case's grid.
    if let Some(data) = common::data_dir() {
        let (real, _) =
            read_nifti(&data.join("brats_case/t1c.nii.gz"), 1 << 30).expect("real BraTS");
        let case = dir.join("phantom-7-0000");
        let (ours, info) = read_nifti(&case.join("t1c.nii.gz"), 1 << 30).expect("ours");
        assert_eq!(ours.dims(), real.dims());
        assert!(ours.affine().max_abs_diff(real.affine()) < 1e-6);
        assert_eq!(ours.orientation_code(), "LPS");
        assert_eq!(info.datatype.name(), "int16");
        // Skull-stripped like BraTS: a zero background and a brain of plausible size.
        let brain = ours.data().iter().filter(|v| **v > 0.0).count() as f64 / 1000.0;
        let real_brain = real.data().iter().filter(|v| **v > 0.0).count() as f64 / 1000.0;
        assert!(ours.data()[0] == 0.0);
        assert!(
            (0.8..1.3).contains(&(brain / real_brain)),
            "brain {brain} mL vs real {real_brain} mL"
        );
    }
}

#[test]
fn inspect_accepts_raw_grid_cases_like_the_tcga_case() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = cli_cohort(tmp.path(), "raw", "all", 3, 8);
    check_cohort(&dir, true);
    if let Some(data) = common::data_dir() {
        let (real, _) = read_nifti(
            &data.join("tcga_fg_6692_raw/TCGA-FG-6692_t1c.nii.gz"),
            1 << 30,
        )
        .expect("real TCGA");
        let (ours, _) = read_nifti(&dir.join("phantom-8-0000/t1c.nii.gz"), 1 << 30).expect("ours");
        assert_eq!(ours.dims(), real.dims());
        assert_eq!(ours.orientation_code(), real.orientation_code());
        for (a, b) in ours.zooms().iter().zip(real.zooms()) {
            assert!(
                (a - b).abs() < 1e-3,
                "zooms {:?} vs {:?}",
                ours.zooms(),
                real.zooms()
            );
        }
        // Oblique: off-diagonal terms in the slice axis.
        let lin = ours.affine().linear();
        assert!(lin[1][2].abs() > 0.3, "not oblique: {lin:?}");
    }
}

/// Mann–Whitney AUC of `score` for `label`.
fn auc(score: &[f64], label: &[bool]) -> f64 {
    let mut pairs = 0.0;
    let mut wins = 0.0;
    for (s1, l1) in score.iter().zip(label) {
        for (s0, l0) in score.iter().zip(label) {
            if *l1 && !*l0 {
                pairs += 1.0;
                wins += if s1 > s0 {
                    1.0
                } else if s1 == s0 {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    wins / pairs
}

struct LesionStats {
    enhancing_fraction: f64,
    necrosis_fraction: f64,
    solid_adc: f64,
    solid_cbf: f64,
    frontal: bool,
}

/// Samples a case's lesion on a 2.5 mm lattice (no voxels written).
fn lesion_stats(spec: &glioedge::phantom::CaseSpec) -> LesionStats {
    let t = &spec.subject.tumour;
    let a = &spec.subject.anatomy;
    let c = t.centre();
    let mut counts = BTreeMap::new();
    let (mut adc, mut cbf, mut solid) = (0.0f64, 0.0f64, 0.0f64);
    let step = 2.5;
    for i in -24..=24 {
        for j in -24..=24 {
            for k in -24..=24 {
                let p = [
                    c[0] + i as f64 * step,
                    c[1] + j as f64 * step,
                    c[2] + k as f64 * step,
                ];
                let tissue = a.tissue(p, false);
                let (comp, h, m) = t.at(p, tissue);
                *counts.entry(format!("{comp:?}")).or_insert(0usize) += 1;
                if matches!(comp, Compartment::Enhancing | Compartment::NonEnhancing) {
                    let mr = compartment_mr(comp, tissue, t, h, m);
                    adc += mr.adc;
                    cbf += mr.cbf;
                    solid += 1.0;
                }
            }
        }
    }
    let n = |k: &str| *counts.get(k).unwrap_or(&0) as f64;
    let core = n("Enhancing") + n("NonEnhancing") + n("Necrosis");
    assert!(core > 0.0, "{}: no core", spec.id);
    LesionStats {
        enhancing_fraction: n("Enhancing") / core,
        necrosis_fraction: n("Necrosis") / core,
        solid_adc: adc / solid.max(1.0),
        solid_cbf: cbf / solid.max(1.0),
        frontal: t.lobe == "frontal",
    }
}

#[test]
fn phenotypes_follow_labels_but_do_not_give_them_away() {
    let o = opts(80, 3, GridKind::Brats, Task::IdhKi67);
    let specs: Vec<_> = (0..80).map(|k| draw_case(&o, k)).collect();
    let stats: Vec<LesionStats> = specs.iter().map(lesion_stats).collect();
    let wt: Vec<bool> = specs.iter().map(|s| !s.truth.idh_mutant).collect();
    let n_mut = wt.iter().filter(|w| !**w).count();
    assert!((15..=50).contains(&n_mut), "{n_mut} mutant of 80");
    let enh: Vec<f64> = stats.iter().map(|s| s.enhancing_fraction).collect();
    let necro: Vec<f64> = stats.iter().map(|s| s.necrosis_fraction).collect();
    let adc: Vec<f64> = stats.iter().map(|s| -s.solid_adc).collect();
    let cbf: Vec<f64> = stats.iter().map(|s| s.solid_cbf).collect();
    for (name, score) in [
        ("enhancing", &enh),
        ("necrosis", &necro),
        ("-ADC", &adc),
        ("CBF", &cbf),
    ] {
        let a = auc(score, &wt);
        eprintln!("IDH-wildtype AUC of {name}: {a:.3}");
        assert!(a > 0.65, "{name}: AUC {a}");
        assert!(a < 0.97, "{name}: AUC {a} gives the label away");
    }
    // Frontal location is more frequent in IDH-mutant.
    let frontal = |want_wt: bool| {
        let (f, n) = stats
            .iter()
            .zip(&wt)
            .filter(|(_, w)| **w == want_wt)
            .fold((0, 0), |(f, n), (s, _)| (f + usize::from(s.frontal), n + 1));
        f as f64 / n as f64
    };
    assert!(
        frontal(false) > frontal(true) + 0.1,
        "{} vs {}",
        frontal(false),
        frontal(true)
    );
    // Ki-67: lower ADC when high.
    let ki: Vec<bool> = specs.iter().map(|s| s.truth.ki67_high).collect();
    let a = auc(&adc, &ki);
    eprintln!("Ki-67 high AUC of -ADC: {a:.3}");
    assert!(a > 0.6 && a < 0.97, "{a}");
    // IDH-mutant patients are younger.
    let age: Vec<f64> = specs
        .iter()
        .map(|s| s.clinical.age_years.expect("age"))
        .collect();
    let a = auc(&age, &wt);
    assert!(a > 0.75 && a < 0.99, "age AUC {a}");

    // True progression vs pseudoprogression: higher CBF, lower ADC, later after radiotherapy.
    let o = opts(60, 4, GridKind::Brats, Task::TpPsp);
    let specs: Vec<_> = (0..60).map(|k| draw_case(&o, k)).collect();
    let tp: Vec<bool> = specs
        .iter()
        .map(|s| s.truth.true_progression.expect("post-treatment"))
        .collect();
    let stats: Vec<LesionStats> = specs.iter().map(lesion_stats).collect();
    let cbf: Vec<f64> = stats.iter().map(|s| s.solid_cbf).collect();
    let adc: Vec<f64> = stats.iter().map(|s| -s.solid_adc).collect();
    let weeks: Vec<f64> = specs
        .iter()
        .map(|s| s.clinical.weeks_since_radiotherapy.expect("weeks"))
        .collect();
    for (name, score) in [("CBF", &cbf), ("-ADC", &adc), ("weeks", &weeks)] {
        let a = auc(score, &tp);
        eprintln!("TP AUC of {name}: {a:.3}");
        assert!(a > 0.65 && a < 0.97, "{name}: AUC {a}");
    }
}

#[test]
fn preview_renders_a_montage_and_bad_options_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = cli_cohort(tmp.path(), "raw", "idh-ki67", 1, 9);
    let png = tmp.path().join("montage.png");
    let out = Command::new(common::bin())
        .args(["phantom", "--preview"])
        .arg(dir.join("phantom-9-0000"))
        .arg("--out")
        .arg(&png)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&png).expect("png").to_rgb8();
    // 3 × 2 panels of the T1c grid made canonical (256 × 224 in-plane).
    assert_eq!((img.width(), img.height()), (3 * 256, 2 * 224));
    // Outline colours of oedema (green) are drawn.
    assert!(img.pixels().any(|p| p.0 == [40, 220, 40]));
    // Zero cases and a missing preview folder are bad input (exit 2).
    let out = Command::new(common::bin())
        .args(["phantom", "--cases", "0", "--seed", "1", "--out"])
        .arg(tmp.path().join("none"))
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(common::bin())
        .args(["phantom", "--preview"])
        .arg(tmp.path().join("missing"))
        .arg("--out")
        .arg(&png)
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
