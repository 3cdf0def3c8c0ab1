//! Aspects: typed, time-bounded assertions about an entity in the append-only Datafabric.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Page, PageRequest};
use crate::error::{Error, Result};
use crate::urn::is_urn;
pub use crate::urn::{ASPECT_PREFIX, POLICY_PREFIX};

/// One aspect record. Retracted aspects keep their record, with `valid_to` set.
#[derive(Debug, Clone, PartialEq)]
pub struct Aspect {
    /// `urn:ivcap:aspect:<uuid>`.
    pub id: String,
    /// The URN the aspect is about.
    pub entity: String,
    /// The schema URN of `content`.
    pub schema: String,
    /// The asserted JSON object (absent when a list was asked without content).
    pub content: Option<Value>,
    pub valid_from: DateTime<Utc>,
    /// When it was retracted or replaced; `None` while live.
    pub valid_to: Option<DateTime<Utc>>,
    pub asserter: Option<String>,
    /// The aspect this one replaced (an update).
    pub replaces: Option<String>,
    pub policy: Option<String>,
}

impl Aspect {
    /// One field, as filters name it ([`crate::backend::listing::ASPECT_FIELDS`]).
    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "entity" => Some(self.entity.clone()),
            "schema" => Some(self.schema.clone()),
            "policy" => self.policy.clone(),
            "created_by" => self.asserter.clone(),
            "replaces" => self.replaces.clone(),
            "valid_from" => Some(crate::time::format(self.valid_from)),
            "valid_to" => self.valid_to.map(crate::time::format),
            _ => None,
        }
    }

    /// Valid at `at`: asserted at or before it and not retracted by then.
    pub fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from <= at && self.valid_to.is_none_or(|to| at < to)
    }
}

/// A new assertion, checked: `entity` and `schema` are URNs, `content` is a JSON object,
/// `policy` (if any) starts with `urn:ivcap:policy:`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAspect {
    pub entity: String,
    pub schema: String,
    pub content: Value,
    pub policy: Option<String>,
}

impl NewAspect {
    /// Checks the arguments of `add_aspect` / `update_aspect`.
    pub fn new(entity: &str, schema: &str, content: Value, policy: Option<&str>) -> Result<Self> {
        let entity = entity.trim();
        let schema = schema.trim();
        if !is_urn(entity) {
            return Err(Error::invalid(
                "entity",
                format!(
                    "'{entity}' is not a URN; pass the URN the aspect is about, e.g. urn:ivcap:artifact:… or urn:example:thing:1"
                ),
            ));
        }
        if !is_urn(schema) || schema.contains('%') {
            return Err(Error::invalid(
                "schema",
                format!(
                    "'{schema}' is not a schema URN; pass the full schema URN of the content, e.g. urn:example:schema:label.1 (no % wildcards)"
                ),
            ));
        }
        if !content.is_object() {
            return Err(Error::invalid(
                "content",
                format!(
                    "must be a JSON object, got {}; wrap the value, e.g. {{\"value\": …}}",
                    crate::text::describe_json(&content)
                ),
            ));
        }
        let policy = policy.map(str::trim).filter(|p| !p.is_empty());
        if let Some(p) = policy
            && (!p.starts_with(POLICY_PREFIX) || p.len() == POLICY_PREFIX.len() || p.chars().any(char::is_whitespace))
        {
            return Err(Error::invalid(
                "policy",
                format!(
                    "'{p}' is not a policy URN; it must start with {POLICY_PREFIX}, e.g. urn:ivcap:policy:ivcap.open.metadata, or be omitted"
                ),
            ));
        }
        Ok(NewAspect { entity: entity.into(), schema: schema.into(), content, policy: policy.map(str::to_string) })
    }
}

/// Which way `list_aspects` sorts by `valid_from`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Order {
    #[serde(rename = "ASC")]
    Asc,
    #[default]
    #[serde(rename = "DESC")]
    Desc,
}

impl Order {
    /// `ASC` or `DESC` (any case); anything else is an argument error.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ASC" => Ok(Order::Asc),
            "DESC" => Ok(Order::Desc),
            _ => Err(Error::invalid(
                "order_direction",
                format!("'{s}' is neither ASC nor DESC; pass ASC (oldest first) or DESC (newest first, the default)"),
            )),
        }
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        }
    }
}

/// What `list_aspects` asks for. Results are sorted by `order_by` (default `valid_from`), then id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AspectQuery {
    /// Exact entity URN.
    pub entity: Option<String>,
    /// Schema URN pattern; `%` matches any run of characters.
    pub schema: Option<String>,
    /// PostgreSQL SQL/JSON path the content must match (`content @? path`).
    pub content_path: Option<String>,
    /// What was valid at this instant; `None` = now (live aspects only).
    pub at_time: Option<DateTime<Utc>>,
    /// Return each aspect's content too.
    pub include_content: bool,
    /// A filter expression over [`crate::backend::listing::ASPECT_FIELDS`], checked.
    pub filter: Option<String>,
    /// Comma-separated fields to sort by (`None` = `valid_from`), checked.
    pub order_by: Option<String>,
    pub order: Order,
}

