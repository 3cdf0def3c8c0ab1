//! Artifacts: the data jobs consume and produce. Upload (resumable and deduplicated on the
//! platform), streaming download, metadata and listing.
//!
//! Also here, because both backends and the tools need them without knowing which IVCAP
//! they talk to: the dedup sidecar format (`.ivcap-<basename>.txt`, shared with the Python
//! SDK and the Go CLI), content-type guessing, streamed MD5, and the temp-file guard that
//! keeps an interrupted download from leaving half a file behind.

use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use tokio::io::AsyncReadExt;
use tokio_util::bytes::Bytes;

use super::{Page, PageRequest};
use crate::backend::progress::Progress;
use crate::error::{Error, Result};

/// Fallback content type when neither the caller nor the file name says one.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// An artifact's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// `urn:ivcap:artifact:<uuid>` on the platform, `urn:file://<absolute path>` locally.
    pub id: String,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    /// Bytes, when known.
    pub size: Option<u64>,
    /// `pending`, `partial`, `ready`, `error` or `unknown` (as the platform says); local
    /// artifacts are always `ready`.
    pub status: String,
    /// RFC 3339.
    pub created_at: Option<String>,
}

/// Where the bytes of an upload come from.
#[derive(Debug, Clone)]
pub enum UploadSource {
    /// A file, streamed from disk (the path has been checked against the allowed folders).
    File(PathBuf),
    /// Bytes given inline by the caller.
    Bytes(Vec<u8>),
}

/// One upload.
#[derive(Debug, Clone)]
pub struct UploadRequest {
    pub source: UploadSource,
    /// Artifact name; locally the file name under `<store>/artifacts` (sub-folders allowed).
    pub name: Option<String>,
    /// MIME type, already defaulted (see [`guess_content_type`]).
    pub content_type: String,
    /// Collection URN.
    pub collection: Option<String>,
    /// Policy URN (`urn:ivcap:policy:…`).
    pub policy: Option<String>,
    /// Upload even when the dedup sidecar names an existing artifact.
    pub force: bool,
}

/// The outcome of an upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    pub artifact: Artifact,
    /// True when no bytes were sent because the sidecar named an artifact that still exists.
    pub deduplicated: bool,
}

/// The outcome of a download to a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    pub artifact: Artifact,
    /// The file written.
    pub path: PathBuf,
    /// Bytes written.
    pub size: u64,
    /// MD5 of the bytes written, lower-case hex.
    pub md5: String,
}

/// The first bytes of an artifact, for inline display.
#[derive(Debug, Clone, PartialEq)]
pub struct InlineBytes {
    pub artifact: Artifact,
    /// The content; `None` when it is larger than the limit asked for.
    pub bytes: Option<Vec<u8>>,
}

/// Artifact operations.
#[async_trait::async_trait]
pub trait ArtifactsBackend {
    /// Uploads bytes as a new artifact (or, on the platform, returns the one the dedup
    /// sidecar names, if it still exists and `force` is false).
    async fn upload_artifact(&self, req: &UploadRequest, progress: &dyn Progress) -> Result<Uploaded>;

    /// One artifact's metadata.
    async fn get_artifact(&self, id: &str) -> Result<Artifact>;

    /// A page of artifacts.
    async fn list_artifacts(&self, page: &PageRequest) -> Result<Page<Artifact>>;

    /// Streams the artifact's bytes to a temp file beside `path`, then renames it over
    /// `path`. An existing `path` is refused unless `overwrite`.
    async fn download_artifact(
        &self,
        id: &str,
        path: &Path,
        overwrite: bool,
        progress: &dyn Progress,
    ) -> Result<Downloaded>;

    /// The artifact's bytes if it has at most `max_bytes`, else only its metadata.
    async fn read_artifact(&self, id: &str, max_bytes: u64) -> Result<InlineBytes>;

    /// The local store directory, when there is one: files under it may be read and written.
    fn local_store(&self) -> Option<&Path> {
        None
    }
}

/// The content type for `file_name` by its extension, else [`OCTET_STREAM`].
pub fn guess_content_type(file_name: &str) -> String {
    mime_guess::from_path(file_name).first_raw().unwrap_or(OCTET_STREAM).to_string()
}

/// A file extension (with the dot) for a content type, for unnamed local uploads.
pub fn extension_for(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    let preferred = match essence {
        "text/plain" => Some("txt"),
        "application/json" => Some("json"),
        "image/jpeg" => Some("jpg"),
        OCTET_STREAM => return None,
        _ => None,
    };
    preferred
        .or_else(|| mime_guess::get_mime_extensions_str(essence).and_then(|exts| exts.first().copied()))
        .map(|e| format!(".{e}"))
}

