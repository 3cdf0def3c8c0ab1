//! `search` over the real binary: platform passthrough against the stand-in (content type,
//! body, parameters, paging, the platform's own error messages) and Mangle evaluation in
//! local mode (golden answers, errors with positions, limits, paging, a clean stdout).

use std::process::Stdio;
use std::time::Duration;

use axum::http::Method;
use ivcap_standin::{Fault, FaultAction, StandIn};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{Env, both_modes, call, command, err, local, ok, platform};

both_modes!(
    a_query_is_answered_and_paged,
    queries_over_64_kib_are_refused_before_any_work,
    wrong_arity_and_not_datalog_are_refused_before_any_work
);

/// The search contract, on both modes. The stand-in evaluates no Datalog: it answers the
/// query with what IVCAP would (registered here); the local backend evaluates it.
async fn a_query_is_answered_and_paged(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let mut expected = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let id = env.add_echo_service(name, "a service", None);
        expected.push(json!({"Id": id, "Name": name}));
    }
    let query = ":- ivcap_service(Id, Name).";
    if let Some(s) = &env.standin {
        s.add_search_answers(query, expected.clone());
    }
    let mut answers = Vec::new();
    let mut args = json!({"query": query, "limit": 2});
    loop {
        let found = ok(&call(c, "search", args.clone()).await);
        assert!(found["items"].as_array().unwrap().len() <= 2, "{found}");
        answers.extend(found["items"].as_array().unwrap().iter().cloned());
        match &found["next_page"] {
            Value::Null => break,
            next => args["page"] = next.clone(),
        }
    }
    answers.sort_by_key(|a| a["Name"].as_str().unwrap().to_string());
    assert_eq!(answers, expected, "every answer once across the pages");
    let empty = err(&call(c, "search", json!({"query": " "})).await);
    assert!(empty.contains("'query'") && empty.contains("is empty"), "{empty}");
    let bad_time = err(&call(c, "search", json!({"query": query, "at_time": "yesterday"})).await);
    assert!(bad_time.contains("'at_time'") && bad_time.contains("RFC 3339"), "{bad_time}");
}

/// A documented predicate with a wrong number of arguments would match nothing (an empty
/// list, as if there were no such facts); SQL or a question would get a parser's guess.
/// Both are refused with what to write instead, and on the platform nothing is sent.
async fn wrong_arity_and_not_datalog_are_refused_before_any_work(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let schema = "urn:example:schema:label.1";
    ok(&call(c, "add_aspect", json!({"entity": "urn:ex:img:1", "schema": schema, "content": {"label": "cat"}})).await);
    let search = |query: &str| call(c, "search", json!({"query": query}));

    let arity = err(&search(":- ivcap_artifact(Id, Name).").await);
    assert!(
        arity.contains("invalid argument 'query'")
            && arity.contains("ivcap_artifact takes 3 arguments (Id, Name, MimeType)")
            && arity.contains("gives it 2"),
        "{arity}"
    );
    let negated =
        err(&search("labelled(A) :- ivcap_aspect(A, _).\nquery(A) :- ivcap_artifact(A, _, _), !labelled(A).").await);
    assert!(negated.contains("ivcap_aspect takes 3 arguments (Entity, Schema, Content)"), "{negated}");
    let too_many = err(&search(":- ivcap_service(Id, Name, Extra).").await);
    assert!(
        too_many.contains("ivcap_service takes 2 arguments (Id, Name)") && too_many.contains("gives it 3"),
        "{too_many}"
    );

    let sql = err(&search("SELECT entity FROM aspects WHERE schema = 'urn:example:schema:label.1'").await);
    assert!(sql.contains("looks like SQL") && sql.contains("Mangle Datalog"), "{sql}");
    assert!(!sql.contains("Did you mean"), "{sql}");
    let question = err(&search("which images are labelled cat?").await);
    assert!(question.contains("looks like a question in words") && question.contains("Mangle Datalog"), "{question}");
    if on_platform {
        assert!(sql.contains("`:- ivcap_artifact(Id, Name, MimeType), MimeType = \"image/jpeg\".`"), "{sql}");
    } else {
        // The example is over one of the store's own schemas.
        assert!(sql.contains(&format!("`:- ivcap_aspect(Entity, \"{schema}\", Content).`")), "{sql}");
    }

    // A query defining its own predicate of that name is the query's business.
    let own = "ivcap_service(\"x\").\nquery(X) :- ivcap_service(X).";
    if let Some(s) = &env.standin {
        s.add_search_answers(own, vec![json!({"X": "x"})]);
    }
    assert_eq!(ok(&search(own).await)["items"], json!([{"X": "x"}]));
    if let Some(s) = &env.standin {
        let sent = s.requests_to(Method::POST, "/1/search");
        assert_eq!(sent.len(), 1, "only the valid query reached the platform");
        assert_eq!(sent[0].body.as_deref(), Some(own.as_bytes()));
    }
}

