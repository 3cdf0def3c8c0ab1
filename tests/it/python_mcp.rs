//! The official Python `mcp` client for the tests that drive the server with it (load balancer,
//! elicitation).

use std::path::{Path, PathBuf};

/// The venv with the official Python `mcp` client (examples/requirements.txt), shared with
/// .ci/examples.sh: target/python-venv, rebuilt when the requirements change.
pub fn python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/python-venv");
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/requirements.txt");
    let stamp = venv.join(".installed");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&stamp).is_some_and(|s| modified(&requirements).is_some_and(|r| s >= r)) {
        return venv.join("bin/python");
    }
    let made = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "PYTHON MCP CLIENT TESTS CANNOT RUN: python3 -m venv {} failed",
        venv.display()
    );
    let pip = std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&requirements)
        .output()
        .expect("the venv has pip");
    assert!(
        pip.status.success(),
        "PYTHON MCP CLIENT TESTS CANNOT RUN: installing the Python mcp client from PyPI failed:\n{}",
        String::from_utf8_lossy(&pip.stderr)
    );
    std::fs::write(&stamp, "").unwrap();
    venv.join("bin/python")
}
