//! The packaging metadata agrees with the code: the MCP registry's `server.json` is valid
//! against the registry's published schema (vendored in `packaging/registry/`), and it, the
//! MCP Bundle manifest and the Python package carry the crate's version, the configuration
//! variables and the tools. (`mcpb validate` and `mcpb pack` run in CI through
//! `packaging/mcpb/build.sh`; the wheel is built, installed and run by `.ci/wheel.sh`.)

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
    release["packages"][mcpb_index(&server)]["fileSha256"] = json!("0".repeat(64));
    assert_eq!(registry_errors(&release), Vec::<String>::new());
    // The schema really is checked: a broken entry is refused.
    let mut broken = server.clone();
    broken["name"] = json!("no slash");
    broken["packages"][0]["version"] = json!("latest");
    assert_eq!(registry_errors(&broken).len(), 2, "{:?}", registry_errors(&broken));

    assert_eq!(server["version"], env!("CARGO_PKG_VERSION"));
    let package = &server["packages"][mcpb_index(&server)];
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

/// Where the bundle is in `packages` (`packaging/mcpb/build.sh` finds it by its type too).
fn mcpb_index(server: &Value) -> usize {
    let packages = server["packages"].as_array().unwrap();
    packages.iter().position(|p| p["registryType"] == "mcpb").expect("server.json lists the MCP bundle")
}

/// The `key = "value"` line of a TOML file's top-level table `[section]` (the files read here
/// are this repository's own, written one value to a line).
fn toml_value(path: &str, section: &str, key: &str) -> String {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
    let body = text.split(&format!("\n[{section}]\n")).nth(1).unwrap_or_else(|| panic!("{path}: no [{section}]"));
    let body = body.split("\n[").next().unwrap();
    let line = body
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("{path} [{section}]: no {key}"));
    let value = &line[key.len() + 3..];
    serde_json::from_str::<String>(value).unwrap_or_else(|e| panic!("{path} [{section}] {key}: {value}: {e}"))
}

#[test]
fn server_json_pypi_package_is_the_wheel() {
    let server = read("packaging/server.json");
    let packages = server["packages"].as_array().unwrap();
    let pypi = packages.iter().find(|p| p["registryType"] == "pypi").expect("server.json lists the PyPI package");
    assert_eq!(pypi["identifier"], toml_value("pyproject.toml", "project", "name"), "the wheel's name");
    assert_eq!(pypi["version"], env!("CARGO_PKG_VERSION"), "the wheel's version is the crate's (dynamic)");
    assert_eq!(pypi["runtimeHint"], "uvx", "as the client examples run it");
    assert_eq!(pypi["transport"], json!({"type": "stdio"}));
    let bundle = &packages[mcpb_index(&server)];
    assert_eq!(pypi["environmentVariables"], bundle["environmentVariables"], "one configuration, two packages");
    // The registry accepts a PyPI entry only when the package's description names the server.
    let readme = toml_value("pyproject.toml", "project", "readme");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(&readme)).unwrap();
    let marker = format!("mcp-name: {}", server["name"].as_str().unwrap());
    assert!(text.lines().any(|l| l.trim() == marker), "{readme} has the line `{marker}`");
}

#[test]
fn pyproject_describes_the_crate() {
    let pyproject = |key| toml_value("pyproject.toml", "project", key);
    assert_eq!(pyproject("name"), env!("CARGO_PKG_NAME"));
    assert_eq!(pyproject("description"), env!("CARGO_PKG_DESCRIPTION"));
    assert_eq!(pyproject("license"), env!("CARGO_PKG_LICENSE"));
    assert_eq!(toml_value("pyproject.toml", "project.urls", "Repository"), env!("CARGO_PKG_REPOSITORY"));
    assert_eq!(toml_value("pyproject.toml", "project.urls", "Homepage"), env!("CARGO_PKG_HOMEPAGE"));
    assert_eq!(toml_value("pyproject.toml", "tool.maturin", "bindings"), "bin", "the executable, no Python module");
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pyproject.toml")).unwrap();
    assert!(text.contains("\ndynamic = [\"version\"]\n"), "the version comes from Cargo.toml");
    assert!(!text.contains("\nversion = "), "no second version to keep in step");
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
