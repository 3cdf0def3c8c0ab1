//! Jobs: running a service on an input, and waiting for the result.
//!
//! The trait is deliberately small — create a job (letting the backend hold the call for a
//! while, as the platform's `Timeout` header does), read a job once, list a service's jobs —
//! and everything both modes share is written once here: resolving the service and checking
//! the input against its request schema before anything is sent ([`prepare_input`]), and
//! waiting ([`submit_job`], [`get_job`]): the platform's `retry-later` as the first delay,
//! then a short growing backoff, progress on every status change and at least every
//! [`HEARTBEAT`], cancellation, and a cap so a call returns before common client timeouts.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::listing::ListOptions;
use super::progress::{NoProgress, Progress};
use super::{Page, PageRequest, ServicesBackend};
use crate::error::{Error, Result};
use crate::telemetry::metrics::JobWait;
use crate::validation::Validator;

/// Longest gap between two progress notifications while waiting.
pub const HEARTBEAT: Duration = Duration::from_secs(10);

pub use crate::urn::JOB_PREFIX;

wire_status! {
    /// Where a job is in its life: `pending → scheduled → executing → succeeded | failed | error`.
    JobStatus {
        Unknown = "unknown",
        Pending = "pending",
        Scheduled = "scheduled",
        Executing = "executing",
        Succeeded = "succeeded",
        Failed = "failed",
        Error = "error",
    }
}

impl JobStatus {
    /// `succeeded`, `failed` and `error` are final; everything else may still change.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed | JobStatus::Error)
    }
}

/// One job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// `urn:ivcap:job:<uuid>`.
    pub id: String,
    /// The service it runs on.
    pub service_id: String,
    pub status: JobStatus,
    /// The result, when succeeded: JSON as JSON, other text as a string.
    pub result: Option<Value>,
    /// The result's media type.
    pub result_content_type: Option<String>,
    /// Why it failed, when failed or error.
    pub error_message: Option<String>,
    pub requested_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Ids of the artifacts a succeeded job produced (the platform's `products`; locally the
    /// stored artifacts its result names).
    pub products: Vec<String>,
}

impl Job {
    /// A job just created, of which only the id is known.
    pub fn created(id: String, service_id: &str, status: JobStatus) -> Self {
        Job {
            id,
            service_id: service_id.to_string(),
            status,
            result: None,
            result_content_type: None,
            error_message: None,
            requested_at: None,
            started_at: None,
            finished_at: None,
            products: Vec::new(),
        }
    }
}

/// A job as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    pub id: String,
    pub status: JobStatus,
    pub requested_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl JobSummary {
    /// One field, as filters name it ([`crate::backend::listing::JOB_FIELDS`]).
    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "id" => Some(self.id.clone()),
            "status" => Some(self.status.as_str().to_string()),
            "started-at" => self.started_at.map(crate::time::format),
            "finished-at" => self.finished_at.map(crate::time::format),
            _ => None,
        }
    }
}

/// What creating a job answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub job: Job,
    /// The platform's `retry-later`: poll no sooner than this.
    pub retry_after: Option<Duration>,
}

/// Jobs on one IVCAP.
#[async_trait::async_trait]
pub trait JobsBackend {
    /// Creates a job on `service_id` (a URN) with an `input` already checked against the
    /// service's schema. The backend may hold the call up to `hold` for the job to finish
    /// (the platform's `Timeout`); `Duration::ZERO` returns as soon as the job exists.
    /// Never retried: a retry could run the job twice.
    async fn create_job(&self, service_id: &str, input: &Value, hold: Duration) -> Result<Created>;

    /// Reads a job once, with its result when it succeeded. Without `service_id` the
    /// backend finds the service itself, or says to pass it.
    async fn read_job(&self, job_id: &str, service_id: Option<&str>) -> Result<Job>;

    /// Jobs of one service (URN or exact name), newest first.
    async fn list_jobs(&self, service: &str, options: &ListOptions, page: &PageRequest) -> Result<Page<JobSummary>>;

