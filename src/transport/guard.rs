//! The checks every HTTP request passes before any route sees it: the `Host` and `Origin`
//! allow-lists (so a DNS-rebinding page cannot drive a server on loopback) and, on every
//! route but `/healthz` (and `/metrics` with `--metrics-public`), the bearer token. Each
//! refusal is counted in the metrics by reason.
//!
//! Checked first by the HTTP front door (transport::http) in front of the whole router, so
//! Streamable HTTP, the legacy SSE routes and `/healthz` share the same rules. The token is
//! compared in constant time and never logged or stored; past the guard the header is read
//! only as private input to the seal of a confirmation's `requestState` (server::elicitation).

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::config::Secret;
use crate::telemetry::metrics::{self, Refusal};

/// The rules, built once from the configuration.
#[derive(Debug)]
pub(super) struct Guard {
    hosts: Vec<Authority>,
    origins: Vec<AllowedOrigin>,
    token: Option<Secret>,
    /// `/metrics` needs no token (`--metrics-public`).
    public_metrics: bool,
}

/// A host with an optional port; lower-case, without IPv6 brackets.
#[derive(Debug, PartialEq)]
struct Authority {
    host: String,
    port: Option<u16>,
}

/// An allowed origin: `null`, or scheme + host + port (`None` = any port).
#[derive(Debug, PartialEq)]
enum AllowedOrigin {
    Null,
    Tuple { scheme: String, host: String, port: Option<u16> },
}

impl Guard {
    pub(super) fn new(hosts: &[String], origins: &[String], token: Option<Secret>) -> Self {
        Guard {
            hosts: hosts.iter().filter_map(|h| authority(h)).collect(),
            origins: origins.iter().filter_map(|o| allowed_origin(o)).collect(),
            token,
            public_metrics: false,
        }
    }

    /// Serves `/metrics` without the bearer token when `public`.
    pub(super) fn with_public_metrics(mut self, public: bool) -> Self {
        self.public_metrics = public;
        self
    }

    /// `None` when the request may proceed; otherwise the response that refuses it.
    pub(super) fn check(&self, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
            .or_else(|| uri.authority().map(|a| a.to_string()));
        let Some(host) = host.as_deref().and_then(authority) else {
            metrics::auth_failure(Refusal::BadHost);
            return Some((StatusCode::BAD_REQUEST, "Bad Request: missing or malformed Host header").into_response());
        };
        if !self.hosts.iter().any(|a| a.host == host.host && a.port.is_none_or(|p| host.port == Some(p))) {
            tracing::warn!(host = %host.host, "refused a request for a Host not on the allow-list");
            metrics::auth_failure(Refusal::HostNotAllowed);
            return Some(
                (StatusCode::FORBIDDEN, "Forbidden: Host header is not allowed; start the server with --allowed-host")
                    .into_response(),
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = origin.to_str().ok().and_then(request_origin).is_some_and(|o| self.origin_allowed(&o));
            if !allowed {
                tracing::warn!("refused a request from an Origin not on the allow-list");
                metrics::auth_failure(Refusal::OriginNotAllowed);
                return Some(
                    (StatusCode::FORBIDDEN, "Forbidden: Origin is not allowed; start the server with --allowed-origin")
                        .into_response(),
                );
            }
        }
        let open = uri.path() == "/healthz" || (self.public_metrics && uri.path() == "/metrics");
        if !open && let Some(expected) = &self.token {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim);
            let good = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(expected.expose().as_bytes())));
            if !good {
                metrics::auth_failure(if presented.is_some() { Refusal::WrongToken } else { Refusal::MissingToken });
                return Some(
                    (
                        StatusCode::UNAUTHORIZED,
                        [(header::WWW_AUTHENTICATE, "Bearer")],
                        "Unauthorized: send Authorization: Bearer <token> with the server's token (IVCAP_MCP_TOKEN)",
                    )
                        .into_response(),
                );
            }
        }
        None
    }

    fn origin_allowed(&self, origin: &AllowedOrigin) -> bool {
        let AllowedOrigin::Tuple { scheme, host, port } = origin else {
            return self.origins.contains(&AllowedOrigin::Null);
        };
        let port = port.or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        self.origins.iter().any(|allowed| match allowed {
            AllowedOrigin::Tuple { scheme: s, host: h, port: p } => {
                s == scheme && h == host && p.is_none_or(|p| port == Some(p))
            }
            AllowedOrigin::Null => false,
        })
    }
}

/// The middleware: refuses what [`Guard::check`] refuses, passes the rest on.
fn authority(raw: &str) -> Option<Authority> {
    if let Ok(ip) = raw.trim().parse::<std::net::Ipv6Addr>() {
        return Some(Authority { host: ip.to_string(), port: None });
    }
    let parsed = raw.trim().parse::<axum::http::uri::Authority>().ok()?;
    let host = parsed.host().trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    Some(Authority { host, port: parsed.port_u16() })
}

