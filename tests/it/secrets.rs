//! `list_secrets`: names and expiry on the platform, a note in local mode.

use axum::http::Method;
use ivcap_standin::StandIn;
use serde_json::{Value, json};

use crate::common::{Env, both_modes, call, err, ok, platform};

both_modes!(secret_names_are_listed);

/// The secrets contract, on both modes. Local mode keeps no secrets, for real: its list is
/// empty and says so.
async fn secret_names_are_listed(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    if let Some(s) = &env.standin {
        s.add_secret("openai-key", 1_767_225_600);
    }
    let listed = ok(&call(c, "list_secrets", json!({})).await);
    if on_platform {
        assert_eq!(listed["items"], json!([{"name": "openai-key", "expiry_time": 1_767_225_600}]));
    } else {
        assert_eq!(listed["items"], json!([]));
        assert!(listed["note"].as_str().unwrap().contains("local mode has no secrets"), "{listed}");
    }
    let bad = err(&call(c, "list_secrets", json!({"limit": 51})).await);
    assert!(bad.contains("'limit'") && bad.contains("1 to 50"), "{bad}");
}

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
