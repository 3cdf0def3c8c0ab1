//! Asking the person (docs/guide.md, "Confirmations"): `--confirm` confirmations and forms for a
//! job's missing inputs, in both protocol eras — a 2025-11-25 `elicitation/create` in the call,
//! a 2026-07-28 `input_required` answer with a sealed `requestState` — against the stand-in and a
//! local store. A declined or cancelled question changes nothing (the stand-in saw no write, the
//! store is unchanged); a tampered, argument-swapped, replayed or expired `requestState` is
//! refused; a client without elicitation gets the call run unasked, or refused with
//! `--confirm-required`. The official Python client drives the same over stdio, Streamable HTTP
//! sessions and `--stateless` HTTP (tests/python/elicitation_client.py).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig, ElicitRequestParams,
    ElicitResult, ElicitationAction, Implementation, InputResponses,
};
use rmcp::service::{RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient};
use serde_json::{Value, json};

use crate::common::{Env, both_modes, call, discover, err, ok, spawn_with};
use crate::http::{Server, mcp_post};

const DECLINED: &str = "not done: declined by the user";

/// What the person answers.
#[derive(Clone, Debug)]
enum Answer {
    Accept(Value),
    Decline,
    Cancel,
}

fn yes() -> Answer {
    Answer::Accept(json!({"confirm": true}))
}

/// The person beside the client: answers every question with `answer` and remembers them.
#[derive(Clone)]
struct Person {
    answer: Answer,
    asked: Arc<Mutex<Vec<(String, Value)>>>,
    /// Declares URL mode too (and records the notifications it gets).
    url: bool,
    notices: Arc<Mutex<Vec<Value>>>,
}

impl Person {
    fn new(answer: Answer) -> Self {
        Person { answer, asked: Arc::default(), url: false, notices: Arc::default() }
    }

    /// A person whose client can also open URLs.
    fn with_urls(answer: Answer) -> Self {
        Person { url: true, ..Person::new(answer) }
    }

    fn asked(&self) -> Vec<(String, Value)> {
        self.asked.lock().unwrap().clone()
    }
}

impl ClientHandler for Person {
    fn get_info(&self) -> ClientConfig {
        let modes = if self.url { json!({"form": {}, "url": {}}) } else { json!({"form": {}}) };
        let capabilities: ClientCapabilities = serde_json::from_value(json!({"elicitation": modes})).unwrap();
        ClientConfig::new(capabilities, Implementation::new("person", "1"))
    }

    async fn on_custom_notification(
        &self,
        notification: rmcp::model::CustomNotification,
        _context: rmcp::service::NotificationContext<RoleClient>,
    ) {
        self.notices.lock().unwrap().push(json!({"method": notification.method, "params": notification.params}));
    }

    async fn create_elicitation(
        &self,
        request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let (message, shown) = match request {
            ElicitRequestParams::FormElicitationParams { message, requested_schema, .. } => {
                (message, serde_json::to_value(requested_schema).unwrap())
            }
            ElicitRequestParams::UrlElicitationParams { message, url, elicitation_id, .. } => {
                (message, json!({"url": url, "elicitationId": elicitation_id}))
            }
            _ => panic!("only forms and URLs are asked"),
        };
        let url = shown.get("url").is_some();
        self.asked.lock().unwrap().push((message, shown));
        Ok(match &self.answer {
            // Opening a URL is consent only: an accept without content.
            Answer::Accept(_) if url => ElicitResult::new(ElicitationAction::Accept),
            Answer::Accept(content) => ElicitResult::new(ElicitationAction::Accept).with_content(content.clone()),
            Answer::Decline => ElicitResult::new(ElicitationAction::Decline),
            Answer::Cancel => ElicitResult::new(ElicitationAction::Cancel),
        })
    }
}

/// The two eras: `initialize` (2025-11-25) and `server/discover` (2026-07-28).
const ERAS: [bool; 2] = [false, true];

/// A second client of `env`'s IVCAP, as `person`, with `args`, in the era `modern`.
async fn person_client<C: ClientHandler>(
    env: &Env,
    args: &[&str],
    person: C,
    modern: bool,
) -> RunningService<RoleClient, C> {
    let store = env.store.to_str().unwrap().to_string();
    let mut all: Vec<&str> = args.to_vec();
    let mut envs: Vec<(&str, &str)> = Vec::new();
    match &env.standin {
        Some(s) => envs.extend([("IVCAP_URL", s.base_url()), ("IVCAP_JWT", ivcap_standin::TOKEN)]),
        None => all.extend(["--local", store.as_str()]),
    }
    spawn_with(&all, &envs, env.dir.path(), person, modern.then(discover)).await
}

