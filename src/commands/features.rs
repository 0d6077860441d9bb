//! `glioedge features`: PyRadiomics-parity radiomics of one image + mask, or of every sequence
//! of a case folder.

use std::path::PathBuf;
use std::process::ExitCode;

use glioedge::case::study::load_study;
use glioedge::case::CaseFiles;
use glioedge::config::Config;
use glioedge::error::{Classify, ErrorKind};
use glioedge::radiomics::output::{to_csv_rows, to_json, CSV_HEADER};
use glioedge::radiomics::provider::PyRadiomicsFilters;
use glioedge::radiomics::{extract, Extraction, Params};
use glioedge::volume::{read_nifti, StoredType, Volume};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `name value` lines.
    Table,
    /// JSON document.
    Json,
    /// CSV `feature,value,error`.
    Csv,
}

/// What to extract from.
#[derive(Debug, Clone)]
pub struct FeaturesArgs {
    /// A case folder (all sequences), or `None` with `image` + `mask`.
    pub case_dir: Option<PathBuf>,
    /// Image file.
    pub image: Option<PathBuf>,
    /// Mask file.
    pub mask: Option<PathBuf>,
    /// Overrides the parameter file's label.
    pub label: Option<i64>,
    /// PyRadiomics parameter file.
    pub params: Option<PathBuf>,
    /// Output format.
    pub format: Format,
}

fn fail(kind: ErrorKind, msg: &str, hint: Option<String>) -> ExitCode {
    eprintln!("error: {msg}");
    if let Some(h) = hint {
        eprintln!("hint: {h}");
    }
    ExitCode::from(kind.exit_code())
}

fn print(items: &[(String, Extraction)], format: Format) -> ExitCode {
    match format {
        Format::Json => {
            if items.len() == 1 && items[0].0.is_empty() {
                print!("{}", to_json(&items[0].1, ""));
            } else {
                println!("{{");
                for (k, (prefix, ex)) in items.iter().enumerate() {
                    let name = prefix.trim_end_matches('_');
                    let body = to_json(ex, prefix);
                    print!("\"{name}\": {}", body.trim_end());
                    println!("{}", if k + 1 < items.len() { "," } else { "" });
                }
                println!("}}");
            }
        }
        Format::Csv => {
            println!("{CSV_HEADER}");
            for (prefix, ex) in items {
                for row in to_csv_rows(ex, prefix) {
                    println!("{row}");
                }
            }
        }
        Format::Table => {
            for (prefix, ex) in items {
                for r in &ex.results {
                    match &r.value {
                        Ok(v) => println!("{prefix}{:<60} {v}", r.key),
                        Err(e) => println!("{prefix}{:<60} (no value: {e})", r.key),
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}

/// Runs the subcommand.
pub fn features(args: &FeaturesArgs, config: &Config) -> ExitCode {
    let mut params = match &args.params {
        Some(p) => match Params::from_file(p) {
            Ok(p) => p,
            Err(e) => return fail(e.kind(), &e.to_string(), e.hint()),
        },
        None => Params::default(),
    };
    if let Some(l) = args.label {
        params.settings.label = l;
    }
    match (&args.case_dir, &args.image, &args.mask) {
        (Some(dir), None, None) => {
            let files = match CaseFiles::discover(dir) {
                Ok(f) => f,
                Err(e) => return fail(e.kind(), &e.to_string(), e.hint()),
            };
            let study = match load_study(&files, config) {
                Ok(s) => s,
                Err(e) => return fail(e.kind(), &e.to_string(), e.hint()),
            };
            // The study's ROI (configured label selection) becomes label 1.
            params.settings.label = 1;
            let mask_data: Vec<f32> = study
                .roi
                .inside
                .iter()
                .map(|&b| if b { 1.0 } else { 0.0 })
                .collect();
            let mask = match Volume::new(study.grid, mask_data) {
                Ok(m) => m,
                Err(e) => return fail(ErrorKind::Internal, &e.to_string(), None),
            };
            let mut items = Vec::new();
            for (seq, image) in &study.images {
                let filters = PyRadiomicsFilters {
                    pixel: study
                        .files
                        .iter()
                        .find(|f| f.role == seq.name())
                        .map_or(StoredType::F32, |f| f.info.datatype),
                };
                match extract(image, &mask, &params, &filters) {
                    Ok(ex) => items.push((format!("{}_", seq.name()), ex)),
                    Err(e) => {
                        return fail(
                            e.kind(),
                            &format!("{} of case '{}': {e}", seq.name(), study.id),
                            e.hint(),
                        )
                    }
                }
            }
            print(&items, args.format)
        }
        (None, Some(image_path), Some(mask_path)) => {
            let max = config.limits.max_volume_bytes;
            // Both files are read (decompressed, hashed) at the same time.
            let t = std::time::Instant::now();
            let (image, mask) = rayon::join(
                || read_nifti(image_path, max),
                || read_nifti(mask_path, max),
            );
            let (image, image_info) = match image {
                Ok(r) => r,
                Err(e) => return fail(e.kind(), &e.to_string(), e.hint()),
            };
            let (mask, mask_info) = match mask {
                Ok(r) => r,
                Err(e) => return fail(e.kind(), &e.to_string(), e.hint()),
            };
            tracing::debug!(
                "features: image and mask read in {:.1} ms",
                t.elapsed().as_secs_f64() * 1e3
            );
            let pixel = image_info.datatype;
            match extract(&image, &mask, &params, &PyRadiomicsFilters { pixel }) {
                Ok(mut ex) => {
                    ex.diagnostics.image_sha256 = Some(image_info.sha256);
                    ex.diagnostics.mask_sha256 = Some(mask_info.sha256);
                    print(&[(String::new(), ex)], args.format)
                }
                Err(e) => fail(
                    e.kind(),
                    &format!(
                        "{} with mask {}: {e}",
                        image_path.display(),
                        mask_path.display()
                    ),
                    e.hint(),
                ),
            }
        }
        _ => fail(
            ErrorKind::BadInput,
            "give either a case folder, or --image and --mask (not both)",
            None,
        ),
    }
}

/// Command-line arguments of `glioedge features`.
#[derive(Debug, clap::Args)]
pub struct Cli {
    /// A case folder: features of every sequence inside the case ROI, names prefixed with the
    /// sequence (`t1c_original_glcm_Contrast`).
    #[arg(conflicts_with_all = ["image", "mask"])]
    pub case_dir: Option<PathBuf>,
    /// Image (NIfTI).
    #[arg(long, requires = "mask")]
    pub image: Option<PathBuf>,
    /// Mask (NIfTI) on the image's grid.
    #[arg(long, requires = "image")]
    pub mask: Option<PathBuf>,
    /// ROI label in the mask (overrides the parameter file; default 1).
    #[arg(long)]
    pub label: Option<i64>,
    /// PyRadiomics parameter file (YAML), read as it is.
    #[arg(long, value_name = "FILE.yaml")]
    pub params: Option<PathBuf>,
    /// JSON output (features, errors, diagnostics).
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV output (`feature,value,error`).
    #[arg(long)]
    pub csv: bool,
}

/// Entry point from `main`.
pub fn run(cli: &Cli, config: &Config) -> ExitCode {
    let args = FeaturesArgs {
        case_dir: cli.case_dir.clone(),
        image: cli.image.clone(),
        mask: cli.mask.clone(),
        label: cli.label,
        params: cli.params.clone(),
        format: if cli.json {
            Format::Json
        } else if cli.csv {
            Format::Csv
        } else {
            Format::Table
        },
    };
    features(&args, config)
}
