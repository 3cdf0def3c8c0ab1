//! The MCP server: [`IvcapMcp`] is the rmcp handler. It only dispatches: tool calls to the
//! routes of the selected toolsets ([`toolsets`], handlers in `crate::tools`), and the rest of
//! the protocol to the module that serves it — [`tasks`], [`service_tools`], [`resources`],
//! [`subscriptions`], [`prompts`] and [`completions`]. Every backend failure a protocol
//! request answers is mapped once, by [`protocol_error`].

mod apps;
mod argument_checks;
mod completions;
mod confirmations;
mod elicitation;
mod forms;
mod login;
mod prompts;
mod protocol_error;
mod resources;
mod service_tools;
mod subscriptions;
mod tasks;
mod toolsets;
mod users;

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::handler::server::prompt::PromptContext;
use rmcp::handler::server::router::prompt::PromptRouter;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CancelTaskParams, CompleteRequestParams,
    CompleteResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, GetTaskParams, GetTaskResult,
    Implementation, ListPromptsResult, ListResourceTemplatesResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ResultType,
    ServerCapabilities, ServerConfig, SubscribeRequestParams, SubscriptionFilter, Tool, UnsubscribeRequestParams,
    UpdateTaskParams,
};
use rmcp::service::{NotificationContext, RequestContext, SubscriptionContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::Value;

use crate::backend::Backend;
use crate::config::ServiceToolsConfig;
use crate::error::Result;
use crate::path_policy::PathPolicy;
use crate::tools::ToolContext;
use crate::tools::jobs::SubmitJobArgs;
use prompts::Prompts;
use service_tools::ServiceTools;
use toolsets::{ToolRoutes, Toolsets};

pub use login::LoginTarget;
pub use prompts::{AnnotateArtifactArgs, ExploreDatafabricArgs, RunServiceArgs, TraceProvenanceArgs};
pub use subscriptions::MAX_WATCHED_JOBS;
pub use users::BuildBackend;

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
Every URN a tool returns is also a resource: resources/read gives an artifact's content (up to 1 MiB) or the JSON view of an aspect, job or service; resources/list lists the ui:// views (MCP Apps), the services, then the 100 newest artifacts. Subscribe to a job URN to be told when its status changes. Prompts: run_service, annotate_artifact, trace_provenance, explore_datafabric.
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
    pub stateless: bool,
    /// When to ask the person before a call (`--confirm` and the rest; `elicitation`).
    pub confirm: crate::config::ConfirmConfig,
    /// With `--context`: the login a client may renew through URL elicitation (`login`).
    pub login: Option<LoginTarget>,
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
            stateless: false,
            confirm: crate::config::ConfirmConfig::default(),
            login: None,
        }
    }
}

/// The ivcap-mcp server.
#[derive(Clone)]
pub struct IvcapMcp {
    /// What the tool handlers (and the resources, tasks and subscriptions) work with.
    context: ToolContext,
    /// The tool routes, shared by every session.
    tools: Arc<ToolRoutes>,
    prompts: PromptRouter<Prompts>,
    /// The jobs this session watches for `resources/subscribe`.
    watches: subscriptions::SessionWatches,
    /// Shared by every session, so all see the same list.
    service_tools: Option<Arc<ServiceTools>>,
    /// `submit_job` or service tools are offered, so calls may become tasks.
    tasks: bool,
    /// See [`ServerOptions::stateless`].
    stateless: bool,
    /// Asks the person before calls; shared by every session (it remembers used request states).
    elicitation: Arc<elicitation::Elicitation>,
    /// Held for its `Drop`: counts this handler's session as open while it lives (`for_session`).
    _session: Option<Arc<crate::telemetry::metrics::SessionOpen>>,
    /// `--oauth`: each request acts as its user, with the user's own backend and service tools.
    users: Option<Arc<users::Users>>,
}

/// What a request works with: the server's own context and service tools, or with `--oauth`
/// its user's.
struct Scope<'a> {
    context: Cow<'a, ToolContext>,
    service_tools: Option<Arc<ServiceTools>>,
}

