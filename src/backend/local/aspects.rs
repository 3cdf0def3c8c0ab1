//! Aspects in local mode: one file per assertion in `<store>/aspects/<uuid>.json`, exactly
//! as the Python SDK's `LocalIVCAP` writes them ([`file`]), so either side reads the
//! other's records. Beyond `LocalIVCAP`: retraction and update set `valid_to` in the file
//! (atomic rewrite, history kept), time-travel queries, `%` schema patterns, PostgreSQL
//! JSONPath content filters ([`content_path`]), ordering and keyset paging.
//!
//! Reads are served from an in-memory [`index`] that is checked against the directory
//! before each use, so writes by the Python SDK or another server process are seen at once.
//! The index is built on a background thread at start-up ([`LocalBackend::preload_aspects`])
//! so the MCP handshake never waits for it; a query that arrives first waits for the build.
//! Read-modify-write operations (update, retract) hold an exclusive `flock` on the
//! `aspects/` directory, so two processes cannot both replace one live aspect; additions
//! need no lock (each is a new uniquely named file), so no process loses another's records.

mod content_path;
mod file;
mod index;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::LocalBackend;
use crate::backend::aspects::{
    ASPECT_PREFIX, Aspect, AspectQuery, AspectsBackend, NewAspect, Order, Updated, already_retracted, aspect_urn,
    not_unique,
};
use crate::backend::{Page, PageRequest};
use crate::error::{Error, Missing, Result};
use crate::files::{self, blocking};
use content_path::ContentPath;
use index::{Cursor, Filter, Index};

/// The aspect index of one store, shared with the background loader.
#[derive(Debug)]
pub(crate) struct AspectStore {
    root: PathBuf,
    dir: PathBuf,
    /// The start-up snapshot of the index (see `index`).
    snapshot: PathBuf,
    index: Mutex<Index>,
}

/// A build that read at least this many files writes a fresh snapshot.
const SNAPSHOT_AFTER: usize = 1_000;

impl AspectStore {
    /// The index of `<root>/aspects` (empty until first used).
    pub(crate) fn new(root: &Path) -> Self {
        AspectStore {
            root: root.to_path_buf(),
            dir: root.join("aspects"),
            snapshot: root.join(".ivcap-mcp").join("aspect-index.jsonl"),
            index: Mutex::new(Index::default()),
        }
    }

