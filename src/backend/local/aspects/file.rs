//! One aspect file, byte for byte as the Python SDK's `LocalIVCAP` writes it
//! (docs/ivcap-wire.md §13): `json.dumps(record, indent=2)` of
//! `{id, entity, schema, content, valid_from, valid_to}` in that order, with Python's
//! defaults — two-space indent, `", "`/`": "` separators, non-ASCII escaped as `\uXXXX`,
//! floats in `repr()` form — and times as UTC `datetime.isoformat()`
//! (`2026-11-29T17:11:38.627649+00:00`, microseconds omitted when zero), no trailing newline.
//!
//! Setting `valid_to` rewrites only that value: every other key and value is copied
//! verbatim (as raw JSON text), so a file the Python SDK wrote keeps its exact content.

use std::io;

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Timelike, Utc};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::ser::{Formatter, PrettyFormatter};
use serde_json::value::RawValue;

/// An aspect file as read.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AspectFile {
    pub id: String,
    pub entity: String,
    pub schema: String,
    /// The content object as raw JSON text: parsed only when someone needs it, which keeps
    /// building the index of a large store cheap.
    pub content: Box<RawValue>,
    #[serde(deserialize_with = "de_time")]
    pub valid_from: DateTime<Utc>,
    #[serde(default, deserialize_with = "de_opt_time")]
    pub valid_to: Option<DateTime<Utc>>,
}

/// The record in `LocalIVCAP`'s key order.
#[derive(Serialize)]
struct Record<'a> {
    id: &'a str,
    entity: &'a str,
    schema: &'a str,
    content: &'a Value,
    valid_from: String,
    valid_to: Option<String>,
}

/// Parses an aspect file; the error says what is wrong with it.
pub(crate) fn parse(bytes: &[u8]) -> Result<AspectFile, String> {
    let file: AspectFile = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if !file.content.get().trim_start().starts_with('{') {
        return Err("content is not a JSON object".into());
    }
    Ok(file)
}

impl AspectFile {
    /// The content, parsed.
    pub(crate) fn content_value(&self) -> Value {
        content_value(&self.content)
    }
}

/// Parses raw content (valid JSON by construction; `null` if it somehow is not).
pub(crate) fn content_value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// The file text of a new aspect.
pub(crate) fn render(
    id: &str,
    entity: &str,
    schema: &str,
    content: &Value,
    valid_from: DateTime<Utc>,
) -> io::Result<Vec<u8>> {
    let record = Record { id, entity, schema, content, valid_from: isoformat(valid_from), valid_to: None };
    to_python_json(&record)
}

/// `bytes` (an aspect file) with `valid_to` set to `to`; everything else unchanged.
pub(crate) fn with_valid_to(bytes: &[u8], to: DateTime<Utc>) -> Result<Vec<u8>, String> {
    let mut entries: Ordered = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let value = RawValue::from_string(format!("\"{}\"", isoformat(to))).map_err(|e| e.to_string())?;
    match entries.0.iter_mut().find(|(k, _)| k == "valid_to") {
        Some((_, v)) => *v = value,
        None => entries.0.push(("valid_to".into(), value)),
    }
    to_python_json(&entries).map_err(|e| e.to_string())
}

/// Python's `datetime.isoformat()` of a UTC time.
pub(crate) fn isoformat(t: DateTime<Utc>) -> String {
    let format = if t.nanosecond() / 1_000 == 0 { SecondsFormat::Secs } else { SecondsFormat::Micros };
    t.to_rfc3339_opts(format, false)
}

/// A time as `LocalIVCAP` may have written it: ISO 8601 with an offset, or naive (taken as UTC).
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|n| n.and_utc())
}

fn de_time<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    parse_time(&s).ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not an ISO 8601 time")))
}

fn de_opt_time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => {
            parse_time(&s).map(Some).ok_or_else(|| serde::de::Error::custom(format!("'{s}' is not an ISO 8601 time")))
        }
    }
}

/// A JSON object's entries in file order, values as raw text.
struct Ordered(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
                    out.push(entry);
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// `json.dumps(value, indent=2)`.
fn to_python_json<T: Serialize>(value: &T) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PyFormatter(PrettyFormatter::with_indent(b"  ")));
    value.serialize(&mut ser).map_err(io::Error::other)?;
    Ok(out)
}

