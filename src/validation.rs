//! JSON Schema validation, for tool arguments (tools::arguments) and job inputs against a
//! service's request schema (backend::jobs): one compiled-schema type, one way of listing
//! what is wrong, in the project's words ("expected a string, got the integer 3").
//!
//! Built on `boon` (drafts 4 to 2020-12). `$ref`s are followed only inside the schema and to
//! the standard metaschemas: a request schema comes from the platform, and must not make the
//! server read a local file or fetch a URL. Formats are annotations under 2019-09 and
//! 2020-12 (as the drafts say); older drafts assert them.

use serde_json::Value;

use crate::text::describe_json;

/// Where a schema is placed for compiling; its local `$ref`s resolve against it.
const SCHEMA_LOCATION: &str = "https://ivcap-mcp.invalid/schema.json";

/// A compiled JSON Schema.
pub struct Validator {
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Validator")
    }
}

/// One thing wrong with a value: where, what kind, and a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The instance path, one token per property name or array index.
    pub path: Vec<String>,
    pub kind: ViolationKind,
    /// What is wrong, without the path.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ViolationKind {
    /// Properties the schema does not allow.
    Unexpected(Vec<String>),
    /// Required properties that are absent.
    Missing(Vec<String>),
    /// Anything else, about the value at `path`.
    Value,
}

impl Violation {
    /// The instance path as a JSON pointer (`""` for the value itself).
    pub fn pointer(&self) -> String {
        self.path.iter().map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect()
    }
}

/// Refuses every URL: only the schema itself and the metaschemas (built into boon) are read.
struct NothingOutside;

impl boon::UrlLoader for NothingOutside {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("{url} is outside the schema; only references inside it are followed").into())
    }
}

impl Validator {
    /// Compiles `schema`, or says why it is not a usable schema.
    pub fn new(schema: &Value) -> Result<Self, String> {
        let mut compiler = boon::Compiler::new();
        compiler.set_default_draft(boon::Draft::V2020_12);
        compiler.use_loader(Box::new(NothingOutside));
        compiler.add_resource(SCHEMA_LOCATION, schema.clone()).map_err(|e| with_causes(&e))?;
        let mut schemas = boon::Schemas::new();
        let index = compiler.compile(SCHEMA_LOCATION, &mut schemas).map_err(|e| with_causes(&e))?;
        Ok(Validator { schemas, index })
    }

    pub fn is_valid(&self, value: &Value) -> bool {
        self.schemas.validate(value, self.index).is_ok()
    }

    /// Everything wrong with `value`, most specific first within each branch; empty when it fits.
    pub fn violations(&self, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        if let Err(error) = self.schemas.validate(value, self.index) {
            collect(&error, value, &mut out);
        }
        out
    }
}

/// An error and what caused it, as one line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

/// The leaves of boon's error tree: containers (the schema, a `$ref`, `allOf`, a group of
/// keyword failures) are looked into; an `anyOf`/`oneOf` is reported as itself, since which
/// alternative was meant is unknown.
fn collect(error: &boon::ValidationError<'_, '_>, root: &Value, out: &mut Vec<Violation>) {
    use boon::ErrorKind as K;
    let container = matches!(error.kind, K::Group | K::Schema { .. } | K::Reference { .. } | K::AllOf);
    if container && !error.causes.is_empty() {
        for cause in &error.causes {
            collect(cause, root, out);
        }
        return;
    }
    let path: Vec<String> = error
        .instance_location
        .tokens
        .iter()
        .map(|t| match t {
            boon::InstanceToken::Prop(p) => p.to_string(),
            boon::InstanceToken::Item(i) => i.to_string(),
        })
        .collect();
    let at = root.pointer(&error.instance_location.to_string()).unwrap_or(&Value::Null);
    let got = describe_json(at);
    // "property 'a'" or "properties 'a', 'b'".
    let named = |names: &[String]| {
        let quoted: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
        format!("{} {}", if names.len() == 1 { "property" } else { "properties" }, quoted.join(", "))
    };
    let (kind, message) = match &error.kind {
        K::AdditionalProperties { got: names } => {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            let message = format!("{} not allowed here", named(&names));
            (ViolationKind::Unexpected(names), message)
        }
        K::Required { want } => {
            let names: Vec<String> = want.iter().map(|n| n.to_string()).collect();
            let message = format!("missing required {}", named(&names));
            (ViolationKind::Missing(names), message)
        }
        K::Type { want, .. } => {
            let want: Vec<String> = want.iter().map(|t| with_article(&t.to_string())).collect();
            (ViolationKind::Value, format!("expected {}, got {got}", want.join(" or ")))
        }
        K::Enum { want } => {
            let want: Vec<String> = want.iter().map(Value::to_string).collect();
            (ViolationKind::Value, format!("expected one of {}, got {got}", want.join(", ")))
        }
        K::Const { want } => (ViolationKind::Value, format!("expected {want}, got {got}")),
        K::Minimum { want, .. } => (ViolationKind::Value, format!("expected at least {want}, got {got}")),
        K::Maximum { want, .. } => (ViolationKind::Value, format!("expected at most {want}, got {got}")),
        K::ExclusiveMinimum { want, .. } => (ViolationKind::Value, format!("expected more than {want}, got {got}")),
        K::ExclusiveMaximum { want, .. } => (ViolationKind::Value, format!("expected less than {want}, got {got}")),
        K::MultipleOf { want, .. } => (ViolationKind::Value, format!("expected a multiple of {want}, got {got}")),
        K::MinLength { want, .. } => (ViolationKind::Value, format!("expected at least {want} characters, got {got}")),
        K::MaxLength { want, .. } => (ViolationKind::Value, format!("expected at most {want} characters, got {got}")),
        K::MinItems { want, got: n } => (ViolationKind::Value, format!("expected at least {want} items, got {n}")),
        K::MaxItems { want, got: n } => (ViolationKind::Value, format!("expected at most {want} items, got {n}")),
        K::Pattern { want, .. } => (ViolationKind::Value, format!("{got} does not match the pattern {want}")),
        K::AnyOf | K::OneOf(None) => (ViolationKind::Value, format!("{got} matches none of the allowed forms")),
        K::OneOf(Some((i, j))) => (
            ViolationKind::Value,
            format!("{got} matches more than one allowed form ({i} and {j}); exactly one must match"),
        ),
        K::FalseSchema => (ViolationKind::Value, "no value is allowed here".to_string()),
        other => (ViolationKind::Value, other.to_string()),
    };
    out.push(Violation { path, kind, message });
}

