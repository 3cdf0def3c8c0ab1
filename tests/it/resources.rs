//! Resources, resource links, job subscriptions, prompts and completions, over the real
//! binary in both modes ([`both_modes!`]): platform mode against the stand-in and local mode
//! on a temporary store, each set up with the same entities ([`World`]; its own clients, as
//! subscriptions need a notification handler and the 2026-07-28 lifecycle).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ivcap_standin::{JobScript, StandIn, TOKEN};
use rmcp::model::{
    ErrorCode, GetPromptRequestParams, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResult, ResourceContents, ResourceUpdatedNotificationParam, ServerNotification, SubscribeRequestParams,
    SubscriptionFilter, UnsubscribeRequestParams,
};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RunningService, ServiceError};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::common::{both_modes, call, command, ok};

const SERVICE: &str = "alpha";
const SLOW: &str = "slow";
const SCHEMA: &str = "urn:example:schema:label.1";
/// Services beyond `alpha` and `slow`, so `resources/list` takes several pages.
const EXTRA_SERVICES: usize = 23;
const ARTIFACTS: usize = 30;
const LIMIT: usize = 1 << 20;

/// One mode's server and the entities every check uses.
struct World {
    _dir: tempfile::TempDir,
    _standin: Option<StandIn>,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    cwd: PathBuf,
    /// URN of `alpha` (jobs echo their input at once).
    service_urn: String,
    text_artifact: String,
    binary_artifact: String,
    big_artifact: String,
    /// The small artifacts, oldest first.
    listed_artifacts: Vec<String>,
    local: bool,
}

fn request_schema() -> Value {
    json!({"type": "object", "properties": {"message": {"type": "string"}, "file": {"type": "string"}}})
}

const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0xff, 0x00];

async fn platform_world() -> World {
    let s = StandIn::start().await;
    let alpha = "urn:ivcap:service:00000000-0000-0000-0000-00000000a1fa";
    let slow = "urn:ivcap:service:00000000-0000-0000-0000-0000000005a0";
    s.add_service(alpha, SERVICE, "Echoes its input", &[request_schema()]);
    s.add_service(slow, SLOW, "Takes three seconds", &[request_schema()]);
    s.script_jobs(slow, JobScript::echo().running_for(Duration::from_secs(3)).retry_later(1));
    for i in 0..EXTRA_SERVICES {
        s.add_service(&format!("urn:ivcap:service:extra-{i:02}"), &format!("extra{i:02}"), "Another service", &[]);
    }
    let listed_artifacts =
        (0..ARTIFACTS).map(|i| s.add_artifact(&format!("a{i:02}.txt"), "text/plain", b"x")).collect();
    let text_artifact = s.add_artifact("notes.txt", "text/plain", b"hello resources");
    let binary_artifact = s.add_artifact("pic.png", "image/png", PNG);
    let big_artifact = s.add_artifact("big.txt", "text/plain", &vec![b'x'; LIMIT + 1]);
    let dir = tempfile::tempdir().unwrap();
    World {
        args: Vec::new(),
        envs: vec![("IVCAP_URL".into(), s.base_url().to_string()), ("IVCAP_JWT".into(), TOKEN.into())],
        cwd: dir.path().to_path_buf(),
        _dir: dir,
        _standin: Some(s),
        service_urn: alpha.into(),
        text_artifact,
        binary_artifact,
        big_artifact,
        listed_artifacts,
        local: false,
    }
}

fn local_world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let services = store.join("services");
    std::fs::create_dir_all(&services).unwrap();
    let service = |name: &str, command: Value| {
        let def =
            json!({"name": name, "description": "a local service", "fn_schema": request_schema(), "command": command});
        std::fs::write(services.join(format!("{name}.json")), def.to_string()).unwrap();
    };
    service(SERVICE, json!(["cat"]));
    service(SLOW, json!(["sh", "-c", "sleep 3; cat"]));
    for i in 0..EXTRA_SERVICES {
        service(&format!("extra{i:02}"), json!(["cat"]));
    }
    let artifacts = store.join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let artifact = |name: &str, bytes: &[u8]| {
        std::fs::write(artifacts.join(name), bytes).unwrap();
        format!("urn:file://{}", artifacts.canonicalize().unwrap().join(name).display())
    };
    let listed_artifacts = (0..ARTIFACTS).map(|i| artifact(&format!("a{i:02}.txt"), b"x")).collect();
    let text_artifact = artifact("notes.txt", b"hello resources");
    let binary_artifact = artifact("pic.png", PNG);
    let big_artifact = artifact("big.txt", &vec![b'x'; LIMIT + 1]);
    World {
        args: vec!["--local".into(), store.to_str().unwrap().into()],
        envs: Vec::new(),
        cwd: dir.path().to_path_buf(),
        _dir: dir,
        _standin: None,
        service_urn: format!("urn:ivcap:service:{SERVICE}"),
        text_artifact,
        binary_artifact,
        big_artifact,
        listed_artifacts,
        local: true,
    }
}

