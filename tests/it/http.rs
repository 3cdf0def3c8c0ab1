//! The HTTP transports over the real binary: Streamable HTTP (sessions and `--stateless`),
//! legacy HTTP+SSE, progress notifications streamed on both, `/healthz`, the
//! Host/Origin/bearer guard, the body limit, and graceful shutdown.

use std::time::{Duration, Instant};

use axum::http::Method;
use futures::StreamExt;
use ivcap_standin::{Fault, FaultAction, JobScript, StandIn, TOKEN};
use rmcp::ServiceExt;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::common::{Client, call, command, ok};

/// A running `ivcap-mcp --http 127.0.0.1:0`.
pub(crate) struct Server {
    pub(crate) child: tokio::process::Child,
    /// `http://127.0.0.1:PORT`
    base: String,
    /// Every line the server wrote to stderr so far.
    pub(crate) log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Local mode on a store holding one local service, `echo`.
    async fn local(extra: &[&str], envs: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir_all(store.join("services")).unwrap();
        std::fs::write(
            store.join("services/echo.json"),
            json!({"name": "echo", "description": "Returns its request", "command": ["cat"],
                   "fn_schema": {"type": "object"}})
            .to_string(),
        )
        .unwrap();
        let mut args = vec!["--local", store.to_str().unwrap()];
        args.extend_from_slice(extra);
        Server::start(&args, envs, dir).await
    }

    /// Platform mode against `standin`.
    pub(crate) async fn platform(standin: &StandIn, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut envs = envs.to_vec();
        envs.extend([("IVCAP_URL", standin.base_url()), ("IVCAP_JWT", TOKEN)]);
        Server::start(extra, &envs, tempfile::tempdir().unwrap()).await
    }

    pub(crate) async fn start(args: &[&str], envs: &[(&str, &str)], dir: tempfile::TempDir) -> Server {
        Server::start_on("127.0.0.1:0", args, envs, dir).await
    }

    /// [`start`](Self::start) listening on `addr`.
    pub(crate) async fn start_on(addr: &str, args: &[&str], envs: &[(&str, &str)], dir: tempfile::TempDir) -> Server {
        let mut all = args.to_vec();
        all.extend(["--http", addr]);
        let mut cmd = command(&all, envs, dir.path());
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ivcap-mcp --http");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let base = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                eprintln!("[server] {line}");
                log.lock().unwrap().push(line.clone());
                if let Some(rest) = line.split("serving MCP on ").nth(1) {
                    return rest.split("/mcp").next().unwrap().to_string();
                }
            }
            panic!("ivcap-mcp exited before listening");
        })
        .await
        .expect("ivcap-mcp listening within 20 s");
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[server] {line}");
                kept.lock().unwrap().push(line);
            }
        });
        Server { child, base, log, _dir: dir }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An rmcp Streamable HTTP client, with `token` as bearer if given.
    pub(crate) async fn client(&self, token: Option<&str>) -> Client {
        let mut config = StreamableHttpClientTransportConfig::with_uri(self.url("/mcp"));
        if let Some(t) = token {
            config = config.auth_header(t);
        }
        ().serve(StreamableHttpClientTransport::with_client(ivcap_mcp::http_client().build().unwrap(), config))
            .await
            .expect("MCP over Streamable HTTP")
    }

    /// An rmcp Streamable HTTP client with `handler`, on the 2026-07-28 lifecycle.
    pub(crate) async fn discover_client<C: rmcp::ClientHandler>(
        &self,
        handler: C,
    ) -> rmcp::service::RunningService<rmcp::RoleClient, C> {
        use rmcp::service::ClientServiceExt;
        // The client must use the process's TLS provider like every other client here.
        let config = StreamableHttpClientTransportConfig::with_uri(self.url("/mcp"));
        let transport = StreamableHttpClientTransport::with_client(ivcap_mcp::http_client().build().unwrap(), config);
        handler
            .serve_with_lifecycle(transport, crate::common::discover())
            .await
            .expect("server/discover over Streamable HTTP")
    }

    pub(crate) fn sigterm(&self) {
        let pid = self.child.id().expect("server running").to_string();
        let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success());
    }
}

pub(crate) fn http() -> reqwest::Client {
    ivcap_mcp::http_client().timeout(Duration::from_secs(20)).build().unwrap()
}

/// A JSON-RPC POST to `/mcp` with the headers Streamable HTTP requires.
pub(crate) fn mcp_post(server: &Server, body: &Value) -> reqwest::RequestBuilder {
    http()
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(body)
}

