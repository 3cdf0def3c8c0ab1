//! The `ivcap-mcp` command: parse, set up logging on stderr, resolve the configuration,
//! serve MCP over the chosen transport (see [`crate::transport`]) until the client goes
//! or a signal arrives. It lives in the library, and `src/main.rs` only calls [`run`]: the
//! generic code it reaches (the runtime, rmcp's service loop, logging) is then compiled once,
//! for the library, rather than a second time for the binary (README, "Build time").

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::config::{Cli, Config, Transport};

/// How long an ending process waits for file writes still under way (see `files::Writing`).
const WRITES_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the command with the process's arguments and environment.
pub fn run() -> ExitCode {
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
    if config.transport == Transport::Stdio && std::io::stdin().is_terminal() {
        print_terminal_notice();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ivcap-mcp: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(crate::transport::serve(config));
    if !crate::files::writes_finished(WRITES_GRACE) {
        tracing::warn!(grace = ?WRITES_GRACE, "exiting with a file write still under way; it is lost (nothing half-written is left)");
    }
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

/// Started by hand at a terminal, a stdio server looks hung: say what it waits for and how
/// to try it (on stderr, like everything that is not the protocol).
fn print_terminal_notice() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args = if args.is_empty() { String::new() } else { format!(" {}", args.join(" ")) };
    eprintln!(
        "ivcap-mcp: waiting for an MCP client on stdin (Ctrl-D to quit); to try it interactively run: \
         npx @modelcontextprotocol/inspector ivcap-mcp{args}"
    );
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
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false))
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(|meta| !is_rmcp_error_answer(meta)))
        .init();
}

/// rmcp's WARN for every error it answers a request with (`response error`, fields `id` and
/// `error`). Such an answer is the client's to read (an unknown tool, a bad cursor); the
/// server logs its own failures itself (`server::protocol_error`), so stderr is not filled
/// with a warning per client mistake.
fn is_rmcp_error_answer(meta: &tracing::Metadata<'_>) -> bool {
    meta.target() == "rmcp::service"
        && *meta.level() == tracing::Level::WARN
        && meta.fields().field("error").is_some()
        && meta.fields().field("id").is_some()
}
