//! `submit_job`, `get_job` and `list_jobs` over the real binary against the stand-in's
//! scripted jobs and in local mode (command and url services), plus the in-process server
//! for progress notifications and cancellation.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::Method;
use ivcap_mcp::backend::platform::PlatformBackend;
use ivcap_mcp::config::{PlatformConfig, Secret};
use ivcap_standin::{JOB_ASPECT_SCHEMA, JobScript, StandIn, TOKEN};
use rmcp::model::{CallToolRequestParams, ClientRequest, ProgressNotificationParam, Request, ServerResult};
use rmcp::service::PeerRequestOptions;
use serde_json::{Value, json};

use crate::common::{EchoService, Env, all_pages, both_modes, call, err, in_process, local, ok, platform, texts};

both_modes!(
    jobs_run_are_read_and_listed,
    jobs_are_filtered_and_ordered,
    job_input_is_checked_before_anything_is_created,
    waits_are_capped_by_max_wait,
);

/// The jobs contract, on both modes: a service whose jobs echo their input.
async fn jobs_run_are_read_and_listed(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let echo = env.add_echo_service("echo", "Echoes", Some(echo_schema()));

    let job =
        ok(&call(c, "submit_job", json!({"service": "echo", "input": {"message": "hi"}, "wait_seconds": 20})).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["service_id"].as_str(), Some(echo.as_str()));
    assert_eq!(
        job["result"],
        json!({"$schema": "urn:sd:schema.echo.request.1", "message": "hi"}),
        "schema default filled"
    );
    let id = job["job_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("urn:ivcap:job:"), "{id}");
    let listed = ok(&call(c, "list_jobs", json!({"service": "echo"})).await);
    assert_eq!(listed["items"][0]["job_id"].as_str(), Some(id.as_str()), "{listed}");
    assert_eq!(listed["items"][0]["status"], "succeeded");

    let missing_job = "urn:ivcap:job:00000000-0000-4000-8000-000000000000";
    let missing = err(&call(c, "get_job", json!({"job_id": missing_job, "service_id": echo})).await);
    assert!(missing.contains("no such job") && missing.contains("list_jobs"), "{missing}");
}

/// The input is checked against the service's request schema before anything is sent or run:
/// every violation is listed, and no job exists afterwards, on the platform or in the store.
async fn job_input_is_checked_before_anything_is_created(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    env.add_echo_service("alpha", "Does alpha things", Some(alpha_schema()));

    let message =
        err(&call(c, "submit_job", json!({"service": "alpha", "input": {"times": "x", "mode": "medium"}})).await);
    assert!(message.contains("invalid argument 'input'") && message.contains("(3 problems)"), "{message}");
    for problem in ["missing required property 'msg'", "/times: expected an integer, got the string \"x\"", "/mode:"] {
        assert!(message.contains(problem), "{problem} in {message}");
    }
    assert!(message.contains("no job was created"), "{message}");
    let message = err(&call(c, "submit_job", json!({"service": "alpha", "input": "hi"})).await);
    assert!(message.contains("invalid argument 'input': expected a JSON object, got the string \"hi\""), "{message}");

    assert_eq!(ok(&call(c, "list_jobs", json!({"service": "alpha"})).await)["items"], json!([]));
    assert_eq!(env.jobs_created(), 0, "no job was created");
    if let Some(s) = &env.standin {
        assert!(s.requests_to(Method::POST, "/").is_empty(), "no create reached the stand-in");
    }

    // The same service takes a valid input: the refusals above were the check's, not the service's.
    let job = ok(&call(c, "submit_job", json!({"service": "alpha", "input": {"msg": "hi"}, "wait_seconds": 20})).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(env.jobs_created(), 1);
}

/// `--max-wait` caps `wait_seconds` of `submit_job` and `get_job`: the call returns at the cap
/// with the job still running, and the answer says the wait was capped and what to call next.
async fn waits_are_capped_by_max_wait(on_platform: bool) {
    let env = Env::start_with(on_platform, &["--max-wait", "2"]).await;
    let c = &env.client;
    env.add_service(&EchoService {
        key: "slow",
        name: "slow",
        description: "Takes its time",
        schema: None,
        seconds: 30,
    });

    let started = Instant::now();
    let job = ok(&call(c, "submit_job", json!({"service": "slow", "input": {"msg": "x"}, "wait_seconds": 40})).await);
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
    assert!(still_running(&job), "{job}");
    let note = job["note"].as_str().unwrap();
    assert!(note.contains("wait_seconds was capped at 2 s") && note.contains("(--max-wait)"), "{note}");
    assert!(note.contains("still running — call get_job") && note.contains("up to 2"), "{note}");
    if let Some(s) = &env.standin {
        // The platform is asked to wait no longer than the cap.
        assert_eq!(s.requests_to(Method::POST, "/1/services2/")[0].header("timeout").as_deref(), Some("2"));
    }

    let started = Instant::now();
    let again = ok(&call(c, "get_job", json!({"job": job["job_id"], "wait_seconds": 40})).await);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6), "took {waited:?}");
    assert!(still_running(&again), "{again}");
    assert!(again["note"].as_str().unwrap().contains("wait_seconds was capped at 2 s"), "{again}");

    // The argument's earlier name still works (a hidden alias, docs/guide.md "Tools in depth").
    let uncapped = ok(&call(c, "get_job", json!({"job_id": job["job_id"], "wait_seconds": 1})).await);
    assert!(
        !uncapped["note"].as_str().unwrap_or("").contains("capped"),
        "a wait under the cap is not capped: {uncapped}"
    );
}

