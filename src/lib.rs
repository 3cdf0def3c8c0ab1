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
use config::Mode;

/// The backend for a resolved mode.
pub fn backend_for(mode: &Mode) -> error::Result<Arc<dyn Backend>> {
    Ok(match mode {
        Mode::Local { dir } => {
            let local = backend::local::LocalBackend::new(dir)?;
            local.preload_aspects();
            Arc::new(local)
        }
        Mode::Platform(cfg) => Arc::new(backend::platform::PlatformBackend::new(cfg)?),
    })
}
