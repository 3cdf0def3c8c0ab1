//! Local search: Mangle queries evaluated in process over facts from the local store.
//!
//! [`LocalBackend::search_facts`] is the one place facts are gathered: the predicates a
//! query reads (`ivcap_service`, `ivcap_aspect`, …, and tables its `:load_aspect`
//! declarations define), valid at the query's `at_time`. The engine behind
//! [`engine::DatalogEngine`] then runs on a blocking thread, so a long query never stalls
//! other tool calls, within the fact budget and deadline of [`engine::Limits`].
//!
//! Answers are paged by offset; the page token also pins the `at_time` of the first page
//! and a digest of the query, so later pages see the same store state and a token cannot
//! be replayed against another query.

mod engine;
mod mangle;
mod store;
mod syntax;

use std::collections::{BTreeSet, HashSet};

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde_json::Value;

pub use engine::{Answer, DatalogEngine, Facts, Limits, Patterns, Prepared, constant_column};
pub use mangle::MangleEngine;
use syntax::{LoadAspect, extract_load_aspects};

use super::LocalBackend;
use super::artifacts::named_ids;
use crate::backend::paging::offset_page;
use crate::backend::{JobStatus, Page, PageRequest, SearchBackend, like_match};
use crate::error::{Error, Result};

/// The predicates the local store provides, with their columns.
pub const PREDICATES: &[(&str, &str)] = &[
    ("ivcap_artifact", "Id, Name, MimeType"),
    ("ivcap_aspect", "Entity, Schema, Content"),
    ("ivcap_service", "Id, Name"),
    ("ivcap_job", "Id, Status, ServiceId"),
    ("ivcap_artifact_produced_by", "ArtifactId, JobId"),
];

/// A query ready to run locally: the engine's program and the tables it loads.
#[derive(Debug, Clone)]
pub struct LocalQuery {
    pub prepared: Prepared,
    pub loads: Vec<LoadAspect>,
}

/// Parses `query` (cutting out `:load_aspect` declarations) and checks that every predicate
/// it reads exists.
pub fn prepare(engine: &dyn DatalogEngine, query: &str) -> Result<LocalQuery> {
    let (text, loads) = extract_load_aspects(query)?;
    let prepared = engine.prepare(&text)?;
    let known = |p: &str| PREDICATES.iter().any(|(n, _)| *n == p) || loads.iter().any(|l| l.predicate == p);
    if let Some(unknown) = prepared.extensional.iter().find(|p| !known(p)) {
        let provided: Vec<String> = PREDICATES.iter().map(|(n, cols)| format!("{n}({cols})")).collect();
        return Err(Error::invalid(
            "query",
            format!(
                "the predicate {unknown} is neither defined by a rule of the query nor provided; \
                 provided predicates: {}; or declare a table with :load_aspect(/{unknown}, \"<schema urn>\", [\".path\"]).",
                provided.join(", ")
            ),
        ));
    }
    Ok(LocalQuery { prepared, loads })
}

/// Evaluates `query` over `facts` with `engine` on a blocking thread.
pub async fn evaluate<E: DatalogEngine + 'static>(
    engine: E,
    query: LocalQuery,
    facts: Facts,
    limits: Limits,
) -> Result<Vec<Answer>> {
    tokio::task::spawn_blocking(move || engine.run(&query.prepared, &facts, &limits))
        .await
        .map_err(|e| Error::Internal(format!("the query evaluation was interrupted ({e})")))?
}

