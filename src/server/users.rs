//! `--oauth`: every request acts as its user. Each user gets a backend of their own, built
//! with their credentials, so what a backend remembers (the job → service memory, discovery
//! caches) is never shared between users; with `--service-tools`, each user also gets the
//! service tools their services make. Users idle for [`IDLE`] are dropped (their service
//! tools' loader stops with them).
//!
//! The user comes from the HTTP request ([`Caller`], put there by the transport's OAuth gate),
//! never from a session, so `--stateless` replicas serve any request of any user alike.

use std::sync::Arc;
use std::time::Duration;

use rmcp::ErrorData as McpError;
use rmcp::model::{Extensions, JsonObject};

use super::service_tools::ServiceTools;
use crate::auth::idle_map::IdleMap;
use crate::auth::{Caller, Credentials, UserCredentials, UserId};
use crate::backend::Backend;
use crate::config::ServiceToolsConfig;
use crate::error::Result;

/// How long a user's backend is kept without a request.
pub const IDLE: Duration = crate::auth::upstream::IDLE;

/// Builds a platform backend that acts with the given credentials.
pub type BuildBackend = dyn Fn(Arc<dyn Credentials>) -> Result<Arc<dyn Backend>> + Send + Sync;

/// What one user's requests work with.
pub(super) struct UserState {
    pub(super) backend: Arc<dyn Backend>,
    pub(super) service_tools: Option<Arc<ServiceTools>>,
    /// The credentials the backend was built with.
    credentials: Arc<UserCredentials>,
}

/// The users seen lately.
pub(super) struct Users {
    build: Box<BuildBackend>,
    /// `--service-tools` and the job view's output schema, when service tools are offered.
    service_tools: Option<(ServiceToolsConfig, Option<Arc<JsonObject>>)>,
    entries: IdleMap<UserId, Arc<UserState>>,
}

impl Users {
    pub(super) fn new(
        build: Box<BuildBackend>,
        service_tools: Option<(ServiceToolsConfig, Option<Arc<JsonObject>>)>,
    ) -> Self {
        Users { build, service_tools, entries: IdleMap::new(IDLE) }
    }

    pub(super) fn offers_service_tools(&self) -> bool {
        self.service_tools.is_some()
    }

    /// The state of the user the request with these extensions acts for.
    pub(super) fn of_request(&self, extensions: &Extensions) -> std::result::Result<Arc<UserState>, McpError> {
        let caller = extensions
            .get::<axum::http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .ok_or_else(|| {
                // The OAuth gate lets no request through without a user; reaching here is a bug.
                McpError::internal_error("this request carries no OAuth user; please report it", None)
            })?;
        self.of(caller).map_err(|e| McpError::internal_error(e.to_string(), None))
    }

    fn of(&self, caller: &Caller) -> Result<Arc<UserState>> {
        // Credentials other than the user's current ones (the user was idle and came back)
        // mean a new backend.
        let current = |state: &Arc<UserState>| Arc::ptr_eq(&state.credentials, &caller.credentials);
        self.entries.get_or_make(&caller.user, current, |others| {
            let credentials: Arc<dyn Credentials> = caller.credentials.clone();
            let backend = (self.build)(credentials)?;
            let service_tools = self.service_tools.as_ref().map(|(config, schema)| {
                let tools = Arc::new(ServiceTools::new(config.clone(), schema.clone()));
                tools.start(backend.clone());
                tools
            });
            tracing::info!(user = %caller.user.subject, issuer = %caller.user.issuer, users = others + 1, "new OAuth user");
            Ok(Arc::new(UserState { backend, service_tools, credentials: caller.credentials.clone() }))
        })
    }
}
