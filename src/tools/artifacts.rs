//! The artifacts toolset: `upload_artifact`, `download_artifact`, `get_artifact`,
//! `list_artifacts`. Which local files a `path` may name is decided by
//! [`crate::path_policy::PathPolicy`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::{CallToolResult, ContentBlock, RequestMetaObject};
use rmcp::{Peer, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::ToolContext;
use super::args::{list_args, list_options, page_request};
use super::budget::{self, Cut, Shrink};
use super::{ListView, McpProgress, linked, to_tool_error};
use crate::backend::artifacts::{Artifact, DownloadTarget, UploadRequest, UploadSource, guess_content_type};
use crate::backend::listing::ARTIFACT_FIELDS;
use crate::error::{Error, Result};

/// Inline downloads up to this many bytes unless the caller says otherwise.
pub const DEFAULT_MAX_INLINE: u64 = 1 << 20;
/// Largest `max_inline_bytes` a caller may ask for.
const MAX_INLINE_LIMIT: u64 = 8 << 20;

/// Arguments of `upload_artifact`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadArtifactArgs {
    /// Local file under the working directory, the store or an --allow-path folder; one of path, content,
    /// content_base64.
    #[serde(default)]
    pub path: Option<String>,
    /// UTF-8 text, e.g. "a,b\n1,2\n".
    #[serde(default)]
    pub content: Option<String>,
    /// Binary content, standard base64.
    #[serde(default)]
    pub content_base64: Option<String>,
    /// Default: path's file name; locally the file under <store>/artifacts (replaced if there).
    #[serde(default)]
    pub name: Option<String>,
    /// MIME type (default: from name or path; text/plain for content).
    #[serde(default)]
    pub content_type: Option<String>,
    /// Collection URN to add it to.
    #[serde(default)]
    pub collection: Option<String>,
    /// "urn:ivcap:policy:…".
    #[serde(default)]
    pub policy: Option<String>,
    /// Upload even if unchanged since its last upload.
    #[serde(default)]
    pub force: bool,
}

/// Arguments of `download_artifact`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DownloadArtifactArgs {
    /// urn:ivcap:artifact:… (locally urn:file://…), from list_artifacts.
    pub artifact: String,
    /// File to save to (missing folders are made) under the working directory, the store or an --allow-path folder.
    #[serde(default)]
    pub path: Option<String>,
    /// Without path: largest inline size (default 1048576).
    #[serde(default)]
    #[schemars(range(min = 1, max = 8388608))]
    pub max_inline_bytes: Option<u64>,
    /// Replace an existing file (default false).
    #[serde(default)]
    pub overwrite: bool,
}

/// Arguments of `get_artifact`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetArtifactArgs {
    /// urn:ivcap:artifact:… (locally urn:file://…).
    pub artifact: String,
}

list_args! {
    /// Arguments of `list_artifacts`.
    pub struct ListArtifactsArgs {}
    filter = "e.g. size > 9"
}

/// An artifact's metadata.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ArtifactView {
    /// Artifact id; pass it to download_artifact or as a job input.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Bytes, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// pending, partial, ready, error or unknown.
    pub status: String,
    /// When it was created (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
}

impl From<Artifact> for ArtifactView {
    fn from(a: Artifact) -> Self {
        ArtifactView {
            id: a.id,
            name: a.name,
            mime_type: a.mime_type,
            size: a.size,
            status: a.status.as_str().to_string(),
            created_at: a.created_at.map(crate::time::format),
        }
    }
}

/// The artifact an upload made or found.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UploadView {
    /// Artifact id; pass it to download_artifact or as a job input.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// pending, partial, ready, error or unknown (an empty upload may stay pending).
    pub status: String,
    /// True when nothing was sent: this unchanged file was uploaded before and that artifact still exists.
    pub deduplicated: bool,
}

