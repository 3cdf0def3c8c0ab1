//! MCP Apps (the `io.modelcontextprotocol/ui` extension, spec `ext-apps` 2026-01-26; see
//! docs/apps.md): four views — job, artifact, provenance, collection — served as
//! `ui://ivcap/<view>` resources, and the `_meta.ui.resourceUri` that links a tool to its view.
//!
//! Each view is one HTML document with its CSS and JavaScript inline (no network but the host
//! bridge, so `_meta.ui.csp` declares no domain). The documents share one part (the host bridge
//! over `postMessage`, the theme, the renderers, `apps/common.html`) so a view can open another
//! in place (a job's product in the artifact view, a member in the provenance view); a view's
//! own file only says which renderer starts.

use rmcp::ErrorData as McpError;
use rmcp::model::{JsonObject, MetaObject, ReadResourceResult, Resource, ResourceContents, Tool};
use serde_json::json;

use super::protocol_error::not_found;

/// The extension's name in `capabilities.extensions`.
pub(super) const EXTENSION: &str = "io.modelcontextprotocol/ui";
/// The one MIME type of a view.
pub(super) const MIME: &str = "text/html;profile=mcp-app";
/// Every view's URI starts with this.
const PREFIX: &str = "ui://ivcap/";

/// A view: its name (the URI is [`PREFIX`] + name), title, description and document.
struct View {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    html: &'static str,
}

/// One document: the shared part, then the view's own start.
macro_rules! document {
    ($file:literal) => {
        concat!(include_str!("apps/common.html"), include_str!($file))
    };
}

const VIEWS: [View; 4] = [
    View {
        name: "job",
        title: "IVCAP job",
        description: "A job's states on a timeline, live while it runs; its result as a tree, its products, its error.",
        html: document!("apps/job.html"),
    },
    View {
        name: "artifact",
        title: "IVCAP artifact",
        description: "An artifact previewed by type (image, CSV/TSV table, JSON tree, text), with its aspects.",
        html: document!("apps/artifact.html"),
    },
    View {
        name: "provenance",
        title: "IVCAP provenance",
        description: "A graph around an entity: its aspects, the job that produced it, that job's service, inputs \
                      and other outputs; click a node to expand it.",
        html: document!("apps/provenance.html"),
    },
    View {
        name: "collection",
        title: "IVCAP collection",
        description: "A collection's members with names, types and sizes, paged; each opens its artifact or \
                      provenance view.",
        html: document!("apps/collection.html"),
    },
];

/// The view URI for `view`, a name of [`VIEWS`].
pub(super) fn uri(view: &str) -> String {
    format!("{PREFIX}{view}")
}

/// What the server declares in `capabilities.extensions`.
pub(super) fn capability() -> JsonObject {
    let mut settings = JsonObject::new();
    settings.insert("mimeTypes".into(), json!([MIME]));
    settings
}

/// Links `tool` to `view`: `_meta.ui.resourceUri`, beside whatever `_meta` the tool has.
/// Sent to every client: the spec makes it metadata a host without the extension ignores, and
/// `tools/list` stays the same for every connection (its 2026 cache scope is public).
pub(super) fn link(tool: &mut Tool, view: &str) {
    debug_assert!(VIEWS.iter().any(|v| v.name == view), "no view {view}");
    let meta = tool.meta.get_or_insert_with(|| MetaObject(JsonObject::new()));
    meta.0.insert("ui".into(), json!({ "resourceUri": uri(view) }));
}

/// The views, for `resources/list`.
pub(super) fn resources() -> Vec<Resource> {
    VIEWS
        .iter()
        .map(|v| {
            Resource::new(uri(v.name), v.name).with_title(v.title).with_description(v.description).with_mime_type(MIME)
        })
        .collect()
}

/// `resources/read` of a `ui://` URI: the view, or resource-not-found; `None` for any other URI.
pub(super) fn read(uri: &str) -> Option<Result<ReadResourceResult, McpError>> {
    if !uri.starts_with("ui://") {
        return None;
    }
    let Some(view) = uri.strip_prefix(PREFIX).and_then(|name| VIEWS.iter().find(|v| v.name == name)) else {
        let names: Vec<String> = VIEWS.iter().map(|v| self::uri(v.name)).collect();
        return Some(Err(not_found(uri, format!("no such view: {uri}; the views are {}", names.join(", ")))));
    };
    let mut meta = JsonObject::new();
    // An empty csp: no connect, resource, frame or base-URI domain beyond the host's default.
    meta.insert("ui".into(), json!({ "csp": {}, "prefersBorder": true }));
    let contents = ResourceContents::TextResourceContents {
        uri: uri.to_string(),
        mime_type: Some(MIME.into()),
        text: view.html.to_string(),
        meta: Some(MetaObject(meta)),
    };
    Some(Ok(ReadResourceResult::new(vec![contents])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view may load nothing from outside the document: any `http(s)://` or protocol-relative
    /// URL, `@import` or `src=`/`href=` other than `#…` or `data:` would be a network request
    /// the empty csp forbids.
    #[test]
    fn views_carry_no_external_url() {
        for v in &VIEWS {
            let html = v.html.to_ascii_lowercase();
            for bad in ["http://", "https://", "//cdn", "@import", "src=\"http", "url(http", "<link", "<iframe"] {
                assert!(!html.contains(bad), "{}: contains {bad}", v.name);
            }
            for attr in ["src=\"", "href=\""] {
                for (i, _) in html.match_indices(attr) {
                    let value = &html[i + attr.len()..];
                    assert!(
                        value.starts_with('#') || value.starts_with("data:") || value.starts_with('"'),
                        "{}: {attr}{}",
                        v.name,
                        &value[..value.len().min(40)]
                    );
                }
            }
            assert!(html.starts_with("<!doctype html>") && html.trim_end().ends_with("</html>"), "{}", v.name);
        }
    }

    #[test]
    fn every_view_is_listed_and_readable_and_unknown_ones_are_not_found() {
        let listed: Vec<String> = resources().iter().map(|r| r.uri.clone()).collect();
        assert_eq!(listed.len(), VIEWS.len());
        for uri in &listed {
            let read = read(uri).expect("a ui:// uri").expect("a view");
            let v = serde_json::to_value(&read.contents[0]).unwrap();
            assert_eq!(v["mimeType"], MIME);
            assert_eq!(v["_meta"]["ui"]["csp"], json!({}));
        }
        let err = read("ui://ivcap/nope").expect("a ui:// uri").unwrap_err();
        assert!(err.message.contains("ui://ivcap/job"), "{}", err.message);
        assert!(read("urn:ivcap:job:1").is_none());
    }
}
