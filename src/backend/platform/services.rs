//! Services on the platform: `GET /1/services2`, `GET /1/services2/{id}` and the service's
//! `urn:sd-core:schema.ai-tool.1` aspect, which carries its request schema (docs/ivcap-wire.md §5).

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::aspects::AspectContentRt;
use super::{PlatformBackend, Target, enc};
use futures::StreamExt;

use crate::backend::listing::{ListOptions, name_filter};
use crate::backend::services::{describe, fn_schema, request_schema_of, schema_from_parameters, with_candidates};
use crate::backend::{
    Page, PageRequest, ServiceDetail, ServiceParameter, ServiceStatus, ServiceSummary, ServicesBackend, ToolService,
};
use crate::error::{Error, Missing, Result};
use crate::urn::is_urn;

/// The aspect schema of a service's tool definition.
pub(crate) const AI_TOOL_SCHEMA: &str = "urn:sd-core:schema.ai-tool.1";

/// How many service records `tool_services` reads at once for their parameters.
const PARAMETER_READS: usize = 4;

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
    /// `ParameterDefT` entries, read one by one so one odd entry does not hide the rest.
    #[serde(default, deserialize_with = "crate::backend::services::null_as_empty")]
    parameters: Vec<Value>,
}

impl ServiceStatusRt {
    fn parameters(&self) -> Vec<ServiceParameter> {
        self.parameters
            .iter()
            .filter_map(|p| match serde_json::from_value(p.clone()) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!(service = %self.id, error = %e, "skipping a service parameter that does not parse");
                    None
                }
            })
            .collect()
    }
}

impl From<ServiceListItemRt> for ServiceSummary {
    fn from(s: ServiceListItemRt) -> Self {
        ServiceSummary { id: s.id, name: s.name, description: s.description, note: None }
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
        let parameters = record.parameters();
        let (request_schema, note) = request_schema_of(self.request_schema(&record.id).await?, &parameters);
        Ok(ServiceDetail {
            id: record.id,
            name: record.name,
            description: record.description,
            status: record.status.as_deref().map_or(ServiceStatus::Unknown, ServiceStatus::parse),
            request_schema,
            parameters,
            note,
        })
    }

    /// Two paged lists: every live ai-tool aspect (newest first, so the first per service
    /// wins, as in `get_service`) and every service; then the record of each service without
    /// a tool definition, for a request schema its parameters describe.
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
        let (described, undescribed): (Vec<_>, Vec<_>) = services
            .into_iter()
            .filter(|s| s.name.as_deref().is_some_and(|n| !n.trim().is_empty()))
            .partition(|s| definitions.contains_key(&s.id));
        let mut tools: Vec<ToolService> = described
            .into_iter()
            .filter_map(|s| {
                let (request_schema, description) = definitions.remove(&s.id)?;
                let description = description.filter(|d| !d.trim().is_empty()).or(s.description);
                Some(ToolService { id: s.id, name: s.name?, description, request_schema })
            })
            .collect();
        // A service without a tool definition is a tool when its parameters describe a request;
        // only its own record lists them.
        let from_parameters: Vec<Option<ToolService>> = futures::stream::iter(undescribed)
            .map(|s| async move {
                let path = format!("/1/services2/{}", enc(&s.id));
                let record: ServiceStatusRt =
                    match self.get_json(&path, &[], Target { kind: Missing::Service, id: &s.id }).await {
                        Ok(record) => record,
                        Err(e) => {
                            tracing::debug!(service = %s.id, error = %e, "cannot read a service for its parameters");
                            return None;
                        }
                    };
                let request_schema = schema_from_parameters(&record.parameters())?;
                Some(ToolService { id: s.id, name: s.name?, description: s.description, request_schema })
            })
            .buffer_unordered(PARAMETER_READS)
            .collect()
            .await;
        tools.extend(from_parameters.into_iter().flatten());
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
        let with_parameters: ServiceStatusRt = fixtures::decode("services/read-parameters.json");
        let parameters = with_parameters.parameters();
        assert_eq!(parameters.len(), 5, "every entry read, options or not");
        let schema = schema_from_parameters(&parameters).unwrap();
        assert_eq!(schema["required"], serde_json::json!(["msg"]));
        assert_eq!(schema["properties"]["width"]["default"], 640);
        assert_eq!(schema["properties"]["format"]["enum"], serde_json::json!(["png", "jpeg"]));
        assert!(read.parameters().is_empty(), "a tool service has none");
        let tools: ListRt<super::super::aspects::AspectContentRt> = fixtures::decode("services/ai-tool-aspects.json");
        let content = tools.items.into_iter().next().and_then(|a| a.content).unwrap();
        assert_eq!(fn_schema(&content).unwrap()["required"], serde_json::json!(["msg"]));
    }
}
