//! `list_services` and `get_service` over the real binary, against the stand-in and in
//! local mode.

use std::time::{Duration, Instant};

use axum::http::Method;
use ivcap_standin::{Fault, StandIn};
use serde_json::{Value, json};

use crate::common::{EchoService, Env, all_pages, both_modes, call, err, local, ok, platform, spawn, texts};

both_modes!(
    services_are_listed_paged_searched_and_described,
    services_are_filtered_and_ordered,
    unknown_and_ambiguous_service_names_are_clear_errors,
);

/// The services contract, on both modes.
async fn services_are_listed_paged_searched_and_described(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let alpha = env.add_echo_service("alpha", "Does alpha things", Some(pydantic_schema()));
    env.add_echo_service("beta", "Does beta things", Some(json!({"type": "object"})));
    env.add_echo_service("gamma", "No tool definition", None);

    let mut names = Vec::new();
    let mut args = json!({"limit": 2});
    loop {
        let listed = ok(&call(c, "list_services", args.clone()).await);
        assert!(listed["items"].as_array().unwrap().len() <= 2, "{listed}");
        names.extend(listed["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()));
        match &listed["next_page"] {
            Value::Null => break,
            next => args["page"] = next.clone(),
        }
    }
    names.sort();
    assert_eq!(names, ["alpha", "beta", "gamma"], "each service once across the pages");

    let found = ok(&call(c, "list_services", json!({"search": "alp"})).await);
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!(found["items"][0]["id"].as_str(), Some(alpha.as_str()));

    let by_name = ok(&call(c, "get_service", json!({"service": "alpha"})).await);
    let by_urn = ok(&call(c, "get_service", json!({"service": alpha})).await);
    assert_eq!(by_name, by_urn, "a name and its URN give the same service");
    assert_eq!(by_name["status"], "active");
    assert_eq!(by_name["description"], "Does alpha things");
    let schema = &by_name["request_schema"];
    assert_eq!(schema["properties"]["times"], json!({"type": "integer"}), "normalised: {schema}");
    assert_eq!(schema["properties"]["mode"], json!({"enum": ["fast", "slow"], "type": "string"}), "inlined");

    let gamma = ok(&call(c, "get_service", json!({"service": "gamma"})).await);
    assert_eq!(gamma["request_schema"], Value::Null);
    assert!(gamma["note"].as_str().unwrap().contains("no tool definition"), "{gamma}");

    let bad = err(&call(c, "list_services", json!({"limit": 0})).await);
    assert!(bad.contains("'limit'") && bad.contains("1 to 50"), "{bad}");
}

fn pydantic_schema() -> Value {
    json!({
        "title": "Request", "type": "object", "required": ["msg"],
        "$defs": {"Mode": {"enum": ["fast", "slow"], "type": "string"}},
        "properties": {
            "$schema": {"type": "string", "default": "urn:sd:schema.alpha.request.1"},
            "msg": {"type": "string"},
            "times": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": null},
            "mode": {"$ref": "#/$defs/Mode"}
        }
    })
}

async fn seeded() -> StandIn {
    let s = StandIn::start().await;
    s.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[pydantic_schema()]);
    s.add_service("urn:ivcap:service:2222", "beta", "Does beta things", &[json!({"type": "object"})]);
    s.add_service("urn:ivcap:service:3333", "gamma", "No tool definition", &[]);
    s
}

#[tokio::test]
async fn platform_lists_services_across_two_pages() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;

    let first = ok(&call(&client, "list_services", json!({"limit": 2})).await);
    let names: Vec<&str> = first["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alpha", "beta"]);
    let token = first["next_page"].as_str().expect("a next page").to_string();

    let second = ok(&call(&client, "list_services", json!({"limit": 2, "page": token})).await);
    assert_eq!(second["items"][0]["name"], "gamma");
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert_eq!(second["next_page"], Value::Null);

    let calls = s.requests_to(Method::GET, "/1/services2");
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|r| r.header("authorization").as_deref() == Some("Bearer test-token")));
    assert!(calls[1].query_param("page").is_some(), "second call sends the IVCAP page token");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn platform_search_filters_by_name() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let found = ok(&call(&client, "list_services", json!({"search": "ET"})).await);
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    assert_eq!(found["items"][0]["id"], "urn:ivcap:service:2222");
    let sent = s.requests_to(Method::GET, "/1/services2");
    assert_eq!(sent[0].query_param("filter").as_deref(), Some("name~='%ET%'"));
}

