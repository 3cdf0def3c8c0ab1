//! Local Datalog search over 100,000-aspect stores, each query against its baseline in the
//! same run: the same search with the index narrowing off (`pushdown: false`, or the hidden
//! `--search-full-scan` flag of the binary), which makes every fact of a read predicate and
//! drops the ones no read can match afterwards.
//!
//! Part 1, in process (`SearchBackend::search`: fact gathering, evaluation on a blocking
//! thread, first page of 10). Store: 50,000 entities, each with a `label.1` aspect
//! `{"label": "label-<i mod 1000>", "score": i}` and a `size.1` aspect `{"bytes": i}`. One
//! unmeasured search per backend builds its aspect index, then for each query `WARMUP`
//! unmeasured runs and `RUNS` measured ones, alternating narrowed and baseline run by run:
//! - selective: the aspects with one label value (50 answers);
//! - join: those aspects joined with the `size.1` aspect of the same entity (50 answers).
//!
//! Part 2, the release binary over stdio as an MCP client drives it (`tools/call search`,
//! timed from writing the request line to reading the answer line). Store: the aspect
//! benches' (1,000 entities × 100 aspects, 50 schema kinds × 2 versions). Two servers, one
//! with `--search-full-scan`, queried alternately, `QUERIES` calls each:
//! - entity: `query(S, C) :- ivcap_aspect("urn:bench:entity:7", S, C).` (100 answers);
//! - schema: `query(E) :- ivcap_aspect(E, "urn:bench:schema:kind07.v1", _).` (1,000);
//! - entity join: the aspect of one schema with `size` 7, joined on its entity with all
//!   that entity's aspects and their sizes (100 answers).
//!
//! With `SEARCH_BASELINE_BIN=<path to another build of ivcap-mcp>`, that binary is the
//! baseline server instead (before/after comparisons against an older commit).
//!
//! Then start-up with the index snapshot present, `STARTS` times: spawn → first
//! entity-bound search answered, on our server and the baseline, and spawn → first
//! entity-filtered `list_aspects` answered (the aspects bench's start-up figure), in turn.
//!
//! Run: `cargo bench --bench search_local`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod aspect_store;
mod common;

use std::time::Instant;

use common::{Server, stats};
use ivcap_mcp::backend::local::LocalBackend;
use ivcap_mcp::backend::local::search::SearchOptions;
use ivcap_mcp::backend::{PageRequest, SearchBackend};
use serde_json::json;

const ENTITIES: usize = 50_000;
const RUNS: usize = 10;
const WARMUP: usize = 2;
const QUERIES: usize = 20;
const STARTS: usize = 5;

const SELECTIVE: &str = r#":- ivcap_aspect(E, "urn:bench:schema:label.1", C), :match_field(C, /label, "label-42")."#;
const JOIN: &str = r#":- ivcap_aspect(E, "urn:bench:schema:label.1", C), :match_field(C, /label, "label-42"),
   ivcap_aspect(E, "urn:bench:schema:size.1", S), :match_field(S, /bytes, B)."#;

const BY_ENTITY: &str = r#"query(S, C) :- ivcap_aspect("urn:bench:entity:7", S, C)."#;
const BY_SCHEMA: &str = r#"query(E) :- ivcap_aspect(E, "urn:bench:schema:kind07.v1", _)."#;
const ENTITY_JOIN: &str = r#"query(E, S, Size) :- ivcap_aspect(E, "urn:bench:schema:kind07.v1", C), :match_field(C, /size, 7),
   ivcap_aspect(E, S, D), :match_field(D, /size, Size)."#;

fn write_store(dir: &std::path::Path) {
    let aspects = dir.join("aspects");
    std::fs::create_dir_all(&aspects).unwrap();
    let mut n = 0u64;
    let mut write = |entity: &str, schema: &str, content: serde_json::Value| {
        n += 1;
        let uuid = uuid::Uuid::from_u128(n as u128);
        let record = json!({
            "id": format!("urn:ivcap:aspect:{uuid}"), "entity": entity, "schema": schema,
            "content": content, "valid_from": "2026-01-01T00:00:00.000000+00:00", "valid_to": null,
        });
        std::fs::write(aspects.join(format!("{uuid}.json")), serde_json::to_vec_pretty(&record).unwrap()).unwrap();
    };
    for i in 0..ENTITIES {
        let entity = format!("urn:bench:entity:{i}");
        write(
            &entity,
            "urn:bench:schema:label.1",
            json!({"$schema": "urn:bench:schema:label.1", "label": format!("label-{}", i % 1000), "score": i}),
        );
        write(&entity, "urn:bench:schema:size.1", json!({"$schema": "urn:bench:schema:size.1", "bytes": i * 7}));
    }
}

