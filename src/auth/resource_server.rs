//! The server as an OAuth 2.1 protected resource (`--oauth`), set up once at start: IVCAP's
//! login provider (from `/1/authinfo.yaml`) gives IVCAP's audience and, unless
//! `--oauth-issuer` names one, the issuer; the issuer's metadata gives its keys and token
//! endpoint. Every failure here is a start-up error that names the fix.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::access_token::{Refusal, UserId, Verifier};
use super::jwks::{self, Jwks};
use super::upstream::{Exchanger, Upstream, UserCredentials};
use crate::config::{OAuthConfig, OAuthUpstream, Secret};
use crate::error::{Error, Result};

/// Timeouts of requests to IVCAP's authinfo and to the issuer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The login provider `/1/authinfo.yaml` names, as far as `--oauth` needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Provider {
    token_url: String,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    audience: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct AuthInfo {
    version: serde_yaml_ng::Value,
    auth: AuthProviders,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct AuthProviders {
    #[serde(default)]
    default_provider_id: Option<String>,
    providers: serde_yaml_ng::Mapping,
}

/// IVCAP's login provider: the default one, else the first.
async fn ivcap_provider(http: &reqwest::Client, ivcap: &str) -> Result<Provider> {
    let url = format!("{ivcap}/1/authinfo.yaml");
    let failed = |why: String| {
        Error::Config(format!(
            "--oauth: cannot read IVCAP's login provider from {url} ({why}); check IVCAP_URL, or that this IVCAP \
             deployment has OAuth logins"
        ))
    };
    let resp = http.get(&url).send().await.map_err(|e| failed(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("answered {}", resp.status())));
    }
    let text = resp.text().await.map_err(|e| failed(e.without_url().to_string()))?;
    let info: AuthInfo =
        serde_yaml_ng::from_str(&text).map_err(|e| failed(format!("not an authinfo document: {e}")))?;
    let version = info.version.as_u64().or_else(|| info.version.as_str().and_then(|v| v.trim().parse().ok()));
    if version != Some(1) {
        return Err(failed("authinfo version is not 1; update ivcap-mcp".into()));
    }
    let chosen = match info.auth.default_provider_id.as_deref() {
        Some(id) => info.auth.providers.iter().find(|(k, _)| k.as_str() == Some(id)),
        None => info.auth.providers.iter().next(),
    };
    let (_, provider) = chosen.ok_or_else(|| failed("it lists no usable provider".into()))?;
    serde_yaml_ng::from_value(provider.clone()).map_err(|e| failed(format!("the provider is incomplete: {e}")))
}

/// The issuer behind a provider whose authinfo names no issuer: the prefixes of its
/// `token-url` path (longest first) whose metadata lists that token endpoint (or the
/// provider's `jwks-url`). Ambiguity or nothing found is an error asking for `--oauth-issuer`.
async fn discover_issuer(http: &reqwest::Client, provider: &Provider) -> Result<jwks::IssuerMetadata> {
    let ask = |why: String| {
        Error::Config(format!(
            "--oauth: cannot tell the issuer of IVCAP's login provider from its token-url {} ({why}); name it \
             with --oauth-issuer",
            provider.token_url
        ))
    };
    let token_url = url::Url::parse(&provider.token_url).map_err(|_| ask("not a URL".into()))?;
    let mut segments: Vec<&str> = token_url.path().split('/').filter(|s| !s.is_empty()).collect();
    let origin = token_url.origin().ascii_serialization();
    while segments.pop().is_some() {
        let candidate = if segments.is_empty() { origin.clone() } else { format!("{origin}/{}", segments.join("/")) };
        if let Ok(meta) = jwks::issuer_metadata(http, &candidate).await {
            let same_token = meta.token_endpoint.as_deref() == Some(provider.token_url.as_str());
            let same_keys = provider.jwks_url.as_deref() == Some(meta.jwks_uri.as_str());
            if same_token || same_keys {
                return Ok(meta);
            }
        }
    }
    Err(ask("no metadata along its path lists that token endpoint".into()))
}

/// The user a request acts for, put in the HTTP request's extensions by the transport and
/// read by the server layer (through rmcp's copy of the request's `http::request::Parts`).
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserId,
    pub credentials: Arc<UserCredentials>,
}

/// Everything `--oauth` needs at request time.
pub struct ResourceServer {
    verifier: Verifier,
    upstream: Upstream,
    /// `--oauth-resource`.
    pub resource: String,
    /// The issuer, as its tokens name it.
    pub issuer: String,
    /// The scopes a token must hold.
    pub scopes: Vec<String>,
}

