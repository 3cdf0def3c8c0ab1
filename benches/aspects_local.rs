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

mod aspect_store;
mod common;

use std::time::Instant;

use aspect_store::{N, generate};
use common::{Server, stats};

const STARTS: usize = 5;
const QUERIES: usize = 200;

/// `list_aspects` with `args`; the number of items answered.
fn list(server: &mut Server, args: serde_json::Value) -> usize {
    let answer = server.request("tools/call", serde_json::json!({"name": "list_aspects", "arguments": args}));
    let result = &answer["result"];
    assert_ne!(result["isError"], true, "{answer}");
    result["structuredContent"]["items"].as_array().map_or(0, Vec::len)
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
    assert_eq!(list(&mut server, by_entity.clone()), 10);
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
        assert_eq!(list(&mut server, by_entity.clone()), 10);
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
    assert_eq!(list(&mut server, serde_json::json!({"entity": "urn:bench:entity:new", "limit": 10})), 10);
    stats("start-up with 1,000 files newer than the snapshot: spawn → first answer", vec![start.elapsed()]);
    server.stop();

    let mut server = Server::spawn(&store);
    server.initialize();
    list(&mut server, by_entity.clone());
    for (label, args) in [("list_aspects by entity", by_entity), ("list_aspects by schema prefix", by_schema)] {
        let times = (0..QUERIES)
            .map(|_| {
                let start = Instant::now();
                assert_eq!(list(&mut server, args.clone()), 10);
                start.elapsed()
            })
            .collect();
        stats(label, times);
    }
    server.stop();
}
