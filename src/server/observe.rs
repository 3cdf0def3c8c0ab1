//! What a tool call tells operators: it runs with the W3C trace context it came with (from
//! `_meta`, SEP-414, else the HTTP request's headers) as the current one, so every IVCAP
//! request made for it carries it (`crate::telemetry::trace`); its outcome and duration go
//! into the metrics; and one log line names the tool, the outcome and the trace id.

use std::sync::Arc;
use std::time::Instant;

use rmcp::model::{CallToolRequestParams, CallToolResponse};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer};
use tracing::Instrument;

use super::IvcapMcp;
use super::service_tools::ServiceTools;
use crate::auth::{Caller, UserId};
use crate::telemetry::metrics::{self, Outcome, SessionOpen};
use crate::telemetry::trace::{self, TraceContext};

/// A tool call about to run.
pub(super) struct ObservedCall {
    /// The tool's name, or `unknown` for a name this server does not offer (so a client
    /// cannot make up metric labels).
    tool: String,
    trace: Option<TraceContext>,
    /// The `--oauth` user the call acts for.
    user: Option<UserId>,
}

impl IvcapMcp {
    /// A clone of this handler for a new session of `transport`, counted in the metrics
    /// while the session lives.
    pub(crate) fn for_session(&self, transport: &'static str) -> Self {
        IvcapMcp { _session: Some(Arc::new(SessionOpen::start(transport))), ..self.clone() }
    }

    pub(super) fn observe_call(
        &self,
        request: &CallToolRequestParams,
        context: &RequestContext<RoleServer>,
        service_tools: Option<&ServiceTools>,
    ) -> ObservedCall {
        let name = request.name.as_ref();
        let known = self.tools.get().has_route(name) || service_tools.is_some_and(|st| st.get(name).is_some());
        let tool = if known { name.to_string() } else { "unknown".to_string() };
        let parts = context.extensions.get::<axum::http::request::Parts>();
        let user = parts.and_then(|p| p.extensions.get::<Caller>()).map(|c| c.user.clone());
        let headers = parts.map(|parts| &parts.headers);
        let header = |name: &str| headers.and_then(|h| h.get(name)).and_then(|v| v.to_str().ok());
        let trace = match context.meta.get_traceparent() {
            Some(traceparent) => TraceContext::parse(traceparent, context.meta.get_tracestate()),
            None => header("traceparent").and_then(|tp| TraceContext::parse(tp, header("tracestate"))),
        };
        ObservedCall { tool, trace, user }
    }
}

impl ObservedCall {
    /// Runs `call` under the call's trace context and span, then records it.
    pub(super) async fn run(
        self,
        call: impl Future<Output = Result<CallToolResponse, McpError>>,
    ) -> Result<CallToolResponse, McpError> {
        let trace_id = self.trace.as_ref().map(|t| t.trace_id().to_string());
        let span = tracing::info_span!(
            "tool_call",
            tool = %self.tool,
            trace_id = trace_id.as_deref(),
            user = self.user.as_ref().map(|u| tracing::field::display(&u.subject)),
            issuer = self.user.as_ref().map(|u| tracing::field::display(&u.issuer)),
        );
        let start = Instant::now();
        let result = trace::scope(self.trace, call).instrument(span.clone()).await;
        let took = start.elapsed();
        let outcome = match &result {
            Err(_) => Outcome::ProtocolError,
            Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => Outcome::ToolError,
            Ok(_) => Outcome::Ok,
        };
        metrics::tool_call(&self.tool, outcome, took);
        span.in_scope(|| {
            tracing::info!(outcome = outcome.as_str(), duration_ms = took.as_millis() as u64, "tool call");
        });
        result
    }
}