fn initialize(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "it", "version": "1"}}})
}

/// The JSON-RPC messages in an SSE or JSON response body.
fn messages(body: &str) -> Vec<Value> {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        return vec![v];
    }
    body.lines().filter_map(|l| l.strip_prefix("data:")).filter_map(|d| serde_json::from_str(d.trim()).ok()).collect()
}

fn names(tools: &[rmcp::model::Tool]) -> Vec<String> {
    tools.iter().map(|t| t.name.to_string()).collect()
}

#[tokio::test]
async fn streamable_http_session_initializes_lists_and_calls() {
    let server = Server::local(&[], &[]).await;
    let client = server.client(None).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(info.server_info.as_ref().map(|i| i.name.as_str()), Some("ivcap-mcp"));
    let tools = client.list_all_tools().await.unwrap();
    assert!(names(&tools).contains(&"list_services".to_string()), "{:?}", names(&tools));
    let listed = ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(listed["items"][0]["name"], "echo");
    client.cancel().await.unwrap();

    // Raw: the session id comes back, and a call answers on an event stream.
    let init = mcp_post(&server, &initialize(1)).send().await.unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers().get("mcp-session-id").expect("a session id").to_str().unwrap().to_string();
    let call = mcp_post(
        &server,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "list_services", "arguments": {}}}),
    )
    .header("mcp-session-id", &session)
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    assert_eq!(call.headers()["content-type"], "text/event-stream");
    let answer = messages(&call.text().await.unwrap()).into_iter().find(|m| m["id"] == 2).expect("the answer");
    assert_eq!(answer["result"]["structuredContent"]["items"][0]["name"], "echo");
}

#[tokio::test]
async fn deleting_a_session_answers_200_and_ends_it() {
    let server = Server::local(&[], &[]).await;
    let init = mcp_post(&server, &initialize(1)).send().await.unwrap();
    let session = init.headers().get("mcp-session-id").expect("a session id").to_str().unwrap().to_string();
    let delete = |session: &str| {
        http()
            .delete(server.url("/mcp"))
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
    };
    let ended = delete(&session).await.unwrap();
    // 200, not rmcp's 202: the Python SDK logs "Session termination failed" for anything but 200/204.
    assert_eq!(ended.status(), 200);
    let after = mcp_post(&server, &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 404, "the session is gone");
}

#[tokio::test]
async fn listening_on_all_interfaces_prints_urls_clients_can_use() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(&["--local", "store", "--http", "0.0.0.0:0"], &[], dir.path());
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("serving MCP on ") {
                return line;
            }
        }
        panic!("ivcap-mcp exited before listening");
    })
    .await
    .unwrap();
    assert!(!line.contains("0.0.0.0"), "no client can connect to 0.0.0.0: {line}");
    let loopback = line.split("serving MCP on ").nth(1).unwrap().split("/mcp").next().unwrap();
    assert!(loopback.starts_with("http://127.0.0.1:"), "{line}");
    let port = loopback.rsplit(':').next().unwrap();
    assert_eq!(http().get(format!("{loopback}/healthz")).send().await.unwrap().status(), 200, "the URL shown works");
    // The host's own addresses follow, on the same port.
    let host: Vec<String> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| ip.is_ipv4() && !ip.is_loopback())
        .map(|ip| format!("http://{ip}:{port}/mcp"))
        .collect();
    for url in &host {
        assert!(line.contains(url.as_str()), "{url} in: {line}");
    }
    child.kill().await.unwrap();
}

