//! Local filesystem primitives, written once for the local store, the artifact transfers
//! and the dedup sidecar: atomic writes, temp files that vanish unless kept, streamed MD5,
//! paths resolved under a root, and running blocking file work off the async threads.
//!
//! Atomic writes go through `tempfile`: a temp file in the target's folder (so the final
//! rename stays on one filesystem), flushed to disk, then renamed over the target, or linked
//! to it without replacing (`persist_noclobber`), which leaves no gap between a check that
//! the target is absent and the rename.
//!
//! A write under way holds a [`Writing`] mark, and the process waits for the marks to go
//! ([`writes_finished`]) before it exits: a client that closes stdin right after an answer
//! would otherwise end the process in the middle of a write still running on a blocking
//! thread (the aspect index snapshot, a job record), and the write would be lost.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use md5::{Digest, Md5};
use tempfile::NamedTempFile;

use crate::error::{Error, Result};

/// Read size for streamed hashing and copying.
pub const IO_BUFFER: usize = 256 * 1024;

/// Runs blocking file work (`std::fs`, `fsync`, `flock`) on the blocking pool, so a slow disk
/// or a lock held by another process never stalls an async worker.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: BlockingJob = Box::new(move || {
        let _ = answer.send(f());
    });
    tokio::task::spawn_blocking(job).await.map_err(|e| Error::Internal(format!("a file task failed: {e}")))?;
    answered.await.map_err(|_| Error::Internal("a file task ended without an answer".into()))?
}

/// Every blocking job has this one type, so Tokio's task machinery for the blocking pool is
/// compiled once instead of once per call site (32 copies, about 2.5 % of this crate's
/// machine code; measured: the commit that made it has the numbers).
type BlockingJob = Box<dyn FnOnce() + Send>;

/// A temp file beside a target, removed on drop unless persisted: a failed or cancelled
/// write leaves nothing behind. Its name starts with `.` so store listings skip it.
pub struct TempFile(NamedTempFile);

impl TempFile {
    /// A fresh temp file in the folder of `target` (created if missing when `create_dir`).
    pub fn beside(target: &Path, create_dir: bool) -> Result<TempFile> {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if create_dir {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        }
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .tempfile_in(dir)
            .map(TempFile)
            .map_err(|e| Error::io(format!("cannot create a file beside {}", target.display()), e))
    }

    pub fn path(&self) -> &Path {
        self.0.path()
    }

    /// The open file, for writing.
    pub fn file(&mut self) -> &mut std::fs::File {
        self.0.as_file_mut()
    }

    /// Flushes the bytes to disk and renames the file over `target`; with `overwrite`
    /// false an existing `target` is kept and the answer is `AlreadyExists`.
    pub fn persist(mut self, target: &Path, overwrite: bool) -> std::io::Result<()> {
        let _writing = Writing::start();
        self.0.as_file_mut().flush()?;
        self.0.as_file().sync_all()?;
        let kept = if overwrite { self.0.persist(target) } else { self.0.persist_noclobber(target) };
        kept.map(|_| ()).map_err(|e| e.error)
    }
}

/// How many writes are under way, and a signal when that changes.
static WRITING: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Marks a write under way until dropped; the process waits for it before exiting.
pub struct Writing(());

impl Writing {
    pub fn start() -> Writing {
        *WRITING.0.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        Writing(())
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        let mut count = WRITING.0.lock().unwrap_or_else(|p| p.into_inner());
        *count -= 1;
        WRITING.1.notify_all();
    }
}

/// Waits until no write is under way, at most `timeout`; false if some still are.
pub fn writes_finished(timeout: Duration) -> bool {
    let count = WRITING.0.lock().unwrap_or_else(|p| p.into_inner());
    let (count, _) = WRITING.1.wait_timeout_while(count, timeout, |n| *n > 0).unwrap_or_else(|p| p.into_inner());
    *count == 0
}

/// Writes `bytes` to `path` atomically (see [`write_atomic_from`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_from(path, bytes).map(|_| ())
}

/// Copies everything `reader` gives to `path` atomically, creating parent folders; a
/// reader never sees half a file and a failure leaves no temp file. Returns the bytes written.
pub fn write_atomic_from(path: &Path, mut reader: impl Read) -> Result<u64> {
    let _writing = Writing::start();
    let mut tmp = TempFile::beside(path, true)?;
    let failed = |e| Error::io(format!("cannot write {}", path.display()), e);
    let n = std::io::copy(&mut reader, tmp.file()).map_err(failed)?;
    tmp.persist(path, true).map_err(failed)?;
    Ok(n)
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Copies `reader` into `out` in [`IO_BUFFER`] pieces, hashing as it goes; bytes and MD5.
pub fn copy_hashing(mut reader: impl Read, out: &mut impl Write) -> std::io::Result<(u64, String)> {
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; IO_BUFFER];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let piece = buf.get(..n).unwrap_or_default();
        hasher.update(piece);
        out.write_all(piece)?;
        total += n as u64;
    }
    Ok((total, hex(&hasher.finalize())))
}