    /// The shortest interval between reads of this job the backend asked for (the
    /// platform's `retry-later` when this server created it), if any.
    fn poll_hint(&self, _job_id: &str) -> Option<Duration> {
        None
    }
}

/// How long and how to wait.
pub struct Wait<'a> {
    /// Longest wait (already capped by the server's `--max-wait`); zero = don't wait.
    pub budget: Duration,
    /// Fires when the client cancels the request.
    pub cancel: CancellationToken,
    pub progress: &'a dyn Progress,
}

impl Wait<'static> {
    /// No wait: the job as it is now, with no progress reports and nothing to cancel.
    pub fn none() -> Self {
        Wait { budget: Duration::ZERO, cancel: CancellationToken::new(), progress: &NoProgress }
    }
}

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitEnd {
    /// The job is finished, or no wait was asked for.
    Done,
    /// The wait budget ran out while the job was still running.
    StillRunning,
    /// The client cancelled; the job keeps running.
    Cancelled,
}

/// A job and why the wait for it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Waited {
    pub job: Job,
    pub end: WaitEnd,
    /// Something the caller should know (input not validated, wait capped …).
    pub notes: Vec<String>,
}

/// Checks `input` against the service's request schema and fills in `$schema` (its default
/// or const), so an invalid request never reaches the service. Every violation is listed as
/// `path: message`.
pub fn prepare_input(schema: Option<&Value>, input: Map<String, Value>) -> Result<(Value, Option<String>)> {
    let mut input = input;
    let Some(schema) = schema else {
        return Ok((
            Value::Object(input),
            Some("the service publishes no request schema, so the input was sent unchecked".into()),
        ));
    };
    if !input.contains_key("$schema") {
        let inlined = crate::schema::inline_refs(schema);
        let fill = |keyword: &str| inlined.pointer(&format!("/properties/$schema/{keyword}")).filter(|d| d.is_string());
        if let Some(default) = fill("default").or_else(|| fill("const")) {
            input.insert("$schema".into(), default.clone());
        }
    }
    let input = Value::Object(input);
    let validator = match Validator::new(schema) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "service request schema does not compile");
            return Ok((
                input,
                Some(format!("the service's request schema is not usable ({e}), so the input was sent unchecked")),
            ));
        }
    };
    let problems: Vec<String> = validator
        .violations(&input)
        .into_iter()
        .map(|v| {
            let path = v.pointer();
            format!("{}: {}", if path.is_empty() { "/" } else { path.as_str() }, v.message)
        })
        .collect();
    if problems.is_empty() {
        return Ok((input, None));
    }
    Err(Error::invalid(
        "input",
        format!(
            "does not match the service's request schema, so no job was created ({} problem{}): {}. \
             Fix the input and call again; get_service shows the schema",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems.join("; ")
        ),
    ))
}

/// `submit_job`: resolve the service, check the input, create the job and wait up to
/// `wait.budget` for it.
pub async fn submit_job<B: ServicesBackend + JobsBackend + ?Sized>(
    backend: &B,
    service: &str,
    input: Value,
    wait: &Wait<'_>,
) -> Result<Waited> {
    let start = Instant::now();
    if service.trim().is_empty() {
        return Err(Error::invalid("service", "is empty; pass a service URN or exact name from list_services"));
    }
    let Value::Object(input) = input else {
        return Err(Error::invalid(
            "input",
            format!(
                "must be a JSON object matching the service's request_schema (see get_service), e.g. {{\"message\": \"hi\"}}; got {}",
                crate::text::describe_json(&input)
            ),
        ));
    };
    let svc = backend.get_service(service).await?;
    let (input, note) = prepare_input(svc.request_schema.as_ref(), input)?;
    let _waiting = (!wait.budget.is_zero()).then(JobWait::start);
    let hold = wait.budget;
    if !hold.is_zero() {
        wait.progress.report(start.elapsed().as_secs_f64(), None, "submitted; waiting for the job to finish").await;
    }
    let create = backend.create_job(&svc.id, &input, hold);
    let created = tokio::select! {
        biased;
        _ = wait.cancel.cancelled() => return Err(Error::Cancelled(format!(
            "stopped waiting while the job was being created on {}; it may run anyway: call list_jobs with service '{}' to find it",
            svc.id, svc.id
        ))),
        created = with_heartbeats(create, start, wait.progress, "waiting for the job to finish") => created?,
    };
    let mut waited = wait_for(backend, created.job, created.retry_after, start, wait).await?;
    waited.notes.extend(note);
    Ok(waited)
}

