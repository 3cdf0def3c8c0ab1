//! The boundary between local search and the Datalog engine that evaluates it. The local
//! backend gathers base facts as JSON rows and asks a [`DatalogEngine`] to prepare and run a
//! query; nothing outside the engine's own module knows which engine that is (today Mangle,
//! through the published `mangle-*` crates).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::Result;

/// Base facts by predicate name; each row is one tuple of JSON values.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Facts {
    pub relations: BTreeMap<String, Vec<Vec<Value>>>,
}

impl Facts {
    /// Adds one tuple to `predicate`.
    pub fn add(&mut self, predicate: &str, row: Vec<Value>) {
        self.relations.entry(predicate.to_string()).or_default().push(row);
    }

    /// Drops the facts no read in `reads` can match.
    pub fn retain_matching(&mut self, reads: &[Read]) {
        for (predicate, rows) in &mut self.relations {
            let mine: Vec<&Read> = reads.iter().filter(|r| &r.predicate == predicate).collect();
            if mine.is_empty() {
                continue;
            }
            rows.retain(|row| mine.iter().any(|read| read.matches(row)));
        }
    }
}

/// What one query may cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most facts a query may derive (base facts not counted).
    pub max_facts: usize,
    /// Most bytes the facts a query derives may take (an estimate of the engine's own
    /// footprint per fact, see the store), so a few huge facts are bounded as well as many
    /// small ones.
    pub max_bytes: usize,
    /// Longest evaluation.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_facts: 1_000_000,
            max_bytes: crate::config::DEFAULT_SEARCH_MEMORY,
            timeout: Duration::from_secs(10),
        }
    }
}

/// A query that parsed and passed the engine's checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The program as the engine will run it (headless queries rewritten).
    pub program: String,
    /// The predicate whose tuples are the answers.
    pub answer: String,
    /// The answer's column names (the variables of the query head).
    pub columns: Vec<String>,
    /// Predicates the program reads but does not define: the base facts it needs.
    pub extensional: BTreeSet<String>,
    /// Every place the program reads one of them, in clause order.
    pub reads: Vec<Read>,
}

/// One argument of a [`Read`].
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// A constant (given in the atom, or by an `X = "…"` of its clause).
    Const(Value),
    /// A named variable of the clause.
    Var(String),
    /// `_`, or anything else that constrains nothing we can use.
    Any,
}

/// One place a program reads a base predicate. A fact that no read of its predicate can
/// match cannot affect the answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Read {
    pub predicate: String,
    /// The clause it is in: variables are shared within one clause only.
    pub clause: usize,
    /// A positive atom, whose variables every answer of the clause takes from its facts
    /// (not a negated one).
    pub positive: bool,
    pub args: Vec<Arg>,
    /// `(column, field, value)`: the clause also has `:match_field(V, /field, value)` on
    /// the variable `V` of that column.
    pub fields: Vec<(usize, String, Value)>,
    /// `(column, field, variable)`: the clause has `:match_field(V, /field, X)` on the
    /// variable `V` of that column, so `X` takes its values from this read's facts.
    pub field_vars: Vec<(usize, String, String)>,
}

impl Read {
    /// Constants or content fields narrow what this read can match.
    pub fn is_anchored(&self) -> bool {
        !self.fields.is_empty() || self.args.iter().any(|a| matches!(a, Arg::Const(_)))
    }

    /// The constant of column `col`, if any.
    pub fn constant(&self, col: usize) -> Option<&Value> {
        match self.args.get(col) {
            Some(Arg::Const(v)) => Some(v),
            _ => None,
        }
    }

    /// Can `row` match this read?
    pub fn matches(&self, row: &[Value]) -> bool {
        self.args.len() == row.len()
            && self.args.iter().zip(row).all(|(a, v)| !matches!(a, Arg::Const(c) if c != v))
            && self.fields.iter().all(|(col, field, want)| row.get(*col).and_then(|c| c.get(field)) == Some(want))
    }
}

/// One answer: variable name → value.
pub type Answer = Map<String, Value>;

/// A Datalog engine. Failures are argument errors on `query` that say what to fix.
pub trait DatalogEngine: Send + Sync {
    /// Parses and checks `query`.
    fn prepare(&self, query: &str) -> Result<Prepared>;

    /// Evaluates `query` over `facts` within `limits`: how many answers there are (in a
    /// stable order, no duplicates), and those in `window`. Only the window is converted,
    /// so a large answer set is not held twice.
    fn run(
        &self,
        query: &Prepared,
        facts: &Facts,
        limits: &Limits,
        window: Range<usize>,
    ) -> Result<(usize, Vec<Answer>)>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read(predicate: &str, args: Vec<Arg>, fields: Vec<(usize, String, Value)>) -> Read {
        Read { predicate: predicate.into(), clause: 0, positive: true, args, fields, field_vars: vec![] }
    }

    #[test]
    fn facts_no_read_can_match_are_dropped() {
        let reads = vec![
            read("p", vec![Arg::Any, Arg::Const(json!("s1"))], vec![]),
            read("p", vec![Arg::Const(json!(1)), Arg::Const(json!("s2"))], vec![]),
            read("c", vec![Arg::Var("X".into()), Arg::Any], vec![(1, "label".into(), json!("cat"))]),
        ];
        let mut facts = Facts::default();
        for row in [json!([0, "s1"]), json!([1, "s2"]), json!([2, "s2"]), json!([3, "s3"])] {
            facts.add("p", row.as_array().unwrap().clone());
        }
        facts.add("q", vec![json!(9)]);
        for row in [json!([1, {"label": "cat"}]), json!([2, {"label": "dog"}]), json!([3, ["cat"]])] {
            facts.add("c", row.as_array().unwrap().clone());
        }
        facts.retain_matching(&reads);
        assert_eq!(facts.relations["p"], vec![vec![json!(0), json!("s1")], vec![json!(1), json!("s2")]]);
        assert_eq!(facts.relations["q"].len(), 1);
        assert_eq!(facts.relations["c"], vec![vec![json!(1), json!({"label": "cat"})]]);
        assert!(reads[1].is_anchored() && reads[2].is_anchored());
        assert!(!read("p", vec![Arg::Var("X".into()), Arg::Any], vec![]).is_anchored());
    }
}