/// An `Origin` header value; its port stays `None` when omitted.
fn request_origin(raw: &str) -> Option<AllowedOrigin> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("null") {
        return Some(AllowedOrigin::Null);
    }
    let uri = raw.parse::<Uri>().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let host = authority(uri.authority()?.as_str())?;
    Some(AllowedOrigin::Tuple { scheme, host: host.host, port: host.port })
}

/// An allow-list entry: `null`, `scheme://host` or `scheme://host:*` (any port), `scheme://host:port`.
fn allowed_origin(raw: &str) -> Option<AllowedOrigin> {
    match raw.trim().strip_suffix(":*") {
        Some(base) => match request_origin(base)? {
            AllowedOrigin::Tuple { scheme, host, port: None } => {
                Some(AllowedOrigin::Tuple { scheme, host, port: None })
            }
            _ => None,
        },
        None => match request_origin(raw)? {
            AllowedOrigin::Tuple { scheme, host, port: None } => {
                let port = if scheme == "https" { 443 } else { 80 };
                Some(AllowedOrigin::Tuple { scheme, host, port: Some(port) })
            }
            other => Some(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn guard(token: Option<&str>) -> Guard {
        Guard::new(
            &["localhost".into(), "127.0.0.1".into(), "::1".into(), "mcp.example.org:8443".into()],
            &["http://localhost:*".into(), "https://app.example.org".into(), "http://[::1]:*".into()],
            token.map(Secret::new),
        )
    }

    fn status(g: &Guard, path: &str, headers: &[(&str, &str)]) -> u16 {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(header::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        g.check(&path.parse().unwrap(), &map).map_or(200, |r| r.status().as_u16())
    }

    #[test]
    fn hosts_are_matched_by_name_and_listed_port() {
        let g = guard(None);
        assert_eq!(status(&g, "/mcp", &[("host", "localhost:3000")]), 200);
        assert_eq!(status(&g, "/mcp", &[("host", "LOCALHOST")]), 200);
        assert_eq!(status(&g, "/mcp", &[("host", "[::1]:80")]), 200);
        assert_eq!(status(&g, "/mcp", &[("host", "mcp.example.org:8443")]), 200);
        assert_eq!(status(&g, "/mcp", &[("host", "mcp.example.org:80")]), 403);
        assert_eq!(status(&g, "/mcp", &[("host", "evil.example:3000")]), 403);
        assert_eq!(status(&g, "/healthz", &[("host", "evil.example")]), 403);
        assert_eq!(status(&g, "/mcp", &[]), 400);
    }

    #[test]
    fn origins_are_matched_by_scheme_host_and_port() {
        let g = guard(None);
        let with = |o: &str| status(&g, "/sse", &[("host", "localhost"), ("origin", o)]);
        assert_eq!(with("http://localhost:5173"), 200);
        assert_eq!(with("http://[::1]:1"), 200);
        assert_eq!(with("https://app.example.org"), 200);
        assert_eq!(with("https://app.example.org:443"), 200);
        assert_eq!(with("https://app.example.org:8443"), 403);
        assert_eq!(with("http://app.example.org"), 403);
        assert_eq!(with("https://localhost:5173"), 403);
        assert_eq!(with("null"), 403);
        assert_eq!(with("not an origin"), 403);
    }

    #[test]
    fn bearer_token_is_required_except_on_healthz() {
        let g = guard(Some("s3cret"));
        let with = |path: &str, auth: &str| status(&g, path, &[("host", "localhost"), ("authorization", auth)]);
        assert_eq!(with("/mcp", "Bearer s3cret"), 200);
        assert_eq!(with("/message", "Bearer s3cret"), 200);
        assert_eq!(with("/mcp", "Bearer s3cre"), 401);
        assert_eq!(with("/mcp", "Bearer s3cret2"), 401);
        assert_eq!(with("/sse", "Basic s3cret"), 401);
        assert_eq!(status(&g, "/mcp", &[("host", "localhost")]), 401);
        assert_eq!(status(&g, "/healthz", &[("host", "localhost")]), 200);
        assert_eq!(status(&guard(None), "/mcp", &[("host", "localhost")]), 200);
        assert_eq!(status(&g, "/metrics", &[("host", "localhost")]), 401);
        let public = guard(Some("s3cret")).with_public_metrics(true);
        assert_eq!(status(&public, "/metrics", &[("host", "localhost")]), 200);
        assert_eq!(status(&public, "/metrics", &[("host", "evil.example")]), 403);
        assert_eq!(status(&public, "/mcp", &[("host", "localhost")]), 401);
    }
}
