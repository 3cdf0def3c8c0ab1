//! `resource_link` blocks that tool results carry for the entities they name, so a client can
//! read each one as a resource (the server's `resources/read` takes the same URNs).

use rmcp::model::{ContentBlock, Resource};

use crate::backend::artifacts::Artifact;
use crate::urn::EntityKind;

/// The MIME type of every entity's JSON view.
pub const JSON: &str = "application/json";

/// A `resource_link` to an artifact.
pub fn artifact_link(a: &Artifact) -> ContentBlock {
    let mut r = Resource::new(&a.id, a.name.clone().unwrap_or_else(|| a.id.clone())).with_title("artifact");
    if let Some(mime) = &a.mime_type {
        r = r.with_mime_type(mime);
    }
    if let Some(size) = a.size {
        r = r.with_size(size);
    }
    ContentBlock::resource_link(r)
}

/// A `resource_link` to an entity of which only the id is at hand (a job, an aspect, a
/// job's product artifact), with a title saying what it is.
pub fn link(id: &str, title: &str) -> ContentBlock {
    let r = Resource::new(id, id).with_title(title);
    // Artifacts are read as their own bytes; aspects, jobs and services as their JSON view.
    let r = if matches!(EntityKind::of(id), Some(EntityKind::Artifact) | None) { r } else { r.with_mime_type(JSON) };
    ContentBlock::resource_link(r)
}
