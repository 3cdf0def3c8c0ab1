//! Aspects (ivcap-api.md §8): `GET /1/aspects` with the `entity`, `schema` (`%` prefix),
//! `at-time`, `include-content` and `order-direction` filters, and `GET /1/aspects/{id}`,
//! where retracted aspects stay readable.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::paging::{envelope, like, list_params};
use crate::{AppState, lock, not_found, now, origin, self_link};

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

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/1/aspects", get(list)).route("/1/aspects/{id}", get(read))
}

/// An `at-time` value as RFC 3339 UTC with microseconds, comparable as text.
pub(crate) fn normalise_time(t: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc).to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
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
    let mut hits: Vec<AspectRec> = lock(&s.data)
        .aspects
        .iter()
        .filter(|a| a.valid_at(&at))
        .filter(|a| lp.get("entity").is_none_or(|e| a.entity == e))
        .filter(|a| lp.get("schema").is_none_or(|p| like(p, &a.schema, false)))
        .cloned()
        .collect();
    hits.sort_by(|a, b| a.valid_from.cmp(&b.valid_from).then(a.id.cmp(&b.id)));
    if lp.get("order-direction").is_none_or(|d| d.eq_ignore_ascii_case("DESC")) {
        hits.reverse();
    }
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
    for key in ["entity", "schema"] {
        if let Some(v) = lp.get(key) {
            body[key] = json!(v);
        }
    }
    axum::Json(body).into_response()
}

async fn read(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    match lock(&s.data).aspects.iter().find(|a| a.id == id) {
        Some(a) => axum::Json(a.record(&origin(&headers))).into_response(),
        None => not_found(&id),
    }
}
