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
pub use engine::{Answer, Arg, DatalogEngine, Facts, Limits, Prepared, Read};
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

/// Records, for each variable of `read` (in a column, or a content field it reads with
/// `:match_field`), the values it takes in `rows`: a positive read binds them, so its
/// clause can use no others (intersected with what is known already).
fn bind<'a>(bindings: &mut Bindings, read: &Read, rows: impl Iterator<Item = &'a [Value]> + Clone) {
    let columns = read.args.iter().enumerate().filter_map(|(col, arg)| match arg {
        Arg::Var(v) => Some((v, rows.clone().filter_map(move |r| r.get(col).cloned()).collect::<HashSet<Value>>())),
        _ => None,
    });
    let fields = read.field_vars.iter().map(|(col, field, v)| {
        (v, rows.clone().filter_map(|r| r.get(*col)?.get(field).cloned()).collect::<HashSet<Value>>())
    });
    for (var, values) in columns.collect::<Vec<_>>().into_iter().chain(fields) {
        match bindings.entry((read.clause, var.clone())) {
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
    /// and of those only the facts some read can match. Aspect reads with constants (or
    /// `:match_field` values) go first; what each read's facts bind a variable to (a column,
    /// or a content field read with `:match_field`) narrows the later reads of that variable's
    /// clause, so a join on the entity fetches only those entities' aspects. Aspects are
    /// narrowed in the index before any row is made.
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
                let rows = self.aspect_rows(at, AspectMatch::default()).await?;
                facts.relations.insert("ivcap_aspect".into(), rows.into_iter().map(|(_, row)| row).collect());
            }
            facts.retain_matching(all_reads);
            return Ok(facts);
        }

        // The other predicates' facts are all made: each positive read binds its variables.
        let mut bindings = Bindings::new();
        for read in all_reads.iter().filter(|r| r.positive && r.predicate != "ivcap_aspect") {
            let rows = facts.relations.get(&read.predicate).map(Vec::as_slice).unwrap_or_default();
            bind(&mut bindings, read, rows.iter().filter(|row| read.matches(row)).map(Vec::as_slice));
        }
        // Aspect reads with constants first, each narrowed by what the reads before it bound.
        let mut aspect_reads: Vec<&Read> = all_reads.iter().filter(|r| r.predicate == "ivcap_aspect").collect();
        aspect_reads.sort_by_key(|r| (!r.is_anchored(), !r.positive));
        let mut made = HashSet::new();
        let mut aspects = Vec::new();
        for read in aspect_reads {
            let rows = self.aspect_rows(at, aspect_match(read, &bindings)).await?;
            if read.positive {
                bind(&mut bindings, read, rows.iter().map(|(_, row)| row.as_slice()));
            }
            aspects.extend(rows.into_iter().filter_map(|(id, row)| made.insert(id).then_some(row)));
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::backend::aspects::NewAspect;

    /// A store of 40 label aspects over 10 entities, 40 size aspects pointing at the next
    /// entity, and one aspect retracted; and the same store read with narrowing and without.
    async fn stores() -> (tempfile::TempDir, LocalBackend, LocalBackend) {
        let dir = tempfile::tempdir().unwrap();
        let narrowed = LocalBackend::new(dir.path()).unwrap();
        for i in 0..40 {
            let add = |schema: &str, content: Value| NewAspect {
                entity: format!("urn:e:{}", i % 10),
                schema: schema.into(),
                content,
                policy: None,
            };
            let label = ["cat", "dog", "owl"][i % 3];
            narrowed
                .add_aspect(&add("urn:s:label.1", json!({"label": label, "n": i, "ok": i % 2 == 0})))
                .await
                .unwrap();
            let size = json!({"bytes": i * 7, "next": format!("urn:e:{}", (i + 1) % 10)});
            let id = narrowed.add_aspect(&add("urn:s:size.1", size)).await.unwrap();
            if i == 5 {
                narrowed.retract_aspect(&id).await.unwrap();
            }
        }
        let full =
            LocalBackend::new(dir.path()).unwrap().with_search(SearchOptions { pushdown: false, ..Default::default() });
        (dir, narrowed, full)
    }

    /// Every answer of `query` on `backend`, and how many base facts it was given.
    async fn answers(backend: &LocalBackend, query: &str) -> (Vec<Answer>, usize) {
        let local = prepare(&MangleEngine, query).unwrap_or_else(|e| panic!("{query}: {e}"));
        let facts = backend.search_facts(&local, Utc::now()).await.unwrap();
        let given = facts.relations.values().map(Vec::len).sum();
        let (total, all) = evaluate(MangleEngine, local, facts, Limits::default(), 0..usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(total, all.len());
        (all, given)
    }

    #[tokio::test]
    async fn narrowing_never_changes_an_answer_and_gives_fewer_facts() {
        let (_dir, narrowed, full) = stores().await;
        let queries = [
            // (query, whether a join narrows it to fewer facts than the constants alone;
            // the baseline drops what constants exclude after making every fact)
            (r#":- ivcap_aspect("urn:e:3", S, C)."#, false),
            (r#":- ivcap_aspect(E, "urn:s:label.1", C), :match_field(C, /label, "owl")."#, false),
            (r#":- ivcap_aspect(E, S, C), :match_field(C, /n, 7)."#, false),
            (r#":- ivcap_aspect(E, S, C), :match_field(C, /ok, /true), E = "urn:e:4"."#, false),
            // A join on the entity: the second read is narrowed by what the first binds.
            (
                r#":- ivcap_aspect(E, "urn:s:label.1", C), :match_field(C, /n, 12), ivcap_aspect(E, S, D), :match_field(D, /bytes, B)."#,
                true,
            ),
            // The join value comes from content: the size aspect's `next` entity.
            (
                r#":- ivcap_aspect("urn:e:1", "urn:s:size.1", C), :match_field(C, /next, N), ivcap_aspect(N, "urn:s:label.1", L)."#,
                true,
            ),
            // Negation: only entities the positive read binds matter to it.
            (
                "sized(E) :- ivcap_aspect(E, \"urn:s:size.1\", C), :match_field(C, /bytes, 35).\n\
                 query(E) :- ivcap_aspect(E, \"urn:s:label.1\", C), :match_field(C, /label, \"cat\"), !sized(E).",
                false,
            ),
            (
                r#":- ivcap_aspect(E, "urn:s:label.1", C), :match_field(C, /label, "dog"), !ivcap_aspect(E, "urn:s:label.1", C)."#,
                false,
            ),
            // The same variable names in two rules are two variables.
            (
                "a(E) :- ivcap_aspect(E, \"urn:s:label.1\", C), :match_field(C, /n, 3).\n\
                 b(E) :- ivcap_aspect(E, _, _).\n\
                 query(E) :- b(E), !a(E).",
                false,
            ),
            // Recursion over content, from one constant.
            (
                "next(A, B) :- ivcap_aspect(A, \"urn:s:size.1\", C), :match_field(C, /next, B).\n\
                 reach(A, B) :- next(A, B).\n\
                 reach(A, C) :- reach(A, B), next(B, C).\n\
                 query(B) :- reach(\"urn:e:0\", B).",
                false,
            ),
            // A constant that matches nothing, and one of another type.
            (r#":- ivcap_aspect("urn:e:none", S, C)."#, false),
            (r#":- ivcap_aspect(7, S, C)."#, false),
            (r#":- ivcap_aspect(E, S, C), :match_field(C, /label, 7)."#, false),
            (":- ivcap_aspect(E, S, C).", false),
        ];
        for (query, narrows) in queries {
            let (ours, ours_given) = answers(&narrowed, query).await;
            let (theirs, theirs_given) = answers(&full, query).await;
            assert_eq!(ours, theirs, "{query}");
            assert!(ours_given <= theirs_given, "{query}: {ours_given} facts vs {theirs_given}");
            if narrows {
                assert!(ours_given < theirs_given, "{query}: {ours_given} facts vs {theirs_given}");
            }
        }
        // The join's second read got the one entity's aspects, not every size aspect.
        let join = r#":- ivcap_aspect(E, "urn:s:label.1", C), :match_field(C, /n, 12), ivcap_aspect(E, S, D)."#;
        let (found, given) = answers(&narrowed, join).await;
        assert_eq!(found.len(), 8, "entity 2 has 4 label and 4 size aspects");
        assert_eq!(given, 8, "only that entity's aspects were made into facts");
    }

    #[tokio::test]
    async fn narrowed_facts_follow_files_changed_behind_the_servers_back() {
        let (dir, narrowed, _) = stores().await;
        let query = r#":- ivcap_aspect("urn:e:new", S, C)."#;
        assert!(answers(&narrowed, query).await.0.is_empty());
        // As the Python SDK writes one: a new file in aspects/, not through this backend.
        let record = json!({"id": "urn:ivcap:aspect:0b5e7a52-6f1d-4c0e-9d55-2b8a3c4d5e6f", "entity": "urn:e:new",
            "schema": "urn:s:label.1", "content": {"label": "emu"}, "valid_from": "2026-01-01T00:00:00+00:00",
            "valid_to": null});
        let path = dir.path().join("aspects/0b5e7a52-6f1d-4c0e-9d55-2b8a3c4d5e6f.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&record).unwrap()).unwrap();
        let (found, _) = answers(&narrowed, query).await;
        assert_eq!(found.len(), 1);
        assert_eq!(found[0]["C"], json!({"label": "emu"}));
        std::fs::remove_file(&path).unwrap();
        assert!(answers(&narrowed, query).await.0.is_empty(), "a removed file is gone from search");
    }
}
