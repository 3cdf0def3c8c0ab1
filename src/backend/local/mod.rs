//! The local store: a filesystem-backed IVCAP under one directory, compatible with the
//! Python SDK's `LocalIVCAP` (design.md §4).
//!
//! Every path the store touches goes through [`LocalBackend::store_path`], which keeps it
//! inside the store (no `..`, no absolute paths, no symlinks out). Every write goes through
//! [`LocalBackend::write_atomic`] (temp file + rename), so a reader never sees half a file.
//! The store directory is created on the first write, not at startup.

mod artifacts;
pub mod aspects;
mod jobs;
pub mod search;
mod secrets;
pub mod services;

use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A filesystem store.
pub struct LocalBackend {
    root: PathBuf,
    /// The aspect index (see `aspects`), shared with its background loader.
    aspects: Arc<aspects::AspectStore>,
    /// The jobs this process runs.
    jobs: jobs::LocalJobs,
    /// The last `tool_services` answer and the state of `services/` it was read from.
    tool_services_cache: std::sync::Mutex<Option<(services::ServicesStamp, Vec<crate::backend::ToolService>)>>,
}

impl LocalBackend {
    /// A store at `dir` (made absolute; created on first write).
    pub fn new(dir: &Path) -> Result<Self> {
        let root = std::path::absolute(dir).map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;
        let aspects = Arc::new(aspects::AspectStore::new(&root));
        Ok(LocalBackend { root, aspects, jobs: jobs::LocalJobs::default(), tool_services_cache: Default::default() })
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` inside the store, refusing anything that would leave it: absolute paths, `..`,
    /// and symlinks that point outside. `what` names the argument for the error.
    pub fn store_path(&self, rel: &Path, what: &str) -> Result<PathBuf> {
        let outside = || {
            Error::invalid(
                what,
                format!(
                    "'{}' would leave the store {}; use a relative path without '..'",
                    rel.display(),
                    self.root.display()
                ),
            )
        };
        if rel.as_os_str().is_empty()
            || rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(outside());
        }
        let path = self.root.join(rel);
        // Symlinks: the deepest part that exists must resolve inside the store.
        if let Ok(root) = self.root.canonicalize() {
            let mut existing = path.as_path();
            while !existing.exists() {
                match existing.parent() {
                    Some(parent) => existing = parent,
                    None => break,
                }
            }
            let resolved =
                existing.canonicalize().map_err(|e| Error::io(format!("cannot resolve {}", existing.display()), e))?;
            if !resolved.starts_with(&root) {
                return Err(outside());
            }
        }
        Ok(path)
    }

    /// Writes `bytes` to `path` atomically: a temp file in the same directory, flushed,
    /// then renamed over the target. Parent directories are created.
    pub fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        write_file_atomic(path, bytes)
    }

    /// The JSON files directly in `<store>/<folder>`, sorted by name; an absent folder is empty.
    pub(crate) fn json_files(&self, folder: &str) -> Result<Vec<PathBuf>> {
        let dir = self.root.join(folder);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("cannot read {}", dir.display()), e)),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        files.sort();
        Ok(files)
    }
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_from`]).
pub(crate) fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_from(path, bytes).map(|_| ())
}

/// Copies everything `reader` gives to `path` atomically: a temp file in the same
/// directory, flushed to disk, then renamed over the target; parent directories are
/// created. A failure leaves no temp file. Returns the bytes written.
pub(crate) fn write_atomic_from(path: &Path, mut reader: impl std::io::Read) -> Result<u64> {
    let dir = path.parent().ok_or_else(|| Error::io("no parent directory", std::io::ErrorKind::InvalidInput.into()))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        let n = std::io::copy(&mut reader, &mut file)?;
        file.flush()?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(n)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(format!("cannot write {}", path.display()), e)
    })
}

/// Offset-based paging over an in-memory list, with the offset as the backend token.
pub(crate) fn page_of<T>(mut all: Vec<T>, page: &crate::backend::PageRequest) -> Result<crate::backend::Page<T>> {
    let offset = match page.inner_token()? {
        None => 0,
        Some(token) => token.parse::<usize>().map_err(|_| {
            Error::invalid(
                "page",
                "not a page token from this server; pass next_page from the previous answer unchanged",
            )
        })?,
    };
    let end = offset.saturating_add(page.limit as usize).min(all.len());
    let next = (end < all.len()).then(|| end.to_string());
    let items = if offset < all.len() { all.drain(offset..end).collect() } else { Vec::new() };
    Ok(crate::backend::Page::new(items, next.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::PageRequest;

    #[test]
    fn store_paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBackend::new(dir.path()).unwrap();
        assert!(store.store_path(Path::new("artifacts/a/b.txt"), "name").is_ok());
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(store.store_path(Path::new(bad), "name").is_err(), "{bad}");
        }
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let err = store.store_path(Path::new("link/x"), "name").unwrap_err().to_string();
        assert!(err.contains("would leave the store"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBackend::new(&dir.path().join("store")).unwrap();
        let path = store.store_path(Path::new("a/b.json"), "x").unwrap();
        store.write_atomic(&path, b"one").unwrap();
        store.write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn offset_paging_visits_each_item_once() {
        let all: Vec<u32> = (0..25).collect();
        let mut seen = Vec::new();
        let mut req = PageRequest::first(10);
        loop {
            let page = page_of(all.clone(), &req).unwrap();
            seen.extend(page.items);
            match page.next_page {
                Some(t) => req.page = Some(t),
                None => break,
            }
        }
        assert_eq!(seen, all);
    }
}
