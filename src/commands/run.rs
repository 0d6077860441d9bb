//! `glioedge run`: one case end to end.

use std::path::PathBuf;
use std::process::ExitCode;

use glioedge::config::Config;
use glioedge::error::Classify;
use glioedge::pipeline::{headline, load_case, run_loaded, PipelineError, Runtime, Stage};
use glioedge::report::{FolderSink, Sink};

/// Arguments of `glioedge run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The case folder (one NIfTI file per sequence, a mask, optionally clinical.toml).
    pub case_dir: PathBuf,
    /// Model package folder (default: the configured one, `models/demo-convnext-tiny`).
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,
    /// Where the result folder `<case-id>/` is written.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub out: PathBuf,
    /// Also write `<case-id>.tar.zst` of the whole result folder.
    #[arg(long)]
    pub bundle: bool,
}

fn fail(e: &(impl Classify + std::fmt::Display)) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    ExitCode::from(e.kind().exit_code())
}

/// Runs the case and writes its result folder; exit 0 ok, 2 bad input, 1 internal error.
pub fn run(args: &RunArgs, config: &Config) -> ExitCode {
    // While the model loads, the case is loaded and its radiomics computed (neither needs the
    // model; one process runs one case, so nothing is gained by waiting for the model first).
    // A model error is reported before a case error.
    let (rt, case) = std::thread::scope(|scope| {
        let model = scope.spawn(|| Runtime::load(config.clone(), args.model.as_deref()));
        let case = load_case(&args.case_dir, config, &|_, _| {})
            .and_then(|c| c.with_radiomics(&Runtime::radiomics_settings(), &|_, _| {}));
        let rt = model.join().unwrap_or_else(|_| {
            Err(PipelineError::internal(
                Stage::Load,
                "loading the model: thread panicked",
            ))
        });
        (rt, case)
    });
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => return fail(&e),
    };
    let output = match case.and_then(|case| run_loaded(case, &rt, &|_, _| {})) {
        Ok(o) => o,
        Err(e) => return fail(&e),
    };
    let mut sink = FolderSink {
        out_dir: args.out.clone(),
        bundle: args.bundle,
        replace: true,
    };
    let dir = match sink.publish(&output) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let r = &output.result;
    if r.model.demo {
        println!("DEMO MODEL '{}' — not for clinical use", r.model.name);
    }
    println!("case {}: {}", r.case_id, headline(r));
    for t in &r.tasks {
        match (t.probability, &t.reason) {
            (Some(p), _) => println!(
                "  {:<40} p = {p:.3} (threshold {:.2})",
                t.title, t.threshold
            ),
            (None, Some(why)) => println!("  {:<40} not assessable: {why}", t.title),
            (None, None) => println!("  {:<40} not assessable", t.title),
        }
    }
    for w in &r.warnings {
        println!("  warning: {w}");
    }
    let total: f64 = r.timings.iter().map(|t| t.ms).sum();
    println!("  precision {}, {:.1} s", r.precision, total / 1e3);
    println!("{}", dir.display());
    ExitCode::SUCCESS
}