const ALPHA: &str = "urn:ivcap:service:1111";

fn alpha_schema() -> Value {
    json!({
        "title": "Request", "type": "object", "required": ["msg"],
        "$defs": {"Mode": {"enum": ["fast", "slow"], "type": "string"}},
        "properties": {
            "$schema": {"type": "string", "default": "urn:sd:schema.alpha.request.1"},
            "msg": {"type": "string"},
            "times": {"type": "integer", "default": 1},
            "mode": {"$ref": "#/$defs/Mode"}
        }
    })
}

async fn seeded(script: JobScript) -> StandIn {
    let s = StandIn::start().await;
    s.add_service(ALPHA, "alpha", "Does alpha things", &[alpha_schema()]);
    s.script_jobs(ALPHA, script);
    s
}

fn job_gets(s: &StandIn) -> usize {
    s.requests_to(Method::GET, "/1/services2/").into_iter().filter(|r| r.path.contains("/jobs/")).count()
}

#[tokio::test]
async fn platform_echo_round_trip_returns_the_result_inline() {
    let s = seeded(JobScript::echo().running_for(Duration::from_millis(500))).await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;

    let job =
        ok(&call(&client, "submit_job", json!({"service": "alpha", "input": {"msg": "hi"}, "wait_seconds": 20})).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["service_id"], ALPHA);
    assert!(job["job_id"].as_str().unwrap().starts_with("urn:ivcap:job:"));
    assert_eq!(job["result"], json!({"$schema": "urn:sd:schema.alpha.request.1", "msg": "hi"}));
    assert_eq!(job["result_content_type"], "application/json");

    let posts = s.requests_to(Method::POST, "/1/services2/");
    assert_eq!(posts.len(), 1, "one create, never retried");
    assert_eq!(posts[0].raw_path, "/1/services2/urn%3Aivcap%3Aservice%3A1111/jobs");
    assert_eq!(posts[0].header("timeout").as_deref(), Some("20"), "an integer Timeout");
    assert_eq!(posts[0].header("content-type").as_deref(), Some("application/json"));
    assert_eq!(job_gets(&s), 0, "the 200 carried the result: no polling");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_slow_job_submitted_without_wait_is_awaited_with_get_job() {
    let s = seeded(JobScript::succeed(json!({"answer": 42})).running_for(Duration::from_secs(3)).retry_later(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;

    let started = Instant::now();
    let job =
        ok(&call(&client, "submit_job", json!({"service": ALPHA, "input": {"msg": "x"}, "wait_seconds": 0})).await);
    assert!(started.elapsed() < Duration::from_secs(2), "wait_seconds 0 returns at once");
    assert_eq!(job["status"], "pending");
    assert!(job["note"].as_str().unwrap().contains("still running — call get_job"), "{job}");
    assert_eq!(s.requests_to(Method::POST, "/1/services2/")[0].header("timeout").as_deref(), Some("0"));

    let id = job["job_id"].as_str().unwrap();
    let done = ok(&call(&client, "get_job", json!({"job_id": id, "wait_seconds": 20})).await);
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"answer": 42}));
    for key in ["requested_at", "started_at", "finished_at"] {
        assert!(done[key].is_string(), "{key} in {done}");
    }
    let polls = job_gets(&s);
    assert!((2..=6).contains(&polls), "a 3 s job costs a handful of polls, not {polls}");
    assert!(
        s.requests_to(Method::GET, "/1/aspects")
            .iter()
            .all(|r| r.query_param("schema").as_deref() != Some(JOB_ASPECT_SCHEMA)),
        "the service of a job this server submitted is remembered"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_failed_and_error_jobs_carry_their_message() {
    let s = seeded(JobScript::fail("msg must not be 'boom'").running_for(Duration::from_millis(300))).await;
    s.add_service("urn:ivcap:service:2222", "beta", "Breaks", &[json!({"type": "object"})]);
    s.script_jobs("urn:ivcap:service:2222", JobScript::error("out of memory"));
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;

    let failed =
        ok(&call(&client, "submit_job", json!({"service": "alpha", "input": {"msg": "boom"}, "wait_seconds": 10}))
            .await);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_message"], "msg must not be 'boom'");
    assert!(failed.get("result").is_none());

    let errored = ok(&call(&client, "submit_job", json!({"service": "beta", "input": {}, "wait_seconds": 10})).await);
    assert_eq!(errored["status"], "error", "{errored}");
    assert_eq!(errored["error_message"], "out of memory");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_result_from_the_output_endpoint_and_a_307_create() {
    let s = seeded(JobScript::succeed(json!("plain text result")).content_type("text/plain").output_only().redirect())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let job =
        ok(&call(&client, "submit_job", json!({"service": ALPHA, "input": {"msg": "x"}, "wait_seconds": 10})).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], "plain text result");
    assert_eq!(job["result_content_type"], "text/plain");
    assert_eq!(s.requests_to(Method::POST, "/1/services2/").len(), 1, "a 307 is not followed by a second create");
    assert_eq!(s.requests().iter().filter(|r| r.path.ends_with("/output")).count(), 1);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_get_job_without_service_id_after_a_restart_reads_the_job_aspect() {
    let s = seeded(JobScript::succeed(json!({"ok": true}))).await;
    let dir = tempfile::tempdir().unwrap();
    let first = platform(&s, dir.path()).await;
    let job =
        ok(&call(&first, "submit_job", json!({"service": "alpha", "input": {"msg": "x"}, "wait_seconds": 0})).await);
    first.cancel().await.unwrap();
    assert_eq!(s.with_data(|d| d.aspects.iter().filter(|a| a.schema == JOB_ASPECT_SCHEMA).count()), 1);

    let second = platform(&s, dir.path()).await;
    s.clear_requests();
    let read = ok(&call(&second, "get_job", json!({"job_id": job["job_id"]})).await);
    assert_eq!(read["status"], "succeeded", "{read}");
    assert_eq!(read["service_id"], ALPHA);
    assert_eq!(read["result"], json!({"ok": true}));
    let lookups = s.requests_to(Method::GET, "/1/aspects");
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].query_param("schema").as_deref(), Some(JOB_ASPECT_SCHEMA));
    assert_eq!(lookups[0].query_param("entity").as_deref(), job["job_id"].as_str());

    let unknown =
        err(&call(&second, "get_job", json!({"job_id": "urn:ivcap:job:00000000-0000-0000-0000-000000000000"})).await);
    assert!(unknown.contains("pass service,"), "{unknown}");
    let bad = err(&call(&second, "get_job", json!({"job_id": "job-1"})).await);
    assert!(bad.contains("invalid argument 'job'"), "{bad}");
    second.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_lists_jobs_across_pages() {
    let s = seeded(JobScript::echo()).await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    for i in 0..3 {
        ok(&call(
            &client,
            "submit_job",
            json!({"service": "alpha", "input": {"msg": format!("m{i}")}, "wait_seconds": 0}),
        )
        .await);
    }
    let first = ok(&call(&client, "list_jobs", json!({"service": "alpha", "limit": 2})).await);
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    assert_eq!(first["items"][0]["status"], "succeeded");
    let token = first["next_page"].as_str().expect("a second page");
    let second = ok(&call(&client, "list_jobs", json!({"service": "alpha", "limit": 2, "page": token})).await);
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_page"], Value::Null);
    let mut ids: Vec<String> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["items"].as_array().unwrap())
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut created: Vec<String> = s.jobs().into_iter().map(|j| j.id).collect();
    created.sort();
    assert_eq!(ids, created);
    client.cancel().await.unwrap();
}

/// Whether a job view's status may still change (the platform says `scheduled` where a local job
/// is `pending`, and either may be `executing` by now).
fn still_running(job: &Value) -> bool {
    matches!(job["status"].as_str(), Some("pending" | "scheduled" | "executing"))
}

/// A client that records progress notifications.
#[derive(Clone, Default)]
pub(crate) struct ProgressClient {
    pub(crate) seen: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl rmcp::ClientHandler for ProgressClient {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.seen.lock().unwrap().push(params);
    }
}

fn platform_backend(s: &StandIn) -> Arc<PlatformBackend> {
    let cfg = PlatformConfig {
        base_url: s.base_url().to_string(),
        token: Some(Secret::new(TOKEN)),
        host_header: None,
        cli_login: None,
    };
    Arc::new(PlatformBackend::new(&cfg).unwrap())
}

pub(crate) fn tool_request(name: &str, args: Value) -> ClientRequest {
    let Value::Object(map) = args else { panic!("arguments must be an object") };
    ClientRequest::CallToolRequest(Request::new(CallToolRequestParams::new(name.to_string()).with_arguments(map)))
}

#[tokio::test]
async fn progress_notifications_report_each_status_change() {
    let s = seeded(JobScript::echo().running_for(Duration::from_secs(4)).retry_later(0)).await;
    let handler = ProgressClient::default();
    let client = in_process(platform_backend(&s), handler.clone(), None).await;
    let submitted =
        ok(&call(&client, "submit_job", json!({"service": ALPHA, "input": {"msg": "x"}, "wait_seconds": 0})).await);

    let handle = client
        .send_cancellable_request(
            tool_request("get_job", json!({"job_id": submitted["job_id"], "wait_seconds": 20})),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result")
    };
    assert_eq!(ok(&result)["status"], "succeeded");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let seen: Vec<ProgressNotificationParam> =
        handler.seen.lock().unwrap().iter().filter(|p| p.progress_token == token).cloned().collect();
    let messages: Vec<String> = seen.iter().filter_map(|p| p.message.clone()).collect();
    assert!(messages.iter().any(|m| m.ends_with("is executing")), "{messages:?}");
    assert!(messages.last().is_some_and(|m| m.ends_with("is succeeded")), "{messages:?}");
    assert!(seen.windows(2).all(|w| w[1].progress > w[0].progress), "progress increases");
}

#[tokio::test]
async fn cancelling_stops_the_wait_but_not_the_job() {
    let s = seeded(JobScript::succeed(json!({"late": true})).running_for(Duration::from_secs(6))).await;
    let client = in_process(platform_backend(&s), ProgressClient::default(), None).await;
    let submitted =
        ok(&call(&client, "submit_job", json!({"service": ALPHA, "input": {"msg": "x"}, "wait_seconds": 0})).await);
    let handle = client
        .send_cancellable_request(
            tool_request("get_job", json!({"job_id": submitted["job_id"], "wait_seconds": 30})),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    handle.cancel(Some("user gave up".into())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let polls_at_cancel = job_gets(&s);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(job_gets(&s), polls_at_cancel, "no polling after cancellation");

    // The job kept running and its result is still there.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let done = ok(&call(&client, "get_job", json!({"job_id": submitted["job_id"]})).await);
    assert_eq!(done["status"], "succeeded", "{done}");
}

/// Writes `<store>/services/<name>.json`.
pub(crate) fn write_service(store: &Path, name: &str, def: Value) {
    std::fs::create_dir_all(store.join("services")).unwrap();
    std::fs::write(store.join("services").join(format!("{name}.json")), def.to_string()).unwrap();
}

fn echo_schema() -> Value {
    json!({"type": "object", "required": ["message"], "properties": {
        "$schema": {"type": "string", "default": "urn:sd:schema.echo.request.1"},
        "message": {"type": "string"}}})
}

#[tokio::test]
async fn local_command_service_round_trip_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_service(&store, "echo", json!({"name": "echo", "fn_schema": echo_schema(), "command": ["cat"]}));
    let client = local(&store).await;
    let job =
        ok(&call(&client, "submit_job", json!({"service": "echo", "input": {"message": "hi"}, "wait_seconds": 10}))
            .await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"$schema": "urn:sd:schema.echo.request.1", "message": "hi"}));
    assert_eq!(job["service_id"], "urn:ivcap:service:echo");
    let id = job["job_id"].as_str().unwrap().to_string();
    let uuid = id.strip_prefix("urn:ivcap:job:").unwrap();
    assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{id}");
    assert!(store.join("jobs").join(format!("{uuid}.json")).is_file());
    client.cancel().await.unwrap();

    let again = local(&store).await;
    let read = ok(&call(&again, "get_job", json!({"job_id": id})).await);
    assert_eq!(read["status"], "succeeded");
    assert_eq!(read["result"]["message"], "hi");
    let listed = ok(&call(&again, "list_jobs", json!({"service": "echo"})).await);
    assert_eq!(listed["items"][0]["job_id"], id.as_str());
    again.cancel().await.unwrap();
}

