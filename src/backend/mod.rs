//! The shared internal client. Tools talk only to [`Backend`]; the platform backend speaks
//! the IVCAP REST API and the local backend keeps a filesystem store. Each domain has its
//! own trait and types in a module here (`services`, `secrets`, …), implemented once per
//! backend in `platform/<domain>.rs` and `local/<domain>.rs`. No MCP types appear below
//! this module.

pub mod artifacts;
pub mod aspects;
pub mod jobs;
pub mod local;
pub mod platform;
pub mod progress;
pub mod search;
pub mod secrets;
pub mod services;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::{Error, Result};

pub use artifacts::{Artifact, ArtifactsBackend};
pub use aspects::{Aspect, AspectQuery, AspectsBackend, NewAspect};
pub use jobs::{Job, JobStatus, JobSummary, JobsBackend};
pub use search::SearchBackend;
pub use secrets::{SecretInfo, SecretsBackend};
pub use services::{ServiceDetail, ServiceSummary, ServicesBackend, ToolService};

/// Everything a tool can ask of IVCAP, whichever IVCAP it is.
pub trait Backend:
    ServicesBackend + JobsBackend + ArtifactsBackend + AspectsBackend + SearchBackend + SecretsBackend + Send + Sync
{
}

impl<
    T: ServicesBackend + JobsBackend + ArtifactsBackend + AspectsBackend + SearchBackend + SecretsBackend + Send + Sync,
> Backend for T
{
}

/// Smallest and largest page size, as IVCAP allows.
pub const LIMIT_RANGE: std::ops::RangeInclusive<u32> = 1..=50;
/// Page size when the caller gives none.
pub const DEFAULT_LIMIT: u32 = 10;

/// Which page of a list to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page, within [`LIMIT_RANGE`].
    pub limit: u32,
    /// The opaque `next_page` token of a previous answer.
    pub page: Option<String>,
}

impl PageRequest {
    /// Checks the tool arguments `limit` and `page`.
    pub fn new(limit: Option<u32>, page: Option<String>) -> Result<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !LIMIT_RANGE.contains(&limit) {
            return Err(Error::invalid(
                "limit",
                format!("{limit} is outside 1..=50; pass a number from 1 to 50 (default 10)"),
            ));
        }
        let page = page.filter(|p| !p.trim().is_empty());
        Ok(PageRequest { limit, page })
    }

    /// The first page of `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest { limit, page: None }
    }

    /// The backend's own token inside the caller's opaque one.
    pub fn inner_token(&self) -> Result<Option<String>> {
        self.page.as_deref().map(unwrap_token).transpose()
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Token for the next page; `None` on the last page. Never empty.
    pub next_page: Option<String>,
    /// Something the caller should know about this list (e.g. "local mode has no secrets").
    pub note: Option<String>,
}

impl<T> Page<T> {
    /// A page with a next-page token wrapping the backend's own `inner` token.
    pub fn new(items: Vec<T>, next_inner: Option<&str>) -> Self {
        let next_page = next_inner.filter(|t| !t.is_empty()).map(wrap_token);
        Page { items, next_page, note: None }
    }
}

impl<T> Page<T> {
    /// The same page with each item mapped by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_page: self.next_page, note: self.note }
    }
}

/// Wraps a backend page token so callers see one opaque, URL-safe format.
pub fn wrap_token(inner: &str) -> String {
    URL_SAFE_NO_PAD.encode(inner.as_bytes())
}

/// Reverses [`wrap_token`]; anything else is an argument error.
pub fn unwrap_token(token: &str) -> Result<String> {
    let bad = || {
        Error::invalid(
            "page",
            "not a page token from this server; pass next_page from the previous answer unchanged, or omit page for the first page",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let inner = String::from_utf8(bytes).map_err(|_| bad())?;
    if inner.is_empty() { Err(bad()) } else { Ok(inner) }
}

/// Is `s` a URN (`urn:<nid>:<nss>`)?
pub fn is_urn(s: &str) -> bool {
    let mut parts = s.splitn(3, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(u), Some(nid), Some(nss)) if u.eq_ignore_ascii_case("urn") && !nid.is_empty() && !nss.is_empty()
    ) && !s.chars().any(char::is_whitespace)
}

/// SQL `LIKE` matching with `%` as the only wildcard (IVCAP's filters and schema prefixes);
/// ASCII case-insensitive when `ignore_case`.
pub fn like_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Greedy match with back-tracking to the last `%`: linear in practice.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns() {
        assert!(like_match("urn:x:%", "urn:x:schema.1", false));
        assert!(like_match("%alpha%", "The Alpha service", true));
        assert!(!like_match("%alpha%", "The Alpha service", false));
        assert!(like_match("a%c%e", "abcde", false));
        assert!(!like_match("a%c", "abd", false));
        assert!(like_match("exact", "exact", false));
        assert!(!like_match("exact", "exactly", false));
    }

    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let t = wrap_token("abc/=+?&");
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(unwrap_token(&t).unwrap(), "abc/=+?&");
        assert!(unwrap_token("***").is_err());
        assert!(unwrap_token("").is_err());
    }

    #[test]
    fn limits_are_checked() {
        assert_eq!(PageRequest::new(None, None).unwrap().limit, 10);
        assert!(PageRequest::new(Some(0), None).is_err());
        assert!(PageRequest::new(Some(51), None).unwrap_err().to_string().contains("1 to 50"));
        assert_eq!(PageRequest::new(Some(50), Some(" ".into())).unwrap().page, None);
    }

    #[test]
    fn empty_next_token_means_last_page() {
        let p: Page<u8> = Page::new(vec![], Some(""));
        assert_eq!(p.next_page, None);
    }

    #[test]
    fn urns() {
        assert!(is_urn("urn:ivcap:service:123"));
        assert!(!is_urn("urn:ivcap"));
        assert!(!is_urn("hello"));
        assert!(!is_urn("urn:a:b c"));
    }
}
