//! The released Python SDKs (`ivcap-client`, `ivcap-lambda`) in a virtual environment of the
//! tests' own, for the interoperability tests: what the SDKs write, this server reads, and
//! the other way round.
//!
//! The environment lives in `target/python-sdk` and is rebuilt when
//! `tests/python/requirements.txt` changes. When PyPI cannot be reached the tests that need it
//! say so on stderr and skip — unless `CI=true` (as CI runs `.ci/run`) or
//! `IVCAP_MCP_REQUIRE_PYTHON_SDK=1`, which turn that into a failure so that CI never passes
//! without them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

const REQUIREMENTS: &str = include_str!("../python/requirements.txt");

/// The venv's `python`, or `None` (after saying why on stderr) when PyPI is out of reach.
/// Panics on any other failure: a broken install is a test failure, not a skip.
pub fn python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Option<PathBuf>> = OnceLock::new();
    PYTHON.get_or_init(install).clone()
}

/// `let Some(python) = python_sdk::python_or_skip("test name") else { return };`
pub fn python_or_skip(test: &str) -> Option<PathBuf> {
    let python = python();
    if python.is_none() {
        eprintln!(
            "SKIPPED {test}: the Python SDKs could not be installed from PyPI (no network); \
             with CI=true or IVCAP_MCP_REQUIRE_PYTHON_SDK=1 this is a failure"
        );
    }
    python
}

fn install() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join("target/python-sdk");
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements");
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(REQUIREMENTS) {
        return Some(python);
    }
    let _ = std::fs::remove_dir_all(&venv);
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 is needed for the SDK interoperability tests");
    assert!(made.success(), "python3 -m venv {} failed", venv.display());
    let pip = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(root.join("tests/python/requirements.txt"))
        .output()
        .expect("the venv has pip");
    if !pip.status.success() {
        let stderr = String::from_utf8_lossy(&pip.stderr);
        let offline = stderr.contains("Could not find a version")
            || stderr.contains("NewConnectionError")
            || stderr.contains("Temporary failure in name resolution")
            || stderr.contains("Network is unreachable");
        let required = std::env::var("IVCAP_MCP_REQUIRE_PYTHON_SDK").is_ok_and(|v| v == "1")
            || std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(offline && !required, "installing tests/python/requirements.txt failed:\n{stderr}");
        eprintln!("PyPI is out of reach, the Python SDK tests skip:\n{stderr}");
        return None;
    }
    std::fs::write(&stamp, REQUIREMENTS).expect("write the venv stamp");
    Some(python)
}

/// Runs `script` with the venv's python; panics with its output when it fails, returns stdout.
pub fn run(python: &Path, script: &str, envs: &[(&str, &str)]) -> String {
    let out = Command::new(python)
        .args(["-c", script])
        // The developer's IVCAP variables go first, so that `envs` can set them.
        .env_remove("IVCAP_URL")
        .env_remove("IVCAP_BASE_URL")
        .env_remove("IVCAP_JWT")
        .env_remove("IVCAP_LOCAL_DIR")
        .envs(envs.iter().copied())
        .output()
        .expect("run the venv's python");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_pinned_sdks_are_installed() {
    let Some(python) = python_or_skip("the_pinned_sdks_are_installed") else {
        return;
    };
    let versions = run(
        &python,
        "from importlib.metadata import version\n\
         print(version('ivcap-client'), version('ivcap-lambda'))",
        &[],
    );
    let pinned: Vec<&str> = REQUIREMENTS.lines().filter_map(|l| l.split_once("==").map(|(_, v)| v.trim())).collect();
    assert_eq!(versions.split_whitespace().collect::<Vec<_>>(), pinned);
}
