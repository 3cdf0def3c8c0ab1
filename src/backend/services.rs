//! Services: discovery and the request schema of one service.

use serde_json::{Value, json};

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
    /// Anything worth saying about it in a list (a local service that is not running).
    pub note: Option<String>,
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
    /// The JSON Schema of a job request, as published (not yet normalised), or built from
    /// `parameters` when the service has no tool definition.
    pub request_schema: Option<Value>,
    /// The service's declared parameters (empty for tool services).
    pub parameters: Vec<ServiceParameter>,
    /// Why `request_schema` is missing, or anything else worth saying.
    pub note: Option<String>,
}

/// One declared service parameter (the platform's `ParameterDefT`), as the Python SDK reads it.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ServiceParameter {
    pub name: String,
    /// `string`, `int`, `float`, `bool`, `option`, `artifact` or `collection`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub optional: Option<bool>,
    /// A default, as text on the wire.
    #[serde(default)]
    pub default: Option<String>,
    /// The choices of an `option` parameter.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub options: Vec<ParameterOption>,
}

/// One choice of an `option` parameter.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ParameterOption {
    pub value: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// A list that may come as `null` (the platform sends that for "none").
pub(crate) fn null_as_empty<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> std::result::Result<Vec<T>, D::Error> {
    use serde::Deserialize;
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

impl ServiceParameter {
    /// Optional as the SDK decides it: marked optional, or given a default.
    pub fn is_optional(&self) -> bool {
        self.optional.unwrap_or(false) || self.default.is_some()
    }

    /// The JSON Schema of this parameter's value.
    fn schema(&self) -> Value {
        let kind = self.kind.as_deref().unwrap_or("string").to_ascii_lowercase();
        let mut schema = match kind.as_str() {
            "int" => json!({"type": "integer"}),
            "float" => json!({"type": "number"}),
            "bool" => json!({"type": "boolean"}),
            "option" if !self.options.is_empty() => {
                json!({"type": "string", "enum": self.options.iter().map(|o| o.value.clone()).collect::<Vec<_>>()})
            }
            // The SDK accepts an artifact URN or a URL (docs/ivcap-wire.md, service parameters).
            "artifact" => json!({"type": "string", "pattern": "^(urn:ivcap:artifact:|https?://|urn:https?://)"}),
            "collection" => json!({"type": "string", "pattern": "^urn:"}),
            _ => json!({"type": "string"}),
        };
        let mut description = self.description.clone().unwrap_or_default();
        if matches!(kind.as_str(), "artifact" | "collection") {
            let what = if kind == "artifact" { "an artifact URN (urn:ivcap:artifact:…)" } else { "a collection URN" };
            description = if description.is_empty() { what.to_string() } else { format!("{description} ({what})") };
        }
        let choices: Vec<String> =
            self.options.iter().filter_map(|o| o.description.as_ref().map(|d| format!("{}: {d}", o.value))).collect();
        if kind == "option" && !choices.is_empty() {
            description = format!("{description} [{}]", choices.join("; ")).trim().to_string();
        }
        if !description.is_empty() {
            schema["description"] = Value::String(description);
        }
        if let Some(default) = &self.default {
            schema["default"] = typed_default(&kind, default);
        }
        schema
    }
}

/// A default (text on the wire) as a value of the parameter's type, when it parses as one.
fn typed_default(kind: &str, text: &str) -> Value {
    let parsed = match kind {
        "int" => text.trim().parse::<i64>().ok().map(Value::from),
        "float" => text.trim().parse::<f64>().ok().and_then(|f| serde_json::Number::from_f64(f).map(Value::Number)),
        "bool" => text.trim().parse::<bool>().ok().map(Value::Bool),
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(text.to_string()))
}

/// The request schema a service's parameters describe: one property per parameter, the ones
/// that are not optional required. `None` without parameters.
pub fn schema_from_parameters(parameters: &[ServiceParameter]) -> Option<Value> {
    if parameters.is_empty() {
        return None;
    }
    let properties: serde_json::Map<String, Value> = parameters.iter().map(|p| (p.name.clone(), p.schema())).collect();
    let required: Vec<&str> = parameters.iter().filter(|p| !p.is_optional()).map(|p| p.name.as_str()).collect();
    Some(json!({"type": "object", "properties": properties, "required": required}))
}

/// The request schema of a service: its tool definition's, else the one its parameters
/// describe; and the note to give with it.
pub fn request_schema_of(fn_schema: Option<Value>, parameters: &[ServiceParameter]) -> (Option<Value>, Option<String>) {
    match fn_schema {
        Some(schema) => (Some(schema), None),
        None => match schema_from_parameters(parameters) {
            Some(schema) => (Some(schema), Some(FROM_PARAMETERS.to_string())),
            None => (None, Some(NO_TOOL_DEFINITION.to_string())),
        },
    }
}

/// Note for a request schema built from the service's parameters.
pub const FROM_PARAMETERS: &str = "request_schema is built from the service's parameters (it has no tool definition)";

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

    fn parameters(v: Value) -> Vec<ServiceParameter> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parameters_build_a_request_schema_the_way_the_sdk_reads_them() {
        let params = parameters(json!([
            {"name": "msg", "type": "string", "description": "Text"},
            {"name": "times", "type": "int", "default": "3"},
            {"name": "mode", "type": "option", "options": [{"value": "fast", "description": "quick"}, {"value": "slow"}]},
            {"name": "image", "type": "artifact", "optional": true},
            {"name": "set", "type": "collection", "options": null},
        ]));
        let schema = schema_from_parameters(&params).unwrap();
        assert_eq!(schema["required"], json!(["msg", "mode", "set"]));
        assert_eq!(schema["properties"]["times"], json!({"type": "integer", "default": 3}));
        assert_eq!(schema["properties"]["mode"]["enum"], json!(["fast", "slow"]));
        assert!(schema["properties"]["mode"]["description"].as_str().unwrap().contains("fast: quick"));
        assert_eq!(schema["properties"]["image"]["type"], "string");
        let validator = crate::validation::Validator::new(&schema).unwrap();
        assert!(validator.is_valid(&json!({"msg": "hi", "mode": "fast", "set": "urn:ivcap:collection:1"})));
        assert!(!validator.is_valid(&json!({"msg": "hi", "mode": "medium", "set": "urn:x"})));
        assert!(!validator.is_valid(&json!({"msg": "hi", "mode": "fast", "set": "x", "image": "not-a-urn"})));
        assert!(!validator.is_valid(&json!({"msg": "hi", "mode": "fast", "set": "urn:x", "times": "3"})));
        assert_eq!(schema_from_parameters(&[]), None);
    }

    #[test]
    fn a_tool_definition_wins_over_parameters() {
        let params = parameters(json!([{"name": "a", "type": "bool"}]));
        let (schema, note) = request_schema_of(Some(json!({"type": "object"})), &params);
        assert_eq!((schema, note), (Some(json!({"type": "object"})), None));
        let (schema, note) = request_schema_of(None, &params);
        assert_eq!(schema.unwrap()["properties"]["a"]["type"], "boolean");
        assert_eq!(note.as_deref(), Some(FROM_PARAMETERS));
        assert_eq!(request_schema_of(None, &[]).1.as_deref(), Some(NO_TOOL_DEFINITION));
    }

    #[test]
    fn fn_schema_falls_back_to_hyphenated_key() {
        let c = serde_json::json!({"fn-schema": {"type": "object"}});
        assert_eq!(fn_schema(&c), Some(serde_json::json!({"type": "object"})));
        assert_eq!(fn_schema(&serde_json::json!({"fn_schema": "x"})), None);
    }
}
