//! The appliance's configuration sections: `[spool]`, `[web]`, `[board]`, `[service]`.
//!
//! Same two stages as the rest of the configuration: the `Raw*` structs are exactly the TOML
//! (every key optional, unknown keys rejected) and [`resolve`] fills the defaults and checks every
//! value. The one rule that is more than a range check: the status page may only listen on a
//! non-loopback address when a token is configured, so a box is never put on the hospital
//! network with an open page by accident.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// `[spool]`
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpool {
    /// The spool folder (holds `inbox/ work/ outbox/ failed/`); default `./var`.
    pub root: Option<PathBuf>,
    /// A case folder without a `READY` file is taken once nothing in it changed for this long.
    pub quiet_seconds: Option<f64>,
    /// Intake pauses while the spool's file system has less free space than this.
    pub min_free_disk_mb: Option<u64>,
    /// `[spool.retention]`
    #[serde(default)]
    pub retention: RawRetention,
}

/// `[spool.retention]`: limits applied to `outbox/` and `failed/` (each separately).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// Delete finished cases older than this many days (default: keep forever).
    pub max_age_days: Option<f64>,
    /// Delete the oldest finished cases while a folder holds more than this (default: no limit).
    pub max_total_mb: Option<u64>,
}

/// `[web]`
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeb {
    /// Listen address of the status page (default `127.0.0.1:8080`).
    pub bind: Option<String>,
    /// Access token; required when `bind` is not a loopback address.
    pub token: Option<String>,
}

/// `[board]`: BCM GPIO pin numbers (used by the `rpi` build only).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawBoard {
    /// Green "ready" LED (default 17).
    pub led_ready: Option<u8>,
    /// Yellow "busy" LED (default 27).
    pub led_busy: Option<u8>,
    /// Red "attention" LED (default 22).
    pub led_attention: Option<u8>,
    /// Push button to ground, internal pull-up (default 23).
    pub button: Option<u8>,
    /// Holding the button this long requests a graceful stop (default 3 s).
    pub long_press_seconds: Option<f64>,
}

/// `[service]`
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Cases claimed ahead of the worker (default 8).
    pub queue_size: Option<usize>,
    /// Seconds between inbox rescans (the fallback when file events are missed; default 5).
    pub rescan_seconds: Option<f64>,
    /// On SIGTERM, wait this long for the current case before leaving it to be re-queued
    /// (default 20 s).
    pub shutdown_grace_seconds: Option<f64>,
    /// Results and failures kept on the status page (default 20).
    pub recent: Option<usize>,
    /// Above this CPU temperature (°C) the box pauses between cases (default 80).
    pub max_temp_c: Option<f64>,
    /// A case that was interrupted by a crash this many times goes to `failed/` (default 3).
    pub max_attempts: Option<u32>,
}

/// Resolved `[spool]`.
#[derive(Debug, Clone, Serialize)]
pub struct SpoolConfig {
    /// Absolute spool folder.
    pub root: PathBuf,
    /// Seconds.
    pub quiet_seconds: f64,
    /// MiB.
    pub min_free_disk_mb: u64,
    /// Retention limits.
    pub retention: Retention,
}

/// Resolved `[spool.retention]`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Retention {
    /// Days (absent: no age limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_days: Option<f64>,
    /// MiB (absent: no size limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total_mb: Option<u64>,
}

/// Resolved `[web]`.
#[derive(Debug, Clone, Serialize)]
pub struct WebConfig {
    /// Listen address.
    pub bind: SocketAddr,
    /// Access token (never printed).
    #[serde(skip)]
    pub token: Option<String>,
}

/// Resolved `[board]`.
#[derive(Debug, Clone, Serialize)]
pub struct BoardConfig {
    /// BCM pin.
    pub led_ready: u8,
    /// BCM pin.
    pub led_busy: u8,
    /// BCM pin.
    pub led_attention: u8,
    /// BCM pin.
    pub button: u8,
    /// Seconds.
    pub long_press_seconds: f64,
}

