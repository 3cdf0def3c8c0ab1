//! Cold start: process spawn → `initialize` answered, in local mode.
//!
//! Method: spawn the release binary `RUNS` times (after `WARMUP` unmeasured runs to warm
//! the page cache), write one `initialize` request to its stdin, time until the answer line
//! arrives on stdout, then close stdin and reap it. Prints min, median and p90.
//! Run: `cargo bench --bench cold_start`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, stats};

const RUNS: usize = 50;
const WARMUP: usize = 5;

fn one_start(store: &std::path::Path) -> Duration {
    let start = Instant::now();
    let mut server = Server::spawn(store);
    server.initialize();
    let elapsed = start.elapsed();
    server.stop();
    elapsed
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ivcap-mcp-bench-{}", std::process::id()));
    for _ in 0..WARMUP {
        one_start(&dir);
    }
    let times: Vec<Duration> = (0..RUNS).map(|_| one_start(&dir)).collect();
    stats("cold start (spawn → initialize answered)", times);
    let _ = std::fs::remove_dir_all(&dir);
}
