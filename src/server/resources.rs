//! MCP resources. Every IVCAP entity already is a URI, so its resource URI is its URN exactly
//! as the tools return it (`urn:ivcap:artifact:…`, `urn:ivcap:aspect:…`, `urn:ivcap:job:…`,
//! `urn:ivcap:service:…`; local artifacts keep their `urn:file://…` ids). Reads return the
//! same views the tools do, within the output budget; artifacts return their bytes, up to
//! `download_artifact`'s inline limit. Also here: the four templates, the paged
//! `resources/list` (services, then the newest artifacts) and the `resource_link` blocks
//! tool results carry.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rmcp::ErrorData as McpError;
use rmcp::model::{
    ContentBlock, ListResourceTemplatesResult, ListResourcesResult, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::protocol_error::{Request, not_found, protocol_error};
use crate::backend::artifacts::Artifact;
use crate::backend::jobs;
use crate::backend::listing::ListOptions;
use crate::backend::paging::{unwrap_token, wrap_token};
use crate::backend::{PageRequest, ServiceSummary};
use crate::error::Error;
use crate::tools::ToolContext;
use crate::tools::artifacts::{DEFAULT_MAX_INLINE, is_text};
use crate::tools::aspects::AspectView;
use crate::tools::jobs::JobView;
use crate::tools::links::{JSON, artifact_link};
use crate::tools::services::ServiceView;
use crate::urn::{ARTIFACT_PREFIX, ASPECT_PREFIX, EntityKind, JOB_PREFIX, SERVICE_PREFIX};

/// Backend items fetched per `resources/list` page.
const LIST_PAGE: u32 = 20;
/// `resources/list` offers this many of the newest artifacts; list_artifacts pages through all.
const LISTED_ARTIFACTS: usize = 100;
/// Service descriptions in `resources/list` are cut to this many bytes.
const LISTED_DESCRIPTION: usize = 200;

/// The four resource templates, one per entity kind.
pub(super) fn templates() -> ListResourceTemplatesResult {
    ListResourceTemplatesResult::with_all_items(vec![
        ResourceTemplate::new(format!("{ARTIFACT_PREFIX}{{id}}"), "artifact")
            .with_title("IVCAP artifact")
            .with_description(
                "An artifact's bytes with its MIME type: text as text, anything else base64, up to 1 MiB \
                 (larger: download_artifact with path). Local-mode ids are urn:file://… and read the same way.",
            ),
        ResourceTemplate::new(format!("{ASPECT_PREFIX}{{id}}"), "aspect")
            .with_title("Datafabric aspect")
            .with_description(
                "An aspect record: entity, schema, content, valid_from, valid_to, as get_aspect shows it.",
            )
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{JOB_PREFIX}{{id}}"), "job")
            .with_title("IVCAP job")
            .with_description(
                "A job's status and result, as get_job shows it (no waiting). Subscribe to be told when it changes.",
            )
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{SERVICE_PREFIX}{{id}}"), "service")
            .with_title("IVCAP service")
            .with_description("A service with its normalised request schema, as get_service shows it.")
            .with_mime_type(JSON),
    ])
}

fn service_resource(s: ServiceSummary) -> Resource {
    let name = s.name.clone().unwrap_or_else(|| s.id.clone());
    let mut r = Resource::new(&s.id, &name).with_title(format!("service {name}")).with_mime_type(JSON);
    if let Some(d) = s.description.as_deref().filter(|d| !d.is_empty()) {
        r = r.with_description(crate::text::truncate(d, LISTED_DESCRIPTION));
    }
    r
}

fn artifact_resource(a: Artifact) -> Resource {
    match artifact_link(&a) {
        ContentBlock::ResourceLink(r) => r,
        _ => Resource::new(a.id.clone(), a.id),
    }
}

/// Where the next `resources/list` page starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct ListCursor {
    /// `true` once the services are done and artifacts are listed.
    artifacts: bool,
    /// The backend page token of the page to read (`None`: the first page).
    page: Option<String>,
    /// Items of that page already answered (a page cut to fit the output budget).
    skip: usize,
    /// Artifacts answered so far (at most [`LISTED_ARTIFACTS`]).
    listed: usize,
}

