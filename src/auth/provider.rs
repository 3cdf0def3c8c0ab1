//! The deployment's login provider (docs/ivcap-wire.md §15): found through
//! `GET <base>/1/authinfo.yaml`, and its token endpoint, which answers logins and refreshes.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use reqwest::header;
use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};

use crate::config::Secret;
use crate::error::{Error, Result};
use crate::text::truncate;

/// Connect and whole-request timeouts of calls to IVCAP's authinfo and to the provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Lifetime assumed for an access token whose answer gives no `expires_in` and which
/// carries no `exp` (RFC 6749 §5.1 leaves it to the provider to document one).
const ASSUMED_LIFETIME: i64 = 3600;

/// The CLI records an expiry 10 s before the provider's, for clock differences and transit.
const EXPIRY_SLACK: i64 = 10;

/// The HTTP client for logins: no redirects, bounded waits.
pub fn http_client() -> Result<reqwest::Client> {
    crate::http_client()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("ivcap-mcp/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))
}

/// One provider of `/1/authinfo.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthProvider {
    /// The provider's key in the list (its `id` field when present).
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub login_url: String,
    pub token_url: String,
    pub code_url: String,
    #[serde(default)]
    pub jwks_url: String,
    pub client_id: String,
    /// The audience to ask tokens for; the CLI's default when the deployment names none.
    #[serde(default)]
    pub audience: Option<String>,
}

/// The audience the Go CLI asks for when a provider names none.
const DEFAULT_AUDIENCE: &str = "https://api.ivcap.net/";

impl AuthProvider {
    pub fn audience(&self) -> &str {
        self.audience.as_deref().filter(|a| !a.is_empty()).unwrap_or(DEFAULT_AUDIENCE)
    }
}

#[derive(Deserialize)]
struct AuthInfo {
    version: Value,
    #[serde(default)]
    auth: Option<ProviderList>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ProviderList {
    #[serde(default)]
    default_provider_id: Option<String>,
    #[serde(default)]
    providers: Mapping,
}

/// Reads the login provider of the IVCAP deployment at `base_url` (sent with `host` as its
/// `Host` header when a CLI context names one).
pub async fn discover(http: &reqwest::Client, base_url: &str, host: Option<&str>) -> Result<AuthProvider> {
    let url = format!("{}/1/authinfo.yaml", base_url.trim_end_matches('/'));
    let mut request = http.get(&url);
    if let Some(host) = host {
        request = request.header(header::HOST, host);
    }
    let failed = |why: String| Error::Transport(format!("cannot read {url}: {why}"));
    let resp = request.send().await.map_err(|e| failed(e.without_url().to_string()))?;
    let status = resp.status();
    let body = resp.text().await.map_err(|e| failed(e.without_url().to_string()))?;
    if !status.is_success() {
        return Err(Error::UnexpectedAnswer(format!(
            "{url} answered {status}: this IVCAP offers no login provider; set IVCAP_JWT to a token instead"
        )));
    }
    pick_provider(&body).map_err(|why| Error::UnexpectedAnswer(format!("{url}: {why}")))
}

/// The default provider of an authinfo document, else the first; the reason when there is
/// none to use.
fn pick_provider(text: &str) -> std::result::Result<AuthProvider, String> {
    let info: AuthInfo = serde_yaml_ng::from_str(text).map_err(|e| format!("not an authinfo document ({e})"))?;
    let version = match &info.version {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    if version != Some(1) {
        return Err("authinfo version is not 1: this ivcap-mcp is too old for the deployment; update it".into());
    }
    let list = info.auth.ok_or("authinfo lists no providers")?;
    let default = list.default_provider_id.filter(|d| !d.is_empty());
    let chosen = match &default {
        Some(id) => list.providers.iter().find(|(k, _)| k.as_str() == Some(id.as_str())),
        None => list.providers.iter().next(),
    };
    let Some((key, value)) = chosen else {
        return Err(match default {
            Some(id) => format!("authinfo names default provider '{id}' but does not list it"),
            None => "authinfo lists no providers".into(),
        });
    };
    let mut provider: AuthProvider =
        serde_yaml_ng::from_value(value.clone()).map_err(|e| format!("provider {key:?} is incomplete ({e})"))?;
    if provider.id.is_empty() {
        provider.id = key.as_str().unwrap_or_default().to_string();
    }
    for (name, url) in [("token-url", &provider.token_url), ("code-url", &provider.code_url)] {
        let ok = url::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !ok {
            return Err(format!("provider '{}' has a {name} that is not an http(s) URL", provider.id));
        }
    }
    Ok(provider)
}

/// What the token endpoint gave.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: Secret,
    /// A new refresh token (the provider rotated it), or `None`: keep the old one.
    pub refresh_token: Option<Secret>,
    /// Seconds the access token is good for.
    pub expires_in: Option<u64>,
}

impl Tokens {
    /// The expiry to record, as the CLI computes it: `now + expires_in - 10 s` (from the
    /// token's `exp` when the answer gives no `expires_in`).
    pub fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let after = |secs: i64| chrono::Duration::try_seconds(secs).and_then(|d| now.checked_add_signed(d));
        let from_exp = || {
            let exp = claims(&self.access_token)?.get("exp")?.as_i64()?;
            DateTime::from_timestamp(exp, 0)
        };
        let at = self
            .expires_in
            .and_then(|s| after(i64::try_from(s).ok()?))
            .or_else(from_exp)
            .or_else(|| after(ASSUMED_LIFETIME))
            .unwrap_or(now);
        at - chrono::Duration::seconds(EXPIRY_SLACK)
    }
}

