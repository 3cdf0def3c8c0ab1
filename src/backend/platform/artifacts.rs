//! Artifacts on the platform (docs/ivcap-wire.md §7): create with `POST /1/artifacts`, upload the
//! bytes with TUS `PATCH` chunks on the `data-href` path (resuming from the server's
//! `Upload-Offset` after a failed or interrupted chunk), read and list records, and stream
//! the blob down. The dedup sidecar (§7.6) is checked before and written after an upload
//! from a file.
//!
//! Bytes are streamed from disk in [`IO_BUFFER`] pieces and hashed as they go, so neither
//! an upload nor a download ever holds more than a few buffers, whatever the file size.
//! `data-href` is only ever used for its path, put on the configured base URL: the token
//! never goes to another host.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures::StreamExt;
use reqwest::{Body, Method, header};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{Failure, PlatformBackend, Target, decode, enc, resumable_status};
use crate::backend::artifacts::{
    Artifact, ArtifactsBackend, BackgroundMd5, DownloadTarget, Downloaded, InlineBytes, Md5Feed, UploadRequest,
    UploadSource, Uploaded, parse_sidecar, sidecar_path, sidecar_text,
};
use crate::backend::listing::ListOptions;
use crate::backend::progress::{Progress, report_bytes};
use crate::backend::{ArtifactStatus, CollectionsBackend, Page, PageRequest};
use crate::error::{Error, Missing, Result};
use crate::files::{IO_BUFFER, blocking, md5_file, write_atomic};
use crate::telemetry::metrics::{self, Direction};
use crate::time::from_wire;
use crate::urn::is_urn;

/// TUS protocol version we speak.
const TUS_VERSION: &str = "1.0.0";
/// Longest wait for the next piece of a download before giving up.
const STALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Whole-download timeout (stalls are caught by [`STALL_TIMEOUT`]).
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Progress is reported at most this often (in bytes) during a download.
const DOWNLOAD_REPORT_STEP: u64 = 8 << 20;

/// `ArtifactStatusRT` (read) and the items of `ArtifactListRT` — the fields we use; a list
/// item has no `data-href`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ArtifactStatusRt {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mime_type: Option<String>,
    #[serde(default)]
    size: Option<i64>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    data_href: Option<String>,
}

/// `ArtifactUploadRT2` (create) — the fields we use.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct ArtifactUploadRt2 {
    id: String,
    #[serde(default)]
    data_href: Option<String>,
}

impl From<ArtifactStatusRt> for Artifact {
    fn from(a: ArtifactStatusRt) -> Self {
        Artifact {
            id: a.id,
            name: a.name,
            mime_type: a.mime_type,
            size: a.size.and_then(|s| u64::try_from(s).ok()),
            status: a.status.as_deref().map_or(ArtifactStatus::Unknown, ArtifactStatus::parse),
            created_at: from_wire(a.created_at.as_deref()),
        }
    }
}

/// The path of `data-href` (scheme, host and query dropped), else the conventional blob path.
fn blob_path(data_href: Option<&str>, id: &str) -> String {
    data_href
        .and_then(|href| url::Url::parse(href).ok())
        .map(|u| u.path().to_string())
        .filter(|p| p.starts_with("/1/"))
        .unwrap_or_else(|| format!("/1/artifacts/{}/blob", enc(id)))
}

/// Platform artifact ids are URNs; a local-mode id is named as such.
fn check_id(id: &str) -> Result<&str> {
    let id = id.trim();
    if id.starts_with("urn:file:") || id.starts_with("file:") {
        return Err(Error::invalid(
            "artifact",
            format!(
                "'{id}' is a local-mode artifact id, but this server talks to an IVCAP platform; call list_artifacts"
            ),
        ));
    }
    if !is_urn(id) {
        return Err(Error::invalid(
            "artifact",
            format!("'{id}' is not an artifact URN; pass one like urn:ivcap:artifact:…, e.g. from list_artifacts"),
        ));
    }
    Ok(id)
}

impl PlatformBackend {
    /// The full record, `data-href` included.
    async fn artifact_record(&self, id: &str) -> Result<ArtifactStatusRt> {
        let id = check_id(id)?;
        self.get_json(&format!("/1/artifacts/{}", enc(id)), &[], Target { kind: Missing::Artifact, id }).await
    }

