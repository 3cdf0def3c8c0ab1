//! Forms for a job's missing inputs: a service tool, or `submit_job` on a service with a request
//! schema, called without required fields that a form can ask for (flat primitives: string,
//! number, integer, boolean, a string enum) gets a form with exactly those fields, built from
//! the schema (titles, descriptions, defaults, limits, enum choices). When any missing field
//! cannot be asked so, there is no form, and the call answers as before: the validation error
//! listing every violation. Answers are checked by the same validation as any input.

use std::collections::BTreeMap;

use rmcp::model::{ElicitationSchema, JsonObject, PrimitiveSchemaDefinition};
use serde_json::{Map, Value};

use super::service_tools::ServiceTool;
use crate::tools::ToolContext;

/// String formats an elicitation form may carry.
const FORM_FORMATS: [&str; 4] = ["email", "uri", "date", "date-time"];

/// A form for missing inputs.
pub(super) struct Form {
    /// The input keys asked for, in the schema's order.
    pub(super) fields: Vec<String>,
    pub(super) schema: ElicitationSchema,
}

/// The form for what the job call `tool` with `args` is missing, if it is a job call missing
/// only fields a form can ask for.
pub(super) async fn missing(
    context: &ToolContext,
    service_tool: Option<&ServiceTool>,
    tool: &str,
    args: &JsonObject,
) -> Option<Form> {
    match service_tool {
        Some(t) => form(&Value::Object((*t.tool.input_schema).clone()), args),
        None if tool == "submit_job" => {
            let service = args.get("service").and_then(Value::as_str).filter(|s| !s.trim().is_empty())?;
            let input = args.get("input").and_then(Value::as_object)?;
            let detail = context.backend().get_service(service).await.ok()?;
            form(&crate::schema::inline_refs(detail.request_schema.as_ref()?), input)
        }
        None => None,
    }
}

/// The form for the required fields of `schema` (refs inlined) that `input` lacks; `None` when
/// nothing is missing or something missing cannot be asked by a form.
pub(super) fn form(schema: &Value, input: &JsonObject) -> Option<Form> {
    let properties = schema.get("properties").and_then(Value::as_object)?;
    let required = schema.get("required").and_then(Value::as_array)?;
    let mut fields = Vec::new();
    let mut asked = BTreeMap::new();
    for name in required.iter().filter_map(Value::as_str) {
        if input.contains_key(name) {
            continue;
        }
        let property = properties.get(name).and_then(Value::as_object)?;
        // `$schema` with a default is filled in by the server.
        if name == "$schema" && (property.contains_key("default") || property.contains_key("const")) {
            continue;
        }
        asked.insert(name.to_string(), field(property)?);
        fields.push(name.to_string());
    }
    if fields.is_empty() {
        return None;
    }
    let mut form = ElicitationSchema::new(asked);
    form.required = Some(fields.clone());
    form.property_order = Some(fields.clone());
    Some(Form { fields, schema: form })
}

/// One form field from a property schema, keeping what a form may show; `None` for anything
/// but a flat primitive.
fn field(property: &Map<String, Value>) -> Option<PrimitiveSchemaDefinition> {
    let kind = match property.get("type") {
        Some(Value::String(t)) => t.as_str(),
        None if property.contains_key("enum") => "string",
        _ => return None,
    };
    let mut out = Map::new();
    out.insert("type".into(), Value::String(kind.to_string()));
    for key in ["title", "description"] {
        if let Some(Value::String(s)) = property.get(key) {
            out.insert(key.into(), Value::String(s.clone()));
        }
    }
    let keep: &[&str] = match kind {
        "string" => &["minLength", "maxLength", "default"],
        "number" | "integer" => &["minimum", "maximum", "default"],
        "boolean" => &["default"],
        _ => return None,
    };
    for key in keep {
        if let Some(v) = property.get(*key) {
            out.insert((*key).into(), v.clone());
        }
    }
    if kind == "string" {
        if let Some(Value::String(format)) = property.get("format")
            && FORM_FORMATS.contains(&format.as_str())
        {
            out.insert("format".into(), Value::String(format.clone()));
        }
        if let Some(choices) = property.get("enum") {
            // Only string choices: a form's enum is a list of strings.
            if !choices.as_array().is_some_and(|c| !c.is_empty() && c.iter().all(Value::is_string)) {
                return None;
            }
            out.insert("enum".into(), choices.clone());
            out.remove("minLength");
            out.remove("maxLength");
        }
    } else if property.contains_key("enum") {
        return None;
    }
    serde_json::from_value(Value::Object(out)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "$schema": {"type": "string", "default": "urn:sd:schema.x.1"},
                "message": {"type": "string", "title": "Message", "description": "What to say", "maxLength": 80},
                "times": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
                "mood": {"enum": ["calm", "loud"], "description": "How"},
                "items": {"type": "array", "items": {"type": "string"}},
                "shout": {"type": "boolean"}
            },
            "required": ["$schema", "message", "times", "mood"]
        })
    }

    #[test]
    fn a_form_asks_for_exactly_the_missing_primitive_fields() {
        let input = json!({"times": 2});
        let form = form(&schema(), input.as_object().unwrap()).unwrap();
        assert_eq!(form.fields, ["message", "mood"]);
        let wire = serde_json::to_value(&form.schema).unwrap();
        assert_eq!(wire["required"], json!(["message", "mood"]));
        assert_eq!(
            wire["properties"]["message"],
            json!({"type": "string", "title": "Message", "description": "What to say", "maxLength": 80})
        );
        assert_eq!(wire["properties"]["mood"]["enum"], json!(["calm", "loud"]));
        assert!(wire["properties"].get("times").is_none());
    }

    #[test]
    fn nothing_missing_or_something_unaskable_means_no_form() {
        let full = json!({"message": "hi", "times": 1, "mood": "calm"});
        assert!(form(&schema(), full.as_object().unwrap()).is_none());
        let mut s = schema();
        s["required"] = json!(["message", "items"]);
        assert!(form(&s, &JsonObject::new()).is_none(), "an array cannot be asked by form");
        s["required"] = json!(["message", "nowhere"]);
        assert!(form(&s, &JsonObject::new()).is_none(), "a required field without a schema");
    }

    #[test]
    fn defaults_and_limits_are_kept() {
        let mut s = schema();
        s["required"] = json!(["times", "shout"]);
        let form = form(&s, &JsonObject::new()).unwrap();
        let wire = serde_json::to_value(&form.schema).unwrap();
        assert_eq!(wire["properties"]["times"], json!({"type": "integer", "minimum": 1, "maximum": 5, "default": 1}));
        assert_eq!(wire["properties"]["shout"], json!({"type": "boolean"}));
    }
}
