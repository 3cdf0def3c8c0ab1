//! `url` services: a service written with ivcap-lambda, running on this machine, called as the
//! platform's sidecar calls it (docs/ivcap-wire.md, "A service on a developer's machine").

use std::time::Duration;

use serde_json::Value;

use super::{Outcome, tail};
use crate::backend::jobs::{poll_delay, result_value, retry_later};
use crate::backend::local::LocalBackend;
use crate::error::{Error, Result};

/// Polls of a try-later `Location` in a row that may fail to connect before the job is
/// given up as lost (the service stopped).
const LOST_POLLS: u32 = 3;

/// Runs a job on a locally running service the way the platform's sidecar does: POST with
/// `job-id` and `Timeout` (the caller's `hold`), then follow a `204` try-later until the
/// result, an error status, or `timeout` since the start.
pub(super) async fn post(
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

impl LocalBackend {
    /// The HTTP client for `url` services (no redirects), built on first use.
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
}
