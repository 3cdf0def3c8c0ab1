//! A stand-in IVCAP server for tests and benchmarks, built from `docs/ivcap-wire.md` §14.
//!
//! It is strict where real clients are strict, so tests catch wire bugs: bearer auth with an
//! empty-body 401 on every `/1/*` route, percent-decoded paths in both `urn:` and `%3A`
//! forms, form-decoded queries, list envelopes with `{href, rel, type}` links and `at-time`,
//! URL-safe opaque page tokens that carry the original filters (with `page`, everything but
//! `limit` is ignored), the §4 error bodies, and a loud 501 for any route it lacks.
//!
//! Tests seed data ([`StandIn::add_service`] …), inject faults on a route ([`Fault`]:
//! status codes with `Retry-After`, delays, dropped connections) and read back every
//! request ([`StandIn::requests`]). One module per route family. [`auth`] is the deployment's
//! authorization server, for logins and per-user OAuth.

// Handlers return `Result<_, Response>` so an error answer can be returned with `?`; the size is axum's.
#![allow(clippy::result_large_err)]

mod artifacts;
pub mod auth;
// The filter grammar the tools check arguments against; the platform's (docs/ivcap-wire.md §3).
mod aspects;
#[path = "../../../src/backend/filter.rs"]
mod filter;
mod jobs;
mod paging;
mod search;
mod secrets;
mod services;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub use artifacts::{ArtifactRec, PatchEnd};
pub use aspects::{AspectRec, PRINCIPAL};
pub use auth::{AuthControl, DeviceOutcome, IVCAP_AUDIENCE};
pub use jobs::{JOB_ASPECT_SCHEMA, JobOutcome, JobRec, JobScript};
pub use services::ServiceRec;

/// The token the stand-in accepts.
pub const TOKEN: &str = "test-token";

/// Bodies up to this size are recorded.
const RECORD_BODY_LIMIT: usize = 1 << 20;

/// A request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Percent-decoded path.
    pub path: String,
    /// The path exactly as sent.
    pub raw_path: String,
    /// The raw query string.
    pub query: Option<String>,
    pub headers: HeaderMap,
    /// The body, when it was small enough to keep.
    pub body: Option<Vec<u8>>,
}

impl Recorded {
    /// A query parameter, form-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// The W3C trace context the request carried: `traceparent` and `tracestate`.
    pub fn trace_context(&self) -> (Option<String>, Option<String>) {
        (self.header("traceparent"), self.header("tracestate"))
    }
}

/// What a fault does.
#[derive(Debug, Clone)]
pub enum FaultAction {
    /// Answer with this status, headers and body instead of the route.
    Respond { status: u16, headers: Vec<(String, String)>, body: String },
    /// Wait, then answer normally.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
}

/// A fault on requests whose method and decoded path match, for the next `times` of them.
#[derive(Debug, Clone)]
pub struct Fault {
    pub method: Option<Method>,
    pub path_prefix: String,
    pub times: u32,
    pub action: FaultAction,
}

impl Fault {
    /// A fault on `method` (None = any) requests under `path_prefix`, once.
    pub fn on(method: Option<Method>, path_prefix: &str, action: FaultAction) -> Self {
        Fault { method, path_prefix: path_prefix.to_string(), times: 1, action }
    }
    /// An error status with the empty or JSON body IVCAP would send.
    pub fn status(method: Option<Method>, path_prefix: &str, status: u16) -> Self {
        let body = match status {
            401 | 503 => String::new(),
            404 => json!({"id": "cayp:type:000", "message": "Resource not found"}).to_string(),
            s => json!({"message": format!("injected {s}")}).to_string(),
        };
        Fault::on(method, path_prefix, FaultAction::Respond { status, headers: vec![], body })
    }
    /// Repeat for `times` matching requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = times;
        self
    }
    /// Add a response header (e.g. `Retry-After`).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let FaultAction::Respond { headers, .. } = &mut self.action {
            headers.push((name.to_string(), value.to_string()));
        }
        self
    }
}

