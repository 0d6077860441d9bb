//! The appliance end to end: the real `glioedge serve` binary on a temporary spool and a free
//! loopback port. Cases are cut from the real BraTS case (copied at test time, never committed);
//! bad cases are made as the foundation tests make them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use glioedge::volume::{read_nifti, write_nifti, StoredType};
use serde_json::Value;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A small valid case: the BraTS case cropped around its tumour (t1c, t2, flair, mask).
fn make_seed(data: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let src = data.join("brats_case");
    let (seg, _) = read_nifti(&src.join("segmentation.nii.gz"), 1 << 30).expect("seg");
    let [nx, ny, nz] = seg.dims();
    let (mut lo, mut hi) = ([usize::MAX; 3], [0usize; 3]);
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                if seg.at(i, j, k) > 0.0 {
                    for (a, v) in [i, j, k].into_iter().enumerate() {
                        lo[a] = lo[a].min(v);
                        hi[a] = hi[a].max(v + 1);
                    }
                }
            }
        }
    }
    let n = [nx, ny, nz];
    for a in 0..3 {
        lo[a] = lo[a].saturating_sub(2);
        hi[a] = (hi[a] + 2).min(n[a]);
    }
    write_nifti(&dir.join("mask.nii.gz"), &seg.crop(lo, hi), StoredType::U8).expect("mask");
    for (from, to) in [("t1c", "t1c"), ("t2w", "t2"), ("t2f", "flair")] {
        let (v, _) = read_nifti(&src.join(format!("{from}.nii.gz")), 1 << 30).expect("image");
        write_nifti(
            &dir.join(format!("{to}.nii.gz")),
            &v.crop(lo, hi),
            StoredType::F32,
        )
        .expect("write");
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

/// Drops a copy of `seed` as `inbox/<name>` the way a careful sender does: copied under a
/// hidden name, then renamed.
fn drop_case(spool: &Path, seed: &Path, name: &str) {
    let tmp = spool.join("inbox").join(format!(".{name}.part"));
    copy_dir(seed, &tmp);
    std::fs::rename(&tmp, spool.join("inbox").join(name)).expect("rename into inbox");
}

struct Box_ {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Box_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(root: &Path, port: u16, extra: &str) -> PathBuf {
    let cfg = root.join("glioedge.toml");
    let text = format!(
        "[inference]\nmodel = \"{}\"\nprecision = \"f32\"\nthreads = 1\n\n[spool]\nroot = \"{}\"\nquiet_seconds = 1.0\nmin_free_disk_mb = 1\n\n[service]\nrescan_seconds = 0.2\nshutdown_grace_seconds = 20\n\n[web]\nbind = \"127.0.0.1:{port}\"\n{extra}",
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/demo-convnext-tiny")
            .display(),
        root.join("spool").display()
    );
    std::fs::write(&cfg, text).expect("config");
    cfg
}

fn start(cfg: &Path, port: u16, env: &[(&str, &str)]) -> Box_ {
    let log = cfg.with_extension(format!("log.{}", Instant::now().elapsed().as_nanos()));
    let log = PathBuf::from(format!("{}-{}", log.display(), std::process::id()));
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .expect("log");
    let mut cmd = Command::new(common::bin());
    cmd.args(["serve", "--config"])
        .arg(cfg)
        .env("GLIOEDGE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(stderr);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("start glioedge serve");
    let b = Box_ { child, port, log };
    wait_for(Duration::from_secs(120), "the status page", || {
        http(b.port, "/healthz", &[]).is_some_and(|r| r.status == 200)
    });
    b
}

fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

struct Resp {
    status: u16,
    headers: String,
    body: String,
}

/// A minimal HTTP/1.1 GET (no client library needed).
fn http(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<Resp> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some(Resp {
        status,
        headers: head.to_string(),
        body: body.to_string(),
    })
}

fn get_json(port: u16, path: &str) -> Value {
    let r = http(port, path, &[]).expect("response");
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    // Connection: close responses may be chunked; the JSON is the part between the braces.
    let start = r.body.find(['{', '[']).expect("json start");
    let end = r.body.rfind(['}', ']']).expect("json end");
    serde_json::from_str(&r.body[start..=end]).expect("json")
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn setup() -> Option<(tempfile::TempDir, PathBuf)> {
    let data = common::data_dir()?;
    let tmp = tempfile::tempdir().expect("tmp");
    let seed = tmp.path().join("seed");
    make_seed(&data, &seed);
    Some((tmp, seed))
}

#[test]
fn dropped_case_is_published_listed_and_served() {
    let Some((tmp, seed)) = setup() else { return };
    let port = free_port();
    let cfg = write_config(tmp.path(), port, "");
    let spool = tmp.path().join("spool");
    let b = start(&cfg, port, &[]);
    drop_case(&spool, &seed, "case-0001");
    // The same name again must not overwrite the first result; this one says READY.
    copy_dir(&seed, &spool.join("inbox").join("case 0001"));
    std::fs::write(spool.join("inbox/case 0001/READY"), b"").expect("ready");
    wait_for(Duration::from_secs(120), "two results", || {
        get_json(port, "/api/status")["counters"]["processed"] == 2
    });
    assert_eq!(
        entries(&spool.join("outbox")),
        vec!["case-0001", "case_0001"]
    );
    for id in ["case-0001", "case_0001"] {
        let dir = spool.join("outbox").join(id);
        let result: Value =
            serde_json::from_slice(&std::fs::read(dir.join("result.json")).expect("result.json"))
                .expect("json");
        assert_eq!(result["case_id"], id);
        assert_eq!(result["schema"], "glioedge.result/1");
        assert!(result["quality"]["roi_voxels"].as_u64().expect("voxels") > 1000);
        assert!(dir.join("report.html").is_file());
        assert!(dir.join("features.csv").is_file());
        assert_eq!(result["model"]["demo"], true);
        assert_eq!(result["precision"], "f32");
        let record: Value =
            serde_json::from_slice(&std::fs::read(dir.join("spool.json")).expect("spool.json"))
                .expect("json");
        assert_eq!(record["id"], id);
    }
    assert!(entries(&spool.join("inbox")).is_empty());
    assert!(entries(&spool.join("work")).is_empty());
    assert!(entries(&spool.join("failed")).is_empty());

    let cases = get_json(port, "/api/cases");
    let ids: Vec<&str> = cases
        .as_array()
        .expect("list")
        .iter()
        .map(|c| c["id"].as_str().expect("id"))
        .collect();
    assert!(
        ids.contains(&"case-0001") && ids.contains(&"case_0001"),
        "{ids:?}"
    );
    let one = get_json(port, "/api/cases/case-0001");
    assert_eq!(one["status"], "done");
    assert_eq!(one["report"], "report.html");
    let report = http(port, "/cases/case-0001/report.html", &[]).expect("report");
    assert_eq!(report.status, 200);
    assert!(report.headers.to_ascii_lowercase().contains("text/html"));
    assert!(report.body.contains("case-0001"));
    // No way out of the case folder.
    for bad in [
        "/cases/case-0001/../../glioedge.toml",
        "/cases/case-0001/%2e%2e/case_0001/result.json",
        "/cases/..%2Fcase-0001/result.json",
        "/cases/case-0001/.glioedge-claim.json",
    ] {
        assert_eq!(http(port, bad, &[]).expect("resp").status, 404, "{bad}");
    }
    let status = get_json(port, "/api/status");
    assert_eq!(status["counters"]["processed"], 2);
    // The shipped service runs the real pipeline with the bundled demo model.
    assert_eq!(status["processor"]["model_name"], "demo-convnext-tiny");
    assert_eq!(status["processor"]["demo"], true);
    let metrics = http(port, "/metrics", &[]).expect("metrics").body;
    assert!(
        metrics.contains("glioedge_cases_processed_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("glioedge_stage_seconds_count{stage=\"load\"} 2"),
        "{metrics}"
    );
    let page = http(port, "/", &[]).expect("page");
    assert_eq!(page.status, 200);
    // minijinja's HTML escaping writes `/` as `&#x2f;` (browsers decode it in attributes).
    let body = page.body.replace("&#x2f;", "/");
    assert!(
        body.contains("href=\"/cases/case-0001/report.html\"") && body.contains("DEMO"),
        "{body}"
    );
    drop(b);
}

#[test]
fn bad_cases_go_to_failed_and_the_service_keeps_serving() {
    let Some((tmp, seed)) = setup() else { return };
    let port = free_port();
    let cfg = write_config(tmp.path(), port, "");
    let spool = tmp.path().join("spool");
    let b = start(&cfg, port, &[]);

    // Truncated gzip (from the foundation's bad-input list).
    let bad = tmp.path().join("truncated");
    copy_dir(&seed, &bad);
    let bytes = std::fs::read(bad.join("t1c.nii.gz")).expect("read");
    std::fs::write(bad.join("t1c.nii.gz"), &bytes[..bytes.len() / 2]).expect("truncate");
    std::fs::rename(&bad, spool.join("inbox/truncated")).expect("drop");
    // A symlink leading out of the spool.
    let link = tmp.path().join("linked");
    copy_dir(&seed, &link);
    std::fs::remove_file(link.join("flair.nii.gz")).expect("rm");
    std::os::unix::fs::symlink(seed.join("flair.nii.gz"), link.join("flair.nii.gz"))
        .expect("symlink");
    std::fs::rename(&link, spool.join("inbox/linked")).expect("drop");
    // A stray file.
    std::fs::write(spool.join("inbox/notes.txt"), b"not a case").expect("file");

    wait_for(Duration::from_secs(60), "three failures", || {
        entries(&spool.join("failed")).len() == 3
    });
    let err = |id: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(spool.join("failed").join(id).join("error.json")).expect("error.json"),
        )
        .expect("json")
    };
    let e = err("truncated");
    assert_eq!(e["kind"], "bad_input");
    assert_eq!(e["stage"], "load");
    assert!(
        e["message"]
            .as_str()
            .expect("msg")
            .starts_with("t1c.nii.gz: "),
        "{e}"
    );
    assert!(
        spool.join("failed/truncated/mask.nii.gz").is_file(),
        "inputs kept"
    );
    let e = err("linked");
    assert_eq!(e["stage"], "intake");
    assert!(
        e["message"]
            .as_str()
            .expect("msg")
            .contains("outside the spool"),
        "{e}"
    );
    let e = err("notes.txt");
    assert!(
        e["message"]
            .as_str()
            .expect("msg")
            .contains("not a case folder"),
        "{e}"
    );
    assert!(spool.join("failed/notes.txt/notes.txt").is_file());

    // Still serving, and still processing.
    assert_eq!(http(port, "/healthz", &[]).expect("healthz").status, 200);
    drop_case(&spool, &seed, "good");
    wait_for(Duration::from_secs(60), "the good case", || {
        spool.join("outbox/good/spool.json").is_file()
    });
    let status = get_json(port, "/api/status");
    assert_eq!(status["counters"]["failed"], 3);
    let failures: Vec<&str> = status["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| f["id"].as_str().expect("id"))
        .collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    let one = get_json(port, "/api/cases/truncated");
    assert_eq!(one["status"], "failed");
    assert_eq!(one["error"]["kind"], "bad_input");
    drop(b);
}

#[test]
fn kill_9_mid_case_then_restart_completes_exactly_once() {
    let Some((tmp, seed)) = setup() else { return };
    let port = free_port();
    let cfg = write_config(tmp.path(), port, "");
    let spool = tmp.path().join("spool");
    // Slow stages so the kill lands while the case is in work/.
    let mut b = start(&cfg, port, &[("GLIOEDGE_STAGE_DELAY_MS", "1500")]);
    drop_case(&spool, &seed, "crash-me");
    wait_for(Duration::from_secs(30), "the case to be processing", || {
        get_json(port, "/api/status")["current"]["id"] == "crash-me"
    });
    assert_eq!(entries(&spool.join("work")), vec!["crash-me"]);
    b.child.kill().expect("kill -9");
    b.child.wait().expect("reaped");
    assert!(entries(&spool.join("outbox")).is_empty());
    assert_eq!(entries(&spool.join("work")), vec!["crash-me"]);

    let port = free_port();
    let cfg = write_config(tmp.path(), port, "");
    let b = start(&cfg, port, &[]);
    wait_for(Duration::from_secs(60), "the re-queued case", || {
        spool.join("outbox/crash-me/spool.json").is_file()
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(entries(&spool.join("outbox")), vec!["crash-me"]);
    assert!(entries(&spool.join("failed")).is_empty());
    assert!(entries(&spool.join("work")).is_empty());
    assert!(entries(&spool.join("tmp")).is_empty());
    let status = get_json(port, "/api/status");
    assert_eq!(status["counters"]["processed"], 1);
    drop(b);
}

#[test]
fn sigterm_finishes_the_current_case_then_exits() {
    let Some((tmp, seed)) = setup() else { return };
    let port = free_port();
    let cfg = write_config(tmp.path(), port, "");
    let spool = tmp.path().join("spool");
    let mut b = start(&cfg, port, &[("GLIOEDGE_STAGE_DELAY_MS", "400")]);
    drop_case(&spool, &seed, "finish-me");
    wait_for(Duration::from_secs(30), "the case to be processing", || {
        get_json(port, "/api/status")["current"]["id"] == "finish-me"
    });
    let pid = nix::unistd::Pid::from_raw(b.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = b.child.try_wait().expect("wait") {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(spool.join("outbox/finish-me/spool.json").is_file());
    assert!(entries(&spool.join("work")).is_empty());
    let log = std::fs::read_to_string(&b.log).expect("log");
    assert!(log.contains("SIGTERM"), "{log}");
}

#[test]
fn off_loopback_needs_a_token_401_without_200_with() {
    let Some(_) = common::data_dir() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let cfg = tmp.path().join("open.toml");
    std::fs::write(&cfg, format!("[web]\nbind = \"0.0.0.0:{port}\"\n")).expect("cfg");
    let out = Command::new(common::bin())
        .args(["config", "check", "--config"])
        .arg(&cfg)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("web.token"));

    let token = "s3cret-token-0123456789";
    let cfg = write_config(tmp.path(), port, &format!("token = \"{token}\"\n"));
    let text = std::fs::read_to_string(&cfg)
        .expect("cfg")
        .replace("127.0.0.1:", "0.0.0.0:");
    std::fs::write(&cfg, text).expect("cfg");
    let b = start(&cfg, port, &[]);
    for path in ["/", "/api/status", "/api/cases", "/metrics"] {
        assert_eq!(http(port, path, &[]).expect("resp").status, 401, "{path}");
    }
    let bearer = format!("Bearer {token}");
    assert_eq!(
        http(port, "/api/status", &[("Authorization", &bearer)])
            .expect("resp")
            .status,
        200
    );
    assert_eq!(
        http(
            port,
            "/api/status",
            &[("Authorization", "Bearer s3cret-token-0123456780")]
        )
        .expect("resp")
        .status,
        401
    );
    let login = http(port, &format!("/?token={token}"), &[]).expect("resp");
    assert_eq!(login.status, 303);
    let cookie = login
        .headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("set-cookie")
                .then(|| v.trim().to_string())
        })
        .expect("cookie set");
    assert!(cookie.contains("HttpOnly"));
    let pair = cookie.split(';').next().expect("pair").to_string();
    let page = http(port, "/", &[("Cookie", &pair)]).expect("resp");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("glioedge"));
    assert_eq!(
        http(port, "/?token=wrong-token-000000000", &[])
            .expect("resp")
            .status,
        401
    );
    assert_eq!(http(port, "/healthz", &[]).expect("resp").status, 200);
    drop(b);
}

/// The service in-process with an injected processor: stage progress reaches the snapshot,
/// a failure keeps its stage, and a panicking processor fails its case without taking the
/// service down.
#[test]
fn injected_processor_failures_and_panics_are_contained() {
    use glioedge::error::ErrorKind;
    use glioedge::service::processor::{
        CaseProcessor, CaseSummary, ProcessError, ProcessorInfo, Stage,
    };

    struct Scripted;
    impl CaseProcessor for Scripted {
        fn info(&self) -> ProcessorInfo {
            ProcessorInfo {
                model_name: "scripted".into(),
                model_version: "9".into(),
                demo: false,
                precision: "int8".into(),
                card_summary: "test".into(),
            }
        }
        fn process(
            &self,
            case_dir: &Path,
            out_dir: &Path,
            progress: &dyn Fn(Stage, f32),
        ) -> Result<CaseSummary, ProcessError> {
            let name = case_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            progress(Stage::Load, 1.0);
            progress(Stage::Radiomics, 0.5);
            if name.starts_with("panic") {
                panic!("scripted panic");
            }
            if name.starts_with("fail") {
                return Err(ProcessError {
                    kind: ErrorKind::Internal,
                    message: "scripted inference fault".into(),
                    hint: None,
                    stage: Stage::Inference,
                });
            }
            progress(Stage::Inference, 1.0);
            progress(Stage::Report, 1.0);
            std::fs::write(out_dir.join("report.html"), "<p>ok</p>").expect("write");
            Ok(CaseSummary {
                headline: "scripted ok".into(),
                report: "report.html".into(),
                files: vec!["report.html".into()],
                warnings: vec![],
            })
        }
    }

    let Some(_) = common::data_dir() else { return };
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let cfg = write_config(tmp.path(), port, "");
    let config = glioedge::config::Config::load(Some(&cfg)).expect("config");
    let spool = tmp.path().join("spool");
    for name in ["panic-1", "fail-1", "ok-1"] {
        let d = spool.join("inbox").join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        std::fs::write(d.join("READY"), b"").expect("ready");
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let service = rt.spawn(glioedge::service::run(
        config,
        std::sync::Arc::new(Scripted),
        Box::new(glioedge::board::SimBoard::default()),
        async move {
            let _ = stop_rx.await;
        },
    ));
    wait_for(Duration::from_secs(30), "all three cases", || {
        http(port, "/api/status", &[])
            .is_some_and(|r| r.body.contains("\"processed\":1,\"failed\":2"))
    });
    assert_eq!(entries(&spool.join("failed")), vec!["fail-1", "panic-1"]);
    assert_eq!(entries(&spool.join("outbox")), vec!["ok-1"]);
    let err = |id: &str| -> Value {
        serde_json::from_slice(
            &std::fs::read(spool.join("failed").join(id).join("error.json")).expect("error.json"),
        )
        .expect("json")
    };
    assert_eq!(err("fail-1")["stage"], "inference");
    assert_eq!(err("fail-1")["kind"], "internal");
    assert!(err("panic-1")["message"]
        .as_str()
        .expect("msg")
        .contains("crashed"));
    let status = get_json(port, "/api/status");
    assert_eq!(status["processor"]["model_name"], "scripted");
    assert_eq!(status["counters"]["processed"], 1);
    assert_eq!(status["counters"]["failed"], 2);
    // Radiomics ran in all three cases (each moved on from it or failed in it).
    let metrics = http(port, "/metrics", &[]).expect("metrics").body;
    assert!(
        metrics.contains("glioedge_stage_seconds_count{stage=\"load\"} 3"),
        "{metrics}"
    );
    assert!(!http(port, "/", &[]).expect("page").body.contains("DEMO"));
    stop_tx.send(()).expect("stop");
    rt.block_on(service).expect("joined").expect("clean stop");
}
