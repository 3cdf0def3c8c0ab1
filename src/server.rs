//! The MCP server: [`IvcapMcp`] holds the backend and the tool router, picks the toolsets
//! the user asked for, and makes every published schema portable.

use std::sync::Arc;

use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, Implementation, ListResourceTemplatesResult, ListResourcesResult,
    PaginatedRequestParams, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, prompt_handler, tool_handler};

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::path_policy::PathPolicy;
use crate::schema::{inline_refs, normalise, strip_keywords};

/// What the server tells an agent when it connects.
const INSTRUCTIONS: &str = "\
IVCAP is CSIRO's platform for analytics services. Through this server you can find services \
and their request schemas, run them as jobs, move data as artifacts, and read and write \
Datafabric aspects (typed, time-bounded facts about any entity).
Start with list_services to find a service, then get_service for the JSON Schema its \
requests must match, then submit_job to run it (get_job for a job still running, list_jobs \
for a service's jobs). Identifiers are full URNs (urn:ivcap:…); where a service is expected, \
an exact service name works too. Lists take limit (1-50) and the opaque page token from the \
previous answer's next_page.
Move data with upload_artifact (a local file, text or base64) and download_artifact (to a file, \
or small text and images inline); local paths must lie under the working directory, the local \
store or a folder the server was started with --allow-path.
Record facts about any entity with add_aspect / update_aspect / retract_aspect; find them with \
list_aspects (entity, schema prefix, JSONPath, at_time) or query across artifacts, aspects, \
services and jobs with search (Datalog, Mangle syntax).
Every URN a tool returns is also a resource: resources/read gives an artifact's content (up to 1 MiB) or the JSON view of an aspect, job or service; resources/list lists the services, then the 100 newest artifacts. Subscribe to a job URN to be told when its status changes. Prompts: run_service, annotate_artifact, trace_provenance, explore_datafabric.";

/// Options that shape the tool surface.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Offer only these toolsets; `None` offers all.
    pub toolsets: Option<Vec<String>>,
    /// Offer only tools that change nothing.
    pub read_only: bool,
    /// Largest tool result, in characters.
    pub output_budget: usize,
    /// Longest a tool waits for a job before answering "still running".
    pub max_wait: std::time::Duration,
    /// Folders, besides the working directory and the local store, that `path` arguments
    /// may point into (`--allow-path`).
    pub allow_paths: Vec<std::path::PathBuf>,
    /// The transport keeps no sessions (`--stateless` HTTP): there is no channel to send
    /// `resources/subscribe` updates on, so subscribing is refused with a clear error.
    pub sessionless: bool,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            toolsets: None,
            read_only: false,
            output_budget: crate::config::DEFAULT_OUTPUT_BUDGET,
            max_wait: std::time::Duration::from_secs(crate::config::DEFAULT_MAX_WAIT),
            allow_paths: Vec::new(),
            sessionless: false,
        }
    }
}

/// The ivcap-mcp server.
#[derive(Clone)]
pub struct IvcapMcp {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) output_budget: usize,
    pub(crate) max_wait: std::time::Duration,
    /// Which local files `path` arguments may name.
    pub(crate) paths: PathPolicy,
    tool_router: ToolRouter<IvcapMcp>,
    prompt_router: PromptRouter<IvcapMcp>,
    /// The jobs this session watches for `resources/subscribe`.
    watches: crate::subscriptions::SessionWatches,
    /// See [`ServerOptions::sessionless`].
    sessionless: bool,
}

impl IvcapMcp {
    /// The toolsets, by name, in the order they are documented.
    fn toolsets() -> Vec<(&'static str, ToolRouter<IvcapMcp>)> {
        vec![
            ("services", Self::services_router()),
            ("jobs", Self::jobs_router()),
            ("aspects", Self::aspects_router()),
            ("artifacts", Self::artifacts_router()),
            ("search", Self::search_router()),
            ("secrets", Self::secrets_router()),
        ]
    }

