//! The fact store the Mangle interpreter evaluates against, in place of the crate's
//! `MemStore` (whose duplicate check is a linear scan, so loading n facts is quadratic).
//!
//! Every relation keeps its stable, delta and next-delta tuples in vectors plus one hash set
//! of everything it holds, so `insert` is O(1); column indexes are built on the first lookup
//! of that column and kept up to date as deltas merge. The store is also where evaluation is
//! bounded, because the interpreter has no cancellation: every scan and insert checks a
//! deadline, and every new derived fact counts against a fact budget and a byte budget.
//! Once one runs out the store answers every call with [`Exhausted`], which the interpreter
//! passes up unchanged.
//!
//! **What a fact costs.** Counting facts alone let a runaway recursion of one-number facts
//! reach 291 MiB of resident memory at its 1,000,000-fact limit: a derived tuple is held
//! twice here (its vector and the duplicate set), each `Vec` and `String` is its own
//! allocation with the allocator's header and rounding, and the interpreter copies what it
//! scans. [`fact_bytes`] charges all of that per fact (checked against the resident memory a
//! runaway query really takes, tests/it/search.rs), and index entries are charged as
//! they are made, so the byte budget bounds the memory evaluation takes.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::Result;
use mangle_interpreter::{Store, Value};

/// Why evaluation was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// More than this many facts were derived.
    Facts(usize),
    /// The derived facts took more than this many bytes.
    Bytes(usize),
    /// Evaluation ran longer than this.
    Time(Duration),
}

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exhausted::Facts(n) => write!(f, "it derived more than {n} facts"),
            Exhausted::Bytes(n) => write!(f, "its derived facts took more than {} MiB of memory", n >> 20),
            Exhausted::Time(d) => write!(f, "it ran longer than {} s", d.as_secs_f64()),
        }
    }
}

impl std::error::Error for Exhausted {}

/// Column index: value → positions in a tuple vector.
type Index = HashMap<Value, Vec<usize>>;

/// Bytes one heap allocation of `n` bytes takes: glibc's 8-byte header, rounded up to 16,
/// at least 32.
fn alloc_bytes(n: usize) -> usize {
    if n == 0 { 0 } else { (n + 8).next_multiple_of(16).max(32) }
}

/// Bytes `v` holds on the heap beyond its own `size_of`.
fn heap_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) | Value::Name(s) => alloc_bytes(s.len()),
        Value::Compound(_, items) => {
            alloc_bytes(items.len() * std::mem::size_of::<Value>()) + items.iter().map(heap_bytes).sum::<usize>()
        }
        _ => 0,
    }
}

/// Bytes one copy of `tuple` takes: its vector's header, buffer and the values' heap.
fn tuple_bytes(tuple: &[Value]) -> usize {
    std::mem::size_of::<Vec<Value>>()
        + alloc_bytes(std::mem::size_of_val(tuple))
        + tuple.iter().map(heap_bytes).sum::<usize>()
}

/// What keeping one derived fact costs: two copies (the tuple vector and the duplicate
/// set), one more transient copy the interpreter makes when it scans, and the slack of
/// growing vectors and hash tables (up to half again of their slots).
fn fact_bytes(tuple: &[Value]) -> usize {
    3 * tuple_bytes(tuple) + 2 * std::mem::size_of::<Vec<Value>>()
}

/// What one index entry for `key` costs: the key's copy and a position.
fn index_entry_bytes(key: &Value) -> usize {
    std::mem::size_of::<Value>() + heap_bytes(key) + 2 * std::mem::size_of::<usize>()
}

/// One relation.
#[derive(Default)]
struct Relation {
    stable: Vec<Vec<Value>>,
    delta: Vec<Vec<Value>>,
    next: Vec<Vec<Value>>,
    /// Every tuple in `stable`, `delta` and `next`; built on the first insert, so base
    /// relations (which rules never insert into) are not hashed twice.
    seen: Option<HashSet<Vec<Value>>>,
    /// Built lazily per column, maintained on merge.
    stable_index: RefCell<HashMap<usize, Index>>,
    /// Built lazily per column, dropped on merge.
    delta_index: RefCell<HashMap<usize, Index>>,
}

