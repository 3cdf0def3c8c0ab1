//! `--oauth`: the HTTP side of the server as an OAuth 2.1 protected resource (MCP
//! authorization spec; docs/deployment.md, "Deploying for a team").
//!
//! - RFC 9728 metadata at `/.well-known/oauth-protected-resource` and at the path-inserted
//!   form (`…/mcp`), so clients find the authorization server;
//! - every other route but `/healthz` (and `/metrics` with `--metrics-public`) needs a bearer
//!   token the [`ResourceServer`] accepts: none → 401 with `WWW-Authenticate: Bearer
//!   resource_metadata="…", scope="…"`; a token that cannot be used → 401 with
//!   `error="invalid_token"`; one lacking a scope → 403 `error="insufficient_scope"`;
//! - an accepted request carries its [`Caller`] in its extensions, where the server layer
//!   finds the user it acts for (rmcp hands it the request's `http::request::Parts`);
//! - a session belongs to the user who opened it: another user's request naming its
//!   `Mcp-Session-Id` is answered 404, as for an unknown session, so a leaked session id
//!   gives no one else its notifications (MCP security best practices: bind sessions to users).
//!
//! The token is never logged; refusals are counted in the metrics like the guard's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::auth::{Refusal, ResourceServer, UserId};
use crate::telemetry::metrics::{self, Refusal as Counted};

/// Where RFC 9728 metadata is served.
const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The gate and what its answers say.
pub(super) struct Gate {
    server: Arc<ResourceServer>,
    /// `/metrics` needs no token (`--metrics-public`).
    public_metrics: bool,
    /// `resource_metadata="…", scope="…"`: the part every challenge shares.
    challenge: String,
    /// Who opened each session, and when it was last used.
    sessions: Mutex<HashMap<String, (UserId, Instant)>>,
}

/// A session unused this long is forgotten here (rmcp has closed it long before).
const SESSION_IDLE: Duration = Duration::from_secs(24 * 3600);
const SESSION_HEADER: &str = "mcp-session-id";

impl Gate {
    pub(super) fn new(server: Arc<ResourceServer>, public_metrics: bool) -> Self {
        let mut challenge = format!("resource_metadata=\"{}\"", server.metadata_url());
        if !server.scopes.is_empty() {
            challenge.push_str(&format!(", scope=\"{}\"", server.scopes.join(" ")));
        }
        Gate { server, public_metrics, challenge, sessions: Mutex::new(HashMap::new()) }
    }

    /// Whether `user` may use session `id` (unknown sessions are rmcp's to refuse); a use
    /// refreshes the session's idle time.
    fn may_use(&self, id: &str, user: &UserId) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match sessions.get_mut(id) {
            Some((owner, used)) if owner == user => {
                *used = Instant::now();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    fn opened(&self, id: &str, user: UserId) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, (_, used)| now.duration_since(*used) < SESSION_IDLE);
        sessions.insert(id.to_string(), (user, now));
    }

    fn closed(&self, id: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    fn refuse(&self, refusal: &Refusal) -> Response {
        let (status, params, text) = match refusal {
            Refusal::Missing => (
                StatusCode::UNAUTHORIZED,
                self.challenge.clone(),
                "Unauthorized: log in with OAuth; the WWW-Authenticate header names the metadata".to_string(),
            ),
            Refusal::Invalid(why) => (
                StatusCode::UNAUTHORIZED,
                format!("error=\"invalid_token\", error_description=\"{}\", {}", quoted(why), self.challenge),
                format!("Unauthorized: {why}"),
            ),
            Refusal::InsufficientScope(missing) => (
                StatusCode::FORBIDDEN,
                format!(
                    "error=\"insufficient_scope\", error_description=\"the token lacks scope {}\", {}",
                    quoted(&missing.join(" ")),
                    self.challenge
                ),
                format!("Forbidden: the token lacks scope {}", missing.join(" ")),
            ),
        };
        let mut response = (status, text).into_response();
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {params}")) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// Text safe inside a quoted-string of `WWW-Authenticate`.
fn quoted(text: &str) -> String {
    text.chars().filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c)).collect()
}

/// The metadata routes; outside the gate (clients read them before they have a token).
pub(super) fn router(server: Arc<ResourceServer>) -> Router {
    let document = axum::Json(server.metadata());
    let nested = document.clone();
    Router::new()
        .route(METADATA_PATH, get(move || std::future::ready(document.clone())))
        .route(&format!("{METADATA_PATH}/{{*resource}}"), get(move || std::future::ready(nested.clone())))
}

/// The middleware: lets open routes pass, and every other request only with a usable token.
pub(super) async fn gate(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let open = path == "/healthz"
        || path == METADATA_PATH
        || path.starts_with(&format!("{METADATA_PATH}/"))
        || (gate.public_metrics && path == "/metrics");
    if open {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7).filter(|scheme| scheme.eq_ignore_ascii_case("bearer ")).map(|_| &v[7..]))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = presented else {
        metrics::auth_failure(Counted::MissingToken);
        return gate.refuse(&Refusal::Missing);
    };
    match gate.server.authenticate(token).await {
        Ok(caller) => {
            tracing::debug!(user = %caller.user.subject, issuer = %caller.user.issuer, "OAuth request");
            let user = caller.user.clone();
            let session = request.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()).map(str::to_string);
            if let Some(id) = &session
                && !gate.may_use(id, &user)
            {
                tracing::info!(user = %user.subject, issuer = %user.issuer, "refused another user's session");
                return (StatusCode::NOT_FOUND, "Not Found: no such session").into_response();
            }
            let deleting = request.method() == axum::http::Method::DELETE;
            request.extensions_mut().insert(caller);
            let response = next.run(request).await;
            match session {
                Some(id) if deleting && response.status().is_success() => gate.closed(&id),
                Some(_) => {}
                None => {
                    if let Some(id) = response.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
                        gate.opened(id, user);
                    }
                }
            }
            response
        }
        Err(refusal) => {
            metrics::auth_failure(Counted::WrongToken);
            if let Refusal::Invalid(why) = &refusal {
                tracing::info!(reason = %why, "refused an OAuth token");
            }
            gate.refuse(&refusal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_stay_inside_their_quotes() {
        assert_eq!(quoted("a \"b\" \\c\nd"), "a b cd");
    }
}
