//! The stand-in authorization server: IVCAP's auth provider as `docs/ivcap-wire.md` §15 and
//! the OAuth RFCs describe it, so logins, refreshes and per-user OAuth can be tested end to end.
//!
//! It serves `/1/authinfo.yaml`, RFC 8414 / OpenID metadata, a JWKS (with key rotation), the
//! device flow (RFC 8628), the authorization-code flow with PKCE (RFC 7636) and dynamic client
//! registration (RFC 7591), refresh with rotation, and token exchange (RFC 8693). Tokens are
//! ES256 JWTs signed with the test keys in `tests/standin/keys/` (throw-away keys made for this
//! stand-in; they protect nothing). Approvals are automatic, so flows run headless.
//!
//! With [`StandIn::require_jwt`] the stand-in IVCAP accepts only this issuer's tokens for the
//! IVCAP audience, and keeps each user's data apart (`sub`).

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::Jwk};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{AppState, StandIn, lock};

/// The audience of IVCAP API tokens at the stand-in (the provider's `audience`).
pub const IVCAP_AUDIENCE: &str = "https://api.ivcap.test";
/// The client id of the IVCAP CLI's public client (the provider's `client-id`).
pub const CLI_CLIENT_ID: &str = "ivcap-cli";
/// The provider's id in `authinfo.yaml`.
pub const PROVIDER_ID: &str = "standin";

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const EXCHANGE_GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// The signing keys, in rotation order.
const KEYS: [&str; 3] =
    [include_str!("../keys/es256-1.pem"), include_str!("../keys/es256-2.pem"), include_str!("../keys/es256-3.pem")];

/// What the device flow answers once its pending polls are over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceOutcome {
    Approve,
    /// `slow_down` once, then approve.
    SlowDown,
    /// `access_denied`.
    Deny,
    /// `expired_token`.
    Expire,
}

/// How the stand-in authorization server behaves; change it with [`StandIn::auth_control`].
#[derive(Debug, Clone)]
pub struct AuthControl {
    /// Lifetime of the access tokens it issues.
    pub access_ttl: Duration,
    /// The `interval` of device authorizations, in seconds.
    pub device_interval: u64,
    /// Polls answered `authorization_pending` before the outcome.
    pub device_pending_polls: u32,
    pub device_outcome: DeviceOutcome,
    /// Who approves device logins.
    pub device_user: String,
    /// Refresh requests are refused with `invalid_grant` (a revoked login).
    pub refuse_refresh: bool,
}

impl Default for AuthControl {
    fn default() -> Self {
        AuthControl {
            access_ttl: Duration::from_secs(3600),
            device_interval: 1,
            device_pending_polls: 1,
            device_outcome: DeviceOutcome::Approve,
            device_user: "alice".into(),
            refuse_refresh: false,
        }
    }
}

#[derive(Debug, Clone)]
struct Grant {
    sub: String,
    client_id: String,
    aud: String,
    scope: String,
}

#[derive(Debug)]
struct DeviceCode {
    grant: Grant,
    polls: u32,
    slowed: bool,
}

#[derive(Debug)]
struct AuthCode {
    grant: Grant,
    redirect_uri: String,
    challenge: String,
}

/// The authorization server's state.
#[derive(Debug)]
pub(crate) struct AuthState {
    pub(crate) control: AuthControl,
    /// Keys that have signed so far; the last one signs now.
    active_keys: usize,
    devices: HashMap<String, DeviceCode>,
    codes: HashMap<String, AuthCode>,
    /// Live refresh tokens; a used one is removed (rotation).
    refresh: HashMap<String, Grant>,
    /// Registered clients: id → secret (None = public client).
    clients: HashMap<String, Option<String>>,
}

impl Default for AuthState {
    fn default() -> Self {
        let mut clients = HashMap::new();
        clients.insert(CLI_CLIENT_ID.to_string(), None);
        AuthState {
            control: AuthControl::default(),
            active_keys: 1,
            devices: HashMap::new(),
            codes: HashMap::new(),
            refresh: HashMap::new(),
            clients,
        }
    }
}

