//! The files in `examples/` work as written. Every server entry of every client configuration
//! is launched exactly as the file says — command, args and env, with only its placeholders
//! replaced by this test's values — and must answer `tools/list` and a first tool call; so
//! must the `claude mcp add` lines in the README, and the demo store must be worth exploring.
//! An entry's `uvx ivcap-mcp` runs the wheel's `ivcap-mcp`, the same program: here it is this
//! build's binary, and `.ci/wheel.sh` runs that form through uv against the built wheel.

use std::path::{Path, PathBuf};

use ivcap_standin::{StandIn, TOKEN};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::common::{BIN, call, ok};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of `examples/demo-store` in `dir`, so the test never writes into the repository.
fn demo_store_copy(dir: &Path) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
    let store = dir.join("demo-store");
    copy(&repo().join("examples/demo-store"), &store);
    store
}

/// How a client would start one stdio server entry.
#[derive(Debug)]
struct Launch {
    name: String,
    command: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

/// The test's own values for the placeholders the example files use.
fn substitute(value: &str, store: &Path, standin: &StandIn) -> String {
    value
        .replace("<store folder>", store.to_str().unwrap())
        .replace("<IVCAP token>", TOKEN)
        .replace("${input:ivcap-token}", TOKEN)
        .replace("\"$IVCAP_JWT\"", TOKEN)
        .replace("https://develop.ivcap.net", standin.base_url())
}

/// The stdio entries of a client configuration (`mcpServers`, or VS Code's `servers`).
fn stdio_entries(file: &str, store: &Path, standin: &StandIn) -> Vec<Launch> {
    let text = std::fs::read_to_string(repo().join("examples").join(file)).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
    let servers = config.get("mcpServers").or_else(|| config.get("servers")).and_then(Value::as_object);
    let servers = servers.unwrap_or_else(|| panic!("{file}: no mcpServers/servers object"));
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|a| substitute(a.as_str().unwrap(), store, standin))
            .collect()
    };
    servers
        .iter()
        .map(|(name, entry)| Launch {
            name: format!("{file}: {name}"),
            command: entry["command"].as_str().unwrap_or_else(|| panic!("{file}: {name} has no command")).to_string(),
            args: strings(entry.get("args")),
            env: entry
                .get("env")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), substitute(v.as_str().unwrap(), store, standin)))
                .collect(),
        })
        .collect()
}

/// Starts `launch` as a desktop client does — the installed `ivcap-mcp` (this build's
/// binary), only the configured environment plus `PATH`, in an unrelated folder — and checks
/// that it serves every tool and answers `list_services`. Returns the service names.
async fn check(launch: &Launch, cwd: &Path) -> Vec<String> {
    let args = match (launch.command.as_str(), launch.args.split_first()) {
        ("ivcap-mcp", _) => launch.args.as_slice(),
        ("uvx", Some((package, args))) if package == "ivcap-mcp" => args,
        _ => panic!("{}: examples run the installed `ivcap-mcp` or `uvx ivcap-mcp`", launch.name),
    };
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).current_dir(cwd).kill_on_drop(true).env_clear();
    cmd.env("PATH", std::env::var("PATH").unwrap_or_default()).env("XDG_CONFIG_HOME", cwd.join(".no-config"));
    cmd.envs(launch.env.iter().map(|(k, v)| (k, v)));
    let transport = crate::common::child_transport(cmd);
    let client = ().serve(transport).await.unwrap_or_else(|e| panic!("{}: handshake: {e}", launch.name));
    let tools = client.list_all_tools().await.unwrap();
    let names: std::collections::BTreeSet<String> = tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, crate::packaging::tool_names(), "{}: every tool is offered", launch.name);
    let listed = ok(&call(&client, "list_services", json!({})).await);
    let _ = client.cancel().await;
    listed["items"].as_array().into_iter().flatten().filter_map(|s| s["name"].as_str().map(String::from)).collect()
}

#[tokio::test]
async fn every_client_configuration_starts_the_server_as_written() {
    let standin = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let files = ["claude_desktop_config.json", "cursor-mcp.json", "vscode-mcp.json", "cline_mcp_settings.json"];
    for file in files {
        let launches = stdio_entries(file, &store, &standin);
        assert!(launches.iter().any(|l| l.args.contains(&"--local".to_string())), "{file}: has a local variant");
        assert!(launches.iter().any(|l| l.env.iter().any(|(k, _)| k == "IVCAP_URL")), "{file}: has a platform variant");
        assert!(launches.iter().any(|l| l.command == "uvx"), "{file}: has the `uvx ivcap-mcp` form");
        for launch in &launches {
            standin.clear_requests();
            let services = check(launch, dir.path()).await;
            if launch.args.contains(&"--local".to_string()) {
                assert!(
                    services.contains(&"column-stats".to_string()),
                    "{}: demo store services: {services:?}",
                    launch.name
                );
            } else {
                let seen = standin.requests();
                assert!(!seen.is_empty(), "{}: list_services reached the platform", launch.name);
                assert!(
                    seen.iter().all(|r| r.header("authorization").as_deref() == Some(&format!("Bearer {TOKEN}"))),
                    "{}: with the configured token",
                    launch.name
                );
            }
        }
    }
}

