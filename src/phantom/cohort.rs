//! The cohort: latent labels, clinical variables, case folders, `labels.csv`, `cohort.toml`.
//!
//! Clinical variables are drawn consistently with the labels (Louis et al., WHO CNS5 2021;
//! Brandes et al. 2008): IDH-mutant patients are younger (mean ≈ 40 vs ≈ 60 years); Ki-67 is
//! high in ≈ 70 % of IDH-wildtype and ≈ 25 % of IDH-mutant tumours; after chemoradiation, true
//! progression is seen later (median ≈ 22 weeks after radiotherapy) than pseudoprogression
//! (median ≈ 9 weeks, mostly within 12), and pseudoprogression is more frequent with MGMT
//! methylation. KPS falls with age and in progression.
//!
//! `labels.csv` records each label after *label noise*: with probability `label_noise` the
//! recorded label is the opposite of the one that shaped the images (a stand-in for pathology
//! and follow-up misclassification).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::anatomy::Anatomy;
use super::render::{GridKind, Scanner, Subject};
use super::rng::{Purpose, Rng};
use super::tumour::{Latent, Tumour};
use super::PhantomError;
use crate::case::clinical::{Clinical, Sex};

/// Which cases a cohort holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Half untreated (IDH / Ki-67), half post-treatment (TP / PsP).
    All,
    /// Untreated cases only.
    IdhKi67,
    /// Post-chemoradiation cases only.
    TpPsp,
}

impl Task {
    /// Name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Task::All => "all",
            Task::IdhKi67 => "idh-ki67",
            Task::TpPsp => "tp-psp",
        }
    }
}

/// Generator parameters (written to `cohort.toml`).
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Effect size `d` of IDH status on the latent imaging score.
    pub effect_idh: f64,
    /// Effect size of Ki-67.
    pub effect_ki67: f64,
    /// Effect size of true progression vs pseudoprogression.
    pub effect_tp: f64,
    /// Probability that a recorded label is flipped.
    pub label_noise: f64,
    /// Prevalence of IDH mutation among untreated cases.
    pub p_idh_mutant: f64,
    /// Prevalence of true progression among post-treatment cases.
    pub p_true_progression: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            effect_idh: 1.8,
            effect_ki67: 1.6,
            effect_tp: 1.8,
            label_noise: 0.03,
            p_idh_mutant: 0.4,
            p_true_progression: 0.55,
        }
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct CohortOptions {
    /// Number of cases.
    pub cases: usize,
    /// Seed.
    pub seed: u64,
    /// Grid kind.
    pub grid: GridKind,
    /// Task.
    pub task: Task,
    /// Generator parameters.
    pub params: Params,
}

/// Labels of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Labels {
    /// IDH mutant.
    pub idh_mutant: bool,
    /// Ki-67 high.
    pub ki67_high: bool,
    /// Imaged after chemoradiation.
    pub post_treatment: bool,
    /// True progression (only meaningful when post-treatment).
    pub true_progression: Option<bool>,
}

/// Everything drawn for one case before any voxel is made.
#[derive(Debug, Clone)]
pub struct CaseSpec {
    /// Case id: `phantom-<seed>-<k, 4 digits>`.
    pub id: String,
    /// Index in the cohort.
    pub index: u64,
    /// Labels that shaped the images.
    pub truth: Labels,
    /// Labels as recorded in `labels.csv` (after label noise).
    pub recorded: Labels,
    /// Latent imaging scores.
    pub latent: Latent,
    /// Clinical variables.
    pub clinical: Clinical,
    /// The head, lesion and scanner.
    pub subject: Subject,
}

/// The id of case `k` of the cohort with seed `seed`.
pub fn case_id(seed: u64, k: u64) -> String {
    format!("phantom-{seed}-{k:04}")
}

/// Generator version: bump when any output byte may change.
pub const GENERATOR_VERSION: u32 = 1;

