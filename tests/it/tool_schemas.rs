//! Tool definitions are a contract: `tool-schemas/<tool>.json` (and the prompts and resource
//! templates in `tool-schemas/prompts/`, `tool-schemas/resource-templates/`) must match what the code
//! generates (regenerate with `UPDATE_TOOL_SCHEMAS=1 cargo test --test it tool_schemas`),
//! and every tool passes the portability lint of docs/architecture.md ("Tool schemas").

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use ivcap_mcp::backend::local::LocalBackend;
use ivcap_mcp::server::{IvcapMcp, ServerOptions};
use rmcp::model::Tool;
use serde_json::{Value, json};

fn tools() -> Vec<Tool> {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(LocalBackend::new(dir.path()).unwrap());
    IvcapMcp::new(backend, &ServerOptions::default()).unwrap().tools()
}

/// The checked-in form of a tool: sorted keys, two-space indent, trailing newline.
fn render(tool: &Tool) -> String {
    let v: Value = serde_json::to_value(tool).unwrap();
    let definition = json!({
        "name": v["name"], "title": v.get("title"), "description": v["description"],
        "annotations": v["annotations"], "inputSchema": v["inputSchema"], "outputSchema": v["outputSchema"],
    });
    let mut text = serde_json::to_string_pretty(&definition).unwrap();
    text.push('\n');
    text
}

/// A prompt or resource template, as checked in: its JSON with sorted keys.
fn render_value(v: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(&serde_json::to_value(v).unwrap()).unwrap();
    text.push('\n');
    text
}

/// Compares (or with `UPDATE_TOOL_SCHEMAS=1` rewrites) the files of `dir` against `expected`
/// `(file name, content)`; files in `dir` that are not expected are stale. Sub-folders are
/// left to their own check.
fn check_snapshots(dir: &Path, expected: Vec<(String, String)>, problems: &mut Vec<String>) {
    let update = std::env::var("UPDATE_TOOL_SCHEMAS").is_ok_and(|v| v == "1");
    if update {
        std::fs::create_dir_all(dir).unwrap();
    }
    let names: BTreeSet<String> = expected.iter().map(|(f, _)| f.clone()).collect();
    for (file, rendered) in expected {
        let path = dir.join(&file);
        if update {
            std::fs::write(&path, &rendered).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(rendered.as_str()) {
            problems.push(format!("{} differs from the code", path.display()));
        }
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_file() && !names.contains(&name) {
            if update {
                std::fs::remove_file(entry.path()).unwrap();
            } else {
                problems.push(format!("{} is stale: not in the code", entry.path().display()));
            }
        }
    }
}

#[test]
fn tool_schemas_match_the_checked_in_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tool-schemas");
    let mut problems = Vec::new();
    let tools = tools().iter().map(|t| (format!("{}.json", t.name), render(t))).collect();
    check_snapshots(&dir, tools, &mut problems);
    let store = tempfile::tempdir().unwrap();
    let server = IvcapMcp::new(Arc::new(LocalBackend::new(store.path()).unwrap()), &ServerOptions::default()).unwrap();
    let prompts = server.prompts().iter().map(|p| (format!("{}.json", p.name), render_value(p))).collect();
    check_snapshots(&dir.join("prompts"), prompts, &mut problems);
    let templates = server.resource_templates();
    let templates = templates.iter().map(|t| (format!("{}.json", t.name), render_value(t))).collect();
    check_snapshots(&dir.join("resource-templates"), templates, &mut problems);
    assert!(
        problems.is_empty(),
        "{}\nregenerate with: UPDATE_TOOL_SCHEMAS=1 cargo test --test it tool_schemas, then review the diff",
        problems.join("\n")
    );
}

/// The formats JSON Schema 2020-12 defines (Validation, §7.3); validators warn about others.
const FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Every `format` anywhere in `schema` (input or output) that 2020-12 does not define.
fn unknown_formats(schema: &Value, path: &str, problems: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(f) = map.get("format").and_then(Value::as_str)
                && !FORMATS.contains(&f)
            {
                problems.push(format!("{path}: format {f} is not a JSON Schema 2020-12 format"));
            }
            for (k, v) in map {
                if !matches!(k.as_str(), "default" | "const" | "enum" | "examples") {
                    unknown_formats(v, &format!("{path}.{k}"), problems);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| unknown_formats(i, path, problems)),
        _ => {}
    }
}