#[tokio::test]
async fn local_failures_timeouts_and_interrupted_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let fails = ["sh", "-c", "cat >/dev/null; echo 'first line' >&2; echo 'bad message field' >&2; exit 3"];
    write_service(&store, "fails", json!({"command": fails}));
    write_service(&store, "slow", json!({"command": ["sleep", "30"], "timeout_seconds": 1}));
    write_service(&store, "sleeper", json!({"command": ["sleep", "30"]}));
    let client = local(&store).await;

    let failed = ok(&call(&client, "submit_job", json!({"service": "fails", "input": {}, "wait_seconds": 10})).await);
    assert_eq!(failed["status"], "failed", "{failed}");
    let message = failed["error_message"].as_str().unwrap();
    assert!(message.contains("exit status 3") && message.ends_with("bad message field"), "{message}");

    let started = Instant::now();
    let slow = ok(&call(&client, "submit_job", json!({"service": "slow", "input": {}, "wait_seconds": 10})).await);
    assert_eq!(slow["status"], "error", "{slow}");
    assert!(slow["error_message"].as_str().unwrap().contains("killed"), "{slow}");
    assert!(started.elapsed() < Duration::from_secs(5));

    let running = ok(&call(&client, "submit_job", json!({"service": "sleeper", "input": {}, "wait_seconds": 0})).await);
    assert!(matches!(running["status"].as_str(), Some("pending" | "executing")), "{running}");
    client.cancel().await.unwrap();

    let again = local(&store).await;
    let orphan = ok(&call(&again, "get_job", json!({"job_id": running["job_id"]})).await);
    assert_eq!(orphan["status"], "error");
    assert!(orphan["error_message"].as_str().unwrap().contains("stopped before it finished"), "{orphan}");
    again.cancel().await.unwrap();
}

