//! MCP tasks for jobs: the `io.modelcontextprotocol/tasks` extension as rmcp 3.11 implements
//! it, in both protocol eras (declared at `initialize`, or per request in `_meta`).
//!
//! A task *is* an IVCAP job: `submit_job` or a service tool called by a client that declared
//! the extension creates the job without waiting and answers with a task whose `taskId` is
//! the job URN. `tasks/get` reads the job from the backend every time, so nothing lives in
//! this process: a task survives a restart and is readable from any `--stateless` replica.

use chrono::Utc;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    CallToolResponse, CallToolResult, ContentBlock, CreateTaskResult, DetailedTask, ErrorCode, JsonObject, Task,
    TaskPayload, TaskStatus,
};
use serde_json::{Value, json};

use super::protocol_error::{Request, protocol_error};
use crate::backend::jobs::{self, Wait};
use crate::backend::{Job, JobStatus};
use crate::time::format as rfc3339;
use crate::tools::{ToolContext, as_object, to_tool_error};

/// IVCAP's job status as a task status: anything not finished is `working`. A job that
/// failed is a tool that ran and reported an error, so its task is `completed` with an
/// `isError` result: SEP-2663 keeps `failed` for protocol errors, and a job read that
/// breaks is answered as a `tasks/get` error instead.
fn task_status(status: &JobStatus) -> TaskStatus {
    if status.is_terminal() { TaskStatus::Completed } else { TaskStatus::Working }
}

/// Creates the job without waiting and answers with its task; input the service rejects
/// is an ordinary `isError` result and no job is created.
pub(super) async fn start_job_task(cx: &ToolContext, service: &str, input: Value) -> CallToolResponse {
    match jobs::submit_job(&*cx.backend, service, input, &Wait::none()).await {
        Ok(waited) => CallToolResponse::Task(CreateTaskResult::new(task_of(cx, &waited.job))),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(to_tool_error(e))]).into(),
    }
}

/// The task's base fields for `job`; `pollInterval` is the wait strategy's next delay
/// for a job this old (`retry-later` first, then a short growing backoff).
fn task_of(cx: &ToolContext, job: &Job) -> Task {
    let now = Utc::now();
    let created = job.requested_at.unwrap_or(now);
    let updated = job.finished_at.or(job.started_at).unwrap_or(created);
    let status = task_status(&job.status);
    let message = match &job.status {
        JobStatus::Succeeded => "IVCAP job status: succeeded".to_string(),
        done if done.is_terminal() => job.error_message.clone().unwrap_or_else(|| format!("the job {}", done.as_str())),
        running => format!("IVCAP job status: {}", running.as_str()),
    };
    let mut task = Task::new(job.id.clone(), status, rfc3339(created), rfc3339(updated)).with_status_message(message);
    if !status.is_terminal() {
        let age = (now - created).to_std().unwrap_or_default();
        let delay = jobs::poll_delay_at_age(age, cx.backend.poll_hint(&job.id));
        task = task.with_poll_interval_ms(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
    }
    task
}

/// `tasks/get`: the job read now; when it has finished, the result `submit_job` gives,
/// marked `isError` when the job did not succeed.
pub(super) async fn job_task(cx: &ToolContext, task_id: &str) -> Result<DetailedTask, McpError> {
    let waited = jobs::job_now(&*cx.backend, task_id).await.map_err(|e| protocol_error(Request::Task(task_id), e))?;
    let task = task_of(cx, &waited.job);
    let payload = match task.status {
        TaskStatus::Completed => {
            let succeeded = waited.job.status == JobStatus::Succeeded;
            let mut result = tool_result(cx, waited);
            if !succeeded {
                result.insert("isError".into(), Value::Bool(true));
            }
            TaskPayload::Completed { result }
        }
        _ => TaskPayload::Working,
    };
    Ok(DetailedTask::new(task, payload))
}

/// `tasks/cancel`: an empty ack for a finished task (cancelling is idempotent, SEP-2663);
/// a running one is refused, saying why: IVCAP 0.44 cannot stop a job.
pub(super) async fn cancel_job_task(cx: &ToolContext, task_id: &str) -> Result<(), McpError> {
    let job = jobs::job_now(&*cx.backend, task_id).await.map_err(|e| protocol_error(Request::Task(task_id), e))?.job;
    if job.status.is_terminal() {
        return Ok(());
    }
    Err(McpError::new(
        ErrorCode::INVALID_REQUEST,
        format!(
            "task {} cannot be cancelled: IVCAP has no job-cancel endpoint, so the job keeps running on the \
                 platform (status {}); its result stays available through tasks/get or get_job",
            job.id,
            job.status.as_str()
        ),
        Some(json!({"taskId": job.id, "status": "working"})),
    ))
}

/// `tasks/update`: these tasks never ask for input.
pub(super) fn no_input(task_id: &str) -> McpError {
    McpError::invalid_params(format!("task {task_id} never asks for input; poll it with tasks/get"), None)
}

/// The `tools/call` result the job's view makes, as a JSON object.
fn tool_result(cx: &ToolContext, waited: jobs::Waited) -> JsonObject {
    let result = cx.job_result(waited, None).unwrap_or_else(|e| CallToolResult::error(vec![ContentBlock::text(e)]));
    as_object(serde_json::to_value(result).unwrap_or(Value::Null))
}
