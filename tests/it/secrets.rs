//! `list_secrets`: names and expiry on the platform, a note in local mode.

use axum::http::Method;
use ivcap_standin::StandIn;
use serde_json::{Value, json};

use crate::common::{call, local, ok, platform};

#[tokio::test]
async fn platform_lists_secret_names_with_paging_and_filter() {
    let s = StandIn::start().await;
    for (i, name) in ["openai-key", "openai-org", "aws-key"].iter().enumerate() {
        s.add_secret(name, 1_767_225_600 + i as i64);
    }
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let first = ok(&call(&client, "list_secrets", json!({"limit": 2})).await);
    assert_eq!(first["items"][0], json!({"name": "openai-key", "expiry_time": 1_767_225_600}));
    let second = ok(&call(&client, "list_secrets", json!({"limit": 2, "page": first["next_page"]})).await);
    assert_eq!(second["items"][0]["name"], "aws-key");
    assert_eq!(second["next_page"], Value::Null);

    let filtered = ok(&call(&client, "list_secrets", json!({"filter": "openai.*"})).await);
    assert_eq!(filtered["items"].as_array().unwrap().len(), 2);
    assert!(s.requests().iter().all(|r| r.path == "/1/secrets/list"), "the value endpoint is never called");
    assert_eq!(s.requests_to(Method::GET, "/1/secrets/list").len(), 3);
}

#[tokio::test]
async fn local_mode_has_no_secrets_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let client = local(&dir.path().join("store")).await;
    let listed = ok(&call(&client, "list_secrets", json!({})).await);
    assert_eq!(listed["items"], json!([]));
    assert!(listed["note"].as_str().unwrap().contains("local mode has no secrets"));
}
