//! Artifacts: the data jobs consume and produce. Upload (resumable and deduplicated on the
//! platform), streaming download, metadata and listing.
//!
//! Also here, because both backends and the tools need them without knowing which IVCAP
//! they talk to: the dedup sidecar format (`.ivcap-<basename>.txt`, shared with the Python
//! SDK and the Go CLI), content-type guessing, MD5 of a transfer computed beside it, and
//! the checks on a download target (the file primitives themselves are in [`crate::files`]).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use md5::{Digest, Md5};
use tokio_util::bytes::Bytes;

use super::listing::ListOptions;
use super::{Page, PageRequest};
use crate::backend::progress::Progress;
use crate::error::{Error, Result};
use crate::files::{TempFile, hex};

/// Fallback content type when neither the caller nor the file name says one.
pub const OCTET_STREAM: &str = "application/octet-stream";

wire_status! {
    /// Where an artifact's upload is, as the platform says; local artifacts are always `Ready`.
    ArtifactStatus {
        Pending = "pending",
        Partial = "partial",
        Ready = "ready",
        Error = "error",
        Unknown = "unknown",
    }
}

/// An artifact's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Artifact {
    /// `urn:ivcap:artifact:<uuid>` on the platform, `urn:file://<absolute path>` locally.
    pub id: String,
    pub name: Option<String>,
    pub mime_type: Option<String>,
    /// Bytes, when known.
    pub size: Option<u64>,
    pub status: ArtifactStatus,
    pub created_at: Option<DateTime<Utc>>,
}

impl Artifact {
    /// One field, as filters name it ([`crate::backend::listing::ARTIFACT_FIELDS`]).
    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "id" => Some(self.id.clone()),
            "name" => self.name.clone(),
            "mime-type" => self.mime_type.clone(),
            "size" => self.size.map(|s| s.to_string()),
            "status" => Some(self.status.as_str().to_string()),
            "created-at" => self.created_at.map(crate::time::format),
            _ => None,
        }
    }
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
    async fn list_artifacts(&self, options: &ListOptions, page: &PageRequest) -> Result<Page<Artifact>>;

    /// Streams the artifact's bytes to a temp file beside `to.path`, then renames it over
    /// `to.path`, as [`DownloadTarget`] says.
    async fn download_artifact(&self, id: &str, to: &DownloadTarget, progress: &dyn Progress) -> Result<Downloaded>;

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

/// The dedup sidecar of `file`: `<dir of file>/.ivcap-<basename>.txt` (docs/ivcap-wire.md §7.6).
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
    (valid_md5 && crate::urn::is_urn(urn)).then(|| (md5.to_ascii_lowercase(), urn.to_string()))
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

/// Pieces queued for the hashing thread at most (a few MiB at [`crate::files::IO_BUFFER`] pieces).
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

/// Where a download goes: the file (it has passed the path policy, resolved) and whether an
/// existing one may be replaced. Every backend checks it before any bytes move, writes a temp
/// file beside it and renames that over it, through these methods (blocking file work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadTarget {
    pub path: PathBuf,
    pub overwrite: bool,
}

impl DownloadTarget {
    /// Refuses an existing directory, and an existing file unless `overwrite`.
    pub fn check(&self) -> Result<()> {
        let target = &self.path;
        if target.is_dir() {
            return Err(Error::invalid(
                "path",
                format!("{} is a directory; give a file path, e.g. {}/<name>", target.display(), target.display()),
            ));
        }
        if target.exists() && !self.overwrite {
            return Err(self.exists_error());
        }
        Ok(())
    }

    /// A temp file beside the target. Missing folders are made (an agent has no tool that
    /// makes folders).
    pub fn temp_file(&self) -> Result<TempFile> {
        TempFile::beside(&self.path, true)
    }

    /// Renames a finished download over the target; an existing file is kept (and named in
    /// the error) unless `overwrite`.
    pub fn persist(&self, tmp: TempFile) -> Result<()> {
        tmp.persist(&self.path, self.overwrite).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => self.exists_error(),
            _ => Error::io(format!("cannot write {}", self.path.display()), e),
        })
    }

    fn exists_error(&self) -> Error {
        Error::invalid(
            "path",
            format!(
                "{} already exists; pass overwrite: true to replace it, or choose another path",
                self.path.display()
            ),
        )
    }
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
    fn a_download_never_replaces_a_file_unless_asked() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.bin");
        std::fs::write(&target, b"old").unwrap();
        let to = DownloadTarget { path: target.clone(), overwrite: false };
        let mut tmp = to.temp_file().unwrap();
        tmp.file().write_all(b"new").unwrap();
        assert!(to.persist(tmp).unwrap_err().to_string().contains("overwrite: true"));
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temp file left");
    }

    #[test]
    fn targets_are_checked() {
        let check = |path: &Path, overwrite| DownloadTarget { path: path.to_path_buf(), overwrite }.check();
        let dir = tempfile::tempdir().unwrap();
        assert!(check(dir.path(), true).unwrap_err().to_string().contains("directory"));
        assert!(check(&dir.path().join("nope/x"), false).is_ok());
        let f = dir.path().join("f");
        std::fs::write(&f, b"").unwrap();
        assert!(check(&f, false).is_err());
        assert!(check(&f, true).is_ok());
    }
}