/// The index of column `col` of `tuples`, and the bytes its entries take.
fn build_index(tuples: &[Vec<Value>], col: usize) -> (Index, usize) {
    let mut index = Index::new();
    let mut bytes = 0;
    for (i, t) in tuples.iter().enumerate() {
        if let Some(v) = t.get(col) {
            let positions = index.entry(v.clone()).or_insert_with(|| {
                bytes += index_entry_bytes(v);
                Vec::new()
            });
            positions.push(i);
            bytes += std::mem::size_of::<usize>();
        }
    }
    (index, bytes)
}

/// A hashed, bounded fact store.
pub struct HashedStore<'a> {
    relations: HashMap<String, Relation>,
    max_facts: usize,
    derived: usize,
    max_bytes: usize,
    /// Bytes charged for derived facts and for every index (see the module comment), kept
    /// by the caller so it can tell afterwards how much evaluation took.
    bytes: &'a Cell<usize>,
    deadline: Instant,
    timeout: Duration,
    /// Set once a limit is hit; every later call fails with it.
    exhausted: Cell<Option<Exhausted>>,
}

impl<'a> HashedStore<'a> {
    /// An empty store that allows `max_facts` derived facts taking `max_bytes` (counted in
    /// `bytes`), and `timeout` of evaluation from now.
    pub fn new(max_facts: usize, max_bytes: usize, timeout: Duration, bytes: &'a Cell<usize>) -> Self {
        HashedStore {
            relations: HashMap::new(),
            max_facts,
            derived: 0,
            max_bytes,
            bytes,
            deadline: Instant::now() + timeout,
            timeout,
            exhausted: Cell::new(None),
        }
    }

    /// Adds base facts (not counted against the budget), dropping duplicates.
    pub fn load(&mut self, relation: &str, mut tuples: Vec<Vec<Value>>) {
        let rel = self.relations.entry(relation.to_string()).or_default();
        tuples.append(&mut rel.stable);
        tuples.sort_unstable();
        tuples.dedup();
        rel.stable = tuples;
        rel.seen = None;
        rel.stable_index.get_mut().clear();
    }

    /// Charges `bytes` against the byte budget; fails once it is spent.
    fn charge(&self, bytes: usize) -> Result<()> {
        let total = self.bytes.get().saturating_add(bytes);
        self.bytes.set(total);
        if total > self.max_bytes {
            let e = Exhausted::Bytes(self.max_bytes);
            self.exhausted.set(Some(e));
            return Err(e.into());
        }
        Ok(())
    }

    /// Tuples of `tuples` whose column `col` equals `key`, through the lazily built index
    /// (its first build charged to the budget).
    fn lookup(
        &self,
        tuples: &[Vec<Value>],
        indexes: &RefCell<HashMap<usize, Index>>,
        col: usize,
        key: &Value,
    ) -> Result<Vec<Vec<Value>>> {
        let mut indexes = indexes.borrow_mut();
        let index = match indexes.entry(col) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let (index, bytes) = build_index(tuples, col);
                self.charge(bytes)?;
                e.insert(index)
            }
        };
        Ok(index.get(key).map(|rows| rows.iter().filter_map(|&i| tuples.get(i).cloned()).collect()).unwrap_or_default())
    }

    /// Fails when a limit has been hit, now or before.
    fn check(&self) -> Result<()> {
        if self.exhausted.get().is_none() && Instant::now() > self.deadline {
            self.exhausted.set(Some(Exhausted::Time(self.timeout)));
        }
        match self.exhausted.get() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }
}

/// Hands the memory freed by a large evaluation back to the system. glibc keeps freed memory
/// for reuse, and after a large block is freed it raises its trim threshold (up to 64 MiB),
/// so without this a stopped runaway query left ~14 MiB resident for good.
pub fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers
    // and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// An owned iterator, as the trait wants a boxed one.
fn boxed(tuples: Vec<Vec<Value>>) -> Box<dyn Iterator<Item = Vec<Value>>> {
    Box::new(tuples.into_iter())
}

