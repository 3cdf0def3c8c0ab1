//! Who the server is when it calls IVCAP: the bearer token of each request, and how a
//! refused token is replaced (docs/configuration.md, "Logging in").
//!
//! The platform backend asks its [`Credentials`] for the token of every request, and tells
//! them once when IVCAP answers 401, so a login that can be refreshed never goes stale.

use std::fmt;

use crate::config::Secret;
use crate::error::{Error, Result};

pub mod cli_login;
pub mod device;
pub mod provider;

pub use cli_login::CliLogin;

/// Where the bearer token of IVCAP requests comes from.
#[async_trait::async_trait]
pub trait Credentials: Send + Sync + fmt::Debug {
    /// The token to send now (`None`: send none, as inside a platform container).
    async fn bearer(&self) -> Result<Option<Secret>>;

    /// IVCAP refused `sent` with a 401. `Ok(true)` when a different token can now be had
    /// and the request is worth sending once more; `Err` says why no login can help.
    async fn refused(&self, sent: &Secret) -> Result<bool> {
        let _ = sent;
        Ok(false)
    }
}

/// A token that never changes (`IVCAP_JWT`), or none.
#[derive(Debug, Clone)]
pub struct FixedToken(pub Option<Secret>);

#[async_trait::async_trait]
impl Credentials for FixedToken {
    async fn bearer(&self) -> Result<Option<Secret>> {
        Ok(self.0.clone())
    }

    async fn refused(&self, _sent: &Secret) -> Result<bool> {
        Err(Error::Unauthorised {
            status: 401,
            detail: "IVCAP refused the token of IVCAP_JWT (or IVCAP_ACCESS_TOKEN), which cannot be refreshed: \
                     set a fresh one, or log in once with `ivcap-mcp login` and start the server with \
                     `--context` instead, which keeps the login fresh"
                .into(),
        })
    }
}

// OAuth 2.1 for HTTP deployments (`--oauth`): token checks and per-user upstream credentials.
pub mod access_token;
pub mod idle_map;
pub mod jwks;
pub mod resource_server;
pub mod upstream;

pub use access_token::{Refusal, UserId};
pub use resource_server::{Caller, ResourceServer};
pub use upstream::UserCredentials;
