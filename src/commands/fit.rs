//! `glioedge fit` (a model package from a labelled cohort) and `glioedge validate --cohort`
//! (the seeds' table of a fitted package on a labelled cohort).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use glioedge::case::Sequence;
use glioedge::cohort::{
    extract_cohort, fit_package, list_cases, tasks_named, validate_cohort, CohortError,
    CohortLabels, FitOptions,
};
use glioedge::config::Config;
use glioedge::error::Classify;
use glioedge::inference::Precision;
use glioedge::pipeline::Runtime;
use glioedge::stats::report::ValidateOptions;
use serde::Serialize;

use super::validate::{print_table, write_validation};

/// Fits the tasks' signatures, heads and nomograms on a labelled cohort and writes a new
/// model package.
///
/// Every case folder of --cohort is run through the pipeline's feature extraction (radiomics
/// per sequence on the ROI and on the 1-voxel eroded and dilated ROI, deep features per
/// sequence); cases that fail are reported and skipped. Then, per task, seed 001's chain (ICC
/// ≥ 0.75, |r| ≤ 0.9, LASSO-CV → rad-score and DL-score; nomogram with clinical factors) and
/// seed 000's heads (IDH, Ki-67) over the deep features. The new package (--out, which must
/// not exist) is the base package plus tasks.json, fitted heads, fit_report.json/.md, its
/// version bumped and every checksum recomputed. Same inputs and seed → the same bytes.
#[derive(Debug, clap::Args)]
pub struct FitArgs {
    /// Folder of case folders.
    #[arg(long, value_name = "DIR")]
    cohort: PathBuf,
    /// `labels.csv` (case_id, idh_mutant, ki67_high, post_treatment, true_progression).
    #[arg(long, value_name = "FILE.csv")]
    labels: PathBuf,
    /// `idh`, `ki67`, `tp-psp` or `all`.
    #[arg(long, default_value = "all")]
    task: String,
    /// The new package folder.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Base package (default: the configured one).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Seed of the cross-validation folds.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Sequences the package uses, comma-separated; the first is the one the heads read.
    #[arg(long, default_value = "t1c,t2,flair", value_delimiter = ',')]
    sequences: Vec<String>,
    /// Name of the new package (default: the base package's).
    #[arg(long)]
    name: Option<String>,
    /// Keep each case's extracted features here and reuse them.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

fn fail(e: &(impl Classify + std::fmt::Display)) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    ExitCode::from(e.kind().exit_code())
}

/// The configuration a cohort run uses: a fixed precision, so features do not depend on a
/// start-up timing. `auto` means `f32` here — the int8-stored weights dequantized once at load,
/// with fp32 activations. Its features agree between CPUs to rounding (1e-6), whereas rounding
/// differences move int8 activations across quantisation steps (deep features up to 1.5e-2
/// apart between x86_64 and aarch64, a probability 2 % apart; see `board/cross/README.md`).
/// Speed does not decide it: since the int8 graph's products run in integers it is the faster
/// one on the x86_64 build machine (67–72 vs 102–110 ms per image), and on the board it has not
/// been timed. A fitted package's nomograms hold for the precision it was fitted with, so this
/// choice is what boxes run.
fn fixed_precision(config: &Config) -> Config {
    let mut c = config.clone();
    if c.inference.precision == Precision::Auto {
        c.inference.precision = Precision::F32;
    }
    c
}

fn parse_sequences(names: &[String]) -> Result<Vec<Sequence>, CohortError> {
    names
        .iter()
        .map(|n| {
            Sequence::from_name(n)
                .ok_or_else(|| CohortError::Input(format!("unknown sequence {n:?}")))
        })
        .collect()
}