/// Everything the stand-in holds. Public so tests can seed and inspect freely.
#[derive(Debug, Default)]
pub struct Data {
    pub services: Vec<ServiceRec>,
    pub aspects: Vec<AspectRec>,
    /// `(secret-name, expiry-time)`.
    pub secrets: Vec<(String, i64)>,
    /// Every job created, oldest first.
    pub jobs: Vec<JobRec>,
    /// What the jobs of each service do, by service URN.
    pub job_scripts: std::collections::HashMap<String, JobScript>,
    /// Artifacts, oldest first, with their bytes.
    pub artifacts: Vec<ArtifactRec>,
    /// The next artifact PATCH keeps this many body bytes, then drops the connection or
    /// answers with an error status.
    pub patch_fault: Option<(u64, PatchEnd)>,
    /// Canned search answers: `(query text, items)`.
    pub searches: Vec<(String, Vec<Value>)>,
}

/// Every user's [`Data`]: one set without [`StandIn::require_jwt`] (the user ""), else one per
/// token `sub`.
#[derive(Debug, Default)]
pub(crate) struct Users(std::collections::HashMap<String, Data>);

#[derive(Debug)]
pub(crate) struct Shared {
    users: Mutex<Users>,
    faults: Mutex<VecDeque<Fault>>,
    log: Mutex<Vec<Recorded>>,
    require_auth: Mutex<bool>,
    require_jwt: Mutex<bool>,
    pub(crate) auth: Mutex<auth::AuthState>,
}

tokio::task_local! {
    /// The user the request being served acts for (JWT mode).
    static USER: String;
}

/// One user's data, locked.
pub(crate) struct DataGuard<'a> {
    users: MutexGuard<'a, Users>,
    user: String,
}

impl std::ops::Deref for DataGuard<'_> {
    type Target = Data;
    fn deref(&self) -> &Data {
        // The entry was made when the guard was.
        &self.users.0[&self.user]
    }
}

impl std::ops::DerefMut for DataGuard<'_> {
    fn deref_mut(&mut self) -> &mut Data {
        self.users.0.entry(self.user.clone()).or_default()
    }
}

impl Shared {
    /// The data of the user the current request acts for.
    pub(crate) fn data(&self) -> DataGuard<'_> {
        let user = USER.try_with(String::clone).unwrap_or_default();
        self.data_of(&user)
    }

    fn data_of(&self, user: &str) -> DataGuard<'_> {
        let mut users = lock(&self.users);
        users.0.entry(user.to_string()).or_default();
        DataGuard { users, user: user.to_string() }
    }
}

pub(crate) type AppState = Arc<Shared>;

/// Locks a mutex, surviving a poisoned one (a panicking test must not hide others' results).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running stand-in on an ephemeral loopback port; stops when dropped.
pub struct StandIn {
    base_url: String,
    shared: AppState,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandIn {
    /// Starts a stand-in on 127.0.0.1 with an ephemeral port.
    pub async fn start() -> StandIn {
        let shared = Arc::new(Shared {
            users: Mutex::new(Users::default()),
            faults: Mutex::new(VecDeque::new()),
            log: Mutex::new(Vec::new()),
            require_auth: Mutex::new(true),
            require_jwt: Mutex::new(false),
            auth: Mutex::new(auth::AuthState::default()),
        });
        let app = router(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        StandIn { base_url: format!("http://{addr}"), shared, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Whether `/1/*` requires the bearer token (off = `IVCAP_BASE_URL` mode).
    pub fn require_auth(&self, on: bool) {
        *lock(&self.shared.require_auth) = on;
    }

    /// Whether `/1/*` requires a JWT of the stand-in's issuer for [`IVCAP_AUDIENCE`] (not
    /// [`TOKEN`]), and keeps each user's (`sub`'s) data apart.
    pub fn require_jwt(&self, on: bool) {
        *lock(&self.shared.require_jwt) = on;
    }

    /// Runs `f` on one user's data (JWT mode), for seeding and inspection.
    pub fn with_user_data<R>(&self, user: &str, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.shared.data_of(user))
    }

    /// Adds a fault.
    pub fn fault(&self, fault: Fault) {
        lock(&self.shared.faults).push_back(fault);
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.shared.log).clone()
    }

    /// Requests with this method whose decoded path starts with `prefix`.
    pub fn requests_to(&self, method: Method, prefix: &str) -> Vec<Recorded> {
        self.requests().into_iter().filter(|r| r.method == method && r.path.starts_with(prefix)).collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Runs `f` on the data, for seeding and inspection.
    pub fn with_data<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        f(&mut self.shared.data_of(""))
    }

    /// Adds a secret.
    pub fn add_secret(&self, name: &str, expiry_time: i64) {
        self.with_data(|d| d.secrets.push((name.to_string(), expiry_time)));
    }
}

fn router(shared: AppState) -> Router {
    Router::new()
        .merge(services::routes())
        .merge(artifacts::routes())
        .merge(aspects::routes())
        .merge(jobs::routes())
        .merge(search::routes())
        .merge(secrets::routes())
        .merge(auth::routes())
        .fallback(|m: Method, u: Uri| async move {
            (StatusCode::NOT_IMPLEMENTED, Json(json!({"message": format!("stand-in has no route for {m} {u}")})))
        })
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared)
}

use axum::Json;

/// Records the request, applies faults, then checks the bearer token.
async fn gate(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let raw_path = parts.uri.path().to_string();
    let path = percent_decode(&raw_path);
    let small = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n <= RECORD_BODY_LIMIT);
    let (body, recorded_body) = if small {
        match axum::body::to_bytes(body, RECORD_BODY_LIMIT).await {
            Ok(bytes) => (Body::from(bytes.clone()), Some(bytes.to_vec())),
            Err(_) => return StatusCode::BAD_REQUEST.into_response(),
        }
    } else {
        (body, None)
    };
    lock(&shared.log).push(Recorded {
        method: parts.method.clone(),
        path: path.clone(),
        raw_path,
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers.clone(),
        body: recorded_body,
    });

