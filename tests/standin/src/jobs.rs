//! Jobs (docs/ivcap-wire.md §6): create with the `Timeout` long-poll (200 with the result inline,
//! 202 with `job-id`/`retry-later`, or a scripted 307), read, list with paging, and the
//! output endpoint. Each service runs a scripted state machine that tests choose with
//! [`StandIn::script_jobs`]: the outcome (succeed with a result or an echo of the request,
//! fail with a message, error) and how long a job runs, going `pending → scheduled →
//! executing → outcome` over that time. Every created job also gets its Datafabric record,
//! a `urn:ivcap:schema:job.2` aspect on the job URN, as the platform (and the ivcap CLI) has.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::paging::{envelope, json_field, list_params, order_desc, select};
use crate::services::AI_TOOL_SCHEMA;
use crate::{AppState, AspectRec, StandIn, error, invalid_parameter, not_found, now, origin, self_link};

/// Schema of a job's Datafabric record.
pub const JOB_ASPECT_SCHEMA: &str = "urn:ivcap:schema:job.2";

/// How a scripted job ends.
#[derive(Debug, Clone)]
pub enum JobOutcome {
    /// Succeeds with the request as its result.
    Echo,
    /// Succeeds with this result.
    Succeed(Value),
    /// Fails with this error message.
    Fail(String),
    /// Ends in `error` with this message.
    Error(String),
}

/// What jobs of one service do.
#[derive(Debug, Clone)]
pub struct JobScript {
    pub outcome: JobOutcome,
    /// How long a job takes from request to its outcome.
    pub run_for: Duration,
    /// The `retry-later` of a 202, in seconds.
    pub retry_later: u64,
    /// Whether the job record carries `result-content` (else only the output endpoint has it).
    pub result_in_record: bool,
    /// The result's media type.
    pub content_type: String,
    /// Answer creates with a 307 to the job instead of 200/202.
    pub redirect: bool,
    /// Artifact ids a succeeded job lists as its `products`.
    pub products: Vec<String>,
}

impl Default for JobScript {
    fn default() -> Self {
        JobScript {
            outcome: JobOutcome::Echo,
            run_for: Duration::ZERO,
            retry_later: 1,
            result_in_record: true,
            content_type: "application/json".into(),
            redirect: false,
            products: Vec::new(),
        }
    }
}

impl JobScript {
    pub fn echo() -> Self {
        JobScript::default()
    }
    pub fn succeed(result: Value) -> Self {
        JobScript { outcome: JobOutcome::Succeed(result), ..JobScript::default() }
    }
    pub fn fail(message: &str) -> Self {
        JobScript { outcome: JobOutcome::Fail(message.into()), ..JobScript::default() }
    }
    pub fn error(message: &str) -> Self {
        JobScript { outcome: JobOutcome::Error(message.into()), ..JobScript::default() }
    }
    /// Jobs take `d` to finish.
    pub fn running_for(mut self, d: Duration) -> Self {
        self.run_for = d;
        self
    }
    pub fn retry_later(mut self, seconds: u64) -> Self {
        self.retry_later = seconds;
        self
    }
    /// The record holds no result; only `…/output` serves it.
    pub fn output_only(mut self) -> Self {
        self.result_in_record = false;
        self
    }
    pub fn content_type(mut self, ct: &str) -> Self {
        self.content_type = ct.into();
        self
    }
    pub fn redirect(mut self) -> Self {
        self.redirect = true;
        self
    }
    /// A succeeded job lists these artifacts as its `products`.
    pub fn products(mut self, ids: &[&str]) -> Self {
        self.products = ids.iter().map(|i| i.to_string()).collect();
        self
    }
}

/// A created job.
#[derive(Debug, Clone)]
pub struct JobRec {
    pub id: String,
    pub service: String,
    pub request: Value,
    pub requested_at: DateTime<Utc>,
    pub created: Instant,
    pub script: JobScript,
}

