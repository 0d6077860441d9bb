//! The read-only status page and API (axum).
//!
//! | route | what |
//! |---|---|
//! | `/` | status page (refreshes itself every 2 s) |
//! | `/api/status` | the state snapshot as JSON |
//! | `/api/cases` | finished cases (outbox and failed), newest first |
//! | `/api/cases/{id}` | one case: queued, processing, done (with its record) or failed (with error.json) |
//! | `/cases/{id}/{file}` | a result file (`report.html`, `result.json`, overlays…) |
//! | `/metrics` | Prometheus text |
//! | `/healthz` | `ok` while running (never needs the token) |
//!
//! No endpoint changes anything. The page shows case ids only, never patient text. When a
//! token is configured (required off loopback), every route but `/healthz` needs it as
//! `Authorization: Bearer <token>` or as the cookie set by visiting any page with
//! `?token=<token>`; tokens are compared in constant time (on their SHA-256, so the length does
//! not leak either).

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use minijinja::Environment;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

use crate::case::sanitize_id;
use crate::service::processor::Stage;
use crate::service::state::{Phase, Snapshot};
use crate::spool::{iso8601, Spool};

const TEMPLATE: &str = include_str!("templates/status.html.j2");
const COOKIE: &str = "glioedge_token";

/// What every handler can see.
#[derive(Clone)]
pub struct WebState {
    state: watch::Receiver<Snapshot>,
    spool: Spool,
    token_hash: Option<[u8; 32]>,
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("spool", &self.spool)
            .field("token", &self.token_hash.map(|_| "(set)"))
            .finish()
    }
}

fn hash(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl WebState {
    /// From the service's snapshot channel, the spool (for result files) and the token.
    pub fn new(state: watch::Receiver<Snapshot>, spool: Spool, token: Option<String>) -> WebState {
        let mut env = Environment::new();
        // The template is part of the binary; a syntax error is caught by the tests.
        if let Err(e) = env.add_template("status.html", TEMPLATE) {
            tracing::error!("status page template: {e}");
        }
        WebState {
            state,
            spool,
            token_hash: token.map(|t| hash(t.trim().as_bytes())),
            env: Arc::new(env),
        }
    }

    fn token_ok(&self, given: &str) -> bool {
        match &self.token_hash {
            None => true,
            Some(h) => bool::from(hash(given.trim().as_bytes()).ct_eq(h)),
        }
    }
}

/// The router (exposed so tests can drive it without a socket).
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/status", get(api_status))
        .route("/api/cases", get(api_cases))
        .route("/api/cases/{id}", get(api_case))
        .route("/cases/{id}/{*file}", get(case_file))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    if let Err(e) = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!("status page stopped: {e}");
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == "token").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn presented_token(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.to_string());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == COOKIE).then(|| v.to_string())
        })
}

async fn auth(State(st): State<WebState>, req: Request, next: Next) -> Response {
    if st.token_hash.is_none() || req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    if let Some(t) = query_token(req.uri().query()) {
        if st.token_ok(&t) {
            // Log in: remember the token in a cookie and drop it from the address bar.
            let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", t.trim());
            let mut resp = (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, req.uri().path().to_string())],
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            return resp;
        }
    } else if let Some(t) = presented_token(req.headers()) {
        if st.token_ok(&t) {
            return next.run(req).await;
        }
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "401 unauthorized: this box needs its access token (open any page once with ?token=...)\n",
    )
        .into_response()
}

#[derive(Serialize)]
struct StageView {
    name: &'static str,
    state: &'static str,
}

#[derive(Serialize)]
struct RowView {
    id: String,
    when: String,
    headline: String,
    report: Option<String>,
    kind: String,
    stage: String,
    hint: String,
    seconds: String,
}

fn fmt_duration(s: u64) -> String {
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}

fn url_segment(id: &str) -> String {
    // Ids are sanitised to [A-Za-z0-9._-], which need no escaping.
    sanitize_id(id)
}

