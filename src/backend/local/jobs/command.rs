//! `command` services: the program runs with the job input JSON on stdin, never through a
//! shell; its stdout is the result (JSON when it parses, else text).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::{Outcome, tail};

/// Runs `argv` (no shell) with `input` on stdin; kills it after `timeout`.
pub(super) async fn run_command(argv: &[String], dir: &Path, input: &Value, timeout: Duration) -> Outcome {
    let Some((program, args)) = argv.split_first() else {
        return Outcome::Error("the service's command is empty".into());
    };
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => return Outcome::Error(format!("cannot start '{program}': {e}; check the service's command")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let bytes = input.to_string().into_bytes();
        // A program that exits without reading its input is not an error here.
        tokio::spawn(async move {
            let _ = stdin.write_all(&bytes).await;
        });
    }
    // Dropping the child on timeout kills it (kill_on_drop).
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => {
            return Outcome::Error(format!(
                "'{program}' ran longer than {} s and was killed; raise timeout_seconds in the service definition",
                timeout.as_secs()
            ));
        }
        Ok(Err(e)) => return Outcome::Error(format!("lost '{program}': {e}")),
        Ok(Ok(output)) => output,
    };
    if !output.status.success() {
        let how = match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".into(),
        };
        let stderr = tail(&String::from_utf8_lossy(&output.stderr));
        return Outcome::Failed(if stderr.is_empty() {
            format!("'{program}' failed ({how}) and wrote nothing to stderr")
        } else {
            format!("'{program}' failed ({how}): {stderr}")
        });
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stdout = stdout.trim();
    if stdout.is_empty() {
        return Outcome::Succeeded { result: None, content_type: None };
    }
    match serde_json::from_str::<Value>(stdout) {
        Ok(v) => Outcome::Succeeded { result: Some(v), content_type: Some("application/json".into()) },
        Err(_) => Outcome::Succeeded {
            result: Some(Value::String(stdout.to_string())),
            content_type: Some("text/plain".into()),
        },
    }
}
