//! Command line and environment → a resolved [`Config`].
//!
//! Two stages, as ripgrep does it: [`Cli`] is what the user typed (clap, no I/O), and
//! [`Config::resolve`] turns it plus the environment into the mode to run in. Resolution
//! reads the environment through a closure so every rule is unit-tested without touching
//! the process environment. The JWT lives in a [`Secret`], whose `Debug` never shows it.

use std::path::PathBuf;

use clap::Parser;

use crate::error::{Error, Result};

pub mod cli_context;
mod confirm;
mod http;
mod oauth;
mod secret;

pub use cli_context::CliLoginRef;
pub use confirm::{ConfirmConfig, ConfirmLevel, DEFAULT_STATE_TTL};
pub use http::HttpConfig;
pub use oauth::{OAuthConfig, OAuthUpstream};
pub use secret::Secret;

/// Default local store directory, as the Python SDK's `LocalIVCAP` uses.
pub const DEFAULT_LOCAL_DIR: &str = "ivcap-artifacts";

/// Default budget for the text of one tool result, in characters.
pub const DEFAULT_OUTPUT_BUDGET: usize = 20_000;

/// Default longest wait for a job inside one tool call, in seconds: under the 60 s after
/// which common MCP clients give up.
pub const DEFAULT_MAX_WAIT: u64 = 50;
/// Bytes per upload `PATCH` in platform mode unless configured (`--chunk-size`).
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;

const ENV_HELP: &str = "\
ENVIRONMENT (a .env file in the working directory is loaded first; --env-file names another):
  IVCAP_URL           IVCAP platform base URL for an external caller, e.g. https://develop.ivcap.net
  IVCAP_JWT           bearer token for IVCAP_URL (required with it); never logged or echoed
  IVCAP_ACCESS_TOKEN  alias of IVCAP_JWT (the Go ivcap CLI's name)
  IVCAP_BASE_URL      base URL inside a platform container (used only without IVCAP_URL); no auth header
  IVCAP_LOCAL_DIR     local-mode store directory (default ./ivcap-artifacts)
  IVCAP_MCP_TOKEN     bearer token HTTP clients must present (same as --auth-token); never logged
  IVCAP_MCP_SERVICE_TOOLS  services to offer as tools (same as --service-tools)
  IVCAP_MCP_LOCAL_SERVICES local services NAME=URL,… (same as --local-service)
  IVCAP_MCP_LOG_FORMAT     log format on stderr, text or json (same as --log-format)
  IVCAP_MCP_STATE_KEY      key sealing 2026-07-28 confirmation state, shared by replicas (same as --state-key)
  IVCAP_MCP_OAUTH_CLIENT_ID      with --oauth-upstream exchange: the server's client id at the issuer
  IVCAP_MCP_OAUTH_CLIENT_SECRET  with --oauth-upstream exchange: its client secret; never logged
  RUST_LOG            log filter for stderr, e.g. info or ivcap_mcp=debug (default warn)

MODE SELECTION, first match wins:
  --local [DIR]  →  --context [NAME]  →  --url / IVCAP_URL  →  IVCAP_BASE_URL  →  local mode in IVCAP_LOCAL_DIR";

/// What the user typed.
#[derive(Debug, Clone, Parser, Default)]
#[command(
    name = "ivcap-mcp",
    version,
    about = "MCP server for IVCAP: services, jobs, artifacts, Datafabric aspects and Datalog search.\n\
             Speaks MCP over stdio, or over HTTP with --http (Streamable HTTP at /mcp, legacy \
             HTTP+SSE at /sse). With no platform configured it runs in local mode, a \
             filesystem-backed IVCAP for offline work.",
    after_help = ENV_HELP
)]
pub struct Cli {
    /// Run in local mode on a filesystem store (default directory: IVCAP_LOCAL_DIR or ./ivcap-artifacts).
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub local: Option<String>,

    /// IVCAP platform base URL (overrides IVCAP_URL); needs IVCAP_JWT.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// Use a login saved by `ivcap-mcp login` or the Go `ivcap` CLI in its config.yaml
    /// (the active context, or the one named); its token is refreshed and written back.
    #[arg(long, value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    pub context: Option<String>,

    /// Load environment variables from this file instead of ./.env.
    #[arg(long, value_name = "PATH")]
    pub env_file: Option<PathBuf>,

    /// Offer only these toolsets (comma-separated): services, jobs, aspects, artifacts, collections, search,
    /// secrets, service_tools.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub toolsets: Option<Vec<String>>,

    /// Offer only tools that change nothing.
    #[arg(long)]
    pub read_only: bool,

    /// Largest tool result, in characters of text; longer results are cut and say so.
    #[arg(long, value_name = "CHARS", default_value_t = DEFAULT_OUTPUT_BUDGET)]
    pub output_budget: usize,

