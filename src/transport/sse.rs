//! The legacy HTTP+SSE transport (MCP 2024-11-05), for older clients and the Go CLI's
//! `ivcap mcp --port`: `GET /sse` opens a session whose first event (`endpoint`) names
//! `/message?sessionId=…`; the client POSTs each JSON-RPC message there (202 Accepted) and
//! reads every answer as an `event: message` on the stream.
//!
//! rmcp no longer ships this transport, so it is built on rmcp's sink/stream transport: one
//! pair of channels per session, served by a clone of the same [`IvcapMcp`] handler as the
//! other transports. A session ends when its stream closes (client gone, or shutdown).
//! Requests are tracked as calls in flight until their answer is on the stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt, stream};
use rmcp::ServiceExt;
use rmcp::model::{ClientJsonRpcMessage, JsonRpcMessage, RequestId, ServerJsonRpcMessage};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::server::IvcapMcp;

/// Messages buffered per direction per session before senders wait.
const CHANNEL: usize = 64;

/// Requests of one session whose answers have not been sent yet.
type Pending = Arc<Mutex<HashMap<RequestId, TaskTrackerToken>>>;

/// One open `/sse` stream.
struct Session {
    inbound: mpsc::Sender<ClientJsonRpcMessage>,
    pending: Pending,
}

#[derive(Clone)]
struct SseState {
    server: IvcapMcp,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Cancelled at shutdown: ends every stream and session.
    streams: CancellationToken,
    calls: TaskTracker,
}

/// `GET /sse` and `POST /message`.
pub(super) fn router(server: IvcapMcp, streams: CancellationToken, calls: TaskTracker) -> Router {
    let state = SseState { server, sessions: Arc::default(), streams, calls };
    Router::new().route("/sse", get(open)).route("/message", post(message)).with_state(state)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes the session and stops its handler when the stream is dropped.
struct Closer {
    id: String,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    session: CancellationToken,
}

impl Drop for Closer {
    fn drop(&mut self) {
        lock(&self.sessions).remove(&self.id);
        self.session.cancel();
        tracing::debug!(session = %self.id, "legacy SSE session closed");
    }
}

async fn open(State(state): State<SseState>) -> Response {
    if state.streams.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable: the server is shutting down").into_response();
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let (to_client, from_server) = mpsc::channel::<ServerJsonRpcMessage>(CHANNEL);
    let (to_server, from_client) = mpsc::channel::<ClientJsonRpcMessage>(CHANNEL);
    let pending: Pending = Arc::default();
    lock(&state.sessions).insert(id.clone(), Session { inbound: to_server, pending: pending.clone() });
    let session = state.streams.child_token();

    let server = state.server.for_session("sse");
    let ct = session.clone();
    tokio::spawn(async move {
        match server.serve_with_ct((to_client, from_client), ct).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::debug!("legacy SSE session ended before its handshake: {e}"),
        }
    });

    let closer = Closer { id: id.clone(), sessions: state.sessions.clone(), session };
    let endpoint = Event::default().event("endpoint").data(format!("/message?sessionId={id}"));
    let messages = from_server.map(move |message| {
        let _open = &closer;
        if let JsonRpcMessage::Response(r) = &message {
            lock(&pending).remove(&r.id);
        } else if let JsonRpcMessage::Error(e) = &message
            && let Some(id) = &e.id
        {
            lock(&pending).remove(id);
        }
        let data = serde_json::to_string(&message).unwrap_or_default();
        Ok::<_, Infallible>(Event::default().event("message").data(data))
    });
    let events =
        stream::once(async move { Ok(endpoint) }).chain(messages).take_until(state.streams.clone().cancelled_owned());
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}

#[derive(serde::Deserialize)]
struct MessageQuery {
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

async fn message(State(state): State<SseState>, Query(query): Query<MessageQuery>, body: Bytes) -> Response {
    let Some(id) = query.session_id else {
        return (
            StatusCode::BAD_REQUEST,
            "Bad Request: missing sessionId; POST to the endpoint named by the first event of GET /sse",
        )
            .into_response();
    };
    let message: ClientJsonRpcMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return (StatusCode::BAD_REQUEST, format!("Bad Request: not a JSON-RPC message for MCP: {e}"))
                .into_response();
        }
    };
    let found = lock(&state.sessions).get(&id).map(|s| (s.inbound.clone(), s.pending.clone()));
    let Some((mut inbound, pending)) = found else {
        return (StatusCode::NOT_FOUND, "Not Found: no such session; open a new one with GET /sse").into_response();
    };
    let request_id = match &message {
        JsonRpcMessage::Request(r) => Some(r.id.clone()),
        _ => None,
    };
    if let Some(rid) = &request_id {
        lock(&pending).insert(rid.clone(), state.calls.token());
    }
    if inbound.send(message).await.is_err() {
        if let Some(rid) = &request_id {
            lock(&pending).remove(rid);
        }
        return (StatusCode::NOT_FOUND, "Not Found: the session has ended; open a new one with GET /sse")
            .into_response();
    }
    StatusCode::ACCEPTED.into_response()
}