impl JobRec {
    /// The status now, from the time since the request.
    pub fn status(&self) -> &'static str {
        let run = self.script.run_for.as_secs_f64();
        let elapsed = self.created.elapsed().as_secs_f64();
        if elapsed >= run {
            match self.script.outcome {
                JobOutcome::Echo | JobOutcome::Succeed(_) => "succeeded",
                JobOutcome::Fail(_) => "failed",
                JobOutcome::Error(_) => "error",
            }
        } else if elapsed < run * 0.1 {
            "pending"
        } else if elapsed < run * 0.2 {
            "scheduled"
        } else {
            "executing"
        }
    }

    fn terminal(&self) -> bool {
        matches!(self.status(), "succeeded" | "failed" | "error")
    }

    fn at(&self, fraction: f64) -> String {
        let offset = chrono::Duration::from_std(self.script.run_for.mul_f64(fraction)).unwrap_or_default();
        (self.requested_at + offset).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    fn result(&self) -> Option<Value> {
        match &self.script.outcome {
            JobOutcome::Echo => Some(self.request.clone()),
            JobOutcome::Succeed(v) => Some(v.clone()),
            _ => None,
        }
    }

    fn error_message(&self) -> Option<&str> {
        match &self.script.outcome {
            JobOutcome::Fail(m) | JobOutcome::Error(m) => Some(m),
            _ => None,
        }
    }

    fn href(&self, origin: &str) -> String {
        format!("{origin}/1/services2/{}/jobs/{}", self.service, self.id)
    }

    /// The result body as sent: JSON, or a string's text for other types.
    fn result_bytes(&self) -> Option<Vec<u8>> {
        let result = self.result()?;
        Some(match result {
            Value::String(s) if !self.script.content_type.contains("json") => s.into_bytes(),
            other => other.to_string().into_bytes(),
        })
    }

    /// A 200 with the result and the IVCAP headers.
    fn result_response(&self, origin: &str) -> Response {
        let Some(bytes) = self.result_bytes() else { return StatusCode::NO_CONTENT.into_response() };
        Response::builder()
            .status(StatusCode::OK)
            .header("content-type", &self.script.content_type)
            .header("IVCAP-Job-Id", &self.id)
            .header("IVCAP-Job-URL", self.href(origin))
            .header("IVCAP-Order-Id", "urn:ivcap:order:00000000-0000-0000-0000-000000000001")
            .body(Body::from(bytes))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

impl StandIn {
    /// Jobs of `service_id` follow `script` (default: succeed at once, echoing the request).
    pub fn script_jobs(&self, service_id: &str, script: JobScript) {
        self.with_data(|d| {
            d.job_scripts.insert(service_id.to_string(), script);
        });
    }

    /// Every job created so far.
    pub fn jobs(&self) -> Vec<JobRec> {
        self.with_data(|d| d.jobs.clone())
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1/services2/{id}/jobs", get(list).post(create))
        .route("/1/services2/{id}/jobs/{jid}", get(read))
        .route("/1/services2/{id}/jobs/{jid}/output", get(output))
}

/// The `required` properties of the service's (newest) request schema.
fn required_of(aspects: &[AspectRec], service: &str) -> Vec<String> {
    aspects
        .iter()
        .filter(|a| a.entity == service && a.schema == AI_TOOL_SCHEMA && a.valid_to.is_none())
        .max_by(|a, b| a.valid_from.cmp(&b.valid_from))
        .and_then(|a| a.content.pointer("/fn_schema/required").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

async fn create(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    let origin = origin(&headers);
    if !headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json")) {
        return error(400, "Content-Type must be application/json");
    }
    let timeout = match headers.get("timeout").map(|v| v.to_str().unwrap_or("").trim().to_string()) {
        None => 0,
        Some(v) => match v.parse::<u64>() {
            Ok(n) => n,
            Err(_) => return error(400, &format!("invalid Timeout header '{v}': expected whole seconds")),
        },
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return error(400, "Having problem with some of the supplied information"),
    };
    let job = {
        let mut d = s.data();
        if !d.services.iter().any(|svc| svc.id == id) {
            return not_found(&id);
        }
        if !request.is_object() {
            return invalid_parameter("body", "the request must be a JSON object", &request.to_string());
        }
        if let Some(missing) = required_of(&d.aspects, &id).into_iter().find(|k| request.get(k).is_none()) {
            return invalid_parameter("body", &format!("missing required property '{missing}'"), &request.to_string());
        }
        let job = JobRec {
            id: format!("urn:ivcap:job:{}", uuid::Uuid::new_v4()),
            service: id.clone(),
            request,
            requested_at: Utc::now(),
            created: Instant::now(),
            script: d.job_scripts.get(&id).cloned().unwrap_or_default(),
        };
        let requested_at = job.at(0.0);
        d.aspects.push(AspectRec::new(
            &job.id,
            JOB_ASPECT_SCHEMA,
            json!({"$schema": JOB_ASPECT_SCHEMA, "id": job.id, "service-id": id, "status": "pending",
                   "requested-at": requested_at}),
        ));
        d.jobs.push(job.clone());
        job
    };
    if job.script.redirect {
        return Response::builder()
            .status(StatusCode::TEMPORARY_REDIRECT)
            .header("location", job.href(&origin))
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let until = Instant::now() + Duration::from_secs(timeout);
    while timeout > 0 && !job.terminal() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if timeout > 0 && job.status() == "succeeded" {
        return job.result_response(&origin);
    }
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({"job-id": job.id, "location": job.href(&origin), "retry-later": job.script.retry_later})),
    )
        .into_response()
}

fn find(s: &AppState, service: &str, job: &str) -> Option<JobRec> {
    s.data().jobs.iter().find(|j| j.id == job && j.service == service).cloned()
}

async fn read(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((sid, jid)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(job) = find(&s, &sid, &jid) else { return not_found(&jid) };
    let flag = |name: &str| {
        url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v == "true")
    };
    let status = job.status();
    let origin = origin(&headers);
    let mut record = json!({
        "id": job.id, "name": format!("job-{}", &job.id[job.id.len().saturating_sub(8)..]), "status": status,
        "service": job.service, "order": "urn:ivcap:order:00000000-0000-0000-0000-000000000001",
        "account": "urn:ivcap:account:00000000-0000-0000-0000-000000000001",
        "policy": "urn:ivcap:policy:ivcap.base.service", "requested-at": job.at(0.0),
        "request-content-type": "application/json", "links": self_link(&job.href(&origin)),
    });
    if !matches!(status, "pending" | "scheduled") {
        record["started-at"] = json!(job.at(0.2));
    }
    if job.terminal() {
        record["finished-at"] = json!(job.at(1.0));
    }
    if let Some(message) = job.error_message().filter(|_| job.terminal()) {
        record["error-message"] = json!(message);
    }
    if status == "succeeded" && job.script.result_in_record && flag("with-result-content") != Some(false) {
        record["result-content"] = job.result().unwrap_or(Value::Null);
        record["result-content-type"] = json!(job.script.content_type);
    }
    if flag("with-request-content") == Some(true) {
        record["request-content"] = job.request.clone();
    }
    if status == "succeeded" && !job.script.products.is_empty() {
        let d = s.data();
        let items: Vec<Value> = job
            .script
            .products
            .iter()
            .filter_map(|id| d.artifacts.iter().find(|a| &a.id == id))
            .map(|a| {
                json!({"id": a.id, "status": a.status, "href": format!("{origin}/1/artifacts/{}", a.id),
                       "name": a.name, "mime-type": a.mime_type, "size": a.size})
            })
            .collect();
        record["products"] = json!({"items": items, "links": []});
    }
    axum::Json(record).into_response()
}

async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(sid): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let lp = match list_params(q.as_deref()) {
        Ok(lp) => lp,
        Err(e) => return e,
    };
    let at = match lp.get("at-time") {
        None => None,
        Some(t) => match chrono::DateTime::parse_from_rfc3339(t) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => return invalid_parameter("at-time", "cannot parse date", t),
        },
    };
    let origin = origin(&headers);
    let jobs: Vec<JobRec> = {
        let d = s.data();
        if !d.services.iter().any(|svc| svc.id == sid) {
            return not_found(&sid);
        }
        d.jobs.iter().filter(|j| j.service == sid && at.is_none_or(|t| j.requested_at <= t)).rev().cloned().collect()
    };
    let items = jobs
        .iter()
        .map(|j| {
            let mut item = json!({"id": j.id, "status": j.status(), "service": j.service, "href": j.href(&origin)});
            if !matches!(j.status(), "pending" | "scheduled") {
                item["started-at"] = json!(j.at(0.2));
            }
            if j.terminal() {
                item["finished-at"] = json!(j.at(1.0));
            }
            item
        })
        .collect();
    const FIELDS: &[&str] = &["id", "status", "started-at", "finished-at"];
    let items = match select(items, &lp, FIELDS, &FIELDS[1..], order_desc(&lp), json_field) {
        Ok(items) => items,
        Err(e) => return e,
    };
    axum::Json(envelope(items, &lp, &origin, &format!("/1/services2/{sid}/jobs"), Some(now()))).into_response()
}

async fn output(State(s): State<AppState>, headers: HeaderMap, Path((sid, jid)): Path<(String, String)>) -> Response {
    let Some(job) = find(&s, &sid, &jid) else { return not_found(&jid) };
    match job.status() {
        "succeeded" => job.result_response(&origin(&headers)),
        "failed" => error(400, job.error_message().unwrap_or("job request error")),
        "error" => error(500, job.error_message().unwrap_or("job internal error")),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}
