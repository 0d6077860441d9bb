//! The `glioedge` command line.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use glioedge::config::Config;
use glioedge::error::Classify;

mod commands;

/// glioedge: glioma MRI analysis on a small CPU-only box beside the scanner.
///
/// A case is a folder with one NIfTI file per MRI sequence (t1c, t2, flair, t1, adc, cbf),
/// a tumour mask, and optionally clinical.toml. Nothing leaves the machine.
#[derive(Debug, Parser)]
#[command(name = "glioedge", version, about, long_about)]
struct Cli {
    /// Configuration file (TOML). Without it the built-in defaults are used; see `config print`.
    #[arg(long, global = true, env = "GLIOEDGE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a case folder without analysing it: files found, image sizes, voxel sizes,
    /// orientation, mask labels and volumes, and whether the series share one grid.
    ///
    /// Exits 0 when the case is usable, 2 with a one-line reason when it is not.
    Inspect {
        /// The case folder.
        case_dir: PathBuf,
        /// Print machine-readable JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Validate labelled scores: AUC with DeLong CI, operating point, calibration,
    /// decision curve; paired DeLong tests and NRI of each later score over the first.
    /// Writes metrics.json, validation.csv, ROC/calibration/decision-curve plots (SVG, PNG)
    /// and report.html into --out.
    Validate {
        /// CSV with one row per case.
        #[arg(long, value_name = "FILE.csv")]
        scores: PathBuf,
        /// Label column (0/1; rows with a missing label are left out and listed).
        #[arg(long)]
        label: String,
        /// Score column (repeat; the first is the reference of the comparisons).
        #[arg(long = "score", required = true)]
        score: Vec<String>,
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
    },
    /// Show or check the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Print the effective configuration (file values merged over the built-in defaults).
    Print,
    /// Check a configuration file and exit 0 if it is valid.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GLIOEDGE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            return ExitCode::from(e.kind().exit_code());
        }
    };
    match cli.command {
        Command::Inspect { case_dir, json } => commands::inspect(&case_dir, json, &config),
        Command::Validate {
            scores,
            label,
            score,
            id,
            out,
            bootstrap,
            seed,
        } => commands::validate::validate_scores_cmd(&commands::validate::ScoresArgs {
            file: &scores,
            label: &label,
            scores: &score,
            id: id.as_deref(),
            out: &out,
            bootstrap,
            seed,
        }),
        Command::Config {
            action: ConfigAction::Print,
        } => {
            print!("{}", config.to_toml());
            ExitCode::SUCCESS
        }
        Command::Config {
            action: ConfigAction::Check,
        } => {
            match &config.source {
                Some(p) => println!("{}: valid", p.display()),
                None => println!("no configuration file given; the built-in defaults are valid"),
            }
            ExitCode::SUCCESS
        }
    }
}