/// What download_artifact did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DownloadView {
    /// Artifact id.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// Bytes of the artifact.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// How the content was delivered: "file" (saved to path), "text" (in the text field), "image" (as MCP image
    /// content), or "none" (too large or not displayable: pass path).
    pub delivered: String,
    /// The file written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// MD5 of the file written, lower-case hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
    /// The content, for text artifacts returned inline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// True when text was cut to fit the output budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    /// What to do next, when the content was not (fully) returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Runs `work` unless the client cancels first.
async fn cancellable<T>(ct: &CancellationToken, what: &str, work: impl Future<Output = T>) -> Result<T, String> {
    tokio::select! {
        _ = ct.cancelled() => Err(format!("{what} cancelled by the client")),
        out = work => Ok(out),
    }
}

/// Is this a type to show as text?
pub(crate) fn is_text(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence.as_str(),
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-ndjson"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/csv"
                | "application/sql"
        )
}

/// Image types MCP clients display.
fn is_image(mime: &str) -> bool {
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    matches!(essence.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp")
}

impl ToolContext {
    /// The backend request for `upload_artifact` arguments, checked.
    async fn upload_request(&self, args: UploadArtifactArgs) -> Result<UploadRequest> {
        let given = [args.path.is_some(), args.content.is_some(), args.content_base64.is_some()];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(Error::invalid(
                "path",
                "give exactly one of path (a local file), content (text) or content_base64 (binary)",
            ));
        }
        let collection = match args.collection.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            // Into a collection that exists: an upload into a misspelt one would be lost from view.
            Some(c) => Some(self.backend.collection(c).await?.id),
            None => None,
        };
        if let Some(p) = args.policy.as_deref().filter(|p| !p.starts_with("urn:ivcap:policy:")) {
            return Err(Error::invalid("policy", format!("'{p}' must start with urn:ivcap:policy:")));
        }
        let name = args.name.map(|n| n.trim().to_string());
        if name.as_deref().is_some_and(str::is_empty) {
            return Err(Error::invalid("name", "is empty; give a name like report.csv, or omit it"));
        }
        let (source, fallback_type) = match (args.path, args.content, args.content_base64) {
            (Some(path), _, _) => {
                let file = self.checked_path(path, true).await?;
                let guessed = guess_content_type(&file.to_string_lossy());
                (UploadSource::File(file), guessed)
            }
            (_, Some(text), _) => (UploadSource::Bytes(text.into_bytes()), "text/plain".to_string()),
            (_, _, Some(b64)) => {
                let bytes = STANDARD.decode(b64.trim()).map_err(|e| {
                    Error::invalid("content_base64", format!("is not standard base64 ({e}); or pass text as content"))
                })?;
                (UploadSource::Bytes(bytes), crate::backend::artifacts::OCTET_STREAM.to_string())
            }
            _ => return Err(Error::invalid("path", "give exactly one of path, content or content_base64")),
        };
        let name = name.or_else(|| match &source {
            UploadSource::File(p) => p.file_name().map(|n| n.to_string_lossy().into_owned()),
            UploadSource::Bytes(_) => None,
        });
        let from_name =
            name.as_deref().map(guess_content_type).filter(|t| t != crate::backend::artifacts::OCTET_STREAM);
        let content_type = match args.content_type.map(|t| t.trim().to_string()) {
            Some(t) if t.is_empty() || !t.contains('/') => {
                return Err(Error::invalid("content_type", format!("'{t}' is not a MIME type like text/csv")));
            }
            Some(t) => t,
            None => from_name.unwrap_or(fallback_type),
        };
        Ok(UploadRequest { source, name, content_type, collection, policy: args.policy, force: args.force })
    }

    /// The `path` argument checked against the path policy. `existing`: the file must exist
    /// (uploads).
    async fn checked_path(&self, path: String, existing: bool) -> Result<std::path::PathBuf> {
        self.paths.check_blocking(path, "path", existing).await
    }

    /// The inline answer of `download_artifact` without a path.
    async fn download_inline(&self, id: &str, max: u64) -> Result<CallToolResult> {
        let inline = self.backend.read_artifact(id, max).await?;
        let a = inline.artifact;
        // Not delivered inline: link the artifact, so a client can still read it as a resource.
        let link = vec![super::links::artifact_link(&a)];
        let mime = a.mime_type.clone().unwrap_or_default();
        let mut view = DownloadView {
            id: a.id,
            name: a.name,
            mime_type: a.mime_type,
            size: a.size,
            delivered: "none".into(),
            path: None,
            md5: None,
            text: None,
            truncated: None,
            note: None,
        };
        let pass_path = "call download_artifact again with path (e.g. \"downloads/<name>\") to save it to a file";
        let Some(bytes) = inline.bytes else {
            view.note = Some(format!(
                "the artifact is larger than max_inline_bytes ({max}); {pass_path}, or raise max_inline_bytes (up to {MAX_INLINE_LIMIT})"
            ));
            return structured(&view, None, link);
        };
        if is_image(&mime) {
            view.delivered = "image".into();
            let image = ContentBlock::image(STANDARD.encode(&bytes), mime);
            return structured(&view, Some(image), Vec::new());
        }
        let text = match String::from_utf8(bytes) {
            Ok(text) if is_text(&mime) => text,
            _ => {
                view.note = Some(format!(
                    "content of type '{mime}' cannot be shown inline (only text and png/jpeg/gif/webp images can); {pass_path}"
                ));
                return structured(&view, None, link);
            }
        };
        view.delivered = "text".into();
        view.text = Some(text);
        structured(&budget::fit(view, self.output_budget), None, Vec::new())
    }
}