fn kid(index: usize) -> String {
    format!("standin-key-{}", index + 1)
}

/// One test key, parsed once: how it signs, its public JWK, and how to check its signatures.
struct TestKey {
    signing: EncodingKey,
    jwk: Value,
    checking: DecodingKey,
}

static TEST_KEYS: std::sync::LazyLock<Vec<TestKey>> = std::sync::LazyLock::new(|| {
    KEYS.iter()
        .enumerate()
        .map(|(index, pem)| {
            let signing = EncodingKey::from_ec_pem(pem.as_bytes()).expect("stand-in key");
            let public = Jwk::from_encoding_key(&signing, Algorithm::ES256).expect("stand-in jwk");
            let checking = DecodingKey::from_jwk(&public).expect("decoding key");
            let mut jwk = serde_json::to_value(public).expect("jwk json");
            jwk["kid"] = json!(kid(index));
            jwk["use"] = json!("sig");
            jwk["alg"] = json!("ES256");
            TestKey { signing, jwk, checking }
        })
        .collect()
});

fn test_key(index: usize) -> &'static TestKey {
    &TEST_KEYS[index % KEYS.len()]
}

fn random() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl StandIn {
    /// The issuer of the stand-in's tokens: `<base>/auth`.
    pub fn issuer(&self) -> String {
        format!("{}/auth", self.base_url())
    }

    /// Changes how the authorization server behaves.
    pub fn auth_control(&self, f: impl FnOnce(&mut AuthControl)) {
        f(&mut lock(&self.shared.auth).control);
    }

    /// Makes the next test key the one that signs; tokens signed before stay verifiable
    /// (the JWKS lists every key used so far).
    pub fn rotate_signing_key(&self) {
        let mut auth = lock(&self.shared.auth);
        auth.active_keys = (auth.active_keys + 1).min(KEYS.len());
    }

    /// Registers a confidential client (for token exchange).
    pub fn register_client(&self, id: &str, secret: &str) {
        lock(&self.shared.auth).clients.insert(id.to_string(), Some(secret.to_string()));
    }

    /// A valid access token for `sub` and `aud`, living `ttl`.
    pub fn mint_token(&self, sub: &str, aud: &str, ttl: Duration) -> String {
        let now = unix_now();
        let claims = json!({
            "iss": self.issuer(), "sub": sub, "aud": aud, "iat": now, "nbf": now,
            "exp": now + ttl.as_secs() as i64, "scope": "openid profile email",
            "client_id": CLI_CLIENT_ID, "acc": account(sub), "jti": random(),
        });
        self.mint_with(json!({}), claims)
    }

    /// Signs `claims` with the current key; `header` fields (e.g. `kid`) override the
    /// defaults (`alg` ES256 is always used to sign).
    pub fn mint_with(&self, header: Value, claims: Value) -> String {
        let index = lock(&self.shared.auth).active_keys - 1;
        sign(index, header, &claims)
    }

    /// The public key (SubjectPublicKeyInfo DER) of the current signing key, e.g. to forge an
    /// HS256 token "signed" with it.
    pub fn public_key_der(&self) -> Vec<u8> {
        let index = lock(&self.shared.auth).active_keys - 1;
        test_key(index).checking.try_get_as_bytes().map(<[u8]>::to_vec).unwrap_or_default()
    }
}

fn sign(index: usize, header: Value, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(kid(index));
    if let Some(k) = header.get("kid").and_then(Value::as_str) {
        h.kid = Some(k.to_string());
    }
    if let Some(t) = header.get("typ").and_then(Value::as_str) {
        h.typ = Some(t.to_string());
    }
    jsonwebtoken::encode(&h, claims, &test_key(index).signing).expect("sign")
}

/// The account URN of a stand-in user.
pub fn account(sub: &str) -> String {
    format!("urn:ivcap:account:{sub}")
}

/// The issuer as the client addressed it (tests reach the stand-in by its one base URL).
fn issuer_of(headers: &HeaderMap) -> String {
    format!("{}/auth", crate::origin(headers))
}

