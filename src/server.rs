//! The MCP server: [`IvcapMcp`] holds the backend and the tool router, picks the toolsets
//! the user asked for, and makes every published schema portable.

use std::sync::{Arc, OnceLock};

use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CompleteRequestParams,
    CompleteResult, ContentBlock, GetTaskParams, GetTaskResult, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResponse, ResultType, ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter,
    Tool, UnsubscribeRequestParams, UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, prompt_handler};
use serde_json::Value;

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::path_policy::PathPolicy;
use crate::schema::{inline_refs_without, normalise_without};
use crate::tools::jobs::SubmitJobArgs;
use crate::tools::service_tools::{ServiceTools, ServiceToolsConfig};

mod observe;

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
Every URN a tool returns is also a resource: resources/read gives an artifact's content (up to 1 MiB) or the JSON view of an aspect, job or service; resources/list lists the services, then the 100 newest artifacts. Subscribe to a job URN to be told when its status changes. Prompts: run_service, annotate_artifact, trace_provenance, explore_datafabric.
Tools named svc_… (when the server offers them) each run one IVCAP service as a job; they may \
appear after the first tools/list. Any service can always be run with get_service + submit_job.";

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
    /// Services to offer as tools of their own (`--service-tools`); `None` = none.
    pub service_tools: Option<ServiceToolsConfig>,
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
            service_tools: None,
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
    /// The tool routes, shared by every session.
    tools: Arc<ToolRoutes>,
    prompt_router: PromptRouter<IvcapMcp>,
    /// The jobs this session watches for `resources/subscribe`.
    watches: crate::subscriptions::SessionWatches,
    /// Shared by every session, so all see the same list.
    service_tools: Option<Arc<ServiceTools>>,
    /// `submit_job` or service tools are offered, so calls may become tasks.
    tasks: bool,
    /// See [`ServerOptions::sessionless`].
    sessionless: bool,
    /// Held for its `Drop`: counts this handler's session as open while it lives (`for_session`).
    _session: Option<Arc<crate::telemetry::metrics::SessionOpen>>,
}

/// The toolsets, by name, in the order they are documented. `service_tools` is filled at run
/// time from --service-tools (tools::service_tools).
const TOOLSETS: [&str; 8] =
    ["services", "jobs", "aspects", "artifacts", "collections", "search", "secrets", "service_tools"];

/// The tool routes the options select, built once, on first use. Generating and normalising
/// every tool's schemas is a third of a start's CPU and `initialize` needs none of it. (Built
/// on a thread of its own at start it made the handshake slower, not faster: on two cores the
/// build competed with answering `initialize`.)
struct ToolRoutes {
    routes: OnceLock<ToolRouter<IvcapMcp>>,
    toolsets: Option<Vec<String>>,
    read_only: bool,
}

impl ToolRoutes {
    fn get(&self) -> &ToolRouter<IvcapMcp> {
        self.routes.get_or_init(|| {
            let start = std::time::Instant::now();
            let routes = IvcapMcp::build_routes(self.toolsets.as_deref(), self.read_only);
            tracing::debug!(
                tools = routes.map.len(),
                elapsed_us = start.elapsed().as_micros() as u64,
                "tool routes built"
            );
            routes
        })
    }
}

impl IvcapMcp {
    /// One toolset's tools, as generated.
    fn toolset(name: &str) -> ToolRouter<IvcapMcp> {
        match name {
            "services" => Self::services_router(),
            "jobs" => Self::jobs_router(),
            "aspects" => Self::aspects_router(),
            "artifacts" => Self::artifacts_router(),
            "collections" => Self::collections_router(),
            "search" => Self::search_router(),
            "secrets" => Self::secrets_router(),
            _ => ToolRouter::new(),
        }
    }

