//! The released `ivcap-lambda` package against this server's local mode: a service written
//! with it (tests/python/lambda_service.py, two tools) is started on a free port, described
//! to the store by its URL alone, and run through the real binary with `submit_job` and
//! `get_job`: schema discovered from `GET /`, input validated before the service is called,
//! results returned, an error answer turned into a failed job, and a job that outlasts the
//! `Timeout` followed through the 204 try-later to its result, with progress sent meanwhile.
//! The protocol's edge cases without Python are in `local_url_services`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rmcp::model::{ProgressNotificationParam, ServerResult};
use rmcp::service::{PeerRequestOptions, RoleClient, RunningService};
use serde_json::{Value, json};

use crate::common::{call, err, ok, spawn_with};
use crate::jobs::{ProgressClient, tool_request, write_service};
use crate::python_sdk;

/// `python lambda_service.py --port PORT`, stopped when dropped; its log in a file.
struct LambdaService {
    child: std::process::Child,
    log: PathBuf,
    port: u16,
}

impl Drop for LambdaService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LambdaService {
    /// Starts the service on a free port and waits until `GET /` answers.
    async fn start(python: &Path, dir: &Path) -> LambdaService {
        let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let log = dir.join("lambda_service.log");
        let out = std::fs::File::create(&log).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/lambda_service.py");
        let child = std::process::Command::new(python)
            .arg(script)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--without-telemetry"])
            .env_remove("IVCAP_BASE_URL")
            .env_remove("IVCAP_URL")
            .env_remove("IVCAP_JWT")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start tests/python/lambda_service.py");
        let service = LambdaService { child, log, port };
        let http = ivcap_mcp::http_client().build().unwrap();
        let start = Instant::now();
        while http.get(service.url("")).send().await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "the ivcap-lambda service did not start:\n{}",
                service.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        service
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Access-log lines of requests to `path` with `method` (uvicorn's `"POST / HTTP/1.1"`).
    fn requests(&self, method: &str, path: &str) -> usize {
        self.log().lines().filter(|l| l.contains(&format!("\"{method} {path}"))).count()
    }
}

/// Calls `tool` with a progress token; the result and the progress messages sent for it.
async fn with_progress(
    client: &RunningService<RoleClient, ProgressClient>,
    handler: &ProgressClient,
    tool: &str,
    args: Value,
) -> (Value, Vec<ProgressNotificationParam>) {
    let handle =
        client.send_cancellable_request(tool_request(tool, args), PeerRequestOptions::no_options()).await.unwrap();
    let token = handle.progress_token.clone();
    let ServerResult::CallToolResult(result) = handle.await_response().await.unwrap() else {
        panic!("not a tool result")
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = handler.seen.lock().unwrap().iter().filter(|p| p.progress_token == token).cloned().collect();
    (ok(&result), seen)
}

#[tokio::test]
async fn an_ivcap_lambda_service_runs_through_local_mode() {
    let Some(python) = python_sdk::python_or_skip("an_ivcap_lambda_service_runs_through_local_mode") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let service = LambdaService::start(&python, dir.path()).await;
    let store = dir.path().join("store");
    write_service(&store, "greeter", json!({"url": service.url("")}));
    write_service(&store, "counter", json!({"url": service.url("slow")}));
    let handler = ProgressClient::default();
    let client = spawn_with(&["--local", store.to_str().unwrap()], &[], dir.path(), handler.clone(), None).await;

    // Discovered: names, descriptions and request schemas from GET /.
    let listed = ok(&call(&client, "list_services", json!({})).await);
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["count_slowly", "greet"], "{listed}");
    let greet = ok(&call(&client, "get_service", json!({"service": "greet"})).await);
    assert_eq!(greet["id"], "urn:ivcap:service:greeter");
    assert!(greet["description"].as_str().unwrap().starts_with("Greets someone, at once."), "{greet}");
    let schema = &greet["request_schema"];
    assert_eq!(schema["required"], json!(["name"]), "{schema}");
    assert_eq!(schema["properties"]["times"]["maximum"], 5);

    // Validated: a bad input never reaches the service.
    let refused =
        err(&call(&client, "submit_job", json!({"service": "greet", "input": {"name": 3, "times": 9}})).await);
    assert!(refused.contains("2 problems") && refused.contains("/name") && refused.contains("/times"), "{refused}");
    assert_eq!(ok(&call(&client, "list_jobs", json!({"service": "greet"})).await)["items"], json!([]));
    assert_eq!(service.requests("POST", "/ "), 0, "nothing was posted:\n{}", service.log());

    // Run: the result, with the request's `$schema` default filled in on the way.
    let job = ok(&call(
        &client,
        "submit_job",
        json!({"service": "greet", "input": {"name": "Ada", "times": 2}, "wait_seconds": 20}),
    )
    .await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], json!({"$schema": "urn:sd:schema.greet.1", "greeting": "hello Ada hello Ada"}));
    assert_eq!(job["result_content_type"], "application/json");

    // The tool's ValueError: a 400 from ivcap-lambda, a failed job with its message.
    let failed =
        ok(&call(&client, "submit_job", json!({"service": "greet", "input": {"name": "error"}, "wait_seconds": 20}))
            .await);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["error_message"].as_str().unwrap().ends_with("cannot greet 'error'"), "{failed}");

    // Longer than the Timeout: 204 try-later, then the result from the Location.
    let (submitted, submit_progress) = with_progress(
        &client,
        &handler,
        "submit_job",
        json!({"service": "count_slowly", "input": {"seconds": 4}, "wait_seconds": 1}),
    )
    .await;
    assert_eq!(submitted["status"], "executing", "{submitted}");
    assert!(!submit_progress.is_empty(), "progress while submitting");
    let (done, progress) =
        with_progress(&client, &handler, "get_job", json!({"job_id": submitted["job_id"], "wait_seconds": 30})).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"], json!({"$schema": "urn:sd:schema.count-slowly.1", "counted": 4}));
    let messages: Vec<String> = progress.iter().filter_map(|p| p.message.clone()).collect();
    assert!(messages.first().is_some_and(|m| m.ends_with("is executing")), "{messages:?}");
    assert!(messages.last().is_some_and(|m| m.ends_with("is succeeded")), "{messages:?}");
    let uuid = submitted["job_id"].as_str().unwrap().trim_start_matches("urn:ivcap:job:");
    assert!(
        service.requests("GET", &format!("/slow/jobs/{uuid}")) >= 1,
        "the try-later Location was polled:\n{}",
        service.log()
    );
    client.cancel().await.unwrap();

    // The discovered schema is a service tool's input schema, and calling the tool runs a job.
    let args = ["--local", store.to_str().unwrap(), "--service-tools", "greet"];
    let client = spawn_with(&args, &[], dir.path(), ProgressClient::default(), None).await;
    let tools = crate::service_tools::service_tools_when(&client, |names| names == ["svc_greet"]).await;
    assert_eq!(tools[0].input_schema.get("required"), Some(&json!(["name"])), "{:?}", tools[0].input_schema);
    let greeted = ok(&call(&client, "svc_greet", json!({"name": "Bo"})).await);
    assert_eq!(greeted["result"]["greeting"], "hello Bo", "{greeted}");
    client.cancel().await.unwrap();
}