/// Draws case `k`.
pub fn draw_case(opts: &CohortOptions, k: u64) -> CaseSpec {
    let p = &opts.params;
    let mut rng = Rng::for_case(opts.seed, k, Purpose::Spec);
    let post_treatment = match opts.task {
        Task::All => rng.chance(0.5),
        Task::IdhKi67 => false,
        Task::TpPsp => true,
    };
    let p_mut = if post_treatment { 0.15 } else { p.p_idh_mutant };
    let idh_mutant = rng.chance(p_mut);
    let ki67_high = rng.chance(if idh_mutant { 0.25 } else { 0.7 });
    let tp_draw = rng.chance(p.p_true_progression);
    let true_progression = post_treatment.then_some(tp_draw);
    let truth = Labels {
        idh_mutant,
        ki67_high,
        post_treatment,
        true_progression,
    };
    let half = |y: bool| if y { 0.5 } else { -0.5 };
    let latent = Latent {
        idh: p.effect_idh * half(idh_mutant) + rng.normal(),
        ki67: p.effect_ki67 * half(ki67_high) + rng.normal(),
        tp: p.effect_tp * half(tp_draw) + rng.normal(),
    };
    let mut flip = |y: bool| if rng.chance(p.label_noise) { !y } else { y };
    let recorded = Labels {
        idh_mutant: flip(idh_mutant),
        ki67_high: flip(ki67_high),
        post_treatment,
        true_progression: true_progression.map(&mut flip),
    };
    // Clinical variables.
    let age = rng
        .gauss(if idh_mutant { 40.0 } else { 60.0 }, 11.0)
        .clamp(18.0, 88.0)
        .round();
    let sex = if rng.chance(if idh_mutant { 0.55 } else { 0.6 }) {
        Sex::M
    } else {
        Sex::F
    };
    let mut kps = 90.0 - 0.3 * (age - 45.0).max(0.0) + 6.0 * rng.normal();
    if post_treatment {
        kps -= 5.0;
    }
    if true_progression == Some(true) {
        kps -= 5.0;
    }
    let kps = ((kps / 10.0).round() * 10.0).clamp(40.0, 100.0);
    let weeks = if tp_draw {
        22.0 * libm::exp(0.6 * rng.normal())
    } else {
        9.0 * libm::exp(0.45 * rng.normal())
    };
    let weeks = ((weeks.clamp(1.0, 200.0)) * 10.0).round() / 10.0;
    let tmz = rng.chance(0.95);
    let mgmt_p = if post_treatment {
        if tp_draw {
            0.35
        } else {
            0.6
        }
    } else if idh_mutant {
        0.8
    } else {
        0.4
    };
    let mgmt = rng.chance(mgmt_p);
    let clinical = Clinical {
        age_years: Some(age),
        sex: Some(sex),
        kps: Some(kps),
        post_treatment: Some(post_treatment),
        weeks_since_radiotherapy: post_treatment.then_some(weeks),
        temozolomide: Some(post_treatment && tmz),
        mgmt_methylated: Some(mgmt),
    };
    let anatomy = Anatomy::draw(&mut rng, age);
    let tumour = Tumour::draw(&mut rng, &anatomy, latent, post_treatment);
    let scanner = Scanner::draw(&mut rng, opts.grid);
    let subject = Subject::new(anatomy, tumour, scanner, opts.grid);
    CaseSpec {
        id: case_id(opts.seed, k),
        index: k,
        truth,
        recorded,
        latent,
        clinical,
        subject,
    }
}

/// `clinical.toml` text (keys as [`Clinical`] reads them).
pub fn clinical_toml(c: &Clinical) -> String {
    let mut s = String::from("# synthetic case made by glioedge phantom\n");
    if let Some(a) = c.age_years {
        let _ = writeln!(s, "age_years = {a:.0}");
    }
    if let Some(x) = c.sex {
        let _ = writeln!(s, "sex = \"{}\"", if x == Sex::M { "M" } else { "F" });
    }
    if let Some(k) = c.kps {
        let _ = writeln!(s, "kps = {k:.0}");
    }
    if let Some(p) = c.post_treatment {
        let _ = writeln!(s, "post_treatment = {p}");
    }
    if let Some(w) = c.weeks_since_radiotherapy {
        let _ = writeln!(s, "weeks_since_radiotherapy = {w:.1}");
    }
    if let Some(t) = c.temozolomide {
        let _ = writeln!(s, "temozolomide = {t}");
    }
    if let Some(m) = c.mgmt_methylated {
        let _ = writeln!(s, "mgmt_methylated = {m}");
    }
    s
}

/// The `labels.csv` line of a case.
pub fn labels_line(id: &str, l: &Labels) -> String {
    let b = |x: bool| if x { "1" } else { "0" };
    format!(
        "{id},{},{},{},{}\n",
        b(l.idh_mutant),
        b(l.ki67_high),
        b(l.post_treatment),
        l.true_progression.map(b).unwrap_or("")
    )
}

/// Header of `labels.csv`.
pub const LABELS_HEADER: &str = "case_id,idh_mutant,ki67_high,post_treatment,true_progression\n";

#[derive(Serialize)]
struct CohortToml<'a> {
    generator: &'a str,
    generator_version: u32,
    software_version: &'a str,
    seed: u64,
    cases: usize,
    grid: &'a str,
    task: &'a str,
    parameters: &'a Params,
}

/// `cohort.toml` text.
pub fn cohort_toml(opts: &CohortOptions) -> Result<String, PhantomError> {
    let c = CohortToml {
        generator: "glioedge phantom",
        generator_version: GENERATOR_VERSION,
        software_version: crate::VERSION,
        seed: opts.seed,
        cases: opts.cases,
        grid: opts.grid.name(),
        task: opts.task.name(),
        parameters: &opts.params,
    };
    toml::to_string(&c).map_err(|e| PhantomError::Internal(format!("cohort.toml: {e}")))
}

/// Writes a small text file through a temporary name and a rename.
pub fn write_text(path: &Path, text: &str) -> Result<(), PhantomError> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    std::fs::write(&tmp, text)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|source| PhantomError::Write {
            path: path.to_path_buf(),
            source,
        })
}
