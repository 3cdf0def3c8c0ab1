//! Artifacts over the real binary: chunked resumable uploads and streamed downloads against
//! the stand-in, the dedup sidecar, inline text and image downloads, the `--allow-path`
//! rule, and local mode on a store laid out as the Python SDK's `LocalIVCAP` lays it out.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ivcap_standin::{Fault, FaultAction, StandIn, TOKEN};
use md5::{Digest, Md5};
use rmcp::model::ProgressNotificationParam;
use serde_json::{Value, json};

use crate::common::{Env, all_pages, both_modes, call, err, in_process, local, ok, platform, spawn, texts};

both_modes!(artifacts_are_uploaded_read_listed_and_downloaded, artifacts_are_filtered_ordered_and_timed);

/// The artifacts contract, on both modes. Ids differ in form for real (`urn:ivcap:artifact:…`
/// on the platform, `urn:file://…` locally), so the missing id is each mode's own.
async fn artifacts_are_uploaded_read_listed_and_downloaded(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let text = "a,b\n1,2\n";
    let up = ok(&call(c, "upload_artifact", json!({"content": text, "name": "report.csv"})).await);
    let id = up["id"].as_str().unwrap().to_string();
    assert_eq!((up["status"].as_str(), up["size"].as_u64()), (Some("ready"), Some(8)), "{up}");
    assert_eq!((up["mime_type"].as_str(), up["deduplicated"].as_bool()), (Some("text/csv"), Some(false)));

    let got = ok(&call(c, "get_artifact", json!({"artifact_id": id})).await);
    assert_eq!(
        (got["name"].as_str(), got["size"].as_u64(), got["status"].as_str()),
        (Some("report.csv"), Some(8), Some("ready"))
    );
    let created = got["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'), "{created}");
    let listed = ok(&call(c, "list_artifacts", json!({})).await);
    assert!(listed["items"].as_array().unwrap().iter().any(|a| a["id"] == id.as_str()), "{listed}");

    let inline = ok(&call(c, "download_artifact", json!({"artifact_id": id})).await);
    assert_eq!((inline["delivered"].as_str(), inline["text"].as_str()), (Some("text"), Some(text)));
    let saved = ok(&call(c, "download_artifact", json!({"artifact_id": id, "path": "copy.csv"})).await);
    assert_eq!(saved["md5"].as_str(), Some(md5_hex(text.as_bytes()).as_str()));
    assert_eq!(std::fs::read_to_string(env.dir.path().join("copy.csv")).unwrap(), text);
    let again = err(&call(c, "download_artifact", json!({"artifact_id": id, "path": "copy.csv"})).await);
    assert!(again.contains("overwrite: true"), "{again}");
    ok(&call(c, "download_artifact", json!({"artifact_id": id, "path": "copy.csv", "overwrite": true})).await);
    assert_eq!(
        std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter(|e| { e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".part") })
            .count(),
        0,
        "no temp file left"
    );

    let missing = if env.on_platform() {
        "urn:ivcap:artifact:00000000-0000-4000-8000-000000000000".to_string()
    } else {
        format!("urn:file://{}/artifacts/missing.csv", env.store.canonicalize().unwrap().display())
    };
    let missing = err(&call(c, "get_artifact", json!({"artifact_id": missing})).await);
    assert!(missing.contains("no such artifact") && missing.contains("list_artifacts"), "{missing}");
}

const MIB: usize = 1 << 20;

/// `n` deterministic, incompressible-looking bytes.
fn pattern(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn sidecar(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(format!(".ivcap-{file}.txt"))).unwrap()
}

