//! Waiting for a job: requests sent to IVCAP and time to result for a 10 s job.
//!
//! Method: start the stand-in IVCAP with one service whose jobs take 10 s and answer 202s
//! with `retry-later: 10` (the platform's usual value), spawn the release binary in platform
//! mode against it, and drive it over stdio with an rmcp client:
//! - **long-poll**: `submit_job` with `wait_seconds: 30` (the create holds with `Timeout: 30`);
//! - **poll**: `submit_job` with `wait_seconds: 0`, then `get_job` with `wait_seconds: 30`.
//!
//! Each scenario runs `RUNS` times; the stand-in's request log gives the requests of each run
//! (all of them: service lookup, schema aspect, create, polls, output), and time to result is
//! measured from sending `submit_job` to the answer carrying `succeeded`. Prints the median
//! time and the request counts.
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

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> Value {
    let Value::Object(map) = args else { panic!("arguments must be an object") };
    let result = client.call_tool(CallToolRequestParams::new(tool.to_string()).with_arguments(map)).await.unwrap();
    assert_ne!(result.is_error, Some(true), "{tool} failed: {result:?}");
    result.structured_content.expect("structured content")
}

/// One run: (time to result, requests, of which job reads).
async fn run(standin: &StandIn, client: &RunningService<RoleClient, ()>, long_poll: bool) -> (Duration, usize, usize) {
    standin.clear_requests();
    let input = json!({"msg": "bench"});
    let start = Instant::now();
    let job = if long_poll {
        call(client, "submit_job", json!({"service": SERVICE, "input": input, "wait_seconds": 30})).await
    } else {
        let job = call(client, "submit_job", json!({"service": SERVICE, "input": input, "wait_seconds": 0})).await;
        call(client, "get_job", json!({"job_id": job["job_id"], "wait_seconds": 30})).await
    };
    let elapsed = start.elapsed();
    assert_eq!(job["status"], "succeeded", "{job}");
    let requests = standin.requests();
    let reads = requests.iter().filter(|r| r.method == "GET" && r.path.contains("/jobs/")).count();
    (elapsed, requests.len(), reads)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let standin = StandIn::start().await;
        let schema = json!({"type": "object", "required": ["msg"], "properties": {"msg": {"type": "string"}}});
        standin.add_service(SERVICE, "bench", "Takes 10 s", &[schema]);
        standin.script_jobs(SERVICE, JobScript::echo().running_for(Duration::from_secs(10)).retry_later(10));
        let dir = std::env::temp_dir();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ivcap-mcp"));
        cmd.current_dir(&dir).env("IVCAP_URL", standin.base_url()).env("IVCAP_JWT", TOKEN).env_remove("IVCAP_BASE_URL");
        let transport = TokioChildProcess::builder(cmd).stderr(std::process::Stdio::null()).spawn().unwrap().0;
        let client = ().serve(transport).await.unwrap();

        for (name, long_poll) in [
            ("long-poll: submit_job wait_seconds 30", true),
            ("poll: submit_job wait 0 + get_job wait_seconds 30", false),
        ] {
            let mut runs = Vec::new();
            for _ in 0..RUNS {
                runs.push(run(&standin, &client, long_poll).await);
            }
            let mut times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
            times.sort();
            let requests: Vec<usize> = runs.iter().map(|r| r.1).collect();
            let reads: Vec<usize> = runs.iter().map(|r| r.2).collect();
            println!(
                "10 s job, {name}, {RUNS} runs: time to result median {:.2} s (min {:.2}, max {:.2}); \
                 requests per run {requests:?}, of which job reads {reads:?}",
                times[RUNS / 2].as_secs_f64(),
                times[0].as_secs_f64(),
                times[RUNS - 1].as_secs_f64()
            );
        }
        client.cancel().await.unwrap();
    });
}
