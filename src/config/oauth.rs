//! `--oauth` and its flags: the server as an OAuth 2.1 protected resource that acts as each
//! caller's own IVCAP user (docs/deployment.md, "Deploying for a team"). Only checked here;
//! the issuer's metadata and keys are read when the server starts (`crate::auth`).

use super::{Cli, Mode, Secret};
use crate::error::{Error, Result};

/// Scopes a token must hold unless `--oauth-scopes` says otherwise: what an IVCAP login asks
/// for, without `offline_access` (a client asks for that itself when it wants to refresh).
pub const DEFAULT_OAUTH_SCOPES: &[&str] = &["openid", "profile", "email"];

/// `--oauth-upstream`: what the server sends to IVCAP for a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OAuthUpstream {
    /// An RFC 8693 token exchange at the issuer for a token with IVCAP's audience.
    #[default]
    Exchange,
    /// The user's token itself, accepted only when its `aud` also holds IVCAP's audience.
    SameAudience,
}

/// The resolved `--oauth` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthConfig {
    /// `--oauth-resource`: the canonical URL of the MCP endpoint, without a trailing slash.
    pub resource: String,
    /// `--oauth-issuer`; `None`: the IVCAP deployment's provider.
    pub issuer: Option<String>,
    /// `--oauth-scopes`.
    pub scopes: Vec<String>,
    pub upstream: OAuthUpstream,
    /// The server's own client at the issuer (`exchange` only).
    pub client: Option<(String, Secret)>,
}

