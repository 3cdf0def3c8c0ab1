//! `ivcap-mcp login [--context NAME] [--url URL]`: the device login of `ivcap context login`
//! (docs/configuration.md, "Logging in"), saved into the Go CLI's `config.yaml` so that
//! `--context` and the CLI share it. Everything it says goes to stderr.

use std::path::PathBuf;
use std::process::ExitCode;

use tracing::Level;

use crate::auth::{cli_login, device, provider};
use crate::config::cli_context::{active_context, cli_config_file, read_context};
use crate::config::{LoginArgs, normalise_base_url};
use crate::error::{Error, Result};
use crate::telemetry::notice;

/// Runs the login; exit 0 once the login is saved, 2 for a wrong invocation, 1 otherwise.
pub(super) fn run(args: &LoginArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            notice(Level::ERROR, &format!("cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(login(args, dirs::config_dir())) {
        Ok(done) => {
            eprintln!("{done}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            notice(Level::ERROR, &format!("login failed: {e}"));
            ExitCode::from(if matches!(e, Error::Config(_)) { 2 } else { 1 })
        }
    }
}

async fn login(args: &LoginArgs, config_dir: Option<PathBuf>) -> Result<String> {
    let dir = config_dir.ok_or_else(|| {
        Error::Config("cannot find the user config directory, where ivcap-cli/config.yaml belongs".into())
    })?;
    let file = cli_config_file(&dir);
    let name = match args.context.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => name.to_string(),
        None => active_context(&file)?.ok_or_else(|| {
            Error::Config(format!(
                "{} names no active context: name one with --context NAME (and --url URL to create it)",
                file.display()
            ))
        })?,
    };
    if !crate::urn::is_plain_name(&name) {
        return Err(Error::Config(format!(
            "--context '{name}': a context name takes letters, digits, '-', '_' and '.' only"
        )));
    }
    let given = args.url.as_deref().map(|u| normalise_base_url(u, "--url")).transpose()?;
    let (url, host) = match (read_context(&file, &name)?, given) {
        (Some(ctx), None) => (normalise_base_url(&ctx.url, &format!("context '{name}' url"))?, ctx.host),
        (Some(ctx), Some(url)) => {
            if normalise_base_url(&ctx.url, "url").ok().as_deref() != Some(url.as_str()) {
                return Err(Error::Config(format!(
                    "context '{name}' is for {}, not {url}: drop --url, or name a new context with --context",
                    ctx.url
                )));
            }
            (url, ctx.host)
        }
        (None, Some(url)) => (url, None),
        (None, None) => {
            return Err(Error::Config(format!(
                "no context named '{name}' in {}: add --url URL to create it",
                file.display()
            )));
        }
    };
    let http = provider::http_client()?;
    let provider = provider::discover(&http, &url, host.as_deref()).await?;
    let mut started = device::start(&http, &provider).await?;
    let mut show = format!(
        "To log in to {url} (context '{name}'), open this address in a browser:\n\n    {}\n",
        started.url_to_open()
    );
    if started.verification_uri_complete.is_some() {
        show.push_str(&format!("\nor open {} and enter the code", started.verification_uri));
    } else {
        show.push_str("\nand enter the code");
    }
    show.push_str(&format!(
        "\n\n    {}\n\nWaiting for the approval (the code expires in {} s) …",
        started.user_code,
        started.expires_in.as_secs()
    ));
    eprintln!("{show}");
    let tokens = device::poll_until_done(&http, &provider, &mut started).await?;
    cli_login::save_login(file.clone(), name.clone(), url, tokens).await?;
    Ok(format!(
        "Logged in: the login is saved in context '{name}' of {}. Serve MCP with it: ivcap-mcp --context {name}",
        file.display()
    ))
}