impl ListCursor {
    fn encode(&self) -> String {
        wrap_token(&serde_json::to_string(self).unwrap_or_default())
    }

    fn decode(cursor: &str) -> Result<Self, McpError> {
        let bad = || {
            McpError::invalid_params(
                "cursor is not a resources/list cursor from this server; pass nextCursor unchanged, or omit it",
                None,
            )
        };
        let inner = unwrap_token(cursor).map_err(|_| bad())?;
        serde_json::from_str(&inner).map_err(|_| bad())
    }
}

/// `resources/read`.
pub(super) async fn read(cx: &ToolContext, uri: &str) -> Result<ReadResourceResult, McpError> {
    let uri = uri.trim();
    if let Some(view) = super::apps::read(uri) {
        return view;
    }
    let Some(kind) = EntityKind::of(uri) else {
        return Err(not_found(
            uri,
            format!(
                "no such resource: {uri}; resources here are IVCAP URNs (urn:ivcap:artifact:…, urn:ivcap:aspect:…, \
                     urn:ivcap:job:…, urn:ivcap:service:…, or local urn:file://… artifacts) as the tools return them"
            ),
        ));
    };
    let fail = |e| protocol_error(Request::Read(uri), e);
    let view = match kind {
        EntityKind::Artifact => return read_artifact(cx, uri).await,
        EntityKind::Aspect => {
            let aspect = cx.backend.get_aspect(uri).await.map_err(fail)?;
            serde_json::to_string(&AspectView::bounded(aspect, cx.output_budget))
        }
        EntityKind::Job => {
            let waited = jobs::job_now(&*cx.backend, uri).await.map_err(fail)?;
            serde_json::to_string(&JobView::of(waited, None, cx.max_wait.as_secs(), cx.output_budget))
        }
        EntityKind::Service => {
            let service = cx.backend.get_service(uri).await.map_err(fail)?;
            serde_json::to_string(&ServiceView::bounded(service, cx.output_budget))
        }
    };
    let text = view.map_err(|e| McpError::internal_error(format!("cannot encode {uri}: {e}"), None))?;
    Ok(ReadResourceResult::new(vec![ResourceContents::text(text, uri).with_mime_type(JSON)]))
}

/// An artifact's bytes: text types as text, anything else as a base64 blob, up to the
/// inline limit; streamed, and never read beyond the limit.
async fn read_artifact(cx: &ToolContext, uri: &str) -> Result<ReadResourceResult, McpError> {
    let inline =
        cx.backend.read_artifact(uri, DEFAULT_MAX_INLINE).await.map_err(|e| protocol_error(Request::Read(uri), e))?;
    let a = inline.artifact;
    let Some(bytes) = inline.bytes else {
        let size = a.size.map_or("more than the limit".to_string(), |s| format!("{s} bytes"));
        return Err(McpError::invalid_params(
            format!(
                "{uri} is {size}, over the resource read limit of {DEFAULT_MAX_INLINE} bytes; call the tool \
                     download_artifact with artifact {uri} and path (e.g. \"downloads/<name>\") to save it to a file"
            ),
            Some(json!({ "uri": uri, "size": a.size, "limit": DEFAULT_MAX_INLINE })),
        ));
    };
    let mime = a.mime_type.clone().unwrap_or_else(|| crate::backend::artifacts::OCTET_STREAM.to_string());
    let contents = match String::from_utf8(bytes) {
        Ok(text) if is_text(&mime) => ResourceContents::text(text, &a.id),
        Ok(text) => ResourceContents::blob(STANDARD.encode(text.as_bytes()), &a.id),
        Err(e) => ResourceContents::blob(STANDARD.encode(e.as_bytes()), &a.id),
    };
    Ok(ReadResourceResult::new(vec![contents.with_mime_type(mime)]))
}