    /// The index, brought up to date (the first time from the snapshot and the files).
    fn current(&self) -> Result<MutexGuard<'_, Index>> {
        let mut index = self.index.lock().unwrap_or_else(|p| p.into_inner());
        if !index.built {
            index.seed(&self.snapshot);
        }
        index.refresh(&self.dir)?;
        Ok(index)
    }

    /// `rel` inside the store (see [`LocalBackend::store_path`]).
    fn path(&self, rel: &Path, what: &str) -> Result<PathBuf> {
        files::under_root(&self.root, rel, what)
    }

    /// `<store>/aspects`, checked.
    fn aspects_dir(&self) -> Result<PathBuf> {
        self.path(Path::new("aspects"), "aspect")
    }

    /// Holds an exclusive lock on `<store>/aspects` (created if needed) until dropped.
    fn lock_aspects(&self) -> Result<std::fs::File> {
        let dir = self.aspects_dir()?;
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        let handle = std::fs::File::open(&dir).map_err(|e| Error::io(format!("cannot open {}", dir.display()), e))?;
        handle.lock().map_err(|e| Error::io(format!("cannot lock {}", dir.display()), e))?;
        Ok(handle)
    }

    /// The file of aspect `id`: `<uuid>.json` when it holds that id, else whatever file the
    /// index has for it (hand-made files may be named differently).
    fn aspect_file(&self, id: &str) -> Result<Option<(String, PathBuf)>> {
        if let Some(uuid) = id.strip_prefix(ASPECT_PREFIX).filter(|u| uuid::Uuid::try_parse(u).is_ok()) {
            let name = format!("{uuid}.json");
            let path = self.path(&Path::new("aspects").join(&name), "aspect")?;
            if let Ok(bytes) = std::fs::read(&path)
                && file::parse(&bytes).is_ok_and(|f| f.id == id)
            {
                return Ok(Some((name, path)));
            }
        }
        let name = self.current()?.by_id(id).map(|e| e.file.clone());
        name.map(|n| Ok((n.clone(), self.path(&Path::new("aspects").join(n), "aspect")?))).transpose()
    }

    /// Writes a file and records it in the index.
    fn write_indexed(&self, name: String, path: &Path, bytes: &[u8]) -> Result<Aspect> {
        use std::os::unix::fs::MetadataExt;
        files::write_atomic(path, bytes)?;
        let parsed = file::parse(bytes).map_err(|e| Error::io(e, std::io::ErrorKind::InvalidData.into()))?;
        let meta = std::fs::metadata(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let aspect = to_aspect(&parsed);
        self.index.lock().unwrap_or_else(|p| p.into_inner()).insert(name, meta.ino(), index::stamp(&meta), parsed);
        Ok(aspect)
    }

    /// Retracts `id` at `t`; the caller holds the directory lock.
    fn retract_locked(&self, id: &str, t: DateTime<Utc>) -> Result<Aspect> {
        let Some((name, path)) = self.aspect_file(id)? else {
            return Err(Error::NotFound { kind: Missing::Aspect, id: id.to_string() });
        };
        let bytes = std::fs::read(&path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let current = file::parse(&bytes).map_err(|e| {
            Error::invalid(
                "aspect",
                format!("{id}: its file {} does not parse ({e}); fix or remove it", path.display()),
            )
        })?;
        if let Some(to) = current.valid_to {
            return Err(already_retracted(id, to));
        }
        // valid_to must not precede valid_from, whatever the clocks did.
        let t = t.max(current.valid_from + chrono::Duration::microseconds(1));
        let rewritten =
            file::with_valid_to(&bytes, t).map_err(|e| Error::io(e, std::io::ErrorKind::InvalidData.into()))?;
        self.write_indexed(name, &path, &rewritten)
    }

    /// Asserts `new` at `t`.
    fn add_at(&self, new: &NewAspect, t: DateTime<Utc>) -> Result<String> {
        let uuid = uuid::Uuid::new_v4();
        let id = format!("{ASPECT_PREFIX}{uuid}");
        let name = format!("{uuid}.json");
        let path = self.path(&Path::new("aspects").join(&name), "entity")?;
        let bytes = file::render(&id, &new.entity, &new.schema, &new.content, t)
            .map_err(|e| Error::Internal(format!("cannot encode the aspect: {e}")))?;
        self.write_indexed(name, &path, &bytes)?;
        Ok(id)
    }

    /// Replaces the live (entity, schema) aspect with `new`, under the directory lock.
    fn update(&self, new: &NewAspect) -> Result<Updated> {
        let _lock = self.lock_aspects()?;
        let t = crate::time::now();
        let live: Vec<Aspect> = {
            let index = self.current()?;
            let f = Filter {
                entity: Some(&new.entity),
                schema: Some(&new.schema),
                content_path: None,
                expr: None,
                at: t,
                order: Order::Desc,
                after: None,
            };
            index.query(&f, 50).0.into_iter().map(|e| e.to_aspect(false)).filter(|a| a.schema == new.schema).collect()
        };
        if live.len() > 1 {
            return Err(not_unique(new, &live, "found in the local store"));
        }
        let replaced = match live.first() {
            Some(old) => Some(self.retract_locked(&old.id, t)?.id),
            None => None,
        };
        let id = self.add_at(new, t)?;
        Ok(Updated { id, replaced })
    }

    /// The ids of the live `(entity, schema)` aspects whose content matches `path`, at most `limit`.
    fn live_matching(&self, entity: &str, schema: &str, path: &ContentPath, limit: usize) -> Result<Vec<String>> {
        let index = self.current()?;
        let f = Filter {
            entity: Some(entity),
            schema: Some(schema),
            content_path: Some(path),
            expr: None,
            at: crate::time::now(),
            order: Order::Asc,
            after: None,
        };
        // `schema` is exact here, but the index matches it as a `%` pattern.
        Ok(index
            .query(&f, limit)
            .0
            .into_iter()
            .filter(|e| e.aspect.schema == schema)
            .map(|e| e.aspect.id.clone())
            .collect())
    }

    /// Adds `new` unless a live aspect of its `(entity, schema)` matches `path`, checked and
    /// written under the directory lock so two writers cannot both add it; true when added.
    pub(super) fn add_unless_matching(&self, new: &NewAspect, path: &str) -> Result<bool> {
        let path = ContentPath::compile(path)?;
        let _lock = self.lock_aspects()?;
        if !self.live_matching(&new.entity, &new.schema, &path, 1)?.is_empty() {
            return Ok(false);
        }
        self.add_at(new, crate::time::now())?;
        Ok(true)
    }

    /// Retracts every live `(entity, schema)` aspect whose content matches `path`, under the
    /// directory lock; how many there were.
    pub(super) fn retract_matching(&self, entity: &str, schema: &str, path: &str) -> Result<usize> {
        let path = ContentPath::compile(path)?;
        if !self.dir.is_dir() {
            return Ok(0);
        }
        let _lock = self.lock_aspects()?;
        let live = self.live_matching(entity, schema, &path, usize::MAX - 1)?;
        let t = crate::time::now();
        for id in &live {
            self.retract_locked(id, t)?;
        }
        Ok(live.len())
    }

    /// Aspect `id` (a full URN): from its `<uuid>.json` when that holds it, else the index.
    fn get(&self, id: String) -> Result<Aspect> {
        if let Some(uuid) = id.strip_prefix(ASPECT_PREFIX).filter(|u| uuid::Uuid::try_parse(u).is_ok()) {
            let path = self.path(&Path::new("aspects").join(format!("{uuid}.json")), "aspect")?;
            if let Ok(bytes) = std::fs::read(&path)
                && let Ok(f) = file::parse(&bytes)
                && f.id == id
            {
                return Ok(to_aspect(&f));
            }
        }
        let found = self.current()?.by_id(&id).map(|e| e.to_aspect(true));
        found.ok_or(Error::not_found(Missing::Aspect, id))
    }

    /// Retracts `id` now, under the directory lock.
    fn retract(&self, id: &str) -> Result<Aspect> {
        if !self.dir.is_dir() {
            return Err(Error::not_found(Missing::Aspect, id));
        }
        let _lock = self.lock_aspects()?;
        self.retract_locked(id, crate::time::now())
    }

    /// Builds the index, and snapshots it when that meant reading many files.
    fn build(&self) -> Result<usize> {
        let index = self.current()?;
        let count = index.len();
        if index.read_from_disk >= SNAPSHOT_AFTER {
            // Marked before the index is let go: a query waiting for it may be answered and
            // the client gone at once, and the process must still finish the snapshot.
            let _writing = files::Writing::start();
            let bytes = index.snapshot();
            drop(index);
            if let Err(e) = files::write_atomic(&self.snapshot, &bytes) {
                tracing::warn!(error = %e, "cannot save the aspect index snapshot; the next start reads every file");
            }
        }
        Ok(count)
    }
}

/// Which aspects one read of a search can use: each given set limits its column (exact
/// values, no patterns), and each `fields` entry must be a top-level field of the content
/// with that value. The default admits every aspect.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AspectMatch {
    pub entities: Option<BTreeSet<String>>,
    pub schemas: Option<BTreeSet<String>>,
    pub contents: Option<Vec<Value>>,
    pub fields: Vec<(String, Value)>,
}