/// Resolved `[service]`.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceConfig {
    /// Cases.
    pub queue_size: usize,
    /// Seconds.
    pub rescan_seconds: f64,
    /// Seconds.
    pub shutdown_grace_seconds: f64,
    /// Entries.
    pub recent: usize,
    /// °C.
    pub max_temp_c: f64,
    /// Attempts.
    pub max_attempts: u32,
}

/// Default listen address of the status page.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// Resolves the four appliance sections. `path` names the file in messages; relative spool
/// paths are made absolute against the current directory.
pub fn resolve(
    spool: RawSpool,
    web: RawWeb,
    board: RawBoard,
    service: RawService,
    path: &Path,
) -> Result<(SpoolConfig, WebConfig, BoardConfig, ServiceConfig), ConfigError> {
    let invalid = |key: &'static str, value: String, problem: &str| ConfigError::Invalid {
        path: path.to_path_buf(),
        key,
        value,
        problem: problem.to_string(),
    };
    let in_range = |key: &'static str, v: f64, lo: f64, hi: f64| {
        if v.is_finite() && v >= lo && v <= hi {
            Ok(v)
        } else {
            Err(invalid(
                key,
                v.to_string(),
                &format!("must be between {lo} and {hi}"),
            ))
        }
    };

    let root = spool.root.unwrap_or_else(|| PathBuf::from("./var"));
    if root.as_os_str().is_empty() {
        return Err(invalid("spool.root", String::new(), "must not be empty"));
    }
    let root = std::path::absolute(&root).map_err(|e| {
        invalid(
            "spool.root",
            root.display().to_string(),
            &format!("cannot make it absolute: {e}"),
        )
    })?;
    let quiet_seconds = in_range(
        "spool.quiet_seconds",
        spool.quiet_seconds.unwrap_or(10.0),
        0.0,
        86_400.0,
    )?;
    let min_free_disk_mb = spool.min_free_disk_mb.unwrap_or(500);
    if min_free_disk_mb > 1 << 24 {
        return Err(invalid(
            "spool.min_free_disk_mb",
            min_free_disk_mb.to_string(),
            "must be at most 16 TiB",
        ));
    }
    let max_age_days = spool
        .retention
        .max_age_days
        .map(|d| in_range("spool.retention.max_age_days", d, 0.001, 36_500.0))
        .transpose()?;
    let max_total_mb = spool.retention.max_total_mb;
    if max_total_mb == Some(0) {
        return Err(invalid(
            "spool.retention.max_total_mb",
            "0".into(),
            "must be positive (leave it out for no limit)",
        ));
    }

    let bind_text = web.bind.unwrap_or_else(|| DEFAULT_BIND.to_string());
    let bind: SocketAddr = bind_text.parse().map_err(|_| {
        invalid(
            "web.bind",
            bind_text.clone(),
            "expected address:port, e.g. 127.0.0.1:8080 or [::1]:8080",
        )
    })?;
    let token = match web.token {
        Some(t) if t.trim().len() < 16 => {
            return Err(invalid(
                "web.token",
                "(hidden)".into(),
                "must be at least 16 characters",
            ))
        }
        t => t,
    };
    if !bind.ip().is_loopback() && token.is_none() {
        return Err(invalid(
            "web.bind",
            bind_text,
            "listening beyond this machine requires web.token (or bind 127.0.0.1)",
        ));
    }

    let pins = [
        ("board.led_ready", board.led_ready.unwrap_or(17)),
        ("board.led_busy", board.led_busy.unwrap_or(27)),
        ("board.led_attention", board.led_attention.unwrap_or(22)),
        ("board.button", board.button.unwrap_or(23)),
    ];
    for (i, (key, pin)) in pins.iter().enumerate() {
        if *pin > 27 {
            return Err(invalid(key, pin.to_string(), "BCM GPIO pins are 0..=27"));
        }
        if pins[..i].iter().any(|(_, p)| p == pin) {
            return Err(invalid(key, pin.to_string(), "pin used twice"));
        }
    }
    let long_press_seconds = in_range(
        "board.long_press_seconds",
        board.long_press_seconds.unwrap_or(3.0),
        0.5,
        30.0,
    )?;

    let queue_size = service.queue_size.unwrap_or(8);
    if !(1..=1000).contains(&queue_size) {
        return Err(invalid(
            "service.queue_size",
            queue_size.to_string(),
            "must be between 1 and 1000",
        ));
    }
    let recent = service.recent.unwrap_or(20);
    if !(1..=1000).contains(&recent) {
        return Err(invalid(
            "service.recent",
            recent.to_string(),
            "must be between 1 and 1000",
        ));
    }
    let max_attempts = service.max_attempts.unwrap_or(3);
    if !(1..=100).contains(&max_attempts) {
        return Err(invalid(
            "service.max_attempts",
            max_attempts.to_string(),
            "must be between 1 and 100",
        ));
    }
    Ok((
        SpoolConfig {
            root,
            quiet_seconds,
            min_free_disk_mb,
            retention: Retention {
                max_age_days,
                max_total_mb,
            },
        },
        WebConfig { bind, token },
        BoardConfig {
            led_ready: pins[0].1,
            led_busy: pins[1].1,
            led_attention: pins[2].1,
            button: pins[3].1,
            long_press_seconds,
        },
        ServiceConfig {
            queue_size,
            rescan_seconds: in_range(
                "service.rescan_seconds",
                service.rescan_seconds.unwrap_or(5.0),
                0.05,
                3600.0,
            )?,
            shutdown_grace_seconds: in_range(
                "service.shutdown_grace_seconds",
                service.shutdown_grace_seconds.unwrap_or(20.0),
                0.0,
                3600.0,
            )?,
            recent,
            max_temp_c: in_range(
                "service.max_temp_c",
                service.max_temp_c.unwrap_or(80.0),
                30.0,
                120.0,
            )?,
            max_attempts,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::super::RawConfig;
    use super::*;

    fn resolve_text(text: &str) -> Result<super::super::Config, ConfigError> {
        RawConfig::parse(text, Path::new("t.toml"))?.resolve(Some(Path::new("t.toml")))
    }

    #[test]
    fn defaults_are_a_local_developer_box() {
        let c = super::super::Config::defaults();
        assert_eq!(c.web.bind.to_string(), DEFAULT_BIND);
        assert!(c.spool.root.is_absolute() && c.spool.root.ends_with("var"));
        assert_eq!(
            (
                c.board.led_ready,
                c.board.led_busy,
                c.board.led_attention,
                c.board.button
            ),
            (17, 27, 22, 23)
        );
        assert_eq!(c.spool.quiet_seconds, 10.0);
    }

    #[test]
    fn off_loopback_needs_a_token() {
        let e = resolve_text("[web]\nbind = \"0.0.0.0:8080\"\n").expect_err("no token");
        assert!(e.to_string().contains("web.token"), "{e}");
        let c = resolve_text("[web]\nbind = \"0.0.0.0:8080\"\ntoken = \"0123456789abcdef\"\n")
            .expect("token given");
        assert!(!c.web.bind.ip().is_loopback());
        assert!(!c.to_toml().contains("0123456789abcdef"), "token printed");
        resolve_text("[web]\nbind = \"[::1]:9000\"\n").expect("loopback v6");
        let e = resolve_text("[web]\ntoken = \"short\"\n").expect_err("short token");
        assert!(e.to_string().contains("16"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        for (text, key) in [
            ("[board]\nbutton = 17\n", "board.button"),
            ("[board]\nled_busy = 40\n", "board.led_busy"),
            ("[service]\nqueue_size = 0\n", "service.queue_size"),
            ("[spool]\nquiet_seconds = -1.0\n", "spool.quiet_seconds"),
            ("[web]\nbind = \"localhost\"\n", "web.bind"),
            (
                "[spool.retention]\nmax_total_mb = 0\n",
                "spool.retention.max_total_mb",
            ),
        ] {
            let e = resolve_text(text).expect_err(text);
            assert!(e.to_string().contains(key), "{text}: {e}");
        }
    }
}