/// `resources/list`: the MCP Apps views, then the services, then the [`LISTED_ARTIFACTS`]
/// newest artifacts, one backend page per answer, cut to the output budget.
pub(super) async fn list(cx: &ToolContext, cursor: Option<&str>) -> Result<ListResourcesResult, McpError> {
    let (mut at, views) = match cursor.filter(|c| !c.trim().is_empty()) {
        Some(c) => (ListCursor::decode(c)?, Vec::new()),
        None => (ListCursor { artifacts: false, page: None, skip: 0, listed: 0 }, super::apps::resources()),
    };
    // The views open the first page and take their share of its budget.
    let budget = cx.output_budget.saturating_sub(views.iter().map(|r| crate::tools::budget::json_len(r) + 1).sum());
    let fail = |e: Error| protocol_error(Request::ListResources, e);
    loop {
        let request = PageRequest { limit: LIST_PAGE, page: at.page.clone() };
        let (items, next_page): (Vec<Resource>, Option<String>) = if at.artifacts {
            let page = cx.backend.list_artifacts(&ListOptions::default(), &request).await.map_err(fail)?;
            let room = LISTED_ARTIFACTS.saturating_sub(at.listed);
            let items: Vec<Resource> = page.items.into_iter().skip(at.skip).take(room).map(artifact_resource).collect();
            let more = page.next_page.filter(|_| at.listed + items.len() < LISTED_ARTIFACTS);
            (items, more)
        } else {
            let page = cx.backend.list_services(None, &ListOptions::default(), &request).await.map_err(fail)?;
            (page.items.into_iter().skip(at.skip).map(service_resource).collect(), page.next_page)
        };
        let (answer, cut_at) = fit(items, budget);
        let shown = answer.len();
        let next = match cut_at {
            Some(_) => Some(ListCursor {
                skip: at.skip + shown,
                listed: at.listed + usize::from(at.artifacts) * shown,
                ..at.clone()
            }),
            None if next_page.is_some() => Some(ListCursor {
                artifacts: at.artifacts,
                page: next_page,
                skip: 0,
                listed: at.listed + usize::from(at.artifacts) * shown,
            }),
            None if !at.artifacts => Some(ListCursor { artifacts: true, page: None, skip: 0, listed: 0 }),
            None => None,
        };
        // An empty service list goes straight on to the artifacts.
        if answer.is_empty()
            && !at.artifacts
            && let Some(n) = next
        {
            at = n;
            continue;
        }
        let mut result = ListResourcesResult::with_all_items(views.into_iter().chain(answer).collect());
        result.next_cursor = next.map(|n| n.encode());
        return Ok(result);
    }
}

/// The leading items of `items` whose JSON fits `budget` characters (always at least one),
/// and the index of the first left out, if any. Unlike a tool's truncation, nothing is lost:
/// the next cursor starts at the first item left out.
fn fit(items: Vec<Resource>, budget: usize) -> (Vec<Resource>, Option<usize>) {
    let mut used = 200; // the envelope: nextCursor, resultType, cache hints
    let mut out = Vec::with_capacity(items.len());
    for (i, r) in items.into_iter().enumerate() {
        let size = crate::tools::budget::json_len(&r) + 1;
        if !out.is_empty() && used + size > budget {
            return (out, Some(i));
        }
        used += size;
        out.push(r);
    }
    (out, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = ListCursor { artifacts: true, page: Some("abc".into()), skip: 3, listed: 7 };
        assert_eq!(ListCursor::decode(&c.encode()).unwrap(), c);
        assert!(ListCursor::decode("nope!").is_err());
        assert!(ListCursor::decode(&wrap_token("{}")).is_err());
    }

    #[test]
    fn pages_are_cut_to_the_budget_but_always_advance() {
        let items: Vec<Resource> = (0..50).map(|i| Resource::new(format!("urn:x:{i}"), "x".repeat(100))).collect();
        let (shown, cut) = fit(items.clone(), 2_000);
        assert!(shown.len() < 50 && cut == Some(shown.len()));
        assert!(serde_json::to_string(&shown).unwrap().len() + 200 <= 2_000);
        let (one, cut) = fit(items, 10);
        assert_eq!((one.len(), cut), (1, Some(1)));
    }
}
