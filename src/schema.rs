//! JSON Schema normalisation for MCP clients and LLM providers.
//!
//! Several clients drop a whole tool list over an unresolved `$ref`, a `type` array or a
//! top-level `anyOf`, and providers reject unknown `format`s (docs/architecture.md, "Tool
//! schemas"). One
//! function, [`normalise`], is applied to our own tool schemas (input and output) and to the
//! request schemas services publish (pydantic output, with `$defs`), so all are equally portable:
//! local `$ref`s inlined, `$schema`/`$defs` dropped, `type` arrays made single, nullable
//! `anyOf`s unwrapped, string-constant unions made enums, formats limited to the portable
//! ones ([`PORTABLE_FORMATS`]), and objects always given `properties`.

use std::sync::Arc;

use rmcp::model::JsonObject;
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// A tool's input schema for arguments of type `T`, as rmcp's `schema_for_input` makes it
/// (draft 2020-12, top-level `title` and `description` removed), but moved out of schemars'
/// value instead of serialised through it into a second one: that copy was a third of
/// building the tool list. Every argument type is a struct, so the root is an object (MCP's
/// rule; the tool-schemas test holds every published schema to it).
pub fn tool_input<T: JsonSchema>() -> Arc<JsonObject> {
    Arc::new(generated::<T>(SchemaSettings::draft2020_12()))
}

/// A tool's output schema for results of type `T`, as rmcp's `schema_for_output` makes it
/// (the serialised form), generated the same way as [`tool_input`].
pub fn tool_output<T: JsonSchema>() -> Arc<JsonObject> {
    Arc::new(generated::<T>(SchemaSettings::draft2020_12().for_serialize()))
}

fn generated<T: JsonSchema>(settings: SchemaSettings) -> JsonObject {
    match Value::from(settings.into_generator().into_root_schema_for::<T>()) {
        Value::Object(mut object) => {
            object.remove("title");
            object.remove("description");
            object
        }
        _ => JsonObject::new(),
    }
}

/// Formats every client accepts: formats JSON Schema 2020-12 defines (§7.3) that common
/// validators (ajv-formats, Python `jsonschema`) and LLM providers' strict modes know. Others,
/// such as schemars' `uint64` or OpenAPI's `int64`, are dropped: the TypeScript SDK warns
/// about each unknown format on every call, and the numeric ones say nothing that `type`,
/// `minimum` and `maximum` do not.
pub const PORTABLE_FORMATS: &[&str] =
    &["date-time", "date", "time", "duration", "email", "hostname", "ipv4", "ipv6", "uri", "uuid"];

/// How deep `$ref`s are followed before a recursive schema is cut to a plain object.
const MAX_REF_DEPTH: usize = 12;

/// Returns a portable copy of `schema`.
pub fn normalise(schema: &Value) -> Value {
    rewrite(schema, true, &[])
}

/// Returns a copy of `schema` with local `$ref`s inlined, `$schema`/`$defs` dropped and
/// formats limited to [`PORTABLE_FORMATS`], but otherwise as it was (to read a schema as
/// published: a service's request schema, a tool's arguments).
pub fn inline_refs(schema: &Value) -> Value {
    rewrite(schema, false, &[])
}

/// [`inline_refs`] of a schema object, in the same pass leaving out the keywords named in
/// `drop` (properties that happen to be named so are kept).
pub fn inline_refs_without(schema: &Map<String, Value>, drop: &[&str]) -> Map<String, Value> {
    rewrite_object(schema, false, drop)
}

/// [`normalise`] of a schema object, in the same pass leaving out the keywords named in
/// `drop` (properties that happen to be named so are kept).
pub fn normalise_without(schema: &Map<String, Value>, drop: &[&str]) -> Map<String, Value> {
    rewrite_object(schema, true, drop)
}

fn rewrite(schema: &Value, portable: bool, drop: &[&str]) -> Value {
    match schema {
        Value::Object(map) => Value::Object(rewrite_object(map, portable, drop)),
        other => Walker { defs: Map::new(), portable, drop }.walk(other, 0),
    }
}

fn rewrite_object(schema: &Map<String, Value>, portable: bool, drop: &[&str]) -> Map<String, Value> {
    let walker = Walker { defs: collect_defs(schema), portable, drop };
    match walker.walk_object(schema, 0) {
        Value::Object(mut map) => {
            map.remove("$schema");
            map.remove("$id");
            map
        }
        _ => Map::new(),
    }
}

struct Walker<'a> {
    defs: Map<String, Value>,
    /// Also apply the portability fixes of [`finish`], not just `$ref` inlining.
    portable: bool,
    /// Keywords to leave out.
    drop: &'a [&'a str],
}