#[tokio::test]
async fn platform_uploads_20_mib_in_chunks_and_downloads_it_intact() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(20 * MIB, 1);
    std::fs::write(dir.path().join("big data.bin"), &data).unwrap();
    let client = platform(&s, dir.path()).await;

    let up = ok(&call(&client, "upload_artifact", json!({"path": "big data.bin"})).await);
    let id = up["id"].as_str().unwrap().to_string();
    assert_eq!((up["status"].as_str(), up["size"].as_u64()), (Some("ready"), Some(20 * MIB as u64)));
    assert_eq!((up["deduplicated"].as_bool(), up["name"].as_str()), (Some(false), Some("big data.bin")));
    assert_eq!(s.artifact(&id).unwrap().data, data, "the stand-in holds every byte in order");

    let create = &s.requests_to(Method::POST, "/1/artifacts")[0];
    assert_eq!(create.header("x-name"), Some(STANDARD.encode("big data.bin")));
    assert_eq!(create.header("x-content-type").as_deref(), Some("application/octet-stream"));
    assert_eq!(create.header("x-content-length"), Some((20 * MIB).to_string()));
    assert_eq!(create.header("tus-resumable").as_deref(), Some("1.0.0"));
    let patches = s.requests_to(Method::PATCH, "/1/artifacts/");
    let offsets: Vec<String> = patches.iter().map(|r| r.header("upload-offset").unwrap()).collect();
    assert_eq!(offsets, ["0", &(8 * MIB).to_string(), &(16 * MIB).to_string()], "8 MiB chunks");
    assert!(patches.iter().all(|r| r.header("content-type").as_deref() == Some("application/offset+octet-stream")));
    assert_eq!(patches[2].header("content-length"), Some((4 * MIB).to_string()));
    assert!(patches.iter().all(|r| r.header("authorization").as_deref() == Some("Bearer test-token")));
    assert_eq!(sidecar(dir.path(), "big data.bin"), format!("{}|{id}\n", md5_hex(&data)));

    let down = ok(&call(&client, "download_artifact", json!({"artifact_id": id, "path": "copy.bin"})).await);
    assert_eq!(down["md5"].as_str(), Some(md5_hex(&data).as_str()));
    assert_eq!((down["size"].as_u64(), down["delivered"].as_str()), (Some(20 * MIB as u64), Some("file")));
    assert_eq!(md5_hex(&std::fs::read(dir.path().join("copy.bin")).unwrap()), md5_hex(&data));

    let again = err(&call(&client, "download_artifact", json!({"artifact_id": id, "path": "copy.bin"})).await);
    assert!(again.contains("overwrite: true"), "{again}");
    ok(&call(&client, "download_artifact", json!({"artifact_id": id, "path": "copy.bin", "overwrite": true})).await);
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "no temp files: {leftovers:?}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_resumes_after_a_connection_dropped_mid_chunk() {
    let s = StandIn::start().await;
    s.drop_patch_after(3 * MIB as u64 + 123);
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(20 * MIB, 2);
    std::fs::write(dir.path().join("a.bin"), &data).unwrap();
    let client = platform(&s, dir.path()).await;

    let up = ok(&call(&client, "upload_artifact", json!({"path": "a.bin"})).await);
    let id = up["id"].as_str().unwrap();
    assert_eq!(up["status"], "ready");
    assert_eq!(md5_hex(&s.artifact(id).unwrap().data), md5_hex(&data), "intact after the drop");
    assert_eq!(s.requests_to(Method::HEAD, "/1/artifacts/").len(), 1, "resynced once with HEAD");
    let offsets: Vec<String> =
        s.requests_to(Method::PATCH, "/1/artifacts/").iter().map(|r| r.header("upload-offset").unwrap()).collect();
    assert_eq!(offsets[1], (3 * MIB + 123).to_string(), "resumed from the server's offset, not from 0: {offsets:?}");
    assert_eq!(sidecar(dir.path(), "a.bin"), format!("{}|{id}\n", md5_hex(&data)));
}

#[tokio::test]
async fn platform_resumes_after_a_503_and_a_409_on_patch() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(20 * MIB, 3);
    std::fs::write(dir.path().join("b.bin"), &data).unwrap();
    let client = platform(&s, dir.path()).await;
    s.fault(Fault::status(Some(Method::PATCH), "/1/artifacts/", 503));
    let up = ok(&call(&client, "upload_artifact", json!({"path": "b.bin"})).await);
    assert_eq!(s.artifact(up["id"].as_str().unwrap()).unwrap().data, data);
    assert_eq!(s.requests_to(Method::HEAD, "/1/artifacts/").len(), 1);

    s.clear_requests();
    s.fault(Fault::status(Some(Method::PATCH), "/1/artifacts/", 409));
    // (Inline content must fit one MCP message, so this one is smaller.)
    let small = &data[..2 * MIB];
    let up =
        ok(&call(&client, "upload_artifact", json!({"content_base64": STANDARD.encode(small), "name": "c"})).await);
    assert_eq!(s.artifact(up["id"].as_str().unwrap()).unwrap().data, small);
    assert_eq!(s.requests_to(Method::HEAD, "/1/artifacts/").len(), 1, "409 → resync");
}

