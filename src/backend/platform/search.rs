//! Search on the platform: `POST /1/search` (docs/ivcap-wire.md §9). The query text is the body,
//! sent as `application/datalog+mangle`; `at-time`, `limit` and `page` are query
//! parameters. The platform's 400/415/422 messages reach the caller unchanged; what can be
//! checked without it (SQL or prose instead of Mangle, a documented predicate with the wrong
//! number of arguments) is refused before sending (`backend::search::check_for_platform`).

use chrono::{DateTime, Utc};
use reqwest::{Method, header};
use serde_json::Value;

use super::{ListRt, PlatformBackend, Target, decode, page_query};
use crate::backend::search::check_for_platform;
use crate::backend::{Page, PageRequest, SearchBackend};
use crate::error::{Missing, Result};

/// The media type of a Mangle query.
const MANGLE: &str = "application/datalog+mangle";

#[async_trait::async_trait]
impl SearchBackend for PlatformBackend {
    async fn search(&self, query: &str, at_time: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<Value>> {
        check_for_platform(query)?;
        let filters: Vec<(&str, String)> = at_time.map(|at| ("at-time", crate::time::format(at))).into_iter().collect();
        let (params, sent) = page_query(page, &filters)?;
        let body = query.to_string();
        // A search changes nothing, so retrying it is safe.
        let resp = self
            .send(Target { kind: Missing::Resource, id: "/1/search" }, true, &|| {
                self.request(Method::POST, "/1/search")
                    .query(&params)
                    .header(header::CONTENT_TYPE, MANGLE)
                    .header(header::ACCEPT, "application/json")
                    .body(body.clone())
            })
            .await?;
        let list: ListRt<Value> = decode(resp).await?;
        list.into_page(sent.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::platform::fixtures;

    #[test]
    fn a_captured_search_answer_decodes() {
        let list: ListRt<Value> = fixtures::decode("search/list.json");
        let page = list.into_page(None).unwrap();
        assert_eq!((page.items, page.next_page), (vec![Value::from("result-1"), Value::from("result-2")], None));
    }
}
