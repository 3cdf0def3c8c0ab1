//! Local `url` services over the real binary, against an in-process service that speaks the
//! ivcap-lambda HTTP contract (docs/ivcap-wire.md, "A service on a developer's machine"):
//! `GET /` tool definition, `POST /` honouring `Timeout` and `job-id`, `204` try-later with
//! `Location` and `Retry-Later`, `GET /jobs/<id>`, `400`/`500` error bodies. The edge cases
//! live here so they need no Python: discovery, the try-later path, error statuses, a service
//! that is down, one that restarts with a new definition, and `--local-service`.
//! `lambda_interop` runs the same paths against the real package.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::common::{call, err, local, ok, spawn};
use crate::jobs::write_service;

/// What the service saw and does.
#[derive(Default)]
struct Seen {
    /// `(Timeout, job-id, body)` of each POST.
    posts: Vec<(Option<String>, Option<String>, Value)>,
    /// When each `GET /jobs/<id>` came.
    polls: Vec<Instant>,
    /// When each POST was answered 204 try-later.
    deferred: Vec<Instant>,
    /// Jobs answered try-later: when their result is ready, and the answer.
    jobs: HashMap<String, (Instant, Response)>,
}

#[derive(Clone)]
struct Lambda {
    definition: Value,
    seen: Arc<Mutex<Seen>>,
}

/// A running ivcap-lambda-like service; dropping it stops it.
struct Service {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// The tool definition `GET /` answers, with this description.
fn definition(description: &str) -> Value {
    json!({
        "$schema": "urn:sd-core:schema.ai-tool.1", "id": "urn:sd-core:ai-tool.echo_tool", "name": "echo_tool",
        "service-id": "#SERVICE_ID#", "description": description, "fn_signature": "echo_tool(msg: str, ...)",
        "fn_schema": {
            "title": "Request", "type": "object", "required": ["msg"],
            "properties": {
                "msg": {"type": "string"},
                "sleep_ms": {"type": "integer", "default": 0},
                "fail": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": null}
            }
        }
    })
}

impl Service {
    /// Starts on `port` (0 = a free one).
    async fn start(port: u16, description: &str) -> Service {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let state = Lambda { definition: definition(description), seen: seen.clone() };
        let app = axum::Router::new()
            .route("/", axum::routing::get(tool_definition).post(run))
            .route("/jobs/{id}", axum::routing::get(job))
            .with_state(state)
            // No kept-alive connections, so a stopped service is gone at once.
            .layer(axum::middleware::map_response(|mut r: Response| async move {
                r.headers_mut().insert("connection", "close".parse().unwrap());
                r
            }));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Service { addr, seen, task: Some(task) }
    }

    /// Stops it and waits until its listener is closed.
    async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn posts(&self) -> Vec<(Option<String>, Option<String>, Value)> {
        self.seen.lock().unwrap().posts.clone()
    }
}

async fn tool_definition(State(s): State<Lambda>) -> axum::Json<Value> {
    axum::Json(s.definition)
}

/// The answer to a finished job: the echo, or the error ivcap-lambda gives for `fail`.
fn answer(body: &Value, job_id: &str) -> Response {
    let headers = [("job-id", format!("urn:ivcap:job:{job_id}"))];
    match body["fail"].as_str() {
        Some("value") => {
            (StatusCode::BAD_REQUEST, headers, axum::Json(json!({"message": "msg must not be 'bad'", "code": 400})))
                .into_response()
        }
        Some(other) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            headers,
            axum::Json(
                json!({"$schema": "urn:ivcap:schema.ai-tool.error.1", "message": other, "traceback": "Traceback …"}),
            ),
        )
            .into_response(),
        None => (headers, axum::Json(json!({"echo": body["msg"]}))).into_response(),
    }
}

async fn run(State(s): State<Lambda>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (timeout, job_id) = (header("timeout"), header("job-id"));
    s.seen.lock().unwrap().posts.push((timeout.clone(), job_id.clone(), body.clone()));
    let id = job_id.unwrap_or_default().trim_start_matches("urn:ivcap:job:").to_string();
    let hold = Duration::from_secs(timeout.and_then(|t| t.parse().ok()).unwrap_or(5));
    let takes = Duration::from_millis(body["sleep_ms"].as_u64().unwrap_or(0));
    if takes <= hold {
        tokio::time::sleep(takes).await;
        return answer(&body, &id);
    }
    tokio::time::sleep(hold).await;
    let ready = Instant::now() + (takes - hold);
    let mut seen = s.seen.lock().unwrap();
    seen.jobs.insert(id.clone(), (ready, answer(&body, &id)));
    seen.deferred.push(Instant::now());
    try_later(&id)
}

