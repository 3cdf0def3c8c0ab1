//! Cold start: process spawn → `initialize` answered, and spawn → the first `tools/list`
//! answered (the handshake and then what every client asks first), in local mode.
//!
//! Method: spawn the release binary `RUNS` times (after `WARMUP` unmeasured runs to warm
//! the page cache), write one `initialize` request to its stdin and time until the answer line
//! arrives on stdout, then send `notifications/initialized` and `tools/list` and time until
//! that answer arrives, then close stdin and reap it. Prints min, median and p90 of each.
//! Run: `cargo bench --bench cold_start`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, stats};

const RUNS: usize = 50;
const WARMUP: usize = 5;

/// Times to `initialize` answered and to `tools/list` answered, from spawn.
fn one_start(store: &std::path::Path) -> (Duration, Duration) {
    let start = Instant::now();
    let mut server = Server::spawn(store);
    server.initialize();
    let initialized = start.elapsed();
    let tools = server.request("tools/list", serde_json::json!({}));
    let listed = start.elapsed();
    assert!(tools["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{tools}");
    server.stop();
    (initialized, listed)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ivcap-mcp-bench-{}", std::process::id()));
    for _ in 0..WARMUP {
        one_start(&dir);
    }
    let (initialized, listed): (Vec<Duration>, Vec<Duration>) = (0..RUNS).map(|_| one_start(&dir)).unzip();
    stats("cold start (spawn → initialize answered)", initialized);
    stats("cold start (spawn → first tools/list answered)", listed);
    let _ = std::fs::remove_dir_all(&dir);
}