    /// Names of all toolsets.
    pub fn toolset_names() -> Vec<&'static str> {
        TOOLSETS.to_vec()
    }

    /// The tools of the selected toolsets (all when `None`), only the read-only ones when
    /// `read_only`, each checking its arguments and publishing portable schemas.
    fn build_routes(toolsets: Option<&[String]>, read_only: bool) -> ToolRouter<IvcapMcp> {
        let mut tool_router = ToolRouter::new();
        for name in TOOLSETS {
            if selected(toolsets, name) {
                // Not `merge`: it checks every name again, and rmcp's name check costs as
                // much as a fifth of this build (our names are checked once, as generated).
                tool_router.map.extend(Self::toolset(name).map);
            }
        }
        if read_only {
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
            route.attr.input_schema = Arc::new(normalise_without(&route.attr.input_schema, &["title"]));
            if let Some(out) = &route.attr.output_schema {
                route.attr.output_schema = Some(Arc::new(portable_output(out)));
            }
        }
        tool_router
    }

    /// A server over `backend` offering the tools `options` select.
    pub fn new(backend: Arc<dyn Backend>, options: &ServerOptions) -> Result<Self> {
        if let Some(wanted) = &options.toolsets
            && let Some(bad) = wanted.iter().find(|w| !TOOLSETS.contains(&w.trim()))
        {
            return Err(Error::Config(format!(
                "--toolsets: unknown toolset '{bad}'; choose from {}",
                TOOLSETS.join(", ")
            )));
        }
        let tools = Arc::new(ToolRoutes {
            routes: OnceLock::new(),
            toolsets: options.toolsets.clone(),
            read_only: options.read_only,
        });
        let paths = PathPolicy::new(&options.allow_paths, backend.local_store())?;
        let service_tools = options.service_tools.clone().and_then(|config| {
            if options.read_only {
                tracing::warn!("--service-tools is ignored with --read-only: running a service changes state");
                return None;
            }
            if !selected(options.toolsets.as_deref(), "service_tools") {
                tracing::warn!("--service-tools is ignored: --toolsets leaves out service_tools");
                return None;
            }
            // The same job view as submit_job, made portable the same way.
            let output_schema = Self::jobs_router()
                .get("submit_job")
                .and_then(|t| t.output_schema.as_deref().map(portable_output))
                .map(Arc::new);
            Some(Arc::new(ServiceTools::new(config, output_schema)))
        });
        // Calls become tasks where submit_job is offered: the jobs toolset, when not read-only.
        let tasks = service_tools.is_some() || (selected(options.toolsets.as_deref(), "jobs") && !options.read_only);
        Ok(IvcapMcp {
            backend,
            output_budget: options.output_budget,
            max_wait: options.max_wait,
            paths,
            tools,
            prompt_router: Self::prompt_router(),
            watches: Default::default(),
            service_tools,
            tasks,
            sessionless: options.sessionless,
            _session: None,
        })
    }

    /// Starts what runs beside the sessions: the service tools' loader. Needs a Tokio runtime.
    pub fn start_background(&self) {
        if let Some(st) = &self.service_tools {
            st.start(self.backend.clone());
        }
    }

    /// Every tool this server offers, sorted by name.
    pub fn tools(&self) -> Vec<Tool> {
        self.tools.get().list_all()
    }

    /// Every prompt this server offers, sorted by name.
    pub fn prompts(&self) -> Vec<rmcp::model::Prompt> {
        self.prompt_router.list_all()
    }
}

