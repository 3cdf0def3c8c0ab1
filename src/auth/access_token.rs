//! Checking the OAuth access tokens MCP clients present (`--oauth`), as OAuth 2.1 §5.2 and
//! RFC 8707 ask of a resource server: a JWT signed with one of the issuer's keys by an
//! asymmetric algorithm (never `none`, never HS*: a shared secret is not the issuer's
//! signature), issued by the issuer, for this resource (`aud`), and valid now (`exp`, `nbf`,
//! within [`LEEWAY`]). The answer says why a token was refused, for `error_description`; it
//! never contains the token.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Validation, errors::ErrorKind};
use serde_json::{Map, Value};

use super::jwks::Jwks;

/// Clock difference tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY: u64 = 30;

/// The algorithms a token may be signed with.
pub const ALLOWED_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Who a request acts for: the issuer and its `sub`. Everything kept per user is keyed by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId {
    pub issuer: String,
    pub subject: String,
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.subject, self.issuer)
    }
}

/// A token that passed every check.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user: UserId,
    /// Every audience the token names.
    pub audiences: Vec<String>,
    /// The scopes it grants (`scope`, space-separated, or `scp`).
    pub scopes: Vec<String>,
}

/// Why a request gets no access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No bearer token was sent.
    Missing,
    /// The token cannot be used: 401 `invalid_token`, with a description.
    Invalid(String),
    /// The token lacks scopes: 403 `insufficient_scope`.
    InsufficientScope(Vec<String>),
}

/// How long a token that passed is taken as passed without checking its signature again
/// (never past its `exp`): a client sends the same token with every request, and the
/// signature check was most of what `--oauth` cost a call (docs/performance.md).
pub const REMEMBER: Duration = Duration::from_secs(300);
/// Most tokens remembered; when full, the expired go, then all.
const REMEMBERED: usize = 1024;

/// Checks tokens of one issuer for one resource.
pub struct Verifier {
    jwks: Jwks,
    issuer: String,
    resource: String,
    required_scopes: Vec<String>,
    /// Tokens that passed, with when to check them again.
    passed: Mutex<HashMap<String, (Verified, Instant)>>,
}

impl Verifier {
    pub fn new(jwks: Jwks, issuer: String, resource: String, required_scopes: Vec<String>) -> Self {
        Verifier { jwks, issuer, resource, required_scopes, passed: Mutex::default() }
    }

    /// The token's user when it may be used here.
    pub async fn verify(&self, token: &str) -> Result<Verified, Refusal> {
        let now = Instant::now();
        if let Some((verified, until)) = self.passed.lock().unwrap_or_else(|p| p.into_inner()).get(token)
            && now < *until
        {
            return Ok(verified.clone());
        }
        let (verified, expires) = self.check(token).await?;
        let mut passed = self.passed.lock().unwrap_or_else(|p| p.into_inner());
        if passed.len() >= REMEMBERED {
            passed.retain(|_, (_, until)| now < *until);
            if passed.len() >= REMEMBERED {
                passed.clear();
            }
        }
        let left = u64::try_from(expires - jsonwebtoken::get_current_timestamp() as i64).unwrap_or(0);
        passed.insert(token.to_string(), (verified.clone(), now + REMEMBER.min(Duration::from_secs(left))));
        Ok(verified)
    }

    /// Every check, and the token's `exp`.
    async fn check(&self, token: &str) -> Result<(Verified, i64), Refusal> {
        let invalid = |why: &str| Refusal::Invalid(why.to_string());
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the token is not a JWT signed with an accepted algorithm"))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(Refusal::Invalid(format!(
                "the token is signed with {:?}; only asymmetric algorithms (RS*, PS*, ES256, ES384, EdDSA) are accepted",
                header.alg
            )));
        }
        let kid = header.kid.as_deref().ok_or_else(|| invalid("the token names no signing key (kid)"))?;
        let key = self
            .jwks
            .key(kid)
            .await
            .ok_or_else(|| invalid("the token is signed with a key the issuer does not publish"))?;
        if key.algorithm.is_some_and(|a| a != header.alg) {
            return Err(invalid("the token's algorithm is not the one its key is for"));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation).map_err(|e| {
            Refusal::Invalid(match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired".into(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
                ErrorKind::InvalidIssuer => format!("the token was not issued by {}", self.issuer),
                ErrorKind::InvalidAudience => {
                    format!("the token is not for this server: its aud must hold {}", self.resource)
                }
                ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
                ErrorKind::MissingRequiredClaim(claim) => format!("the token has no {claim} claim"),
                _ => "the token cannot be verified".into(),
            })
        })?;
        let claims = data.claims;
        let subject = claims.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty());
        let Some(subject) = subject else { return Err(invalid("the token names no user (sub)")) };
        let verified = Verified {
            user: UserId { issuer: self.issuer.clone(), subject: subject.to_string() },
            audiences: strings(claims.get("aud")),
            scopes: match claims.get("scope") {
                Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
                _ => strings(claims.get("scp")),
            },
        };
        let missing: Vec<String> =
            self.required_scopes.iter().filter(|s| !verified.scopes.contains(s)).cloned().collect();
        if !missing.is_empty() {
            return Err(Refusal::InsufficientScope(missing));
        }
        let expires = claims.get("exp").and_then(Value::as_i64).unwrap_or_default();
        Ok((verified, expires))
    }
}

/// A claim that is a string or an array of strings, as a list.
fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_that_may_be_a_string_or_a_list() {
        assert_eq!(strings(Some(&serde_json::json!("a"))), ["a"]);
        assert_eq!(strings(Some(&serde_json::json!(["a", 1, "b"]))), ["a", "b"]);
        assert!(strings(None).is_empty());
    }

    #[test]
    fn users_show_subject_and_issuer() {
        let u = UserId { issuer: "https://auth.example".into(), subject: "alice".into() };
        assert_eq!(u.to_string(), "alice at https://auth.example");
    }
}