/// `$defs` and `definitions` of the root.
fn collect_defs(schema: &Map<String, Value>) -> Map<String, Value> {
    let mut defs = Map::new();
    for key in ["definitions", "$defs"] {
        if let Some(Value::Object(d)) = schema.get(key) {
            defs.extend(d.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    defs
}

impl Walker<'_> {
    fn walk(&self, node: &Value, depth: usize) -> Value {
        match node {
            Value::Object(map) => self.walk_object(map, depth),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.walk(v, depth)).collect()),
            // `true` (any value) has no type; an object is the closest portable form.
            Value::Bool(true) if self.portable => serde_json::json!({"type": "object", "properties": {}}),
            other => other.clone(),
        }
    }

    fn walk_object(&self, map: &Map<String, Value>, depth: usize) -> Value {
        // Inline a local `$ref`, keeping sibling keys such as `description`.
        if let Some(Value::String(reference)) = map.get("$ref") {
            let name = reference.strip_prefix("#/$defs/").or_else(|| reference.strip_prefix("#/definitions/"));
            let mut base = match name.and_then(|n| self.defs.get(n)) {
                Some(target) if depth < MAX_REF_DEPTH => self.walk(target, depth + 1),
                _ => serde_json::json!({"type": "object", "properties": {}}),
            };
            if let Value::Object(base_map) = &mut base {
                for (k, v) in map.iter().filter(|(k, _)| *k != "$ref" && !self.drop.contains(&k.as_str())) {
                    base_map.insert(k.clone(), self.walk(v, depth));
                }
            }
            return self.finish(base);
        }

        let mut out = Map::new();
        for (key, value) in map {
            match key.as_str() {
                "$defs" | "definitions" | "$schema" => {}
                dropped if self.drop.contains(&dropped) => {}
                // Keyword maps whose keys are names, not keywords.
                "properties" | "patternProperties" => {
                    let inner = value
                        .as_object()
                        .map(|props| props.iter().map(|(k, v)| (k.clone(), self.walk(v, depth))).collect())
                        .unwrap_or_default();
                    out.insert(key.clone(), Value::Object(inner));
                }
                // Literal values: never rewritten.
                "default" | "const" | "enum" | "examples" | "required" => {
                    out.insert(key.clone(), value.clone());
                }
                // `true`/`false` here allow or forbid extra keys; they are not property schemas.
                "additionalProperties" | "unevaluatedProperties" if value.is_boolean() => {
                    out.insert(key.clone(), value.clone());
                }
                _ => {
                    out.insert(key.clone(), self.walk(value, depth));
                }
            }
        }
        self.finish(Value::Object(out))
    }

    /// Local portability fixes on one (already walked) schema object.
    fn finish(&self, mut node: Value) -> Value {
        let Value::Object(map) = &mut node else { return node };
        if map.get("format").and_then(Value::as_str).is_some_and(|f| !PORTABLE_FORMATS.contains(&f)) {
            map.remove("format");
        }
        if !self.portable {
            return node;
        }

        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(variants)) = map.get(key).cloned()
                && let Some(merged) = simplify_union(&variants)
            {
                map.remove(key);
                for (k, v) in merged {
                    map.entry(k).or_insert(v);
                }
            }
        }
        if let Some(Value::Array(parts)) = map.get("allOf").cloned()
            && parts.len() == 1
            && let Value::Object(only) = &parts[0]
        {
            map.remove("allOf");
            for (k, v) in only {
                map.entry(k.clone()).or_insert(v.clone());
            }
        }

        if let Some(Value::Array(types)) = map.get("type") {
            let single = types.iter().filter_map(Value::as_str).find(|t| *t != "null").unwrap_or("string").to_string();
            map.insert("type".into(), Value::String(single));
        }
        if map.get("default") == Some(&Value::Null) {
            map.remove("default");
        }
        if let Some(Value::Array(values)) = map.get_mut("enum") {
            values.retain(|v| !v.is_null());
        }

        if !map.contains_key("type") {
            let inferred = if map.contains_key("properties") {
                Some("object")
            } else if map.contains_key("items") {
                Some("array")
            } else {
                map.get("const").or_else(|| map.get("enum").and_then(|e| e.get(0))).map(json_type)
            };
            if let Some(t) = inferred {
                map.insert("type".into(), Value::String(t.into()));
            }
        }
        if map.get("type").and_then(Value::as_str) == Some("object") && !map.contains_key("properties") {
            map.insert("properties".into(), Value::Object(Map::new()));
        }
        node
    }
}

