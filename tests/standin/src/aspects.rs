//! Aspects (docs/ivcap-wire.md §8): `GET /1/aspects` with the `entity`, `schema` (`%` prefix),
//! `content-path` (PostgreSQL JSONPath, `content @? path`), `at-time`, `include-content` and
//! `order-direction` filters; `GET /1/aspects/{id}`, where retracted aspects stay readable;
//! `POST`/`PUT /1/aspects` (JSON object bodies stored verbatim, 415 for other content types,
//! PUT 424 "found N matches." when more than one aspect is live and 403 when none is, as
//! the platform refuses a PUT with nothing to replace); `DELETE /1/aspects/{id}` → 204,
//! setting `valid-to` and `retracter`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::filter::like_match;
use crate::paging::{envelope, list_params, select};
use crate::{AppState, invalid_parameter, not_found, now, origin, self_link};

/// A stored aspect. Times are RFC 3339 UTC with microseconds, so they order as text.
#[derive(Debug, Clone)]
pub struct AspectRec {
    pub id: String,
    pub entity: String,
    pub schema: String,
    pub content: Value,
    pub valid_from: String,
    pub valid_to: Option<String>,
    pub asserter: String,
    pub retracter: Option<String>,
    pub replaces: Option<String>,
    pub policy: String,
}

impl AspectRec {
    /// A live aspect asserted now.
    pub fn new(entity: &str, schema: &str, content: Value) -> Self {
        AspectRec {
            id: format!("urn:ivcap:aspect:{}", uuid::Uuid::new_v4()),
            entity: entity.to_string(),
            schema: schema.to_string(),
            content,
            valid_from: now(),
            valid_to: None,
            asserter: "urn:ivcap:principal:00000000-0000-0000-0000-000000000001".into(),
            retracter: None,
            replaces: None,
            policy: "urn:ivcap:policy:ivcap.open.metadata".into(),
        }
    }

    /// Valid at `t` (RFC 3339 UTC)?
    pub fn valid_at(&self, t: &str) -> bool {
        self.valid_from.as_str() <= t && self.valid_to.as_deref().is_none_or(|to| t < to)
    }

    fn record(&self, origin: &str) -> Value {
        let mut v = json!({
            "id": self.id, "entity": self.entity, "schema": self.schema, "content": self.content,
            "content-type": "application/json", "valid-from": self.valid_from,
            "asserter": self.asserter, "account": "urn:ivcap:account:00000000-0000-0000-0000-000000000001",
            "policy": self.policy, "links": self_link(&format!("{origin}/1/aspects/{}", self.id)),
        });
        for (key, value) in [("valid-to", &self.valid_to), ("retracter", &self.retracter), ("replaces", &self.replaces)]
        {
            if let Some(value) = value {
                v[key] = json!(value);
            }
        }
        v
    }
}

/// The principal the stand-in's writes are made by.
pub const PRINCIPAL: &str = "urn:ivcap:principal:00000000-0000-0000-0000-000000000001";

impl crate::StandIn {
    /// Seeds an aspect asserted at `valid_from` (RFC 3339 UTC with microseconds), live.
    pub fn add_aspect(&self, entity: &str, schema: &str, content: Value, valid_from: &str) -> String {
        let mut rec = AspectRec::new(entity, schema, content);
        rec.valid_from = valid_from.to_string();
        let id = rec.id.clone();
        self.with_data(|d| d.aspects.push(rec));
        id
    }

    /// The stored aspect with this id.
    pub fn aspect(&self, id: &str) -> Option<AspectRec> {
        self.with_data(|d| d.aspects.iter().find(|a| a.id == id).cloned())
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/1/aspects", get(list).post(create).put(update))
        .route("/1/aspects/{id}", get(read).delete(retract))
}

/// Checks a POST/PUT and makes the record it asks for (not yet stored).
fn new_record(headers: &HeaderMap, query: Option<&str>, body: &Bytes) -> Result<AspectRec, Response> {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some("application/json") {
        return Err(crate::error(415, &format!("cannot handle '{content_type}'")));
    }
    let params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes()).into_owned().collect();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let content: Value = serde_json::from_slice(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| crate::error(400, "Having problem with some of the supplied information"))?;
    let entity = get("entity").ok_or_else(|| crate::invalid_parameter("entity", "missing required parameter", ""))?;
    let schema = get("schema")
        .or_else(|| content.get("$schema").and_then(Value::as_str).map(str::to_string))
        .ok_or_else(|| crate::invalid_parameter("schema", "missing required parameter", ""))?;
    let mut rec = AspectRec::new(&entity, &schema, content);
    if let Some(policy) = get("policy") {
        if !policy.starts_with("urn:ivcap:policy:") {
            return Err(crate::invalid_parameter("policy", "not a policy URN", &policy));
        }
        rec.policy = policy;
    }
    Ok(rec)
}

async fn create(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let rec = match new_record(&headers, q.as_deref(), &body) {
        Ok(rec) => rec,
        Err(e) => return e,
    };
    let id = rec.id.clone();
    s.data().aspects.push(rec);
    axum::Json(json!({"id": id})).into_response()
}