/// serde_json's pretty printer with Python's `ensure_ascii` and float `repr`.
struct PyFormatter(PrettyFormatter<'static>);

impl Formatter for PyFormatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if c.is_ascii() && c != '\u{7f}' {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(py_float(value).as_bytes())
    }
}

/// Python's `repr(float)`: shortest round-trip digits, fixed notation for exponents
/// -4..16 (always with a fraction), otherwise `d.ddde+XX`.
fn py_float(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if mantissa.starts_with('-') { "-" } else { "" };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let n = digits.len() as i32;
    let body = if (-4..16).contains(&exp) {
        if exp < 0 {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        } else if n <= exp + 1 {
            format!("{digits}{}.0", "0".repeat((exp + 1 - n) as usize))
        } else {
            let (int, frac) = digits.split_at((exp + 1) as usize);
            format!("{int}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What `json.dumps(record, indent=2)` printed for this record (Python 3.12).
    const PYTHON: &str = "{\n  \"id\": \"urn:ivcap:aspect:9c94ad00-1315-47fe-88e3-e8ed133bbffc\",\n  \"entity\": \"urn:e:1\",\n  \"schema\": \"urn:s:1\",\n  \"content\": {\n    \"$schema\": \"urn:s:1\",\n    \"k\": 1,\n    \"caf\\u00e9\": [\n      1.5,\n      1e+16,\n      {}\n    ],\n    \"e\": []\n  },\n  \"valid_from\": \"2026-11-29T17:11:38.627649+00:00\",\n  \"valid_to\": null\n}";

    #[test]
    fn python_files_parse() {
        assert!(
            parse(
                PYTHON
                    .replace("\"content\": {", "\"content\": [{")
                    .replace("\"e\": []\n  }", "\"e\": []\n  }]")
                    .as_bytes()
            )
            .is_err()
        );
        let f = parse(PYTHON.as_bytes()).unwrap();
        assert_eq!(f.id, "urn:ivcap:aspect:9c94ad00-1315-47fe-88e3-e8ed133bbffc");
        assert_eq!(f.content_value()["café"], json!([1.5, 1e16, {}]));
        assert_eq!(isoformat(f.valid_from), "2026-11-29T17:11:38.627649+00:00");
        assert_eq!(f.valid_to, None);
    }

    #[test]
    fn rendering_matches_python_byte_for_byte() {
        // serde_json sorts object keys, so the content is built in sorted order here.
        let content = json!({"$schema": "urn:s:1", "caf\u{e9}": [1.5, 1e16, {}], "e": [], "k": 1});
        let t = parse_time("2026-11-29T17:11:38.627649+00:00").unwrap();
        let out =
            render("urn:ivcap:aspect:9c94ad00-1315-47fe-88e3-e8ed133bbffc", "urn:e:1", "urn:s:1", &content, t).unwrap();
        let expected = PYTHON.replace(
            "\"k\": 1,\n    \"caf\\u00e9\": [\n      1.5,\n      1e+16,\n      {}\n    ],\n    \"e\": []",
            "\"caf\\u00e9\": [\n      1.5,\n      1e+16,\n      {}\n    ],\n    \"e\": [],\n    \"k\": 1",
        );
        assert_eq!(String::from_utf8(out).unwrap(), expected);
    }

    #[test]
    fn setting_valid_to_keeps_everything_else_verbatim() {
        let t = parse_time("2026-11-30T01:02:03Z").unwrap();
        let out = String::from_utf8(with_valid_to(PYTHON.as_bytes(), t).unwrap()).unwrap();
        assert_eq!(out, PYTHON.replace("\"valid_to\": null", "\"valid_to\": \"2026-11-30T01:02:03+00:00\""));
        assert_eq!(parse(out.as_bytes()).unwrap().valid_to, Some(t));
    }

    #[test]
    fn python_float_repr() {
        for (v, s) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5e-7, "-2.5e-07"),
            (123.456, "123.456"),
            (100.0, "100.0"),
        ] {
            assert_eq!(py_float(v), s, "{v}");
        }
    }

    #[test]
    fn times_in_python_forms() {
        assert_eq!(isoformat(parse_time("2026-01-01T00:00:00Z").unwrap()), "2026-01-01T00:00:00+00:00");
        assert!(parse_time("2026-01-01T10:00:00.5").is_some(), "naive times are UTC");
        assert!(parse_time("yesterday").is_none());
    }
}