/// The chunks of one upload as the stand-in saw them: each PATCH's `Upload-Offset`.
fn patch_offsets(s: &StandIn) -> Vec<u64> {
    s.requests_to(Method::PATCH, "/1/artifacts/")
        .iter()
        .map(|r| r.header("upload-offset").unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn platform_resumes_after_a_500_that_came_after_a_partial_write() {
    let s = StandIn::start().await;
    s.fail_patch_after(3 * MIB as u64 + 123, 500);
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(20 * MIB, 4);
    std::fs::write(dir.path().join("p.bin"), &data).unwrap();
    let client = platform(&s, dir.path()).await;

    let up = ok(&call(&client, "upload_artifact", json!({"path": "p.bin"})).await);
    let id = up["id"].as_str().unwrap();
    assert_eq!(up["status"], "ready");
    assert_eq!(md5_hex(&s.artifact(id).unwrap().data), md5_hex(&data), "intact after the 500");
    assert_eq!(s.requests_to(Method::HEAD, "/1/artifacts/").len(), 1, "resynced once with HEAD");
    let offsets = patch_offsets(&s);
    assert_eq!(offsets[..2], [0, 3 * MIB as u64 + 123], "resumed from the bytes the server kept: {offsets:?}");
    assert_eq!(sidecar(dir.path(), "p.bin"), format!("{}|{id}\n", md5_hex(&data)));
}

#[tokio::test]
async fn platform_resumes_after_a_500_with_nothing_written_and_after_a_423() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(10 * MIB, 5);
    std::fs::write(dir.path().join("q.bin"), &data).unwrap();
    let client = platform(&s, dir.path()).await;
    for status in [500, 423] {
        s.clear_requests();
        s.fail_patch_after(0, status);
        let up = ok(&call(&client, "upload_artifact", json!({"path": "q.bin", "force": true})).await);
        assert_eq!(s.artifact(up["id"].as_str().unwrap()).unwrap().data, data, "{status}");
        assert_eq!(s.requests_to(Method::HEAD, "/1/artifacts/").len(), 1, "{status}: resynced once");
        assert_eq!(patch_offsets(&s), [0, 0, 8 * MIB as u64], "{status}: the first chunk again from 0");
    }
}

#[tokio::test]
async fn platform_resyncs_after_the_stand_ins_own_409_offset_mismatch() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(10 * MIB, 6);
    std::fs::write(dir.path().join("r.bin"), &data).unwrap();
    let client = platform(&s, dir.path()).await;
    // A chunk fails after a partial write, and the first HEAD reads a stale offset (as a
    // lagging replica would): the PATCH from there meets the stand-in's offset check.
    let kept = 3 * MIB as u64 + 7;
    s.fail_patch_after(kept, 500);
    let stale = FaultAction::Respond {
        status: 200,
        headers: vec![("Upload-Offset".into(), "0".into()), ("Tus-Resumable".into(), "1.0.0".into())],
        body: String::new(),
    };
    s.fault(Fault::on(Some(Method::HEAD), "/1/artifacts/", stale));

    let up = ok(&call(&client, "upload_artifact", json!({"path": "r.bin"})).await);
    assert_eq!(s.artifact(up["id"].as_str().unwrap()).unwrap().data, data, "intact after the 409");
    assert_eq!(s.requests_to(Method::HEAD, "/1/artifacts/").len(), 2, "stale HEAD, 409, HEAD again");
    assert_eq!(patch_offsets(&s), [0, 0, kept], "the rest in one chunk from the true offset");
}

#[tokio::test]
async fn platform_does_not_resume_after_a_final_client_error() {
    let s = StandIn::start().await;
    let client = crate::common::platform_fast_retries(&s).await;
    s.fail_patch_after(0, 400);
    let refused = err(&call(&client, "upload_artifact", json!({"content": "x", "name": "e.txt"})).await);
    assert!(refused.contains("400"), "{refused}");
    assert_eq!(s.requests_to(Method::PATCH, "/1/artifacts/").len(), 1, "a 400 is final");
    assert!(s.requests_to(Method::HEAD, "/1/artifacts/").is_empty());
}