/// An OAuth error answer (RFC 6749 §5.2): `invalid_grant`, `authorization_pending`, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub error: String,
    pub description: Option<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {}", self.error, truncate(d, 200)),
            None => f.write_str(&self.error),
        }
    }
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `POST token-url` with `form` (plus `client_id`): the tokens, or the provider's refusal.
pub async fn token_request(
    http: &reqwest::Client,
    provider: &AuthProvider,
    form: &[(&str, &str)],
) -> Result<std::result::Result<Tokens, Refusal>> {
    token_post(http, &provider.token_url, Client::Public(&provider.client_id), form).await
}

/// How a token request names its client.
pub enum Client<'a> {
    /// A public client: `client_id` in the form.
    Public(&'a str),
    /// A confidential client: `client_secret_basic` (RFC 6749 §2.3.1).
    Basic { id: &'a str, secret: &'a Secret },
}

/// `POST token_url` with `form` as `client`: the tokens, or the provider's refusal (RFC 6749
/// §5.1, §5.2). An error answer holds no token, so its text may be quoted.
pub async fn token_post(
    http: &reqwest::Client,
    token_url: &str,
    client: Client<'_>,
    form: &[(&str, &str)],
) -> Result<std::result::Result<Tokens, Refusal>> {
    let mut fields: Vec<(&str, &str)> = form.to_vec();
    let host = url::Url::parse(token_url).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let failed = |why: String| Error::Transport(format!("the login provider at {host}: {why}"));
    let mut request = http.post(token_url);
    match client {
        Client::Public(id) => fields.push(("client_id", id)),
        // Id and secret are form-encoded before Basic encodes them (RFC 6749 §2.3.1).
        Client::Basic { id, secret } => {
            request = request.basic_auth(form_encoded(id), Some(form_encoded(secret.expose())))
        }
    }
    let resp = request.form(&fields).send().await.map_err(|e| failed(e.without_url().to_string()))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| failed(e.without_url().to_string()))?;
    let body: Option<TokenBody> = serde_json::from_slice(&bytes).ok();
    match body {
        Some(TokenBody { error: Some(error), error_description, .. }) => {
            Ok(Err(Refusal { error, description: error_description.filter(|d| !d.trim().is_empty()) }))
        }
        Some(TokenBody { access_token: Some(access), refresh_token, expires_in, .. }) if status.is_success() => {
            let expires_in = match expires_in {
                Some(Value::Number(n)) => n.as_u64(),
                Some(Value::String(s)) => s.trim().parse().ok(),
                _ => None,
            };
            Ok(Ok(Tokens {
                access_token: Secret::new(access),
                refresh_token: refresh_token.filter(|r| !r.is_empty()).map(Secret::new),
                expires_in,
            }))
        }
        _ => Err(Error::UnexpectedAnswer(format!(
            "the login provider at {host} answered {status} without tokens or an OAuth error"
        ))),
    }
}