#[tokio::test]
async fn streamable_http_serves_the_2026_discover_era() {
    let server = Server::local(&[], &[]).await;
    let meta = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {}});
    let discover = mcp_post(
        &server,
        &json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover",
            "params": {"_meta": meta}}),
    )
    .header("mcp-protocol-version", "2026-07-28")
    .header("mcp-method", "server/discover")
    .send()
    .await
    .unwrap();
    assert_eq!(discover.status(), 200);
    let answer = messages(&discover.text().await.unwrap()).remove(0);
    assert!(answer["result"]["supportedVersions"].to_string().contains("2026-07-28"), "{answer}");
    let list = mcp_post(
        &server,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list",
            "params": {"_meta": meta}}),
    )
    .header("mcp-protocol-version", "2026-07-28")
    .header("mcp-method", "tools/list")
    .send()
    .await
    .unwrap();
    assert_eq!(list.status(), 200);
    assert!(list.headers().get("mcp-session-id").is_none(), "2026-07-28 has no sessions");
    let answer = messages(&list.text().await.unwrap()).remove(0);
    assert!(answer["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "get_service"));
}

/// Clients keep connections alive; an answer written in parts must not wait for the client's
/// delayed ACK (Nagle's algorithm: 40 ms a call on Linux).
#[tokio::test]
async fn answers_on_a_kept_alive_connection_are_not_held_back() {
    let server = Server::local(&[], &[]).await;
    let client = http();
    let post = |body: Value| {
        client
            .post(server.url("/mcp"))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .json(&body)
    };
    let init = post(initialize(1)).send().await.unwrap();
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_string();
    init.bytes().await.unwrap();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    post(initialized).header("mcp-session-id", &session).send().await.unwrap().bytes().await.unwrap();
    let mut times = Vec::new();
    for id in 2..15 {
        let start = Instant::now();
        let answer = post(json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"}))
            .header("mcp-session-id", &session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.bytes().await.unwrap();
        times.push(start.elapsed());
    }
    let mut measured = times.split_off(3);
    measured.sort();
    assert!(measured[5] < Duration::from_millis(30), "median {:?} of {measured:?}", measured[5]);
}

#[tokio::test]
async fn stateless_mode_answers_without_a_session() {
    let server = Server::local(&["--stateless"], &[]).await;
    let init = mcp_post(&server, &initialize(1)).send().await.unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.headers().get("mcp-session-id").is_none(), "stateless: no session id");
    // No session, no initialize on this request: a call stands alone.
    let call = mcp_post(
        &server,
        &json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "list_services", "arguments": {}}}),
    )
    .header("mcp-protocol-version", "2025-11-25")
    .send()
    .await
    .unwrap();
    assert_eq!(call.status(), 200);
    assert_eq!(call.headers()["content-type"], "application/json", "stateless answers plain JSON");
    let answer = messages(&call.text().await.unwrap()).remove(0);
    assert_eq!(answer["id"], 7);
    assert_eq!(answer["result"]["structuredContent"]["items"][0]["name"], "echo");
    // No standing stream to open.
    let get = http().get(server.url("/mcp")).header("accept", "text/event-stream").send().await.unwrap();
    assert_eq!(get.status(), 405);
    // And the rmcp client works against it too.
    let client = server.client(None).await;
    assert!(!client.list_all_tools().await.unwrap().is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
#[allow(deprecated)] // resources/subscribe is the handshake era's way, which this tests.
async fn stateless_mode_refuses_resource_subscriptions() {
    let server = Server::local(&["--stateless"], &[]).await;
    let client = server.client(None).await;
    let job = "urn:ivcap:job:00000000-0000-0000-0000-000000000000";
    let e = client.subscribe(rmcp::model::SubscribeRequestParams::new(job)).await.unwrap_err();
    assert!(e.to_string().contains("--stateless") && e.to_string().contains("subscriptions/listen"), "{e}");
    client.cancel().await.unwrap();
}

/// A legacy SSE session: the stream and the POST endpoint it names.
struct SseSession {
    events: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>>,
    buffer: String,
    endpoint: String,
}

impl SseSession {
    async fn open(server: &Server, token: Option<&str>) -> SseSession {
        let mut get = http().get(server.url("/sse")).header("accept", "text/event-stream");
        if let Some(t) = token {
            get = get.bearer_auth(t);
        }
        let response = get.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut session =
            SseSession { events: Box::pin(response.bytes_stream()), buffer: String::new(), endpoint: String::new() };
        let (event, data) = session.next_event().await;
        assert_eq!(event, "endpoint");
        assert!(data.starts_with("/message?sessionId="), "{data}");
        session.endpoint = server.url(&data);
        session
    }

    /// The next event's name and data.
    async fn next_event(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| {
                    block.lines().filter_map(|l| l.strip_prefix(name)).map(str::trim).collect::<Vec<_>>().join("\n")
                };
                let (event, data) = (field("event:"), field("data:"));
                if event.is_empty() && data.is_empty() {
                    continue; // keep-alive comment
                }
                return (event, data);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.events.next())
                .await
                .expect("an event within 20 s")
                .expect("the stream stays open")
                .unwrap();
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    async fn post(&self, message: &Value, token: Option<&str>) -> reqwest::Response {
        let mut post = http().post(&self.endpoint).json(message);
        if let Some(t) = token {
            post = post.bearer_auth(t);
        }
        post.send().await.unwrap()
    }

    /// POSTs a request and reads the stream until its answer.
    async fn request(&mut self, message: Value, token: Option<&str>) -> Value {
        assert_eq!(self.post(&message, token).await.status(), 202);
        loop {
            let (event, data) = self.next_event().await;
            assert_eq!(event, "message");
            let v: Value = serde_json::from_str(&data).unwrap();
            if v["id"] == message["id"] {
                return v;
            }
        }
    }
}

#[tokio::test]
async fn legacy_sse_end_to_end() {
    let server = Server::local(&[], &[]).await;
    let mut sse = SseSession::open(&server, None).await;
    let init = sse.request(initialize(1), None).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "ivcap-mcp");
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(sse.post(&note, None).await.status(), 202);
    let list = sse.request(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}), None).await;
    assert!(list["result"]["tools"].as_array().unwrap().iter().any(|t| t["name"] == "list_services"));
    let call = sse
        .request(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "get_service", "arguments": {"service": "echo"}}}),
            None,
        )
        .await;
    assert_eq!(call["result"]["structuredContent"]["name"], "echo", "{call}");

    // Wrong session, bad body, no session id.
    let other = http().post(server.url("/message?sessionId=nope")).json(&note).send().await.unwrap();
    assert_eq!(other.status(), 404);
    let bad = http().post(&sse.endpoint).body("{not json").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let missing = http().post(server.url("/message")).json(&note).send().await.unwrap();
    assert_eq!(missing.status(), 400);

    // Closing the stream ends the session.
    let endpoint = sse.endpoint.clone();
    drop(sse);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = http().post(&endpoint).json(&note).send().await.unwrap().status();
        if status == 404 {
            break;
        }
        assert!(Instant::now() < deadline, "session still open after its stream closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn wrong_host_or_origin_is_refused_on_every_route() {
    let server =
        Server::local(&["--allowed-host", "mcp.example.org", "--allowed-origin", "https://app.example.org"], &[]).await;
    let routes = [
        (Method::POST, "/mcp"),
        (Method::GET, "/sse"),
        (Method::POST, "/message?sessionId=x"),
        (Method::GET, "/healthz"),
    ];
    for (method, path) in &routes {
        let send = |headers: &[(&str, &str)]| {
            let mut req = http().request(method.clone(), server.url(path)).header("content-type", "application/json");
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.body(initialize(1).to_string()).send()
        };
        assert_eq!(send(&[("host", "evil.example")]).await.unwrap().status(), 403, "{method} {path} Host");
        assert_eq!(send(&[("origin", "https://evil.example")]).await.unwrap().status(), 403, "{method} {path} Origin");
        assert_eq!(send(&[("origin", "null")]).await.unwrap().status(), 403, "{method} {path} Origin null");
    }
    let ok_host = http().get(server.url("/healthz")).header("host", "mcp.example.org").send().await.unwrap();
    assert_eq!(ok_host.status(), 200);
    let ok_origin = mcp_post(&server, &initialize(1)).header("origin", "https://app.example.org").send().await.unwrap();
    assert_eq!(ok_origin.status(), 200);
    let loopback_origin =
        mcp_post(&server, &initialize(1)).header("origin", "http://localhost:5173").send().await.unwrap();
    assert_eq!(loopback_origin.status(), 200);
}

