//! `--confirm`, `--confirm-required`, `--state-key`, `--state-ttl`: when the server asks the
//! person before a call (docs/guide.md, "Confirmations"), and how a 2026-07-28 client's
//! `requestState` is sealed.

use super::Secret;
use crate::error::{Error, Result};

/// Shortest `--state-key` / `IVCAP_MCP_STATE_KEY`, in bytes (the sealing HMAC's minimum).
pub const MIN_STATE_KEY: usize = 32;
/// Default `--state-ttl`: how long a person has to answer, in seconds.
pub const DEFAULT_STATE_TTL: u64 = 300;

/// `--confirm`: which calls the server asks the person about first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ConfirmLevel {
    /// Never ask.
    None,
    /// Ask before a call that ends or replaces something.
    #[default]
    Destructive,
    /// Also ask before job submissions, uploads and adds.
    Writes,
}

impl std::fmt::Display for ConfirmLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ConfirmLevel::None => "none",
            ConfirmLevel::Destructive => "destructive",
            ConfirmLevel::Writes => "writes",
        })
    }
}

/// The resolved confirmation settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmConfig {
    pub level: ConfirmLevel,
    /// Refuse a call that needs a confirmation from a client that cannot ask the person.
    pub required: bool,
    /// The key that seals `requestState`; `None`: a random key per process.
    pub state_key: Option<Secret>,
    /// How long a sealed `requestState` stays valid.
    pub state_ttl: std::time::Duration,
}

impl Default for ConfirmConfig {
    fn default() -> Self {
        ConfirmConfig {
            level: ConfirmLevel::default(),
            required: false,
            state_key: None,
            state_ttl: std::time::Duration::from_secs(DEFAULT_STATE_TTL),
        }
    }
}

impl ConfirmConfig {
    pub(super) fn resolve(
        level: ConfirmLevel,
        required: bool,
        state_key: Option<&Secret>,
        state_ttl: u64,
    ) -> Result<Self> {
        if let Some(key) = state_key
            && key.expose().len() < MIN_STATE_KEY
        {
            return Err(Error::Config(format!(
                "--state-key / IVCAP_MCP_STATE_KEY is {} bytes; use at least {MIN_STATE_KEY} random bytes, e.g. \
                 `openssl rand -base64 48`, the same on every replica",
                key.expose().len()
            )));
        }
        super::check_range("--state-ttl", state_ttl, 1..=3600, " seconds", DEFAULT_STATE_TTL)?;
        Ok(ConfirmConfig {
            level,
            required,
            state_key: state_key.cloned(),
            state_ttl: std::time::Duration::from_secs(state_ttl),
        })
    }
}
