//! The OAuth device authorization grant (RFC 8628), as `ivcap context login` runs it: in
//! two steps, so a caller without a terminal (`ivcap-mcp login` prints; a client can be
//! shown the URL) chooses how the user sees the code (docs/ivcap-wire.md §15).

use std::time::Duration;

use serde::Deserialize;
use tokio::time::Instant;

use super::provider::{AuthProvider, Refusal, Tokens, token_request};
use crate::config::Secret;
use crate::error::{Error, Result};

/// The scopes the CLI asks for; `offline_access` is what brings a refresh token.
pub const SCOPES: &str = "openid profile email offline_access";

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// RFC 8628 §3.2: poll every 5 s unless told otherwise; `slow_down` adds 5 s.
const DEFAULT_INTERVAL: u64 = 5;
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// How long a code lives when the provider does not say.
const DEFAULT_EXPIRES_IN: u64 = 600;

/// A login under way: what the user must see, and the secret code to poll with.
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    device_code: Secret,
    /// The code the user enters at `verification_uri`.
    pub user_code: String,
    pub verification_uri: String,
    /// `verification_uri` with the code in it, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// The wait between polls (grows on `slow_down`).
    pub interval: Duration,
    /// How long the code is good for, from `started`.
    pub expires_in: Duration,
    pub started: Instant,
}

impl DeviceAuthorization {
    /// The address to show the user: the complete one when there is one.
    pub fn url_to_open(&self) -> &str {
        self.verification_uri_complete.as_deref().unwrap_or(&self.verification_uri)
    }
}

#[derive(Deserialize)]
struct CodeAnswer {
    device_code: String,
    user_code: String,
    #[serde(alias = "verification_url")]
    verification_uri: String,
    #[serde(default, alias = "verification_url_complete")]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    interval: Option<u64>,
}

/// Step 1: `POST code-url` (client id, the CLI's scopes, the provider's audience).
pub async fn start(http: &reqwest::Client, provider: &AuthProvider) -> Result<DeviceAuthorization> {
    let form = [("client_id", provider.client_id.as_str()), ("scope", SCOPES), ("audience", provider.audience())];
    let host =
        url::Url::parse(&provider.code_url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let resp = http
        .post(&provider.code_url)
        .form(&form)
        .send()
        .await
        .map_err(|e| Error::Transport(format!("the login provider at {host}: {}", e.without_url())))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| Error::Transport(format!("the login provider at {host}: {e}")))?;
    let answer: CodeAnswer = match serde_json::from_slice(&bytes) {
        Ok(answer) if status.is_success() => answer,
        _ => {
            return Err(Error::UnexpectedAnswer(format!(
                "the login provider at {host} answered {status} to the device code request, without a code"
            )));
        }
    };
    Ok(DeviceAuthorization {
        device_code: Secret::new(answer.device_code),
        user_code: answer.user_code,
        verification_uri: answer.verification_uri,
        verification_uri_complete: answer.verification_uri_complete.filter(|u| !u.is_empty()),
        interval: Duration::from_secs(answer.interval.filter(|i| *i > 0).unwrap_or(DEFAULT_INTERVAL)),
        expires_in: Duration::from_secs(answer.expires_in.filter(|e| *e > 0).unwrap_or(DEFAULT_EXPIRES_IN)),
        started: Instant::now(),
    })
}

/// One poll's outcome short of success or failure.
#[derive(Debug)]
pub enum Poll {
    /// The user has not finished yet (`authorization_pending`).
    Pending,
    /// Poll less often (`slow_down`); the interval has grown by 5 s.
    SlowDown,
    Done(Tokens),
}

/// Why a device login failed, with what to do about it.
fn login_failed(refusal: &Refusal) -> Error {
    let detail = match refusal.error.as_str() {
        "access_denied" => "the login was denied at the provider (access_denied): run `ivcap-mcp login` again and approve it".to_string(),
        "expired_token" => "the login code expired before it was approved (expired_token): run `ivcap-mcp login` again and finish within the time shown".to_string(),
        _ => format!("the login provider refused the login ({refusal}): run `ivcap-mcp login` again"),
    };
    Error::Unauthorised { status: 401, detail }
}

/// Step 2, once: asks the token endpoint whether the user has approved.
pub async fn poll_once(
    http: &reqwest::Client,
    provider: &AuthProvider,
    device: &mut DeviceAuthorization,
) -> Result<Poll> {
    let form = [("grant_type", DEVICE_GRANT), ("device_code", device.device_code.expose())];
    match token_request(http, provider, &form).await? {
        Ok(tokens) => Ok(Poll::Done(tokens)),
        Err(refusal) => match refusal.error.as_str() {
            "authorization_pending" => Ok(Poll::Pending),
            "slow_down" => {
                device.interval += SLOW_DOWN_STEP;
                Ok(Poll::SlowDown)
            }
            _ => Err(login_failed(&refusal)),
        },
    }
}

/// Step 2: polls every `interval` until the user approves, denies, or the code expires.
pub async fn poll_until_done(
    http: &reqwest::Client,
    provider: &AuthProvider,
    device: &mut DeviceAuthorization,
) -> Result<Tokens> {
    let deadline = device.started + device.expires_in;
    loop {
        let wake = Instant::now() + device.interval;
        if wake > deadline {
            return Err(login_failed(&Refusal { error: "expired_token".into(), description: None }));
        }
        tokio::time::sleep_until(wake).await;
        if let Poll::Done(tokens) = poll_once(http, provider, device).await? {
            return Ok(tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    /// A provider whose token endpoint answers `answer` to every poll.
    async fn provider_answering(answer: &'static str) -> AuthProvider {
        let app = axum::Router::new()
            .route(
                "/code",
                post(|| async {
                    axum::Json(serde_json::json!({"device_code": "dc", "user_code": "AB-CD",
                        "verification_uri": "https://p/device", "expires_in": 2, "interval": 1}))
                }),
            )
            .route(
                "/token",
                post(move || async move {
                    (axum::http::StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": answer})))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        AuthProvider {
            id: "p".into(),
            login_url: String::new(),
            token_url: format!("{base}/token"),
            code_url: format!("{base}/code"),
            jwks_url: String::new(),
            client_id: "c".into(),
            audience: None,
        }
    }

    #[tokio::test]
    async fn polling_stops_when_the_code_expires_and_slow_down_adds_five_seconds() {
        let http = super::super::provider::http_client().unwrap();
        let pending = provider_answering("authorization_pending").await;
        let mut device = start(&http, &pending).await.unwrap();
        assert_eq!((device.url_to_open(), device.user_code.as_str()), ("https://p/device", "AB-CD"));
        let started = std::time::Instant::now();
        let e = poll_until_done(&http, &pending, &mut device).await.unwrap_err().to_string();
        assert!(e.contains("expired") && e.contains("ivcap-mcp login"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(3), "gave up at the code's expiry: {:?}", started.elapsed());

        let slow = provider_answering("slow_down").await;
        let mut device = start(&http, &slow).await.unwrap();
        assert!(matches!(poll_once(&http, &slow, &mut device).await.unwrap(), Poll::SlowDown));
        assert_eq!(device.interval, Duration::from_secs(6));
        let denied = provider_answering("access_denied").await;
        let e = poll_once(&http, &denied, &mut device).await.unwrap_err().to_string();
        assert!(e.contains("denied"), "{e}");
    }
}
