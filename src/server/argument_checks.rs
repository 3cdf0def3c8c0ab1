//! Argument errors for every tool, in one place. rmcp's `Parameters<T>` extractor answers a
//! bad argument with serde's text (``invalid type: string "ten", expected u32``); instead each
//! tool's route is wrapped ([`check_arguments`]) so its arguments are first checked against
//! the schema they were generated from, and every problem is answered in the house style:
//! `invalid argument 'limit': expected an integer 1 to 50, got the string "ten"`, naming the
//! argument, what was expected in JSON terms, what came, and for an unknown name the closest
//! valid one. The answer is an `isError` result, so the model corrects itself.

use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use rmcp::handler::server::router::tool::ToolRoute;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{CallToolResult, ContentBlock, ErrorCode, JsonObject};
use serde_json::Value;

use crate::schema::inline_refs_without;
use crate::text::describe_json;
use crate::tools::ToolContext;
use crate::tools::args::RENAMED_ARGUMENTS;
use crate::validation::{Validator, ViolationKind};

/// The prefix of rmcp's own message when arguments do not deserialise.
const RMCP_ARGUMENT_ERROR: &str = "failed to deserialize parameters: ";

/// The checks for one tool, built from its generated input schema.
struct ArgumentCheck {
    tool: String,
    /// The generated schema, compiled on the tool's first call: compiling every tool's at
    /// start-up would add to each launch what most sessions never use.
    generated: Arc<JsonObject>,
    validator: OnceLock<Option<Validator>>,
    /// What describes the arguments in messages, made when the first bad call needs it.
    described: OnceLock<Described>,
}

struct Described {
    /// The schema with `$ref`s inlined, to describe each argument.
    schema: Value,
    names: Vec<String>,
}

/// Wraps `route` so arguments that do not fit its input schema are answered in the house
/// style before the handler runs. Call it before the schema is normalised for publishing:
/// the generated schema is the one serde agrees with (nullable types, `$ref`s).
pub(super) fn check_arguments(route: &mut ToolRoute<ToolContext>) {
    let check = Arc::new(ArgumentCheck {
        tool: route.attr.name.to_string(),
        generated: route.attr.input_schema.clone(),
        validator: OnceLock::new(),
        described: OnceLock::new(),
    });
    let inner = route.call.clone();
    route.call = Arc::new(move |mut context: ToolCallContext<'_, ToolContext>| {
        let mut arguments = context.arguments.take().unwrap_or_default();
        for (_, old, new) in RENAMED_ARGUMENTS.iter().filter(|(tool, ..)| *tool == check.tool) {
            if !arguments.contains_key(*new)
                && let Some(value) = arguments.remove(*old)
            {
                arguments.insert((*new).to_string(), value);
            }
        }
        let arguments = Value::Object(arguments);
        let problems = check.problems(&arguments);
        if let Value::Object(arguments) = arguments {
            context.arguments = Some(arguments);
        }
        if let Some(message) = problems {
            return std::future::ready(Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into())).boxed();
        }
        let call = inner(context);
        let tool = check.tool.clone();
        async move {
            call.await.or_else(|e| match e.message.strip_prefix(RMCP_ARGUMENT_ERROR) {
                // The schema let these through but serde did not: still say it in our words.
                Some(serde) if e.code == ErrorCode::INVALID_PARAMS => {
                    Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                        "invalid arguments for {tool}: {serde}; see the tool's input schema in tools/list"
                    ))])
                    .into())
                }
                _ => Err(e),
            })
        }
        .boxed()
    });
}

