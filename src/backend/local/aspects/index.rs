//! The in-memory aspect index: every aspect file's record, with lookups by file name, id,
//! entity and schema, kept current with the directory.
//!
//! **Why in memory, rebuilt at start-up, rather than persisted.** The store is shared: the
//! Python SDK and other `ivcap-mcp` processes add and rewrite files behind our back, so a
//! persisted index would need its own cross-process protocol and could lose entries when
//! two processes write it. The files stay the only truth; the index is derived from them
//! and checked against the directory before every use ([`Index::refresh`]):
//!
//! - one `stat` of `aspects/`: an unchanged modification time means nothing was added,
//!   renamed or removed (every write here is a temp file + rename, which changes it);
//! - otherwise one `readdir`, comparing each name's inode with the indexed one: new names
//!   and rewritten files (a rename brings a new inode) are read, vanished ones dropped.
//!
//! Directory times have a coarse clock, so a change within [`SETTLE`] of the last look may
//! not move the time; until the directory is older than that, every use rescans. Filtered
//! queries then read no files at all: they intersect the entity and schema lists and test
//! validity and `content_path` on the candidates only. Files that don't parse are skipped
//! with a warning (once per file version), never fatal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};

use super::content_path::ContentPath;
use super::file::{AspectFile, parse};
use crate::backend::aspects::{Aspect, Order};
use crate::backend::like_match;
use crate::error::{Error, Result};

/// How old the directory's modification time must be before an unchanged time is trusted.
const SETTLE: Duration = Duration::from_millis(200);

/// One indexed file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub aspect: Aspect,
    pub file: String,
    ino: u64,
}

/// Where a page starts: after this `(valid_from, id)` in the query's order.
pub(crate) type Cursor = (DateTime<Utc>, String);

/// The filters of one query, compiled.
pub(crate) struct Filter<'a> {
    pub entity: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub content_path: Option<&'a ContentPath>,
    pub at: DateTime<Utc>,
    pub order: Order,
    pub after: Option<&'a Cursor>,
}

#[derive(Debug, Default)]
pub(crate) struct Index {
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    by_file: HashMap<String, usize>,
    by_id: HashMap<String, usize>,
    by_entity: HashMap<String, Vec<usize>>,
    by_schema: BTreeMap<String, Vec<usize>>,
    /// Files that did not parse, by name, with the inode we tried.
    broken: HashMap<String, u64>,
    /// The directory time at the last scan, and whether it was old enough to trust.
    seen: Option<SystemTime>,
    settled: bool,
}

