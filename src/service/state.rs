//! The shared state snapshot: what the service is doing, published through a
//! `tokio::sync::watch` channel. The web page, the metrics and the board only read it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::processor::{ProcessError, ProcessorInfo, Stage};

/// Everything an observer needs, cheap to clone.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// Software version.
    pub version: String,
    /// Unix seconds when the service started.
    pub started_at: u64,
    /// `running`, `paused` or `stopping`.
    pub phase: Phase,
    /// Why intake or processing is paused (low disk, temperature).
    pub pause_reason: Option<String>,
    /// The processor (model, precision path, demo flag, card summary).
    pub processor: ProcessorInfo,
    /// Claimed cases waiting for the worker, in order.
    pub queue: Vec<String>,
    /// Inbox entries not claimed yet (still being copied, or waiting for a queue slot).
    pub inbox_waiting: usize,
    /// The case being processed.
    pub current: Option<Current>,
    /// Last results, newest first.
    pub recent: Vec<Finished>,
    /// Last failures, newest first.
    pub failures: Vec<Finished>,
    /// Box health.
    pub health: Health,
    /// Totals since start (for `/metrics`).
    pub counters: Counters,
}

/// Service phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Taking and processing cases.
    Running,
    /// Not taking new cases for now (see `pause_reason`).
    Paused,
    /// Shutting down.
    Stopping,
}

/// The case in progress.
#[derive(Debug, Clone, Serialize)]
pub struct Current {
    /// Case id.
    pub id: String,
    /// Current stage.
    pub stage: Stage,
    /// Progress within the stage, 0..=1.
    pub progress: f32,
    /// Stages finished so far.
    pub done: Vec<Stage>,
    /// Unix seconds.
    pub started_at: u64,
    /// Attempt number (more than 1 after a crash).
    pub attempt: u32,
}

/// A finished case on the page.
#[derive(Debug, Clone, Serialize)]
pub struct Finished {
    /// Case id.
    pub id: String,
    /// Unix seconds.
    pub finished_at: u64,
    /// Headline (done) or error message (failed).
    pub headline: String,
    /// Report path relative to the case folder (done only).
    pub report: Option<String>,
    /// Failure (failed only).
    pub error: Option<ProcessError>,
    /// Processing time, seconds.
    pub seconds: f64,
}

/// Box health.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// CPU temperature, °C.
    pub cpu_temp_c: Option<f64>,
    /// 1, 5, 15 minute load averages.
    pub load: Option<[f64; 3]>,
    /// Total memory, MiB.
    pub mem_total_mb: Option<u64>,
    /// Available memory, MiB.
    pub mem_available_mb: Option<u64>,
    /// Free space on the spool disk, MiB.
    pub disk_free_mb: Option<u64>,
    /// Seconds since the service started.
    pub uptime_s: u64,
}

/// Counters since start.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counters {
    /// Cases published to `outbox/`.
    pub processed: u64,
    /// Cases moved to `failed/`.
    pub failed: u64,
    /// Seconds spent per stage (sum).
    pub stage_seconds: BTreeMap<String, f64>,
    /// Times each stage ran.
    pub stage_runs: BTreeMap<String, u64>,
}

impl Snapshot {
    /// The state at start-up.
    pub fn new(processor: ProcessorInfo, started_at: u64) -> Snapshot {
        Snapshot {
            version: crate::VERSION.into(),
            started_at,
            phase: Phase::Running,
            pause_reason: None,
            processor,
            queue: Vec::new(),
            inbox_waiting: 0,
            current: None,
            recent: Vec::new(),
            failures: Vec::new(),
            health: Health::default(),
            counters: Counters::default(),
        }
    }

    /// One line for systemd's `STATUS=`.
    pub fn status_line(&self) -> String {
        let q = self.queue.len();
        match (&self.current, self.phase, &self.pause_reason) {
            (_, Phase::Stopping, _) => "stopping".into(),
            (Some(c), _, _) => format!("processing {} ({}), {q} queued", c.id, c.stage),
            (None, _, Some(r)) => format!("paused: {r}"),
            (None, _, None) => format!(
                "idle, {} done, {} failed",
                self.counters.processed, self.counters.failed
            ),
        }
    }
}
