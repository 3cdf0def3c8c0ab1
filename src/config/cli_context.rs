//! `--context`: a login made with the Go `ivcap` CLI (or `ivcap-mcp login`), kept in the
//! CLI's `config.yaml` (the active context, or the one named).
//!
//! The file is shared with the CLI, so it is read and rewritten as a YAML tree, never
//! through a struct that would drop the keys we do not know: a rewrite changes the keys of
//! one context and leaves every other key and context as it was. Rewrites hold a lock on a
//! sidecar file (`config.yaml.lock`) and replace the file atomically (docs/ivcap-wire.md
//! §15).

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_yaml_ng::{Mapping, Value};

use super::{PlatformConfig, Secret, normalise_base_url};
use crate::error::{Error, Result};

/// Which login `--context` uses: the CLI's config file and the context's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliLoginRef {
    pub file: PathBuf,
    pub context: String,
}

/// The Go CLI's config file under the user configuration folder.
pub fn cli_config_file(config_dir: &Path) -> PathBuf {
    config_dir.join("ivcap-cli").join("config.yaml")
}

/// What a context holds of a login.
#[derive(Debug, Clone)]
pub struct ContextLogin {
    pub name: String,
    pub url: String,
    /// The `Host` header to send to IVCAP.
    pub host: Option<String>,
    pub access_token: Option<Secret>,
    pub access_token_expiry: Option<DateTime<Utc>>,
    pub refresh_token: Option<Secret>,
}

impl ContextLogin {
    /// Has an access token that is good for at least `margin` more (a token without an
    /// expiry is taken as good).
    pub fn is_fresh(&self, margin: Duration) -> bool {
        let margin = chrono::Duration::from_std(margin).unwrap_or(chrono::Duration::MAX);
        self.access_token.is_some() && self.access_token_expiry.is_none_or(|at| at - margin > Utc::now())
    }
}

/// The tokens a login or a refresh gave, to be written into one context.
#[derive(Debug, Clone)]
pub struct TokenUpdate {
    /// The deployment's URL: only used when the context has to be created.
    pub url: String,
    pub access_token: Secret,
    pub access_token_expiry: DateTime<Utc>,
    /// `None` keeps the refresh token the context has.
    pub refresh_token: Option<Secret>,
    /// `account-id` and `provider-id`, as the CLI records them after a login.
    pub account_id: Option<String>,
    pub provider_id: Option<String>,
}

/// The file's text as a YAML mapping (an empty file is an empty mapping).
fn parse(path: &Path, text: &str) -> Result<Mapping> {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(Value::Mapping(map)) => Ok(map),
        Ok(Value::Null) => Ok(Mapping::new()),
        Ok(_) => Err(Error::Config(format!("{} is not a YAML mapping: fix or remove it", path.display()))),
        Err(e) => Err(Error::Config(format!("{} is not valid YAML ({e}): fix or remove it", path.display()))),
    }
}

fn read_file(path: &Path) -> Result<Option<Mapping>> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(path, &text).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

fn text_of<'a>(map: &'a Mapping, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn contexts(map: &Mapping) -> impl Iterator<Item = &Mapping> {
    map.get("contexts").and_then(Value::as_sequence).into_iter().flatten().filter_map(Value::as_mapping)
}

/// The context `name` names, or the active one when `name` is empty.
fn wanted_name(map: &Mapping, name: &str, path: &Path) -> Result<String> {
    if !name.is_empty() {
        return Ok(name.to_string());
    }
    text_of(map, "active-context").map(str::to_string).ok_or_else(|| {
        Error::Config(format!(
            "{} has no active-context: name a context with --context NAME, or run `ivcap context set <name>`",
            path.display()
        ))
    })
}

/// The name of the active context, if the file exists and names one.
pub fn active_context(path: &Path) -> Result<Option<String>> {
    Ok(read_file(path)?.and_then(|map| text_of(&map, "active-context").map(str::to_string)))
}