    /// Longest a tool waits for a job before answering "still running, call get_job"
    /// (1 to 3600 seconds); keep it under your MCP client's request timeout (often 60 s).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_MAX_WAIT)]
    pub max_wait: u64,
    /// Bytes per upload chunk (one TUS PATCH) in platform mode, e.g. 8MiB, 512KiB or 1048576;
    /// from 1KiB to 1GiB (default 8MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_chunk_size)]
    pub chunk_size: Option<u64>,

    /// Also allow uploads from and downloads to files under DIR (repeatable). Without it, only
    /// the working directory and the local store are allowed.
    #[arg(long = "allow-path", value_name = "DIR")]
    pub allow_path: Vec<PathBuf>,

    /// Serve MCP over HTTP instead of stdio: Streamable HTTP at /mcp, legacy HTTP+SSE at
    /// /sse and /message, health at /healthz, metrics at /metrics. ADDR is PORT (binds
    /// 127.0.0.1) or IP:PORT; a non-loopback IP such as 0.0.0.0:8080 exposes the server to
    /// the network.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,

    /// With --http: no sessions, every request stands alone (for replicas behind a load balancer).
    #[arg(long, requires = "http")]
    pub stateless: bool,

    /// With --http: also accept this Host header (name or name:port), e.g. mcp.example.org.
    /// Repeatable. Loopback names are always accepted.
    #[arg(long, value_name = "HOST", requires = "http")]
    pub allowed_host: Vec<String>,

    /// With --http: also accept requests from this browser Origin (scheme://host[:port|:*]),
    /// e.g. https://app.example.org. Repeatable. Loopback origins are always accepted.
    #[arg(long, value_name = "ORIGIN", requires = "http")]
    pub allowed_origin: Vec<String>,

    /// With --http: require `Authorization: Bearer TOKEN` on every MCP request.
    /// Prefer IVCAP_MCP_TOKEN: a flag is visible to other local users in `ps`.
    #[arg(long, value_name = "TOKEN", value_parser = parse_secret)]
    pub auth_token: Option<Secret>,

    /// Offer these IVCAP services as tools of their own (svc_…): comma-separated service
    /// names, URNs or name patterns with % wildcards; % alone = every service with a request
    /// schema. Off by default.
    #[arg(long, value_name = "SELECTION", env = "IVCAP_MCP_SERVICE_TOOLS", value_delimiter = ',')]
    pub service_tools: Option<Vec<String>>,

    /// Most service tools offered (1 to 1000); the services beyond it are left out with a warning.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SERVICE_TOOLS_MAX)]
    pub service_tools_max: usize,

    /// Seconds between re-reads of the services for --service-tools (1 to 86400).
    #[arg(long, value_name = "SECONDS", default_value_t = DEFAULT_SERVICE_TOOLS_REFRESH)]
    pub service_tools_refresh: u64,

    /// Local mode: add a running ivcap-lambda service as NAME for this run, without a file in
    /// <store>/services (repeatable; IVCAP_MCP_LOCAL_SERVICES takes a comma-separated list).
    #[arg(long = "local-service", value_name = "NAME=URL", env = "IVCAP_MCP_LOCAL_SERVICES", value_delimiter = ',')]
    pub local_service: Vec<String>,

    /// Largest JSON-RPC message accepted, on stdio and as an HTTP body, e.g. 8MiB (the
    /// default); larger ones are refused with an error and never held in memory.
    #[arg(long, value_name = "SIZE", value_parser = parse_message_size)]
    pub max_message_size: Option<u64>,

