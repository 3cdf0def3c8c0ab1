//! Artifact transfer: 256 MiB up and down through the server vs. the same transfer done
//! with a plain HTTP client, and the server's peak memory.
//!
//! Method: start the stand-in IVCAP on loopback in this process and write a 256 MiB file of
//! pseudo-random bytes to a temp folder. Then, `RUNS` times, interleaved:
//! - **raw**: reqwest directly — `POST /1/artifacts`, TUS `PATCH`es of 8 MiB streamed from the
//!   file (the server's default chunk size), then `GET` of the blob streamed to a file and
//!   fsynced;
//! - **equal work**: the same plain client doing the work the server must do: MD5 of every
//!   byte while it sends (the dedup sidecar), and MD5 of every byte received before the fsync
//!   (the result's MD5);
//! - **server**: the release `ivcap-mcp` binary in platform mode over stdio, timed around the
//!   `upload_artifact {path, force: true}` and `download_artifact {path, overwrite: true}`
//!   tool calls (which also hash the bytes for the dedup sidecar and the result's MD5, check
//!   the path rule, and fsync the download).
//!
//! Each run's artifacts are removed from the stand-in afterwards. Prints the median
//! throughput of each, the server/equal-work and server/raw ratios, and the server process's peak RSS (VmHWM from
//! /proc/<pid>/status) after all transfers. Targets: ratio >= 80 %, peak RSS < 64 MiB.
//! Also prints the speed of MD5 alone over the same bytes (one thread, in memory): the
//! server must hash every byte it uploads (for the dedup sidecar) and downloads (for the
//! result's MD5), so on a busy machine that rate bounds what the server can reach.
//! Run: `cargo bench --bench artifact_transfer`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::panic)]

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use ivcap_standin::{StandIn, TOKEN};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

const SIZE: u64 = 256 << 20;
const CHUNK: u64 = 8 << 20;
const RUNS: usize = 3;

fn write_data(path: &Path) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut buf = Vec::with_capacity(SIZE as usize);
    while (buf.len() as u64) < SIZE {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf.extend_from_slice(&x.to_le_bytes());
    }
    std::fs::write(path, &buf).unwrap();
}

/// Plain reqwest upload: create, then 8 MiB PATCHes streamed from the file, hashing every
/// byte sent with MD5 when `hash`. Returns the artifact id and the blob URL.
async fn raw_upload(http: &reqwest::Client, base: &str, file: &Path, hash: bool) -> (String, String) {
    let hasher = std::sync::Arc::new(std::sync::Mutex::new(md5::Md5::default()));
    let created: Value = http
        .post(format!("{base}/1/artifacts"))
        .bearer_auth(TOKEN)
        .header("X-Content-Type", "application/octet-stream")
        .header("X-Content-Length", SIZE.to_string())
        .header("Tus-Resumable", "1.0.0")
        .body(Vec::new())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let href = created["data-href"].as_str().unwrap().to_string();
    let mut offset = 0;
    while offset < SIZE {
        let len = CHUNK.min(SIZE - offset);
        let mut f = tokio::fs::File::open(file).await.unwrap();
        f.seek(std::io::SeekFrom::Start(offset)).await.unwrap();
        let hashing = hasher.clone();
        let chunks = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 << 10).map(move |piece| {
            if hash && let Ok(bytes) = &piece {
                md5::Digest::update(&mut *hashing.lock().unwrap(), bytes);
            }
            piece
        });
        let body = reqwest::Body::wrap_stream(chunks);
        let resp = http
            .patch(&href)
            .bearer_auth(TOKEN)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .header("Content-Length", len.to_string())
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 204);
        offset += len;
    }
    if hash {
        let digest = md5::Digest::finalize(std::mem::take(&mut *hasher.lock().unwrap()));
        assert_eq!(digest.len(), 16);
    }
    (id, href)
}

/// Plain reqwest download of the blob, streamed to `dest` (hashing every byte with MD5 when
/// `hash`) and fsynced.
async fn raw_download(http: &reqwest::Client, href: &str, dest: &Path, hash: bool) {
    let resp = http.get(href).bearer_auth(TOKEN).send().await.unwrap();
    let mut out = tokio::fs::File::create(dest).await.unwrap();
    let mut stream = resp.bytes_stream();
    let mut n = 0u64;
    let mut hasher = md5::Md5::default();
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        n += piece.len() as u64;
        if hash {
            md5::Digest::update(&mut hasher, &piece);
        }
        out.write_all(&piece).await.unwrap();
    }
    assert_eq!(md5::Digest::finalize(hasher).len(), 16);
    out.sync_all().await.unwrap();
    assert_eq!(n, SIZE);
}

