//! MCP Apps (docs/apps.md): the four `ui://ivcap/*` views through the protocol — listed, read,
//! linked from their tools, declared in the capabilities, and nothing else changed for a client
//! without the extension — and in a real browser: headless Chromium (Debian's) loads each view
//! in `tests/apps/host.html`, fed by a real call to the real server over Streamable HTTP, and
//! `tests/apps/driver.mjs` asserts what a person sees and saves a screenshot per test under
//! `target/apps-screenshots/`.
//!
//! The browser tests install what they need as the Python tests do: Chromium with `apt-get` when
//! it is missing, Node 22 and playwright-core from `tools/clients/` (pinned). When that fails
//! they fail, unless `IVCAP_MCP_SKIP_BROWSER_TESTS=1`, which makes them say loudly that they
//! were skipped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use ivcap_standin::{JobScript, StandIn};
use rmcp::ClientHandler;
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ReadResourceRequestParams};
use serde_json::{Value, json};

use crate::common::{Client, call, local, ok, spawn_with};
use crate::http::Server;

const UI: &str = "io.modelcontextprotocol/ui";
const MIME: &str = "text/html;profile=mcp-app";
const VIEWS: [&str; 4] = ["job", "artifact", "provenance", "collection"];

/// A client that declares the Apps extension, as a host that renders views does.
#[derive(Clone)]
struct AppsHost;

impl ClientHandler for AppsHost {
    fn get_info(&self) -> ClientConfig {
        let mut capabilities = ClientCapabilities::default();
        let settings = json!({ "mimeTypes": [MIME] }).as_object().cloned().unwrap();
        capabilities.extensions = Some([(UI.to_string(), settings)].into_iter().collect());
        ClientConfig::new(capabilities, Implementation::new("apps-host", "1"))
    }
}

/// A local store with a CSV artifact and a collection holding it; their ids.
async fn seeded(client: &Client) -> (String, String) {
    let csv = ok(&call(client, "upload_artifact", json!({"content": "a,b\n1,2\n", "name": "t.csv"})).await);
    let id = csv["id"].as_str().unwrap().to_string();
    let c = ok(&call(client, "create_collection", json!({"name": "c"})).await);
    let collection = c["id"].as_str().unwrap().to_string();
    ok(&call(client, "update_collection", json!({"collection": collection, "add": [id]})).await);
    (id, collection)
}

#[tokio::test]
async fn views_are_listed_read_linked_and_declared() {
    let dir = tempfile::tempdir().unwrap();
    let client = local(&dir.path().join("store")).await;
    let info = client.peer_info().unwrap();
    let declared = serde_json::to_value(&info.capabilities).unwrap();
    assert_eq!(declared["extensions"][UI], json!({"mimeTypes": [MIME]}), "{declared}");

    let listed = client.list_resources(None).await.unwrap();
    let uris: Vec<&str> = listed.resources.iter().map(|r| r.uri.as_str()).filter(|u| u.starts_with("ui://")).collect();
    assert_eq!(uris, VIEWS.map(|v| format!("ui://ivcap/{v}")).iter().map(String::as_str).collect::<Vec<_>>());
    for uri in &uris {
        let read = client.read_resource(ReadResourceRequestParams::new(*uri)).await.unwrap();
        let contents = serde_json::to_value(&read.contents).unwrap();
        assert_eq!(contents[0]["mimeType"], MIME);
        assert_eq!(contents[0]["_meta"]["ui"]["csp"], json!({}), "no domain beyond the host's default");
        let html = contents[0]["text"].as_str().unwrap();
        for outside in ["http://", "https://", "<link", "@import", "src=\"//", "href=\"//"] {
            assert!(!html.contains(outside), "{uri} loads something from outside: {outside}");
        }
    }
    let err = client.read_resource(ReadResourceRequestParams::new("ui://ivcap/none")).await.unwrap_err();
    assert!(err.to_string().contains("ui://ivcap/job"), "{err}");

    let tools = client.list_all_tools().await.unwrap();
    let linked: Vec<(String, String)> = tools
        .iter()
        .filter_map(|t| {
            let uri = t.meta.as_ref()?.0.get("ui")?.get("resourceUri")?.as_str()?.to_string();
            Some((t.name.to_string(), uri))
        })
        .collect();
    let expected = [
        ("download_artifact", "artifact"),
        ("get_artifact", "artifact"),
        ("get_aspect", "provenance"),
        ("get_collection", "collection"),
        ("get_job", "job"),
        ("list_aspects", "provenance"),
        ("submit_job", "job"),
        ("upload_artifact", "artifact"),
    ];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(t, v)| (t.to_string(), format!("ui://ivcap/{v}"))).collect();
    assert_eq!(linked, expected);
}