#[tokio::test]
async fn local_url_service_gets_the_input_posted() {
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let recorder = seen.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let recorder = recorder.clone();
            async move {
                recorder.lock().unwrap().push(body.clone());
                axum::Json(json!({"greeting": format!("hello {}", body["name"].as_str().unwrap_or("?"))}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_service(&store, "greeter", json!({"description": "Greets", "url": url}));
    write_service(&store, "gone", json!({"url": "http://127.0.0.1:9/"}));
    let client = local(&store).await;
    let job =
        ok(&call(&client, "submit_job", json!({"service": "greeter", "input": {"name": "Ada"}, "wait_seconds": 10}))
            .await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"greeting": "hello Ada"}));
    assert_eq!(
        job["note"].as_str().unwrap_or(""),
        "the service publishes no request schema, so the input was sent unchecked"
    );
    assert_eq!(seen.lock().unwrap().clone(), vec![json!({"name": "Ada"})]);

    let gone = err(&call(&client, "submit_job", json!({"service": "gone", "input": {}, "wait_seconds": 10})).await);
    assert!(
        gone.contains("'service'") && gone.contains("not running") && gone.contains("no job was created"),
        "{gone}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn demo_store_echo_service_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("demo");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo-store/services/echo.json");
    std::fs::create_dir_all(store.join("services")).unwrap();
    std::fs::copy(demo, store.join("services/echo.json")).unwrap();
    let client = local(&store).await;
    let job =
        ok(&call(&client, "submit_job", json!({"service": "echo", "input": {"message": "hello", "times": 2}})).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"$schema": "urn:sd:schema.echo.request.1", "message": "hello", "times": 2}));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn standin_rejects_invalid_bodies_and_timeouts_as_the_platform_does() {
    let s = seeded(JobScript::echo()).await;
    let http = ivcap_mcp::http_client().build().unwrap();
    let url = format!("{}/1/services2/{}/jobs", s.base_url(), "urn%3Aivcap%3Aservice%3A1111");
    let post =
        |body: Value, timeout: &str| http.post(&url).bearer_auth(TOKEN).header("Timeout", timeout).json(&body).send();
    let missing = post(json!({"times": 1}), "0").await.unwrap();
    assert_eq!(missing.status(), 422);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["name"], "body");
    assert!(body["message"].as_str().unwrap().contains("'msg'"), "{body}");
    assert_eq!(post(json!({"msg": "x"}), "20.5").await.unwrap().status(), 400);
    let accepted = post(json!({"msg": "x"}), "0").await.unwrap();
    assert_eq!(accepted.status(), 202);
    let body: Value = accepted.json().await.unwrap();
    assert!(body["job-id"].is_string() && body["location"].is_string() && body["retry-later"].is_number(), "{body}");
    let inline = post(json!({"msg": "x"}), "5").await.unwrap();
    assert_eq!(inline.status(), 200);
    assert!(inline.headers().get("IVCAP-Job-Id").is_some());
    assert_eq!(s.jobs().len(), 2, "rejected requests create no job");
}

