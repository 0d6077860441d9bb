//! `glioedge serve`: the appliance daemon.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use glioedge::config::Config;
use glioedge::error::Classify;
use glioedge::pipeline::{PipelineProcessor, Runtime};
use glioedge::service::processor::{CaseProcessor, Slowed};

/// Resolves when SIGTERM or SIGINT arrives.
async fn termination() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Runs the service until SIGTERM/SIGINT (or a long press of the board's button).
pub fn serve(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("glioedge")
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let board = match glioedge::board::default_board(&config.board) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: board: {e}");
            eprintln!("hint: check the [board] pins and that the service may use /dev/gpiomem");
            return ExitCode::from(1);
        }
    };
    // The analysis pipeline, loaded once: model package verified, network optimised.
    let pipeline = match Runtime::load(config.clone(), None) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            return ExitCode::from(e.kind().exit_code());
        }
    };
    let pipeline = PipelineProcessor::new(pipeline, false);
    // Demonstration/test aid: slow every stage down so a case can be watched (or killed)
    // mid-way. Unset in production.
    let processor: Arc<dyn CaseProcessor> = match std::env::var("GLIOEDGE_STAGE_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|ms| *ms > 0)
    {
        Some(ms) => {
            tracing::warn!("GLIOEDGE_STAGE_DELAY_MS={ms}: every stage is slowed down");
            Arc::new(Slowed {
                inner: pipeline,
                delay: Duration::from_millis(ms),
            })
        }
        None => Arc::new(pipeline),
    };
    let result = runtime.block_on(glioedge::service::run(
        config.clone(),
        processor,
        board,
        termination(),
    ));
    // A case still running after the grace time is abandoned (it stays in work/ and is
    // re-queued on the next start); do not wait for its thread.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            if let Some(h) = e.hint() {
                eprintln!("hint: {h}");
            }
            ExitCode::from(e.kind().exit_code())
        }
    }
}