    /// `POST /1/artifacts` with the §7.1 headers; the record is the TUS upload.
    async fn create_artifact(&self, req: &UploadRequest, total: u64) -> Result<ArtifactUploadRt2> {
        let name_id = req.name.clone().unwrap_or_default();
        let resp = self
            .send(Target { kind: Missing::Artifact, id: &name_id }, false, &|| {
                let mut rb = self
                    .request(Method::POST, "/1/artifacts")
                    .header("X-Content-Type", &req.content_type)
                    .header("X-Content-Length", total.to_string())
                    .header("Tus-Resumable", TUS_VERSION)
                    .body(Vec::new());
                if let Some(name) = &req.name {
                    rb = rb.header("X-Name", STANDARD.encode(name.as_bytes()));
                }
                if let Some(collection) = &req.collection {
                    rb = rb.header("X-Collection", collection);
                }
                if let Some(policy) = &req.policy {
                    rb = rb.header("X-Policy", policy);
                }
                rb
            })
            .await?;
        decode(resp).await
    }

    /// The server's `Upload-Offset` for `blob` (TUS `HEAD`).
    async fn upload_offset(&self, blob: &str, id: &str) -> Result<u64> {
        let resp = self
            .send(Target { kind: Missing::Artifact, id }, true, &|| {
                self.request(Method::HEAD, blob).header("Tus-Resumable", TUS_VERSION)
            })
            .await?;
        offset_header(&resp)
    }

    /// One `PATCH` of `len` bytes at `offset`; the server's new offset.
    async fn patch_chunk(
        &self,
        blob: &str,
        id: &str,
        source: &UploadSource,
        offset: u64,
        len: u64,
        hash: Option<Md5Feed>,
    ) -> std::result::Result<u64, Failure> {
        let body = chunk_body(source, offset, len, hash).await.map_err(|error| Failure {
            error,
            retryable: false,
            delay: None,
        })?;
        // Generous per-chunk timeout: a minute plus a second per MiB.
        let timeout = Duration::from_secs(60 + (len >> 20));
        let token =
            self.credentials.bearer().await.map_err(|error| Failure { error, retryable: false, delay: None })?;
        let (sent, _) = self
            .exchange(
                self.request(Method::PATCH, blob)
                    .timeout(timeout)
                    .header("Tus-Resumable", TUS_VERSION)
                    .header("Upload-Offset", offset.to_string())
                    .header(header::CONTENT_TYPE, "application/offset+octet-stream")
                    .header(header::CONTENT_LENGTH, len.to_string())
                    .body(body),
                token.as_ref(),
            )
            .await;
        // A chunk is safe to send again: the upload resumes from the server's offset.
        let resp = sent.map_err(|e| Failure::from_transport(e, true))?;
        if resp.status().is_success() {
            let next = offset_header(&resp).map_err(|error| Failure { error, retryable: true, delay: None })?;
            metrics::transfer(Direction::Upload, next.saturating_sub(offset));
            return Ok(next);
        }
        let status = resp.status();
        let failure = Failure::from_response(resp, Target { kind: Missing::Artifact, id }, true).await;
        // 409 = our offset is not the server's: resync at once.
        let delay = if status == reqwest::StatusCode::CONFLICT { Some(Duration::ZERO) } else { failure.delay };
        Err(Failure { retryable: resumable_status(status), delay, ..failure })
    }