#[tokio::test]
async fn platform_create_errors_are_reported_not_retried() {
    let s = seeded(JobScript::echo()).await;
    s.fault(ivcap_standin::Fault::status(Some(Method::POST), "/1/services2/", 503));
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let message = err(&call(&client, "submit_job", json!({"service": "alpha", "input": {"msg": "x"}})).await);
    assert!(message.contains("503"), "{message}");
    assert_eq!(s.requests_to(Method::POST, "/1/services2/").len(), 1, "a job create is never retried");
    client.cancel().await.unwrap();
}

/// `filter`, `order_by`, `order_desc` and `at_time` on list_jobs, in both modes.
async fn jobs_are_filtered_and_ordered(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    env.add_echo_service("echo", "Echoes", Some(echo_schema()));
    let mut ids = Vec::new();
    for n in 0..3 {
        let args = json!({"service": "echo", "input": {"message": format!("m{n}")}, "wait_seconds": 20});
        let job = ok(&call(c, "submit_job", args).await);
        assert_eq!(job["status"], "succeeded", "{job}");
        ids.push(job["job_id"].as_str().unwrap().to_string());
    }
    let done =
        all_pages(c, "list_jobs", json!({"service": "echo", "filter": "status = 'succeeded'", "limit": 2})).await;
    assert_eq!(done.len(), 3);
    let failed = ok(&call(c, "list_jobs", json!({"service": "echo", "filter": "status = 'failed'"})).await);
    assert_eq!(failed["items"], json!([]));
    let asc = ok(&call(c, "list_jobs", json!({"service": "echo", "order_by": "finished-at"})).await);
    assert_eq!(texts(asc["items"].as_array().unwrap(), "job_id"), ids);
    let desc =
        ok(&call(c, "list_jobs", json!({"service": "echo", "order_by": "finished-at", "order_desc": true})).await);
    ids.reverse();
    assert_eq!(texts(desc["items"].as_array().unwrap(), "job_id"), ids);
    let one = format!("id = '{}'", ids[0]);
    let picked = ok(&call(c, "list_jobs", json!({"service": "echo", "filter": one})).await);
    assert_eq!(texts(picked["items"].as_array().unwrap(), "job_id"), [ids[0].clone()]);
    let before = ok(&call(c, "list_jobs", json!({"service": "echo", "at_time": "2020-01-01T00:00:00Z"})).await);
    assert_eq!(before["items"], json!([]));
    if let Some(s) = &env.standin {
        let sent = s.requests_to(Method::GET, "/1/services2/urn:ivcap:service:echo/jobs");
        assert!(sent.iter().any(|r| r.query_param("filter").as_deref() == Some("status = 'failed'")), "{sent:?}");
    }
    let e = err(&call(c, "list_jobs", json!({"service": "echo", "order_by": "requested-at"})).await);
    assert!(e.contains("'order_by'") && e.contains("status, started-at, finished-at"), "{e}");
}
