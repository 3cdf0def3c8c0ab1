//! Tool-call latency and throughput over Streamable HTTP (stateful sessions), local mode.
//!
//! Method: start the release binary with `--http 127.0.0.1:0 --local <tmp store>` holding one
//! local service, `echo`. Open C sessions with rmcp's Streamable HTTP client (C = 1, then 16),
//! run `WARMUP` unmeasured `get_service {"service": "echo"}` calls per session, wait until
//! every session is warm, then `CALLS / C` measured calls per session back to back, all
//! sessions at once. Latency is one
//! `tools/call` round trip as the client sees it (POST → SSE answer parsed); throughput is
//! measured calls / wall time from the barrier to the last answer. Client and server share the
//! machine, so throughput moves with whatever else runs; the server's CPU time per call (user +
//! system, from `/proc/<pid>/stat`, over the same window) moves much less.
//! Prints p50, p99, calls/s and server CPU µs/call per concurrency.
//! Run: `cargo bench --bench http_latency`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "common/http_server.rs"]
mod http_server;

use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::StreamableHttpClientTransport;
use tokio::sync::Barrier;

const CALLS: usize = 4000;
const WARMUP: usize = 50;

async fn session_calls(url: String, ready: Arc<Barrier>, calls: usize) -> Vec<Duration> {
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await.expect("connect");
    let args = serde_json::json!({"service": "echo"});
    let request = || CallToolRequestParams::new("get_service").with_arguments(args.as_object().unwrap().clone());
    for _ in 0..WARMUP {
        client.call_tool(request()).await.unwrap();
    }
    ready.wait().await;
    let mut times = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let result = client.call_tool(request()).await.unwrap();
        times.push(start.elapsed());
        assert_ne!(result.is_error, Some(true));
    }
    client.cancel().await.unwrap();
    times
}

#[tokio::main]
async fn main() {
    // rmcp's client builds its own reqwest client, which needs the process's TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("ivcap-mcp-http-bench-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("services")).unwrap();
    std::fs::write(
        dir.join("services/echo.json"),
        r#"{"name": "echo", "description": "Returns its request", "command": ["cat"], "fn_schema": {"type": "object"}}"#,
    )
    .unwrap();
    let store = dir.to_str().unwrap();
    let mut server = http_server::start(&["--local", store, "--http", "127.0.0.1:0"], &[]).await;
    let url = server.url.clone();

    let pid = server.child.id().expect("server pid");
    for concurrency in [1usize, 16] {
        let per_session = CALLS / concurrency;
        let ready = Arc::new(Barrier::new(concurrency + 1));
        let sessions: Vec<_> =
            (0..concurrency).map(|_| tokio::spawn(session_calls(url.clone(), ready.clone(), per_session))).collect();
        ready.wait().await; // every session connected and warmed up
        let cpu_before = server_cpu(pid);
        let start = Instant::now();
        let mut times = Vec::with_capacity(CALLS);
        for s in sessions {
            times.extend(s.await.unwrap());
        }
        let wall = start.elapsed().as_secs_f64();
        let cpu = match (cpu_before, server_cpu(pid)) {
            (Some(before), Some(after)) => format!("{:.0} µs/call", (after - before) * 1e6 / CALLS as f64),
            _ => "n/a".to_string(),
        };
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let n = times.len();
        println!(
            "concurrency {concurrency:>2}: {n} calls, p50 {:.3} ms, p99 {:.3} ms, throughput {:.0} calls/s, server CPU {cpu}",
            ms(times[n / 2]),
            ms(times[n * 99 / 100]),
            n as f64 / wall
        );
    }
    server.child.kill().await.ok();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Seconds of CPU (user + system) the process `pid` has used so far; `None` off Linux.
fn server_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // utime and stime are fields 14 and 15 of proc(5), so 11 and 12 here.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}