impl LocalBackend {
    /// The facts `query` reads, valid at `at`: only the predicates it names are gathered.
    pub async fn search_facts(&self, query: &LocalQuery, at: DateTime<Utc>) -> Result<Facts> {
        let needs = |p: &str| query.prepared.extensional.contains(p);
        let mut facts = Facts::default();
        let wants_jobs = needs("ivcap_job") || needs("ivcap_artifact_produced_by");
        if needs("ivcap_service") {
            for s in self.local_services().await?.iter() {
                facts.add("ivcap_service", vec![Value::String(s.id.clone()), Value::String(s.name.clone())]);
            }
        }
        let artifacts = if needs("ivcap_artifact") || needs("ivcap_artifact_produced_by") {
            self.local_artifacts().await?
        } else {
            Vec::new()
        };
        if wants_jobs {
            // A local job produced the artifacts its result names (ids of stored artifacts), as
            // a platform job lists its products.
            let artifact_ids: HashSet<&str> = if needs("ivcap_artifact_produced_by") {
                artifacts.iter().map(|a| a.id.as_str()).collect()
            } else {
                HashSet::new()
            };
            // Jobs requested by `at`, with the status they have now (records keep no history);
            // every record is read once, whatever the number of services.
            for job in self.job_records().await?.into_iter().filter(|j| j.requested_at <= at) {
                let finished = job.status == JobStatus::Succeeded && job.finished_at.is_none_or(|t| t <= at);
                if finished && !artifact_ids.is_empty() {
                    let named = job.result.as_ref().map(|r| named_ids(r, |s| artifact_ids.contains(s)));
                    for artifact in named.unwrap_or_default() {
                        facts.add(
                            "ivcap_artifact_produced_by",
                            vec![Value::String(artifact), Value::String(job.id.clone())],
                        );
                    }
                }
                let row = vec![
                    Value::String(job.id),
                    Value::String(job.status.as_str().into()),
                    Value::String(job.service_id),
                ];
                facts.add("ivcap_job", row);
            }
        }
        if needs("ivcap_artifact") {
            for a in artifacts {
                if a.created_at.is_some_and(|c| c > at) {
                    continue;
                }
                let text = |v: Option<String>| v.map_or(Value::Null, Value::String);
                facts.add("ivcap_artifact", vec![Value::String(a.id), text(a.name), text(a.mime_type)]);
            }
        }
        let loads: Vec<&LoadAspect> = query.loads.iter().filter(|l| needs(&l.predicate)).collect();
        if needs("ivcap_aspect") || !loads.is_empty() {
            // When every read of ivcap_aspect names its schema, only those schemas are fetched.
            let aspect_schemas = constant_column(&query.prepared.patterns, "ivcap_aspect", 1);
            let wanted: Option<BTreeSet<&str>> = match (&aspect_schemas, needs("ivcap_aspect")) {
                (None, true) => None,
                (schemas, _) => Some(
                    schemas
                        .iter()
                        .flatten()
                        .map(String::as_str)
                        .chain(loads.iter().map(|l| l.schema.as_str()))
                        .collect(),
                ),
            };
            let aspects = match wanted {
                None => self.aspects_valid_at(at, None).await?,
                Some(patterns) => {
                    let mut all = Vec::new();
                    let mut ids = HashSet::new();
                    for pattern in patterns {
                        for a in self.aspects_valid_at(at, Some(pattern)).await? {
                            if ids.insert(a.id.clone()) {
                                all.push(a);
                            }
                        }
                    }
                    all
                }
            };
            for aspect in aspects {
                let content = aspect.content.unwrap_or(Value::Null);
                for load in loads.iter().filter(|l| like_match(&l.schema, &aspect.schema, false)) {
                    for row in load_rows(load, &content) {
                        facts.add(&load.predicate, row);
                    }
                }
                let wanted = aspect_schemas.as_ref().is_none_or(|s| s.contains(&aspect.schema));
                if needs("ivcap_aspect") && wanted {
                    facts
                        .add("ivcap_aspect", vec![Value::String(aspect.entity), Value::String(aspect.schema), content]);
                }
            }
        }
        facts.retain_matching(&query.prepared.patterns);
        Ok(facts)
    }
}

/// Rows of a `:load_aspect` table from one aspect's content: one column per path, one row
/// per combination of the values the paths select (`[*]` selects every array element).
pub fn load_rows(load: &LoadAspect, content: &Value) -> Vec<Vec<Value>> {
    let mut rows: Vec<Vec<Value>> = vec![Vec::new()];
    for path in &load.paths {
        let values = select(content, path);
        rows = rows
            .into_iter()
            .flat_map(|row| {
                values.iter().map(move |v| {
                    let mut r = row.clone();
                    r.push((*v).clone());
                    r
                })
            })
            .collect();
    }
    rows
}

/// The values `path` (`.a.b`, `.list[*]`, `.list[0]`, optionally starting with `$`) selects.
fn select<'a>(root: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![root];
    let mut rest = path.trim().strip_prefix('$').unwrap_or(path.trim());
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            current = current.into_iter().filter_map(|v| v.get(key)).collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { return Vec::new() };
            let sel = r[..end].trim();
            current = if sel == "*" {
                current.into_iter().filter_map(Value::as_array).flatten().collect()
            } else {
                match sel.parse::<usize>() {
                    Ok(i) => current.into_iter().filter_map(|v| v.get(i)).collect(),
                    Err(_) => current.into_iter().filter_map(|v| v.get(sel.trim_matches('"'))).collect(),
                }
            };
            rest = &r[end + 1..];
        } else {
            // A path without a leading dot: a field name.
            rest = &rest[..0];
            current = current.into_iter().filter_map(|v| v.get(path.trim())).collect();
        }
    }
    current
}

/// A digest of the query text for page tokens.
fn digest(query: &str) -> String {
    let d = Md5::digest(query.as_bytes());
    d.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

#[async_trait::async_trait]
impl SearchBackend for LocalBackend {
    async fn search(&self, query: &str, at_time: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<Value>> {
        let scope = digest(query);
        let resume = page.resume(&scope, "query")?;
        let pinned = match resume.pinned.as_deref() {
            Some(t) => Some(crate::time::parse_rfc3339("page", t)?),
            None => None,
        };
        let at = pinned.or(at_time).unwrap_or_else(Utc::now);
        let engine = MangleEngine;
        let local = prepare(&engine, query)?;
        let facts = self.search_facts(&local, at).await?;
        let answers = evaluate(engine, local, facts, Limits::default()).await?;
        let answers: Vec<Value> = answers.into_iter().map(Value::Object).collect();
        Ok(offset_page(answers, page, &resume, &crate::time::format(at), &scope))
    }
}
