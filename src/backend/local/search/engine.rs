//! The boundary between local search and the Datalog engine that evaluates it. The local
//! backend gathers base facts as JSON rows and asks a [`DatalogEngine`] to prepare and run a
//! query; nothing outside the engine's own module knows which engine that is (today Mangle,
//! through the published `mangle-*` crates).

use std::collections::{BTreeMap, BTreeSet};
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

    /// Drops the facts no read in `patterns` can match.
    pub fn retain_matching(&mut self, patterns: &Patterns) {
        for (predicate, rows) in &mut self.relations {
            let Some(reads) = patterns.get(predicate) else { continue };
            rows.retain(|row| {
                reads.iter().any(|read| {
                    read.len() == row.len() && read.iter().zip(row).all(|(c, v)| c.as_ref().is_none_or(|c| c == v))
                })
            });
        }
    }
}

/// What one query may cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most facts a query may derive (base facts not counted).
    pub max_facts: usize,
    /// Longest evaluation.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_facts: 1_000_000, timeout: Duration::from_secs(10) }
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
    /// Where the program reads each of them, with the constants it gives there.
    pub patterns: Patterns,
}

/// Per predicate, one entry per place it is read: each argument's constant, if it has one.
/// A fact that matches none of its predicate's entries cannot affect the answers.
pub type Patterns = BTreeMap<String, Vec<Vec<Option<Value>>>>;

/// Every read of `predicate` in `patterns` has a constant at column `col`: those constants.
pub fn constant_column(patterns: &Patterns, predicate: &str, col: usize) -> Option<BTreeSet<String>> {
    let reads = patterns.get(predicate)?;
    reads.iter().map(|p| p.get(col).cloned().flatten().and_then(|v| v.as_str().map(str::to_string))).collect()
}

/// One answer: variable name → value.
pub type Answer = Map<String, Value>;

/// A Datalog engine. Failures are argument errors on `query` that say what to fix.
pub trait DatalogEngine: Send + Sync {
    /// Parses and checks `query`.
    fn prepare(&self, query: &str) -> Result<Prepared>;

    /// Evaluates `query` over `facts` within `limits`; answers in a stable order, no duplicates.
    fn run(&self, query: &Prepared, facts: &Facts, limits: &Limits) -> Result<Vec<Answer>>;
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn facts_no_read_can_match_are_dropped() {
        let mut patterns = Patterns::new();
        patterns.insert("p".into(), vec![vec![None, Some(json!("s1"))], vec![Some(json!(1)), Some(json!("s2"))]]);
        let mut facts = Facts::default();
        for row in [json!([0, "s1"]), json!([1, "s2"]), json!([2, "s2"]), json!([3, "s3"])] {
            facts.add("p", row.as_array().unwrap().clone());
        }
        facts.add("q", vec![json!(9)]);
        facts.retain_matching(&patterns);
        assert_eq!(facts.relations["p"], vec![vec![json!(0), json!("s1")], vec![json!(1), json!("s2")]]);
        assert_eq!(facts.relations["q"].len(), 1);
        assert_eq!(constant_column(&patterns, "p", 1), Some(["s1".to_string(), "s2".to_string()].into()));
        assert_eq!(constant_column(&patterns, "p", 0), None);
    }
}
