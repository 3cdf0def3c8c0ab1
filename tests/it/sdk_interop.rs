//! The released `ivcap-client` SDK (tests/it/python_sdk.rs) and this server, on the same
//! IVCAP: the stand-in (the SDK with `IVCAP_URL` + `IVCAP_JWT`) or a local store (the SDK's
//! `LocalIVCAP` with `base_dir` = the store). What the SDK writes this server lists, reads and
//! downloads; what this server writes the SDK reads back; contents compared byte for byte.
//! Collections too: on the platform through the SDK's collection API, locally (`LocalIVCAP`
//! has none) as the aspects a collection is made of.
//! The SDK's half is tests/python/sdk_interop.py.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ivcap_standin::TOKEN;
use serde_json::{Value, json};

use crate::common::{Env, both_modes, call, ok, texts};
use crate::python_sdk;

const SCRIPT: &str = include_str!("../python/sdk_interop.py");

both_modes!(the_sdk_writes_and_this_server_reads, this_server_writes_and_the_sdk_reads);

/// Runs one step of the SDK script against the env's IVCAP; its JSON answer.
async fn sdk(env: &Env, step: &str, vars: &[(&str, String)]) -> Value {
    let Some(python) = python_sdk::python_or_skip(&format!("sdk_interop {step}")) else { return Value::Null };
    let mut envs: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    envs.push(("STEP".into(), step.into()));
    match &env.standin {
        Some(s) => {
            envs.push(("IVCAP_URL".into(), s.base_url().to_string()));
            envs.push(("IVCAP_JWT".into(), TOKEN.into()));
        }
        None => envs.push(("STORE".into(), env.store.to_string_lossy().into_owned())),
    }
    // The stand-in answers on this test's runtime: run python off it.
    let out = tokio::task::spawn_blocking(move || {
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        python_sdk::run(&python, SCRIPT, &envs)
    })
    .await
    .unwrap();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("the SDK script printed no JSON ({e}): {out}"))
}

/// A JSON array of strings.
fn strings(v: &Value) -> Vec<String> {
    v.as_array().expect("an array").iter().map(|s| s.as_str().expect("a string").to_string()).collect()
}

fn bytes(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().expect("base64 text")).unwrap()
}

/// The SDK uploads a file (with its `.ivcap-<file>.txt` sidecar on the platform) and a
/// stream and adds an aspect; this server lists, reads and downloads them.
async fn the_sdk_writes_and_this_server_reads(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let csv = "a,b\n1,2\n";
    let src = env.dir.path().join("sdk-data.csv");
    std::fs::write(&src, csv).unwrap();
    let (entity, schema) = ("urn:example:sdk:1", "urn:example:schema:sdk.1");
    let content = json!({"k": 1, "text": "from the SDK", "list": [1, 2]});
    let vars = [
        ("SRC", src.to_string_lossy().into_owned()),
        ("NAME", "sdk-data.csv".to_string()),
        ("STREAM", "streamed by the SDK".to_string()),
        ("ENTITY", entity.to_string()),
        ("SCHEMA", schema.to_string()),
        ("CONTENT", content.to_string()),
    ];
    let wrote = sdk(&env, "write", &vars).await;
    if wrote.is_null() {
        return;
    }
    let (file_id, stream_id) = (wrote["file"].as_str().unwrap(), wrote["stream"].as_str().unwrap());
    if let Some(s) = &env.standin {
        let uploads = s.requests_to(axum::http::Method::POST, "/1/artifacts");
        assert_eq!(uploads.len(), 2, "the SDK uploaded to the stand-in");
        assert!(file_id.starts_with("urn:ivcap:artifact:"), "{file_id}");
        let joined = uploads.iter().filter_map(|r| r.header("X-Collection")).collect::<Vec<_>>();
        assert_eq!(joined.iter().map(String::as_str).collect::<Vec<_>>(), [wrote["collection"].as_str().unwrap()]);
    }
    if let Some(collection) = wrote["collection"].as_str() {
        let got = ok(&call(c, "get_collection", json!({"collection": collection})).await);
        assert_eq!(
            (got["name"].as_str(), got["description"].as_str()),
            (Some("SDK collection"), Some("made by ivcap-client"))
        );
        let mut members = strings(&got["members"]);
        members.sort();
        let mut want = vec![file_id.to_string(), stream_id.to_string()];
        want.sort();
        assert_eq!(members, want, "{got}");
        let listed = ok(&call(c, "list_collections", json!({"name": "sdk%"})).await);
        assert_eq!(texts(listed["items"].as_array().unwrap(), "id"), [collection], "{listed}");
    }

    let listed = ok(&call(c, "list_artifacts", json!({"filter": "name = 'sdk-data.csv'"})).await);
    assert_eq!(texts(listed["items"].as_array().unwrap(), "id"), [file_id], "{listed}");
    let got = ok(&call(c, "get_artifact", json!({"artifact_id": file_id})).await);
    assert_eq!((got["name"].as_str(), got["size"].as_u64()), (Some("sdk-data.csv"), Some(csv.len() as u64)), "{got}");
    ok(&call(c, "download_artifact", json!({"artifact_id": file_id, "path": "copy.csv"})).await);
    assert_eq!(std::fs::read_to_string(env.dir.path().join("copy.csv")).unwrap(), csv);
    ok(&call(c, "download_artifact", json!({"artifact_id": stream_id, "path": "stream.txt"})).await);
    assert_eq!(std::fs::read_to_string(env.dir.path().join("stream.txt")).unwrap(), "streamed by the SDK");

    let aspects = ok(&call(c, "list_aspects", json!({"entity": entity, "include_content": true})).await);
    let items = aspects["items"].as_array().unwrap();
    assert_eq!(texts(items, "id"), [wrote["aspect"].as_str().unwrap()], "{aspects}");
    assert_eq!(items[0]["schema"], schema);
    let mut got = items[0]["content"].clone();
    if on_platform {
        // The SDK sends `$schema` and `$entity` in the body (docs/ivcap-wire.md §8.1).
        assert_eq!((got["$schema"].as_str(), got["$entity"].as_str()), (Some(schema), Some(entity)), "{got}");
        let fields = got.as_object_mut().unwrap();
        fields.remove("$schema");
        fields.remove("$entity");
    }
    assert_eq!(got, content);

    if on_platform {
        // This server honours the SDK's sidecar: the same unchanged file is not uploaded again.
        let again = ok(&call(c, "upload_artifact", json!({"path": "sdk-data.csv"})).await);
        assert_eq!((again["id"].as_str(), again["deduplicated"].as_bool()), (Some(file_id), Some(true)), "{again}");
    }
}

