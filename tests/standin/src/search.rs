//! `POST /1/search` (docs/ivcap-wire.md §9): 415 unless the body is `application/datalog+mangle`,
//! 400 for a query that does not parse (a cheap check: balanced brackets and quotes, and a
//! final `.`), otherwise the canned answers a test registered for that exact query text,
//! paged like every list, with `at-time` echoed. An unregistered query answers no items.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

use crate::paging::{envelope, list_params};
use crate::{AppState, StandIn, error, now, origin};

/// The media type IVCAP requires for a query.
pub const MANGLE: &str = "application/datalog+mangle";

impl StandIn {
    /// Registers the answers `POST /1/search` gives for exactly this query text.
    pub fn add_search_answers(&self, query: &str, items: Vec<Value>) {
        self.with_data(|d| d.searches.push((query.to_string(), items)));
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/1/search", post(search))
}

/// A cheap syntax check: brackets and quotes balance and the text ends with `.`.
fn looks_like_mangle(query: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '(' | '[' | '{' => depth += 1,
                ')' | ']' | '}' => {
                    depth -= 1;
                    if depth < 0 {
                        return false;
                    }
                }
                _ => {}
            },
        }
    }
    depth == 0 && quote.is_none() && query.trim_end().ends_with('.')
}

async fn search(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery, body: Bytes) -> Response {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().map(str::trim) != Some(MANGLE) {
        return error(415, &format!("cannot handle '{content_type}'"));
    }
    let lp = match list_params(q.as_deref()) {
        Ok(lp) => lp,
        Err(e) => return e,
    };
    let Ok(query) = std::str::from_utf8(&body) else { return error(400, "the query is not UTF-8 text") };
    if !looks_like_mangle(query) {
        return error(400, "Having problem with some of the supplied information: cannot parse query");
    }
    if let Some(at) = lp.get("at-time")
        && chrono::DateTime::parse_from_rfc3339(at).is_err()
    {
        return crate::invalid_parameter("at-time", "cannot parse date", at);
    }
    let at_time = lp.get("at-time").map(str::to_string).unwrap_or_else(now);
    let items = s.data().searches.iter().find(|(text, _)| text == query).map(|(_, items)| items.clone());
    axum::Json(envelope(items.unwrap_or_default(), &lp, &origin(&headers), "/1/search", Some(at_time))).into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn cheap_syntax_check() {
        assert!(super::looks_like_mangle(":- p(X, \"a)\")."));
        assert!(!super::looks_like_mangle(":- p(X."));
        assert!(!super::looks_like_mangle(":- p(X)"));
    }
}
