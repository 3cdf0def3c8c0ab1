//! MCP over stdin/stdout: one client, one session, ended by stdin EOF or a signal.
//!
//! The framing is ours, in front of rmcp (served through [`StdioTransport`]): a bounded line
//! reader that skips a line over `--max-message-size` without buffering it, and the
//! [`jsonrpc`](super::jsonrpc) checks, so every line gets exactly one answer. Requests hold
//! their size from a shared byte budget until they are answered, so pipelined large calls
//! wait to be read instead of piling up in memory.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, RequestId, ServerJsonRpcMessage};
use rmcp::service::{RoleServer, ServerInitializeError};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::jsonrpc::{self, Checked, Parsed};
use crate::server::IvcapMcp;

/// Bytes of an oversized line kept to find its `id`.
const ID_PREFIX: usize = 4096;

/// Bytes of requests in flight (read, not yet answered) beyond which reading waits, unless
/// `--max-message-size` is larger (one message of the largest allowed size always fits). A
/// request holds a few times its size while it is served (text, parsed value, the work).
const IN_FLIGHT_BYTES: usize = 8 << 20;

/// Serves `server` on stdio until stdin closes or `signal` resolves.
pub(super) async fn serve(
    server: IvcapMcp,
    max_message_size: usize,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    serve_on(server, tokio::io::stdin(), tokio::io::stdout(), max_message_size, signal).await
}

async fn serve_on(
    server: IvcapMcp,
    input: impl tokio::io::AsyncRead + Send + Unpin + 'static,
    output: impl AsyncWrite + Send + Unpin + 'static,
    max_message_size: usize,
    signal: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let stdout = Stdout(Arc::new(tokio::sync::Mutex::new(Box::new(output))));
    let (inbound, inbound_rx) = mpsc::channel::<ClientJsonRpcMessage>(1);
    let shared = Shared {
        budget: Arc::new(Semaphore::new(IN_FLIGHT_BYTES.max(max_message_size))),
        pending: Arc::default(),
        protocol_version: Arc::default(),
        batches: Arc::default(),
    };
    let reader = Reader {
        lines: BufReader::with_capacity(64 << 10, input),
        max_message_size,
        inbound,
        stdout: stdout.clone(),
        shared: shared.clone(),
    };
    let reading = tokio::spawn(reader.run());
    let transport = StdioTransport { inbound: inbound_rx, stdout, shared };
    // A client that goes away (stdin EOF) or a signal before the handshake is a normal end,
    // not an error: launchers probe servers that way, and a user who started us at a terminal
    // ends us with Ctrl-D or Ctrl-C. A handshake that breaks otherwise is reported.
    let cancel = tokio_util::sync::CancellationToken::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        signal.await;
        tracing::info!("signal received; exiting");
        on_signal.cancel();
    });
    let served = async {
        let running = match server.serve_with_ct(transport, cancel).await {
            Ok(running) => running,
            Err(ServerInitializeError::ConnectionClosed(_) | ServerInitializeError::Cancelled) => {
                tracing::info!("no MCP client before stdin closed or a signal arrived; exiting");
                return Ok(());
            }
            Err(e) => return Err(format!("MCP handshake failed: {e}")),
        };
        running.waiting().await.map_err(|e| format!("server stopped: {e}"))?;
        Ok::<(), String>(())
    }
    .await;
    // Every answer was written when rmcp's send returned; the reader may sit in a blocking
    // read that only EOF ends, so it is left behind.
    reading.abort();
    served
}

/// State the reader and rmcp's side of the transport share.
#[derive(Clone)]
struct Shared {
    /// Bytes of unanswered requests; see [`IN_FLIGHT_BYTES`].
    budget: Arc<Semaphore>,
    /// The budget each unanswered request holds, by id.
    pending: Arc<Mutex<HashMap<RequestId, OwnedSemaphorePermit>>>,
    /// The version the `initialize` answer named: batches depend on it.
    protocol_version: Arc<Mutex<Option<String>>>,
    /// Batches whose requests are not all answered yet.
    batches: Arc<Mutex<Batches>>,
}

/// JSON-RPC 2.0 §6: the answers to a batch go out together, as one array, once every request
/// in it is answered; a batch of notifications only gets no answer at all.
#[derive(Default)]
struct Batches {
    next: u64,
    /// The open batch each request belongs to.
    by_request: HashMap<RequestId, u64>,
    open: HashMap<u64, OpenBatch>,
}

struct OpenBatch {
    unanswered: usize,
    /// Each answer as its serialised JSON.
    answers: Vec<Vec<u8>>,
}

