//! What the server tells operators about itself: Prometheus metrics ([`metrics`], served at
//! `/metrics` by the HTTP transport) and the W3C trace context of the call being served
//! ([`trace`], sent on every IVCAP request made for it).
//!
//! A foundation module: it imports nothing from the layers above (transport, server, tools,
//! backend), so each of them can record into it. The list of metrics is in
//! docs/deployment.md.

pub mod metrics;
pub mod trace;

use std::sync::atomic::{AtomicBool, Ordering};

/// `--log-format json` was chosen: every line on stderr is then a JSON object.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

/// Makes [`notice`] write JSON objects (set once, before logging starts).
pub fn use_json_logs() {
    JSON_LOGS.store(true, Ordering::Relaxed);
}

/// A line for the operator on stderr that must show whatever the log filter (the address
/// served, a fatal error): `ivcap-mcp: message`, or with JSON logs an object shaped like
/// tracing's (`timestamp`, `level`, `message`, `target`), so a collector parses every line.
pub fn notice(level: tracing::Level, message: &str) {
    if JSON_LOGS.load(Ordering::Relaxed) {
        let line = serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level.as_str(),
            "message": message,
            "target": "ivcap_mcp",
        });
        eprintln!("{line}");
    } else {
        eprintln!("ivcap-mcp: {message}");
    }
}
