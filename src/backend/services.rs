//! Services: discovery and the request schema of one service.

use serde_json::Value;

use super::listing::ListOptions;
use super::{Page, PageRequest};
use crate::error::Result;

wire_status! {
    /// Whether a service takes jobs, as the platform says.
    ServiceStatus {
        Active = "active",
        Inactive = "inactive",
        Error = "error",
        Unknown = "unknown",
    }
}

/// A service as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceSummary {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
}

impl ServiceSummary {
    /// One field, as filters name it ([`crate::backend::listing::SERVICE_FIELDS`]).
    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "id" => Some(self.id.clone()),
            "name" => self.name.clone(),
            "description" => self.description.clone(),
            _ => None,
        }
    }
}

/// One service in full.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDetail {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub status: ServiceStatus,
    /// The JSON Schema of a job request, as published (not yet normalised).
    pub request_schema: Option<Value>,
    /// Why `request_schema` is missing, or anything else worth saying.
    pub note: Option<String>,
}

/// A service that can be offered as an MCP tool: one with a request schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolService {
    /// Service URN.
    pub id: String,
    /// The service's name (what `--service-tools` selects by).
    pub name: String,
    /// What it does: the tool definition's description, else the service's.
    pub description: Option<String>,
    /// The JSON Schema of a job request, as published (not yet normalised).
    pub request_schema: Value,
}

/// Service discovery.
#[async_trait::async_trait]
pub trait ServicesBackend {
    /// Lists services, optionally only those whose name contains `search` and that match
    /// `options`.
    async fn list_services(
        &self,
        search: Option<&str>,
        options: &ListOptions,
        page: &PageRequest,
    ) -> Result<Page<ServiceSummary>>;

    /// One service by URN or exact name. An unknown name is `NotFound` with candidates in
    /// its id; a name shared by several services is `Ambiguous`.
    async fn get_service(&self, service: &str) -> Result<ServiceDetail>;

    /// Every service with a request schema, sorted by name then URN.
    async fn tool_services(&self) -> Result<Vec<ToolService>>;

    /// How often [`Self::tool_services`] is worth re-reading to notice a change sooner than
    /// `--service-tools-refresh`: a local folder is cheap to look at, the platform is not.
    fn tool_services_watch(&self) -> Option<std::time::Duration> {
        None
    }
}

/// `fn_schema` of an ai-tool aspect's content, or the CLI's `fn-schema`.
pub fn fn_schema(content: &Value) -> Option<Value> {
    content.get("fn_schema").or_else(|| content.get("fn-schema")).filter(|v| v.is_object()).cloned()
}

/// "name (similar: a [urn], b [urn])".
pub fn with_candidates(name: &str, similar: &[ServiceSummary]) -> String {
    if similar.is_empty() {
        format!("'{name}' (no service has a similar name)")
    } else {
        format!("'{name}' (similar: {})", describe(similar))
    }
}

/// "a [urn], b [urn]".
pub fn describe(services: &[ServiceSummary]) -> String {
    services
        .iter()
        .map(|s| format!("{} [{}]", s.name.as_deref().unwrap_or("(no name)"), s.id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Note for a service whose request schema is unknown.
pub const NO_TOOL_DEFINITION: &str = "this service has no tool definition (aspect urn:sd-core:schema.ai-tool.1), so its request schema is unknown; \
     consult the service's documentation before submitting jobs";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fn_schema_falls_back_to_hyphenated_key() {
        let c = serde_json::json!({"fn-schema": {"type": "object"}});
        assert_eq!(fn_schema(&c), Some(serde_json::json!({"type": "object"})));
        assert_eq!(fn_schema(&serde_json::json!({"fn_schema": "x"})), None);
    }
}