async fn page(State(st): State<WebState>) -> Response {
    let s = st.state.borrow().clone();
    let current = s.current.as_ref().map(|c| {
        let stages: Vec<StageView> = Stage::ALL
            .iter()
            .map(|&stage| StageView {
                name: stage.name(),
                state: if c.stage == stage {
                    "active"
                } else if c.done.contains(&stage) {
                    "done"
                } else {
                    "todo"
                },
            })
            .collect();
        minijinja::context! {
            id => c.id,
            stage => c.stage.name(),
            pct => (c.progress * 100.0).round() as u32,
            attempt => c.attempt,
            elapsed => fmt_duration(crate::spool::unix_now().saturating_sub(c.started_at)),
            stages => stages,
        }
    });
    let rows = |list: &[crate::service::state::Finished]| -> Vec<RowView> {
        list.iter()
            .map(|f| RowView {
                id: f.id.clone(),
                when: iso8601(f.finished_at).replace('T', " "),
                headline: f.headline.clone(),
                report: f
                    .report
                    .as_ref()
                    .map(|r| format!("/cases/{}/{}", url_segment(&f.id), r)),
                kind: f
                    .error
                    .as_ref()
                    .map(|e| e.kind.to_string())
                    .unwrap_or_default(),
                stage: f
                    .error
                    .as_ref()
                    .map(|e| e.stage.name().to_string())
                    .unwrap_or_default(),
                hint: f
                    .error
                    .as_ref()
                    .and_then(|e| e.hint.clone())
                    .unwrap_or_default(),
                seconds: if f.seconds > 0.0 {
                    format!("{:.1} s", f.seconds)
                } else {
                    String::new()
                },
            })
            .collect()
    };
    let h = &s.health;
    let ctx = minijinja::context! {
        version => s.version,
        phase => match s.phase { Phase::Running => "running", Phase::Paused => "paused", Phase::Stopping => "stopping" },
        pause_reason => s.pause_reason,
        processor => s.processor,
        queue => s.queue,
        inbox_waiting => s.inbox_waiting,
        current => current,
        recent => rows(&s.recent),
        failures => rows(&s.failures),
        processed => s.counters.processed,
        failed => s.counters.failed,
        temp => h.cpu_temp_c.map(|t| format!("{t:.1} °C")),
        load => h.load.map(|l| format!("{:.2} / {:.2} / {:.2}", l[0], l[1], l[2])),
        mem => match (h.mem_available_mb, h.mem_total_mb) {
            (Some(a), Some(t)) => Some(format!("{a} MB free of {t} MB")),
            _ => None,
        },
        disk => h.disk_free_mb.map(|d| format!("{:.1} GB free", d as f64 / 1024.0)),
        uptime => fmt_duration(h.uptime_s),
        now => iso8601(crate::spool::unix_now()).replace('T', " "),
    };
    match st
        .env
        .get_template("status.html")
        .and_then(|t| t.render(ctx))
    {
        Ok(html) => (
            [(
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            )],
            Html(html),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("status page: {e}\n"),
        )
            .into_response(),
    }
}

async fn api_status(State(st): State<WebState>) -> Json<Snapshot> {
    Json(st.state.borrow().clone())
}