impl ArgumentCheck {
    /// Every problem with `arguments`, one per argument, or `None` when they fit.
    fn problems(&self, arguments: &Value) -> Option<String> {
        let mut seen: Vec<String> = Vec::new();
        let mut problems = Vec::new();
        let validator = self.validator.get_or_init(|| match Validator::new(&Value::Object((*self.generated).clone())) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(tool = %self.tool, error = %e, "tool input schema does not compile; arguments unchecked");
                None
            }
        });
        // The common case, arguments that fit, without collecting errors.
        let validator = validator.as_ref().filter(|v| !v.is_valid(arguments))?;
        for violation in validator.violations(arguments) {
            let path = &violation.path;
            let found = match (&violation.kind, path.first()) {
                (ViolationKind::Unexpected(names), None) => {
                    names.iter().map(|name| (name.clone(), self.unknown(name))).collect()
                }
                (ViolationKind::Missing(names), None) => names
                    .iter()
                    .map(|name| (name.clone(), format!("missing; it is required ({})", self.expected_of(name))))
                    .collect(),
                (_, Some(name)) if path.len() == 1 => {
                    let got = arguments.get(name).map_or_else(|| "nothing".to_string(), describe_json);
                    vec![(name.clone(), format!("expected {}, got {got}", self.expected_of(name)))]
                }
                (_, Some(name)) => vec![(name.clone(), format!("at {}: {}", violation.pointer(), violation.message))],
                (_, None) => vec![("arguments".to_string(), violation.message)],
            };
            for (name, message) in found {
                if !seen.contains(&name) {
                    problems.push(format!("invalid argument '{name}': {message}"));
                    seen.push(name);
                }
            }
        }
        (!problems.is_empty()).then(|| problems.join("; "))
    }

    fn described(&self) -> &Described {
        self.described.get_or_init(|| {
            let schema = Value::Object(inline_refs_without(&self.generated, &[]));
            let names = schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            Described { schema, names }
        })
    }

    fn unknown(&self, name: &str) -> String {
        let names = &self.described().names;
        let valid = names.join(", ");
        match closest(name, names) {
            Some(close) => {
                format!("{} has no such argument; did you mean '{close}'? Its arguments: {valid}", self.tool)
            }
            None => format!("{} has no such argument; its arguments: {valid}", self.tool),
        }
    }

    fn expected_of(&self, name: &str) -> String {
        self.described()
            .schema
            .pointer(&format!("/properties/{}", name.replace('~', "~0").replace('/', "~1")))
            .map_or_else(|| "a value".to_string(), expected)
    }
}

/// What a schema accepts, in JSON terms: "an integer 1 to 50", "one of \"a\", \"b\"" …
/// `null` is left out where something else is accepted: omitting an optional argument is
/// the better advice.
fn expected(schema: &Value) -> String {
    let Value::Object(node) = schema else { return "any JSON value".into() };
    if let Some(options) = node.get("enum").and_then(Value::as_array) {
        let options: Vec<String> = options.iter().filter(|o| !o.is_null()).map(Value::to_string).collect();
        return format!("one of {}", options.join(", "));
    }
    if let Some(constant) = node.get("const") {
        return constant.to_string();
    }
    if let Some(alternatives) = node.get("anyOf").or_else(|| node.get("oneOf")).and_then(Value::as_array) {
        let mut described: Vec<String> = Vec::new();
        for alternative in alternatives.iter().filter(|a| a.get("type").and_then(Value::as_str) != Some("null")) {
            let text = expected(alternative);
            if !described.contains(&text) {
                described.push(text);
            }
        }
        return if described.is_empty() { "null".into() } else { described.join(" or ") };
    }
    let types: Vec<&str> = match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => return "any JSON value".into(),
    };
    if types.is_empty() {
        return "null".into();
    }
    types.iter().map(|t| one_type(t, node)).collect::<Vec<_>>().join(" or ")
}

fn one_type(kind: &str, node: &JsonObject) -> String {
    let bound = |key: &str| node.get(key).filter(|v| v.is_number()).map(Value::to_string);
    let range = |low: Option<String>, high: Option<String>, unit: &str| match (low, high) {
        (Some(low), Some(high)) => format!(" {low} to {high}{unit}"),
        (Some(low), None) => format!(" of at least {low}{unit}"),
        (None, Some(high)) => format!(" of at most {high}{unit}"),
        (None, None) => String::new(),
    };
    match kind {
        "integer" => format!("an integer{}", range(bound("minimum"), bound("maximum"), "")),
        "number" => format!("a number{}", range(bound("minimum"), bound("maximum"), "")),
        "string" => format!("a string{}", range(bound("minLength"), bound("maxLength"), " characters")),
        "boolean" => "true or false".into(),
        "object" => "a JSON object".into(),
        "array" => match node.get("items") {
            Some(items) => format!("an array of {}", plural(&expected(items))),
            None => "an array".into(),
        },
        other => format!("a JSON {other}"),
    }
}