#[tokio::test]
async fn bearer_token_is_required_and_never_forwarded() {
    let standin = StandIn::start().await;
    standin.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[json!({"type": "object"})]);
    let server = Server::platform(&standin, &[], &[("IVCAP_MCP_TOKEN", "client-secret")]).await;

    for (method, path) in [(Method::POST, "/mcp"), (Method::GET, "/sse"), (Method::POST, "/message?sessionId=x")] {
        let bare = http().request(method.clone(), server.url(path)).json(&initialize(1)).send().await.unwrap();
        assert_eq!(bare.status(), 401, "{method} {path} without a token");
        assert_eq!(bare.headers()["www-authenticate"], "Bearer");
        let wrong =
            http().request(method.clone(), server.url(path)).bearer_auth("client-secreT").json(&initialize(1)).send();
        assert_eq!(wrong.await.unwrap().status(), 401, "{method} {path} with a wrong token");
    }
    assert_eq!(http().get(server.url("/healthz")).send().await.unwrap().status(), 200, "health needs no token");

    let client = server.client(Some("client-secret")).await;
    let listed = ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(listed["items"][0]["name"], "alpha");
    client.cancel().await.unwrap();
    let mut sse = SseSession::open(&server, Some("client-secret")).await;
    let init = sse.request(initialize(1), Some("client-secret")).await;
    assert!(init["result"].is_object());
    assert_eq!(sse.post(&initialize(2), None).await.status(), 401, "every legacy POST needs the token");

    let upstream = standin.requests();
    assert!(!upstream.is_empty());
    for r in upstream {
        assert_eq!(r.header("authorization").as_deref(), Some(&*format!("Bearer {TOKEN}")), "{} {}", r.method, r.path);
    }
}