/// The writes the stand-in saw (anything but GET).
fn standin_writes(env: &Env) -> usize {
    env.standin.as_ref().map_or(0, |s| s.requests().iter().filter(|r| r.method != Method::GET).count())
}

async fn add_aspect(env: &Env, entity: &str) -> String {
    let added = ok(&call(
        &env.client,
        "add_aspect",
        json!({"entity": entity, "schema": "urn:example:schema:note.1", "content": {"n": 1}}),
    )
    .await);
    added["id"].as_str().unwrap().to_string()
}

async fn is_live(env: &Env, aspect: &str) -> bool {
    ok(&call(&env.client, "get_aspect", json!({"aspect": aspect})).await).get("valid_to").is_none()
}

both_modes!(declining_or_cancelling_a_confirmation_changes_nothing_in_both_eras);

/// `retract_aspect` under the default `--confirm destructive`: one yes/no question naming the
/// aspect; decline and cancel leave it live (and the stand-in saw no write); accept retracts.
async fn declining_or_cancelling_a_confirmation_changes_nothing_in_both_eras(on_platform: bool) {
    let env = Env::start(on_platform).await;
    for modern in ERAS {
        let aspect = add_aspect(&env, "urn:example:site:1").await;
        for answer in [Answer::Decline, Answer::Cancel] {
            let writes = standin_writes(&env);
            let person = Person::new(answer.clone());
            let client = person_client(&env, &[], person.clone(), modern).await;
            let refused = err(&call(&client, "retract_aspect", json!({"aspect": aspect})).await);
            assert!(refused.starts_with(DECLINED), "{answer:?} modern={modern}: {refused}");
            let asked = person.asked();
            assert_eq!(asked.len(), 1, "one question: {asked:?}");
            assert!(asked[0].0.contains(&aspect) && asked[0].0.starts_with("Retract aspect"), "{}", asked[0].0);
            assert_eq!(asked[0].1["properties"]["confirm"]["type"], "boolean", "{}", asked[0].1);
            assert!(is_live(&env, &aspect).await, "{answer:?} modern={modern}: still live");
            assert_eq!(standin_writes(&env), writes, "the stand-in saw no write");
        }
        let person = Person::new(yes());
        let client = person_client(&env, &[], person.clone(), modern).await;
        let done = ok(&call(&client, "retract_aspect", json!({"aspect": aspect})).await);
        assert_eq!(done["id"], aspect.as_str());
        assert_eq!(person.asked().len(), 1);
        assert!(!is_live(&env, &aspect).await, "modern={modern}: retracted after the yes");
    }
}

