//! The drop folder as a crash-safe state machine on disk.
//!
//! ```text
//! inbox/<name>/  ──claim (rename)──▶  work/<id>/  ──▶  outbox/<id>/   result + spool.json
//!                                        │        └─▶  failed/<id>/   inputs + error.json
//!                                        └── tmp/<id>/ (the processor's output, renamed on success)
//! ```
//!
//! Every transition is one `rename(2)` inside one file system, followed by an fsync of the
//! directories involved, so a power cut leaves each case in exactly one state:
//!
//! * **Intake.** An inbox entry is taken when it holds a `READY` file or nothing in it changed
//!   for `spool.quiet_seconds` — never half-copied. Names starting with `.` are ignored (the
//!   temporary names of rsync and scp). Entries that are not folders (a stray file, a symlink)
//!   are claimed too, and then failed with a reason, so the inbox never silently fills up.
//! * **Claim.** `inbox/<name>` is renamed to `work/<id>`, where `<id>` is the sanitised name
//!   (non-UTF-8 and path characters replaced, see [`crate::case::sanitize_id`]) made unique
//!   against every folder of the spool with a `-2`, `-3`… suffix: a case never overwrites an
//!   earlier result. A claim file `work/<id>/.glioedge-claim.json` then records the original
//!   name, a unique token and how often processing was started.
//! * **Publish.** The processor writes into `tmp/<id>/`; the spool adds `spool.json` (with the
//!   claim's token), fsyncs it, renames it to `outbox/<id>/` and only then retires `work/<id>`
//!   (renamed out of `work/` first, then deleted). After a crash between the two steps the token
//!   in `outbox/<id>/spool.json` shows the case is done, so it is never processed twice.
//! * **Fail.** `error.json` {kind, message, hint, stage} is written into `work/<id>/`, which is
//!   then renamed to `failed/<id>/` with its inputs.
//! * **Recovery** ([`Spool::recover`], on start): `tmp/` is emptied; every `work/<id>` is either
//!   retired (already published) or re-queued; a case whose processing was started
//!   `service.max_attempts` times without finishing (it keeps crashing the box) is failed.
//!
//! Retention ([`Spool::apply_retention`]) deletes the oldest finished cases beyond the
//! configured age or size, and [`Spool::free_disk_mb`] lets the service pause intake before the
//! disk is full.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::case::sanitize_id;
use crate::config::appliance::SpoolConfig;
use crate::error::{Classify, ErrorKind};
use crate::service::processor::{CaseSummary, ProcessError, ProcessorInfo, Stage};

/// Name of the claim file inside `work/<id>/`.
pub const CLAIM_FILE: &str = ".glioedge-claim.json";
/// The spool's record of a published case, inside `outbox/<id>/`.
pub const RECORD_FILE: &str = "spool.json";
/// The failure record inside `failed/<id>/`.
pub const ERROR_FILE: &str = "error.json";
/// The marker that makes an inbox folder ready at once.
pub const READY_FILE: &str = "READY";

/// Longest case id (before a uniqueness suffix).
const MAX_ID_LEN: usize = 96;
/// Entries examined per inbox folder when deciding whether it is quiet.
const MAX_SCAN_ENTRIES: usize = 10_000;

/// A filesystem operation on the spool failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {what}: {source}", path.display())]
pub struct SpoolError {
    /// Path.
    pub path: PathBuf,
    /// What was being done.
    pub what: &'static str,
    /// Cause.
    pub source: io::Error,
}

impl Classify for SpoolError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Internal
    }

    fn hint(&self) -> Option<String> {
        Some(
            "check that the spool folder exists, is writable by the service and has free space"
                .into(),
        )
    }
}

fn err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(io::Error) -> SpoolError + 'a {
    move |source| SpoolError {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// `work/<id>/.glioedge-claim.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The case id (folder name under `work/`, `outbox/`, `failed/`).
    pub id: String,
    /// The inbox name as dropped (lossy UTF-8).
    pub original_name: String,
    /// Unique per claim; copied into `outbox/<id>/spool.json`.
    pub token: String,
    /// Unix seconds.
    pub claimed_at: u64,
    /// How often processing was started.
    pub attempts: u32,
    /// The inbox entry was not a folder (it is kept inside `work/<id>/`).
    pub not_a_folder: bool,
}