    /// With --http: how long calls in flight may run on after SIGTERM/SIGINT before they are
    /// ended, in seconds (e.g. 30 or 30s; 0 to 3600). /healthz answers 503 from the signal on.
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds, default_value_t = DEFAULT_SHUTDOWN_GRACE, requires = "http")]
    pub shutdown_grace: u64,

    /// With --http: serve /metrics without the bearer token (the Host/Origin checks still
    /// apply), for a Prometheus that cannot send one.
    #[arg(long, requires = "http")]
    pub metrics_public: bool,

    /// With --http: act as each caller's own IVCAP user. Clients log in with OAuth 2.1 at
    /// --oauth-issuer and present access tokens for --oauth-resource (docs/deployment.md).
    #[arg(long, requires = "http", conflicts_with = "auth_token")]
    pub oauth: bool,

    /// With --oauth: the canonical public URL of the MCP endpoint, e.g. https://mcp.example.org/mcp;
    /// tokens must name it in `aud`.
    #[arg(long, value_name = "URL", requires = "oauth")]
    pub oauth_resource: Option<String>,

    /// With --oauth: the authorization server clients log in at (default: the IVCAP
    /// deployment's provider from /1/authinfo.yaml).
    #[arg(long, value_name = "URL", requires = "oauth")]
    pub oauth_issuer: Option<String>,

    /// With --oauth: the scopes a token must hold, comma-separated (default openid,profile,email).
    #[arg(long, value_name = "LIST", value_delimiter = ',', requires = "oauth")]
    pub oauth_scopes: Option<Vec<String>>,

    /// With --oauth: what the server sends to IVCAP for a user: `exchange` (an RFC 8693 token
    /// exchange with IVCAP_MCP_OAUTH_CLIENT_ID/_SECRET) or `same-audience` (the user's token
    /// itself, when its aud also holds IVCAP's audience).
    #[arg(long, value_name = "MODE", value_enum, requires = "oauth")]
    pub oauth_upstream: Option<OAuthUpstream>,

    /// Log format on stderr: text, or json (one JSON object per line, for log collectors).
    #[arg(long, value_name = "FORMAT", value_enum, default_value_t, env = "IVCAP_MCP_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// Local search: most memory the facts one query derives may take, e.g. 32MiB (the
    /// default); a query that needs more stops with "query too large".
    #[arg(long, value_name = "SIZE", value_parser = parse_search_memory)]
    pub search_memory: Option<u64>,

    /// Local search without narrowing facts through the index first: only the benchmarks'
    /// baseline (benches/search_local.rs) uses it.
    #[arg(long, hide = true)]
    pub search_full_scan: bool,

    // Confirmations and forms (docs/guide.md, "Confirmations").
    /// Ask the person (MCP elicitation) before these calls: none, destructive (ends or
    /// replaces something), or writes (also job submissions, uploads and adds).
    #[arg(long, value_name = "WHEN", value_enum, default_value_t)]
    pub confirm: ConfirmLevel,

    /// Refuse a call --confirm would ask about when the client cannot ask the person
    /// (declared no elicitation), instead of running it unasked.
    #[arg(long)]
    pub confirm_required: bool,

    /// Key (at least 32 bytes) that seals the requestState of 2026-07-28 confirmations; give
    /// every replica the same one. Unset: a random key per process. Prefer IVCAP_MCP_STATE_KEY.
    #[arg(long, value_name = "KEY", env = "IVCAP_MCP_STATE_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub state_key: Option<Secret>,

    /// Seconds a person has to answer a 2026-07-28 confirmation or form (1 to 3600; default 300).
    #[arg(long, value_name = "SECONDS")]
    pub state_ttl: Option<u64>,

    /// `ivcap-mcp login`; none: serve MCP.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do instead of serving MCP.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Log in to IVCAP as `ivcap context login` does (a URL and a code to approve in a
    /// browser) and save the login in the Go CLI's config.yaml, where --context finds it.
    Login(LoginArgs),
}

/// `ivcap-mcp login [--context NAME] [--url URL]`.
#[derive(Debug, Clone, clap::Args)]
pub struct LoginArgs {
    /// The CLI context to log in (default: the active one); created when missing.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// The IVCAP deployment's base URL, to create the context with.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with every field tracing records.
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

/// Default `--shutdown-grace`, in seconds.
pub const DEFAULT_SHUTDOWN_GRACE: u64 = 30;

/// `--shutdown-grace`: whole seconds, with an optional `s`, from 0 to an hour.
fn parse_seconds(raw: &str) -> std::result::Result<u64, String> {
    let text = raw.trim();
    let digits = text.strip_suffix('s').unwrap_or(text);
    match digits.parse::<u64>() {
        Ok(secs) if secs <= 3600 => Ok(secs),
        Ok(_) => Err(format!("'{raw}' is more than 3600 seconds")),
        Err(_) => Err(format!("'{raw}' is not a number of seconds like 30 or 30s")),
    }
}

/// Default `--search-memory`: 32 MiB.
pub const DEFAULT_SEARCH_MEMORY: usize = 32 << 20;

/// Default `--service-tools-max`.
pub const DEFAULT_SERVICE_TOOLS_MAX: usize = 32;
/// Default `--service-tools-refresh`, in seconds.
pub const DEFAULT_SERVICE_TOOLS_REFRESH: u64 = 300;

fn parse_secret(value: &str) -> std::result::Result<Secret, String> {
    Ok(Secret::new(value))
}

/// Smallest and largest `--chunk-size`.
const CHUNK_SIZE_RANGE: std::ops::RangeInclusive<u64> = 1024..=(1 << 30);
/// Smallest and largest `--max-message-size`: below 64 KiB a `search` query at its own
/// 64 KiB limit could not be sent.
const MESSAGE_SIZE_RANGE: std::ops::RangeInclusive<u64> = (64 << 10)..=(1 << 30);

/// Smallest and largest `--search-memory`.
const SEARCH_MEMORY_RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(1 << 30);

/// `--search-memory`: a byte size (see [`parse_size`]) within [`SEARCH_MEMORY_RANGE`].
fn parse_search_memory(raw: &str) -> std::result::Result<u64, String> {
    parse_size(raw, SEARCH_MEMORY_RANGE)
}

/// `--chunk-size`: a byte size (see [`parse_size`]) within [`CHUNK_SIZE_RANGE`].
fn parse_chunk_size(raw: &str) -> std::result::Result<u64, String> {
    parse_size(raw, CHUNK_SIZE_RANGE)
}

/// `--max-message-size`: a byte size (see [`parse_size`]) within [`MESSAGE_SIZE_RANGE`].
fn parse_message_size(raw: &str) -> std::result::Result<u64, String> {
    parse_size(raw, MESSAGE_SIZE_RANGE)
}

/// Parses a byte size: a number with an optional unit (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`, all
/// powers of 1024), within `range`.
pub fn parse_size(raw: &str, range: std::ops::RangeInclusive<u64>) -> std::result::Result<u64, String> {
    let text = raw.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits.parse().map_err(|_| format!("'{raw}' is not a size like 8MiB, 512KiB or 1048576"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit '{other}' in '{raw}': use KiB, MiB or GiB")),
    };
    let bytes = number.checked_mul(factor).ok_or_else(|| format!("'{raw}' is too large"))?;
    if !range.contains(&bytes) {
        return Err(format!("'{raw}' is outside {}..={}", show_size(*range.start()), show_size(*range.end())));
    }
    Ok(bytes)
}

/// A whole number of GiB, MiB or KiB, as the size errors name their limits.
fn show_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{}GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => b.to_string(),
    }
}