/// The dedup sidecar of `file`: `<dir of file>/.ivcap-<basename>.txt` (ivcap-api.md §7.6).
pub fn sidecar_path(file: &Path) -> Option<PathBuf> {
    let name = file.file_name()?.to_string_lossy();
    Some(file.with_file_name(format!(".ivcap-{name}.txt")))
}

/// The sidecar's text: `<md5>|<urn>\n`, byte for byte as the Python SDK writes it.
pub fn sidecar_text(md5_hex: &str, urn: &str) -> String {
    format!("{md5_hex}|{urn}\n")
}

/// `(md5, urn)` from a sidecar's first line; `None` for anything malformed (which is then
/// ignored: the file is uploaded as if there were no sidecar).
pub fn parse_sidecar(text: &str) -> Option<(String, String)> {
    let line = text.lines().next()?.trim_end_matches('\r');
    let (md5, urn) = line.split_once('|')?;
    let md5 = md5.trim();
    let urn = urn.trim();
    let valid_md5 = md5.len() == 32 && md5.chars().all(|c| c.is_ascii_hexdigit());
    (valid_md5 && super::is_urn(urn)).then(|| (md5.to_ascii_lowercase(), urn.to_string()))
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Read size for streamed hashing and copying.
pub const IO_BUFFER: usize = 256 * 1024;

/// MD5 of a file, streamed (never the whole file in memory).
pub async fn md5_file(path: &Path) -> Result<String> {
    let mut file =
        tokio::fs::File::open(path).await.map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; IO_BUFFER];
    loop {
        let n = file.read(&mut buf).await.map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hex(&hasher.finalize()))
}

/// MD5 of a stream of pieces at known offsets: `upto` bytes hashed so far. Pieces that
/// start before `upto` (a resumed upload re-sending bytes) only add their new part.
struct StreamHash {
    hasher: Md5,
    upto: u64,
}

impl StreamHash {
    fn feed(&mut self, at: u64, bytes: &[u8]) {
        let end = at + bytes.len() as u64;
        if at <= self.upto && end > self.upto {
            let skip = usize::try_from(self.upto - at).unwrap_or(usize::MAX);
            self.hasher.update(bytes.get(skip..).unwrap_or_default());
            self.upto = end;
        }
    }
}

/// Pieces queued for the hashing thread at most (a few MiB at [`IO_BUFFER`] pieces).
const HASH_QUEUE: usize = 8;

enum HashMsg {
    Piece(u64, Bytes),
    Finish,
}

/// MD5 computed on a blocking thread from pieces fed in order, so hashing overlaps the
/// transfer instead of adding to it. Bounded: a slow hasher slows the feeder, never memory.
pub struct BackgroundMd5 {
    tx: tokio::sync::mpsc::Sender<HashMsg>,
    done: tokio::task::JoinHandle<(u64, String)>,
}

/// A handle that feeds a [`BackgroundMd5`] (cheap to clone into a body stream).
#[derive(Clone)]
pub struct Md5Feed(tokio::sync::mpsc::Sender<HashMsg>);

impl Md5Feed {
    /// Hashes `bytes`, found at offset `at` of the data.
    pub async fn feed(&self, at: u64, bytes: Bytes) {
        let _ = self.0.send(HashMsg::Piece(at, bytes)).await;
    }
}

impl BackgroundMd5 {
    /// Starts the hashing thread.
    pub fn start() -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<HashMsg>(HASH_QUEUE);
        let done = tokio::task::spawn_blocking(move || {
            let mut state = StreamHash { hasher: Md5::new(), upto: 0 };
            while let Some(HashMsg::Piece(at, bytes)) = rx.blocking_recv() {
                state.feed(at, &bytes);
            }
            (state.upto, hex(&state.hasher.finalize()))
        });
        BackgroundMd5 { tx, done }
    }

    /// A feeder for this hash.
    pub fn feeder(&self) -> Md5Feed {
        Md5Feed(self.tx.clone())
    }

    /// The MD5 of the bytes fed, if they covered `0..len` without a gap.
    pub async fn finish(self, len: u64) -> Option<String> {
        let _ = self.tx.send(HashMsg::Finish).await;
        let (upto, md5) = self.done.await.ok()?;
        (upto == len).then_some(md5)
    }
}

