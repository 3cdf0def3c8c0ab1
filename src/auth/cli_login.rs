//! `--context`: a login kept in the Go CLI's `config.yaml`, refreshed as it nears expiry
//! and after IVCAP refuses it, and written back so the CLI and this server share one login
//! (docs/configuration.md, "Logging in"; docs/ivcap-wire.md §15).

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::Mutex;

use super::Credentials;
use super::provider::{self, AuthProvider, Tokens};
use crate::config::cli_context::{self, ConfigLock, ContextLogin, TokenUpdate};
use crate::config::{CliLoginRef, Secret};
use crate::error::{Error, Result};

/// A token this close to its expiry is refreshed before it is sent.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The login of one CLI context.
#[derive(Debug)]
pub struct CliLogin {
    file: PathBuf,
    context: String,
    http: reqwest::Client,
    /// One renewal at a time: concurrent requests wait for it and share its token.
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The login as last read or refreshed; `None` until the first request.
    current: Option<ContextLogin>,
    /// The deployment's provider, read once.
    provider: Option<AuthProvider>,
}

impl CliLogin {
    pub fn new(login: &CliLoginRef) -> Result<CliLogin> {
        Ok(CliLogin {
            file: login.file.clone(),
            context: login.context.clone(),
            http: provider::http_client()?,
            state: Mutex::new(State::default()),
        })
    }

    fn relogin(&self) -> String {
        format!("log in again with `ivcap-mcp login --context {}`", self.context)
    }

    /// The context as the file holds it now.
    async fn read(&self) -> Result<ContextLogin> {
        let (file, name) = (self.file.clone(), self.context.clone());
        let ctx = crate::files::blocking(move || cli_context::read_context(&file, &name)).await?;
        ctx.ok_or_else(|| Error::Unauthorised {
            status: 401,
            detail: format!("context '{}' is no longer in {}: {}", self.context, self.file.display(), self.relogin()),
        })
    }

    /// A new access token for the context, under the file's lock: the one another process
    /// wrote meanwhile when it differs from `stale` and is good for `margin`, else a
    /// refresh (its tokens written back).
    async fn renew(&self, state: &mut State, stale: Option<&Secret>, margin: Duration) -> Result<Secret> {
        let file = self.file.clone();
        let lock = crate::files::blocking(move || ConfigLock::acquire(&file)).await?;
        let ctx = self.read().await?;
        if ctx.access_token.as_ref() != stale && ctx.is_fresh(margin) {
            tracing::info!(context = %self.context, "using the login written to the CLI config meanwhile");
            return self.adopt(state, ctx);
        }
        let Some(refresh_token) = ctx.refresh_token.clone() else {
            return Err(Error::Unauthorised {
                status: 401,
                detail: format!(
                    "the access token of context '{}' has expired or was refused, and the context has no refresh token: {}",
                    self.context,
                    self.relogin()
                ),
            });
        };
        let provider = match &state.provider {
            Some(p) => p.clone(),
            None => {
                let found = provider::discover(&self.http, &ctx.url, ctx.host.as_deref()).await?;
                state.provider = Some(found.clone());
                found
            }
        };
        let tokens = match provider::refresh(&self.http, &provider, &refresh_token).await? {
            Ok(tokens) => tokens,
            Err(refusal) => {
                return Err(Error::Unauthorised {
                    status: 401,
                    detail: format!(
                        "the login of context '{}' cannot be refreshed: the provider refused its refresh token \
                         ({refusal}): {}",
                        self.context,
                        self.relogin()
                    ),
                });
            }
        };
        let update = TokenUpdate {
            url: ctx.url.clone(),
            access_token: tokens.access_token.clone(),
            access_token_expiry: tokens.expiry(Utc::now()),
            refresh_token: tokens.refresh_token.clone(),
            account_id: None,
            provider_id: None,
        };
        let (file, name, written) = (self.file.clone(), self.context.clone(), update.clone());
        crate::files::blocking(move || {
            let saved = cli_context::save_tokens(&lock, &file, &name, &written);
            drop(lock);
            saved
        })
        .await?;
        tracing::info!(context = %self.context, expiry = %update.access_token_expiry, rotated = tokens.refresh_token.is_some(), "refreshed the IVCAP login");
        self.adopt(
            state,
            ContextLogin {
                access_token: Some(update.access_token),
                access_token_expiry: Some(update.access_token_expiry),
                refresh_token: update.refresh_token.or(ctx.refresh_token.clone()),
                ..ctx
            },
        )
    }

    fn adopt(&self, state: &mut State, ctx: ContextLogin) -> Result<Secret> {
        let token = ctx.access_token.clone().ok_or_else(|| Error::Internal("an adopted login has no token".into()))?;
        state.current = Some(ctx);
        Ok(token)
    }
}

#[async_trait::async_trait]
impl Credentials for CliLogin {
    async fn bearer(&self) -> Result<Option<Secret>> {
        let mut state = self.state.lock().await;
        if state.current.is_none() {
            state.current = Some(self.read().await?);
        }
        let current = state.current.clone();
        if let Some(ctx) = &current
            && ctx.is_fresh(REFRESH_MARGIN)
        {
            return Ok(ctx.access_token.clone());
        }
        let held = current.as_ref().and_then(|c| c.access_token.clone());
        match self.renew(&mut state, held.as_ref(), REFRESH_MARGIN).await {
            Ok(token) => Ok(Some(token)),
            // A token that has not expired yet still serves while the provider cannot be reached.
            Err(e) if current.as_ref().is_some_and(|c| c.is_fresh(Duration::ZERO)) => {
                tracing::warn!(context = %self.context, error = %e, "cannot refresh the IVCAP login yet; using the current token until it expires");
                Ok(held)
            }
            Err(e) => Err(e),
        }
    }

    async fn refused(&self, sent: &Secret) -> Result<bool> {
        let mut state = self.state.lock().await;
        let held = state.current.as_ref().and_then(|c| c.access_token.as_ref());
        if held.is_some_and(|t| t != sent) {
            // Another request renewed it while this one was on its way.
            return Ok(true);
        }
        self.renew(&mut state, Some(sent), Duration::ZERO).await.map(|_| true)
    }
}

/// Writes a new login into context `name` of the CLI config `file` (creating the file or
/// the context, with `url`), with the account the token names, as `ivcap context login` does.
pub async fn save_login(file: PathBuf, name: String, url: String, tokens: Tokens) -> Result<()> {
    let (account_id, provider_id) = provider::account_ids(&tokens.access_token);
    let update = TokenUpdate {
        url,
        access_token_expiry: tokens.expiry(Utc::now()),
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        account_id,
        provider_id,
    };
    crate::files::blocking(move || {
        let lock = ConfigLock::acquire(&file)?;
        cli_context::save_tokens(&lock, &file, &name, &update)
    })
    .await
}
