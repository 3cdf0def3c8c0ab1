//! Test harness: drive the real `ivcap-mcp` binary (or the in-process server) through an
//! rmcp client, against the stand-in IVCAP or a temporary local store.
//!
//! The shared contract: a domain's behavioural scenarios are written once as
//! `async fn scenario(on_platform: bool)` over an [`Env`], and [`both_modes!`] runs each
//! against the platform backend (the stand-in) and the local backend. What differs between
//! the modes for real is said in the scenario (`if env.on_platform() { … }`), not hidden in
//! separate tests.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use ivcap_standin::{StandIn, TOKEN};
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::RunningService;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_ivcap-mcp");

/// Variables of the developer's environment that would change the mode.
const IVCAP_VARS: &[&str] = &[
    "IVCAP_URL",
    "IVCAP_JWT",
    "IVCAP_ACCESS_TOKEN",
    "IVCAP_BASE_URL",
    "IVCAP_LOCAL_DIR",
    "IVCAP_MCP_SERVICE_TOOLS",
    "IVCAP_MCP_LOCAL_SERVICES",
    "IVCAP_MCP_STATE_KEY",
    "RUST_LOG",
];

/// A client connected to a running server.
pub type Client = RunningService<RoleClient, ()>;

/// The binary with `args` and `envs`, in `cwd`, with no IVCAP variables inherited.
pub fn command(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).current_dir(cwd).kill_on_drop(true);
    for var in IVCAP_VARS {
        cmd.env_remove(var);
    }
    cmd.env("XDG_CONFIG_HOME", cwd.join(".no-config"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd
}

/// `cmd` as an MCP stdio transport, its stderr going to the test's captured output (shown
/// when the test fails): an inherited stderr would print every warning a test provokes on
/// purpose into a passing run.
pub fn child_transport(cmd: tokio::process::Command) -> TokioChildProcess {
    let (transport, stderr) = TokioChildProcess::builder(cmd).stderr(Stdio::piped()).spawn().expect("spawn ivcap-mcp");
    if let Some(stderr) = stderr {
        forward_stderr("ivcap-mcp", stderr);
    }
    transport
}

/// Copies a child's stderr, line by line and marked with `label`, into the test's captured output.
pub fn forward_stderr(label: &'static str, stderr: impl tokio::io::AsyncRead + Unpin + Send + 'static) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("[{label}] {line}");
        }
    });
}

/// Spawns the binary and connects an MCP client over its stdio.
pub async fn spawn(args: &[&str], envs: &[(&str, &str)], cwd: &Path) -> Client {
    ().serve(child_transport(command(args, envs, cwd))).await.expect("MCP handshake with ivcap-mcp")
}

/// Spawns the binary and connects `handler` over its stdio, with `initialize` (`lifecycle`
/// `None`) or the 2026-07-28 `server/discover` lifecycle.
pub async fn spawn_with<C: rmcp::ClientHandler>(
    args: &[&str],
    envs: &[(&str, &str)],
    cwd: &Path,
    handler: C,
    lifecycle: Option<rmcp::service::ClientLifecycleMode>,
) -> RunningService<RoleClient, C> {
    use rmcp::service::ClientServiceExt;
    let transport = child_transport(command(args, envs, cwd));
    match lifecycle {
        None => handler.serve(transport).await.expect("MCP handshake with ivcap-mcp"),
        Some(mode) => handler.serve_with_lifecycle(transport, mode).await.expect("server/discover with ivcap-mcp"),
    }
}

/// The 2026-07-28 lifecycle, without `initialize`.
pub fn discover() -> rmcp::service::ClientLifecycleMode {
    rmcp::service::ClientLifecycleMode::Discover {
        preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
    }
}

/// The binary in platform mode against `standin`.
pub async fn platform(standin: &StandIn, cwd: &Path) -> Client {
    spawn(&[], &[("IVCAP_URL", standin.base_url()), ("IVCAP_JWT", TOKEN)], cwd).await
}

/// The binary in local mode on `store`.
pub async fn local(store: &Path) -> Client {
    let dir = store.to_str().expect("utf-8 temp path");
    spawn(&["--local", dir], &[], store.parent().unwrap_or(store)).await
}