/// `--service-tools`, `--service-tools-max`, `--service-tools-refresh`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceToolsConfig {
    /// Service names, URNs or `%` patterns.
    pub selection: Vec<String>,
    /// Most service tools offered.
    pub max: usize,
    /// How often the platform is asked again.
    pub refresh: std::time::Duration,
}

/// Where the server gets its IVCAP from.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// A filesystem store.
    Local { dir: PathBuf },
    /// A real IVCAP deployment.
    Platform(PlatformConfig),
}

/// How to reach the platform.
#[derive(Debug, Clone, PartialEq)]
pub struct PlatformConfig {
    /// Base URL without a trailing slash, e.g. `https://develop.ivcap.net`.
    pub base_url: String,
    /// Bearer token; `None` inside a platform container (`IVCAP_BASE_URL`).
    pub token: Option<Secret>,
    /// `Host` header to send, when a CLI context names one.
    pub host_header: Option<String>,
    /// With `--context`: the CLI login to refresh `token` from (then `token` is only where
    /// it starts, and may be expired).
    pub cli_login: Option<CliLoginRef>,
}

/// How MCP clients reach the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    /// JSON-RPC lines on stdin/stdout.
    Stdio,
    /// Streamable HTTP and legacy HTTP+SSE on one listener.
    Http(HttpConfig),
}

/// Default `--max-message-size`: the largest JSON-RPC message, on stdio or as an HTTP body.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 8 << 20;

/// The resolved configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub mode: Mode,
    pub toolsets: Option<Vec<String>>,
    pub read_only: bool,
    pub output_budget: usize,
    /// Longest wait for a job inside one tool call.
    pub max_wait: std::time::Duration,
    /// Bytes per upload `PATCH` (platform mode).
    pub chunk_size: u64,
    /// Extra folders `path` arguments may point into.
    pub allow_paths: Vec<PathBuf>,
    /// How MCP clients reach the server.
    pub transport: Transport,
    /// `--service-tools` and its limits; `None` when off.
    pub service_tools: Option<ServiceToolsConfig>,
    /// Largest JSON-RPC message (stdio line or HTTP body), in bytes.
    pub max_message_size: usize,
    /// `--local-service NAME=URL`s (local mode only).
    pub local_services: Vec<(String, url::Url)>,
    /// `--search-memory`, in bytes (local mode).
    pub search_memory: usize,
    /// `--search-full-scan` (the benchmarks' baseline).
    pub search_full_scan: bool,
    /// `--confirm`, `--confirm-required`, `--state-key`, `--state-ttl`.
    pub confirm: ConfirmConfig,
}

impl Config {
    /// Resolves the mode from the flags and the environment (see `ENV_HELP` for the order).
    /// `cli_config_dir` is where the Go CLI keeps `ivcap-cli/config.yaml`.
    pub fn resolve(cli: &Cli, env: &dyn Fn(&str) -> Option<String>, cli_config_dir: Option<PathBuf>) -> Result<Config> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let token = var("IVCAP_JWT").or_else(|| var("IVCAP_ACCESS_TOKEN")).map(Secret::new);