/// `writes` asks before `submit_job` and adds; `destructive` does not; `none` never asks, not
/// even before a retraction. A retraction of an aspect already retracted asks nothing (nothing
/// would change; the tool says so itself).
#[tokio::test]
async fn each_level_asks_about_what_it_names() {
    let env = Env::start(false).await;
    let service = env.add_echo_service("echo", "Echoes", Some(json!({"type": "object"})));
    for modern in ERAS {
        let person = Person::new(yes());
        let client = person_client(&env, &["--confirm", "writes"], person.clone(), modern).await;
        ok(&call(&client, "submit_job", json!({"service": service, "input": {"a": 1}})).await);
        let asked = person.asked();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(asked[0].0.starts_with(&format!("Run service {service} as a job")), "{}", asked[0].0);
        let aspect = ok(&call(
            &client,
            "add_aspect",
            json!({"entity": "urn:example:site:2", "schema": "urn:example:schema:note.1", "content": {}}),
        )
        .await)["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(person.asked().len(), 2);
        assert!(person.asked()[1].0.contains("urn:example:site:2"), "{:?}", person.asked());

        let person = Person::new(yes());
        let client = person_client(&env, &[], person.clone(), modern).await;
        ok(&call(&client, "submit_job", json!({"service": service, "input": {"a": 2}})).await);
        assert!(person.asked().is_empty(), "destructive does not ask before a job: {:?}", person.asked());

        let person = Person::new(Answer::Decline);
        let client = person_client(&env, &["--confirm", "none"], person.clone(), modern).await;
        ok(&call(&client, "retract_aspect", json!({"aspect": aspect})).await);
        assert!(person.asked().is_empty(), "none never asks");
        err(&call(&client, "retract_aspect", json!({"aspect": aspect})).await);
        let client = person_client(&env, &[], person.clone(), modern).await;
        let twice = err(&call(&client, "retract_aspect", json!({"aspect": aspect})).await);
        assert!(!twice.starts_with(DECLINED) && person.asked().is_empty(), "{twice}");
    }
}

/// A client without elicitation gets today's behaviour: the call runs unasked. With
/// `--confirm-required` the call is refused, saying why, and nothing changes; so is a
/// 2025-11-25 client of a `--stateless` server, which cannot be asked (no session).
#[tokio::test]
async fn without_elicitation_calls_run_unless_confirmations_are_required() {
    let env = Env::start_with(false, &["--confirm-required"]).await;
    let aspect = add_aspect(&env, "urn:example:site:3").await;
    let refused = err(&call(&env.client, "retract_aspect", json!({"aspect": aspect})).await);
    assert!(refused.starts_with("not done: this server asks the person before this call (Retract aspect"), "{refused}");
    assert!(refused.contains("--confirm-required") && refused.contains("did not declare the elicitation"), "{refused}");
    assert!(is_live(&env, &aspect).await);

    let plain = Env::start(false).await;
    let aspect = add_aspect(&plain, "urn:example:site:3").await;
    ok(&call(&plain.client, "retract_aspect", json!({"aspect": aspect})).await);
    assert!(!is_live(&plain, &aspect).await, "no elicitation, no --confirm-required: today's behaviour");

    // A 2025-11-25 client that declared elicitation, on a --stateless server.
    let aspect = add_aspect(&env, "urn:example:site:4").await;
    let server = Server::start(
        &["--local", env.store.to_str().unwrap(), "--stateless", "--confirm-required"],
        &[],
        tempfile::tempdir().unwrap(),
    )
    .await;
    let answer = post(&server, "2025-11-25", &legacy_call("retract_aspect", json!({"aspect": aspect}))).await;
    let text = answer["result"]["content"][0]["text"].as_str().unwrap_or_default().to_string();
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(text.contains("needs a session") && text.contains("--stateless"), "{text}");
    assert!(is_live(&env, &aspect).await);
}

fn legacy_call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

/// A 2026-07-28 `tools/call` with elicitation declared, and `extra` params (`requestState`,
/// `inputResponses`).
pub(crate) fn modern_call(tool: &str, arguments: Value, extra: Value) -> Value {
    let mut params = json!({"name": tool, "arguments": arguments, "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"}}});
    if let (Some(p), Value::Object(extra)) = (params.as_object_mut(), extra) {
        p.extend(extra);
    }
    json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params})
}

/// POSTs one JSON-RPC request; its answer.
async fn post(server: &Server, version: &str, body: &Value) -> Value {
    post_as(server, version, body, None).await
}

