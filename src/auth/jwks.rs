//! An authorization server as a resource server sees it: its metadata (RFC 8414, or OpenID
//! Connect discovery), and its signing keys (the JWKS), cached. An unknown `kid` fetches the
//! keys again (a rotation), but at most once per [`MIN_REFETCH`], so tokens with made-up key
//! ids cannot make the server hammer the issuer; keys older than [`MAX_AGE`] are fetched again
//! on the next use, so a key the issuer withdrew stops being accepted.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::error::{Error, Result};

/// Shortest time between two fetches of the keys for an unknown `kid`.
pub const MIN_REFETCH: Duration = Duration::from_secs(5);
/// Longest the keys are used without being fetched again.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// The parts of an issuer's metadata this server uses.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IssuerMetadata {
    /// The issuer exactly as its tokens name it in `iss`.
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub token_endpoint: Option<String>,
}

/// The metadata URLs of `issuer`, in the order tried: RFC 8414's path-inserted form, OpenID
/// Connect's appended form, and OpenID's path-inserted form (as the MCP spec asks clients).
fn metadata_urls(issuer: &str) -> Vec<String> {
    let issuer = issuer.trim_end_matches('/');
    let Ok(url) = url::Url::parse(issuer) else { return Vec::new() };
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    vec![
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{issuer}/.well-known/openid-configuration"),
        format!("{origin}/.well-known/openid-configuration{path}"),
    ]
    .into_iter()
    .fold(Vec::new(), |mut seen, u| {
        if !seen.contains(&u) {
            seen.push(u);
        }
        seen
    })
}

/// Reads the metadata of `issuer`. A document counts only when the `issuer` it names is the
/// one asked for (a trailing `/` aside), as RFC 8414 §3.3 requires.
pub async fn issuer_metadata(http: &reqwest::Client, issuer: &str) -> Result<IssuerMetadata> {
    let mut tried = Vec::new();
    for url in metadata_urls(issuer) {
        match fetch_json::<IssuerMetadata>(http, &url).await {
            Ok(meta) if same_issuer(&meta.issuer, issuer) => return Ok(meta),
            Ok(meta) => tried.push(format!("{url} names issuer {}", meta.issuer)),
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(Error::Config(format!(
        "cannot read the metadata of the authorization server {issuer} (RFC 8414 or OpenID discovery): {}",
        tried.join("; ")
    )))
}

/// Whether two issuer identifiers are the same, a trailing `/` aside.
pub fn same_issuer(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

/// `GET url` as JSON, with the failure named by URL (no query strings are involved).
pub(super) async fn fetch_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T> {
    let failed = |why: String| Error::Transport(format!("GET {url}: {why}"));
    let resp = http.get(url).send().await.map_err(|e| failed(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("answered {}", resp.status())));
    }
    resp.json::<T>().await.map_err(|e| failed(format!("not the JSON expected ({})", e.without_url())))
}

/// A verification key of the issuer.
pub struct Key {
    pub key: DecodingKey,
    /// The algorithm the JWK pins (`alg`), if it does.
    pub algorithm: Option<Algorithm>,
}

struct Cached {
    keys: HashMap<String, Arc<Key>>,
    fetched: Instant,
}

/// The issuer's signing keys by `kid`, fetched when needed.
pub struct Jwks {
    http: reqwest::Client,
    uri: String,
    cached: RwLock<Option<Cached>>,
    /// Held while fetching, so concurrent misses make one request.
    fetching: tokio::sync::Mutex<Option<Instant>>,
}

impl Jwks {
    pub fn new(http: reqwest::Client, uri: String) -> Self {
        Jwks { http, uri, cached: RwLock::new(None), fetching: tokio::sync::Mutex::new(None) }
    }

    /// Fetches the keys now (at start-up, so a wrong `jwks_uri` is found at once).
    pub async fn load(&self) -> Result<usize> {
        let mut last = self.fetching.lock().await;
        *last = Some(Instant::now());
        self.fetch().await
    }

    /// The key with this `kid`; fetches the keys again when it is unknown (at most once per
    /// [`MIN_REFETCH`]) or the keys are older than [`MAX_AGE`].
    pub async fn key(&self, kid: &str) -> Option<Arc<Key>> {
        let (found, stale) = self.lookup(kid);
        if found.is_some() && !stale {
            return found;
        }
        let mut last = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let (again, stale) = self.lookup(kid);
        if again.is_some() && !stale {
            return again;
        }
        if stale || last.is_none_or(|at| at.elapsed() >= MIN_REFETCH) {
            *last = Some(Instant::now());
            if let Err(e) = self.fetch().await {
                // Keep serving with the keys there are; the next miss tries again.
                tracing::warn!(error = %e, "cannot fetch the authorization server's keys");
            }
        }
        self.lookup(kid).0
    }

    fn lookup(&self, kid: &str) -> (Option<Arc<Key>>, bool) {
        let cached = self.cached.read().unwrap_or_else(|p| p.into_inner());
        match cached.as_ref() {
            Some(c) => (c.keys.get(kid).cloned(), c.fetched.elapsed() >= MAX_AGE),
            None => (None, true),
        }
    }

    async fn fetch(&self) -> Result<usize> {
        let set: JwkSet = fetch_json(&self.http, &self.uri).await?;
        let keys = usable_keys(&set);
        let count = keys.len();
        tracing::debug!(keys = count, "fetched the authorization server's keys");
        *self.cached.write().unwrap_or_else(|p| p.into_inner()) = Some(Cached { keys, fetched: Instant::now() });
        Ok(count)
    }
}

/// The keys of `set` that can verify signatures: public keys with a `kid`, not marked for
/// encryption. Symmetric keys (`kty: oct`) are never used: only asymmetric algorithms are
/// accepted, and a shared secret in a public document would let anyone sign.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<Key>> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else { continue };
        if matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
            || matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
        {
            continue;
        }
        let algorithm = jwk.common.key_algorithm.and_then(|a| a.to_string().parse::<Algorithm>().ok());
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid.clone(), Arc::new(Key { key, algorithm }));
            }
            Err(e) => tracing::debug!(kid, error = %e, "skipping a key the JWKS holds"),
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_follow_rfc_8414_then_openid() {
        assert_eq!(
            metadata_urls("https://auth.example/tenant/"),
            [
                "https://auth.example/.well-known/oauth-authorization-server/tenant",
                "https://auth.example/tenant/.well-known/openid-configuration",
                "https://auth.example/.well-known/openid-configuration/tenant",
            ]
        );
        assert_eq!(
            metadata_urls("https://auth.example"),
            [
                "https://auth.example/.well-known/oauth-authorization-server",
                "https://auth.example/.well-known/openid-configuration",
            ]
        );
    }

    #[test]
    fn only_asymmetric_signing_keys_with_an_id_are_used() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec", "alg": "ES256", "use": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "use": "sig",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "crv": "P-256", "kid": "enc", "use": "enc",
             "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}
        ]}))
        .unwrap();
        let keys = usable_keys(&set);
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["ec"]);
        assert_eq!(keys["ec"].algorithm, Some(Algorithm::ES256));
    }
}