/// The spec lets a host without the extension ignore `_meta.ui`; everything else a client sees
/// must be the same whether or not it declared the extension: `tools/list` as a whole (the
/// definitions besides `_meta` are the checked-in `tool-schemas/`), and every result.
#[tokio::test]
async fn a_client_without_the_extension_sees_the_same_tools_and_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let plain = local(&store).await;
    let host = spawn_with(&["--local", store.to_str().unwrap()], &[], dir.path(), AppsHost, None).await;
    assert!(plain.peer_info().is_some() && host.peer_info().is_some());

    let plain_tools = serde_json::to_value(plain.list_all_tools().await.unwrap()).unwrap();
    let host_tools = serde_json::to_value(host.list_all_tools().await.unwrap()).unwrap();
    assert_eq!(plain_tools, host_tools);
    // `_meta` carries the view link and nothing new besides it.
    for t in plain_tools.as_array().unwrap() {
        if let Some(meta) = t.get("_meta") {
            let keys: Vec<&String> = meta.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["ui"], "{}", t["name"]);
            assert_eq!(meta["ui"].as_object().unwrap().keys().collect::<Vec<_>>(), ["resourceUri"]);
        }
    }

    let (artifact, collection) = seeded(&plain).await;
    for (tool, args) in [
        ("get_artifact", json!({"artifact_id": artifact})),
        ("download_artifact", json!({"artifact_id": artifact})),
        ("list_aspects", json!({"entity": artifact})),
        ("get_collection", json!({"collection": collection})),
        ("get_job", json!({"job_id": "urn:ivcap:job:nope"})),
    ] {
        let a = serde_json::to_value(call(&plain, tool, args.clone()).await).unwrap();
        let b = serde_json::to_value(call(&host, tool, args).await).unwrap();
        assert_eq!(a, b, "{tool}");
    }
}

// ---- In a real browser ----

/// The Node binary (pinned Node 22 with playwright-core) and Chromium, installed once per run;
/// `None` when they cannot be had and `IVCAP_MCP_SKIP_BROWSER_TESTS=1` says to skip.
fn browser() -> Option<(PathBuf, PathBuf)> {
    // Installed by the first test; the others wait for it (`OnceLock` runs `install` once).
    static READY: OnceLock<Result<(PathBuf, PathBuf), String>> = OnceLock::new();
    match READY.get_or_init(install).clone() {
        Ok(paths) => Some(paths),
        Err(why) if std::env::var("IVCAP_MCP_SKIP_BROWSER_TESTS").is_ok_and(|v| v == "1") => {
            eprintln!(
                "\n!!!!!!!! SKIPPED: MCP Apps browser test, because {why} (IVCAP_MCP_SKIP_BROWSER_TESTS=1) !!!!!!!!\n"
            );
            None
        }
        Err(why) => panic!(
            "MCP Apps browser tests cannot run: {why}. Install Debian's chromium and Node (tools/clients/install.sh), \
             or set IVCAP_MCP_SKIP_BROWSER_TESTS=1 to skip them (they then say so)"
        ),
    }
}

