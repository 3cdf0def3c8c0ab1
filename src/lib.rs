//! ivcap-mcp: a Model Context Protocol server for IVCAP.
//!
//! - [`config`]: command line and environment → the mode to run in.
//! - [`auth`]: the credentials IVCAP requests carry, and how a refused login is renewed.
//! - [`backend`]: the shared internal client — one trait per domain, implemented by
//!   [`backend::platform::PlatformBackend`] (IVCAP REST) and [`backend::local::LocalBackend`]
//!   (a filesystem store compatible with the Python SDK's `LocalIVCAP`).
//! - [`tools`]: the MCP tools, one module per toolset; thin handlers over the backend.
//! - [`server`]: [`server::IvcapMcp`], the rmcp server handler, and the MCP surface beyond
//!   the tools: tasks, service tools, resources, subscriptions, prompts and completions.
//! - [`transport`]: stdio, Streamable HTTP and legacy HTTP+SSE, with the HTTP security rules.
//! - [`schema`]: JSON Schema normalisation for portable tool and request schemas.
//! - [`telemetry`]: Prometheus metrics and the W3C trace context of the call being served.
//! - [`files`], [`time`], [`path_policy`], [`urn`]: local file primitives, the one time parser
//!   and format, the rule for which local paths tools may touch, and the URN vocabulary.
//!
//! Requests flow transport → server → tools → backend, and a module imports only from its
//! own layer, the layers below it, and the foundation modules (docs/architecture.md).

pub mod auth;
pub mod backend;
pub mod command;
pub mod config;
pub mod error;
pub mod files;
pub mod path_policy;
pub mod schema;
pub mod server;
pub mod telemetry;
pub mod text;
pub mod time;
pub mod tools;
pub mod transport;
pub mod urn;
pub mod validation;

/// The start of every HTTP client in this crate, its tests and benches: rustls with the `ring`
/// provider. The build has no other provider, so `reqwest::Client::new()` without this first
/// panics ("No rustls crypto provider is configured"); installing twice is a harmless no-op.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}
