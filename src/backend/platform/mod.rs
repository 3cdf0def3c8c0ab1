//! The IVCAP REST client: base URL, bearer auth, timeouts, retries, error mapping and
//! paging, written once here; `<domain>.rs` files hold the calls and their wire types.
//!
//! Follows `docs/ivcap-wire.md`: no redirects are followed, path parameters are
//! percent-encoded, `next` links are parsed as URLs, and only idempotent requests (or
//! requests that never reached the server) are retried. The token is only ever put in the
//! `Authorization` header of requests to the configured base URL.

mod artifacts;
mod aspects;
mod collections;
mod jobs;
mod search;
mod secrets;
mod services;

use std::sync::Arc;
use std::time::{Duration, Instant};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, RequestBuilder, Response, StatusCode, header};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::{Page, PageRequest};
use crate::auth::{Credentials, FixedToken};
use crate::config::{DEFAULT_CHUNK_SIZE, PlatformConfig, Secret};
use crate::error::{Error, Missing, Result, is_transient_status};
use crate::telemetry::{metrics, trace};
use crate::text::truncate;

/// How hard to try again when the platform is busy or unreachable.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First back-off delay; doubles each time, with ±50 % jitter.
    pub initial_delay: Duration,
    /// Longest single delay.
    pub max_delay: Duration,
    /// Longest time spent on one call, retries included.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            budget: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy for tests: the same attempts, with delays of a few milliseconds.
    pub fn fast() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            ..RetryPolicy::default()
        }
    }

    /// The delay before attempt `attempt + 1`, with jitter.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.initial_delay.saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        let capped = exp.min(self.max_delay);
        capped.mul_f64(rand::random_range(0.5..1.5)).min(self.max_delay)
    }

    /// How long to wait before trying again after `attempts` failed attempts (the first at
    /// `start`), or `None` to give up: the failure is not retryable, the attempts are used
    /// up, or the wait would leave the time budget.
    pub(crate) fn next_delay(&self, failure: &Failure, attempts: u32, start: Instant) -> Option<Duration> {
        let delay = failure.delay.unwrap_or_else(|| self.backoff(attempts));
        (failure.retryable && attempts < self.max_attempts && start.elapsed() + delay <= self.budget).then_some(delay)
    }
}

/// One failed attempt: the error, whether trying again is safe and can help, and the wait
/// the platform asked for (`Retry-After`).
pub(crate) struct Failure {
    pub error: Error,
    pub retryable: bool,
    pub delay: Option<Duration>,
}

impl Failure {
    /// A non-2xx answer; retryable when transient and `safe` (idempotent or resumable).
    pub(crate) async fn from_response(resp: Response, target: Target<'_>, safe: bool) -> Self {
        let delay = retry_after(&resp);
        let error = error_from_response(resp, target).await;
        Failure { retryable: safe && error.is_transient(), error, delay }
    }

    /// A failed exchange: retryable when nothing reached the server, or when `safe` and it
    /// failed on the way (timeout, reset, a broken body).
    pub(crate) fn from_transport(e: reqwest::Error, safe: bool) -> Self {
        let retryable = e.is_connect() || (safe && (e.is_timeout() || e.is_request() || e.is_body()));
        Failure { error: Error::Transport(e.without_url().to_string()), retryable, delay: None }
    }

    /// The error to report after `attempts` attempts: a transient failure that outlasted the
    /// retries is "busy", with `context` (what was being done) in front of the last answer.
    pub(crate) fn gave_up(self, attempts: u32, context: &str) -> Error {
        let context = if context.is_empty() { String::new() } else { format!("{context}: ") };
        match self.error {
            Error::Platform { status, message } if is_transient_status(status) => {
                Error::Busy { attempts, last: format!("{context}{status} {message}") }
            }
            Error::Transport(last) if attempts > 1 => Error::Busy { attempts, last: format!("{context}{last}") },
            other => other,
        }
    }
}

/// May a TUS `PATCH` that `status` answered be resumed? The `HEAD` that follows gives the
/// server's true offset, so tus clients resume after every failure but a 4xx other than 409
/// (offset mismatch) and 423 (locked): tus-js-client's rule. 408 and 429 are transient as for
/// any request.
pub(crate) fn resumable_status(status: StatusCode) -> bool {
    !status.is_client_error() || matches!(status.as_u16(), 408 | 409 | 423 | 429)
}

/// What a 404 means for the call at hand.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub kind: Missing,
    pub id: &'a str,
}

