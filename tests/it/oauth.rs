//! `--http --oauth` against the stand-in authorization server: the protected-resource
//! metadata and challenges, a table of tokens that must be refused while good ones keep
//! working, users kept apart (one server, and `--stateless` replicas), both upstream modes,
//! and the official Python client's OAuth flow from the first 401 to the user's own jobs.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ivcap_standin::{IVCAP_AUDIENCE, ServiceRec, StandIn};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{call, err, ok};
use crate::http::{Server, http};

const CLIENT_ID: &str = "ivcap-mcp-server";
const CLIENT_SECRET: &str = "server-secret-9f3a";
/// The service every user has, under the same URN, each with their own jobs.
const SHARED_SERVICE: &str = "urn:ivcap:service:00000000-0000-0000-0000-00000000c0de";

/// A free loopback address (bound, then released).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

/// The stand-in in JWT mode, with the server's confidential client registered and each of
/// `users` holding the shared service and one of their own (`<user>-tool`).
async fn standin(users: &[&str]) -> StandIn {
    let s = StandIn::start().await;
    s.require_jwt(true);
    s.register_client(CLIENT_ID, CLIENT_SECRET);
    for user in users {
        s.with_user_data(user, |d| {
            for (id, name) in [
                (SHARED_SERVICE.to_string(), "shared".to_string()),
                (format!("urn:ivcap:service:{user}-tool"), format!("{user}-tool")),
            ] {
                d.services.push(ServiceRec {
                    id,
                    name,
                    description: format!("a service {user} can see"),
                    status: "active".into(),
                    parameters: json!([]),
                });
            }
        });
    }
    s
}

/// `ivcap-mcp --http ADDR --oauth` on `standin`, its resource `http://ADDR/mcp` (or `resource`).
async fn server(standin: &StandIn, upstream: &str, extra: &[&str], resource: Option<&str>) -> (Server, String) {
    let addr = free_addr();
    let resource = resource.map_or_else(|| format!("http://{addr}/mcp"), str::to_string);
    let mut args = vec!["--oauth", "--oauth-resource", &resource, "--oauth-upstream", upstream];
    args.extend_from_slice(extra);
    let envs = [
        ("IVCAP_URL", standin.base_url()),
        ("IVCAP_MCP_OAUTH_CLIENT_ID", CLIENT_ID),
        ("IVCAP_MCP_OAUTH_CLIENT_SECRET", CLIENT_SECRET),
        ("RUST_LOG", "info"),
    ];
    let server = Server::start_on(&addr, &args, &envs, tempfile::tempdir().unwrap()).await;
    (server, resource)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Claims of a good token for `sub` and `aud`, living an hour.
fn claims(standin: &StandIn, sub: &str, aud: Value) -> Value {
    let now = now();
    json!({
        "iss": standin.issuer(), "sub": sub, "aud": aud, "iat": now, "nbf": now, "exp": now + 3600,
        "scope": "openid profile email", "client_id": "some-mcp-client", "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// `claims` with `changes` merged in.
fn with(mut claims: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The kid the stand-in signs with now.
fn current_kid(standin: &StandIn) -> String {
    let token = standin.mint_token("x", "y", Duration::from_secs(60));
    jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
}

/// A POST `initialize` to `/mcp` with `token`: its status and `WWW-Authenticate`.
async fn initialize(server: &Server, token: Option<&str>) -> (u16, String) {
    let mut request = crate::http::mcp_post(
        server,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "oauth-test", "version": "1"}}}),
    );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.unwrap();
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (resp.status().as_u16(), challenge)
}

/// A client that declares the tasks extension, logged in with `token`.
async fn task_client(
    server: &Server,
    token: String,
) -> rmcp::service::RunningService<rmcp::RoleClient, crate::service_tools::Watcher> {
    use rmcp::ServiceExt;
    use rmcp::transport::StreamableHttpClientTransport;
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    let config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp")).auth_header(token);
    let transport = StreamableHttpClientTransport::with_client(ivcap_mcp::http_client().build().unwrap(), config);
    crate::service_tools::Watcher::with_tasks().serve(transport).await.expect("MCP over Streamable HTTP")
}

fn body(recorded: &ivcap_standin::Recorded) -> String {
    String::from_utf8_lossy(recorded.body.as_deref().unwrap_or_default()).into_owned()
}

fn exchanges(standin: &StandIn) -> usize {
    standin.requests_to(Method::POST, "/auth/token").iter().filter(|r| body(r).contains("token-exchange")).count()
}

#[tokio::test]
async fn metadata_and_challenges_tell_clients_where_to_log_in() {
    let s = standin(&["alice"]).await;
    let (server, resource) = server(&s, "exchange", &[], None).await;
    let metadata_url = server.url("/.well-known/oauth-protected-resource/mcp");
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"] {
        let resp = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let doc: Value = resp.json().await.unwrap();
        assert_eq!(doc["resource"], json!(resource), "{path}");
        assert_eq!(doc["authorization_servers"], json!([s.issuer()]), "the IVCAP provider's issuer, found by itself");
        assert_eq!(doc["scopes_supported"], json!(["openid", "profile", "email"]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
    }
    let (status, challenge) = initialize(&server, None).await;
    assert_eq!(status, 401);
    assert_eq!(challenge, format!("Bearer resource_metadata=\"{metadata_url}\", scope=\"openid profile email\""));
    let resp = http().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "health needs no token");
    let resp = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 401, "metrics need a token unless --metrics-public");
    let good = s.mint_token("alice", &resource, Duration::from_secs(600));
    assert_eq!(initialize(&server, Some(&good)).await.0, 200);
    let resp = http().get(server.url("/sse")).bearer_auth(&good).send().await.unwrap();
    assert_eq!(resp.status(), 404, "no legacy SSE with --oauth: it cannot carry a user per request");
}

