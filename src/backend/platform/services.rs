//! Services on the platform: `GET /1/services2`, `GET /1/services2/{id}` and the service's
//! `urn:sd-core:schema.ai-tool.1` aspect, which carries its request schema (docs/ivcap-wire.md §5).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::aspects::AspectContentRt;
use super::{PlatformBackend, Target, enc};
use crate::backend::listing::{ListOptions, name_filter};
use crate::backend::services::{NO_TOOL_DEFINITION, describe, fn_schema, with_candidates};
use crate::backend::{
    Page, PageRequest, ServiceDetail, ServiceStatus, ServiceSummary, ServicesBackend, ToolService, is_urn,
};
use crate::error::{Error, Missing, Result};

/// The aspect schema of a service's tool definition.
pub(crate) const AI_TOOL_SCHEMA: &str = "urn:sd-core:schema.ai-tool.1";

/// Item of `ServiceListRT`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ServiceListItemRt {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

/// `ServiceStatusRT`, the fields we use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ServiceStatusRt {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl From<ServiceListItemRt> for ServiceSummary {
    fn from(s: ServiceListItemRt) -> Self {
        ServiceSummary { id: s.id, name: s.name, description: s.description }
    }
}

impl PlatformBackend {
    /// Services whose name matches the LIKE `pattern`.
    async fn services_named(&self, pattern: &str, limit: u32) -> Result<Vec<ServiceSummary>> {
        let filters = [("filter", name_filter(pattern)), ("order-desc", "false".into())];
        let page: Page<ServiceListItemRt> = self
            .get_list(
                "/1/services2",
                &filters,
                &PageRequest::first(limit),
                Target { kind: Missing::Service, id: pattern },
            )
            .await?;
        Ok(page.items.into_iter().map(Into::into).collect())
    }

    /// The URN of the service called exactly `name`.
    pub(crate) async fn service_id_by_name(&self, name: &str) -> Result<String> {
        let mut exact: Vec<ServiceSummary> =
            self.services_named(name, 50).await?.into_iter().filter(|s| s.name.as_deref() == Some(name)).collect();
        match exact.len() {
            1 => Ok(exact.remove(0).id),
            0 => {
                let similar = self.services_named(&format!("%{name}%"), 5).await.unwrap_or_default();
                Err(Error::NotFound { kind: Missing::Service, id: with_candidates(name, &similar) })
            }
            _ => Err(Error::Ambiguous { kind: Missing::Service, name: name.to_string(), candidates: describe(&exact) }),
        }
    }

    /// The request schema from the newest ai-tool aspect of `service_id`.
    async fn request_schema(&self, service_id: &str) -> Result<Option<Value>> {
        let target = Target { kind: Missing::Service, id: service_id };
        let contents = self.aspect_contents(service_id, AI_TOOL_SCHEMA, 2, target).await?;
        if contents.len() > 1 {
            tracing::debug!(service_id, "service has several tool definitions; using the newest");
        }
        Ok(contents.into_iter().next().and_then(|c| fn_schema(&c)))
    }
}

impl PlatformBackend {
    /// Every item of the list at `path`, page by page (50 a page).
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, String)],
        target: Target<'_>,
    ) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut page = PageRequest::first(50);
        loop {
            let got: Page<T> = self.get_list(path, filters, &page, target).await?;
            items.extend(got.items);
            match got.next_page {
                Some(next) => page = PageRequest { limit: 50, page: Some(next) },
                None => return Ok(items),
            }
        }
    }
}

#[async_trait::async_trait]
impl ServicesBackend for PlatformBackend {
    async fn list_services(
        &self,
        search: Option<&str>,
        options: &ListOptions,
        page: &PageRequest,
    ) -> Result<Page<ServiceSummary>> {
        let mut options = options.with_name_search(search);
        if options.order_by.is_none() {
            options.order_by = Some("name".into());
        }
        let filters = options.wire();
        let page: Page<ServiceListItemRt> = self
            .get_list("/1/services2", &filters, page, Target { kind: Missing::Resource, id: "/1/services2" })
            .await?;
        Ok(page.map(Into::into))
    }