#[tokio::test]
async fn platform_upload_gives_up_when_chunks_keep_failing() {
    let s = StandIn::start().await;
    let client = crate::common::platform_fast_retries(&s).await;
    s.fault(Fault::status(Some(Method::PATCH), "/1/artifacts/", 503).times(100));
    let busy = err(&call(&client, "upload_artifact", json!({"content": "x", "name": "d.txt"})).await);
    assert!(
        busy.contains("busy") && busy.contains("5 attempts") && busy.contains("uploading bytes 0..1 of 1"),
        "{busy}"
    );
    assert_eq!(
        s.requests_to(Method::PATCH, "/1/artifacts/").len(),
        5,
        "the same classification and policy as requests"
    );
}

#[tokio::test]
async fn platform_dedup_sidecar_is_byte_exact_and_reused() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/report.csv"), b"a,b\n1,2\n").unwrap();
    let client = platform(&s, dir.path()).await;

    let first = ok(&call(&client, "upload_artifact", json!({"path": "data/report.csv"})).await);
    let id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["mime_type"], "text/csv");
    let expected = format!("{}|{id}\n", md5_hex(b"a,b\n1,2\n"));
    assert_eq!(sidecar(&dir.path().join("data"), "report.csv"), expected);

    let second = ok(&call(&client, "upload_artifact", json!({"path": "data/report.csv"})).await);
    assert_eq!((second["id"].as_str(), second["deduplicated"].as_bool()), (Some(id.as_str()), Some(true)));
    assert_eq!(s.requests_to(Method::POST, "/1/artifacts").len(), 1, "nothing uploaded again");
    assert_eq!(s.requests_to(Method::GET, &format!("/1/artifacts/{id}")).len(), 2, "checked it still exists");

    // The Go CLI writes no trailing newline; that is accepted too.
    std::fs::write(dir.path().join("data/.ivcap-report.csv.txt"), expected.trim_end()).unwrap();
    let cli_style = ok(&call(&client, "upload_artifact", json!({"path": "data/report.csv"})).await);
    assert_eq!(cli_style["deduplicated"], true);

    let forced = ok(&call(&client, "upload_artifact", json!({"path": "data/report.csv", "force": true})).await);
    assert_ne!(forced["id"].as_str(), Some(id.as_str()));
    assert_eq!(forced["deduplicated"], false);

    // A changed file is uploaded again and the sidecar rewritten.
    std::fs::write(dir.path().join("data/report.csv"), b"a,b\n3,4\n").unwrap();
    let changed = ok(&call(&client, "upload_artifact", json!({"path": "data/report.csv"})).await);
    assert_eq!(changed["deduplicated"], false);
    let changed_id = changed["id"].as_str().unwrap();
    assert_eq!(sidecar(&dir.path().join("data"), "report.csv"), format!("{}|{changed_id}\n", md5_hex(b"a,b\n3,4\n")));

    // A malformed sidecar is ignored.
    std::fs::write(dir.path().join("data/.ivcap-report.csv.txt"), "garbage").unwrap();
    let after_garbage = ok(&call(&client, "upload_artifact", json!({"path": "data/report.csv"})).await);
    assert_eq!(after_garbage["deduplicated"], false);
}

#[tokio::test]
async fn platform_reuploads_when_the_sidecar_artifact_is_gone() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.json"), b"{\"k\":1}").unwrap();
    let client = platform(&s, dir.path()).await;
    let first = ok(&call(&client, "upload_artifact", json!({"path": "f.json"})).await);
    let old = first["id"].as_str().unwrap();
    s.remove_artifact(old);

    let second = ok(&call(&client, "upload_artifact", json!({"path": "f.json"})).await);
    let new = second["id"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(second["deduplicated"], false);
    assert_eq!(sidecar(dir.path(), "f.json"), format!("{}|{new}\n", md5_hex(b"{\"k\":1}")));
    assert_eq!(s.artifact(new).unwrap().data, b"{\"k\":1}");
}

#[tokio::test]
async fn platform_empty_uploads_send_no_patch() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.txt"), b"").unwrap();
    let client = platform(&s, dir.path()).await;
    let up = ok(&call(&client, "upload_artifact", json!({"path": "empty.txt"})).await);
    assert_eq!((up["size"].as_u64(), up["status"].as_str()), (Some(0), Some("pending")));
    assert!(s.requests_to(Method::PATCH, "/1/artifacts/").is_empty());
    assert_eq!(s.requests_to(Method::POST, "/1/artifacts")[0].header("x-content-length").as_deref(), Some("0"));
    let down = ok(&call(&client, "download_artifact", json!({"artifact_id": up["id"], "path": "e2.txt"})).await);
    assert_eq!(down["md5"], md5_hex(b""));
}