/// `outbox/<id>/spool.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseRecord {
    /// Case id.
    pub id: String,
    /// The inbox name as dropped (lossy UTF-8).
    pub original_name: String,
    /// The claim token.
    pub token: String,
    /// Unix seconds.
    pub claimed_at: u64,
    /// Unix seconds.
    pub finished_at: u64,
    /// Processing wall time, ms.
    pub duration_ms: f64,
    /// What the processor said.
    pub summary: CaseSummary,
    /// Who processed it.
    pub processor: ProcessorInfo,
}

/// A finished case as listed by [`Spool::list_finished`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedCase {
    /// Case id.
    pub id: String,
    /// `done` or `failed`.
    pub status: String,
    /// Unix seconds.
    pub finished_at: u64,
    /// Headline (done) or error message (failed).
    pub headline: String,
    /// Report path relative to the case folder (done only).
    pub report: Option<String>,
    /// Failure details (failed only).
    pub error: Option<ProcessError>,
}

/// What an inbox scan found.
#[derive(Debug, Clone, Default)]
pub struct InboxScan {
    /// Entries ready to be claimed, oldest first.
    pub ready: Vec<OsString>,
    /// Entries still being written (not quiet yet).
    pub waiting: usize,
}

/// What [`Spool::recover`] did.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// Cases to process again, in claim order.
    pub requeued: Vec<Claim>,
    /// Cases that had been published before the crash (their `work/` copy was retired).
    pub already_done: Vec<String>,
    /// Cases failed because they were interrupted too often.
    pub gave_up: Vec<String>,
}

/// The spool folder.
#[derive(Debug, Clone)]
pub struct Spool {
    root: PathBuf,
    config: SpoolConfig,
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for unix seconds.
pub fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// fsyncs a directory (so a rename inside it survives a power cut).
pub fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err(dir, "fsync directory"))
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), SpoolError> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| io::Error::other(e.to_string()))
        .map_err(err(path, "serialise"))?;
    bytes.push(b'\n');
    crate::report::write_atomic(path, &bytes).map_err(|e| SpoolError {
        path: path.to_path_buf(),
        what: "write",
        source: io::Error::other(e.to_string()),
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn mtime_secs(meta: &std::fs::Metadata) -> u64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Newest modification time in a tree (not following symlinks), at most `budget` entries.
fn newest_mtime(path: &Path, budget: &mut usize) -> Option<SystemTime> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mut newest = meta.modified().ok()?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).ok()?.flatten() {
            if *budget == 0 {
                break;
            }
            *budget -= 1;
            if let Some(t) = newest_mtime(&entry.path(), budget) {
                newest = newest.max(t);
            }
        }
    }
    Some(newest)
}

/// Bytes in a tree (not following symlinks).
fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| tree_size(&e.path())).sum())
        .unwrap_or(0)
}

fn sync_tree(path: &Path) -> Result<(), SpoolError> {
    let meta = std::fs::symlink_metadata(path).map_err(err(path, "stat"))?;
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(err(path, "list"))? {
            let entry = entry.map_err(err(path, "list"))?;
            sync_tree(&entry.path())?;
        }
        sync_dir(path)
    } else if meta.is_file() {
        File::open(path)
            .and_then(|f| f.sync_all())
            .map_err(err(path, "fsync"))
    } else {
        Ok(())
    }
}

impl Spool {
    /// Opens (creating if needed) the spool at `config.root`.
    pub fn open(config: &SpoolConfig) -> Result<Spool, SpoolError> {
        let spool = Spool {
            root: config.root.clone(),
            config: config.clone(),
        };
        for dir in [
            spool.inbox(),
            spool.work(),
            spool.outbox(),
            spool.failed(),
            spool.tmp(),
        ] {
            std::fs::create_dir_all(&dir).map_err(err(&dir, "create folder"))?;
        }
        sync_dir(&spool.root)?;
        Ok(spool)
    }

