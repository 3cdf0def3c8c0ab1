//! The process's metrics, in one registry, encoded in the Prometheus/OpenMetrics text format
//! by `prometheus-client` (the Prometheus project's own Rust client).
//!
//! Label values are bounded by construction: tool names are the server's own (an unknown
//! name is counted as `unknown`), IVCAP requests are labelled with the route template
//! (`/1/services2/{id}/jobs`, never an id), outcomes and reasons are fixed words.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A result without `isError`.
    Ok,
    /// A result with `isError: true` (bad arguments, a failed job, IVCAP refused …).
    ToolError,
    /// A JSON-RPC error instead of a result (no such tool, malformed parameters).
    ProtocolError,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::ProtocolError => "protocol_error",
        }
    }
}

/// Why the HTTP guard refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host` header, or not a host name.
    BadHost,
    /// A `Host` not on the allow-list.
    HostNotAllowed,
    /// An `Origin` not on the allow-list.
    OriginNotAllowed,
    /// No bearer token.
    MissingToken,
    /// A bearer token that is not the server's.
    WrongToken,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::BadHost => "bad_host",
            Refusal::HostNotAllowed => "host_not_allowed",
            Refusal::OriginNotAllowed => "origin_not_allowed",
            Refusal::MissingToken => "missing_token",
            Refusal::WrongToken => "wrong_token",
        }
    }
}

/// Which way artifact bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Tool {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    method: String,
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    method: String,
    route: &'static str,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Transport {
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabel {
    direction: &'static str,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Tool calls last from milliseconds (a read) to the longest job wait (`--max-wait`, up to
/// an hour).
fn call_buckets() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0])
}

/// IVCAP requests: milliseconds, up to a held job create or a long poll (a minute or so).
fn request_buckets() -> Histogram {
    Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0])
}

struct Metrics {
    registry: Registry,
    tool_calls: Family<ToolOutcome, Counter>,
    tool_call_seconds: Histograms<Tool>,
    ivcap_requests: Family<RouteStatus, Counter>,
    ivcap_request_seconds: Histograms<Route>,
    ivcap_retries: Family<Route, Counter>,
    transfer_bytes: Family<DirectionLabel, Counter>,
    sessions_open: Family<Transport, Gauge>,
    job_waits: Gauge,
    auth_failures: Family<Reason, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("ivcap_mcp"),
            tool_calls: Family::default(),
            tool_call_seconds: Family::new_with_constructor(call_buckets),
            ivcap_requests: Family::default(),
            ivcap_request_seconds: Family::new_with_constructor(request_buckets),
            ivcap_retries: Family::default(),
            transfer_bytes: Family::default(),
            sessions_open: Family::default(),
            job_waits: Gauge::default(),
            auth_failures: Family::default(),
        };
        let r = &mut m.registry;
        r.register("tool_calls", "MCP tool calls by tool and outcome", m.tool_calls.clone());
        r.register("tool_call_duration_seconds", "MCP tool call duration", m.tool_call_seconds.clone());
        r.register(
            "ivcap_requests",
            "HTTP requests to IVCAP by method, route template and status (error = no answer)",
            m.ivcap_requests.clone(),
        );
        r.register(
            "ivcap_request_duration_seconds",
            "IVCAP request duration until the response headers, by method and route template",
            m.ivcap_request_seconds.clone(),
        );
        r.register("ivcap_retries", "IVCAP requests sent again after a transient failure", m.ivcap_retries.clone());
        r.register(
            "ivcap_transfer_bytes",
            "Artifact bytes moved to (upload) or from (download) IVCAP",
            m.transfer_bytes.clone(),
        );
        r.register("sessions_open", "MCP sessions open, by HTTP transport", m.sessions_open.clone());
        r.register("job_waits_in_progress", "Tool calls waiting for an IVCAP job to finish", m.job_waits.clone());
        r.register(
            "http_auth_failures",
            "HTTP requests refused by the Host/Origin/bearer-token guard, by reason",
            m.auth_failures.clone(),
        );
        m
    }
}

/// Every metric, in the OpenMetrics text format ([`CONTENT_TYPE`]).
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &METRICS.registry);
    out
}