const JPEGS: &str = r#":- ivcap_artifact(Id, Name, MimeType), MimeType = "image/jpeg"."#;

#[tokio::test]
async fn platform_posts_the_query_as_mangle_and_pages() {
    let s = StandIn::start().await;
    s.add_search_answers(JPEGS, vec![json!({"Id": "urn:a:1"}), json!({"Id": "urn:a:2"}), json!({"Id": "urn:a:3"})]);
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;

    let args = json!({"query": JPEGS, "at_time": "2026-01-31T12:00:00+01:00", "limit": 2});
    let first = ok(&call(&client, "search", args).await);
    assert_eq!(first["items"], json!([{"Id": "urn:a:1"}, {"Id": "urn:a:2"}]));
    let token = first["next_page"].as_str().expect("a next page").to_string();
    let second = ok(&call(&client, "search", json!({"query": JPEGS, "limit": 2, "page": token})).await);
    assert_eq!(second["items"], json!([{"Id": "urn:a:3"}]));
    assert_eq!(second["next_page"], Value::Null);

    let sent = s.requests_to(Method::POST, "/1/search");
    assert_eq!(sent.len(), 2);
    for r in &sent {
        assert_eq!(r.header("content-type").as_deref(), Some("application/datalog+mangle"));
        assert_eq!(r.header("authorization").as_deref(), Some("Bearer test-token"));
        assert_eq!(r.body.as_deref(), Some(JPEGS.as_bytes()));
        assert_eq!(r.query_param("limit").as_deref(), Some("2"));
    }
    assert_eq!(sent[0].query_param("at-time").as_deref(), Some("2026-01-31T11:00:00Z"));
    assert!(sent[0].query_param("page").is_none());
    assert!(sent[1].query_param("page").is_some());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_errors_carry_the_platforms_message() {
    let s = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;

    let bad = err(&call(&client, "search", json!({"query": ":- ivcap_artifact(Id"})).await);
    assert!(bad.contains("400") && bad.contains("cannot parse query"), "{bad}");

    let body = json!({"message": "cannot handle 'text/plain'"}).to_string();
    s.fault(Fault::on(Some(Method::POST), "/1/search", FaultAction::Respond { status: 415, headers: vec![], body }));
    let unsupported = err(&call(&client, "search", json!({"query": JPEGS})).await);
    assert!(unsupported.contains("415") && unsupported.contains("cannot handle 'text/plain'"), "{unsupported}");

    let body = json!({"message": "cannot parse date", "name": "at-time", "value": "x"}).to_string();
    s.fault(Fault::on(Some(Method::POST), "/1/search", FaultAction::Respond { status: 422, headers: vec![], body }));
    let invalid = err(&call(&client, "search", json!({"query": JPEGS})).await);
    assert!(
        invalid.contains("422") && invalid.contains("at-time") && invalid.contains("cannot parse date"),
        "{invalid}"
    );

    let local_check = err(&call(&client, "search", json!({"query": JPEGS, "at_time": "yesterday"})).await);
    assert!(local_check.contains("at_time") && local_check.contains("RFC 3339"), "{local_check}");
    assert_eq!(s.requests_to(Method::POST, "/1/search").len(), 3, "a bad at_time is caught before sending");
    client.cancel().await.unwrap();
}

/// A local store with three services.
fn store_with_services() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("services")).unwrap();
    for name in ["alpha", "beta", "gamma"] {
        let def = json!({"name": name, "description": format!("{name} service"), "command": ["cat"]});
        std::fs::write(store.join(format!("services/{name}.json")), def.to_string()).unwrap();
    }
    (dir, store)
}

