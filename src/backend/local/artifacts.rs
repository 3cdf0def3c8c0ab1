//! Local artifacts, laid out exactly as the Python SDK's `LocalIVCAP` does (docs/ivcap-wire.md
//! §13), so files written by either are read by the other:
//!
//! - bytes at `<store>/artifacts/<name>` (`<name>` may contain sub-folders); unnamed
//!   uploads get `<uuid4><ext>`, the extension from the source file (or the content type);
//! - the id is `urn:file://<resolved absolute path>`; reads also accept `file://…`;
//! - no metadata is stored: the mime type comes from the extension, the size from the file.
//!
//! Names that would leave `<store>/artifacts` are refused ([`LocalBackend::store_path`]),
//! ids that point outside it too, and every write is atomic. There is no dedup sidecar in
//! local mode (the Python SDK writes none either).

use std::path::{Path, PathBuf};

use super::LocalBackend;
use crate::backend::artifacts::{
    Artifact, ArtifactStatus, ArtifactsBackend, DownloadTarget, Downloaded, InlineBytes, UploadRequest, UploadSource,
    Uploaded, extension_for, guess_content_type,
};
use crate::backend::listing::{ListOptions, page_from, resume};
use crate::backend::progress::{Progress, report_bytes};
use crate::backend::{CollectionsBackend, Page, PageRequest};
use crate::error::{Error, Missing, Result};
use crate::files::{blocking, copy_hashing, write_atomic, write_atomic_from};

/// Folder of the artifacts inside the store.
const ARTIFACTS: &str = "artifacts";
/// Id prefix of a local artifact.
use crate::urn::LOCAL_ARTIFACT_PREFIX as URN_PREFIX;

/// `<root>/artifacts`, resolved; `None` while it does not exist.
fn artifacts_dir(root: &Path) -> Option<PathBuf> {
    root.join(ARTIFACTS).canonicalize().ok()
}

/// The file of a local artifact id, which must lie inside `<root>/artifacts`, and its record.
fn find_artifact(root: &Path, id: &str) -> Result<(PathBuf, Artifact)> {
    let file = artifact_file(root, id)?;
    let dir = artifacts_dir(root).ok_or_else(|| Error::not_found(Missing::Artifact, id))?;
    let artifact = artifact_of(&dir, &file)?;
    Ok((file, artifact))
}

/// Every artifact under `<root>/artifacts`, sorted by name (see [`LocalBackend::local_artifacts`]).
fn all_artifacts(root: &Path) -> Result<Vec<Artifact>> {
    let Some(dir) = artifacts_dir(root) else { return Ok(Vec::new()) };
    let mut files = Vec::new();
    collect_files(&dir, &mut files)?;
    files.sort();
    files.iter().map(|f| artifact_of(&dir, f)).collect()
}

/// The file of a local artifact id, which must lie inside `<store>/artifacts`.
fn artifact_file(root: &Path, id: &str) -> Result<PathBuf> {
    let id = id.trim();
    let not_found = || Error::NotFound { kind: Missing::Artifact, id: id.to_string() };
    let Some(raw) = id.strip_prefix(URN_PREFIX).or_else(|| id.strip_prefix("file://")) else {
        return Err(Error::invalid(
            "artifact",
            format!(
                "'{id}' is not a local artifact id; in local mode ids look like {URN_PREFIX}/path/to/store/artifacts/<name> — call list_artifacts"
            ),
        ));
    };
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(Error::invalid(
            "artifact",
            format!("'{id}' must hold an absolute path after '{URN_PREFIX}'; call list_artifacts"),
        ));
    }
    let dir = artifacts_dir(root).ok_or_else(not_found)?;
    let resolved = path.canonicalize().map_err(|_| not_found())?;
    if !resolved.starts_with(&dir) {
        return Err(Error::invalid(
            "artifact",
            format!("'{id}' is outside the local store's artifacts folder {}; call list_artifacts", dir.display()),
        ));
    }
    if !resolved.is_file() {
        return Err(not_found());
    }
    Ok(resolved)
}