/// One finished tool call. `tool` must be one of the server's tools, or `unknown`.
pub fn tool_call(tool: &str, outcome: Outcome, took: Duration) {
    let m = &*METRICS;
    m.tool_calls.get_or_create(&ToolOutcome { tool: tool.to_string(), outcome: outcome.as_str() }).inc();
    m.tool_call_seconds.get_or_create(&Tool { tool: tool.to_string() }).observe(took.as_secs_f64());
}

/// One IVCAP request: `status` is the HTTP status, or `None` when no answer came.
pub fn ivcap_request(method: &str, route: &'static str, status: Option<u16>, took: Duration) {
    let m = &*METRICS;
    let status = status.map_or_else(|| "error".to_string(), |s| s.to_string());
    m.ivcap_requests.get_or_create(&RouteStatus { method: method.to_string(), route, status }).inc();
    m.ivcap_request_seconds.get_or_create(&Route { method: method.to_string(), route }).observe(took.as_secs_f64());
}

/// An IVCAP request about to be sent again.
pub fn ivcap_retry(method: &str, route: &'static str) {
    METRICS.ivcap_retries.get_or_create(&Route { method: method.to_string(), route }).inc();
}

/// Artifact bytes moved.
pub fn transfer(direction: Direction, bytes: u64) {
    let direction = match direction {
        Direction::Upload => "upload",
        Direction::Download => "download",
    };
    METRICS.transfer_bytes.get_or_create(&DirectionLabel { direction }).inc_by(bytes);
}

/// A refused HTTP request.
pub fn auth_failure(reason: Refusal) {
    METRICS.auth_failures.get_or_create(&Reason { reason: reason.as_str() }).inc();
}

/// Counts an open session of `transport` (`streamable_http`, `sse`) while it lives.
#[derive(Debug)]
pub struct SessionOpen(&'static str);

impl SessionOpen {
    pub fn start(transport: &'static str) -> Self {
        METRICS.sessions_open.get_or_create(&Transport { transport }).inc();
        SessionOpen(transport)
    }
}

impl Drop for SessionOpen {
    fn drop(&mut self) {
        METRICS.sessions_open.get_or_create(&Transport { transport: self.0 }).dec();
    }
}

/// Counts a job wait in progress while it lives.
#[derive(Debug)]
pub struct JobWait(());

impl JobWait {
    pub fn start() -> Self {
        METRICS.job_waits.inc();
        JobWait(())
    }
}

impl Drop for JobWait {
    fn drop(&mut self) {
        METRICS.job_waits.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_appear_with_their_labels() {
        tool_call("get_job", Outcome::ToolError, Duration::from_millis(30));
        ivcap_request("GET", "/1/services2/{id}", Some(404), Duration::from_millis(2));
        ivcap_retry("GET", "/1/services2/{id}");
        transfer(Direction::Upload, 10);
        auth_failure(Refusal::WrongToken);
        let open = SessionOpen::start("sse");
        let wait = JobWait::start();
        let text = render();
        for line in [
            r#"ivcap_mcp_tool_calls_total{tool="get_job",outcome="tool_error"} "#,
            r#"ivcap_mcp_tool_call_duration_seconds_bucket{le="0.05",tool="get_job"} "#,
            r#"ivcap_mcp_ivcap_requests_total{method="GET",route="/1/services2/{id}",status="404"} "#,
            r#"ivcap_mcp_ivcap_request_duration_seconds_count{method="GET",route="/1/services2/{id}"} "#,
            r#"ivcap_mcp_ivcap_retries_total{method="GET",route="/1/services2/{id}"} "#,
            r#"ivcap_mcp_ivcap_transfer_bytes_total{direction="upload"} "#,
            r#"ivcap_mcp_http_auth_failures_total{reason="wrong_token"} "#,
            r#"ivcap_mcp_sessions_open{transport="sse"} "#,
            "ivcap_mcp_job_waits_in_progress ",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        drop((open, wait));
        assert!(render().contains(r#"ivcap_mcp_sessions_open{transport="sse"} 0"#));
    }
}