#[tokio::test]
async fn platform_inline_downloads_give_text_and_images() {
    let s = StandIn::start().await;
    let text_id = s.add_artifact("notes.txt", "text/plain", "héllo\nworld".as_bytes());
    let png = pattern(2000, 4);
    let png_id = s.add_artifact("plot.png", "image/png", &png);
    let bin_id = s.add_artifact("blob.bin", "application/octet-stream", &[0, 1, 2]);
    let big_id = s.add_artifact("big.txt", "text/plain", &vec![b'a'; 2 * MIB]);
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;

    let text = ok(&call(&client, "download_artifact", json!({"artifact_id": text_id})).await);
    assert_eq!((text["delivered"].as_str(), text["text"].as_str()), (Some("text"), Some("héllo\nworld")));

    let image = call(&client, "download_artifact", json!({"artifact_id": png_id})).await;
    assert_eq!(ok(&image)["delivered"], "image");
    let block = image.content[0].as_image().expect("image content first");
    assert_eq!((block.mime_type.as_str(), STANDARD.decode(&block.data).unwrap()), ("image/png", png));

    let binary = ok(&call(&client, "download_artifact", json!({"artifact_id": bin_id})).await);
    assert_eq!(binary["delivered"], "none");
    assert!(binary["note"].as_str().unwrap().contains("with path"), "{binary}");

    let big = ok(&call(&client, "download_artifact", json!({"artifact_id": big_id})).await);
    assert_eq!(big["delivered"], "none");
    assert!(big["note"].as_str().unwrap().contains("max_inline_bytes"), "{big}");

    let cut =
        ok(&call(&client, "download_artifact", json!({"artifact_id": big_id, "max_inline_bytes": 4 * MIB})).await);
    assert_eq!((cut["delivered"].as_str(), cut["truncated"].as_bool()), (Some("text"), Some(true)));
    assert!(serde_json::to_string(&cut).unwrap().len() <= 20_000, "within the output budget");

    let meta = ok(&call(&client, "get_artifact", json!({"artifact_id": text_id})).await);
    assert_eq!((meta["name"].as_str(), meta["status"].as_str()), (Some("notes.txt"), Some("ready")));
    let missing = err(&call(&client, "get_artifact", json!({"artifact_id": "urn:ivcap:artifact:nope"})).await);
    assert!(missing.contains("no such artifact") && missing.contains("list_artifacts"), "{missing}");
}

#[tokio::test]
async fn platform_lists_artifacts_across_pages() {
    let s = StandIn::start().await;
    for i in 0..3 {
        s.add_artifact(&format!("a{i}.txt"), "text/plain", b"x");
    }
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let first = ok(&call(&client, "list_artifacts", json!({"limit": 2})).await);
    let names: Vec<&str> = first["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["a2.txt", "a1.txt"], "newest first");
    let second = ok(&call(&client, "list_artifacts", json!({"limit": 2, "page": first["next_page"]})).await);
    assert_eq!((second["items"][0]["name"].as_str(), &second["next_page"]), (Some("a0.txt"), &Value::Null));
}

#[tokio::test]
async fn paths_outside_the_allowed_folders_are_refused() {
    let s = StandIn::start().await;
    let id = s.add_artifact("x.txt", "text/plain", b"x");
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), b"s").unwrap();
    let secret = outside.path().join("secret.txt");
    let target = outside.path().join("out.txt");

    let client = platform(&s, dir.path()).await;
    let refused = err(&call(&client, "upload_artifact", json!({"path": secret})).await);
    assert!(refused.contains("--allow-path") && refused.contains("'path'"), "{refused}");
    let refused = err(&call(&client, "upload_artifact", json!({"path": "../../../etc/passwd"})).await);
    assert!(refused.contains("--allow-path"), "{refused}");
    let refused = err(&call(&client, "download_artifact", json!({"artifact_id": id, "path": target})).await);
    assert!(refused.contains("--allow-path"), "{refused}");
    assert!(s.requests_to(Method::POST, "/1/artifacts").is_empty(), "nothing was sent");
    client.cancel().await.unwrap();

    let allow = outside.path().to_str().unwrap();
    let client =
        spawn(&["--allow-path", allow], &[("IVCAP_URL", s.base_url()), ("IVCAP_JWT", TOKEN)], dir.path()).await;
    ok(&call(&client, "upload_artifact", json!({"path": secret})).await);
    ok(&call(&client, "download_artifact", json!({"artifact_id": id, "path": target})).await);
    assert_eq!(std::fs::read(&target).unwrap(), b"x");
}