    let fault = {
        let mut faults = lock(&shared.faults);
        let hit = faults
            .iter()
            .position(|f| f.method.as_ref().is_none_or(|m| *m == parts.method) && path.starts_with(&f.path_prefix));
        hit.and_then(|i| {
            let f = faults.get_mut(i)?;
            f.times = f.times.saturating_sub(1);
            let action = f.action.clone();
            if f.times == 0 {
                faults.remove(i);
            }
            Some(action)
        })
    };
    match fault {
        Some(FaultAction::Respond { status, headers, body }) => {
            let mut resp = Response::builder().status(status);
            for (k, v) in headers {
                resp = resp.header(k, v);
            }
            if !body.is_empty() {
                resp = resp.header("content-type", "application/json");
            }
            return resp.body(Body::from(body)).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
        }
        // Unwinding the connection task closes the socket without an answer; resume_unwind
        // skips the panic hook, so tests stay quiet.
        Some(FaultAction::Drop) => std::panic::resume_unwind(Box::new("stand-in: dropped connection")),
        Some(FaultAction::Delay(d)) => tokio::time::sleep(d).await,
        None => {}
    }

    // The auth provider's description is public, as on the platform.
    let guarded = path.starts_with("/1/") && path != "/1/authinfo.yaml";
    if guarded && *lock(&shared.require_jwt) {
        let Some(user) = auth::ivcap_user(&shared, &parts.headers) else {
            return StatusCode::UNAUTHORIZED.into_response();
        };
        return USER.scope(user, next.run(Request::from_parts(parts, body))).await;
    }
    if guarded && *lock(&shared.require_auth) {
        let ok = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Bearer {TOKEN}"));
        if !ok {
            return StatusCode::UNAUTHORIZED.into_response();
        }
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Decodes `%XX` escapes (paths are not form-encoded: `+` stays).
pub(crate) fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The scheme and authority the client used, for absolute links.
pub(crate) fn origin(headers: &HeaderMap) -> String {
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A §4 error answer.
pub(crate) fn error(status: u16, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(json!({"message": message}))).into_response()
}

/// A §4 404 answer, `{"id","message"}`.
pub(crate) fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"id": format!("cayp:type:{id}"), "message": format!("Resource {id} not found")})),
    )
        .into_response()
}

/// A §4 422 answer.
pub(crate) fn invalid_parameter(name: &str, message: &str, value: &str) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"message": message, "name": name, "value": value}))).into_response()
}

/// Now, as IVCAP writes times.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The `links` array of a record.
pub(crate) fn self_link(href: &str) -> Value {
    json!([{"href": href, "rel": "self", "type": "application/json"}])
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_decode_both_forms() {
        assert_eq!(super::percent_decode("/1/services2/urn%3Aivcap%3Aservice%3Aa"), "/1/services2/urn:ivcap:service:a");
        assert_eq!(super::percent_decode("/1/services2/urn:ivcap:service:a+b"), "/1/services2/urn:ivcap:service:a+b");
    }
}
