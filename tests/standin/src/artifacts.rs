//! Artifacts (docs/ivcap-wire.md §7, §14): `POST /1/artifacts` reading the §7.1 headers (an
//! `X-Collection` adds a `collection-item.1` membership aspect for the new artifact), the TUS
//! blob at `/1/artifacts/{id}/blob` (`PATCH` with offset checks, `HEAD`, creation `POST`
//! with `Upload-Defer-Length`, `GET` of the bytes), and `GET /1/artifacts[/{id}]`.
//!
//! Status moves `pending → partial → ready` as the offset reaches the declared length. A
//! PATCH body is streamed into the record as it arrives, so a connection dropped mid-chunk
//! ([`StandIn::drop_patch_after`]) or a chunk that fails part-way ([`StandIn::fail_patch_after`])
//! keeps the bytes that got through — exactly the case a client must resume from with `HEAD`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::paging::{envelope, json_field, list_params, order_desc, select};
use crate::{AppState, StandIn, error, filter, not_found, now, origin, self_link};

/// TUS version the stand-in speaks.
const TUS: &str = "1.0.0";

/// How a PATCH with an injected fault ends once it has kept its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchEnd {
    /// The connection closes without an answer.
    Drop,
    /// The server answers with this status (the bytes kept stay stored, as on a platform
    /// whose store failed after a partial write).
    Status(u16),
}

/// A stored artifact.
#[derive(Debug, Clone)]
pub struct ArtifactRec {
    pub id: String,
    pub name: Option<String>,
    pub mime_type: String,
    /// Declared length; `None` while deferred (`X-Content-Length: -1`).
    pub size: Option<u64>,
    /// The bytes received so far.
    pub data: Vec<u8>,
    /// `pending`, `partial` or `ready`.
    pub status: String,
    pub created_at: String,
    pub collection: Option<String>,
    pub policy: String,
}

impl ArtifactRec {
    fn update_status(&mut self) {
        let len = self.data.len() as u64;
        self.status = match self.size {
            Some(size) if len >= size && len > 0 => "ready",
            _ if len > 0 => "partial",
            _ => "pending",
        }
        .into();
    }

    fn record(&self, origin: &str) -> Value {
        let href = format!("{origin}/1/artifacts/{}", self.id);
        let mut v = json!({
            "id": self.id, "status": self.status, "mime-type": self.mime_type, "created-at": self.created_at,
            "data-href": format!("{href}/blob"), "etag": format!("{:08x}", self.data.len()),
            "policy": self.policy, "account": "urn:ivcap:account:00000000-0000-0000-0000-000000000001",
            "links": self_link(&href),
        });
        if let Some(name) = &self.name {
            v["name"] = json!(name);
        }
        if let Some(size) = self.size {
            v["size"] = json!(size);
        }
        v
    }

    fn list_item(&self, origin: &str) -> Value {
        let mut v = json!({
            "id": self.id, "status": self.status, "created-at": self.created_at,
            "href": format!("{origin}/1/artifacts/{}", self.id), "mime-type": self.mime_type,
        });
        if let Some(name) = &self.name {
            v["name"] = json!(name);
        }
        if let Some(size) = self.size {
            v["size"] = json!(size);
        }
        v
    }
}

impl StandIn {
    /// Seeds a complete (`ready`) artifact; returns its URN.
    pub fn add_artifact(&self, name: &str, mime_type: &str, bytes: &[u8]) -> String {
        let id = format!("urn:ivcap:artifact:{}", uuid::Uuid::new_v4());
        let mut rec = ArtifactRec {
            id: id.clone(),
            name: Some(name.to_string()),
            mime_type: mime_type.to_string(),
            size: Some(bytes.len() as u64),
            data: bytes.to_vec(),
            status: String::new(),
            created_at: now(),
            collection: None,
            policy: "urn:ivcap:policy:ivcap.open.artifact".into(),
        };
        rec.update_status();
        self.with_data(|d| d.artifacts.push(rec));
        id
    }

    /// One artifact, as stored.
    pub fn artifact(&self, id: &str) -> Option<ArtifactRec> {
        self.with_data(|d| d.artifacts.iter().find(|a| a.id == id).cloned())
    }

    /// Forgets an artifact (as if made on another deployment).
    pub fn remove_artifact(&self, id: &str) {
        self.with_data(|d| d.artifacts.retain(|a| a.id != id));
    }

    /// The next PATCH keeps the first `bytes` bytes of its body, then drops the connection.
    pub fn drop_patch_after(&self, bytes: u64) {
        self.with_data(|d| d.patch_fault = Some((bytes, PatchEnd::Drop)));
    }