impl IvcapMcp {
    /// Names of all toolsets, in their documented order.
    pub fn toolset_names() -> Vec<&'static str> {
        toolsets::names()
    }

    /// A server over `backend` offering the tools `options` select.
    pub fn new(backend: Arc<dyn Backend>, options: &ServerOptions) -> Result<Self> {
        let selected = Toolsets::parse(options.toolsets.as_deref())?;
        let paths = PathPolicy::new(&options.allow_paths, backend.local_store())?;
        let service_tools = options.service_tools.clone().and_then(|config| {
            if options.read_only {
                tracing::warn!("--service-tools is ignored with --read-only: running a service changes state");
                return None;
            }
            if !selected.has("service_tools") {
                tracing::warn!("--service-tools is ignored: --toolsets leaves out service_tools");
                return None;
            }
            Some(Arc::new(ServiceTools::new(config, toolsets::job_output_schema())))
        });
        // Calls become tasks where submit_job is offered: the jobs toolset, when not read-only.
        let tasks = service_tools.is_some() || (selected.has("jobs") && !options.read_only);
        Ok(IvcapMcp {
            context: ToolContext::new(backend, options.output_budget, options.max_wait, paths),
            tools: Arc::new(ToolRoutes::new(selected, options.read_only)),
            prompts: Prompts::prompt_router(),
            watches: Default::default(),
            service_tools,
            tasks,
            stateless: options.stateless,
            elicitation: Arc::new(elicitation::Elicitation::new(
                &options.confirm,
                options.stateless,
                options.login.clone(),
            )?),
            _session: None,
            users: None,
        })
    }

    /// Makes every request act as the OAuth user it carries (`--oauth`): `build` makes a
    /// user's backend from their credentials. The server's own backend is then never used
    /// for a request.
    pub fn with_users(mut self, build: Box<users::BuildBackend>) -> Self {
        let service_tools = self.service_tools.take().map(|st| (st.config().clone(), toolsets::job_output_schema()));
        self.users = Some(Arc::new(users::Users::new(build, service_tools)));
        self
    }

    /// Service tools are offered (the server's, or with `--oauth` each user's).
    fn offers_service_tools(&self) -> bool {
        self.service_tools.is_some() || self.users.as_ref().is_some_and(|u| u.offers_service_tools())
    }

    /// The context and service tools of the request with these extensions.
    fn scope(&self, extensions: &rmcp::model::Extensions) -> std::result::Result<Scope<'_>, McpError> {
        let Some(users) = &self.users else {
            return Ok(Scope { context: Cow::Borrowed(&self.context), service_tools: self.service_tools.clone() });
        };
        let user = users.of_request(extensions)?;
        let context = ToolContext { backend: user.backend.clone(), ..self.context.clone() };
        Ok(Scope { context: Cow::Owned(context), service_tools: user.service_tools.clone() })
    }

    /// Starts what runs beside the sessions: the service tools' loader. Needs a Tokio runtime.
    pub fn start_background(&self) {
        if let Some(st) = &self.service_tools {
            st.start(self.context.backend().clone());
        }
    }

    /// Every tool this server offers, sorted by name.
    pub fn tools(&self) -> Vec<Tool> {
        self.tools.get().list_all()
    }

    /// Every prompt this server offers, sorted by name.
    pub fn prompts(&self) -> Vec<rmcp::model::Prompt> {
        self.prompts.list_all()
    }

    /// The resource templates, one per entity kind.
    pub fn resource_templates(&self) -> Vec<rmcp::model::ResourceTemplate> {
        resources::templates().resource_templates
    }
}