/// The artifact record of `file` (resolved, inside `dir` = resolved `<store>/artifacts`).
fn artifact_of(dir: &Path, file: &Path) -> Result<Artifact> {
    let meta = std::fs::metadata(file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
    let name = file
        .strip_prefix(dir)
        .unwrap_or(file)
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let created_at = meta.modified().ok().map(chrono::DateTime::<chrono::Utc>::from);
    Ok(Artifact {
        id: format!("{URN_PREFIX}{}", file.display()),
        mime_type: Some(guess_content_type(&name)),
        name: Some(name),
        size: Some(meta.len()),
        status: ArtifactStatus::Ready,
        created_at,
    })
}

/// The strings anywhere in `result` that `is_id` accepts, in the order they appear, each
/// once: how a local job's products (the stored artifacts its result names) are found.
pub(crate) fn named_ids(result: &serde_json::Value, is_id: impl Fn(&str) -> bool) -> Vec<String> {
    fn walk(v: &serde_json::Value, is_id: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) if !out.contains(s) && is_id(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, is_id, out)),
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(i, is_id, out)),
            _ => {}
        }
    }
    let mut named = Vec::new();
    walk(result, &is_id, &mut named);
    named
}

impl LocalBackend {
    /// The stored artifacts a job result names (any JSON string that is a local artifact id),
    /// in the order they appear, each once: a local job's products.
    pub(crate) async fn artifacts_named_in(&self, result: &serde_json::Value) -> Result<Vec<String>> {
        let named = named_ids(result, |s| s.starts_with(URN_PREFIX));
        if named.is_empty() {
            return Ok(named);
        }
        let root = self.root().to_path_buf();
        blocking(move || Ok(named.into_iter().filter(|id| artifact_file(&root, id).is_ok()).collect())).await
    }

    /// Every local artifact with its id, name and mime type, sorted by name. Hidden files
    /// (temp files among them) and symlinks are skipped. An absent folder is empty.
    pub async fn local_artifacts(&self) -> Result<Vec<Artifact>> {
        let root = self.root().to_path_buf();
        blocking(move || all_artifacts(&root)).await
    }
}

/// The name an upload is stored under: the caller's, or `<uuid><ext>` without one.
fn upload_name(req: &UploadRequest) -> String {
    match &req.name {
        Some(name) => name.trim().to_string(),
        None => {
            let ext = match &req.source {
                UploadSource::File(p) => p.extension().map(|e| format!(".{}", e.to_string_lossy())),
                UploadSource::Bytes(_) => extension_for(&req.content_type),
            };
            format!("{}{}", uuid::Uuid::new_v4(), ext.unwrap_or_default())
        }
    }
}

/// Where an upload named `name` goes: `<root>/artifacts/<name>`, which must not be a folder.
fn upload_target(root: &Path, name: &str) -> Result<PathBuf> {
    let path = crate::files::under_root(root, &Path::new(ARTIFACTS).join(name), "name")?;
    if path.is_dir() {
        return Err(Error::invalid(
            "name",
            format!("'{name}' is a folder in the store; choose a file name, e.g. '{name}/data.bin'"),
        ));
    }
    Ok(path)
}