/// [`post`] with an `Authorization` header (the caller a sealed state is bound to).
pub(crate) async fn post_as(server: &Server, version: &str, body: &Value, caller: Option<&str>) -> Value {
    let mut request = mcp_post(server, body).header("mcp-protocol-version", version);
    if let Some(caller) = caller {
        request = request.header("authorization", caller);
    }
    if version != "2025-11-25" {
        request =
            request.header("mcp-method", "tools/call").header("mcp-name", body["params"]["name"].as_str().unwrap());
    }
    let response = request.send().await.unwrap();
    let text = response.text().await.unwrap();
    let json = text.lines().find_map(|l| l.strip_prefix("data:")).unwrap_or(&text);
    serde_json::from_str(json.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The aspects with the note schema on `entity` in the local store (as the store lists them).
async fn notes_on(env: &Env, entity: &str) -> usize {
    let listed = ok(&call(&env.client, "list_aspects", json!({"entity": entity})).await);
    listed["items"].as_array().unwrap().len()
}

/// The 2026-07-28 `requestState` is sealed: a tampered one, one made for other arguments, one
/// used already and one expired are refused and nothing is written; the right answer with its
/// state, once, adds. Raw JSON-RPC over `--stateless` HTTP, through two replicas sharing
/// `--state-key` (the state travels with the request); a replica with another key, or another
/// caller (`Authorization`), is refused.
#[tokio::test]
async fn sealed_request_state_is_bound_single_use_and_expires_across_replicas() {
    let env = Env::start(false).await;
    let store = env.store.to_str().unwrap().to_string();
    let key = "k".repeat(40);
    let replica = |key: String| {
        let store = store.clone();
        async move {
            let args =
                ["--local", &store, "--stateless", "--confirm", "writes", "--state-ttl", "2", "--state-key", &key];
            Server::start(&args, &[], tempfile::tempdir().unwrap()).await
        }
    };
    let (a, b, other) = (replica(key.clone()).await, replica(key.clone()).await, replica("o".repeat(40)).await);
    let args = json!({"entity": "urn:example:site:5", "schema": "urn:example:schema:note.1", "content": {"n": 5}});
    let asked = post(&a, "2026-07-28", &modern_call("add_aspect", args.clone(), json!({}))).await;
    let result = &asked["result"];
    assert_eq!(result["resultType"], "input_required", "{asked}");
    let question = &result["inputRequests"]["confirm"];
    assert_eq!(question["method"], "elicitation/create", "{asked}");
    assert!(question["params"]["message"].as_str().unwrap().contains("urn:example:site:5"), "{asked}");
    let state = result["requestState"].as_str().unwrap().to_string();
    let yes = json!({"confirm": {"action": "accept", "content": {"confirm": true}}});
    let retry = |args: Value, state: &str, responses: &Value| {
        modern_call("add_aspect", args, json!({"requestState": state, "inputResponses": responses}))
    };
    let refused = |answer: &Value| {
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        answer["result"]["content"][0]["text"].as_str().unwrap().to_string()
    };

    let mut tampered = state.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let text = refused(&post(&b, "2026-07-28", &retry(args.clone(), &tampered, &yes)).await);
    assert!(text.contains("requestState is not valid for this call"), "{text}");

    let mut swapped = args.clone();
    swapped["entity"] = json!("urn:example:site:6");
    let text = refused(&post(&b, "2026-07-28", &retry(swapped, &state, &yes)).await);
    assert!(text.contains("requestState is not valid for this call"), "{text}");
    let text = refused(&post(&other, "2026-07-28", &retry(args.clone(), &state, &yes)).await);
    assert!(text.contains("requestState is not valid for this call"), "another key: {text}");
    // Bound to the caller: asked without credentials, answered by someone else.
    let text = refused(&post_as(&b, "2026-07-28", &retry(args.clone(), &state, &yes), Some("Bearer mallory")).await);
    assert!(text.contains("requestState is not valid for this call"), "another caller: {text}");
    let no = json!({"confirm": {"action": "decline"}});
    assert!(refused(&post(&a, "2026-07-28", &retry(args.clone(), &state, &no)).await).starts_with(DECLINED));
    assert_eq!(notes_on(&env, "urn:example:site:5").await + notes_on(&env, "urn:example:site:6").await, 0);

    // The decline spent the state on replica a; b has not seen it: replicas share the key, not
    // the record of used states (docs/guide.md says so).
    let done = post(&b, "2026-07-28", &retry(args.clone(), &state, &yes)).await;
    assert_ne!(done["result"]["isError"], true, "{done}");
    assert!(done["result"]["structuredContent"]["id"].as_str().unwrap().starts_with("urn:ivcap:aspect:"), "{done}");
    let text = refused(&post(&b, "2026-07-28", &retry(args.clone(), &state, &yes)).await);
    assert!(text.contains("requestState was used already"), "{text}");
    assert_eq!(notes_on(&env, "urn:example:site:5").await, 1, "added once");

    let asked = post(&a, "2026-07-28", &modern_call("add_aspect", args.clone(), json!({}))).await;
    let state = asked["result"]["requestState"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let text = refused(&post(&a, "2026-07-28", &retry(args.clone(), &state, &yes)).await);
    assert!(text.contains("requestState has expired"), "{text}");
    assert_eq!(notes_on(&env, "urn:example:site:5").await, 1, "nothing added after the expiry");
}

/// The request schema of the form tests: three required fields.
fn greeter_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "message": {"type": "string", "title": "Message", "description": "What to say"},
            "times": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1, "description": "How often"},
            "mood": {"type": "string", "enum": ["calm", "loud"]}
        },
        "required": ["message", "times", "mood"]
    })
}

