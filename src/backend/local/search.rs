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

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use serde_json::Value;

use crate::backend::search::syntax::{LoadAspect, extract_load_aspects};
use crate::backend::search::{PREDICATES, check_arity, language_error, not_datalog, predicate_list};
pub use engine::{Answer, Arg, DEFAULT_MAX_BYTES, DatalogEngine, Facts, Limits, Prepared, Read};
pub use mangle::MangleEngine;

use super::LocalBackend;
use super::artifacts::named_ids;
use super::aspects::AspectMatch;
use crate::backend::paging::offset_window;
use crate::backend::{AspectsBackend, JobStatus, Page, PageRequest, SearchBackend};
use crate::error::{Error, Result};

/// A query ready to run locally: the engine's program and the tables it loads.
#[derive(Debug, Clone)]
pub struct LocalQuery {
    pub prepared: Prepared,
    pub loads: Vec<LoadAspect>,
}

/// Parses `query` (cutting out `:load_aspect` declarations) and checks that every predicate
/// it reads exists, with the number of arguments it has.
pub fn prepare(engine: &dyn DatalogEngine, query: &str) -> Result<LocalQuery> {
    let (text, loads) = extract_load_aspects(query)?;
    let prepared = engine.prepare(&text)?;
    let known = |p: &str| PREDICATES.iter().any(|(n, _)| *n == p) || loads.iter().any(|l| l.predicate == p);
    if let Some(unknown) = prepared.extensional.iter().find(|p| !known(p)) {
        return Err(Error::invalid(
            "query",
            format!(
                "the predicate {unknown} is neither defined by a rule of the query nor provided; \
                 provided predicates: {}; or declare a table with :load_aspect(/{unknown}, \"<schema urn>\", [\".path\"]).",
                predicate_list()
            ),
        ));
    }
    for read in &prepared.reads {
        match loads.iter().find(|l| l.predicate == read.predicate) {
            Some(load) if load.paths.len() != read.args.len() => {
                return Err(Error::invalid(
                    "query",
                    format!(
                        "{} is loaded with {} columns (one per path of its :load_aspect), but the query gives it {}; \
                         give it one argument per path",
                        read.predicate,
                        load.paths.len(),
                        read.args.len()
                    ),
                ));
            }
            Some(_) => {}
            None => check_arity(&read.predicate, read.args.len())?,
        }
    }
    Ok(LocalQuery { prepared, loads })
}

/// Evaluates `query` over `facts` with `engine` on a blocking thread: the number of
/// answers and those in `window`.
pub async fn evaluate<E: DatalogEngine + 'static>(
    engine: E,
    query: LocalQuery,
    facts: Facts,
    limits: Limits,
    window: std::ops::Range<usize>,
) -> Result<(usize, Vec<Answer>)> {
    tokio::task::spawn_blocking(move || engine.run(&query.prepared, &facts, &limits, window))
        .await
        .map_err(|e| Error::Internal(format!("the query evaluation was interrupted ({e})")))?
}

/// How local search runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchOptions {
    pub limits: Limits,
    /// Narrow base facts through the index before they are made (the default). Off, every
    /// fact of a read predicate valid at `at_time` is made and the ones no read can match
    /// are dropped afterwards: only the benchmarks' baseline turns it off.
    pub pushdown: bool,
}

impl Default for SearchOptions {
    fn default() -> Self {
        SearchOptions { limits: Limits::default(), pushdown: true }
    }
}

/// Values a variable of one clause can take: `(clause, variable) → values`.
type Bindings = HashMap<(usize, String), HashSet<Value>>;

/// Records, for each variable of `read`, the values it takes in `rows`: a positive read
/// binds them, so its clause can use no other (intersected with what is known already).
fn bind<'a>(bindings: &mut Bindings, read: &Read, rows: impl Iterator<Item = &'a Vec<Value>> + Clone) {
    for (col, arg) in read.args.iter().enumerate() {
        let Arg::Var(v) = arg else { continue };
        let values: HashSet<Value> = rows.clone().filter_map(|r| r.get(col).cloned()).collect();
        match bindings.entry((read.clause, v.clone())) {
            Entry::Occupied(mut known) => known.get_mut().retain(|x| values.contains(x)),
            Entry::Vacant(slot) => {
                slot.insert(values);
            }
        }
    }
}

/// The values column `col` of `read` can take: its constant, or its variable's bindings.
fn allowed<'a>(read: &'a Read, col: usize, bindings: &'a Bindings) -> Option<Vec<&'a Value>> {
    match read.args.get(col)? {
        Arg::Const(c) => Some(vec![c]),
        Arg::Var(v) => bindings.get(&(read.clause, v.clone())).map(|vals| vals.iter().collect()),
        Arg::Any => None,
    }
}

