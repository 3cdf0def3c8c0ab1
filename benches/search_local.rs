//! Local Datalog search over a 100,000-aspect store.
//!
//! Method: write 100,000 aspect files in the `LocalIVCAP` format into a temporary store
//! (50,000 entities, each with a `label.1` aspect `{"label": "label-<i mod 1000>", "score": i}`
//! and a `size.1` aspect `{"bytes": i}`), open it with `LocalBackend` and run one unmeasured
//! search to build the aspect index. Then time `SearchBackend::search` (fact gathering from
//! the index, evaluation on a blocking thread, first page of 10) `RUNS` times for each query,
//! after `WARMUP` unmeasured runs, and print min, median and p90:
//! - selective: the aspects with one label value (50 answers);
//! - join: those aspects joined with the `size.1` aspect of the same entity (50 answers).
//!
//! Run: `cargo bench --bench search_local`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use ivcap_mcp::backend::local::LocalBackend;
use ivcap_mcp::backend::{PageRequest, SearchBackend};
use serde_json::json;

const ENTITIES: usize = 50_000;
const RUNS: usize = 10;
const WARMUP: usize = 2;

const SELECTIVE: &str = r#":- ivcap_aspect(E, "urn:bench:schema:label.1", C), :match_field(C, /label, "label-42")."#;
const JOIN: &str = r#":- ivcap_aspect(E, "urn:bench:schema:label.1", C), :match_field(C, /label, "label-42"),
   ivcap_aspect(E, "urn:bench:schema:size.1", S), :match_field(S, /bytes, B)."#;

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

fn stats(name: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let p90 = times[(times.len() * 9 / 10).min(times.len() - 1)];
    println!(
        "{name}: median {:.1} ms (min {:.1}, p90 {:.1}) over {} runs",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(p90),
        times.len()
    );
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    write_store(dir.path());
    println!("wrote {} aspects in {:.1} s", 2 * ENTITIES, started.elapsed().as_secs_f64());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = LocalBackend::new(dir.path()).unwrap();
    let page = PageRequest::first(10);
    let run = |query: &str| {
        let start = Instant::now();
        let found = rt.block_on(backend.search(query, None, &page)).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(found.items.len(), 10, "{query}");
        elapsed
    };
    let started = Instant::now();
    run(SELECTIVE);
    println!("first search (builds the aspect index): {:.1} s", started.elapsed().as_secs_f64());
    for (name, query) in [("selective", SELECTIVE), ("join", JOIN)] {
        for _ in 0..WARMUP {
            run(query);
        }
        stats(name, (0..RUNS).map(|_| run(query)).collect());
    }
}
