//! `completion/complete` for prompt arguments and resource template variables: service
//! names and URNs (from the services the backend lists), artifact URNs (newest first) and
//! schema URNs (from the aspects there are). At most 100 values, with `hasMore`.

use rmcp::ErrorData as McpError;
use rmcp::model::{CompleteRequestParams, CompleteResult, CompletionInfo, Reference};

use super::protocol_error::{Request, protocol_error};
use crate::backend::listing::ListOptions;
use crate::backend::{Backend, LIMIT_RANGE, PageRequest};
use crate::error::Error;
use crate::urn::{ARTIFACT_PREFIX, SERVICE_PREFIX};

/// The most values one answer carries (the protocol's limit).
const MAX_VALUES: usize = CompletionInfo::MAX_VALUES;
/// Backend pages read at most for one answer (of 50 items each).
const MAX_PAGES: usize = 2;

/// What an argument or template variable holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Service names and URNs.
    Service,
    /// Artifact URNs; `bare`: only the part after `urn:ivcap:artifact:` (a template variable).
    Artifact { bare: bool },
    /// Service URNs without their prefix (the service template's variable).
    ServiceId,
    /// Schema URNs.
    Schema,
}

/// The kind of value `argument` of `reference` takes; `None` for free text.
fn kind_of(reference: &Reference, argument: &str) -> Option<Kind> {
    match reference {
        Reference::Prompt(p) => match (p.name.as_str(), argument) {
            (_, "service") => Some(Kind::Service),
            (_, "artifact" | "entity") => Some(Kind::Artifact { bare: false }),
            (_, "schema") => Some(Kind::Schema),
            _ => None,
        },
        Reference::Resource(r) if argument == "id" => {
            if r.uri.starts_with(ARTIFACT_PREFIX) {
                Some(Kind::Artifact { bare: true })
            } else if r.uri.starts_with(SERVICE_PREFIX) {
                Some(Kind::ServiceId)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `completion/complete`.
pub(super) async fn complete(backend: &dyn Backend, req: &CompleteRequestParams) -> Result<CompleteResult, McpError> {
    let typed = req.argument.value.trim();
    let fail = |e: Error| protocol_error(Request::Complete(&req.argument.name), e);
    let (values, more) = match kind_of(&req.r#ref, &req.argument.name) {
        None => (Vec::new(), false),
        Some(Kind::Schema) => backend.schema_urns(typed, MAX_VALUES).await.map_err(fail)?,
        Some(Kind::Artifact { bare }) => {
            let prefix = if bare { format!("{ARTIFACT_PREFIX}{typed}") } else { typed.to_string() };
            let (ids, more) = artifact_ids(backend, &prefix).await.map_err(fail)?;
            let strip = |id: String| if bare { id.strip_prefix(ARTIFACT_PREFIX).map(str::to_string) } else { Some(id) };
            (ids.into_iter().filter_map(strip).collect(), more)
        }
        Some(Kind::Service) => service_values(backend, typed, false).await.map_err(fail)?,
        Some(Kind::ServiceId) => service_values(backend, typed, true).await.map_err(fail)?,
    };
    let info = CompletionInfo::with_pagination(values, None, more).map_err(|e| McpError::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}

/// Artifact ids starting with `prefix`, newest first.
async fn artifact_ids(backend: &dyn Backend, prefix: &str) -> Result<(Vec<String>, bool), Error> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(*LIMIT_RANGE.end());
    for _ in 0..MAX_PAGES {
        let found = backend.list_artifacts(&ListOptions::default(), &page).await?;
        out.extend(found.items.into_iter().map(|a| a.id).filter(|id| id.starts_with(prefix)));
        match found.next_page {
            Some(next) => page.page = Some(next),
            None => return Ok(cut(out)),
        }
    }
    Ok((cut(out).0, true))
}

/// Service names and URNs (`ids_only`: the part of the URN after `urn:ivcap:service:`)
/// that start with `typed` (case-insensitive).
async fn service_values(backend: &dyn Backend, typed: &str, ids_only: bool) -> Result<(Vec<String>, bool), Error> {
    let lower = typed.to_lowercase();
    // A name fragment narrows the platform's list; a URN prefix needs the whole list.
    let search = (!typed.is_empty() && !ids_only && !lower.starts_with("urn:")).then(|| typed.to_string());
    let mut names = Vec::new();
    let mut ids = Vec::new();
    let mut page = PageRequest::first(*LIMIT_RANGE.end());
    let mut more = false;
    for round in 0..MAX_PAGES {
        let found = backend.list_services(search.as_deref(), &ListOptions::default(), &page).await?;
        for s in found.items {
            let bare = s.id.strip_prefix(SERVICE_PREFIX).unwrap_or(&s.id).to_string();
            if ids_only {
                if bare.to_lowercase().starts_with(&lower) {
                    ids.push(bare);
                }
                continue;
            }
            if let Some(n) = s.name.filter(|n| n.to_lowercase().starts_with(&lower)) {
                names.push(n);
            }
            if s.id.to_lowercase().starts_with(&lower) {
                ids.push(s.id);
            }
        }
        match found.next_page {
            Some(next) if round + 1 < MAX_PAGES => page.page = Some(next),
            Some(_) => more = true,
            None => break,
        }
    }
    names.sort();
    names.dedup();
    names.extend(ids);
    let (values, cut_more) = cut(names);
    Ok((values, more || cut_more))
}

/// At most [`MAX_VALUES`] of `values`, and whether any were left out.
fn cut(mut values: Vec<String>) -> (Vec<String>, bool) {
    let more = values.len() > MAX_VALUES;
    values.truncate(MAX_VALUES);
    (values, more)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_and_template_variables_have_kinds() {
        let prompt = Reference::for_prompt("run_service");
        assert_eq!(kind_of(&prompt, "service"), Some(Kind::Service));
        assert_eq!(kind_of(&prompt, "goal"), None);
        assert_eq!(kind_of(&Reference::for_prompt("annotate_artifact"), "schema"), Some(Kind::Schema));
        assert_eq!(kind_of(&Reference::for_prompt("trace_provenance"), "entity"), Some(Kind::Artifact { bare: false }));
        let artifact = Reference::for_resource("urn:ivcap:artifact:{id}");
        assert_eq!(kind_of(&artifact, "id"), Some(Kind::Artifact { bare: true }));
        assert_eq!(kind_of(&Reference::for_resource("urn:ivcap:service:{id}"), "id"), Some(Kind::ServiceId));
        assert_eq!(kind_of(&Reference::for_resource("urn:ivcap:job:{id}"), "id"), None);
    }

    #[test]
    fn answers_are_cut_to_one_hundred() {
        let (values, more) = cut((0..150).map(|i| i.to_string()).collect());
        assert_eq!((values.len(), more), (100, true));
        assert_eq!(cut(vec!["a".into()]), (vec!["a".to_string()], false));
    }
}
