//! The stdio framing over the real binary, with raw bytes on stdin: every malformed line gets
//! exactly one answer with the right code and `id`, an oversized line is answered and skipped
//! and the next request served, batches follow the negotiated version, and peak memory stays
//! under 64 MiB whatever arrives.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::common::command;

const MIB: usize = 1 << 20;

/// A server in local mode driven over raw stdin/stdout.
struct Raw {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    _dir: tempfile::TempDir,
}

impl Raw {
    async fn start(protocol_version: &str) -> Raw {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("store")).unwrap();
        let mut child = command(&["--local", "store"], &[], dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut raw = Raw { child, stdin, lines, _dir: dir };
        raw.send(json!({"jsonrpc": "2.0", "id": "init", "method": "initialize", "params": {
            "protocolVersion": protocol_version, "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}))
            .await;
        let answer = raw.next().await;
        assert_eq!(answer["result"]["protocolVersion"], protocol_version, "{answer}");
        raw.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        raw
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.write_all(b"\n").await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    async fn send(&mut self, message: Value) {
        self.write(message.to_string().as_bytes()).await;
    }

    async fn next(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(60), self.lines.next_line())
            .await
            .expect("an answer within 60 s")
            .unwrap()
            .expect("a line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"))
    }

    /// A ping answered proves the server still serves after what came before.
    async fn ping(&mut self, id: i64) {
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "ping"})).await;
        let answer = self.next().await;
        assert_eq!((answer["id"].as_i64(), answer.get("result").is_some()), (Some(id), true), "{answer}");
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id().unwrap())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/<pid>/status");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

fn assert_error(answer: &Value, code: i64, id: &Value, case: &str) {
    assert_eq!(answer["jsonrpc"], "2.0", "{case}: {answer}");
    assert_eq!(answer["error"]["code"], code, "{case}: {answer}");
    assert_eq!(answer.get("id"), Some(id), "{case}: the id member is always there: {answer}");
}

#[tokio::test]
async fn every_malformed_line_gets_one_answer_with_the_right_code_and_id() {
    let mut raw = Raw::start("2025-11-25").await;
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":"deep","method":"ping","params":{{"a":{}1{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let cases: Vec<(&str, Vec<u8>, i64, Value)> = vec![
        ("not JSON", b"hello".to_vec(), -32700, Value::Null),
        ("invalid UTF-8", b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\xfe\"}".to_vec(), -32700, Value::Null),
        ("NaN", b"NaN".to_vec(), -32700, Value::Null),
        ("two objects", br#"{"jsonrpc":"2.0","id":1,"method":"ping"}{"a":1}"#.to_vec(), -32700, Value::Null),
        ("NUL bytes", vec![0u8; 64], -32700, Value::Null),
        ("no jsonrpc", br#"{"id":2,"method":"ping"}"#.to_vec(), -32600, json!(2)),
        ("wrong jsonrpc", br#"{"jsonrpc":"1.0","id":"three","method":"ping"}"#.to_vec(), -32600, json!("three")),
        ("method not a string", br#"{"jsonrpc":"2.0","id":4,"method":4}"#.to_vec(), -32600, json!(4)),
        ("id an object", br#"{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}"#.to_vec(), -32600, Value::Null),
        ("id an array", br#"{"jsonrpc":"2.0","id":[5],"method":"ping"}"#.to_vec(), -32600, Value::Null),
        ("id a float", br#"{"jsonrpc":"2.0","id":5.5,"method":"ping"}"#.to_vec(), -32600, Value::Null),
        (
            "id out of range",
            br#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"ping"}"#.to_vec(),
            -32600,
            Value::Null,
        ),
        ("params a string", br#"{"jsonrpc":"2.0","id":6,"method":"ping","params":"x"}"#.to_vec(), -32600, json!(6)),
        ("empty batch", b"[]".to_vec(), -32600, Value::Null),
        ("a bare number", b"42".to_vec(), -32600, Value::Null),
        ("batch in 2025-11-25", br#"[{"jsonrpc":"2.0","id":7,"method":"ping"}]"#.to_vec(), -32600, Value::Null),
        ("deep nesting", deep.into_bytes(), -32600, json!("deep")),
        (
            "params unfit",
            br#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"nome":"x"}}"#.to_vec(),
            -32602,
            json!(8),
        ),
    ];
    for (n, (case, bytes, code, id)) in cases.into_iter().enumerate() {
        raw.write(&bytes).await;
        let answer = raw.next().await;
        assert_error(&answer, code, &id, case);
        raw.ping(1000 + n as i64).await;
    }
}

#[tokio::test]
async fn batches_are_answered_with_one_array_where_the_version_has_them() {
    let mut raw = Raw::start("2025-03-26").await;
    raw.write(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":5},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":3,"method":"tools/list"},{"jsonrpc":"2.0","id":1,"method":"ping"}]"#).await;
    // JSON-RPC 2.0 §6: one array holding an answer per request, in any order.
    let answer = raw.next().await;
    let mut answers = answer.as_array().unwrap_or_else(|| panic!("not an array: {answer}")).clone();
    assert_eq!(answers.len(), 4, "{answer}");
    answers.sort_by_key(|a| (a["id"].as_i64(), a.get("error").is_some()));
    assert!(answers[0].get("result").is_some(), "{:?}", answers[0]);
    assert_error(&answers[1], -32600, &json!(1), "a repeated id");
    assert_error(&answers[2], -32600, &json!(2), "bad element");
    assert!(answers[3]["result"]["tools"].is_array(), "{:?}", answers[3]);
    raw.ping(9).await;

    // Only notifications: no answer at all; the next request is answered on its own line.
    raw.write(br#"[{"jsonrpc":"2.0","method":"notifications/initialized"}]"#).await;
    raw.ping(10).await;
}

#[tokio::test]
async fn oversized_messages_are_answered_and_skipped_and_memory_stays_bounded() {
    let mut raw = Raw::start("2025-11-25").await;
    let aspect = |id: Value, bytes: usize| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "add_aspect", "arguments": {
            "entity": "urn:example:entity:1", "schema": "urn:example:schema:blob.1",
            "content": {"blob": "x".repeat(bytes)}}}})
    };

    // A 20 MiB add_aspect: the size error, with its id, then the next request is served.
    raw.send(aspect(json!(99), 20 * MIB)).await;
    let answer = raw.next().await;
    assert_error(&answer, -32600, &json!(99), "20 MiB line");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("8388608 bytes") && message.contains("--max-message-size"), "{message}");
    assert!(message.contains("upload_artifact with path"), "{message}");
    raw.ping(100).await;

    // Oversized content_base64 too, and a 1 MB Datalog query (refused before any work).
    let upload = json!({"jsonrpc": "2.0", "id": 101, "method": "tools/call", "params": {"name": "upload_artifact",
        "arguments": {"content_base64": "QUFB".repeat(3 * MIB), "name": "big.bin"}}});
    raw.send(upload).await;
    assert_error(&raw.next().await, -32600, &json!(101), "12 MiB content_base64");
    let query = format!(":- ivcap_service(Id, Name), Name = \"{}\".", "n".repeat(MIB));
    raw.send(json!({"jsonrpc": "2.0", "id": 102, "method": "tools/call", "params": {"name": "search",
        "arguments": {"query": query}}}))
        .await;
    let answer = raw.next().await;
    assert_eq!(answer["result"]["isError"], true, "{answer}");
    assert!(answer["result"]["content"][0]["text"].as_str().unwrap().contains("65536 bytes"), "{answer}");

    // A large message within the limit, and 50 calls of 1 MiB pipelined without waiting.
    // (Uploads: the local aspect index keeps every aspect's content in memory by design.)
    let text = |id: Value, bytes: usize| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "upload_artifact", "arguments": {
            "content": "t".repeat(bytes), "name": format!("t{id}.txt")}}})
    };
    raw.send(text(json!(103), 2 * MIB)).await;
    let answer = raw.next().await;
    assert_eq!(answer["result"]["isError"], false, "{answer}");
    for n in 0..50 {
        raw.send(text(json!(200 + n), MIB)).await;
    }
    let mut answered = 0;
    while answered < 50 {
        let answer = raw.next().await;
        assert_eq!(answer["result"]["isError"], false, "{answer}");
        answered += 1;
    }
    raw.ping(300).await;
    let peak = raw.peak_rss_kib();
    assert!(peak < 64 * 1024, "peak RSS {} MiB, over 64 MiB", peak / 1024);
    eprintln!("peak RSS after hostile inputs: {:.1} MiB", peak as f64 / 1024.0);
}
