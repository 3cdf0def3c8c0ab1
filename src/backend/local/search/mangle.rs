//! [`DatalogEngine`] over Google's Mangle, through the published `mangle-parse`,
//! `mangle-ast`, `mangle-driver` and `mangle-interpreter` crates (pinned in Cargo.toml).
//!
//! What this module adds around the crates, because of what they do not do:
//! - headless queries (`:- body.`) are rewritten to a synthetic head over the body's
//!   variables, and parse errors are reported as "line L, column C" of the caller's text;
//! - built-in predicates are checked against the ones the interpreter implements (an
//!   unknown `:builtin` would otherwise silently match nothing);
//! - evaluation runs on our [`HashedStore`], which enforces the fact budget and deadline
//!   (the interpreter has no cancellation), and errors the interpreter raises while running
//!   (an unknown function, a missing struct field) come back as clear query errors;
//! - a panic inside the crates is caught and reported instead of taking the server down.
//!
//! The crates write diagnostics to stderr only (`eprintln!` in `MemStore`, which we do not
//! use); nothing here writes to stdout.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, SecondsFormat};
use mangle_ast::{self as ast, Arena};
use mangle_interpreter::{CompoundKind, Value};
use serde_json::{Map, Value as Json};

use super::engine::{Answer, Arg, DatalogEngine, Facts, Limits, Prepared, Read};
use super::store::{Exhausted, HashedStore, give_back_memory};
use crate::backend::search::syntax::{code_mask, line_col, statement_starts};
use crate::error::{Error, Result};

/// The head given to a headless query.
const ANSWER: &str = "ivcap_answer__";
/// The head a program names its answers with.
const QUERY: &str = "query";

/// Built-in predicates the 0.9.2 interpreter evaluates; any other `:name` is refused.
const BUILTINS: &[&str] = &[
    ":lt",
    ":le",
    ":gt",
    ":ge",
    ":time:lt",
    ":time:le",
    ":time:gt",
    ":time:ge",
    ":duration:lt",
    ":duration:le",
    ":duration:gt",
    ":duration:ge",
    ":string:starts_with",
    ":string:ends_with",
    ":string:contains",
    ":match_prefix",
    ":match_field",
    ":list:member",
];

/// Mangle, evaluated in process.
#[derive(Debug, Default, Clone, Copy)]
pub struct MangleEngine;

fn query_error(message: impl Into<String>) -> Error {
    Error::invalid("query", message)
}

/// Runs `f`, turning a panic in the Mangle crates into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown failure".into());
        Err(query_error(format!(
            "the Mangle engine failed on this query ({what}); simplify the query or check argument counts of built-ins"
        )))
    })
}

impl DatalogEngine for MangleEngine {
    fn prepare(&self, query: &str) -> Result<Prepared> {
        guarded(|| prepare(query))
    }

    fn run(
        &self,
        query: &Prepared,
        facts: &Facts,
        limits: &Limits,
        window: Range<usize>,
    ) -> Result<(usize, Vec<Answer>)> {
        guarded(|| run(query, facts, limits, window))
    }
}

/// Where a synthetic head was inserted, to map parse-error positions back.
#[derive(Debug, Clone, Copy)]
struct Insertion {
    line: usize,
    col: usize,
    len: usize,
}

/// Rewrites `path:L:C` positions in a parser message to "line L, column C" of the caller's text.
fn located(message: &str, insertion: Option<Insertion>) -> String {
    let prefix = "query:";
    let Some(at) = message.find(prefix) else { return message.to_string() };
    let rest = &message[at + prefix.len()..];
    let mut parts = rest.splitn(3, ':');
    let (Some(line), Some(col)) =
        (parts.next().and_then(|l| l.parse::<usize>().ok()), parts.next().and_then(|c| c.parse::<usize>().ok()))
    else {
        return message.to_string();
    };
    let tail = parts.next().unwrap_or("").trim_start();
    // The scanner reports the column after the unexpected token; point at its start instead.
    let token_len = tail.rsplit_once("got `").and_then(|(_, t)| t.strip_suffix('`')).map_or(0, |t| t.chars().count());
    let col = if col > token_len { col - token_len } else { col };
    let col = match insertion {
        Some(ins) if ins.line == line && col > ins.col + ins.len => col - ins.len,
        Some(ins) if ins.line == line && col > ins.col => ins.col,
        _ => col,
    };
    format!("{}line {line}, column {col}: {tail}", &message[..at])
}

