//! What the server sends to IVCAP for an OAuth user (`--oauth-upstream`). Never the token a
//! client presented unless it was issued for IVCAP too:
//! - `exchange`: an RFC 8693 token exchange at the issuer's token endpoint, with the server's
//!   own client credentials, for a token with IVCAP's audience; kept per user until shortly
//!   before it expires;
//! - `same-audience`: the presented token as is, accepted (by the middleware) only when its
//!   `aud` also holds IVCAP's audience.
//!
//! Each user's [`UserCredentials`] is the [`Credentials`] of that user's platform backend; it
//! always exchanges the newest token the user presented.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::access_token::{Refusal, UserId, Verified};
use super::idle_map::IdleMap;
use super::{Credentials, provider};
use crate::config::{OAuthUpstream, Secret};
use crate::error::{Error, Result};

/// An exchanged token is used until this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime assumed when the exchange answer gives no `expires_in`.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);
/// A user's credentials are dropped after this long without a request.
pub const IDLE: Duration = Duration::from_secs(30 * 60);

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The issuer's token endpoint and the server's client there.
pub struct Exchanger {
    http: reqwest::Client,
    token_endpoint: String,
    client_id: String,
    client_secret: Secret,
    /// IVCAP's audience: what the exchanged token is for.
    audience: String,
}

impl Exchanger {
    pub fn new(http: reqwest::Client, token_endpoint: String, client: (String, Secret), audience: String) -> Self {
        Exchanger { http, token_endpoint, client_id: client.0, client_secret: client.1, audience }
    }

    /// Exchanges `subject` (a user's token) for one with IVCAP's audience.
    async fn exchange(&self, subject: &Secret) -> Result<(Secret, Instant)> {
        let form = [
            ("grant_type", TOKEN_EXCHANGE),
            ("subject_token", subject.expose()),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("requested_token_type", ACCESS_TOKEN_TYPE),
            ("audience", self.audience.as_str()),
        ];
        let sent = Instant::now();
        let client = provider::Client::Basic { id: &self.client_id, secret: &self.client_secret };
        match provider::token_post(&self.http, &self.token_endpoint, client, &form).await? {
            Ok(tokens) => {
                let lifetime = tokens.expires_in.map_or(ASSUMED_LIFETIME, Duration::from_secs);
                Ok((tokens.access_token, sent + lifetime.saturating_sub(EXPIRY_MARGIN)))
            }
            Err(refusal) => {
                // Say whose fix it is: a refused user token needs a new login, anything else the
                // server's set-up (an `Unauthorised` error would tell the user to check IVCAP_JWT).
                let fix = if refusal.error == "invalid_grant" {
                    "log in again in your MCP client".to_string()
                } else {
                    format!(
                        "the operator must let client '{}' exchange tokens for audience {} (docs/deployment.md, \
                         \"Deploying for a team\")",
                        self.client_id, self.audience
                    )
                };
                Err(Error::Config(format!(
                    "the server could not exchange the user's token for one for IVCAP ({} refused it: {refusal}); {fix}",
                    self.token_endpoint,
                )))
            }
        }
    }
}

/// One user's way to IVCAP.
#[derive(Debug)]
pub struct UserCredentials {
    user: UserId,
    /// The newest token the user presented (verified by the middleware).
    presented: Mutex<Secret>,
    exchange: Option<Arc<Exchanger>>,
    /// The exchanged token and when to stop using it.
    exchanged: tokio::sync::Mutex<Option<(Secret, Instant)>>,
}

impl std::fmt::Debug for Exchanger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchanger").field("token_endpoint", &self.token_endpoint).finish_non_exhaustive()
    }
}

impl UserCredentials {
    pub fn user(&self) -> &UserId {
        &self.user
    }
}

#[async_trait::async_trait]
impl Credentials for UserCredentials {
    async fn bearer(&self) -> Result<Option<Secret>> {
        let presented = self.presented.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let Some(exchanger) = &self.exchange else { return Ok(Some(presented)) };
        let mut exchanged = self.exchanged.lock().await;
        if let Some((token, until)) = exchanged.as_ref()
            && Instant::now() < *until
        {
            return Ok(Some(token.clone()));
        }
        let (token, until) = exchanger.exchange(&presented).await?;
        tracing::debug!(user = %self.user, "exchanged the user's token for an IVCAP token");
        *exchanged = Some((token.clone(), until));
        Ok(Some(token))
    }

    async fn refused(&self, sent: &Secret) -> Result<bool> {
        // IVCAP refused an exchanged token early (revoked, clocks apart): exchange afresh once.
        if self.exchange.is_some() {
            let mut exchanged = self.exchanged.lock().await;
            if exchanged.as_ref().is_some_and(|(token, _)| token == sent) {
                *exchanged = None;
                return Ok(true);
            }
        }
        // The user's own sign-in is all there is: the fix is theirs or the operator's, never
        // IVCAP_JWT or `ivcap-mcp login`, which do not apply to this server.
        let via = if self.exchange.is_some() { "the token this server exchanged for you" } else { "your token" };
        Err(Error::Unauthorised {
            status: 401,
            detail: format!(
                "IVCAP refused {via}: sign in to this MCP server again from your client; if that does not help, \
                 ask its operator to check the server's access to IVCAP (docs/deployment.md, \"Deploying for a team\")"
            ),
        })
    }
}

/// Every user's credentials, by user; idle users are dropped.
pub struct Upstream {
    mode: OAuthUpstream,
    /// IVCAP's audience (the provider's, from `/1/authinfo.yaml`).
    ivcap_audience: String,
    exchange: Option<Arc<Exchanger>>,
    users: IdleMap<UserId, Arc<UserCredentials>>,
}

impl Upstream {
    pub fn new(mode: OAuthUpstream, ivcap_audience: String, exchange: Option<Arc<Exchanger>>) -> Self {
        Upstream { mode, ivcap_audience, exchange, users: IdleMap::new(IDLE) }
    }

    /// The credentials of `verified`'s user, now holding `token` (the one just presented);
    /// refused when `same-audience` and the token is not also for IVCAP.
    pub fn credentials_for(
        &self,
        verified: &Verified,
        token: Secret,
    ) -> std::result::Result<Arc<UserCredentials>, Refusal> {
        if self.mode == OAuthUpstream::SameAudience && !verified.audiences.iter().any(|a| a == &self.ivcap_audience) {
            return Err(Refusal::Invalid(format!(
                "the token is not also for IVCAP: this server passes tokens on as they are \
                 (--oauth-upstream same-audience), so their aud must also hold {}",
                self.ivcap_audience
            )));
        }
        let made = |_| {
            Ok::<_, Refusal>(Arc::new(UserCredentials {
                user: verified.user.clone(),
                presented: Mutex::new(token.clone()),
                exchange: self.exchange.clone(),
                exchanged: tokio::sync::Mutex::new(None),
            }))
        };
        let credentials = self.users.get_or_make(&verified.user, |_| true, made)?;
        *credentials.presented.lock().unwrap_or_else(|p| p.into_inner()) = token;
        Ok(credentials)
    }
}
