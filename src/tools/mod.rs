//! The MCP tools, one module per toolset. Handlers are thin: typed arguments in, one
//! backend call, a view out. They are methods of [`ToolContext`], the state they use, so the
//! tools know nothing of the server that dispatches to them. Shared: the argument types
//! ([`args`]), the output budget ([`budget`]), the list view, `resource_link`s ([`links`]) and
//! the mapping of library errors to `isError` text.

pub mod args;
pub mod artifacts;
pub mod aspects;
pub(crate) mod budget;
pub mod collections;
pub mod jobs;
pub mod links;
pub mod search;
pub mod secrets;
pub mod services;

use schemars::JsonSchema;
use serde::Serialize;

use std::sync::Mutex;

use rmcp::model::{CallToolResult, ContentBlock, ProgressNotificationParam, ProgressToken, RequestMetaObject};
use rmcp::{Peer, RoleServer};

use std::sync::Arc;
use std::time::Duration;

use crate::backend::progress::Progress;
use crate::backend::{Backend, Page};
use crate::error::Error;
use crate::path_policy::PathPolicy;

/// What the tool handlers work with: the backend and the limits the server was started with.
/// Cheap to clone; each session's server holds one.
#[derive(Clone)]
pub struct ToolContext {
    pub(crate) backend: Arc<dyn Backend>,
    /// Largest tool result, in characters (`--output-budget`).
    pub(crate) output_budget: usize,
    /// Longest a tool waits for a job (`--max-wait`).
    pub(crate) max_wait: Duration,
    /// Which local files `path` arguments may name.
    pub(crate) paths: PathPolicy,
}

impl ToolContext {
    pub fn new(backend: Arc<dyn Backend>, output_budget: usize, max_wait: Duration, paths: PathPolicy) -> Self {
        ToolContext { backend, output_budget, max_wait, paths }
    }

    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }
}

/// A tool's failure as the model reads it (`isError: true`).
pub(crate) fn to_tool_error(e: Error) -> String {
    e.for_model()
}

/// `v` as a JSON object (an empty one when it is not an object).
pub(crate) fn as_object(v: serde_json::Value) -> rmcp::model::JsonObject {
    match v {
        serde_json::Value::Object(map) => map,
        _ => rmcp::model::JsonObject::new(),
    }
}

/// A successful result with `view` as structured content (plus its text copy) followed by
/// `resource_link` blocks for the entities it names, so a client can read them as resources.
pub(crate) fn linked<T: Serialize>(view: &T, links: Vec<ContentBlock>) -> crate::error::Result<CallToolResult> {
    let value = serde_json::to_value(view).map_err(|e| Error::Internal(format!("cannot encode the result: {e}")))?;
    let mut result = CallToolResult::structured(value);
    result.content.extend(links);
    Ok(result)
}

/// Sends MCP `notifications/progress` for one request when the client gave a progress token,
/// and nothing otherwise. Progress only ever increases, as the protocol requires.
pub(crate) struct McpProgress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
    last: Mutex<Option<f64>>,
}

impl McpProgress {
    pub(crate) fn new(meta: &RequestMetaObject, peer: Peer<RoleServer>) -> Self {
        McpProgress { peer, token: meta.get_progress_token(), last: Mutex::new(None) }
    }
}

#[async_trait::async_trait]
impl Progress for McpProgress {
    async fn report(&self, progress: f64, total: Option<f64>, message: &str) {
        let Some(token) = &self.token else { return };
        // Two reports of the same amount (e.g. in the same instant) still go out, nudged up.
        let progress = {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            let next = last.map_or(progress, |l| progress.max(l + 0.001));
            *last = Some(next);
            next
        };
        let mut param = ProgressNotificationParam::new(token.clone(), progress).with_message(message.to_string());
        if let Some(total) = total {
            param = param.with_total(total.max(progress));
        }
        if let Err(e) = self.peer.notify_progress(param).await {
            tracing::debug!(error = %e, "cannot send a progress notification");
        }
    }
}

/// The `{items, next_page}` shape every list tool returns.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ListView<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this as `page` to get the next page; null on the last page.
    pub next_page: Option<String>,
    /// True when items were left out to keep the answer within the output budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// Anything the caller should know about this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Items on the page before any were cut.
    #[serde(skip)]
    total: usize,
}

impl<T: Serialize> ListView<T> {
    /// The view of `page`, with items mapped by `view`, cut to fit `budget` characters.
    pub fn bounded<U>(page: Page<U>, view: impl Fn(U) -> T, budget: usize) -> Self {
        let items: Vec<T> = page.items.into_iter().map(view).collect();
        let list = ListView { total: items.len(), items, next_page: page.next_page, truncated: None, note: page.note };
        budget::fit(list, budget)
    }
}

impl<T: Serialize> budget::Shrink for ListView<T> {
    /// Drops items from the end until about `excess` characters are gone; one item stays.
    fn shrink(&mut self, excess: usize) -> Option<budget::Cut> {
        budget::cut_items(&mut self.items, self.total, excess, "items")
    }

    fn note(&mut self) -> &mut Option<String> {
        &mut self.note
    }

    fn truncated(&mut self) -> &mut Option<bool> {
        &mut self.truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_cut_to_the_budget_and_say_so() {
        let page = Page::new((0..100).map(|i| format!("item-{i:04}-{}", "x".repeat(90))).collect(), Some("t"));
        let view = ListView::bounded(page, |s: String| s, 2_000);
        assert!(serde_json::to_string(&view).unwrap().len() <= 2_000);
        assert_eq!(view.truncated, Some(true));
        assert!(view.note.unwrap().contains(&format!("limit={}", view.items.len())));
        assert!(view.next_page.is_some());
    }

    #[test]
    fn small_lists_are_untouched() {
        let view = ListView::bounded(Page::new(vec![1, 2, 3], None), |i: i32| i, 2_000);
        assert_eq!((view.items.len(), view.truncated), (3, None));
    }
}
