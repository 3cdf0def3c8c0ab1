//! `content_path` in local mode: the PostgreSQL SQL/JSON path that IVCAP applies to aspect
//! content, evaluated with `sql-json-path` (RisingWave's implementation of the PostgreSQL
//! grammar and semantics, checked against PostgreSQL's regression tests). An aspect matches
//! when the path returns at least one item — PostgreSQL's `content @? path` — in lax mode
//! unless the path says `strict`; evaluation errors count as no match, as `@?` suppresses
//! them.
//!
//! Refused with a clear error instead of a silently wrong answer: text that does not parse;
//! `$variables` (nothing binds them); and predicate-check expressions such as
//! `$.size > 10000`, which under `@?` would match every aspect — the filter form
//! `$.size ? (@ > 10000)` is what selects.

use serde_json::Value;
use sql_json_path::JsonPath;

use crate::error::{Error, Result};

/// Examples for error messages.
const FORMS: &str = "use a filter such as $.label ? (@ == \"cat\"), $.size ? (@ > 10000), \
                     $.items[*] ? (@.size > 10000) or $.done ? (@ == true)";

/// A compiled `content_path`.
#[derive(Debug)]
pub(crate) struct ContentPath(JsonPath);

impl ContentPath {
    /// Compiles `text`, refusing what local mode cannot answer faithfully.
    pub(crate) fn compile(text: &str) -> Result<Self> {
        let bad = |why: String| Error::invalid("content_path", format!("'{text}' {why}; {FORMS}"));
        if let Some(var) = variable(text) {
            return Err(bad(format!("uses the variable ${var}, which nothing binds")));
        }
        let path = JsonPath::new(text).map_err(|e| bad(format!("is not a PostgreSQL JSONPath ({e})")))?;
        // A predicate check yields one boolean (or null) for any input, even `{}`.
        if let Ok(items) = path.query(&Value::Object(Default::default()))
            && let [only] = items.as_slice()
            && matches!(only.as_ref(), Value::Bool(_) | Value::Null)
        {
            return Err(bad("is a predicate check, which would match every aspect; write it as a filter".into()));
        }
        Ok(ContentPath(path))
    }

    /// Does `content` match (`content @? path`)?
    pub(crate) fn matches(&self, content: &Value) -> bool {
        self.0.exists(content).unwrap_or(false)
    }
}

/// The name of the first `$name` / `$"name"` variable outside string literals.
fn variable(text: &str) -> Option<String> {
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                chars.next();
            }
            '"' => in_string = !in_string,
            '$' if !in_string => {
                if let Some(&n) = chars.peek()
                    && (n.is_alphanumeric() || n == '_' || n == '"')
                {
                    let name: String = chars.take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '"').collect();
                    return Some(name.trim_matches('"').to_string());
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(path: &str, v: Value) -> bool {
        ContentPath::compile(path).unwrap().matches(&v)
    }

    #[test]
    fn the_documented_forms_select() {
        assert!(m(r#"$.label ? (@ == "cat")"#, json!({"label": "cat"})));
        assert!(!m(r#"$.label ? (@ == "cat")"#, json!({"label": "dog"})));
        assert!(m(r#"$.a.b ? (@ == "x")"#, json!({"a": {"b": "x"}})));
        assert!(m(r#"$.label ? (@ != "cat")"#, json!({"label": "dog"})));
        assert!(m("$.size ? (@ > 10000)", json!({"size": 20000})));
        assert!(!m("$.size ? (@ > 10000)", json!({"size": 10000})));
        assert!(m("$.size ? (@ >= 10000)", json!({"size": 10000})));
        assert!(m("$.size ? (@ < 1.5)", json!({"size": 1})));
        assert!(m("$.size ? (@ <= 1)", json!({"size": 1.0})));
        assert!(m(r#"$.name ? (@ < "b")"#, json!({"name": "a"})));
        assert!(m("$.done ? (@ == true)", json!({"done": true})));
        assert!(!m("$.done ? (@ == true)", json!({"done": false})));
        assert!(m("$.items[*] ? (@.size > 10000)", json!({"items": [{"size": 1}, {"size": 20000}]})));
        assert!(!m("$.items[*] ? (@.size > 10000)", json!({"items": [{"size": 1}]})));
        assert!(!m("$.size ? (@ > 10000)", json!({"other": 1})), "a missing key never matches");
        assert!(!m(r#"$.size ? (@ > 10000)"#, json!({"size": "big"})), "type mismatch is no match");
        assert!(m("$.tag", json!({"tag": null})), "a bare path tests existence");
        let img = json!({"w": 2000, "h": 1000, "kind": "img/png"});
        assert!(m(r#"$ ? (@.w * @.h > 1e6 && @.kind starts with "img")"#, img.clone()), "the README's example");
        assert!(!m(r#"$ ? (@.w * @.h > 1e7 && @.kind starts with "img")"#, img));
    }

    #[test]
    fn what_cannot_be_answered_is_refused() {
        for (path, why) in [
            ("$.a ? (@ ==", "not a PostgreSQL JSONPath"),
            ("label = cat", "not a PostgreSQL JSONPath"),
            ("$.size > 10000", "predicate check"),
            ("exists($.a)", "predicate check"),
            ("$.a ? (@ == $x)", "variable $x"),
        ] {
            let e = ContentPath::compile(path).unwrap_err().to_string();
            assert!(e.contains("'content_path'") && e.contains(why) && e.contains("? (@"), "{path}: {e}");
        }
        assert!(ContentPath::compile(r#"$.a ? (@ == "$x")"#).is_ok(), "a $ inside a string is text");
    }
}
