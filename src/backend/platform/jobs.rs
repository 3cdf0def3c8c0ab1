//! Jobs on the platform (docs/ivcap-wire.md §6): `POST /1/services2/{id}/jobs` with an integer
//! `Timeout` (200 with the result inline and the id in `IVCAP-Job-Id`, 202 with `job-id` and
//! `retry-later`, or 307 to the job), `GET …/jobs/{id}`, the `…/output` fallback for a
//! finished job whose record holds no result, and `GET …/jobs`.
//!
//! A job URN does not name its service, but every job URL does. The service of each job
//! this server creates, reads or lists is remembered; for any other job it is read from the
//! job's own Datafabric aspect (`urn:ivcap:schema:job.2`, as the ivcap CLI reads it).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use serde::Deserialize;
use serde_json::Value;

use super::{PlatformBackend, Target, decode, enc};
use crate::backend::jobs::{Created, JobsBackend, result_value, retry_later};
use crate::backend::listing::ListOptions;
use crate::backend::{Job, JobStatus, JobSummary, Page, PageRequest};
use crate::error::{Error, Missing, Result};
use crate::text::truncate;
use crate::time::from_wire;
use crate::urn::is_urn;

/// Aspect schema of the Datafabric's record of a job.
const JOB_ASPECT_SCHEMA: &str = "urn:ivcap:schema:job.2";
/// Extra read time on top of the `Timeout` a create asks the gateway to hold.
const CREATE_MARGIN: Duration = Duration::from_secs(15);

/// What this server knows of a job: its service, and the `retry-later` of its create.
#[derive(Debug, Clone, Default)]
struct Known {
    service_id: String,
    retry_after: Option<Duration>,
}

/// Jobs remembered at most; past this the longest-known are forgotten first (a forgotten
/// job's service is looked up again when needed).
const MAX_KNOWN_JOBS: usize = 10_000;

/// Job URN → what we know, for the jobs this server has seen most recently.
#[derive(Debug, Default)]
pub(crate) struct JobServices(Mutex<KnownJobs>);

#[derive(Debug, Default)]
struct KnownJobs {
    by_id: HashMap<String, Known>,
    /// Job URNs in the order they were first remembered, for forgetting the oldest.
    order: VecDeque<String>,
}

impl JobServices {
    fn lock(&self) -> std::sync::MutexGuard<'_, KnownJobs> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, job_id: &str, service_id: &str) {
        let mut known = self.lock();
        match known.by_id.get_mut(job_id) {
            Some(k) => k.service_id = service_id.to_string(),
            None => {
                known.by_id.insert(job_id.to_string(), Known { service_id: service_id.to_string(), retry_after: None });
                known.order.push_back(job_id.to_string());
                while known.order.len() > MAX_KNOWN_JOBS {
                    if let Some(oldest) = known.order.pop_front() {
                        known.by_id.remove(&oldest);
                    }
                }
            }
        }
    }

    fn remember_retry(&self, job_id: &str, retry_after: Option<Duration>) {
        if let Some(known) = self.lock().by_id.get_mut(job_id) {
            known.retry_after = retry_after;
        }
    }

    fn get(&self, job_id: &str) -> Option<Known> {
        self.lock().by_id.get(job_id).cloned()
    }
}

/// The 202 body of a job create.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JobCreateRt {
    job_id: String,
    #[serde(default)]
    retry_later: Option<f64>,
}

/// `JobStatusRT`, the fields we use: those of a list item, and the outcome.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JobStatusRt {
    #[serde(flatten)]
    item: JobListItemRt,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    result_content: Option<Value>,
    #[serde(default)]
    result_content_type: Option<String>,
    #[serde(default)]
    products: Option<ProductsRt>,
}

/// `products` of `JobStatusRT`: the artifacts the job made.
#[derive(Debug, Deserialize)]
struct ProductsRt {
    #[serde(default)]
    items: Vec<ProductRt>,
}

#[derive(Debug, Deserialize)]
struct ProductRt {
    id: String,
}

/// Item of `JobListRT`, and the id, status and times of a `JobStatusRT`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct JobListItemRt {
    id: String,
    status: String,
    #[serde(default)]
    requested_at: Option<String>,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    finished_at: Option<String>,
}

impl JobStatusRt {
    fn into_job(self, service_id: &str) -> Job {
        let JobSummary { id, status, requested_at, started_at, finished_at } = self.item.into();
        Job {
            id,
            status,
            service_id: self.service.filter(|s| !s.is_empty()).unwrap_or_else(|| service_id.to_string()),
            result: self.result_content.filter(|v| !v.is_null()),
            result_content_type: self.result_content_type,
            error_message: self.error_message.filter(|m| !m.trim().is_empty()),
            requested_at,
            started_at,
            finished_at,
            products: self.products.map(|p| p.items.into_iter().map(|i| i.id).collect()).unwrap_or_default(),
        }
    }
}

impl From<JobListItemRt> for JobSummary {
    fn from(j: JobListItemRt) -> Self {
        JobSummary {
            status: JobStatus::parse(&j.status),
            requested_at: from_wire(j.requested_at.as_deref()),
            started_at: from_wire(j.started_at.as_deref()),
            finished_at: from_wire(j.finished_at.as_deref()),
            id: j.id,
        }
    }
}