impl Batches {
    /// Opens a batch of `requests` with the `answers` already known; `None` when nothing
    /// is left to wait for (the answers then go out at once).
    fn open(&mut self, requests: HashSet<RequestId>, answers: Vec<Vec<u8>>) -> Option<Vec<Vec<u8>>> {
        if requests.is_empty() {
            return Some(answers);
        }
        let key = self.next;
        self.next += 1;
        let unanswered = requests.len();
        self.by_request.extend(requests.into_iter().map(|id| (id, key)));
        self.open.insert(key, OpenBatch { unanswered, answers });
        None
    }

    /// Takes the answer to `id` if it belongs to a batch: `Some(Some(all))` when that was the
    /// batch's last, `Some(None)` while others are outstanding, `None` for a lone request.
    fn answer(&mut self, id: &RequestId, answer: &[u8]) -> Option<Option<Vec<Vec<u8>>>> {
        let key = self.by_request.remove(id)?;
        let batch = self.open.get_mut(&key)?;
        batch.answers.push(answer.to_vec());
        batch.unanswered -= 1;
        if batch.unanswered > 0 {
            return Some(None);
        }
        Some(self.open.remove(&key).map(|b| b.answers))
    }
}

/// One JSON array of answers already serialised, without parsing them again.
fn json_array(answers: &[Vec<u8>]) -> Vec<u8> {
    let mut array = b"[".to_vec();
    array.extend(answers.join(&b","[..]));
    array.push(b']');
    array
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// rmcp's end: messages the reader checked come in; answers are written to stdout by the
/// task that sends them.
struct StdioTransport {
    inbound: mpsc::Receiver<ClientJsonRpcMessage>,
    stdout: Stdout,
    shared: Shared,
}

impl rmcp::transport::Transport<RoleServer> for StdioTransport {
    type Error = std::io::Error;

    fn send(&mut self, item: ServerJsonRpcMessage) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let answered = match &item {
            JsonRpcMessage::Response(r) => Some(r.id.clone()),
            JsonRpcMessage::Error(e) => e.id.clone(),
            _ => None,
        };
        let mut line = serialise(&item);
        if let (Some(id), Ok(bytes)) = (&answered, &line) {
            match lock(&self.shared.batches).answer(id, bytes) {
                None => {}
                Some(None) => {
                    lock(&self.shared.pending).remove(id);
                    return futures::future::Either::Left(std::future::ready(Ok(())));
                }
                Some(Some(answers)) => line = Ok(json_array(&answers)),
            }
        }
        if let Ok(line) = &line
            && matches!(item, JsonRpcMessage::Response(_))
        {
            let mut version = lock(&self.shared.protocol_version);
            if version.is_none() {
                *version = negotiated_version(line);
            }
        }
        if let Some(id) = answered {
            lock(&self.shared.pending).remove(&id);
        }
        let stdout = self.stdout.clone();
        futures::future::Either::Right(async move { stdout.write_line(line?).await })
    }

    fn receive(&mut self) -> impl Future<Output = Option<ClientJsonRpcMessage>> + Send {
        self.inbound.recv()
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.inbound.close();
        Ok(())
    }
}

/// One message as a line's bytes; an error answer always carries an `id` (`null` when unknown).
fn serialise(item: &ServerJsonRpcMessage) -> std::io::Result<Vec<u8>> {
    match item {
        JsonRpcMessage::Error(e) if e.id.is_none() => {
            let mut value = serde_json::to_value(item)?;
            if let Value::Object(object) = &mut value {
                object.insert("id".into(), Value::Null);
            }
            Ok(serde_json::to_vec(&value)?)
        }
        _ => Ok(serde_json::to_vec(item)?),
    }
}

/// `result.protocolVersion` of an `initialize` answer.
fn negotiated_version(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        result: Initialised,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Initialised {
        protocol_version: String,
    }
    serde_json::from_slice::<Answer>(line).ok().map(|a| a.result.protocol_version)
}

/// stdout, shared by rmcp's side and the reader. Each line is written whole and flushed by
/// the task that has it, not handed to a writer task: that hop cost every answer a wake-up
/// of another thread (measured with aspects_local: the commit that made it has the numbers).
#[derive(Clone)]
struct Stdout(Arc<tokio::sync::Mutex<Box<dyn AsyncWrite + Send + Unpin>>>);

impl Stdout {
    async fn write_line(&self, mut line: Vec<u8>) -> std::io::Result<()> {
        line.push(b'\n');
        let mut out = self.0.lock().await;
        out.write_all(&line).await?;
        out.flush().await
    }
}