/// `--oauth` checked against the mode and the environment; `None` without `--oauth`.
pub(super) fn resolve(cli: &Cli, mode: &Mode, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<OAuthConfig>> {
    if !cli.oauth {
        return Ok(None);
    }
    let bad = |message: String| Err(Error::Config(message));
    if var("IVCAP_MCP_TOKEN").is_some() {
        return bad("--oauth and IVCAP_MCP_TOKEN exclude each other: with --oauth every client logs in as itself; \
             unset IVCAP_MCP_TOKEN (or drop --oauth to share one token)"
            .into());
    }
    let Mode::Platform(_) = mode else {
        return bad("--oauth needs an IVCAP platform (it acts as each user there): set IVCAP_URL or pass --url; \
             local mode has no users"
            .into());
    };
    if cli.context.is_some() {
        return bad("--oauth does not work with --context: set IVCAP_URL (or --url) to the platform instead".into());
    }
    let Some(resource) = cli.oauth_resource.as_deref() else {
        return bad("--oauth needs --oauth-resource: the public URL clients use for this server's MCP endpoint, \
             e.g. --oauth-resource https://mcp.example.org/mcp"
            .into());
    };
    let resource = checked_url(resource, "--oauth-resource")?;
    let issuer = cli.oauth_issuer.as_deref().map(|i| checked_url(i, "--oauth-issuer")).transpose()?;
    let scopes: Vec<String> = match &cli.oauth_scopes {
        Some(list) => list.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect(),
        None => DEFAULT_OAUTH_SCOPES.iter().map(|s| s.to_string()).collect(),
    };
    if let Some(bad_scope) = scopes.iter().find(|s| s.contains(['"', '\\', ' ']) || s.as_str() == "offline_access") {
        return bad(format!(
            "--oauth-scopes '{bad_scope}' is not allowed: scopes are names without spaces or quotes, and \
             offline_access is for clients to ask for, never for a server to require"
        ));
    }
    let upstream = cli.oauth_upstream.unwrap_or_default();
    let client = match upstream {
        OAuthUpstream::SameAudience => None,
        OAuthUpstream::Exchange => {
            let (Some(id), Some(secret)) = (var("IVCAP_MCP_OAUTH_CLIENT_ID"), var("IVCAP_MCP_OAUTH_CLIENT_SECRET"))
            else {
                return bad("--oauth-upstream exchange needs the server's own client at the issuer: set \
                     IVCAP_MCP_OAUTH_CLIENT_ID and IVCAP_MCP_OAUTH_CLIENT_SECRET (a confidential client allowed \
                     to exchange tokens for IVCAP's audience), or use --oauth-upstream same-audience \
                     (docs/deployment.md)"
                    .into());
            };
            Some((id.trim().to_string(), Secret::new(secret)))
        }
    };
    Ok(Some(OAuthConfig { resource, issuer, scopes, upstream, client }))
}

/// An absolute `https://` URL (or `http://` for a loopback host, as in tests and behind a
/// local proxy) without query or fragment, as given but without a trailing slash.
fn checked_url(raw: &str, flag: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = url::Url::parse(trimmed).map_err(|_| {
        Error::Config(format!(
            "{flag} '{raw}' is not a URL: give an absolute https:// URL, e.g. https://mcp.example.org/mcp"
        ))
    })?;
    let loopback = matches!(url.host(), Some(url::Host::Domain("localhost")))
        || matches!(url.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
        || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok || url.host().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Config(format!(
            "{flag} '{raw}' must be an https:// URL (http:// only on a loopback host) without query or fragment"
        )));
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Transport};
    use clap::Parser;

    fn resolve(args: &[&str], vars: &[(&str, &str)]) -> Result<Option<OAuthConfig>> {
        let mut argv = vec!["ivcap-mcp"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| Error::Config(e.to_string()))?;
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let config = Config::resolve(&cli, &env, None)?;
        Ok(match config.transport {
            Transport::Http(h) => h.oauth.map(|o| *o),
            Transport::Stdio => None,
        })
    }

    const PLATFORM: (&str, &str) = ("IVCAP_URL", "https://ivcap.example");
    const CLIENT: [(&str, &str); 2] = [("IVCAP_MCP_OAUTH_CLIENT_ID", "mcp"), ("IVCAP_MCP_OAUTH_CLIENT_SECRET", "s3")];

    #[test]
    fn oauth_resolves_with_defaults_and_needs_no_server_token() {
        let o = resolve(
            &["--http", "80", "--oauth", "--oauth-resource", "https://mcp.example.org/mcp/"],
            &[PLATFORM, CLIENT[0], CLIENT[1]],
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.resource, "https://mcp.example.org/mcp");
        assert_eq!((o.issuer, o.upstream), (None, OAuthUpstream::Exchange));
        assert_eq!(o.scopes, ["openid", "profile", "email"]);
        assert_eq!(o.client.as_ref().map(|c| c.0.as_str()), Some("mcp"));
        assert!(!format!("{:?}", o.client).contains("s3\""), "the secret is hidden");
        let o = resolve(
            &[
                "--http",
                "80",
                "--oauth",
                "--oauth-resource",
                "http://127.0.0.1:8080/mcp",
                "--oauth-issuer",
                "https://auth.example/",
                "--oauth-scopes",
                "mcp:use",
                "--oauth-upstream",
                "same-audience",
            ],
            &[PLATFORM],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (o.issuer.as_deref(), o.scopes.as_slice()),
            (Some("https://auth.example"), &["mcp:use".to_string()][..])
        );
        assert_eq!((o.upstream, o.client), (OAuthUpstream::SameAudience, None));
    }

    #[test]
    fn bad_oauth_combinations_are_clear_startup_errors() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&["--oauth"], &[PLATFORM], "--http"),
            (&["--http", "80", "--oauth", "--auth-token", "t"], &[PLATFORM], "--auth-token"),
            (
                &["--http", "80", "--oauth", "--oauth-resource", "https://m/mcp"],
                &[PLATFORM, ("IVCAP_MCP_TOKEN", "t")],
                "IVCAP_MCP_TOKEN",
            ),
            (&["--http", "80", "--oauth-resource", "https://m/mcp"], &[PLATFORM], "--oauth"),
            (&["--http", "80", "--oauth"], &[PLATFORM, CLIENT[0], CLIENT[1]], "needs --oauth-resource"),
            (&["--http", "80", "--oauth", "--oauth-resource", "https://m/mcp"], &[], "needs an IVCAP platform"),
            (&["--http", "80", "--oauth", "--oauth-resource", "http://m.example/mcp"], &[PLATFORM], "https://"),
            (&["--http", "80", "--oauth", "--oauth-resource", "mcp"], &[PLATFORM], "not a URL"),
            (
                &["--http", "80", "--oauth", "--oauth-resource", "https://m/mcp"],
                &[PLATFORM],
                "IVCAP_MCP_OAUTH_CLIENT_ID",
            ),
            (
                &[
                    "--http",
                    "80",
                    "--oauth",
                    "--oauth-resource",
                    "https://m/mcp",
                    "--oauth-scopes",
                    "openid,offline_access",
                ],
                &[PLATFORM, CLIENT[0], CLIENT[1]],
                "offline_access",
            ),
            (&["--http", "80", "--oauth", "--oauth-upstream", "sideways"], &[PLATFORM], "sideways"),
        ];
        for (args, vars, expected) in cases {
            let err = resolve(args, vars).unwrap_err().to_string();
            assert!(err.contains(expected), "{args:?}: {err}");
            assert!(!err.contains("s3"), "secret leaked: {err}");
        }
    }
}
