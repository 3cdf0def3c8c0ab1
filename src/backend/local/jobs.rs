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
//!   `Location`, polled with [`poll_delay`] (its `Retry-Later` the first delay, as for
//!   platform jobs); an error status makes the job `failed` with the service's `message`.
//!
//! Records go `pending → executing → succeeded | failed | error`, each write atomic. A record
//! left unfinished by a server that stopped is reported (and saved) as `error`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::LocalBackend;
use super::services::{LocalService, Runner};
use crate::backend::jobs::{Created, JOB_PREFIX, JobsBackend, poll_delay, result_value, retry_later};
use crate::backend::listing::{ListOptions, page_from, resume};
use crate::backend::{Job, JobStatus, JobSummary, Page, PageRequest};
use crate::error::{Error, Missing, Result};
use crate::files::{self, blocking};

/// Longest run of a job when the service sets no `timeout_seconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How much of stderr (or an error body) becomes the error message.
const TAIL_CHARS: usize = 2_000;
/// Polls of a try-later `Location` in a row that may fail to connect before the job is
/// given up as lost (the service stopped).
const LOST_POLLS: u32 = 3;

/// The jobs running in this process, and the HTTP client for `url` services.
#[derive(Debug, Default)]
pub(crate) struct LocalJobs {
    running: Arc<Mutex<HashSet<String>>>,
    http: OnceLock<reqwest::Client>,
}