impl Index {
    /// Brings the index up to date with `dir` (see the module comment).
    pub(crate) fn refresh(&mut self, dir: &Path) -> Result<()> {
        let mtime = match std::fs::metadata(dir) {
            Ok(m) => m.modified().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                *self = Index::default();
                return Ok(());
            }
            Err(e) => return Err(Error::io(format!("cannot read {}", dir.display()), e)),
        };
        let looked = SystemTime::now();
        if self.settled && mtime.is_some() && mtime == self.seen {
            return Ok(());
        }
        let listing = list_dir(dir)?;
        let mut present: HashMap<&str, u64> = HashMap::with_capacity(listing.len());
        let mut to_load = Vec::new();
        for (name, ino) in &listing {
            present.insert(name.as_str(), *ino);
            let known = self.by_file.get(name).and_then(|&s| self.slots.get(s)?.as_ref()).map(|e| e.ino);
            if known != Some(*ino) && self.broken.get(name) != Some(ino) {
                to_load.push((name.clone(), *ino));
            }
        }
        let gone: Vec<String> = self.by_file.keys().filter(|n| !present.contains_key(n.as_str())).cloned().collect();
        for name in gone {
            self.remove_file(&name);
        }
        self.broken.retain(|n, _| present.contains_key(n.as_str()));
        for (name, ino, loaded) in load_all(dir, to_load) {
            match loaded {
                Ok(file) => {
                    self.broken.remove(&name);
                    self.insert(name, ino, file);
                }
                Err(why) => {
                    tracing::warn!(file = %dir.join(&name).display(), error = %why, "skipping an aspect file that does not parse");
                    self.remove_file(&name);
                    self.broken.insert(name, ino);
                }
            }
        }
        self.seen = mtime;
        self.settled = mtime.is_some_and(|m| m + SETTLE < looked);
        Ok(())
    }

    /// Records that we wrote `name` (inode `ino`) ourselves.
    pub(crate) fn insert(&mut self, name: String, ino: u64, file: AspectFile) {
        self.remove_file(&name);
        let aspect = Aspect {
            id: file.id,
            entity: file.entity,
            schema: file.schema,
            content: Some(file.content),
            valid_from: file.valid_from,
            valid_to: file.valid_to,
            asserter: None,
            replaces: None,
            policy: None,
        };
        if let Some(&other) = self.by_id.get(&aspect.id)
            && let Some(dup) = self.slots.get(other).and_then(Option::as_ref)
        {
            tracing::warn!(id = %aspect.id, first = %dup.file, second = %name, "two aspect files share one id; keeping the first");
            self.broken.insert(name, ino);
            return;
        }
        let slot = self.free.pop().unwrap_or(self.slots.len());
        self.by_file.insert(name.clone(), slot);
        self.by_id.insert(aspect.id.clone(), slot);
        self.by_entity.entry(aspect.entity.clone()).or_default().push(slot);
        self.by_schema.entry(aspect.schema.clone()).or_default().push(slot);
        let entry = Some(Entry { aspect, file: name, ino });
        if slot == self.slots.len() {
            self.slots.push(entry);
        } else if let Some(s) = self.slots.get_mut(slot) {
            *s = entry;
        }
    }

    fn remove_file(&mut self, name: &str) {
        let Some(slot) = self.by_file.remove(name) else { return };
        let Some(entry) = self.slots.get_mut(slot).and_then(Option::take) else { return };
        self.free.push(slot);
        self.by_id.remove(&entry.aspect.id);
        for (map_entity, key) in [(true, &entry.aspect.entity), (false, &entry.aspect.schema)] {
            let list = if map_entity { self.by_entity.get_mut(key) } else { self.by_schema.get_mut(key) };
            if let Some(list) = list {
                list.retain(|&s| s != slot);
                if list.is_empty() {
                    if map_entity {
                        self.by_entity.remove(key);
                    } else {
                        self.by_schema.remove(key);
                    }
                }
            }
        }
    }

    /// The entry with this aspect URN.
    pub(crate) fn by_id(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).and_then(|&s| self.slots.get(s)?.as_ref())
    }

    /// Slots whose schema matches the `%` pattern, from the schema lists.
    fn schema_slots(&self, pattern: &str) -> Vec<usize> {
        let prefix = pattern.split('%').next().unwrap_or("");
        self.by_schema
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| like_match(pattern, k, false))
            .flat_map(|(_, slots)| slots.iter().copied())
            .collect()
    }

    /// The entries matching `f`, in `f.order`, at most `limit` of them, and whether more match.
    pub(crate) fn query(&self, f: &Filter<'_>, limit: usize) -> (Vec<&Entry>, bool) {
        let candidates: Box<dyn Iterator<Item = usize> + '_> = match (f.entity, f.schema) {
            (Some(e), _) => Box::new(self.by_entity.get(e).into_iter().flatten().copied()),
            (None, Some(p)) => Box::new(self.schema_slots(p).into_iter()),
            (None, None) => Box::new(0..self.slots.len()),
        };
        let mut hits: Vec<&Entry> = candidates
            .filter_map(|s| self.slots.get(s)?.as_ref())
            .filter(|e| {
                let a = &e.aspect;
                a.valid_at(f.at)
                    && f.entity.is_none_or(|x| a.entity == x)
                    && f.schema.is_none_or(|p| like_match(p, &a.schema, false))
                    && f.after.is_none_or(|c| after(a, c, f.order))
                    && f.content_path.is_none_or(|p| a.content.as_ref().is_some_and(|c| p.matches(c)))
            })
            .collect();
        let cmp = |a: &&Entry, b: &&Entry| {
            let o = a.aspect.valid_from.cmp(&b.aspect.valid_from).then_with(|| a.aspect.id.cmp(&b.aspect.id));
            if f.order == Order::Desc { o.reverse() } else { o }
        };
        let more = hits.len() > limit;
        if more {
            hits.select_nth_unstable_by(limit, cmp);
            hits.truncate(limit);
        }
        hits.sort_unstable_by(cmp);
        (hits, more)
    }

    /// Every entry valid at `at` whose schema matches `pattern` (if any), oldest first.
    pub(crate) fn valid_at(&self, at: DateTime<Utc>, pattern: Option<&str>) -> Vec<&Entry> {
        let f = Filter { entity: None, schema: pattern, content_path: None, at, order: Order::Asc, after: None };
        self.query(&f, usize::MAX - 1).0
    }

    /// Number of indexed aspects.
    pub(crate) fn len(&self) -> usize {
        self.by_file.len()
    }
}

/// Is `a` strictly after the cursor in `order`?
fn after(a: &Aspect, (from, id): &Cursor, order: Order) -> bool {
    let o = a.valid_from.cmp(from).then_with(|| a.id.as_str().cmp(id.as_str()));
    match order {
        Order::Asc => o.is_gt(),
        Order::Desc => o.is_lt(),
    }
}

/// `(file name, inode)` of every `*.json` file in `dir`, without a `stat` per file.
fn list_dir(dir: &Path) -> Result<Vec<(String, u64)>> {
    use std::os::unix::fs::DirEntryExt;
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            (name.ends_with(".json") && !name.starts_with('.')).then(|| (name, e.ino()))
        })
        .collect())
}

/// Reads and parses `files`, on a few threads when there are many.
fn load_all(dir: &Path, files: Vec<(String, u64)>) -> Vec<(String, u64, std::result::Result<AspectFile, String>)> {
    let load = |dir: &PathBuf, (name, ino): (String, u64)| {
        let parsed = std::fs::read(dir.join(&name)).map_err(|e| e.to_string()).and_then(|b| parse(&b));
        (name, ino, parsed)
    };
    let dir = dir.to_path_buf();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if files.len() < 1_000 || threads < 2 {
        return files.into_iter().map(|f| load(&dir, f)).collect();
    }
    let chunk = files.len().div_ceil(threads);
    let mut chunks: Vec<Vec<(String, u64)>> = Vec::new();
    let mut rest = files;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                let dir = &dir;
                s.spawn(move || c.into_iter().map(|f| load(dir, f)).collect::<Vec<_>>())
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}
