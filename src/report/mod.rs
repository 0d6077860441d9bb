//! Writing a case's result folder.
//!
//! Output goes through the [`Sink`] trait (as ripgrep's searcher writes through its `Sink`), so a
//! DICOM or PACS target can be added beside the folder writer later. The folder writer,
//! [`FolderSink`], never exposes a partial result: it builds `OUT/.<id>.partial-<pid>/`, writing
//! each file under a temporary name and renaming it, fsyncs, and renames the whole folder to
//! `OUT/<id>/` at the end. A crash leaves at most a hidden `.partial` folder, never a half
//! result under the case's name.
//!
//! Files: `result.json` ([`result::CaseResult`]), `report.html` ([`html`]), `features.csv`,
//! `overlays/*.png` ([`overlay`]), and on request `<id>.tar.zst` (the folder, zstd-compressed).

pub mod html;
pub mod overlay;
pub mod result;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Classify, ErrorKind};
use overlay::Overlay;
use result::CaseResult;

/// Failure to write a result.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A filesystem operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// Serialisation or rendering failed.
    #[error("rendering {what}: {message}")]
    Render {
        /// What was rendered.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
}

impl Classify for ReportError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }

    fn hint(&self) -> Option<String> {
        Some("check free disk space and permissions of the output folder".into())
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Everything a case produced, ready to be written.
#[derive(Debug, Clone)]
pub struct CaseOutput {
    /// The structured result.
    pub result: CaseResult,
    /// Feature name → value (PyRadiomics names prefixed by sequence, and `dl_*`), sorted.
    pub features: BTreeMap<String, f64>,
    /// Rendered pictures.
    pub overlays: Vec<Overlay>,
}

/// Where results go.
pub trait Sink {
    /// Publishes one case's output; returns where it went.
    fn publish(&mut self, output: &CaseOutput) -> Result<PathBuf, ReportError>;
}

/// Writes `OUT/<case-id>/`.
#[derive(Debug, Clone)]
pub struct FolderSink {
    /// The output folder.
    pub out_dir: PathBuf,
    /// Also write `<case-id>.tar.zst` inside the case folder.
    pub bundle: bool,
    /// Replace an existing `OUT/<case-id>/` (the CLI does; the spool picks a new name instead).
    pub replace: bool,
}

/// Writes `bytes` to `path` through a temporary name in the same directory, fsynced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = crate::volume::io::temp_path(path);
    let res = (|| -> io::Result<()> {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io_err(path))
}

fn sync_dir(dir: &Path) -> Result<(), ReportError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// `features.csv`: `feature,value`, one row per feature, values printed so that they parse back
/// to the same `f64`.
pub fn features_csv(features: &BTreeMap<String, f64>) -> String {
    let mut s = String::from("feature,value\n");
    for (k, v) in features {
        s.push_str(k);
        s.push(',');
        if v.is_finite() {
            s.push_str(&format!("{v:?}"));
        }
        s.push('\n');
    }
    s
}

/// The result as pretty JSON with a trailing newline.
pub fn result_json(result: &CaseResult) -> Result<Vec<u8>, ReportError> {
    let mut v = serde_json::to_vec_pretty(result).map_err(|e| ReportError::Render {
        what: "result.json",
        message: e.to_string(),
    })?;
    v.push(b'\n');
    Ok(v)
}

/// Writes every file of a case (`result.json`, `report.html`, `features.csv`, `overlays/*.png`,
/// and with `bundle` `<case-id>.tar.zst`) into the existing folder `dir`, each through a
/// temporary name; returns the files written, relative to `dir`, in writing order.
pub fn write_case_files(
    dir: &Path,
    output: &CaseOutput,
    with_bundle: bool,
) -> Result<Vec<PathBuf>, ReportError> {
    let id = &output.result.case_id;
    let mut written = Vec::new();
    std::fs::create_dir_all(dir.join("overlays")).map_err(io_err(dir))?;
    write_atomic(&dir.join("result.json"), &result_json(&output.result)?)?;
    written.push(PathBuf::from("result.json"));
    let page = html::render(&output.result, &output.overlays).map_err(|e| ReportError::Render {
        what: "report.html",
        message: e.to_string(),
    })?;
    write_atomic(&dir.join("report.html"), page.as_bytes())?;
    written.push(PathBuf::from("report.html"));
    write_atomic(
        &dir.join("features.csv"),
        features_csv(&output.features).as_bytes(),
    )?;
    written.push(PathBuf::from("features.csv"));
    for o in &output.overlays {
        write_atomic(&dir.join("overlays").join(&o.file), &o.png)?;
        written.push(Path::new("overlays").join(&o.file));
    }
    sync_dir(&dir.join("overlays"))?;
    if with_bundle {
        let bytes = bundle(dir, id)?;
        let name = format!("{id}.tar.zst");
        write_atomic(&dir.join(&name), &bytes)?;
        written.push(PathBuf::from(name));
    }
    sync_dir(dir)?;
    Ok(written)
}

impl Sink for FolderSink {
    fn publish(&mut self, output: &CaseOutput) -> Result<PathBuf, ReportError> {
        let id = &output.result.case_id;
        std::fs::create_dir_all(&self.out_dir).map_err(io_err(&self.out_dir))?;
        let stage = self
            .out_dir
            .join(format!(".{id}.partial-{}", std::process::id()));
        if stage.exists() {
            std::fs::remove_dir_all(&stage).map_err(io_err(&stage))?;
        }
        write_case_files(&stage, output, self.bundle)?;
        sync_dir(&stage)?;
        let dest = self.out_dir.join(id);
        if dest.exists() && self.replace {
            let old = self
                .out_dir
                .join(format!(".{id}.old-{}", std::process::id()));
            std::fs::rename(&dest, &old).map_err(io_err(&dest))?;
            std::fs::rename(&stage, &dest).map_err(io_err(&dest))?;
            std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
        } else {
            std::fs::rename(&stage, &dest).map_err(io_err(&dest))?;
        }
        sync_dir(&self.out_dir)?;
        Ok(dest)
    }
}

/// A deterministic `tar.zst` of the folder's files (sorted names, zero mtimes, fixed modes).
pub fn bundle(dir: &Path, id: &str) -> Result<Vec<u8>, ReportError> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut builder = tar::Builder::new(Vec::new());
    for rel in files {
        let path = dir.join(&rel);
        let data = std::fs::read(&path).map_err(io_err(&path))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        let name = Path::new(id).join(&rel);
        builder
            .append_data(&mut header, &name, data.as_slice())
            .map_err(io_err(&path))?;
    }
    let tar = builder.into_inner().map_err(io_err(dir))?;
    zstd::encode_all(tar.as_slice(), 9).map_err(io_err(dir))
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), ReportError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.ends_with(".tar.zst") {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, out)?;
        } else if let Ok(rel) = path.strip_prefix(root) {
            out.push(rel.to_path_buf());
        }
    }
    Ok(())
}