/// Talks to one IVCAP deployment.
pub struct PlatformBackend {
    http: reqwest::Client,
    base: String,
    credentials: Arc<dyn Credentials>,
    host_header: Option<String>,
    retry: RetryPolicy,
    /// Which service each job this server has seen runs on, and its `retry-later`.
    jobs: jobs::JobServices,
    /// Bytes per TUS `PATCH` of an upload.
    chunk_size: u64,
}

/// Connect timeout for every request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout for ordinary API calls (long polls and transfers set their own).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

impl PlatformBackend {
    /// A client for `cfg`; no request is made yet.
    pub fn new(cfg: &PlatformConfig) -> Result<Self> {
        let http = crate::http_client()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("ivcap-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(PlatformBackend {
            http,
            base: cfg.base_url.trim_end_matches('/').to_string(),
            credentials: Arc::new(FixedToken(cfg.token.clone())),
            host_header: cfg.host_header.clone(),
            retry: RetryPolicy::default(),
            jobs: jobs::JobServices::default(),
            chunk_size: DEFAULT_CHUNK_SIZE,
        })
    }

    /// Sends these credentials instead of the configured token (a refreshable login, or
    /// the user a request acts for).
    pub fn with_credentials(mut self, credentials: Arc<dyn Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    /// Replaces the retry policy (tests use short delays).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the bytes per upload `PATCH` (at least 1).
    pub fn with_chunk_size(mut self, chunk_size: u64) -> Self {
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// `base + path`; `path` starts with `/1/`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A request with `Host` and the default timeout.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let mut rb = self.http.request(method, self.url(path)).timeout(REQUEST_TIMEOUT);
        if let Some(host) = &self.host_header {
            rb = rb.header(header::HOST, host);
        }
        rb
    }

    /// Sends the request `build` makes, retrying transient failures when `idempotent`
    /// (connection failures before anything was sent are retried always). Non-2xx answers
    /// become typed errors.
    pub(crate) async fn send(
        &self,
        target: Target<'_>,
        idempotent: bool,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response> {
        self.send_accepting(target, idempotent, StatusCode::is_success, build).await
    }

    /// [`send`](Self::send), taking the answers `accept` approves as success (e.g. the 307
    /// of a job create). `build` is a trait object, not a generic: every request shares one
    /// copy of this retry loop's code (it was compiled once per call site and response type).
    pub(crate) async fn send_accepting(
        &self,
        target: Target<'_>,
        idempotent: bool,
        accept: fn(&StatusCode) -> bool,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response> {
        let start = Instant::now();
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            let token = self.credentials.bearer().await?;
            let (result, route) = self.exchange(build(), token.as_ref()).await;
            let failure = match result {
                Ok(resp) if accept(&resp.status()) => return Ok(resp),
                // A refused token is renewed once (a refresh, or a login made meanwhile); the
                // request was not acted on, so sending it again is safe.
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !renewed && token.is_some() => {
                    renewed = true;
                    if let Some(sent) = &token
                        && self.credentials.refused(sent).await?
                    {
                        attempt -= 1;
                        continue;
                    }
                    Failure::from_response(resp, target, idempotent).await
                }
                Ok(resp) => Failure::from_response(resp, target, idempotent).await,
                Err(e) => Failure::from_transport(e, idempotent),
            };
            match self.retry.next_delay(&failure, attempt, start) {
                Some(delay) => {
                    tracing::debug!(attempt, ?delay, error = %failure.error, "retrying IVCAP request");
                    if let Some((method, route)) = route {
                        metrics::ivcap_retry(method.as_str(), route);
                    }
                    tokio::time::sleep(delay).await;
                }
                None => return Err(failure.gave_up(attempt, "")),
            }
        }
    }

    /// Sends one request with `token` and the call's trace context (`traceparent`, `tracestate`) and
    /// records it in the metrics by route template; the method and template come back for
    /// the caller's own records (`None` if the request could not be built).
    pub(crate) async fn exchange(
        &self,
        rb: RequestBuilder,
        token: Option<&Secret>,
    ) -> (reqwest::Result<Response>, Option<(Method, &'static str)>) {
        let rb = match token {
            Some(token) => rb.bearer_auth(token.expose()),
            None => rb,
        };
        let (client, request) = rb.build_split();
        let mut request = match request {
            Ok(request) => request,
            Err(e) => return (Err(e), None),
        };
        if let Some(trace) = trace::current() {
            let headers = request.headers_mut();
            // Both were checked to be printable ASCII when the call began.
            if let Ok(value) = header::HeaderValue::from_str(trace.traceparent()) {
                headers.insert("traceparent", value);
            }
            if let Some(Ok(value)) = trace.tracestate().map(header::HeaderValue::from_str) {
                headers.insert("tracestate", value);
            }
        }
        let method = request.method().clone();
        let route = route_template(request.url().path());
        let start = Instant::now();
        let result = client.execute(request).await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        metrics::ivcap_request(method.as_str(), route, status, start.elapsed());
        (result, Some((method, route)))
    }

    /// `GET path?query` decoded as `T`.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        target: Target<'_>,
    ) -> Result<T> {
        let resp = self.send(target, true, &|| self.request(Method::GET, path).query(query)).await?;
        decode(resp).await
    }

    /// One page of an IVCAP list at `path`. On the first page `filters` are sent; on later
    /// pages only `page` and `limit` (IVCAP ignores the rest then).
    pub(crate) async fn get_list<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, String)],
        page: &PageRequest,
        target: Target<'_>,
    ) -> Result<Page<T>> {
        let (query, sent) = page_query(page, filters)?;
        let list: ListRt<T> = self.get_json(path, &query, target).await?;
        list.into_page(sent.as_deref())
    }
}