    async fn get_service(&self, service: &str) -> Result<ServiceDetail> {
        let service = service.trim();
        let id = if is_urn(service) { service.to_string() } else { self.service_id_by_name(service).await? };
        let path = format!("/1/services2/{}", enc(&id));
        let record: ServiceStatusRt = self.get_json(&path, &[], Target { kind: Missing::Service, id: &id }).await?;
        let request_schema = self.request_schema(&record.id).await?;
        let note = request_schema.is_none().then(|| NO_TOOL_DEFINITION.to_string());
        Ok(ServiceDetail {
            id: record.id,
            name: record.name,
            description: record.description,
            status: record.status.as_deref().map_or(ServiceStatus::Unknown, ServiceStatus::parse),
            request_schema,
            note,
        })
    }

    /// Two paged lists, however many services there are: every live ai-tool aspect (newest
    /// first, so the first per service wins, as in `get_service`) and every service.
    async fn tool_services(&self) -> Result<Vec<ToolService>> {
        let aspect_filters = [
            ("schema", AI_TOOL_SCHEMA.to_string()),
            ("include-content", "true".to_string()),
            ("order-by", "valid_from".to_string()),
            ("order-direction", "DESC".to_string()),
        ];
        let aspects: Vec<AspectContentRt> =
            self.all_pages("/1/aspects", &aspect_filters, Target { kind: Missing::Resource, id: "/1/aspects" }).await?;
        let mut definitions: HashMap<String, (Value, Option<String>)> = HashMap::new();
        for aspect in aspects {
            let (Some(entity), Some(content)) = (aspect.entity, aspect.content) else { continue };
            if definitions.contains_key(&entity) {
                continue;
            }
            if let Some(schema) = fn_schema(&content) {
                let description = content.get("description").and_then(Value::as_str).map(str::to_string);
                definitions.insert(entity, (schema, description));
            }
        }
        let filters = [("order-by", "name".to_string()), ("order-desc", "false".to_string())];
        let services: Vec<ServiceListItemRt> =
            self.all_pages("/1/services2", &filters, Target { kind: Missing::Resource, id: "/1/services2" }).await?;
        let mut tools: Vec<ToolService> = services
            .into_iter()
            .filter_map(|s| {
                let (request_schema, description) = definitions.remove(&s.id)?;
                let name = s.name.filter(|n| !n.trim().is_empty())?;
                let description = description.filter(|d| !d.trim().is_empty()).or(s.description);
                Some(ToolService { id: s.id, name, description, request_schema })
            })
            .collect();
        tools.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok(tools)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::platform::{ListRt, fixtures};

    #[test]
    fn name_filters_escape_quotes() {
        assert_eq!(name_filter("O'Brien%"), "name~='O''Brien%'");
    }

    #[test]
    fn captured_service_payloads_decode() {
        let list: ListRt<ServiceListItemRt> = fixtures::decode("services/list.json");
        let page = list.into_page(None).unwrap().map(ServiceSummary::from);
        assert_eq!(page.items[0].id, "urn:ivcap:service:abc");
        assert_eq!(page.items[0].name.as_deref(), Some("svc"));
        assert!(page.next_page.is_some());
        let read: ServiceStatusRt = fixtures::decode("services/read.json");
        assert_eq!(ServiceStatus::parse(read.status.as_deref().unwrap()), ServiceStatus::Active);
        assert_eq!(read.name.as_deref(), Some("Fire risk for Lot2"));
        let tools: ListRt<super::super::aspects::AspectContentRt> = fixtures::decode("services/ai-tool-aspects.json");
        let content = tools.items.into_iter().next().and_then(|a| a.content).unwrap();
        assert_eq!(fn_schema(&content).unwrap()["required"], serde_json::json!(["msg"]));
    }
}