/// Parses `source`; a failure is a query error with its position.
fn parse<'a>(arena: &'a Arena, source: &str, insertion: Option<Insertion>) -> Result<&'a ast::Unit<'a>> {
    let mut parser = mangle_parse::Parser::new(arena, source.as_bytes(), "query");
    parser
        .next_token()
        .and_then(|()| parser.parse_unit())
        .map_err(|e| query_error(format!("syntax error at {}", located(&format!("{e:#}"), insertion))))
}

fn prepare(query: &str) -> Result<Prepared> {
    if query.trim().is_empty() {
        return Err(query_error(
            "the query is empty; write a headless query such as `:- ivcap_service(Id, Name).` or a program with a query(...) rule",
        ));
    }
    let mask = code_mask(query);
    let headless = statement_starts(query, &mask, ":-");
    let (program, answer, columns) = match headless.as_slice() {
        [] => {
            let arena = Arena::new_with_global_interner();
            let unit = parse(&arena, query, None)?;
            let head = unit
                .clauses
                .iter()
                .find(|c| arena.predicate_name(c.head.sym) == Some(QUERY))
                .ok_or_else(|| {
                    query_error(
                        "the query has no query(...) rule and is not a headless `:- …` query; \
                         add a rule such as `query(Id) :- ivcap_artifact(Id, _, \"image/jpeg\").` or start the query with `:-`",
                    )
                })?;
            let columns = head_columns(&arena, head.head);
            (query.to_string(), QUERY.to_string(), columns)
        }
        [at] => {
            let probe_head = format!("{ANSWER}()");
            let probe = format!("{}{probe_head} {}", &query[..*at], &query[*at..]);
            let (line, col) = line_col(query, *at);
            let insertion = Insertion { line, col, len: probe_head.len() + 1 };
            let arena = Arena::new_with_global_interner();
            let unit = parse(&arena, &probe, Some(insertion))?;
            let clause = unit
                .clauses
                .iter()
                .find(|c| arena.predicate_name(c.head.sym) == Some(ANSWER))
                .ok_or_else(|| query_error("the headless query could not be found after parsing"))?;
            let columns = headless_columns(&arena, clause);
            let head = format!("{ANSWER}({})", columns.join(", "));
            let program = format!("{}{head} {}", &query[..*at], &query[*at..]);
            (program, ANSWER.to_string(), columns)
        }
        [_, second, ..] => {
            let (line, col) = line_col(query, *second);
            return Err(query_error(format!(
                "line {line}, column {col}: only one headless `:- …` query is allowed; \
                 name the other answers with rules and join them in the one query"
            )));
        }
    };
    let arena = Arena::new_with_global_interner();
    let unit = parse(&arena, &program, None)?;
    check_builtins(&arena, unit)?;
    let extensional = extensional(&arena, unit);
    let reads = reads(&arena, unit, &extensional);
    Ok(Prepared { program, answer, columns, extensional, reads })
}

/// Names for the answer columns: the head's variables, or `arg<N>` for constants.
fn head_columns(arena: &Arena, head: &ast::Atom) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for (i, arg) in head.args.iter().enumerate() {
        let mut name = match arg {
            ast::BaseTerm::Variable(v) if v.0 != 0 => arena.lookup_name(v.0).unwrap_or("").to_string(),
            _ => String::new(),
        };
        if name.is_empty() || columns.contains(&name) {
            name = format!("arg{}", i + 1);
        }
        columns.push(name);
    }
    columns
}

/// The variables a headless query answers with: with `|> do fn:group_by(…)`, the grouping
/// variables and the `let` results; otherwise every named variable of the body, in order.
fn headless_columns(arena: &Arena, clause: &ast::Clause) -> Vec<String> {
    let mut vars = Vec::new();
    let group_by = clause.transform.iter().find_map(|t| match t.app {
        ast::BaseTerm::ApplyFn(f, args) if t.var.is_none() && arena.function_name(*f) == Some("fn:group_by") => {
            Some(*args)
        }
        _ => None,
    });
    match group_by {
        Some(args) => args.iter().for_each(|a| base_vars(arena, a, &mut vars)),
        None => {
            for premise in clause.premises {
                match premise {
                    ast::Term::Atom(a) | ast::Term::NegAtom(a) | ast::Term::TemporalAtom(a, _) => {
                        a.args.iter().for_each(|t| base_vars(arena, t, &mut vars))
                    }
                    ast::Term::Eq(l, r) | ast::Term::Ineq(l, r) => {
                        base_vars(arena, l, &mut vars);
                        base_vars(arena, r, &mut vars);
                    }
                }
            }
        }
    }
    for t in clause.transform {
        if let Some(v) = t.var
            && !vars.iter().any(|x| x == v)
        {
            vars.push(v.to_string());
        }
    }
    vars
}

