//! The stand-in authorization server answers each flow as the RFCs say, so the login and OAuth
//! tests that rely on it test the server, not the stand-in's shortcuts.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ivcap_standin::{DeviceOutcome, IVCAP_AUDIENCE, StandIn};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    ivcap_mcp::http_client().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// A request's answer as JSON.
trait JsonValue {
    async fn json_value(self) -> Value;
}

impl JsonValue for reqwest::RequestBuilder {
    async fn json_value(self) -> Value {
        self.send().await.unwrap().json().await.unwrap()
    }
}

async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = client().post(url).form(form).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn status_of(s: &StandIn, token: &str) -> u16 {
    let url = format!("{}/1/services2", s.base_url());
    client().get(url).bearer_auth(token).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn device_flow_issues_tokens_and_refresh_rotates() {
    let s = StandIn::start().await;
    let base = s.base_url();
    let info = client().get(format!("{base}/1/authinfo.yaml")).send().await.unwrap().text().await.unwrap();
    let info: Value = serde_yaml_ng::from_str(&info).unwrap();
    let provider = &info["auth"]["providers"]["standin"];
    assert_eq!(info["version"], json!(1));
    assert_eq!(provider["audience"], json!(IVCAP_AUDIENCE));
    let token_url = provider["token-url"].as_str().unwrap().to_string();

    let (status, code) = post_form(
        provider["code-url"].as_str().unwrap(),
        &[("client_id", "ivcap-cli"), ("scope", "openid profile email offline_access"), ("audience", IVCAP_AUDIENCE)],
    )
    .await;
    assert_eq!(status, 200, "{code}");
    let device = code["device_code"].as_str().unwrap();
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device),
        ("client_id", "ivcap-cli"),
    ];
    let (status, pending) = post_form(&token_url, &poll).await;
    assert_eq!((status, pending["error"].as_str()), (400, Some("authorization_pending")));
    let (status, tokens) = post_form(&token_url, &poll).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(claims(access)["sub"], json!("alice"));
    assert_eq!(claims(access)["acc"], json!("urn:ivcap:account:alice"));

    // JWT mode: the token is accepted, a forged one and TOKEN are not.
    s.require_jwt(true);
    assert_eq!(status_of(&s, access).await, 200);
    assert_eq!(status_of(&s, ivcap_standin::TOKEN).await, 401);
    assert_eq!(status_of(&s, &format!("{access}x")).await, 401);

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let (status, renewed) = post_form(
        &token_url,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "ivcap-cli")],
    )
    .await;
    assert_eq!(status, 200, "{renewed}");
    assert_ne!(renewed["refresh_token"], json!(refresh), "refresh tokens rotate");
    let (status, reused) = post_form(
        &token_url,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh), ("client_id", "ivcap-cli")],
    )
    .await;
    assert_eq!((status, reused["error"].as_str()), (400, Some("invalid_grant")));

    s.auth_control(|c| c.device_outcome = DeviceOutcome::Deny);
    let (_, code) = post_form(&format!("{base}/auth/device/code"), &[("client_id", "ivcap-cli")]).await;
    let poll = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", code["device_code"].as_str().unwrap()),
        ("client_id", "ivcap-cli"),
    ];
    post_form(&token_url, &poll).await;
    let (_, denied) = post_form(&token_url, &poll).await;
    assert_eq!(denied["error"], json!("access_denied"));
}

#[tokio::test]
async fn code_flow_with_pkce_registration_exchange_and_rotation() {
    let s = StandIn::start().await;
    let base = s.base_url();
    let meta: Value = client().get(format!("{base}/.well-known/oauth-authorization-server/auth")).json_value().await;
    assert_eq!(meta["issuer"], json!(s.issuer()));
    let registered: Value = client()
        .post(meta["registration_endpoint"].as_str().unwrap())
        .json(&json!({"redirect_uris": ["http://localhost/cb"], "token_endpoint_auth_method": "none"}))
        .json_value()
        .await;
    let client_id = registered["client_id"].as_str().unwrap();
    assert!(registered.get("client_secret").is_none());

    let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let resource = "https://mcp.example.test/mcp";
    let mut authorize = url::Url::parse(meta["authorization_endpoint"].as_str().unwrap()).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", "http://localhost/cb")
        .append_pair("state", "st")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("resource", resource)
        .append_pair("login_hint", "bob");
    // The authorize redirect's query (auto-approved).
    let authorized = || async {
        let resp = client().get(authorize.as_str()).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 302);
        let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        location.query_pairs().into_owned().collect::<HashMap<_, _>>()
    };
    let token_url = meta["token_endpoint"].as_str().unwrap();
    let redeem = |code: String, verifier: &str| {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", verifier),
            ("redirect_uri", "http://localhost/cb"),
            ("client_id", client_id),
            ("resource", resource),
        ];
        client().post(token_url).form(&form).json_value()
    };
    let q = authorized().await;
    assert_eq!(q["state"], "st");
    let wrong = redeem(q["code"].clone(), "wrong-verifier").await;
    assert_eq!(wrong["error"], json!("invalid_grant"), "a wrong verifier uses the code up too");
    // A fresh code, the right verifier.
    let tokens = redeem(authorized().await["code"].clone(), verifier).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!((claims(access)["sub"].clone(), claims(access)["aud"].clone()), (json!("bob"), json!(resource)));

    // An MCP-audience token is no IVCAP token; exchanged, it is.
    s.require_jwt(true);
    assert_eq!(status_of(&s, access).await, 401);
    s.register_client("mcp-server", "s3cret");
    let exchange = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", access),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("audience", IVCAP_AUDIENCE),
    ];
    let refused =
        client().post(token_url).basic_auth("mcp-server", Some("wrong")).form(&exchange).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let exchanged: Value =
        client().post(token_url).basic_auth("mcp-server", Some("s3cret")).form(&exchange).json_value().await;
    let ivcap = exchanged["access_token"].as_str().unwrap();
    assert_eq!(claims(ivcap)["sub"], json!("bob"));
    assert_eq!(status_of(&s, ivcap).await, 200);

    // Rotation: new tokens carry the new kid, old ones still verify.
    let before = s.mint_token("carol", IVCAP_AUDIENCE, Duration::from_secs(60));
    s.rotate_signing_key();
    let after = s.mint_token("carol", IVCAP_AUDIENCE, Duration::from_secs(60));
    let jwks: Value = client().get(format!("{base}/auth/jwks")).json_value().await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!((status_of(&s, &before).await, status_of(&s, &after).await), (200, 200));
    let expired = s.mint_with(json!({}), json!({"iss": s.issuer(), "sub": "carol", "aud": IVCAP_AUDIENCE, "exp": 1}));
    assert_eq!(status_of(&s, &expired).await, 401);
}

#[tokio::test]
async fn jwt_mode_keeps_each_users_data_apart() {
    let s = StandIn::start().await;
    s.require_jwt(true);
    s.with_user_data("alice", |d| d.secrets.push(("alices-secret".into(), 0)));
    let list = |token: String| {
        let url = format!("{}/1/secrets/list", s.base_url());
        async move { client().get(url).bearer_auth(token).send().await.unwrap().text().await.unwrap() }
    };
    let alice = list(s.mint_token("alice", IVCAP_AUDIENCE, Duration::from_secs(60))).await;
    let bob = list(s.mint_token("bob", IVCAP_AUDIENCE, Duration::from_secs(60))).await;
    assert!(alice.contains("alices-secret"), "{alice}");
    assert!(!bob.contains("alices-secret"), "{bob}");
}