/// MD5 of a file, streamed on the blocking pool (never the whole file in memory).
pub async fn md5_file(path: &Path) -> Result<String> {
    let path = path.to_path_buf();
    blocking(move || {
        let file = std::fs::File::open(&path).map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        copy_hashing(file, &mut std::io::sink())
            .map(|(_, md5)| md5)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))
    })
    .await
}

/// `path` with its deepest existing ancestor resolved (symlinks followed) and the rest
/// appended, so a path that does not exist yet is judged by where it would be. The rest does
/// not exist, so it holds no symlinks and its `.` and `..` are resolved by name: a download
/// may create those folders, and `new/../../x` must not climb out of an allowed root.
pub fn resolve_lenient(path: &Path) -> PathBuf {
    use std::path::Component;
    let parts: Vec<Component> = path.components().collect();
    for split in (1..=parts.len()).rev() {
        let Ok(resolved) = parts[..split].iter().collect::<PathBuf>().canonicalize() else { continue };
        return parts[split..].iter().fold(resolved, |mut acc, part| {
            match part {
                Component::CurDir => {}
                Component::ParentDir => {
                    acc.pop();
                }
                other => acc.push(other),
            }
            acc
        });
    }
    path.to_path_buf()
}

/// `rel` inside `root`, refusing anything that would leave it: absolute paths, `..`, and
/// symlinks that point outside. `arg` names the argument for the error.
pub fn under_root(root: &Path, rel: &Path, arg: &str) -> Result<PathBuf> {
    let outside = || {
        Error::invalid(
            arg,
            format!("'{}' would leave the store {}; use a relative path without '..'", rel.display(), root.display()),
        )
    };
    if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(outside());
    }
    let path = root.join(rel);
    // Symlinks: where the path would resolve must still be inside the (resolved) root.
    if let Ok(resolved_root) = root.canonicalize()
        && !resolve_lenient(&path).starts_with(&resolved_root)
    {
        return Err(outside());
    }
    Ok(path)
}

/// The files directly in `dir` whose name ends with `.{ext}`, sorted; an absent folder is empty.
pub fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", dir.display()), e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext) && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exit_waits_for_writes_under_way() {
        let writing = Writing::start();
        assert!(!writes_finished(Duration::from_millis(20)), "a write under way is waited for");
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(writing);
        });
        assert!(writes_finished(Duration::from_secs(10)), "and the wait ends when it is done");
        writer.join().unwrap();
    }

    #[test]
    fn paths_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        assert!(under_root(dir.path(), Path::new("artifacts/a/b.txt"), "name").is_ok());
        for bad in ["../x", "/etc/passwd", "a/../../x", ""] {
            assert!(under_root(dir.path(), Path::new(bad), "name").is_err(), "{bad}");
        }
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let err = under_root(dir.path(), Path::new("link/x"), "name").unwrap_err().to_string();
        assert!(err.contains("would leave the store") && err.contains("'name'"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn temp_files_vanish_unless_persisted_and_never_clobber_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let mut tmp = TempFile::beside(&target, false).unwrap();
        tmp.file().write_all(b"x").unwrap();
        let leftover = tmp.path().to_path_buf();
        assert!(leftover.file_name().unwrap().to_string_lossy().starts_with('.'));
        drop(tmp);
        assert!(!leftover.exists());

        let mut tmp = TempFile::beside(&target, false).unwrap();
        tmp.file().write_all(b"y").unwrap();
        tmp.persist(&target, false).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"y");
        let mut tmp = TempFile::beside(&target, false).unwrap();
        tmp.file().write_all(b"z").unwrap();
        assert_eq!(tmp.persist(&target, false).unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&target).unwrap(), b"y", "the existing file is kept");
        let mut tmp = TempFile::beside(&target, false).unwrap();
        tmp.file().write_all(b"w").unwrap();
        tmp.persist(&target, true).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"w");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }

    #[tokio::test]
    async fn md5_is_streamed_and_matches_the_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..=255u8).cycle().take(IO_BUFFER * 2 + 17).collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(md5_file(&path).await.unwrap(), hex(&Md5::digest(&data)));
        let mut copy = Vec::new();
        assert_eq!(copy_hashing(&data[..], &mut copy).unwrap(), (data.len() as u64, hex(&Md5::digest(&data))));
        assert_eq!(copy, data);
    }

    #[test]
    fn lenient_resolution_keeps_the_missing_tail() {
        let dir = tempfile::tempdir().unwrap();
        let resolved = resolve_lenient(&dir.path().join("a/b"));
        assert_eq!(resolved, dir.path().canonicalize().unwrap().join("a/b"));
    }
}