#[tokio::test]
async fn platform_get_service_by_name_gives_a_portable_schema() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let svc = ok(&call(&client, "get_service", json!({"service": "alpha"})).await);
    assert_eq!(svc["id"], "urn:ivcap:service:1111");
    assert_eq!(svc["status"], "active");
    let schema = &svc["request_schema"];
    assert_eq!(schema["properties"]["times"], json!({"type": "integer"}));
    assert_eq!(schema["properties"]["mode"]["enum"], json!(["fast", "slow"]));
    assert!(!schema.to_string().contains("$ref") && schema.get("$defs").is_none());

    // By URN: the path parameter is percent-encoded on the wire.
    let by_urn = ok(&call(&client, "get_service", json!({"service": "urn:ivcap:service:2222"})).await);
    assert_eq!(by_urn["name"], "beta");
    let raw = s.requests_to(Method::GET, "/1/services2/urn:ivcap:service:2222");
    assert!(raw[0].raw_path.contains("urn%3Aivcap%3Aservice%3A2222"), "{}", raw[0].raw_path);

    let none = ok(&call(&client, "get_service", json!({"service": "gamma"})).await);
    assert_eq!(none["request_schema"], Value::Null);
    assert!(none["note"].as_str().unwrap().contains("no tool definition"));
}

#[tokio::test]
async fn platform_retries_a_503_then_succeeds() {
    let s = seeded().await;
    s.fault(Fault::status(Some(Method::GET), "/1/services2", 503));
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let listed = ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    assert_eq!(s.requests_to(Method::GET, "/1/services2").len(), 2, "one failure, one retry");
}

#[tokio::test]
async fn platform_honours_retry_after_and_gives_up_when_busy() {
    let s = seeded().await;
    s.fault(Fault::status(Some(Method::GET), "/1/services2", 429).header("Retry-After", "1"));
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    let start = Instant::now();
    ok(&call(&client, "list_services", json!({})).await);
    assert!(start.elapsed().as_millis() >= 1000, "waited for Retry-After");
}

#[tokio::test]
async fn platform_gives_up_when_busy_after_the_policys_attempts() {
    let s = seeded().await;
    let client = crate::common::platform_fast_retries(&s).await;
    s.fault(Fault::status(Some(Method::GET), "/1/services2", 503).times(100));
    let start = Instant::now();
    let busy = err(&call(&client, "list_services", json!({})).await);
    assert!(busy.contains("platform busy") && busy.contains("5 attempts"), "{busy}");
    assert_eq!(s.requests_to(Method::GET, "/1/services2").len(), 5);
    assert!(start.elapsed() < Duration::from_secs(2), "the short policy's delays: {:?}", start.elapsed());
}

#[tokio::test]
async fn platform_dropped_connection_is_retried() {
    let s = seeded().await;
    s.fault(Fault::on(Some(Method::GET), "/1/services2", ivcap_standin::FaultAction::Drop));
    let dir = tempfile::tempdir().unwrap();
    let client = platform(&s, dir.path()).await;
    ok(&call(&client, "list_services", json!({})).await);
    assert_eq!(s.requests_to(Method::GET, "/1/services2").len(), 2);
}

#[tokio::test]
async fn platform_401_says_to_check_the_token() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let client = spawn(&[], &[("IVCAP_URL", s.base_url()), ("IVCAP_JWT", "wrong-secret-token")], dir.path()).await;
    let denied = err(&call(&client, "list_services", json!({})).await);
    assert!(denied.contains("not authorised") && denied.contains("IVCAP_JWT"), "{denied}");
    assert!(!denied.contains("wrong-secret-token"), "the token is never echoed");
    assert_eq!(s.requests_to(Method::GET, "/1/services2").len(), 1, "401 is not retried");
}

#[tokio::test]
async fn base_url_mode_sends_no_authorization() {
    let s = seeded().await;
    s.require_auth(false);
    let dir = tempfile::tempdir().unwrap();
    let client = spawn(&[], &[("IVCAP_BASE_URL", s.base_url())], dir.path()).await;
    ok(&call(&client, "list_services", json!({})).await);
    assert!(s.requests().iter().all(|r| r.header("authorization").is_none()));
}

#[tokio::test]
async fn cli_context_login_is_reused_with_its_host_header() {
    let s = seeded().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("xdg/ivcap-cli");
    std::fs::create_dir_all(&cfg).unwrap();
    let yaml = format!(
        "version: v1\nactive-context: test\ncontexts:\n- name: test\n  url: {}\n  host: ivcap.test.example\n  \
         access-token: {}\n  access-token-expiry: 2999-01-01T00:00:00Z\n",
        s.base_url(),
        ivcap_standin::TOKEN
    );
    std::fs::write(cfg.join("config.yaml"), yaml).unwrap();
    let xdg = dir.path().join("xdg");
    let client = spawn(&["--context"], &[("XDG_CONFIG_HOME", xdg.to_str().unwrap())], dir.path()).await;
    ok(&call(&client, "list_services", json!({})).await);
    let sent = &s.requests_to(Method::GET, "/1/services2")[0];
    assert_eq!(sent.header("host").as_deref(), Some("ivcap.test.example"));
    assert_eq!(sent.header("authorization").as_deref(), Some("Bearer test-token"));
}

