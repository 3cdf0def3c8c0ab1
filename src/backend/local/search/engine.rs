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