#[tokio::test]
async fn upload_arguments_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let client = local(&dir.path().join("store")).await;
    let cases = [
        (json!({}), "exactly one of"),
        (json!({"content": "a", "content_base64": "YQ=="}), "exactly one of"),
        (json!({"content": "a", "collection": "coll"}), "'collection'"),
        (json!({"content": "a", "policy": "urn:x:y"}), "urn:ivcap:policy:"),
        (json!({"content_base64": "***"}), "base64"),
        (json!({"path": "missing.txt"}), "does not exist"),
    ];
    for (args, expected) in cases {
        let message = err(&call(&client, "upload_artifact", args.clone()).await);
        assert!(message.contains(expected), "{args}: {message}");
    }
}

#[tokio::test]
async fn local_mode_reads_and_writes_the_local_ivcap_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    // As the Python SDK's LocalIVCAP leaves it: bytes under <store>/artifacts/<name>.
    std::fs::create_dir_all(store.join("artifacts/sub")).unwrap();
    std::fs::write(store.join("artifacts/sub/data.csv"), b"x,y\n1,2\n").unwrap();
    let client = local(&store).await;
    let canonical = store.canonicalize().unwrap();
    let csv_id = format!("urn:file://{}", canonical.join("artifacts/sub/data.csv").display());

    let listed = ok(&call(&client, "list_artifacts", json!({})).await);
    assert_eq!(listed["items"][0]["id"], csv_id.as_str());
    assert_eq!(listed["items"][0]["mime_type"], "text/csv");
    assert_eq!(
        (listed["items"][0]["name"].as_str(), listed["items"][0]["size"].as_u64()),
        (Some("sub/data.csv"), Some(8))
    );

    let file_form = format!("file://{}", canonical.join("artifacts/sub/data.csv").display());
    let meta = ok(&call(&client, "get_artifact", json!({"artifact_id": file_form})).await);
    assert_eq!(meta["id"], csv_id.as_str());
    let inline = ok(&call(&client, "download_artifact", json!({"artifact_id": csv_id})).await);
    assert_eq!(inline["text"], "x,y\n1,2\n");

    // Uploads land where LocalIVCAP puts them, with the same ids.
    let named = ok(&call(&client, "upload_artifact", json!({"content": "hi", "name": "runs/1/out.txt"})).await);
    assert_eq!(named["id"], format!("urn:file://{}", canonical.join("artifacts/runs/1/out.txt").display()));
    assert_eq!(std::fs::read(store.join("artifacts/runs/1/out.txt")).unwrap(), b"hi");
    std::fs::write(dir.path().join("pic.png"), pattern(100, 5)).unwrap();
    let unnamed = ok(&call(&client, "upload_artifact", json!({"path": "pic.png"})).await);
    assert_eq!(unnamed["name"], "pic.png", "the file name is the default name");
    assert!(store.join("artifacts/pic.png").is_file());
    assert!(!dir.path().join(".ivcap-pic.png.txt").exists(), "no sidecar in local mode");
    let bytes = ok(&call(&client, "upload_artifact", json!({"content_base64": STANDARD.encode([1, 2, 3])})).await);
    let name = bytes["name"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(name).is_ok(), "unnamed content gets a uuid: {name}");

    let down = ok(&call(&client, "download_artifact", json!({"artifact_id": named["id"], "path": "got.txt"})).await);
    assert_eq!((down["md5"].as_str(), down["size"].as_u64()), (Some(md5_hex(b"hi").as_str()), Some(2)));
    assert_eq!(std::fs::read(dir.path().join("got.txt")).unwrap(), b"hi");

    let escape = err(&call(&client, "upload_artifact", json!({"content": "x", "name": "../escape.txt"})).await);
    assert!(escape.contains("would leave the store"), "{escape}");
    let outside = err(&call(&client, "get_artifact", json!({"artifact_id": "urn:file:///etc/passwd"})).await);
    assert!(outside.contains("outside the local store"), "{outside}");
    let all = ok(&call(&client, "list_artifacts", json!({"limit": 50})).await);
    assert_eq!(all["items"].as_array().unwrap().len(), 4);
}

/// Collects progress notifications.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<ProgressNotificationParam>>>);

