//! The collections toolset over the real binary, on both modes
//! ([`both_modes!`](crate::common::both_modes)); the platform's wire calls are checked after.

use axum::http::Method;
use serde_json::{Value, json};

use crate::common::{Client, Env, both_modes, call, err, ok};

both_modes!(
    every_tool_end_to_end,
    add_and_remove_are_idempotent,
    paging_visits_each_of_25_members_once,
    upload_into_a_collection,
    collections_written_as_the_sdk_writes_them_are_seen,
    bad_input_is_a_clear_error
);

const ITEM_SCHEMA: &str = "urn:ivcap:schema:collection-item.1";
const SCHEMA: &str = "urn:ivcap:schema:collection.1";

async fn create(c: &Client, args: Value) -> Value {
    ok(&call(c, "create_collection", args).await)
}

async fn members(c: &Client, id: &str) -> Vec<String> {
    let got = ok(&call(c, "get_collection", json!({"collection": id, "limit": 50})).await);
    assert_eq!(got["next_page"], Value::Null, "{got}");
    strings(&got["members"])
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

async fn update(c: &Client, id: &str, add: &[&str], remove: &[&str]) -> Value {
    ok(&call(c, "update_collection", json!({"collection": id, "add": add, "remove": remove})).await)
}

async fn every_tool_end_to_end(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let made = create(c, json!({"name": "Field trip June", "description": "CTD casts"})).await;
    let id = made["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("urn:ivcap:collection:"), "{made}");
    assert_eq!((made["name"].as_str(), made["description"].as_str()), (Some("Field trip June"), Some("CTD casts")));
    assert_eq!(made["replaced"], false);
    let other = create(c, json!({"name": "Ocean survey", "collection": "urn:example:collection:ocean"})).await;
    assert_eq!(other["id"], "urn:example:collection:ocean");

    let got = ok(&call(c, "get_collection", json!({"collection": id})).await);
    assert_eq!((got["name"].as_str(), got["members"].as_array().map(Vec::len)), (Some("Field trip June"), Some(0)));

    let all = ok(&call(c, "list_collections", json!({})).await);
    let names: Vec<&str> = all["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{all}");
    for (pattern, expected) in
        [("field%", "Field trip June"), ("%SURVEY", "Ocean survey"), ("ocean survey", "Ocean survey")]
    {
        let found = ok(&call(c, "list_collections", json!({"name": pattern})).await);
        let items = found["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{pattern}: {found}");
        assert_eq!(items[0]["name"], expected, "{pattern}");
    }
    let none = ok(&call(c, "list_collections", json!({"name": "trip"})).await);
    assert!(none["items"].as_array().unwrap().is_empty(), "no % means the whole name: {none}");

    // With collection: create-or-replace, as the SDK does.
    let renamed = create(c, json!({"name": "Field trip July", "collection": id})).await;
    assert_eq!((renamed["replaced"].as_bool(), renamed["description"].clone()), (Some(true), Value::Null));
    let got = ok(&call(c, "get_collection", json!({"collection": id})).await);
    assert_eq!((got["name"].as_str(), got["description"].clone()), (Some("Field trip July"), Value::Null));
    let defs = ok(&call(c, "list_aspects", json!({"entity": id, "schema": SCHEMA})).await);
    assert_eq!(defs["items"].as_array().unwrap().len(), 1, "one live definition: {defs}");

    let changed = update(c, &id, &["urn:ex:a:1", "urn:ex:a:2", "urn:ex:a:3"], &[]).await;
    assert_eq!(strings(&changed["added"]), ["urn:ex:a:1", "urn:ex:a:2", "urn:ex:a:3"]);
    let changed = update(c, &id, &[], &["urn:ex:a:2"]).await;
    assert_eq!(strings(&changed["removed"]), ["urn:ex:a:2"]);
    assert_eq!(members(c, &id).await, ["urn:ex:a:1", "urn:ex:a:3"], "oldest membership first");

    let retracted = ok(&call(c, "retract_collection", json!({"collection": id})).await);
    assert_eq!(retracted, json!({"id": id, "memberships_retracted": 2, "definition_retracted": true}));
    let gone = err(&call(c, "get_collection", json!({"collection": id})).await);
    assert!(gone.contains("no such collection") && gone.contains("create_collection"), "{gone}");
    let again = err(&call(c, "retract_collection", json!({"collection": id})).await);
    assert!(again.contains("no such collection"), "{again}");
    let live = ok(&call(c, "list_aspects", json!({"entity": id})).await);
    assert!(live["items"].as_array().unwrap().is_empty(), "nothing of it is live: {live}");
    let left = ok(&call(c, "list_collections", json!({})).await);
    assert_eq!(left["items"].as_array().unwrap().len(), 1, "{left}");
}

async fn add_and_remove_are_idempotent(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let id = create(c, json!({"name": "Set"})).await["id"].as_str().unwrap().to_string();
    let first = update(c, &id, &["urn:ex:a:1", "urn:ex:a:2", "urn:ex:a:1"], &[]).await;
    assert_eq!(
        first,
        json!({"id": id, "added": ["urn:ex:a:1", "urn:ex:a:2"], "already_members": [], "removed": [], "not_members": []})
    );
    let second = update(c, &id, &["urn:ex:a:2", "urn:ex:a:3"], &["urn:ex:a:9"]).await;
    assert_eq!(strings(&second["added"]), ["urn:ex:a:3"]);
    assert_eq!(strings(&second["already_members"]), ["urn:ex:a:2"]);
    assert_eq!(strings(&second["not_members"]), ["urn:ex:a:9"]);
    if let Some(s) = &env.standin {
        // Membership lookups as the SDK makes them: by content-path on the item.
        let lookups = s.requests_to(Method::GET, "/1/aspects");
        let paths: Vec<String> = lookups.iter().filter_map(|r| r.query_param("content-path")).collect();
        assert!(paths.contains(&r#"$.item ? (@ == "urn:ex:a:3")"#.to_string()), "{paths:?}");
    }
    let items = ok(&call(c, "list_aspects", json!({"entity": id, "schema": ITEM_SCHEMA, "limit": 50})).await);
    assert_eq!(items["items"].as_array().unwrap().len(), 3, "one membership aspect per member: {items}");

    let removed = update(c, &id, &[], &["urn:ex:a:1"]).await;
    assert_eq!(strings(&removed["removed"]), ["urn:ex:a:1"]);
    let again = update(c, &id, &[], &["urn:ex:a:1"]).await;
    assert_eq!((strings(&again["removed"]), strings(&again["not_members"])), (vec![], vec!["urn:ex:a:1".to_string()]));
    assert_eq!(members(c, &id).await, ["urn:ex:a:2", "urn:ex:a:3"]);

    // Removed, then added back: a member again, with a new membership aspect.
    let back = update(c, &id, &["urn:ex:a:1"], &[]).await;
    assert_eq!(strings(&back["added"]), ["urn:ex:a:1"]);
    assert_eq!(members(c, &id).await, ["urn:ex:a:2", "urn:ex:a:3", "urn:ex:a:1"]);
}

async fn paging_visits_each_of_25_members_once(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let id = create(c, json!({"name": "Big"})).await["id"].as_str().unwrap().to_string();
    let all: Vec<String> = (0..25).map(|i| format!("urn:ex:item:{i:02}")).collect();
    let added = ok(&call(c, "update_collection", json!({"collection": id, "add": all})).await);
    assert_eq!(added["added"].as_array().unwrap().len(), 25);

    let (mut seen, mut sizes, mut page) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let mut args = json!({"collection": id, "limit": 10});
        if let Some(p) = &page {
            args["page"] = json!(p);
        }
        let got = ok(&call(c, "get_collection", args).await);
        assert_eq!(got["name"], "Big", "every page carries the definition");
        let items = strings(&got["members"]);
        sizes.push(items.len());
        seen.extend(items);
        match got["next_page"].as_str() {
            Some(p) => page = Some(p.to_string()),
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, all, "each member exactly once");

    let retracted = ok(&call(c, "retract_collection", json!({"collection": id})).await);
    assert_eq!(retracted["memberships_retracted"], 25);
    if let Some(s) = &env.standin {
        // One DELETE per aspect, no re-reads: 25 memberships and the definition.
        assert_eq!(s.requests_to(Method::DELETE, "/1/aspects/").len(), 26);
    }
}

async fn upload_into_a_collection(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let id = create(c, json!({"name": "Uploads"})).await["id"].as_str().unwrap().to_string();
    let up = ok(&call(c, "upload_artifact", json!({"content": "a,b\n1,2\n", "name": "t.csv", "collection": id})).await);
    let artifact = up["id"].as_str().unwrap().to_string();
    assert_eq!(members(c, &id).await, [artifact.as_str()]);
    let membership =
        ok(&call(c, "list_aspects", json!({"entity": id, "schema": ITEM_SCHEMA, "include_content": true})).await);
    assert_eq!(membership["items"][0]["content"], json!({"collection": id, "item": artifact}), "the SDK's shape");
    if let Some(s) = &env.standin {
        let post = &s.requests_to(Method::POST, "/1/artifacts")[0];
        assert_eq!(post.header("x-collection").as_deref(), Some(id.as_str()), "the platform is told by header");
        let posts = s.requests_to(Method::POST, "/1/aspects");
        assert!(
            posts.iter().all(|p| p.query_param("schema").as_deref() == Some(SCHEMA)),
            "only the definition was posted; the platform records the membership itself"
        );
    }
    // A file uploaded before (deduplicated on the platform) still joins the collection.
    let path = env.dir.path().join("again.txt");
    std::fs::write(&path, "same bytes").unwrap();
    let first = ok(&call(c, "upload_artifact", json!({"path": path})).await)["id"].as_str().unwrap().to_string();
    let again = ok(&call(c, "upload_artifact", json!({"path": path, "collection": id})).await);
    let second = again["id"].as_str().unwrap().to_string();
    if on_platform {
        assert_eq!((again["deduplicated"].as_bool(), second.as_str()), (Some(true), first.as_str()));
    }
    assert!(members(c, &id).await.contains(&second), "the uploaded file is a member");

    let missing = err(&call(
        c,
        "upload_artifact",
        json!({"content": "x", "collection": "urn:ivcap:collection:00000000-0000-0000-0000-000000000000"}),
    )
    .await);
    assert!(missing.contains("no such collection") && missing.contains("create_collection"), "{missing}");
}

async fn collections_written_as_the_sdk_writes_them_are_seen(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let coll = "urn:ivcap:collection:5f0c6f4e-0000-4000-8000-000000000001";
    // What ivcap_client.collection writes: a definition and one membership per item.
    for (schema, content) in [
        (SCHEMA, json!({"name": "From the SDK", "description": "made in Python"})),
        (ITEM_SCHEMA, json!({"collection": coll, "item": "urn:ex:a:1"})),
    ] {
        ok(&call(c, "add_aspect", json!({"entity": coll, "schema": schema, "content": content})).await);
    }
    let got = ok(&call(c, "get_collection", json!({"collection": coll})).await);
    assert_eq!((got["name"].as_str(), got["description"].as_str()), (Some("From the SDK"), Some("made in Python")));
    assert_eq!(strings(&got["members"]), ["urn:ex:a:1"]);
    let already = update(c, coll, &["urn:ex:a:1"], &[]).await;
    assert_eq!(strings(&already["already_members"]), ["urn:ex:a:1"], "the SDK's membership is found");

    // And what this server writes is what the SDK reads: the definition as {name, description}.
    let made = create(c, json!({"name": "Mine", "description": "d"})).await;
    let def =
        ok(&call(c, "list_aspects", json!({"entity": made["id"], "schema": SCHEMA, "include_content": true})).await);
    let content = &def["items"][0]["content"];
    assert_eq!((content["name"].as_str(), content["description"].as_str()), (Some("Mine"), Some("d")), "{def}");
}

async fn bad_input_is_a_clear_error(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let id = create(c, json!({"name": "Ok"})).await["id"].as_str().unwrap().to_string();
    let unknown = "urn:ivcap:collection:00000000-0000-0000-0000-000000000000";
    let cases = [
        ("create_collection", json!({"name": " "}), "'name'"),
        ("create_collection", json!({"name": "x", "collection": "trip"}), "'collection'"),
        ("create_collection", json!({"name": "x", "policy": "open"}), "'policy'"),
        ("get_collection", json!({"collection": "trip"}), "'collection'"),
        ("get_collection", json!({"collection": id, "limit": 0}), "'limit'"),
        ("get_collection", json!({"collection": id, "page": "***"}), "'page'"),
        ("get_collection", json!({"collection": unknown}), "no such collection"),
        ("list_collections", json!({"limit": 51}), "'limit'"),
        ("update_collection", json!({"collection": id}), "both empty"),
        ("update_collection", json!({"collection": id, "add": ["urn:ex:a:1", "a.txt"]}), "item 1 'a.txt'"),
        ("update_collection", json!({"collection": id, "remove": [""]}), "'remove'"),
        ("update_collection", json!({"collection": id, "add": ["urn:a:1"], "remove": ["urn:a:1"]}), "in both"),
        ("update_collection", json!({"collection": unknown, "add": ["urn:ex:a:1"]}), "list_collections"),
        ("retract_collection", json!({"collection": unknown}), "no such collection"),
        ("upload_artifact", json!({"content": "x", "collection": "trip"}), "'collection'"),
    ];
    for (tool, args, expected) in cases {
        let text = err(&call(c, tool, args.clone()).await);
        assert!(text.contains(expected), "{tool} {args}: {text}");
    }
    assert!(members(c, &id).await.is_empty(), "nothing was added by the failed calls");
}
