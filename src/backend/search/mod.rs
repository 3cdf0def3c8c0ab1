//! Search: Datalog queries, in Google's Mangle language, over the Datafabric as it was at
//! a point in time. The platform evaluates them itself (`POST /1/search`); the local
//! backend evaluates them in process over facts drawn from the local store.
//!
//! Both check what they can before any work: the size of the query, that it is Mangle at
//! all (SQL and questions in words get an example instead of a parser's guess), and that
//! the documented `ivcap_*` predicates get their number of arguments (a wrong count would
//! match nothing and answer an empty list).

pub mod syntax;

use chrono::{DateTime, Utc};
use mangle_ast::{self as ast, Arena};
use serde_json::Value;

use super::{Page, PageRequest};
use crate::error::{Error, Result};

/// The predicates IVCAP documents for search, with their arguments' names.
pub const PREDICATES: &[(&str, &[&str])] = &[
    ("ivcap_artifact", &["Id", "Name", "MimeType"]),
    ("ivcap_aspect", &["Entity", "Schema", "Content"]),
    ("ivcap_service", &["Id", "Name"]),
    ("ivcap_job", &["Id", "Status", "ServiceId"]),
    ("ivcap_artifact_produced_by", &["ArtifactId", "JobId"]),
];

/// `name(Arg, …)` of every documented predicate, for messages.
pub fn predicate_list() -> String {
    PREDICATES.iter().map(|(n, args)| format!("{n}({})", args.join(", "))).collect::<Vec<_>>().join(", ")
}

/// Refuses `predicate` read with `given` arguments when it is documented with another count.
pub fn check_arity(predicate: &str, given: usize) -> Result<()> {
    let Some((_, args)) = PREDICATES.iter().find(|(n, _)| *n == predicate) else { return Ok(()) };
    if args.len() == given {
        return Ok(());
    }
    let columns = args.join(", ");
    Err(Error::invalid(
        "query",
        format!(
            "{predicate} takes {} arguments ({columns}), but the query gives it {given}; \
             write {predicate}({columns}), with _ for the columns you do not need",
            args.len()
        ),
    ))
}

/// What a query that is not Datalog looks like, if it is plainly one of those.
pub fn not_datalog(query: &str) -> Option<&'static str> {
    const SQL: &[&str] =
        &["select", "insert", "update", "delete", "with", "create", "drop", "alter", "show", "describe", "explain"];
    let text = query.trim();
    let first = text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_').next().unwrap_or("");
    let after_first = text[first.len()..].chars().next();
    // No Mangle statement lacks `:-`, `(` and `!` while having two words in a row (rules
    // have `:-`, atoms `(`, package declarations `!`), so this refuses nothing Mangle accepts.
    let words = text.split_whitespace().take(2).count() == 2;
    if text.contains(":-") {
        return None;
    }
    if SQL.iter().any(|k| first.eq_ignore_ascii_case(k)) && after_first.is_some_and(char::is_whitespace) {
        return Some("SQL");
    }
    if !text.contains('(') && !text.contains('!') && words {
        return Some("a question in words");
    }
    None
}

/// The error for a query that looks like `what` (see [`not_datalog`]), with an example
/// query: over `example_schema` (a schema of the store's own) when there is one.
pub fn language_error(what: &str, example_schema: Option<&str>) -> Error {
    let example = match example_schema {
        Some(schema) => format!(":- ivcap_aspect(Entity, \"{schema}\", Content)."),
        None => ":- ivcap_artifact(Id, Name, MimeType), MimeType = \"image/jpeg\".".to_string(),
    };
    Error::invalid(
        "query",
        format!(
            "this looks like {what}, but the query language is Mangle Datalog; for example `{example}` \
             (a headless `:- …` query answers with its variables). Predicates: {}; read content fields with \
             :match_field(Content, /field, Value)",
            predicate_list()
        ),
    )
}