#[tokio::test]
async fn local_headless_query_over_services_pages_through_answers() {
    let (_dir, store) = store_with_services();
    let client = local(&store).await;
    let query = ":- ivcap_service(Id, Name), Name != \"beta\".";
    let first = ok(&call(&client, "search", json!({"query": query, "limit": 1})).await);
    assert_eq!(first["items"], json!([{"Id": "urn:ivcap:service:alpha", "Name": "alpha"}]));
    let token = first["next_page"].as_str().unwrap().to_string();
    let second = ok(&call(&client, "search", json!({"query": query, "limit": 1, "page": token.clone()})).await);
    assert_eq!(second["items"], json!([{"Id": "urn:ivcap:service:gamma", "Name": "gamma"}]));
    assert_eq!(second["next_page"], Value::Null);

    let other = err(&call(&client, "search", json!({"query": ":- ivcap_service(Id, _).", "page": token})).await);
    assert!(other.contains("'page'") && other.contains("different query"), "{other}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn local_errors_say_what_to_fix() {
    let (_dir, store) = store_with_services();
    let client = local(&store).await;

    let syntax = err(&call(&client, "search", json!({"query": "query(X) :-\n  ivcap_service(X Y)."})).await);
    assert!(syntax.contains("'query'") && syntax.contains("line 2, column"), "{syntax}");

    let builtin =
        err(&call(&client, "search", json!({"query": ":- ivcap_service(X, _), :match_entry(X, 1, 2)."})).await);
    assert!(builtin.contains(":match_entry is not supported"), "{builtin}");

    let unknown = err(&call(&client, "search", json!({"query": ":- ivcap_servce(X, _)."})).await);
    assert!(unknown.contains("ivcap_servce") && unknown.contains("ivcap_service(Id, Name)"), "{unknown}");

    let runtime =
        err(&call(&client, "search", json!({"query": ":- ivcap_service(X, N), L = fn:string:no_such(N)."})).await);
    assert!(runtime.contains("failed while running") && runtime.contains("fn:string:no_such"), "{runtime}");
    client.cancel().await.unwrap();
}

/// Ten digits and a rule that multiplies the facts by ten every round.
const RUNAWAY: &str = "d(0). d(1). d(2). d(3). d(4). d(5). d(6). d(7). d(8). d(9).\n\
                       n(0).\n\
                       n(Y) :- n(X), d(D), Y = fn:plus(fn:mult(X, 10), D).\n\
                       query(X) :- n(X).";

#[tokio::test]
async fn local_runaway_recursion_is_stopped_and_other_calls_still_answer() {
    let (_dir, store) = store_with_services();
    let client = local(&store).await;
    let started = std::time::Instant::now();
    let ((runaway, runaway_done), (quick, quick_done)) = tokio::join!(
        async {
            let r = call(&client, "search", json!({"query": RUNAWAY})).await;
            (r, started.elapsed())
        },
        async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let r = call(&client, "list_services", json!({})).await;
            (r, started.elapsed())
        }
    );
    let message = err(&runaway);
    assert!(message.contains("query too large"), "{message}");
    assert!(runaway_done < Duration::from_secs(30));
    ok(&quick);
    assert!(
        quick_done < runaway_done,
        "list_services ({quick_done:?}) answered while the search ran ({runaway_done:?})"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn local_search_writes_only_json_rpc_on_stdout() {
    let (dir, store) = store_with_services();
    let mut child = command(&["--local", store.to_str().unwrap()], &[("RUST_LOG", "debug")], dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let queries = [
        ":- ivcap_service(Id, Name).",
        "p(1). p(\"x\").\nq(X, Y) :- p(X), Y = fn:plus(X, 1).\nquery(Y) :- q(_, Y).",
        ":- ivcap_service(X, N), V = fn:struct:get(N, /x).",
        "query(X) :- ivcap_service(X",
    ];
    let mut requests = vec![
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ];
    for (i, q) in queries.iter().enumerate() {
        requests.push(json!({"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
            "params": {"name": "search", "arguments": {"query": q}}}));
    }
    for r in requests {
        stdin.write_all(format!("{r}\n").as_bytes()).await.unwrap();
    }
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut answered = 0;
    while answered <= queries.len() {
        let l =
            tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().expect("a line");
        let msg: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"));
        assert_eq!(msg["jsonrpc"], "2.0", "{l}");
        if msg.get("id").is_some() {
            answered += 1;
        }
    }
    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
    assert!(status.success());
    while let Some(l) = lines.next_line().await.unwrap() {
        serde_json::from_str::<Value>(&l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"));
    }
}

/// `VmHWM` and `VmRSS` of process `pid`, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} in {status}"));
        let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kib / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// The recursion that reached 291 MiB at the 1,000,000-fact limit, and a 3-way cross join
/// of 400 aspects (64 million answers), are each stopped by the byte budget; the server's
/// peak resident memory stays under 64 MiB, and what a query took is given back after it.
#[tokio::test]
async fn local_hostile_queries_stay_under_64_mib_and_give_the_memory_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(store.join("aspects")).unwrap();
    for i in 0..400 {
        let uuid = uuid::Uuid::new_v4();
        let record = json!({"id": format!("urn:ivcap:aspect:{uuid}"), "entity": format!("urn:ex:entity:{i}"),
            "schema": LABEL, "content": {"label": format!("label-{i}")},
            "valid_from": "2026-01-01T00:00:00+00:00", "valid_to": null});
        std::fs::write(store.join(format!("aspects/{uuid}.json")), record.to_string()).unwrap();
    }
    let mut child = command(&["--local", store.to_str().unwrap()], &[], dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_id = 0;
    let mut send = async |method: &str, params: Value| -> Value {
        next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params});
        stdin.write_all(format!("{request}\n").as_bytes()).await.unwrap();
        loop {
            let line =
                tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await.unwrap().unwrap().unwrap();
            let msg: Value = serde_json::from_str(&line).unwrap();
            if msg["id"] == next_id {
                return msg;
            }
        }
    };
    send(
        "initialize",
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "rss", "version": "0"}}),
    )
    .await;
    let search = json!({"name": "search", "arguments": {"query": ":- ivcap_aspect(E, _, C), :match_field(C, /label, \"label-7\")."}});
    let found = send("tools/call", search).await;
    assert_eq!(found["result"]["structuredContent"]["items"][0]["E"], "urn:ex:entity:7", "{found}");
    let (_, settled) = memory_mib(pid);

    let hostile = [
        "p(0).\np(X) :- p(Y), X = fn:plus(Y, 1).\nquery(X) :- p(X).",
        ":- ivcap_aspect(A, _, _), ivcap_aspect(B, _, _), ivcap_aspect(C, _, _).",
    ];
    for query in hostile {
        let answer = send("tools/call", json!({"name": "search", "arguments": {"query": query}})).await;
        let text = answer["result"]["content"][0]["text"].as_str().unwrap_or_default();
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        assert!(text.contains("query too large"), "{query}: {text}");
        // The recursion adds one fact per round, so a debug build on a loaded machine may hit
        // the 10 s deadline first (the byte budget stopping it is a unit test of the engine);
        // the cross join fills the budget in well under a second.
        assert!(text.contains("MiB of memory") || query.starts_with("p(0)"), "{query}: {text}");
        let (peak, now) = memory_mib(pid);
        eprintln!(
            "{query:?}: VmHWM {peak:.1} MiB, VmRSS after {now:.1} MiB (before the hostile queries {settled:.1} MiB)"
        );
        assert!(peak < 64.0, "{query}: peak RSS {peak:.1} MiB");
        assert!(now < settled + 8.0, "{query}: RSS after the query {now:.1} MiB, before {settled:.1} MiB");
    }
    drop(stdin);
    tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
}

