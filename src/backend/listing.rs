//! The options IVCAP lists share (docs/ivcap-wire.md §3): a filter expression, an order and
//! a time. Checked once, before any request; sent to the platform as given; applied by the
//! local backend to its in-memory lists, with the options kept in the page token so later
//! pages answer the same question.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::filter::{Expr, order};
use super::paging::{Page, PageRequest};
use crate::error::{Error, Result};

/// What one list can be filtered and ordered by, as the platform names the fields.
#[derive(Debug, Clone, Copy)]
pub struct ListFields {
    pub filter: &'static [&'static str],
    pub order_by: &'static [&'static str],
}

pub const SERVICE_FIELDS: ListFields =
    ListFields { filter: &["id", "name", "description"], order_by: &["name", "description"] };

pub const ARTIFACT_FIELDS: ListFields = ListFields {
    filter: &["id", "name", "mime-type", "size", "status", "created-at"],
    order_by: &["name", "mime-type", "size", "status", "created-at"],
};

pub const JOB_FIELDS: ListFields = ListFields {
    filter: &["id", "status", "started-at", "finished-at"],
    order_by: &["status", "started-at", "finished-at"],
};

/// `order-by` as `GET /1/aspects` takes it (docs/ivcap-wire.md §8.4).
pub const ASPECT_FIELDS: ListFields = ListFields {
    filter: &["entity", "schema", "policy", "created_by", "replaces", "valid_from", "valid_to"],
    order_by: &[
        "entity",
        "schema",
        "content",
        "policy",
        "account",
        "created_by",
        "retracted_by",
        "replaces",
        "valid_from",
        "valid_to",
    ],
};

/// A list's filter and order, checked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListOptions {
    /// The filter expression as given (it parses, and names only known fields).
    pub filter: Option<String>,
    /// Comma-separated fields to sort by, each a known one.
    pub order_by: Option<String>,
    /// Sort descending; only with `order_by`.
    pub order_desc: Option<bool>,
    /// The list as it was at this instant.
    pub at_time: Option<DateTime<Utc>>,
}

impl ListOptions {
    /// Checks the tool arguments `filter`, `order_by` and `order_desc` against `fields`.
    pub fn new(
        filter: Option<String>,
        order_by: Option<String>,
        order_desc: Option<bool>,
        at_time: Option<DateTime<Utc>>,
        fields: &ListFields,
    ) -> Result<Self> {
        let filter = filter.map(|f| f.trim().to_string()).filter(|f| !f.is_empty());
        if let Some(f) = &filter {
            let expr = parse_filter(f)?;
            expr.check_fields(fields.filter).map_err(|e| Error::invalid("filter", e))?;
        }
        let order_by = order_by.map(|o| o.trim().to_string()).filter(|o| !o.is_empty());
        if let Some(o) = &order_by {
            check_order_by(o, fields)?;
        }
        if order_desc.is_some() && order_by.is_none() {
            return Err(Error::invalid(
                "order_desc",
                "applies only with order_by; pass order_by too, or omit order_desc",
            ));
        }
        Ok(ListOptions { filter, order_by, order_desc, at_time })
    }

    /// The query parameters of a platform list: `filter`, `order-by`, `order-desc`, `at-time`.
    pub fn wire(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(f) = &self.filter {
            q.push(("filter", f.clone()));
        }
        if let Some(o) = &self.order_by {
            q.push(("order-by", o.clone()));
            q.push(("order-desc", self.order_desc.unwrap_or(false).to_string()));
        }
        if let Some(t) = self.at_time {
            q.push(("at-time", crate::time::format(t)));
        }
        q
    }

    /// These options with `search` (text a name contains, or a `%` pattern) joined to the
    /// filter as one more condition.
    pub fn with_name_search(&self, search: Option<&str>) -> ListOptions {
        let mut options = self.clone();
        if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
            let pattern = if search.contains('%') { search.to_string() } else { format!("%{search}%") };
            let cond = name_filter(&pattern);
            options.filter = Some(match options.filter.take() {
                Some(f) => format!("({f}) and {cond}"),
                None => cond,
            });
        }
        options
    }

    /// The parsed filter.
    pub fn expr(&self) -> Result<Option<Expr>> {
        self.filter.as_deref().map(parse_filter).transpose()
    }

    /// The items of `all` that match the filter, sorted by `order_by` (stable: items with
    /// equal keys keep their order in `all`). `get` reads one field of an item.
    pub fn select<T>(&self, all: Vec<T>, get: impl Fn(&T, &str) -> Option<String>) -> Result<Vec<T>> {
        let expr = self.expr()?;
        let mut hits: Vec<T> =
            all.into_iter().filter(|item| expr.as_ref().is_none_or(|e| e.matches(&|f| get(item, f)))).collect();
        if let Some(order_by) = &self.order_by {
            let keys: Vec<&str> = order_by.split(',').map(str::trim).collect();
            let desc = self.order_desc.unwrap_or(false);
            hits.sort_by(|a, b| {
                let o = keys.iter().fold(std::cmp::Ordering::Equal, |o, k| {
                    // Missing values sort last ascending, first descending, as in SQL.
                    o.then_with(|| match (get(a, k), get(b, k)) {
                        (Some(x), Some(y)) => order(&x, &y),
                        (Some(_), None) => std::cmp::Ordering::Less,
                        (None, Some(_)) => std::cmp::Ordering::Greater,
                        (None, None) => std::cmp::Ordering::Equal,
                    })
                });
                if desc { o.reverse() } else { o }
            });
        }
        Ok(hits)
    }
}

/// A `name ~= '…'` filter; `'` is doubled as the filter grammar wants.
pub fn name_filter(pattern: &str) -> String {
    format!("name~='{}'", pattern.replace('\'', "''"))
}