#[tokio::test]
async fn malformed_posts_get_status_codes_with_json_rpc_bodies() {
    let server = Server::local(&["--max-message-size", "1MiB"], &[]).await;
    let sse = SseSession::open(&server, None).await;
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x".repeat(2 << 20)}});
    // (case, Content-Type, body, HTTP status, JSON-RPC code, id)
    type Case<'a> = (&'a str, &'a str, Vec<u8>, u16, i64, Value);
    let cases: Vec<Case> = vec![
        ("not JSON", "application/json", b"hello".to_vec(), 400, -32700, Value::Null),
        (
            "not a request",
            "application/json",
            br#"{"jsonrpc":"2.0","id":5,"method":7}"#.to_vec(),
            400,
            -32600,
            json!(5),
        ),
        (
            "id an object",
            "application/json",
            br#"{"jsonrpc":"2.0","id":{},"method":"ping"}"#.to_vec(),
            400,
            -32600,
            Value::Null,
        ),
        ("empty batch", "application/json", b"[]".to_vec(), 400, -32600, Value::Null),
        (
            "wrong Content-Type",
            "text/plain",
            br#"{"jsonrpc":"2.0","id":6,"method":"ping"}"#.to_vec(),
            415,
            -32600,
            Value::Null,
        ),
        ("over the limit", "application/json", big.to_string().into_bytes(), 413, -32600, Value::Null),
    ];
    for (case, content_type, body, status, code, id) in cases {
        let mcp = http()
            .post(server.url("/mcp"))
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(body.clone());
        let legacy = http().post(&sse.endpoint).header("content-type", content_type).body(body);
        for (route, request) in [("/mcp", mcp), ("/message", legacy)] {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), status, "{route} {case}");
            let answer: Value = response.json().await.unwrap_or_else(|e| panic!("{route} {case}: not JSON ({e})"));
            assert_eq!(answer["jsonrpc"], "2.0", "{route} {case}: {answer}");
            assert_eq!(
                (answer["error"]["code"].as_i64(), answer.get("id")),
                (Some(code), Some(&id)),
                "{route} {case}: {answer}"
            );
        }
    }
    let batch = json!([{"jsonrpc": "2.0", "id": 9, "method": "ping"}]);
    let response = mcp_post(&server, &batch).header("mcp-protocol-version", "2025-11-25").send().await.unwrap();
    assert_eq!(response.status(), 400, "no batches in 2025-11-25");
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"]["message"].as_str().unwrap().contains("batches"), "{answer}");
    // Valid messages still pass.
    let response = mcp_post(&server, &initialize(10)).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn sigterm_lets_a_call_in_flight_finish_then_exits() {
    let standin = StandIn::start().await;
    standin.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[json!({"type": "object"})]);
    standin.fault(Fault::on(Some(Method::GET), "/1/services2", FaultAction::Delay(Duration::from_millis(1500))));
    let mut server = Server::platform(&standin, &[], &[]).await;
    let client = server.client(None).await;
    // A standing legacy stream, which shutdown must close.
    let mut sse = SseSession::open(&server, None).await;

    let started = Instant::now();
    let in_flight = tokio::spawn(async move {
        let result = call(&client, "list_services", json!({})).await;
        (result, client)
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.sigterm();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = http().get(server.url("/healthz")).timeout(Duration::from_secs(2)).send().await;
    assert!(refused.is_err(), "no new connections after SIGTERM");

    let (result, _client) = tokio::time::timeout(Duration::from_secs(10), in_flight)
        .await
        .expect("the call in flight is answered, not dropped")
        .unwrap();
    assert_eq!(ok(&result)["items"][0]["name"], "alpha", "the call in flight finished");
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait())
        .await
        .expect("exits within the shutdown bound")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // The legacy stream was closed, not left hanging.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sse.events.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(chunk)) => sse.buffer.push_str(&String::from_utf8_lossy(&chunk)),
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream ended at shutdown");
}