/// "integer" → "an integer", "string" → "a string"; `null` stays bare.
fn with_article(kind: &str) -> String {
    match kind {
        "null" => "null".into(),
        "integer" | "array" | "object" => format!("an {kind}"),
        "boolean" => "true or false".into(),
        _ => format!("a {kind}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(schema: Value, value: Value) -> Vec<String> {
        Validator::new(&schema)
            .unwrap()
            .violations(&value)
            .into_iter()
            .map(|v| format!("{}: {}", v.pointer(), v.message))
            .collect()
    }

    #[test]
    fn every_problem_is_listed_with_its_path_in_plain_words() {
        let schema = json!({
            "type": "object",
            "required": ["msg"],
            "additionalProperties": false,
            "properties": {
                "times": {"type": "integer", "minimum": 1},
                "mode": {"enum": ["fast", "slow"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "id": {"type": "string", "pattern": "^urn:"},
                "msg": {"type": "string"}
            }
        });
        let found = messages(schema, json!({"times": "x", "mode": "medium", "tags": ["a", 2], "id": "x", "extra": 1}));
        for expected in [
            "/times: expected an integer, got the string \"x\"",
            "/mode: expected one of \"fast\", \"slow\", got the string \"medium\"",
            "/tags/1: expected a string, got the integer 2",
            "/id: the string \"x\" does not match the pattern ^urn:",
            ": missing required property 'msg'",
            ": property 'extra' not allowed here",
        ] {
            assert!(found.iter().any(|f| f == expected), "{expected} not in {found:#?}");
        }
        assert_eq!(found.len(), 6, "{found:#?}");
    }

    #[test]
    fn refs_resolve_inside_the_schema_and_nowhere_else() {
        let local = json!({"$defs": {"N": {"type": "integer"}}, "properties": {"n": {"$ref": "#/$defs/N"}}});
        assert_eq!(messages(local, json!({"n": "1"})), ["/n: expected an integer, got the string \"1\""]);
        let outside = std::env::temp_dir().join("ivcap-mcp-validation-outside.json");
        std::fs::write(&outside, r#"{"type": "integer"}"#).unwrap();
        let file_ref = json!({"$ref": format!("file://{}", outside.display())});
        let refused = Validator::new(&file_ref).unwrap_err();
        assert!(refused.contains("outside the schema"), "{refused}");
        let remote = json!({"properties": {"a": {"$ref": "https://example.com/a.json"}}});
        assert!(Validator::new(&remote).is_err());
        std::fs::remove_file(outside).ok();
    }

    #[test]
    fn alternatives_are_reported_once_and_valid_values_have_no_violations() {
        let schema = json!({"properties": {"order": {"anyOf": [{"enum": ["asc", "desc"]}, {"type": "null"}]}}});
        let v = Validator::new(&schema).unwrap();
        assert!(v.is_valid(&json!({"order": null})) && v.is_valid(&json!({"order": "asc"})));
        assert!(v.violations(&json!({"order": "asc"})).is_empty());
        assert_eq!(
            messages(schema, json!({"order": "up"})),
            ["/order: the string \"up\" matches none of the allowed forms"]
        );
    }

    #[test]
    fn formats_are_annotations_in_2020_12_and_assertions_in_draft_7() {
        let modern = json!({"type": "string", "format": "email"});
        assert!(Validator::new(&modern).unwrap().is_valid(&json!("not an email")));
        let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string", "format": "email"});
        assert!(!Validator::new(&draft7).unwrap().is_valid(&json!("not an email")));
        let unknown = json!({"type": "integer", "format": "uint32"});
        assert!(Validator::new(&unknown).unwrap().is_valid(&json!(3)));
    }

    #[test]
    fn a_schema_that_is_not_one_says_why() {
        assert!(Validator::new(&json!({"type": "int"})).is_err());
        assert!(Validator::new(&json!({"minimum": "one"})).is_err());
    }
}