fn parse_filter(f: &str) -> Result<Expr> {
    Expr::parse(f).map_err(|e| {
        Error::invalid(
            "filter",
            format!("{e}; write e.g. name ~= 'hello%' (combine with and/or, group with parentheses)"),
        )
    })
}

/// `order_by`: comma-separated fields of `fields.order_by`.
pub fn check_order_by(order_by: &str, fields: &ListFields) -> Result<()> {
    match order_by.split(',').map(str::trim).find(|k| !fields.order_by.contains(k)) {
        None => Ok(()),
        Some(k) => Err(Error::invalid(
            "order_by",
            format!("'{k}' is not a field this list can be ordered by; pass one of {}", fields.order_by.join(", ")),
        )),
    }
}

/// Token of a local list page: where it resumes and the options it answers.
#[derive(Debug, Serialize, Deserialize)]
struct OptionsToken {
    offset: usize,
    options: ListOptions,
}

/// The options and offset a local list page answers: `options` on a first page, those of
/// the token on later ones (as on the platform, where a page token keeps the filters).
pub fn resume(page: &PageRequest, options: &ListOptions) -> Result<(ListOptions, usize)> {
    let Some(token) = page.inner_token()? else { return Ok((options.clone(), 0)) };
    let t: OptionsToken = serde_json::from_str(&token).map_err(|_| {
        Error::invalid(
            "page",
            "not a page token of this list; pass next_page from the previous answer unchanged, or omit page",
        )
    })?;
    Ok((t.options, t.offset))
}

/// The page of `all` starting at `offset`, with a token for the rest that keeps `options`.
pub fn page_from<T>(mut all: Vec<T>, page: &PageRequest, offset: usize, options: &ListOptions) -> Result<Page<T>> {
    let start = offset.min(all.len());
    let end = start.saturating_add(page.limit as usize).min(all.len());
    let next = if end < all.len() {
        let token = OptionsToken { offset: end, options: options.clone() };
        Some(serde_json::to_string(&token).map_err(|e| Error::Internal(format!("cannot encode a page token: {e}")))?)
    } else {
        None
    };
    let items = all.drain(start..end).collect();
    Ok(Page::new(items, next.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(filter: Option<&str>, order_by: Option<&str>, desc: Option<bool>) -> Result<ListOptions> {
        ListOptions::new(filter.map(Into::into), order_by.map(Into::into), desc, None, &ARTIFACT_FIELDS)
    }

    #[test]
    fn arguments_are_checked_with_the_fix() {
        let err = opts(Some("nme = 'x'"), None, None).unwrap_err().to_string();
        assert!(err.contains("'filter'") && err.contains("unknown field 'nme'") && err.contains("created-at"), "{err}");
        let err = opts(Some("name = "), None, None).unwrap_err().to_string();
        assert!(err.contains("'filter'") && err.contains("name ~= 'hello%'"), "{err}");
        let err = opts(None, Some("size,colour"), None).unwrap_err().to_string();
        assert!(err.contains("'order_by'") && err.contains("'colour'") && err.contains("mime-type"), "{err}");
        let err = opts(None, None, Some(true)).unwrap_err().to_string();
        assert!(err.contains("'order_desc'"), "{err}");
        assert_eq!(opts(Some("  "), Some(""), None).unwrap(), ListOptions::default());
    }

    #[test]
    fn wire_parameters_are_as_given() {
        let o = opts(Some("name ~= 'a%'"), Some("size"), None).unwrap();
        assert_eq!(
            o.wire(),
            vec![("filter", "name ~= 'a%'".into()), ("order-by", "size".into()), ("order-desc", "false".into())]
        );
    }

    #[test]
    fn select_filters_then_sorts_with_missing_values_last() {
        let items = vec![("b", Some("3")), ("a", None), ("c", Some("10")), ("ab", Some("1"))];
        let get = |i: &(&str, Option<&str>), f: &str| match f {
            "name" => Some(i.0.to_string()),
            "size" => i.1.map(str::to_string),
            _ => None,
        };
        let o = opts(Some("name ~= 'a%' or size > 2"), Some("size"), None).unwrap();
        let names: Vec<&str> = o.select(items.clone(), get).unwrap().iter().map(|i| i.0).collect();
        assert_eq!(names, ["ab", "b", "c", "a"]);
        let o = opts(None, Some("size"), Some(true)).unwrap();
        let names: Vec<&str> = o.select(items, get).unwrap().iter().map(|i| i.0).collect();
        assert_eq!(names, ["a", "c", "b", "ab"]);
    }

    #[test]
    fn a_name_search_joins_the_filter() {
        let o = opts(Some("size > 1 or size < 0"), None, None).unwrap();
        assert_eq!(
            o.with_name_search(Some("O'B")).filter.as_deref(),
            Some("(size > 1 or size < 0) and name~='%O''B%'")
        );
        assert_eq!(o.with_name_search(Some(" ")), o);
        let only = ListOptions::default().with_name_search(Some("a%"));
        assert!(only.expr().unwrap().unwrap().matches(&|_| Some("abc".into())));
    }

    #[test]
    fn page_tokens_keep_the_options() {
        let o = opts(Some("size > 1"), None, None).unwrap();
        let first = page_from((0..5).collect::<Vec<u8>>(), &PageRequest::first(2), 0, &o).unwrap();
        let next = PageRequest { limit: 2, page: first.next_page };
        let (kept, offset) = resume(&next, &ListOptions::default()).unwrap();
        assert_eq!((kept, offset), (o, 2));
        let bad = PageRequest { limit: 2, page: Some(crate::backend::paging::wrap_token("7|x|")) };
        assert!(resume(&bad, &ListOptions::default()).unwrap_err().to_string().contains("'page'"));
    }
}
