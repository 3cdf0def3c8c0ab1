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
use tokio_util::sync::CancellationToken;

use super::to_tool_error;
use crate::backend::jobs::{self, Wait, Waited};
use crate::backend::progress::NoProgress;
use crate::backend::{Job, JobStatus};
use crate::error::Error;
use crate::server::{IvcapMcp, as_object};
use crate::time::format as rfc3339;

/// IVCAP's job status as a task status: anything not finished is `working`. A job that
/// failed is a tool that ran and reported an error, so its task is `completed` with an
/// `isError` result: SEP-2663 keeps `failed` for protocol errors, and a job read that
/// breaks is answered as a `tasks/get` error instead.
fn task_status(status: &JobStatus) -> TaskStatus {
    if status.is_terminal() { TaskStatus::Completed } else { TaskStatus::Working }
}

/// A read of a job that does not wait.
fn no_wait() -> Wait<'static> {
    Wait { budget: std::time::Duration::ZERO, cancel: CancellationToken::new(), progress: &NoProgress }
}

/// A backend failure as a `tasks/*` error: a bad or unknown id is the caller's (`-32602`).
fn task_error(task_id: &str, e: Error) -> McpError {
    match e {
        Error::InvalidArgument { .. } | Error::NotFound { .. } => McpError::invalid_params(
            format!(
                "unknown task '{task_id}': no IVCAP job with this URN can be read; a taskId is the job URN \
                 (urn:ivcap:job:…) a tools/call answered with"
            ),
            None,
        ),
        other => McpError::internal_error(other.for_model(), None),
    }
}

impl IvcapMcp {
    /// Creates the job without waiting and answers with its task; input the service rejects
    /// is an ordinary `isError` result and no job is created.
    pub(crate) async fn start_job_task(&self, service: &str, input: Value) -> CallToolResponse {
        match jobs::submit_job(&*self.backend, service, input, &no_wait()).await {
            Ok(waited) => CallToolResponse::Task(CreateTaskResult::new(self.task_of(&waited.job))),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(to_tool_error(e))]).into(),
        }
    }

    /// The task's base fields for `job`; `pollInterval` is the wait strategy's next delay
    /// for a job this old (`retry-later` first, then a short growing backoff).
    fn task_of(&self, job: &Job) -> Task {
        let now = Utc::now();
        let created = job.requested_at.unwrap_or(now);
        let updated = job.finished_at.or(job.started_at).unwrap_or(created);
        let status = task_status(&job.status);
        let message = match &job.status {
            JobStatus::Succeeded => "IVCAP job status: succeeded".to_string(),
            done if done.is_terminal() => {
                job.error_message.clone().unwrap_or_else(|| format!("the job {}", done.as_str()))
            }
            running => format!("IVCAP job status: {}", running.as_str()),
        };
        let mut task =
            Task::new(job.id.clone(), status, rfc3339(created), rfc3339(updated)).with_status_message(message);
        if !status.is_terminal() {
            let age = (now - created).to_std().unwrap_or_default();
            let delay = jobs::poll_delay_at_age(age, self.backend.poll_hint(&job.id));
            task = task.with_poll_interval_ms(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        }
        task
    }

    /// `tasks/get`: the job read now; when it has finished, the result `submit_job` gives,
    /// marked `isError` when the job did not succeed.
    pub(crate) async fn job_task(&self, task_id: &str) -> Result<DetailedTask, McpError> {
        let waited =
            jobs::get_job(&*self.backend, task_id, None, &no_wait()).await.map_err(|e| task_error(task_id, e))?;
        let task = self.task_of(&waited.job);
        let payload = match task.status {
            TaskStatus::Completed => {
                let succeeded = waited.job.status == JobStatus::Succeeded;
                let mut result = self.tool_result(waited);
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
    pub(crate) async fn cancel_job_task(&self, task_id: &str) -> Result<(), McpError> {
        let waited =
            jobs::get_job(&*self.backend, task_id, None, &no_wait()).await.map_err(|e| task_error(task_id, e))?;
        let job = waited.job;
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

    /// The `tools/call` result the job's view makes, as a JSON object.
    fn tool_result(&self, waited: Waited) -> JsonObject {
        let result =
            self.job_result(waited, None).unwrap_or_else(|e| CallToolResult::error(vec![ContentBlock::text(e)]));
        as_object(serde_json::to_value(result).unwrap_or(Value::Null))
    }
}
