//! `--http` and its security rules: the listen address, the `Host` and `Origin` allow-lists
//! (loopback always allowed), and the bearer token MCP clients must present.

use super::{Cli, Secret};
use crate::error::{Error, Result};

/// The HTTP listener and its security rules.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Where to listen.
    pub addr: std::net::SocketAddr,
    /// No sessions: each Streamable HTTP request is served on its own.
    pub stateless: bool,
    /// `Host` values accepted (name, or name:port); loopback names first.
    pub allowed_hosts: Vec<String>,
    /// Browser `Origin`s accepted (`scheme://host[:port|:*]`); requests without one pass.
    pub allowed_origins: Vec<String>,
    /// Bearer token MCP clients must present; `None` = no authentication.
    pub auth_token: Option<Secret>,
    /// `/metrics` without the bearer token (`--metrics-public`).
    pub metrics_public: bool,
    /// How long calls in flight may run on after a shutdown signal (`--shutdown-grace`).
    pub shutdown_grace: std::time::Duration,
    /// `--oauth`: every caller logs in as its own IVCAP user.
    pub oauth: Option<Box<super::OAuthConfig>>,
}

impl HttpConfig {
    /// The HTTP settings for `--http ADDR`; `token_env` is `IVCAP_MCP_TOKEN`, if set.
    pub(super) fn resolve(cli: &Cli, addr: &str, token_env: Option<String>) -> Result<HttpConfig> {
        let addr = parse_http_addr(addr)?;
        let mut allowed_hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| h.to_string()).collect();
        if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
            allowed_hosts.push(addr.ip().to_string());
        }
        allowed_hosts.extend(cli.allowed_host.iter().map(|h| h.trim().to_string()));
        let mut allowed_origins: Vec<String> = LOOPBACK_ORIGINS.iter().map(|o| o.to_string()).collect();
        for origin in &cli.allowed_origin {
            allowed_origins.push(check_origin(origin)?);
        }
        let auth_token = cli.auth_token.clone().or_else(|| token_env.map(Secret::new));
        Ok(HttpConfig {
            addr,
            stateless: cli.stateless,
            allowed_hosts,
            allowed_origins,
            auth_token,
            metrics_public: cli.metrics_public,
            shutdown_grace: std::time::Duration::from_secs(cli.shutdown_grace),
            oauth: None,
        })
    }
}

/// `Host` names always accepted over HTTP.
const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// Browser origins always accepted over HTTP: pages served from this machine.
const LOOPBACK_ORIGINS: &[&str] = &[
    "http://localhost:*",
    "http://127.0.0.1:*",
    "http://[::1]:*",
    "https://localhost:*",
    "https://127.0.0.1:*",
    "https://[::1]:*",
];

/// `--http ADDR`: `PORT`, `:PORT` or `IP:PORT` (`localhost:PORT` too); the default IP is 127.0.0.1.
fn parse_http_addr(raw: &str) -> Result<std::net::SocketAddr> {
    let raw = raw.trim();
    let bad = |why: &str| {
        Error::Config(format!(
            "--http '{raw}' {why}: give a port (8080, binds 127.0.0.1) or IP:PORT (127.0.0.1:8080, \
             [::1]:8080, or 0.0.0.0:8080 to listen on every interface)"
        ))
    };
    let port_only = raw.strip_prefix(':').unwrap_or(raw);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    if let Some(port) = raw.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| bad("has no valid port"))?;
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    raw.parse::<std::net::SocketAddr>().map_err(|_| bad("is not a port or IP:PORT"))
}

/// `--allowed-origin`: must be `null` or `scheme://host[:port|:*]` with nothing after.
fn check_origin(raw: &str) -> Result<String> {
    let origin = raw.trim().trim_end_matches('/');
    if origin == "null" {
        return Ok(origin.to_string());
    }
    let base = origin.strip_suffix(":*").unwrap_or(origin);
    let ok = url::Url::parse(base).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some() && u.path() == "/" && u.query().is_none()
    }) && base.matches("://").count() == 1
        && !base.split("://").nth(1).is_some_and(|rest| rest.contains('/'));
    if ok {
        Ok(origin.to_string())
    } else {
        Err(Error::Config(format!(
            "--allowed-origin '{raw}' is not an origin: use scheme://host, scheme://host:port or \
             scheme://host:* (any port), e.g. https://app.example.org"
        )))
    }
}
