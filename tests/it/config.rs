//! Every configuration error is a clear message on stderr and a non-zero exit, never a
//! panic, and nothing on stdout.

use std::process::Stdio;

use crate::common::command;

async fn run_failing(args: &[&str], envs: &[(&str, &str)], cwd: &std::path::Path) -> String {
    let out = command(args, envs, cwd).stdin(Stdio::null()).output().await.expect("run ivcap-mcp");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} {envs:?} should fail; stderr: {stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(!stderr.contains("s3cret"), "the token never appears: {stderr}");
    stderr
}

/// Arguments, environment, expected message.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[tokio::test]
async fn configuration_errors_exit_non_zero_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let cases: &[Case] = &[
        (&[], &[("IVCAP_JWT", "s3cret")], "IVCAP_URL is not"),
        (&[], &[("IVCAP_ACCESS_TOKEN", "s3cret")], "IVCAP_URL is not"),
        (&[], &[("IVCAP_URL", "https://ivcap.example")], "no token is set"),
        (&[], &[("IVCAP_URL", "not a url"), ("IVCAP_JWT", "s3cret")], "is not a URL"),
        (&["--url", "ftp://x"], &[("IVCAP_JWT", "s3cret")], "http:// or https://"),
        (&[], &[("IVCAP_BASE_URL", "http//broken")], "is not a URL"),
        (&["--context"], &[], "ivcap-cli/config.yaml"),
        (&["--env-file", "missing.env"], &[], "--env-file missing.env"),
        (&["--toolsets", "services,nope"], &[], "unknown toolset 'nope'"),
        (&["--no-such-flag"], &[], "--no-such-flag"),
        (&["--local", "--state-key", "short"], &[], "use at least 32 random bytes"),
        (&["--local"], &[("IVCAP_MCP_STATE_KEY", "short")], "is 5 bytes"),
        (&["--local", "--state-ttl", "0"], &[], "--state-ttl 0 is out of range"),
        (&["--confirm", "sometimes"], &[], "invalid value 'sometimes' for '--confirm <WHEN>'"),
    ];
    for (args, envs, expected) in cases {
        let stderr = run_failing(args, envs, cwd).await;
        assert!(stderr.contains(expected), "{args:?} {envs:?}: expected '{expected}' in: {stderr}");
    }
}

#[tokio::test]
async fn expired_cli_context_says_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join(".no-config/ivcap-cli");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.yaml"),
        "active-context: dev\ncontexts:\n- name: dev\n  url: https://dev.example\n  access-token: s3cret\n  access-token-expiry: 2001-01-01T00:00:00Z\n",
    )
    .unwrap();
    let stderr = run_failing(&["--context"], &[], dir.path()).await;
    assert!(stderr.contains("run `ivcap-mcp login --context dev`") && stderr.contains("expired"), "{stderr}");
    let stderr = run_failing(&["--context", "prod"], &[], dir.path()).await;
    assert!(stderr.contains("no context named 'prod'"), "{stderr}");
}

#[tokio::test]
async fn env_file_selects_the_platform() {
    // A .env file with a token and no URL is the same error as the variables themselves.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "IVCAP_JWT=s3cret\n").unwrap();
    let stderr = run_failing(&[], &[], dir.path()).await;
    assert!(stderr.contains("IVCAP_URL is not"), "{stderr}");
}

#[tokio::test]
async fn help_documents_every_flag_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(&["--help"], &[], dir.path()).output().await.unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "--local",
        "--url",
        "--context",
        "--env-file",
        "--toolsets",
        "--read-only",
        "--output-budget",
        "--search-memory",
        "IVCAP_URL",
        "IVCAP_JWT",
        "IVCAP_ACCESS_TOKEN",
        "IVCAP_BASE_URL",
        "IVCAP_LOCAL_DIR",
        "RUST_LOG",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}

#[tokio::test]
async fn a_local_store_that_is_a_file_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a store").unwrap();
    for (args, envs) in [(&["--local", "notes.txt"][..], &[][..]), (&[][..], &[("IVCAP_LOCAL_DIR", "notes.txt")][..])] {
        let out = command(args, envs, dir.path()).stdin(Stdio::null()).output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {envs:?}: {stderr}");
        assert!(stderr.contains("'notes.txt' exists and is not a folder"), "{stderr}");
    }
}

#[tokio::test]
async fn the_local_store_in_use_is_named_with_a_warning_when_it_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &'static [&'static str], envs: &'static [(&'static str, &'static str)]| {
        let mut cmd = command(args, envs, dir.path());
        async move {
            let out = cmd.stdin(Stdio::null()).output().await.unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stderr).into_owned()
        }
    };
    let missing = dir.path().join("new-store").display().to_string();
    let stderr = run(&["--local", "new-store"], &[]).await;
    let warning = stderr.lines().find(|l| l.contains("does not exist yet")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(warning.contains("WARN") && warning.contains(&missing), "the store's full path, as a warning: {warning}");
    assert!(!dir.path().join("new-store").exists(), "nothing is created before the first write");

    std::fs::create_dir(dir.path().join("store")).unwrap();
    let quiet = run(&["--local", "store"], &[]).await;
    assert!(!quiet.contains("store"), "an existing store is no news at the default level: {quiet}");
    let info = run(&["--local", "store"], &[("RUST_LOG", "info")]).await;
    let existing = dir.path().join("store").display().to_string();
    let line = info.lines().find(|l| l.contains("existing store")).unwrap_or_else(|| panic!("{info}"));
    assert!(line.contains("INFO") && line.contains(&existing), "{line}");
}

/// docs/configuration.md describes every flag and variable `--help` shows, and its flag table
/// names no flag the command does not have.
#[tokio::test]
async fn configuration_doc_covers_every_flag_and_variable_of_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(&["--help"], &[], dir.path()).output().await.unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    // A flag is documented where it appears in code quotes: "`--name" followed by a space or "`".
    let documented = |flag: &str| doc.contains(&format!("`{flag} ")) || doc.contains(&format!("`{flag}`"));

    // Option lines look like "  -h, --help" or "      --local [<DIR>]".
    let flags: Vec<&str> = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("--")))
        .map(|w| w.trim_end_matches(','))
        .filter(|w| w.len() > 2 && w[2..].chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    assert!(
        flags.len() >= 20 && flags.contains(&"--local") && flags.contains(&"--help"),
        "flags read from --help: {flags:?}"
    );
    for flag in &flags {
        assert!(documented(flag), "docs/configuration.md does not describe {flag} (in code quotes, as `{flag} …`)");
    }

    // The ENVIRONMENT section lists one variable per line.
    let env_section = help.split("ENVIRONMENT").nth(1).expect("--help has an ENVIRONMENT section");
    let vars: Vec<&str> = env_section
        .lines()
        .filter_map(|l| l.strip_prefix("  ")?.split_whitespace().next())
        .take_while(|w| w.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
        .collect();
    assert!(vars.len() >= 9 && vars.contains(&"IVCAP_JWT"), "variables read from --help: {vars:?}");
    for var in &vars {
        assert!(doc.contains(&format!("| `{var}` |")), "docs/configuration.md has no table row for {var}");
    }

    // And the other way round: every row of the flag table is a flag of the command.
    for row in doc.lines().filter(|l| l.starts_with("| `--")) {
        let flag = row[3..].split(['`', ' ']).next().unwrap();
        assert!(flags.contains(&flag), "docs/configuration.md documents {flag}, which --help does not show");
    }
}
