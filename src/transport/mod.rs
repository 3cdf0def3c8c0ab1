//! How MCP clients reach the server: stdio (the default), or one HTTP listener serving
//! Streamable HTTP at `/mcp`, the legacy HTTP+SSE transport at `/sse` + `/message`, and
//! `/healthz`.
//!
//! Transports only move JSON-RPC: they build [`IvcapMcp`] handlers from the resolved
//! configuration and never look inside tool calls. In particular the HTTP transports never
//! pass a client's `Authorization` header on: the backend talks to IVCAP with the server's
//! own configured credentials, or with `--oauth` with each user's (`transport::oauth`).

mod guard;
mod http;
mod jsonrpc;
mod oauth;
mod sse;
mod stdio;

use std::sync::Arc;

use crate::auth::ResourceServer;
use crate::backend::Backend;
use crate::backend::platform::PlatformBackend;
use crate::config::{Config, HttpConfig, Mode, Transport};
use crate::server::{IvcapMcp, ServerOptions};

/// Serves MCP as configured until the client goes away (stdio) or SIGTERM/SIGINT arrives.
pub async fn serve(config: Config) -> Result<(), String> {
    // Listen for signals before anything else, so a signal at any point ends us cleanly.
    let signal = shutdown_signal().map_err(|e| format!("cannot listen for signals: {e}"))?;
    match &config.mode {
        Mode::Local { dir } => announce_store(dir),
        Mode::Platform(p) => tracing::info!(url = %p.base_url, auth = p.token.is_some(), "platform mode"),
    }
    let backend = crate::backend::for_config(&config).map_err(|e| e.to_string())?;
    let options = ServerOptions {
        toolsets: config.toolsets.clone(),
        read_only: config.read_only,
        output_budget: config.output_budget,
        max_wait: config.max_wait,
        allow_paths: config.allow_paths.clone(),
        service_tools: config.service_tools.clone(),
        stateless: matches!(&config.transport, Transport::Http(http) if http.stateless),
        confirm: config.confirm.clone(),
        login: match &config.mode {
            Mode::Platform(p) => p.cli_login.clone().map(|login| crate::server::LoginTarget {
                login,
                url: p.base_url.clone(),
                host: p.host_header.clone(),
            }),
            Mode::Local { .. } => None,
        },
    };
    let mut server = IvcapMcp::new(backend, &options).map_err(|e| e.to_string())?;
    let oauth = match (&config.transport, &config.mode) {
        (Transport::Http(HttpConfig { oauth: Some(oauth), .. }), Mode::Platform(platform)) => {
            let resource = ResourceServer::start(oauth, &platform.base_url).await.map_err(|e| e.to_string())?;
            if platform.token.is_some() {
                tracing::warn!("IVCAP_JWT is set but not used: with --oauth every request acts as its own user");
            }
            let (platform, chunk_size) = (platform.clone(), config.chunk_size);
            server = server.with_users(Box::new(move |credentials| {
                let backend =
                    PlatformBackend::new(&platform)?.with_chunk_size(chunk_size).with_credentials(credentials);
                Ok(Arc::new(backend) as Arc<dyn Backend>)
            }));
            Some(Arc::new(resource))
        }
        _ => None,
    };
    server.start_background();
    match config.transport {
        Transport::Stdio => stdio::serve(server, config.max_message_size, signal).await,
        Transport::Http(http) => http::serve(server, &http, oauth, config.max_message_size, signal).await,
    }
}

/// Says which local store is in use: at `info` when it exists, at `warn` when it does not (a
/// mistyped path would otherwise look like an empty store).
fn announce_store(dir: &std::path::Path) {
    let shown = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    if dir.is_dir() {
        tracing::info!(store = %shown.display(), "local mode on an existing store");
    } else {
        tracing::warn!(
            store = %shown.display(),
            "local mode on a store that does not exist yet: it starts empty and the folder is created at the \
             first write; check the path if you expected services or data there"
        );
    }
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed when this is called. (Unix
/// only, as the crate is: the local store relies on Unix file metadata.)
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    })
}
