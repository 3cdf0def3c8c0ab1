//! Service tools at scale: a stand-in platform with 200 services, all with ai-tool aspects,
//! and `--service-tools % --service-tools-max 200`.
//!
//! Method: per run, spawn the release binary over stdio against the stand-in and time
//! (a) spawn → `initialize` answered and (b) spawn → the 200 service tools listed (the
//! server's `notifications/tools/list_changed` arrives, then one `tools/list` answers with
//! them); record the size of that `tools/list` answer. The baseline, in the same run and
//! against the same stand-in, is (a) without `--service-tools`: `initialize` must not grow
//! with the service count, since loading happens in the background. `RUNS` runs after one
//! unmeasured warm-up each. Run: `cargo bench --bench service_tools`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use common::{Server, stats};
use ivcap_standin::{StandIn, TOKEN};
use serde_json::json;

const SERVICES: usize = 200;
const RUNS: usize = 10;

/// A pydantic-like request schema with a `$defs` reference, as the Python SDK writes them.
fn schema(i: usize) -> serde_json::Value {
    json!({
        "title": "Request", "type": "object", "required": ["text"],
        "$defs": {"Mode": {"enum": ["fast", "slow"], "type": "string"}},
        "properties": {
            "$schema": {"type": "string", "default": format!("urn:sd:schema.bench{i}.request.1")},
            "text": {"type": "string", "description": "The text to work on"},
            "limit": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
            "mode": {"$ref": "#/$defs/Mode"}
        }
    })
}

/// (spawn → initialize answered, spawn → service tools listed and the tools/list size).
fn one_run(url: &str, service_tools: bool) -> (Duration, Option<(Duration, usize, usize)>) {
    let mut args: Vec<&OsStr> = Vec::new();
    if service_tools {
        for a in ["--service-tools", "%", "--service-tools-max", "200"] {
            args.push(OsStr::new(a));
        }
    }
    let start = Instant::now();
    let mut server = Server::spawn_with(&args, &[("IVCAP_URL", url), ("IVCAP_JWT", TOKEN)]);
    server.initialize();
    let initialized = start.elapsed();
    let count = |answer: &serde_json::Value| {
        let tools = answer["result"]["tools"].as_array().expect("tools");
        tools.iter().filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with("svc_"))).count()
    };
    let listed = service_tools.then(|| {
        // A client lists at once; if the tools are not there yet it waits for list_changed.
        let mut answer = server.request("tools/list", json!({}));
        if count(&answer) < SERVICES {
            server.wait_for_notification("notifications/tools/list_changed");
            answer = server.request("tools/list", json!({}));
        }
        (start.elapsed(), count(&answer), answer.to_string().len())
    });
    server.stop();
    (initialized, listed)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let standin = rt.block_on(StandIn::start());
    for i in 0..SERVICES {
        let id = format!("urn:ivcap:service:{:08x}-0000-4000-8000-{i:012x}", i);
        let description = format!("Bench service {i}: summarises text in one of two modes and returns a short report.");
        standin.add_service(&id, &format!("bench-service-{i:03}"), &description, &[schema(i)]);
    }
    let url = standin.base_url();
    one_run(url, false);
    one_run(url, true);
    let mut baseline = Vec::new();
    let mut with_tools = Vec::new();
    let mut listed = Vec::new();
    let mut sizes = Vec::new();
    for _ in 0..RUNS {
        baseline.push(one_run(url, false).0);
        let (init, list) = one_run(url, true);
        with_tools.push(init);
        let (elapsed, count, size) = list.expect("listed");
        assert_eq!(count, SERVICES, "every service became a tool");
        listed.push(elapsed);
        sizes.push(size);
    }
    stats("spawn → initialize answered, no --service-tools (baseline)", baseline);
    stats(&format!("spawn → initialize answered, --service-tools % ({SERVICES} services)"), with_tools);
    stats(&format!("spawn → {SERVICES} service tools listed"), listed);
    println!("tools/list size with {SERVICES} service tools: {} bytes", sizes[0]);
}