    /// The spool folder.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `inbox/`.
    pub fn inbox(&self) -> PathBuf {
        self.root.join("inbox")
    }
    /// `work/`.
    pub fn work(&self) -> PathBuf {
        self.root.join("work")
    }
    /// `outbox/`.
    pub fn outbox(&self) -> PathBuf {
        self.root.join("outbox")
    }
    /// `failed/`.
    pub fn failed(&self) -> PathBuf {
        self.root.join("failed")
    }
    /// `tmp/` (staging and trash; emptied on start).
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    /// The folder a claimed case is processed from.
    pub fn case_dir(&self, claim: &Claim) -> PathBuf {
        self.work().join(&claim.id)
    }

    /// Free space of the spool's file system, MiB.
    pub fn free_disk_mb(&self) -> Result<u64, SpoolError> {
        let st = nix::sys::statvfs::statvfs(&self.root)
            .map_err(|e| io::Error::from_raw_os_error(e as i32))
            .map_err(err(&self.root, "statvfs"))?;
        Ok((st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64) >> 20)
    }

    /// `Some(reason)` when intake must pause because the disk is nearly full.
    pub fn low_disk(&self) -> Option<String> {
        match self.free_disk_mb() {
            Ok(free) if free < self.config.min_free_disk_mb => Some(format!(
                "intake paused: {free} MB free on the spool disk, below spool.min_free_disk_mb = {}",
                self.config.min_free_disk_mb
            )),
            Ok(_) => None,
            Err(e) => Some(format!("intake paused: cannot check free disk space: {e}")),
        }
    }