/// `get_job`: read a job, and wait up to `wait.budget` for it to finish.
pub async fn get_job<B: JobsBackend + ?Sized>(
    backend: &B,
    job_id: &str,
    service_id: Option<&str>,
    wait: &Wait<'_>,
) -> Result<Waited> {
    let start = Instant::now();
    let job_id = job_id.trim();
    if !job_id.starts_with(JOB_PREFIX) || !crate::urn::is_urn(job_id) {
        return Err(Error::invalid(
            "job",
            format!("'{job_id}' is not a job URN; pass the job URN submit_job or list_jobs returned (urn:ivcap:job:…)"),
        ));
    }
    let service_id = service_id.map(str::trim).filter(|s| !s.is_empty());
    let _waiting = (!wait.budget.is_zero()).then(JobWait::start);
    let job = backend.read_job(job_id, service_id).await?;
    wait_for(backend, job, backend.poll_hint(job_id), start, wait).await
}

/// The job as it is now, without waiting: how resources, tasks and subscriptions read a job.
pub async fn job_now<B: JobsBackend + ?Sized>(backend: &B, job_id: &str) -> Result<Waited> {
    get_job(backend, job_id, None, &Wait::none()).await
}

/// A `retry-later` value in seconds as a first delay: a positive finite number, at most an
/// hour; anything else is no hint.
pub fn retry_later(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && seconds > 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

/// The delay before poll number `attempt` (0-based). The platform's `retry-later` is the
/// first delay only (the wire contract says so); after it, and from the start when there is
/// none, a short delay growing to [`HEARTBEAT`]. Using the hint as the floor of every poll
/// would make a job that ends just after it wait a whole extra interval.
pub fn poll_delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    const SCHEDULE_MS: [u64; 8] = [500, 1_000, 1_000, 2_000, 3_000, 5_000, 8_000, 10_000];
    let step = match retry_after.filter(|first| !first.is_zero()) {
        Some(first) if attempt == 0 => return first,
        Some(_) => attempt - 1,
        None => attempt,
    };
    Duration::from_millis(SCHEDULE_MS[(step as usize).min(SCHEDULE_MS.len() - 1)])
}

/// The delay [`wait_for`] would use next for a job it had been waiting on for `age`: how
/// often a client that polls a job itself (an MCP task) should ask.
pub fn poll_delay_at_age(age: Duration, retry_after: Option<Duration>) -> Duration {
    let mut waited = Duration::ZERO;
    let mut attempt = 0u32;
    loop {
        let delay = poll_delay(attempt, retry_after);
        waited += delay;
        if waited > age || attempt >= 64 {
            return delay;
        }
        attempt += 1;
    }
}

