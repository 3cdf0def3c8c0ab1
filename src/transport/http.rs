//! The HTTP listener: Streamable HTTP at `/mcp` (rmcp's [`StreamableHttpService`]), the
//! legacy HTTP+SSE transport at `/sse` + `/message` ([`super::sse`]), `GET /healthz` and
//! `GET /metrics` (Prometheus), behind one [`Guard`] layer (Host/Origin allow-lists, bearer
//! token), with every POSTed message checked as JSON-RPC first ([`check_message`]; with `--oauth`,
//! after the token).
//!
//! Shutdown on SIGTERM/SIGINT drains: new connections are refused at once (a load balancer
//! sends the request to another replica, knowing nothing was done) and `/healthz` answers 503
//! on connections still open; calls in flight, and requests already arriving on open
//! connections, may finish for up to `--shutdown-grace`; then every session and stream is
//! ended. A call counts as in flight
//! from the moment its POST arrives until its response has been written (on `/mcp`) or sent
//! down the session's event stream (legacy SSE). docs/deployment.md has the HAProxy setup.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use futures::StreamExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::guard::Guard;
use super::jsonrpc::{self, Parsed};
use super::oauth;
use super::sse;
use crate::auth::ResourceServer;
use crate::config::HttpConfig;
use crate::server::IvcapMcp;
use crate::telemetry::metrics;

/// How long to wait for connections to close once every stream has been ended.
const CLOSE_GRACE: Duration = Duration::from_secs(3);

/// Serves `server` on `config.addr` until `signal` resolves, then shuts down gracefully.
pub(super) async fn serve(
    server: IvcapMcp,
    config: &HttpConfig,
    oauth: Option<Arc<ResourceServer>>,
    max_message_size: usize,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|e| format!("--http {}: cannot listen ({e}); pick another port or address", config.addr))?;
    let local = listener.local_addr().map_err(|e| format!("--http {}: {e}", config.addr))?;
    if !local.ip().is_loopback() && oauth.is_none() {
        tracing::warn!(
            addr = %local,
            auth = config.auth_token.is_some(),
            "listening on a non-loopback address: other machines can reach this server{}; add the \
             names clients use with --allowed-host",
            if config.auth_token.is_some() { "" } else { " and no IVCAP_MCP_TOKEN is set" }
        );
    }
    // Stdout is free over HTTP, but keep it quiet anyway: the address goes to stderr.
    let (shown, others) = reachable_at(local);
    let others: Vec<String> =
        others.iter().map(|ip| format!("http://{}/mcp", SocketAddr::new(*ip, local.port()))).collect();
    crate::telemetry::notice(
        tracing::Level::INFO,
        &format!(
            "serving MCP on http://{shown}/mcp (Streamable HTTP, {}){}{}",
            if config.stateless { "stateless" } else { "sessions" },
            if oauth.is_some() { ", OAuth".to_string() } else { format!(" and http://{shown}/sse (legacy SSE)") },
            if others.is_empty() { String::new() } else { format!("; from other machines: {}", others.join(", ")) }
        ),
    );

    let streams = CancellationToken::new();
    let calls = TaskTracker::new();
    let draining = Arc::new(AtomicBool::new(false));
    let app = router(server, config, oauth, max_message_size, streams.clone(), calls.clone(), draining.clone());

    let stop_accepting = CancellationToken::new();
    // Answers go out at once: with Nagle's algorithm on, a response written in two parts
    // waited for the client's delayed ACK, 40 ms per call on a kept-alive connection.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on a connection");
        }
    });
    let http = axum::serve(listener, app).with_graceful_shutdown(stop_accepting.clone().cancelled_owned());
    let mut http = tokio::spawn(async move { http.await });

    tokio::select! {
        ended = &mut http => {
            return match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(format!("HTTP server failed: {e}")),
                Err(e) => Err(format!("HTTP server failed: {e}")),
            };
        }
        () = signal => {}
    }
    tracing::info!(
        in_flight = calls.len(),
        "signal received; draining: no new connections, waiting for calls in flight"
    );
    draining.store(true, Ordering::Relaxed);
    stop_accepting.cancel();
    calls.close();
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, calls.wait()).await.is_err() {
        tracing::warn!(
            still_running = calls.len(),
            "calls still running after {grace:?} (--shutdown-grace); ending them"
        );
    }
    streams.cancel();
    match tokio::time::timeout(CLOSE_GRACE, &mut http).await {
        Ok(_) => tracing::info!("all connections closed"),
        Err(_) => {
            http.abort();
            tracing::warn!("connections still open after {CLOSE_GRACE:?}; dropped them");
        }
    }
    Ok(())
}

