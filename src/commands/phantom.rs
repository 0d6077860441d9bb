//! `glioedge phantom`: generate a synthetic labelled cohort, or preview one case.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use glioedge::config::Config;
use glioedge::error::Classify;
use glioedge::phantom::{
    generate_cohort, preview::preview, CohortOptions, GridKind, Params, PhantomError, Task,
};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GridArg {
    /// 240×240×155, 1 mm, LPS, all sequences on one grid, skull-stripped (like BraTS).
    Brats,
    /// Anisotropic oblique scanner grids, one per series (like the raw TCGA case).
    Raw,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TaskArg {
    /// Half untreated (IDH, Ki-67), half after chemoradiation (TP vs PsP).
    All,
    /// Untreated cases only.
    IdhKi67,
    /// Post-treatment cases only.
    TpPsp,
}

/// Arguments of `glioedge phantom`.
#[derive(Debug, Args)]
pub struct PhantomArgs {
    /// Output folder: the cohort folder, or with --preview the PNG file.
    #[arg(long, value_name = "PATH")]
    out: PathBuf,
    /// Number of cases to generate.
    #[arg(long, required_unless_present = "preview")]
    cases: Option<usize>,
    /// Seed: the same seed and generator version give byte-identical files.
    #[arg(long, required_unless_present = "preview")]
    seed: Option<u64>,
    /// Grid of the images.
    #[arg(long, value_enum, default_value = "brats")]
    grid: GridArg,
    /// Which cases the cohort holds.
    #[arg(long, value_enum, default_value = "all")]
    task: TaskArg,
    /// Effect size of IDH status on the imaging (latent-score shift in SDs).
    #[arg(long, default_value_t = Params::default().effect_idh)]
    effect_idh: f64,
    /// Effect size of Ki-67.
    #[arg(long, default_value_t = Params::default().effect_ki67)]
    effect_ki67: f64,
    /// Effect size of true progression vs pseudoprogression.
    #[arg(long, default_value_t = Params::default().effect_tp)]
    effect_tp: f64,
    /// Probability that a recorded label is flipped.
    #[arg(long, default_value_t = Params::default().label_noise)]
    label_noise: f64,
    /// Instead of generating, render a montage PNG of this case folder to --out.
    #[arg(long, value_name = "CASE_DIR", conflicts_with_all = ["cases", "seed"])]
    preview: Option<PathBuf>,
}

fn fail(e: &PhantomError) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    ExitCode::from(e.kind().exit_code())
}

/// `glioedge phantom`.
pub fn phantom(args: PhantomArgs, config: &Config) -> ExitCode {
    if let Some(case) = &args.preview {
        return match preview(case, &args.out, config) {
            Ok(info) => {
                println!(
                    "{}: axial slice {} (labels 1/2/3: {}/{}/{} pixels), {}x{} px",
                    args.out.display(),
                    info.slice,
                    info.label_pixels[0],
                    info.label_pixels[1],
                    info.label_pixels[2],
                    info.size.0,
                    info.size.1
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        };
    }
    let (Some(cases), Some(seed)) = (args.cases, args.seed) else {
        eprintln!("error: --cases and --seed are required");
        return ExitCode::from(2);
    };
    let opts = CohortOptions {
        cases,
        seed,
        grid: match args.grid {
            GridArg::Brats => GridKind::Brats,
            GridArg::Raw => GridKind::Raw,
        },
        task: match args.task {
            TaskArg::All => Task::All,
            TaskArg::IdhKi67 => Task::IdhKi67,
            TaskArg::TpPsp => Task::TpPsp,
        },
        params: Params {
            effect_idh: args.effect_idh,
            effect_ki67: args.effect_ki67,
            effect_tp: args.effect_tp,
            label_noise: args.label_noise,
            ..Params::default()
        },
    };
    let start = Instant::now();
    let res = generate_cohort(&args.out, &opts, |spec| {
        let t = &spec.truth;
        eprintln!(
            "{}  idh_mutant={} ki67_high={} post_treatment={} true_progression={}  ({} lesion, {:?})",
            spec.id,
            u8::from(t.idh_mutant),
            u8::from(t.ki67_high),
            u8::from(t.post_treatment),
            t.true_progression
                .map(|b| u8::from(b).to_string())
                .unwrap_or_else(|| "-".into()),
            spec.subject.tumour.lobe,
            spec.subject.tumour.pattern
        );
    });
    match res {
        Ok(s) => {
            println!(
                "{} cases written to {} in {:.1} s (labels.csv, cohort.toml)",
                s.case_ids.len(),
                args.out.display(),
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    }
}
