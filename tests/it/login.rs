//! A login that stays fresh, over the real binary against the stand-in authorization server
//! in JWT mode (IVCAP checks every token's signature, audience and expiry): `ivcap-mcp login`
//! writes a context of the Go CLI's config.yaml, `--context` uses it and refreshes it as it
//! nears expiry and after a 401, re-reading the file first, and writes the rotated tokens back
//! without touching anything else in the file.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use axum::http::Method;
use ivcap_standin::{DeviceOutcome, Fault, StandIn};
use serde_json::{Value, json};
use serde_yaml_ng::Value as Yaml;

use crate::common::{Client, call, command, err, ok, spawn};

/// Another context and keys the server knows nothing of: a rewrite must keep them as they are.
const OTHER: &str = "version: v1\nactive-context: other\nsome-future-key: {nested: [1, 2]}\ncontexts:\n\
- api-version: 1\n  name: other\n  url: https://other.example\n  email: bob@example.org\n  access-token: other-access\n  \
access-token-expiry: 2031-01-01T00:00:00Z\n  refresh-token: other-refresh\n";

fn xdg(dir: &Path) -> PathBuf {
    dir.join("xdg")
}

fn config_file(dir: &Path) -> PathBuf {
    xdg(dir).join("ivcap-cli/config.yaml")
}

fn read_config(dir: &Path) -> Yaml {
    serde_yaml_ng::from_str(&std::fs::read_to_string(config_file(dir)).unwrap()).unwrap()
}

fn write_config(dir: &Path, yaml: &Yaml) {
    std::fs::write(config_file(dir), serde_yaml_ng::to_string(yaml).unwrap()).unwrap();
}

/// Context `name` of the file.
fn context(yaml: &Yaml, name: &str) -> Yaml {
    yaml["contexts"].as_sequence().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap_or(Yaml::Null)
}

fn text(v: &Yaml) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `ivcap-mcp login ARGS` with the test's config folder.
async fn login(dir: &Path, args: &[&str]) -> Output {
    let xdg = xdg(dir);
    let all: Vec<&str> = std::iter::once("login").chain(args.iter().copied()).collect();
    command(&all, &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())], dir).stdin(Stdio::null()).output().await.unwrap()
}

/// Logs in as context `name` of the stand-in (with `OTHER` in the file first) and checks it worked.
async fn logged_in(s: &StandIn, dir: &Path, name: &str) {
    std::fs::create_dir_all(config_file(dir).parent().unwrap()).unwrap();
    std::fs::write(config_file(dir), OTHER).unwrap();
    let out = login(dir, &["--context", name, "--url", s.base_url()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The server on context `name`.
async fn server(dir: &Path, name: &str) -> Client {
    let xdg = xdg(dir);
    spawn(&["--context", name], &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())], dir).await
}

fn form_of(body: Option<&[u8]>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body.unwrap_or_default()).into_owned().collect()
}

/// The refresh requests the stand-in has seen, each with its refresh token.
fn refreshes(s: &StandIn) -> Vec<String> {
    s.requests_to(Method::POST, "/auth/token")
        .iter()
        .map(|r| form_of(r.body.as_deref()))
        .filter(|f| f.iter().any(|(k, v)| k == "grant_type" && v == "refresh_token"))
        .map(|f| f.into_iter().find(|(k, _)| k == "refresh_token").map(|(_, v)| v).unwrap_or_default())
        .collect()
}

/// The bearer tokens of the IVCAP `GET /1/services2` requests, in order.
fn services_tokens(s: &StandIn) -> Vec<String> {
    s.requests_to(Method::GET, "/1/services2")
        .iter()
        .map(|r| r.header("authorization").unwrap_or_default().trim_start_matches("Bearer ").to_string())
        .collect()
}

/// A refresh made by hand, as another process would: `(status, answer)`.
async fn refresh_by_hand(s: &StandIn, refresh_token: &str) -> (u16, Value) {
    let resp = ivcap_mcp::http_client()
        .build()
        .unwrap()
        .post(format!("{}/auth/token", s.base_url()))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "ivcap-cli")])
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

/// Everything in the file but the tokens of context `name`.
fn without_tokens(mut yaml: Yaml, name: &str) -> Yaml {
    for ctx in yaml["contexts"].as_sequence_mut().unwrap() {
        if ctx["name"] == name {
            let ctx = ctx.as_mapping_mut().unwrap();
            for key in ["access-token", "access-token-expiry", "refresh-token"] {
                ctx.remove(key);
            }
        }
    }
    yaml
}