impl IvcapMcp {
    /// Service tools run the `submit_job` path; a client that declared the tasks extension
    /// gets a task (the job) at once from `submit_job` (unless it gave `wait_seconds`) and
    /// service tools instead of a wait.
    async fn dispatch_call(
        &self,
        scope: Scope<'_>,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, McpError> {
        let service_tool = scope.service_tools.as_ref().and_then(|st| st.get(&request.name));
        // Ask the person first where that is called for (only about tools this server offers).
        if service_tool.is_some() || self.tools.get().has_route(&request.name) {
            let gate = self.elicitation.gate(&scope.context, service_tool.as_ref(), request, &context);
            request = match Box::pin(gate).await {
                elicitation::Gate::Go(request) => *request,
                elicitation::Gate::Answer(answer) => return Ok(answer),
            };
        }
        if !self.elicitation.logs_in() {
            return self.execute(&scope, request, service_tool, context).await;
        }
        let answer = self.execute(&scope, request.clone(), service_tool.clone(), context.clone()).await;
        // A call that failed for want of a login: log in from the client, then run it again.
        if matches!(&answer, Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true)) {
            match Box::pin(self.elicitation.login_after_failure(&request, &context)).await {
                Some(elicitation::LoginStep::Again) => {
                    return self.execute(&scope, request, service_tool, context).await;
                }
                Some(elicitation::LoginStep::Answer(instead)) => return Ok(instead),
                None => {}
            }
        }
        answer
    }

    /// Runs a call the person (if asked) agreed to.
    async fn execute(
        &self,
        scope: &Scope<'_>,
        request: CallToolRequestParams,
        service_tool: Option<service_tools::ServiceTool>,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CallToolResponse, McpError> {
        let cx = &*scope.context;
        let as_task = self.tasks && context.client_capabilities().is_some_and(|c| c.supports_tasks());
        // The job paths are boxed: awaited inline, their state made every call's future (moved
        // into a task per request) several times larger.
        if let Some(tool) = service_tool {
            let input = tool.request(request.arguments.unwrap_or_default());
            if as_task {
                return Ok(Box::pin(tasks::start_job_task(cx, &tool.service_id, input)).await);
            }
            let result = Box::pin(cx.run_job(
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
            return Ok(Box::pin(tasks::start_job_task(cx, &args.service, args.input)).await);
        }
        let routes = self.tools.get();
        if !routes.has_route(&request.name) {
            let mut offered: Vec<String> = routes.list_all().into_iter().map(|t| t.name.into_owned()).collect();
            offered.extend(scope.service_tools.iter().flat_map(|st| st.list()).map(|t| t.name.into_owned()));
            return Err(toolsets::unknown_tool(&request.name, &offered));
        }
        routes.call(ToolCallContext::new(cx, request, context)).await
    }
}

/// `tools/list`, `prompts/list` and the like are the same for every caller: 2026-07-28 clients
/// may cache them (`ttlMs` 0: ask again before relying on them, `cacheScope` public).
fn cache_hints(context: &RequestContext<RoleServer>) -> bool {
    context.protocol_version().is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

impl ServerHandler for IvcapMcp {
    fn get_info(&self) -> ServerConfig {
        let mut capabilities = ServerCapabilities::builder()
            .enable_completions()
            .enable_prompts()
            .enable_resources()
            .enable_resources_subscribe()
            .enable_tools()
            .build();
        if self.offers_service_tools()
            && let Some(tools) = capabilities.tools.as_mut()
        {
            tools.list_changed = Some(true);
        }
        if self.tasks {
            capabilities.extensions = ServerCapabilities::builder().enable_tasks().build().extensions;
        }
        capabilities.extensions.get_or_insert_default().insert(apps::EXTENSION.into(), apps::capability());
        ServerConfig::new(capabilities)
            .with_server_info(Implementation::new("ivcap-mcp", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListToolsResult, McpError> {
        let scope = self.scope(&context.extensions)?;
        let mut tools = self.tools.get().list_all();
        if let Some(st) = &scope.service_tools {
            tools.extend(st.list());
            tools.sort_by(|a, b| a.name.cmp(&b.name));
        }
        let cache_hints = cache_hints(&context);
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
        let scope = self.scope(&context.extensions)?;
        let observed = self.observe_call(&request, &context, scope.service_tools.as_deref());
        observed.run(self.dispatch_call(scope, request, context)).await
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        if let Ok(Scope { service_tools: Some(st), .. }) = self.scope(&context.extensions) {
            st.add_peer(context.peer);
        }
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<GetTaskResult, McpError> {
        let scope = self.scope(&context.extensions)?;
        tasks::job_task(&scope.context, &request.task_id).await.map(GetTaskResult::new)
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        _context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), McpError> {
        Err(tasks::no_input(&request.task_id))
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), McpError> {
        let scope = self.scope(&context.extensions)?;
        tasks::cancel_job_task(&scope.context, &request.task_id).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListPromptsResult, McpError> {
        let cache_hints = cache_hints(&context);
        Ok(ListPromptsResult {
            result_type: Some(ResultType::COMPLETE),
            prompts: self.prompts.list_all(),
            meta: None,
            next_cursor: None,
            ttl_ms: cache_hints.then_some(0),
            cache_scope: cache_hints.then_some(CacheScope::Public),
        })
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<GetPromptResponse, McpError> {
        self.prompts.get_prompt(PromptContext::new(&Prompts, request.name, request.arguments, context)).await
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<ListResourcesResult, McpError> {
        let scope = self.scope(&context.extensions)?;
        resources::list(&scope.context, request.as_ref().and_then(|r| r.cursor.as_deref())).await
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> std::result::Result<ListResourceTemplatesResult, McpError> {
        Ok(resources::templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<ReadResourceResponse, McpError> {
        let scope = self.scope(&context.extensions)?;
        resources::read(&scope.context, &request.uri).await.map(Into::into)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<(), McpError> {
        if self.stateless {
            return Err(subscriptions::no_channel(&request.uri));
        }
        let backend = self.scope(&context.extensions)?.context.backend().clone();
        self.watches.subscribe(backend, &request.uri, self.context.max_wait, context.peer).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> std::result::Result<(), McpError> {
        self.watches.unsubscribe(&request.uri);
        Ok(())
    }

    fn accepted_subscription_filter(&self, requested: &SubscriptionFilter) -> Option<SubscriptionFilter> {
        let mut accepted = requested.supported_by(&self.get_info().capabilities);
        accepted.resource_subscriptions = subscriptions::accepted_jobs(accepted.resource_subscriptions.as_ref());
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> std::result::Result<(), McpError> {
        let scope = self.scope(&context.request_context().extensions)?;
        let jobs = subscriptions::listen(scope.context.backend().clone(), self.context.max_wait, &context);
        match &scope.service_tools {
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
        context: RequestContext<RoleServer>,
    ) -> std::result::Result<CompleteResult, McpError> {
        let scope = self.scope(&context.extensions)?;
        completions::complete(&**scope.context.backend(), &request).await
    }
}