    /// The next PATCH keeps the first `bytes` bytes of its body (0: none), then answers
    /// `status` with IVCAP's JSON error body.
    pub fn fail_patch_after(&self, bytes: u64, status: u16) {
        self.with_data(|d| d.patch_fault = Some((bytes, PatchEnd::Status(status))));
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1/artifacts", post(create).get(list))
        .route("/1/artifacts/{id}", get(read))
        .route("/1/artifacts/{id}/blob", get(blob).head(head).patch(patch).post(create_upload))
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// 412 unless `Tus-Resumable: 1.0.0`.
fn require_tus(headers: &HeaderMap) -> Result<(), Response> {
    if header(headers, "tus-resumable") == Some(TUS) {
        Ok(())
    } else {
        Err((StatusCode::PRECONDITION_FAILED, [("Tus-Resumable", TUS)]).into_response())
    }
}

async fn create(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let bad = || error(400, "Having problem with some of the supplied information");
    let name = match header(&headers, "x-name") {
        None => None,
        Some(b64) => match STANDARD.decode(b64).ok().and_then(|b| String::from_utf8(b).ok()) {
            Some(name) => Some(name),
            None => return bad(),
        },
    };
    let size = match header(&headers, "x-content-length").map(str::parse::<i64>) {
        Some(Ok(-1)) => None,
        Some(Ok(n)) if n >= 0 => Some(n as u64),
        _ => return bad(),
    };
    let collection = header(&headers, "x-collection").map(str::to_string);
    if collection.as_deref().is_some_and(|c| !c.starts_with("urn:")) {
        return bad();
    }
    let policy = header(&headers, "x-policy").unwrap_or("urn:ivcap:policy:ivcap.open.artifact").to_string();
    if !policy.starts_with("urn:ivcap:policy:") {
        return bad();
    }
    let mut rec = ArtifactRec {
        id: format!("urn:ivcap:artifact:{}", uuid::Uuid::new_v4()),
        name,
        mime_type: header(&headers, "x-content-type").unwrap_or("application/octet-stream").to_string(),
        size,
        data: Vec::new(),
        status: String::new(),
        created_at: now(),
        collection,
        policy,
    };
    rec.update_status();
    let origin = origin(&headers);
    let body = rec.record(&origin);
    let location = format!("{origin}/1/artifacts/{}", rec.id);
    let mut data = s.data();
    if let Some(collection) = &rec.collection {
        // X-Collection makes the artifact a member: the membership aspect the SDK's
        // add_item_to_collection would write (docs/ivcap-wire.md §8.1).
        let content = json!({"collection": collection, "item": rec.id});
        data.aspects.push(crate::AspectRec::new(collection, "urn:ivcap:schema:collection-item.1", content));
    }
    data.artifacts.push(rec);
    drop(data);
    (
        StatusCode::CREATED,
        [("Location", location.as_str()), ("Tus-Resumable", TUS), ("Upload-Offset", "0")],
        axum::Json(body),
    )
        .into_response()
}

async fn read(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match s.data().artifacts.iter().find(|a| a.id == id) {
        Some(a) => axum::Json(a.record(&origin(&headers))).into_response(),
        None => not_found(&id),
    }
}

async fn list(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let lp = match list_params(q.as_deref()) {
        Ok(lp) => lp,
        Err(e) => return e,
    };
    let origin = origin(&headers);
    let at = match lp.get("at-time") {
        None => None,
        Some(t) => match crate::aspects::normalise_time(t) {
            Some(t) => Some(t),
            None => return crate::invalid_parameter("at-time", "cannot parse date", t),
        },
    };
    // Newest first (order-desc defaults to true); at an `at-time`, what existed then.
    let items: Vec<Value> = s
        .data()
        .artifacts
        .iter()
        .rev()
        .filter(|a| at.as_deref().is_none_or(|t| filter::order(&a.created_at, t).is_le()))
        .map(|a| a.list_item(&origin))
        .collect();
    const FIELDS: &[&str] = &["id", "name", "mime-type", "size", "status", "created-at"];
    let items = match select(items, &lp, FIELDS, FIELDS, order_desc(&lp), json_field) {
        Ok(items) => items,
        Err(e) => return e,
    };
    axum::Json(envelope(items, &lp, &origin, "/1/artifacts", Some(now()))).into_response()
}

async fn blob(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let Some((mime, data)) =
        s.data().artifacts.iter().find(|a| a.id == id).map(|a| (a.mime_type.clone(), a.data.clone()))
    else {
        return not_found(&id);
    };
    (StatusCode::OK, [("Content-Type", mime)], data).into_response()
}

async fn head(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = require_tus(&headers) {
        return e;
    }
    let Some((offset, size)) = s.data().artifacts.iter().find(|a| a.id == id).map(|a| (a.data.len() as u64, a.size))
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut resp = Response::builder()
        .status(StatusCode::OK)
        .header("Upload-Offset", offset.to_string())
        .header("Tus-Resumable", TUS)
        .header("Cache-Control", "no-store");
    match size {
        Some(size) => resp = resp.header("Upload-Length", size.to_string()),
        None => resp = resp.header("Upload-Defer-Length", "1"),
    }
    resp.body(Body::empty()).unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// TUS creation on the blob: with `Upload-Defer-Length: 1` the length comes later.
async fn create_upload(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(e) = require_tus(&headers) {
        return e;
    }
    let deferred = header(&headers, "upload-defer-length") == Some("1");
    let length = header(&headers, "upload-length").and_then(|v| v.parse::<u64>().ok());
    if !deferred && length.is_none() {
        return error(400, "Upload-Length or Upload-Defer-Length: 1 is required");
    }
    let mut data = s.data();
    let Some(rec) = data.artifacts.iter_mut().find(|a| a.id == id) else {
        return not_found(&id);
    };
    rec.size = length;
    rec.update_status();
    let location = format!("{}/1/artifacts/{}/blob", origin(&headers), rec.id);
    (StatusCode::CREATED, [("Location", location.as_str()), ("Tus-Resumable", TUS)]).into_response()
}

async fn patch(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>, body: Body) -> Response {
    if let Err(e) = require_tus(&headers) {
        return e;
    }
    if header(&headers, "content-type") != Some("application/offset+octet-stream") {
        return error(415, "cannot handle content type: use application/offset+octet-stream");
    }
    let Some(offset) = header(&headers, "upload-offset").and_then(|v| v.parse::<u64>().ok()) else {
        return error(400, "Upload-Offset is required");
    };
    let fault = {
        let mut data = s.data();
        let Some(rec) = data.artifacts.iter_mut().find(|a| a.id == id) else {
            return not_found(&id);
        };
        let current = rec.data.len() as u64;
        if offset != current {
            return error(409, &format!("offset mismatch: Upload-Offset {offset}, but the server has {current}"));
        }
        if let Some(length) = header(&headers, "upload-length").and_then(|v| v.parse::<u64>().ok())
            && rec.size.is_none()
        {
            rec.size = Some(length);
        }
        data.patch_fault.take()
    };
    let mut received = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(piece) = stream.next().await {
        let Ok(mut bytes) = piece else {
            return StatusCode::BAD_REQUEST.into_response();
        };
        let mut end_now = None;
        if let Some((limit, end)) = fault
            && received + bytes.len() as u64 >= limit
        {
            bytes.truncate((limit - received) as usize);
            end_now = Some(end);
        }
        received += bytes.len() as u64;
        {
            let mut data = s.data();
            let Some(rec) = data.artifacts.iter_mut().find(|a| a.id == id) else {
                return not_found(&id);
            };
            if rec.size.is_some_and(|size| rec.data.len() as u64 + bytes.len() as u64 > size) {
                return error(400, "the upload is longer than its declared length");
            }
            rec.data.extend_from_slice(&bytes);
            rec.update_status();
        }
        match end_now {
            // Unwinding the connection task closes the socket without an answer (as the
            // gate does for FaultAction::Drop); the bytes so far are kept.
            Some(PatchEnd::Drop) => std::panic::resume_unwind(Box::new("stand-in: dropped connection mid-PATCH")),
            Some(PatchEnd::Status(status)) => {
                return error(status, &format!("injected {status} after {received} bytes"));
            }
            None => {}
        }
    }
    // A fault past the end of the body still ends the request as asked.
    match fault {
        Some((_, PatchEnd::Status(status))) => return error(status, &format!("injected {status} after the chunk")),
        Some((_, PatchEnd::Drop)) => std::panic::resume_unwind(Box::new("stand-in: dropped connection after PATCH")),
        None => {}
    }
    let offset = s.data().artifacts.iter().find(|a| a.id == id).map_or(0, |a| a.data.len() as u64);
    (StatusCode::NO_CONTENT, [("Upload-Offset", offset.to_string()), ("Tus-Resumable", TUS.to_string())])
        .into_response()
}