fn access_token(s: &AppState, issuer: &str, grant: &Grant) -> (String, u64) {
    let (index, ttl) = {
        let auth = lock(&s.auth);
        (auth.active_keys - 1, auth.control.access_ttl.as_secs())
    };
    let now = unix_now();
    let claims = json!({
        "iss": issuer, "sub": grant.sub, "aud": grant.aud, "iat": now, "nbf": now,
        "exp": now + ttl as i64, "scope": grant.scope, "client_id": grant.client_id,
        "acc": account(&grant.sub), "jti": random(),
    });
    (sign(index, json!({}), &claims), ttl)
}

/// A token answer, with a new refresh token when `offline`.
fn token_answer(s: &AppState, issuer: &str, grant: Grant, offline: bool) -> Response {
    let (token, ttl) = access_token(s, issuer, &grant);
    let mut answer = json!({
        "access_token": token, "token_type": "Bearer", "expires_in": ttl, "scope": grant.scope,
        "id_token": token,
    });
    if offline {
        let refresh = random();
        answer["refresh_token"] = json!(refresh);
        lock(&s.auth).refresh.insert(refresh, grant);
    }
    (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(answer)).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1/authinfo.yaml", get(authinfo))
        .route("/.well-known/oauth-authorization-server/auth", get(metadata))
        .route("/.well-known/openid-configuration/auth", get(metadata))
        .route("/auth/.well-known/openid-configuration", get(metadata))
        .route("/auth/.well-known/oauth-authorization-server", get(metadata))
        .route("/auth/jwks", get(jwks))
        .route("/auth/device/code", post(device_code))
        .route("/auth/token", post(token))
        .route("/auth/authorize", get(authorize))
        .route("/auth/register", post(register))
}

async fn authinfo(headers: HeaderMap) -> Response {
    let base = crate::origin(&headers);
    let yaml = format!(
        "version: 1\nauth:\n  default-provider-id: {PROVIDER_ID}\n  providers:\n    {PROVIDER_ID}:\n      \
         id: {PROVIDER_ID}\n      login-url: {base}/auth/authorize\n      token-url: {base}/auth/token\n      \
         code-url: {base}/auth/device/code\n      jwks-url: {base}/auth/jwks\n      client-id: {CLI_CLIENT_ID}\n      \
         audience: {IVCAP_AUDIENCE}\n"
    );
    ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response()
}

async fn metadata(headers: HeaderMap) -> Json<Value> {
    let issuer = issuer_of(&headers);
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "device_authorization_endpoint": format!("{issuer}/device/code"),
        "registration_endpoint": format!("{issuer}/register"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT, EXCHANGE_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_post", "client_secret_basic"],
        "scopes_supported": ["openid", "profile", "email", "offline_access", "ivcap"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
    }))
}

async fn jwks(State(s): State<AppState>) -> Json<Value> {
    let n = lock(&s.auth).active_keys;
    Json(json!({"keys": (0..n).map(|i| test_key(i).jwk.clone()).collect::<Vec<_>>()}))
}

async fn device_code(
    State(s): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let mut auth = lock(&s.auth);
    if !auth.clients.contains_key(&client_id) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client_id");
    }
    let device = random();
    let user_code = format!("{:04}-{:04}", rand_small(), rand_small());
    let grant = Grant {
        sub: auth.control.device_user.clone(),
        client_id,
        aud: f.get("audience").cloned().unwrap_or_else(|| IVCAP_AUDIENCE.to_string()),
        scope: f.get("scope").cloned().unwrap_or_else(|| "openid".into()),
    };
    auth.devices.insert(device.clone(), DeviceCode { grant, polls: 0, slowed: false });
    let verify = format!("{}/device", issuer_of(&headers));
    Json(json!({
        "device_code": device, "user_code": user_code, "verification_uri": verify,
        "verification_uri_complete": format!("{verify}?user_code={user_code}"),
        "expires_in": 300, "interval": auth.control.device_interval,
    }))
    .into_response()
}

fn rand_small() -> u16 {
    uuid::Uuid::new_v4().as_bytes()[0] as u16 * 39 % 10000
}