impl ResourceServer {
    /// Reads the provider, the issuer's metadata and its keys. `ivcap` is the platform's
    /// base URL.
    pub async fn start(config: &OAuthConfig, ivcap: &str) -> Result<Self> {
        let http = crate::http_client()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("ivcap-mcp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        let provider = ivcap_provider(&http, ivcap.trim_end_matches('/')).await?;
        let Some(ivcap_audience) = provider.audience.clone().filter(|a| !a.is_empty()) else {
            return Err(Error::Config(format!(
                "--oauth: IVCAP's login provider names no audience in {ivcap}/1/authinfo.yaml, so the server cannot \
                 tell which tokens are for IVCAP"
            )));
        };
        let meta = match &config.issuer {
            Some(issuer) => {
                jwks::issuer_metadata(&http, issuer).await.map_err(|e| Error::Config(format!("--oauth-issuer: {e}")))?
            }
            None => discover_issuer(&http, &provider).await?,
        };
        let jwks = Jwks::new(http.clone(), meta.jwks_uri.clone());
        let keys =
            jwks.load().await.map_err(|e| Error::Config(format!("--oauth: cannot read the issuer's keys: {e}")))?;
        let exchange = match (config.upstream, &config.client) {
            (OAuthUpstream::Exchange, Some(client)) => {
                let Some(endpoint) = meta.token_endpoint.clone() else {
                    return Err(Error::Config(format!(
                        "--oauth-upstream exchange: the issuer {} publishes no token_endpoint; use --oauth-upstream \
                         same-audience",
                        meta.issuer
                    )));
                };
                Some(Arc::new(Exchanger::new(http.clone(), endpoint, client.clone(), ivcap_audience.clone())))
            }
            _ => None,
        };
        tracing::info!(
            issuer = %meta.issuer,
            resource = %config.resource,
            keys,
            upstream = ?config.upstream,
            ivcap_audience = %ivcap_audience,
            "OAuth: every request acts as the user of its token"
        );
        Ok(ResourceServer {
            verifier: Verifier::new(jwks, meta.issuer.clone(), config.resource.clone(), config.scopes.clone()),
            upstream: Upstream::new(config.upstream, ivcap_audience, exchange),
            resource: config.resource.clone(),
            issuer: meta.issuer,
            scopes: config.scopes.clone(),
        })
    }

    /// The user of `token`, with the credentials the server acts with for them.
    pub async fn authenticate(&self, token: &str) -> std::result::Result<Caller, Refusal> {
        let verified = self.verifier.verify(token).await?;
        let credentials = self.upstream.credentials_for(&verified, Secret::new(token))?;
        Ok(Caller { user: verified.user, credentials })
    }

    /// The RFC 9728 protected-resource metadata.
    pub fn metadata(&self) -> Value {
        json!({
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "scopes_supported": self.scopes,
            "bearer_methods_supported": ["header"],
            "resource_name": "IVCAP MCP server",
            "resource_documentation": "https://github.com/ivcap-works/ivcap-mcp/blob/main/docs/deployment.md",
        })
    }

    /// Where clients find [`metadata`](Self::metadata): the well-known URL with the
    /// resource's path inserted (RFC 9728 §3.1).
    pub fn metadata_url(&self) -> String {
        match url::Url::parse(&self.resource) {
            Ok(url) => format!(
                "{}/.well-known/oauth-protected-resource{}",
                url.origin().ascii_serialization(),
                url.path().trim_end_matches('/')
            ),
            Err(_) => format!("{}/.well-known/oauth-protected-resource", self.resource),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authinfo_providers_parse() {
        let text = "version: 1\nauth:\n  default-provider-id: b\n  providers:\n    a: {token-url: 'https://a/t'}\n    \
                    b: {token-url: 'https://b/oauth/token', jwks-url: 'https://b/jwks', audience: 'https://api'}\n";
        let info: AuthInfo = serde_yaml_ng::from_str(text).unwrap();
        let (_, b) = info.auth.providers.iter().find(|(k, _)| k.as_str() == Some("b")).unwrap();
        let p: Provider = serde_yaml_ng::from_value(b.clone()).unwrap();
        assert_eq!((p.token_url.as_str(), p.audience.as_deref()), ("https://b/oauth/token", Some("https://api")));
    }
}
