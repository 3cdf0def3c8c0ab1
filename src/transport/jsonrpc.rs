//! JSON-RPC 2.0 envelope checks, shared by every transport, so that each message gets exactly
//! one answer (JSON-RPC 2.0 §5): text that is not JSON is `-32700`, JSON that is not a request
//! is `-32600` with the request's `id` when one can be read (else `"id": null`), and a request
//! whose `params` do not fit its MCP method is `-32602` with its `id`. Only messages that pass
//! go on to rmcp.

use rmcp::model::{self, ClientJsonRpcMessage, ClientRequest, JsonRpcMessage, JsonRpcRequest};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::text::describe_json;

pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const INVALID_PARAMS: i64 = -32602;

/// Deepest nesting of arrays and objects accepted. Far below serde_json's own recursion
/// limit (128), so the typed parse and schema validation that follow always have headroom;
/// no MCP message needs more.
pub(crate) const MAX_NESTING: usize = 64;

/// What to do with one message.
#[derive(Debug)]
pub(crate) enum Checked {
    /// A valid MCP message, for rmcp.
    Message(Box<ClientJsonRpcMessage>),
    /// Nothing to answer (a notification or response that does not fit MCP): logged only.
    Ignored,
    /// An error response to send instead.
    Answer(Value),
}

/// A parsed line or body: one message, or a batch of them.
#[derive(Debug)]
pub(crate) enum Parsed {
    Single(Value),
    Batch(Vec<Value>),
}

/// An error response; `id` is `null` when the request's id could not be read.
pub(crate) fn error_response(id: Option<&Value>, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "error": {"code": code, "message": message}})
}

/// Parses message text. `Err` is the error response to send.
pub(crate) fn parse(text: &[u8]) -> Result<Parsed, Value> {
    // RFC 8259 §8.1 lets parsers ignore a leading byte order mark.
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    if nesting_exceeds(text, MAX_NESTING) {
        let message = format!(
            "Invalid Request: nested more than {MAX_NESTING} levels deep; send flatter data (or a file via \
             upload_artifact)"
        );
        return Err(error_response(sniff_id(text).as_ref(), INVALID_REQUEST, &message));
    }
    match serde_json::from_slice::<Value>(text) {
        Ok(Value::Array(items)) if items.is_empty() => {
            Err(error_response(None, INVALID_REQUEST, "Invalid Request: an empty batch ([]) holds no message"))
        }
        Ok(Value::Array(items)) => Ok(Parsed::Batch(items)),
        Ok(value) => Ok(Parsed::Single(value)),
        Err(e) => Err(error_response(
            None,
            PARSE_ERROR,
            &format!("Parse error: not JSON ({e}); send one JSON-RPC object per line"),
        )),
    }
}

/// The answer to a batch when the negotiated protocol version has none (MCP 2025-06-18
/// removed them); `None` when batches are allowed and each element is answered on its own.
pub(crate) fn refuse_batch(protocol_version: Option<&str>) -> Option<Value> {
    let allowed = matches!(protocol_version, Some("2024-11-05" | "2025-03-26"));
    (!allowed).then(|| {
        let version = protocol_version.unwrap_or("this protocol version (none negotiated yet)");
        error_response(
            None,
            INVALID_REQUEST,
            &format!("Invalid Request: JSON-RPC batches are not part of MCP {version}; send one message at a time"),
        )
    })
}

/// The envelope of one message, borrowed from its text.
#[derive(serde::Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    jsonrpc: Member<'a>,
    #[serde(default, borrow)]
    id: Member<'a>,
    #[serde(default, borrow)]
    method: Member<'a>,
    #[serde(default, borrow)]
    params: Member<'a>,
}

/// A member's raw text, `None` when absent. Not `Option<&RawValue>`, which reads a `null`
/// member as absent: `"id": null` is an invalid request, not a notification.
#[derive(Default)]
struct Member<'a>(Option<&'a RawValue>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for Member<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&'a RawValue>::deserialize(deserializer).map(|raw| Member(Some(raw)))
    }
}