/// One line of input.
enum Line {
    /// A whole line (without its newline), within the limit.
    Complete,
    /// Longer than the limit: its first bytes, and its length.
    Oversized { prefix: Vec<u8>, len: usize },
    /// End of input.
    Eof,
}

/// Reads stdin line by line, answers what is not a valid message, hands the rest to rmcp.
struct Reader<R> {
    lines: BufReader<R>,
    max_message_size: usize,
    inbound: mpsc::Sender<ClientJsonRpcMessage>,
    stdout: Stdout,
    shared: Shared,
}

impl<R: tokio::io::AsyncRead + Unpin> Reader<R> {
    async fn run(mut self) {
        let mut line = Vec::new();
        loop {
            let read = read_line(&mut self.lines, &mut line, self.max_message_size).await;
            let outcome = match read {
                Ok(Line::Eof) => return,
                Ok(Line::Complete) => self.handle(&mut line).await,
                Ok(Line::Oversized { prefix, len }) => {
                    tracing::warn!(bytes = len, limit = self.max_message_size, "refused an oversized message");
                    self.answer(oversized(&prefix, len, self.max_message_size)).await
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot read stdin");
                    return;
                }
            };
            release(&mut line);
            if outcome.is_err() {
                return;
            }
        }
    }

    /// `Err` when rmcp or stdout has gone.
    async fn handle(&mut self, line: &mut Vec<u8>) -> Result<(), ()> {
        let text = line.strip_suffix(b"\r").unwrap_or(line);
        if text.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let size = text.len();
        if let Some(message) = jsonrpc::plainly_valid_message(text) {
            release(line);
            return self.deliver(message, size).await;
        }
        let parsed = jsonrpc::parse(text);
        // The text is not needed once parsed: free it before the message is served.
        release(line);
        match parsed {
            Err(answer) => self.answer(answer).await,
            Ok(Parsed::Single(value)) => match jsonrpc::check(value) {
                Checked::Answer(answer) => self.answer(answer).await,
                Checked::Ignored => Ok(()),
                Checked::Message(message) => self.deliver(*message, size).await,
            },
            Ok(Parsed::Batch(items)) => {
                let refusal = jsonrpc::refuse_batch(lock(&self.shared.protocol_version).as_deref());
                match refusal {
                    Some(answer) => self.answer(answer).await,
                    None => self.handle_batch(items, size).await,
                }
            }
        }
    }

    /// Checks every element first, so that the batch is opened with all its request ids
    /// before rmcp can answer any of them.
    async fn handle_batch(&mut self, items: Vec<Value>, size: usize) -> Result<(), ()> {
        let cost = size / items.len();
        let mut answers = Vec::new();
        let mut messages = Vec::new();
        let mut requests = HashSet::new();
        for item in items {
            match jsonrpc::check(item) {
                Checked::Answer(answer) => answers.push(answer),
                Checked::Ignored => {}
                Checked::Message(message) => {
                    if let JsonRpcMessage::Request(request) = &*message {
                        // Two requests with one id could not be told apart in the answer.
                        if !requests.insert(request.id.clone()) {
                            let id = serde_json::to_value(&request.id).ok();
                            answers.push(jsonrpc::error_response(
                                id.as_ref(),
                                jsonrpc::INVALID_REQUEST,
                                "Invalid Request: this id is used by an earlier request in the same batch",
                            ));
                            continue;
                        }
                    }
                    messages.push(*message);
                }
            }
        }
        let answers = answers.iter().map(serde_json::to_vec).collect::<Result<Vec<_>, _>>().map_err(|_| ())?;
        let ready = lock(&self.shared.batches).open(requests, answers);
        if let Some(ready) = ready
            && !ready.is_empty()
        {
            self.stdout.write_line(json_array(&ready)).await.map_err(|_| ())?;
        }
        for message in messages {
            self.deliver(message, cost).await?;
        }
        Ok(())
    }

    /// Hands a message to rmcp; a request first takes `cost` bytes of the in-flight budget.
    async fn deliver(&mut self, message: ClientJsonRpcMessage, cost: usize) -> Result<(), ()> {
        if let JsonRpcMessage::Request(request) = &message {
            let permits = u32::try_from(cost.min(IN_FLIGHT_BYTES.max(self.max_message_size))).unwrap_or(u32::MAX);
            let permit = self.shared.budget.clone().acquire_many_owned(permits).await.map_err(|_| ())?;
            lock(&self.shared.pending).insert(request.id.clone(), permit);
        }
        self.inbound.send(message).await.map_err(|_| ())
    }