fn base_vars(arena: &Arena, term: &ast::BaseTerm, out: &mut Vec<String>) {
    match term {
        ast::BaseTerm::Variable(v) if v.0 != 0 => {
            if let Some(name) = arena.lookup_name(v.0)
                && !name.starts_with('_')
                && !out.iter().any(|x| x == name)
            {
                out.push(name.to_string());
            }
        }
        ast::BaseTerm::ApplyFn(_, args) => args.iter().for_each(|a| base_vars(arena, a, out)),
        _ => {}
    }
}

/// Atoms in clause bodies.
fn body_atoms<'a>(unit: &'a ast::Unit<'a>) -> impl Iterator<Item = &'a ast::Atom<'a>> {
    unit.clauses.iter().flat_map(|c| c.premises.iter()).filter_map(|p| match p {
        ast::Term::Atom(a) | ast::Term::NegAtom(a) | ast::Term::TemporalAtom(a, _) => Some(*a),
        _ => None,
    })
}

fn check_builtins(arena: &Arena, unit: &ast::Unit) -> Result<()> {
    for atom in body_atoms(unit) {
        let name = arena.predicate_name(atom.sym).unwrap_or("");
        if name.starts_with(':') && !BUILTINS.contains(&name) {
            return Err(query_error(format!(
                "the built-in predicate {name} is not supported by local search; supported built-ins: {}",
                BUILTINS.join(", ")
            )));
        }
    }
    Ok(())
}

/// Predicates read in bodies and defined by no clause.
fn extensional(arena: &Arena, unit: &ast::Unit) -> BTreeSet<String> {
    let defined: BTreeSet<&str> = unit.clauses.iter().filter_map(|c| arena.predicate_name(c.head.sym)).collect();
    body_atoms(unit)
        .filter_map(|a| arena.predicate_name(a.sym))
        .filter(|n| !n.starts_with(':') && !defined.contains(n))
        .map(str::to_string)
        .collect()
}

/// A query constant as the JSON value a base fact would hold, when there is one.
fn const_json(arena: &Arena, c: &ast::Const) -> Option<Json> {
    match c {
        ast::Const::String(s) => Some(Json::String(s.to_string())),
        ast::Const::Number(n) => Some(Json::from(*n)),
        // JSON true, false and null become these names (see `to_value`); other names and
        // floats narrow nothing we index.
        ast::Const::Name(n) => match arena.lookup_name(*n)? {
            "/true" => Some(Json::Bool(true)),
            "/false" => Some(Json::Bool(false)),
            "/null" => Some(Json::Null),
            _ => None,
        },
        _ => None,
    }
}

/// The name of a variable term (not `_`).
fn var_name<'a>(arena: &Arena, term: &ast::BaseTerm<'a>) -> Option<&'static str> {
    match term {
        ast::BaseTerm::Variable(v) if v.0 != 0 => arena.lookup_name(v.0).filter(|n| !n.starts_with('_')),
        _ => None,
    }
}