fn content_type(resp: &reqwest::Response) -> Option<String> {
    resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The last path segment of a job URL, percent-decoded: the job URN.
fn job_id_from_url(location: &str) -> Option<String> {
    let url = url::Url::parse(location).ok()?;
    let last = url.path_segments()?.rev().find(|s| !s.is_empty())?;
    let id = percent_encoding::percent_decode_str(last).decode_utf8_lossy().into_owned();
    id.starts_with("urn:").then_some(id)
}

impl PlatformBackend {
    /// A service URN from a URN or an exact name.
    async fn service_urn(&self, service: &str) -> Result<String> {
        let service = service.trim();
        if is_urn(service) { Ok(service.to_string()) } else { self.service_id_by_name(service).await }
    }

    /// The service a job runs on: remembered, else from the job's Datafabric aspect.
    async fn service_of_job(&self, job_id: &str) -> Result<String> {
        if let Some(known) = self.jobs.get(job_id) {
            return Ok(known.service_id);
        }
        let target = Target { kind: Missing::Job, id: job_id };
        let found = self
            .aspect_contents(job_id, JOB_ASPECT_SCHEMA, 1, target)
            .await?
            .into_iter()
            .find_map(|c| c.get("service-id").and_then(Value::as_str).map(str::to_string));
        match found {
            Some(sid) => {
                self.jobs.remember(job_id, &sid);
                Ok(sid)
            }
            None => Err(Error::invalid(
                "service",
                format!(
                    "job {job_id} was not submitted through this server and the Datafabric has no job record \
                     ({JOB_ASPECT_SCHEMA}) naming its service; pass service, the URN of the service it ran on \
                     (list_services shows them)"
                ),
            )),
        }
    }

    /// The job's output (§6.4), for a finished job whose record holds no result.
    async fn job_output(&self, service_id: &str, job_id: &str) -> Result<(Option<Value>, Option<String>)> {
        let path = format!("/1/services2/{}/jobs/{}/output", enc(service_id), enc(job_id));
        let resp =
            self.send(Target { kind: Missing::Job, id: job_id }, true, &|| self.request(Method::GET, &path)).await?;
        if resp.status() == StatusCode::NO_CONTENT {
            return Ok((None, None));
        }
        let ct = content_type(&resp);
        let body = resp.bytes().await.map_err(|e| Error::Transport(e.without_url().to_string()))?;
        Ok((result_value(ct.as_deref(), &body), ct))
    }
}

#[async_trait::async_trait]
impl JobsBackend for PlatformBackend {
    async fn create_job(&self, service_id: &str, input: &Value, hold: Duration) -> Result<Created> {
        let path = format!("/1/services2/{}/jobs", enc(service_id));
        let hold_secs = hold.as_secs();
        let accept = |s: &StatusCode| s.is_success() || *s == StatusCode::TEMPORARY_REDIRECT;
        let resp = self
            .send_accepting(Target { kind: Missing::Service, id: service_id }, false, accept, &|| {
                self.request(Method::POST, &path)
                    .timeout(Duration::from_secs(hold_secs) + CREATE_MARGIN)
                    .header("Timeout", hold_secs.to_string())
                    .json(input)
            })
            .await?;
        let status = resp.status();
        let created = if status == StatusCode::TEMPORARY_REDIRECT {
            let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
            let id = job_id_from_url(location)
                .ok_or_else(|| Error::UnexpectedAnswer("a 307 job create without a job URL in Location".into()))?;
            Created { job: Job::created(id, service_id, JobStatus::Pending), retry_after: None }
        } else if status == StatusCode::ACCEPTED {
            let body: JobCreateRt = decode(resp).await?;
            let retry_after = body.retry_later.and_then(retry_later);
            Created { job: Job::created(body.job_id, service_id, JobStatus::Pending), retry_after }
        } else {
            let id = resp.headers().get("IVCAP-Job-Id").and_then(|v| v.to_str().ok()).map(str::to_string).ok_or_else(
                || Error::UnexpectedAnswer(format!("a {status} job create without the IVCAP-Job-Id header")),
            )?;
            let ct = content_type(&resp);
            let body = resp.bytes().await.map_err(|e| Error::Transport(e.without_url().to_string()))?;
            let mut job = Job::created(id, service_id, JobStatus::Succeeded);
            job.result = result_value(ct.as_deref(), &body);
            job.result_content_type = ct;
            Created { job, retry_after: None }
        };
        self.jobs.remember(&created.job.id, service_id);
        self.jobs.remember_retry(&created.job.id, created.retry_after);
        Ok(created)
    }

    async fn read_job(&self, job_id: &str, service_id: Option<&str>) -> Result<Job> {
        let service_id = match service_id {
            Some(s) => self.service_urn(s).await?,
            None => self.service_of_job(job_id).await?,
        };
        let path = format!("/1/services2/{}/jobs/{}", enc(&service_id), enc(job_id));
        let query = [("with-request-content", "false".to_string()), ("with-result-content", "true".to_string())];
        let record: JobStatusRt = self.get_json(&path, &query, Target { kind: Missing::Job, id: job_id }).await?;
        self.jobs.remember(job_id, &service_id);
        let mut job = record.into_job(&service_id);
        if job.status == JobStatus::Succeeded && job.result.is_none() {
            match self.job_output(&service_id, job_id).await {
                Ok((result, ct)) => {
                    job.result = result;
                    job.result_content_type = job.result_content_type.or(ct);
                }
                Err(e) => {
                    tracing::warn!(job_id, error = %e, "cannot read job output");
                    job.error_message =
                        Some(truncate(&format!("the job succeeded but its output could not be read: {e}"), 500));
                }
            }
        }
        Ok(job)
    }

    async fn list_jobs(&self, service: &str, options: &ListOptions, page: &PageRequest) -> Result<Page<JobSummary>> {
        let service_id = self.service_urn(service).await?;
        let path = format!("/1/services2/{}/jobs", enc(&service_id));
        let listed: Page<JobListItemRt> =
            self.get_list(&path, &options.wire(), page, Target { kind: Missing::Service, id: &service_id }).await?;
        let items = listed
            .items
            .into_iter()
            .map(|j| {
                self.jobs.remember(&j.id, &service_id);
                JobSummary::from(j)
            })
            .collect();
        Ok(Page { items, next_page: listed.next_page, note: listed.note })
    }

    fn poll_hint(&self, job_id: &str) -> Option<Duration> {
        self.jobs.get(job_id).and_then(|k| k.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::platform::{ListRt, fixtures};
    use serde_json::json;

    #[test]
    fn job_ids_come_from_job_urls() {
        let url = "https://api.example/1/services2/urn:ivcap:service:1/jobs/urn%3Aivcap%3Ajob%3A9f";
        assert_eq!(job_id_from_url(url).as_deref(), Some("urn:ivcap:job:9f"));
        assert_eq!(job_id_from_url("not a url"), None);
    }

    #[test]
    fn job_records_tolerate_missing_fields() {
        let rt: JobStatusRt =
            serde_json::from_value(json!({"id": "urn:ivcap:job:1", "status": "paused", "finished-at": "bad"})).unwrap();
        let job = rt.into_job("urn:ivcap:service:s");
        assert_eq!(job.status, JobStatus::Other("paused".into()));
        assert_eq!((job.service_id.as_str(), job.finished_at), ("urn:ivcap:service:s", None));
    }

    #[test]
    fn the_job_memory_is_bounded_and_forgets_the_oldest() {
        let jobs = JobServices::default();
        for i in 0..MAX_KNOWN_JOBS + 10 {
            jobs.remember(&format!("urn:ivcap:job:{i}"), "urn:ivcap:service:s");
        }
        jobs.remember("urn:ivcap:job:20", "urn:ivcap:service:t");
        let known = jobs.lock();
        assert_eq!((known.by_id.len(), known.order.len()), (MAX_KNOWN_JOBS, MAX_KNOWN_JOBS));
        drop(known);
        assert!(jobs.get("urn:ivcap:job:0").is_none() && jobs.get("urn:ivcap:job:9").is_none());
        assert_eq!(jobs.get("urn:ivcap:job:20").map(|k| k.service_id).as_deref(), Some("urn:ivcap:service:t"));
        assert!(jobs.get(&format!("urn:ivcap:job:{}", MAX_KNOWN_JOBS + 9)).is_some());
    }

    #[test]
    fn captured_job_payloads_decode() {
        let created: JobCreateRt = fixtures::decode("jobs/create-202.json");
        assert_eq!(
            (created.job_id.as_str(), created.retry_later),
            ("urn:ivcap:job:939f1e2a-0b7c-4d5e-8f9a-1b2c3d4e5f60", Some(10.0))
        );
        let read: JobStatusRt = fixtures::decode("jobs/read.json");
        let job = read.into_job("urn:ivcap:service:other");
        assert_eq!((job.status, job.service_id.as_str()), (JobStatus::Succeeded, "urn:ivcap:service:3678"));
        assert_eq!(job.result.unwrap()["msg"], "CPU consumption finished.");
        assert_eq!(job.id, "urn:ivcap:job:939f1e2a-0b7c-4d5e-8f9a-1b2c3d4e5f60");
        assert_eq!(job.started_at.map(crate::time::format).as_deref(), Some("2025-10-13T02:35:51Z"));
        assert_eq!(job.finished_at.map(crate::time::format).as_deref(), Some("2025-10-13T02:36:02Z"));
        let list: ListRt<JobListItemRt> = fixtures::decode("jobs/list.json");
        let summary = JobSummary::from(list.into_page(None).unwrap().items.remove(0));
        assert_eq!(summary.status, JobStatus::Executing);
        let records: ListRt<super::super::aspects::AspectContentRt> = fixtures::decode("jobs/job-aspects.json");
        let content = records.items.into_iter().next().and_then(|a| a.content).unwrap();
        assert_eq!(content["service-id"], "urn:ivcap:service:3678");
    }
}
