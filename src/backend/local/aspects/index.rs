//! The in-memory aspect index: every aspect file's record, with lookups by file name, id,
//! entity and schema, kept current with the directory.
//!
//! **Why in memory, with the files as the only truth.** The store is shared: the
//! Python SDK and other `ivcap-mcp` processes add and rewrite files behind our back, so a
//! persisted index as the source of answers would need its own cross-process protocol and
//! could lose entries when two processes write it. The files stay the only truth; the index is derived from them
//! and checked against the directory before every use ([`Index::refresh`]):
//!
//! - one `stat` of `aspects/`: an unchanged modification time means nothing was added,
//!   renamed or removed (every write here is a temp file + rename, which changes it);
//! - otherwise one `readdir`, comparing each name's inode with the indexed one: new names
//!   and rewritten files (a rename brings a new inode) are read, vanished ones dropped.
//!
//! Directory times have a coarse clock, so a change within [`SETTLE`] of the last look may
//! not move the time; until the directory is older than that, every use rescans.
//!
//! **Start-up.** Reading 100,000 small files costs seconds of system time, so after a build
//! that had to read many files the loader writes a snapshot of the index to
//! `<store>/.ivcap-mcp/aspect-index.jsonl` (atomically; outside `aspects/`, so nothing
//! else sees it). The next start seeds from it: a snapshot entry is used only while its file
//! still has the same name, inode, size and modification time (one `stat`, far cheaper than
//! reading it), so rewrites by rename and edits in place are both noticed; every other file
//! is read. The snapshot is a cache and never the truth: a missing, stale,
//! foreign or damaged snapshot only costs reading the files, and two processes writing it
//! just replace each other's copy.
//!
//! **Queries.** Filtered queries read no files at all: they intersect the entity and schema lists and test
//! validity and `content_path` on the candidates only. Files that don't parse are skipped
//! with a warning (once per file version), never fatal.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::OnceLock;

use super::AspectMatch;
use super::content_path::ContentPath;
use super::file::{AspectFile, content_value, parse};
use crate::backend::aspects::{Aspect, Order};
use crate::backend::filter::Expr;
use crate::backend::like_match;
use crate::error::{Error, Result};

/// How old the directory's modification time must be before an unchanged time is trusted.
const SETTLE: Duration = Duration::from_millis(200);
/// How long an unparsable file may still be in the middle of being written.
const WRITING: Duration = Duration::from_secs(2);

/// One indexed file.
#[derive(Debug)]
pub(crate) struct Entry {
    /// The record without its content.
    pub aspect: Aspect,
    pub file: String,
    ino: u64,
    stamp: Stamp,
    /// The content as raw JSON, parsed on first use.
    raw: Box<RawValue>,
    parsed: OnceLock<Value>,
}

impl Entry {
    /// The content object.
    pub(crate) fn content(&self) -> &Value {
        self.parsed.get_or_init(|| content_value(&self.raw))
    }

    /// The record, with its content if `with_content`.
    pub(crate) fn to_aspect(&self, with_content: bool) -> Aspect {
        Aspect { content: with_content.then(|| self.content().clone()), ..self.aspect.clone() }
    }
}

/// A file's size and modification time (ns since the epoch) when it was read.
pub(crate) type Stamp = (u64, i64);

/// The [`Stamp`] of `meta`.
pub(crate) fn stamp(meta: &std::fs::Metadata) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    (meta.len(), meta.mtime().saturating_mul(1_000_000_000).saturating_add(meta.mtime_nsec()))
}

/// Where a page starts: after this `(valid_from, id)` in the query's order.
pub(crate) type Cursor = (DateTime<Utc>, String);

/// The filters of one query, compiled.
pub(crate) struct Filter<'a> {
    pub entity: Option<&'a str>,
    pub schema: Option<&'a str>,
    pub content_path: Option<&'a ContentPath>,
    /// A `filter` expression over [`crate::backend::listing::ASPECT_FIELDS`].
    pub expr: Option<&'a Expr>,
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
    broken: HashMap<String, (u64, Option<Stamp>)>,
    /// The directory time at the last scan, and whether it was old enough to trust.
    seen: Option<SystemTime>,
    settled: bool,
    /// Records from a snapshot, for the first refresh only: `name → (inode, record)`.
    seeded: HashMap<String, (u64, Stamp, AspectFile)>,
    /// Whether a refresh has completed since start.
    pub(crate) built: bool,
    /// Files the last refresh had to read (not from the snapshot).
    pub(crate) read_from_disk: usize,
}

