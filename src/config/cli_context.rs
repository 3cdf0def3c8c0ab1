//! `--context`: a login made with the Go `ivcap` CLI, read from its `config.yaml` (the
//! active context, or the one named).

use std::path::PathBuf;

use super::{PlatformConfig, Secret, normalise_base_url};
use crate::error::{Error, Result};

/// The Go CLI's `config.yaml`, as far as we read it.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CliConfigFile {
    #[serde(default)]
    active_context: Option<String>,
    #[serde(default)]
    contexts: Vec<CliContext>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct CliContext {
    name: String,
    url: String,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    access_token_expiry: Option<String>,
}

/// Reads the named (or active) context of the Go CLI's config.
pub(super) fn from_cli_context(name: &str, config_dir: Option<PathBuf>) -> Result<PlatformConfig> {
    let Some(dir) = config_dir else {
        return Err(Error::Config(
            "--context: cannot find the user config directory to read ivcap-cli/config.yaml".into(),
        ));
    };
    let path = dir.join("ivcap-cli").join("config.yaml");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::Config(format!(
            "--context: cannot read {} ({e}): create a context with `ivcap context create` and \
             run `ivcap context login`",
            path.display()
        ))
    })?;
    let file: CliConfigFile = serde_yaml_ng::from_str(&text)
        .map_err(|e| Error::Config(format!("--context: {} is not valid: {e}", path.display())))?;
    let wanted = if name.is_empty() {
        file.active_context.clone().ok_or_else(|| {
            Error::Config(format!(
                "--context: {} has no active-context: name one with --context NAME, or run \
                 `ivcap context set <name>`",
                path.display()
            ))
        })?
    } else {
        name.to_string()
    };
    let Some(ctx) = file.contexts.into_iter().find(|c| c.name == wanted) else {
        return Err(Error::Config(format!(
            "--context: no context named '{wanted}' in {}: run `ivcap context list`",
            path.display()
        )));
    };
    let base_url = normalise_base_url(&ctx.url, &format!("context '{wanted}' url"))?;
    let login = format!("run `ivcap context login` (context '{wanted}')");
    let token = ctx
        .access_token
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| Error::Config(format!("--context: context '{wanted}' has no access token: {login}")))?;
    if let Some(expiry) = ctx.access_token_expiry.as_deref() {
        let expiry = chrono::DateTime::parse_from_rfc3339(expiry.trim()).map_err(|e| {
            Error::Config(format!("--context: context '{wanted}' has an unreadable access-token-expiry ({e}): {login}"))
        })?;
        if expiry <= chrono::Utc::now() {
            return Err(Error::Config(format!(
                "--context: the access token of context '{wanted}' expired at {expiry}: {login}"
            )));
        }
    }
    Ok(PlatformConfig {
        base_url,
        token: Some(Secret::new(token)),
        host_header: ctx.host.filter(|h| !h.trim().is_empty()),
    })
}