/// A union that can be said without `anyOf`: one non-null variant, or string constants.
fn simplify_union(variants: &[Value]) -> Option<Map<String, Value>> {
    let non_null: Vec<&Value> = variants
        .iter()
        .filter(|v| {
            v.get("type").and_then(Value::as_str) != Some("null") && !v.get("const").is_some_and(Value::is_null)
        })
        .collect();
    if let [only] = non_null.as_slice() {
        return only.as_object().cloned();
    }
    let mut constants = Vec::new();
    for v in &non_null {
        match (v.get("const"), v.get("enum")) {
            (Some(Value::String(c)), _) => constants.push(Value::String(c.clone())),
            (_, Some(Value::Array(e))) if e.iter().all(Value::is_string) => constants.extend(e.iter().cloned()),
            _ => return None,
        }
    }
    let mut out = Map::new();
    out.insert("type".into(), Value::String("string".into()));
    out.insert("enum".into(), Value::Array(constants));
    Some(out)
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
        Value::Null => "null",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pydantic_schema_is_made_portable() {
        let pydantic = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Request", "type": "object", "required": ["msg"],
            "$defs": {"Mode": {"enum": ["fast", "slow"], "title": "Mode", "type": "string"},
                      "Box": {"type": "object", "properties": {"w": {"type": "integer"}}}},
            "properties": {
                "$schema": {"type": "string", "default": "urn:sd:schema.alpha.request.1"},
                "msg": {"type": "string"},
                "times": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
                "mode": {"$ref": "#/$defs/Mode", "description": "how"},
                "box": {"anyOf": [{"$ref": "#/$defs/Box"}, {"type": "null"}]},
                "when": {"type": ["string", "null"], "format": "date-time"},
                "email": {"type": "string", "format": "email"},
                "free": {"type": "object"}
            }
        });
        let n = normalise(&pydantic);
        assert_eq!(n.get("$schema"), None);
        assert_eq!(n.get("$defs"), None);
        let p = &n["properties"];
        assert_eq!(p["$schema"]["default"], "urn:sd:schema.alpha.request.1", "a property named $schema stays");
        assert_eq!(p["times"], json!({"type": "integer"}));
        assert_eq!(
            p["mode"],
            json!({"enum": ["fast", "slow"], "title": "Mode", "type": "string", "description": "how"})
        );
        assert_eq!(p["box"]["properties"]["w"]["type"], "integer");
        assert_eq!(p["when"], json!({"type": "string", "format": "date-time"}));
        assert_eq!(p["email"], json!({"type": "string", "format": "email"}));
        assert_eq!(p["free"], json!({"type": "object", "properties": {}}));
        assert!(!n.to_string().contains("$ref"));
    }

    #[test]
    fn additional_properties_true_stays_a_boolean() {
        let s = json!({"type": "object", "properties": {"free": {"type": "object", "additionalProperties": true}}});
        assert_eq!(normalise(&s)["properties"]["free"]["additionalProperties"], json!(true));
    }

    #[test]
    fn recursive_refs_terminate() {
        let s = json!({"$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}}}},
                       "$ref": "#/$defs/N"});
        let n = normalise(&s);
        assert!(!n.to_string().contains("$ref"));
    }

    #[test]
    fn string_constant_unions_become_enums() {
        let s = json!({"oneOf": [{"const": "a", "description": "A"}, {"const": "b"}]});
        assert_eq!(normalise(&s), json!({"type": "string", "enum": ["a", "b"]}));
    }

    #[test]
    fn inline_refs_keeps_nulls() {
        let s = json!({"$defs": {"I": {"type": "object", "properties": {"x": {"type": ["string", "null"]}}}},
                       "type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/I"}}}});
        let n = inline_refs(&s);
        assert_eq!(n["properties"]["items"]["items"]["properties"]["x"]["type"], json!(["string", "null"]));
        assert_eq!(n.get("$defs"), None);
    }

    #[test]
    fn annotations_are_stripped_but_properties_named_so_stay() {
        let s = json!({"title": "T", "type": "object", "properties": {
            "description": {"type": "string", "description": "d"}, "title": {"type": "string"}}});
        let kept =
            json!({"type": "object", "properties": {"description": {"type": "string"}, "title": {"type": "string"}}});
        let Value::Object(map) = &s else { unreachable!() };
        assert_eq!(Value::Object(inline_refs_without(map, &["title", "description"])), kept);
        assert_eq!(Value::Object(normalise_without(map, &["title", "description"])), kept);
    }

    #[test]
    fn numeric_formats_are_dropped_whether_normalised_or_only_inlined() {
        let s = json!({"type": "object", "properties": {
            "size": {"type": "integer", "format": "uint64", "minimum": 0},
            "n": {"type": ["integer", "null"], "format": "int32"},
            "at": {"type": "string", "format": "date-time"}}});
        for n in [normalise(&s), inline_refs(&s)] {
            assert_eq!(n["properties"]["size"], json!({"type": "integer", "minimum": 0}));
            assert_eq!(n["properties"]["n"].get("format"), None);
            assert_eq!(n["properties"]["at"]["format"], "date-time");
        }
    }
}
