//! What operators see, over the real binary: the W3C trace context of a call on every IVCAP
//! request made for it (as the stand-in recorded them), `/metrics` after calls of each
//! outcome, and `--log-format json`.

use std::time::Duration;

use axum::http::Method;
use ivcap_standin::{Fault, JobScript, StandIn};
use serde_json::{Value, json};

use crate::common::{call, err, ok};
use crate::http::{Server, http, mcp_post};

const TRACE_A: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const TRACE_B: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A stateless `tools/call` with `meta` as its `_meta`; the structured result.
async fn stateless_call(server: &Server, tool: &str, args: Value, meta: Value, headers: &[(&str, &str)]) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": args, "_meta": meta}});
    let mut request = mcp_post(server, &body).header("mcp-protocol-version", "2025-11-25");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_ne!(answer["result"]["isError"], true, "{answer}");
    answer["result"]["structuredContent"].clone()
}

/// The trace contexts of the IVCAP requests since the last call of this, each once.
fn contexts_sent(standin: &StandIn) -> Vec<(Option<String>, Option<String>)> {
    let requests = standin.requests();
    standin.clear_requests();
    assert!(!requests.is_empty(), "the call made IVCAP requests");
    let mut seen: Vec<_> = requests.iter().map(|r| r.trace_context()).collect();
    seen.dedup();
    seen
}

#[tokio::test]
async fn every_ivcap_request_of_a_call_carries_its_trace_context() {
    let standin = StandIn::start().await;
    standin.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[json!({"type": "object"})]);
    standin.script_jobs("urn:ivcap:service:1111", JobScript::echo().running_for(Duration::from_millis(1200)));
    let envs = [("RUST_LOG", "ivcap_mcp=info")];
    let server = Server::platform(&standin, &["--stateless", "--log-format", "json"], &envs).await;

    // From `_meta` (SEP-414): a submit that waits, so several requests (service, held create).
    let meta = json!({"traceparent": TRACE_A, "tracestate": "congo=t61rcWkgMzE"});
    let job =
        stateless_call(&server, "submit_job", json!({"service": "alpha", "input": {}, "wait_seconds": 20}), meta, &[])
            .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let sent = standin.requests().len();
    assert!(sent >= 2, "the submit made {sent} IVCAP requests");
    assert_eq!(contexts_sent(&standin), [(Some(TRACE_A.to_string()), Some("congo=t61rcWkgMzE".to_string()))]);

    // From the HTTP request's headers, when `_meta` has none.
    stateless_call(&server, "list_services", json!({}), json!({}), &[("traceparent", TRACE_B)]).await;
    assert_eq!(contexts_sent(&standin), [(Some(TRACE_B.to_string()), None)]);
    // `_meta` wins over the headers; an invalid traceparent is ignored; none, none sent.
    stateless_call(&server, "list_services", json!({}), json!({"traceparent": TRACE_A}), &[("traceparent", TRACE_B)])
        .await;
    assert_eq!(contexts_sent(&standin), [(Some(TRACE_A.to_string()), None)]);
    stateless_call(&server, "list_services", json!({}), json!({"traceparent": "00-xyz-01"}), &[]).await;
    assert_eq!(contexts_sent(&standin), [(None, None)]);
    stateless_call(&server, "list_services", json!({}), json!({}), &[]).await;
    assert_eq!(contexts_sent(&standin), [(None, None)]);

    // --log-format json: every stderr line is a JSON object, and the call's line has the trace id.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = server.log.lock().unwrap().clone();
    let objects: Vec<Value> = log
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    let submit = objects
        .iter()
        .find(|o| o["message"] == "tool call" && o["spans"][0]["tool"] == "submit_job")
        .unwrap_or_else(|| panic!("no tool call line for submit_job in {log:#?}"));
    assert_eq!(submit["spans"][0]["trace_id"], "0af7651916cd43dd8448eb211c80319c", "{submit}");
    assert_eq!(submit["outcome"], "ok", "{submit}");
    assert!(objects.iter().any(|o| o["message"].as_str().is_some_and(|m| m.contains("serving MCP on"))));
}

/// `GET /metrics` with `token` as bearer (if any): status and text.
async fn scrape(server: &Server, token: Option<&str>) -> (u16, String) {
    let mut request = http().get(server.url("/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/openmetrics-text"));
    }
    (status, response.text().await.unwrap())
}

