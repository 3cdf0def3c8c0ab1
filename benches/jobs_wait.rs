//! Waiting for a job: requests sent to IVCAP and time to result for a 10 s job.
//!
//! Method: start the stand-in IVCAP with services whose jobs take 10 s and 11 s and answer
//! 202s with `retry-later: 10` (the platform's usual value), spawn the release binary in
//! platform mode against it, and drive it over stdio with an rmcp client:
//! - **long-poll**: `submit_job` with `wait_seconds: 30` (the create holds with `Timeout: 30`);
//! - **poll**: `submit_job` with `wait_seconds: 0`, then `get_job` with `wait_seconds: 30`;
//! - **baseline**: a plain reqwest client doing the same job directly: create with
//!   `Timeout: 0`, then read the job once a second until it has finished.
//!
//! The 11 s job is the case a wait that kept `retry-later` as the floor of every poll gets
//! wrong (its second poll would come at 20 s). Each scenario runs `RUNS` times; the stand-in's
//! request log gives the requests of each run (all of them: service lookup, schema aspect,
//! create, polls, output), and time to result is measured from sending `submit_job` (or the
//! create) to the answer carrying `succeeded`. Prints the median time and the request counts.
//! Targets: time to result <= run time + 1 s, <= 8 requests.
//! Run: `cargo bench --bench jobs_wait`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::panic)]

use std::time::{Duration, Instant};

use ivcap_standin::{JobScript, StandIn, TOKEN};
use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt, service::RunningService};
use serde_json::{Value, json};

const RUNS: usize = 3;
const SERVICE: &str = "urn:ivcap:service:bench";
const SLOWER: &str = "urn:ivcap:service:bench-11s";

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Value {
    let Value::Object(map) = args else { panic!("arguments must be an object") };
    let result = client.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{tool} failed: {result:?}");
    result.structured_content.expect("structured content")
}

#[derive(Clone, Copy)]
enum Way {
    LongPoll,
    Poll,
    Baseline,
}

/// One run: (time to result, requests, of which job reads).
async fn run(
    standin: &StandIn,
    client: &RunningService<RoleClient, ()>,
    service: &str,
    way: Way,
) -> (Duration, usize, usize) {
    standin.clear_requests();
    let input = json!({"msg": "bench"});
    let start = Instant::now();
    let status = match way {
        Way::LongPoll => call(client, "submit_job", json!({"service": service, "input": input, "wait_seconds": 30}))
            .await["status"]
            .clone(),
        Way::Poll => {
            let job = call(client, "submit_job", json!({"service": service, "input": input, "wait_seconds": 0})).await;
            call(client, "get_job", json!({"job_id": job["job_id"], "wait_seconds": 30})).await["status"].clone()
        }
        Way::Baseline => plain_client(standin.base_url(), service, &input).await,
    };
    let elapsed = start.elapsed();
    assert_eq!(status, "succeeded");
    let requests = standin.requests();
    let reads = requests.iter().filter(|r| r.method == "GET" && r.path.contains("/jobs/")).count();
    (elapsed, requests.len(), reads)
}

/// The baseline: create, then read the job every second until it has finished.
async fn plain_client(base: &str, service: &str, input: &Value) -> Value {
    let http = reqwest::Client::new();
    let service = service.replace(':', "%3A");
    let send = |request: reqwest::RequestBuilder| async move {
        request.bearer_auth(TOKEN).send().await.unwrap().json::<Value>().await.unwrap()
    };
    let created =
        send(http.post(format!("{base}/1/services2/{service}/jobs")).header("Timeout", "0").json(input)).await;
    let job = created["job-id"].as_str().unwrap().replace(':', "%3A");
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let read = send(http.get(format!("{base}/1/services2/{service}/jobs/{job}"))).await;
        if matches!(read["status"].as_str(), Some("succeeded" | "failed" | "error")) {
            return read["status"].clone();
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let standin = StandIn::start().await;
        let schema = json!({"type": "object", "required": ["msg"], "properties": {"msg": {"type": "string"}}});
        standin.add_service(SERVICE, "bench", "Takes 10 s", std::slice::from_ref(&schema));
        standin.script_jobs(SERVICE, JobScript::echo().running_for(Duration::from_secs(10)).retry_later(10));
        standin.add_service(SLOWER, "bench-11s", "Takes 11 s", &[schema]);
        standin.script_jobs(SLOWER, JobScript::echo().running_for(Duration::from_secs(11)).retry_later(10));
        let dir = std::env::temp_dir();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ivcap-mcp"));
        cmd.current_dir(&dir).env("IVCAP_URL", standin.base_url()).env("IVCAP_JWT", TOKEN).env_remove("IVCAP_BASE_URL");
        let transport = TokioChildProcess::builder(cmd).stderr(std::process::Stdio::null()).spawn().unwrap().0;
        let client = ().serve(transport).await.unwrap();

        for (service, seconds) in [(SERVICE, 10), (SLOWER, 11)] {
            for (name, way) in [
                ("long-poll: submit_job wait_seconds 30", Way::LongPoll),
                ("poll: submit_job wait 0 + get_job wait_seconds 30", Way::Poll),
                ("baseline: plain client polling every 1 s", Way::Baseline),
            ] {
                let mut runs = Vec::new();
                for _ in 0..RUNS {
                    runs.push(run(&standin, &client, service, way).await);
                }
                let mut times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
                times.sort();
                let requests: Vec<usize> = runs.iter().map(|r| r.1).collect();
                let reads: Vec<usize> = runs.iter().map(|r| r.2).collect();
                println!(
                    "{seconds} s job, {name}, {RUNS} runs: time to result median {:.2} s (min {:.2}, max {:.2}); \
                 requests per run {requests:?}, of which job reads {reads:?}",
                    times[RUNS / 2].as_secs_f64(),
                    times[0].as_secs_f64(),
                    times[RUNS - 1].as_secs_f64()
                );
            }
        }
        client.cancel().await.unwrap();
    });
}