/// The client of a token request: `client_secret_basic`, else `client_secret_post`, else a
/// public client's `client_id`. `Err` = authentication failed.
fn client(s: &AppState, headers: &HeaderMap, f: &HashMap<String, String>) -> Result<(String, bool), Response> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|b| b.split_once(':').map(|(i, p)| (pct(i), Some(pct(p)))));
    let (id, secret) = match basic {
        Some(pair) => pair,
        None => (f.get("client_id").cloned().unwrap_or_default(), f.get("client_secret").cloned()),
    };
    let refused = || oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    match lock(&s.auth).clients.get(&id) {
        None => Err(refused()),
        Some(None) => Ok((id, false)),
        Some(Some(expected)) if secret.as_deref() == Some(expected.as_str()) => Ok((id, true)),
        Some(Some(_)) => Err(refused()),
    }
}

fn pct(s: &str) -> String {
    url::form_urlencoded::parse(s.as_bytes()).map(|(k, _)| k.into_owned()).next().unwrap_or_default()
}

async fn token(State(s): State<AppState>, headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    let issuer = issuer_of(&headers);
    let (client_id, confidential) = match client(&s, &headers, &f) {
        Ok(c) => c,
        Err(resp) => return resp,
    };
    let bad = |d: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", d);
    match f.get("grant_type").map(String::as_str) {
        Some(DEVICE_GRANT) => {
            let code = f.get("device_code").cloned().unwrap_or_default();
            let mut auth = lock(&s.auth);
            let control = auth.control.clone();
            let Some(device) = auth.devices.get_mut(&code) else {
                return bad("unknown device_code");
            };
            if device.grant.client_id != client_id {
                return bad("device_code of another client");
            }
            device.polls += 1;
            if device.polls <= control.device_pending_polls {
                return oauth_error(StatusCode::BAD_REQUEST, "authorization_pending", "not approved yet");
            }
            match control.device_outcome {
                DeviceOutcome::SlowDown if !device.slowed => {
                    device.slowed = true;
                    return oauth_error(StatusCode::BAD_REQUEST, "slow_down", "polling too fast");
                }
                DeviceOutcome::Deny => {
                    auth.devices.remove(&code);
                    return oauth_error(StatusCode::BAD_REQUEST, "access_denied", "the user declined");
                }
                DeviceOutcome::Expire => {
                    auth.devices.remove(&code);
                    return oauth_error(StatusCode::BAD_REQUEST, "expired_token", "the device code expired");
                }
                _ => {}
            }
            let Some(device) = auth.devices.remove(&code) else {
                return bad("unknown device_code");
            };
            drop(auth);
            let offline = device.grant.scope.split(' ').any(|x| x == "offline_access");
            token_answer(&s, &issuer, device.grant, offline)
        }
        Some("refresh_token") => {
            let refresh = f.get("refresh_token").cloned().unwrap_or_default();
            let mut auth = lock(&s.auth);
            if auth.control.refuse_refresh {
                return bad("the refresh token was revoked");
            }
            let Some(grant) = auth.refresh.remove(&refresh) else {
                return bad("unknown or already used refresh token");
            };
            drop(auth);
            if grant.client_id != client_id {
                return bad("refresh token of another client");
            }
            token_answer(&s, &issuer, grant, true)
        }
        Some("authorization_code") => {
            let code = f.get("code").cloned().unwrap_or_default();
            let Some(pending) = lock(&s.auth).codes.remove(&code) else {
                return bad("unknown or already used code");
            };
            let verifier = f.get("code_verifier").cloned().unwrap_or_default();
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != pending.challenge {
                return bad("code_verifier does not match the code_challenge");
            }
            if f.get("redirect_uri") != Some(&pending.redirect_uri) || pending.grant.client_id != client_id {
                return bad("redirect_uri or client_id differ from the authorization request");
            }
            if let Some(resource) = f.get("resource")
                && *resource != pending.grant.aud
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_target",
                    "resource differs from the authorization",
                );
            }
            token_answer(&s, &issuer, pending.grant, true)
        }
        Some(EXCHANGE_GRANT) => {
            if !confidential {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "token exchange needs a confidential client",
                );
            }
            if f.get("subject_token_type").map(String::as_str) != Some(ACCESS_TOKEN_TYPE) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "subject_token_type must be an access token",
                );
            }
            let subject = f.get("subject_token").cloned().unwrap_or_default();
            let Ok(claims) = verify(&s, &issuer, &subject, None) else {
                return bad("subject_token is not a valid token of this issuer");
            };
            let Some(target) = f.get("audience").or_else(|| f.get("resource")).cloned() else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_target", "audience or resource is required");
            };
            let grant = Grant {
                sub: claims["sub"].as_str().unwrap_or_default().to_string(),
                client_id,
                aud: target,
                scope: f
                    .get("scope")
                    .cloned()
                    .or_else(|| claims["scope"].as_str().map(str::to_string))
                    .unwrap_or_default(),
            };
            let (token, ttl) = access_token(&s, &issuer, &grant);
            Json(json!({
                "access_token": token, "issued_token_type": ACCESS_TOKEN_TYPE, "token_type": "Bearer",
                "expires_in": ttl, "scope": grant.scope,
            }))
            .into_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "unsupported grant_type"),
    }
}