impl Store for HashedStore<'_> {
    fn scan(&self, relation: &str) -> Result<Box<dyn Iterator<Item = Vec<Value>> + '_>> {
        self.check()?;
        Ok(match self.relations.get(relation) {
            Some(r) => Box::new(r.stable.iter().chain(r.delta.iter()).cloned()),
            None => Box::new(std::iter::empty()),
        })
    }

    fn scan_delta(&self, relation: &str) -> Result<Box<dyn Iterator<Item = Vec<Value>> + '_>> {
        self.check()?;
        Ok(match self.relations.get(relation) {
            Some(r) => Box::new(r.delta.iter().cloned()),
            None => Box::new(std::iter::empty()),
        })
    }

    fn scan_next_delta(&self, relation: &str) -> Result<Box<dyn Iterator<Item = Vec<Value>> + '_>> {
        self.check()?;
        Ok(match self.relations.get(relation) {
            Some(r) => Box::new(r.next.iter().cloned()),
            None => Box::new(std::iter::empty()),
        })
    }

    fn scan_index(
        &self,
        relation: &str,
        col_idx: usize,
        key: &Value,
    ) -> Result<Box<dyn Iterator<Item = Vec<Value>> + '_>> {
        self.check()?;
        let Some(r) = self.relations.get(relation) else { return Ok(boxed(Vec::new())) };
        let mut out = self.lookup(&r.stable, &r.stable_index, col_idx, key)?;
        if !r.delta.is_empty() {
            out.extend(self.lookup(&r.delta, &r.delta_index, col_idx, key)?);
        }
        Ok(boxed(out))
    }

    fn scan_delta_index(
        &self,
        relation: &str,
        col_idx: usize,
        key: &Value,
    ) -> Result<Box<dyn Iterator<Item = Vec<Value>> + '_>> {
        self.check()?;
        let Some(r) = self.relations.get(relation) else { return Ok(boxed(Vec::new())) };
        Ok(boxed(self.lookup(&r.delta, &r.delta_index, col_idx, key)?))
    }

    fn insert(&mut self, relation: &str, tuple: Vec<Value>) -> Result<bool> {
        self.check()?;
        let rel = self.relations.entry(relation.to_string()).or_default();
        let seen =
            rel.seen.get_or_insert_with(|| rel.stable.iter().chain(&rel.delta).chain(&rel.next).cloned().collect());
        if seen.contains(&tuple) {
            return Ok(false);
        }
        if self.derived >= self.max_facts {
            let e = Exhausted::Facts(self.max_facts);
            self.exhausted.set(Some(e));
            return Err(e.into());
        }
        let cost = fact_bytes(&tuple);
        let total = self.bytes.get().saturating_add(cost);
        self.bytes.set(total);
        if total > self.max_bytes {
            let e = Exhausted::Bytes(self.max_bytes);
            self.exhausted.set(Some(e));
            return Err(e.into());
        }
        self.derived += 1;
        seen.insert(tuple.clone());
        rel.next.push(tuple);
        Ok(true)
    }

    fn merge_deltas(&mut self) {
        let mut indexed = 0;
        for rel in self.relations.values_mut() {
            let delta = std::mem::take(&mut rel.delta);
            let start = rel.stable.len();
            for (col, index) in rel.stable_index.get_mut().iter_mut() {
                for (i, t) in delta.iter().enumerate() {
                    if let Some(v) = t.get(*col) {
                        let positions = index.entry(v.clone()).or_insert_with(|| {
                            indexed += index_entry_bytes(v);
                            Vec::new()
                        });
                        positions.push(start + i);
                        indexed += std::mem::size_of::<usize>();
                    }
                }
            }
            rel.stable.extend(delta);
            rel.delta = std::mem::take(&mut rel.next);
            rel.delta_index.get_mut().clear();
        }
        // The trait gives merging no way to fail: an overrun stops the next scan or insert.
        let _ = self.charge(indexed);
    }

    fn create_relation(&mut self, relation: &str) {
        self.relations.entry(relation.to_string()).or_default();
    }

    fn retract(&mut self, relation: &str, tuple: &[Value]) -> Result<bool> {
        let Some(rel) = self.relations.get_mut(relation) else { return Ok(false) };
        let seen =
            rel.seen.get_or_insert_with(|| rel.stable.iter().chain(&rel.delta).chain(&rel.next).cloned().collect());
        if !seen.remove(tuple) {
            return Ok(false);
        }
        for v in [&mut rel.stable, &mut rel.delta, &mut rel.next] {
            v.retain(|t| t.as_slice() != tuple);
        }
        rel.stable_index.get_mut().clear();
        rel.delta_index.get_mut().clear();
        Ok(true)
    }

    fn clear(&mut self, relation: &str) {
        if let Some(rel) = self.relations.get_mut(relation) {
            *rel = Relation::default();
        }
    }

    fn relation_names(&self) -> Vec<String> {
        self.relations.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: i64) -> Value {
        Value::Number(i)
    }

    #[test]
    fn inserts_are_deduplicated_and_merged_in_steps() {
        let charged = Cell::new(0);
        let mut s = HashedStore::new(100, usize::MAX, Duration::from_secs(10), &charged);
        s.load("p", vec![vec![n(1), n(2)], vec![n(1), n(2)]]);
        s.load("p", vec![vec![n(1), n(2)]]);
        assert!(!s.insert("p", vec![n(1), n(2)]).unwrap());
        assert!(s.insert("p", vec![n(3), n(4)]).unwrap());
        assert!(!s.insert("p", vec![n(3), n(4)]).unwrap());
        assert_eq!(s.scan("p").unwrap().count(), 1);
        assert_eq!(s.scan_next_delta("p").unwrap().count(), 1);
        s.merge_deltas();
        assert_eq!(s.scan_delta("p").unwrap().count(), 1);
        assert_eq!(s.scan("p").unwrap().count(), 2);
        s.merge_deltas();
        assert_eq!(s.scan_delta("p").unwrap().count(), 0);
        assert_eq!(s.scan("p").unwrap().count(), 2);
    }

    #[test]
    fn index_lookups_follow_merges() {
        let charged = Cell::new(0);
        let mut s = HashedStore::new(100, usize::MAX, Duration::from_secs(10), &charged);
        s.load("p", vec![vec![n(1), n(10)]]);
        assert_eq!(s.scan_index("p", 0, &n(1)).unwrap().count(), 1);
        s.insert("p", vec![n(1), n(11)]).unwrap();
        s.merge_deltas();
        assert_eq!(s.scan_delta_index("p", 0, &n(1)).unwrap().count(), 1);
        s.merge_deltas();
        assert_eq!(s.scan_index("p", 0, &n(1)).unwrap().count(), 2);
        assert_eq!(s.scan_index("p", 1, &n(11)).unwrap().count(), 1);
        assert_eq!(s.scan_index("q", 0, &n(1)).unwrap().count(), 0);
        assert!(s.retract("p", &[n(1), n(10)]).unwrap());
        assert_eq!(s.scan_index("p", 0, &n(1)).unwrap().count(), 1);
    }

    #[test]
    fn the_fact_budget_stops_everything_after() {
        let charged = Cell::new(0);
        let mut s = HashedStore::new(2, usize::MAX, Duration::from_secs(10), &charged);
        s.insert("p", vec![n(1)]).unwrap();
        s.insert("p", vec![n(2)]).unwrap();
        let err = s.insert("p", vec![n(3)]).unwrap_err();
        assert_eq!(err.downcast_ref::<Exhausted>(), Some(&Exhausted::Facts(2)));
        assert!(s.scan("p").is_err());
    }

    #[test]
    fn the_byte_budget_stops_large_facts_early() {
        let big = Value::String("x".repeat(1000));
        let charged = Cell::new(0);
        let mut s = HashedStore::new(usize::MAX, 10_000, Duration::from_secs(10), &charged);
        let mut stored = 0;
        let err = loop {
            match s.insert("p", vec![n(stored), big.clone()]) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err.downcast_ref::<Exhausted>(), Some(&Exhausted::Bytes(10_000)));
        assert_eq!(stored, 2, "each fact is charged three copies of its ~1 KiB string");
        assert!(s.scan("p").is_err(), "nothing runs after the budget is spent");
        assert!(charged.get() > 10_000, "the caller sees what was charged: {}", charged.get());
        assert!(fact_bytes(&[n(1)]) >= 150, "a one-number fact is charged what it takes: {}", fact_bytes(&[n(1)]));
    }

    #[test]
    fn the_deadline_stops_scans() {
        let charged = Cell::new(0);
        let s = HashedStore::new(10, usize::MAX, Duration::ZERO, &charged);
        std::thread::sleep(Duration::from_millis(2));
        let err = s.scan("p").err().unwrap();
        assert!(matches!(err.downcast_ref::<Exhausted>(), Some(Exhausted::Time(_))));
    }
}