/// The IVCAP path `path` with every id replaced by `{id}` (`/1/services2/{id}/jobs/{id}`),
/// for metric labels: a path that fits none of the API's routes (docs/ivcap-wire.md) is
/// `other`, so no id, name or token of a caller's can become a label.
pub(crate) fn route_template(path: &str) -> &'static str {
    const ROUTES: [&str; 14] = [
        "/1/services2",
        "/1/services2/{id}",
        "/1/services2/{id}/jobs",
        "/1/services2/{id}/jobs/{id}",
        "/1/services2/{id}/jobs/{id}/output",
        "/1/artifacts",
        "/1/artifacts/{id}",
        "/1/artifacts/{id}/blob",
        "/1/aspects",
        "/1/aspects/{id}",
        "/1/search",
        "/1/secrets",
        "/1/secrets/list",
        "/1/secrets/{id}",
    ];
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // The first route that fits, literal routes listed before `{id}` ones of the same shape.
    ROUTES
        .into_iter()
        .find(|route| {
            let parts: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();
            parts.len() == segments.len() && parts.iter().zip(&segments).all(|(p, s)| *p == "{id}" || p == s)
        })
        .unwrap_or("other")
}

/// Query parameters of a request.
pub(crate) type Query<'a> = Vec<(&'a str, String)>;

/// The query of one page: `limit` and `page`, or `limit` and `filters` on the first page;
/// with the backend token sent, if any.
pub(crate) fn page_query<'a>(page: &PageRequest, filters: &[(&'a str, String)]) -> Result<(Query<'a>, Option<String>)> {
    let sent = page.inner_token()?;
    let mut query: Query<'a> = vec![("limit", page.limit.to_string())];
    match &sent {
        Some(token) => query.push(("page", token.clone())),
        None => query.extend(filters.iter().cloned()),
    }
    Ok((query, sent))
}

/// The list envelope every IVCAP list (and search) answers with.
#[derive(Debug, Deserialize)]
pub(crate) struct ListRt<T> {
    pub items: Vec<T>,
    #[serde(default)]
    links: Vec<LinkT>,
}

impl<T> ListRt<T> {
    /// The page of this answer; a `next` link that repeats the token sent ends the list
    /// (a loop guard).
    pub(crate) fn into_page(self, sent: Option<&str>) -> Result<Page<T>> {
        let next = next_page_token(&self.links)?.filter(|t| Some(t.as_str()) != sent);
        Ok(Page::new(self.items, next.as_deref()))
    }
}

/// `{href, rel, type}`.
#[derive(Debug, Deserialize)]
struct LinkT {
    href: String,
    #[serde(default)]
    rel: String,
}

/// The `page` parameter of the `next` link, decoded; `None` when there is no next page.
fn next_page_token(links: &[LinkT]) -> Result<Option<String>> {
    let Some(next) = links.iter().find(|l| l.rel == "next") else { return Ok(None) };
    let url = url::Url::parse(&next.href)
        .map_err(|e| Error::UnexpectedAnswer(format!("the next-page link is not a URL ({e})")))?;
    Ok(url.query_pairs().find(|(k, _)| k == "page").map(|(_, v)| v.into_owned()).filter(|v| !v.is_empty()))
}

/// Reads a JSON body as `T`, naming the failing field when the shape is wrong.
pub(crate) async fn decode<T: DeserializeOwned>(resp: Response) -> Result<T> {
    let bytes = resp.bytes().await.map_err(|e| Error::Transport(e.without_url().to_string()))?;
    decode_bytes(&bytes)
}

