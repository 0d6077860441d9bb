//! `glioedge validate --scores FILE.csv --label COL --score COL [--score COL …] --out DIR`:
//! the seeds' validation table for scores computed anywhere (another centre's model, readers'
//! ratings with and without the nomogram). Rows with a missing or non-0/1 label or a missing
//! score are left out and listed, and the rest is analysed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use glioedge::error::Classify;
use glioedge::report::write_atomic;
use glioedge::stats::report::{validate_scores, Excluded, ScoreInput, ValidateOptions};
use glioedge::stats::table::Table;
use serde::Serialize;

fn fail(e: &dyn Classify, msg: String) -> ExitCode {
    eprintln!("error: {msg}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    ExitCode::from(e.kind().exit_code())
}

#[derive(Serialize)]
struct Metrics<'a> {
    glioedge_version: &'a str,
    source: String,
    score_columns: &'a [String],
    #[serde(flatten)]
    report: &'a glioedge::stats::report::ValidationReport,
}

/// `glioedge validate`: the seeds' validation table for labelled scores.
///
/// Per score: AUC with DeLong CI, Youden operating point (sensitivity, specificity, accuracy),
/// and for probabilities Hosmer–Lemeshow, calibration slope/intercept, Brier and the decision
/// curve; per later score: paired DeLong test and NRI over the first. Writes metrics.json,
/// validation.csv, ROC/calibration/decision-curve plots (SVG, PNG) and report.html into --out.
///
/// With `--cohort DIR --labels labels.csv [--model PKG]` instead: runs the feature extraction
/// on every case and, per fitted task of the package, the seeds' table of the clinical-only
/// model, rad-score, DL-score and nomogram (comparisons: the nomogram against each), into
/// `--out/<task>/`, with `--out/metrics.json` over all tasks.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// CSV with one row per case.
    #[arg(
        long,
        value_name = "FILE.csv",
        conflicts_with = "cohort",
        required_unless_present = "cohort"
    )]
    scores: Option<PathBuf>,
    /// Label column (0/1; rows with a missing label are left out and listed).
    #[arg(long, required_unless_present = "cohort")]
    label: Option<String>,
    /// Score column (repeat; the first is the reference of the comparisons).
    #[arg(long = "score", required_unless_present = "cohort")]
    score: Vec<String>,
    /// A cohort folder of case folders (instead of --scores).
    #[arg(long, value_name = "DIR", requires = "labels")]
    cohort: Option<PathBuf>,
    /// `labels.csv` of the cohort (case_id, idh_mutant, ki67_high, post_treatment,
    /// true_progression).
    #[arg(long, value_name = "FILE.csv")]
    labels: Option<PathBuf>,
    /// Fitted model package (default: the configured one).
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Keep each case's extracted features here and reuse them.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Case-id column (default `id` if present, else row numbers).
    #[arg(long)]
    id: Option<String>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Stratified bootstrap resamples for the AUC CI and the ROC band (0: none).
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Bootstrap seed.
    #[arg(long, default_value_t = 20261122)]
    seed: u64,
}

/// Runs `glioedge validate`.
pub fn run(a: &ValidateArgs, config: &glioedge::config::Config) -> ExitCode {
    if let (Some(cohort), Some(labels)) = (&a.cohort, &a.labels) {
        return crate::commands::fit::validate_cohort_cmd(
            cohort,
            labels,
            a.model.as_deref(),
            a.cache.as_deref(),
            &a.out,
            a.bootstrap,
            a.seed,
            config,
        );
    }
    let (Some(scores), Some(label)) = (&a.scores, &a.label) else {
        eprintln!(
            "error: give --scores FILE --label COL --score COL…, or --cohort DIR --labels FILE"
        );
        return ExitCode::from(2);
    };
    validate_scores_cmd(&ScoresArgs {
        file: scores,
        label,
        scores: &a.score,
        id: a.id.as_deref(),
        out: &a.out,
        bootstrap: a.bootstrap,
        seed: a.seed,
    })
}

/// Arguments of `validate --scores`.
#[derive(Debug)]
pub struct ScoresArgs<'a> {
    /// The CSV.
    pub file: &'a Path,
    /// Label column (0/1).
    pub label: &'a str,
    /// Score columns; the first is the reference of the comparisons.
    pub scores: &'a [String],
    /// Case-id column (default: `id` when present, else the row number).
    pub id: Option<&'a str>,
    /// Output folder.
    pub out: &'a Path,
    /// Bootstrap resamples (0: none).
    pub bootstrap: usize,
    /// Bootstrap seed.
    pub seed: u64,
}