/// Every read of an extensional predicate, with what its clause tells about its arguments:
/// constants (in the atom, or through `X = "…"`) and `:match_field(X, /field, value)` on
/// one of its variables.
fn reads(arena: &Arena, unit: &ast::Unit, extensional: &BTreeSet<String>) -> Vec<Read> {
    let mut out = Vec::new();
    for (clause_no, clause) in unit.clauses.iter().enumerate() {
        let mut bound: Vec<(&str, Json)> = Vec::new();
        let mut fields: Vec<(&str, String, Json)> = Vec::new();
        let mut field_vars: Vec<(&str, String, &str)> = Vec::new();
        for premise in clause.premises {
            match premise {
                ast::Term::Eq(l, r) => {
                    let pair = match (l, r) {
                        (v, ast::BaseTerm::Const(c)) | (ast::BaseTerm::Const(c), v) => {
                            var_name(arena, v).zip(const_json(arena, c))
                        }
                        _ => None,
                    };
                    bound.extend(pair);
                }
                ast::Term::Atom(a) if arena.predicate_name(a.sym) == Some(":match_field") => {
                    let [subject, ast::BaseTerm::Const(ast::Const::Name(f)), value] = a.args else { continue };
                    let (Some(var), Some(field)) = (var_name(arena, subject), arena.lookup_name(*f)) else { continue };
                    let field = field.trim_start_matches('/').to_string();
                    match value {
                        ast::BaseTerm::Const(c) => fields.extend(const_json(arena, c).map(|v| (var, field, v))),
                        v => field_vars.extend(var_name(arena, v).map(|x| (var, field, x))),
                    }
                }
                _ => {}
            }
        }
        for premise in clause.premises {
            let (atom, positive) = match premise {
                ast::Term::Atom(a) | ast::Term::TemporalAtom(a, _) => (*a, true),
                ast::Term::NegAtom(a) => (*a, false),
                _ => continue,
            };
            let Some(name) = arena.predicate_name(atom.sym).filter(|n| extensional.contains(*n)) else { continue };
            let mut read = Read {
                predicate: name.to_string(),
                clause: clause_no,
                positive,
                args: Vec::new(),
                fields: Vec::new(),
                field_vars: Vec::new(),
            };
            for (col, arg) in atom.args.iter().enumerate() {
                let a = match arg {
                    ast::BaseTerm::Const(c) => const_json(arena, c).map_or(Arg::Any, Arg::Const),
                    v => match var_name(arena, v) {
                        Some(var) => {
                            read.fields.extend(
                                fields.iter().filter(|(x, ..)| *x == var).map(|(_, f, v)| (col, f.clone(), v.clone())),
                            );
                            read.field_vars.extend(
                                field_vars
                                    .iter()
                                    .filter(|(x, ..)| *x == var)
                                    .map(|(_, f, v)| (col, f.clone(), v.to_string())),
                            );
                            match bound.iter().find(|(x, _)| *x == var) {
                                Some((_, c)) => Arg::Const(c.clone()),
                                None => Arg::Var(var.to_string()),
                            }
                        }
                        None => Arg::Any,
                    },
                };
                read.args.push(a);
            }
            out.push(read);
        }
    }
    out
}

/// Evaluations that charged more than this hand their memory back when done.
const LARGE: usize = 4 << 20;

fn run(query: &Prepared, facts: &Facts, limits: &Limits, window: Range<usize>) -> Result<(usize, Vec<Answer>)> {
    let charged = Cell::new(0);
    let result = evaluate(query, facts, limits, window, &charged);
    if charged.get() > LARGE {
        give_back_memory();
    }
    result
}

fn evaluate(
    query: &Prepared,
    facts: &Facts,
    limits: &Limits,
    window: Range<usize>,
    charged: &Cell<usize>,
) -> Result<(usize, Vec<Answer>)> {
    let arena = Arena::new_with_global_interner();
    let (mut ir, stratified) = mangle_driver::compile(&query.program, &arena)
        .map_err(|e| query_error(format!("the query cannot be evaluated: {}", located(&format!("{e:#}"), None))))?;
    let mut store = HashedStore::new(limits.max_facts, limits.max_bytes, limits.timeout, charged);
    for (predicate, rows) in &facts.relations {
        if query.extensional.contains(predicate) {
            store.load(predicate, rows.iter().map(|row| row.iter().map(to_value).collect()).collect());
        }
    }
    let interpreter = mangle_driver::execute(&mut ir, &stratified, Box::new(store)).map_err(|e| {
        match e.downcast_ref::<Exhausted>() {
            Some(why) => query_error(format!(
                "query too large: evaluation stopped because {why}; make the query more selective \
                 (bind constants early, bound recursion) or query a narrower at_time"
            )),
            None => query_error(format!(
                "the query failed while running: {e:#}; check the functions and built-ins it calls and their arguments"
            )),
        }
    })?;
    let store = interpreter.into_store();
    let mut rows: Vec<Vec<Value>> = store
        .scan(&query.answer)
        .map_err(|e| query_error(format!("cannot read the answers: {e:#}")))?
        .filter(|r| r.len() == query.columns.len())
        .collect();
    // Every other derived fact is let go before the answers are converted.
    drop(store);
    rows.sort();
    rows.dedup();
    let total = rows.len();
    let end = window.end.min(total);
    let start = window.start.min(end);
    let answers = rows
        .drain(start..end)
        .map(|row| query.columns.iter().cloned().zip(row.iter().map(to_json)).collect::<Map<_, _>>())
        .collect();
    Ok((total, answers))
}

