//! Local aspect store at scale: 100,000 aspects.
//!
//! Method: generate a store of `N` aspect files in the `LocalIVCAP` format in a temp
//! directory (1,000 entities × 100 aspects, 50 schema kinds × 2 versions), then drive the
//! release binary over stdio, exactly as an MCP client does (`initialize`, then
//! `tools/call list_aspects`):
//! - start-up: spawn → `initialize` answered, and spawn → first answer to an entity-filtered
//!   `list_aspects` (the index is built in the background; the query waits for it). Once
//!   cold — no index snapshot yet, so every file is read (page cache warm from generating) —
//!   then over `STARTS` fresh processes that seed from the snapshot the first one wrote;
//! - query latency: `QUERIES` calls each of `list_aspects` filtered by entity, and by a schema
//!   prefix (`urn:bench:schema:kind07.%`, ~2,000 matches), on one running server, timed from
//!   writing the request line to reading the answer line. Prints min, median and p90.
//!
//! Run: `cargo bench --bench aspects_local`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const N: usize = 100_000;
const ENTITIES: usize = 1_000;
const STARTS: usize = 5;
const QUERIES: usize = 200;

fn generate(store: &Path) {
    let dir = store.join("aspects");
    std::fs::create_dir_all(&dir).unwrap();
    let base = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&chrono::Utc);
    for i in 0..N {
        let uuid = uuid::Uuid::new_v4();
        let schema = format!("urn:bench:schema:kind{:02}.v{}", i % 50, 1 + (i / 50) % 2);
        let from = base + chrono::Duration::milliseconds(i as i64 * 10);
        let record = serde_json::json!({
            "id": format!("urn:ivcap:aspect:{uuid}"),
            "entity": format!("urn:bench:entity:{}", i % ENTITIES),
            "schema": schema,
            "content": {"$schema": schema, "label": format!("label-{}", i % 7), "size": i, "items": [{"size": i % 1000}]},
            "valid_from": from.to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
            "valid_to": null,
        });
        std::fs::write(dir.join(format!("{uuid}.json")), serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    }
}

struct Server {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
}

impl Server {
    fn spawn(store: &Path) -> Server {
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
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Server { child, stdin, stdout, next_id: 1 }
    }

    /// Sends a request and waits for its answer line.
    fn request(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
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

    fn initialize(&mut self) {
        let params = serde_json::json!({"protocolVersion": "2025-11-25", "capabilities": {},
                                        "clientInfo": {"name": "bench", "version": "0"}});
        let answer = self.request("initialize", params);
        assert!(answer["result"]["serverInfo"].is_object(), "{answer}");
        writeln!(self.stdin, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#).unwrap();
    }

    fn list(&mut self, args: serde_json::Value) -> usize {
        let answer = self.request("tools/call", serde_json::json!({"name": "list_aspects", "arguments": args}));
        let result = &answer["result"];
        assert_ne!(result["isError"], true, "{answer}");
        result["structuredContent"]["items"].as_array().map_or(0, Vec::len)
    }

    fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn stats(label: &str, mut times: Vec<Duration>) {
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

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let t = Instant::now();
    generate(&store);
    println!("generated {N} aspects in {:.1} s", t.elapsed().as_secs_f64());

    let by_entity = serde_json::json!({"entity": "urn:bench:entity:42", "limit": 10});
    let by_schema = serde_json::json!({"schema": "urn:bench:schema:kind07.%", "limit": 10});

    let start = Instant::now();
    let mut server = Server::spawn(&store);
    server.initialize();
    let init_cold = start.elapsed();
    assert_eq!(server.list(by_entity.clone()), 10);
    let first_cold = start.elapsed();
    server.stop();
    stats("cold start (no snapshot): spawn → initialize answered", vec![init_cold]);
    stats("cold start (no snapshot): spawn → first entity-filtered list_aspects answered", vec![first_cold]);
    assert!(store.join(".ivcap-mcp/aspect-index.jsonl").is_file(), "the cold start left a snapshot");

    let (mut init, mut first) = (Vec::new(), Vec::new());
    for _ in 0..STARTS {
        let start = Instant::now();
        let mut server = Server::spawn(&store);
        server.initialize();
        init.push(start.elapsed());
        assert_eq!(server.list(by_entity.clone()), 10);
        first.push(start.elapsed());
        server.stop();
    }
    stats("start-up: spawn → initialize answered", init);
    stats("start-up: spawn → first entity-filtered list_aspects answered", first);
    // The same after a Python process added 1,000 aspects behind the snapshot's back.
    let extra = store.join("aspects");
    for i in 0..1_000 {
        let uuid = uuid::Uuid::new_v4();
        let record = serde_json::json!({"id": format!("urn:ivcap:aspect:{uuid}"), "entity": "urn:bench:entity:new",
            "schema": "urn:bench:schema:late.1", "content": {"i": i},
            "valid_from": "2026-06-01T00:00:00+00:00", "valid_to": null});
        std::fs::write(extra.join(format!("{uuid}.json")), serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    }
    let start = Instant::now();
    let mut server = Server::spawn(&store);
    server.initialize();
    assert_eq!(server.list(serde_json::json!({"entity": "urn:bench:entity:new", "limit": 10})), 10);
    stats("start-up with 1,000 files newer than the snapshot: spawn → first answer", vec![start.elapsed()]);
    server.stop();

    let mut server = Server::spawn(&store);
    server.initialize();
    server.list(by_entity.clone());
    for (label, args) in [("list_aspects by entity", by_entity), ("list_aspects by schema prefix", by_schema)] {
        let times = (0..QUERIES)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(server.list(args.clone()), 10);
                start.elapsed()
            })
            .collect();
        stats(label, times);
    }
    server.stop();
}