#[tokio::test]
async fn sigterm_with_no_client_exits_at_once() {
    for idle_connection in [false, true] {
        let mut server = Server::local(&[], &[]).await;
        // A connection that never sends a request (a browser's preconnect) must not hold the exit up.
        let idle = match idle_connection {
            true => Some(tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap()),
            false => None,
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        server.sigterm();
        let status = tokio::time::timeout(Duration::from_secs(10), server.child.wait()).await.unwrap().unwrap();
        let took = started.elapsed();
        eprintln!("idle connection {idle_connection}: exited {took:?} after SIGTERM");
        assert!(status.success(), "{status:?}");
        assert!(took < Duration::from_millis(500), "idle connection {idle_connection}: exited {took:?} after SIGTERM");
        drop(idle);
    }
}

/// A get_job call that waits on a running job, asking for progress with token "p1".
fn waiting_get_job(id: u64, job_id: &Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {
        "name": "get_job", "arguments": {"job_id": job_id, "wait_seconds": 20},
        "_meta": {"progressToken": "p1"}}})
}

/// A stand-in whose alpha jobs run for `secs` seconds, and a job submitted without waiting.
async fn running_job(server: &Server, secs: u64) -> Value {
    let client = server.client(None).await;
    let job = ok(&call(&client, "submit_job", json!({"service": "alpha", "input": {}, "wait_seconds": 0})).await);
    client.cancel().await.unwrap();
    assert_ne!(job["status"], "succeeded", "the job must still be running: {job} ({secs} s script)");
    job["job_id"].clone()
}

fn jobs_standin_script(secs: u64) -> JobScript {
    JobScript::echo().running_for(Duration::from_secs(secs)).retry_later(0)
}

/// The progress notifications for token "p1" before the answer with `id`, and the answer.
fn progress_then_answer(messages: &[Value], id: u64) -> (Vec<Value>, Value) {
    let at = messages.iter().position(|m| m["id"] == id).expect("the answer");
    let progress: Vec<Value> = messages[..at]
        .iter()
        .filter(|m| m["method"] == "notifications/progress" && m["params"]["progressToken"] == "p1")
        .cloned()
        .collect();
    (progress, messages[at].clone())
}

#[tokio::test]
async fn progress_notifications_stream_over_streamable_http_and_legacy_sse() {
    let standin = StandIn::start().await;
    standin.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[json!({"type": "object"})]);
    standin.script_jobs("urn:ivcap:service:1111", jobs_standin_script(3));
    let server = Server::platform(&standin, &[], &[]).await;

    // Streamable HTTP: the notifications ride the call's own event stream, before its answer.
    let job_id = running_job(&server, 3).await;
    let init = mcp_post(&server, &initialize(1)).send().await.unwrap();
    let session = init.headers()["mcp-session-id"].to_str().unwrap().to_string();
    let response = mcp_post(&server, &waiting_get_job(2, &job_id))
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (progress, answer) = progress_then_answer(&messages(&response.text().await.unwrap()), 2);
    assert_eq!(answer["result"]["structuredContent"]["status"], "succeeded", "{answer}");
    assert!(!progress.is_empty(), "progress notifications before the answer");
    assert!(progress.last().unwrap()["params"]["message"].as_str().unwrap().ends_with("is succeeded"), "{progress:?}");

    // Legacy SSE: the same, as `message` events on the session's stream.
    let job_id = running_job(&server, 3).await;
    let mut sse = SseSession::open(&server, None).await;
    sse.request(initialize(1), None).await;
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(sse.post(&note, None).await.status(), 202);
    assert_eq!(sse.post(&waiting_get_job(2, &job_id), None).await.status(), 202);
    let mut seen = Vec::new();
    while seen.last().is_none_or(|m: &Value| m["id"] != 2) {
        let (event, data) = sse.next_event().await;
        assert_eq!(event, "message");
        seen.push(serde_json::from_str(&data).unwrap());
    }
    let (progress, answer) = progress_then_answer(&seen, 2);
    assert_eq!(answer["result"]["structuredContent"]["status"], "succeeded", "{answer}");
    assert!(!progress.is_empty(), "progress notifications before the answer");
}