#[tokio::test]
async fn bad_arguments_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let client = local(&dir.path().join("store")).await;
    let limit = err(&call(&client, "list_services", json!({"limit": 0})).await);
    assert!(limit.contains("'limit'") && limit.contains("1 to 50"), "{limit}");
    let page = err(&call(&client, "list_services", json!({"page": "not-a-token!"})).await);
    assert!(page.contains("'page'") && page.contains("next_page"), "{page}");
    let typo = err(&call(&client, "list_services", json!({"serach": "x"})).await);
    assert!(typo.contains("serach"), "{typo}");
    let empty = err(&call(&client, "get_service", json!({"service": " "})).await);
    assert!(empty.contains("'service'"), "{empty}");
}

fn write_service(store: &std::path::Path, file: &str, body: Value) {
    std::fs::create_dir_all(store.join("services")).unwrap();
    std::fs::write(store.join("services").join(file), body.to_string()).unwrap();
}

#[tokio::test]
async fn local_services_are_listed_and_described() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let empty = local(&store).await;
    let none = ok(&call(&empty, "list_services", json!({})).await);
    assert!(none["note"].as_str().unwrap().contains("services/<name>.json"));

    write_service(
        &store,
        "echo.json",
        json!({"name": "echo", "description": "Echoes", "fn_schema": pydantic_schema(), "command": ["cat"]}),
    );
    write_service(&store, "hello.json", json!({"description": "Says hello", "url": "http://127.0.0.1:9/"}));
    write_service(&store, "broken.json", json!({"name": "broken"}));
    std::fs::write(store.join("services/garbage.json"), "{not json").unwrap();

    let client = local(&store).await;
    let listed = ok(&call(&client, "list_services", json!({"limit": 2})).await);
    let names: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["broken", "echo"], "sorted by name; unreadable files skipped");
    let rest = ok(&call(&client, "list_services", json!({"limit": 2, "page": listed["next_page"]})).await);
    assert_eq!(rest["items"][0]["id"], "urn:ivcap:service:hello");
    assert_eq!(rest["next_page"], Value::Null);

    let echo = ok(&call(&client, "get_service", json!({"service": "echo"})).await);
    assert_eq!(echo["status"], "active");
    assert_eq!(echo["request_schema"]["properties"]["times"], json!({"type": "integer"}));
    let by_urn = ok(&call(&client, "get_service", json!({"service": "urn:ivcap:service:hello"})).await);
    assert_eq!(by_urn["name"], "hello");
    let broken = ok(&call(&client, "get_service", json!({"service": "broken"})).await);
    assert_eq!(broken["status"], "error");
    assert!(broken["note"].as_str().unwrap().contains("neither 'command'"));
}

/// `filter`, `order_by`, `order_desc` and `at_time` on list_services: applied, kept by the
/// page token, passed to the platform as given, and refused before any request when wrong.
async fn services_are_filtered_and_ordered(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    env.add_echo_service("alpha", "First letter", None);
    env.add_echo_service("alphabet", "All letters", None);
    env.add_echo_service("beta", "Second letter", None);
    env.add_echo_service("gamma", "Third letter", None);

    let got = all_pages(c, "list_services", json!({"filter": "name ~= 'ALP%'", "limit": 1})).await;
    assert_eq!(texts(&got, "name"), ["alpha", "alphabet"]);
    let filter = "description ~= '%letter' and (name = 'beta' or name = 'gamma')";
    let args = json!({"filter": filter, "order_by": "name", "order_desc": true, "limit": 1});
    assert_eq!(texts(&all_pages(c, "list_services", args).await, "name"), ["gamma", "beta"]);
    let both = ok(&call(c, "list_services", json!({"search": "alpha", "filter": "description = 'All letters'"})).await);
    assert_eq!(texts(both["items"].as_array().unwrap(), "name"), ["alphabet"]);
    let by_description = ok(&call(c, "list_services", json!({"order_by": "description"})).await);
    assert_eq!(texts(by_description["items"].as_array().unwrap(), "name"), ["alphabet", "alpha", "beta", "gamma"]);

    if let Some(s) = &env.standin {
        let sent: Vec<_> =
            s.requests_to(Method::GET, "/1/services2").into_iter().filter(|r| r.path == "/1/services2").collect();
        assert!(sent.iter().any(|r| r.query_param("filter").as_deref() == Some("name ~= 'ALP%'")), "{sent:?}");
        let ordered = sent.iter().find(|r| r.query_param("filter").as_deref() == Some(filter)).unwrap();
        assert_eq!(ordered.query_param("order-by").as_deref(), Some("name"));
        assert_eq!(ordered.query_param("order-desc").as_deref(), Some("true"));
        let at = ok(&call(c, "list_services", json!({"at_time": "2026-01-31T13:00:00+01:00"})).await);
        assert_eq!(at["items"].as_array().unwrap().len(), 4);
        let last = s.requests_to(Method::GET, "/1/services2").pop().unwrap();
        assert_eq!(last.query_param("at-time").as_deref(), Some("2026-01-31T12:00:00Z"));
        s.clear_requests();
    } else {
        let e = err(&call(c, "list_services", json!({"at_time": "2026-01-31T12:00:00Z"})).await);
        assert!(e.contains("'at_time'") && e.contains("no history"), "{e}");
    }

    for (args, wants) in [
        (json!({"filter": "name ~= 'x"}), vec!["'filter'", "not closed", "name ~= 'hello%'"]),
        (json!({"filter": "colour = 'red'"}), vec!["'filter'", "unknown field 'colour'", "id, name, description"]),
        (json!({"order_by": "size"}), vec!["'order_by'", "'size'", "name, description"]),
        (json!({"order_desc": true}), vec!["'order_desc'", "order_by"]),
        (json!({"at_time": "yesterday"}), vec!["'at_time'", "RFC 3339"]),
    ] {
        let e = err(&call(c, "list_services", args.clone()).await);
        assert!(wants.iter().all(|w| e.contains(w)), "{args}: {e}");
    }
    if let Some(s) = &env.standin {
        assert!(s.requests_to(Method::GET, "/1/services2").is_empty(), "invalid arguments sent nothing");
    }
}

