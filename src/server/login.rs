//! Logging in from inside the client (docs/guide.md, "Logging in from the client"): with
//! `--context`, when a call fails because the saved login can no longer be used (expired, and
//! no refresh token or a refused one) and the client declared URL elicitation, the server starts
//! the device login of `ivcap-mcp login`, asks the person to open its verification address,
//! waits for the approval, saves the login in the CLI config (where `--context` reads it) and
//! runs the call again. The device code never leaves this process: a 2026-07-28 client's sealed
//! state holds only a nonce naming the login under way here.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::auth::device::{self, DeviceAuthorization};
use crate::auth::provider::{self, AuthProvider};
use crate::auth::{CliLogin, Credentials, cli_login};
use crate::config::CliLoginRef;
use crate::error::{Error, Result};

/// Logins under way, at most (each is forgotten when its code expires).
const MAX_PENDING: usize = 64;

/// The CLI context `--context` serves from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginTarget {
    pub login: CliLoginRef,
    /// The deployment's base URL.
    pub url: String,
    /// The `Host` header the context names.
    pub host: Option<String>,
}

/// A device login under way.
pub(super) struct Started {
    pub(super) device: DeviceAuthorization,
    provider: AuthProvider,
}

impl Started {
    /// What the person is asked to do.
    pub(super) fn message(&self, context: &str) -> String {
        format!(
            "The IVCAP login of context '{context}' has expired and cannot be refreshed. Open this address, approve \
             the login (code {}), then confirm here; the call then runs again.",
            self.device.user_code
        )
    }
}

pub(super) struct ClientLogin {
    target: LoginTarget,
    http: reqwest::Client,
    /// Reads the saved login as the backend does, to tell whether it still serves.
    check: CliLogin,
    /// 2026-07-28 logins waiting for the client's retry, by the nonce of their sealed state.
    pending: Mutex<HashMap<String, Started>>,
}

impl ClientLogin {
    pub(super) fn new(target: LoginTarget) -> Result<Self> {
        Ok(ClientLogin {
            check: CliLogin::new(&target.login)?,
            http: provider::http_client()?,
            target,
            pending: Mutex::new(HashMap::new()),
        })
    }

    pub(super) fn context(&self) -> &str {
        &self.target.login.context
    }

    /// Whether a failed call failed for want of a login: the saved one cannot give a token.
    pub(super) async fn needed(&self) -> bool {
        matches!(self.check.bearer().await, Err(Error::Unauthorised { .. }))
    }

    /// Starts a device login.
    pub(super) async fn start(&self) -> Result<Started> {
        let provider = provider::discover(&self.http, &self.target.url, self.target.host.as_deref()).await?;
        let device = device::start(&self.http, &provider).await?;
        Ok(Started { device, provider })
    }

    /// Waits for the person's approval and saves the login where `--context` reads it.
    pub(super) async fn finish(&self, mut started: Started) -> Result<()> {
        let tokens = device::poll_until_done(&self.http, &started.provider, &mut started.device).await?;
        let login = &self.target.login;
        cli_login::save_login(login.file.clone(), login.context.clone(), self.target.url.clone(), tokens).await?;
        tracing::info!(context = %login.context, "logged in from the client (device login)");
        Ok(())
    }

    /// Keeps `started` for the retry that carries `nonce`.
    pub(super) fn hold(&self, nonce: &str, started: Started) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.retain(|_, s| s.device.started.elapsed() < s.device.expires_in);
        if pending.len() >= MAX_PENDING {
            return Err(Error::Internal("too many logins under way; try again in a few minutes".into()));
        }
        pending.insert(nonce.to_string(), started);
        Ok(())
    }

    /// The login under way for `nonce`, once.
    pub(super) fn take(&self, nonce: &str) -> Option<Started> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).remove(nonce)
    }

    /// How long a login may take: the code's own lifetime.
    pub(super) fn lifetime(started: &Started) -> Duration {
        started.device.expires_in
    }
}