impl World {
    async fn new(on_platform: bool) -> World {
        if on_platform { platform_world().await } else { local_world() }
    }

    /// The binary for this world, served to `client` (`lifecycle` None: `initialize`).
    async fn connect<C: ClientHandler>(
        &self,
        client: C,
        lifecycle: Option<ClientLifecycleMode>,
    ) -> RunningService<RoleClient, C> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (transport, _) = TokioChildProcess::builder(command(&args, &envs, &self.cwd))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn ivcap-mcp");
        match lifecycle {
            None => client.serve(transport).await.expect("initialize"),
            Some(mode) => client.serve_with_lifecycle(transport, mode).await.expect("server/discover"),
        }
    }

    async fn client(&self) -> RunningService<RoleClient, ()> {
        self.connect((), None).await
    }
}

fn modern() -> Option<ClientLifecycleMode> {
    Some(ClientLifecycleMode::Discover { preferred_versions: vec![ProtocolVersion::V_2026_07_28] })
}

async fn read<C: ClientHandler>(
    client: &RunningService<RoleClient, C>,
    uri: &str,
) -> Result<ReadResourceResult, ErrorData> {
    match client.read_resource(ReadResourceRequestParams::new(uri)).await {
        Ok(r) => Ok(r),
        Err(ServiceError::McpError(e)) => Err(e),
        Err(e) => panic!("resources/read {uri}: {e}"),
    }
}

/// The one text content of a read, with its MIME type.
fn text_of(r: &ReadResourceResult) -> (String, Option<String>) {
    match r.contents.as_slice() {
        [ResourceContents::TextResourceContents { text, mime_type, .. }] => (text.clone(), mime_type.clone()),
        other => panic!("expected one text content, got {other:?}"),
    }
}

/// The JSON of a read that must be `application/json`.
fn json_of(r: &ReadResourceResult) -> Value {
    let (text, mime) = text_of(r);
    assert_eq!(mime.as_deref(), Some("application/json"));
    serde_json::from_str(&text).unwrap()
}

/// The URIs of the `resource_link` blocks of a tool result.
fn links(result: &rmcp::model::CallToolResult) -> Vec<String> {
    result.content.iter().filter_map(|c| c.as_resource_link().map(|r| r.uri.clone())).collect()
}

fn assert_not_found(e: &ErrorData, uri: &str, code: ErrorCode) {
    assert_eq!(e.code, code, "{e:?}");
    assert_eq!(e.data.as_ref().and_then(|d| d["uri"].as_str()), Some(uri), "{e:?}");
}