/// This server uploads a file and adds an aspect; the SDK's get_artifact, artifact_for_file
/// (through this server's sidecar, on the platform), list_aspects and LocalIVCAP's
/// get_aspect read them back.
async fn this_server_writes_and_the_sdk_reads(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let csv = "x,y\n3,4\n";
    let src = env.dir.path().join("ours.csv");
    std::fs::write(&src, csv).unwrap();
    let up = ok(&call(c, "upload_artifact", json!({"path": "ours.csv"})).await);
    let id = up["id"].as_str().unwrap().to_string();
    let (entity, schema) = ("urn:example:ours:1", "urn:example:schema:ours.1");
    let content = json!({"k": 2, "text": "from ivcap-mcp", "nested": {"a": [true, null]}});
    let added = ok(&call(c, "add_aspect", json!({"entity": entity, "schema": schema, "content": content})).await);
    let aspect = added["id"].as_str().unwrap().to_string();
    let made = ok(&call(c, "create_collection", json!({"name": "Ours", "description": "made by ivcap-mcp"})).await);
    let collection = made["id"].as_str().unwrap().to_string();
    let members = json!([id, entity]);
    ok(&call(c, "update_collection", json!({"collection": collection, "add": members})).await);

    let vars = [
        ("SRC", src.to_string_lossy().into_owned()),
        ("ARTIFACT", id.clone()),
        ("ENTITY", entity.to_string()),
        ("ASPECT", aspect.clone()),
        ("COLLECTION", collection.clone()),
    ];
    let read = sdk(&env, "read", &vars).await;
    if read.is_null() {
        return;
    }
    assert_eq!(bytes(&read["artifact"]), csv.as_bytes());
    if on_platform {
        let for_file = &read["for_file"];
        assert_eq!(for_file["id"].as_str(), Some(id.as_str()), "artifact_for_file reads our sidecar: {read}");
        assert_eq!(bytes(&for_file["bytes"]), csv.as_bytes());
    } else {
        // Neither side keeps a sidecar in local mode (docs/ivcap-wire.md §13).
        assert_eq!(read["for_file"], Value::Null);
        assert_eq!(read["aspect"], content, "LocalIVCAP.get_aspect");
    }
    let listed = read["aspects"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{read}");
    assert_eq!((listed[0]["id"].as_str(), listed[0]["schema"].as_str()), (Some(aspect.as_str()), Some(schema)));
    let mut got = listed[0]["content"].clone();
    if on_platform {
        let fields = got.as_object_mut().unwrap();
        assert_eq!(fields.remove("$entity").as_ref().and_then(Value::as_str), Some(entity));
        assert_eq!(fields.remove("$schema").as_ref().and_then(Value::as_str), Some(schema));
    }
    assert_eq!(got, content);

    let mut want = vec![id.clone(), entity.to_string()];
    want.sort();
    if on_platform {
        let got = &read["collection"];
        assert_eq!(got["id"].as_str(), Some(collection.as_str()));
        assert_eq!((got["name"].as_str(), got["description"].as_str()), (Some("Ours"), Some("made by ivcap-mcp")));
        assert_eq!(strings(&got["items"]), want, "SDK get_collection: {got}");
    } else {
        // LocalIVCAP has no collection API; it reads the aspects the SDK's collections are made of.
        let records = read["collection"].as_array().unwrap();
        let of = |schema: &str| {
            records.iter().filter(|r| r["schema"] == schema).map(|r| r["content"].clone()).collect::<Vec<_>>()
        };
        let definition = of("urn:ivcap:schema:collection.1");
        assert_eq!(definition.len(), 1, "{records:?}");
        assert_eq!(
            (definition[0]["name"].as_str(), definition[0]["description"].as_str()),
            (Some("Ours"), Some("made by ivcap-mcp"))
        );
        let mut items: Vec<String> = of("urn:ivcap:schema:collection-item.1")
            .iter()
            .map(|m| {
                assert_eq!(m["collection"].as_str(), Some(collection.as_str()), "{m}");
                m["item"].as_str().unwrap().to_string()
            })
            .collect();
        items.sort();
        assert_eq!(items, want);
    }
}