fn install() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from("/usr/bin/chromium");
    if !chromium.exists() {
        // Other tests may hold the dpkg lock (the load-balancer test installs haproxy): wait for it.
        let apt = |args: &[&str]| {
            Command::new("apt-get")
                .args(["-o", "DPkg::Lock::Timeout=300"])
                .args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
        };
        let installed = apt(&["install", "-y", "-qq", "chromium"]).is_ok_and(|s| s.success())
            || (apt(&["update", "-qq"]).is_ok_and(|s| s.success())
                && apt(&["install", "-y", "-qq", "chromium"]).is_ok_and(|s| s.success()));
        if !installed || !chromium.exists() {
            return Err("Debian's chromium is not installed and `apt-get install -y chromium` failed".into());
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let node = Command::new("bash")
        .args(["-c", "source tools/clients/install.sh >&2 && command -v node"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    if !node.status.success() {
        return Err(format!(
            "tools/clients/install.sh failed (Node 22, playwright-core): {}",
            String::from_utf8_lossy(&node.stderr)
        ));
    }
    Ok((PathBuf::from(String::from_utf8_lossy(&node.stdout).trim()), chromium))
}

/// Runs `scenario` of tests/apps/driver.mjs against `server` with `data`; its measurements.
async fn drive(scenario: &str, server: &Server, data: Value) -> Option<Value> {
    let (node, chromium) = browser()?;
    // One browser at a time: on two shared cores, parallel Chromiums make the timings (and the
    // waits) meaningless.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/apps-screenshots");
    let out = tokio::process::Command::new(node)
        .arg(root.join("tests/apps/driver.mjs"))
        .arg(scenario)
        .env("MCP_URL", server.url("/mcp"))
        .env("DATA", data.to_string())
        .env("CHROMIUM", chromium)
        .env("SHOTS", &shots)
        .current_dir(root)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out).await.expect("driver within 120 s").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("[driver {scenario}] {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "browser scenario {scenario} failed (see the driver output above)");
    let measured: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(measured["result_to_paint_ms"].as_f64().is_some(), "{measured}");
    Some(measured)
}

/// A local store served over Streamable HTTP, with `files` under `artifacts/` and the `echo`
/// service (`cat`: its result is its request).
async fn local_server(files: &[(&str, Vec<u8>)]) -> (Server, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("services")).unwrap();
    std::fs::create_dir_all(store.join("artifacts")).unwrap();
    for (name, bytes) in files {
        std::fs::write(store.join("artifacts").join(name), bytes).unwrap();
    }
    std::fs::write(
        store.join("services/echo.json"),
        json!({"name": "echo", "description": "Returns its request", "command": ["cat"], "fn_schema": {"type": "object"}})
            .to_string(),
    )
    .unwrap();
    let store_arg = store.to_str().unwrap().to_string();
    let server = Server::start(&["--local", &store_arg], &[], dir).await;
    (server, store)
}

fn local_id(store: &Path, name: &str) -> String {
    format!("urn:file://{}", store.join("artifacts").join(name).display())
}

/// An MCP client over the server's Streamable HTTP, to set the scene.
async fn client_of(server: &Server) -> Client {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp"));
    ().serve(StreamableHttpClientTransport::with_client(ivcap_mcp::http_client().build().unwrap(), config))
        .await
        .unwrap()
}

#[tokio::test]
async fn browser_job_view_follows_a_running_job() {
    let standin = StandIn::start().await;
    let service = "urn:ivcap:service:slow";
    standin.add_service(service, "slow", "runs for a while", &[]);
    let product = standin.add_artifact("out.csv", "text/csv", b"x,y\n1,2\n");
    standin.script_jobs(service, JobScript::echo().running_for(Duration::from_secs(4)).products(&[&product]));
    let server = Server::platform(&standin, &[], &[]).await;
    if let Some(m) = drive("job", &server, json!({"service": service, "product": product})).await {
        eprintln!("job view: {m}");
    }
}

#[tokio::test]
async fn browser_job_view_shows_why_a_job_failed() {
    let standin = StandIn::start().await;
    let service = "urn:ivcap:service:broken";
    standin.add_service(service, "broken", "fails", &[]);
    standin.script_jobs(service, JobScript::fail("the model ran out of memory"));
    let server = Server::platform(&standin, &[], &[]).await;
    let client = client_of(&server).await;
    let job = ok(&call(&client, "submit_job", json!({"service": service, "input": {}, "wait_seconds": 5})).await);
    assert_eq!(job["status"], "failed");
    let data = json!({"job": job["job_id"], "message": "the model ran out of memory"});
    drive("job_failed", &server, data).await;
}

#[tokio::test]
async fn browser_artifact_view_shows_a_csv_table() {
    let mut csv = String::from("id,value,label\n");
    for i in 1..=250 {
        csv.push_str(&format!("{i},{},row {i}\n", f64::from(i) - 0.5));
    }
    let (server, store) = local_server(&[("readings.csv", csv.into_bytes())]).await;
    let id = local_id(&store, "readings.csv");
    let client = client_of(&server).await;
    let aspect = json!({"entity": id, "schema": "urn:example:schema:label.1", "content": {"label": "readings"}});
    ok(&call(&client, "add_aspect", aspect).await);
    if let Some(m) = drive("csv", &server, json!({"artifact": id})).await {
        eprintln!("artifact view (CSV): {m}");
    }
}

#[tokio::test]
async fn browser_artifact_view_shows_an_image_in_the_dark_theme() {
    let png = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-store/artifacts/rainfall.png"))
        .unwrap();
    let (server, store) = local_server(&[("rainfall.png", png)]).await;
    if let Some(m) = drive("image", &server, json!({"artifact": local_id(&store, "rainfall.png")})).await {
        eprintln!("artifact view (image): {m}");
    }
}

#[tokio::test]
async fn browser_provenance_view_expands_a_node_on_click() {
    let (server, store) = local_server(&[("out1.csv", b"a\n1\n".to_vec()), ("out2.txt", b"two\n".to_vec())]).await;
    let (out1, out2) = (local_id(&store, "out1.csv"), local_id(&store, "out2.txt"));
    let client = client_of(&server).await;
    // The echo job's result names both files, so both are its products.
    let job = ok(&call(&client, "submit_job", json!({"service": "echo", "input": {"outputs": [out1, out2]}})).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    for (entity, schema) in [(&out1, "urn:example:schema:label.1"), (&out2, "urn:example:schema:quality.1")] {
        ok(&call(&client, "add_aspect", json!({"entity": entity, "schema": schema, "content": {"ok": true}})).await);
    }
    let data = json!({"output": out1, "other": out2, "service": job["service_id"]});
    if let Some(m) = drive("provenance", &server, data).await {
        eprintln!("provenance view: {m}");
    }
}

#[tokio::test]
async fn browser_collection_view_pages_through_its_members() {
    let names: Vec<String> = (1..=7).map(|i| format!("part-{i}.csv")).collect();
    let files: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (n.as_str(), format!("n\n{n}\n").into_bytes())).collect();
    let (server, store) = local_server(&files).await;
    let client = client_of(&server).await;
    let c = ok(&call(&client, "create_collection", json!({"name": "Field trip", "description": "seven parts"})).await);
    // One at a time, so the membership order (oldest first) is the names' order.
    for n in &names {
        let add = json!({"collection": c["id"], "add": [local_id(&store, n)]});
        ok(&call(&client, "update_collection", add).await);
    }
    if let Some(m) = drive("collection", &server, json!({"collection": c["id"], "names": names})).await {
        eprintln!("collection view: {m}");
    }
}