/// [`decode`] of a body already read.
fn decode_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de)
        .map_err(|e| Error::UnexpectedAnswer(format!("{} at '{}'", e.inner(), e.path())))
}

/// Captured platform payloads (`tests/fixtures/platform/<domain>/<name>.json`, one per
/// response type of the wire contract), for the tests that decode them into the wire types.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde::de::DeserializeOwned;

    /// The raw bytes of fixture `rel` (e.g. `"jobs/read.json"`).
    pub(crate) fn bytes(rel: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/platform/{rel}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path}: {e}"))
    }

    /// Fixture `rel` decoded as `T`, exactly as an answer from IVCAP would be.
    pub(crate) fn decode<T: DeserializeOwned>(rel: &str) -> T {
        super::decode_bytes(&bytes(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
    }
}

/// Characters kept as they are in a path segment; `:` is encoded too, as the spec shows.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one path parameter (`urn:ivcap:…` → `urn%3Aivcap%3A…`).
pub(crate) fn enc(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// `Retry-After` in seconds or as an HTTP date.
pub(crate) fn retry_after(resp: &Response) -> Option<Duration> {
    let value = resp.headers().get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (when.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

/// Error body keys IVCAP uses (docs/ivcap-wire.md §4); all optional.
#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<serde_json::Value>,
}

/// Largest part of an error body we read or quote.
const ERROR_BODY_LIMIT: usize = 500;

/// Maps a non-2xx answer to [`Error`], parsing the body leniently.
pub(crate) async fn error_from_response(resp: Response, target: Target<'_>) -> Error {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let message = error_message(status, &body);
    match status.as_u16() {
        401 => Error::Unauthorised {
            status: 401,
            detail: "IVCAP refused the token: log in again with `ivcap-mcp login` and start the server with \
                     `--context`, or set a fresh IVCAP_JWT"
                .into(),
        },
        403 => Error::Unauthorised {
            status: 403,
            detail: format!(
                "IVCAP says: {message}; this login may not do that: ask for access, or log in as another user with `ivcap-mcp login`"
            ),
        },
        404 => Error::NotFound { kind: target.kind, id: target.id.to_string() },
        code => Error::Platform { status: code, message },
    }
}

/// The most useful text in an error body: JSON `message` (with `name`/`value` for 422),
/// else the start of the text, else the status line.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body)
        && let Some(message) = parsed.message.filter(|m| !m.trim().is_empty())
    {
        let mut out = truncate(message.trim(), ERROR_BODY_LIMIT);
        if let Some(name) = parsed.name {
            out = format!("parameter '{name}': {out}");
        }
        if let Some(value) = parsed.value {
            out.push_str(&format!(" (value {value})"));
        }
        return out;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() && !text.starts_with('{') {
        return truncate(text, ERROR_BODY_LIMIT);
    }
    status.canonical_reason().unwrap_or("no message").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_captured_error_body_gives_its_message() {
        let cases = [
            (400, "Having problem with some of the supplied information"),
            (403, "Not authorized to perform this action"),
            (404, "Resource 123e4567 not found"),
            (415, "cannot handle 'application/foo'"),
            (422, "parameter 'timestamp': cannot parse date (value \"today\")"),
            (424, "found 3 matches."),
            (501, "Method 'x' not implemented"),
        ];
        for (status, message) in cases {
            let body = fixtures::bytes(&format!("errors/{status}.json"));
            let code = StatusCode::from_u16(status).unwrap();
            assert_eq!(error_message(code, &body), message, "{status}");
            let _: ErrorBody = fixtures::decode(&format!("errors/{status}.json"));
        }
    }

    #[test]
    fn a_captured_list_with_a_next_link_pages_on() {
        let list: ListRt<serde_json::Value> = fixtures::decode("aspects/list.json");
        let page = list.into_page(None).unwrap();
        assert_eq!(page.items.len(), 1);
        let token = crate::backend::paging::unwrap_token(&page.next_page.unwrap()).unwrap();
        assert_eq!(token, "YXNwZWN0cy8y");
        let again: ListRt<serde_json::Value> = fixtures::decode("aspects/list.json");
        assert_eq!(again.into_page(Some("YXNwZWN0cy8y")).unwrap().next_page, None, "a repeated token ends the list");
    }

    #[test]
    fn error_messages_are_parsed_leniently() {
        let s = StatusCode::UNPROCESSABLE_ENTITY;
        assert_eq!(
            error_message(s, br#"{"message":"cannot parse date","name":"timestamp","value":"today"}"#),
            "parameter 'timestamp': cannot parse date (value \"today\")"
        );
        assert_eq!(error_message(StatusCode::BAD_REQUEST, br#"{"id":"x"}"#), "Bad Request");
        assert_eq!(error_message(StatusCode::BAD_GATEWAY, b"upstream died"), "upstream died");
        assert_eq!(error_message(StatusCode::SERVICE_UNAVAILABLE, b""), "Service Unavailable");
        let long = "x".repeat(2000);
        assert!(error_message(StatusCode::BAD_REQUEST, long.as_bytes()).len() < 600);
    }

    #[test]
    fn routes_are_labelled_by_template_without_ids() {
        let cases = [
            ("/1/services2", "/1/services2"),
            ("/1/services2/urn%3Aivcap%3Aservice%3Aa", "/1/services2/{id}"),
            ("/1/services2/urn%3As/jobs/urn%3Aivcap%3Ajob%3A1/output", "/1/services2/{id}/jobs/{id}/output"),
            ("/1/artifacts/urn:ivcap:artifact:1/blob", "/1/artifacts/{id}/blob"),
            ("/1/aspects/", "/1/aspects"),
            ("/1/secrets/list", "/1/secrets/list"),
            ("/1/secrets/my-secret", "/1/secrets/{id}"),
            ("/1/artifacts/search", "/1/artifacts/{id}"),
            ("/1/services2/urn%3As/jobs", "/1/services2/{id}/jobs"),
            ("/upload/tus/abc123", "other"),
            ("/1/services2/a/b/c/d/e", "other"),
        ];
        for (path, route) in cases {
            assert_eq!(route_template(path), route, "{path}");
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(enc("urn:ivcap:service:a b/c"), "urn%3Aivcap%3Aservice%3Aa%20b%2Fc");
    }

    #[test]
    fn next_link_token_is_read_by_url_parsing() {
        let links = vec![
            LinkT { href: "https://a/1/x".into(), rel: "self".into() },
            LinkT { href: "https://a/1/x?limit=2&page=ab%2Bc".into(), rel: "next".into() },
        ];
        assert_eq!(next_page_token(&links).unwrap().as_deref(), Some("ab+c"));
        assert_eq!(next_page_token(&links[..1]).unwrap(), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.backoff(1) <= Duration::from_millis(300));
        assert!(p.backoff(10) <= p.max_delay);
    }

    #[test]
    fn transient_errors() {
        assert!(Error::Platform { status: 503, message: String::new() }.is_transient());
        assert!(!Error::Platform { status: 400, message: String::new() }.is_transient());
        assert!(Error::Transport("reset".into()).is_transient());
    }

    fn failure(status: u16, retryable: bool) -> Failure {
        Failure { error: Error::Platform { status, message: "m".into() }, retryable, delay: None }
    }

    #[test]
    fn the_policy_gives_up_on_attempts_budget_or_a_final_answer() {
        let p = RetryPolicy::fast();
        let start = Instant::now();
        assert!(p.next_delay(&failure(503, true), 1, start).is_some_and(|d| d <= p.max_delay));
        assert_eq!(p.next_delay(&failure(503, true), p.max_attempts, start), None);
        assert_eq!(p.next_delay(&failure(400, false), 1, start), None);
        let asked = Failure { delay: Some(Duration::from_secs(3600)), ..failure(429, true) };
        assert_eq!(p.next_delay(&asked, 1, start), None, "a Retry-After past the budget ends it");
    }

    #[test]
    fn uploads_resume_after_everything_but_a_final_client_error() {
        let resumable = |code: u16| resumable_status(StatusCode::from_u16(code).unwrap());
        for code in [500, 501, 502, 503, 504, 520, 408, 409, 423, 429] {
            assert!(resumable(code), "{code}");
        }
        for code in [400, 401, 403, 404, 410, 412, 413, 415, 422] {
            assert!(!resumable(code), "{code}");
        }
    }

    #[test]
    fn giving_up_on_a_transient_failure_says_busy() {
        let busy = failure(503, true).gave_up(5, "uploading bytes 0..10 of 20").to_string();
        assert!(busy.contains("busy") && busy.contains("5 attempts") && busy.contains("uploading bytes"), "{busy}");
        assert!(matches!(failure(400, false).gave_up(1, ""), Error::Platform { status: 400, .. }));
        let once = Failure { error: Error::Transport("refused".into()), retryable: false, delay: None };
        assert!(matches!(once.gave_up(1, ""), Error::Transport(_)));
    }
}
