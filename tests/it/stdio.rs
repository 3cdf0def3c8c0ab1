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
    // Drain stderr meanwhile: trace logs of tools/list alone outgrow a pipe buffer, and a
    // server blocked on a full stderr would never answer.
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr_pipe, &mut text).await.map(|_| text)
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
    let stderr = stderr_task.await.unwrap().unwrap();
    assert!(stderr.contains("DEBUG") || stderr.contains("TRACE"), "logs went to stderr");
}

#[tokio::test]
async fn sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(&["--local", "store"], &[], dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&line(INITIALIZE())).await.unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let answer = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.unwrap().unwrap().unwrap();
    assert!(answer.contains("\"serverInfo\""), "{answer}");
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
}
