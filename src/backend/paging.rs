//! Paging, written once: the page a caller asks for ([`PageRequest`]), one page of an
//! answer ([`Page`]), the opaque token format every list shares, and offset paging over an
//! in-memory list (local search; local lists page in `listing.rs`). The platform's `next` links are read in
//! `platform/mod.rs`, into the same tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::{Error, Result};

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

/// Where an offset-paged list resumes: the offset, and the value the first page pinned
/// (e.g. the instant a search is answered at) so every page answers the same question.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resume {
    pub offset: usize,
    pub pinned: Option<String>,
}

impl PageRequest {
    /// Where an offset-paged answer resumes. `scope` is what the token was bound to when it
    /// was made (empty for none; a query digest for search), `what` names it in the error.
    pub fn resume(&self, scope: &str, what: &str) -> Result<Resume> {
        let Some(token) = self.inner_token()? else { return Ok(Resume::default()) };
        let bad = |why: String| {
            Error::invalid(
                "page",
                format!("{why}; pass next_page from the previous answer to the same {what} unchanged, or omit page"),
            )
        };
        let mut parts = token.splitn(3, '|');
        let (Some(offset), Some(pinned), Some(bound)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not a page token from this server".into()));
        };
        if bound != scope {
            return Err(bad(format!("this page token belongs to a different {what}")));
        }
        let offset = offset.parse::<usize>().map_err(|_| bad("not a page token from this server".into()))?;
        Ok(Resume { offset, pinned: (!pinned.is_empty()).then(|| pinned.to_string()) })
    }
}

/// The page of an answer of `total` items that starts at `resume.offset`, with a token for
/// the rest that keeps `resume.pinned` (or `pin`, on a first page) and `scope`. `items` are
/// the page's own (those from `resume.offset` on, at most `page.limit`), so an answer too
/// large to keep whole is never made whole.
pub fn offset_window<T>(
    items: Vec<T>,
    total: usize,
    page: &PageRequest,
    resume: &Resume,
    pin: &str,
    scope: &str,
) -> Page<T> {
    let start = resume.offset.min(total);
    let end = start.saturating_add(page.limit as usize).min(total);
    let pinned = resume.pinned.as_deref().unwrap_or(pin);
    let next = (end < total).then(|| format!("{end}|{pinned}|{scope}"));
    Page::new(items, next.as_deref())
}

#[cfg(test)]
mod tests {
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

    /// The page of `all` at `resume`.
    fn offset_page<T>(mut all: Vec<T>, page: &PageRequest, resume: &Resume, pin: &str, scope: &str) -> Page<T> {
        let total = all.len();
        let start = resume.offset.min(total);
        let end = start.saturating_add(page.limit as usize).min(total);
        offset_window(all.drain(start..end).collect(), total, page, resume, pin, scope)
    }

    #[test]
    fn offset_paging_visits_each_item_once() {
        let all: Vec<u32> = (0..25).collect();
        let mut seen = Vec::new();
        let mut req = PageRequest::first(10);
        loop {
            let resume = req.resume("", "list").unwrap();
            let page = offset_page(all.clone(), &req, &resume, "", "");
            seen.extend(page.items);
            match page.next_page {
                Some(t) => req.page = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, all);
    }

    #[test]
    fn offset_tokens_keep_the_pin_and_refuse_another_scope() {
        let first = offset_page((0..5).collect::<Vec<u8>>(), &PageRequest::first(2), &Resume::default(), "t0", "q1");
        let next = PageRequest { limit: 2, page: first.next_page };
        let err = next.resume("q2", "query").unwrap_err().to_string();
        assert!(err.contains("'page'") && err.contains("different query"), "{err}");
        let resume = next.resume("q1", "query").unwrap();
        assert_eq!(resume, Resume { offset: 2, pinned: Some("t0".into()) });
        let second = offset_page((0..5).collect::<Vec<u8>>(), &next, &resume, "t1", "q1");
        assert_eq!(second.items, vec![2, 3]);
        assert_eq!(unwrap_token(&second.next_page.unwrap()).unwrap(), "4|t0|q1");
        let garbage = PageRequest { limit: 2, page: Some(wrap_token("17")) };
        assert!(garbage.resume("", "list").is_err());
    }
}
