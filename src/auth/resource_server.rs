//! The server as an OAuth 2.1 protected resource (`--oauth`), set up once at start: IVCAP's
//! login provider (`provider::discover`, from `/1/authinfo.yaml`) gives IVCAP's audience and, unless
//! `--oauth-issuer` names one, the issuer; the issuer's metadata gives its keys and token
//! endpoint. Every failure here is a start-up error that names the fix.

use std::sync::Arc;

use serde_json::{Value, json};

use super::access_token::{Refusal, UserId, Verifier};
use super::jwks::{self, Jwks};
use super::provider::{self, AuthProvider};
use super::upstream::{Exchanger, Upstream, UserCredentials};
use crate::config::{OAuthConfig, OAuthUpstream, Secret};
use crate::error::{Error, Result};

/// The issuer behind a provider whose authinfo names no issuer: the prefixes of its
/// `token-url` path (longest first) whose metadata lists that token endpoint (or the
/// provider's `jwks-url`). Nothing found is an error asking for `--oauth-issuer`.
async fn discover_issuer(http: &reqwest::Client, provider: &AuthProvider) -> Result<jwks::IssuerMetadata> {
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
            let same_keys = provider.jwks_url == meta.jwks_uri;
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
        // No redirects, bounded waits: the client logins use.
        let http = provider::http_client()?;
        let provider = provider::discover(&http, ivcap, None).await.map_err(|e| {
            Error::Config(format!(
                "--oauth: cannot read IVCAP's login provider ({e}); check IVCAP_URL, or that this IVCAP deployment \
                 has OAuth logins"
            ))
        })?;
        let ivcap_audience = provider.audience().to_string();
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