/// What `update_aspect` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Updated {
    /// The new aspect.
    pub id: String,
    /// The aspect it retracted, if one was live.
    pub replaced: Option<String>,
}

/// The Datafabric: assert, update, read, query and retract aspects.
#[async_trait::async_trait]
pub trait AspectsBackend {
    /// Asserts a new aspect; returns its URN.
    async fn add_aspect(&self, new: &NewAspect) -> Result<String>;

    /// Retracts the live `(entity, schema)` aspect (if any) and asserts `new`. More than one
    /// live aspect is an error naming them.
    async fn update_aspect(&self, new: &NewAspect) -> Result<Updated>;

    /// One aspect by URN, retracted or not.
    async fn get_aspect(&self, id: &str) -> Result<Aspect>;

    /// Aspects matching `query`, one page at a time.
    async fn list_aspects(&self, query: &AspectQuery, page: &PageRequest) -> Result<Page<Aspect>>;

    /// Sets `valid_to` of a live aspect to now and returns the record; never deletes.
    /// Retracting a retracted aspect is an error that says when it was retracted.
    async fn retract_aspect(&self, id: &str) -> Result<Aspect>;

    /// Distinct schema URNs starting with `prefix` among the aspects there are (for argument
    /// completion), sorted, at most `limit`, and whether there are more.
    async fn schema_urns(&self, prefix: &str, limit: usize) -> Result<(Vec<String>, bool)>;
}

/// The aspect URN for `id`: a full `urn:ivcap:aspect:…` or a bare UUID (as local file names are).
pub fn aspect_urn(id: &str) -> Result<String> {
    let id = id.trim();
    if let Some(rest) = id.strip_prefix(ASPECT_PREFIX)
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c == '/')
    {
        return Ok(id.to_string());
    }
    if uuid::Uuid::try_parse(id).is_ok() {
        return Ok(format!("{ASPECT_PREFIX}{}", id.to_ascii_lowercase()));
    }
    Err(Error::invalid(
        "aspect",
        format!(
            "'{id}' is not an aspect URN; pass urn:ivcap:aspect:<uuid> (or the bare uuid) as add_aspect or list_aspects returned it"
        ),
    ))
}

/// The error for an update whose `(entity, schema)` has several live aspects.
pub fn not_unique(new: &NewAspect, live: &[Aspect], detail: &str) -> Error {
    let ids: Vec<&str> = live.iter().map(|a| a.id.as_str()).collect();
    Error::invalid(
        "entity/schema",
        format!(
            "{} live aspects have entity {} and schema {} ({detail}: {}), so update_aspect cannot tell which to replace; \
             retract the extra ones with retract_aspect, or use add_aspect to assert another one",
            live.len(),
            new.entity,
            new.schema,
            ids.join(", ")
        ),
    )
}

/// The error for retracting an aspect twice.
pub fn already_retracted(id: &str, at: DateTime<Utc>) -> Error {
    Error::invalid(
        "aspect",
        format!(
            "{id} was already retracted at {}; nothing changed. Retracted aspects stay readable with get_aspect; \
             call list_aspects to find the live one",
            crate::time::format(at)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_aspects_are_checked() {
        assert!(NewAspect::new("urn:e:1", "urn:s:1", json!({"a": 1}), None).is_ok());
        let e = NewAspect::new("thing", "urn:s:1", json!({}), None).unwrap_err().to_string();
        assert!(e.contains("'entity'") && e.contains("not a URN"), "{e}");
        let e = NewAspect::new("urn:e:1", "urn:s:%", json!({}), None).unwrap_err().to_string();
        assert!(e.contains("'schema'"), "{e}");
        let e = NewAspect::new("urn:e:1", "urn:s:1", json!([1]), None).unwrap_err().to_string();
        assert!(e.contains("'content'") && e.contains("an array"), "{e}");
        let e = NewAspect::new("urn:e:1", "urn:s:1", json!({}), Some("open")).unwrap_err().to_string();
        assert!(e.contains("'policy'") && e.contains(POLICY_PREFIX), "{e}");
        let ok = NewAspect::new(" urn:e:1 ", "urn:s:1", json!({}), Some(" ")).unwrap();
        assert_eq!((ok.entity.as_str(), ok.policy), ("urn:e:1", None));
    }

    #[test]
    fn aspect_ids_accept_bare_uuids() {
        let u = "9c94ad00-1315-47fe-88e3-e8ed133bbffc";
        assert_eq!(aspect_urn(u).unwrap(), format!("urn:ivcap:aspect:{u}"));
        assert_eq!(aspect_urn(&format!("urn:ivcap:aspect:{u}")).unwrap(), format!("urn:ivcap:aspect:{u}"));
        assert!(aspect_urn("urn:ivcap:artifact:1").is_err());
        assert!(aspect_urn("../x").is_err());
    }

    #[test]
    fn orders_parse() {
        assert_eq!(Order::parse("asc").unwrap(), Order::Asc);
        assert!(Order::parse("up").is_err());
    }
}