/// A service tool called without two required fields asks one form with exactly those fields,
/// then runs the job with the answers; an answer that breaks the schema gets the violation and
/// no job. Both eras, both modes.
async fn a_form_asks_for_the_missing_inputs(on_platform: bool) {
    let env = Env::start(on_platform).await;
    env.add_echo_service("greeter", "Greets", Some(greeter_schema()));
    let args = ["--service-tools", "greeter"];
    for modern in ERAS {
        let person = Person::new(Answer::Accept(json!({"message": "hello", "times": 2})));
        let client = person_client(&env, &args, person.clone(), modern).await;
        wait_for_tool(&client, "svc_greeter").await;
        let jobs = env.jobs_created();
        let done = ok(&call(&client, "svc_greeter", json!({"mood": "calm"})).await);
        assert_eq!(done["result"], json!({"mood": "calm", "message": "hello", "times": 2}), "{done}");
        assert_eq!(env.jobs_created(), jobs + 1);
        let asked = person.asked();
        assert_eq!(asked.len(), 1, "{asked:?}");
        let schema = &asked[0].1;
        assert_eq!(schema["required"], json!(["message", "times"]), "{schema}");
        assert_eq!(schema["properties"]["times"]["maximum"], 5, "{schema}");
        assert_eq!(schema["properties"]["message"]["title"], "Message", "{schema}");
        assert!(schema["properties"].get("mood").is_none(), "{schema}");

        let person = Person::new(Answer::Accept(json!({"message": "hello", "times": 9})));
        let client = person_client(&env, &args, person.clone(), modern).await;
        wait_for_tool(&client, "svc_greeter").await;
        let bad = err(&call(&client, "svc_greeter", json!({"mood": "calm"})).await);
        assert!(bad.contains("/times") && bad.contains("no job was created"), "{bad}");
        assert_eq!(env.jobs_created(), jobs + 1, "no job for a bad answer");

        let person = Person::new(Answer::Decline);
        let client = person_client(&env, &args, person.clone(), modern).await;
        wait_for_tool(&client, "svc_greeter").await;
        assert!(err(&call(&client, "svc_greeter", json!({"mood": "calm"})).await).starts_with(DECLINED));
        assert_eq!(env.jobs_created(), jobs + 1, "no job when declined");
    }
    // Without elicitation: today's validation error listing every violation.
    let plain = person_client(&env, &args, (), false).await;
    wait_for_tool(&plain, "svc_greeter").await;
    let bad = err(&call(&plain, "svc_greeter", json!({"mood": "calm"})).await);
    assert!(bad.contains("missing required properties 'message', 'times'") && bad.contains("no job"), "{bad}");
}

both_modes!(a_form_asks_for_the_missing_inputs);

