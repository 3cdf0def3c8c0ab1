//! The `ivcap-mcp` command: parse, set up logging on stderr, resolve the configuration,
//! serve MCP over the chosen transport (see [`crate::transport`]) until the client goes
//! or a signal arrives. It lives in the library, and `src/main.rs` only calls [`run`]: the
//! generic code it reaches (the runtime, rmcp's service loop, logging) is then compiled once,
//! for the library, rather than a second time for the binary (measured: the commit that moved it has the numbers).

mod login;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use tracing::Level;

use crate::config::{Cli, Command, Config, LogFormat, Transport};
use crate::telemetry::notice;

/// How long an ending process waits for file writes still under way (see `files::Writing`).
const WRITES_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the command with the process's arguments and environment.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    if cli.log_format == LogFormat::Json {
        crate::telemetry::use_json_logs();
    }
    if let Err(message) = load_env_file(&cli) {
        notice(Level::ERROR, &message);
        return ExitCode::from(2);
    }
    init_logging(cli.log_format);
    if let Some(Command::Login(args)) = &cli.command {
        return login::run(args);
    }
    let config = match Config::resolve(&cli, &|name| std::env::var(name).ok(), dirs::config_dir()) {
        Ok(config) => config,
        Err(e) => {
            notice(Level::ERROR, &e.to_string());
            return ExitCode::from(2);
        }
    };
    if config.transport == Transport::Stdio && std::io::stdin().is_terminal() {
        print_terminal_notice();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            notice(Level::ERROR, &format!("cannot start the async runtime: {e}"));
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
            notice(Level::ERROR, &message);
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
         npx -y @modelcontextprotocol/inspector@2.12.0 ivcap-mcp{args} (Node 22.19 or newer)"
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

/// Logs go to stderr only: stdout carries the protocol. JSON logs are one object per line,
/// with the fields of the event and of the spans it is in (a tool call's `trace_id`).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let logs = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::filter::filter_fn(|meta| !is_rmcp_error_answer(meta)));
    let lines = || tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
    match format {
        LogFormat::Text => logs.with(lines()).init(),
        LogFormat::Json => {
            logs.with(lines().json().flatten_event(true).with_current_span(false).with_span_list(true)).init();
        }
    }
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