impl rmcp::ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: rmcp::service::NotificationContext<rmcp::RoleClient>,
    ) {
        self.0.lock().unwrap().push(params);
    }
}

#[tokio::test]
async fn uploads_report_progress_per_chunk() {
    let s = StandIn::start().await;
    let cfg = ivcap_mcp::config::PlatformConfig {
        base_url: s.base_url().to_string(),
        token: Some(ivcap_mcp::config::Secret::new(TOKEN)),
        host_header: None,
        cli_login: None,
    };
    let backend =
        Arc::new(ivcap_mcp::backend::platform::PlatformBackend::new(&cfg).unwrap().with_chunk_size(MIB as u64));
    let recorder = Recorder::default();
    let client = in_process(backend, recorder.clone(), None).await;
    let data = "z".repeat(3 * MIB + 10);
    ok(&call(&client, "upload_artifact", json!({"content": data, "name": "p.txt"})).await);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let seen: Vec<(f64, Option<f64>)> = recorder.0.lock().unwrap().iter().map(|p| (p.progress, p.total)).collect();
    let total = Some((3 * MIB + 10) as f64);
    let mib = MIB as f64;
    assert_eq!(seen, [(mib, total), (2.0 * mib, total), (3.0 * mib, total), ((3 * MIB + 10) as f64, total)]);
}

/// The stand-in itself is as strict as docs/ivcap-wire.md §7/§14 asks: offset checks, content
/// type, deferred length, status progression, HEAD headers.
#[tokio::test]
async fn standin_speaks_tus_strictly() {
    let s = StandIn::start().await;
    let http = ivcap_mcp::http_client().build().unwrap();
    let base = s.base_url();
    let created = http
        .post(format!("{base}/1/artifacts"))
        .bearer_auth(TOKEN)
        .header("X-Name", STANDARD.encode("d.bin"))
        .header("X-Content-Type", "application/octet-stream")
        .header("X-Content-Length", "-1")
        .header("Tus-Resumable", "1.0.0")
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    assert!(created.headers().get("location").is_some());
    assert_eq!(created.headers()["upload-offset"], "0");
    let body: Value = created.json().await.unwrap();
    assert_eq!((body["status"].as_str(), body["name"].as_str()), (Some("pending"), Some("d.bin")));
    let blob = body["data-href"].as_str().unwrap().to_string();
    let id = body["id"].as_str().unwrap().to_string();

    let defer = http.post(&blob).bearer_auth(TOKEN).header("Tus-Resumable", "1.0.0").header("Upload-Defer-Length", "1");
    let defer = defer.send().await.unwrap();
    assert_eq!(defer.status().as_u16(), 201);
    assert!(defer.headers().get("location").is_some());

    let patch = |offset: u64, bytes: &'static [u8], content_type: &'static str| {
        http.patch(&blob)
            .bearer_auth(TOKEN)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", content_type)
            .body(bytes)
    };
    assert_eq!(patch(0, b"abc", "application/octet-stream").send().await.unwrap().status().as_u16(), 415);
    let first = patch(0, b"abc", "application/offset+octet-stream").send().await.unwrap();
    assert_eq!((first.status().as_u16(), &first.headers()["upload-offset"]), (204, &"3".parse().unwrap()));
    assert_eq!(s.artifact(&id).unwrap().status, "partial");
    assert_eq!(patch(0, b"abc", "application/offset+octet-stream").send().await.unwrap().status().as_u16(), 409);
    let last = patch(3, b"de", "application/offset+octet-stream").header("Upload-Length", "5").send().await.unwrap();
    assert_eq!(last.status().as_u16(), 204);
    assert_eq!(s.artifact(&id).unwrap().status, "ready");

    let head = http.head(&blob).bearer_auth(TOKEN).header("Tus-Resumable", "1.0.0").send().await.unwrap();
    assert_eq!(head.headers()["upload-offset"], "5");
    assert_eq!(head.headers()["upload-length"], "5");
    assert_eq!(head.headers()["cache-control"], "no-store");
    let got = http.get(&blob).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"abcde");
    assert_eq!(http.get(&blob).send().await.unwrap().status().as_u16(), 401, "bearer required on the blob");
}