#[tokio::test]
async fn an_issuer_that_cannot_be_found_is_a_clear_startup_error() {
    let s = standin(&[]).await;
    let nowhere = free_addr();
    let cases = [
        (s.base_url().to_string(), Some(format!("http://{nowhere}/auth")), "--oauth-issuer: cannot read the metadata"),
        (format!("http://{nowhere}"), None, "cannot read IVCAP's login provider"),
    ];
    for (ivcap, issuer, says) in cases {
        let mut args = vec!["--http", "127.0.0.1:0", "--oauth", "--oauth-resource", "http://127.0.0.1:9/mcp"];
        if let Some(issuer) = &issuer {
            args.extend(["--oauth-issuer", issuer]);
        }
        let envs = [
            ("IVCAP_URL", ivcap.as_str()),
            ("IVCAP_MCP_OAUTH_CLIENT_ID", CLIENT_ID),
            ("IVCAP_MCP_OAUTH_CLIENT_SECRET", CLIENT_SECRET),
        ];
        let dir = tempfile::tempdir().unwrap();
        let out =
            tokio::time::timeout(Duration::from_secs(60), crate::common::command(&args, &envs, dir.path()).output())
                .await
                .expect("exits at once")
                .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{says}: {stderr}");
        assert!(!stderr.contains("serving MCP") && !stderr.contains(CLIENT_SECRET), "{stderr}");
    }
}