/// Reads context `name` (the active one when empty); `Ok(None)` when the file or the
/// context does not exist.
pub fn read_context(path: &Path, name: &str) -> Result<Option<ContextLogin>> {
    let Some(map) = read_file(path)? else { return Ok(None) };
    let wanted = wanted_name(&map, name, path)?;
    let Some(ctx) = contexts(&map).find(|c| text_of(c, "name") == Some(wanted.as_str())) else { return Ok(None) };
    let expiry = match ctx.get("access-token-expiry") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let raw = value.as_str().unwrap_or_default().trim();
            let at = DateTime::parse_from_rfc3339(raw).map_err(|e| {
                Error::Config(format!(
                    "context '{wanted}' in {} has an unreadable access-token-expiry ({e}): log in again with \
                     `ivcap-mcp login --context {wanted}`",
                    path.display()
                ))
            })?;
            Some(at.with_timezone(&Utc))
        }
    };
    Ok(Some(ContextLogin {
        url: text_of(ctx, "url").unwrap_or_default().to_string(),
        host: text_of(ctx, "host").map(str::to_string),
        access_token: text_of(ctx, "access-token").map(Secret::new),
        // The CLI writes the zero time for "no token" (`ivcap context logout`).
        access_token_expiry: expiry.filter(|at| at.timestamp() > 0),
        refresh_token: text_of(ctx, "refresh-token").map(Secret::new),
        name: wanted,
    }))
}

/// Writes `update` into context `name` of the file at `path`, creating the file and the
/// context when missing (a new file also gets `active-context: name`). Every other key and
/// context is kept. The caller holds the file's [`ConfigLock`]; the file is read again here,
/// under it, so a rewrite made meanwhile by another process is kept too.
pub fn save_tokens(_lock: &ConfigLock, path: &Path, name: &str, update: &TokenUpdate) -> Result<()> {
    let existing = read_file(path)?;
    let is_new = existing.is_none();
    let mut map = existing.unwrap_or_default();
    if is_new {
        map.insert("version".into(), "v1".into());
        map.insert("active-context".into(), name.into());
    }
    if text_of(&map, "active-context").is_none() {
        map.insert("active-context".into(), name.into());
    }
    if !matches!(map.get("contexts"), Some(Value::Sequence(_))) {
        map.insert("contexts".into(), Value::Sequence(Vec::new()));
    }
    let Some(Value::Sequence(list)) = map.get_mut("contexts") else {
        return Err(Error::Internal("the contexts list just set is not a list".into()));
    };
    let position = list.iter().position(|c| c.as_mapping().and_then(|c| text_of(c, "name")) == Some(name));
    let ctx = match position {
        Some(i) => list.get_mut(i).and_then(Value::as_mapping_mut),
        None => {
            let mut ctx = Mapping::new();
            ctx.insert("api-version".into(), Value::Number(1.into()));
            ctx.insert("name".into(), name.into());
            ctx.insert("url".into(), update.url.as_str().into());
            list.push(Value::Mapping(ctx));
            list.last_mut().and_then(Value::as_mapping_mut)
        }
    };
    let Some(ctx) = ctx else { return Err(Error::Internal("the context just found is not a mapping".into())) };
    if let Some(account) = &update.account_id {
        ctx.insert("account-id".into(), account.as_str().into());
    }
    if let Some(provider) = &update.provider_id {
        ctx.insert("provider-id".into(), provider.as_str().into());
    }
    ctx.insert("access-token".into(), update.access_token.expose().into());
    ctx.insert(
        "access-token-expiry".into(),
        update.access_token_expiry.to_rfc3339_opts(SecondsFormat::Secs, true).into(),
    );
    if let Some(refresh) = &update.refresh_token {
        ctx.insert("refresh-token".into(), refresh.expose().into());
    }
    let text = serde_yaml_ng::to_string(&Value::Mapping(map))
        .map_err(|e| Error::Internal(format!("cannot write the CLI config as YAML: {e}")))?;
    // The temp file is created 0600, and the rename keeps that: the file holds tokens.
    crate::files::write_atomic(path, text.as_bytes())
}

/// How long a rewrite waits for another process's lock on the config file.
const LOCK_WAIT: Duration = Duration::from_secs(30);

/// An exclusive lock on the CLI config file (on its sidecar `config.yaml.lock`), released
/// when dropped. Blocking: take it on the blocking pool.
#[derive(Debug)]
pub struct ConfigLock {
    _held: std::fs::File,
}

