//! Aspects on the platform (docs/ivcap-wire.md §8): `POST`/`PUT /1/aspects` with `$schema` and
//! `$entity` injected into the body the way the Python SDK does, `GET /1/aspects[/{id}]`,
//! and `DELETE /1/aspects/{id}` followed by a re-read.
//!
//! `update_aspect` lists the live `(entity, schema)` aspects first: with none it POSTs (the
//! platform may refuse a PUT that has nothing to replace), otherwise it PUTs, and a 424
//! "not unique" answer becomes an error naming the live aspects and the fix. Only reads and
//! the retraction (idempotent) are retried on transient failures; a create never is.

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{PlatformBackend, Target, decode, enc};
use crate::backend::aspects::{
    Aspect, AspectQuery, AspectsBackend, NewAspect, Updated, already_retracted, aspect_urn, not_unique,
};
use crate::backend::{Page, PageRequest};
use crate::error::{Error, Missing, Result};

/// `AspectIDRT`: the answer to POST and PUT.
#[derive(Debug, Deserialize)]
struct AspectIdRt {
    id: String,
}

/// `AspectRT` and the items of `AspectListRT` (which lack `replaces` and `policy`), the fields we use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct AspectRt {
    id: String,
    entity: String,
    schema: String,
    #[serde(default)]
    content: Option<Value>,
    valid_from: DateTime<Utc>,
    #[serde(default)]
    valid_to: Option<DateTime<Utc>>,
    #[serde(default)]
    asserter: Option<String>,
    #[serde(default)]
    replaces: Option<String>,
    #[serde(default)]
    policy: Option<String>,
}

impl From<AspectRt> for Aspect {
    fn from(a: AspectRt) -> Self {
        Aspect {
            id: a.id,
            entity: a.entity,
            schema: a.schema,
            content: a.content,
            valid_from: a.valid_from,
            valid_to: a.valid_to,
            asserter: a.asserter,
            replaces: a.replaces,
            policy: a.policy,
        }
    }
}

/// An aspect list item, for its entity and content only.
#[derive(Debug, Deserialize)]
pub(super) struct AspectContentRt {
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub content: Option<Value>,
}

impl PlatformBackend {
    /// The contents of the newest `limit` aspects of `entity` under `schema`: how the
    /// Datafabric's records of services (tool definitions) and jobs are read.
    pub(super) async fn aspect_contents(
        &self,
        entity: &str,
        schema: &str,
        limit: u32,
        target: Target<'_>,
    ) -> Result<Vec<Value>> {
        let query = [
            ("entity", entity.to_string()),
            ("schema", schema.to_string()),
            ("include-content", "true".to_string()),
            ("limit", limit.to_string()),
            ("order-by", "valid_from".to_string()),
            ("order-direction", "DESC".to_string()),
        ];
        let list: super::ListRt<AspectContentRt> = self.get_json("/1/aspects", &query, target).await?;
        Ok(list.items.into_iter().filter_map(|a| a.content).collect())
    }
}