async fn api_cases(State(st): State<WebState>) -> Response {
    let spool = st.spool.clone();
    match tokio::task::spawn_blocking(move || spool.list_finished(1000)).await {
        Ok(list) => Json(list).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn api_case(State(st): State<WebState>, UrlPath(id): UrlPath<String>) -> Response {
    // The folders are the truth: a case is done once it is in outbox/, even if the snapshot
    // has not caught up yet.
    let spool = st.spool.clone();
    let lookup = id.clone();
    let found = tokio::task::spawn_blocking(move || {
        let finished = spool.finished(&lookup)?;
        let record = spool.record(&lookup);
        Some(serde_json::json!({
            "id": finished.id,
            "status": finished.status,
            "finished_at": iso8601(finished.finished_at),
            "headline": finished.headline,
            "report": finished.report,
            "error": finished.error,
            "record": record,
        }))
    })
    .await
    .ok()
    .flatten();
    if let Some(v) = found {
        return Json(v).into_response();
    }
    let s = st.state.borrow().clone();
    if let Some(c) = s.current.as_ref().filter(|c| c.id == id) {
        return Json(serde_json::json!({"id": id, "status": "processing", "current": c}))
            .into_response();
    }
    if s.queue.contains(&id) {
        return Json(serde_json::json!({"id": id, "status": "queued"})).into_response();
    }
    (StatusCode::NOT_FOUND, "no such case\n").into_response()
}

/// Resolves `outbox/<id>/<file>` safely: sanitised id, plain relative components, no hidden
/// names, and the canonical path still inside the case folder (no symlink escapes).
fn result_file(spool: &Spool, id: &str, file: &str) -> Option<PathBuf> {
    if id.is_empty() || id != sanitize_id(id) {
        return None;
    }
    let rel = Path::new(file);
    let ok = rel.components().all(|c| match c {
        Component::Normal(n) => n.to_str().is_some_and(|n| !n.starts_with('.')),
        _ => false,
    });
    if !ok || file.is_empty() {
        return None;
    }
    let base = std::fs::canonicalize(spool.outbox().join(id)).ok()?;
    let path = std::fs::canonicalize(base.join(rel)).ok()?;
    (path.starts_with(&base) && path.is_file()).then_some(path)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "csv" => "text/csv; charset=utf-8",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain; charset=utf-8",
        "zst" => "application/zstd",
        _ => "application/octet-stream",
    }
}

async fn case_file(
    State(st): State<WebState>,
    UrlPath((id, file)): UrlPath<(String, String)>,
) -> Response {
    let spool = st.spool.clone();
    let read = tokio::task::spawn_blocking(move || {
        let path = result_file(&spool, &id, &file)?;
        let bytes = std::fs::read(&path).ok()?;
        Some((content_type(&path), bytes))
    })
    .await
    .ok()
    .flatten();
    match read {
        Some((ct, bytes)) => (
            [
                (header::CONTENT_TYPE, ct),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; img-src data: 'self'; style-src 'unsafe-inline'",
                ),
            ],
            Body::from(bytes),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', " ")
}

/// The Prometheus text exposition of a snapshot.
pub fn metrics_text(s: &Snapshot) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<String>| {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for l in lines {
            let _ = writeln!(o, "{l}");
        }
    };
    metric(
        "glioedge_info",
        "gauge",
        "Software and model identity.",
        vec![format!(
            "glioedge_info{{version=\"{}\",model=\"{}\",model_version=\"{}\",precision=\"{}\",demo=\"{}\"}} 1",
            label(&s.version),
            label(&s.processor.model_name),
            label(&s.processor.model_version),
            label(&s.processor.precision),
            s.processor.demo
        )],
    );
    metric(
        "glioedge_cases_processed_total",
        "counter",
        "Cases published to outbox since the service started.",
        vec![format!(
            "glioedge_cases_processed_total {}",
            s.counters.processed
        )],
    );
    metric(
        "glioedge_cases_failed_total",
        "counter",
        "Cases moved to failed since the service started.",
        vec![format!("glioedge_cases_failed_total {}", s.counters.failed)],
    );
    metric(
        "glioedge_queue_length",
        "gauge",
        "Claimed cases waiting for the worker.",
        vec![format!("glioedge_queue_length {}", s.queue.len())],
    );
    metric(
        "glioedge_inbox_waiting",
        "gauge",
        "Inbox entries not claimed yet (arriving or waiting for a queue slot).",
        vec![format!("glioedge_inbox_waiting {}", s.inbox_waiting)],
    );
    metric(
        "glioedge_busy",
        "gauge",
        "1 while a case is being processed.",
        vec![format!("glioedge_busy {}", u8::from(s.current.is_some()))],
    );
    metric(
        "glioedge_paused",
        "gauge",
        "1 while intake or processing is paused (low disk, temperature).",
        vec![format!(
            "glioedge_paused {}",
            u8::from(s.pause_reason.is_some())
        )],
    );
    let mut stage = Vec::new();
    for (k, v) in &s.counters.stage_seconds {
        stage.push(format!(
            "glioedge_stage_seconds_sum{{stage=\"{}\"}} {v}",
            label(k)
        ));
        let n = s.counters.stage_runs.get(k).copied().unwrap_or(0);
        stage.push(format!(
            "glioedge_stage_seconds_count{{stage=\"{}\"}} {n}",
            label(k)
        ));
    }
    metric(
        "glioedge_stage_seconds",
        "summary",
        "Wall time spent per pipeline stage.",
        stage,
    );
    if let Some(t) = s.health.cpu_temp_c {
        metric(
            "glioedge_cpu_temperature_celsius",
            "gauge",
            "CPU temperature.",
            vec![format!("glioedge_cpu_temperature_celsius {t}")],
        );
    }
    if let Some(d) = s.health.disk_free_mb {
        metric(
            "glioedge_disk_free_bytes",
            "gauge",
            "Free space on the spool file system.",
            vec![format!("glioedge_disk_free_bytes {}", d << 20)],
        );
    }
    if let Some(m) = s.health.mem_available_mb {
        metric(
            "glioedge_memory_available_bytes",
            "gauge",
            "Available memory.",
            vec![format!("glioedge_memory_available_bytes {}", m << 20)],
        );
    }
    metric(
        "glioedge_uptime_seconds",
        "gauge",
        "Seconds since the service started.",
        vec![format!("glioedge_uptime_seconds {}", s.health.uptime_s)],
    );
    o
}

async fn metrics(State(st): State<WebState>) -> Response {
    let text = metrics_text(&st.state.borrow());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn healthz(State(st): State<WebState>) -> Response {
    if st.state.borrow().phase == Phase::Stopping {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_renders_and_tokens_decode() {
        let mut env = Environment::new();
        env.add_template("status.html", TEMPLATE)
            .expect("template parses");
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(query_token(Some("x=1&token=abc%21")), Some("abc!".into()));
        assert_eq!(query_token(Some("x=1")), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; glioedge_token=tok"),
        );
        assert_eq!(presented_token(&h), Some("tok".into()));
    }
}
