//! `--service-tools` over the real binary, in both protocol eras: selection by name, URN,
//! pattern and `%`; valid, stable names; portable schemas; calls that run jobs; invalid
//! arguments rejected before any job; changes announced (`list_changed` in a session,
//! `subscriptions/listen` in 2026-07-28); `--service-tools-max`, `--read-only`, `--toolsets`;
//! a local store's `services/` folder watched.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ivcap_standin::{StandIn, TOKEN};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, ServerNotification, SubscriptionFilter, Tool};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::common::{call, command, discover, err, ok, spawn_with, text};
use crate::tool_schemas::lint_schema;

/// A client that counts `notifications/tools/list_changed` and may declare the tasks extension.
#[derive(Clone, Default)]
pub struct Watcher {
    pub tasks: bool,
    changes: Arc<AtomicUsize>,
    notify: Arc<tokio::sync::Notify>,
}

impl Watcher {
    pub fn with_tasks() -> Self {
        Watcher { tasks: true, ..Watcher::default() }
    }

    fn changes(&self) -> usize {
        self.changes.load(Ordering::SeqCst)
    }

    /// Waits until more than `seen` changes were announced.
    async fn changed_after(&self, seen: usize) {
        tokio::time::timeout(Duration::from_secs(20), async {
            while self.changes() <= seen {
                let _ = tokio::time::timeout(Duration::from_millis(200), self.notify.notified()).await;
            }
        })
        .await
        .expect("notifications/tools/list_changed within 20 s");
    }
}

