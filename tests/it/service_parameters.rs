//! Services described by `parameters` (the platform's `ParameterDefT` list) rather than a tool
//! definition, in both modes: `get_service` shows them and the request schema built from them,
//! `submit_job` validates against it, and `--service-tools` offers such a service as a tool.

use serde_json::{Value, json};

use crate::common::{Env, both_modes, call, err, ok, spawn};

both_modes!(parameters_describe_a_service_and_check_its_input, parameter_services_become_service_tools);

/// Parameters of every type the SDK knows.
fn parameters() -> Value {
    json!([
        {"name": "msg", "type": "string", "description": "What to say"},
        {"name": "times", "type": "int", "description": "How often", "default": "2"},
        {"name": "mode", "type": "option", "options": [{"value": "fast", "description": "quick"}, {"value": "slow"}]},
        {"name": "image", "type": "artifact", "description": "A picture", "optional": true},
        {"name": "set", "type": "collection", "optional": true}
    ])
}

/// An echo service with [`parameters`] and no tool definition.
fn add_parameter_service(env: &Env, name: &str) -> String {
    let id = env.add_echo_service(name, "Described by parameters", None);
    match &env.standin {
        Some(s) => s.set_service_parameters(&id, parameters()),
        None => {
            let path = env.store.join("services").join(format!("{name}.json"));
            let mut def: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            def["parameters"] = parameters();
            std::fs::write(&path, def.to_string()).unwrap();
        }
    }
    id
}

async fn parameters_describe_a_service_and_check_its_input(on_platform: bool) {
    let env = Env::start(on_platform).await;
    let c = &env.client;
    let id = add_parameter_service(&env, "params");

    let svc = ok(&call(c, "get_service", json!({"service": "params"})).await);
    assert_eq!(svc["id"].as_str(), Some(id.as_str()));
    let listed: Vec<&str> = svc["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(listed, ["msg", "times", "mode", "image", "set"], "{svc}");
    assert_eq!(
        svc["parameters"][1],
        json!({"name": "times", "type": "int", "description": "How often", "optional": true, "default": "2"})
    );
    assert_eq!(svc["parameters"][2]["options"], json!(["fast", "slow"]));
    assert_eq!(svc["parameters"][0]["optional"], false);
    let schema = &svc["request_schema"];
    assert_eq!(schema["required"], json!(["msg", "mode"]), "{schema}");
    assert_eq!(schema["properties"]["times"]["default"], 2);
    assert_eq!(schema["properties"]["mode"]["enum"], json!(["fast", "slow"]));
    assert_eq!(schema["properties"]["image"]["type"], "string");
    assert!(schema["properties"]["image"]["description"].as_str().unwrap().contains("artifact URN"), "{schema}");
    assert!(svc["note"].as_str().unwrap().contains("built from the service's parameters"), "{svc}");

    let bad = err(&call(
        c,
        "submit_job",
        json!({"service": "params", "input": {"mode": "medium", "times": "3", "image": "picture.png"}}),
    )
    .await);
    assert!(bad.contains("invalid argument 'input'") && bad.contains("no job was created"), "{bad}");
    for problem in ["missing required property 'msg'", "/mode:", "/times:", "/image:"] {
        assert!(bad.contains(problem), "{problem} in {bad}");
    }
    let jobs = ok(&call(c, "list_jobs", json!({"service": "params"})).await);
    assert_eq!(jobs["items"], json!([]), "nothing was sent");

    let input =
        json!({"msg": "hi", "mode": "fast", "image": "urn:ivcap:artifact:0000", "set": "urn:ivcap:collection:1"});
    let job = ok(&call(c, "submit_job", json!({"service": id, "input": input, "wait_seconds": 20})).await);
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"], input, "sent as given");
}

async fn parameter_services_become_service_tools(on_platform: bool) {
    let env = Env::start(on_platform).await;
    add_parameter_service(&env, "params");
    let client = match &env.standin {
        Some(s) => {
            spawn(
                &["--service-tools", "params"],
                &[("IVCAP_URL", s.base_url()), ("IVCAP_JWT", ivcap_standin::TOKEN)],
                env.dir.path(),
            )
            .await
        }
        None => {
            spawn(&["--local", env.store.to_str().unwrap(), "--service-tools", "params"], &[], env.dir.path()).await
        }
    };
    let tools =
        crate::service_tools::service_tools_when(&client, |names| names.iter().any(|n| n == "svc_params")).await;
    let tool = tools.iter().find(|t| t.name == "svc_params").unwrap();
    let schema = Value::Object((*tool.input_schema).clone());
    assert_eq!(schema["required"], json!(["msg", "mode"]), "{schema}");
    assert_eq!(schema["properties"]["mode"]["enum"], json!(["fast", "slow"]));
    let refused = err(&call(&client, "svc_params", json!({"msg": "hi", "mode": "medium"})).await);
    assert!(refused.contains("mode"), "{refused}");
    client.cancel().await.unwrap();
}