#[tokio::test]
async fn bad_tokens_are_refused_with_invalid_token_while_good_ones_keep_working() {
    let s = standin(&["alice"]).await;
    let (server, resource) = server(&s, "exchange", &[], None).await;
    let good = s.mint_token("alice", &resource, Duration::from_secs(600));
    let kid = current_kid(&s);
    let base = claims(&s, "alice", json!(resource));
    let signed = |changes: Value| s.mint_with(json!({}), with(base.clone(), changes));
    let mut tampered = good.clone().into_bytes();
    let at = good.rfind('.').unwrap() + 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unsigned = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&base));
    let hs256 = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(kid.clone());
        let key = jsonwebtoken::EncodingKey::from_secret(&s.public_key_der()).unwrap();
        jsonwebtoken::encode(&header, &base, &key).unwrap()
    };
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", signed(json!({"exp": now() - 120, "nbf": now() - 3600, "iat": now() - 3600})), "expired"),
        ("not yet valid", signed(json!({"nbf": now() + 600, "iat": now() + 600})), "not valid yet"),
        ("wrong issuer", signed(json!({"iss": "http://evil.example/auth"})), "not issued by"),
        ("wrong audience", signed(json!({"aud": "https://other.example/mcp"})), "not for this server"),
        ("an IVCAP API token", s.mint_token("alice", IVCAP_AUDIENCE, Duration::from_secs(600)), "not for this server"),
        ("bad signature", tampered, "signature"),
        ("alg none", unsigned, "not a JWT"),
        ("HS256 signed with the public key", hs256, "only asymmetric"),
        ("unknown kid", s.mint_with(json!({"kid": "no-such-key"}), base.clone()), "key the issuer does not publish"),
        ("no subject", s.mint_with(json!({}), with(base.clone(), json!({"sub": ""}))), "names no user"),
        ("garbage", "not.a.jwt".to_string(), "not a JWT"),
    ];
    for (case, token, says) in &cases {
        let (status, challenge) = initialize(&server, Some(token)).await;
        eprintln!("{case}: {status} {challenge}");
        assert_eq!(status, 401, "{case}");
        assert!(challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""), "{case}: {challenge}");
        assert!(challenge.contains(says), "{case}: {challenge}");
        assert!(
            challenge.ends_with(&format!(
                "resource_metadata=\"{}\", scope=\"openid profile email\"",
                server.url("/.well-known/oauth-protected-resource/mcp")
            )),
            "{case}: {challenge}"
        );
        assert_eq!(initialize(&server, Some(&good)).await.0, 200, "a good token still works after: {case}");
    }
    let narrow = s.mint_with(json!({}), with(base.clone(), json!({"scope": "openid"})));
    let (status, challenge) = initialize(&server, Some(&narrow)).await;
    assert_eq!(status, 403);
    assert!(challenge.starts_with("Bearer error=\"insufficient_scope\""), "{challenge}");
    assert!(challenge.contains("profile email") && challenge.contains("resource_metadata="), "{challenge}");
    assert_eq!(exchanges(&s), 0, "no refused token was ever passed on");

    // A key rotation: the new key is fetched on the first token it signed (the unknown kid
    // above fetched the keys a moment ago, so this waits out the refetch limit).
    s.rotate_signing_key();
    let rotated = s.mint_token("alice", &resource, Duration::from_secs(600));
    assert_ne!(current_kid(&s), kid);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(initialize(&server, Some(&rotated)).await.0, 200, "a token of the new key");
    assert_eq!(initialize(&server, Some(&good)).await.0, 200, "a token of the old key, still published");

    let log = server.log.lock().unwrap().join("\n");
    for (case, token, _) in &cases {
        let signature = token.rsplit('.').next().unwrap();
        assert!(signature.len() < 8 || !log.contains(signature), "{case}: a token reached the log");
    }
    assert!(!log.contains(&good) && !log.contains(CLIENT_SECRET), "a secret reached the log");
}

/// One user's round: an artifact, an aspect and a job of their own, then every list shows
/// only theirs.
async fn acts_as_themselves(client: &crate::common::Client, user: &str) -> (String, String) {
    let listed = ok(&call(client, "list_services", json!({})).await);
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{user}: {names:?}");
    assert!(names.contains(&"shared") && names.contains(&format!("{user}-tool").as_str()), "{user}: {names:?}");
    let artifact = ok(&call(client, "upload_artifact", json!({"name": format!("{user}.txt"), "content": user})).await);
    let artifact = artifact["id"].as_str().unwrap().to_string();
    ok(&call(
        client,
        "add_aspect",
        json!({"entity": artifact, "schema": "urn:example:schema:owner.1", "content": {"owner": user}}),
    )
    .await);
    let job =
        ok(&call(client, "submit_job", json!({"service": SHARED_SERVICE, "input": {"by": user}, "wait_seconds": 5}))
            .await);
    let job = job["job_id"].as_str().unwrap().to_string();
    (artifact, job)
}

