//! The jobs toolset: `submit_job`, `get_job`, `list_jobs`. Waiting, progress and
//! cancellation live in `backend::jobs`; this module turns MCP's progress token and peer into
//! an [`McpProgress`](super::McpProgress) and shapes the answer within the output budget.

use std::time::Duration;

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock, RequestMetaObject};
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::ToolContext;
use super::args::{list_args, list_options, page_request};
use super::budget::{self, Cut, LARGER_BUDGET, Shrink};
use super::{ListView, McpProgress, linked, to_tool_error};
use crate::backend::JobSummary;
use crate::backend::jobs::{self, Wait, WaitEnd, Waited};
use crate::backend::listing::JOB_FIELDS;
use crate::time::format as rfc3339;

/// Longest `wait_seconds` accepted (the server's `--max-wait` caps it further).
const MAX_WAIT_ARG: u32 = 3600;
/// How long `submit_job` waits when `wait_seconds` is not given (capped by `--max-wait`).
const SUBMIT_DEFAULT_WAIT: u32 = 30;
/// Product artifacts linked from one job result at most.
const MAX_PRODUCT_LINKS: usize = 20;

/// Arguments of `submit_job`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJobArgs {
    /// Service URN or exact name.
    pub service: String,
    /// JSON object matching the request_schema; a "$schema" default is filled in.
    #[schemars(with = "Map<String, Value>")]
    pub input: Value,
    /// Default 30, 0 = at once; capped by the server (default 50 s).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub wait_seconds: Option<u32>,
}

/// Arguments of `get_job`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetJobArgs {
    /// Job URN, from submit_job or list_jobs.
    pub job: String,
    /// Its service URN; rarely needed.
    #[serde(default)]
    pub service: Option<String>,
    /// 0 to 3600 (default 0); capped by the server (default 50 s).
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub wait_seconds: Option<u32>,
}

list_args! {
    /// Arguments of `list_jobs`.
    pub struct ListJobsArgs {
        /// Service URN or exact name.
        pub service: String,
    }
    filter = "e.g. status = 'failed'"
}

/// A job's status and, when finished, its result or error.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobView {
    /// Job URN; pass it to get_job.
    pub job_id: String,
    /// URN of the service the job runs on.
    pub service_id: String,
    /// pending, scheduled, executing, succeeded, failed, error or unknown.
    pub status: String,
    /// The result when succeeded: JSON, or text for other content types.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    /// Media type of the result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_content_type: Option<String>,
    /// Why the job failed (status failed or error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// When the job was requested (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// When it started executing (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it finished (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// What to do next, e.g. that the job is still running and how to wait for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// True when the result was cut to fit the output budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

/// A job in a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct JobItem {
    /// Job URN; pass it to get_job.
    pub job_id: String,
    pub status: String,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
}

impl From<JobSummary> for JobItem {
    fn from(j: JobSummary) -> Self {
        JobItem {
            job_id: j.id,
            status: j.status.as_str().to_string(),
            requested_at: j.requested_at.map(rfc3339),
            finished_at: j.finished_at.map(rfc3339),
        }
    }
}

impl JobView {
    /// The view of a wait's outcome, with what to do next, kept within `budget` characters.
    pub(crate) fn of(waited: Waited, capped_at: Option<u64>, max_wait: u64, budget: usize) -> Self {
        let Waited { job, end, mut notes } = waited;
        if let Some(cap) = capped_at {
            notes.push(format!("wait_seconds was capped at {cap} s, the server's longest wait (--max-wait)"));
        }
        let running = !job.status.is_terminal();
        match end {
            WaitEnd::Cancelled => notes.push(format!(
                "cancelled: stopped waiting, but the job keeps running; call get_job with job {} later",
                job.id
            )),
            _ if running => notes.push(format!(
                "still running — call get_job with job set to this job_id and wait_seconds (up to {max_wait}) to wait for the result"
            )),
            _ => {}
        }
        let view = JobView {
            job_id: job.id,
            service_id: job.service_id,
            status: job.status.as_str().to_string(),
            result: job.result,
            result_content_type: job.result_content_type,
            error_message: job.error_message,
            requested_at: job.requested_at.map(rfc3339),
            started_at: job.started_at.map(rfc3339),
            finished_at: job.finished_at.map(rfc3339),
            note: (!notes.is_empty()).then(|| notes.join("; ")),
            truncated: None,
        };
        budget::fit(view, budget)
    }
}

impl Shrink for JobView {
    /// The result is cut to its start (as text when it was JSON).
    fn shrink(&mut self, excess: usize) -> Option<Cut> {
        let mut text = match self.result.take()? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let kept = budget::cut_text(&mut text, excess);
        self.result = Some(Value::String(text));
        Some(Cut {
            part: "result",
            what: format!("the result was cut to its first {} bytes", kept?),
            remedy: LARGER_BUDGET.into(),
        })
    }

    fn note(&mut self) -> &mut Option<String> {
        &mut self.note
    }

    fn truncated(&mut self) -> &mut Option<bool> {
        &mut self.truncated
    }
}

/// `resource_link`s for a waited job and (when it succeeded) the artifacts it produced.
fn job_links(waited: &Waited) -> Vec<ContentBlock> {
    let job = &waited.job;
    let mut links = vec![super::links::link(&job.id, &format!("job ({})", job.status.as_str()))];
    links.extend(job.products.iter().take(MAX_PRODUCT_LINKS).map(|p| super::links::link(p, "job product")));
    links
}

