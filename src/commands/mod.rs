//! Subcommand bodies: each turns library results into output and an exit code.

pub mod features;
pub mod fit;
pub mod model;
pub mod run;
pub mod serve;
pub mod validate;

use std::path::Path;
use std::process::ExitCode;

use glioedge::case::study::{load_study, FileReport, GridRelation, LabelStat};
use glioedge::case::{CaseError, CaseFiles};
use glioedge::config::Config;
use glioedge::error::Classify;
use serde::Serialize;

pub mod phantom;

pub mod bench;

fn fail(e: &CaseError) -> ExitCode {
    eprintln!("error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("hint: {h}");
    }
    ExitCode::from(e.kind().exit_code())
}

#[derive(Serialize)]
struct InspectReport<'a> {
    case_id: &'a str,
    reference_sequence: &'a str,
    reference_grid: &'a glioedge::volume::Grid,
    files: &'a [FileReport],
    mask_labels: &'a [LabelStat],
    roi_voxels: usize,
    roi_label_selection: &'a glioedge::volume::mask::LabelSelection,
    warnings: &'a [String],
}

/// `glioedge inspect`.
pub fn inspect(dir: &Path, json: bool, config: &Config) -> ExitCode {
    let files = match CaseFiles::discover(dir) {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let study = match load_study(&files, config) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let report = InspectReport {
        case_id: &study.id,
        reference_sequence: study.reference.name(),
        reference_grid: &study.grid,
        files: &study.files,
        mask_labels: &study.label_stats,
        roi_voxels: study.roi.count(),
        roi_label_selection: &study.label_selection,
        warnings: &study.warnings,
    };
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot render JSON: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    println!("case {}  (reference grid: {})", study.id, study.reference);
    println!(
        "{:<7} {:<34} {:>15} {:>21} {:<8} {:<4} {:>5} {:>5} {:>22}  grid",
        "role", "file", "shape", "voxel (mm)", "type", "ori", "qform", "sform", "range"
    );
    for f in &study.files {
        let name = f
            .info
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let range = f
            .intensity_range
            .map(|(a, b)| format!("{a:.6} .. {b:.6}"))
            .unwrap_or_else(|| "-".into());
        let grid = match &f.grid {
            GridRelation::Reference => "reference".to_string(),
            GridRelation::SameGrid { .. } => "same grid".to_string(),
            GridRelation::Resampled {
                max_corner_displacement_mm,
                interpolation,
            } => {
                format!("resampled onto reference ({interpolation:?}, corners up to {max_corner_displacement_mm:.2} mm apart)")
            }
        };
        println!(
            "{:<7} {:<34} {:>15} {:>21} {:<8} {:<4} {:>5} {:>5} {:>22}  {}",
            f.role,
            name,
            format!("{}x{}x{}", f.shape[0], f.shape[1], f.shape[2]),
            format!("{:.4}x{:.4}x{:.4}", f.zooms[0], f.zooms[1], f.zooms[2]),
            f.info.datatype.name(),
            f.orientation,
            f.info.qform_code,
            f.info.sform_code,
            range,
            grid
        );
    }
    println!("mask labels:");
    for l in &study.label_stats {
        println!(
            "  label {:>3}: {:>9} voxels  {:>9.2} mL",
            l.label, l.voxels, l.volume_ml
        );
    }
    println!(
        "ROI ({:?}): {} voxels on the reference grid",
        study.label_selection,
        study.roi.count()
    );
    for w in &study.warnings {
        println!("warning: {w}");
    }
    ExitCode::SUCCESS
}
