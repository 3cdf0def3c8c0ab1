//! Which calls `--confirm` asks the person about, and the one-line summary of exactly what the
//! call will change, read from the backend before anything is changed (docs/guide.md,
//! "Confirmations"). A preview that cannot be made (a missing aspect, a bad argument) asks
//! nothing: the tool itself then answers with its usual error, and nothing changes.

use rmcp::model::JsonObject;
use serde_json::Value;

use crate::backend::aspects::{AspectQuery, aspect_urn};
use crate::backend::collections::{collection_urn, member_urns};
use crate::backend::{Backend, PageRequest};
use crate::config::ConfirmLevel;
use crate::tools::ToolContext;
use crate::tools::args::RENAMED_ARGUMENTS;

/// Longest part of a job's input shown in a summary.
const INPUT_SHOWN: usize = 200;

/// What a call will change, and how much that matters.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Change {
    /// Ends or replaces something (asked under `destructive` and `writes`).
    Destructive(String),
    /// Adds something or starts a job (asked under `writes`).
    Write(String),
}

impl Change {
    /// The summary, when `level` asks about this kind of change.
    pub(super) fn asked_at(self, level: ConfirmLevel) -> Option<String> {
        match (self, level) {
            (_, ConfirmLevel::None) => None,
            (Change::Destructive(s), _) => Some(s),
            (Change::Write(s), ConfirmLevel::Writes) => Some(s),
            (Change::Write(_), ConfirmLevel::Destructive) => None,
        }
    }
}

/// The tools whose calls may change something that `--confirm` asks about (a cheap test before
/// any preview is read).
pub(super) fn may_ask(tool: &str) -> bool {
    matches!(
        tool,
        "retract_aspect"
            | "update_aspect"
            | "add_aspect"
            | "retract_collection"
            | "update_collection"
            | "create_collection"
            | "download_artifact"
            | "upload_artifact"
            | "submit_job"
    )
}

/// Argument `name` of `tool`, under its current name or a renamed one's old name.
fn arg<'a>(tool: &str, args: &'a JsonObject, name: &str) -> Option<&'a Value> {
    args.get(name).or_else(|| {
        RENAMED_ARGUMENTS.iter().find(|(t, _, new)| *t == tool && *new == name).and_then(|(_, old, _)| args.get(*old))
    })
}