/// The one wait loop: polls `job` until it is finished, the budget is spent or the client
/// cancels, reporting each status change and a heartbeat at least every [`HEARTBEAT`].
async fn wait_for<B: JobsBackend + ?Sized>(
    backend: &B,
    mut job: Job,
    retry_after: Option<Duration>,
    start: Instant,
    wait: &Wait<'_>,
) -> Result<Waited> {
    let deadline = start + wait.budget;
    let done = |job: Job, end: WaitEnd| Ok(Waited { job, end, notes: Vec::new() });
    if job.status.is_terminal() || wait.budget.is_zero() {
        return done(job, WaitEnd::Done);
    }
    wait.progress.report(start.elapsed().as_secs_f64(), None, &status_message(&job)).await;
    let mut next_beat = Instant::now() + HEARTBEAT;
    let mut attempt = 0u32;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return done(job, WaitEnd::StillRunning);
        }
        let poll_at = (now + poll_delay(attempt, retry_after)).min(deadline);
        loop {
            tokio::select! {
                biased;
                _ = wait.cancel.cancelled() => return done(job, WaitEnd::Cancelled),
                _ = tokio::time::sleep_until(poll_at) => break,
                _ = tokio::time::sleep_until(next_beat) => {
                    wait.progress.report(start.elapsed().as_secs_f64(), None, &status_message(&job)).await;
                    next_beat = Instant::now() + HEARTBEAT;
                }
            }
        }
        let service_id = job.service_id.clone();
        let polled = tokio::select! {
            biased;
            _ = wait.cancel.cancelled() => return done(job, WaitEnd::Cancelled),
            polled = backend.read_job(&job.id, Some(&service_id)) => polled,
        };
        attempt += 1;
        // A busy or unreachable platform does not end the wait: the job runs on regardless.
        let polled = match polled {
            Ok(polled) => polled,
            Err(e) if e.is_transient() || matches!(e, Error::Busy { .. }) => {
                tracing::debug!(job = %job.id, error = %e, "poll failed; trying again later");
                continue;
            }
            Err(e) => return Err(e),
        };
        let changed = polled.status != job.status;
        // Keep a result seen earlier (an inline 200) if this poll's record omits it.
        let (result, content_type) = (job.result.take(), job.result_content_type.take());
        job = polled;
        if job.result.is_none() && result.is_some() {
            job.result = result;
            job.result_content_type = content_type;
        }
        if job.status.is_terminal() {
            wait.progress.report(start.elapsed().as_secs_f64(), None, &status_message(&job)).await;
            return done(job, WaitEnd::Done);
        }
        if changed {
            wait.progress.report(start.elapsed().as_secs_f64(), None, &status_message(&job)).await;
            next_beat = Instant::now() + HEARTBEAT;
        }
    }
}

/// Runs `fut`, reporting `message` every [`HEARTBEAT`] until it completes.
async fn with_heartbeats<T>(
    fut: impl std::future::Future<Output = T>,
    start: Instant,
    progress: &dyn Progress,
    message: &str,
) -> T {
    tokio::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => return out,
            _ = tokio::time::sleep(HEARTBEAT) => {
                progress.report(start.elapsed().as_secs_f64(), None, &format!("{message} ({} s)", start.elapsed().as_secs())).await;
            }
        }
    }
}

/// Does this media type carry JSON? (`application/json`, `…+json`, and IVCAP's
/// `application/vnd.ivcap.urn:…` result types, which are JSON.)
fn is_json_type(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.contains("json") || ct.starts_with("application/vnd.ivcap")
}

/// A result body as a value: JSON when the type says so (and it parses), text otherwise;
/// binary bodies are described, not shown. `None` for an empty body.
pub fn result_value(content_type: Option<&str>, body: &[u8]) -> Option<Value> {
    if body.is_empty() {
        return None;
    }
    if content_type.is_some_and(is_json_type)
        && let Ok(v) = serde_json::from_slice::<Value>(body)
    {
        return Some(v);
    }
    match std::str::from_utf8(body) {
        Ok(text) => Some(Value::String(text.to_string())),
        Err(_) => Some(Value::String(format!(
            "({} bytes of {}: a binary result, not shown)",
            body.len(),
            content_type.unwrap_or("application/octet-stream")
        ))),
    }
}