async fn jwt_standin() -> StandIn {
    let s = StandIn::start().await;
    s.require_jwt(true);
    s
}

#[tokio::test]
async fn login_creates_a_context_that_context_then_uses() {
    let s = jwt_standin().await;
    let dir = tempfile::tempdir().unwrap();
    let out = login(dir.path(), &["--context", "fresh", "--url", s.base_url()]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
    // The address with the code in it, and the code on a line of its own.
    let url_line =
        stderr.lines().map(str::trim).find(|l| l.contains("?user_code=")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(url_line.starts_with(&format!("{}/auth/device", s.base_url())), "{url_line}");
    let code = url_line.split("user_code=").nth(1).unwrap();
    assert!(stderr.lines().any(|l| l.trim() == code), "the code {code} on its own line: {stderr}");
    assert!(stderr.contains("ivcap-mcp --context fresh"), "{stderr}");
    assert_eq!(s.requests_to(Method::POST, "/auth/token").len(), 2, "one pending poll, then the approval");

    let yaml = read_config(dir.path());
    assert_eq!(yaml["active-context"], "fresh", "a new file makes the new context the active one");
    let ctx = context(&yaml, "fresh");
    assert_eq!(
        (text(&ctx["url"]), text(&ctx["account-id"])),
        (s.base_url().to_string(), "urn:ivcap:account:alice".into())
    );
    assert!(!text(&ctx["refresh-token"]).is_empty(), "{ctx:?}");
    let expiry = chrono::DateTime::parse_from_rfc3339(&text(&ctx["access-token-expiry"])).unwrap();
    let ahead = expiry.signed_duration_since(chrono::Utc::now()).num_seconds();
    assert!((3500..=3590).contains(&ahead), "expiry = now + expires_in - 10 s: {ahead} s ahead");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(config_file(dir.path())).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the file holds tokens");
    }

    let client = server(dir.path(), "fresh").await;
    ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(services_tokens(&s), [text(&ctx["access-token"])]);
    assert!(refreshes(&s).is_empty(), "a fresh login is used as it is");
}

#[tokio::test]
async fn a_denied_or_expired_login_fails_clearly_and_writes_nothing() {
    let s = jwt_standin().await;
    let dir = tempfile::tempdir().unwrap();
    for (outcome, says) in [(DeviceOutcome::Deny, "denied"), (DeviceOutcome::Expire, "expired")] {
        s.auth_control(|c| c.device_outcome = outcome);
        let out = login(dir.path(), &["--context", "nope", "--url", s.base_url()]).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says) && stderr.contains("run `ivcap-mcp login` again"), "{stderr}");
        assert!(!config_file(dir.path()).exists(), "nothing written");
    }
    // slow_down makes the next poll wait 5 s more, and the login still succeeds.
    s.auth_control(|c| c.device_outcome = DeviceOutcome::SlowDown);
    let started = std::time::Instant::now();
    let out = login(dir.path(), &["--context", "slow", "--url", s.base_url()]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() >= Duration::from_secs(6), "slowed down: {:?}", started.elapsed());

    // Without --url a context that does not exist cannot be made; a wrong --url is refused.
    let out = login(dir.path(), &["--context", "unknown"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("add --url URL"));
    let out = login(dir.path(), &["--context", "slow", "--url", "https://elsewhere.example"]).await;
    assert!(String::from_utf8_lossy(&out.stderr).contains("drop --url"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Tokens live 3 s, less than the refresh margin: every call refreshes first, so calls keep
/// working though each token expires (IVCAP checks), and each refresh rotates.
#[tokio::test]
async fn calls_keep_working_across_expiry_and_the_file_gets_the_rotated_tokens() {
    let s = jwt_standin().await;
    s.auth_control(|c| c.access_ttl = Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    logged_in(&s, dir.path(), "short").await;
    let before = read_config(dir.path());
    let first_refresh = text(&context(&before, "short")["refresh-token"]);

    let client = server(dir.path(), "short").await;
    for round in 0..3 {
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(3500)).await;
        }
        ok(&call(&client, "list_services", json!({})).await);
    }
    let used = refreshes(&s);
    assert_eq!(used.len(), 4, "one refresh at start and one before each call");
    assert_eq!(used[0], first_refresh);
    assert_eq!(services_tokens(&s).len(), 3, "IVCAP never refused a token, so no call was sent twice");

    let after = read_config(dir.path());
    let ctx = context(&after, "short");
    let last = text(&ctx["refresh-token"]);
    assert!(!used.contains(&last), "the file holds the refresh token of the last answer");
    assert_eq!(services_tokens(&s).last().unwrap(), &text(&ctx["access-token"]));
    assert!(text(&ctx["access-token-expiry"]) > text(&context(&before, "short")["access-token-expiry"]));
    assert_eq!(without_tokens(after, "short"), without_tokens(before, "short"), "nothing else changed");
    assert_eq!(refresh_by_hand(&s, &used[2]).await.0, 400, "a used refresh token is dead (rotation)");
    assert_eq!(refresh_by_hand(&s, &last).await.0, 200, "the stored one works");
}

/// A login that expired while no server ran is refreshed when the server starts, before
/// any call, and the file gets the new tokens.
#[tokio::test]
async fn an_expired_login_is_refreshed_at_start() {
    let s = jwt_standin().await;
    let dir = tempfile::tempdir().unwrap();
    logged_in(&s, dir.path(), "stale").await;
    let mut yaml = read_config(dir.path());
    for ctx in yaml["contexts"].as_sequence_mut().unwrap() {
        if ctx["name"] == "stale" {
            ctx["access-token-expiry"] = Yaml::from("2020-01-01T00:00:00Z");
        }
    }
    write_config(dir.path(), &yaml);
    let _client = server(dir.path(), "stale").await;
    for _ in 0..50 {
        if !refreshes(&s).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(refreshes(&s).len(), 1, "refreshed at start, with no call made");
    assert!(services_tokens(&s).is_empty());
    let expiry = text(&context(&read_config(dir.path()), "stale")["access-token-expiry"]);
    assert!(expiry.as_str() > "2026", "the file holds the new expiry: {expiry}");
}

/// A token good for 66 s more is used as it is; 7 s later it is within the 60 s margin and
/// is refreshed before the requests, once for four at the same time (a second refresh would
/// use the refresh token the first rotated away), so IVCAP never sees it expire.
#[tokio::test]
async fn a_token_near_its_expiry_is_refreshed_once_before_the_requests() {
    let s = jwt_standin().await;
    s.auth_control(|c| c.access_ttl = Duration::from_secs(76));
    let dir = tempfile::tempdir().unwrap();
    logged_in(&s, dir.path(), "margin").await;
    let client = server(dir.path(), "margin").await;
    ok(&call(&client, "list_services", json!({})).await);
    assert!(refreshes(&s).is_empty());
    tokio::time::sleep(Duration::from_secs(7)).await;
    let calls = (0..4).map(|_| call(&client, "list_services", json!({})));
    for result in futures::future::join_all(calls).await {
        ok(&result);
    }
    assert_eq!(refreshes(&s).len(), 1, "one refresh for the four calls");
    let tokens = services_tokens(&s);
    assert_eq!(tokens.len(), 5, "no 401 and no second try");
    assert!(tokens[1..].iter().all(|t| *t != tokens[0] && *t == tokens[1]), "all four carried the refreshed token");
}

/// Two servers on one context (two clients, or a client and a stand-alone server) near
/// expiry at the same moment: the file lock makes one refresh and the other take its tokens
/// from the file; refreshing with the same refresh token twice would fail (rotation).
#[tokio::test]
async fn two_servers_on_one_context_refresh_once_between_them() {
    let s = jwt_standin().await;
    s.auth_control(|c| c.access_ttl = Duration::from_secs(76));
    let dir = tempfile::tempdir().unwrap();
    logged_in(&s, dir.path(), "shared").await;
    let (a, b) = (server(dir.path(), "shared").await, server(dir.path(), "shared").await);
    ok(&call(&a, "list_services", json!({})).await);
    ok(&call(&b, "list_services", json!({})).await);
    tokio::time::sleep(Duration::from_secs(7)).await;
    let (ra, rb) = tokio::join!(call(&a, "list_services", json!({})), call(&b, "list_services", json!({})));
    ok(&ra);
    ok(&rb);
    assert_eq!(refreshes(&s).len(), 1, "one refresh for both servers");
    let tokens = services_tokens(&s);
    assert_eq!(tokens.len(), 4, "no 401 and no second try");
    assert!(tokens[2] == tokens[3] && tokens[2] != tokens[0], "both use the one refreshed token");
}

/// IVCAP refuses a token once (as after a revocation): the login is refreshed and the call
/// succeeds with the new token, without the caller seeing the 401.
#[tokio::test]
async fn a_401_refreshes_once_and_the_call_succeeds() {
    let s = jwt_standin().await;
    let dir = tempfile::tempdir().unwrap();
    logged_in(&s, dir.path(), "dev").await;
    let client = server(dir.path(), "dev").await;
    ok(&call(&client, "list_services", json!({})).await);
    s.fault(Fault::status(Some(Method::GET), "/1/services2", 401).times(1));
    ok(&call(&client, "list_services", json!({})).await);
    let tokens = services_tokens(&s);
    assert_eq!(tokens.len(), 3, "{tokens:?}");
    assert_eq!(tokens[0], tokens[1], "the refused request carried the login's token");
    assert_ne!(tokens[1], tokens[2], "the second try carried the refreshed one");
    assert_eq!(refreshes(&s).len(), 1);
    assert_eq!(text(&context(&read_config(dir.path()), "dev")["access-token"]), tokens[2]);
}

/// Another process (the CLI, another server) logs in or refreshes and rewrites the file
/// while the server runs: after a 401 the server takes the newer login from the file instead
/// of refreshing with the refresh token that process has already used up, and never writes
/// its own older tokens over it.
#[tokio::test]
async fn a_login_written_by_another_process_is_picked_up_never_clobbered() {
    let s = jwt_standin().await;
    let dir = tempfile::tempdir().unwrap();
    logged_in(&s, dir.path(), "dev").await;
    let client = server(dir.path(), "dev").await;
    ok(&call(&client, "list_services", json!({})).await);

    let mut yaml = read_config(dir.path());
    let old_refresh = text(&context(&yaml, "dev")["refresh-token"]);
    let (status, answer) = refresh_by_hand(&s, &old_refresh).await;
    assert_eq!(status, 200, "{answer}");
    let (access, refresh) = (answer["access_token"].as_str().unwrap(), answer["refresh_token"].as_str().unwrap());
    for ctx in yaml["contexts"].as_sequence_mut().unwrap() {
        if ctx["name"] == "dev" {
            ctx["access-token"] = access.into();
            ctx["refresh-token"] = refresh.into();
            ctx["access-token-expiry"] = "2099-01-01T00:00:00Z".into();
        }
    }
    write_config(dir.path(), &yaml);

    s.fault(Fault::status(Some(Method::GET), "/1/services2", 401).times(1));
    ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(services_tokens(&s).last().map(String::as_str), Some(access), "the other process's token");
    assert_eq!(refreshes(&s), [old_refresh], "only the other process refreshed");
    let now = read_config(dir.path());
    assert_eq!(now, yaml, "the file is as the other process left it");
}

/// A refresh the provider refuses (a revoked login) is an error that says so and names the
/// fix; the tokens never appear in it.
#[tokio::test]
async fn a_refused_refresh_says_to_log_in_again() {
    let s = jwt_standin().await;
    s.auth_control(|c| c.access_ttl = Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    logged_in(&s, dir.path(), "revoked").await;
    s.auth_control(|c| c.refuse_refresh = true);
    let before = read_config(dir.path());
    let client = server(dir.path(), "revoked").await;
    let message = err(&call(&client, "list_services", json!({})).await);
    assert!(
        message.contains("cannot be refreshed")
            && message.contains("invalid_grant")
            && message.contains("ivcap-mcp login --context revoked"),
        "{message}"
    );
    let ctx = context(&before, "revoked");
    for secret in ["access-token", "refresh-token"] {
        assert!(!message.contains(&text(&ctx[secret])), "{secret} leaked: {message}");
    }
    assert!(services_tokens(&s).is_empty(), "an expired token is not sent");
    assert_eq!(read_config(dir.path()), before, "nothing written");
}

/// A fixed IVCAP_JWT that IVCAP refuses cannot be refreshed: the error says so and how to
/// get a login that can be.
#[tokio::test]
async fn a_refused_ivcap_jwt_names_the_fix() {
    let s = jwt_standin().await;
    let dir = tempfile::tempdir().unwrap();
    let expired = s.mint_token("alice", ivcap_standin::IVCAP_AUDIENCE, Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let client = spawn(&[], &[("IVCAP_URL", s.base_url()), ("IVCAP_JWT", &expired)], dir.path()).await;
    let message = err(&call(&client, "list_services", json!({})).await);
    assert!(
        message.contains("IVCAP_JWT") && message.contains("ivcap-mcp login") && message.contains("--context"),
        "{message}"
    );
    assert!(!message.contains(&expired));
    assert_eq!(services_tokens(&s).len(), 1, "not sent again");
}
