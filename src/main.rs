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
    /// PyRadiomics-parity radiomics features of an image + mask, or of every sequence of a case.
    Features(commands::features::Cli),
    /// Analyse one case folder end to end and write its result folder (result.json,
    /// report.html, features.csv, overlays). Exits 0 on success, 2 on bad input, 1 on an
    /// internal error.
    Run(commands::run::RunArgs),
    /// Run the appliance: watch the spool's inbox, process each case exactly once, serve the
    /// status page (127.0.0.1:8080 by default). Stops gracefully on SIGTERM.
    Serve,
    /// Validate labelled scores, or a fitted package on a labelled cohort (AUC + DeLong,
    /// calibration, decision curve, NRI) into a folder.
    Validate(commands::validate::ValidateArgs),
    /// Fit a model package's signatures, heads and nomograms on a labelled cohort.
    Fit(commands::fit::FitArgs),
    /// Generate a deterministic synthetic labelled cohort (or preview one case as a PNG).
    Phantom(commands::phantom::PhantomArgs),
    /// Model packages: show (`info`) or check (`verify`) one.
    Model(commands::model::ModelArgs),
    /// Benchmarks (`bench inference`).
    Bench(commands::model::BenchArgs),
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

/// mimalloc instead of glibc malloc: a smaller peak (no per-thread arenas) and page reuse.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
        Command::Features(args) => commands::features::run(&args, &config),
        Command::Run(args) => commands::run::run(&args, &config),
        Command::Serve => commands::serve::serve(&config),
        Command::Validate(args) => commands::validate::run(&args, &config),
        Command::Fit(args) => commands::fit::fit(&args, &config),
        Command::Phantom(args) => commands::phantom::phantom(args, &config),
        Command::Model(a) => commands::model::model(a, &config),
        Command::Bench(a) => commands::model::bench(a, &config),
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