async fn authorize(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let client_id = get("client_id");
    if !lock(&s.auth).clients.contains_key(&client_id) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "unknown client_id");
    }
    if get("response_type") != "code" || get("code_challenge_method") != "S256" || get("code_challenge").is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type=code with an S256 code_challenge is required",
        );
    }
    let redirect_uri = get("redirect_uri");
    let Ok(mut location) = url::Url::parse(&redirect_uri) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri is not a URL");
    };
    let user = q.get("login_hint").cloned().unwrap_or_else(|| "alice".into());
    let grant = Grant {
        sub: user,
        client_id,
        aud: q.get("resource").cloned().unwrap_or_else(|| IVCAP_AUDIENCE.to_string()),
        scope: q.get("scope").cloned().unwrap_or_default(),
    };
    let code = random();
    lock(&s.auth).codes.insert(code.clone(), AuthCode { grant, redirect_uri, challenge: get("code_challenge") });
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &get("state"))
        .append_pair("iss", &issuer_of(&headers));
    (StatusCode::FOUND, [(header::LOCATION, location.to_string())]).into_response()
}

async fn register(State(s): State<AppState>, Json(meta): Json<Value>) -> Response {
    let id = format!("client-{}", random());
    let public = meta.get("token_endpoint_auth_method").and_then(Value::as_str) == Some("none");
    let secret = (!public).then(random);
    lock(&s.auth).clients.insert(id.clone(), secret.clone());
    let mut answer = meta;
    answer["client_id"] = json!(id);
    answer["client_id_issued_at"] = json!(unix_now());
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
        answer["client_secret_expires_at"] = json!(0);
    }
    (StatusCode::CREATED, Json(answer)).into_response()
}

/// The claims of `token` if this issuer signed it, it is live, and (when given) its `aud`
/// holds `audience`.
pub(crate) fn verify(s: &AppState, issuer: &str, token: &str, audience: Option<&str>) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let n = lock(&s.auth).active_keys;
    let index = (0..n).find(|i| header.kid.as_deref() == Some(kid(*i).as_str())).ok_or("unknown kid")?;
    let key = &test_key(index).checking;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_issuer(&[issuer]);
    validation.leeway = 0;
    validation.validate_nbf = true;
    match audience {
        Some(aud) => validation.set_audience(&[aud]),
        None => validation.validate_aud = false,
    }
    jsonwebtoken::decode::<Value>(token, key, &validation).map(|d| d.claims).map_err(|e| e.to_string())
}

/// The user a `/1/*` request acts for in JWT mode: the `sub` of a valid IVCAP token.
pub(crate) fn ivcap_user(s: &AppState, headers: &HeaderMap) -> Option<String> {
    let token = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")?;
    let claims = verify(s, &issuer_of(headers), token, Some(IVCAP_AUDIENCE)).ok()?;
    claims.get("sub")?.as_str().map(str::to_string)
}