    /// Sends `total` bytes of `source` in chunks, resuming after failures from the server's
    /// offset; a file source is hashed on the way (on another thread) and its MD5 returned
    /// when every byte was hashed.
    async fn send_chunks(
        &self,
        blob: &str,
        id: &str,
        source: &UploadSource,
        total: u64,
        progress: &dyn Progress,
    ) -> Result<Option<String>> {
        let hash = matches!(source, UploadSource::File(_)).then(BackgroundMd5::start);
        let mut offset = 0u64;
        let (mut failures, mut since) = (0u32, Instant::now());
        while offset < total {
            let len = self.chunk_size.min(total - offset);
            let feed = hash.as_ref().map(BackgroundMd5::feeder);
            match self.patch_chunk(blob, id, source, offset, len, feed).await {
                Ok(next) if next > offset && next <= total => {
                    offset = next;
                    (failures, since) = (0, Instant::now());
                    report_bytes(progress, offset, total).await;
                }
                Ok(next) => {
                    return Err(Error::UnexpectedAnswer(format!(
                        "the upload offset went from {offset} to {next} of {total} bytes after a PATCH"
                    )));
                }
                Err(failure) => {
                    failures += 1;
                    let Some(delay) = self.retry.next_delay(&failure, failures, since) else {
                        let context = format!("uploading bytes {offset}..{} of {total}", offset + len);
                        return Err(failure.gave_up(failures, &context));
                    };
                    tracing::debug!(offset, failures, ?delay, error = %failure.error, "upload chunk failed; resuming");
                    tokio::time::sleep(delay).await;
                    offset = self.upload_offset(blob, id).await?;
                    if offset > total {
                        return Err(Error::UnexpectedAnswer(format!(
                            "the server reports {offset} bytes uploaded of {total}"
                        )));
                    }
                }
            }
        }
        Ok(match hash {
            Some(hash) => hash.finish(total).await,
            None => None,
        })
    }

    /// Streams the blob of `record` into `file`, hashing it; bytes written and MD5.
    async fn stream_blob(
        &self,
        record: &ArtifactStatusRt,
        file: &mut tokio::fs::File,
        progress: &dyn Progress,
    ) -> Result<(u64, String)> {
        let blob = blob_path(record.data_href.as_deref(), &record.id);
        let target = Target { kind: Missing::Artifact, id: &record.id };
        let resp = self.send(target, true, &|| self.request(Method::GET, &blob).timeout(DOWNLOAD_TIMEOUT)).await?;
        let total = record.size.and_then(|s| u64::try_from(s).ok()).or(resp.content_length()).unwrap_or(0);
        let mut stream = resp.bytes_stream();
        let hash = BackgroundMd5::start();
        let feed = hash.feeder();
        let (mut done, mut reported) = (0u64, 0u64);
        let write_err = |e| Error::io("cannot write the download", e);
        loop {
            let piece = tokio::time::timeout(STALL_TIMEOUT, stream.next())
                .await
                .map_err(|_| Error::Transport(format!("the download stalled after {done} bytes")))?;
            let Some(piece) = piece else { break };
            let bytes = piece.map_err(|e| Error::Transport(format!("after {done} bytes: {}", e.without_url())))?;
            let len = bytes.len() as u64;
            metrics::transfer(Direction::Download, len);
            feed.feed(done, bytes.clone()).await;
            file.write_all(&bytes).await.map_err(write_err)?;
            done += len;
            if done - reported >= DOWNLOAD_REPORT_STEP {
                reported = done;
                report_bytes(progress, done, total.max(done)).await;
            }
        }
        if let Some(size) = record.size.and_then(|s| u64::try_from(s).ok())
            && size != done
        {
            return Err(Error::Transport(format!("the download ended after {done} of {size} bytes; try again")));
        }
        // Flushed here; synced to disk when the temp file is persisted.
        file.flush().await.map_err(write_err)?;
        let md5 = hash
            .finish(done)
            .await
            .ok_or_else(|| Error::UnexpectedAnswer("the download could not be hashed".into()))?;
        report_bytes(progress, done, total.max(done)).await;
        Ok((done, md5))
    }

    /// The artifact named by the sidecar of `path`, if the file is unchanged and the
    /// artifact still exists; else the file's MD5 when it had to be computed.
    async fn deduplicate(&self, path: &Path) -> Result<std::result::Result<Artifact, Option<String>>> {
        let Some(sidecar) = sidecar_path(path) else { return Ok(Err(None)) };
        let Ok(text) = tokio::fs::read_to_string(&sidecar).await else { return Ok(Err(None)) };
        let Some((md5, urn)) = parse_sidecar(&text) else {
            tracing::info!(sidecar = %sidecar.display(), "ignoring a malformed dedup sidecar");
            return Ok(Err(None));
        };
        let current = md5_file(path).await?;
        if current != md5 {
            return Ok(Err(Some(current)));
        }
        match self.get_artifact(&urn).await {
            Ok(artifact) => Ok(Ok(artifact)),
            Err(Error::NotFound { .. }) => {
                tracing::info!(%urn, "the sidecar's artifact is gone; uploading again");
                Ok(Err(Some(current)))
            }
            Err(e) => Err(e),
        }
    }
}

