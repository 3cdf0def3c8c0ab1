//! MCP tasks for jobs over the real binary, in both protocol eras: a task-capable client's
//! `submit_job` or service-tool call answers at once with a task whose id is the job URN;
//! `tasks/get` reads the job each time (working → completed with the `submit_job` result, an
//! `isError` one for a failed job), also after a restart and from a second `--stateless`
//! process; `tasks/cancel` is refused saying the job keeps running, and acknowledged once
//! the job has finished.

use std::time::{Duration, Instant};

use ivcap_standin::JobScript;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CancelTaskParams, DetailedTask, GetTaskParams, TaskPayload, TaskStatus,
};
use rmcp::service::RunningService;
use rmcp::{ClientHandler, RoleClient};
use serde_json::{Value, json};

use crate::common::discover;
use crate::http::Server;
use crate::service_tools::{Watcher, platform_with, seeded, service_tools_when};

const ALPHA: &str = "urn:ivcap:service:1111";

async fn call_once<C: ClientHandler>(
    client: &RunningService<RoleClient, C>,
    tool: &str,
    args: Value,
) -> CallToolResponse {
    let Value::Object(map) = args else { panic!("arguments must be an object") };
    client.peer().call_tool_once(CallToolRequestParams::new(tool.to_string()).with_arguments(map)).await.unwrap()
}

/// The task a call answered with.
fn task_id(response: CallToolResponse) -> (String, Option<u64>) {
    let CallToolResponse::Task(created) = response else { panic!("expected a task, got {response:?}") };
    assert_eq!(created.task.status, TaskStatus::Working);
    (created.task.task_id, created.task.poll_interval_ms)
}

async fn get<C: ClientHandler>(client: &RunningService<RoleClient, C>, id: &str) -> DetailedTask {
    client.peer().get_task(GetTaskParams::new(id)).await.expect("tasks/get").task
}

