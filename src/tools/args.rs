//! Argument types shared by the tools: a list's `limit`, `page` and options, and an `at_time`. Each
//! carries its JSON Schema and is checked in one place, so every tool that takes one
//! accepts and refuses the same things with the same message.

use chrono::{DateTime, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::Deserialize;

use crate::backend::listing::{ListFields, ListOptions};
use crate::backend::{DEFAULT_LIMIT, LIMIT_RANGE, PageRequest};
use crate::error::Result;

/// `limit`: items per page, 1 to 50 (default 10); checked by [`page_request`]. Its schema says
/// all that, so the fields that use it need no description (`tools/list` stays small).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Limit(pub u32);

impl JsonSchema for Limit {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Limit".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "integer",
            "format": "uint32",
            "minimum": *LIMIT_RANGE.start(),
            "maximum": *LIMIT_RANGE.end(),
            "default": DEFAULT_LIMIT,
        })
    }
}

/// `page`: the opaque `next_page` token of a previous answer. The name says it, so its schema
/// is a bare string and fields that use it carry no description.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct PageToken(pub String);

impl JsonSchema for PageToken {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PageToken".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string"})
    }
}

/// The page that `limit` and `page` ask for, checked (a limit outside 1..=50 is refused,
/// a blank page is the first page).
pub fn page_request(limit: Option<Limit>, page: Option<PageToken>) -> Result<PageRequest> {
    PageRequest::new(limit.map(|l| l.0), page.map(|p| p.0))
}

/// `at_time`: an RFC 3339 instant with an offset, e.g. "2026-01-31T12:00:00Z" (what was valid
/// then; absent = now). Its schema's `date-time` format says so, without a description.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AtTime(pub String);

impl JsonSchema for AtTime {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AtTime".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({"type": "string", "format": "date-time"})
    }
}

/// The instant `at_time` names; absent or blank is `None`.
pub fn at_time(at: Option<&AtTime>) -> Result<Option<DateTime<Utc>>> {
    crate::time::parse_optional("at_time", at.map(|a| a.0.as_str()))
}

/// Declares a tool's argument struct (deserialised, with a schema, unknown arguments refused)
/// that ends in the paging arguments `limit` and `page`, so every paged tool declares them alike.
/// A macro, not a shared struct under `#[serde(flatten)]`: serde ignores `deny_unknown_fields`
/// on a struct with a flattened field, and unknown arguments must stay errors.
macro_rules! paged_args {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:tt)* }) => {
        $(#[$meta])*
        #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($field)*
            #[serde(default)]
            pub limit: Option<$crate::tools::args::Limit>,
            #[serde(default)]
            pub page: Option<$crate::tools::args::PageToken>,
        }
    };
}
pub(crate) use paged_args;

/// Argument names that changed, as (tool, old name, new name). A call that uses the old name
/// is read as if it used the new one, so clients written against the old names keep working;
/// the old names are not in the published schemas.
pub const RENAMED_ARGUMENTS: &[(&str, &str, &str)] = &[
    ("get_job", "job_id", "job"),
    ("get_job", "service_id", "service"),
    ("get_artifact", "artifact_id", "artifact"),
    ("download_artifact", "artifact_id", "artifact"),
    ("get_aspect", "aspect_id", "aspect"),
    ("retract_aspect", "aspect_id", "aspect"),
    ("list_services", "search", "name"),
];