/// Adds an aspect through the tool and returns its id.
async fn add(client: &crate::common::Client, entity: &str, schema: &str, content: Value) -> String {
    let added = ok(&call(client, "add_aspect", json!({"entity": entity, "schema": schema, "content": content})).await);
    added["id"].as_str().unwrap().to_string()
}

const LABEL: &str = "urn:example:schema:label.1";
const COLLECTION: &str = "urn:ivcap:schema:artifact-collection.1";

#[tokio::test]
async fn local_golden_queries_over_aspects() {
    let (_dir, store) = store_with_services();
    let client = local(&store).await;
    add(&client, "urn:ex:img:1", LABEL, json!({"label": "cat", "score": 9})).await;
    add(&client, "urn:ex:img:2", LABEL, json!({"label": "dog", "score": 4})).await;
    add(&client, "urn:ex:img:3", LABEL, json!({"label": "cat", "score": 7})).await;
    add(&client, "urn:ex:img:2", "urn:example:schema:reviewed.1", json!({"by": "ann"})).await;
    add(&client, "urn:ex:part:1", "urn:example:schema:part-of.1", json!({"whole": "urn:ex:part:2"})).await;
    add(&client, "urn:ex:part:2", "urn:example:schema:part-of.1", json!({"whole": "urn:ex:part:3"})).await;
    add(
        &client,
        "urn:ex:coll:1",
        COLLECTION,
        json!({"collection": "urn:ex:coll:1", "artifacts": [{"id": "urn:ex:img:1", "n": 1}, {"id": "urn:ex:img:3", "n": 2}]}),
    )
    .await;
    let search = |query: &str| {
        let client = &client;
        let query = query.to_string();
        async move { ok(&call(client, "search", json!({"query": query, "limit": 50})).await)["items"].clone() }
    };

    // Struct fields of aspect content, filtered by comparison.
    let cats = search(&format!(
        r#":- ivcap_aspect(E, "{LABEL}", C), :match_field(C, /label, "cat"), :match_field(C, /score, S), :gt(S, 8)."#
    ))
    .await;
    assert_eq!(cats, json!([{"E": "urn:ex:img:1", "C": {"label": "cat", "score": 9}, "S": 9}]));

    // Negation: labelled images nobody reviewed.
    let unreviewed = search(&format!(
        "reviewed(E) :- ivcap_aspect(E, \"urn:example:schema:reviewed.1\", _).\n\
         query(E) :- ivcap_aspect(E, \"{LABEL}\", _), !reviewed(E)."
    ))
    .await;
    assert_eq!(unreviewed, json!([{"E": "urn:ex:img:1"}, {"E": "urn:ex:img:3"}]));

    // Aggregation.
    let counts = search(&format!(
        r#":- ivcap_aspect(E, "{LABEL}", C), :match_field(C, /label, L) |> do fn:group_by(L), let N = fn:count()."#
    ))
    .await;
    assert_eq!(counts, json!([{"L": "cat", "N": 2}, {"L": "dog", "N": 1}]));

    // Recursion over aspect content.
    let wholes = search(
        "part_of(P, W) :- ivcap_aspect(P, \"urn:example:schema:part-of.1\", C), :match_field(C, /whole, W).\n\
         within(P, W) :- part_of(P, W).\n\
         within(P, W) :- part_of(P, M), within(M, W).\n\
         query(W) :- within(\"urn:ex:part:1\", W).",
    )
    .await;
    assert_eq!(wholes, json!([{"W": "urn:ex:part:2"}, {"W": "urn:ex:part:3"}]));

    // :load_aspect tables: [*] gives a row per element, a|b two columns; joined with services.
    let members = search(&format!(
        ":load_aspect(/member, \"{COLLECTION}\", [\".collection\", \".artifacts[*].id|.artifacts[*].n\"]).\n\
         query(Coll, Img, Label) :- member(Coll, Img, _), ivcap_aspect(Img, \"{LABEL}\", C), :match_field(C, /label, Label)."
    ))
    .await;
    assert_eq!(members.as_array().unwrap().len(), 2, "{members}");
    assert_eq!(members[0], json!({"Coll": "urn:ex:coll:1", "Img": "urn:ex:img:1", "Label": "cat"}));
    let elements = search(&format!(
        ":load_aspect(/item, \"{COLLECTION}\", [\".artifacts[*]\"]).\nquery(Id, N) :- item(A), :match_field(A, /id, Id), :match_field(A, /n, N)."
    ))
    .await;
    assert_eq!(elements, json!([{"Id": "urn:ex:img:1", "N": 1}, {"Id": "urn:ex:img:3", "N": 2}]));

    // Joins with services.
    let joined = search(":- ivcap_service(S, \"alpha\"), ivcap_aspect(E, _, _), E = \"urn:ex:img:1\".").await;
    assert_eq!(joined, json!([{"S": "urn:ivcap:service:alpha", "E": "urn:ex:img:1"}]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn local_at_time_sees_an_aspect_before_its_retraction_only() {
    let (_dir, store) = store_with_services();
    let client = local(&store).await;
    let id = add(&client, "urn:ex:img:9", LABEL, json!({"label": "owl"})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let before = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    ok(&call(&client, "retract_aspect", json!({"aspect_id": id})).await);
    let query = format!(r#":- ivcap_aspect(E, "{LABEL}", C), :match_field(C, /label, L)."#);

    let then = ok(&call(&client, "search", json!({"query": query, "at_time": before.to_rfc3339()})).await);
    assert_eq!(then["items"], json!([{"E": "urn:ex:img:9", "C": {"label": "owl"}, "L": "owl"}]));
    let now = ok(&call(&client, "search", json!({"query": query})).await);
    assert_eq!(now["items"], json!([]));
    let ancient = ok(&call(&client, "search", json!({"query": query, "at_time": "2000-01-01T00:00:00Z"})).await);
    assert_eq!(ancient["items"], json!([]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn local_artifacts_jobs_and_aspects_join() {
    let (_dir, store) = store_with_services();
    let client = local(&store).await;
    let mut ids = Vec::new();
    for name in ["cat.jpg", "owl.jpg", "notes.txt"] {
        let up =
            ok(&call(&client, "upload_artifact", json!({"content": format!("bytes of {name}"), "name": name})).await);
        ids.push(up["id"].as_str().unwrap().to_string());
    }
    add(&client, &ids[1], LABEL, json!({"label": "owl"})).await;
    let job =
        // `cat` echoes the input, so the job's result names the first artifact: it produced it.
        ok(&call(&client, "submit_job", json!({"service": "alpha", "input": {"x": 1, "out": ids[0]}, "wait_seconds": 20}))
            .await);
    assert_eq!(job["status"], "succeeded", "{job}");

    let jpegs = ok(&call(&client, "search", json!({"query": JPEGS})).await);
    let names: Vec<&str> = jpegs["items"].as_array().unwrap().iter().map(|i| i["Name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{jpegs}");
    assert!(names.contains(&"cat.jpg") && names.contains(&"owl.jpg"), "{jpegs}");

    let labelled = ok(&call(
        &client,
        "search",
        json!({"query": format!(r#":- ivcap_artifact(A, Name, "image/jpeg"), ivcap_aspect(A, "{LABEL}", C), :match_field(C, /label, L)."#)}),
    )
    .await);
    assert_eq!(labelled["items"].as_array().unwrap().len(), 1, "{labelled}");
    assert_eq!(labelled["items"][0]["A"], json!(ids[1]));
    assert_eq!(labelled["items"][0]["L"], "owl");

    let jobs =
        ok(&call(&client, "search", json!({"query": ":- ivcap_job(J, Status, S), ivcap_service(S, \"alpha\")."}))
            .await);
    assert_eq!(jobs["items"].as_array().unwrap().len(), 1, "{jobs}");
    assert_eq!(jobs["items"][0]["Status"], "succeeded");
    assert_eq!(jobs["items"][0]["J"], job["job_id"]);

    let produced = ok(&call(&client, "search", json!({"query": ":- ivcap_artifact_produced_by(A, J)."})).await);
    assert_eq!(produced["items"], json!([{"A": ids[0], "J": job["job_id"]}]), "{produced}");

    let before = ok(&call(&client, "search", json!({"query": JPEGS, "at_time": "2000-01-01T00:00:00Z"})).await);
    assert_eq!(before["items"], json!([]), "no artifact existed in 2000");
    client.cancel().await.unwrap();
}

/// A query of 64 KiB is answered; one byte more is refused, naming the limit, before it is
/// parsed or sent.
async fn queries_over_64_kib_are_refused_before_any_work(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let id = env.add_echo_service("alpha", "a service", None);
    let head = ":- ivcap_service(Id, \"alpha\").";
    // Trailing blanks change no answer, so the padded query has the same one as `head`.
    let at_limit = format!("{head}{}", " ".repeat(65536 - head.len()));
    let over = format!("{at_limit} ");
    if let Some(s) = &env.standin {
        s.add_search_answers(&at_limit, vec![json!({"Id": id})]);
    }

    let answered = ok(&call(c, "search", json!({"query": at_limit})).await);
    assert_eq!(answered["items"], json!([{"Id": id}]), "a query of exactly 65536 bytes is evaluated");
    let refused = err(&call(c, "search", json!({"query": over})).await);
    assert!(refused.contains("invalid argument 'query': is 65537 bytes, over the limit of 65536 bytes"), "{refused}");
    if let Some(s) = &env.standin {
        let sent = s.requests_to(Method::POST, "/1/search");
        assert_eq!(sent.len(), 1, "only the query within the limit was sent");
        assert_eq!(sent[0].body.as_ref().map(Vec::len), Some(65536));
    }
}