fn mib_per_s(d: Duration) -> f64 {
    (SIZE as f64 / (1 << 20) as f64) / d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let standin = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.bin");
    write_data(&data);
    let http = reqwest::Client::new();

    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ivcap-mcp"));
    cmd.current_dir(dir.path())
        .env_remove("IVCAP_BASE_URL")
        .env_remove("IVCAP_LOCAL_DIR")
        .env("IVCAP_URL", standin.base_url())
        .env("IVCAP_JWT", TOKEN)
        .env("RUST_LOG", "warn");
    let (transport, _) = TokioChildProcess::builder(cmd).stderr(Stdio::inherit()).spawn().unwrap();
    let pid = transport.id().unwrap();
    let client = ().serve(transport).await.unwrap();
    let call = |name: &'static str, args: Value| {
        let Value::Object(map) = args else { unreachable!() };
        client.call_tool(CallToolRequestParams::new(name).with_arguments(map))
    };

    let (mut raw_up, mut raw_down, mut srv_up, mut srv_down) = (vec![], vec![], vec![], vec![]);
    let (mut eq_up, mut eq_down) = (vec![], vec![]);
    for run in 0..RUNS {
        for (hash, up, down) in [(false, &mut raw_up, &mut raw_down), (true, &mut eq_up, &mut eq_down)] {
            let t = Instant::now();
            let (id, href) = raw_upload(&http, standin.base_url(), &data, hash).await;
            up.push(t.elapsed());
            let t = Instant::now();
            raw_download(&http, &href, &dir.path().join("raw-copy.bin"), hash).await;
            down.push(t.elapsed());
            standin.remove_artifact(&id);
        }

        let t = Instant::now();
        let up = call("upload_artifact", json!({"path": "data.bin", "force": true})).await.unwrap();
        srv_up.push(t.elapsed());
        assert_ne!(up.is_error, Some(true), "{up:?}");
        let id = up.structured_content.unwrap()["id"].as_str().unwrap().to_string();
        let t = Instant::now();
        let down = call("download_artifact", json!({"artifact_id": id, "path": "srv-copy.bin", "overwrite": true}))
            .await
            .unwrap();
        srv_down.push(t.elapsed());
        assert_ne!(down.is_error, Some(true), "{down:?}");
        assert_eq!(std::fs::metadata(dir.path().join("srv-copy.bin")).unwrap().len(), SIZE);
        standin.remove_artifact(&id);
        eprintln!("run {run} done");
    }
    let hwm = vm_hwm_kib(pid);
    let bytes = std::fs::read(&data).unwrap();
    let t = Instant::now();
    let digest = {
        use md5::Digest;
        md5::Md5::digest(&bytes)
    };
    let md5_time = t.elapsed();
    assert_eq!(digest.len(), 16);
    client.cancel().await.unwrap();

    let (ru, rd, su, sd) = (median(raw_up), median(raw_down), median(srv_up), median(srv_down));
    let (eu, ed) = (median(eq_up), median(eq_down));
    let ratio = |base: Duration, server: Duration| 100.0 * base.as_secs_f64() / server.as_secs_f64();
    println!("artifact transfer, 256 MiB over loopback, median of {RUNS} runs:");
    println!(
        "  upload:   server {:.0} MiB/s; equal work (MD5 while sending) {:.0} MiB/s, ratio {:.0} %; raw reqwest {:.0} MiB/s, ratio {:.0} %",
        mib_per_s(su),
        mib_per_s(eu),
        ratio(eu, su),
        mib_per_s(ru),
        ratio(ru, su)
    );
    println!(
        "  download: server {:.0} MiB/s; equal work (MD5 + fsync) {:.0} MiB/s, ratio {:.0} %; raw reqwest (fsync) {:.0} MiB/s, ratio {:.0} %",
        mib_per_s(sd),
        mib_per_s(ed),
        ratio(ed, sd),
        mib_per_s(rd),
        ratio(rd, sd)
    );
    println!("  server peak RSS (VmHWM): {:.1} MiB", hwm as f64 / 1024.0);
    println!("  MD5 alone over the same bytes (one thread): {:.0} MiB/s", mib_per_s(md5_time));
}