impl ClientHandler for Watcher {
    fn get_info(&self) -> ClientConfig {
        let capabilities = if self.tasks {
            ClientCapabilities::builder().enable_tasks().build()
        } else {
            ClientCapabilities::default()
        };
        ClientConfig::new(capabilities, Implementation::new("it", "1"))
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

pub type WatchedClient = RunningService<RoleClient, Watcher>;

/// A pydantic-style request schema: `$defs`/`$ref`, `anyOf` with null, a `$schema` default.
pub fn alpha_schema() -> Value {
    json!({
        "title": "Request", "type": "object", "required": ["msg"],
        "$defs": {"Mode": {"enum": ["fast", "slow"], "type": "string"}},
        "properties": {
            "$schema": {"type": "string", "default": "urn:sd:schema.alpha.request.1"},
            "msg": {"type": "string", "description": "What to say"},
            "times": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
            "mode": {"$ref": "#/$defs/Mode"}
        }
    })
}

/// alpha and beta have tool definitions; gamma has none.
pub async fn seeded() -> StandIn {
    let s = StandIn::start().await;
    s.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[alpha_schema()]);
    s.add_service("urn:ivcap:service:2222", "beta", "Does beta things", &[json!({"type": "object"})]);
    s.add_service("urn:ivcap:service:3333", "gamma", "No tool definition", &[]);
    s
}

/// The binary against `standin` with `args`, connected with `handler`.
pub async fn platform_with(
    standin: &StandIn,
    args: &[&str],
    cwd: &Path,
    handler: Watcher,
    lifecycle: Option<rmcp::service::ClientLifecycleMode>,
) -> WatchedClient {
    spawn_with(args, &[("IVCAP_URL", standin.base_url()), ("IVCAP_JWT", TOKEN)], cwd, handler, lifecycle).await
}

fn service_tools(tools: &[Tool]) -> Vec<Tool> {
    tools.iter().filter(|t| t.name.starts_with("svc_")).cloned().collect()
}

fn names(tools: &[Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

/// Lists tools until `ready` holds for the service tools (the loader runs in the background).
pub async fn service_tools_when<C: ClientHandler>(
    client: &RunningService<RoleClient, C>,
    ready: impl Fn(&[String]) -> bool,
) -> Vec<Tool> {
    let start = Instant::now();
    loop {
        let tools = service_tools(&client.list_all_tools().await.expect("tools/list"));
        if ready(&names(&tools)) {
            return tools;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "service tools never became ready: {:?}", names(&tools));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    n.len() <= 48
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[tokio::test]
async fn selected_services_become_portable_tools_that_run_jobs_in_both_eras() {
    let s = seeded().await;
    for era in [None, Some(discover())] {
        let dir = tempfile::tempdir().unwrap();
        let args = ["--service-tools", "alpha,urn:ivcap:service:2222,gamma"];
        let client = platform_with(&s, &args, dir.path(), Watcher::default(), era.clone()).await;
        let tools = service_tools_when(&client, |n| n.len() == 2).await;
        assert_eq!(names(&tools), ["svc_alpha", "svc_beta"], "gamma has no request schema");

        let all = client.list_all_tools().await.unwrap();
        let submit = all.iter().find(|t| t.name == "submit_job").expect("submit_job");
        let mut problems = Vec::new();
        for tool in &tools {
            assert!(valid_name(&tool.name), "{}", tool.name);
            let input = Value::Object((*tool.input_schema).clone());
            lint_schema(&input, &tool.name, &mut problems);
            assert_eq!(tool.output_schema, submit.output_schema, "the same job view as submit_job");
            let a = tool.annotations.as_ref().expect("annotations");
            assert_eq!(
                (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint),
                (Some(false), Some(false), Some(false), Some(true))
            );
            let meta = tool.meta.as_ref().expect("_meta").0.get("io.ivcap/service").expect("service in _meta").clone();
            let description = tool.description.as_deref().unwrap_or("");
            assert!(description.contains(meta["id"].as_str().unwrap()), "{description}");
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));

        let alpha = &tools[0];
        assert!(alpha.description.as_deref().unwrap().starts_with("Does alpha things"));
        let mut shown = ok(&call(&client, "get_service", json!({"service": "alpha"})).await)["request_schema"].clone();
        let filled = shown["properties"].as_object_mut().unwrap().remove("$schema");
        assert!(filled.is_some(), "get_service shows the $schema property: {shown}");
        assert_eq!(
            Value::Object((*alpha.input_schema).clone()),
            shown,
            "as get_service shows it, less the $schema the server fills in"
        );

        let before = s.jobs().len();
        let view = ok(&call(&client, "svc_alpha", json!({"msg": "hi", "mode": "fast"})).await);
        assert_eq!(view["status"], "succeeded", "{view}");
        assert_eq!(view["service_id"], "urn:ivcap:service:1111");
        assert_eq!(view["result"]["msg"], "hi");
        assert_eq!(view["result"]["$schema"], "urn:sd:schema.alpha.request.1", "the $schema default is filled in");
        assert_eq!(s.jobs().len(), before + 1);

        let problems = err(&call(&client, "svc_alpha", json!({"times": "x", "mode": "medium"})).await);
        assert!(problems.contains("3 problems"), "{problems}");
        for needle in ["msg", "/times", "/mode", "no job was created"] {
            assert!(problems.contains(needle), "{needle}: {problems}");
        }
        assert_eq!(s.jobs().len(), before + 1, "invalid arguments create no job");
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn names_stay_the_same_across_restarts() {
    let s = seeded().await;
    s.add_service("urn:ivcap:service:4444", "Fire risk: Lot 2", "One", &[json!({"type": "object"})]);
    s.add_service("urn:ivcap:service:5555", "fire risk lot 2", "Two", &[json!({"type": "object"})]);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let dir = tempfile::tempdir().unwrap();
        let client = platform_with(&s, &["--service-tools", "%"], dir.path(), Watcher::default(), None).await;
        let tools = service_tools_when(&client, |n| n.len() == 4).await;
        seen.push(serde_json::to_string(&tools).unwrap());
        let n = names(&tools);
        assert!(n.iter().all(|n| valid_name(n)), "{n:?}");
        assert_eq!(n.iter().filter(|n| n.starts_with("svc_fire_risk_lot_2_")).count(), 2, "{n:?}");
        client.cancel().await.unwrap();
    }
    assert_eq!(seen[0], seen[1]);
}

#[tokio::test]
async fn patterns_percent_and_the_maximum() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform_with(&s, &["--service-tools", "%PH%"], dir.path(), Watcher::default(), None).await;
    assert_eq!(names(&service_tools_when(&client, |n| !n.is_empty()).await), ["svc_alpha"]);
    client.cancel().await.unwrap();

    // `%` alone with a maximum of 1: beta is left out, and stderr says so.
    let envs = [("IVCAP_URL", s.base_url()), ("IVCAP_JWT", TOKEN)];
    let (transport, stderr) = rmcp::transport::TokioChildProcess::builder(command(
        &["--service-tools", "%", "--service-tools-max", "1"],
        &envs,
        dir.path(),
    ))
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let client = rmcp::ServiceExt::serve(Watcher::default(), transport).await.unwrap();
    assert_eq!(names(&service_tools_when(&client, |n| !n.is_empty()).await), ["svc_alpha"]);
    let mut lines = tokio::io::BufReader::new(stderr.expect("stderr")).lines();
    let warning = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("--service-tools-max") {
                return line;
            }
        }
        panic!("no warning about --service-tools-max");
    })
    .await
    .unwrap();
    assert!(warning.contains("beta (urn:ivcap:service:2222)"), "{warning}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn sessions_hear_of_added_changed_and_removed_services() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let watcher = Watcher::default();
    let args = ["--service-tools", "%", "--service-tools-refresh", "1"];
    let client = platform_with(&s, &args, dir.path(), watcher.clone(), None).await;
    let caps = client.peer_info().unwrap().capabilities.clone();
    assert_eq!(caps.tools.and_then(|t| t.list_changed), Some(true));
    service_tools_when(&client, |n| n.len() == 2).await;

    let seen = watcher.changes();
    s.add_service("urn:ivcap:service:6666", "delta", "Added later", &[json!({"type": "object"})]);
    watcher.changed_after(seen).await;
    service_tools_when(&client, |n| n.contains(&"svc_delta".to_string())).await;

    let seen = watcher.changes();
    s.change_service(
        "urn:ivcap:service:6666",
        "Changed",
        &json!({"type": "object", "properties": {"x": {"type": "string"}}}),
    );
    watcher.changed_after(seen).await;
    let delta = service_tools_when(&client, |n| n.contains(&"svc_delta".to_string())).await;
    assert!(delta.iter().any(|t| t.description.as_deref().is_some_and(|d| d.starts_with("Changed"))));

    let seen = watcher.changes();
    s.remove_service("urn:ivcap:service:6666");
    watcher.changed_after(seen).await;
    service_tools_when(&client, |n| !n.contains(&"svc_delta".to_string())).await;

    // Nothing changes: several refreshes, no announcement.
    let seen = watcher.changes();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(watcher.changes(), seen, "only real changes are announced");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn subscriptions_listen_hears_of_changes_in_2026_07_28() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let args = ["--service-tools", "%", "--service-tools-refresh", "1"];
    let client = platform_with(&s, &args, dir.path(), Watcher::default(), Some(discover())).await;
    service_tools_when(&client, |n| n.len() == 2).await;
    let filter = SubscriptionFilter::builder().tools_list_changed().build();
    let mut subscription = client.peer().listen(filter).await.expect("subscriptions/listen");
    assert_eq!(subscription.acknowledged().tools_list_changed, Some(true));

    s.add_service("urn:ivcap:service:7777", "epsilon", "Added later", &[json!({"type": "object"})]);
    let note =
        tokio::time::timeout(Duration::from_secs(20), subscription.next()).await.expect("a notification").unwrap();
    assert!(matches!(note, Some(ServerNotification::ToolListChangedNotification(_))), "{note:?}");
    service_tools_when(&client, |n| n.contains(&"svc_epsilon".to_string())).await;
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn read_only_and_toolsets_decide_whether_service_tools_exist() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    for (extra, offered) in [
        (&["--read-only"][..], false),
        (&["--toolsets", "services,jobs"][..], false),
        (&["--toolsets", "service_tools"][..], true),
    ] {
        let mut args = vec!["--service-tools", "%"];
        args.extend_from_slice(extra);
        let client = platform_with(&s, &args, dir.path(), Watcher::default(), None).await;
        let list_changed = client.peer_info().unwrap().capabilities.tools.clone().and_then(|t| t.list_changed);
        assert_eq!(list_changed, offered.then_some(true), "{extra:?}");
        if offered {
            let all = service_tools_when(&client, |n| n.len() == 2).await;
            assert!(all.iter().all(|t| t.output_schema.is_some()));
            assert_eq!(names(&client.list_all_tools().await.unwrap()), ["svc_alpha", "svc_beta"]);
        } else {
            assert!(service_tools(&client.list_all_tools().await.unwrap()).is_empty(), "{extra:?}");
        }
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn local_service_files_are_watched() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("services")).unwrap();
    let watcher = Watcher::default();
    let args = ["--local", store.to_str().unwrap(), "--service-tools", "%"];
    let client = spawn_with(&args, &[], dir.path(), watcher.clone(), None).await;
    assert!(service_tools(&client.list_all_tools().await.unwrap()).is_empty());

    let seen = watcher.changes();
    let schema = json!({"type": "object", "required": ["word"], "properties": {"word": {"type": "string"}}});
    let def = json!({"name": "echo", "description": "Returns its request", "command": ["cat"], "fn_schema": schema});
    std::fs::write(store.join("services/echo.json"), def.to_string()).unwrap();
    watcher.changed_after(seen).await;
    let tools = service_tools_when(&client, |n| n == ["svc_echo"]).await;
    assert!(tools[0].description.as_deref().unwrap().contains("urn:ivcap:service:echo"));
    let view = ok(&call(&client, "svc_echo", json!({"word": "hello"})).await);
    assert_eq!(view["result"], json!({"word": "hello"}), "{view}");
    let problems = err(&call(&client, "svc_echo", json!({})).await);
    assert!(problems.contains("word"), "{problems}");

    let seen = watcher.changes();
    std::fs::remove_file(store.join("services/echo.json")).unwrap();
    watcher.changed_after(seen).await;
    service_tools_when(&client, |n| n.is_empty()).await;
    // The tool is gone, not failing: calling a tool the server does not offer is a protocol
    // error (-32602), as the MCP spec has it for unknown tools; `isError` is for a tool that ran.
    let gone = client
        .call_tool(rmcp::model::CallToolRequestParams::new("svc_echo").with_arguments(serde_json::Map::new()))
        .await;
    match gone {
        Err(rmcp::service::ServiceError::McpError(e)) => {
            assert_eq!(e.code, rmcp::model::ErrorCode::INVALID_PARAMS, "{e:?}");
            assert!(e.message.starts_with("unknown tool 'svc_echo'") && e.message.contains("tools/list"), "{e:?}");
            assert_eq!(e.data.as_ref().map(|d| &d["tool"]), Some(&json!("svc_echo")), "{e:?}");
        }
        other => panic!("expected a -32602 protocol error, got {:?}", other.map(|r| text(&r))),
    }
    client.cancel().await.unwrap();
}

/// A request model with keys no LLM API accepts as property names (`$schema` with a default,
/// spaces, slashes, `@`): the tool publishes portable keys at every depth, the job gets the
/// service's own, and the published tool passes the portability lint.
#[tokio::test]
async fn unportable_property_keys_are_published_portable_and_mapped_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("services")).unwrap();
    let schema = json!({
        "type": "object",
        "required": ["$schema", "full name"],
        "properties": {
            "$schema": {"type": "string", "default": "urn:sd:schema.odd.request.1"},
            "full name": {"type": "string"},
            "options": {"type": "object", "properties": {"x/y": {"type": "integer"}}},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"@id": {"type": "string"}}}}
        }
    });
    let def = json!({"name": "odd", "description": "Echoes", "command": ["cat"], "fn_schema": schema});
    std::fs::write(store.join("services/odd.json"), def.to_string()).unwrap();
    let args = ["--local", store.to_str().unwrap(), "--service-tools", "odd"];
    let client = spawn_with(&args, &[], dir.path(), Watcher::default(), None).await;
    let tools = service_tools_when(&client, |n| n == ["svc_odd"]).await;
    let input = Value::Object((*tools[0].input_schema).clone());
    let mut problems = Vec::new();
    lint_schema(&input, "svc_odd", &mut problems);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let published: Vec<&String> = input["properties"].as_object().unwrap().keys().collect();
    assert_eq!(published, ["full_name", "options", "tags"], "$schema is filled in by the server, not asked for");
    assert_eq!(input["required"], json!(["full_name"]));

    let view =
        ok(&call(&client, "svc_odd", json!({"full_name": "Ada", "options": {"x_y": 2}, "tags": [{"_id": "t1"}]}))
            .await);
    assert_eq!(
        view["result"],
        json!({
            "$schema": "urn:sd:schema.odd.request.1",
            "full name": "Ada",
            "options": {"x/y": 2},
            "tags": [{"@id": "t1"}]
        }),
        "the service gets its own keys: {view}"
    );
    client.cancel().await.unwrap();
}