fn text<'a>(tool: &str, args: &'a JsonObject, name: &str) -> Option<&'a str> {
    arg(tool, args, name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn strings(args: &JsonObject, name: &str) -> Vec<String> {
    args.get(name)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// What calling `tool` with `args` will change, read from the backend; `None` when it changes
/// nothing asked about, or when that cannot be told (the tool then answers for itself).
pub(super) async fn preview(context: &ToolContext, tool: &str, args: &JsonObject) -> Option<Change> {
    let backend: &dyn Backend = &**context.backend();
    match tool {
        "retract_aspect" => {
            let id = aspect_urn(text(tool, args, "aspect")?).ok()?;
            let aspect = backend.get_aspect(&id).await.ok()?;
            aspect.valid_to.is_none().then(|| {
                Change::Destructive(format!(
                    "Retract aspect {} (schema {} on {}): it stops being live.",
                    aspect.id, aspect.schema, aspect.entity
                ))
            })
        }
        "update_aspect" | "add_aspect" => {
            let (entity, schema) = (text(tool, args, "entity")?, text(tool, args, "schema")?);
            if tool == "add_aspect" {
                return Some(Change::Write(format!("Add an aspect with schema {schema} to {entity}.")));
            }
            let q = AspectQuery {
                entity: Some(entity.to_string()),
                schema: Some(schema.to_string()),
                ..AspectQuery::default()
            };
            let live = backend.list_aspects(&q, &PageRequest::first(2)).await.ok()?.items;
            match live.as_slice() {
                [] => Some(Change::Write(format!("Add an aspect with schema {schema} to {entity}."))),
                [one] => Some(Change::Destructive(format!(
                    "Replace aspect {} (schema {schema} on {entity}) with new content: the old one is retracted.",
                    one.id
                ))),
                // Several live: the tool refuses and names them.
                _ => None,
            }
        }
        "retract_collection" => {
            let id = collection_urn(text(tool, args, "collection")?).ok()?;
            let (definition, memberships) = backend.retract_preview(&id).await.ok()?;
            let what = match &definition {
                Some(c) => format!("Retract collection {id} ('{}') and its {memberships} membership(s)", c.name),
                None if memberships > 0 => format!("Retract the {memberships} membership(s) of collection {id}"),
                None => return None,
            };
            Some(Change::Destructive(format!("{what}; the members themselves stay.")))
        }
        "update_collection" => {
            let id = collection_urn(text(tool, args, "collection")?).ok()?;
            let remove = member_urns("remove", &strings(args, "remove")).ok()?;
            let add = member_urns("add", &strings(args, "add")).ok()?;
            let removed = if remove.is_empty() { Vec::new() } else { backend.live_members(&id, &remove).await.ok()? };
            if !removed.is_empty() {
                let adding = if add.is_empty() { String::new() } else { format!(", and add {} member(s)", add.len()) };
                return Some(Change::Destructive(format!(
                    "Remove {} member(s) from collection {id}: {}{adding}.",
                    removed.len(),
                    removed.join(", ")
                )));
            }
            (!add.is_empty()).then(|| Change::Write(format!("Add {} member(s) to collection {id}.", add.len())))
        }
        "create_collection" => {
            let name = text(tool, args, "name")?;
            if let Some(existing) = text(tool, args, "collection")
                && let Ok(old) = backend.collection(existing).await
            {
                return Some(Change::Destructive(format!(
                    "Replace the definition of collection {} ('{}') with '{name}'.",
                    old.id, old.name
                )));
            }
            Some(Change::Write(format!("Create collection '{name}'.")))
        }
        "download_artifact" => {
            let overwrite = args.get("overwrite").and_then(Value::as_bool) == Some(true);
            let (artifact, path) = (text(tool, args, "artifact")?, text(tool, args, "path")?);
            if !overwrite {
                return None;
            }
            let path = context.paths.check_blocking(path.to_string(), "path", false).await.ok()?;
            let size = tokio::fs::metadata(&path).await.ok().filter(|m| m.is_file())?.len();
            Some(Change::Destructive(format!("Overwrite {} ({size} bytes) with artifact {artifact}.", path.display())))
        }
        "upload_artifact" => {
            let what = match (text(tool, args, "path"), args.get("content"), args.get("content_base64")) {
                (Some(path), ..) => format!("the file {path}"),
                (None, Some(Value::String(t)), _) => format!("{} characters of text", t.chars().count()),
                (None, _, Some(Value::String(b))) => format!("about {} bytes", b.len() / 4 * 3),
                _ => return None,
            };
            let name = text(tool, args, "name").map(|n| format!(" named '{n}'")).unwrap_or_default();
            let into = text(tool, args, "collection").map(|c| format!(" into collection {c}")).unwrap_or_default();
            Some(Change::Write(format!("Upload {what} as an artifact{name}{into}.")))
        }
        "submit_job" => {
            let service = text(tool, args, "service")?;
            Some(Change::Write(job_summary(service, args.get("input"))))
        }
        _ => None,
    }
}

/// The summary of running `service` on `input`.
pub(super) fn job_summary(service: &str, input: Option<&Value>) -> String {
    let input = input.map(|i| crate::text::truncate(&i.to_string(), INPUT_SHOWN)).unwrap_or_default();
    format!("Run service {service} as a job with input {input}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_ask_about_what_they_name() {
        let d = || Change::Destructive("d".into());
        let w = || Change::Write("w".into());
        assert_eq!(d().asked_at(ConfirmLevel::None), None);
        assert_eq!(w().asked_at(ConfirmLevel::None), None);
        assert_eq!(d().asked_at(ConfirmLevel::Destructive).as_deref(), Some("d"));
        assert_eq!(w().asked_at(ConfirmLevel::Destructive), None);
        assert_eq!(d().asked_at(ConfirmLevel::Writes).as_deref(), Some("d"));
        assert_eq!(w().asked_at(ConfirmLevel::Writes).as_deref(), Some("w"));
    }

    #[test]
    fn old_argument_names_are_read_too() {
        let args = serde_json::json!({"aspect_id": "urn:ivcap:aspect:1"});
        let args = args.as_object().unwrap();
        assert_eq!(text("retract_aspect", args, "aspect"), Some("urn:ivcap:aspect:1"));
        assert_eq!(text("add_aspect", args, "aspect"), None);
    }
}
