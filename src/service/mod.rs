//! The daemon behind `glioedge serve`.
//!
//! Four tasks on one tokio runtime share a [`state::Snapshot`] through a `watch` channel:
//!
//! * **intake** — woken by file events (`notify`) and by a periodic rescan (the fallback when
//!   events are lost, e.g. on network file systems), it claims ready inbox folders into a
//!   bounded queue (`service.queue_size`); while the spool disk is nearly full it pauses and
//!   says so.
//! * **worker** — takes one case at a time and runs the [`processor::CaseProcessor`] on the
//!   blocking pool; publishes or fails the case through the [`crate::spool`]; pings the systemd
//!   watchdog from its loop; above `service.max_temp_c` it waits between cases.
//! * **monitor** — health (temperature, load, memory, disk) every two seconds, the board's LEDs
//!   and button.
//! * **web** — the read-only status page ([`crate::web`]).
//!
//! Shutdown (SIGTERM, SIGINT, or a long press of the button) stops intake at once, gives the
//! current case `service.shutdown_grace_seconds` to finish, and otherwise leaves it in `work/`,
//! from where the next start re-queues it: a half result is never published, because
//! publishing is a single rename (see [`crate::spool`]).

pub mod health;
pub mod processor;
pub mod state;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};

use crate::board::{Board, Panel, Press};
use crate::config::Config;
use crate::error::{Classify, ErrorKind};
use crate::spool::{unix_now, Claim, Spool, SpoolError};
use processor::{CaseProcessor, ProcessError, Stage};
use state::{Current, Finished, Phase, Snapshot};

/// Why the service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The spool could not be opened or recovered.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The status page could not listen.
    #[error("web.bind = {addr}: cannot listen: {source}")]
    Bind {
        /// Address.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The worker stopped on a spool fault (disk full, permissions).
    #[error("worker stopped: {message}")]
    Worker {
        /// What failed.
        message: String,
    },
}

impl Classify for ServiceError {
    fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Spool(_) | ServiceError::Worker { .. } => ErrorKind::Internal,
            ServiceError::Bind { .. } => ErrorKind::Config,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            ServiceError::Spool(e) => e.hint(),
            ServiceError::Worker { .. } => {
                Some("check free disk space and permissions of the spool folder".into())
            }
            ServiceError::Bind { .. } => {
                Some("another program uses the port; change web.bind".into())
            }
        }
    }
}

/// Sends a message to systemd (a no-op when not started by systemd).
fn sd(states: &[sd_notify::NotifyState]) {
    let _ = sd_notify::notify(false, states);
}