/// Regular files under `dir`, recursively, skipping hidden entries and symlinks.
fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(format!("cannot read {}", dir.display()), e))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            collect_files(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

#[async_trait::async_trait]
impl ArtifactsBackend for LocalBackend {
    async fn upload_artifact(&self, req: &UploadRequest, progress: &dyn Progress) -> Result<Uploaded> {
        let (name, source, root) = (upload_name(req), req.source.clone(), self.root().to_path_buf());
        let (size, artifact) = blocking(move || {
            let target = upload_target(&root, &name)?;
            let size = match source {
                UploadSource::Bytes(bytes) => {
                    write_atomic(&target, &bytes)?;
                    bytes.len() as u64
                }
                UploadSource::File(src) => {
                    let file = std::fs::File::open(&src)
                        .map_err(|e| Error::io(format!("cannot read {}", src.display()), e))?;
                    write_atomic_from(&target, file)?
                }
            };
            let dir = artifacts_dir(&root).ok_or_else(|| Error::not_found(Missing::Artifact, ARTIFACTS))?;
            let file =
                target.canonicalize().map_err(|e| Error::io(format!("cannot resolve {}", target.display()), e))?;
            Ok((size, artifact_of(&dir, &file)?))
        })
        .await?;
        if let Some(collection) = &req.collection {
            // Where the platform acts on X-Collection, the local store writes the membership.
            self.add_member(collection, &artifact.id).await?;
        }
        report_bytes(progress, size, size).await;
        Ok(Uploaded { artifact, deduplicated: false })
    }

    async fn get_artifact(&self, id: &str) -> Result<Artifact> {
        let (root, id) = (self.root().to_path_buf(), id.to_string());
        blocking(move || find_artifact(&root, &id).map(|(_, a)| a)).await
    }

    async fn list_artifacts(&self, options: &ListOptions, page: &PageRequest) -> Result<Page<Artifact>> {
        let (options, offset) = resume(page, options)?;
        let mut all = self.local_artifacts().await?;
        // Newest first, as on the platform; files of the same instant by name.
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.name.cmp(&b.name)));
        let empty = all.is_empty();
        // A file's modification time is when it was created as far as the store knows.
        if let Some(at) = options.at_time {
            all.retain(|a| a.created_at.is_some_and(|c| c <= at));
        }
        let all = options.select(all, Artifact::field)?;
        let mut page = page_from(all, page, offset, &options)?;
        if empty {
            page.note = Some(format!(
                "no local artifacts yet: upload_artifact stores them in {}/{ARTIFACTS}",
                self.root().display()
            ));
        }
        Ok(page)
    }

    async fn download_artifact(&self, id: &str, to: &DownloadTarget, progress: &dyn Progress) -> Result<Downloaded> {
        let (root, id, target) = (self.root().to_path_buf(), id.to_string(), to.clone());
        let (artifact, size, md5) = blocking(move || {
            target.check()?;
            let (src, artifact) = find_artifact(&root, &id)?;
            let mut tmp = target.temp_file()?;
            let input =
                std::fs::File::open(&src).map_err(|e| Error::io(format!("cannot read {}", src.display()), e))?;
            let (size, md5) = copy_hashing(input, tmp.file())
                .map_err(|e| Error::io(format!("cannot copy {} to {}", src.display(), target.path.display()), e))?;
            target.persist(tmp)?;
            Ok((artifact, size, md5))
        })
        .await?;
        report_bytes(progress, size, size).await;
        Ok(Downloaded { artifact, path: to.path.clone(), size, md5 })
    }

    async fn read_artifact(&self, id: &str, max_bytes: u64) -> Result<InlineBytes> {
        let (root, id) = (self.root().to_path_buf(), id.to_string());
        blocking(move || {
            let (file, artifact) = find_artifact(&root, &id)?;
            if artifact.size.is_some_and(|s| s > max_bytes) {
                return Ok(InlineBytes { artifact, bytes: None });
            }
            let bytes = std::fs::read(&file).map_err(|e| Error::io(format!("cannot read {}", file.display()), e))?;
            Ok(InlineBytes { artifact, bytes: Some(bytes) })
        })
        .await
    }

    fn local_store(&self) -> Option<&Path> {
        Some(self.root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::progress::NoProgress;

    fn request(source: UploadSource, name: Option<&str>) -> UploadRequest {
        UploadRequest {
            source,
            name: name.map(str::to_string),
            content_type: "text/plain".into(),
            collection: None,
            policy: None,
            force: false,
        }
    }

    #[tokio::test]
    async fn named_and_unnamed_uploads_land_where_local_ivcap_puts_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBackend::new(dir.path()).unwrap();
        let req = request(UploadSource::Bytes(b"hi".to_vec()), Some("sub/a.txt"));
        let up = store.upload_artifact(&req, &NoProgress).await.unwrap();
        let expected = dir.path().canonicalize().unwrap().join("artifacts/sub/a.txt");
        assert_eq!(up.artifact.id, format!("urn:file://{}", expected.display()));
        assert_eq!(std::fs::read(&expected).unwrap(), b"hi");
        assert_eq!(up.artifact.name.as_deref(), Some("sub/a.txt"));

        let req = request(UploadSource::Bytes(b"x".to_vec()), None);
        let name = store.upload_artifact(&req, &NoProgress).await.unwrap().artifact.name.unwrap();
        assert!(name.ends_with(".txt") && uuid::Uuid::parse_str(name.trim_end_matches(".txt")).is_ok(), "{name}");

        let listed = store.local_artifacts().await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|a| a.mime_type.as_deref() == Some("text/plain")));
    }

    #[tokio::test]
    async fn names_and_ids_outside_the_store_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalBackend::new(dir.path()).unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../x"] {
            let err = store.upload_artifact(&request(UploadSource::Bytes(vec![]), Some(bad)), &NoProgress).await;
            assert!(err.unwrap_err().to_string().contains("would leave the store"), "{bad}");
        }
        store.upload_artifact(&request(UploadSource::Bytes(vec![1]), Some("ok.bin")), &NoProgress).await.unwrap();
        let err = store.get_artifact("urn:file:///etc/passwd").await.unwrap_err().to_string();
        assert!(err.contains("outside the local store"), "{err}");
        let err = store.get_artifact("urn:ivcap:artifact:1").await.unwrap_err().to_string();
        assert!(err.contains("not a local artifact id"), "{err}");
    }
}