/// Polls `tasks/get` until the task is finished.
async fn finished<C: ClientHandler>(client: &RunningService<RoleClient, C>, id: &str) -> DetailedTask {
    let start = Instant::now();
    loop {
        let task = get(client, id).await;
        if task.status().is_terminal() {
            return task;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "task {id} still {:?}", task.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn completed_view(task: &DetailedTask) -> Value {
    let TaskPayload::Completed { result } = &task.payload else { panic!("expected completed, got {task:?}") };
    result["structuredContent"].clone()
}

#[tokio::test]
async fn tasks_go_from_working_to_completed_in_both_eras() {
    let s = seeded().await;
    s.script_jobs(ALPHA, JobScript { run_for: Duration::from_millis(1_500), ..JobScript::echo() });
    for era in [None, Some(discover())] {
        let dir = tempfile::tempdir().unwrap();
        let client = platform_with(&s, &["--service-tools", "alpha"], dir.path(), Watcher::with_tasks(), era).await;
        service_tools_when(&client, |n| n == ["svc_alpha"]).await;
        for (tool, args) in [
            ("submit_job", json!({"service": "alpha", "input": {"msg": "via submit_job"}})),
            ("svc_alpha", json!({"msg": "via the service tool"})),
        ] {
            let before = s.jobs().len();
            let started = Instant::now();
            let (id, poll) = task_id(call_once(&client, tool, args.clone()).await);
            assert!(started.elapsed() < Duration::from_millis(1_500), "answered without waiting for the job");
            assert!(id.starts_with("urn:ivcap:job:"), "{id}");
            assert_eq!(s.jobs().last().unwrap().id, id, "the task id is the job URN");
            assert_eq!(s.jobs().len(), before + 1);
            assert!(poll.is_some_and(|ms| ms >= 500), "{poll:?}");

            let working = get(&client, &id).await;
            assert_eq!(working.status(), TaskStatus::Working);
            let message = working.task.status_message.clone().unwrap_or_default();
            assert!(message.contains("IVCAP job status"), "{message}");

            let done = finished(&client, &id).await;
            let view = completed_view(&done);
            assert_eq!(view["status"], "succeeded", "{view}");
            assert_eq!(view["job_id"], id);
            assert!(view["result"]["msg"].as_str().unwrap().starts_with("via "), "{view}");
        }
        // Input the schema rejects is a plain tool error, and no job or task is made.
        let before = s.jobs().len();
        let CallToolResponse::Complete(rejected) = call_once(&client, "svc_alpha", json!({})).await else {
            panic!("invalid input must not become a task");
        };
        assert_eq!(rejected.is_error, Some(true));
        assert_eq!(s.jobs().len(), before);
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn a_failed_job_is_a_completed_task_with_an_error_result() {
    let s = seeded().await;
    s.script_jobs(ALPHA, JobScript::fail("the model ran out of memory"));
    let dir = tempfile::tempdir().unwrap();
    let client = platform_with(&s, &[], dir.path(), Watcher::with_tasks(), None).await;
    let (id, _) = task_id(call_once(&client, "submit_job", json!({"service": ALPHA, "input": {"msg": "x"}})).await);
    let task = finished(&client, &id).await;
    // SEP-2663: `failed` is for protocol errors; a tool that ran and reported one is completed.
    assert_eq!(task.status(), TaskStatus::Completed);
    let TaskPayload::Completed { result } = &task.payload else { panic!("{task:?}") };
    assert_eq!(result["isError"], true, "{result:?}");
    assert_eq!(result["structuredContent"]["status"], "failed", "{result:?}");
    let error = result["structuredContent"]["error_message"].as_str().unwrap_or_default();
    assert!(error.contains("the model ran out of memory"), "{result:?}");
    assert_eq!(task.task.status_message.as_deref(), Some("the model ran out of memory"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn submit_job_with_wait_seconds_answers_inline_even_for_task_clients() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform_with(&s, &[], dir.path(), Watcher::with_tasks(), None).await;
    let response =
        call_once(&client, "submit_job", json!({"service": ALPHA, "input": {"msg": "inline"}, "wait_seconds": 30}))
            .await;
    let CallToolResponse::Complete(result) = response else { panic!("expected an inline result, got {response:?}") };
    assert_eq!(result.is_error, Some(false), "{result:?}");
    assert_eq!(result.structured_content.as_ref().unwrap()["status"], "succeeded", "{result:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_task_outlives_the_server_that_made_it() {
    let s = seeded().await;
    s.script_jobs(ALPHA, JobScript { run_for: Duration::from_millis(1_000), ..JobScript::echo() });
    let dir = tempfile::tempdir().unwrap();
    let first = platform_with(&s, &[], dir.path(), Watcher::with_tasks(), None).await;
    let (id, _) = task_id(call_once(&first, "submit_job", json!({"service": "alpha", "input": {"msg": "kept"}})).await);
    first.cancel().await.unwrap();

    let second = platform_with(&s, &[], dir.path(), Watcher::with_tasks(), Some(discover())).await;
    let view = completed_view(&finished(&second, &id).await);
    assert_eq!(view["result"]["msg"], "kept");
    assert_eq!(view["service_id"], ALPHA, "the service is found from the job's own record");
    second.cancel().await.unwrap();
}

#[tokio::test]
async fn a_task_made_on_one_stateless_replica_is_read_on_another() {
    let s = seeded().await;
    s.script_jobs(ALPHA, JobScript { run_for: Duration::from_millis(1_000), ..JobScript::echo() });
    let a = Server::platform(&s, &["--stateless"], &[]).await;
    let b = Server::platform(&s, &["--stateless"], &[]).await;
    let on_a = a.discover_client(Watcher::with_tasks()).await;
    let (id, _) =
        task_id(call_once(&on_a, "submit_job", json!({"service": "alpha", "input": {"msg": "replicated"}})).await);
    let on_b = b.discover_client(Watcher::with_tasks()).await;
    let first = get(&on_b, &id).await;
    assert_eq!(first.task.task_id, id);
    let view = completed_view(&finished(&on_b, &id).await);
    assert_eq!(view["result"]["msg"], "replicated");
    on_a.cancel().await.unwrap();
    on_b.cancel().await.unwrap();
}

#[tokio::test]
async fn cancel_is_refused_while_the_job_runs_and_acknowledged_once_it_has_finished() {
    let s = seeded().await;
    s.script_jobs(ALPHA, JobScript { run_for: Duration::from_millis(1_500), ..JobScript::echo() });
    let dir = tempfile::tempdir().unwrap();
    let client = platform_with(&s, &[], dir.path(), Watcher::with_tasks(), Some(discover())).await;
    let (id, _) = task_id(call_once(&client, "submit_job", json!({"service": "alpha", "input": {"msg": "x"}})).await);
    let refused = client.peer().cancel_task(CancelTaskParams::new(&id)).await.unwrap_err().to_string();
    assert!(refused.contains("keeps running"), "{refused}");
    assert_eq!(get(&client, &id).await.status(), TaskStatus::Working, "the job was not stopped");

    finished(&client, &id).await;
    // Idempotent on a finished task: the empty ack, twice (SEP-2663).
    for _ in 0..2 {
        client.peer().cancel_task(CancelTaskParams::new(&id)).await.unwrap();
    }
    assert_eq!(get(&client, &id).await.status(), TaskStatus::Completed);
    let unknown = client.peer().cancel_task(CancelTaskParams::new("urn:ivcap:job:nope")).await.unwrap_err().to_string();
    assert!(unknown.contains("unknown task") && unknown.contains("-32602"), "{unknown}");

    let unknown = client.peer().get_task(GetTaskParams::new("urn:ivcap:job:nope")).await.unwrap_err().to_string();
    assert!(unknown.contains("unknown task"), "{unknown}");
    client.cancel().await.unwrap();
}