/// A service name is resolved the same way wherever one is taken (`get_service`, `submit_job`):
/// an unknown name is "no such service" with the services whose names contain it, or says that
/// none does; a name two services share is "ambiguous" with both URNs. Neither creates a job.
async fn unknown_and_ambiguous_service_names_are_clear_errors(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let beta = env.add_echo_service("beta", "Does beta things", None);
    let alphas = env.add_echo_service("alphas", "More than one alpha", None);
    let named_alpha = |key| EchoService { key, name: "alpha", description: "An alpha", schema: None, seconds: 0 };
    let alpha_1 = env.add_service(&named_alpha("alpha1"));
    let alpha_2 = env.add_service(&named_alpha("alpha2"));

    for tool in ["get_service", "submit_job"] {
        let call_with = |service: &str| {
            let args = match tool {
                "get_service" => json!({"service": service}),
                _ => json!({"service": service, "input": {}, "wait_seconds": 0}),
            };
            call(c, tool, args)
        };

        let unknown = err(&call_with("bet").await);
        assert!(unknown.contains(&format!("no such service: 'bet' (similar: beta [{beta}])")), "{tool}: {unknown}");
        assert!(unknown.contains("call list_services"), "{tool}: {unknown}");
        let several = err(&call_with("lph").await);
        for id in [&alpha_1, &alpha_2, &alphas] {
            assert!(several.contains(id.as_str()), "{tool}: {id} in {several}");
        }
        assert!(!several.contains(&beta), "{tool}: only names containing 'lph': {several}");
        let none = err(&call_with("zzz").await);
        assert!(none.contains("no such service: 'zzz' (no service has a similar name)"), "{tool}: {none}");

        let ambiguous = err(&call_with("alpha").await);
        assert!(ambiguous.contains("'alpha' matches more than one service"), "{tool}: {ambiguous}");
        assert!(
            ambiguous.contains(&format!("alpha [{alpha_1}]")) && ambiguous.contains(&format!("alpha [{alpha_2}]")),
            "{tool}: {ambiguous}"
        );
        assert!(!ambiguous.contains(&alphas), "{tool}: 'alphas' is not called 'alpha': {ambiguous}");
        assert!(ambiguous.contains("pass the full URN"), "{tool}: {ambiguous}");

        // A URN is not a name: the platform reads it directly (its URNs are opaque ids, so nothing
        // is similar); the local store's URNs end in the definition's name, which is searched.
        let missing = err(&call_with("urn:ivcap:service:9999").await);
        assert!(missing.contains("no such service") && missing.contains("urn:ivcap:service:9999"), "{tool}: {missing}");
        assert!(missing.contains("call list_services"), "{tool}: {missing}");
    }
    assert_eq!(env.jobs_created(), 0, "no job for an unknown or ambiguous service");

    // The full URN the message asks for resolves the ambiguity.
    let picked = ok(&call(c, "get_service", json!({"service": alpha_2})).await);
    assert_eq!((picked["id"].as_str(), picked["name"].as_str()), (Some(alpha_2.as_str()), Some("alpha")));
}