/// First line of a snapshot; anything else means "not ours, ignore it".
const SNAPSHOT_HEADER: &str = r#"{"ivcap-mcp-aspect-index":1}"#;

/// A snapshot line, as written.
#[derive(Serialize)]
struct SnapshotOut<'a> {
    f: &'a str,
    i: u64,
    z: u64,
    m: i64,
    id: &'a str,
    e: &'a str,
    s: &'a str,
    c: &'a RawValue,
    vf: DateTime<Utc>,
    vt: Option<DateTime<Utc>>,
}

/// A snapshot line, as read.
#[derive(Deserialize)]
struct SnapshotIn {
    f: String,
    i: u64,
    z: u64,
    m: i64,
    id: String,
    e: String,
    s: String,
    c: Box<RawValue>,
    vf: DateTime<Utc>,
    vt: Option<DateTime<Utc>>,
}

impl Index {
    /// Brings the index up to date with `dir` (see the module comment).
    pub(crate) fn refresh(&mut self, dir: &Path) -> Result<()> {
        let mtime = match std::fs::metadata(dir) {
            Ok(m) => m.modified().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                *self = Index { built: true, ..Index::default() };
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
            if known != Some(*ino) && !self.still_broken(dir, name, *ino) {
                to_load.push((name.clone(), *ino));
            }
        }
        let gone: Vec<String> = self.by_file.keys().filter(|n| !present.contains_key(n.as_str())).cloned().collect();
        for name in gone {
            self.remove_file(&name);
        }
        self.broken.retain(|n, _| present.contains_key(n.as_str()));
        let mut from_disk = Vec::with_capacity(to_load.len());
        let mut check = Vec::new();
        for (name, ino) in to_load {
            match self.seeded.remove(&name) {
                Some((seeded_ino, stamp, file)) if seeded_ino == ino => check.push((name, ino, stamp, file)),
                _ => from_disk.push((name, ino)),
            }
        }
        self.seeded = HashMap::new();
        // A snapshot record is used only if its file still has the size and time it had.
        let checked = par_map(check, |(name, ino, seen, file)| {
            let now = std::fs::symlink_metadata(dir.join(&name)).ok().map(|m| stamp(&m));
            (name, ino, seen, file, now == Some(seen))
        });
        for (name, ino, seen, file, unchanged) in checked {
            if unchanged {
                self.insert(name, ino, seen, file);
            } else {
                from_disk.push((name, ino));
            }
        }
        self.read_from_disk = from_disk.len();
        for (name, ino, loaded) in load_all(dir, from_disk) {
            match loaded {
                Ok((stamp, file)) => {
                    self.broken.remove(&name);
                    self.insert(name, ino, stamp, file);
                }
                Err((stamp, why)) => {
                    tracing::warn!(file = %dir.join(&name).display(), error = %why, "skipping an aspect file that does not parse");
                    self.remove_file(&name);
                    self.broken.insert(name, (ino, stamp));
                }
            }
        }
        self.seen = mtime;
        // A file that did not parse may still be being written in place (the Python SDK
        // writes without a rename), which moves no directory time: look again while young.
        let young = |stamp: &Option<Stamp>| {
            let recent = looked.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64)
                - WRITING.as_nanos() as i64;
            stamp.is_none_or(|(_, m)| m > recent)
        };
        self.settled = mtime.is_some_and(|m| m + SETTLE < looked) && !self.broken.values().any(|(_, s)| young(s));
        self.built = true;
        Ok(())
    }

    /// Did `name` (inode `ino`) fail to parse, and has it not changed since?
    fn still_broken(&self, dir: &Path, name: &str, ino: u64) -> bool {
        match self.broken.get(name) {
            Some((broken_ino, Some(seen))) if *broken_ino == ino => {
                std::fs::symlink_metadata(dir.join(name)).ok().map(|m| stamp(&m)) == Some(*seen)
            }
            _ => false,
        }
    }

    /// Seeds the first refresh from the snapshot at `path`, if there is a usable one;
    /// returns how many records it offered.
    pub(crate) fn seed(&mut self, path: &Path) -> usize {
        let Ok(text) = std::fs::read_to_string(path) else { return 0 };
        let mut lines = text.lines();
        if lines.next() != Some(SNAPSHOT_HEADER) {
            tracing::warn!(file = %path.display(), "ignoring an aspect index snapshot of another format");
            return 0;
        }
        let parsed = par_map(lines.collect(), |line: &str| serde_json::from_str::<SnapshotIn>(line).ok());
        self.seeded = parsed
            .into_iter()
            .flatten()
            .map(|l| {
                let file =
                    AspectFile { id: l.id, entity: l.e, schema: l.s, content: l.c, valid_from: l.vf, valid_to: l.vt };
                (l.f, (l.i, (l.z, l.m), file))
            })
            .collect();
        self.seeded.len()
    }

    /// The snapshot text of the index as it is.
    pub(crate) fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * 256);
        out.extend_from_slice(SNAPSHOT_HEADER.as_bytes());
        for e in self.slots.iter().flatten() {
            let a = &e.aspect;
            // One line per record: the raw content of a pretty-printed file has newlines.
            let Ok(c) = RawValue::from_string(compact(e.raw.get())) else { continue };
            let c: &RawValue = &c;
            let line = SnapshotOut {
                f: &e.file,
                i: e.ino,
                z: e.stamp.0,
                m: e.stamp.1,
                id: &a.id,
                e: &a.entity,
                s: &a.schema,
                c,
                vf: a.valid_from,
                vt: a.valid_to,
            };
            out.push(b'\n');
            if serde_json::to_writer(&mut out, &line).is_err() {
                out.pop();
            }
        }
        out.push(b'\n');
        out
    }

    /// Records `name` (inode `ino`, read at `stamp`) with its parsed record.
    pub(crate) fn insert(&mut self, name: String, ino: u64, stamp: Stamp, file: AspectFile) {
        self.remove_file(&name);
        let aspect = Aspect {
            id: file.id,
            entity: file.entity,
            schema: file.schema,
            content: None,
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
            self.broken.insert(name, (ino, Some(stamp)));
            return;
        }
        let slot = self.free.pop().unwrap_or(self.slots.len());
        self.by_file.insert(name.clone(), slot);
        self.by_id.insert(aspect.id.clone(), slot);
        self.by_entity.entry(aspect.entity.clone()).or_default().push(slot);
        self.by_schema.entry(aspect.schema.clone()).or_default().push(slot);
        let entry = Some(Entry { aspect, file: name, ino, stamp, raw: file.content, parsed: OnceLock::new() });
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

    /// Schema URNs starting with `prefix`, sorted, at most `limit`, and whether there are more.
    pub(crate) fn schemas_with_prefix(&self, prefix: &str, limit: usize) -> (Vec<String>, bool) {
        let mut matching = self.by_schema.range(prefix.to_string()..).take_while(|(k, _)| k.starts_with(prefix));
        let names: Vec<String> = matching.by_ref().take(limit).map(|(k, _)| k.clone()).collect();
        (names, matching.next().is_some())
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
                    && f.content_path.is_none_or(|p| p.matches(e.content()))
                    && f.expr.is_none_or(|x| x.matches(&|field| a.field(field)))
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

    /// Slots of the entries valid at `at` that `m` admits, in slot order. Candidates come
    /// from the shorter of the entity and schema lists when either is given, so a lookup by
    /// entity or schema touches only that entity's or schema's entries.
    pub(crate) fn matching(&self, at: DateTime<Utc>, m: &AspectMatch) -> Vec<usize> {
        let by_entity =
            m.entities.as_ref().map(|es| es.iter().filter_map(|e| self.by_entity.get(e)).flatten().copied().collect());
        let by_schema: Option<Vec<usize>> =
            m.schemas.as_ref().map(|ss| ss.iter().filter_map(|s| self.by_schema.get(s)).flatten().copied().collect());
        let mut candidates: Vec<usize> = match (by_entity, by_schema) {
            (Some(e), Some(s)) => {
                if e.len() <= s.len() {
                    e
                } else {
                    s
                }
            }
            (Some(list), None) | (None, Some(list)) => list,
            (None, None) => (0..self.slots.len()).collect(),
        };
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&slot| {
            let Some(e) = self.slots.get(slot).and_then(Option::as_ref) else { return false };
            let a = &e.aspect;
            a.valid_at(at)
                && m.entities.as_ref().is_none_or(|es| es.contains(&a.entity))
                && m.schemas.as_ref().is_none_or(|ss| ss.contains(&a.schema))
                && m.contents.as_ref().is_none_or(|cs| cs.contains(e.content()))
                && m.fields.iter().all(|(field, want)| e.content().get(field) == Some(want))
        });
        candidates
    }

    /// The entry in `slot`, if any.
    pub(crate) fn slot(&self, slot: usize) -> Option<&Entry> {
        self.slots.get(slot)?.as_ref()
    }

    /// Every entry valid at `at` whose schema matches `pattern` (if any), oldest first.
    pub(crate) fn valid_at(&self, at: DateTime<Utc>, pattern: Option<&str>) -> Vec<&Entry> {
        let f = Filter {
            entity: None,
            schema: pattern,
            content_path: None,
            expr: None,
            at,
            order: Order::Asc,
            after: None,
        };
        self.query(&f, usize::MAX - 1).0
    }

    /// Number of indexed aspects.
    pub(crate) fn len(&self) -> usize {
        self.by_file.len()
    }
}