/// The `Upload-Offset` header of a TUS answer.
fn offset_header(resp: &reqwest::Response) -> Result<u64> {
    resp.headers()
        .get("Upload-Offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| Error::UnexpectedAnswer("the upload answer has no valid Upload-Offset header".into()))
}

/// The body of one chunk: streamed from the file (and fed to `hash` on the way) or cut
/// from bytes.
async fn chunk_body(source: &UploadSource, offset: u64, len: u64, hash: Option<Md5Feed>) -> Result<Body> {
    match source {
        UploadSource::Bytes(bytes) => {
            let start = usize::try_from(offset).unwrap_or(usize::MAX);
            let end = usize::try_from(offset + len).unwrap_or(usize::MAX);
            Ok(Body::from(bytes.get(start..end).unwrap_or_default().to_vec()))
        }
        UploadSource::File(path) => {
            let open_err = |e| Error::io(format!("cannot read {}", path.display()), e);
            let mut file = tokio::fs::File::open(path).await.map_err(open_err)?;
            file.seek(std::io::SeekFrom::Start(offset)).await.map_err(open_err)?;
            let mut at = offset;
            let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), IO_BUFFER).then(move |piece| {
                let (here, feed) = (at, hash.clone());
                if let Ok(bytes) = &piece {
                    at += bytes.len() as u64;
                }
                async move {
                    if let (Ok(bytes), Some(feed)) = (&piece, feed) {
                        feed.feed(here, bytes.clone()).await;
                    }
                    piece
                }
            });
            Ok(Body::wrap_stream(stream))
        }
    }
}

#[async_trait::async_trait]
impl ArtifactsBackend for PlatformBackend {
    async fn upload_artifact(&self, req: &UploadRequest, progress: &dyn Progress) -> Result<Uploaded> {
        let mut known_md5 = None;
        let total = match &req.source {
            UploadSource::Bytes(bytes) => bytes.len() as u64,
            UploadSource::File(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
                if !req.force {
                    match self.deduplicate(path).await? {
                        Ok(artifact) => {
                            // No POST, so no X-Collection: add the membership the way the SDK does.
                            if let Some(collection) = &req.collection {
                                self.add_member(collection, &artifact.id).await?;
                            }
                            return Ok(Uploaded { artifact, deduplicated: true });
                        }
                        Err(md5) => known_md5 = md5,
                    }
                }
                meta.len()
            }
        };
        let created = self.create_artifact(req, total).await?;
        let blob = blob_path(created.data_href.as_deref(), &created.id);
        let streamed_md5 = self.send_chunks(&blob, &created.id, &req.source, total, progress).await?;
        let artifact = self.get_artifact(&created.id).await?;
        if let UploadSource::File(path) = &req.source {
            let md5 = match known_md5.or(streamed_md5) {
                Some(md5) => md5,
                None => md5_file(path).await?,
            };
            if let Some(sidecar) = sidecar_path(path) {
                let text = sidecar_text(&md5, &artifact.id);
                if let Err(e) = blocking(move || write_atomic(&sidecar, text.as_bytes())).await {
                    tracing::warn!(error = %e, "uploaded, but could not write the dedup sidecar");
                }
            }
        }
        Ok(Uploaded { artifact, deduplicated: false })
    }

    async fn get_artifact(&self, id: &str) -> Result<Artifact> {
        Ok(self.artifact_record(id).await?.into())
    }

    async fn list_artifacts(&self, options: &ListOptions, page: &PageRequest) -> Result<Page<Artifact>> {
        let page: Page<ArtifactStatusRt> = self
            .get_list("/1/artifacts", &options.wire(), page, Target { kind: Missing::Resource, id: "/1/artifacts" })
            .await?;
        Ok(page.map(Into::into))
    }