/// Portability problems in one (sub)schema at `path`.
pub(crate) fn lint_schema(s: &Value, path: &str, problems: &mut Vec<String>) {
    let Some(obj) = s.as_object() else {
        problems.push(format!("{path}: not an object schema"));
        return;
    };
    for banned in ["$ref", "$defs", "definitions", "anyOf", "oneOf", "allOf", "$schema"] {
        if obj.contains_key(banned) {
            problems.push(format!("{path}: has {banned}"));
        }
    }
    match obj.get("type") {
        Some(Value::String(_)) => {}
        Some(_) => problems.push(format!("{path}: type is not a single string")),
        None => problems.push(format!("{path}: no type")),
    }
    if obj.get("type").and_then(Value::as_str) == Some("object") {
        match obj.get("properties").and_then(Value::as_object) {
            None => problems.push(format!("{path}: object without properties")),
            Some(props) => {
                // Open objects (job input, aspect content) are declared one way: no members
                // listed, any allowed.
                if props.is_empty() && path.contains('.') && obj.get("additionalProperties") != Some(&Value::Bool(true))
                {
                    problems.push(format!("{path}: a free-form object must say additionalProperties: true"));
                }
                for (k, v) in props {
                    // What every LLM API accepts: Anthropic's refuses a whole request otherwise.
                    let portable = !k.is_empty()
                        && k.len() <= 64
                        && k.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
                    if !portable {
                        problems.push(format!("{path}: property key {k:?} is outside ^[a-zA-Z0-9_.-]{{1,64}}$"));
                    }
                    lint_schema(v, &format!("{path}.{k}"), problems);
                }
            }
        }
    }
    if let Some(items) = obj.get("items") {
        lint_schema(items, &format!("{path}[]"), problems);
    }
}

#[test]
fn every_tool_passes_the_portability_lint() {
    let name_re = |n: &str| {
        let mut chars = n.chars();
        n.len() <= 40
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let mut problems = Vec::new();
    let tools = tools();
    assert!(!tools.is_empty());
    for tool in &tools {
        let name = tool.name.as_ref();
        if !name_re(name) {
            problems.push(format!("{name}: name does not match ^[a-z][a-z0-9_]{{0,39}}$"));
        }
        let description = tool.description.as_deref().unwrap_or("");
        if description.is_empty() || description.len() > 1024 {
            problems.push(format!("{name}: description missing or over 1 KB"));
        }
        match &tool.annotations {
            None => problems.push(format!("{name}: no annotations")),
            Some(a) => {
                if a.read_only_hint.is_none()
                    || a.destructive_hint.is_none()
                    || a.idempotent_hint.is_none()
                    || a.open_world_hint.is_none()
                {
                    problems.push(format!("{name}: an annotation hint is unset"));
                }
            }
        }
        match &tool.output_schema {
            None => problems.push(format!("{name}: no output schema")),
            Some(out) if out.get("type").and_then(Value::as_str) != Some("object") => {
                problems.push(format!("{name}: output schema is not an object"))
            }
            Some(_) => {}
        }
        let input = Value::Object((*tool.input_schema).clone());
        if input["type"] != "object" {
            problems.push(format!("{name}: input root is not an object"));
        }
        lint_schema(&input, name, &mut problems);
        unknown_formats(&input, &format!("{name} input"), &mut problems);
        if let Some(out) = &tool.output_schema {
            unknown_formats(&Value::Object((**out).clone()), &format!("{name} output"), &mut problems);
        }
        if let Some(limit) = input["properties"].get("limit")
            && (limit.get("minimum").is_none() || limit.get("maximum").is_none())
        {
            problems.push(format!("{name}: limit is not bounded"));
        }
    }
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names.len(), tools.len(), "tool names are unique");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn default_tool_list_stays_small() {
    let tools = tools();
    assert!(tools.len() <= 25, "{} tools", tools.len());
    // `_meta` is for the host (the MCP Apps view links, docs/apps.md); an LLM provider is given
    // the rest, which is what the size is about. `_meta` is held to a size of its own.
    let mut listed = serde_json::to_value(&tools).unwrap();
    let meta: usize = listed
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .filter_map(|t| t.as_object_mut().unwrap().remove("_meta"))
        .map(|m| m.to_string().len())
        .sum();
    let size = serde_json::to_string(&json!({"tools": listed})).unwrap().len();
    // docs/architecture.md ("Tool schemas") asks for ~20 KB (≈ 5k tokens); 22 KB keeps that with 16 tools.
    assert!(size <= 22_000, "tools/list is {size} bytes without _meta");
    assert!(meta <= 1_000, "the tools' _meta is {meta} bytes");
}

#[test]
fn read_only_keeps_exactly_the_read_only_tools() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(LocalBackend::new(dir.path()).unwrap());
    let options = ServerOptions { read_only: true, ..ServerOptions::default() };
    let ro = IvcapMcp::new(backend, &options).unwrap().tools();
    let expected: Vec<String> = tools()
        .into_iter()
        .filter(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
        .map(|t| t.name.into_owned())
        .collect();
    assert_eq!(ro.into_iter().map(|t| t.name.into_owned()).collect::<Vec<_>>(), expected);
}

#[test]
fn toolsets_select_tools() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(LocalBackend::new(dir.path()).unwrap());
    let options = ServerOptions { toolsets: Some(vec!["secrets".into()]), ..ServerOptions::default() };
    let names: Vec<String> =
        IvcapMcp::new(backend, &options).unwrap().tools().into_iter().map(|t| t.name.into_owned()).collect();
    assert_eq!(names, ["list_secrets"]);
}
