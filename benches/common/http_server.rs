//! Shared by the HTTP benchmarks: the release binary with `--http`, started and found by the
//! address it prints on stderr.

use tokio::io::{AsyncBufReadExt, BufReader};

/// A running server; killed when dropped.
pub struct HttpServer {
    pub child: tokio::process::Child,
    /// `http://…/mcp`.
    pub url: String,
}

/// Starts `ivcap-mcp ARGS` (which must include `--http`) with only `envs` of the IVCAP
/// variables set, and waits until it serves.
pub async fn start(args: &[&str], envs: &[(&str, &str)]) -> HttpServer {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ivcap-mcp"))
        .args(args)
        .env_remove("IVCAP_URL")
        .env_remove("IVCAP_JWT")
        .env_remove("IVCAP_BASE_URL")
        .env_remove("IVCAP_MCP_TOKEN")
        .env_remove("RUST_LOG")
        .envs(envs.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ivcap-mcp");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut url = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(rest) = line.split("serving MCP on ").nth(1) {
            url = rest.split_whitespace().next().unwrap().trim_end_matches(',').to_string();
            break;
        }
        eprintln!("{line}");
    }
    assert!(url.ends_with("/mcp"), "server did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    HttpServer { child, url }
}