/// `true` when `text` is one request or notification that [`parse`] and [`envelope_problem`]
/// would pass, seen without building a [`Value`] of the whole message (over HTTP that tree
/// was most of the front door's cost per call). `false` only means "look closer": a batch, a
/// response, a duplicate key or an escaped `"2.0"` take the full checks, which word the answer.
pub(crate) fn plainly_valid_request(text: &[u8]) -> bool {
    if nesting_exceeds(text, MAX_NESTING) {
        return false;
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(text) else { return false };
    let id_readable = envelope.id.0.is_none_or(|id| id.get().starts_with('"') || id.get().parse::<i64>().is_ok());
    envelope.jsonrpc.0.is_some_and(|v| v.get() == "\"2.0\"")
        && id_readable
        && envelope.method.0.is_some_and(|m| m.get().starts_with('"'))
        && envelope.params.0.is_none_or(|p| p.get().starts_with(['{', '[']))
}

/// The typed message `text` is when it is [plainly valid](plainly_valid_request) and fits
/// one of rmcp's messages other than a custom request: what [`check`] would hand on, read
/// straight from the bytes (stdio's path for every ordinary message). `None` means "take the
/// full checks", which word any answer.
pub(crate) fn plainly_valid_message(text: &[u8]) -> Option<ClientJsonRpcMessage> {
    if !plainly_valid_request(text) {
        return None;
    }
    match serde_json::from_slice::<ClientJsonRpcMessage>(text) {
        Ok(JsonRpcMessage::Request(JsonRpcRequest { request: ClientRequest::CustomRequest(_), .. })) | Err(_) => None,
        Ok(message) => Some(message),
    }
}

/// What is wrong with the JSON-RPC 2.0 envelope of one message (object, `jsonrpc`, `id`,
/// `method`, `params`, a response's `result`/`error`), as the answer to send; `None` when it
/// is a well-formed request, notification or response.
pub(crate) fn envelope_problem(value: &Value) -> Option<Value> {
    let Value::Object(object) = value else {
        return Some(error_response(
            None,
            INVALID_REQUEST,
            "Invalid Request: a JSON-RPC message is an object with \"jsonrpc\": \"2.0\" and a \"method\" (or a \"result\"/\"error\")",
        ));
    };
    let (id, id_problem) = match object.get("id") {
        None => (None, None),
        Some(id) if readable_id(id) => (Some(id), None),
        Some(other) => (None, Some(format!("\"id\" must be a string or an integer, got {}", describe_json(other)))),
    };
    let invalid = |problem: &str| Some(error_response(id, INVALID_REQUEST, &format!("Invalid Request: {problem}")));
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("\"jsonrpc\" must be the string \"2.0\"");
    }
    if let Some(problem) = id_problem {
        return invalid(&problem);
    }
    match object.get("method") {
        Some(Value::String(_)) => match object.get("params") {
            Some(params) if !(params.is_object() || params.is_array()) => {
                invalid(&format!("\"params\" must be an object or an array, got {}", describe_json(params)))
            }
            _ => None,
        },
        Some(other) => invalid(&format!("\"method\" must be a string, got {}", describe_json(other))),
        None if id.is_none() || object.contains_key("result") == object.contains_key("error") => invalid(
            "no \"method\": a request needs a string \"method\"; a response needs an \"id\" and exactly one of \
             \"result\" or \"error\"",
        ),
        None => None,
    }
}