impl Shrink for DownloadView {
    /// Inline text is cut to its start; the whole artifact is one download to a file away.
    fn shrink(&mut self, excess: usize) -> Option<Cut> {
        let kept = budget::cut_text(self.text.as_mut()?, excess)?;
        let total = self.size.map_or_else(String::new, |s| format!(" of {s}"));
        Some(Cut {
            part: "text",
            what: format!("only the first {kept}{total} bytes of text are shown"),
            remedy: "call download_artifact again with path (e.g. \"downloads/<name>\") to save it to a file".into(),
        })
    }

    fn note(&mut self) -> &mut Option<String> {
        &mut self.note
    }

    fn truncated(&mut self) -> &mut Option<bool> {
        &mut self.truncated
    }
}

/// A successful result with `view` as structured content (plus its text copy), with an
/// extra content block (an image) in front and `links` after.
fn structured(view: &DownloadView, extra: Option<ContentBlock>, links: Vec<ContentBlock>) -> Result<CallToolResult> {
    let mut result = linked(view, links)?;
    if let Some(block) = extra {
        result.content.insert(0, block);
    }
    Ok(result)
}

#[tool_router(router = artifacts_router, vis = "pub(crate)")]
impl ToolContext {
    #[tool(
        input_schema = crate::schema::tool_input::<UploadArtifactArgs>(),
        description = "Upload a local file (path) or inline content as an artifact. Large files go in resumable \
                       chunks with progress; an unchanged file returns its earlier artifact (deduplicated: true) \
                       unless force.",
        output_schema = crate::schema::tool_output::<UploadView>(),
        annotations(
            title = "Upload artifact",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn upload_artifact(
        &self,
        Parameters(args): Parameters<UploadArtifactArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, String> {
        let req = self.upload_request(args).await.map_err(to_tool_error)?;
        let progress = McpProgress::new(&meta, peer);
        let up =
            cancellable(&ct, "upload", self.backend.upload_artifact(&req, &progress)).await?.map_err(to_tool_error)?;
        let a = up.artifact;
        let link = super::links::artifact_link(&a);
        let view = UploadView {
            id: a.id,
            name: a.name,
            mime_type: a.mime_type,
            size: a.size,
            status: a.status.as_str().to_string(),
            deduplicated: up.deduplicated,
        };
        linked(&view, vec![link]).map_err(to_tool_error)
    }

    #[tool(
        input_schema = crate::schema::tool_input::<DownloadArtifactArgs>(),
        description = "Get an artifact's content: with path, save it to that file (streamed; size and MD5); without, \
                       small text or images inline, else a note to pass path.",
        output_schema = crate::schema::tool_output::<DownloadView>(),
        annotations(
            title = "Download artifact",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn download_artifact(
        &self,
        Parameters(args): Parameters<DownloadArtifactArgs>,
        meta: RequestMetaObject,
        peer: Peer<RoleServer>,
        ct: CancellationToken,
    ) -> Result<CallToolResult, String> {
        if args.artifact.trim().is_empty() {
            return Err(to_tool_error(Error::invalid("artifact", "is empty; pass an id from list_artifacts")));
        }
        let Some(path) = args.path else {
            let max = args.max_inline_bytes.unwrap_or(DEFAULT_MAX_INLINE);
            if !(1..=MAX_INLINE_LIMIT).contains(&max) {
                return Err(to_tool_error(Error::invalid(
                    "max_inline_bytes",
                    format!("{max} is outside 1..={MAX_INLINE_LIMIT}; pass path to save larger artifacts"),
                )));
            }
            return cancellable(&ct, "download", self.download_inline(&args.artifact, max))
                .await?
                .map_err(to_tool_error);
        };
        let path = self.checked_path(path, false).await.map_err(to_tool_error)?;
        let target = DownloadTarget { path, overwrite: args.overwrite };
        let progress = McpProgress::new(&meta, peer);
        let work = self.backend.download_artifact(&args.artifact, &target, &progress);
        let done = cancellable(&ct, "download", work).await?.map_err(to_tool_error)?;
        let view = DownloadView {
            id: done.artifact.id,
            name: done.artifact.name,
            mime_type: done.artifact.mime_type,
            size: Some(done.size),
            delivered: "file".into(),
            path: Some(done.path.display().to_string()),
            md5: Some(done.md5),
            text: None,
            truncated: None,
            note: None,
        };
        structured(&view, None, Vec::new()).map_err(to_tool_error)
    }

    #[tool(
        input_schema = crate::schema::tool_input::<GetArtifactArgs>(),
        description = "An artifact's metadata: name, MIME type, size, upload status.",
        output_schema = crate::schema::tool_output::<ArtifactView>(),
        annotations(
            title = "Get artifact",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_artifact(&self, Parameters(args): Parameters<GetArtifactArgs>) -> Result<CallToolResult, String> {
        if args.artifact.trim().is_empty() {
            return Err(to_tool_error(Error::invalid("artifact", "is empty; pass an id from list_artifacts")));
        }
        let artifact = self.backend.get_artifact(&args.artifact).await.map_err(to_tool_error)?;
        let link = super::links::artifact_link(&artifact);
        linked(&ArtifactView::from(artifact), vec![link]).map_err(to_tool_error)
    }

    #[tool(
        input_schema = crate::schema::tool_input::<ListArtifactsArgs>(),
        output_schema = crate::schema::tool_output::<ListView<ArtifactView>>(),
        description = "List artifacts (id, name, MIME type, size, status).",
        annotations(
            title = "List artifacts",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_artifacts(
        &self,
        Parameters(args): Parameters<ListArtifactsArgs>,
    ) -> Result<Json<ListView<ArtifactView>>, String> {
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        let options =
            list_options(args.filter, args.order_by, args.order_desc, args.at_time.as_ref(), &ARTIFACT_FIELDS)
                .map_err(to_tool_error)?;
        let found = self.backend.list_artifacts(&options, &page).await.map_err(to_tool_error)?;
        Ok(Json(ListView::bounded(found, ArtifactView::from, self.output_budget)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_image_types() {
        for t in ["text/csv", "application/json", "application/geo+json", "text/plain; charset=utf-8", "image/svg+xml"]
        {
            assert!(is_text(t), "{t}");
        }
        assert!(!is_text("application/octet-stream"));
        assert!(is_image("image/png") && !is_image("image/tiff"));
    }
}