    /// Lists inbox entries and which of them are ready to be claimed.
    pub fn scan_inbox(&self) -> Result<InboxScan, SpoolError> {
        let inbox = self.inbox();
        let now = SystemTime::now();
        let quiet = Duration::from_secs_f64(self.config.quiet_seconds);
        let mut ready = Vec::new();
        let mut scan = InboxScan::default();
        for entry in std::fs::read_dir(&inbox).map_err(err(&inbox, "list"))? {
            let entry = entry.map_err(err(&inbox, "list"))?;
            let name = entry.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
                continue;
            }
            let path = entry.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() && path.join(READY_FILE).is_file() {
                ready.push((meta.modified().unwrap_or(now), name));
                continue;
            }
            let mut budget = MAX_SCAN_ENTRIES;
            let newest = newest_mtime(&path, &mut budget).unwrap_or(now);
            // A clock step backwards makes `newest` lie in the future: wait it out.
            let age = now.duration_since(newest).unwrap_or(Duration::ZERO);
            if age >= quiet {
                ready.push((newest, name));
            } else {
                scan.waiting += 1;
            }
        }
        ready.sort();
        scan.ready = ready.into_iter().map(|(_, n)| n).collect();
        Ok(scan)
    }

    fn id_taken(&self, id: &str) -> bool {
        [self.work(), self.outbox(), self.failed(), self.tmp()]
            .iter()
            .any(|d| std::fs::symlink_metadata(d.join(id)).is_ok())
    }

    fn unique_id(&self, name: &OsStr) -> String {
        let mut base = sanitize_id(&name.to_string_lossy());
        if base.len() > MAX_ID_LEN {
            let mut cut = MAX_ID_LEN;
            while !base.is_char_boundary(cut) {
                cut -= 1;
            }
            base.truncate(cut);
        }
        if !self.id_taken(&base) {
            return base;
        }
        (2u64..)
            .map(|n| format!("{base}-{n}"))
            .find(|id| !self.id_taken(id))
            .unwrap_or(base)
    }

    /// Claims one inbox entry (atomic rename into `work/`). `Ok(None)` if it vanished meanwhile.
    pub fn claim(&self, name: &OsStr) -> Result<Option<Claim>, SpoolError> {
        let src = self.inbox().join(name);
        let Ok(meta) = std::fs::symlink_metadata(&src) else {
            return Ok(None);
        };
        let id = self.unique_id(name);
        let dest = self.work().join(&id);
        let not_a_folder = !meta.is_dir();
        if not_a_folder {
            // Keep the stray entry inside a case folder so it is failed (and kept) like a case.
            std::fs::create_dir(&dest).map_err(err(&dest, "create folder"))?;
            if let Err(e) = std::fs::rename(&src, dest.join(name)) {
                let _ = std::fs::remove_dir(&dest);
                if e.kind() == io::ErrorKind::NotFound {
                    return Ok(None);
                }
                return Err(err(&src, "claim")(e));
            }
        } else if let Err(e) = std::fs::rename(&src, &dest) {
            if e.kind() == io::ErrorKind::NotFound {
                return Ok(None);
            }
            return Err(err(&src, "claim")(e));
        }
        let claim = Claim {
            id,
            original_name: name.to_string_lossy().into_owned(),
            token: new_token(),
            claimed_at: unix_now(),
            attempts: 0,
            not_a_folder,
        };
        self.write_claim(&claim)?;
        sync_dir(&self.inbox())?;
        sync_dir(&self.work())?;
        Ok(Some(claim))
    }

    fn write_claim(&self, claim: &Claim) -> Result<(), SpoolError> {
        let dir = self.case_dir(claim);
        write_json(&dir.join(CLAIM_FILE), claim)?;
        sync_dir(&dir)
    }

    /// Records that processing of `claim` starts (counts attempts across crashes).
    pub fn start_attempt(&self, claim: &mut Claim) -> Result<(), SpoolError> {
        claim.attempts += 1;
        self.write_claim(claim)
    }

    /// Checks a claimed folder before any file in it is opened: not a stray file, no symlink
    /// leading out of the spool, no device or FIFO.
    pub fn check_case(&self, claim: &Claim) -> Result<(), ProcessError> {
        let dir = self.case_dir(claim);
        let bad = |message: String, hint: &str| ProcessError {
            kind: ErrorKind::BadInput,
            message,
            hint: Some(hint.into()),
            stage: Stage::Intake,
        };
        if claim.not_a_folder {
            return Err(bad(
                format!(
                    "inbox entry {:?} is not a case folder (a file or a symlink)",
                    claim.original_name
                ),
                "drop one folder per case, holding the NIfTI files",
            ));
        }
        let root = std::fs::canonicalize(&self.root).map_err(|e| {
            ProcessError::internal(Stage::Intake, format!("{}: {e}", self.root.display()))
        })?;
        let mut stack = vec![dir.clone()];
        let mut budget = MAX_SCAN_ENTRIES;
        while let Some(d) = stack.pop() {
            let rd = std::fs::read_dir(&d).map_err(|e| {
                bad(
                    format!("{}: cannot list: {e}", d.display()),
                    "check the folder's permissions",
                )
            })?;
            for entry in rd.flatten() {
                if budget == 0 {
                    return Err(bad(
                        format!("{}: more than {MAX_SCAN_ENTRIES} files", dir.display()),
                        "a case folder holds a handful of NIfTI files",
                    ));
                }
                budget -= 1;
                let path = entry.path();
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                let rel = path
                    .strip_prefix(&dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                if meta.file_type().is_symlink() {
                    match std::fs::canonicalize(&path) {
                        Ok(target) if target.starts_with(&root) => {}
                        Ok(target) => {
                            return Err(bad(
                                format!(
                                    "{rel}: symlink to {} outside the spool refused",
                                    target.display()
                                ),
                                "copy the files into the case folder instead of linking them",
                            ))
                        }
                        Err(_) => {
                            return Err(bad(
                                format!("{rel}: dangling symlink"),
                                "copy the files into the case folder instead of linking them",
                            ))
                        }
                    }
                } else if meta.is_dir() {
                    stack.push(path);
                } else if !meta.is_file() {
                    return Err(bad(
                        format!("{rel}: not a regular file (device, FIFO or socket)"),
                        "a case folder holds only regular files",
                    ));
                }
            }
        }
        Ok(())
    }

    /// A fresh, empty output folder for the processor: `tmp/<id>/`.
    pub fn prepare_output(&self, claim: &Claim) -> Result<PathBuf, SpoolError> {
        let out = self.tmp().join(&claim.id);
        if std::fs::symlink_metadata(&out).is_ok() {
            std::fs::remove_dir_all(&out).map_err(err(&out, "remove stale output"))?;
        }
        std::fs::create_dir_all(&out).map_err(err(&out, "create output folder"))?;
        Ok(out)
    }

    /// Moves a folder out of sight, then deletes it (a half-deleted folder is never visible
    /// under its name).
    fn retire(&self, path: &Path) -> Result<(), SpoolError> {
        let trash = self.tmp().join(format!(".trash-{}", new_token()));
        std::fs::rename(path, &trash).map_err(err(path, "retire"))?;
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        std::fs::remove_dir_all(&trash).map_err(err(&trash, "delete"))
    }

    /// Publishes `tmp/<id>/` as `outbox/<id>/` and retires `work/<id>/`. Returns the outbox
    /// folder.
    pub fn publish(
        &self,
        claim: &Claim,
        summary: &CaseSummary,
        processor: &ProcessorInfo,
        duration_ms: f64,
    ) -> Result<PathBuf, SpoolError> {
        let out = self.tmp().join(&claim.id);
        let record = CaseRecord {
            id: claim.id.clone(),
            original_name: claim.original_name.clone(),
            token: claim.token.clone(),
            claimed_at: claim.claimed_at,
            finished_at: unix_now(),
            duration_ms,
            summary: summary.clone(),
            processor: processor.clone(),
        };
        write_json(&out.join(RECORD_FILE), &record)?;
        sync_tree(&out)?;
        let dest = self.outbox().join(&claim.id);
        std::fs::rename(&out, &dest).map_err(err(&dest, "publish"))?;
        sync_dir(&self.outbox())?;
        sync_dir(&self.tmp())?;
        self.retire(&self.case_dir(claim))?;
        Ok(dest)
    }

    /// Writes `error.json` into the case and moves it with its inputs to `failed/<id>/`.
    pub fn fail(&self, claim: &Claim, error: &ProcessError) -> Result<PathBuf, SpoolError> {
        let staging = self.tmp().join(&claim.id);
        if std::fs::symlink_metadata(&staging).is_ok() {
            std::fs::remove_dir_all(&staging).map_err(err(&staging, "remove output"))?;
        }
        let dir = self.case_dir(claim);
        write_json(&dir.join(ERROR_FILE), error)?;
        sync_dir(&dir)?;
        let dest = self.failed().join(&claim.id);
        std::fs::rename(&dir, &dest).map_err(err(&dest, "move to failed"))?;
        sync_dir(&self.work())?;
        sync_dir(&self.failed())?;
        Ok(dest)
    }

    /// After a crash or a stop: empties `tmp/` and sorts out everything left in `work/`.
    pub fn recover(&self, max_attempts: u32) -> Result<Recovery, SpoolError> {
        let tmp = self.tmp();
        for entry in std::fs::read_dir(&tmp).map_err(err(&tmp, "list"))? {
            let path = entry.map_err(err(&tmp, "list"))?.path();
            let res = if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            res.map_err(err(&path, "clean tmp"))?;
        }
        let work = self.work();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&work)
            .map_err(err(&work, "list"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        let mut recovery = Recovery::default();
        for dir in entries {
            let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(str::to_string) else {
                continue; // only the spool creates names in work/, always sanitised
            };
            if !std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                std::fs::remove_file(&dir).map_err(err(&dir, "remove stray file"))?;
                continue;
            }
            let claim: Option<Claim> = read_json(&dir.join(CLAIM_FILE));
            let claim = match claim {
                Some(c) if c.id == id => c,
                // Claimed but the claim file never written: nothing was processed yet.
                _ => Claim {
                    id: id.clone(),
                    original_name: id.clone(),
                    token: new_token(),
                    claimed_at: unix_now(),
                    attempts: 0,
                    not_a_folder: false,
                },
            };
            let published: Option<CaseRecord> =
                read_json(&self.outbox().join(&id).join(RECORD_FILE));
            if published.is_some_and(|r| r.token == claim.token) {
                self.retire(&dir)?;
                recovery.already_done.push(id);
                continue;
            }
            let _ = std::fs::remove_file(dir.join(ERROR_FILE));
            if claim.attempts >= max_attempts {
                let e = ProcessError {
                    kind: ErrorKind::Internal,
                    message: format!(
                        "processing was interrupted {} times (the service crashed or was stopped while working on this case)",
                        claim.attempts
                    ),
                    hint: Some("look at the service log (journalctl -u glioedge) for what happened while this case ran".into()),
                    stage: Stage::Intake,
                };
                self.fail(&claim, &e)?;
                recovery.gave_up.push(id);
                continue;
            }
            self.write_claim(&claim)?;
            recovery.requeued.push(claim);
        }
        recovery.requeued.sort_by_key(|c| c.claimed_at);
        sync_dir(&tmp)?;
        Ok(recovery)
    }

    /// Deletes finished cases beyond the retention limits (oldest first, each of `outbox/` and
    /// `failed/` separately). Returns the ids deleted.
    pub fn apply_retention(&self) -> Result<Vec<String>, SpoolError> {
        let r = &self.config.retention;
        if r.max_age_days.is_none() && r.max_total_mb.is_none() {
            return Ok(Vec::new());
        }
        let now = unix_now();
        let mut removed = Vec::new();
        for dir in [self.outbox(), self.failed()] {
            let mut cases: Vec<(u64, String, PathBuf)> = std::fs::read_dir(&dir)
                .map_err(err(&dir, "list"))?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().as_encoded_bytes().first() != Some(&b'.'))
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    Some((
                        mtime_secs(&meta),
                        e.file_name().to_string_lossy().into_owned(),
                        e.path(),
                    ))
                })
                .collect();
            cases.sort();
            let mut keep = Vec::new();
            for (t, id, path) in cases {
                let too_old = r
                    .max_age_days
                    .is_some_and(|d| now.saturating_sub(t) as f64 > d * 86_400.0);
                if too_old {
                    self.retire(&path)?;
                    removed.push(id);
                } else {
                    keep.push((id, path));
                }
            }
            if let Some(max_mb) = r.max_total_mb {
                let limit = max_mb << 20;
                let sizes: Vec<u64> = keep.iter().map(|(_, p)| tree_size(p)).collect();
                let mut total: u64 = sizes.iter().sum();
                for ((id, path), size) in keep.into_iter().zip(sizes) {
                    if total <= limit {
                        break;
                    }
                    self.retire(&path)?;
                    total -= size;
                    removed.push(id);
                }
            }
        }
        Ok(removed)
    }

    /// The published record of a case in `outbox/`.
    pub fn record(&self, id: &str) -> Option<CaseRecord> {
        read_json(&self.outbox().join(id).join(RECORD_FILE))
    }

    /// One finished case by id (`outbox/` first, then `failed/`). Ids that are not sanitised
    /// names are never looked up.
    pub fn finished(&self, id: &str) -> Option<FinishedCase> {
        if id != sanitize_id(id) || id.is_empty() {
            return None;
        }
        if let Some(r) = self.record(id) {
            return Some(FinishedCase {
                id: r.id,
                status: "done".into(),
                finished_at: r.finished_at,
                headline: r.summary.headline,
                report: Some(r.summary.report.to_string_lossy().into_owned()),
                error: None,
            });
        }
        let path = self.failed().join(id).join(ERROR_FILE);
        let meta = std::fs::metadata(&path).ok()?;
        let e: ProcessError = read_json(&path)?;
        Some(FinishedCase {
            id: id.to_string(),
            status: "failed".into(),
            finished_at: mtime_secs(&meta),
            headline: e.message.clone(),
            report: None,
            error: Some(e),
        })
    }

    /// Every finished case, newest first, at most `limit`.
    pub fn list_finished(&self, limit: usize) -> Vec<FinishedCase> {
        let mut all: Vec<(u64, String)> = Vec::new();
        for dir in [self.outbox(), self.failed()] {
            let Ok(rd) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in rd.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if name.starts_with('.') {
                    continue;
                }
                let t = e.metadata().map(|m| mtime_secs(&m)).unwrap_or(0);
                all.push((t, name));
            }
        }
        all.sort_by(|a, b| b.cmp(a));
        all.into_iter()
            .filter_map(|(_, id)| self.finished(&id))
            .take(limit)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::appliance::Retention;

    fn spool(root: &Path, quiet: f64) -> Spool {
        Spool::open(&SpoolConfig {
            root: root.to_path_buf(),
            quiet_seconds: quiet,
            min_free_disk_mb: 1,
            retention: Retention::default(),
        })
        .expect("open")
    }

    fn summary() -> CaseSummary {
        CaseSummary {
            headline: "ok".into(),
            report: "report.html".into(),
            files: vec!["report.html".into()],
            warnings: vec![],
        }
    }

    fn info() -> ProcessorInfo {
        ProcessorInfo {
            model_name: "m".into(),
            model_version: "1".into(),
            demo: true,
            precision: "f32".into(),
            card_summary: String::new(),
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_796_000_000), "2026-11-30T00:53:20Z");
    }

    #[test]
    fn ready_marker_quiet_time_and_hidden_names() {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = spool(tmp.path(), 3600.0);
        std::fs::create_dir(s.inbox().join("busy")).expect("mkdir");
        std::fs::create_dir(s.inbox().join("done")).expect("mkdir");
        std::fs::write(s.inbox().join("done").join(READY_FILE), b"").expect("ready");
        std::fs::create_dir(s.inbox().join(".rsync-tmp")).expect("mkdir");
        let scan = s.scan_inbox().expect("scan");
        assert_eq!(scan.ready, vec![OsString::from("done")]);
        assert_eq!(scan.waiting, 1);
        let s = spool(tmp.path(), 0.0);
        assert_eq!(s.scan_inbox().expect("scan").ready.len(), 2);
    }

    #[test]
    fn ids_are_sanitised_and_never_reused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = spool(tmp.path(), 0.0);
        let names = ["../etc", "case 1", "case_1"];
        let mut ids = Vec::new();
        for n in names {
            // Names with a slash cannot exist in a folder; the sanitiser still makes them safe.
            let dir_name = n.replace('/', "_");
            std::fs::create_dir(s.inbox().join(&dir_name)).expect("mkdir");
            let c = s
                .claim(OsStr::new(&dir_name))
                .expect("claim")
                .expect("exists");
            ids.push(c.id.clone());
            std::fs::create_dir_all(s.tmp().join(&c.id)).expect("out");
            s.publish(&c, &summary(), &info(), 1.0).expect("publish");
        }
        assert_eq!(ids, vec!["_etc", "case_1", "case_1-2"]);
        assert!(s.outbox().join("case_1-2").join(RECORD_FILE).is_file());
        assert_eq!(s.list_finished(10).len(), 3);
        assert!(s.finished("../x").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_and_symlinks_out() {
        use std::os::unix::ffi::OsStrExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let s = spool(&tmp.path().join("spool"), 0.0);
        let name = OsStr::from_bytes(b"caf\xe9");
        std::fs::create_dir(s.inbox().join(name)).expect("mkdir");
        std::fs::write(tmp.path().join("secret"), b"x").expect("secret");
        std::os::unix::fs::symlink(
            tmp.path().join("secret"),
            s.inbox().join(name).join("t1c.nii"),
        )
        .expect("symlink");
        let c = s.claim(name).expect("claim").expect("exists");
        assert_eq!(c.id, "caf_");
        let e = s.check_case(&c).expect_err("symlink out");
        assert!(e.message.contains("outside the spool"), "{}", e.message);
        assert_eq!(e.kind, ErrorKind::BadInput);
        let failed = s.fail(&c, &e).expect("fail");
        let back: ProcessError = read_json(&failed.join(ERROR_FILE)).expect("error.json");
        assert_eq!(back, e);
        assert!(
            failed.join("t1c.nii").symlink_metadata().is_ok(),
            "inputs kept"
        );
        // A stray file is claimed and failed, not left in the inbox.
        std::fs::write(s.inbox().join("notes.txt"), b"hello").expect("file");
        let c = s
            .claim(OsStr::new("notes.txt"))
            .expect("claim")
            .expect("exists");
        assert!(s.check_case(&c).is_err());
    }

    #[test]
    fn recovery_requeues_retires_and_gives_up() {
        let tmp = tempfile::tempdir().expect("tmp");
        let s = spool(tmp.path(), 0.0);
        for n in ["a", "b", "c"] {
            std::fs::create_dir(s.inbox().join(n)).expect("mkdir");
        }
        let mut a = s.claim(OsStr::new("a")).expect("claim").expect("a");
        let b = s.claim(OsStr::new("b")).expect("claim").expect("b");
        let mut c = s.claim(OsStr::new("c")).expect("claim").expect("c");
        s.start_attempt(&mut a).expect("attempt");
        // b was published but the crash came before work/b was retired.
        s.prepare_output(&b).expect("out");
        let out = s.tmp().join("b");
        let record = CaseRecord {
            id: "b".into(),
            original_name: "b".into(),
            token: b.token.clone(),
            claimed_at: 0,
            finished_at: 0,
            duration_ms: 0.0,
            summary: summary(),
            processor: info(),
        };
        write_json(&out.join(RECORD_FILE), &record).expect("record");
        std::fs::rename(&out, s.outbox().join("b")).expect("publish");
        for _ in 0..3 {
            s.start_attempt(&mut c).expect("attempt");
        }
        std::fs::create_dir_all(s.tmp().join("a")).expect("half output");
        let r = s.recover(3).expect("recover");
        assert_eq!(
            r.requeued.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            vec!["a"]
        );
        assert_eq!(r.requeued[0].attempts, 1);
        assert_eq!(r.already_done, vec!["b"]);
        assert_eq!(r.gave_up, vec!["c"]);
        assert!(!s.work().join("b").exists() && s.outbox().join("b").exists());
        assert!(s.failed().join("c").join(ERROR_FILE).is_file());
        assert_eq!(std::fs::read_dir(s.tmp()).expect("tmp").count(), 0);
    }

    #[test]
    fn low_disk_pauses_intake() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut s = spool(tmp.path(), 0.0);
        assert!(s.free_disk_mb().expect("statvfs") > 0);
        assert_eq!(s.low_disk(), None);
        s.config.min_free_disk_mb = 1 << 24;
        let reason = s.low_disk().expect("paused");
        assert!(reason.contains("spool.min_free_disk_mb"), "{reason}");
    }

    #[test]
    fn retention_by_age() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut s = spool(tmp.path(), 0.0);
        s.config.retention.max_age_days = Some(1.0);
        for (n, age_days) in [("old", 3u64), ("new", 0)] {
            let d = s.failed().join(n);
            std::fs::create_dir(&d).expect("mkdir");
            let t = SystemTime::now() - Duration::from_secs(age_days * 86_400 + 10);
            File::open(&d)
                .and_then(|f| f.set_modified(t))
                .expect("mtime");
        }
        assert_eq!(s.apply_retention().expect("retention"), vec!["old"]);
        assert!(s.failed().join("new").exists() && !s.failed().join("old").exists());
    }

    #[test]
    fn retention_by_size_deletes_oldest() {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut s = spool(tmp.path(), 0.0);
        s.config.retention.max_total_mb = Some(1);
        for (i, n) in ["old", "mid", "new"].iter().enumerate() {
            let d = s.outbox().join(n);
            std::fs::create_dir(&d).expect("mkdir");
            std::fs::write(d.join("blob"), vec![0u8; 600 << 10]).expect("blob");
            let t = SystemTime::now() - Duration::from_secs(1000 - 100 * i as u64);
            File::open(&d)
                .and_then(|f| f.set_modified(t))
                .expect("mtime");
        }
        let removed = s.apply_retention().expect("retention");
        assert_eq!(removed, vec!["old", "mid"]);
        assert!(s.outbox().join("new").exists());
    }
}
