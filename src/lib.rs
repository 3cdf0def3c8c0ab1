//! ivcap-mcp: a Model Context Protocol server for IVCAP.
//!
//! - [`config`]: command line and environment → the mode to run in.
//! - [`backend`]: the shared internal client — one trait per domain, implemented by
//!   [`backend::platform::PlatformBackend`] (IVCAP REST) and [`backend::local::LocalBackend`]
//!   (a filesystem store compatible with the Python SDK's `LocalIVCAP`).
//! - [`tools`]: the MCP tools, one module per toolset; thin handlers over the backend.
//! - [`server`]: [`server::IvcapMcp`], the rmcp server handler.
//! - [`schema`]: JSON Schema normalisation for portable tool and request schemas.

pub mod backend;
pub mod config;
pub mod error;
pub mod schema;
pub mod server;
pub mod text;
pub mod tools;

use std::sync::Arc;

use backend::Backend;
use config::{Config, Mode};

/// The backend for a resolved configuration.
pub fn backend_for(config: &Config) -> error::Result<Arc<dyn Backend>> {
    Ok(match &config.mode {
        Mode::Local { dir } => {
            let local = backend::local::LocalBackend::new(dir)?;
            local.preload_aspects();
            Arc::new(local)
        }
        Mode::Platform(cfg) => {
            Arc::new(backend::platform::PlatformBackend::new(cfg)?.with_chunk_size(config.chunk_size))
        }
    })
}