/// "job <id> is <status>": what progress reports say while waiting.
pub fn status_message(job: &Job) -> String {
    format!("job {} is {}", job.id, job.status.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn schema() -> Value {
        json!({
            "type": "object", "required": ["msg"],
            "$defs": {"Mode": {"enum": ["fast", "slow"], "type": "string"}},
            "properties": {
                "$schema": {"type": "string", "default": "urn:sd:schema.alpha.request.1"},
                "msg": {"type": "string"}, "times": {"type": "integer"}, "mode": {"$ref": "#/$defs/Mode"}
            }
        })
    }

    #[test]
    fn valid_input_gets_its_schema_default() {
        let (input, note) = prepare_input(Some(&schema()), map(json!({"msg": "hi", "mode": "fast"}))).unwrap();
        assert_eq!(input["$schema"], "urn:sd:schema.alpha.request.1");
        assert_eq!(note, None);
        let (input, _) = prepare_input(Some(&schema()), map(json!({"msg": "hi", "$schema": "mine"}))).unwrap();
        assert_eq!(input["$schema"], "mine");
        let constant = json!({"type": "object", "properties": {"$schema": {"type": "string", "const": "urn:s:c"}}});
        let (input, _) = prepare_input(Some(&constant), map(json!({}))).unwrap();
        assert_eq!(input["$schema"], "urn:s:c");
    }

    #[test]
    fn every_violation_is_listed_with_its_path() {
        let err = prepare_input(Some(&schema()), map(json!({"times": "x", "mode": "medium"}))).unwrap_err().to_string();
        assert!(err.contains("invalid argument 'input'"), "{err}");
        assert!(err.contains("3 problems"), "{err}");
        assert!(err.contains("/times: expected an integer, got the string \"x\""), "{err}");
        assert!(err.contains("/: missing required property 'msg'"), "{err}");
        assert!(err.contains("/mode: "), "{err}");
    }

    #[test]
    fn without_a_schema_the_input_goes_unchecked_and_says_so() {
        let (input, note) = prepare_input(None, map(json!({"a": 1}))).unwrap();
        assert_eq!(input, json!({"a": 1}));
        assert!(note.unwrap().contains("unchecked"));
    }

    #[test]
    fn results_are_json_only_when_the_type_says_so() {
        let vnd = Some("application/vnd.ivcap.urn:sd:schema:batch-tester.1");
        assert_eq!(result_value(vnd, br#"{"a":1}"#), Some(json!({"a": 1})));
        assert_eq!(result_value(Some("text/plain"), br#"{"a":1}"#), Some(json!("{\"a\":1}")));
        assert_eq!(result_value(Some("application/json"), b""), None);
        assert!(result_value(Some("image/png"), &[0xff, 0xfe, 0x00]).unwrap().as_str().unwrap().contains("3 bytes"));
    }

    #[test]
    fn retry_later_is_the_first_delay_then_polling_starts_short_and_slows_down() {
        assert_eq!(poll_delay(0, None), Duration::from_millis(500));
        assert!(poll_delay(3, None) > poll_delay(1, None));
        assert_eq!(poll_delay(100, None), HEARTBEAT);
        let hint = Some(Duration::from_secs(10));
        assert_eq!(poll_delay(0, hint), Duration::from_secs(10));
        assert_eq!(poll_delay(1, hint), Duration::from_millis(500));
        assert_eq!(poll_delay(2, hint), Duration::from_secs(1));
        assert_eq!(poll_delay(100, Some(Duration::from_secs(30))), HEARTBEAT);
        assert_eq!(poll_delay(0, Some(Duration::ZERO)), Duration::from_millis(500));
    }

    /// A backend whose job goes through `statuses`, one per read (the last repeats).
    struct Fake {
        statuses: std::sync::Mutex<Vec<JobStatus>>,
        retry_after: Option<Duration>,
        /// How long a create holds (as a platform `Timeout` would), within its `hold`.
        create_takes: Duration,
        reads: std::sync::Mutex<Vec<Instant>>,
    }

    impl Fake {
        fn new(statuses: &[&str], retry_after: Option<Duration>) -> Self {
            Fake {
                statuses: std::sync::Mutex::new(statuses.iter().rev().map(|s| JobStatus::parse(s)).collect()),
                retry_after,
                create_takes: Duration::ZERO,
                reads: std::sync::Mutex::new(Vec::new()),
            }
        }
        fn job(&self, status: JobStatus) -> Job {
            Job::created("urn:ivcap:job:1".into(), "urn:ivcap:service:s", status)
        }
    }

    #[test]
    fn poll_delay_at_age_follows_the_wait_loop() {
        assert_eq!(poll_delay_at_age(Duration::ZERO, None), poll_delay(0, None));
        // 0.5 + 1 + 1 = 2.5 s of waiting: the loop's fourth delay comes next.
        assert_eq!(poll_delay_at_age(Duration::from_millis(2_600), None), poll_delay(3, None));
        assert_eq!(poll_delay_at_age(Duration::from_secs(3_600), None), poll_delay(100, None));
        let later = Some(Duration::from_secs(7));
        assert_eq!(poll_delay_at_age(Duration::ZERO, later), Duration::from_secs(7));
    }

    #[async_trait::async_trait]
    impl crate::backend::ServicesBackend for Fake {
        async fn list_services(
            &self,
            _: Option<&str>,
            _: &ListOptions,
            _: &PageRequest,
        ) -> Result<Page<crate::backend::ServiceSummary>> {
            Ok(Page::new(vec![], None))
        }
        async fn get_service(&self, service: &str) -> Result<crate::backend::ServiceDetail> {
            Ok(crate::backend::ServiceDetail {
                id: service.into(),
                name: None,
                description: None,
                status: crate::backend::ServiceStatus::Active,
                request_schema: Some(json!({"type": "object"})),
                parameters: Vec::new(),
                note: None,
            })
        }
        async fn tool_services(&self) -> Result<Vec<crate::backend::ToolService>> {
            Ok(vec![])
        }
    }

    #[async_trait::async_trait]
    impl crate::backend::SecretsBackend for Fake {
        async fn list_secrets(&self, _: Option<&str>, _: &PageRequest) -> Result<Page<crate::backend::SecretInfo>> {
            Ok(Page::new(vec![], None))
        }
    }

    #[async_trait::async_trait]
    impl JobsBackend for Fake {
        async fn create_job(&self, _: &str, _: &Value, hold: Duration) -> Result<Created> {
            tokio::time::sleep(self.create_takes.min(hold)).await;
            Ok(Created { job: self.job(JobStatus::Pending), retry_after: self.retry_after })
        }
        async fn read_job(&self, _: &str, service_id: Option<&str>) -> Result<Job> {
            assert_eq!(service_id, Some("urn:ivcap:service:s"), "polls pass the known service");
            self.reads.lock().unwrap().push(Instant::now());
            let mut statuses = self.statuses.lock().unwrap();
            let status = if statuses.len() > 1 { statuses.pop() } else { statuses.last().cloned() };
            match status {
                Some(JobStatus::Other(s)) if s == "busy" => Err(Error::Busy { attempts: 5, last: "503".into() }),
                Some(JobStatus::Other(s)) if s == "gone" => {
                    Err(Error::NotFound { kind: crate::error::Missing::Job, id: "1".into() })
                }
                status => Ok(self.job(status.unwrap_or(JobStatus::Unknown))),
            }
        }
        async fn list_jobs(&self, _: &str, _: &ListOptions, _: &PageRequest) -> Result<Page<JobSummary>> {
            Ok(Page::new(vec![], None))
        }
    }

    /// Records every report and when it came.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<Vec<(Duration, String)>>);

    #[async_trait::async_trait]
    impl Progress for Recorder {
        async fn report(&self, elapsed: f64, _total: Option<f64>, message: &str) {
            self.0.lock().unwrap().push((Duration::from_secs_f64(elapsed), message.to_string()));
        }
    }

    fn gaps(times: &[Instant]) -> Vec<Duration> {
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn polls_back_off_and_report_each_status_change() {
        let fake = Fake::new(&["pending", "scheduled", "executing", "executing", "executing", "succeeded"], None);
        let recorder = Recorder::default();
        let wait = Wait { budget: Duration::from_secs(50), cancel: CancellationToken::new(), progress: &recorder };
        let waited = submit_job(&fake, "urn:ivcap:service:s", json!({}), &wait).await.unwrap();
        assert_eq!((waited.job.status, waited.end), (JobStatus::Succeeded, WaitEnd::Done));
        let reads = fake.reads.lock().unwrap().clone();
        assert_eq!(reads.len(), 6);
        let gaps = gaps(&reads);
        assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "delays never shrink: {gaps:?}");
        let messages: Vec<String> = recorder.0.lock().unwrap().iter().map(|(_, m)| m.clone()).collect();
        let statuses: Vec<&str> = messages.iter().filter_map(|m| m.rsplit(' ').next()).collect();
        assert_eq!(statuses, ["finish", "pending", "scheduled", "executing", "succeeded"], "{messages:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_later_is_the_first_delay_and_heartbeats_fill_the_gaps() {
        let fake = Fake::new(&["executing"], Some(Duration::from_secs(25)));
        let recorder = Recorder::default();
        let wait = Wait { budget: Duration::from_secs(50), cancel: CancellationToken::new(), progress: &recorder };
        let start = Instant::now();
        let waited = submit_job(&fake, "urn:ivcap:service:s", json!({}), &wait).await.unwrap();
        assert_eq!(waited.end, WaitEnd::StillRunning);
        assert_eq!(start.elapsed(), Duration::from_secs(50), "returns at the budget");
        let reads = fake.reads.lock().unwrap().clone();
        assert_eq!(reads[0] - start, Duration::from_secs(25), "the first poll waits for retry-later");
        let gaps = gaps(&reads);
        assert_eq!(gaps[0], Duration::from_millis(500), "then short: {gaps:?}");
        // (the last gap ends at the budget)
        assert!(gaps[..gaps.len() - 1].windows(2).all(|w| w[1] >= w[0]), "and growing: {gaps:?}");
        assert!(reads.len() <= 9, "{} polls in 50 s", reads.len());
        let reports: Vec<Duration> = recorder.0.lock().unwrap().iter().map(|(t, _)| *t).collect();
        let mut last = Duration::ZERO;
        for t in &reports {
            assert!(*t - last <= HEARTBEAT, "a gap of {:?} in {reports:?}", *t - last);
            last = *t;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_platform_does_not_end_the_wait_but_a_lost_job_does() {
        let fake = Fake::new(&["busy", "busy", "succeeded"], None);
        let wait = Wait { budget: Duration::from_secs(50), cancel: CancellationToken::new(), progress: &NoProgress };
        let waited = submit_job(&fake, "urn:ivcap:service:s", json!({}), &wait).await.unwrap();
        assert_eq!(waited.job.status, JobStatus::Succeeded);
        let fake = Fake::new(&["gone"], None);
        let err = submit_job(&fake, "urn:ivcap:service:s", json!({}), &wait).await.unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_create_sends_heartbeats_and_keeps_to_the_budget() {
        let fake = Fake { create_takes: Duration::from_secs(60), ..Fake::new(&["executing"], None) };
        let recorder = Recorder::default();
        let wait = Wait { budget: Duration::from_secs(35), cancel: CancellationToken::new(), progress: &recorder };
        let start = Instant::now();
        let waited = submit_job(&fake, "urn:ivcap:service:s", json!({}), &wait).await.unwrap();
        assert_eq!((waited.end, start.elapsed()), (WaitEnd::StillRunning, Duration::from_secs(35)));
        let times: Vec<Duration> = recorder.0.lock().unwrap().iter().map(|(t, _)| *t).collect();
        assert_eq!(times.first(), Some(&Duration::ZERO));
        assert!(times.windows(2).all(|w| w[1] - w[0] <= HEARTBEAT), "{times:?}");
        assert!(times.len() >= 4, "{times:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_stops_the_wait_at_once() {
        let fake = Fake::new(&["executing"], None);
        let cancel = CancellationToken::new();
        let wait = Wait { budget: Duration::from_secs(50), cancel: cancel.clone(), progress: &NoProgress };
        let start = Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            cancel.cancel();
        });
        let waited = get_job(&fake, "urn:ivcap:job:1", Some("urn:ivcap:service:s"), &wait).await.unwrap();
        assert_eq!(waited.end, WaitEnd::Cancelled);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[test]
    fn statuses_parse_and_know_when_they_are_final() {
        for s in ["unknown", "pending", "scheduled", "executing", "succeeded", "failed", "error", "paused"] {
            assert_eq!(JobStatus::parse(s).as_str(), s);
        }
        assert!(JobStatus::parse("failed").is_terminal());
        assert!(!JobStatus::parse("unknown").is_terminal());
        assert!(!JobStatus::parse("paused").is_terminal());
    }
}
