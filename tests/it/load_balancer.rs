//! Two `--http --stateless` replicas behind a real HAProxy (Debian's `haproxy`, installed
//! when missing; the configuration is examples/deployment/haproxy.cfg, as documented in
//! docs/deployment.md), health-checked on `/healthz`, under load from the official Python
//! `mcp` client (tests/python/lb_client.py: a few hundred calls, job waits among them):
//!
//! - SIGTERM to one replica, which drains and exits 0, then it is restarted, then the same
//!   for the other one: no call fails;
//! - SIGKILL to one replica while it reports a job wait in progress: only calls in flight at
//!   that moment may fail; every call sent afterwards succeeds (docs/deployment.md says what
//!   HAProxy does with the call in flight).
//!
//! Both counts are printed. Everything listens on loopback. Needs haproxy (apt-get) and the
//! Python client (PyPI): when either cannot be had the test fails, saying why.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ivcap_standin::{JobScript, StandIn, TOKEN};
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::http::{Server, http};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Concurrent client sessions.
const WORKERS: usize = 8;
/// Calls at least, per run.
const MIN_CALLS: usize = 300;

/// The `haproxy` program, installed with apt-get when missing.
fn haproxy() -> PathBuf {
    let found = || {
        ["/usr/sbin/haproxy", "/usr/bin/haproxy", "/usr/local/sbin/haproxy"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
    };
    if let Some(path) = found() {
        return path;
    }
    eprintln!("load_balancer: haproxy is missing; running apt-get install -y haproxy");
    // A new machine may have no package lists yet: install, else update and install again.
    // Other tests may hold the dpkg lock (the browser tests install Chromium): wait for it.
    let apt = |args: &[&str]| {
        std::process::Command::new("apt-get")
            .args(["-o", "DPkg::Lock::Timeout=300"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
    };
    let install = apt(&["install", "-y", "--no-install-recommends", "haproxy"]);
    let install = match install {
        Ok(out) if !out.status.success() => {
            apt(&["update", "-qq"]).and_then(|_| apt(&["install", "-y", "--no-install-recommends", "haproxy"]))
        }
        other => other,
    };
    match (install, found()) {
        (_, Some(path)) => path,
        (Ok(out), None) => panic!(
            "LOAD BALANCER TEST CANNOT RUN: `apt-get install -y haproxy` failed ({}); install Debian's haproxy \
             package (as root) and run it again:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
        (Err(e), None) => panic!("LOAD BALANCER TEST CANNOT RUN: no haproxy and no apt-get ({e}); install haproxy"),
    }
}

/// A free loopback address (bound, then released).
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// HAProxy on examples/deployment/haproxy.cfg, in front of `a` and `b`.
struct Balancer {
    /// Killed when dropped.
    _child: tokio::process::Child,
    url: String,
    stats: String,
}

impl Balancer {
    async fn start(a: &str, b: &str) -> Balancer {
        let (listen, stats) = (free_addr(), free_addr());
        let mut child = tokio::process::Command::new(haproxy())
            .args(["-db", "-f"])
            .arg(Path::new(ROOT).join("examples/deployment/haproxy.cfg"))
            .envs([("MCP_LISTEN", &listen), ("REPLICA_A", &a.to_string()), ("REPLICA_B", &b.to_string())])
            .env("STATS_LISTEN", &stats)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start haproxy");
        // HAProxy's health-check warnings are expected here: into the captured output.
        if let Some(stderr) = child.stderr.take() {
            crate::common::forward_stderr("haproxy", stderr);
        }
        Balancer { _child: child, url: format!("http://{listen}/mcp"), stats: format!("http://{stats}/stats;csv") }
    }

    /// Waits until HAProxy's health checks see each replica as `up` (or down).
    async fn wait_for(&self, a_up: bool, b_up: bool) {
        let want = |up: bool| if up { "UP" } else { "DOWN" };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(resp) = http().get(&self.stats).send().await {
                last = resp.text().await.unwrap_or_default();
                let status = |server: &str| {
                    last.lines()
                        .map(|l| l.split(',').collect::<Vec<_>>())
                        .find(|f| f.first() == Some(&"replicas") && f.get(1) == Some(&server))
                        .and_then(|f| f.get(17).map(|s| s.to_string()))
                };
                if status("a").as_deref() == Some(want(a_up)) && status("b").as_deref() == Some(want(b_up)) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("haproxy did not see a {} and b {} within 30 s:\n{last}", want(a_up), want(b_up));
    }
}

/// A replica on `addr` against the stand-in.
async fn replica(standin: &StandIn, addr: &str) -> Server {
    let envs = [("IVCAP_URL", standin.base_url()), ("IVCAP_JWT", TOKEN)];
    Server::start_on(addr, &["--stateless"], &envs, tempfile::tempdir().unwrap()).await
}

fn signal(server: &Server, name: &str) {
    let pid = server.child.id().expect("replica running").to_string();
    assert!(std::process::Command::new("kill").args([name, &pid]).status().unwrap().success());
}

/// Waits for a signalled replica to exit; its exit status.
async fn exit_of(mut server: Server) -> std::process::ExitStatus {
    tokio::time::timeout(Duration::from_secs(45), server.child.wait())
        .await
        .expect("the replica exits within its shutdown grace")
        .unwrap()
}

/// The load generator, writing one JSON line per call, read as they come.
struct Load {
    child: tokio::process::Child,
    calls: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    reader: tokio::task::JoinHandle<()>,
    stop: PathBuf,
    _dir: tempfile::TempDir,
}

impl Load {
    /// Starts it and waits until calls are flowing.
    async fn start(url: &str) -> Load {
        let dir = tempfile::tempdir().unwrap();
        let stop = dir.path().join("stop");
        let mut child = tokio::process::Command::new(crate::python_mcp::python())
            .arg(Path::new(ROOT).join("tests/python/lb_client.py"))
            .args([url, stop.to_str().unwrap(), &MIN_CALLS.to_string(), &WORKERS.to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start tests/python/lb_client.py");
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = calls.clone();
        let reader = tokio::spawn(async move {
            while let Some(line) = lines.next_line().await.unwrap() {
                let call = serde_json::from_str::<Value>(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                seen.lock().unwrap().push(call);
            }
        });
        let flowing = async {
            while calls.lock().unwrap().len() < 2 * WORKERS {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), flowing).await.expect("the load starts within 60 s");
        Load { child, calls, reader, stop, _dir: dir }
    }

    /// Tells it to finish and returns every call it made.
    async fn finish(mut self) -> Vec<Value> {
        std::fs::write(&self.stop, "").unwrap();
        let status = tokio::time::timeout(Duration::from_secs(120), self.child.wait())
            .await
            .expect("the load generator finishes")
            .unwrap();
        assert!(status.success(), "lb_client.py failed: {status:?}");
        self.reader.await.unwrap();
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

/// A stand-in with the service the load calls; its jobs run for 0.8 s.
async fn standin() -> StandIn {
    let standin = StandIn::start().await;
    standin.add_service("urn:ivcap:service:1111", "alpha", "Does alpha things", &[json!({"type": "object"})]);
    standin.script_jobs("urn:ivcap:service:1111", JobScript::echo().running_for(Duration::from_millis(800)));
    standin
}

/// After 3 s of load: SIGTERM to `server` (on `addr`), which must exit 0; then a new replica
/// on `addr`, once HAProxy sees it up.
async fn drain_and_restart(standin: &StandIn, balancer: &Balancer, server: Server, addr: &str) -> Server {
    tokio::time::sleep(Duration::from_secs(3)).await;
    signal(&server, "-TERM");
    let status = exit_of(server).await;
    assert!(status.success(), "the replica on {addr} exits 0 after draining: {status:?}");
    let restarted = replica(standin, addr).await;
    balancer.wait_for(true, true).await;
    restarted
}

fn summary(calls: &[Value]) -> (usize, usize, Vec<&Value>) {
    let waits = calls.iter().filter(|c| c["tool"] == "submit_job").count();
    let failed: Vec<&Value> = calls.iter().filter(|c| c["ok"] != true).collect();
    (calls.len(), waits, failed)
}

/// Two replicas on one stand-in behind HAProxy, both seen healthy, with the load running.
struct Deployment {
    standin: StandIn,
    addr_a: String,
    addr_b: String,
    a: Server,
    b: Server,
    balancer: Balancer,
    load: Load,
}

impl Deployment {
    async fn start() -> Self {
        let standin = standin().await;
        let (addr_a, addr_b) = (free_addr(), free_addr());
        let a = replica(&standin, &addr_a).await;
        let b = replica(&standin, &addr_b).await;
        let balancer = Balancer::start(&addr_a, &addr_b).await;
        balancer.wait_for(true, true).await;
        let load = Load::start(&balancer.url).await;
        Deployment { standin, addr_a, addr_b, a, b, balancer, load }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_haproxy_drain_on_sigterm_without_failing_a_call() {
    let Deployment { standin, addr_a, addr_b, a, b, balancer, load } = Deployment::start().await;

    let a = drain_and_restart(&standin, &balancer, a, &addr_a).await;
    let b = drain_and_restart(&standin, &balancer, b, &addr_b).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = load.finish().await;
    let (total, waits, failed) = summary(&calls);
    let created = standin.jobs().len();
    eprintln!(
        "LOAD BALANCER (SIGTERM to a, restart, then b): {total} calls ({waits} submit_job, {created} IVCAP jobs \
         created), {} failed",
        failed.len()
    );
    assert_eq!(created, waits, "each submit_job created one job");
    assert!(total >= MIN_CALLS, "{total} calls");
    assert!(failed.is_empty(), "calls failed while replicas drained: {failed:#?}");
    drop((a, b, balancer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_behind_haproxy_lose_only_the_calls_in_flight_on_sigkill() {
    let Deployment { standin, addr_a, addr_b: _, a, b, balancer, load } = Deployment::start().await;

    // Kill it while it reports a job wait in progress (its own /metrics), not when idle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = async {
        loop {
            let metrics = http().get(a.url("/metrics")).send().await.unwrap().text().await.unwrap();
            if metrics.lines().any(|l| l.starts_with("ivcap_mcp_job_waits_in_progress ") && !l.ends_with(" 0")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), waiting).await.expect("replica a waits for a job within 20 s");
    let killed_at = now();
    signal(&a, "-KILL");
    let _ = exit_of(a).await;
    balancer.wait_for(false, true).await;
    let noticed_at = now();
    let a = replica(&standin, &addr_a).await;
    balancer.wait_for(true, true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let calls = load.finish().await;
    let (total, waits, failed) = summary(&calls);
    let in_flight = calls
        .iter()
        .filter(|c| c["start"].as_f64().unwrap() <= killed_at && c["end"].as_f64().unwrap() >= killed_at)
        .count();
    let created = standin.jobs().len();
    eprintln!(
        "LOAD BALANCER (SIGKILL to a, health check noticed after {:.1} s): {total} calls ({waits} submit_job, \
         {created} IVCAP jobs created), {in_flight} in flight on either replica at the kill, {} failed",
        noticed_at - killed_at,
        failed.len()
    );
    for call in &failed {
        eprintln!("  failed: {call}");
    }
    assert!(total >= MIN_CALLS, "{total} calls");
    // A failed call was in flight when the replica died: sent before, answered (with the
    // failure) after. Every call sent after the kill succeeded, before the health check
    // noticed too (a refused connection is sent to the other replica).
    for call in &failed {
        let (start, end) = (call["start"].as_f64().unwrap(), call["end"].as_f64().unwrap());
        assert!(start <= killed_at && end >= killed_at, "a call not in flight at the kill failed: {call}");
    }
    assert!(failed.len() <= WORKERS, "at most one call in flight per session: {failed:#?}");
    drop((a, b, balancer));
}

#[test]
fn the_documented_haproxy_configuration_is_the_tested_one() {
    let config = std::fs::read_to_string(Path::new(ROOT).join("examples/deployment/haproxy.cfg")).unwrap();
    // The file's opening comment (how to run it) is not part of the documented block.
    let body = config.split_once("\n\n").map(|(_, rest)| rest.trim()).unwrap();
    let docs = std::fs::read_to_string(Path::new(ROOT).join("docs/deployment.md")).unwrap();
    assert!(docs.contains(body), "docs/deployment.md must show examples/deployment/haproxy.cfg as it is");
}