fn form_encoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `grant_type=refresh_token`: new tokens, or the provider's refusal (`invalid_grant` once
/// the refresh token was used, revoked or expired).
pub async fn refresh(
    http: &reqwest::Client,
    provider: &AuthProvider,
    refresh_token: &Secret,
) -> Result<std::result::Result<Tokens, Refusal>> {
    token_request(http, provider, &[("grant_type", "refresh_token"), ("refresh_token", refresh_token.expose())]).await
}

/// The claims of a JWT, read without checking its signature: only for what we record
/// about our own login (the account), never to decide whom to trust.
pub fn claims(token: &Secret) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.expose().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `account-id` and `provider-id` as the CLI records them from a token's `acc` and
/// `ivcap/claims/provider` claims.
pub fn account_ids(token: &Secret) -> (Option<String>, Option<String>) {
    let Some(claims) = claims(token) else { return (None, None) };
    let text = |name: &str| claims.get(name).and_then(|v| v.as_str()).map(str::trim).filter(|s| !s.is_empty());
    let Some(acc) = text("acc") else { return (None, None) };
    let bare = acc.strip_prefix(crate::urn::ACCOUNT_PREFIX).unwrap_or(acc);
    let provider = text("ivcap/claims/provider").unwrap_or(bare);
    (
        Some(format!("{}{bare}", crate::urn::ACCOUNT_PREFIX)),
        Some(format!(
            "{}{}",
            crate::urn::PROVIDER_PREFIX,
            provider.strip_prefix(crate::urn::PROVIDER_PREFIX).unwrap_or(provider)
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "version: 1\nauth:\n  default-provider-id: b\n  providers:\n    a:\n      id: a\n      login-url: https://a/login\n      token-url: https://a/token\n      code-url: https://a/code\n      jwks-url: https://a/jwks\n      client-id: ca\n    b:\n      login-url: https://b/login\n      token-url: https://b/token\n      code-url: https://b/code\n      jwks-url: https://b/jwks\n      client-id: cb\n      audience: https://api.b\n";

    #[test]
    fn the_default_provider_is_chosen_else_the_first() {
        let b = pick_provider(INFO).unwrap();
        assert_eq!((b.id.as_str(), b.client_id.as_str(), b.audience()), ("b", "cb", "https://api.b"));
        let first = pick_provider(&INFO.replace("  default-provider-id: b\n", "")).unwrap();
        assert_eq!((first.id.as_str(), first.audience()), ("a", DEFAULT_AUDIENCE));
        let missing = pick_provider(&INFO.replace("default-provider-id: b", "default-provider-id: z")).unwrap_err();
        assert!(missing.contains("'z'"), "{missing}");
        let v2 = pick_provider(&INFO.replace("version: 1", "version: 2")).unwrap_err();
        assert!(v2.contains("update"), "{v2}");
        assert!(pick_provider(&INFO.replace("version: 1", "version: \"1\"")).is_ok());
        let bad = pick_provider(&INFO.replace("https://b/token", "not a url")).unwrap_err();
        assert!(bad.contains("token-url"), "{bad}");
    }

    fn jwt(claims: serde_json::Value) -> Secret {
        let enc = |v: &serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        Secret::new(format!("{}.{}.sig", enc(&serde_json::json!({"alg": "ES256"})), enc(&claims)))
    }

    #[test]
    fn account_ids_follow_the_cli() {
        let t = jwt(serde_json::json!({"acc": "urn:ivcap:account:alice"}));
        assert_eq!(account_ids(&t), (Some("urn:ivcap:account:alice".into()), Some("urn:ivcap:provider:alice".into())));
        let t = jwt(serde_json::json!({"acc": "4a", "ivcap/claims/provider": "p1"}));
        assert_eq!(account_ids(&t), (Some("urn:ivcap:account:4a".into()), Some("urn:ivcap:provider:p1".into())));
        assert_eq!(account_ids(&Secret::new("opaque")), (None, None));
    }

    #[test]
    fn expiry_is_ten_seconds_early_from_expires_in_or_exp() {
        let now = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let t = Tokens { access_token: Secret::new("x"), refresh_token: None, expires_in: Some(300) };
        assert_eq!(t.expiry(now).to_rfc3339(), "2030-01-01T00:04:50+00:00");
        let exp = now.timestamp() + 100;
        let t = Tokens { access_token: jwt(serde_json::json!({"exp": exp})), refresh_token: None, expires_in: None };
        assert_eq!(t.expiry(now).to_rfc3339(), "2030-01-01T00:01:30+00:00");
    }
}