        let mode = if let Some(dir) = &cli.local {
            let dir = if dir.is_empty() {
                var("IVCAP_LOCAL_DIR").unwrap_or_else(|| DEFAULT_LOCAL_DIR.into())
            } else {
                dir.clone()
            };
            Mode::Local { dir: PathBuf::from(dir) }
        } else if let Some(name) = &cli.context {
            Mode::Platform(cli_context::from_cli_context(name, cli_config_dir)?)
        } else if let Some(url) = cli.url.clone().or_else(|| var("IVCAP_URL")) {
            let base_url = normalise_base_url(&url, "--url / IVCAP_URL")?;
            // With --oauth the server acts as each user and needs no token of its own.
            if token.is_none() && !cli.oauth {
                return Err(Error::Config(format!(
                    "IVCAP_URL is {base_url} but no token is set: set IVCAP_JWT (or \
                     IVCAP_ACCESS_TOKEN) to a bearer token, e.g. from `ivcap context get \
                     access-token --refresh-token`, or log in with `ivcap-mcp login` and use --context (kept fresh)"
                )));
            };
            Mode::Platform(PlatformConfig { base_url, token, host_header: None, cli_login: None })
        } else if let Some(url) = var("IVCAP_BASE_URL") {
            let base_url = normalise_base_url(&url, "IVCAP_BASE_URL")?;
            Mode::Platform(PlatformConfig { base_url, token: None, host_header: None, cli_login: None })
        } else if token.is_some() {
            return Err(Error::Config(
                "IVCAP_JWT (or IVCAP_ACCESS_TOKEN) is set but IVCAP_URL is not: set IVCAP_URL to \
                 the platform's base URL, or unset the token (or pass --local) for local mode"
                    .into(),
            ));
        } else {
            let dir = var("IVCAP_LOCAL_DIR").unwrap_or_else(|| DEFAULT_LOCAL_DIR.into());
            Mode::Local { dir: PathBuf::from(dir) }
        };

        if let Mode::Local { dir } = &mode {
            check_store_dir(dir)?;
        }
        if cli.output_budget < 1_000 {
            return Err(Error::Config(format!(
                "--output-budget {} is too small: use at least 1000 characters",
                cli.output_budget
            )));
        }
        check_range("--max-wait", cli.max_wait, 1..=3600, " seconds", DEFAULT_MAX_WAIT)?;
        let service_tools = service_tools_config(cli)?;
        let local_services = local_services(cli, &mode)?;
        let search_memory =
            cli.search_memory.map_or(DEFAULT_SEARCH_MEMORY, |m| usize::try_from(m).unwrap_or(usize::MAX));
        let confirm = ConfirmConfig::resolve(
            cli.confirm,
            cli.confirm_required,
            cli.state_key.as_ref(),
            cli.state_ttl.unwrap_or(DEFAULT_STATE_TTL),
        )?;
        let transport = match &cli.http {
            None => Transport::Stdio,
            Some(addr) => Transport::Http(HttpConfig {
                oauth: oauth::resolve(cli, &mode, &var)?.map(Box::new),
                ..HttpConfig::resolve(cli, addr, var("IVCAP_MCP_TOKEN"))?
            }),
        };
        Ok(Config {
            mode,
            toolsets: cli.toolsets.clone(),
            read_only: cli.read_only,
            output_budget: cli.output_budget,
            max_wait: std::time::Duration::from_secs(cli.max_wait),
            chunk_size: cli.chunk_size.unwrap_or(DEFAULT_CHUNK_SIZE),
            allow_paths: cli.allow_path.clone(),
            transport,
            service_tools,
            max_message_size: cli
                .max_message_size
                .map_or(DEFAULT_MAX_MESSAGE_SIZE, |size| usize::try_from(size).unwrap_or(usize::MAX)),
            local_services,
            search_memory,
            search_full_scan: cli.search_full_scan,
            confirm,
        })
    }
}

/// A local store that exists must be a folder; one that does not is created on first write.
fn check_store_dir(dir: &std::path::Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => Err(Error::Config(format!(
            "local store '{}' exists and is not a folder: pass --local with a folder (it is created \
             when missing), or set IVCAP_LOCAL_DIR to one",
            dir.display()
        ))),
        _ => Ok(()),
    }
}

/// A numeric flag outside its range: one message form for every such flag.
fn check_range<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
    default: T,
) -> Result<()> {
    if range.contains(&value) {
        return Ok(());
    }
    let (low, high) = range.into_inner();
    Err(Error::Config(format!("{flag} {value} is out of range: use {low} to {high}{unit} (default {default})")))
}

/// `--local-service NAME=URL`s checked: local mode only, NAME usable in a URN and given once,
/// URL an http(s) URL.
fn local_services(cli: &Cli, mode: &Mode) -> Result<Vec<(String, url::Url)>> {
    let given: Vec<&str> = cli.local_service.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if given.is_empty() {
        return Ok(Vec::new());
    }
    if matches!(mode, Mode::Platform(_)) {
        return Err(Error::Config(
            "--local-service (IVCAP_MCP_LOCAL_SERVICES) works in local mode only: pass --local, or drop it".into(),
        ));
    }
    let mut out: Vec<(String, url::Url)> = Vec::new();
    for entry in given {
        let bad = |why: &str| {
            Error::Config(format!(
                "--local-service '{entry}' {why}: use NAME=URL, e.g. --local-service echo=http://127.0.0.1:8090/"
            ))
        };
        let Some((name, raw)) = entry.split_once('=') else { return Err(bad("has no '='")) };
        let name = name.trim();
        if !crate::urn::is_plain_name(name) {
            return Err(bad("has a NAME that is empty or not only letters, digits, '-', '_' and '.'"));
        }
        let url = url::Url::parse(raw.trim()).map_err(|_| bad("has a URL that does not parse"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("needs an http:// or https:// URL with a host"));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(bad("repeats a NAME given before"));
        }
        out.push((name.to_string(), url));
    }
    Ok(out)
}