/// The server in-process in platform mode against `standin`, with retry delays of a few
/// milliseconds ([`RetryPolicy::fast`](ivcap_mcp::backend::platform::RetryPolicy::fast)): for
/// tests that drive the retries to exhaustion without waiting through the real back-off.
pub async fn platform_fast_retries(standin: &StandIn) -> Client {
    use ivcap_mcp::backend::platform::{PlatformBackend, RetryPolicy};
    let cfg = ivcap_mcp::config::PlatformConfig {
        base_url: standin.base_url().to_string(),
        token: Some(ivcap_mcp::config::Secret::new(TOKEN)),
        host_header: None,
        cli_login: None,
    };
    let backend = PlatformBackend::new(&cfg).expect("platform backend").with_retry(RetryPolicy::fast());
    in_process(std::sync::Arc::new(backend), (), None).await
}

/// Calls `tool` with `args` (a JSON object).
pub async fn call<C: rmcp::ClientHandler>(
    client: &RunningService<RoleClient, C>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    let Value::Object(map) = args else { panic!("tool arguments must be an object") };
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map))
        .await
        .unwrap_or_else(|e| panic!("calling {tool}: {e}"));
    fits_output_schema(tool, &result);
    result
}

/// A successful result's structured content fits the tool's published output schema (the
/// checked-in `tool-schemas/<tool>.json`; service tools share submit_job's), as clients that
/// validate it (the Python and TypeScript SDKs) require.
fn fits_output_schema(tool: &str, result: &CallToolResult) {
    let (Some(content), false) = (&result.structured_content, result.is_error == Some(true)) else { return };
    let file = if tool.starts_with("svc_") { "submit_job" } else { tool };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tool-schemas/{file}.json"));
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    let published: Value = serde_json::from_str(&text).unwrap();
    let validator = ivcap_mcp::validation::Validator::new(&published["outputSchema"]).unwrap();
    let violations = validator.violations(content);
    assert!(violations.is_empty(), "{tool}: the result does not fit its output schema: {violations:?}\n{content}");
}

/// The structured content of a successful result.
pub fn ok(result: &CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "tool failed: {}", text(result));
    result.structured_content.clone().expect("structured content")
}

/// The text of a failed result.
pub fn err(result: &CallToolResult) -> String {
    assert_eq!(result.is_error, Some(true), "expected isError, got {:?}", result.structured_content);
    text(result)
}

/// All text content of a result.
pub fn text(result: &CallToolResult) -> String {
    result.content.iter().filter_map(|c| c.as_text().map(|t| t.text.clone())).collect::<Vec<_>>().join("\n")
}

/// The server in-process over a duplex pipe, with the given client handler and lifecycle
/// (`None` = the `initialize` handshake). For tests that need a custom client (progress
/// notifications) or the 2026-07-28 `server/discover` lifecycle.
pub async fn in_process<C: rmcp::ClientHandler>(
    backend: std::sync::Arc<dyn ivcap_mcp::backend::Backend>,
    client: C,
    lifecycle: Option<rmcp::service::ClientLifecycleMode>,
) -> RunningService<RoleClient, C> {
    use rmcp::service::ClientServiceExt;
    let server = ivcap_mcp::server::IvcapMcp::new(backend, &ivcap_mcp::server::ServerOptions::default())
        .expect("server with default options");
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    match lifecycle {
        None => client.serve(client_io).await.expect("initialize"),
        Some(mode) => client.serve_with_lifecycle(client_io, mode).await.expect("server/discover"),
    }
}

/// A server under test, on the stand-in (platform mode) or on a temporary local store.
pub struct Env {
    pub client: Client,
    /// The stand-in, in platform mode.
    pub standin: Option<StandIn>,
    /// The local store (in local mode the server's; in platform mode unused by the server).
    pub store: PathBuf,
    /// The server's working directory (`path` arguments may point under it).
    pub dir: tempfile::TempDir,
}

impl Env {
    /// A fresh server in platform mode (`on_platform`) or local mode.
    pub async fn start(on_platform: bool) -> Env {
        Env::start_with(on_platform, &[]).await
    }

