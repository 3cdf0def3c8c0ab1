//! The 100,000-aspect local store the aspect benchmarks share: `N` aspect files in the
//! `LocalIVCAP` format, 1,000 entities × 100 aspects, 50 schema kinds × 2 versions.

use std::path::Path;

pub const N: usize = 100_000;
pub const ENTITIES: usize = 1_000;

/// Writes the store's aspects under `<store>/aspects`.
pub fn generate(store: &Path) {
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
