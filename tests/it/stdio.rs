//! The stdio transport: stdout carries JSON-RPC only, even at trace level; the server exits
//! cleanly on stdin EOF and on SIGTERM.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::command;

fn line(v: Value) -> Vec<u8> {
    let mut s = v.to_string().into_bytes();
    s.push(b'\n');
    s
}

const INITIALIZE: fn() -> Value = || {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})
};

#[tokio::test]
async fn stdout_is_only_json_rpc_while_logging_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("services")).unwrap();
    std::fs::write(store.join("services/echo.json"), r#"{"description":"x","command":["cat"]}"#).unwrap();
    std::fs::write(store.join("services/bad.json"), "{").unwrap();
    let mut child = command(&["--local", store.to_str().unwrap()], &[("RUST_LOG", "trace")], dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Read stderr while the server runs: trace logs of a long tools/list overflow a pipe.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_reader = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr_pipe, &mut text).await.unwrap();
        text
    });
    let requests = [
        INITIALIZE(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "list_services", "arguments": {}}}),
        json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "get_service", "arguments": {"service": "nope"}}}),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "no_such_tool", "arguments": {}}}),
    ];
    for r in requests {
        stdin.write_all(&line(r)).await.unwrap();
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answered = 0;
    while answered < 5 {
        let l =
            tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().expect("a line");
        let msg: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"));
        assert_eq!(msg["jsonrpc"], "2.0", "{l}");
        if msg.get("id").is_some() {
            answered += 1;
        }
        if msg["id"] == 5 {
            assert!(msg.get("error").is_some(), "an unknown tool is a protocol error: {l}");
        }
        if msg["id"] == 4 {
            assert_eq!(msg["result"]["isError"], true, "{l}");
        }
    }
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "clean exit on stdin EOF: {status}");
    while let Some(l) = lines.next_line().await.unwrap() {
        let msg: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"));
        assert_eq!(msg["jsonrpc"], "2.0");
    }
    let stderr = stderr_reader.await.unwrap();
    assert!(stderr.contains("DEBUG") || stderr.contains("TRACE"), "logs went to stderr");
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path(), &[], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&line(INITIALIZE())).await.unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let answer = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(answer.contains("\"serverInfo\""), "{answer}");
    let status = signal_and_wait(&mut child, "-TERM").await;
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}