/// What a local page token carries: the query, the instant it is answered at, and where
/// the next page starts, so later pages are one consistent snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct LocalToken {
    entity: Option<String>,
    schema: Option<String>,
    content_path: Option<String>,
    at: DateTime<Utc>,
    include_content: bool,
    #[serde(default)]
    filter: Option<String>,
    order: Order,
    after_from: DateTime<Utc>,
    after_id: String,
}

impl LocalBackend {
    /// Starts building the aspect index on a background thread, so the first query finds
    /// it ready (or waits for it) while the MCP handshake goes ahead.
    pub fn preload_aspects(&self) {
        let store = self.aspects.clone();
        let spawned = std::thread::Builder::new().name("aspect-index".into()).spawn(move || {
            let started = std::time::Instant::now();
            match store.build() {
                Ok(count) => tracing::info!(aspects = count, elapsed = ?started.elapsed(), "aspect index built"),
                Err(e) => tracing::warn!(error = %e, "cannot build the aspect index yet; queries will retry"),
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the aspect index thread; the first query builds it");
        }
    }

    /// The aspects valid at `at` that `m` admits, as `(id, [entity, schema, content])`,
    /// narrowed through the index (by entity or schema lists, then content fields on the
    /// warm parsed content) before any row is made.
    pub async fn aspect_rows(&self, at: DateTime<Utc>, m: AspectMatch) -> Result<Vec<(String, Vec<Value>)>> {
        let store = self.aspects.clone();
        blocking(move || {
            let index = store.current()?;
            let rows = index.matching(at, &m).into_iter().filter_map(|slot| index.slot(slot));
            Ok(rows
                .map(|e| {
                    let a = &e.aspect;
                    let row =
                        vec![Value::String(a.entity.clone()), Value::String(a.schema.clone()), e.content().clone()];
                    (a.id.clone(), row)
                })
                .collect())
        })
        .await
    }

    /// Every aspect valid at `at`, content included, optionally only those whose schema
    /// matches the `%` pattern `schema_pattern`; oldest first. Served from the index.
    pub async fn aspects_valid_at(&self, at: DateTime<Utc>, schema_pattern: Option<&str>) -> Result<Vec<Aspect>> {
        let store = self.aspects.clone();
        let pattern = schema_pattern.map(str::to_string);
        blocking(move || {
            let index = store.current()?;
            Ok(index.valid_at(at, pattern.as_deref()).into_iter().map(|e| e.to_aspect(true)).collect())
        })
        .await
    }
}

fn to_aspect(f: &file::AspectFile) -> Aspect {
    Aspect {
        id: f.id.clone(),
        entity: f.entity.clone(),
        schema: f.schema.clone(),
        content: Some(f.content_value()),
        valid_from: f.valid_from,
        valid_to: f.valid_to,
        asserter: None,
        replaces: None,
        policy: None,
    }
}

#[async_trait::async_trait]
impl AspectsBackend for LocalBackend {
    async fn add_aspect(&self, new: &NewAspect) -> Result<String> {
        let (store, new) = (self.aspects.clone(), new.clone());
        blocking(move || store.add_at(&new, crate::time::now())).await
    }

    async fn update_aspect(&self, new: &NewAspect) -> Result<Updated> {
        let (store, new) = (self.aspects.clone(), new.clone());
        // The lock may be held by another process for a while: wait for it off the async workers.
        blocking(move || store.update(&new)).await
    }

    async fn schema_urns(&self, prefix: &str, limit: usize) -> Result<(Vec<String>, bool)> {
        let store = self.aspects.clone();
        let prefix = prefix.to_string();
        blocking(move || Ok(store.current()?.schemas_with_prefix(&prefix, limit))).await
    }

    async fn get_aspect(&self, id: &str) -> Result<Aspect> {
        let id = aspect_urn(id)?;
        let store = self.aspects.clone();
        blocking(move || store.get(id)).await
    }

    async fn list_aspects(&self, query: &AspectQuery, page: &PageRequest) -> Result<Page<Aspect>> {
        let (query, at, cursor) = match page.inner_token()? {
            None => (query.clone(), query.at_time.unwrap_or_else(Utc::now), None),
            Some(token) => {
                let t: LocalToken = serde_json::from_str(&token).map_err(|_| {
                    Error::invalid(
                        "page",
                        "not a page token from this server; pass next_page from the previous answer unchanged",
                    )
                })?;
                let q = AspectQuery {
                    entity: t.entity,
                    schema: t.schema,
                    content_path: t.content_path,
                    at_time: Some(t.at),
                    include_content: t.include_content,
                    filter: t.filter,
                    order_by: None,
                    order: t.order,
                };
                (q, t.at, Some((t.after_from, t.after_id)))
            }
        };
        if let Some(o) = query.order_by.as_deref().filter(|o| o.trim() != "valid_from") {
            return Err(Error::invalid(
                "order_by",
                format!("'{o}': the local store orders aspects by valid_from only; omit order_by or pass valid_from"),
            ));
        }
        let path = query.content_path.as_deref().map(ContentPath::compile).transpose()?;
        let expr = query
            .filter
            .as_deref()
            .map(crate::backend::filter::Expr::parse)
            .transpose()
            .map_err(|e| Error::invalid("filter", e))?;
        let store = self.aspects.clone();
        let limit = page.limit as usize;
        let (items, last): (Vec<Aspect>, Option<Cursor>) = {
            let query = query.clone();
            blocking(move || {
                let index = store.current()?;
                let f = Filter {
                    entity: query.entity.as_deref(),
                    schema: query.schema.as_deref(),
                    content_path: path.as_ref(),
                    expr: expr.as_ref(),
                    at,
                    order: query.order,
                    after: cursor.as_ref(),
                };
                let (hits, more) = index.query(&f, limit);
                let last = if more { hits.last().map(|e| (e.aspect.valid_from, e.aspect.id.clone())) } else { None };
                let items = hits.into_iter().map(|e| e.to_aspect(query.include_content)).collect();
                Ok((items, last))
            })
            .await?
        };
        let next = match last {
            None => None,
            Some((after_from, after_id)) => Some(
                serde_json::to_string(&LocalToken {
                    entity: query.entity,
                    schema: query.schema,
                    content_path: query.content_path,
                    at,
                    include_content: query.include_content,
                    filter: query.filter,
                    order: query.order,
                    after_from,
                    after_id,
                })
                .map_err(|e| Error::Internal(format!("cannot encode a page token: {e}")))?,
            ),
        };
        Ok(Page::new(items, next.as_deref()))
    }

    async fn retract_aspect(&self, id: &str) -> Result<Aspect> {
        let id = aspect_urn(id)?;
        let store = self.aspects.clone();
        blocking(move || store.retract(&id)).await
    }
}