async fn reads_every_kind(on_platform: bool) {
    let w = World::new(on_platform).await;
    let client = w.client().await;
    // Artifacts: text as text, anything else as a base64 blob, with their MIME types.
    let (text, mime) = text_of(&read(&client, &w.text_artifact).await.unwrap());
    assert_eq!((text.as_str(), mime.as_deref()), ("hello resources", Some("text/plain")));
    let binary = read(&client, &w.binary_artifact).await.unwrap();
    match binary.contents.as_slice() {
        [ResourceContents::BlobResourceContents { blob, mime_type, uri, .. }] => {
            assert_eq!(STANDARD.decode(blob).unwrap(), PNG);
            assert_eq!((mime_type.as_deref(), uri.as_str()), (Some("image/png"), w.binary_artifact.as_str()));
        }
        other => panic!("expected a blob, got {other:?}"),
    }
    let big = read(&client, &w.big_artifact).await.unwrap_err();
    for part in [format!("{} bytes", LIMIT + 1), LIMIT.to_string(), "download_artifact".into(), "path".into()] {
        assert!(big.message.contains(&part), "{part} missing from: {}", big.message);
    }

    // A service: the get_service view with its normalised request schema.
    let service = json_of(&read(&client, &w.service_urn).await.unwrap());
    assert_eq!(service["name"], SERVICE);
    assert_eq!(service["request_schema"]["properties"]["message"]["type"], "string", "{service}");

    // An aspect, and a job (the get_job view, without waiting).
    let added =
        call(&client, "add_aspect", json!({"entity": w.text_artifact, "schema": SCHEMA, "content": {"label": "cat"}}))
            .await;
    let aspect_id = ok(&added)["id"].as_str().unwrap().to_string();
    let aspect = json_of(&read(&client, &aspect_id).await.unwrap());
    assert_eq!((&aspect["entity"], &aspect["schema"]), (&json!(w.text_artifact), &json!(SCHEMA)));
    assert_eq!(aspect["content"]["label"], "cat");
    assert!(aspect["valid_from"].is_string() && aspect["valid_to"].is_null(), "{aspect}");
    let job =
        ok(&call(&client, "submit_job", json!({"service": SERVICE, "input": {"message": "hi"}, "wait_seconds": 20}))
            .await);
    let job_id = job["job_id"].as_str().unwrap();
    let read_job = json_of(&read(&client, job_id).await.unwrap());
    assert_eq!((&read_job["job_id"], &read_job["status"]), (&json!(job_id), &json!("succeeded")));
    assert_eq!(read_job["result"]["message"], "hi");

    // Unknown and malformed URIs: resource-not-found, -32002, with the URI in data.
    let unknown_artifact = if w.local {
        w.text_artifact.replace("notes.txt", "missing.txt")
    } else {
        "urn:ivcap:artifact:00000000-0000-0000-0000-000000000000".to_string()
    };
    for uri in [
        unknown_artifact.as_str(),
        "urn:ivcap:aspect:00000000-0000-0000-0000-000000000000",
        "urn:ivcap:job:00000000-0000-0000-0000-000000000000",
        "urn:ivcap:service:nope",
        "urn:ivcap:aspect:not a uuid",
        "test://static-text",
        "urn:ivcap:order:1",
    ] {
        let e = read(&client, uri).await.unwrap_err();
        assert_not_found(&e, uri, ErrorCode::RESOURCE_NOT_FOUND);
    }
    client.cancel().await.unwrap();

    // 2026-07-28 peers get the same error as -32602, still with the URI.
    let modern = w.connect((), modern()).await;
    let e = read(&modern, "urn:ivcap:job:00000000-0000-0000-0000-000000000000").await.unwrap_err();
    assert_not_found(&e, "urn:ivcap:job:00000000-0000-0000-0000-000000000000", ErrorCode::INVALID_PARAMS);
    assert_eq!(json_of(&read(&modern, &w.service_urn).await.unwrap())["name"], SERVICE);
    modern.cancel().await.unwrap();
}