fn try_later(id: &str) -> Response {
    (
        StatusCode::NO_CONTENT,
        [("Location", format!("/jobs/{id}")), ("Retry-Later", "1".into()), ("Ivcap-Self-Report-Result", "true".into())],
    )
        .into_response()
}

async fn job(State(s): State<Lambda>, Path(id): Path<String>) -> Response {
    let mut seen = s.seen.lock().unwrap();
    seen.polls.push(Instant::now());
    match seen.jobs.get(&id) {
        None => (StatusCode::NOT_FOUND, format!("job {id} can't be found.")).into_response(),
        Some((ready, _)) if Instant::now() < *ready => try_later(&id),
        Some(_) => seen.jobs.remove(&id).map(|(_, r)| r).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response()),
    }
}

/// A port nothing listens on.
async fn free_port() -> u16 {
    tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port()
}

/// Calls `get_service` until `ready` holds for its answer (discovery is cached briefly).
async fn service_when(client: &crate::common::Client, service: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let svc = ok(&call(client, "get_service", json!({"service": service})).await);
        if ready(&svc) {
            return svc;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "never ready: {svc}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_url_alone_is_enough_the_schema_is_discovered_and_jobs_follow_try_later() {
    let service = Service::start(0, "Echoes its message").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_service(&store, "echo", json!({"url": service.url()}));
    let client = local(&store).await;

    let listed = ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(
        listed["items"],
        json!([{"id": "urn:ivcap:service:echo", "name": "echo_tool", "description": "Echoes its message"}])
    );
    let svc = ok(&call(&client, "get_service", json!({"service": "echo_tool"})).await);
    assert_eq!(svc["status"], "active");
    assert_eq!(svc["request_schema"]["required"], json!(["msg"]), "{svc}");
    assert!(svc.get("note").is_none(), "{svc}");

    let refused = err(&call(&client, "submit_job", json!({"service": "echo_tool", "input": {"msg": 7}})).await);
    assert!(refused.contains("/msg: expected a string, got the integer 7"), "{refused}");
    assert!(service.posts().is_empty(), "a bad input never reaches the service");

    let quick = ok(&call(
        &client,
        "submit_job",
        json!({"service": "urn:ivcap:service:echo", "input": {"msg": "hi"}, "wait_seconds": 20}),
    )
    .await);
    assert_eq!((&quick["status"], &quick["result"]), (&json!("succeeded"), &json!({"echo": "hi"})), "{quick}");
    let (timeout, job_id, body) = service.posts()[0].clone();
    assert_eq!(timeout.as_deref(), Some("20"), "the caller's wait is the Timeout");
    assert_eq!(job_id.as_deref(), quick["job_id"].as_str(), "the job URN is the job-id");
    assert_eq!(body, json!({"msg": "hi"}));

    let slow = ok(&call(
        &client,
        "submit_job",
        json!({"service": "echo_tool", "input": {"msg": "later", "sleep_ms": 3500}, "wait_seconds": 1}),
    )
    .await);
    assert_eq!(slow["status"], "executing", "{slow}");
    assert!(slow["note"].as_str().unwrap().contains("still running"), "{slow}");
    assert_eq!(service.posts()[1].0.as_deref(), Some("1"));
    let done = ok(&call(&client, "get_job", json!({"job_id": slow["job_id"], "wait_seconds": 20})).await);
    assert_eq!((&done["status"], &done["result"]), (&json!("succeeded"), &json!({"echo": "later"})), "{done}");
    let (polls, deferred) = {
        let seen = service.seen.lock().unwrap();
        (seen.polls.clone(), seen.deferred.clone())
    };
    assert!(polls.len() >= 2, "polled the Location until ready: {polls:?}");
    assert!(polls[0] - deferred[0] >= Duration::from_millis(950), "Retry-Later (1 s) is the first delay");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn an_error_status_fails_the_job_with_the_services_message() {
    let service = Service::start(0, "Echoes").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_service(&store, "echo", json!({"url": service.url(), "description": "From the file"}));
    let client = local(&store).await;
    let svc = ok(&call(&client, "get_service", json!({"service": "echo_tool"})).await);
    assert_eq!(svc["description"], "From the file", "the file wins over GET /");

    let bad = ok(&call(
        &client,
        "submit_job",
        json!({"service": "echo_tool", "input": {"msg": "bad", "fail": "value"}, "wait_seconds": 10}),
    )
    .await);
    assert_eq!(bad["status"], "failed", "{bad}");
    let message = bad["error_message"].as_str().unwrap();
    assert!(message.contains("400") && message.ends_with("msg must not be 'bad'"), "{message}");

    let later = ok(&call(
        &client,
        "submit_job",
        json!({"service": "echo_tool", "input": {"msg": "x", "fail": "division by zero", "sleep_ms": 1500}, "wait_seconds": 1}),
    )
    .await);
    let failed = ok(&call(&client, "get_job", json!({"job_id": later["job_id"], "wait_seconds": 20})).await);
    assert_eq!(failed["status"], "failed", "{failed}");
    let message = failed["error_message"].as_str().unwrap();
    assert!(message.contains("500") && message.ends_with("division by zero"), "after try-later too: {message}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_service_that_is_down_says_how_to_start_and_a_restart_is_re_read() {
    let port = free_port().await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_service(&store, "echo", json!({"url": format!("http://127.0.0.1:{port}/")}));
    let client = local(&store).await;

    let listed = ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(listed["items"][0]["name"], "echo", "the file stem until it runs");
    assert!(listed["items"][0]["note"].as_str().unwrap().contains("not running"), "{listed}");
    let down = ok(&call(&client, "get_service", json!({"service": "echo"})).await);
    assert_eq!(down["status"], "inactive");
    let note = down["note"].as_str().unwrap();
    assert!(note.contains("not running") && note.contains(&format!("--port {port}")), "{note}");
    assert!(note.contains("services/echo.json"), "{note}");
    let refused = err(&call(&client, "submit_job", json!({"service": "echo", "input": {"msg": "x"}})).await);
    assert!(refused.contains("not running") && refused.contains("no job was created"), "{refused}");

    let first = Service::start(port, "First version").await;
    let svc = service_when(&client, "urn:ivcap:service:echo", |s| s["status"] == "active").await;
    assert_eq!(svc["description"], "First version");
    let running = ok(&call(
        &client,
        "submit_job",
        json!({"service": "echo_tool", "input": {"msg": "x", "sleep_ms": 5000}, "wait_seconds": 1}),
    )
    .await);
    assert_eq!(running["status"], "executing", "{running}");

    first.stop().await;
    let _second = Service::start(port, "Second version").await;
    service_when(&client, "urn:ivcap:service:echo", |s| s["description"] == "Second version").await;
    let lost = ok(&call(&client, "get_job", json!({"job_id": running["job_id"], "wait_seconds": 20})).await);
    assert_eq!(lost["status"], "error", "{lost}");
    assert!(lost["error_message"].as_str().unwrap().contains("no longer knows this job"), "{lost}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn local_service_flag_adds_a_service_without_a_file() {
    let service = Service::start(0, "Echoes").await;
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    write_service(&store, "mine", json!({"description": "From a file", "command": ["cat"]}));
    let flag = format!("mine={}", service.url());
    let client = spawn(&["--local", store.to_str().unwrap(), "--local-service", &flag], &[], dir.path()).await;
    let listed = ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(
        listed["items"],
        json!([{"id": "urn:ivcap:service:mine", "name": "mine", "description": "Echoes"}]),
        "the flag is used instead of the file of that name"
    );
    let job =
        ok(&call(&client, "submit_job", json!({"service": "mine", "input": {"msg": "hi"}, "wait_seconds": 10})).await);
    assert_eq!(job["result"], json!({"echo": "hi"}), "{job}");
    client.cancel().await.unwrap();

    let both = format!("one={url},two={url}", url = service.url());
    let client = spawn(&["--local", store.to_str().unwrap()], &[("IVCAP_MCP_LOCAL_SERVICES", &both)], dir.path()).await;
    let listed = ok(&call(&client, "list_services", json!({})).await);
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["mine", "one", "two"], "the variable takes a comma-separated list");
    client.cancel().await.unwrap();

    let out =
        crate::common::command(&["--local", "x", "--local-service", "mine"], &[], dir.path()).output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--local-service 'mine' has no '='") && stderr.contains("NAME=URL"), "{stderr}");
}
