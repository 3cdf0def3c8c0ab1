//! `GET /1/secrets/list` (docs/ivcap-wire.md §10): names and expiry, paging, a name `filter`
//! (a regular-expression-like pattern; `.*` is the wildcard we honour). No `at-time`.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::filter::like_match;
use crate::paging::{envelope, list_params};
use crate::{AppState, origin};

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/1/secrets/list", get(list))
}

async fn list(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let lp = match list_params(q.as_deref()) {
        Ok(lp) => lp,
        Err(e) => return e,
    };
    let pattern = lp.get("filter").map(|f| f.replace(".*", "%"));
    let items = s
        .data()
        .secrets
        .iter()
        .filter(|(name, _)| pattern.as_deref().is_none_or(|p| like_match(p, name, false)))
        .map(|(name, expiry)| json!({"secret-name": name, "expiry-time": expiry}))
        .collect();
    axum::Json(envelope(items, &lp, &origin(&headers), "/1/secrets/list", None)).into_response()
}