/// `glioedge validate --scores`.
pub fn validate_scores_cmd(a: &ScoresArgs<'_>) -> ExitCode {
    if a.scores.is_empty() {
        eprintln!("error: give at least one --score column");
        return ExitCode::from(2);
    }
    let table = match Table::read(a.file) {
        Ok(t) => t,
        Err(e) => return fail(&e, e.to_string()),
    };
    let labels = match table.numeric(a.label) {
        Ok(v) => v,
        Err(e) => return fail(&e, e.to_string()),
    };
    let mut cols = Vec::new();
    for s in a.scores {
        match table.numeric(s) {
            Ok(v) => cols.push(v),
            Err(e) => return fail(&e, e.to_string()),
        }
    }
    let id_col = match a.id {
        Some(c) => match table.column_index(c) {
            Ok(j) => Some(j),
            Err(e) => return fail(&e, e.to_string()),
        },
        None => table.column_index("id").ok(),
    };
    let mut y = Vec::new();
    let mut values: Vec<Vec<f64>> = vec![Vec::new(); a.scores.len()];
    let mut excluded = Vec::new();
    for (i, row) in table.rows.iter().enumerate() {
        let case = id_col.map_or_else(|| format!("row {}", i + 2), |j| row[j].clone());
        let reason = match labels[i] {
            None => Some(format!("label '{}' missing", a.label)),
            Some(v) if v != 0.0 && v != 1.0 => Some(format!("label {v} is not 0 or 1")),
            Some(_) => a
                .scores
                .iter()
                .zip(&cols)
                .find(|(_, c)| c[i].is_none())
                .map(|(s, _)| format!("score '{s}' missing")),
        };
        if let Some(reason) = reason {
            eprintln!("warning: {case} left out: {reason}");
            excluded.push(Excluded { case, reason });
            continue;
        }
        y.push(labels[i].unwrap_or_default());
        for (k, c) in cols.iter().enumerate() {
            values[k].push(c[i].unwrap_or_default());
        }
    }
    let inputs: Vec<ScoreInput> = a
        .scores
        .iter()
        .zip(values)
        .map(|(name, values)| ScoreInput {
            name: name.clone(),
            values,
        })
        .collect();
    let opts = ValidateOptions {
        bootstrap: a.bootstrap,
        seed: a.seed,
        ..ValidateOptions::default()
    };
    let report = match validate_scores(a.label, &y, &inputs, excluded, &opts) {
        Ok(r) => r,
        Err(e) => return fail(&e, format!("{}: {e}", a.file.display())),
    };
    let source = a.file.display().to_string();
    let metrics = Metrics {
        glioedge_version: glioedge::VERSION,
        source: source.clone(),
        score_columns: a.scores,
        report: &report,
    };
    if let Err(code) = write_validation(a.out, &report, &y, &inputs, &source, &metrics) {
        return code;
    }
    println!(
        "{}: {} cases ({} positive), {} left out",
        source,
        report.n,
        report.n_positive,
        report.excluded.len()
    );
    print_table(&report);
    println!("written to {}", a.out.display());
    ExitCode::SUCCESS
}

/// Prints the table of a report.
pub fn print_table(report: &glioedge::stats::report::ValidationReport) {
    println!(
        "{:<20} {:>22} {:>6} {:>6} {:>6} {:>10} {:>8} {:>7} {:>8}",
        "score", "AUC (95% CI)", "sens", "spec", "acc", "DeLong p", "HL p", "Brier", "NRI"
    );
    for m in &report.scores {
        let cmp = report.comparison_for(&m.name);
        let cal = m.calibration.as_ref();
        println!(
            "{:<20} {:>22} {:>6.3} {:>6.3} {:>6.3} {:>10} {:>8} {:>7} {:>8}",
            m.name,
            format!("{:.3} ({:.3}-{:.3})", m.roc.auc, m.roc.ci[0], m.roc.ci[1]),
            m.operating_point.sensitivity,
            m.operating_point.specificity,
            m.operating_point.accuracy,
            cmp.map_or("-".into(), |c| format!("{:.2e}", c.delong.p)),
            cal.and_then(|c| c.hosmer_lemeshow.as_ref())
                .map_or("-".into(), |h| format!("{:.3}", h.p)),
            cal.map_or("-".into(), |c| format!("{:.4}", c.brier)),
            cmp.and_then(|c| c.nri.as_ref())
                .map_or("-".into(), |n| format!("{:.3}", n.categorical)),
        );
    }
}

/// Writes metrics.json (`metrics`), validation.csv, report.html and the charts into `out`.
pub fn write_validation(
    out: &Path,
    report: &glioedge::stats::report::ValidationReport,
    y: &[f64],
    inputs: &[ScoreInput],
    source: &str,
    metrics: &impl Serialize,
) -> Result<(), ExitCode> {
    let charts = match report.charts(y, inputs) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot draw the charts: {e}");
            return Err(ExitCode::from(1));
        }
    };
    let json = match serde_json::to_vec_pretty(metrics) {
        Ok(mut j) => {
            j.push(b'\n');
            j
        }
        Err(e) => {
            eprintln!("error: cannot render metrics.json: {e}");
            return Err(ExitCode::from(1));
        }
    };
    if let Err(e) = std::fs::create_dir_all(out) {
        eprintln!("error: cannot create '{}': {e}", out.display());
        return Err(ExitCode::from(1));
    }
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("metrics.json".into(), json),
        ("validation.csv".into(), report.csv().into_bytes()),
        (
            "report.html".into(),
            report.html(&charts, source).into_bytes(),
        ),
    ];
    for (name, r) in &charts {
        files.push((format!("{name}.svg"), r.svg.clone().into_bytes()));
        files.push((format!("{name}.png"), r.png.clone()));
    }
    for (name, bytes) in &files {
        if let Err(e) = write_atomic(&out.join(name), bytes) {
            return Err(fail(&e, e.to_string()));
        }
    }
    Ok(())
}