    async fn download_artifact(&self, id: &str, to: &DownloadTarget, progress: &dyn Progress) -> Result<Downloaded> {
        let checked = to.clone();
        blocking(move || checked.check()).await?;
        let record = self.artifact_record(id).await?;
        let dst = to.clone();
        let mut tmp = blocking(move || dst.temp_file()).await?;
        let handle = tmp.file().try_clone().map_err(|e| Error::io("cannot open the download's temp file", e))?;
        let mut file = tokio::fs::File::from_std(handle);
        let (size, md5) = self.stream_blob(&record, &mut file, progress).await?;
        drop(file);
        let target = to.clone();
        blocking(move || target.persist(tmp)).await?;
        Ok(Downloaded { artifact: record.into(), path: to.path.clone(), size, md5 })
    }

    async fn read_artifact(&self, id: &str, max_bytes: u64) -> Result<InlineBytes> {
        let record = self.artifact_record(id).await?;
        if record.size.and_then(|s| u64::try_from(s).ok()).is_some_and(|s| s > max_bytes) {
            return Ok(InlineBytes { artifact: record.into(), bytes: None });
        }
        let blob = blob_path(record.data_href.as_deref(), &record.id);
        let target = Target { kind: Missing::Artifact, id: &record.id };
        let resp = self.send(target, true, &|| self.request(Method::GET, &blob)).await?;
        let mut stream = resp.bytes_stream();
        let mut out = Vec::new();
        while let Some(piece) = stream.next().await {
            let bytes = piece.map_err(|e| Error::Transport(e.without_url().to_string()))?;
            metrics::transfer(Direction::Download, bytes.len() as u64);
            if (out.len() + bytes.len()) as u64 > max_bytes {
                return Ok(InlineBytes { artifact: record.into(), bytes: None });
            }
            out.extend_from_slice(&bytes);
        }
        let mut artifact: Artifact = record.into();
        artifact.size = artifact.size.or(Some(out.len() as u64));
        Ok(InlineBytes { artifact, bytes: Some(out) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::platform::{ListRt, fixtures};

    #[test]
    fn data_href_path_goes_on_our_base() {
        assert_eq!(
            blob_path(Some("https://evil.example/1/artifacts/urn:ivcap:artifact:1/blob?sig=x"), "urn:ivcap:artifact:1"),
            "/1/artifacts/urn:ivcap:artifact:1/blob"
        );
        assert_eq!(blob_path(None, "urn:ivcap:artifact:1"), "/1/artifacts/urn%3Aivcap%3Aartifact%3A1/blob");
        assert_eq!(blob_path(Some("/relative"), "urn:a:b"), "/1/artifacts/urn%3Aa%3Ab/blob");
    }

    #[test]
    fn ids_are_checked() {
        assert!(check_id("urn:file:///x").unwrap_err().to_string().contains("local-mode"));
        assert!(check_id("abc").unwrap_err().to_string().contains("list_artifacts"));
        assert_eq!(check_id(" urn:ivcap:artifact:1 ").unwrap(), "urn:ivcap:artifact:1");
    }

    #[test]
    fn captured_artifact_payloads_decode() {
        let created: ArtifactUploadRt2 = fixtures::decode("artifacts/create.json");
        assert_eq!(blob_path(created.data_href.as_deref(), &created.id), format!("/1/artifacts/{}/blob", created.id));
        let read: Artifact = fixtures::decode::<ArtifactStatusRt>("artifacts/read.json").into();
        assert_eq!((read.status, read.size), (ArtifactStatus::Ready, Some(1234)));
        assert_eq!(read.created_at.map(crate::time::format).as_deref(), Some("1996-12-20T00:39:57Z"));
        let list: ListRt<ArtifactStatusRt> = fixtures::decode("artifacts/list.json");
        let page = list.into_page(None).unwrap().map(Artifact::from);
        assert_eq!(page.items[0].name.as_deref(), Some("my-file.txt"));
    }

    #[test]
    fn a_captured_tus_head_gives_the_offset() {
        #[derive(serde::Deserialize)]
        struct Head {
            status: u16,
            headers: std::collections::BTreeMap<String, String>,
        }
        let head: Head = serde_json::from_slice(&fixtures::bytes("artifacts/tus-head.json")).unwrap();
        let mut answer = axum::http::Response::builder().status(head.status);
        for (name, value) in &head.headers {
            answer = answer.header(name, value);
        }
        let resp = reqwest::Response::from(answer.body(Vec::<u8>::new()).unwrap());
        assert_eq!(offset_header(&resp).unwrap(), 3_145_851);
    }
}