/// Service tools load in the background: waits until `name` is listed.
async fn wait_for_tool<C: ClientHandler>(client: &RunningService<RoleClient, C>, name: &str) {
    for _ in 0..100 {
        if client.list_all_tools().await.unwrap().iter().any(|t| t.name == name) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{name} never appeared");
}

/// Runs tests/python/elicitation_client.py: the official client answering `answer` to every
/// question, calling `calls` on `server` (a URL, or a stdio command run in `cwd`).
async fn python(server: &str, mode: &str, answer: &str, calls: Value, cwd: &Path, envs: &[(&str, &str)]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/elicitation_client.py");
    let python = tokio::task::spawn_blocking(crate::python_mcp::python).await.unwrap();
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(script)
        .env("SERVER", server)
        .env("MODE", mode)
        .env("ANSWER", answer)
        .env("CALLS", calls.to_string())
        .env("CWD", cwd)
        .env("XDG_CONFIG_HOME", cwd.join(".no-config"))
        .env_remove("IVCAP_URL")
        .env_remove("IVCAP_JWT")
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output()).await.expect("python within 2 min").unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "python failed: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The official Python client in both eras over every transport it speaks: legacy 2025-11-25
/// over stdio and Streamable HTTP sessions, 2026-07-28 over stdio and `--stateless` HTTP
/// (replicas of one key). Accept retracts; decline and cancel leave the aspect live.
#[tokio::test]
async fn the_python_client_is_asked_in_both_eras_over_stdio_and_http() {
    let env = Env::start(false).await;
    let store = env.store.to_str().unwrap().to_string();
    let key = "s".repeat(32);
    let sessions = Server::start(&["--local", &store], &[], tempfile::tempdir().unwrap()).await;
    let stateless =
        Server::start(&["--local", &store, "--stateless", "--state-key", &key], &[], tempfile::tempdir().unwrap())
            .await;
    let stdio = json!([crate::common::BIN, "--local", store]).to_string();
    let (sessions_url, stateless_url) = (sessions.url("/mcp"), stateless.url("/mcp"));
    let transports = [
        ("legacy stdio", stdio.as_str(), "legacy"),
        ("legacy HTTP session", sessions_url.as_str(), "legacy"),
        ("2026-07-28 stdio", stdio.as_str(), "2026-07-28"),
        ("2026-07-28 stateless HTTP", stateless_url.as_str(), "2026-07-28"),
    ];
    for (label, server, mode) in transports {
        let aspect = add_aspect(&env, "urn:example:site:7").await;
        for answer in ["decline", "cancel", "accept"] {
            let calls = json!([["retract_aspect", {"aspect": aspect}]]);
            let out = python(server, mode, answer, calls, env.dir.path(), &[]).await;
            let asked = out["asked"].as_array().unwrap();
            assert_eq!(asked.len(), 1, "{label} {answer}: {out}");
            assert!(asked[0]["message"].as_str().unwrap().contains(&aspect), "{label}: {out}");
            let result = &out["results"][0];
            if answer == "accept" {
                assert_eq!(result["is_error"], false, "{label}: {out}");
                assert!(!is_live(&env, &aspect).await, "{label}: retracted");
            } else {
                assert!(result["text"].as_str().unwrap().starts_with(DECLINED), "{label} {answer}: {out}");
                assert!(is_live(&env, &aspect).await, "{label} {answer}: nothing changed");
            }
        }
    }
}

/// The Python client and forms: `submit_job` on a service with a request schema, missing two
/// fields, over 2026-07-28 `--stateless` HTTP and a legacy stdio session; `--confirm writes`
/// asks before `submit_job` (and the form counts as the person's consent: one question).
#[tokio::test]
async fn the_python_client_fills_in_a_form_and_confirms_a_job() {
    let env = Env::start(false).await;
    let service = env.add_echo_service("greeter", "Greets", Some(greeter_schema()));
    let store = env.store.to_str().unwrap().to_string();
    let server =
        Server::start(&["--local", &store, "--stateless", "--confirm", "writes"], &[], tempfile::tempdir().unwrap())
            .await;
    let stdio = json!([crate::common::BIN, "--local", store, "--confirm", "writes"]).to_string();
    let url = server.url("/mcp");
    for (server, mode) in [(url.as_str(), "2026-07-28"), (stdio.as_str(), "legacy")] {
        let calls = json!([["submit_job", {"service": service, "input": {"mood": "loud"}}]]);
        let out = python(server, mode, r#"{"message": "hi", "times": 3}"#, calls, env.dir.path(), &[]).await;
        let asked = out["asked"].as_array().unwrap();
        assert_eq!(asked.len(), 1, "{mode}: {out}");
        assert_eq!(asked[0]["schema"]["required"], json!(["message", "times"]), "{mode}: {out}");
        assert_eq!(out["results"][0]["structured"]["result"], json!({"mood": "loud", "message": "hi", "times": 3}));

        let calls =
            json!([["submit_job", {"service": service, "input": {"mood": "loud", "message": "x", "times": 1}}]]);
        let out = python(server, mode, "decline", calls.clone(), env.dir.path(), &[]).await;
        assert_eq!(out["asked"].as_array().unwrap().len(), 1, "writes asks before submit_job: {out}");
        assert!(out["results"][0]["text"].as_str().unwrap().starts_with(DECLINED), "{out}");
        let out = python(server, mode, "accept", calls, env.dir.path(), &[]).await;
        assert_eq!(out["results"][0]["is_error"], false, "{out}");
    }
}

/// Protects the helpers above from drifting: a call answered `input_required` by the rmcp
/// client's `call_tool_once` carries the question and a state (the shape the raw tests use).
#[tokio::test]
async fn the_rmcp_client_sees_the_question_and_state() {
    let env = Env::start(false).await;
    let aspect = add_aspect(&env, "urn:example:site:8").await;
    let person = Person::new(yes());
    let client = person_client(&env, &[], person, true).await;
    let mut params = serde_json::Map::new();
    params.insert("aspect".into(), json!(aspect));
    let first =
        client.call_tool_once(CallToolRequestParams::new("retract_aspect").with_arguments(params.clone())).await;
    let CallToolResponse::InputRequired(asked) = first.unwrap() else { panic!("expected input_required") };
    let state = asked.request_state.expect("a state");
    let mut responses = InputResponses::new();
    responses.insert("confirm".into(), json!({"action": "accept", "content": {"confirm": true}}));
    let retry = CallToolRequestParams::new("retract_aspect")
        .with_arguments(params)
        .with_request_state(state)
        .with_input_responses(responses);
    let done = client.call_tool_once(retry).await.unwrap();
    let CallToolResponse::Complete(done) = done else { panic!("expected a result") };
    let done: CallToolResult = done;
    assert_ne!(done.is_error, Some(true), "{done:?}");
    assert!(!is_live(&env, &aspect).await);
}

both_modes!(every_destructive_call_says_exactly_what_it_changes);

/// Each destructive call's question names exactly what would change: the aspect an update
/// replaces, how many memberships a retraction ends, which members a removal ends, which
/// collection definition is replaced, which file an overwrite replaces. Declined, nothing changed; calls that end nothing are not asked about.
async fn every_destructive_call_says_exactly_what_it_changes(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let person = Person::new(Answer::Decline);
    let asker = person_client(&env, &[], person.clone(), true).await;
    let last_question = || person.asked().last().map(|(m, _)| m.clone()).unwrap_or_default();

    let aspect = add_aspect(&env, "urn:example:site:9").await;
    let update = json!({"entity": "urn:example:site:9", "schema": "urn:example:schema:note.1", "content": {"n": 2}});
    assert!(err(&call(&asker, "update_aspect", update.clone()).await).starts_with(DECLINED));
    assert_eq!(
        last_question(),
        format!(
            "Replace aspect {aspect} (schema urn:example:schema:note.1 on urn:example:site:9) with new content: the \
             old one is retracted."
        )
    );
    assert!(is_live(&env, &aspect).await);
    // Nothing live to replace: an add, not asked about under `destructive`.
    let asked = person.asked().len();
    let fresh = json!({"entity": "urn:example:site:10", "schema": "urn:example:schema:note.1", "content": {}});
    ok(&call(&asker, "update_aspect", fresh).await);
    assert_eq!(person.asked().len(), asked);

    let collection =
        ok(&call(c, "create_collection", json!({"name": "Trip"})).await)["id"].as_str().unwrap().to_string();
    let members = ["urn:example:item:1", "urn:example:item:2", "urn:example:item:3"];
    ok(&call(c, "update_collection", json!({"collection": collection, "add": members})).await);
    let writes = standin_writes(&env);
    assert!(err(&call(&asker, "retract_collection", json!({"collection": collection})).await).starts_with(DECLINED));
    assert_eq!(
        last_question(),
        format!("Retract collection {collection} ('Trip') and its 3 membership(s); the members themselves stay.")
    );
    let remove = json!({"collection": collection, "remove": ["urn:example:item:2", "urn:example:item:9"]});
    assert!(err(&call(&asker, "update_collection", remove).await).starts_with(DECLINED));
    assert_eq!(last_question(), format!("Remove 1 member(s) from collection {collection}: urn:example:item:2."));
    assert_eq!(standin_writes(&env), writes, "the stand-in saw no write");
    let rename = json!({"collection": collection, "name": "Trip 2"});
    assert!(err(&call(&asker, "create_collection", rename).await).starts_with(DECLINED));
    assert_eq!(last_question(), format!("Replace the definition of collection {collection} ('Trip') with 'Trip 2'."));
    let got = ok(&call(c, "get_collection", json!({"collection": collection})).await);
    assert_eq!(got["members"].as_array().unwrap().len(), 3, "{got}");
    assert_eq!(got["name"], "Trip", "{got}");
    let asked = person.asked().len();
    ok(&call(&asker, "update_collection", json!({"collection": collection, "add": ["urn:example:item:4"]})).await);
    assert_eq!(person.asked().len(), asked, "an add ends nothing");

    let up = ok(&call(c, "upload_artifact", json!({"content": "new text", "name": "n.txt"})).await);
    let artifact = up["id"].as_str().unwrap();
    let file = env.dir.path().join("kept.txt");
    std::fs::write(&file, "old text!").unwrap();
    let overwrite = json!({"artifact": artifact, "path": "kept.txt", "overwrite": true});
    assert!(err(&call(&asker, "download_artifact", overwrite).await).starts_with(DECLINED));
    let shown = std::fs::canonicalize(&file).unwrap();
    assert_eq!(last_question(), format!("Overwrite {} (9 bytes) with artifact {artifact}.", shown.display()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "old text!");
    let asked = person.asked().len();
    ok(&call(&asker, "download_artifact", json!({"artifact": artifact, "path": "other.txt", "overwrite": true})).await);
    assert_eq!(person.asked().len(), asked, "no file there: nothing is overwritten");
}

/// `--context` with a login that expired and cannot be refreshed (the provider refuses its
/// refresh token): a client that can open URLs is sent to the stand-in's device login, the
/// login is saved in the CLI config, and the call completes — in both eras (2025-11-25 with an
/// `elicitationId` and `notifications/elicitation/complete`). A client without URL mode gets
/// the error naming `ivcap-mcp login`; a declined login changes nothing. The official Python
/// client does the same over stdio.
#[tokio::test]
async fn an_expired_login_is_renewed_through_the_client_in_both_eras() {
    let s = ivcap_standin::StandIn::start().await;
    s.require_jwt(true);
    let dir = tempfile::tempdir().unwrap();
    let xdg = dir.path().join("xdg");
    let xdg_env = [("XDG_CONFIG_HOME", xdg.to_str().unwrap())];
    let file = xdg.join("ivcap-cli/config.yaml");
    for modern in ERAS {
        // A login good for 2 s whose refresh token the provider will refuse.
        s.auth_control(|c| {
            c.access_ttl = Duration::from_secs(2);
            c.refuse_refresh = false;
        });
        let login =
            crate::common::command(&["login", "--context", "short", "--url", s.base_url()], &xdg_env, dir.path())
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .unwrap();
        assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
        s.auth_control(|c| {
            c.access_ttl = Duration::from_secs(3600);
            c.refuse_refresh = true;
        });
        let before = std::fs::read_to_string(&file).unwrap();
        let plain =
            spawn_with(&["--context", "short"], &xdg_env, dir.path(), Person::new(yes()), modern.then(discover)).await;
        let person = Person::with_urls(Answer::Decline);
        let declining =
            spawn_with(&["--context", "short"], &xdg_env, dir.path(), person.clone(), modern.then(discover)).await;
        let person = Person::with_urls(yes());
        let client =
            spawn_with(&["--context", "short"], &xdg_env, dir.path(), person.clone(), modern.then(discover)).await;
        tokio::time::sleep(Duration::from_millis(2500)).await;

        let failed = err(&call(&plain, "list_services", json!({})).await);
        assert!(failed.contains("ivcap-mcp login"), "no URL mode: the error names the fix: {failed}");
        let codes = s.requests_to(Method::POST, "/auth/device/code").len();
        let declined = err(&call(&declining, "list_services", json!({})).await);
        assert!(declined.starts_with("not done: the login was declined by the user"), "{declined}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "a declined login writes nothing");

        let listed = ok(&call(&client, "list_services", json!({})).await);
        assert!(listed["items"].is_array(), "{listed}");
        assert_eq!(
            s.requests_to(Method::POST, "/auth/device/code").len(),
            codes + 2,
            "one login each, declined and done"
        );
        let asked = person.asked();
        assert_eq!(asked.len(), 1, "{asked:?}");
        assert!(asked[0].0.contains("context 'short'"), "{}", asked[0].0);
        let url = asked[0].1["url"].as_str().unwrap();
        assert!(url.starts_with(s.base_url()), "the stand-in's verification address: {url}");
        assert_ne!(std::fs::read_to_string(&file).unwrap(), before, "the new login is saved in the CLI config");
        if !modern {
            let id = asked[0].1["elicitationId"].as_str().unwrap().to_string();
            assert!(!id.is_empty());
            let notices = person.notices.lock().unwrap().clone();
            assert!(
                notices
                    .iter()
                    .any(|n| n["method"] == "notifications/elicitation/complete" && n["params"]["elicitationId"] == id),
                "{notices:?}"
            );
        }
        // The other servers on the context pick the saved login up.
        ok(&call(&plain, "list_services", json!({})).await);

        // The official Python client, in the same era, over stdio.
        s.auth_control(|c| c.access_ttl = Duration::from_secs(2));
        let login = crate::common::command(&["login", "--context", "short"], &xdg_env, dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
        s.auth_control(|c| c.access_ttl = Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let stdio = json!([crate::common::BIN, "--context", "short"]).to_string();
        let mode = if modern { "2026-07-28" } else { "legacy" };
        let calls = json!([["list_services", {}]]);
        let out = python(&stdio, mode, "accept", calls, dir.path(), &xdg_env).await;
        assert_eq!(out["asked"].as_array().unwrap().len(), 1, "{out}");
        assert!(out["asked"][0]["url"].as_str().unwrap().starts_with(s.base_url()), "{out}");
        assert_eq!(out["results"][0]["is_error"], false, "{mode}: the call completes after the login: {out}");
    }
}