    async fn answer(&mut self, answer: Value) -> Result<(), ()> {
        let line = serde_json::to_vec(&answer).map_err(|_| ())?;
        self.stdout.write_line(line).await.map_err(|_| ())
    }
}

/// Empties `line` and gives back a large message's buffer.
fn release(line: &mut Vec<u8>) {
    line.clear();
    line.shrink_to(64 << 10);
}

/// The answer to a message over the limit.
fn oversized(prefix: &[u8], len: usize, limit: usize) -> Value {
    let message = format!(
        "Invalid Request: message of more than {limit} bytes ({} MiB, --max-message-size); it was skipped. \
         Send large data as a file (upload_artifact with path), or restart the server with a larger \
         --max-message-size",
        limit >> 20
    );
    tracing::debug!(bytes = len, "skipped an oversized line");
    jsonrpc::error_response(jsonrpc::sniff_id(prefix).as_ref(), jsonrpc::INVALID_REQUEST, &message)
}

/// Reads one line into `line` (cleared first). A line longer than `max` is read to its end
/// but only its first [`ID_PREFIX`] bytes are kept.
async fn read_line(input: &mut (impl AsyncBufRead + Unpin), line: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    line.clear();
    let mut len = 0usize;
    let mut oversized = false;
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            // A last line without a newline still counts.
            return Ok(match (len, oversized) {
                (0, _) => Line::Eof,
                (_, false) => Line::Complete,
                (_, true) => Line::Oversized { prefix: std::mem::take(line), len },
            });
        }
        let newline = chunk.iter().position(|&b| b == b'\n');
        let part = &chunk[..newline.unwrap_or(chunk.len())];
        len += part.len();
        if !oversized && len > max {
            oversized = true;
            line.truncate(ID_PREFIX);
        }
        if oversized {
            let room = ID_PREFIX.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
        } else {
            // Grow by doubling, but never past the limit (an 8 MiB line in 8 MiB, not 16).
            if line.capacity() < len {
                line.reserve_exact(len.max(line.capacity() * 2).min(max) - line.len());
            }
            line.extend_from_slice(part);
        }
        let consumed = newline.map_or(chunk.len(), |i| i + 1);
        input.consume(consumed);
        if newline.is_some() {
            return Ok(if oversized { Line::Oversized { prefix: std::mem::take(line), len } } else { Line::Complete });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn oversized_lines_are_skipped_keeping_only_a_prefix() {
        let mut input = Vec::new();
        input.extend_from_slice(br#"{"id":3,"x":""#);
        input.extend(std::iter::repeat_n(b'a', 100_000));
        input.extend_from_slice(b"\"}\nshort\nlast");
        let mut reader = BufReader::with_capacity(1024, &input[..]);
        let mut line = Vec::new();
        match read_line(&mut reader, &mut line, 10_000).await.unwrap() {
            Line::Oversized { prefix, len } => {
                assert_eq!(len, 100_015);
                assert_eq!(prefix.len(), ID_PREFIX);
                assert_eq!(jsonrpc::sniff_id(&prefix), Some(serde_json::json!(3)));
            }
            _ => panic!("not oversized"),
        }
        assert!(line.capacity() <= 10_000 + 1024, "never buffered the whole line");
        assert!(matches!(read_line(&mut reader, &mut line, 10_000).await.unwrap(), Line::Complete));
        assert_eq!(line, b"short");
        assert!(matches!(read_line(&mut reader, &mut line, 10_000).await.unwrap(), Line::Complete));
        assert_eq!(line, b"last");
        assert!(matches!(read_line(&mut reader, &mut line, 10_000).await.unwrap(), Line::Eof));
    }

    #[test]
    fn error_answers_without_an_id_get_a_null_one() {
        let item: ServerJsonRpcMessage =
            ServerJsonRpcMessage::error(rmcp::model::ErrorData::invalid_request("x", None), None);
        let v: Value = serde_json::from_slice(&serialise(&item).unwrap()).unwrap();
        assert_eq!(v.get("id"), Some(&Value::Null));
    }

    #[test]
    fn the_negotiated_version_is_read_from_the_initialize_answer() {
        let line = br#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-03-26","capabilities":{}}}"#;
        assert_eq!(negotiated_version(line).as_deref(), Some("2025-03-26"));
        assert_eq!(negotiated_version(br#"{"jsonrpc":"2.0","id":2,"result":{}}"#), None);
    }
}
