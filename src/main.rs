//! The `ivcap-mcp` command: parse, set up logging on stderr, resolve the configuration,
//! serve MCP over stdio until stdin closes or a signal arrives.

use std::process::ExitCode;

use clap::Parser;
use ivcap_mcp::config::{Cli, Config, Mode};
use ivcap_mcp::server::{IvcapMcp, ServerOptions};
use rmcp::ServiceExt;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = load_env_file(&cli) {
        eprintln!("ivcap-mcp: {message}");
        return ExitCode::from(2);
    }
    init_logging();
    let config = match Config::resolve(&cli, &|name| std::env::var(name).ok(), dirs::config_dir()) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("ivcap-mcp: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ivcap-mcp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(serve(config));
    // The stdin reader sits in a blocking read that only EOF ends; don't wait for it.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ivcap-mcp: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Loads `--env-file`, or `./.env` when present. Variables already set win.
fn load_env_file(cli: &Cli) -> Result<(), String> {
    match &cli.env_file {
        Some(path) => dotenvy::from_path(path)
            .map_err(|e| format!("--env-file {}: {e}; check the path and KEY=value lines", path.display())),
        None => match dotenvy::dotenv() {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(e) => Err(format!("./.env: {e}; fix the file or name another with --env-file")),
        },
    }
}

/// Logs go to stderr only: stdout carries the protocol.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(false).with_env_filter(filter).init();
}

async fn serve(config: Config) -> Result<(), String> {
    // Listen for signals before the handshake, so a signal at any point ends us cleanly.
    let signal = shutdown_signal().map_err(|e| format!("cannot listen for signals: {e}"))?;
    match &config.mode {
        Mode::Local { dir } => tracing::info!(store = %dir.display(), "local mode"),
        Mode::Platform(p) => tracing::info!(url = %p.base_url, auth = p.token.is_some(), "platform mode"),
    }
    let backend = ivcap_mcp::backend_for(&config).map_err(|e| e.to_string())?;
    let options = ServerOptions {
        toolsets: config.toolsets.clone(),
        read_only: config.read_only,
        output_budget: config.output_budget,
        max_wait: config.max_wait,
        allow_paths: config.allow_paths.clone(),
    };
    let server = IvcapMcp::new(backend, &options).map_err(|e| e.to_string())?;
    let running = server.serve(rmcp::transport::stdio()).await.map_err(|e| format!("MCP handshake failed: {e}"))?;
    let cancel = running.cancellation_token();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("signal received; exiting");
        cancel.cancel();
    });
    running.waiting().await.map_err(|e| format!("server stopped: {e}"))?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed when this is called.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
