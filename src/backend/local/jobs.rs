//! Local jobs: a job on a local service (`<store>/services/<name>.json`) runs in the
//! background of this process and is recorded in `<store>/jobs/<uuid>.json`, so `get_job`
//! and `list_jobs` work after a restart.
//!
//! - `command` services: the program runs with the job input JSON on stdin, never through a
//!   shell, in `<store>/services`; its stdout is the result (JSON when it parses, else text).
//!   A non-zero exit makes the job `failed` with the tail of stderr as the message; running
//!   past `timeout_seconds` (default 300) kills it and makes the job `error`.
//! - `url` services (a service written with ivcap-lambda, running on this machine): the input
//!   JSON is POSTed to the URL as the platform's sidecar does it (docs/ivcap-wire.md, "A
//!   service on a developer's machine"): with the job URN in `job-id` and the caller's wait
//!   as `Timeout`. A `200` body is the result; a `204` try-later is followed to its
//!   `Location`, polled with [`poll_delay`](crate::backend::jobs::poll_delay) (its `Retry-Later` the first delay, as for
//!   platform jobs); an error status makes the job `failed` with the service's `message`.
//!
//! Records go `pending → executing → succeeded | failed | error`, each write atomic. A record
//! left unfinished by a server that stopped is reported (and saved) as `error`.

mod command;
mod lambda;
mod records;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

use super::LocalBackend;
use super::services::{LocalService, Runner};
use crate::backend::jobs::{Created, JOB_PREFIX, JobsBackend};
use crate::backend::listing::{ListOptions, page_from, resume};
use crate::backend::{Job, JobStatus, JobSummary, Page, PageRequest};
use crate::error::{Error, Result};
use crate::files::blocking;
pub(crate) use records::JobRecord;
use records::{save, save_in_background};

/// Longest run of a job when the service sets no `timeout_seconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How much of stderr (or an error body) becomes the error message.
const TAIL_CHARS: usize = 2_000;

/// The jobs running in this process, and the HTTP client for `url` services.
#[derive(Debug, Default)]
pub(crate) struct LocalJobs {
    running: Arc<Mutex<HashSet<String>>>,
    http: OnceLock<reqwest::Client>,
}

fn lock(m: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// How a run ended.
enum Outcome {
    Succeeded { result: Option<Value>, content_type: Option<String> },
    Failed(String),
    Error(String),
}

/// The last `TAIL_CHARS` characters of `text`, trimmed.
fn tail(text: &str) -> String {
    let text = text.trim();
    let count = text.chars().count();
    if count <= TAIL_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().skip(count - TAIL_CHARS).collect();
    format!("…{cut}")
}

/// Runs one job to the end and records every step.
async fn run(
    path: PathBuf,
    mut record: JobRecord,
    service: LocalService,
    dir: PathBuf,
    http: reqwest::Client,
    input: Value,
    hold: Duration,
) {
    record.status = JobStatus::Executing;
    record.started_at = Some(crate::time::now());
    save_in_background(&path, &record).await;
    let timeout = service.def.timeout_seconds.map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let outcome = match &service.runner {
        Ok(Runner::Command(argv)) => command::run_command(argv, &dir, &input, timeout).await,
        Ok(Runner::Url(url)) => lambda::post(&http, url, &record.id, &input, hold, timeout).await,
        Err(problem) => Outcome::Error(format!("the local service {problem}")),
    };
    record.finished_at = Some(crate::time::now());
    match outcome {
        Outcome::Succeeded { result, content_type } => {
            record.status = JobStatus::Succeeded;
            record.result = result;
            record.result_content_type = content_type;
        }
        Outcome::Failed(message) => {
            record.status = JobStatus::Failed;
            record.error_message = Some(message);
        }
        Outcome::Error(message) => {
            record.status = JobStatus::Error;
            record.error_message = Some(message);
        }
    }
    save_in_background(&path, &record).await;
}

#[async_trait::async_trait]
impl JobsBackend for LocalBackend {
    async fn create_job(&self, service_id: &str, input: &Value, hold: Duration) -> Result<Created> {
        let mut service = self.find_local_service(service_id).await?;
        if service.down().is_some() {
            // Perhaps started since it was last looked at.
            self.discovery.forget(&service.id);
            service = self.find_local_service(service_id).await?;
        }
        if let Some(down) = service.down() {
            return Err(Error::invalid(
                "service",
                format!("the local service {} is {down}; no job was created", service.id),
            ));
        }
        if let Some(problem) = service.problem() {
            return Err(Error::invalid(
                "service",
                format!(
                    "the local service {} {problem}: fix {}/services/{}.json",
                    service.id,
                    self.root().display(),
                    service.id.trim_start_matches(crate::urn::SERVICE_PREFIX)
                ),
            ));
        }
        let id = format!("{JOB_PREFIX}{}", uuid::Uuid::new_v4());
        let record = JobRecord {
            id: id.clone(),
            service_id: service.id.clone(),
            status: JobStatus::Pending,
            requested_at: crate::time::now(),
            started_at: None,
            finished_at: None,
            error_message: None,
            result_content_type: None,
            result: None,
        };
        let (records, saved) = (self.records(), record.clone());
        let path = blocking(move || {
            let path = records.path(&saved.id)?;
            save(&path, &saved)?;
            Ok(path)
        })
        .await?;
        let http = self.http()?;
        lock(&self.jobs.running).insert(id.clone());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let running = self.jobs.running.clone();
        let dir = self.root().join("services");
        let task_path = path;
        let input = input.clone();
        tokio::spawn(async move {
            let job_id = record.id.clone();
            run(task_path, record, service, dir, http, input, hold).await;
            lock(&running).remove(&job_id);
            let _ = done_tx.send(());
        });
        if !hold.is_zero() {
            let _ = tokio::time::timeout(hold, done_rx).await;
        }
        Ok(Created { job: self.job_of(self.current_record(&id).await?).await?, retry_after: None })
    }

    async fn read_job(&self, job_id: &str, service_id: Option<&str>) -> Result<Job> {
        let record = self.current_record(job_id).await?;
        if let Some(sid) = service_id
            && sid != record.service_id
            && !self.find_local_service(sid).await.is_ok_and(|s| s.id == record.service_id)
        {
            return Err(Error::invalid(
                "service",
                format!("job {job_id} ran on {}, not on '{sid}'; omit service or pass that one", record.service_id),
            ));
        }
        self.job_of(record).await
    }

    async fn list_jobs(&self, service: &str, options: &ListOptions, page: &PageRequest) -> Result<Page<JobSummary>> {
        let (options, offset) = resume(page, options)?;
        let service = self.find_local_service(service).await?;
        let summaries = self
            .job_records()
            .await?
            .into_iter()
            .filter(|r| r.service_id == service.id && options.at_time.is_none_or(|at| r.requested_at <= at))
            .map(JobRecord::summary)
            .collect();
        page_from(options.select(summaries, JobSummary::field)?, page, offset, &options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_keep_the_end() {
        let long = format!("start {}end", "x".repeat(5000));
        let t = tail(&long);
        assert!(t.ends_with("end") && t.starts_with('…'));
        assert_eq!(t.chars().count(), TAIL_CHARS + 1);
        assert_eq!(tail("  short \n"), "short");
    }
}