/// Runs `glioedge fit`.
pub fn fit(a: &FitArgs, config: &Config) -> ExitCode {
    let t0 = Instant::now();
    let tasks = match tasks_named(&a.task) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    let seqs = match parse_sequences(&a.sequences) {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => return fail(&CohortError::Input("no --sequences given".into())),
        Err(e) => return fail(&e),
    };
    let names: Vec<String> = seqs.iter().map(|s| s.name().to_string()).collect();
    if a.out.exists() {
        return fail(&CohortError::Input(format!(
            "{} exists; give a new folder for the fitted package",
            a.out.display()
        )));
    }
    let labels = match CohortLabels::read(&a.labels) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let cases = match list_cases(&a.cohort) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let rt = match Runtime::load_with(fixed_precision(config), a.model.as_deref(), Some(&names)) {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    eprintln!(
        "fit: {} case folders, sequences {}, deep features at {} precision",
        cases.len(),
        names.join(", "),
        rt.engine.precision().name()
    );
    let (feats, failed) = extract_cohort(&cases, &rt, &seqs, a.cache.as_deref());
    let t_extract = t0.elapsed().as_secs_f64();
    let opts = FitOptions {
        tasks,
        sequences: names,
        seed: a.seed,
        name: a.name.clone(),
    };
    let report = match fit_package(
        rt.engine.package(),
        &feats,
        failed,
        cases.len(),
        &labels,
        rt.engine.precision().name(),
        &opts,
        &a.out,
    ) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    println!(
        "fitted {} task(s) on {} of {} cases ({} failed) in {:.0} s (features {:.0} s)",
        report.tasks.len(),
        report.cases_extracted,
        report.cases_found,
        report.failed.len(),
        t0.elapsed().as_secs_f64(),
        t_extract
    );
    for t in &report.tasks {
        println!(
            "  {}: n = {} ({} positive), nomogram over {}, training AUC {:.3}",
            t.task,
            t.fit.n,
            t.fit.n_positive,
            t.fit
                .nomogram
                .variables
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(" + "),
            t.fit.training_auc
        );
    }
    for f in &report.failed {
        println!("  skipped {} ({}): {}", f.case, f.stage, f.reason);
    }
    println!("package written to {}", a.out.display());
    ExitCode::SUCCESS
}

#[derive(Serialize)]
struct CohortMetrics<'a> {
    glioedge_version: &'a str,
    cohort: String,
    model: String,
    cases_found: usize,
    failed: &'a [glioedge::cohort::FailedCase],
    tasks: Vec<&'a glioedge::cohort::TaskValidation>,
}

#[derive(Serialize)]
struct TaskMetrics<'a> {
    glioedge_version: &'a str,
    source: String,
    task: &'a str,
    #[serde(flatten)]
    report: &'a glioedge::stats::report::ValidationReport,
}

/// `glioedge validate --cohort`.
#[allow(clippy::too_many_arguments)]
pub fn validate_cohort_cmd(
    cohort: &Path,
    labels: &Path,
    model: Option<&Path>,
    cache: Option<&Path>,
    out: &Path,
    bootstrap: usize,
    seed: u64,
    config: &Config,
) -> ExitCode {
    let labels = match CohortLabels::read(labels) {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    let cases = match list_cases(cohort) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    let rt = match Runtime::load(fixed_precision(config), model) {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let pkg = rt.engine.package();
    let Some(fitted) = rt.fitted.clone() else {
        return fail(&CohortError::Input(format!(
            "model package {} has no fitted tasks; run `glioedge fit` first",
            pkg.dir.display()
        )));
    };
    let seqs = match parse_sequences(&fitted.sequences) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if fitted.precision != rt.engine.precision().name() {
        eprintln!(
            "warning: the package was fitted on {} deep features; these are {}",
            fitted.precision,
            rt.engine.precision().name()
        );
    }
    let (feats, failed) = extract_cohort(&cases, &rt, &seqs, cache);
    let opts = ValidateOptions {
        bootstrap,
        seed,
        ..ValidateOptions::default()
    };
    let results = match validate_cohort(&fitted, &feats, &failed, &labels, &opts) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let source = format!(
        "{} with {} {}",
        cohort.display(),
        pkg.manifest.name,
        pkg.manifest.version
    );
    for (tv, y, inputs) in &results {
        let m = TaskMetrics {
            glioedge_version: glioedge::VERSION,
            source: source.clone(),
            task: &tv.task,
            report: &tv.report,
        };
        if let Err(code) = write_validation(
            &out.join(&tv.task),
            &tv.report,
            y,
            inputs,
            &format!("{source}, task {}", tv.task),
            &m,
        ) {
            return code;
        }
    }
    let all = CohortMetrics {
        glioedge_version: glioedge::VERSION,
        cohort: cohort.display().to_string(),
        model: format!("{} {}", pkg.manifest.name, pkg.manifest.version),
        cases_found: cases.len(),
        failed: &failed,
        tasks: results.iter().map(|(t, _, _)| t).collect(),
    };
    let json = match serde_json::to_vec_pretty(&all) {
        Ok(mut j) => {
            j.push(b'\n');
            j
        }
        Err(e) => {
            eprintln!("error: cannot render metrics.json: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = glioedge::report::write_atomic(&out.join("metrics.json"), &json) {
        return fail(&e);
    }
    if pkg.manifest.demo {
        println!("DEMO MODEL '{}' — not for clinical use", pkg.manifest.name);
    }
    for f in &failed {
        println!("skipped {} ({}): {}", f.case, f.stage, f.reason);
    }
    for (tv, _, _) in &results {
        let r = &tv.report;
        println!(
            "\ntask {}: {} cases ({} positive), {} left out",
            tv.task,
            r.n,
            r.n_positive,
            r.excluded.len()
        );
        print_table(r);
    }
    println!("written to {}", out.display());
    ExitCode::SUCCESS
}
