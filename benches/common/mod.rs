//! Shared by the stdio benchmarks: the release binary driven over stdio as an MCP client does,
//! and how results are printed.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The server in local mode on a store, spoken to line by line.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

// Each bench compiles this module on its own and uses only part of it.
#[allow(dead_code)]
impl Server {
    pub fn spawn(store: &Path) -> Server {
        Server::spawn_with(&["--local".as_ref(), store.as_os_str()], &[])
    }

    /// The binary with `args` and `envs` (no IVCAP variables inherited).
    pub fn spawn_with(args: &[&std::ffi::OsStr], envs: &[(&str, &str)]) -> Server {
        Server::spawn_binary(env!("CARGO_BIN_EXE_ivcap-mcp").as_ref(), args, envs)
    }

    /// `binary` (another build, for a baseline) with `args` and `envs`.
    pub fn spawn_binary(binary: &Path, args: &[&std::ffi::OsStr], envs: &[(&str, &str)]) -> Server {
        let mut child = Command::new(binary)
            .args(args)
            .env_remove("IVCAP_URL")
            .env_remove("IVCAP_JWT")
            .env_remove("IVCAP_BASE_URL")
            .env_remove("IVCAP_MCP_SERVICE_TOOLS")
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ivcap-mcp");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Server { child, stdin, stdout, next_id: 1 }
    }

    /// Sends a request and waits for its answer line.
    pub fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        let line = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        writeln!(self.stdin, "{line}").unwrap();
        loop {
            let mut answer = String::new();
            self.stdout.read_line(&mut answer).unwrap();
            let v: serde_json::Value = serde_json::from_str(&answer).expect("a JSON-RPC line");
            if v["id"] == id {
                return v;
            }
        }
    }

    /// Reads messages until a notification `method` arrives.
    pub fn wait_for_notification(&mut self, method: &str) {
        loop {
            let mut line = String::new();
            assert!(self.stdout.read_line(&mut line).unwrap() > 0, "server closed stdout");
            let v: serde_json::Value = serde_json::from_str(&line).expect("a JSON-RPC line");
            if v["method"] == method {
                return;
            }
        }
    }

    pub fn initialize(&mut self) {
        let params = serde_json::json!({"protocolVersion": "2025-11-25", "capabilities": {},
                                        "clientInfo": {"name": "bench", "version": "0"}});
        let answer = self.request("initialize", params);
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
        writeln!(self.stdin, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#).unwrap();
    }

    pub fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

/// Prints min, median and p90 of `times`.
pub fn stats(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = times.len();
    println!(
        "{label}: {n} runs: min {:.2} ms, median {:.2} ms, p90 {:.2} ms",
        ms(times[0]),
        ms(times[n / 2]),
        ms(times[n * 9 / 10])
    );
}