/// Checks one message (a batch element or a whole line) against JSON-RPC 2.0 and MCP: its
/// envelope, then rmcp's types for it.
pub(crate) fn check(value: Value) -> Checked {
    if let Some(answer) = envelope_problem(&value) {
        return Checked::Answer(answer);
    }
    let Value::Object(object) = value else { return Checked::Ignored };
    match object.get("method").and_then(Value::as_str) {
        Some(method) => {
            let method = method.to_string();
            let id = object.get("id").cloned();
            let params_are_array = object.get("params").is_some_and(Value::is_array);
            typed(object, |e| match &id {
                // A notification gets no answer, even when it does not fit.
                None => None,
                Some(_) if params_are_array => {
                    Some(format!("Invalid params: MCP's '{method}' takes named params (an object), not an array"))
                }
                Some(_) => Some(format!("Invalid params for '{method}': {e}")),
            })
            .unwrap_or_else(|message| Checked::Answer(error_response(id.as_ref(), INVALID_PARAMS, &message)))
        }
        None => typed(object, |_| None).unwrap_or(Checked::Ignored),
    }
}

/// The typed rmcp message; when it does not fit, `answer` says what to reply (`None`: nothing).
fn typed(
    object: Map<String, Value>,
    answer: impl FnOnce(&serde_json::Error) -> Option<String>,
) -> Result<Checked, String> {
    match serde_json::from_value::<ClientJsonRpcMessage>(Value::Object(object)) {
        // rmcp parses a known method whose params do not fit as a custom request, which it
        // would answer "method not found".
        Ok(message) => {
            if let JsonRpcMessage::Request(JsonRpcRequest { request: ClientRequest::CustomRequest(custom), .. }) =
                &message
                && let Some(problem) = unfit_params(&custom.method, custom.params.clone())
            {
                return Err(format!("Invalid params for '{}': {problem}", custom.method));
            }
            Ok(Checked::Message(Box::new(message)))
        }
        Err(e) => match answer(&e) {
            Some(message) => Err(message),
            None => {
                tracing::debug!(error = %e, "ignored a message that is not an MCP notification or response");
                Ok(Checked::Ignored)
            }
        },
    }
}

/// Why `params` do not fit `method`, when it is an MCP request method.
fn unfit_params(method: &str, params: Option<Value>) -> Option<String> {
    fn problem<T: serde::de::DeserializeOwned>(params: Option<Value>) -> Option<String> {
        let params = params.unwrap_or_else(|| Value::Object(Map::new()));
        Some(
            serde_json::from_value::<T>(params)
                .err()
                .map_or_else(|| "they do not fit the method".into(), |e| e.to_string()),
        )
    }
    match method {
        "initialize" => problem::<model::InitializeRequestParams>(params),
        "tools/call" => problem::<model::CallToolRequestParams>(params),
        "resources/read" => problem::<model::ReadResourceRequestParams>(params),
        "resources/subscribe" => problem::<model::SubscribeRequestParams>(params),
        "resources/unsubscribe" => problem::<model::UnsubscribeRequestParams>(params),
        "prompts/get" => problem::<model::GetPromptRequestParams>(params),
        "completion/complete" => problem::<model::CompleteRequestParams>(params),
        "ping" | "tools/list" | "resources/list" | "resources/templates/list" | "prompts/list" => {
            Some("they do not fit the method (only a \"cursor\" string and \"_meta\" are defined)".into())
        }
        _ => None,
    }
}

/// A JSON-RPC id rmcp can echo exactly: a string, or an integer written without a fraction
/// that fits in 64 signed bits.
fn readable_id(id: &Value) -> bool {
    match id {
        Value::String(_) => true,
        Value::Number(n) => n.is_i64() || n.as_u64().is_some_and(|u| i64::try_from(u).is_ok()),
        _ => false,
    }
}