/// The server in local mode on `dir/store`, with `stdin` and piped stdout and stderr.
fn start(dir: &std::path::Path, envs: &[(&str, &str)], stdin: Stdio) -> tokio::process::Child {
    command(&["--local", "store"], envs, dir)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` (`-TERM`, `-INT`) to `child` and waits for it to exit.
async fn signal_and_wait(child: &mut tokio::process::Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
    tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap()
}

/// Waits until the server logs that it runs (its signal handlers are installed by then).
async fn wait_until_running(stderr: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>) -> String {
    let mut seen = String::new();
    while let Some(l) = tokio::time::timeout(Duration::from_secs(20), stderr.next_line()).await.unwrap().unwrap() {
        seen.push_str(&l);
        seen.push('\n');
        if l.contains("local mode") {
            return seen;
        }
    }
    panic!("server ended before it ran: {seen}");
}

#[tokio::test]
async fn eof_before_the_handshake_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(&["--local", "store"], &[], dir.path()).stdin(Stdio::null()).output().await.unwrap();
    assert!(out.status.success(), "exit 0 when the client goes before the handshake: {:?}", out.status);
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "quiet: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_signal_before_the_handshake_exits_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path(), &[("RUST_LOG", "info")], Stdio::piped());
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    wait_until_running(&mut stderr).await;
    let status = signal_and_wait(&mut child, "-INT").await;
    assert!(status.success(), "exit 0 on SIGINT before the handshake: {status}");
    let mut rest = String::new();
    while let Some(l) = stderr.next_line().await.unwrap() {
        rest.push_str(&l);
    }
    assert!(!rest.contains("ERROR") && !rest.contains("handshake failed"), "{rest}");
}

#[tokio::test]
async fn a_broken_handshake_says_what_broke() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path(), &[], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&line(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))).await.unwrap();
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("MCP handshake failed") && stderr.contains("initialize"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// A pseudo-terminal: the server's stdin is its secondary side, as when a user runs it in a shell.
fn terminal() -> (std::fs::File, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let (mut primary, mut secondary) = (0, 0);
    // SAFETY: openpty writes two fresh descriptors into the integers we pass; we own them after.
    let rc = unsafe {
        libc::openpty(&mut primary, &mut secondary, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are open and owned by nothing else.
    unsafe { (std::fs::File::from_raw_fd(primary), std::os::fd::OwnedFd::from_raw_fd(secondary)) }
}

#[tokio::test]
async fn at_a_terminal_it_says_what_it_waits_for_on_stderr_only() {
    let dir = tempfile::tempdir().unwrap();
    let (primary, secondary) = terminal();
    let mut child = start(dir.path(), &[("RUST_LOG", "info")], Stdio::from(secondary));
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let seen = wait_until_running(&mut stderr).await;
    assert!(
        seen.contains("waiting for an MCP client on stdin")
            && seen.contains("npx -y @modelcontextprotocol/inspector@2.12.0 ivcap-mcp --local store"),
        "{seen}"
    );
    let status = signal_and_wait(&mut child, "-TERM").await;
    assert!(status.success(), "{status}");
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).await.unwrap();
    assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
    drop(primary);
}

#[tokio::test]
async fn a_client_that_quits_after_its_first_answer_loses_no_write() {
    // 2,000 aspects: enough that the index build snapshots itself, which it does after the
    // first query was answered; the client closes stdin at once and the write must still land.
    let dir = tempfile::tempdir().unwrap();
    let aspects = dir.path().join("store/aspects");
    std::fs::create_dir_all(&aspects).unwrap();
    for i in 0..2_000 {
        let uuid = uuid::Uuid::new_v4();
        let record = json!({
            "id": format!("urn:ivcap:aspect:{uuid}"), "entity": format!("urn:test:entity:{}", i % 10),
            "schema": "urn:test:schema:a.1", "content": {"n": i},
            "valid_from": "2026-01-01T00:00:00.000000Z", "valid_to": null,
        });
        std::fs::write(aspects.join(format!("{uuid}.json")), record.to_string()).unwrap();
    }
    let mut child = start(dir.path(), &[], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "list_aspects", "arguments": {"entity": "urn:test:entity:3", "limit": 5}}});
    for message in [INITIALIZE(), json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), list] {
        stdin.write_all(&line(message)).await.unwrap();
    }
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(20), stdout.next_line()).await.unwrap().unwrap();
        let answer: Value = serde_json::from_str(&answer.expect("an answer before EOF")).unwrap();
        if answer["id"] == 2 {
            assert_eq!(answer["result"]["structuredContent"]["items"].as_array().map(Vec::len), Some(5), "{answer}");
            break;
        }
    }
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "{status:?}");
    let snapshot = dir.path().join("store/.ivcap-mcp/aspect-index.jsonl");
    assert!(snapshot.is_file(), "the snapshot written after the answer was finished before the exit");
    let leftovers: Vec<_> =
        std::fs::read_dir(snapshot.parent().unwrap()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(leftovers.len(), 1, "no temp file left: {leftovers:?}");
}

/// A call of a tool that does not exist is a protocol error naming the closest tools, and the
/// server's stderr stays free of warnings: a client's mistake is the client's to read.
#[tokio::test]
async fn an_unknown_tool_is_answered_with_the_closest_names_and_no_warning() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = start(dir.path(), &[], Stdio::piped());
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    stdin.write_all(&line(init)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    stdin.write_all(&line(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))).await.unwrap();
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "submit_jobs", "arguments": {}}});
    stdin.write_all(&line(call)).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer["error"]["code"], -32602, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("unknown tool 'submit_jobs' (similar: submit_job"), "{message}");
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output()).await.unwrap().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("WARN"), "no warning for a client's mistake: {stderr}");
}