    /// Names of all toolsets.
    pub fn toolset_names() -> Vec<&'static str> {
        Self::toolsets().into_iter().map(|(name, _)| name).collect()
    }

    /// A server over `backend` offering the tools `options` select.
    pub fn new(backend: Arc<dyn Backend>, options: &ServerOptions) -> Result<Self> {
        let all = Self::toolsets();
        if let Some(wanted) = &options.toolsets {
            let known: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
            if let Some(bad) = wanted.iter().find(|w| !known.contains(&w.trim())) {
                return Err(Error::Config(format!(
                    "--toolsets: unknown toolset '{bad}'; choose from {}",
                    known.join(", ")
                )));
            }
        }
        let mut tool_router = ToolRouter::new();
        for (name, router) in all {
            if options.toolsets.as_ref().is_none_or(|w| w.iter().any(|t| t.trim() == name)) {
                tool_router.merge(router);
            }
        }
        if options.read_only {
            let writers: Vec<String> = tool_router
                .list_all()
                .into_iter()
                .filter(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) != Some(true))
                .map(|t| t.name.into_owned())
                .collect();
            for name in writers {
                tool_router.remove_route(&name);
            }
        }
        for route in tool_router.map.values_mut() {
            crate::tools::arguments::check_arguments(route);
            // Field descriptions stay (they are the argument docs); titles repeat the type name.
            let input = normalise(&serde_json::Value::Object((*route.attr.input_schema).clone()));
            route.attr.input_schema = Arc::new(as_object(strip_keywords(&input, &["title"])));
            if let Some(out) = &route.attr.output_schema {
                route.attr.output_schema = Some(Arc::new(as_object(portable_output(out))));
            }
        }
        let paths = PathPolicy::new(&options.allow_paths, backend.local_store())?;
        Ok(IvcapMcp {
            backend,
            output_budget: options.output_budget,
            max_wait: options.max_wait,
            paths,
            tool_router,
            prompt_router: Self::prompt_router(),
            watches: Default::default(),
            sessionless: options.sessionless,
        })
    }

    /// Every tool this server offers, sorted by name.
    pub fn tools(&self) -> Vec<Tool> {
        self.tool_router.list_all()
    }

    /// Every prompt this server offers, sorted by name.
    pub fn prompts(&self) -> Vec<rmcp::model::Prompt> {
        self.prompt_router.list_all()
    }
}

/// Output schemas keep their `null`s (results do carry nulls) but lose `$ref`s, `$schema`,
/// titles and descriptions: the tool description and input schema already explain the
/// fields, and `tools/list` must stay small (docs/architecture.md, "Tool schemas").
fn portable_output(schema: &rmcp::model::JsonObject) -> serde_json::Value {
    strip_keywords(&inline_refs(&serde_json::Value::Object(schema.clone())), &["title", "description"])
}

fn as_object(v: serde_json::Value) -> rmcp::model::JsonObject {
    match v {
        serde_json::Value::Object(map) => map,
        _ => rmcp::model::JsonObject::new(),
    }
}

#[tool_handler(router = self.tool_router)]
#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for IvcapMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .build();
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("ivcap-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    // Resources, subscriptions and completions (src/resources.rs, src/subscriptions.rs,
    // src/completions.rs).
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.list_entities(request.as_ref().and_then(|r| r.cursor.as_deref())).await
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(crate::resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.read_entity(&request.uri).await.map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if self.sessionless {
            return Err(McpError::invalid_request(
                "this server runs --stateless, so it has no channel to send resource updates on; use                  subscriptions/listen (protocol 2026-07-28), a session-mode server, or poll the job with get_job",
                Some(serde_json::json!({ "uri": request.uri })),
            ));
        }
        self.watches.subscribe(self.backend.clone(), &request.uri, self.max_wait, context.peer).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        self.watches.unsubscribe(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        let mut accepted = requested.supported_by(&self.get_info().capabilities);
        accepted.resource_subscriptions = crate::subscriptions::accepted_jobs(accepted.resource_subscriptions.as_ref());
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), McpError> {
        crate::subscriptions::listen(self.backend.clone(), self.max_wait, &context).await;
        Ok(())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, McpError> {
        self.complete_argument(&request).await
    }
}