/// Where clients reach a listener on `local`: that address, or for an unspecified one
/// (`0.0.0.0`, `[::]`), which no client can connect to, the loopback address of its family and
/// then this host's other addresses (IPv6 link-local ones left out: they need a zone).
fn reachable_at(local: SocketAddr) -> (SocketAddr, Vec<IpAddr>) {
    if !local.ip().is_unspecified() {
        return (local, Vec::new());
    }
    let v4 = local.is_ipv4();
    let loopback = if v4 { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { IpAddr::V6(Ipv6Addr::LOCALHOST) };
    let mut others: Vec<IpAddr> = match if_addrs::get_if_addrs() {
        Ok(interfaces) => interfaces.into_iter().map(|i| i.ip()).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "cannot list this host's addresses");
            Vec::new()
        }
    };
    // `[::]` takes IPv4 connections too (dual stack); `0.0.0.0` only IPv4 ones.
    others.retain(|ip| {
        !ip.is_loopback() && (ip.is_ipv4() || !v4) && !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local())
    });
    others.sort();
    others.dedup();
    (SocketAddr::new(loopback, local.port()), others)
}

/// The routes and layers; `streams` ends every session and event stream, `calls` tracks
/// calls in flight, `draining` turns `/healthz` to 503.
fn router(
    server: IvcapMcp,
    config: &HttpConfig,
    oauth: Option<Arc<ResourceServer>>,
    max_message_size: usize,
    streams: CancellationToken,
    calls: TaskTracker,
    draining: Arc<AtomicBool>,
) -> Router {
    // The Guard layer below checks Host and Origin for every route, so rmcp's own copies of
    // those checks are off: one rule set, one implementation.
    let mcp_config = StreamableHttpServerConfig::default()
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(max_message_size)
        .with_legacy_session_mode(!config.stateless)
        .with_json_response(config.stateless)
        .with_cancellation_token(streams.clone());
    // Stateless is rmcp's legacy session mode off, which never asks the session manager for a
    // session; one manager type for both modes keeps one copy of rmcp's HTTP service code
    // (the second was ≈ 1 % of this crate's machine code).
    let sessions = Arc::new(LocalSessionManager::default());
    let mcp_server = server.clone();
    let stateless = config.stateless;
    // In stateless mode rmcp makes a handler per request; those are not sessions.
    let handler = move || Ok(if stateless { mcp_server.clone() } else { mcp_server.for_session("streamable_http") });
    let mcp = Router::new().route_service("/mcp", StreamableHttpService::new(handler, sessions, mcp_config));
    let front = Arc::new(FrontDoor {
        guard: Guard::new(&config.allowed_hosts, &config.allowed_origins, config.auth_token.clone())
            .with_public_metrics(config.metrics_public),
        // With --oauth, messages are checked after the token: an anonymous request gets its
        // 401 without the server reading (or draining) its body.
        max_message_size: oauth.is_none().then_some(max_message_size),
    });
    let routes = mcp
        .route_layer(middleware::from_fn_with_state(calls.clone(), track_call))
        .route("/healthz", get(move || healthz(draining.clone())))
        .route("/metrics", get(|| async { ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], metrics::render()) }));
    // With --oauth every request acts as its user, which a legacy SSE session (one stream,
    // messages POSTed beside it, no OAuth discovery in that protocol era) cannot carry: not served.
    let routes = match oauth {
        Some(resource) => {
            let gate = Arc::new(oauth::Gate::new(resource.clone(), config.metrics_public));
            routes
                .layer(middleware::from_fn_with_state(max_message_size, checked_message))
                .layer(middleware::from_fn_with_state(gate, oauth::gate))
                .merge(oauth::router(resource))
        }
        None => routes.merge(sse::router(server, streams, calls)),
    };
    routes.layer(DefaultBodyLimit::max(max_message_size)).layer(middleware::from_fn_with_state(front, front_door))
}

/// 200 while serving, 503 once draining for shutdown, so a load balancer stops sending.
async fn healthz(draining: Arc<AtomicBool>) -> Response {
    if draining.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining: shutting down").into_response()
    } else {
        "ok".into_response()
    }
}

/// What every request passes first: the [`Guard`] (Host, Origin, bearer token), then for a
/// message POSTed to `/mcp` or `/message`, [`check_message`]. One layer, not two: every
/// request clones and drops each layer of the route it takes.
struct FrontDoor {
    guard: Guard,
    /// `None`: messages are checked by a layer further in (`--oauth`, after the token).
    max_message_size: Option<usize>,
}

async fn front_door(State(front): State<Arc<FrontDoor>>, request: Request, next: Next) -> Response {
    if let Some(refusal) = front.guard.check(request.uri(), request.headers()) {
        return refusal;
    }
    let ends_session = request.method() == Method::DELETE && request.uri().path() == "/mcp";
    let mut response = match front.max_message_size {
        Some(limit) => check_message(limit, request, next).await,
        None => next.run(request).await,
    };
    // rmcp answers a session's DELETE with 202, but the session is already gone then: say 200,
    // as clients expect (the Python SDK logs "Session termination failed: 202" otherwise).
    if ends_session && response.status() == StatusCode::ACCEPTED {
        *response.status_mut() = StatusCode::OK;
    }
    response
}