/// Every list `client` can see holds exactly `user`'s things.
async fn sees_only_own(client: &crate::common::Client, user: &str, artifact: &str, job: &str) {
    let jobs = ok(&call(client, "list_jobs", json!({"service": SHARED_SERVICE})).await);
    let ids: Vec<&str> = jobs["items"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [job], "{user}'s jobs");
    let artifacts = ok(&call(client, "list_artifacts", json!({})).await);
    let ids: Vec<&str> = artifacts["items"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [artifact], "{user}'s artifacts");
    let aspects =
        ok(&call(client, "list_aspects", json!({"schema": "urn:example:schema:owner.1", "include_content": true}))
            .await);
    let owners: Vec<&Value> = aspects["items"].as_array().unwrap().iter().map(|a| &a["content"]["owner"]).collect();
    assert_eq!(owners, [&json!(user)], "{user}'s aspects");
}

#[tokio::test]
async fn two_users_on_one_server_each_act_as_themselves() {
    let s = standin(&["alice", "bob"]).await;
    let (server, resource) = server(&s, "exchange", &[], None).await;
    let alice = server.client(Some(&s.mint_token("alice", &resource, Duration::from_secs(600)))).await;
    let bob = server.client(Some(&s.mint_token("bob", &resource, Duration::from_secs(600)))).await;
    let (alice_run, bob_run) = tokio::join!(acts_as_themselves(&alice, "alice"), acts_as_themselves(&bob, "bob"));
    sees_only_own(&alice, "alice", &alice_run.0, &alice_run.1).await;
    sees_only_own(&bob, "bob", &bob_run.0, &bob_run.1).await;
    let refused = err(&call(&bob, "get_job", json!({"job": alice_run.1, "service": SHARED_SERVICE})).await);
    assert!(refused.contains("no such job"), "{refused}");
    let refused = err(&call(&alice, "get_artifact", json!({"artifact": bob_run.0})).await);
    assert!(refused.contains("no such artifact"), "{refused}");
    // A task of alice's read with bob's token is an unknown task.
    let tasks = |user: &str| task_client(&server, s.mint_token(user, &resource, Duration::from_secs(600)));
    let (alice_tasks, bob_tasks) = (tasks("alice").await, tasks("bob").await);
    let task = bob_tasks.peer().get_task(rmcp::model::GetTaskParams::new(alice_run.1.clone())).await;
    let refused = task.expect_err("bob cannot read alice's task").to_string();
    assert!(refused.contains("unknown task"), "{refused}");
    let task = alice_tasks.peer().get_task(rmcp::model::GetTaskParams::new(alice_run.1.clone())).await;
    assert_eq!(task.expect("alice reads her task").task.task.task_id, alice_run.1);
    assert_eq!(exchanges(&s), 2, "one exchange per user, then the IVCAP token is reused");
    s.with_user_data("alice", |d| assert_eq!(d.jobs.len(), 1));
    s.with_user_data("bob", |d| assert_eq!(d.jobs.len(), 1));
    let log = server.log.lock().unwrap().join("\n");
    for user in ["alice", "bob"] {
        assert!(
            log.lines().any(|l| l.contains("tool call") && l.contains(&format!("user={user}"))),
            "the log names {user} on their calls"
        );
    }
    alice.cancel().await.unwrap();
    bob.cancel().await.unwrap();
}