/// A temp file beside a download target, removed on drop unless [`TempFile::persist`]ed:
/// a failed or cancelled download leaves nothing behind.
pub struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// A fresh temp path in the same directory as `target` (so the final rename is atomic),
    /// creating that directory and its missing parents: an agent has no tool that makes
    /// folders. `target` has already passed the path policy, resolved.
    pub fn beside(target: &Path) -> Result<TempFile> {
        let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::invalid("path", format!("cannot create the folder {} ({e}); choose another path", dir.display()))
        })?;
        let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path = dir.join(format!(".{name}.{}.part", uuid::Uuid::new_v4().simple()));
        Ok(TempFile { path, keep: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the temp file over `target`; refuses to replace an existing file unless
    /// `overwrite`.
    pub fn persist(mut self, target: &Path, overwrite: bool) -> Result<()> {
        if !overwrite && target.exists() {
            return Err(exists_error(target));
        }
        std::fs::rename(&self.path, target).map_err(|e| Error::io(format!("cannot write {}", target.display()), e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The error for a download target that exists.
pub fn exists_error(target: &Path) -> Error {
    Error::invalid(
        "path",
        format!("{} already exists; pass overwrite: true to replace it, or choose another path", target.display()),
    )
}

/// Checks a download target before any bytes move: not an existing directory, and not an
/// existing file unless `overwrite`. Missing folders are made by [`TempFile::beside`].
pub fn check_target(target: &Path, overwrite: bool) -> Result<()> {
    if target.is_dir() {
        return Err(Error::invalid(
            "path",
            format!("{} is a directory; give a file path, e.g. {}/<name>", target.display(), target.display()),
        ));
    }
    if target.exists() && !overwrite {
        return Err(exists_error(target));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_format_is_byte_exact_and_parsing_is_lenient() {
        let urn = "urn:ivcap:artifact:2d38cc58-fb62-4ce4-9008-d8b9b5c378af";
        let text = sidecar_text("c3c6bc2ae8ece4bd2510dca21225c041", urn);
        assert_eq!(text, format!("c3c6bc2ae8ece4bd2510dca21225c041|{urn}\n"));
        let parsed = Some(("c3c6bc2ae8ece4bd2510dca21225c041".to_string(), urn.to_string()));
        assert_eq!(parse_sidecar(&text), parsed);
        assert_eq!(parse_sidecar(text.trim_end()), parsed, "the Go CLI writes no newline");
        for bad in ["", "nonsense", "abc|urn:x:y", "c3c6bc2ae8ece4bd2510dca21225c041|not a urn", "|"] {
            assert_eq!(parse_sidecar(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn background_md5_skips_resent_bytes() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let hash = BackgroundMd5::start();
        let feed = hash.feeder();
        feed.feed(0, Bytes::copy_from_slice(&data[..400])).await;
        feed.feed(300, Bytes::copy_from_slice(&data[300..700])).await; // resumed from an earlier offset
        feed.feed(700, Bytes::copy_from_slice(&data[700..])).await;
        assert_eq!(hash.finish(1000).await, Some(hex(&Md5::digest(&data))));

        let gap = BackgroundMd5::start();
        gap.feeder().feed(10, Bytes::from_static(b"x")).await;
        assert_eq!(gap.finish(11).await, None);
    }

    #[test]
    fn sidecar_sits_next_to_the_source() {
        assert_eq!(sidecar_path(Path::new("data/report.csv")).unwrap(), Path::new("data/.ivcap-report.csv.txt"));
    }

    #[test]
    fn content_types_come_from_extensions() {
        assert_eq!(guess_content_type("a.csv"), "text/csv");
        assert_eq!(guess_content_type("x/y.png"), "image/png");
        assert_eq!(guess_content_type("noext"), OCTET_STREAM);
        assert_eq!(extension_for("text/plain; charset=utf-8").as_deref(), Some(".txt"));
        assert_eq!(extension_for("image/png").as_deref(), Some(".png"));
        assert_eq!(extension_for("application/x-unknown-thing"), None);
        assert_eq!(extension_for(OCTET_STREAM), None);
    }

    #[test]
    fn temp_files_vanish_unless_persisted() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        let tmp = TempFile::beside(&target).unwrap();
        std::fs::write(tmp.path(), b"x").unwrap();
        let leftover = tmp.path().to_path_buf();
        drop(tmp);
        assert!(!leftover.exists());

        let tmp = TempFile::beside(&target).unwrap();
        std::fs::write(tmp.path(), b"y").unwrap();
        tmp.persist(&target, false).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"y");
        let tmp = TempFile::beside(&target).unwrap();
        std::fs::write(tmp.path(), b"z").unwrap();
        assert!(tmp.persist(&target, false).unwrap_err().to_string().contains("overwrite"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn targets_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_target(dir.path(), true).unwrap_err().to_string().contains("directory"));
        assert!(check_target(&dir.path().join("nope/x"), false).is_ok());
        let tmp = TempFile::beside(&dir.path().join("new/deeper/x")).unwrap();
        assert!(dir.path().join("new/deeper").is_dir(), "missing folders are created");
        drop(tmp);
        std::fs::write(dir.path().join("file"), b"").unwrap();
        let blocked = TempFile::beside(&dir.path().join("file/sub/x")).err().unwrap().to_string();
        assert!(blocked.contains("cannot create the folder"), "{blocked}");
        let f = dir.path().join("f");
        std::fs::write(&f, b"").unwrap();
        assert!(check_target(&f, false).is_err());
        assert!(check_target(&f, true).is_ok());
    }
}
