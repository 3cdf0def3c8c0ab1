//! List envelopes and paging (docs/ivcap-wire.md §3, §14 rule 4): `limit` 1..50, opaque URL-safe
//! tokens that carry the original filters, `next` = `<base><path>?page=<token>`, absent on
//! the last page.

use std::cmp::Ordering;

use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::filter::{Expr, order};
use crate::{error, invalid_parameter};

/// The effective parameters of a list request.
#[derive(Debug, Clone)]
pub(crate) struct ListParams {
    pub limit: usize,
    pub offset: usize,
    /// The filters: from the query, or from the token when `page` was given.
    pub params: Vec<(String, String)>,
}

impl ListParams {
    /// A filter parameter; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

/// Parses `limit` and `page` (or the filters) from a raw query string.
pub(crate) fn list_params(raw_query: Option<&str>) -> Result<ListParams, Response> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes()).into_owned().collect();
    let limit = match pairs.iter().find(|(k, _)| k == "limit") {
        None => 10,
        Some((_, v)) => match v.parse::<usize>() {
            Ok(n) if (1..=50).contains(&n) => n,
            _ => return Err(invalid_parameter("limit", "limit must be an integer from 1 to 50", v)),
        },
    };
    if let Some((_, token)) = pairs.iter().find(|(k, _)| k == "page") {
        let decoded = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .ok_or_else(|| error(400, "Having problem with some of the supplied information"))?;
        let offset = decoded["o"].as_u64().unwrap_or(0) as usize;
        let params = url::form_urlencoded::parse(decoded["q"].as_str().unwrap_or("").as_bytes()).into_owned().collect();
        return Ok(ListParams { limit, offset, params });
    }
    let params = pairs.into_iter().filter(|(k, _)| k != "limit" && k != "page").collect();
    Ok(ListParams { limit, offset: 0, params })
}

/// `{items, links, at-time?}` for one page of `all`.
pub(crate) fn envelope(all: Vec<Value>, lp: &ListParams, origin: &str, path: &str, at_time: Option<String>) -> Value {
    let end = (lp.offset + lp.limit).min(all.len());
    let items: Vec<Value> = all.get(lp.offset.min(end)..end).map(<[Value]>::to_vec).unwrap_or_default();
    let self_href = format!("{origin}{path}");
    let mut links = vec![
        json!({"href": self_href, "rel": "self", "type": "application/json"}),
        json!({"href": self_href, "rel": "first", "type": "application/json"}),
    ];
    if end < all.len() {
        let q = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(lp.params.iter()).finish();
        let token = URL_SAFE_NO_PAD.encode(json!({"o": end, "q": q}).to_string());
        links.push(json!({"href": format!("{origin}{path}?page={token}"), "rel": "next", "type": "application/json"}));
    }
    let mut out = json!({"items": items, "links": links});
    if let Some(t) = at_time {
        out["at-time"] = Value::String(t);
    }
    out
}

/// The platform's `filter` and `order-by` (docs/ivcap-wire.md §3): the items of `all` the
/// filter keeps, sorted by the comma-separated `order-by` fields (stable, missing values
/// last), descending when `desc`. A filter that does not parse or names a field outside
/// `filter_fields`, or an `order-by` outside `order_fields`, is a 422 naming the parameter.
pub(crate) fn select<T>(
    all: Vec<T>,
    lp: &ListParams,
    filter_fields: &[&str],
    order_fields: &[&str],
    desc: bool,
    get: impl Fn(&T, &str) -> Option<String>,
) -> Result<Vec<T>, Response> {
    let expr = match lp.get("filter") {
        None => None,
        Some(f) => match Expr::parse(f).and_then(|e| e.check_fields(filter_fields).map(|()| e)) {
            Ok(e) => Some(e),
            Err(why) => return Err(invalid_parameter("filter", &why, f)),
        },
    };
    let mut hits: Vec<T> =
        all.into_iter().filter(|t| expr.as_ref().is_none_or(|e| e.matches(&|f| get(t, f)))).collect();
    if let Some(order_by) = lp.get("order-by") {
        let keys: Vec<&str> = order_by.split(',').map(str::trim).collect();
        if let Some(bad) = keys.iter().find(|k| !order_fields.contains(k)) {
            return Err(invalid_parameter("order-by", &format!("cannot order by '{bad}'"), order_by));
        }
        hits.sort_by(|a, b| {
            let o = keys.iter().fold(Ordering::Equal, |o, k| {
                o.then_with(|| match (get(a, k), get(b, k)) {
                    (Some(x), Some(y)) => order(&x, &y),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => Ordering::Equal,
                })
            });
            if desc { o.reverse() } else { o }
        });
    }
    Ok(hits)
}

/// `order-desc` of services, artifacts and jobs: default true (the spec's).
pub(crate) fn order_desc(lp: &ListParams) -> bool {
    lp.get("order-desc").is_none_or(|v| v == "true")
}

/// A JSON list item's field as filter text.
pub(crate) fn json_field(item: &Value, field: &str) -> Option<String> {
    match item.get(field)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}
