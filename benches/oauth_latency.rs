//! What `--oauth` costs a tool call: the same call on a server with `--oauth` (token exchange
//! upstream) and on one with the server's own token, measured interleaved.
//!
//! Method: the stand-in IVCAP (tests/standin, its authorization server included) on loopback,
//! and two release binaries in platform mode with `--http`: A with `IVCAP_JWT`, B with
//! `--oauth --oauth-upstream exchange`. One Streamable HTTP session each (rmcp's client; B's
//! with a bearer token for its resource); `WARMUP` unmeasured calls each, so B has fetched the
//! issuer's keys and exchanged the user's token (both then cached), then `ROUNDS` rounds of
//! `CALLS` calls `get_service {"service": <urn>}` (one IVCAP request each), A then B in every
//! round, so both see the same machine load. Latency is one `tools/call` round trip as the
//! client sees it; server CPU per call (user + system, `/proc/<pid>/stat`) over the measured
//! calls. Prints p50 and p99 per server, their difference, and CPU µs/call.
//! Run: `cargo bench --bench oauth_latency`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

#[path = "common/http_server.rs"]
mod http_server;

use http_server::start;
use ivcap_standin::{StandIn, TOKEN};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;

const WARMUP: usize = 100;
const ROUNDS: usize = 10;
const CALLS: usize = 200;
const SERVICE: &str = "urn:ivcap:service:00000000-0000-0000-0000-0000000000be";

type Client = RunningService<rmcp::RoleClient, ()>;

async fn connect(url: &str, token: Option<&str>) -> Client {
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.to_string());
    if let Some(token) = token {
        config = config.auth_header(token.to_string());
    }
    let http = ivcap_mcp::http_client().build().unwrap();
    ().serve(StreamableHttpClientTransport::with_client(http, config)).await.expect("connect")
}

/// `n` calls of `get_service` (`list` false) or `tools/list` requests, timed.
async fn calls(client: &Client, list: bool, n: usize, times: &mut Vec<Duration>) {
    let args = json!({"service": SERVICE});
    for _ in 0..n {
        let request = CallToolRequestParams::new("get_service").with_arguments(args.as_object().unwrap().clone());
        let start = Instant::now();
        if list {
            client.list_tools(None).await.unwrap();
            times.push(start.elapsed());
            continue;
        }
        let result = client.call_tool(request).await.unwrap();
        times.push(start.elapsed());
        assert_ne!(result.is_error, Some(true), "{result:?}");
    }
}

#[tokio::main]
async fn main() {
    let standin = StandIn::start().await;
    // The stand-in takes any token, so both servers cost it the same: A sends its own token,
    // B the exchanged one.
    standin.require_auth(false);
    standin.add_service(SERVICE, "bench", "a service to read", &[json!({"type": "object"})]);
    standin.register_client("bench-server", "bench-secret");
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let resource = format!("http://{addr}/mcp");
    let mut plain = start(&["--http", "127.0.0.1:0"], &[("IVCAP_URL", standin.base_url()), ("IVCAP_JWT", TOKEN)]).await;
    let mut oauth = start(
        &["--http", &addr, "--oauth", "--oauth-resource", &resource],
        &[
            ("IVCAP_URL", standin.base_url()),
            ("IVCAP_MCP_OAUTH_CLIENT_ID", "bench-server"),
            ("IVCAP_MCP_OAUTH_CLIENT_SECRET", "bench-secret"),
        ],
    )
    .await;
    let token = standin.mint_token("alice", &resource, Duration::from_secs(3600));
    let (a, b) = (connect(&plain.url, None).await, connect(&oauth.url, Some(&token)).await);
    let mut warm = Vec::new();
    for list in [false, true] {
        calls(&a, list, WARMUP, &mut warm).await;
        calls(&b, list, WARMUP, &mut warm).await;
    }
    let (pid_a, pid_b) = (plain.child.id().unwrap(), oauth.child.id().unwrap());
    for (list, what) in [(false, "get_service (one IVCAP request)"), (true, "tools/list (no IVCAP request)")] {
        let (mut times_a, mut times_b) = (Vec::new(), Vec::new());
        let (mut cpu_a, mut cpu_b) = (0.0, 0.0);
        for _ in 0..ROUNDS {
            let before = server_cpu(pid_a);
            calls(&a, list, CALLS, &mut times_a).await;
            cpu_a += server_cpu(pid_a) - before;
            let before = server_cpu(pid_b);
            calls(&b, list, CALLS, &mut times_b).await;
            cpu_b += server_cpu(pid_b) - before;
        }
        let n = (ROUNDS * CALLS) as f64;
        println!("{what}, {} calls each, interleaved in {ROUNDS} rounds:", ROUNDS * CALLS);
        let (a50, b50) = (report("own token", &mut times_a, cpu_a / n), report("--oauth", &mut times_b, cpu_b / n));
        println!(
            "  difference: p50 {:+.3} ms, server CPU {:+.0} µs/call",
            (b50.as_secs_f64() - a50.as_secs_f64()) * 1000.0,
            (cpu_b - cpu_a) * 1e6 / n
        );
    }
    a.cancel().await.ok();
    b.cancel().await.ok();
    plain.child.kill().await.ok();
    oauth.child.kill().await.ok();
}

/// Prints one server's p50, p99 and CPU per call; returns the p50.
fn report(name: &str, times: &mut [Duration], cpu_per_call: f64) -> Duration {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (p50, p99) = (times[times.len() / 2], times[times.len() * 99 / 100]);
    println!("  {name:<9}: p50 {:.3} ms, p99 {:.3} ms, server CPU {:.0} µs/call", ms(p50), ms(p99), cpu_per_call * 1e6);
    p50
}

/// Seconds of CPU (user + system) the process `pid` has used so far (Linux).
fn server_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (in parentheses, may hold spaces): utime and stime
    // are fields 14 and 15 of proc(5), so 11 and 12 here.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}