/// Valid JSON text without the whitespace between tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
        } else if !c.is_ascii_whitespace() {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
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
#[allow(clippy::type_complexity)]
fn load_all(
    dir: &Path,
    files: Vec<(String, u64)>,
) -> Vec<(String, u64, std::result::Result<(Stamp, AspectFile), (Option<Stamp>, String)>)> {
    let dir: PathBuf = dir.to_path_buf();
    par_map(files, |(name, ino): (String, u64)| {
        let read = || -> std::io::Result<(Stamp, Vec<u8>)> {
            use std::io::Read;
            let mut f = std::fs::File::open(dir.join(&name))?;
            let stamp = stamp(&f.metadata()?);
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)?;
            Ok((stamp, bytes))
        };
        let parsed = match read() {
            Ok((stamp, bytes)) => parse(&bytes).map(|f| (stamp, f)).map_err(|e| (Some(stamp), e)),
            Err(e) => Err((None, e.to_string())),
        };
        (name, ino, parsed)
    })
}

/// `items.map(f)`, in order, on up to four threads when there are many items.
fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    if items.len() < 1_000 || threads < 2 {
        return items.into_iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            chunks.into_iter().map(|c| s.spawn(move || c.into_iter().map(f).collect::<Vec<U>>())).collect();
        // A worker can only fail by panicking; its items are then missing, and the next
        // refresh reads those files again (they are not in the index).
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::aspects::file::render;
    use crate::time::now as now_micros;
    use serde_json::json;
    use std::collections::BTreeSet;
    use std::io::Write;

    /// Distinct, increasing assertion times a minute ago.
    fn at(i: usize) -> DateTime<Utc> {
        now_micros() - chrono::Duration::seconds(60) + chrono::Duration::milliseconds(i as i64)
    }

    /// An index read from `n` aspects written to a fresh folder (which lives as long as the
    /// returned `TempDir`).
    fn refreshed(n: usize) -> (tempfile::TempDir, Index) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("aspects");
        write(&dir, n);
        let mut index = Index::default();
        index.refresh(&dir).unwrap();
        (tmp, index)
    }

    fn write(dir: &Path, n: usize) -> Vec<String> {
        std::fs::create_dir_all(dir).unwrap();
        (0..n)
            .map(|i| {
                let uuid = uuid::Uuid::new_v4();
                let id = format!("urn:ivcap:aspect:{uuid}");
                let bytes = render(&id, &format!("urn:e:{}", i % 2), "urn:s:1", &json!({"i": i}), at(i)).unwrap();
                crate::files::write_atomic(&dir.join(format!("{uuid}.json")), &bytes).unwrap();
                id
            })
            .collect()
    }

    #[test]
    fn a_snapshot_seeds_only_unchanged_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("aspects");
        let ids = write(&dir, 3);
        let mut first = Index::default();
        first.refresh(&dir).unwrap();
        assert_eq!((first.len(), first.read_from_disk), (3, 3));
        let snap = tmp.path().join("snap.jsonl");
        std::fs::write(&snap, first.snapshot()).unwrap();

        // Rewrite one file (a rename: new inode), edit one in place (same inode) and add one
        // behind the snapshot's back.
        let rewritten = dir.join(format!("{}.json", ids[0].trim_start_matches("urn:ivcap:aspect:")));
        let bytes = super::super::file::with_valid_to(&std::fs::read(&rewritten).unwrap(), now_micros()).unwrap();
        crate::files::write_atomic(&rewritten, &bytes).unwrap();
        let edited = dir.join(format!("{}.json", ids[2].trim_start_matches("urn:ivcap:aspect:")));
        let text = std::fs::read_to_string(&edited).unwrap().replace("\"i\": 2", "\"i\": 22");
        std::fs::write(&edited, text).unwrap();
        write(&dir, 1);

        let mut second = Index::default();
        assert_eq!(second.seed(&snap), 3);
        second.refresh(&dir).unwrap();
        assert_eq!(second.len(), 4);
        assert_eq!(
            second.read_from_disk, 3,
            "rewritten, edited and new files are read; the rest come from the snapshot"
        );
        assert_eq!(second.by_id(&ids[2]).unwrap().content(), &json!({"i": 22}), "an edit in place is seen");
        assert!(second.by_id(&ids[0]).unwrap().aspect.valid_to.is_some(), "the rewrite wins over the snapshot");
        assert_eq!(second.by_id(&ids[1]).unwrap().content(), &json!({"i": 1}));

        std::fs::write(&snap, "garbage\n{}").unwrap();
        let mut third = Index::default();
        assert_eq!(third.seed(&snap), 0, "a foreign snapshot is ignored");
        third.refresh(&dir).unwrap();
        assert_eq!((third.len(), third.read_from_disk), (4, 4));
    }

    #[test]
    fn a_file_caught_half_written_is_read_once_complete() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("aspects");
        let ids = write(&dir, 1);
        let mut index = Index::default();
        index.refresh(&dir).unwrap();
        // Python's open(path, "w") creates the file empty, then writes it: no rename, so the
        // directory time only moves at the creation.
        let path = dir.join("0b5e7a52-6f1d-4c0e-9d55-2b8a3c4d5e6f.json");
        std::fs::write(&path, "").unwrap();
        index.refresh(&dir).unwrap();
        assert_eq!(index.len(), 1, "the empty file is skipped");
        let other =
            std::fs::read_to_string(dir.join(format!("{}.json", ids[0].trim_start_matches("urn:ivcap:aspect:"))))
                .unwrap()
                .replace(ids[0].trim_start_matches("urn:ivcap:aspect:"), "0b5e7a52-6f1d-4c0e-9d55-2b8a3c4d5e6f");
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().write_all(other.as_bytes()).unwrap();
        index.refresh(&dir).unwrap();
        assert_eq!(index.len(), 2, "read again once written");
    }

    #[test]
    fn matching_narrows_by_entity_schema_and_content_fields() {
        let (_tmp, index) = refreshed(6);
        let now = Utc::now();
        let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        let content = |slots: Vec<usize>| -> Vec<i64> {
            let mut i: Vec<i64> =
                slots.iter().map(|&s| index.slot(s).unwrap().content()["i"].as_i64().unwrap()).collect();
            i.sort();
            i
        };
        let by_entity = AspectMatch { entities: set(&["urn:e:1"]), ..AspectMatch::default() };
        assert_eq!(content(index.matching(now, &by_entity)), [1, 3, 5]);
        let both = AspectMatch {
            entities: set(&["urn:e:1", "urn:e:0"]),
            schemas: set(&["urn:s:1"]),
            ..AspectMatch::default()
        };
        assert_eq!(index.matching(now, &both).len(), 6);
        let field = AspectMatch { fields: vec![("i".into(), json!(4))], ..AspectMatch::default() };
        assert_eq!(content(index.matching(now, &field)), [4]);
        let field_and_entity = AspectMatch { entities: set(&["urn:e:1"]), ..field };
        assert!(index.matching(now, &field_and_entity).is_empty());
        let other_schema = AspectMatch { schemas: set(&["urn:s:%"]), ..AspectMatch::default() };
        assert!(index.matching(now, &other_schema).is_empty(), "a schema is matched exactly, not as a pattern");
        assert!(index.matching(now - chrono::Duration::hours(1), &AspectMatch::default()).is_empty());
        let contents = AspectMatch { contents: Some(vec![json!({"i": 2})]), ..AspectMatch::default() };
        assert_eq!(content(index.matching(now, &contents)), [2]);
    }

    #[test]
    fn compacting_keeps_strings() {
        assert_eq!(compact("{\n  \"a b\": [1, \"x \\\" y\"]\n}"), "{\"a b\":[1,\"x \\\" y\"]}");
    }

    #[test]
    fn queries_filter_order_and_page() {
        let (_tmp, index) = refreshed(6);
        let now = Utc::now();
        fn f(now: DateTime<Utc>, after: Option<&Cursor>) -> Filter<'_> {
            Filter {
                entity: Some("urn:e:0"),
                schema: Some("urn:%"),
                content_path: None,
                expr: None,
                at: now,
                order: Order::Asc,
                after,
            }
        }
        let (page1, more) = index.query(&f(now, None), 2);
        assert!(more);
        let cursor = page1.last().map(|e| (e.aspect.valid_from, e.aspect.id.clone())).unwrap();
        let (page2, more) = index.query(&f(now, Some(&cursor)), 2);
        assert!(!more);
        let seen: Vec<i64> = page1.iter().chain(&page2).map(|e| e.content()["i"].as_i64().unwrap()).collect();
        assert_eq!(seen, [0, 2, 4]);
        assert_eq!(index.valid_at(now, Some("urn:s:%")).len(), 6);
        assert!(
            index.valid_at(now - chrono::Duration::hours(1), None).is_empty(),
            "nothing was valid before it was asserted"
        );
    }
}