fn in_process() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    write_store(dir.path());
    println!("wrote {} aspects in {:.1} s", 2 * ENTITIES, started.elapsed().as_secs_f64());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let narrowed = LocalBackend::new(dir.path()).unwrap();
    let baseline =
        LocalBackend::new(dir.path()).unwrap().with_search(SearchOptions { pushdown: false, ..Default::default() });
    let page = PageRequest::first(10);
    let run = |backend: &LocalBackend, query: &str| {
        let start = Instant::now();
        let found = rt.block_on(backend.search(query, None, &page)).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(found.items.len(), 10, "{query}");
        elapsed
    };
    for (name, backend) in [("narrowed", &narrowed), ("baseline", &baseline)] {
        let started = Instant::now();
        run(backend, SELECTIVE);
        println!("{name}: first search (builds the aspect index): {:.1} s", started.elapsed().as_secs_f64());
    }
    for (name, query) in [("selective", SELECTIVE), ("join", JOIN)] {
        for _ in 0..WARMUP {
            run(&narrowed, query);
            run(&baseline, query);
        }
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(run(&narrowed, query));
            base.push(run(&baseline, query));
        }
        stats(&format!("in process, {name}"), ours);
        stats(&format!("in process, {name}, baseline (full scan)"), base);
    }
}

/// `search` for `query` on `server`; the number of answers on the first page.
fn search(server: &mut Server, query: &str) -> usize {
    let answer = server.request("tools/call", json!({"name": "search", "arguments": {"query": query, "limit": 10}}));
    let result = &answer["result"];
    assert_ne!(result["isError"], true, "{answer}");
    result["structuredContent"]["items"].as_array().map_or(0, Vec::len)
}

fn spawn(store: &std::path::Path, full_scan: bool) -> Server {
    let mut args = vec!["--local".as_ref(), store.as_os_str()];
    let mut server = match std::env::var_os("SEARCH_BASELINE_BIN").filter(|_| full_scan) {
        Some(binary) => Server::spawn_binary(binary.as_ref(), &args, &[]),
        None => {
            if full_scan {
                args.push("--search-full-scan".as_ref());
            }
            Server::spawn_with(&args, &[])
        }
    };
    server.initialize();
    server
}

fn over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let t = Instant::now();
    aspect_store::generate(&store);
    println!("generated {} aspects in {:.1} s", aspect_store::N, t.elapsed().as_secs_f64());

    // The first server builds the index and leaves the snapshot the later starts use.
    let mut ours = spawn(&store, false);
    let mut base = spawn(&store, true);
    for query in [BY_ENTITY, BY_SCHEMA, ENTITY_JOIN] {
        assert_eq!(search(&mut ours, query), 10, "{query}");
        assert_eq!(search(&mut base, query), 10, "{query}");
    }
    for (name, query) in [("entity", BY_ENTITY), ("schema", BY_SCHEMA), ("entity join", ENTITY_JOIN)] {
        let (mut t_ours, mut t_base) = (Vec::new(), Vec::new());
        for _ in 0..QUERIES {
            for (server, times) in [(&mut ours, &mut t_ours), (&mut base, &mut t_base)] {
                let start = Instant::now();
                search(server, query);
                times.push(start.elapsed());
            }
        }
        stats(&format!("stdio, {name}"), t_ours);
        stats(&format!("stdio, {name}, baseline"), t_base);
    }
    ours.stop();
    base.stop();
    assert!(store.join(".ivcap-mcp/aspect-index.jsonl").is_file(), "a snapshot was left");

    let (mut first_search, mut first_base, mut first_list) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..STARTS {
        for (full_scan, times) in [(false, &mut first_search), (true, &mut first_base)] {
            let start = Instant::now();
            let mut server = spawn(&store, full_scan);
            assert_eq!(search(&mut server, BY_ENTITY), 10);
            times.push(start.elapsed());
            server.stop();
        }

        let start = Instant::now();
        let mut server = spawn(&store, false);
        let args = json!({"name": "list_aspects", "arguments": {"entity": "urn:bench:entity:42", "limit": 10}});
        let answer = server.request("tools/call", args);
        assert_eq!(answer["result"]["structuredContent"]["items"].as_array().map_or(0, Vec::len), 10, "{answer}");
        first_list.push(start.elapsed());
        server.stop();
    }
    stats("start-up with snapshot: spawn → first entity-bound search answered", first_search);
    stats("start-up with snapshot: spawn → first entity-bound search answered, baseline", first_base);
    stats("start-up with snapshot: spawn → first entity-filtered list_aspects answered (baseline)", first_list);
}

fn main() {
    in_process();
    over_stdio();
}