/// [`check_message`] as a layer of its own (inside the `--oauth` gate).
async fn checked_message(State(limit): State<usize>, request: Request, next: Next) -> Response {
    check_message(limit, request, next).await
}

/// The JSON-RPC checks of [`jsonrpc`] for a message POSTed to `/mcp` or `/message`, answered
/// with an HTTP status and a JSON-RPC error body: 415 for a Content-Type that is not JSON, 413
/// over `--max-message-size`, 400 for a body that is not JSON (`-32700`) or not a JSON-RPC
/// message (`-32600`), and for a batch where the protocol version has none. rmcp
/// parses the body again; that costs little next to a tool call and keeps its handling whole.
async fn check_message(limit: usize, request: Request, next: Next) -> Response {
    if request.method() != Method::POST || !matches!(request.uri().path(), "/mcp" | "/message") {
        return next.run(request).await;
    }
    let headers = request.headers();
    // Streamable HTTP requires the header; legacy SSE clients (2024-11-05) may leave it out.
    let is_json = match headers.get(header::CONTENT_TYPE) {
        None => request.uri().path() == "/message",
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.split(';').next())
            .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")),
    };
    if !is_json {
        let message = "Invalid Request: Content-Type must be application/json (one JSON-RPC message per POST)";
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::error_response(None, jsonrpc::INVALID_REQUEST, message),
        );
    }
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared.filter(|len| *len > limit) {
        if len <= DRAIN_LIMIT {
            drain(request.into_body()).await;
        }
        return too_large(limit);
    }
    let version = headers.get("mcp-protocol-version").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return too_large(limit);
    };
    let answer = if jsonrpc::plainly_valid_request(&bytes) {
        None
    } else {
        match jsonrpc::parse(&bytes) {
            Err(answer) => Some(answer),
            Ok(Parsed::Batch(_)) => jsonrpc::refuse_batch(version.as_deref()),
            // Only the envelope: params that don't fit a method are rmcp's to answer over HTTP
            // (which methods exist depends on the protocol era of the request; 2026-07-28 has
            // no `initialize`), so the message is not parsed into rmcp's types here.
            Ok(Parsed::Single(value)) => jsonrpc::envelope_problem(&value),
        }
    };
    match answer {
        Some(answer) => refuse(StatusCode::BAD_REQUEST, answer),
        None => next.run(Request::from_parts(parts, Body::from(bytes))).await,
    }
}

/// An over-limit body up to this size is read and dropped before the 413: a client still
/// writing it would otherwise meet a closed connection ("broken pipe") instead of the answer.
/// Larger ones are refused at once.
const DRAIN_LIMIT: usize = 16 << 20;
/// How long a drain may take (a client trickling its body gets the 413 then).
const DRAIN_TIME: Duration = Duration::from_secs(10);

async fn drain(body: Body) {
    let mut stream = body.into_data_stream();
    let discard = async {
        let mut seen = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            seen += chunk.len();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

fn too_large(limit: usize) -> Response {
    let message = format!(
        "Invalid Request: message of more than {limit} bytes (--max-message-size); send large data as a file \
         (upload_artifact with path), or restart the server with a larger --max-message-size"
    );
    refuse(StatusCode::PAYLOAD_TOO_LARGE, jsonrpc::error_response(None, jsonrpc::INVALID_REQUEST, &message))
}

fn refuse(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Counts a POST to `/mcp` as a call in flight until its response body is finished or dropped.
async fn track_call(State(calls): State<TaskTracker>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let token = calls.token();
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _in_flight = &token;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_address_is_shown_as_loopback_and_the_hosts_addresses() {
        let given: SocketAddr = "10.1.2.3:8765".parse().unwrap();
        assert_eq!(reachable_at(given), (given, Vec::new()), "a specific address as it is");
        let (shown, others) = reachable_at("0.0.0.0:8765".parse().unwrap());
        assert_eq!(shown, "127.0.0.1:8765".parse::<SocketAddr>().unwrap());
        assert!(others.iter().all(|ip| ip.is_ipv4() && !ip.is_loopback() && !ip.is_unspecified()), "{others:?}");
        let (shown, others) = reachable_at("[::]:1".parse().unwrap());
        assert_eq!(shown, "[::1]:1".parse::<SocketAddr>().unwrap());
        assert!(others.iter().all(|ip| !ip.is_loopback()), "{others:?}");
    }

    #[tokio::test]
    async fn health_turns_503_when_draining_starts() {
        let draining = Arc::new(AtomicBool::new(false));
        assert_eq!(healthz(draining.clone()).await.status(), StatusCode::OK);
        draining.store(true, Ordering::Relaxed);
        assert_eq!(healthz(draining).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