async fn lists_and_templates(on_platform: bool) {
    let w = World::new(on_platform).await;
    let client = w.client().await;
    let templates = client.list_all_resource_templates().await.unwrap();
    let uris: Vec<&str> = templates.iter().map(|t| t.uri_template.as_str()).collect();
    assert_eq!(
        uris,
        ["urn:ivcap:artifact:{id}", "urn:ivcap:aspect:{id}", "urn:ivcap:job:{id}", "urn:ivcap:service:{id}"]
    );
    assert!(templates.iter().all(|t| t.title.is_some() && t.description.is_some()), "{templates:?}");

    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let params = PaginatedRequestParams::default().with_cursor(cursor.clone());
        let mut page = client.list_resources(Some(params)).await.unwrap();
        // The MCP Apps views open the first page (tests/it/apps.rs checks them).
        if cursor.is_none() {
            let views: Vec<String> = page.resources.drain(..4).map(|r| r.uri).collect();
            assert!(views.iter().all(|u| u.starts_with("ui://ivcap/")), "{views:?}");
        }
        assert!(page.resources.len() <= 20, "never more than a page: {}", page.resources.len());
        assert!(page.next_cursor.as_deref().is_none_or(|c| !c.is_empty() && Some(c) != cursor.as_deref()));
        pages.push(page.resources);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(pages.len() >= 3, "{} pages", pages.len());
    let all: Vec<_> = pages.into_iter().flatten().collect();
    let services = 2 + EXTRA_SERVICES;
    assert!(all[..services].iter().all(|r| r.uri.starts_with("urn:ivcap:service:")), "services first");
    assert!(all[..services].iter().all(|r| r.mime_type.as_deref() == Some("application/json")));
    let artifacts: Vec<&str> = all[services..].iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(artifacts.len(), ARTIFACTS + 3, "then every artifact, once");
    for a in w.listed_artifacts.iter().chain([&w.text_artifact, &w.binary_artifact, &w.big_artifact]) {
        assert_eq!(artifacts.iter().filter(|u| **u == a.as_str()).count(), 1, "{a}");
    }
    if !w.local {
        // Newest first: the stand-in keeps creation order.
        let seeded: Vec<usize> =
            w.listed_artifacts.iter().map(|a| artifacts.iter().position(|u| u == a).unwrap()).collect();
        assert!(seeded.windows(2).all(|p| p[0] > p[1]), "newest first: {seeded:?}");
    }
    let big = all.iter().find(|r| r.uri == w.big_artifact).unwrap();
    assert_eq!((big.size, big.mime_type.as_deref()), (Some(LIMIT as u64 + 1), Some("text/plain")));
    client.cancel().await.unwrap();
}

async fn tool_results_link_their_entities(on_platform: bool) {
    let w = World::new(on_platform).await;
    let client = w.client().await;
    let up = call(&client, "upload_artifact", json!({"content": "linked", "name": "linked.txt"})).await;
    let id = ok(&up)["id"].as_str().unwrap().to_string();
    assert_eq!(links(&up), [id.as_str()]);
    assert_eq!(text_of(&read(&client, &id).await.unwrap()).0, "linked");

    let got = call(&client, "get_artifact", json!({"artifact_id": w.text_artifact})).await;
    assert_eq!(links(&got), [w.text_artifact.as_str()]);
    let inline = call(&client, "download_artifact", json!({"artifact_id": w.text_artifact})).await;
    assert!(links(&inline).is_empty(), "delivered inline, nothing to link");
    let too_big = call(&client, "download_artifact", json!({"artifact_id": w.big_artifact})).await;
    assert_eq!(ok(&too_big)["delivered"], "none");
    assert_eq!(links(&too_big), [w.big_artifact.as_str()]);

    let added = call(&client, "add_aspect", json!({"entity": id, "schema": SCHEMA, "content": {"label": "a"}})).await;
    let aspect = ok(&added)["id"].as_str().unwrap().to_string();
    assert_eq!(links(&added), [aspect.as_str()]);
    let updated =
        call(&client, "update_aspect", json!({"entity": id, "schema": SCHEMA, "content": {"label": "b"}})).await;
    let new_aspect = ok(&updated)["id"].as_str().unwrap().to_string();
    assert_eq!(links(&updated), [new_aspect.as_str()]);
    assert_eq!(json_of(&read(&client, &new_aspect).await.unwrap())["content"]["label"], "b");

    // A finished job links itself and its products (on the stand-in the scripted products,
    // locally the stored artifacts its result names).
    if let Some(s) = &w._standin {
        s.script_jobs(&w.service_urn, JobScript::echo().products(&[&w.text_artifact]));
    }
    let product = w.text_artifact.clone();
    let input = json!({"message": "m", "file": product});
    let submitted = call(&client, "submit_job", json!({"service": SERVICE, "input": input, "wait_seconds": 20})).await;
    let job = ok(&submitted)["job_id"].as_str().unwrap().to_string();
    if w.local {
        assert_eq!(links(&submitted), [job.clone(), product.clone()]);
    } else {
        // A job that finished within the create's Timeout answers with its result only, which
        // lists no products; get_job reads the record that does.
        assert_eq!(links(&submitted), [job.as_str()]);
    }
    let again = call(&client, "get_job", json!({"job_id": job})).await;
    assert_eq!(links(&again), [job.clone(), product.clone()]);
    for uri in links(&again) {
        read(&client, &uri).await.unwrap_or_else(|e| panic!("link {uri} is not readable: {e:?}"));
    }
    client.cancel().await.unwrap();
}