/// `--service-tools*` checked; `None` when no service is selected.
fn service_tools_config(cli: &Cli) -> Result<Option<ServiceToolsConfig>> {
    let selection: Vec<String> =
        cli.service_tools.iter().flatten().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
    if selection.is_empty() {
        return Ok(None);
    }
    check_range("--service-tools-max", cli.service_tools_max, 1..=1000, "", DEFAULT_SERVICE_TOOLS_MAX)?;
    check_range(
        "--service-tools-refresh",
        cli.service_tools_refresh,
        1..=86_400,
        " seconds",
        DEFAULT_SERVICE_TOOLS_REFRESH,
    )?;
    Ok(Some(ServiceToolsConfig {
        selection,
        max: cli.service_tools_max,
        refresh: std::time::Duration::from_secs(cli.service_tools_refresh),
    }))
}

/// Checks that `raw` is an absolute http(s) URL and strips trailing slashes, so paths can be
/// appended as `base + "/1/…"` (the SDK produces `//1/…` from `https://host/`).
pub fn normalise_base_url(raw: &str, source: &str) -> Result<String> {
    let trimmed = raw.trim();
    let parsed = url::Url::parse(trimmed).map_err(|e| {
        Error::Config(format!("{source} '{trimmed}' is not a URL ({e}): use the form https://develop.ivcap.net"))
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::Config(format!(
            "{source} '{trimmed}' must be an http:// or https:// URL with a host, e.g. https://develop.ivcap.net"
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Config(format!(
            "{source} '{trimmed}' must not have a query or fragment: give the platform's base URL only"
        )));
    }
    Ok(trimmed.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(args: &[&str], vars: &[(&str, &str)]) -> Result<Config> {
        let cli = Cli::try_parse_from(std::iter::once("ivcap-mcp").chain(args.iter().copied()))
            .map_err(|e| Error::Config(e.to_string()))?;
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::resolve(&cli, &|k| map.get(k).cloned(), None)
    }

    fn platform(c: Config) -> PlatformConfig {
        match c.mode {
            Mode::Platform(p) => p,
            other => panic!("expected platform mode, got {other:?}"),
        }
    }

    #[test]
    fn default_is_local_in_ivcap_artifacts() {
        let c = resolve(&[], &[]).unwrap();
        assert_eq!(c.mode, Mode::Local { dir: "ivcap-artifacts".into() });
    }

    #[test]
    fn local_flag_wins_over_url_and_token() {
        let c = resolve(&["--local", "x"], &[("IVCAP_URL", "https://a.b"), ("IVCAP_JWT", "t")]);
        assert_eq!(c.unwrap().mode, Mode::Local { dir: "x".into() });
        let c = resolve(&["--local"], &[("IVCAP_LOCAL_DIR", "/s")]).unwrap();
        assert_eq!(c.mode, Mode::Local { dir: "/s".into() });
    }

    #[test]
    fn local_services_are_checked() {
        let c = resolve(
            &["--local-service", "echo=http://127.0.0.1:8090/", "--local-service", "b=http://localhost:1"],
            &[],
        )
        .unwrap();
        let names: Vec<(&str, &str)> = c.local_services.iter().map(|(n, u)| (n.as_str(), u.as_str())).collect();
        assert_eq!(names, [("echo", "http://127.0.0.1:8090/"), ("b", "http://localhost:1/")]);
        for (arg, says) in [
            ("echo", "has no '='"),
            ("=http://x", "NAME that is empty"),
            ("a b=http://x", "NAME that is empty or not only"),
            ("a=not a url", "does not parse"),
            ("a=ftp://x/", "http:// or https://"),
        ] {
            let e = resolve(&["--local-service", arg], &[]).unwrap_err().to_string();
            assert!(e.contains(says) && e.contains("NAME=URL"), "{arg}: {e}");
        }
        let e = resolve(&["--local-service", "a=http://x", "--local-service", "a=http://y"], &[]).unwrap_err();
        assert!(e.to_string().contains("repeats"), "{e}");
        let e = resolve(&["--local-service", "a=http://x"], &[("IVCAP_URL", "https://a.b"), ("IVCAP_JWT", "t")]);
        assert!(e.unwrap_err().to_string().contains("local mode only"));
    }

    #[test]
    fn url_with_token_is_external_platform_mode() {
        let p = platform(resolve(&[], &[("IVCAP_URL", "https://a.b/"), ("IVCAP_JWT", "t")]).unwrap());
        assert_eq!(p.base_url, "https://a.b");
        assert_eq!(p.token, Some(Secret::new("t")));
    }

    #[test]
    fn access_token_is_an_alias_and_url_flag_wins() {
        let p = platform(
            resolve(&["--url", "http://x:9/"], &[("IVCAP_URL", "https://a.b"), ("IVCAP_ACCESS_TOKEN", "t")]).unwrap(),
        );
        assert_eq!(p.base_url, "http://x:9");
        assert_eq!(p.token, Some(Secret::new("t")));
    }

    #[test]
    fn ivcap_url_wins_over_base_url() {
        let p = platform(
            resolve(&[], &[("IVCAP_URL", "https://a.b"), ("IVCAP_BASE_URL", "http://ivcap.local"), ("IVCAP_JWT", "t")])
                .unwrap(),
        );
        assert_eq!(p.base_url, "https://a.b");
    }

    #[test]
    fn base_url_means_no_auth() {
        let p = platform(resolve(&[], &[("IVCAP_BASE_URL", "http://ivcap.local")]).unwrap());
        assert_eq!((p.base_url.as_str(), p.token), ("http://ivcap.local", None));
    }

    /// An international host name is IDNA-processed (the `idna_adapter` pin in Cargo.toml
    /// chooses the Unicode back end; its stub version would reject this URL).
    #[test]
    fn an_international_host_name_is_accepted() {
        let p = platform(resolve(&[], &[("IVCAP_URL", "https://Bücher.example/"), ("IVCAP_JWT", "t")]).unwrap());
        let host = url::Url::parse(&p.base_url).unwrap().host_str().map(str::to_string);
        assert_eq!(host.as_deref(), Some("xn--bcher-kva.example"));
    }

    /// Arguments, environment, expected message.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn configuration_errors_are_clear() {
        let cases: &[Case] = &[
            (&[], &[("IVCAP_JWT", "t")], "IVCAP_URL is not"),
            (&[], &[("IVCAP_URL", "https://a.b")], "no token is set"),
            (&[], &[("IVCAP_URL", "not a url"), ("IVCAP_JWT", "t")], "is not a URL"),
            (&[], &[("IVCAP_URL", "ftp://a.b"), ("IVCAP_JWT", "t")], "http:// or https://"),
            (&[], &[("IVCAP_BASE_URL", "::")], "is not a URL"),
            (&["--output-budget", "5"], &[], "too small"),
            (&["--max-wait", "0"], &[], "--max-wait 0 is out of range"),
        ];
        for (args, vars, expected) in cases {
            let err = resolve(args, vars).unwrap_err().to_string();
            assert!(err.contains(expected), "{args:?} {vars:?}: {err}");
            assert!(!err.contains("\"t\""), "token leaked: {err}");
        }
    }

    #[test]
    fn cli_context_is_read_with_host_and_expiry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ivcap-cli")).unwrap();
        let yaml = "version: v1\nactive-context: dev\ncontexts:\n\
            - name: dev\n  url: https://dev.example/\n  host: api.dev.example\n  access-token: tok\n  access-token-expiry: 2999-01-01T00:00:00Z\n\
            - name: old\n  url: https://old.example\n  access-token: tok\n  access-token-expiry: 2000-01-01T00:00:00+10:00\n\
            - name: none\n  url: https://none.example\n\
            - name: renew\n  url: https://renew.example\n  access-token: tok\n  access-token-expiry: 2000-01-01T00:00:00Z\n  refresh-token: r\n";
        std::fs::write(dir.path().join("ivcap-cli/config.yaml"), yaml).unwrap();
        let run = |name: &str| {
            let cli = Cli {
                context: Some(name.into()),
                output_budget: DEFAULT_OUTPUT_BUDGET,
                max_wait: DEFAULT_MAX_WAIT,
                ..Cli::default()
            };
            Config::resolve(&cli, &|_| None, Some(dir.path().to_path_buf()))
        };
        let p = platform(run("").unwrap());
        assert_eq!(p.base_url, "https://dev.example");
        assert_eq!(p.host_header.as_deref(), Some("api.dev.example"));
        assert_eq!(p.cli_login.map(|l| l.context).as_deref(), Some("dev"));
        assert!(run("old").unwrap_err().to_string().contains("ivcap-mcp login --context old"));
        let renew = platform(run("renew").unwrap());
        assert_eq!(
            renew.token,
            Some(Secret::new("tok")),
            "an expired token with a refresh token is refreshed, not refused"
        );
        assert!(run("none").unwrap_err().to_string().contains("ivcap context login"));
        assert!(run("missing").unwrap_err().to_string().contains("ivcap context list"));
    }

    #[test]
    fn service_tools_flags_are_checked() {
        assert_eq!(resolve(&[], &[]).unwrap().service_tools, None);
        let c = resolve(&["--service-tools", "alpha, fire%,", "--service-tools-refresh", "60"], &[]).unwrap();
        let st = c.service_tools.unwrap();
        assert_eq!(st.selection, ["alpha", "fire%"]);
        assert_eq!((st.max, st.refresh.as_secs()), (DEFAULT_SERVICE_TOOLS_MAX, 60));
        let err = resolve(&["--service-tools", "%", "--service-tools-max", "0"], &[]).unwrap_err().to_string();
        assert!(err.contains("--service-tools-max 0 is out of range"), "{err}");
        let err = resolve(&["--service-tools", "%", "--service-tools-refresh", "0"], &[]).unwrap_err().to_string();
        assert!(err.contains("--service-tools-refresh 0"), "{err}");
    }

    #[test]
    fn chunk_sizes_parse_with_units() {
        assert_eq!(parse_chunk_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_chunk_size("512k"), Ok(512 << 10));
        assert_eq!(parse_chunk_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_chunk_size("12").unwrap_err(), "'12' is outside 1KiB..=1GiB");
        assert!(parse_chunk_size("2TiB").unwrap_err().contains("unit"));
        assert!(parse_chunk_size("lots").is_err());
        assert_eq!(parse_message_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_message_size("4KiB").unwrap_err(), "'4KiB' is outside 64KiB..=1GiB");
        assert_eq!(resolve(&[], &[]).unwrap().chunk_size, 8 << 20);
        let c = resolve(&["--chunk-size", "1MiB", "--allow-path", "/a", "--allow-path", "/b"], &[]).unwrap();
        assert_eq!((c.chunk_size, c.allow_paths.len()), (1 << 20, 2));
    }

    #[test]
    fn search_memory_is_a_size_of_1_mib_to_1_gib() {
        let c = resolve(&[], &[]).unwrap();
        assert_eq!((c.search_memory, c.search_full_scan), (32 << 20, false));
        assert_eq!(resolve(&["--search-memory", "8MiB"], &[]).unwrap().search_memory, 8 << 20);
        let err = resolve(&["--search-memory", "512KiB"], &[]).unwrap_err().to_string();
        assert!(err.contains("--search-memory") && err.contains("'512KiB' is outside 1MiB..=1GiB"), "{err}");
    }

    fn http(c: Config) -> HttpConfig {
        match c.transport {
            Transport::Http(h) => h,
            Transport::Stdio => panic!("expected HTTP transport"),
        }
    }

    #[test]
    fn stdio_is_the_default_transport() {
        assert_eq!(resolve(&[], &[("IVCAP_MCP_TOKEN", "x")]).unwrap().transport, Transport::Stdio);
    }

    #[test]
    fn http_address_forms() {
        let addr = |a: &str| http(resolve(&["--http", a], &[]).unwrap()).addr.to_string();
        assert_eq!(addr("8080"), "127.0.0.1:8080");
        assert_eq!(addr(":8080"), "127.0.0.1:8080");
        assert_eq!(addr("localhost:8080"), "127.0.0.1:8080");
        assert_eq!(addr("0.0.0.0:9000"), "0.0.0.0:9000");
        assert_eq!(addr("[::1]:9000"), "[::1]:9000");
        for bad in ["example.org:80", "99999", "127.0.0.1", "x"] {
            let err = resolve(&["--http", bad], &[]).unwrap_err().to_string();
            assert!(err.contains("--http") && err.contains("IP:PORT"), "{bad}: {err}");
        }
    }

    #[test]
    fn http_allow_lists_start_loopback_and_extend() {
        let h = http(
            resolve(
                &[
                    "--http",
                    "10.1.2.3:80",
                    "--allowed-host",
                    "mcp.example.org",
                    "--allowed-origin",
                    "https://a.example:*",
                ],
                &[],
            )
            .unwrap(),
        );
        assert_eq!(h.allowed_hosts, ["localhost", "127.0.0.1", "::1", "10.1.2.3", "mcp.example.org"]);
        assert!(h.allowed_origins.contains(&"http://localhost:*".to_string()));
        assert_eq!(h.allowed_origins.last().map(String::as_str), Some("https://a.example:*"));
        let err = resolve(&["--http", "80", "--allowed-origin", "https://a.example/path"], &[]).unwrap_err();
        assert!(err.to_string().contains("--allowed-origin"), "{err}");
    }

    #[test]
    fn http_only_flags_need_http() {
        assert!(resolve(&["--stateless"], &[]).is_err());
        assert!(resolve(&["--allowed-host", "x"], &[]).is_err());
    }

    #[test]
    fn auth_token_from_flag_or_environment_flag_wins() {
        let h = http(resolve(&["--http", "80"], &[("IVCAP_MCP_TOKEN", "env")]).unwrap());
        assert_eq!(h.auth_token, Some(Secret::new("env")));
        let h = http(resolve(&["--http", "80", "--auth-token", "flag"], &[("IVCAP_MCP_TOKEN", "env")]).unwrap());
        assert_eq!(h.auth_token, Some(Secret::new("flag")));
        assert_eq!(http(resolve(&["--http", "80"], &[("IVCAP_MCP_TOKEN", " ")]).unwrap()).auth_token, None);
        let cli = Cli::try_parse_from(["ivcap-mcp", "--auth-token", "hunter2"]).unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
    }
}