#[tokio::test]
async fn service_tools_follow_each_users_own_services() {
    let s = standin(&["alice", "bob"]).await;
    for user in ["alice", "bob"] {
        let (id, name) = (format!("urn:ivcap:service:{user}-tool"), format!("{user}-tool"));
        let definition = json!({
            "$schema": "urn:sd-core:schema.ai-tool.1", "id": format!("urn:sd-core:ai-tool.{name}"), "name": name,
            "service-id": id, "description": format!("{user}'s tool"), "fn_signature": format!("{name}(text)"),
            "fn_schema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        });
        s.with_user_data(user, |d| {
            d.aspects.push(ivcap_standin::AspectRec::new(&id, "urn:sd-core:schema.ai-tool.1", definition))
        });
    }
    let (server, resource) = server(&s, "exchange", &["--service-tools", "%"], None).await;
    for (user, other) in [("alice", "bob"), ("bob", "alice")] {
        let client = server.client(Some(&s.mint_token(user, &resource, Duration::from_secs(600)))).await;
        let own = format!("svc_{user}_tool");
        // A user's service tools are loaded on their first request, then announced.
        let names = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                let names: Vec<String> =
                    client.list_all_tools().await.unwrap().into_iter().map(|t| t.name.into_owned()).collect();
                if names.contains(&own) {
                    return names;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{user} never got {own}"));
        assert!(!names.contains(&format!("svc_{other}_tool")), "{user} sees {other}'s tool: {names:?}");
        let run = ok(&call(&client, &own, json!({"text": "hi"})).await);
        assert_eq!(run["status"], json!("succeeded"), "{run}");
        s.with_user_data(user, |d| assert_eq!(d.jobs.len(), 1, "{user}'s tool ran as {user}"));
        client.cancel().await.unwrap();
    }
}

#[tokio::test]
async fn an_exchange_the_issuer_refuses_is_a_tool_error_naming_the_fix() {
    let s = standin(&["alice"]).await;
    s.register_client(CLIENT_ID, "another-secret");
    let (server, resource) = server(&s, "exchange", &[], None).await;
    let client = server.client(Some(&s.mint_token("alice", &resource, Duration::from_secs(600)))).await;
    let refused = err(&call(&client, "list_services", json!({})).await);
    assert!(refused.contains("could not exchange the user's token") && refused.contains(CLIENT_ID), "{refused}");
    assert!(refused.contains("invalid_client") && !refused.contains(CLIENT_SECRET), "{refused}");
    assert!(s.requests_to(Method::GET, "/1/services2").is_empty(), "nothing was sent to IVCAP without an IVCAP token");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn stateless_replicas_keep_users_apart_with_any_replica_serving_any_request() {
    let s = standin(&["alice", "bob"]).await;
    // Both replicas are one resource, as behind a load balancer.
    let resource = "https://mcp.example.org/mcp";
    let (one, _) = server(&s, "exchange", &["--stateless"], Some(resource)).await;
    let (two, _) = server(&s, "exchange", &["--stateless"], Some(resource)).await;
    let token = |user: &str| s.mint_token(user, resource, Duration::from_secs(600));
    let (alice1, alice2) = (one.client(Some(&token("alice"))).await, two.client(Some(&token("alice"))).await);
    let (bob1, bob2) = (one.client(Some(&token("bob"))).await, two.client(Some(&token("bob"))).await);
    let (alice_run, bob_run) = tokio::join!(acts_as_themselves(&alice1, "alice"), acts_as_themselves(&bob2, "bob"));
    sees_only_own(&alice2, "alice", &alice_run.0, &alice_run.1).await;
    sees_only_own(&bob1, "bob", &bob_run.0, &bob_run.1).await;
    let got = ok(&call(&alice2, "get_job", json!({"job": alice_run.1, "service": SHARED_SERVICE})).await);
    assert_eq!(got["job_id"], json!(alice_run.1), "a job made on one replica is read on the other");
    let refused = err(&call(&bob2, "get_job", json!({"job": alice_run.1, "service": SHARED_SERVICE})).await);
    assert!(refused.contains("no such job"), "{refused}");
}

#[tokio::test]
async fn same_audience_passes_on_only_tokens_also_issued_for_ivcap() {
    let s = standin(&["alice"]).await;
    let (server, resource) = server(&s, "same-audience", &[], None).await;
    let both = s.mint_with(json!({}), claims(&s, "alice", json!([resource, IVCAP_AUDIENCE])));
    let alice = server.client(Some(&both)).await;
    let listed = ok(&call(&alice, "list_services", json!({})).await);
    assert_eq!(listed["items"].as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(exchanges(&s), 0, "same-audience never exchanges");
    let sent = s.requests_to(Method::GET, "/1/services2");
    assert!(sent.iter().all(|r| r.header("authorization").as_deref() == Some(&format!("Bearer {both}"))));
    // IVCAP refusing the user's own token: the fix is a new sign-in, not IVCAP_JWT.
    s.fault(ivcap_standin::Fault::status(Some(Method::GET), "/1/services2", 401));
    let text = err(&call(&alice, "list_services", json!({})).await);
    assert!(text.contains("sign in to this MCP server again") && !text.contains("IVCAP_JWT"), "{text}");
    let only_mcp = s.mint_token("alice", &resource, Duration::from_secs(600));
    let (status, challenge) = initialize(&server, Some(&only_mcp)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\"") && challenge.contains(IVCAP_AUDIENCE), "{challenge}");
    alice.cancel().await.unwrap();
}

/// Python's `mcp` client, logging in by itself: the redirect handler follows the stand-in's
/// auto-approving authorize URL without a browser and hands the code to the callback.
const PYTHON_CLIENT: &str = r#"
import asyncio, json, os, sys
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata, OAuthToken, OAuthClientInformationFull

class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None
    async def get_tokens(self):
        return self.tokens
    async def set_tokens(self, tokens: OAuthToken):
        self.tokens = tokens
    async def get_client_info(self):
        return self.client
    async def set_client_info(self, info: OAuthClientInformationFull):
        self.client = info

redirected = {}

async def redirect(url: str):
    async with httpx2.AsyncClient(follow_redirects=False) as http:
        resp = await http.get(url)
    assert resp.status_code == 302, (resp.status_code, resp.text)
    redirected["location"] = resp.headers["location"]

async def callback():
    from urllib.parse import urlparse, parse_qs
    query = parse_qs(urlparse(redirected["location"]).query)
    first = lambda name: query.get(name, [None])[0]
    return AuthorizationCodeResult(code=first("code"), state=first("state"), iss=first("iss"))

async def main():
    url = os.environ["MCP_URL"]
    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="oauth-test",
            redirect_uris=["http://127.0.0.1:9/callback"],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=Memory(),
        redirect_handler=redirect,
        callback_handler=callback,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write, *_):
            async with ClientSession(read, write) as session:
                await session.initialize()
                tools = await session.list_tools()
                jobs = await session.call_tool("list_jobs", {"service": os.environ["SERVICE"]})
                print(json.dumps({
                    "tools": sorted(t.name for t in tools.tools),
                    "jobs": jobs.structured_content,
                    "error": jobs.is_error,
                }))

asyncio.run(main())
"#;

#[tokio::test]
async fn the_python_sdk_logs_in_with_oauth_and_sees_its_users_jobs() {
    let python = crate::python_mcp::python();
    let s = standin(&["alice", "bob"]).await;
    let (server, _) = server(&s, "exchange", &[], None).await;
    // Alice's job, made through the server as alice, and bob's, which she must not see.
    let mut jobs = Vec::new();
    for user in ["alice", "bob"] {
        let token = s.mint_token(user, &format!("{}/mcp", server.url("")), Duration::from_secs(600));
        let client = server.client(Some(&token)).await;
        let job =
            ok(&call(&client, "submit_job", json!({"service": SHARED_SERVICE, "input": {}, "wait_seconds": 5})).await);
        jobs.push(job["job_id"].as_str().unwrap().to_string());
        client.cancel().await.unwrap();
    }
    let out = tokio::process::Command::new(&python)
        .args(["-c", PYTHON_CLIENT])
        .env("MCP_URL", server.url("/mcp"))
        .env("SERVICE", SHARED_SERVICE)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the Python OAuth client failed:\n{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert!(answer["tools"].as_array().unwrap().contains(&json!("list_jobs")), "{answer}");
    assert_eq!(answer["error"], json!(false), "{answer}");
    let ids: Vec<&str> =
        answer["jobs"]["items"].as_array().unwrap().iter().map(|j| j["job_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [jobs[0].as_str()], "alice (the stand-in's default user) sees her job only");
    // Every step of the flow reached the stand-in: registration, authorization, code → token.
    assert_eq!(s.requests_to(Method::POST, "/auth/register").len(), 1);
    assert_eq!(s.requests_to(Method::GET, "/auth/authorize").len(), 1);
    let code_grants =
        s.requests_to(Method::POST, "/auth/token").iter().filter(|r| body(r).contains("authorization_code")).count();
    assert_eq!(code_grants, 1);
}

/// A 2026-07-28 confirmation under `--oauth` is bound to the user, not to the token: the
/// answer may come with a token the client refreshed meanwhile, but never from another user.
#[tokio::test]
async fn a_confirmation_state_belongs_to_the_user_across_token_refreshes() {
    use crate::elicitation::{modern_call, post_as};
    let s = standin(&["alice", "bob"]).await;
    let key = "k".repeat(40);
    let (server, resource) =
        server(&s, "exchange", &["--stateless", "--confirm", "writes", "--state-key", &key], None).await;
    let token = |user: &str| format!("Bearer {}", s.mint_token(user, &resource, Duration::from_secs(600)));
    let args = json!({"entity": "urn:example:site:1", "schema": "urn:example:schema:note.1", "content": {"n": 1}});
    let asked =
        post_as(&server, "2026-07-28", &modern_call("add_aspect", args.clone(), json!({})), Some(&token("alice")))
            .await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let state = asked["result"]["requestState"].as_str().unwrap();
    let retry = modern_call(
        "add_aspect",
        args,
        json!({"requestState": state, "inputResponses": {"confirm": {"action": "accept", "content": {"confirm": true}}}}),
    );
    let by_bob = post_as(&server, "2026-07-28", &retry, Some(&token("bob"))).await;
    assert_eq!(by_bob["result"]["isError"], true, "{by_bob}");
    assert!(by_bob["result"]["content"][0]["text"].as_str().unwrap().contains("not valid for this call"), "{by_bob}");
    assert_eq!(s.with_user_data("bob", |d| d.aspects.len()), 0);
    let refreshed = post_as(&server, "2026-07-28", &retry, Some(&token("alice"))).await;
    assert_ne!(refreshed["result"]["isError"], true, "{refreshed}");
    assert_eq!(s.with_user_data("alice", |d| d.aspects.len()), 1, "added for alice, once");
}

/// A session belongs to the user who opened it: with its id, another user gets 404 (as for
/// an unknown session), and its owner keeps using it.
#[tokio::test]
async fn a_session_is_used_only_by_the_user_who_opened_it() {
    let s = standin(&["alice", "bob"]).await;
    let (server, resource) = server(&s, "exchange", &[], None).await;
    let token = |user: &str| s.mint_token(user, &resource, Duration::from_secs(600));
    let opened = crate::http::mcp_post(
        &server,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "oauth-test", "version": "1"}}}),
    )
    .bearer_auth(token("alice"))
    .send()
    .await
    .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let ping = |user: &str| {
        crate::http::mcp_post(&server, &json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .bearer_auth(token(user))
            .send()
    };
    assert_eq!(ping("bob").await.unwrap().status(), 404, "bob cannot use alice's session");
    let (alice, status) = {
        let response = ping("alice").await.unwrap();
        (response.status(), response.text().await.unwrap())
    };
    assert!(alice.is_success(), "{alice} {status}");
}

/// Under `--oauth` the token comes first: an over-limit message without one is answered 401
/// (its body never read), with one the usual 413 and JSON-RPC error.
#[tokio::test]
async fn an_anonymous_message_is_refused_before_its_body_is_read() {
    let s = standin(&["alice"]).await;
    let (server, resource) = server(&s, "exchange", &["--max-message-size", "65536"], None).await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x".repeat(100_000)}});
    let anonymous = crate::http::mcp_post(&server, &big).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let good = s.mint_token("alice", &resource, Duration::from_secs(600));
    let signed_in = crate::http::mcp_post(&server, &big).bearer_auth(&good).send().await.unwrap();
    assert_eq!(signed_in.status(), 413);
    let answer: Value = signed_in.json().await.unwrap();
    assert_eq!(answer["error"]["code"], json!(-32600), "{answer}");
}
