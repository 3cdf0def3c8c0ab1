//! Search on the platform: `POST /1/search` (ivcap-api.md §9). The query text is the body,
//! sent as `application/datalog+mangle`; `at-time`, `limit` and `page` are query
//! parameters. The platform's 400/415/422 messages reach the caller unchanged.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, header};
use serde::Deserialize;
use serde_json::Value;

use super::{LinkT, PlatformBackend, Target, decode, next_page_token};
use crate::backend::{Page, PageRequest, SearchBackend};
use crate::error::{Missing, Result};

/// The media type of a Mangle query.
const MANGLE: &str = "application/datalog+mangle";

/// `SearchListRT`.
#[derive(Debug, Deserialize)]
struct SearchListRt {
    items: Vec<Value>,
    #[serde(default)]
    links: Vec<LinkT>,
}

#[async_trait::async_trait]
impl SearchBackend for PlatformBackend {
    async fn search(&self, query: &str, at_time: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<Value>> {
        let sent = page.inner_token()?;
        let mut params: Vec<(&str, String)> = vec![("limit", page.limit.to_string())];
        match &sent {
            Some(token) => params.push(("page", token.clone())),
            None => {
                if let Some(at) = at_time {
                    params.push(("at-time", at.to_rfc3339_opts(SecondsFormat::Secs, true)));
                }
            }
        }
        let body = query.to_string();
        // A search changes nothing, so retrying it is safe.
        let resp = self
            .send(Target { kind: Missing::Resource, id: "/1/search" }, true, || {
                self.request(Method::POST, "/1/search")
                    .query(&params)
                    .header(header::CONTENT_TYPE, MANGLE)
                    .header(header::ACCEPT, "application/json")
                    .body(body.clone())
            })
            .await?;
        let list: SearchListRt = decode(resp).await?;
        let next = next_page_token(&list.links)?.filter(|t| Some(t) != sent.as_ref());
        Ok(Page::new(list.items, next.as_deref()))
    }
}