/// The platform-mode checks that need no platform: the language, and the arity of the
/// documented predicates wherever the query reads them without defining them. A query our
/// parser cannot read is sent as it is (the platform's parser is the judge of its syntax).
pub fn check_for_platform(query: &str) -> Result<()> {
    if let Some(what) = not_datalog(query) {
        return Err(language_error(what, None));
    }
    let Ok((mut text, _)) = syntax::extract_load_aspects(query) else { return Ok(()) };
    // A headless `:- …` query, which Mangle's own parser does not take, gets a head.
    let headless = syntax::statement_starts(&text, &syntax::code_mask(&text), ":-");
    for at in headless.into_iter().rev() {
        text.insert_str(at, "ivcap_headless__() ");
    }
    let arena = Arena::new_with_global_interner();
    let mut parser = mangle_parse::Parser::new(&arena, text.as_bytes(), "query");
    let Ok(unit) = parser.next_token().and_then(|()| parser.parse_unit()) else { return Ok(()) };
    let defined: Vec<&str> = unit.clauses.iter().filter_map(|c| arena.predicate_name(c.head.sym)).collect();
    for clause in unit.clauses {
        for premise in clause.premises {
            let atom = match premise {
                ast::Term::Atom(a) | ast::Term::NegAtom(a) | ast::Term::TemporalAtom(a, _) => a,
                _ => continue,
            };
            if let Some(name) = arena.predicate_name(atom.sym).filter(|n| !defined.contains(n)) {
                check_arity(name, atom.args.len())?;
            }
        }
    }
    Ok(())
}

/// Largest query text accepted, in bytes. The longest real programs (rules plus a few
/// `:load_aspect` tables) are a few KiB; 64 KiB leaves ample room, while a megabyte of
/// "query" is data pasted by mistake, and parsing and evaluating it would hold memory and a
/// core for nothing.
pub const MAX_QUERY_BYTES: usize = 64 << 10;

/// Refuses a query over [`MAX_QUERY_BYTES`], before any work is done on it.
pub fn check_query_size(query: &str) -> Result<()> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Error::invalid(
            "query",
            format!(
                "is {} bytes, over the limit of {MAX_QUERY_BYTES} bytes (64 KiB); a query is a Datalog program, \
                 not data: put large data in aspects or artifacts and query those",
                query.len()
            ),
        ));
    }
    Ok(())
}

/// Datalog search.
#[async_trait::async_trait]
pub trait SearchBackend {
    /// Runs the Mangle program `query` against the Datafabric valid at `at_time` (default
    /// now). Items are the answers: objects of bound variables (platform answers may be any
    /// JSON). Later pages need the same `query`.
    async fn search(&self, query: &str, at_time: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<Value>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_and_questions_are_not_datalog_but_mangle_is() {
        for q in ["SELECT * FROM aspects", "select id from artifacts where x = 1", "  WITH x AS (SELECT 1) SELECT *"] {
            assert_eq!(not_datalog(q), Some("SQL"), "{q}");
        }
        for q in ["which images show a cat?", "list all the artifacts", "what is in the store"] {
            assert_eq!(not_datalog(q), Some("a question in words"), "{q}");
        }
        for q in [
            ":- ivcap_service(Id, Name).",
            "select(X) :- ivcap_service(X, _).",
            "query(X) :- p(X).",
            "Package foo!\nquery(X) :- p(X).",
            "p(1).",
            "update",
            "show",
        ] {
            assert_eq!(not_datalog(q), None, "{q}");
        }
        let err = language_error(not_datalog("SELECT 1").unwrap(), Some("urn:s:label.1")).to_string();
        assert!(err.contains("looks like SQL") && err.contains("Mangle Datalog"), "{err}");
        assert!(err.contains(r#"`:- ivcap_aspect(Entity, "urn:s:label.1", Content).`"#), "{err}");
    }

    #[test]
    fn documented_predicates_need_their_argument_count() {
        let err = check_for_platform(":- ivcap_artifact(Id, Name).").unwrap_err().to_string();
        assert!(
            err.contains("ivcap_artifact takes 3 arguments (Id, Name, MimeType)") && err.contains("gives it 2"),
            "{err}"
        );
        let err = check_for_platform("q(X) :- !ivcap_job(X, _).\nquery(X) :- q(X).").unwrap_err().to_string();
        assert!(err.contains("ivcap_job takes 3 arguments (Id, Status, ServiceId)"), "{err}");
        // Defined by the query itself, unparsable here, or another predicate: the platform decides.
        check_for_platform("ivcap_artifact(1, 2).\nquery(X) :- ivcap_artifact(X, _).").unwrap();
        check_for_platform(":- ivcap_artifact(Id").unwrap();
        check_for_platform(":- other_predicate(Id).").unwrap();
        check_for_platform(":load_aspect(/c, \"urn:s:1\", [\".a\"]).\nquery(A) :- c(A), ivcap_aspect(A, _, _).")
            .unwrap();
    }
}