/// What `read` of `ivcap_aspect` can match, as the index takes it.
fn aspect_match(read: &Read, bindings: &Bindings) -> AspectMatch {
    let texts = |col| {
        allowed(read, col, bindings)
            .map(|vals| vals.into_iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
    };
    AspectMatch {
        entities: texts(0),
        schemas: texts(1),
        contents: allowed(read, 2, bindings).map(|vals| vals.into_iter().cloned().collect()),
        fields: read.fields.iter().filter(|(col, ..)| *col == 2).map(|(_, f, v)| (f.clone(), v.clone())).collect(),
    }
}

/// Can `row` of `read`'s predicate matter to `read`, given its constants, fields and bindings?
fn admits(read: &Read, row: &[Value], bindings: &Bindings) -> bool {
    read.matches(row)
        && (0..row.len()).all(|col| allowed(read, col, bindings).is_none_or(|vals| vals.contains(&&row[col])))
}

impl LocalBackend {
    /// The facts `query` reads, valid at `at`: only the predicates it names are gathered,
    /// and of those only the facts some read can match. Reads with constants (or
    /// `:match_field` values) go first; what their facts bind a variable to then narrows the
    /// other reads of that variable's clause (a join on the entity fetches only those
    /// entities' aspects). Aspects are narrowed in the index before any row is made.
    pub async fn search_facts(&self, query: &LocalQuery, at: DateTime<Utc>) -> Result<Facts> {
        let needs = |p: &str| query.prepared.extensional.contains(p);
        let pushdown = self.search.pushdown;
        let all_reads = &query.prepared.reads;
        let mut facts = Facts::default();
        if needs("ivcap_service") {
            for s in self.local_services().await?.iter() {
                facts.add("ivcap_service", vec![Value::String(s.id.clone()), Value::String(s.name.clone())]);
            }
        }
        self.job_and_artifact_facts(&mut facts, &needs, at).await?;
        let loads: Vec<&LoadAspect> = query.loads.iter().filter(|l| needs(&l.predicate)).collect();
        for load in &loads {
            for aspect in self.aspects_valid_at(at, Some(&load.schema)).await? {
                let content = aspect.content.unwrap_or(Value::Null);
                for row in load_rows(load, &content) {
                    facts.add(&load.predicate, row);
                }
            }
        }
        if !pushdown {
            if needs("ivcap_aspect") {
                let (rows, _) = self.aspect_rows(at, vec![AspectMatch::default()]).await?;
                facts.relations.insert("ivcap_aspect".into(), rows);
            }
            facts.retain_matching(all_reads);
            return Ok(facts);
        }

        // Reads with constants first; their facts bind variables for the rest.
        let (anchored, free): (Vec<&Read>, Vec<&Read>) = all_reads.iter().partition(|r| r.is_anchored());
        let mut bindings = Bindings::new();
        let mut aspects: Vec<Vec<Value>> = Vec::new();
        let anchored_aspects: Vec<&Read> = anchored.iter().copied().filter(|r| r.predicate == "ivcap_aspect").collect();
        if !anchored_aspects.is_empty() {
            let matches = anchored_aspects.iter().map(|r| aspect_match(r, &Bindings::new())).collect();
            let (rows, admitted) = self.aspect_rows(at, matches).await?;
            for (read, positions) in anchored_aspects.iter().zip(&admitted) {
                if read.positive {
                    bind(&mut bindings, read, positions.iter().filter_map(|&i| rows.get(i)));
                }
            }
            aspects = rows;
        }
        for read in anchored.iter().filter(|r| r.positive && r.predicate != "ivcap_aspect") {
            let rows = facts.relations.get(&read.predicate).map(Vec::as_slice).unwrap_or_default();
            bind(&mut bindings, read, rows.iter().filter(|row| read.matches(row)));
        }
        let free_aspects: Vec<&Read> = free.iter().copied().filter(|r| r.predicate == "ivcap_aspect").collect();
        if !free_aspects.is_empty() {
            let matches = free_aspects.iter().map(|r| aspect_match(r, &bindings)).collect();
            let (rows, _) = self.aspect_rows(at, matches).await?;
            // Rows already made by the anchored reads come again here at most once each.
            let seen: HashSet<&Vec<Value>> = aspects.iter().collect();
            let fresh: Vec<Vec<Value>> = rows.into_iter().filter(|r| !seen.contains(r)).collect();
            aspects.extend(fresh);
        }
        if needs("ivcap_aspect") {
            facts.relations.insert("ivcap_aspect".into(), aspects);
        }
        for (predicate, rows) in &mut facts.relations {
            let mine: Vec<&Read> = all_reads.iter().filter(|r| &r.predicate == predicate).collect();
            if !mine.is_empty() {
                rows.retain(|row| mine.iter().any(|read| admits(read, row, &bindings)));
            }
        }
        Ok(facts)
    }

    /// `ivcap_job`, `ivcap_artifact` and `ivcap_artifact_produced_by` facts valid at `at`,
    /// those of them `needs` asks for.
    async fn job_and_artifact_facts(
        &self,
        facts: &mut Facts,
        needs: &(dyn Fn(&str) -> bool + Sync),
        at: DateTime<Utc>,
    ) -> Result<()> {
        let wants_jobs = needs("ivcap_job") || needs("ivcap_artifact_produced_by");
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
        Ok(())
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
        if let Some(what) = not_datalog(query) {
            // The example names a schema of this store, if it has any.
            let schema = self.schema_urns("", 1).await.ok().and_then(|(s, _)| s.into_iter().next());
            return Err(language_error(what, schema.as_deref()));
        }
        let engine = MangleEngine;
        let local = prepare(&engine, query)?;
        let facts = self.search_facts(&local, at).await?;
        let window = resume.offset..resume.offset.saturating_add(page.limit as usize);
        let (total, answers) = evaluate(engine, local, facts, self.search.limits, window).await?;
        let answers: Vec<Value> = answers.into_iter().map(Value::Object).collect();
        Ok(offset_window(answers, total, page, &resume, &crate::time::format(at), &scope))
    }
}
