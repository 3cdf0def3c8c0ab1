//! The aspects toolset over the real binary. The shared scenarios run on both modes
//! ([`both_modes!`](crate::common::both_modes)); mode-specific wire and file-format checks follow.

use std::path::Path;
use std::time::Duration;

use axum::http::Method;
use ivcap_standin::StandIn;
use serde_json::{Value, json};

use crate::common::{Client, Env, both_modes, call, err, local, ok};

both_modes!(
    add_get_update_retract,
    schema_prefix_and_content_path_filters,
    paging_visits_each_aspect_once,
    bad_arguments_are_clear_errors,
    filters_and_order_by
);

async fn add(c: &Client, entity: &str, schema: &str, content: Value) -> String {
    let added = ok(&call(c, "add_aspect", json!({"entity": entity, "schema": schema, "content": content})).await);
    added["id"].as_str().unwrap().to_string()
}

async fn ids(c: &Client, args: Value) -> Vec<String> {
    let listed = ok(&call(c, "list_aspects", args).await);
    listed["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

async fn add_get_update_retract(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let (e, s) = ("urn:ex:photo:1", "urn:ex:schema:label.1");
    let first = add(c, e, s, json!({"label": "cat", "score": 0.5})).await;
    assert!(first.starts_with("urn:ivcap:aspect:"), "{first}");

    let got = ok(&call(c, "get_aspect", json!({"aspect_id": first})).await);
    assert_eq!((got["entity"].as_str(), got["schema"].as_str()), (Some(e), Some(s)));
    assert_eq!(got["content"]["label"], "cat");
    assert_eq!(got["valid_to"], Value::Null);

    tokio::time::sleep(Duration::from_millis(30)).await;
    let before_update = now();
    tokio::time::sleep(Duration::from_millis(30)).await;

    let updated = ok(&call(c, "update_aspect", json!({"entity": e, "schema": s, "content": {"label": "dog"}})).await);
    let second = updated["id"].as_str().unwrap().to_string();
    assert_eq!(updated["replaced"].as_str(), Some(first.as_str()));
    assert_ne!(second, first);

    let old = ok(&call(c, "get_aspect", json!({"aspect_id": first})).await);
    assert!(old["valid_to"].is_string(), "the replaced aspect is retracted: {old}");
    assert_eq!(ids(c, json!({"entity": e})).await, [second.as_str()], "only the new one is live");
    let then =
        ok(&call(c, "list_aspects", json!({"entity": e, "at_time": before_update, "include_content": true})).await);
    assert_eq!(then["items"].as_array().unwrap().len(), 1, "{then}");
    assert_eq!(then["items"][0]["id"].as_str(), Some(first.as_str()), "at_time before the update finds the old one");
    assert_eq!(then["items"][0]["content"]["label"], "cat");

    let retracted = ok(&call(c, "retract_aspect", json!({"aspect_id": second})).await);
    assert_eq!(retracted["id"].as_str(), Some(second.as_str()));
    let valid_to = retracted["valid_to"].as_str().expect("valid_to set").to_string();
    let still = ok(&call(c, "get_aspect", json!({"aspect_id": second})).await);
    assert_eq!(still["valid_to"].as_str(), Some(valid_to.as_str()), "retracted aspects stay readable");
    assert_eq!(still["content"]["label"], "dog");
    assert!(ids(c, json!({"entity": e})).await.is_empty(), "nothing live after the retraction");

    let again = err(&call(c, "retract_aspect", json!({"aspect_id": second})).await);
    assert!(again.contains("already retracted") && again.contains("nothing changed"), "{again}");

    // With nothing live, update simply adds (on the platform: a POST, not a refused PUT).
    let fresh = ok(&call(c, "update_aspect", json!({"entity": e, "schema": s, "content": {"label": "owl"}})).await);
    assert_eq!(fresh["replaced"], Value::Null);
    assert_eq!(ids(c, json!({"entity": e})).await, [fresh["id"].as_str().unwrap().to_string()]);

    let missing = err(&call(
        c,
        "get_aspect",
        json!({"aspect_id": "urn:ivcap:aspect:00000000-0000-4000-8000-000000000000"}),
    )
    .await);
    assert!(missing.contains("no such aspect") && missing.contains("list_aspects"), "{missing}");
    let missing = err(&call(c, "retract_aspect", json!({"aspect_id": "00000000-0000-4000-8000-000000000000"})).await);
    assert!(missing.contains("no such aspect"), "{missing}");
    if let Some(standin) = &env.standin {
        let puts = standin.requests_to(Method::PUT, "/1/aspects");
        assert_eq!(puts.len(), 1, "one PUT (the real update); the update with nothing live POSTs");
    }
}

async fn schema_prefix_and_content_path_filters(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let cat =
        add(c, "urn:ex:photo:1", "urn:ex:schema:label.1", json!({"label": "cat", "size": 20000, "done": true})).await;
    let dog =
        add(c, "urn:ex:photo:2", "urn:ex:schema:label.2", json!({"label": "dog", "size": 10000, "done": false})).await;
    let items = add(
        c,
        "urn:ex:photo:3",
        "urn:ex:schema:images.1",
        json!({"items": [{"size": 500}, {"size": 30000}], "meta": {"kind": "x"}}),
    )
    .await;
    let other = add(c, "urn:ex:photo:3", "urn:other:schema:label.1", json!({"label": "cat"})).await;

    let mut labels = ids(c, json!({"schema": "urn:ex:schema:label%"})).await;
    labels.sort();
    let mut expected = vec![cat.clone(), dog.clone()];
    expected.sort();
    assert_eq!(labels, expected, "% prefix");
    assert_eq!(ids(c, json!({"schema": "urn:%:schema:label.1"})).await.len(), 2, "% inside the pattern");
    assert_eq!(ids(c, json!({"schema": "urn:ex:schema:label.1"})).await, [cat.as_str()], "no % = exact");
    assert_eq!(ids(c, json!({"entity": "urn:ex:photo:3", "schema": "urn:ex:%"})).await, [items.as_str()]);

    let path = |p: &str| json!({"content_path": p});
    let mut cats = ids(c, path(r#"$.label ? (@ == "cat")"#)).await;
    cats.sort();
    let mut expected = vec![cat.clone(), other.clone()];
    expected.sort();
    assert_eq!(cats, expected, "string equality");
    assert_eq!(ids(c, path(r#"$.label ? (@ != "cat")"#)).await, [dog.as_str()]);
    assert_eq!(ids(c, path("$.size ? (@ > 10000)")).await, [cat.as_str()]);
    assert_eq!(ids(c, path("$.size ? (@ >= 10000)")).await.len(), 2);
    assert_eq!(ids(c, path("$.size ? (@ < 20000)")).await, [dog.as_str()]);
    assert_eq!(ids(c, path("$.size ? (@ <= 10000)")).await, [dog.as_str()]);
    assert_eq!(ids(c, path("$.done ? (@ == true)")).await, [cat.as_str()]);
    assert_eq!(ids(c, path("$.items[*] ? (@.size > 10000)")).await, [items.as_str()]);
    assert_eq!(ids(c, path(r#"$.meta.kind ? (@ == "x")"#)).await, [items.as_str()]);
    assert!(ids(c, path("$.items[*] ? (@.size > 90000)")).await.is_empty());
    let combined = json!({"schema": "urn:ex:%", "content_path": r#"$.label ? (@ == "cat")"#});
    assert_eq!(ids(c, combined).await, [cat.as_str()], "filters combine");

    let with = ok(&call(c, "list_aspects", json!({"entity": "urn:ex:photo:1", "include_content": true})).await);
    assert_eq!(with["items"][0]["content"]["label"], "cat");
    let without = ok(&call(c, "list_aspects", json!({"entity": "urn:ex:photo:1"})).await);
    assert!(without["items"][0].get("content").is_none(), "content only when asked: {without}");

    if let Some(standin) = &env.standin {
        let sent = standin.requests_to(Method::GET, "/1/aspects");
        let filtered = sent.iter().find(|r| r.query_param("content-path").is_some()).unwrap();
        assert_eq!(filtered.query_param("content-path").as_deref(), Some(r#"$.label ? (@ == "cat")"#));
        assert_eq!(filtered.query_param("order-direction").as_deref(), Some("DESC"));
    }
}

async fn paging_visits_each_aspect_once(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let mut added = Vec::new();
    for i in 0..25 {
        added.push(add(c, "urn:ex:bulk:1", &format!("urn:ex:schema:n.{}", i % 3), json!({"n": i})).await);
    }
    let mut seen = Vec::new();
    let mut page = None;
    let mut pages = 0;
    loop {
        let mut args = json!({"entity": "urn:ex:bulk:1", "limit": 10});
        if let Some(p) = &page {
            args["page"] = json!(p);
        }
        let listed = ok(&call(c, "list_aspects", args).await);
        pages += 1;
        seen.extend(listed["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match listed["next_page"].as_str() {
            Some(p) => {
                assert!(!p.is_empty());
                page = Some(p.to_string());
            }
            None => break,
        }
        assert!(pages < 5, "paging does not end");
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<String> = added.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "each aspect exactly once, newest first");

    let asc = ids(c, json!({"entity": "urn:ex:bulk:1", "order_direction": "ASC", "limit": 3})).await;
    assert_eq!(asc, added[..3]);
}

async fn bad_arguments_are_clear_errors(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let e = err(&call(c, "add_aspect", json!({"entity": "urn:ex:1", "schema": "urn:s:1", "content": [1, 2]})).await);
    assert!(e.contains("'content'") && e.contains("JSON object"), "{e}");
    let e = err(&call(c, "add_aspect", json!({"entity": "photo 1", "schema": "urn:s:1", "content": {}})).await);
    assert!(e.contains("'entity'") && e.contains("not a URN"), "{e}");
    let e = err(&call(c, "update_aspect", json!({"entity": "urn:ex:1", "schema": "label", "content": {}})).await);
    assert!(e.contains("'schema'"), "{e}");
    let e = err(&call(
        c,
        "add_aspect",
        json!({"entity": "urn:ex:1", "schema": "urn:s:1", "content": {}, "policy": "open"}),
    )
    .await);
    assert!(e.contains("'policy'") && e.contains("urn:ivcap:policy:"), "{e}");
    let e = err(&call(c, "list_aspects", json!({"at_time": "yesterday"})).await);
    assert!(e.contains("'at_time'") && e.contains("RFC 3339"), "{e}");
    let e = err(&call(c, "list_aspects", json!({"order_direction": "up"})).await);
    assert!(e.contains("'order_direction'") && e.contains("ASC"), "{e}");
    let e = err(&call(c, "list_aspects", json!({"content_path": "$.label ? (@ =="})).await);
    assert!(e.contains("content") && e.to_lowercase().contains("path"), "{e}");
    let e = err(&call(c, "get_aspect", json!({"aspect_id": "../../etc/passwd"})).await);
    assert!(e.contains("'aspect'"), "{e}");
    let e = err(&call(c, "list_aspects", json!({"limit": 0})).await);
    assert!(e.contains("'limit'"), "{e}");
    assert!(
        env.standin.as_ref().is_none_or(|s| s.requests_to(Method::POST, "/1/aspects").is_empty()),
        "nothing bad was sent"
    );
}

#[tokio::test]
async fn platform_wire_format_follows_the_sdk() {
    let env = Env::start(true).await;
    let s = env.standin.as_ref().unwrap();
    let c = &env.client;
    let args = json!({"entity": "urn:ex:e1", "schema": "urn:ex:schema:s.1", "content": {"v": 1},
                      "policy": "urn:ivcap:policy:ivcap.open.metadata"});
    let id = ok(&call(c, "add_aspect", args).await)["id"].as_str().unwrap().to_string();
    let post = &s.requests_to(Method::POST, "/1/aspects")[0];
    assert_eq!(post.query_param("entity").as_deref(), Some("urn:ex:e1"));
    assert_eq!(post.query_param("schema").as_deref(), Some("urn:ex:schema:s.1"));
    assert_eq!(post.query_param("policy").as_deref(), Some("urn:ivcap:policy:ivcap.open.metadata"));
    let body: Value = serde_json::from_slice(post.body.as_deref().unwrap()).unwrap();
    assert_eq!(body, json!({"$schema": "urn:ex:schema:s.1", "$entity": "urn:ex:e1", "v": 1}));
    assert_eq!(s.aspect(&id).unwrap().content, body, "stored verbatim");

    ok(&call(c, "retract_aspect", json!({"aspect_id": id})).await);
    let delete = &s.requests_to(Method::DELETE, "/1/aspects/")[0];
    assert!(delete.raw_path.contains("urn%3Aivcap%3Aaspect%3A"), "{}", delete.raw_path);
    assert_eq!(s.aspect(&id).unwrap().retracter.as_deref(), Some(ivcap_standin::PRINCIPAL));
}

#[tokio::test]
async fn platform_update_with_two_live_aspects_names_them() {
    let env = Env::start(true).await;
    let s = env.standin.as_ref().unwrap();
    let a = s.add_aspect("urn:ex:e1", "urn:ex:schema:s.1", json!({"v": 1}), "2026-01-01T00:00:00.000000Z");
    let b = s.add_aspect("urn:ex:e1", "urn:ex:schema:s.1", json!({"v": 2}), "2026-01-02T00:00:00.000000Z");
    let e = err(&call(
        &env.client,
        "update_aspect",
        json!({"entity": "urn:ex:e1", "schema": "urn:ex:schema:s.1", "content": {"v": 3}}),
    )
    .await);
    assert!(e.contains("2 live aspects") && e.contains(&a) && e.contains(&b), "{e}");
    assert!(e.contains("found 2 matches") && e.contains("retract_aspect"), "the platform's 424 and the fix: {e}");
    assert_eq!(s.requests_to(Method::PUT, "/1/aspects").len(), 1);
}

#[tokio::test]
async fn standin_refuses_non_json_bodies_with_415() {
    let s = StandIn::start().await;
    let resp = ivcap_mcp::http_client()
        .build()
        .unwrap()
        .post(format!("{}/1/aspects?entity=urn:e:1&schema=urn:s:1", s.base_url()))
        .bearer_auth(ivcap_standin::TOKEN)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["message"], "cannot handle 'text/plain'");
}

/// Copies the hand-made `LocalIVCAP` files into `<store>/aspects`.
fn copy_fixtures(store: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aspects");
    let to = store.join("aspects");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

const CAFE: &str = "urn:ivcap:aspect:9c94ad00-1315-47fe-88e3-e8ed133bbffc";

#[tokio::test]
async fn local_reads_and_rewrites_python_files_faithfully() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_fixtures(&store);
    let c = local(&store).await;

    // Three good files; the truncated one is skipped with a warning, not fatal.
    let all = ok(&call(&c, "list_aspects", json!({"include_content": true, "limit": 50})).await);
    assert_eq!(all["items"].as_array().unwrap().len(), 3, "{all}");
    let photo1 = ids(&c, json!({"entity": "urn:ex:photo:1", "order_direction": "ASC"})).await;
    assert_eq!(photo1, ["urn:ivcap:aspect:4e0c2a1b-7d3f-4a5e-8b6c-9d0e1f2a3b4c", CAFE], "naive times are UTC");
    let by_uuid = ok(&call(&c, "get_aspect", json!({"aspect_id": "9c94ad00-1315-47fe-88e3-e8ed133bbffc"})).await);
    assert_eq!(by_uuid["content"]["label"], "café");
    assert_eq!(by_uuid["valid_from"], "2026-11-29T17:11:38.627649Z");
    assert_eq!(ids(&c, json!({"content_path": "$.size ? (@ > 10000)"})).await, [CAFE]);

    // Retraction rewrites valid_to only; every other byte stays as Python wrote it.
    let file = store.join("aspects/9c94ad00-1315-47fe-88e3-e8ed133bbffc.json");
    let before = std::fs::read_to_string(&file).unwrap();
    let retracted = ok(&call(&c, "retract_aspect", json!({"aspect_id": CAFE})).await);
    let after = std::fs::read_to_string(&file).unwrap();
    let stamp = chrono::DateTime::parse_from_rfc3339(retracted["valid_to"].as_str().unwrap()).unwrap();
    let python_time = stamp.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    assert_eq!(after, before.replace("\"valid_to\": null", &format!("\"valid_to\": \"{python_time}\"")));

    // A new aspect is written exactly as json.dumps(record, indent=2) would.
    let id = add(&c, "urn:ex:photo:9", "urn:ex:schema:label.1", json!({"label": "naïve", "n": 1.0})).await;
    let uuid = id.strip_prefix("urn:ivcap:aspect:").unwrap();
    let written = std::fs::read_to_string(store.join(format!("aspects/{uuid}.json"))).unwrap();
    let record: Value = serde_json::from_str(&written).unwrap();
    let valid_from = record["valid_from"].as_str().unwrap();
    assert!(valid_from.ends_with("+00:00") && valid_from.len() == 32, "isoformat with microseconds: {valid_from}");
    let expected = format!(
        "{{\n  \"id\": \"{id}\",\n  \"entity\": \"urn:ex:photo:9\",\n  \"schema\": \"urn:ex:schema:label.1\",\n  \"content\": {{\n    \"label\": \"na\\u00efve\",\n    \"n\": 1.0\n  }},\n  \"valid_from\": \"{valid_from}\",\n  \"valid_to\": null\n}}"
    );
    assert_eq!(written, expected);
}

#[tokio::test]
async fn local_sees_files_added_behind_its_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let c = local(&store).await;
    assert!(ids(&c, json!({})).await.is_empty());
    copy_fixtures(&store);
    assert_eq!(ids(&c, json!({"limit": 50})).await.len(), 3, "files a Python process added appear at once");
    std::fs::remove_file(store.join("aspects/1b2f5d7e-0a4c-4e8b-9f10-2c3d4e5f6a7b.json")).unwrap();
    assert_eq!(ids(&c, json!({"limit": 50})).await.len(), 2, "and removed ones disappear");
}

#[tokio::test]
async fn two_local_servers_on_one_store_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let (a, b) = (local(&store).await, local(&store).await);
    let (e, s) = ("urn:ex:shared:1", "urn:ex:schema:counter.1");
    add(&a, e, s, json!({"n": 0})).await;

    // Both add and both update the same (entity, schema) at once.
    tokio::join!(writer(&a, "a", e, s), writer(&b, "b", e, s));

    for c in [&a, &b] {
        let notes = ids(c, json!({"entity": "urn:ex:shared:2", "limit": 50})).await;
        assert_eq!(notes.len(), 12, "each server sees every note, its own and the other's");
        assert_eq!(ids(c, json!({"entity": e})).await.len(), 1, "exactly one live counter");
    }
    // On disk: every assertion is a file, and the counter's history has no gap or overlap.
    let mut history: Vec<(String, Option<String>)> = std::fs::read_dir(store.join("aspects"))
        .unwrap()
        .map(|f| serde_json::from_slice::<Value>(&std::fs::read(f.unwrap().path()).unwrap()).unwrap())
        .filter(|r| r["entity"] == e)
        .map(|r| (r["valid_from"].as_str().unwrap().to_string(), r["valid_to"].as_str().map(str::to_string)))
        .collect();
    assert_eq!(history.len(), 13, "1 + 12 updates, none lost");
    history.sort();
    for pair in history.windows(2) {
        assert_eq!(pair[0].1.as_deref(), Some(pair[1].0.as_str()), "each update replaced the one before: {history:?}");
    }
    assert_eq!(history.last().unwrap().1, None);
}

async fn writer(c: &Client, who: &str, e: &str, s: &str) {
    for i in 0..6 {
        add(c, "urn:ex:shared:2", "urn:ex:schema:note.1", json!({"who": who, "i": i})).await;
        ok(&call(c, "update_aspect", json!({"entity": e, "schema": s, "content": {"who": who, "i": i}})).await);
    }
}

#[tokio::test]
async fn local_aspects_valid_at_serves_the_search_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_fixtures(&store);
    let backend = ivcap_mcp::backend::local::LocalBackend::new(&store).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-29T17:11:50Z").unwrap().with_timezone(&chrono::Utc);
    let labels = backend.aspects_valid_at(at, Some("urn:ex:schema:label%")).await.unwrap();
    assert_eq!(labels.len(), 1, "the dog aspect is asserted later: {labels:?}");
    assert_eq!(labels[0].id, CAFE);
    assert_eq!(labels[0].content.as_ref().unwrap()["label"], "café", "content included");
    let later = chrono::DateTime::parse_from_rfc3339("2026-11-29T18:00:00Z").unwrap().with_timezone(&chrono::Utc);
    assert_eq!(backend.aspects_valid_at(later, None).await.unwrap().len(), 3);
    let early = chrono::DateTime::parse_from_rfc3339("2026-11-29T17:00:00Z").unwrap().with_timezone(&chrono::Utc);
    assert!(backend.aspects_valid_at(early, None).await.unwrap().is_empty());
}

/// `filter` and `order_by` on list_aspects: the fields ivcap-wire.md lists; the local store
/// orders by valid_from only and says so.
async fn filters_and_order_by(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    for (e, s) in
        [("urn:ex:f:1", "urn:ex:schema:f.1"), ("urn:ex:f:2", "urn:ex:schema:f.1"), ("urn:ex:f:3", "urn:ex:schema:f.2")]
    {
        add(c, e, s, json!({"e": e})).await;
    }
    let entities =
        |items: &[Value]| items.iter().map(|i| i["entity"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let args = json!({"schema": "urn:ex:schema:f%", "filter": "schema = 'urn:ex:schema:f.1'", "limit": 1});
    assert_eq!(entities(&crate::common::all_pages(c, "list_aspects", args).await), ["urn:ex:f:2", "urn:ex:f:1"]);
    let args = json!({"filter": "entity = 'urn:ex:f:3' or entity ~= '%:1'", "order_direction": "ASC"});
    let got = ok(&call(c, "list_aspects", args).await);
    assert_eq!(entities(got["items"].as_array().unwrap()), ["urn:ex:f:1", "urn:ex:f:3"]);
    let args = json!({"schema": "urn:ex:schema:f%", "order_by": "valid_from", "order_direction": "ASC"});
    let got = ok(&call(c, "list_aspects", args).await);
    assert_eq!(entities(got["items"].as_array().unwrap()), ["urn:ex:f:1", "urn:ex:f:2", "urn:ex:f:3"]);

    let by_entity = call(c, "list_aspects", json!({"schema": "urn:ex:schema:f%", "order_by": "schema,entity"})).await;
    if let Some(s) = &env.standin {
        assert_eq!(entities(ok(&by_entity)["items"].as_array().unwrap()), ["urn:ex:f:3", "urn:ex:f:2", "urn:ex:f:1"]);
        let sent = s.requests_to(Method::GET, "/1/aspects");
        let last = sent.last().unwrap();
        assert_eq!(last.query_param("order-by").as_deref(), Some("schema,entity"));
        assert_eq!(last.query_param("order-direction").as_deref(), Some("DESC"));
        assert!(sent.iter().any(|r| r.query_param("filter").as_deref() == Some("schema = 'urn:ex:schema:f.1'")));
    } else {
        let e = err(&by_entity);
        assert!(e.contains("'order_by'") && e.contains("valid_from only"), "{e}");
    }
    let e = err(&call(c, "list_aspects", json!({"order_by": "colour"})).await);
    assert!(e.contains("'order_by'") && e.contains("entity, schema, content, policy, account, created_by"), "{e}");
    let e = err(&call(c, "list_aspects", json!({"filter": "content = 'x'"})).await);
    assert!(e.contains("'filter'") && e.contains("unknown field 'content'"), "{e}");
}