/// Runs the service until `shutdown` resolves (or the button asks for a stop).
pub async fn run(
    config: Config,
    processor: Arc<dyn CaseProcessor>,
    board: Box<dyn Board>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServiceError> {
    let spool = Spool::open(&config.spool)?;
    let recovery = {
        let spool = spool.clone();
        let max = config.service.max_attempts;
        tokio::task::spawn_blocking(move || spool.recover(max))
            .await
            .map_err(|e| SpoolError {
                path: config.spool.root.clone(),
                what: "recover",
                source: std::io::Error::other(e.to_string()),
            })??
    };
    for id in &recovery.already_done {
        tracing::info!(case = %id, "already published before the restart; work copy retired");
    }
    for id in &recovery.gave_up {
        tracing::warn!(case = %id, "interrupted too often; moved to failed/");
    }
    let mut initial = Snapshot::new(processor.info(), unix_now());
    initial.queue = recovery.requeued.iter().map(|c| c.id.clone()).collect();
    initial.counters.failed = 0;
    for f in spool.list_finished(config.service.recent * 2) {
        let entry = Finished {
            id: f.id,
            finished_at: f.finished_at,
            headline: f.headline,
            report: f.report,
            error: f.error,
            seconds: 0.0,
        };
        if entry.error.is_some() {
            if initial.failures.len() < config.service.recent {
                initial.failures.push(entry);
            }
        } else if initial.recent.len() < config.service.recent {
            initial.recent.push(entry);
        }
    }
    let (state_tx, state_rx) = watch::channel(initial);
    let state_tx = Arc::new(state_tx);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_tx = Arc::new(stop_tx);

    let listener = tokio::net::TcpListener::bind(config.web.bind)
        .await
        .map_err(|source| ServiceError::Bind {
            addr: config.web.bind,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(config.web.bind);
    tracing::info!(
        "status page on http://{local}/ ; spool {}",
        spool.root().display()
    );
    eprintln!("glioedge: status page on http://{local}/");

    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
    }

    let wake = Arc::new(Notify::new());
    let _watcher = start_watcher(&spool, wake.clone());
    let (queue_tx, queue_rx) = tokio::sync::mpsc::channel::<Claim>(config.service.queue_size);

    let intake = tokio::spawn(intake_loop(
        spool.clone(),
        config.service.rescan_seconds,
        queue_tx,
        state_tx.clone(),
        wake,
        stop_rx.clone(),
    ));
    let monitor = tokio::spawn(monitor_loop(
        spool.clone(),
        board,
        Duration::from_secs_f64(config.board.long_press_seconds),
        state_tx.clone(),
        stop_tx.clone(),
        stop_rx.clone(),
    ));
    let (web_stop_tx, web_stop_rx) = watch::channel(false);
    let web = tokio::spawn(crate::web::serve(
        listener,
        crate::web::WebState::new(state_rx, spool.clone(), config.web.token.clone()),
        async move {
            let mut rx = web_stop_rx;
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    sd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("started"),
    ]);
    let fault = worker_loop(
        spool,
        processor,
        &config,
        recovery.requeued.into(),
        queue_rx,
        state_tx.clone(),
        stop_rx,
    )
    .await;

    state_tx.send_modify(|s| s.phase = Phase::Stopping);
    sd(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping"),
    ]);
    let _ = stop_tx.send(true);
    let _ = intake.await;
    let _ = monitor.await;
    let _ = web_stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), web).await;
    match fault {
        // Exit non-zero so systemd restarts the service (and recovery sorts out the spool).
        Some(message) => Err(ServiceError::Worker { message }),
        None => Ok(()),
    }
}

fn start_watcher(spool: &Spool, wake: Arc<Notify>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let handler = move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            wake.notify_one();
        }
    };
    match notify::recommended_watcher(handler) {
        Ok(mut w) => match w.watch(&spool.inbox(), notify::RecursiveMode::Recursive) {
            Ok(()) => Some(w),
            Err(e) => {
                tracing::warn!("file events unavailable ({e}); relying on the periodic rescan");
                None
            }
        },
        Err(e) => {
            tracing::warn!("file events unavailable ({e}); relying on the periodic rescan");
            None
        }
    }
}