async fn update(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let mut rec = match new_record(&headers, q.as_deref(), &body) {
        Ok(rec) => rec,
        Err(e) => return e,
    };
    let mut data = s.data();
    let t = now();
    let live: Vec<usize> = data
        .aspects
        .iter()
        .enumerate()
        .filter(|(_, a)| a.entity == rec.entity && a.schema == rec.schema && a.valid_at(&t))
        .map(|(i, _)| i)
        .collect();
    match live.as_slice() {
        [] => crate::error(403, "not authorised for method 'add'"),
        [one] => {
            let Some(old) = data.aspects.get_mut(*one) else { return crate::error(500, "lost the live aspect") };
            old.valid_to = Some(t.clone());
            old.retracter = Some(PRINCIPAL.into());
            rec.replaces = Some(old.id.clone());
            rec.valid_from = t;
            let id = rec.id.clone();
            data.aspects.push(rec);
            axum::Json(json!({"id": id})).into_response()
        }
        many => crate::error(424, &format!("found {} matches.", many.len())),
    }
}

async fn retract(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    let mut data = s.data();
    let Some(a) = data.aspects.iter_mut().find(|a| a.id == id) else { return not_found(&id) };
    if a.valid_to.is_none() {
        a.valid_to = Some(now());
        a.retracter = Some(PRINCIPAL.into());
    }
    StatusCode::NO_CONTENT.into_response()
}

/// An `at-time` value as RFC 3339 UTC with microseconds, comparable as text.
pub(crate) fn normalise_time(t: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

/// What `filter` and `order-by` of `GET /1/aspects` name (docs/ivcap-wire.md §8.4).
const FILTER_FIELDS: &[&str] = &["entity", "schema", "policy", "created_by", "replaces", "valid_from", "valid_to"];
const ORDER_FIELDS: &[&str] = &[
    "entity",
    "schema",
    "content",
    "policy",
    "account",
    "created_by",
    "retracted_by",
    "replaces",
    "valid_from",
    "valid_to",
];

impl AspectRec {
    /// A field as `filter` and `order-by` name it.
    fn field(&self, name: &str) -> Option<String> {
        match name {
            "entity" => Some(self.entity.clone()),
            "schema" => Some(self.schema.clone()),
            "content" => Some(self.content.to_string()),
            "policy" => Some(self.policy.clone()),
            "created_by" => Some(self.asserter.clone()),
            "retracted_by" => self.retracter.clone(),
            "replaces" => self.replaces.clone(),
            "valid_from" => Some(self.valid_from.clone()),
            "valid_to" => self.valid_to.clone(),
            _ => None,
        }
    }
}

async fn list(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let lp = match list_params(q.as_deref()) {
        Ok(lp) => lp,
        Err(e) => return e,
    };
    let at = match lp.get("at-time") {
        None => now(),
        Some(t) => match normalise_time(t) {
            Some(t) => t,
            None => return crate::invalid_parameter("at-time", "cannot parse date", t),
        },
    };
    let include_content = lp.get("include-content") == Some("true");
    let path = match lp.get("content-path").map(|p| (p, sql_json_path::JsonPath::new(p))) {
        None => None,
        Some((_, Ok(path))) => Some(path),
        Some((p, Err(e))) => {
            return crate::invalid_parameter("content-path", &format!("cannot parse JSONPath: {e}"), p);
        }
    };
    let mut hits: Vec<AspectRec> = s
        .data()
        .aspects
        .iter()
        .filter(|a| a.valid_at(&at))
        .filter(|a| lp.get("entity").is_none_or(|e| a.entity == e))
        .filter(|a| lp.get("schema").is_none_or(|p| like_match(p, &a.schema, false)))
        .filter(|a| path.as_ref().is_none_or(|p| p.exists(&a.content).unwrap_or(false)))
        .cloned()
        .collect();
    let desc = match lp.get("order-direction").map(str::to_ascii_uppercase).as_deref() {
        None | Some("DESC") => true,
        Some("ASC") => false,
        Some(_) => {
            return invalid_parameter(
                "order-direction",
                "must be ASC or DESC",
                lp.get("order-direction").unwrap_or(""),
            );
        }
    };
    // Ties by id in the same direction, so pages are stable.
    hits.sort_by(|a, b| if desc { b.id.cmp(&a.id) } else { a.id.cmp(&b.id) });
    let order_by = lp.get("order-by").unwrap_or("valid_from").to_string();
    let mut lp = lp;
    if !lp.params.iter().any(|(k, _)| k == "order-by") {
        lp.params.push(("order-by".into(), order_by));
    }
    let hits = match select(hits, &lp, FILTER_FIELDS, ORDER_FIELDS, desc, AspectRec::field) {
        Ok(hits) => hits,
        Err(e) => return e,
    };
    let origin = origin(&headers);
    let items = hits
        .iter()
        .map(|a| {
            let mut item = json!({
                "id": a.id, "entity": a.entity, "schema": a.schema,
                "content-type": "application/json", "valid-from": a.valid_from,
            });
            if let Some(to) = &a.valid_to {
                item["valid-to"] = json!(to);
            }
            if include_content {
                item["content"] = a.content.clone();
            }
            item
        })
        .collect();
    let mut body = envelope(items, &lp, &origin, "/1/aspects", Some(at));
    if let Some(p) = lp.get("content-path") {
        body["aspect-path"] = json!(p);
    }
    for key in ["entity", "schema"] {
        if let Some(v) = lp.get(key) {
            body[key] = json!(v);
        }
    }
    axum::Json(body).into_response()
}

async fn read(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match s.data().aspects.iter().find(|a| a.id == id) {
        Some(a) => axum::Json(a.record(&origin(&headers))).into_response(),
        None => not_found(&id),
    }
}