    /// A fresh server as [`Env::start`], with the command-line `args` added.
    pub async fn start_with(on_platform: bool, args: &[&str]) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        if on_platform {
            let standin = StandIn::start().await;
            let client = spawn(args, &[("IVCAP_URL", standin.base_url()), ("IVCAP_JWT", TOKEN)], dir.path()).await;
            Env { client, standin: Some(standin), store, dir }
        } else {
            let mut all = vec!["--local", store.to_str().expect("utf-8 temp path")];
            all.extend_from_slice(args);
            let client = spawn(&all, &[], dir.path()).await;
            Env { client, standin: None, store, dir }
        }
    }

    pub fn on_platform(&self) -> bool {
        self.standin.is_some()
    }

    /// A service `urn:ivcap:service:<name>` whose jobs echo their input as the result: on the
    /// stand-in a registered service with an echo script, locally a definition running `cat`.
    /// Both modes give the service the same URN.
    pub fn add_echo_service(&self, name: &str, description: &str, schema: Option<Value>) -> String {
        self.add_service(&EchoService { key: name, name, description, schema, seconds: 0 })
    }

    /// The service `spec` describes, as [`Env::add_echo_service`] does; returns its URN.
    pub fn add_service(&self, spec: &EchoService<'_>) -> String {
        let EchoService { key, name, description, seconds, .. } = *spec;
        let id = format!("urn:ivcap:service:{key}");
        match &self.standin {
            Some(s) => {
                let schemas: Vec<Value> = spec.schema.iter().cloned().collect();
                s.add_service(&id, name, description, &schemas);
                let script = ivcap_standin::JobScript::echo().running_for(std::time::Duration::from_secs(seconds));
                s.script_jobs(&id, script);
            }
            None => {
                let command = if seconds > 0 {
                    serde_json::json!(["sh", "-c", format!("sleep {seconds}; cat")])
                } else {
                    serde_json::json!(["cat"])
                };
                let mut def = serde_json::json!({"name": name, "description": description, "command": command});
                if let Some(schema) = &spec.schema {
                    def["fn_schema"] = schema.clone();
                }
                std::fs::create_dir_all(self.store.join("services")).unwrap();
                std::fs::write(self.store.join("services").join(format!("{key}.json")), def.to_string()).unwrap();
            }
        }
        id
    }

    /// The jobs the server created: the stand-in's, or the local store's job records.
    pub fn jobs_created(&self) -> usize {
        match &self.standin {
            Some(s) => s.jobs().len(),
            None => std::fs::read_dir(self.store.join("jobs"))
                .map(|d| d.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension() == Some("json".as_ref()))).count())
                .unwrap_or(0),
        }
    }
}

/// A service whose jobs echo their input, for [`Env::add_service`].
pub struct EchoService<'a> {
    /// The URN's last part (`urn:ivcap:service:<key>`), and locally the definition's file name.
    pub key: &'a str,
    pub name: &'a str,
    pub description: &'a str,
    pub schema: Option<Value>,
    /// How long each job runs before it answers.
    pub seconds: u64,
}

/// `mod name { local, platform }` running `name(on_platform)` for each scenario named.
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn local() {
                super::$name(false).await
            }
            #[tokio::test]
            async fn platform() {
                super::$name(true).await
            }
        }
    )*};
}
pub(crate) use both_modes;

/// Every item of a list, following `next_page` with only `page`, `limit` and the list's
/// `service` (so a filter given on the first page must travel in the token).
pub async fn all_pages(client: &Client, tool: &str, first: Value) -> Vec<Value> {
    let limit = first.get("limit").cloned().unwrap_or(Value::Null);
    let service = first.get("service").cloned().unwrap_or(Value::Null);
    let mut args = first;
    let mut items = Vec::new();
    for _ in 0..100 {
        let page = ok(&call(client, tool, args).await);
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_page"].as_str() {
            Some(next) => {
                args = serde_json::json!({"page": next, "limit": limit});
                if !service.is_null() {
                    args["service"] = service.clone();
                }
            }
            None => return items,
        }
    }
    panic!("{tool} did not end within 100 pages");
}

/// The `field` of each item, as text.
pub fn texts(items: &[Value], field: &str) -> Vec<String> {
    items.iter().map(|i| i[field].as_str().unwrap_or_default().to_string()).collect()
}