async fn intake_loop(
    spool: Spool,
    rescan_seconds: f64,
    queue: tokio::sync::mpsc::Sender<Claim>,
    state: Arc<watch::Sender<Snapshot>>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let rescan = Duration::from_secs_f64(rescan_seconds);
    loop {
        if *stop.borrow() {
            return;
        }
        let s = spool.clone();
        // The bound covers cases re-queued after a restart too, so work/ never grows beyond
        // the configured queue however often the box restarts.
        let waiting_cases = state.borrow().queue.len();
        let free_slots = queue
            .capacity()
            .min(queue.max_capacity().saturating_sub(waiting_cases));
        let scan = tokio::task::spawn_blocking(move || {
            if let Some(reason) = s.low_disk() {
                return (Some(reason), 0, Vec::new());
            }
            let scan = match s.scan_inbox() {
                Ok(scan) => scan,
                Err(e) => return (Some(format!("intake paused: {e}")), 0, Vec::new()),
            };
            let mut claims = Vec::new();
            let mut waiting = scan.waiting;
            for name in scan.ready {
                if claims.len() >= free_slots {
                    waiting += 1;
                    continue;
                }
                match s.claim(&name) {
                    Ok(Some(c)) => claims.push(c),
                    Ok(None) => {}
                    Err(e) => tracing::error!("claim failed: {e}"),
                }
            }
            (None, waiting, claims)
        })
        .await;
        let (pause, waiting, claims) = match scan {
            Ok(v) => v,
            Err(e) => (Some(format!("intake failed: {e}")), 0, Vec::new()),
        };
        if let Some(r) = &pause {
            tracing::warn!("{r}");
        }
        state.send_modify(|st| {
            st.inbox_waiting = waiting;
            st.queue.extend(claims.iter().map(|c| c.id.clone()));
            // The thermal pause belongs to the worker; only replace our own reasons.
            let ours = st
                .pause_reason
                .as_deref()
                .is_some_and(|r| r.starts_with("intake"));
            if pause.is_some() || ours {
                st.pause_reason = pause.clone();
            }
            if st.phase != Phase::Stopping {
                st.phase = if st.pause_reason.is_some() {
                    Phase::Paused
                } else {
                    Phase::Running
                };
            }
        });
        for c in claims {
            tracing::info!(case = %c.id, original = %c.original_name, "claimed");
            if queue.send(c).await.is_err() {
                return;
            }
        }
        // While folders are still being copied, look again soon so the quiet time is honoured
        // closely even without further events.
        let next = if waiting > 0 {
            rescan.min(Duration::from_millis(500))
        } else {
            rescan
        };
        tokio::select! {
            _ = wake.notified() => {
                // Let a burst of events settle.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            _ = tokio::time::sleep(next) => {}
            _ = stop.changed() => return,
        }
    }
}

fn watchdog_interval() -> Option<Duration> {
    let mut usec = 0u64;
    sd_notify::watchdog_enabled(false, &mut usec).then(|| Duration::from_micros(usec / 2))
}

async fn worker_loop(
    spool: Spool,
    processor: Arc<dyn CaseProcessor>,
    config: &Config,
    mut pending: VecDeque<Claim>,
    mut queue: tokio::sync::mpsc::Receiver<Claim>,
    state: Arc<watch::Sender<Snapshot>>,
    mut stop: watch::Receiver<bool>,
) -> Option<String> {
    let mut watchdog =
        tokio::time::interval(watchdog_interval().unwrap_or(Duration::from_secs(3600)));
    let watchdog_on = watchdog_interval().is_some();
    let mut last_status = String::new();
    loop {
        let status = state.borrow().status_line();
        if status != last_status {
            sd(&[sd_notify::NotifyState::Status(&status)]);
            last_status = status;
        }
        if *stop.borrow() {
            return None;
        }
        let claim = match pending.pop_front() {
            Some(c) => c,
            None => tokio::select! {
                c = queue.recv() => match c {
                    Some(c) => c,
                    None => return None,
                },
                _ = watchdog.tick() => {
                    if watchdog_on { sd(&[sd_notify::NotifyState::Watchdog]); }
                    continue;
                }
                _ = stop.changed() => return None,
            },
        };
        // Thermal guard: wait between cases while the CPU is too hot.
        loop {
            let temp = state.borrow().health.cpu_temp_c;
            match temp {
                Some(t) if t > config.service.max_temp_c => {
                    let reason = format!(
                        "too hot: CPU {t:.0} °C above service.max_temp_c = {:.0} °C; waiting to cool down",
                        config.service.max_temp_c
                    );
                    state.send_modify(|s| {
                        s.pause_reason = Some(reason.clone());
                        s.phase = Phase::Paused;
                    });
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = watchdog.tick() => {
                            if watchdog_on { sd(&[sd_notify::NotifyState::Watchdog]); }
                        }
                        _ = stop.changed() => return None,
                    }
                }
                _ => {
                    state.send_modify(|s| {
                        if s.pause_reason
                            .as_deref()
                            .is_some_and(|r| r.starts_with("too hot"))
                        {
                            s.pause_reason = None;
                            s.phase = Phase::Running;
                        }
                    });
                    break;
                }
            }
        }
        if *stop.borrow() {
            return None;
        }
        let finished = process_one(
            &spool,
            &processor,
            claim,
            &state,
            &mut stop,
            &mut watchdog,
            watchdog_on,
            Duration::from_secs_f64(config.service.shutdown_grace_seconds),
        )
        .await;
        match finished {
            Next::Continue => {}
            Next::Stop => return None,
            Next::Fault(m) => return Some(m),
        }
        let s = spool.clone();
        if let Ok(Ok(removed)) = tokio::task::spawn_blocking(move || s.apply_retention()).await {
            for id in removed {
                tracing::info!(case = %id, "deleted by retention");
            }
        }
        let recent = config.service.recent;
        state.send_modify(|s| {
            s.recent.truncate(recent);
            s.failures.truncate(recent);
        });
    }
}