#[tokio::test]
async fn readme_claude_code_lines_start_the_server() {
    let standin = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines: Vec<&str> =
        readme.split('`').filter(|code| code.starts_with("claude mcp add") && code.contains(" -- ")).collect();
    assert!(lines.len() >= 2, "README shows local and platform `claude mcp add` lines: {lines:?}");
    for line in lines {
        let (options, server) = line.split_once(" -- ").unwrap();
        let words: Vec<String> = server.split_whitespace().map(|w| substitute(w, dir.path(), &standin)).collect();
        let mut env = Vec::new();
        let mut options = options.split_whitespace();
        while let Some(word) = options.next() {
            if word == "-e" || word == "--env" {
                let pair = substitute(options.next().unwrap(), dir.path(), &standin);
                let (k, v) = pair.split_once('=').unwrap();
                env.push((k.to_string(), v.to_string()));
            }
        }
        let launch = Launch { name: line.to_string(), command: words[0].clone(), args: words[1..].to_vec(), env };
        check(&launch, dir.path()).await;
    }
}

#[tokio::test]
async fn http_client_configuration_reaches_the_http_server() {
    let text = std::fs::read_to_string(repo().join("examples/http-client.json")).unwrap();
    let config: Value = serde_json::from_str(&text).unwrap();
    let entry = &config["mcpServers"]["ivcap"];
    let url = url::Url::parse(entry["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.path(), "/mcp");
    let auth = entry["headers"]["Authorization"].as_str().unwrap().replace("<client token>", "client-secret-1");
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    // As the README says: start the server with the client token, then point the client at it.
    let server = crate::http::Server::start(
        &["--local", store.to_str().unwrap()],
        &[("IVCAP_MCP_TOKEN", "client-secret-1")],
        tempfile::tempdir().unwrap(),
    )
    .await;
    let token = auth.strip_prefix("Bearer ").expect("a bearer Authorization header").to_string();
    let config = StreamableHttpClientTransportConfig::with_uri(server.url(url.path())).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(ivcap_mcp::http_client().build().unwrap(), config);
    let client = ().serve(transport).await.expect("MCP over HTTP with the example's header");
    assert!(client.list_all_tools().await.unwrap().iter().any(|t| t.name == "search"));
    let _ = client.cancel().await;
}

#[tokio::test]
async fn the_demo_store_has_something_to_explore() {
    let dir = tempfile::tempdir().unwrap();
    let store = demo_store_copy(dir.path());
    let client = crate::common::local(&store).await;
    let artifacts = ok(&call(&client, "list_artifacts", json!({})).await);
    let names: Vec<&str> = artifacts["items"].as_array().unwrap().iter().filter_map(|a| a["name"].as_str()).collect();
    for expected in ["rainfall.csv", "rainfall.png", "field-notes.txt"] {
        assert!(names.contains(&expected), "{names:?}");
    }
    let live = ok(&call(&client, "list_aspects", json!({"entity": "urn:example:dataset:rainfall-2024"})).await);
    assert_eq!(live["items"].as_array().unwrap().len(), 3, "{live}");
    let before = ok(&call(
        &client,
        "list_aspects",
        json!({"entity": "urn:example:dataset:rainfall-2024", "schema": "urn:example:schema:dataset.1",
               "at_time": "2025-01-10T00:00:00Z", "include_content": true}),
    )
    .await);
    assert_eq!(before["items"][0]["content"]["rows"], 11, "time travel sees the first version: {before}");
    let found = ok(&call(
        &client,
        "search",
        json!({"query": ":- ivcap_artifact(Id, Name, _), ivcap_aspect(E, \"urn:example:schema:figure.1\", C), :match_field(C, /artifact_name, Name)."}),
    )
    .await);
    assert!(found.to_string().contains("rainfall.png"), "{found}");
    let stats = ok(&call(
        &client,
        "submit_job",
        json!({"service": "column-stats", "input": {"artifact_name": "rainfall.csv"}}),
    )
    .await);
    assert_eq!(stats["status"], "succeeded", "{stats}");
    assert_eq!(stats["result"]["columns"]["rainfall_mm"]["max"], 83.5, "{stats}");
    let failed = ok(&call(&client, "submit_job", json!({"service": "always-fails", "input": {}})).await);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed.to_string().contains("calibration file missing"), "{failed}");
}