/// A client that records `notifications/resources/updated`.
#[derive(Clone, Default)]
struct Updates(Arc<Mutex<Vec<String>>>);

impl ClientHandler for Updates {
    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.0.lock().unwrap().push(params.uri);
    }
}

async fn slow_job<C: ClientHandler>(client: &RunningService<RoleClient, C>) -> String {
    let job =
        ok(&call(client, "submit_job", json!({"service": SLOW, "input": {"message": "x"}, "wait_seconds": 0})).await);
    assert_ne!(job["status"], "succeeded", "{job}");
    job["job_id"].as_str().unwrap().to_string()
}

async fn job_status<C: ClientHandler>(client: &RunningService<RoleClient, C>, job: &str) -> String {
    json_of(&read(client, job).await.unwrap())["status"].as_str().unwrap().to_string()
}

#[allow(deprecated)] // resources/subscribe is the handshake era's way, which this tests.
async fn subscriptions_tell_when_a_job_finishes(on_platform: bool) {
    let w = World::new(on_platform).await;
    let updates = Updates::default();
    let client = w.connect(updates.clone(), None).await;
    let job = slow_job(&client).await;
    client.subscribe(SubscribeRequestParams::new(&job)).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while job_status(&client, &job).await != "succeeded" || !updates.0.lock().unwrap().contains(&job) {
        assert!(tokio::time::Instant::now() < deadline, "no update for {job}: {:?}", updates.0.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(updates.0.lock().unwrap().iter().all(|u| *u == job));

    // Only jobs, and unknown ones are not found.
    let e = client.subscribe(SubscribeRequestParams::new(&w.service_urn)).await.unwrap_err();
    assert!(e.to_string().contains("only job URNs"), "{e}");
    let unknown = "urn:ivcap:job:00000000-0000-0000-0000-000000000000";
    match client.subscribe(SubscribeRequestParams::new(unknown)).await {
        Err(ServiceError::McpError(e)) => assert_not_found(&e, unknown, ErrorCode::RESOURCE_NOT_FOUND),
        other => panic!("{other:?}"),
    }
    client.cancel().await.unwrap();
    // A bounded number of running jobs per session (a fresh one: the first job's watch may
    // still be seeing it finish). Unsubscribing makes room.
    let client = w.connect(Updates::default(), None).await;
    let mut watched = Vec::new();
    for _ in 0..16 {
        watched.push(slow_job(&client).await);
        client.subscribe(SubscribeRequestParams::new(watched.last().unwrap())).await.unwrap();
    }
    let extra = slow_job(&client).await;
    let e = client.subscribe(SubscribeRequestParams::new(&extra)).await.unwrap_err();
    assert!(e.to_string().contains("already watches 16 jobs") && e.to_string().contains("unsubscribe"), "{e}");
    client.unsubscribe(UnsubscribeRequestParams::new(&watched[0])).await.unwrap();
    client.subscribe(SubscribeRequestParams::new(&extra)).await.unwrap();
    client.cancel().await.unwrap();

    // 2026-07-28: the same through subscriptions/listen.
    let modern = w.connect((), modern()).await;
    let job = slow_job(&modern).await;
    let filter =
        SubscriptionFilter::builder().resource_subscription(&job).resource_subscription(&w.service_urn).build();
    let mut stream = modern.peer().listen(filter).await.unwrap();
    assert_eq!(stream.acknowledged().resource_subscriptions.as_deref(), Some(&[job.clone()][..]), "jobs only");
    let update = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await.unwrap() {
                Some(ServerNotification::ResourceUpdatedNotification(n)) => return n.params.uri,
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
    })
    .await
    .expect("resources/updated within 20 s");
    assert_eq!(update, job);
    // An update says the job changed; the last one comes when it finishes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while job_status(&modern, &job).await != "succeeded" {
        assert!(tokio::time::Instant::now() < deadline);
        let _ = tokio::time::timeout(Duration::from_millis(500), stream.next()).await;
    }
    modern.cancel().await.unwrap();
}