/// What the worker does after a case.
enum Next {
    Continue,
    /// Stop requested and the case was left in `work/`.
    Stop,
    /// The spool failed; stop with an error.
    Fault(String),
}

/// Outcome of the blocking part of one case.
enum Outcome {
    Done {
        report: String,
        headline: String,
    },
    Failed(ProcessError),
    /// The spool itself failed (the case stays in `work/` for the next start).
    SpoolFault(String),
}

/// Processes one case; says whether the worker goes on.
#[allow(clippy::too_many_arguments)]
async fn process_one(
    spool: &Spool,
    processor: &Arc<dyn CaseProcessor>,
    mut claim: Claim,
    state: &Arc<watch::Sender<Snapshot>>,
    stop: &mut watch::Receiver<bool>,
    watchdog: &mut tokio::time::Interval,
    watchdog_on: bool,
    grace: Duration,
) -> Next {
    let id = claim.id.clone();
    tracing::info!(case = %id, "processing");
    state.send_modify(|s| {
        s.queue.retain(|q| q != &id);
        s.current = Some(Current {
            id: id.clone(),
            stage: Stage::Intake,
            progress: 0.0,
            done: Vec::new(),
            started_at: unix_now(),
            attempt: claim.attempts + 1,
        });
    });
    let started = Instant::now();
    let job = {
        let spool = spool.clone();
        let processor = processor.clone();
        let state = state.clone();
        tokio::task::spawn_blocking(move || -> Outcome {
            if let Err(e) = spool.start_attempt(&mut claim) {
                return Outcome::SpoolFault(e.to_string());
            }
            let stage_clock = std::sync::Mutex::new((Stage::Intake, Instant::now()));
            let progress = |stage: Stage, fraction: f32| {
                let mut clock = match stage_clock.lock() {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
                let changed = clock.0 != stage;
                let previous = clock.0;
                let spent = clock.1.elapsed().as_secs_f64();
                if changed {
                    *clock = (stage, Instant::now());
                }
                drop(clock);
                state.send_modify(|s| {
                    if changed {
                        *s.counters
                            .stage_seconds
                            .entry(previous.name().into())
                            .or_default() += spent;
                        *s.counters
                            .stage_runs
                            .entry(previous.name().into())
                            .or_default() += 1;
                    }
                    if let Some(c) = s.current.as_mut() {
                        if changed && !c.done.contains(&previous) {
                            c.done.push(previous);
                        }
                        c.stage = stage;
                        c.progress = fraction.clamp(0.0, 1.0);
                    }
                });
            };
            let result = spool.check_case(&claim).and_then(|()| {
                let out = spool
                    .prepare_output(&claim)
                    .map_err(|e| ProcessError::from_classified(Stage::Intake, &e))?;
                progress(Stage::Intake, 1.0);
                processor.process(&spool.case_dir(&claim), &out, &progress)
            });
            progress(Stage::Publish, 0.0);
            let ms = started.elapsed().as_secs_f64() * 1e3;
            let outcome = match result {
                Ok(summary) => match spool.publish(&claim, &summary, &processor.info(), ms) {
                    Ok(_) => Outcome::Done {
                        report: summary.report.to_string_lossy().into_owned(),
                        headline: summary.headline,
                    },
                    Err(e) => Outcome::SpoolFault(e.to_string()),
                },
                Err(mut e) => {
                    // Name files relative to the case folder: work/<id>/ is gone once failed.
                    let prefix = format!("{}/", spool.case_dir(&claim).display());
                    e.message = e.message.replace(&prefix, "");
                    match spool.fail(&claim, &e) {
                        Ok(_) => Outcome::Failed(e),
                        Err(se) => Outcome::SpoolFault(se.to_string()),
                    }
                }
            };
            progress(Stage::Publish, 1.0);
            outcome
        })
    };
    tokio::pin!(job);
    let mut grace_deadline: Option<tokio::time::Instant> = None;
    let joined = loop {
        let deadline = async {
            match grace_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = &mut job => break Some(r),
            _ = watchdog.tick() => {
                if watchdog_on { sd(&[sd_notify::NotifyState::Watchdog]); }
            }
            _ = stop.changed(), if grace_deadline.is_none() => {
                tracing::info!(case = %id, "stop requested; giving the current case {grace:?} to finish");
                grace_deadline = Some(tokio::time::Instant::now() + grace);
            }
            _ = deadline => break None,
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let Some(joined) = joined else {
        tracing::warn!(case = %id, "not finished within the shutdown grace time; left in work/ to be re-queued on the next start");
        return Next::Stop;
    };
    let outcome = joined.unwrap_or_else(|e| {
        // The processor panicked: fail the case (its inputs are still in work/).
        let err = ProcessError::internal(Stage::Intake, format!("the processor crashed: {e}"));
        let c = Claim {
            id: id.clone(),
            original_name: id.clone(),
            token: String::new(),
            claimed_at: 0,
            attempts: 0,
            not_a_folder: false,
        };
        match spool.fail(&c, &err) {
            Ok(_) => Outcome::Failed(err),
            Err(se) => Outcome::SpoolFault(se.to_string()),
        }
    });
    let now = unix_now();
    let next = match &outcome {
        Outcome::SpoolFault(m) => Next::Fault(m.clone()),
        _ => Next::Continue,
    };
    state.send_modify(|s| {
        s.current = None;
        match outcome {
            Outcome::Done { report, headline } => {
                tracing::info!(case = %id, "done in {seconds:.1} s: {headline}");
                s.counters.processed += 1;
                s.recent.insert(
                    0,
                    Finished {
                        id: id.clone(),
                        finished_at: now,
                        headline,
                        report: Some(report),
                        error: None,
                        seconds,
                    },
                );
            }
            Outcome::Failed(e) => {
                tracing::warn!(case = %id, "failed: {e}");
                s.counters.failed += 1;
                s.failures.insert(
                    0,
                    Finished {
                        id: id.clone(),
                        finished_at: now,
                        headline: e.message.clone(),
                        report: None,
                        error: Some(e),
                        seconds,
                    },
                );
            }
            Outcome::SpoolFault(msg) => {
                tracing::error!(case = %id, "spool error, stopping: {msg}");
                s.pause_reason = Some(format!("spool error: {msg}"));
            }
        }
    });
    next
}

async fn monitor_loop(
    spool: Spool,
    mut board: Box<dyn Board>,
    long_press: Duration,
    state: Arc<watch::Sender<Snapshot>>,
    stop_tx: Arc<watch::Sender<bool>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut panel = Panel::new(long_press);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {
                board.set_leds(crate::board::Leds::default());
                return;
            }
        }
        if n % 20 == 0 {
            let temp = board.temperature_c();
            let s = spool.clone();
            let disk = tokio::task::spawn_blocking(move || s.free_disk_mb().ok())
                .await
                .ok()
                .flatten();
            let load = health::load_average();
            let mem = health::memory_mb();
            state.send_modify(|s| {
                s.health.cpu_temp_c = temp;
                s.health.load = load;
                s.health.mem_total_mb = mem.map(|m| m.0);
                s.health.mem_available_mb = mem.map(|m| m.1);
                s.health.disk_free_mb = disk;
                s.health.uptime_s = start.elapsed().as_secs();
            });
        }
        n += 1;
        match panel.sample_button(board.button_down(), Instant::now()) {
            Some(Press::Short) => panel.acknowledge(&state.borrow()),
            Some(Press::Long) => {
                tracing::warn!("button held: stopping gracefully so power can be cut");
                let _ = stop_tx.send(true);
            }
            None => {}
        }
        let leds = panel.leds(&state.borrow());
        board.set_leds(leds);
    }
}
