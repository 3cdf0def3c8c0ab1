//! The local store: a filesystem-backed IVCAP under one directory, compatible with the
//! Python SDK's `LocalIVCAP` (docs/architecture.md, "Local store").
//!
//! Every path the store touches goes through [`LocalBackend::store_path`], which keeps it
//! inside the store (no `..`, no absolute paths, no symlinks out). Every write is atomic
//! ([`crate::files::write_atomic`]) and every file operation runs on the blocking pool
//! ([`crate::files::blocking`]). The store directory is created on the first write, not at
//! startup.

mod artifacts;
pub mod aspects;
mod collections;
mod jobs;
pub mod search;
mod secrets;
pub mod services;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::files;

/// A filesystem store.
pub struct LocalBackend {
    root: PathBuf,
    /// The aspect index (see `aspects`), shared with its background loader.
    aspects: Arc<aspects::AspectStore>,
    /// The jobs this process runs.
    jobs: jobs::LocalJobs,
    /// The last `tool_services` answer and the state of `services/` it was read from.
    tool_services_cache: std::sync::Mutex<Option<(services::ServicesStamp, Vec<crate::backend::ToolService>)>>,
    /// `--local-service NAME=URL` services, in the order given.
    flag_services: Vec<(String, url::Url)>,
    /// What running `url` services said about themselves (`GET /`).
    discovery: services::DiscoveryCache,
    /// The service definition files last read, and when (see `services`).
    service_files: std::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Vec<services::LocalService>>)>>,
    /// How `search` runs (limits, index narrowing).
    search: search::SearchOptions,
}

impl LocalBackend {
    /// A store at `dir` (made absolute; created on first write).
    pub fn new(dir: &Path) -> Result<Self> {
        let root = std::path::absolute(dir).map_err(|e| Error::io(format!("cannot resolve {}", dir.display()), e))?;
        let aspects = Arc::new(aspects::AspectStore::new(&root));
        Ok(LocalBackend {
            root,
            aspects,
            jobs: jobs::LocalJobs::default(),
            tool_services_cache: Default::default(),
            flag_services: Vec::new(),
            discovery: Default::default(),
            service_files: Default::default(),
            search: search::SearchOptions::default(),
        })
    }

    /// Runs `search` with `options` (`--search-memory`).
    pub fn with_search(mut self, options: search::SearchOptions) -> Self {
        self.search = options;
        self
    }

    /// Adds `url` services by name for this run (`--local-service NAME=URL`), without files.
    pub fn with_services(mut self, services: Vec<(String, url::Url)>) -> Self {
        for (name, _) in &services {
            let file = self.root.join("services").join(format!("{name}.json"));
            if file.is_file() {
                tracing::warn!(file = %file.display(), "--local-service {name} is used instead of this definition file");
            }
        }
        self.flag_services = services;
        self
    }

    /// The store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `rel` inside the store, refusing anything that would leave it: absolute paths, `..`,
    /// and symlinks that point outside. `what` names the argument for the error.
    pub fn store_path(&self, rel: &Path, what: &str) -> Result<PathBuf> {
        files::under_root(&self.root, rel, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_paths_stay_inside() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBackend::new(dir.path()).unwrap();
        assert!(store.store_path(Path::new("artifacts/a/b.txt"), "name").is_ok());
        assert!(store.store_path(Path::new("../x"), "name").unwrap_err().to_string().contains("would leave the store"));
    }
}
