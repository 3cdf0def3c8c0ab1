//! Both protocol eras: the `initialize` handshake and the 2026-07-28 `server/discover`
//! lifecycle reach the same tools.

use std::sync::Arc;

use ivcap_mcp::backend::local::LocalBackend;
use rmcp::model::ProtocolVersion;
use rmcp::service::ClientLifecycleMode;
use serde_json::json;

use crate::common::{call, in_process, ok};

#[tokio::test]
async fn initialize_and_discover_serve_the_same_tools() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(LocalBackend::new(dir.path()).unwrap());

    let legacy = in_process(backend.clone(), (), None).await;
    let legacy_tools: Vec<String> = legacy.list_all_tools().await.unwrap().into_iter().map(|t| t.name.into()).collect();
    let info = serde_json::to_value(&*legacy.peer_info().expect("server info")).unwrap();
    assert_eq!(info["serverInfo"]["name"], "ivcap-mcp", "{info}");
    assert!(info["instructions"].as_str().unwrap_or("").contains("list_services"));

    let discover = ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] };
    let modern = in_process(backend, (), Some(discover)).await;
    let discovered = serde_json::to_value(&*modern.peer_info().expect("discover result")).unwrap();
    assert!(discovered.to_string().contains("2026-07-28"), "{discovered}");
    assert!(discovered.to_string().contains("ivcap-mcp"), "{discovered}");
    let modern_tools: Vec<String> = modern.list_all_tools().await.unwrap().into_iter().map(|t| t.name.into()).collect();
    assert_eq!(legacy_tools, modern_tools);
    let listed = ok(&call(&modern, "list_secrets", json!({})).await);
    assert!(listed["note"].is_string());
}