/// True when arrays and objects nest deeper than `limit` (brackets inside strings don't count).
fn nesting_exceeds(text: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The top-level `"id"` of a message that could not be parsed as a whole (too large, too
/// deep), when it appears, complete, in `text` — which may be cut off anywhere.
pub(crate) fn sniff_id(text: &[u8]) -> Option<Value> {
    let mut i = skip_ws(text, 0);
    if text.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(text, i);
        if text.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(text, i)?;
        let key = &text[i..key_end];
        i = skip_ws(text, key_end);
        if text.get(i) != Some(&b':') {
            return None;
        }
        i = skip_ws(text, i + 1);
        let value_end = value_end(text, i)?;
        if key == b"\"id\"" {
            let id: Value = serde_json::from_slice(&text[i..value_end]).ok()?;
            return readable_id(&id).then_some(id);
        }
        i = skip_ws(text, value_end);
        if text.get(i) != Some(&b',') {
            return None;
        }
        i += 1;
    }
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while text.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// Index just past the string starting at `start` (a `"`).
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut escaped = false;
    for (offset, &b) in text.get(start + 1..)?.iter().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' => escaped = true,
            b'"' => return Some(start + 1 + offset + 1),
            _ => {}
        }
    }
    None
}

/// Index just past the JSON value starting at `start`; `None` when it is cut off.
fn value_end(text: &[u8], start: usize) -> Option<usize> {
    match text.get(start)? {
        b'"' => string_end(text, start),
        b'{' | b'[' => {
            let (mut depth, mut i) = (0usize, start);
            while i < text.len() {
                match text[i] {
                    b'"' => {
                        i = string_end(text, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let len = text[start..].iter().position(|b| matches!(b, b',' | b'}' | b']') || b.is_ascii_whitespace())?;
            Some(start + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Value {
        match parse(text.as_bytes()) {
            Err(answer) => answer,
            Ok(Parsed::Single(v)) => match check(v) {
                Checked::Answer(a) => a,
                other => panic!("no answer for {text}: {other:?}"),
            },
            Ok(Parsed::Batch(_)) => panic!("a batch: {text}"),
        }
    }

    fn code_and_id(text: &str) -> (i64, Value) {
        let a = answer(text);
        (a["error"]["code"].as_i64().unwrap(), a["id"].clone())
    }

    #[test]
    fn text_that_is_not_json_is_a_parse_error_with_a_null_id() {
        for text in ["hello", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}{}", "NaN", "\0\0\0", "{\"a\":"] {
            assert_eq!(code_and_id(text), (PARSE_ERROR, Value::Null), "{text:?}");
        }
        assert_eq!(code_and_id("{\"s\":\"\u{fffd}\"}x").0, PARSE_ERROR);
        let invalid_utf8 = parse(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}").unwrap_err();
        assert_eq!(invalid_utf8["error"]["code"], PARSE_ERROR);
    }

    #[test]
    fn json_that_is_not_a_request_is_invalid_with_the_id_when_readable() {
        let cases = [
            (r#"{"id":7,"method":"ping"}"#, json!(7)),
            (r#"{"jsonrpc":"1.0","id":"a","method":"ping"}"#, json!("a")),
            (r#"{"jsonrpc":"2.0","id":8,"method":5}"#, json!(8)),
            (r#"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#, Value::Null),
            (r#"{"jsonrpc":"2.0","id":9,"method":"ping","params":"x"}"#, json!(9)),
            (r#"{"jsonrpc":"2.0","id":10}"#, json!(10)),
            ("42", Value::Null),
            ("[]", Value::Null),
        ];
        for (text, id) in cases {
            assert_eq!(code_and_id(text), (INVALID_REQUEST, id), "{text}");
        }
    }

    #[test]
    fn params_that_do_not_fit_the_method_are_invalid_params_with_the_id() {
        let (code, id) = code_and_id(r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"nome":"x"}}"#);
        assert_eq!((code, id), (INVALID_PARAMS, json!(3)));
        let a = answer(r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":["x"]}"#);
        assert!(a["error"]["message"].as_str().unwrap().contains("named params"), "{a}");
    }

    #[test]
    fn valid_messages_pass_and_notifications_are_never_answered() {
        let Ok(Parsed::Single(v)) = parse(br#"{"jsonrpc":"2.0","id":"x","method":"ping"}"#) else { panic!() };
        assert!(matches!(check(v), Checked::Message(_)));
        let Ok(Parsed::Single(v)) = parse(br#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#) else {
            panic!()
        };
        assert!(!matches!(check(v), Checked::Answer(_)), "a notification is never answered");
    }

    #[test]
    fn the_quick_envelope_check_passes_only_what_the_full_checks_pass() {
        let full_checks_pass = |text: &str| match parse(text.as_bytes()) {
            Ok(Parsed::Single(v)) => envelope_problem(&v).is_none(),
            _ => false,
        };
        let deep = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{}{}}}"#, "[".repeat(70), "]".repeat(70));
        let plainly_valid = [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":"a","method":"ping"}"#,
            r#"{"method":"notifications/initialized","jsonrpc":"2.0"}"#,
            r#" {"jsonrpc":"2.0","id":-7,"method":"m","params":[1],"extra":true} "#,
        ];
        let look_closer = [
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#,
            r#"{"jsonrpc":null,"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":null}"#,
            r#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1e3,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":99999999999999999999,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0 ","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2\u002e0","id":1,"method":"ping"}"#,
            r#"{"jsonrpc":2.0,"id":1,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":"x"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"} x"#,
            "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
            r#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            "not json",
            &deep,
        ];
        for text in plainly_valid {
            assert!(plainly_valid_request(text.as_bytes()), "{text}");
            assert!(full_checks_pass(text), "{text}");
        }
        for text in look_closer {
            assert!(!plainly_valid_request(text.as_bytes()), "{text}");
            assert!(plainly_valid_message(text.as_bytes()).is_none(), "{text}");
        }
        // The typed quick path hands on exactly what the full checks would, or leaves it to them.
        let typed_too = [
            plainly_valid[0],
            plainly_valid[1],
            plainly_valid[2],
            r#"{"jsonrpc":"2.0","id":3,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/whatever","params":{"a":1}}"#,
        ];
        for text in typed_too {
            let quick = plainly_valid_message(text.as_bytes()).expect(text);
            let Ok(Parsed::Single(value)) = parse(text.as_bytes()) else { panic!("{text}") };
            let Checked::Message(full) = check(value) else { panic!("{text}") };
            assert_eq!(serde_json::to_value(&quick).unwrap(), serde_json::to_value(&*full).unwrap(), "{text}");
        }
        let full_checks_answer = [
            plainly_valid[3],
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":5,"method":"initialize","params":{"protocolVersion":7}}"#,
        ];
        for text in full_checks_answer {
            assert!(plainly_valid_message(text.as_bytes()).is_none(), "{text}");
        }
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":5,"method":"ping","params":{{"a":{}{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert_eq!(code_and_id(&deep), (INVALID_REQUEST, json!(5)));
        assert_eq!(code_and_id(&"[".repeat(1_000_000)), (INVALID_REQUEST, Value::Null));
        assert!(!nesting_exceeds(
            br#"{"s":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}"#,
            8
        ));
    }

    #[test]
    fn ids_are_sniffed_from_the_start_of_a_cut_off_message() {
        assert_eq!(sniff_id(br#"{"jsonrpc":"2.0","id":12,"method":"tools/call","params":{"argu"#), Some(json!(12)));
        assert_eq!(sniff_id(br#" { "method" : "x", "params":{"a":[1,{"id":3}]}, "id" : "r-1" , "#), Some(json!("r-1")));
        assert_eq!(sniff_id(br#"{"jsonrpc":"2.0","params":{"content":"xxxxx"#), None);
        assert_eq!(sniff_id(br#"{"id":1"#), None, "a number cut off may be longer");
        assert_eq!(sniff_id(br#"{"id":{"a":1},"#), None);
        assert_eq!(sniff_id(b"[1,2"), None);
    }

    #[test]
    fn batches_follow_the_negotiated_version() {
        assert!(refuse_batch(Some("2025-03-26")).is_none());
        assert!(refuse_batch(Some("2024-11-05")).is_none());
        assert_eq!(refuse_batch(Some("2025-06-18")).unwrap()["error"]["code"], INVALID_REQUEST);
        assert!(refuse_batch(None).is_some());
    }
}