/// "a string" → "strings", "an integer 1 to 5" → "integers 1 to 5".
fn plural(single: &str) -> String {
    let bare = single.strip_prefix("an ").or_else(|| single.strip_prefix("a ")).unwrap_or(single);
    match bare.split_once(' ') {
        Some((noun, rest)) => format!("{noun}s {rest}"),
        None => format!("{bare}s"),
    }
}

/// The valid name closest to `name` (see [`closest_names`]).
fn closest<'a>(name: &str, valid: &'a [String]) -> Option<&'a str> {
    closest_names(name, valid, 1).into_iter().next()
}

/// Up to `most` valid names close to `name`, closest first: those containing it (or contained
/// in it), then those within a third of its length in edits.
pub(super) fn closest_names<'a>(name: &str, valid: &'a [String], most: usize) -> Vec<&'a str> {
    let lower = name.to_ascii_lowercase();
    let mut near: Vec<(bool, usize, &str)> = valid
        .iter()
        .filter_map(|v| {
            let contains = v.contains(lower.as_str()) || lower.contains(v.as_str());
            let distance = edit_distance(&lower, v);
            (contains || distance <= (name.chars().count() / 3).max(1)).then_some((!contains, distance, v.as_str()))
        })
        .collect();
    near.sort();
    near.into_iter().take(most).map(|(_, _, v)| v).collect()
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(schema: Value) -> ArgumentCheck {
        ArgumentCheck {
            tool: "get_artifact".into(),
            generated: Arc::new(schema.as_object().unwrap().clone()),
            validator: OnceLock::new(),
            described: OnceLock::new(),
        }
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["artifact_id"],
            "properties": {
                "artifact_id": {"type": "string"},
                "limit": {"type": ["integer", "null"], "format": "uint32", "minimum": 1, "maximum": 50},
                "order": {"anyOf": [{"$ref": "#/$defs/Order"}, {"type": "null"}]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "force": {"type": "boolean"}
            },
            "$defs": {"Order": {"type": "string", "enum": ["asc", "desc"]}}
        })
    }

    #[test]
    fn type_and_range_problems_name_the_argument_the_expectation_and_what_came() {
        let c = check(schema());
        assert_eq!(
            c.problems(&json!({"artifact_id": "a", "limit": "ten"})).unwrap(),
            "invalid argument 'limit': expected an integer 1 to 50, got the string \"ten\""
        );
        assert_eq!(
            c.problems(&json!({"artifact_id": "a", "limit": 500})).unwrap(),
            "invalid argument 'limit': expected an integer 1 to 50, got the integer 500"
        );
        assert_eq!(
            c.problems(&json!({"artifact_id": "a", "order": "up"})).unwrap(),
            "invalid argument 'order': expected one of \"asc\", \"desc\", got the string \"up\""
        );
        assert_eq!(
            c.problems(&json!({"artifact_id": 5, "tags": "x", "force": "yes"})).unwrap(),
            concat!(
                "invalid argument 'artifact_id': expected a string, got the integer 5; ",
                "invalid argument 'force': expected true or false, got the string \"yes\"; ",
                "invalid argument 'tags': expected an array of strings, got the string \"x\""
            )
        );
        assert_eq!(c.problems(&json!({"artifact_id": "a", "limit": null})), None, "null is an omitted option");
    }

    #[test]
    fn unknown_and_missing_arguments_are_named_with_the_fix() {
        let c = check(schema());
        let text = c.problems(&json!({"id": "x"})).unwrap();
        assert!(
            text.contains(
                "invalid argument 'id': get_artifact has no such argument; did you mean 'artifact_id'? Its arguments: \
                 artifact_id, force, limit, order, tags"
            ),
            "{text}"
        );
        assert!(text.contains("invalid argument 'artifact_id': missing; it is required (a string)"), "{text}");
        let text = c.problems(&json!({"artifact_id": "a", "limt": 5})).unwrap();
        assert!(text.contains("did you mean 'limit'?"), "{text}");
        let text = c.problems(&json!({"artifact_id": "a", "zzzzzz": 5})).unwrap();
        assert!(!text.contains("did you mean"), "{text}");
    }

    #[test]
    fn closest_names_prefer_containment_then_few_edits() {
        let names = vec!["artifact_id".to_string(), "path".to_string(), "overwrite".to_string()];
        assert_eq!(closest("id", &names), Some("artifact_id"));
        assert_eq!(closest("overwirte", &names), Some("overwrite"));
        assert_eq!(closest("colour", &names), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
