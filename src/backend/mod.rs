//! The shared internal client. Tools talk only to [`Backend`]; the platform backend speaks
//! the IVCAP REST API and the local backend keeps a filesystem store. Each domain has its
//! own trait and types in a module here (`services`, `secrets`, …), implemented once per
//! backend in `platform/<domain>.rs` and `local/<domain>.rs`. No MCP types appear below
//! this module.

/// A status read from wire text, as an enum: the values this version knows, and `Other`
/// for any other text, kept as it came so it can still be shown. `parse` and `as_str` map
/// between the two. (Declared before the modules so each domain can use it.)
macro_rules! wire_status {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A status this version does not know.
            Other(String),
        }

        impl $name {
            /// Parses wire text; unknown text is kept as `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }

            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }
    };
}

pub mod artifacts;
pub mod aspects;
pub mod collections;
pub mod filter;
pub mod jobs;
pub mod listing;
pub mod local;
pub mod paging;
pub mod platform;
pub mod progress;
pub mod search;
pub mod secrets;
pub mod services;

pub use artifacts::{Artifact, ArtifactStatus, ArtifactsBackend};
pub use aspects::{Aspect, AspectQuery, AspectsBackend, NewAspect};
pub use collections::CollectionsBackend;
pub use filter::like_match;
pub use jobs::{Job, JobStatus, JobSummary, JobsBackend};
pub use paging::{DEFAULT_LIMIT, LIMIT_RANGE, Page, PageRequest};
pub use search::SearchBackend;
pub use secrets::{SecretInfo, SecretsBackend};
pub use services::{ServiceDetail, ServiceParameter, ServiceStatus, ServiceSummary, ServicesBackend, ToolService};

use std::sync::Arc;

use crate::config::{Config, Mode};
use crate::error::Result;

/// Everything a tool can ask of IVCAP, whichever IVCAP it is.
pub trait Backend:
    ServicesBackend
    + JobsBackend
    + ArtifactsBackend
    + AspectsBackend
    + CollectionsBackend
    + SearchBackend
    + SecretsBackend
    + Send
    + Sync
{
}

// The two backends. The domain traits are listed once, above; the compiler checks here that
// each backend implements all of them.
impl Backend for local::LocalBackend {}
impl Backend for platform::PlatformBackend {}

/// The backend for a resolved configuration.
pub fn for_config(config: &Config) -> Result<Arc<dyn Backend>> {
    Ok(match &config.mode {
        Mode::Local { dir } => {
            let search = local::search::SearchOptions {
                limits: local::search::Limits { max_bytes: config.search_memory, ..Default::default() },
                pushdown: !config.search_full_scan,
            };
            let local = local::LocalBackend::new(dir)?.with_services(config.local_services.clone()).with_search(search);
            local.preload_aspects();
            Arc::new(local)
        }
        Mode::Platform(cfg) => {
            let mut backend = platform::PlatformBackend::new(cfg)?.with_chunk_size(config.chunk_size);
            if let Some(login) = &cfg.cli_login {
                let login = Arc::new(crate::auth::CliLogin::new(login)?);
                // Refresh a login near its expiry at start, not on the first call: a refused
                // refresh is then in the log before any agent asks for anything.
                if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                    let early = login.clone();
                    runtime.spawn(async move {
                        if let Err(e) = crate::auth::Credentials::bearer(early.as_ref()).await {
                            tracing::warn!(error = %e, "the IVCAP login cannot be used yet");
                        }
                    });
                }
                backend = backend.with_credentials(login);
            }
            Arc::new(backend)
        }
    })
}