/// The value of the sample `series` (name with labels, as printed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_calls_requests_waits_and_refusals() {
    let standin = StandIn::start().await;
    standin.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[json!({"type": "object"})]);
    standin.script_jobs("urn:ivcap:service:1111", JobScript::echo().running_for(Duration::from_secs(2)).retry_later(0));
    // One busy answer: retried.
    standin.fault(Fault::status(Some(Method::GET), "/1/services2", 503));
    let server = Server::platform(&standin, &[], &[("IVCAP_MCP_TOKEN", "tok")]).await;
    let client = server.client(Some("tok")).await;

    ok(&call(&client, "list_services", json!({})).await);
    err(&call(&client, "get_job", json!({"job_id": "not-a-job"})).await);
    err(&call(&client, "get_service", json!({"service": "urn:ivcap:service:9999"})).await);
    let unknown = client.call_tool(rmcp::model::CallToolRequestParams::new("no_such_tool")).await;
    assert!(unknown.is_err(), "an unknown tool is a protocol error");
    ok(&call(&client, "upload_artifact", json!({"content": "hello metrics", "name": "m.txt"})).await);
    // A wait in progress shows while it runs.
    let waiting = {
        let client = server.client(Some("tok")).await;
        tokio::spawn(async move {
            let job =
                ok(&call(&client, "submit_job", json!({"service": "alpha", "input": {}, "wait_seconds": 20})).await);
            client.cancel().await.unwrap();
            job
        })
    };
    let mut during = String::new();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        during = scrape(&server, Some("tok")).await.1;
        if sample(&during, "ivcap_mcp_job_waits_in_progress") == Some(1.0) {
            break;
        }
    }
    assert_eq!(sample(&during, "ivcap_mcp_job_waits_in_progress"), Some(1.0), "{during}");
    assert_eq!(waiting.await.unwrap()["status"], "succeeded");
    // Refused requests, by reason.
    assert_eq!(mcp_post(&server, &json!({})).send().await.unwrap().status(), 401);
    assert_eq!(mcp_post(&server, &json!({})).bearer_auth("wrong").send().await.unwrap().status(), 401);
    assert_eq!(http().get(server.url("/metrics")).header("host", "evil.example").send().await.unwrap().status(), 403);

    assert_eq!(scrape(&server, None).await.0, 401, "/metrics needs the token");
    let (status, text) = scrape(&server, Some("tok")).await;
    assert_eq!(status, 200);
    let at_least_one = [
        r#"ivcap_mcp_tool_calls_total{tool="list_services",outcome="ok"}"#,
        r#"ivcap_mcp_tool_calls_total{tool="get_job",outcome="tool_error"}"#,
        r#"ivcap_mcp_tool_calls_total{tool="get_service",outcome="tool_error"}"#,
        r#"ivcap_mcp_tool_calls_total{tool="unknown",outcome="protocol_error"}"#,
        r#"ivcap_mcp_tool_calls_total{tool="submit_job",outcome="ok"}"#,
        r#"ivcap_mcp_tool_call_duration_seconds_count{tool="submit_job"}"#,
        r#"ivcap_mcp_ivcap_requests_total{method="GET",route="/1/services2",status="503"}"#,
        r#"ivcap_mcp_ivcap_requests_total{method="GET",route="/1/services2",status="200"}"#,
        r#"ivcap_mcp_ivcap_requests_total{method="GET",route="/1/services2/{id}",status="404"}"#,
        r#"ivcap_mcp_ivcap_requests_total{method="POST",route="/1/services2/{id}/jobs",status="200"}"#,
        r#"ivcap_mcp_ivcap_requests_total{method="PATCH",route="/1/artifacts/{id}/blob",status="204"}"#,
        r#"ivcap_mcp_ivcap_request_duration_seconds_count{method="GET",route="/1/services2"}"#,
        r#"ivcap_mcp_ivcap_retries_total{method="GET",route="/1/services2"}"#,
        r#"ivcap_mcp_ivcap_transfer_bytes_total{direction="upload"}"#,
        r#"ivcap_mcp_sessions_open{transport="streamable_http"}"#,
        r#"ivcap_mcp_http_auth_failures_total{reason="missing_token"}"#,
        r#"ivcap_mcp_http_auth_failures_total{reason="wrong_token"}"#,
        r#"ivcap_mcp_http_auth_failures_total{reason="host_not_allowed"}"#,
    ];
    let missing: Vec<&str> =
        at_least_one.iter().copied().filter(|s| sample(&text, s).is_none_or(|v| v < 1.0)).collect();
    assert!(missing.is_empty(), "missing or zero: {missing:#?}\n{text}");
    assert_eq!(sample(&text, r#"ivcap_mcp_ivcap_transfer_bytes_total{direction="upload"}"#), Some(13.0));
    assert_eq!(sample(&text, "ivcap_mcp_job_waits_in_progress"), Some(0.0));
    assert!(!text.contains("urn:ivcap") && !text.contains("no_such_tool"), "no ids or made-up names in labels");
    client.cancel().await.unwrap();

    // --metrics-public: no token for /metrics, still for MCP.
    let public = Server::platform(&standin, &["--metrics-public"], &[("IVCAP_MCP_TOKEN", "tok")]).await;
    assert_eq!(scrape(&public, None).await.0, 200);
    assert_eq!(mcp_post(&public, &json!({})).send().await.unwrap().status(), 401);
}
