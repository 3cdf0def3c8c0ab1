//! The packaging metadata agrees with the code: the MCP registry's `server.json` is valid
//! against the registry's published schema (vendored in `packaging/registry/`), and it and the
//! MCP Bundle manifest carry the crate's version, the configuration variables and the tools.
//! (`mcpb validate` and `mcpb pack` run in CI through `packaging/mcpb/build.sh`.)

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The tools, as `tool-schemas/<tool>.json` records them.
pub(crate) fn tool_names() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tool-schemas");
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_string_lossy().strip_suffix(".json").map(String::from))
        .collect()
}

fn registry_errors(server: &Value) -> Vec<String> {
    let schema = read("packaging/registry/server.schema.2025-12-11.json");
    // A draft-07 schema: its `uri` formats are asserted.
    let validator = ivcap_mcp::validation::Validator::new(&schema).expect("registry schema compiles");
    validator.violations(server).into_iter().map(|v| format!("{}: {}", v.pointer(), v.message)).collect()
}

#[test]
fn server_json_is_valid_for_the_registry() {
    let server = read("packaging/server.json");
    assert_eq!(server["$schema"], read("packaging/registry/server.schema.2025-12-11.json")["$id"]);
    assert_eq!(registry_errors(&server), Vec::<String>::new());
    // The release form that packaging/mcpb/build.sh writes beside a bundle: same, plus its hash.
    let mut release = server.clone();
    release["packages"][0]["fileSha256"] = json!("0".repeat(64));
    assert_eq!(registry_errors(&release), Vec::<String>::new());
    // The schema really is checked: a broken entry is refused.
    let mut broken = server.clone();
    broken["name"] = json!("no slash");
    broken["packages"][0]["version"] = json!("latest");
    assert_eq!(registry_errors(&broken).len(), 2, "{:?}", registry_errors(&broken));

    assert_eq!(server["version"], env!("CARGO_PKG_VERSION"));
    let package = &server["packages"][0];
    assert_eq!(package["registryType"], "mcpb");
    assert_eq!(package["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        package["identifier"].as_str().unwrap().contains(&format!("v{0}/ivcap-mcp-{0}-", env!("CARGO_PKG_VERSION")))
    );
    let vars: Vec<(&str, bool)> = package["environmentVariables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["isSecret"] == true))
        .collect();
    assert_eq!(vars, [("IVCAP_URL", false), ("IVCAP_JWT", true), ("IVCAP_LOCAL_DIR", false)]);
}

#[test]
fn bundle_manifest_matches_the_server() {
    let manifest = read("packaging/mcpb/manifest.json");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["server"]["type"], "binary");
    let listed: BTreeSet<String> =
        manifest["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, tool_names(), "manifest.json lists exactly the server's tools");
    let user_config = manifest["user_config"].as_object().unwrap();
    assert_eq!(user_config["ivcap_token"]["sensitive"], true, "the token is a secret");
    assert_eq!(user_config["local_dir"]["type"], "directory");
    let env = manifest["server"]["mcp_config"]["env"].as_object().unwrap();
    let names: Vec<&str> = env.keys().map(String::as_str).collect();
    assert_eq!(names, ["IVCAP_JWT", "IVCAP_LOCAL_DIR", "IVCAP_URL"]);
    for value in env.values() {
        let key = value.as_str().unwrap().trim_start_matches("${user_config.").trim_end_matches('}');
        assert!(user_config.contains_key(key), "{value} names a user_config entry");
    }
}