impl IvcapMcp {
    /// Service tools run the `submit_job` path; a client that declared the tasks extension
    /// gets a task (the job) at once from `submit_job` (unless it gave `wait_seconds`) and
    /// service tools instead of a wait.
    async fn dispatch_call(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, McpError> {
        let as_task = self.tasks && context.client_capabilities().is_some_and(|c| c.supports_tasks());
        // The job paths are boxed: awaited inline, their state made every call's future (moved
        // into a task per request) several times larger.
        if let Some(tool) = self.service_tools.as_ref().and_then(|st| st.get(&request.name)) {
            let input = Value::Object(request.arguments.unwrap_or_default());
            if as_task {
                return Ok(Box::pin(self.start_job_task(&tool.service_id, input)).await);
            }
            let result = Box::pin(self.run_job(
                &tool.service_id,
                input,
                None,
                &context.meta,
                context.peer.clone(),
                context.ct.clone(),
            ))
            .await;
            return Ok(result.unwrap_or_else(|e| CallToolResult::error(vec![ContentBlock::text(e)])).into());
        }
        if as_task
            && request.name == "submit_job"
            && self.tools.get().has_route("submit_job")
            && let Some(args) = request.arguments.clone().map(Value::Object)
            && let Ok(args) = serde_json::from_value::<SubmitJobArgs>(args)
            // An explicit wait_seconds asks this call to wait for the result: answer inline.
            && args.wait_seconds.is_none()
        {
            return Ok(Box::pin(self.start_job_task(&args.service, args.input)).await);
        }
        self.tools.get().call(ToolCallContext::new(self, request, context)).await
    }
}

/// Is toolset `name` among those `wanted` (all when `None`)?
fn selected(wanted: Option<&[String]>, name: &str) -> bool {
    wanted.is_none_or(|w| w.iter().any(|t| t.trim() == name))
}

/// Output schemas keep their `null`s (results do carry nulls) but lose `$ref`s, `$schema`,
/// titles and descriptions: the tool description and input schema already explain the
/// fields, and `tools/list` must stay small (docs/architecture.md, "Tool schemas").
fn portable_output(schema: &rmcp::model::JsonObject) -> rmcp::model::JsonObject {
    inline_refs_without(schema, &["title", "description"])
}

pub(crate) fn as_object(v: serde_json::Value) -> rmcp::model::JsonObject {
    match v {
        serde_json::Value::Object(map) => map,
        _ => rmcp::model::JsonObject::new(),
    }
}

#[prompt_handler(router = self.prompt_router)]
impl ServerHandler for IvcapMcp {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .build();
        if self.service_tools.is_some()
            && let Some(tools) = capabilities.tools.as_mut()
        {
            tools.list_changed = Some(true);
        }
        if self.tasks {
            capabilities.extensions = ServerCapabilities::builder().enable_tasks().build().extensions;
        }
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("ivcap-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, McpError> {
        let mut tools = self.tools.get().list_all();
        if let Some(st) = &self.service_tools {
            tools.extend(st.list());
            tools.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let cache_hints = context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28);
        Ok(ListToolsResult {
            result_type: Some(ResultType::COMPLETE),
            tools,
            meta: None,
            next_cursor: None,
            ttl_ms: cache_hints.then_some(0),
            cache_scope: cache_hints.then_some(CacheScope::Public),
        })
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools
            .get()
            .get(name)
            .cloned()
            .or_else(|| self.service_tools.as_ref().and_then(|st| st.get(name)).map(|t| t.tool))
    }

    /// Observed (`observe`: trace context, metrics, the call's log line) around
    /// [`dispatch_call`](Self::dispatch_call).
    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, McpError> {
        self.observe_call(&request, &context).run(self.dispatch_call(request, context)).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Some(st) = &self.service_tools {
            st.add_peer(context.peer);
        }
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<GetTaskResult, McpError> {
        self.job_task(&request.task_id).await.map(GetTaskResult::new)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), McpError> {
        Err(McpError::invalid_params(
            format!("task {} never asks for input; poll it with tasks/get", request.task_id),
            None,
        ))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), McpError> {
        self.cancel_job_task(&request.task_id).await
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
        let jobs = crate::subscriptions::listen(self.backend.clone(), self.max_wait, &context);
        match &self.service_tools {
            Some(st) => {
                tokio::join!(jobs, st.announce_on(&context));
            }
            None => jobs.await,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `tasks` is decided before the routes are built (get_info needs it at once): it must say
    /// what the built routes say.
    #[test]
    fn tasks_are_offered_exactly_where_submit_job_is() {
        let toolsets = [
            None,
            Some(vec!["jobs".to_string()]),
            Some(vec!["services".to_string(), " jobs".to_string()]),
            Some(vec!["aspects".to_string()]),
        ];
        for wanted in toolsets {
            for read_only in [false, true] {
                let built = IvcapMcp::build_routes(wanted.as_deref(), read_only).has_route("submit_job");
                let decided = selected(wanted.as_deref(), "jobs") && !read_only;
                assert_eq!(built, decided, "{wanted:?} read_only={read_only}");
            }
        }
    }

    /// Argument validators are compiled on a tool's first call, so a schema that would not
    /// compile must be caught here rather than by a user.
    #[test]
    fn every_tool_input_schema_compiles_as_generated() {
        for toolset in TOOLSETS {
            for tool in IvcapMcp::toolset(toolset).list_all() {
                let schema = serde_json::Value::Object((*tool.input_schema).clone());
                if let Err(e) = crate::validation::Validator::new(&schema) {
                    panic!("{toolset}/{}: {e}", tool.name);
                }
            }
        }
    }
}
