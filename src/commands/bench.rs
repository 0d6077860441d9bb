//! `glioedge bench case`: one case end to end, per-stage wall time and peak RSS.
//!
//! It measures what the service does — [`Runtime::load`] once, then [`run_case`] and the folder
//! writer for each case — so the figures are those of the shipped path, not of a
//! benchmark-only copy. (`glioedge run`, one case per process, does the same stages but loads
//! the case and computes its radiomics while the model loads.) The stage timings are the ones
//! `run_case` records in `result.json`; this command only repeats the case and summarises them. Peak RSS is the kernel's high-water
//! mark of this process (`VmHWM` in `/proc/self/status`, Linux), read after the last run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use glioedge::config::Config;
use glioedge::error::Classify;
use glioedge::pipeline::{run_case, Runtime};
use glioedge::report::{FolderSink, Sink};
use serde::Serialize;

/// Peak resident set size (`VmHWM`) of this process in MB; `None` where `/proc` has no such
/// line (not Linux).
pub fn peak_rss_mb() -> Option<f64> {
    proc_status_mb("VmHWM:")
}

/// Current resident set size (`VmRSS`) of this process in MB.
pub fn rss_mb() -> Option<f64> {
    proc_status_mb("VmRSS:")
}

fn proc_status_mb(key: &str) -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Median of a non-empty sample (upper median for even sizes); NaN for an empty one.
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Arguments of `glioedge bench case`.
#[derive(Debug, clap::Args)]
pub struct CaseArgs {
    /// The case folder (as for `glioedge run`).
    pub case_dir: PathBuf,
    /// Model package folder (default: the configured one).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// How many times the case is run (after loading the model once); medians are reported.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Write the result folder here (default: a scratch folder under the system temporary
    /// directory, removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct StageRow {
    stage: String,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct CaseBench {
    case_id: String,
    model: String,
    precision: String,
    inference_threads: usize,
    /// `auto`'s start-up measurement (ms per image), when it ran.
    auto_int8_ms: Option<f64>,
    auto_f32_ms: Option<f64>,
    runs: usize,
    /// Runtime::load: verify the package, decompress, optimise (and time both, for `auto`).
    load_model_ms: f64,
    stages: Vec<StageRow>,
    /// Sum of the stage medians (one case, model loaded).
    case_median_ms: f64,
    /// Model load + first case + first write: what one `glioedge run` costs after start-up.
    first_case_total_ms: f64,
    rss_after_load_mb: Option<f64>,
    peak_rss_mb: Option<f64>,
}

fn fail(e: &(impl Classify + std::fmt::Display)) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    ExitCode::from(e.kind().exit_code())
}

/// A scratch output folder we create and remove ourselves.
struct Scratch {
    dir: PathBuf,
    remove: bool,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.remove {
            // Best effort: a leftover scratch folder under the temporary directory is harmless.
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn scratch(out: Option<&Path>) -> Scratch {
    match out {
        Some(d) => Scratch {
            dir: d.to_path_buf(),
            remove: false,
        },
        None => Scratch {
            dir: std::env::temp_dir().join(format!("glioedge-bench-{}", std::process::id())),
            remove: true,
        },
    }
}

/// `glioedge bench case`.
pub fn case(args: &CaseArgs, config: &Config) -> ExitCode {
    let runs = args.runs.max(1);
    let t = Instant::now();
    let rt = match Runtime::load(config.clone(), args.model.as_deref()) {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let load_model_ms = t.elapsed().as_secs_f64() * 1e3;
    let rss_after_load_mb = rss_mb();
    let out = scratch(args.out.as_deref());
    let mut sink = FolderSink {
        out_dir: out.dir.clone(),
        bundle: false,
        replace: true,
    };
    // stage name → one time per run, in pipeline order, then the writer.
    let mut per_stage: Vec<(String, Vec<f64>)> = Vec::new();
    let mut record = |stage: &str, ms: f64| match per_stage.iter_mut().find(|(s, _)| s == stage) {
        Some((_, v)) => v.push(ms),
        None => per_stage.push((stage.to_owned(), vec![ms])),
    };
    let mut first_case_total_ms = f64::NAN;
    let mut last = None;
    for run in 0..runs {
        let t = Instant::now();
        let output = match run_case(&args.case_dir, &rt, &|_, _| {}) {
            Ok(o) => o,
            Err(e) => return fail(&e),
        };
        for s in &output.result.timings {
            record(&s.stage, s.ms);
        }
        let tw = Instant::now();
        if let Err(e) = sink.publish(&output) {
            return fail(&e);
        }
        record("write", tw.elapsed().as_secs_f64() * 1e3);
        if run == 0 {
            first_case_total_ms = load_model_ms + t.elapsed().as_secs_f64() * 1e3;
        }
        last = Some(output);
    }
    let Some(last) = last else {
        return ExitCode::from(1);
    };
    let stages: Vec<StageRow> = per_stage
        .into_iter()
        .map(|(stage, v)| StageRow {
            stage,
            median_ms: median(v.clone()),
            min_ms: v.iter().copied().fold(f64::INFINITY, f64::min),
            max_ms: v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
        .collect();
    let auto = rt.engine.auto_choice();
    let report = CaseBench {
        case_id: last.result.case_id.clone(),
        model: rt.model_summary().name,
        precision: last.result.precision.clone(),
        inference_threads: rt.engine.threads(),
        auto_int8_ms: auto.map(|a| a.int8_ms),
        auto_f32_ms: auto.map(|a| a.f32_ms),
        runs,
        load_model_ms,
        case_median_ms: stages.iter().map(|s| s.median_ms).sum(),
        stages,
        first_case_total_ms,
        rss_after_load_mb,
        peak_rss_mb: peak_rss_mb(),
    };
    if args.json {
        return match serde_json::to_string_pretty(&report) {
            Ok(s) => {
                println!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: cannot render JSON: {e}");
                ExitCode::from(1)
            }
        };
    }
    println!(
        "case {} · model {} · precision {} · {} inference threads · {} run(s)",
        report.case_id, report.model, report.precision, report.inference_threads, report.runs
    );
    if let (Some(a), Some(b)) = (report.auto_int8_ms, report.auto_f32_ms) {
        println!("auto at load: int8 {a:.1} ms, f32 {b:.1} ms per image");
    }
    println!(
        "{:<12} {:>11} {:>11} {:>11}",
        "stage", "median ms", "min ms", "max ms"
    );
    println!("{:<12} {:>11.1}", "model load", report.load_model_ms);
    for s in &report.stages {
        println!(
            "{:<12} {:>11.1} {:>11.1} {:>11.1}",
            s.stage, s.median_ms, s.min_ms, s.max_ms
        );
    }
    println!("{:<12} {:>11.1}", "case total", report.case_median_ms);
    println!(
        "{:<12} {:>11.1}   (model load + first case + write)",
        "first case", report.first_case_total_ms
    );
    match (report.rss_after_load_mb, report.peak_rss_mb) {
        (Some(a), Some(p)) => println!("RSS after model load {a:.0} MB; peak RSS {p:.0} MB"),
        _ => println!("RSS: not available on this system"),
    }
    ExitCode::SUCCESS
}