fn lock(m: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `<store>/jobs/<uuid>.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct JobRecord {
    pub id: String,
    pub service_id: String,
    #[serde(with = "status_text")]
    pub status: JobStatus,
    pub requested_at: DateTime<Utc>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    result_content_type: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
}

/// A job status in a record, as its wire text (`"succeeded"`, …).
mod status_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::backend::JobStatus;

    pub fn serialize<S: Serializer>(status: &JobStatus, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(status.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<JobStatus, D::Error> {
        String::deserialize(d).map(|text| JobStatus::parse(&text))
    }
}

impl From<JobRecord> for Job {
    fn from(r: JobRecord) -> Self {
        Job {
            id: r.id,
            service_id: r.service_id,
            status: r.status,
            result: r.result,
            result_content_type: r.result_content_type,
            error_message: r.error_message,
            requested_at: Some(r.requested_at),
            started_at: r.started_at,
            finished_at: r.finished_at,
            products: Vec::new(),
        }
    }
}

/// How a run ended.
enum Outcome {
    Succeeded { result: Option<Value>, content_type: Option<String> },
    Failed(String),
    Error(String),
}

fn save(path: &Path, record: &JobRecord) -> Result<()> {
    let bytes =
        serde_json::to_vec_pretty(record).map_err(|e| Error::Internal(format!("cannot encode a job record: {e}")))?;
    files::write_atomic(path, &bytes)
}

/// [`save`] on the blocking pool, for the job runner; a failure is logged.
async fn save_in_background(path: &Path, record: &JobRecord) {
    let (path, copy) = (path.to_path_buf(), record.clone());
    if let Err(e) = blocking(move || save(&path, &copy)).await {
        tracing::warn!(job = %record.id, error = %e, "cannot record a local job");
    }
}

fn load(path: &Path) -> Result<JobRecord> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    serde_json::from_str(&text)
        .map_err(|e| Error::io(format!("cannot parse {}", path.display()), std::io::Error::other(e)))
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

/// What reading job records needs, cloneable onto the blocking pool: the store and the
/// jobs this process runs.
#[derive(Clone)]
struct Records {
    root: PathBuf,
    running: Arc<Mutex<HashSet<String>>>,
}

impl Records {
    /// The record file of `job_id` in the store (see [`job_file`]).
    fn path(&self, job_id: &str) -> Result<PathBuf> {
        files::under_root(&self.root, &job_file(job_id)?, "job_id")
    }

    /// The record at `path`, with a job that no running server owns marked as `error`.
    /// Check the running set before reading, so a job finishing in between is read finished.
    fn current(&self, path: &Path, persist: bool) -> Result<JobRecord> {
        let running = lock(&self.running).clone();
        let mut record = load(path)?;
        if !record.status.is_terminal() && !running.contains(&record.id) {
            record.status = JobStatus::Error;
            record.finished_at.get_or_insert_with(Utc::now);
            record.error_message =
                Some("the ivcap-mcp server that ran this job stopped before it finished; submit the job again".into());
            if persist {
                save(path, &record)?;
            }
        }
        Ok(record)
    }

    /// Every record in the store, each file read once; unreadable ones are skipped with a warning.
    fn all(&self) -> Result<Vec<JobRecord>> {
        let mut records = Vec::new();
        for path in files::files_with_extension(&self.root.join("jobs"), "json")? {
            match self.current(&path, false) {
                Ok(r) => records.push(r),
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "skipping a local job record"),
            }
        }
        Ok(records)
    }
}

/// `jobs/<uuid>.json` of `job_id` (relative to the store), or `NotFound` for anything that is
/// not a local job URN.
fn job_file(job_id: &str) -> Result<PathBuf> {
    let not_found = || Error::not_found(Missing::Job, job_id);
    let uuid = job_id.strip_prefix(JOB_PREFIX).ok_or_else(not_found)?;
    let uuid = uuid::Uuid::parse_str(uuid).map_err(|_| not_found())?;
    Ok(Path::new("jobs").join(format!("{}.json", uuid.hyphenated())))
}

impl LocalBackend {
    /// The job of a record; a succeeded job's products are the stored artifacts its result
    /// names, as a platform job lists its products.
    async fn job_of(&self, record: JobRecord) -> Result<Job> {
        let mut job: Job = record.into();
        if job.status == JobStatus::Succeeded
            && let Some(result) = &job.result
        {
            job.products = self.artifacts_named_in(result).await?;
        }
        Ok(job)
    }

    fn records(&self) -> Records {
        Records { root: self.root().to_path_buf(), running: self.jobs.running.clone() }
    }

    /// The current record of `job_id` (see [`Records::current`]), saved when it changed.
    async fn current_record(&self, job_id: &str) -> Result<JobRecord> {
        let (records, id) = (self.records(), job_id.to_string());
        blocking(move || {
            let path = records.path(&id)?;
            if !path.is_file() {
                return Ok(None);
            }
            records.current(&path, true).map(Some)
        })
        .await?
        .ok_or_else(|| Error::not_found(Missing::Job, job_id))
    }

    /// Every local job record, newest first, each file read once.
    pub(crate) async fn job_records(&self) -> Result<Vec<JobRecord>> {
        let records = self.records();
        let mut all = blocking(move || records.all()).await?;
        all.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then(b.id.cmp(&a.id)));
        Ok(all)
    }

    pub(crate) fn http(&self) -> Result<reqwest::Client> {
        if let Some(c) = self.jobs.http.get() {
            return Ok(c.clone());
        }
        let client = crate::http_client()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("ivcap-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(self.jobs.http.get_or_init(|| client).clone())
    }
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
        Ok(Runner::Command(argv)) => run_command(argv, &dir, &input, timeout).await,
        Ok(Runner::Url(url)) => post(&http, url, &record.id, &input, hold, timeout).await,
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

/// Runs `argv` (no shell) with `input` on stdin; kills it after `timeout`.
async fn run_command(argv: &[String], dir: &Path, input: &Value, timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::Error("the service's command is empty".into());
    };
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Outcome::Error(format!("cannot start '{program}': {e}; check the service's command")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = input.to_string().into_bytes();
        // A program that exits without reading its input is not an error here.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
        });
    }
    // Dropping the child on timeout kills it (kill_on_drop).
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            return Outcome::Error(format!(
                "'{program}' ran longer than {} s and was killed; raise timeout_seconds in the service definition",
                timeout.as_secs()
            ));
        }
        Ok(Err(e)) => return Outcome::Error(format!("lost '{program}': {e}")),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let how = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".into(),
        };
        let stderr = tail(&String::from_utf8_lossy(&output.stderr));
        return Outcome::Failed(if stderr.is_empty() {
            format!("'{program}' failed ({how}) and wrote nothing to stderr")
        } else {
            format!("'{program}' failed ({how}): {stderr}")
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stdout = stdout.trim();
    if stdout.is_empty() {
        return Outcome::Succeeded { result: None, content_type: None };
    }
    match serde_json::from_str::<Value>(stdout) {
        Ok(v) => Outcome::Succeeded { result: Some(v), content_type: Some("application/json".into()) },
        Err(_) => Outcome::Succeeded {
            result: Some(Value::String(stdout.to_string())),
            content_type: Some("text/plain".into()),
        },
    }
}

/// Runs a job on a locally running service the way the platform's sidecar does: POST with
/// `job-id` and `Timeout` (the caller's `hold`), then follow a `204` try-later until the
/// result, an error status, or `timeout` since the start.
async fn post(
    http: &reqwest::Client,
    url: &url::Url,
    job_id: &str,
    input: &Value,
    hold: Duration,
    timeout: Duration,
) -> Outcome {
    let deadline = tokio::time::Instant::now() + timeout;
    let too_long = || {
        Outcome::Error(format!(
            "{url} did not finish the job within {} s; raise timeout_seconds in the service definition",
            timeout.as_secs()
        ))
    };
    let hold_secs = hold.as_secs().min(timeout.as_secs());
    let sent = http
        .post(url.as_str())
        .timeout(timeout)
        .header("Timeout", hold_secs.to_string())
        .header("job-id", job_id)
        .json(input)
        .send()
        .await;
    let mut resp = match sent {
        Ok(resp) => resp,
        Err(e) if e.is_timeout() => return too_long(),
        Err(e) => {
            return Outcome::Error(format!(
                "cannot reach the local service at {url} ({}); is it running?",
                e.without_url()
            ));
        }
    };
    let first_delay = header(&resp, "retry-later").and_then(|v| v.trim().parse::<f64>().ok()).and_then(retry_later);
    let (mut attempt, mut lost) = (0u32, 0u32);
    let mut polling = false;
    loop {
        let status = resp.status();
        if status == reqwest::StatusCode::NO_CONTENT {
            let Some(location) = header(&resp, "location") else {
                return Outcome::Error(format!(
                    "{url} answered 204 without a Location, so the result cannot be fetched"
                ));
            };
            let Ok(location) = url.join(&location) else {
                return Outcome::Error(format!("{url} answered 204 with a Location that does not parse: {location}"));
            };
            loop {
                let poll_at = tokio::time::Instant::now() + poll_delay(attempt, first_delay);
                if poll_at >= deadline {
                    return too_long();
                }
                tokio::time::sleep_until(poll_at).await;
                attempt += 1;
                match http.get(location.as_str()).timeout(deadline - tokio::time::Instant::now()).send().await {
                    Ok(next) => {
                        resp = next;
                        break;
                    }
                    Err(e) if e.is_timeout() => return too_long(),
                    Err(e) => {
                        lost += 1;
                        if lost >= LOST_POLLS {
                            return Outcome::Error(format!(
                                "the local service at {url} stopped answering while running the job ({}); \
                                 restart it and submit the job again",
                                e.without_url()
                            ));
                        }
                    }
                }
            }
            lost = 0;
            polling = true;
            continue;
        }
        let content_type = header(&resp, "content-type");
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => return Outcome::Error(format!("lost the answer of {url}: {}", e.without_url())),
        };
        if status.is_success() {
            return Outcome::Succeeded { result: result_value(content_type.as_deref(), &body), content_type };
        }
        if polling && status == reqwest::StatusCode::NOT_FOUND {
            return Outcome::Error(format!(
                "the local service at {url} no longer knows this job (it restarted, or the result left its cache); \
                 submit the job again"
            ));
        }
        return Outcome::Failed(format!("{url} answered {status}: {}", service_message(&body)));
    }
}

/// A response header as text.
fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// What an error body says: ivcap-lambda's `message`, FastAPI's `detail`, else the text.
fn service_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        if let Some(message) = v.get("message").and_then(Value::as_str) {
            return tail(message);
        }
        match v.get("detail") {
            Some(Value::String(detail)) => return tail(detail),
            Some(Value::Array(problems)) => {
                let each: Vec<String> = problems
                    .iter()
                    .map(|p| {
                        let at: Vec<String> = p
                            .get("loc")
                            .and_then(Value::as_array)
                            .map(|l| {
                                l.iter().map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_string)).collect()
                            })
                            .unwrap_or_default();
                        let msg = p.get("msg").and_then(Value::as_str).unwrap_or("invalid");
                        format!("{}: {msg}", at.join("."))
                    })
                    .collect();
                return tail(&each.join("; "));
            }
            _ => {}
        }
    }
    tail(&String::from_utf8_lossy(body))
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
                "service_id",
                format!("job {job_id} ran on {}, not on '{sid}'; omit service_id or pass that one", record.service_id),
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

impl JobRecord {
    pub(crate) fn summary(self) -> JobSummary {
        JobSummary {
            status: self.status,
            requested_at: Some(self.requested_at),
            started_at: self.started_at,
            finished_at: self.finished_at,
            id: self.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_give_the_services_message() {
        assert_eq!(service_message(br#"{"message": "bad msg", "code": 400}"#), "bad msg");
        assert_eq!(service_message(br#"{"message": "boom", "traceback": "..."}"#), "boom");
        let fastapi = br#"{"detail": [{"loc": ["body", "msg"], "msg": "Field required", "type": "missing"}]}"#;
        assert_eq!(service_message(fastapi), "body.msg: Field required");
        assert_eq!(service_message(b"plain text\n"), "plain text");
    }

    #[test]
    fn tails_keep_the_end() {
        let long = format!("start {}end", "x".repeat(5000));
        let t = tail(&long);
        assert!(t.ends_with("end") && t.starts_with('…'));
        assert_eq!(t.chars().count(), TAIL_CHARS + 1);
        assert_eq!(tail("  short \n"), "short");
    }

    #[test]
    fn job_paths_need_a_job_urn_with_a_uuid() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBackend::new(dir.path()).unwrap();
        assert!(store.records().path("urn:ivcap:job:../../etc").is_err());
        assert!(store.records().path("urn:ivcap:service:x").is_err());
        let id = format!("{JOB_PREFIX}{}", uuid::Uuid::new_v4());
        assert!(store.records().path(&id).unwrap().starts_with(dir.path()));
    }
}