impl ToolContext {
    /// The one submit path of `submit_job` and the service tools: check, create, wait up to
    /// `wait_seconds` (default 30, capped by `--max-wait`) with progress and cancellation.
    pub(crate) async fn run_job(
        &self,
        service: &str,
        input: Value,
        wait_seconds: Option<u32>,
        meta: &RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> Result<CallToolResult, String> {
        let (budget, capped) = self.wait_budget(wait_seconds.unwrap_or(SUBMIT_DEFAULT_WAIT));
        let progress = McpProgress::new(meta, peer);
        let wait = Wait { budget, cancel, progress: &progress };
        let waited = jobs::submit_job(&*self.backend, service, input, &wait).await.map_err(to_tool_error)?;
        self.job_result(waited, capped)
    }

    /// The answer of `submit_job` / `get_job` (and a completed task): the job view and its links.
    pub(crate) fn job_result(&self, waited: Waited, capped: Option<u64>) -> Result<CallToolResult, String> {
        let links = job_links(&waited);
        linked(&JobView::of(waited, capped, self.max_wait.as_secs(), self.output_budget), links).map_err(to_tool_error)
    }

    /// The wait for `wait_seconds`, capped by `--max-wait`, and the cap when it applied.
    fn wait_budget(&self, wait_seconds: u32) -> (Duration, Option<u64>) {
        let max = self.max_wait.as_secs();
        let asked = u64::from(wait_seconds.min(MAX_WAIT_ARG));
        if asked > max { (self.max_wait, Some(max)) } else { (Duration::from_secs(asked), None) }
    }
}

#[tool_router(router = jobs_router, vis = "pub(crate)")]
impl ToolContext {
    #[tool(
        input_schema = crate::schema::tool_input::<SubmitJobArgs>(),
        description = "Run a service: check input against its request schema (get_service), create a job, wait up to \
                       wait_seconds for the result. Bad input lists every problem; no job is made. Still running: \
                       call get_job. Sends progress.",
        output_schema = crate::schema::tool_output::<JobView>(),
        annotations(
            title = "Submit job",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn submit_job(
        &self,
        Parameters(args): Parameters<SubmitJobArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> Result<CallToolResult, String> {
        self.run_job(&args.service, args.input, args.wait_seconds, &meta, peer, cancel).await
    }

    #[tool(
        input_schema = crate::schema::tool_input::<GetJobArgs>(),
        description = "A job's status and, when finished, its result or error; optionally waits up to wait_seconds. \
                       Sends progress while waiting.",
        output_schema = crate::schema::tool_output::<JobView>(),
        annotations(
            title = "Get job",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_job(
        &self,
        Parameters(args): Parameters<GetJobArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        cancel: CancellationToken,
    ) -> Result<CallToolResult, String> {
        let (budget, capped) = self.wait_budget(args.wait_seconds.unwrap_or(0));
        let progress = McpProgress::new(&meta, peer);
        let wait = Wait { budget, cancel, progress: &progress };
        let waited =
            jobs::get_job(&*self.backend, &args.job, args.service.as_deref(), &wait).await.map_err(to_tool_error)?;
        self.job_result(waited, capped)
    }

    #[tool(
        input_schema = crate::schema::tool_input::<ListJobsArgs>(),
        output_schema = crate::schema::tool_output::<ListView<JobItem>>(),
        description = "A service's jobs, newest first, with status and times; get_job gives a result.",
        annotations(
            title = "List jobs",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_jobs(
        &self,
        Parameters(args): Parameters<ListJobsArgs>,
    ) -> Result<Json<ListView<JobItem>>, String> {
        if args.service.trim().is_empty() {
            return Err(to_tool_error(crate::error::Error::invalid(
                "service",
                "is empty; pass a service URN or exact name from list_services",
            )));
        }
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        let options = list_options(args.filter, args.order_by, args.order_desc, args.at_time.as_ref(), &JOB_FIELDS)
            .map_err(to_tool_error)?;
        let found = self.backend.list_jobs(&args.service, &options, &page).await.map_err(to_tool_error)?;
        Ok(Json(ListView::bounded(found, JobItem::from, self.output_budget)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Job, JobStatus};

    fn waited(status: JobStatus, result: Option<Value>, end: WaitEnd) -> Waited {
        let mut job = Job::created("urn:ivcap:job:1".into(), "urn:ivcap:service:s", status);
        job.result = result;
        Waited { job, end, notes: vec![] }
    }

    #[test]
    fn a_running_job_says_how_to_wait_for_it() {
        let view = JobView::of(waited(JobStatus::Executing, None, WaitEnd::StillRunning), Some(50), 50, 20_000);
        let note = view.note.unwrap();
        assert!(note.contains("still running — call get_job"), "{note}");
        assert!(note.contains("capped at 50 s"), "{note}");
        let view = JobView::of(waited(JobStatus::Pending, None, WaitEnd::Cancelled), None, 50, 20_000);
        assert!(view.note.unwrap().contains("keeps running"));
    }

    #[test]
    fn big_results_are_cut_to_the_budget() {
        let big = Value::String("y".repeat(50_000));
        let view = JobView::of(waited(JobStatus::Succeeded, Some(big), WaitEnd::Done), None, 50, 5_000);
        assert_eq!(view.truncated, Some(true));
        assert!(serde_json::to_string(&view).unwrap().len() <= 5_000);
        assert!(view.note.unwrap().contains("output budget"));
    }
}
