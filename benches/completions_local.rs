//! `completion/complete` on the 100,000-aspect local store the aspects benchmark builds
//! (`aspect_store`), plus 1,000 artifacts and 30 services.
//!
//! Method: generate the store, drive the release binary over stdio as an MCP client does
//! (`initialize`, one `list_aspects` so the background index build is done), then time
//! `CALLS` completions of each kind on one running server, from writing the request line to
//! reading the answer line: schema URNs for a prefix (20 of the 100 schemas), all 100 schema
//! URNs, artifact URNs (the newest 100 of 1,000) and service names. The baseline, in the
//! same run on the same server: `list_aspects` filtered by a schema prefix (limit 10), the
//! cheapest call that also asks the aspect index. Prints min, median and p90; the target is
//! an answer within 100 ms.
//!
//! Run: `cargo bench --bench completions_local`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod aspect_store;
mod common;

use std::time::Instant;

use common::{Server, stats};
use serde_json::{Value, json};

const CALLS: usize = 200;
const ARTIFACTS: usize = 1_000;
const SERVICES: usize = 30;

fn complete(server: &mut Server, prompt: &str, argument: &str, value: &str) -> Value {
    let params = json!({"ref": {"type": "ref/prompt", "name": prompt}, "argument": {"name": argument, "value": value}});
    let answer = server.request("completion/complete", params);
    assert!(answer["result"]["completion"]["values"].is_array(), "{answer}");
    answer["result"]["completion"].clone()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let t = Instant::now();
    aspect_store::generate(&store);
    std::fs::create_dir_all(store.join("artifacts")).unwrap();
    for i in 0..ARTIFACTS {
        std::fs::write(store.join(format!("artifacts/file-{i:04}.txt")), b"x").unwrap();
    }
    std::fs::create_dir_all(store.join("services")).unwrap();
    for i in 0..SERVICES {
        let def = json!({"name": format!("service{i:02}"), "command": ["cat"]});
        std::fs::write(store.join(format!("services/service{i:02}.json")), def.to_string()).unwrap();
    }
    println!(
        "generated {} aspects, {ARTIFACTS} artifacts, {SERVICES} services in {:.1} s",
        aspect_store::N,
        t.elapsed().as_secs_f64()
    );

    let mut server = Server::spawn(&store);
    server.initialize();
    let warm =
        server.request("tools/call", json!({"name": "list_aspects", "arguments": {"schema": "urn:%", "limit": 1}}));
    assert_ne!(warm["result"]["isError"], true, "{warm}");

    let baseline = json!({"name": "list_aspects", "arguments": {"schema": "urn:bench:schema:kind07.%", "limit": 10}});
    let cases: [(&str, &str, &str, &str, usize); 4] = [
        (
            "schema URNs, prefix urn:bench:schema:kind0 (20 values)",
            "annotate_artifact",
            "schema",
            "urn:bench:schema:kind0",
            20,
        ),
        ("schema URNs, all 100", "annotate_artifact", "schema", "urn:bench:schema:", 100),
        ("artifact URNs, newest 100 of 1,000", "annotate_artifact", "artifact", "", 100),
        ("service names, prefix service1 (10 values)", "run_service", "service", "service1", 10),
    ];
    let times = (0..CALLS)
        .map(|_| {
            let start = Instant::now();
            let answer = server.request("tools/call", baseline.clone());
            assert_ne!(answer["result"]["isError"], true, "{answer}");
            start.elapsed()
        })
        .collect();
    stats("baseline: list_aspects by schema prefix", times);
    for (label, prompt, argument, value, expected) in cases {
        let times = (0..CALLS)
            .map(|_| {
                let start = Instant::now();
                let completion = complete(&mut server, prompt, argument, value);
                let elapsed = start.elapsed();
                assert_eq!(completion["values"].as_array().unwrap().len(), expected, "{label}: {completion}");
                elapsed
            })
            .collect();
        stats(&format!("completion/complete: {label}"), times);
    }
    server.stop();
}
