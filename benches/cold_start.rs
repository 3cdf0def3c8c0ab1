//! Cold start: process spawn → `initialize` answered, in local mode.
//!
//! Method: spawn the release binary `RUNS` times (after `WARMUP` unmeasured runs to warm
//! the page cache), write one `initialize` request to its stdin, time until the answer line
//! arrives on stdout, then close stdin and reap it. Prints min, median and p90.
//! Run: `cargo bench --bench cold_start`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 50;
const WARMUP: usize = 5;

fn one_start(store: &std::path::Path) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ivcap-mcp"))
        .arg("--local")
        .arg(store)
        .env_remove("IVCAP_URL")
        .env_remove("IVCAP_JWT")
        .env_remove("IVCAP_BASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ivcap-mcp");
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(
            br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}
"#,
        )
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let elapsed = start.elapsed();
    assert!(line.contains("serverInfo"), "unexpected answer: {line}");
    drop(stdin);
    child.wait().unwrap();
    elapsed
}

fn main() {
    let dir = std::env::temp_dir().join(format!("ivcap-mcp-bench-{}", std::process::id()));
    for _ in 0..WARMUP {
        one_start(&dir);
    }
    let mut times: Vec<Duration> = (0..RUNS).map(|_| one_start(&dir)).collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "cold start (spawn → initialize answered), {RUNS} runs: min {:.2} ms, median {:.2} ms, p90 {:.2} ms",
        ms(times[0]),
        ms(times[RUNS / 2]),
        ms(times[RUNS * 9 / 10])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