#[tokio::test]
async fn downloads_create_missing_folders_but_only_under_the_allowed_roots() {
    let s = StandIn::start().await;
    let id = s.add_artifact("x.bin", "application/octet-stream", b"payload");
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();

    let client = platform(&s, dir.path()).await;
    let done = ok(&call(&client, "download_artifact", json!({"artifact_id": id, "path": "out/data/copy.bin"})).await);
    assert_eq!(std::fs::read(dir.path().join("out/data/copy.bin")).unwrap(), b"payload", "{done}");
    for path in ["link/new/copy.bin", "out/../../escape/copy.bin"] {
        let refused = err(&call(&client, "download_artifact", json!({"artifact_id": id, "path": path})).await);
        assert!(refused.contains("invalid argument 'path'") && refused.contains("--allow-path"), "{path}: {refused}");
    }
    assert!(!outside.path().join("new").exists(), "no folder made through the symlink");
    assert!(!dir.path().parent().unwrap().join("escape").exists());
    client.cancel().await.unwrap();

    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("artifacts")).unwrap();
    std::fs::write(store.join("artifacts/local.txt"), b"local bytes").unwrap();
    let client = local(&store).await;
    let listed = ok(&call(&client, "list_artifacts", json!({})).await);
    let local_id = listed["items"][0]["id"].clone();
    ok(&call(&client, "download_artifact", json!({"artifact_id": local_id, "path": "store/../fresh/a/b.txt"})).await);
    assert_eq!(std::fs::read(dir.path().join("fresh/a/b.txt")).unwrap(), b"local bytes");
    client.cancel().await.unwrap();
}

/// `filter`, `order_by`, `order_desc` and `at_time` on list_artifacts, in both modes.
async fn artifacts_are_filtered_ordered_and_timed(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    for (name, content) in [("a.txt", "x"), ("b.csv", "yy,zz"), ("c.txt", "ccc")] {
        ok(&call(c, "upload_artifact", json!({"content": content, "name": name})).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = all_pages(c, "list_artifacts", json!({"order_by": "name"})).await;
    let created: Vec<String> = texts(&all, "created_at");
    let mut txt =
        texts(&all_pages(c, "list_artifacts", json!({"filter": "name ~= '%.TXT'", "limit": 1})).await, "name");
    txt.sort();
    assert_eq!(txt, ["a.txt", "c.txt"]);
    let sizes = |items: &[Value]| items.iter().map(|i| i["size"].as_u64().unwrap()).collect::<Vec<_>>();
    let asc = all_pages(c, "list_artifacts", json!({"order_by": "size", "limit": 2})).await;
    assert_eq!(sizes(&asc), [1, 3, 5]);
    let desc = all_pages(c, "list_artifacts", json!({"order_by": "size", "order_desc": true, "limit": 2})).await;
    assert_eq!(sizes(&desc), [5, 3, 1]);
    let csv = ok(&call(c, "list_artifacts", json!({"filter": "size > 2 and mime-type = 'text/csv'"})).await);
    assert_eq!(texts(csv["items"].as_array().unwrap(), "name"), ["b.csv"]);
    let newer = format!("created-at > '{}'", created[0]);
    let later = ok(&call(c, "list_artifacts", json!({"filter": newer, "order_by": "name"})).await);
    assert_eq!(texts(later["items"].as_array().unwrap(), "name"), ["b.csv", "c.txt"]);

    let then = ok(&call(c, "list_artifacts", json!({"at_time": created[0]})).await);
    assert_eq!(texts(then["items"].as_array().unwrap(), "name"), ["a.txt"], "{then}");
    let before = ok(&call(c, "list_artifacts", json!({"at_time": "2020-01-01T00:00:00Z"})).await);
    assert_eq!(before["items"], json!([]));
    if let Some(s) = &env.standin {
        let sent = s.requests_to(Method::GET, "/1/artifacts");
        assert!(
            sent.iter().any(|r| r.query_param("order-by").as_deref() == Some("size")
                && r.query_param("order-desc").as_deref() == Some("true")),
            "{sent:?}"
        );
        assert!(sent.iter().any(|r| r.query_param("at-time").as_deref() == Some("2020-01-01T00:00:00Z")));
    }

    let e = err(&call(c, "list_artifacts", json!({"order_by": "colour"})).await);
    assert!(e.contains("'order_by'") && e.contains("name, mime-type, size, status, created-at"), "{e}");
    let e = err(&call(c, "list_artifacts", json!({"filter": "name = x"})).await);
    assert!(e.contains("'filter'") && e.contains("quoted value"), "{e}");
}