/// [`paged_args!`] for a list with the list options: the struct's own fields, then `filter`
/// (its description the tool's example, `filter = "e.g. …"`), `order_by`, `order_desc` and
/// `at_time`, read with [`list_options`], then `limit` and `page`.
macro_rules! list_args {
    ($(#[$meta:meta])* pub struct $name:ident { $($field:tt)* } filter = $filter:tt) => {
        $crate::tools::args::paged_args! {
            $(#[$meta])*
            pub struct $name {
                $($field)*
                #[doc = $filter]
                #[serde(default)]
                pub filter: Option<String>,
                #[serde(default)]
                pub order_by: Option<String>,
                #[serde(default)]
                pub order_desc: Option<bool>,
                #[serde(default)]
                pub at_time: Option<$crate::tools::args::AtTime>,
            }
        }
    };
}
pub(crate) use list_args;

/// The list options `filter`, `order_by`, `order_desc` and `at_time`, checked against what
/// the list has (`fields`).
pub fn list_options(
    filter: Option<String>,
    order_by: Option<String>,
    order_desc: Option<bool>,
    at: Option<&AtTime>,
    fields: &ListFields,
) -> Result<ListOptions> {
    ListOptions::new(filter, order_by, order_desc, at_time(at)?, fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_pages_are_checked_once() {
        assert_eq!(page_request(None, None).unwrap().limit, 10);
        let err = page_request(Some(Limit(51)), None).unwrap_err().to_string();
        assert!(err.contains("'limit'") && err.contains("1 to 50"), "{err}");
        assert_eq!(page_request(Some(Limit(5)), Some(PageToken(" ".into()))).unwrap().page, None);
    }

    /// `known` deserialises as `T`; with one more, misspelt argument it is refused by name.
    fn refuses_unknown<T: serde::de::DeserializeOwned + std::fmt::Debug>(known: serde_json::Value) {
        serde_json::from_value::<T>(known.clone()).unwrap();
        let mut typo = known;
        typo["limt"] = 5.into();
        let err = serde_json::from_value::<T>(typo).unwrap_err().to_string();
        assert!(err.contains("unknown field `limt`"), "{err}");
    }

    /// `a` with the members of `b` added.
    fn with(mut a: serde_json::Value, b: &serde_json::Value) -> serde_json::Value {
        if let (Some(a), Some(b)) = (a.as_object_mut(), b.as_object()) {
            a.extend(b.clone());
        }
        a
    }

    #[test]
    fn declared_list_arguments_are_all_read_and_unknown_ones_refused() {
        use crate::tools::{artifacts, aspects, collections, jobs, search, secrets, services};
        use serde_json::json;
        let list = json!({"filter": "f", "order_by": "o", "order_desc": true, "at_time": "2026-01-31T12:00:00Z",
                          "limit": 5, "page": "t"});
        let args: jobs::ListJobsArgs = serde_json::from_value(with(json!({"service": "s"}), &list)).unwrap();
        assert_eq!(args.service, "s");
        assert_eq!(
            (args.filter.as_deref(), args.order_by.as_deref(), args.order_desc),
            (Some("f"), Some("o"), Some(true))
        );
        assert_eq!(
            (args.at_time.map(|a| a.0), args.limit, args.page),
            (Some("2026-01-31T12:00:00Z".into()), Some(Limit(5)), Some(PageToken("t".into())))
        );
        refuses_unknown::<artifacts::ListArtifactsArgs>(list.clone());
        refuses_unknown::<jobs::ListJobsArgs>(with(json!({"service": "s"}), &list));
        refuses_unknown::<services::ListServicesArgs>(with(json!({"name": "s"}), &list));
        let paged = json!({"limit": 5, "page": "t"});
        refuses_unknown::<search::SearchArgs>(with(json!({"query": "q", "at_time": "2026-01-31T12:00:00Z"}), &paged));
        refuses_unknown::<secrets::ListSecretsArgs>(with(json!({"filter": "f"}), &paged));
        refuses_unknown::<collections::ListCollectionsArgs>(with(json!({"name": "n"}), &paged));
        refuses_unknown::<collections::GetCollectionArgs>(with(json!({"collection": "c"}), &paged));
        refuses_unknown::<aspects::ListAspectsArgs>(with(json!({"entity": "e", "order_direction": "ASC"}), &paged));
    }

    #[test]
    fn at_time_is_rfc3339_with_an_offset() {
        assert!(at_time(Some(&AtTime("2026-01-31T12:00:00Z".into()))).unwrap().is_some());
        assert_eq!(at_time(None).unwrap(), None);
        let err = at_time(Some(&AtTime("yesterday".into()))).unwrap_err().to_string();
        assert!(err.contains("'at_time'") && err.contains("RFC 3339"), "{err}");
    }
}