/// JSON → Mangle: objects become structs keyed by names (`/key`), arrays lists, `true`,
/// `false` and `null` the names `/true`, `/false`, `/null`.
pub fn to_value(v: &Json) -> Value {
    match v {
        Json::Null => Value::Name("/null".into()),
        Json::Bool(b) => Value::Name(if *b { "/true" } else { "/false" }.into()),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Number(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(items) => Value::Compound(CompoundKind::List, items.iter().map(to_value).collect()),
        Json::Object(map) => Value::Compound(
            CompoundKind::Struct,
            map.iter().flat_map(|(k, v)| [Value::Name(format!("/{k}")), to_value(v)]).collect(),
        ),
    }
}

/// Mangle → JSON, the inverse of [`to_value`]; times as RFC 3339, durations as text.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Number(n) => Json::from(*n),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.clone()),
        Value::Name(n) => match n.as_str() {
            "/true" => Json::Bool(true),
            "/false" => Json::Bool(false),
            "/null" => Json::Null,
            _ => Json::String(n.clone()),
        },
        Value::Time(nanos) => {
            Json::String(DateTime::from_timestamp_nanos(*nanos).to_rfc3339_opts(SecondsFormat::AutoSi, true))
        }
        Value::Duration(_) => Json::String(v.to_string()),
        Value::Compound(CompoundKind::List | CompoundKind::Pair, items) => {
            Json::Array(items.iter().map(to_json).collect())
        }
        Value::Compound(CompoundKind::Struct | CompoundKind::Map, pairs) => {
            let keyed = pairs.chunks_exact(2).all(|p| matches!(p[0], Value::Name(_) | Value::String(_)));
            if keyed {
                let map = pairs.chunks_exact(2).map(|p| (key_text(&p[0]), to_json(&p[1]))).collect::<Map<_, _>>();
                Json::Object(map)
            } else {
                Json::Array(pairs.chunks_exact(2).map(|p| Json::Array(vec![to_json(&p[0]), to_json(&p[1])])).collect())
            }
        }
        Value::Null => Json::Null,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::Name(n) => n.strip_prefix('/').unwrap_or(n).to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn facts() -> Facts {
        let mut f = Facts::default();
        for (id, name, mime) in [
            ("urn:a:1", "cat.jpg", "image/jpeg"),
            ("urn:a:2", "dog.png", "image/png"),
            ("urn:a:3", "owl.jpg", "image/jpeg"),
        ] {
            f.add("ivcap_artifact", vec![json!(id), json!(name), json!(mime)]);
        }
        f.add(
            "ivcap_aspect",
            vec![json!("urn:a:1"), json!("urn:s:label.1"), json!({"label": "cat", "score": 0.9, "ok": true})],
        );
        f.add(
            "ivcap_aspect",
            vec![json!("urn:a:3"), json!("urn:s:label.1"), json!({"label": "owl", "score": 0.4, "ok": false})],
        );
        f
    }

    fn eval(query: &str) -> Result<Vec<Answer>> {
        let p = MangleEngine.prepare(query)?;
        Ok(MangleEngine.run(&p, &facts(), &Limits::default(), 0..usize::MAX)?.1)
    }

    fn answers(query: &str) -> Vec<Json> {
        eval(query).unwrap_or_else(|e| panic!("{query}: {e}")).into_iter().map(Json::Object).collect()
    }

    #[test]
    fn headless_query_binds_its_variables() {
        let got = answers(r#":- ivcap_artifact(Id, Name, MimeType), MimeType = "image/jpeg"."#);
        assert_eq!(
            got,
            vec![
                json!({"Id": "urn:a:1", "Name": "cat.jpg", "MimeType": "image/jpeg"}),
                json!({"Id": "urn:a:3", "Name": "owl.jpg", "MimeType": "image/jpeg"}),
            ]
        );
    }

    #[test]
    fn program_with_query_rule() {
        let got = answers("jpeg(Id) :- ivcap_artifact(Id, _, \"image/jpeg\").\nquery(Id) :- jpeg(Id).");
        assert_eq!(got, vec![json!({"Id": "urn:a:1"}), json!({"Id": "urn:a:3"})]);
    }

    #[test]
    fn join_artifacts_with_aspect_struct_fields() {
        let got = answers(
            r#":- ivcap_artifact(Id, Name, _), ivcap_aspect(Id, "urn:s:label.1", C), :match_field(C, /label, L), :match_field(C, /ok, /true)."#,
        );
        assert_eq!(
            got,
            vec![
                json!({"Id": "urn:a:1", "Name": "cat.jpg", "C": {"label": "cat", "score": 0.9, "ok": true}, "L": "cat"})
            ]
        );
    }

    #[test]
    fn recursion_reaches_the_transitive_closure() {
        let got = answers(
            "edge(1, 2). edge(2, 3). edge(3, 4).\n\
             reach(X, Y) :- edge(X, Y).\n\
             reach(X, Z) :- reach(X, Y), edge(Y, Z).\n\
             query(Y) :- reach(1, Y).",
        );
        assert_eq!(got, vec![json!({"Y": 2}), json!({"Y": 3}), json!({"Y": 4})]);
    }

    #[test]
    fn negation_excludes_labelled_artifacts() {
        let got = answers(
            "labelled(Id) :- ivcap_aspect(Id, \"urn:s:label.1\", _).\n\
             query(Id) :- ivcap_artifact(Id, _, _), !labelled(Id).",
        );
        assert_eq!(got, vec![json!({"Id": "urn:a:2"})]);
    }

    #[test]
    fn aggregation_counts_per_group() {
        let got = answers(":- ivcap_artifact(Id, _, Mime) |> do fn:group_by(Mime), let N = fn:count().");
        assert_eq!(got, vec![json!({"Mime": "image/jpeg", "N": 2}), json!({"Mime": "image/png", "N": 1})]);
        let got = answers("query(Mime, N) :- ivcap_artifact(Id, _, Mime) |> do fn:group_by(Mime), let N = fn:count().");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn comparisons_and_string_builtins() {
        let got = answers(
            r#":- ivcap_aspect(Id, _, C), :match_field(C, /score, S), :gt(S, 0.5), :string:starts_with(Id, "urn:a:")."#,
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0]["Id"], json!("urn:a:1"));
    }

    #[test]
    fn parse_errors_give_line_and_column_of_the_callers_text() {
        let err =
            eval("query(X) :- ivcap_artifact(X, _, _).\nquery(X) :- ivcap_artifact(X _, _).").unwrap_err().to_string();
        assert!(err.contains("invalid argument 'query'") && err.contains("line 2, column"), "{err}");
        let err = eval(":- ivcap_artifact(X, _, _) ivcap_service(X, _).").unwrap_err().to_string();
        assert!(err.contains("line 1, column 28"), "{err}");
    }

    #[test]
    fn an_unsupported_builtin_is_named() {
        let err = eval(":- ivcap_artifact(X, _, _), :within_distance(X, X, 3).").unwrap_err().to_string();
        assert!(err.contains(":within_distance is not supported") && err.contains(":match_field"), "{err}");
    }

    #[test]
    fn a_runtime_failure_is_a_clear_error() {
        let err = eval(":- ivcap_aspect(Id, _, C), L = fn:struct:get(C, /missing).").unwrap_err().to_string();
        assert!(err.contains("failed while running") && err.contains("fn:struct:get"), "{err}");
        let err = eval(":- ivcap_artifact(Id, _, _), L = fn:no_such_function(Id).").unwrap_err().to_string();
        assert!(err.contains("no_such_function"), "{err}");
    }

    #[test]
    fn a_runaway_recursion_is_stopped_by_the_fact_budget() {
        let p = MangleEngine
            .prepare("step(1). step(2). step(3).\nn(0).\nn(Y) :- n(X), step(D), Y = fn:plus(X, D).\nquery(X) :- n(X).")
            .unwrap();
        let limits = Limits { max_facts: 10_000, max_bytes: usize::MAX, timeout: Duration::from_secs(60) };
        let err = MangleEngine.run(&p, &facts(), &limits, 0..10).unwrap_err().to_string();
        assert!(err.contains("query too large") && err.contains("10000 facts"), "{err}");
    }

    #[test]
    fn a_slow_query_is_stopped_by_the_deadline() {
        let p = MangleEngine.prepare("n(0).\nn(Y) :- n(X), Y = fn:plus(X, 1).\nquery(X) :- n(X).").unwrap();
        let limits = Limits { max_facts: usize::MAX, max_bytes: usize::MAX, timeout: Duration::from_millis(200) };
        let err = MangleEngine.run(&p, &facts(), &limits, 0..10).unwrap_err().to_string();
        assert!(err.contains("query too large") && err.contains("ran longer than 0.2 s"), "{err}");
    }

    #[test]
    fn a_runaway_recursion_is_stopped_by_the_byte_budget() {
        let p = MangleEngine.prepare("n(0).\nn(Y) :- n(X), Y = fn:plus(X, 1).\nquery(X) :- n(X).").unwrap();
        let limits = Limits { max_facts: usize::MAX, max_bytes: 1 << 20, timeout: Duration::from_secs(60) };
        let err = MangleEngine.run(&p, &facts(), &limits, 0..10).unwrap_err().to_string();
        assert!(err.contains("query too large") && err.contains("more than 1 MiB"), "{err}");
    }

    #[test]
    fn only_the_window_is_converted_and_the_total_is_counted() {
        let p = MangleEngine.prepare(":- ivcap_artifact(Id, _, _).").unwrap();
        let (total, page) = MangleEngine.run(&p, &facts(), &Limits::default(), 1..2).unwrap();
        assert_eq!((total, page), (3, vec![json!({"Id": "urn:a:2"}).as_object().unwrap().clone()]));
        let (total, page) = MangleEngine.run(&p, &facts(), &Limits::default(), 5..10).unwrap();
        assert_eq!((total, page.len()), (3, 0));
    }

    #[test]
    fn a_query_needs_an_answer() {
        let err = eval("p(1).").unwrap_err().to_string();
        assert!(err.contains("query(...)"), "{err}");
        let err = eval(":- p(X).\n:- p(Y).").unwrap_err().to_string();
        assert!(err.contains("line 2, column 1") && err.contains("only one headless"), "{err}");
    }

    #[test]
    fn extensional_predicates_are_reported() {
        let p = MangleEngine.prepare("q2(X) :- ivcap_service(X, _).\nquery(X) :- q2(X), !ivcap_job(X, _, _).").unwrap();
        assert_eq!(p.extensional.into_iter().collect::<Vec<_>>(), vec!["ivcap_job", "ivcap_service"]);
        let p = MangleEngine
            .prepare(
                r#":- ivcap_aspect(E, "urn:s:1", C), :match_field(C, /ok, /true), ivcap_aspect(E, S, 7), S = "urn:s:2", !ivcap_aspect(E, _, C)."#,
            )
            .unwrap();
        let var = |v: &str| Arg::Var(v.into());
        let args: Vec<(&Vec<Arg>, bool)> = p.reads.iter().map(|r| (&r.args, r.positive)).collect();
        assert_eq!(
            args,
            vec![
                (&vec![var("E"), Arg::Const(json!("urn:s:1")), var("C")], true),
                (&vec![var("E"), Arg::Const(json!("urn:s:2")), Arg::Const(json!(7))], true),
                (&vec![var("E"), Arg::Any, var("C")], false),
            ]
        );
        assert_eq!(p.reads[0].fields, vec![(2, "ok".to_string(), json!(true))]);
        assert_eq!(p.reads[2].fields, p.reads[0].fields, "the negated read sees the clause's field too");
        assert!(p.reads.iter().all(|r| r.clause == p.reads[0].clause));
        let p = MangleEngine
            .prepare(r#":- ivcap_aspect(E, _, C), :match_field(C, /next, N), ivcap_aspect(N, _, _)."#)
            .unwrap();
        assert_eq!(p.reads[0].field_vars, vec![(2, "next".to_string(), "N".to_string())]);
    }

    #[test]
    fn values_round_trip_between_json_and_mangle() {
        let v = json!({"a": [1, 2.5, "x", true, null], "b": {"c": false}});
        assert_eq!(to_json(&to_value(&v)), v);
    }
}