/// The body the SDK sends: `{"$schema", "$entity", …content}`, the caller's keys winning.
fn body_of(new: &NewAspect) -> Value {
    let mut body = Map::new();
    body.insert("$schema".into(), Value::String(new.schema.clone()));
    body.insert("$entity".into(), Value::String(new.entity.clone()));
    if let Value::Object(content) = &new.content {
        body.extend(content.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    Value::Object(body)
}

/// `entity`, `schema` and `policy` query parameters of POST/PUT.
fn write_query(new: &NewAspect) -> Vec<(&'static str, String)> {
    let mut q = vec![("entity", new.entity.clone()), ("schema", new.schema.clone())];
    if let Some(p) = &new.policy {
        q.push(("policy", p.clone()));
    }
    q
}

/// The filters of `GET /1/aspects` for `query`.
fn list_query(query: &AspectQuery) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(e) = &query.entity {
        q.push(("entity", e.clone()));
    }
    if let Some(s) = &query.schema {
        q.push(("schema", s.clone()));
    }
    if let Some(p) = &query.content_path {
        q.push(("content-path", p.clone()));
    }
    if let Some(t) = query.at_time {
        q.push(("at-time", crate::time::format(t)));
    }
    q.push(("include-content", query.include_content.to_string()));
    if let Some(f) = &query.filter {
        q.push(("filter", f.clone()));
    }
    q.push(("order-by", query.order_by.clone().unwrap_or_else(|| "valid_from".into())));
    q.push(("order-direction", query.order.as_str().into()));
    q
}

impl PlatformBackend {
    /// POST or PUT `new`; returns the new id.
    async fn write_aspect(&self, method: Method, new: &NewAspect) -> Result<String> {
        let body = body_of(new);
        let query = write_query(new);
        let target = Target { kind: Missing::Entity, id: &new.entity };
        let resp =
            self.send(target, false, &|| self.request(method.clone(), "/1/aspects").query(&query).json(&body)).await?;
        let created: AspectIdRt = decode(resp).await?;
        Ok(created.id)
    }
}

#[async_trait::async_trait]
impl AspectsBackend for PlatformBackend {
    async fn add_aspect(&self, new: &NewAspect) -> Result<String> {
        self.write_aspect(Method::POST, new).await
    }

    async fn update_aspect(&self, new: &NewAspect) -> Result<Updated> {
        let live_query = AspectQuery {
            entity: Some(new.entity.clone()),
            schema: Some(new.schema.clone()),
            ..AspectQuery::default()
        };
        let live = self.list_aspects(&live_query, &PageRequest::first(50)).await?.items;
        if live.is_empty() {
            return Ok(Updated { id: self.write_aspect(Method::POST, new).await?, replaced: None });
        }
        match self.write_aspect(Method::PUT, new).await {
            Ok(id) => Ok(Updated { id, replaced: live.first().filter(|_| live.len() == 1).map(|a| a.id.clone()) }),
            Err(Error::Platform { status: 424, message }) => Err(not_unique(new, &live, &message)),
            Err(e) => Err(e),
        }
    }

    async fn get_aspect(&self, id: &str) -> Result<Aspect> {
        let id = aspect_urn(id)?;
        let path = format!("/1/aspects/{}", enc(&id));
        let record: AspectRt = self.get_json(&path, &[], Target { kind: Missing::Aspect, id: &id }).await?;
        Ok(record.into())
    }

    async fn list_aspects(&self, query: &AspectQuery, page: &PageRequest) -> Result<Page<Aspect>> {
        let filters = list_query(query);
        let found: Page<AspectRt> =
            self.get_list("/1/aspects", &filters, page, Target { kind: Missing::Resource, id: "/1/aspects" }).await?;
        Ok(found.map(Into::into))
    }

    async fn schema_urns(&self, prefix: &str, limit: usize) -> Result<(Vec<String>, bool)> {
        // The platform has no schema listing: one page of the newest matching aspects.
        let pattern = format!("{}%", prefix.replace('%', ""));
        let query = AspectQuery { schema: Some(pattern), ..AspectQuery::default() };
        let page = self.list_aspects(&query, &PageRequest::first(*crate::backend::LIMIT_RANGE.end())).await?;
        let mut names: Vec<String> = page.items.into_iter().map(|a| a.schema).collect();
        names.sort();
        names.dedup();
        let more = names.len() > limit || page.next_page.is_some();
        names.truncate(limit);
        Ok((names, more))
    }

    async fn retract_aspect(&self, id: &str) -> Result<Aspect> {
        let current = self.get_aspect(id).await?;
        if let Some(to) = current.valid_to {
            return Err(already_retracted(&current.id, to));
        }
        let path = format!("/1/aspects/{}", enc(&current.id));
        self.send(Target { kind: Missing::Aspect, id: &current.id }, true, &|| self.request(Method::DELETE, &path))
            .await?;
        // The SDK re-reads after a DELETE; so do we, for the valid_to the platform set.
        self.get_aspect(&current.id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn body_injects_schema_and_entity_and_caller_keys_win() {
        let new =
            NewAspect::new("urn:ex:e1", "urn:ex:schema:s.1", json!({"v": 1, "$schema": "urn:mine:1"}), None).unwrap();
        assert_eq!(body_of(&new), json!({"$schema": "urn:mine:1", "$entity": "urn:ex:e1", "v": 1}));
    }

    #[test]
    fn list_query_sends_the_filters() {
        let q = AspectQuery {
            entity: Some("urn:e:1".into()),
            schema: Some("urn:s:%".into()),
            content_path: Some("$.a ? (@ == 1)".into()),
            at_time: Some("2026-01-01T00:00:00Z".parse().unwrap()),
            include_content: true,
            filter: Some("schema = 'urn:s:1'".into()),
            order_by: Some("entity,valid_to".into()),
            order: crate::backend::aspects::Order::Asc,
        };
        let sent = list_query(&q);
        let get = |k: &str| sent.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("at-time"), Some("2026-01-01T00:00:00Z"));
        assert_eq!(get("content-path"), Some("$.a ? (@ == 1)"));
        assert_eq!(get("include-content"), Some("true"));
        assert_eq!(get("order-direction"), Some("ASC"));
        assert_eq!(get("filter"), Some("schema = 'urn:s:1'"));
        assert_eq!(get("order-by"), Some("entity,valid_to"));
        assert_eq!(get("order-by").map(|_| list_query(&AspectQuery::default())).unwrap()[1].1, "valid_from");
    }

    #[test]
    fn captured_aspect_payloads_decode() {
        use crate::backend::platform::{ListRt, fixtures};
        let read: Aspect = fixtures::decode::<AspectRt>("aspects/read.json").into();
        assert_eq!(read.replaces.as_deref(), Some("urn:ivcap:aspect:0a1b"));
        assert_eq!(read.valid_to.map(crate::time::format).as_deref(), Some("1996-12-20T10:00:00Z"));
        assert!(!read.valid_at(read.valid_to.unwrap()));
        let list: ListRt<AspectRt> = fixtures::decode("aspects/list.json");
        let item = Aspect::from(list.into_page(None).unwrap().items.remove(0));
        assert_eq!((item.schema.as_str(), item.content, item.valid_to), ("urn:test:schema:1", None, None));
        let created: AspectIdRt = fixtures::decode("aspects/create.json");
        assert_eq!(created.id, "urn:ivcap:aspect:9c94ad00-1315-47fe-88e3-e8ed133bbffc");
    }
}
