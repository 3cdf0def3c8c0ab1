//! ivcap-mcp: a Model Context Protocol server for IVCAP.
//!
//! - [`config`]: command line and environment → the mode to run in.
//! - [`backend`]: the shared internal client — one trait per domain, implemented by
//!   [`backend::platform::PlatformBackend`] (IVCAP REST) and [`backend::local::LocalBackend`]
//!   (a filesystem store compatible with the Python SDK's `LocalIVCAP`).
//! - [`tools`]: the MCP tools, one module per toolset; thin handlers over the backend.
//! - [`server`]: [`server::IvcapMcp`], the rmcp server handler.
//! - [`resources`], [`subscriptions`], [`prompts`], [`completions`]: IVCAP entities as MCP
//!   resources (read by URN, listed, linked from tool results, job updates), the prompts, and
//!   argument completion.
//! - [`transport`]: stdio, Streamable HTTP and legacy HTTP+SSE, with the HTTP security rules.
//! - [`schema`]: JSON Schema normalisation for portable tool and request schemas.
//! - [`files`], [`time`], [`path_policy`]: local file primitives, the one time parser and
//!   format, and the rule for which local paths tools may touch.

pub mod backend;
pub mod command;
pub mod completions;
pub mod config;
pub mod error;
pub mod files;
pub mod path_policy;
pub mod prompts;
pub mod resources;
pub mod schema;
pub mod server;
pub mod subscriptions;
pub mod text;
pub mod time;
pub mod tools;
pub mod transport;
pub mod validation;

use std::sync::Arc;

use backend::Backend;
use config::{Config, Mode};

/// The start of every HTTP client in this crate, its tests and benches: rustls with the `ring`
/// provider. The build has no other provider, so `reqwest::Client::new()` without this first
/// panics ("No rustls crypto provider is configured"); installing twice is a harmless no-op.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

/// The backend for a resolved configuration.
pub fn backend_for(config: &Config) -> error::Result<Arc<dyn Backend>> {
    Ok(match &config.mode {
        Mode::Local { dir } => {
            let search = backend::local::search::SearchOptions {
                limits: backend::local::search::Limits { max_bytes: config.search_memory, ..Default::default() },
                pushdown: !config.search_full_scan,
            };
            let local = backend::local::LocalBackend::new(dir)?
                .with_services(config.local_services.clone())
                .with_search(search);
            local.preload_aspects();
            Arc::new(local)
        }
        Mode::Platform(cfg) => {
            Arc::new(backend::platform::PlatformBackend::new(cfg)?.with_chunk_size(config.chunk_size))
        }
    })
}