async fn prompts_and_completions(on_platform: bool) {
    let w = World::new(on_platform).await;
    let client = w.client().await;
    let prompts = client.list_all_prompts().await.unwrap();
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["annotate_artifact", "explore_datafabric", "run_service", "trace_provenance"]);
    let required = |name: &str| -> Vec<String> {
        let p = prompts.iter().find(|p| p.name == name).unwrap();
        p.arguments.iter().flatten().filter(|a| a.required == Some(true)).map(|a| a.name.clone()).collect()
    };
    assert_eq!(required("run_service"), ["service"]);
    assert_eq!(required("annotate_artifact"), ["artifact"]);
    for (name, args, expect) in [
        ("run_service", json!({"service": SERVICE, "goal": "say hi"}), vec![SERVICE, "say hi", "`submit_job`"]),
        (
            "annotate_artifact",
            json!({"artifact": w.text_artifact, "note": "a cat"}),
            vec![w.text_artifact.as_str(), "a cat", "`add_aspect`"],
        ),
        (
            "trace_provenance",
            json!({"entity": w.text_artifact}),
            vec![w.text_artifact.as_str(), "ivcap_artifact_produced_by", "`search`"],
        ),
        ("explore_datafabric", json!({"question": "which cats?"}), vec!["which cats?", "`list_aspects`", "fn:count"]),
    ] {
        let Value::Object(args) = args else { unreachable!() };
        let got = client.get_prompt(GetPromptRequestParams::new(name).with_arguments(args)).await.unwrap();
        let text: String = got.messages.iter().filter_map(|m| m.content.as_text().map(|t| t.text.clone())).collect();
        for e in expect {
            assert!(text.contains(e), "prompt {name} lacks {e}: {text}");
        }
    }
    let missing = client.get_prompt(GetPromptRequestParams::new("run_service")).await.unwrap_err();
    assert!(missing.to_string().contains("service"), "{missing}");

    // Completions: services by name or URN, artifacts newest first, schemas from the aspects.
    let services = client.complete_prompt_argument("run_service", "service", "al", None).await.unwrap();
    assert_eq!(services.values, [SERVICE]);
    let by_urn = client.complete_prompt_argument("run_service", "service", &w.service_urn[..20], None).await.unwrap();
    assert!(by_urn.values.contains(&w.service_urn), "{by_urn:?}");
    let ids = client.complete_resource_argument("urn:ivcap:service:{id}", "id", "ext", None).await.unwrap();
    if w.local {
        assert_eq!(ids.values.len(), EXTRA_SERVICES, "{ids:?}");
    }
    let artifacts = client.complete_prompt_argument("annotate_artifact", "artifact", "", None).await.unwrap();
    assert!(artifacts.values.len() == ARTIFACTS + 3 && artifacts.has_more == Some(false), "{artifacts:?}");
    assert!(artifacts.values.contains(&w.text_artifact));
    // The artifact template's variable is the part after urn:ivcap:artifact:, which local
    // urn:file:// ids do not have.
    let bare = client.complete_resource_argument("urn:ivcap:artifact:{id}", "id", "", None).await.unwrap();
    match w.text_artifact.strip_prefix("urn:ivcap:artifact:") {
        Some(id) => assert!(bare.values.iter().any(|v| v == id), "{bare:?}"),
        None => assert!(bare.values.is_empty(), "{bare:?}"),
    }
    call(&client, "add_aspect", json!({"entity": w.text_artifact, "schema": SCHEMA, "content": {"label": "x"}})).await;
    call(
        &client,
        "add_aspect",
        json!({"entity": w.text_artifact, "schema": "urn:example:schema:size.1", "content": {"n": 1}}),
    )
    .await;
    let schemas =
        client.complete_prompt_argument("annotate_artifact", "schema", "urn:example:schema:", None).await.unwrap();
    assert_eq!(schemas.values, ["urn:example:schema:label.1", "urn:example:schema:size.1"]);
    let free = client.complete_prompt_argument("explore_datafabric", "question", "wh", None).await.unwrap();
    assert!(free.values.is_empty());
    client.cancel().await.unwrap();
}

both_modes!(
    reads_every_kind,
    lists_and_templates,
    tool_results_link_their_entities,
    subscriptions_tell_when_a_job_finishes,
    prompts_and_completions
);