impl ConfigLock {
    pub fn acquire(path: &Path) -> Result<ConfigLock> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let lock_path = path.with_file_name(name);
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("cannot open {}", lock_path.display()), e))?;
        let start = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ConfigLock { _held: file }),
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::Config(format!(
                        "{} stayed locked by another process for {}s: end the process that holds it",
                        lock_path.display(),
                        LOCK_WAIT.as_secs()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io(format!("cannot lock {}", lock_path.display()), e));
                }
            }
        }
    }
}

/// Reads the named (or active) context of the Go CLI's config for `--context`. An expired
/// access token is accepted when the context has a refresh token: the platform backend
/// refreshes it before the first request.
pub(super) fn from_cli_context(name: &str, config_dir: Option<PathBuf>) -> Result<PlatformConfig> {
    let Some(dir) = config_dir else {
        return Err(Error::Config(
            "--context: cannot find the user config directory to read ivcap-cli/config.yaml".into(),
        ));
    };
    let path = cli_config_file(&dir);
    let login_cmd = |ctx: &str| {
        let named = if ctx.is_empty() { String::new() } else { format!(" --context {ctx}") };
        format!("run `ivcap-mcp login{named}` (or `ivcap context login`)")
    };
    let prefix = |e: Error| match e {
        Error::Config(message) => Error::Config(format!("--context: {message}")),
        other => other,
    };
    let ctx = match read_context(&path, name).map_err(prefix)? {
        Some(ctx) => ctx,
        None if !path.exists() => {
            return Err(Error::Config(format!(
                "--context: cannot read {} (no such file): {} with --url URL to create a context",
                path.display(),
                login_cmd(name)
            )));
        }
        None => {
            return Err(Error::Config(format!(
                "--context: no context named '{}' in {}: run `ivcap context list`, or {} with --url URL to create it",
                if name.is_empty() { "(active)" } else { name },
                path.display(),
                login_cmd(name)
            )));
        }
    };
    let wanted = ctx.name.clone();
    let base_url = normalise_base_url(&ctx.url, &format!("context '{wanted}' url"))?;
    if ctx.access_token.is_none() && ctx.refresh_token.is_none() {
        return Err(Error::Config(format!(
            "--context: context '{wanted}' has no access token: {}",
            login_cmd(&wanted)
        )));
    }
    if ctx.refresh_token.is_none()
        && let Some(expiry) = ctx.access_token_expiry
        && expiry <= Utc::now()
    {
        return Err(Error::Config(format!(
            "--context: the access token of context '{wanted}' expired at {expiry} and the context has no \
             refresh token: {}",
            login_cmd(&wanted)
        )));
    }
    Ok(PlatformConfig {
        base_url,
        token: ctx.access_token,
        host_header: ctx.host,
        cli_login: Some(CliLoginRef { file: path, context: wanted }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
version: v1
active-context: dev
contexts:
- api-version: 1
  name: dev
  url: https://dev.example
  account-id: urn:ivcap:account:x
  host: api.dev.example
  email: someone@example.org
  access-token: old-access
  access-token-expiry: 2026-01-01T00:00:00.123456789+10:00
  refresh-token: old-refresh
- name: other
  url: https://other.example
  access-token: other-access
  access-token-expiry: 0001-01-01T00:00:00Z
  unknown-key: [1, 2]
extra-top-level: {keep: me}
";

    fn update(access: &str, refresh: Option<&str>) -> TokenUpdate {
        TokenUpdate {
            url: "https://new.example".into(),
            access_token: Secret::new(access),
            access_token_expiry: DateTime::parse_from_rfc3339("2030-05-06T07:08:09Z").unwrap().with_timezone(&Utc),
            refresh_token: refresh.map(Secret::new),
            account_id: None,
            provider_id: None,
        }
    }

    #[test]
    fn contexts_are_read_with_the_cli_zero_time_as_no_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, FILE).unwrap();
        let dev = read_context(&path, "").unwrap().unwrap();
        assert_eq!((dev.name.as_str(), dev.host.as_deref()), ("dev", Some("api.dev.example")));
        assert_eq!(dev.access_token_expiry.unwrap().to_rfc3339(), "2025-12-31T14:00:00.123456789+00:00");
        assert_eq!(dev.refresh_token, Some(Secret::new("old-refresh")));
        let other = read_context(&path, "other").unwrap().unwrap();
        assert_eq!((other.access_token_expiry, other.refresh_token), (None, None));
        assert!(read_context(&path, "nope").unwrap().is_none());
        assert!(read_context(&dir.path().join("missing.yaml"), "dev").unwrap().is_none());
    }

    #[test]
    fn a_rewrite_changes_one_context_and_keeps_every_other_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, FILE).unwrap();
        let lock = ConfigLock::acquire(&path).unwrap();
        save_tokens(&lock, &path, "dev", &update("new-access", Some("new-refresh"))).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let before: Value = serde_yaml_ng::from_str(FILE).unwrap();
        let mut after: Value = serde_yaml_ng::from_str(&text).unwrap();
        let dev = after["contexts"][0].as_mapping_mut().unwrap();
        assert_eq!(dev["access-token"], "new-access");
        assert_eq!(dev["refresh-token"], "new-refresh");
        // Plain, as the Go CLI writes times: its YAML library reads a quoted one as a string.
        assert!(text.contains("access-token-expiry: 2030-05-06T07:08:09Z\n"), "{text}");
        dev.insert("access-token".into(), "old-access".into());
        dev.insert("refresh-token".into(), "old-refresh".into());
        dev.insert("access-token-expiry".into(), "2026-01-01T00:00:00.123456789+10:00".into());
        assert_eq!(after, before, "nothing else changed:\n{text}");
        let keys: Vec<&str> = after.as_mapping().unwrap().keys().filter_map(Value::as_str).collect();
        assert_eq!(keys, ["version", "active-context", "contexts", "extra-top-level"], "key order is kept");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_missing_refresh_token_in_the_answer_keeps_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        std::fs::write(&path, FILE).unwrap();
        let lock = ConfigLock::acquire(&path).unwrap();
        save_tokens(&lock, &path, "dev", &update("a2", None)).unwrap();
        let dev = read_context(&path, "dev").unwrap().unwrap();
        assert_eq!((dev.access_token, dev.refresh_token), (Some(Secret::new("a2")), Some(Secret::new("old-refresh"))));
    }

    #[test]
    fn a_login_creates_the_file_and_the_context() {
        let dir = tempfile::tempdir().unwrap();
        let path = cli_config_file(dir.path());
        let lock = ConfigLock::acquire(&path).unwrap();
        let mut u = update("a", Some("r"));
        u.account_id = Some("urn:ivcap:account:alice".into());
        save_tokens(&lock, &path, "new", &u).unwrap();
        let ctx = read_context(&path, "").unwrap().unwrap();
        assert_eq!((ctx.name.as_str(), ctx.url.as_str()), ("new", "https://new.example"));
        std::fs::write(&path, FILE).unwrap();
        save_tokens(&lock, &path, "new", &u).unwrap();
        assert_eq!(active_context(&path).unwrap().as_deref(), Some("dev"), "an existing active context stays");
        assert_eq!(read_context(&path, "new").unwrap().unwrap().url, "https://new.example");
        assert!(std::fs::read_to_string(&path).unwrap().contains("account-id: urn:ivcap:account:alice"));
    }

    #[test]
    fn the_lock_excludes_a_second_holder_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.yaml");
        let first = ConfigLock::acquire(&path).unwrap();
        let other = std::fs::OpenOptions::new().write(true).open(dir.path().join("config.yaml.lock")).unwrap();
        assert!(matches!(other.try_lock(), Err(std::fs::TryLockError::WouldBlock)));
        drop(first);
        assert!(other.try_lock().is_ok());
    }

    #[test]
    fn freshness_uses_the_margin() {
        let mut ctx = ContextLogin {
            name: "x".into(),
            url: String::new(),
            host: None,
            access_token: Some(Secret::new("t")),
            access_token_expiry: Some(Utc::now() + chrono::Duration::seconds(30)),
            refresh_token: None,
        };
        assert!(ctx.is_fresh(Duration::from_secs(10)));
        assert!(!ctx.is_fresh(Duration::from_secs(60)));
        ctx.access_token_expiry = None;
        assert!(ctx.is_fresh(Duration::from_secs(60)));
        ctx.access_token = None;
        assert!(!ctx.is_fresh(Duration::ZERO));
    }
}
