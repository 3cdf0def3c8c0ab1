//! The services toolset: `list_services`, `get_service`.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ToolContext;
use super::args::{list_args, list_options, page_request};
use super::budget::{self, Cut, LARGER_BUDGET, Shrink};
use super::{ListView, to_tool_error};
use crate::backend::listing::SERVICE_FIELDS;
use crate::backend::{ServiceDetail, ServiceParameter, ServiceSummary};
use crate::schema::normalise;

list_args! {
    /// Arguments of `list_services`.
    pub struct ListServicesArgs {
        /// Text the name contains (case-insensitive; % = any text).
        #[serde(default)]
        pub name: Option<String>,
    }
    filter = "e.g. name ~= 'a%'"
}

/// Arguments of `get_service`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetServiceArgs {
    /// Service URN or exact name, from list_services.
    pub service: String,
}

/// A service in a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ServiceItem {
    /// Service URN; pass it to get_service or submit_job.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// E.g. that a local service is not running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One declared parameter of a service.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ParameterView {
    pub name: String,
    /// string, int, float, bool, option, artifact (a URN) or collection (a URN).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub optional: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// The allowed values of an option parameter.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

impl From<ServiceParameter> for ParameterView {
    fn from(p: ServiceParameter) -> Self {
        ParameterView {
            optional: p.is_optional(),
            name: p.name,
            kind: p.kind,
            description: p.description,
            default: p.default,
            options: p.options.into_iter().map(|o| o.value).collect(),
        }
    }
}

/// One service with its request schema.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ServiceView {
    /// Service URN.
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// active, inactive or error.
    pub status: String,
    /// JSON Schema of a job request (the `input` of submit_job), normalised for portability.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<serde_json::Map<String, Value>>")]
    pub request_schema: Option<Value>,
    /// The parameters the service declares, when it has some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<ParameterView>,
    /// Anything the caller should know, e.g. why request_schema is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// True when the description or schema was cut to fit the output budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
}

impl From<ServiceSummary> for ServiceItem {
    fn from(s: ServiceSummary) -> Self {
        ServiceItem { id: s.id, name: s.name, description: s.description, note: s.note }
    }
}

impl ServiceView {
    /// The view of `s`, kept within `budget` characters.
    pub(crate) fn bounded(s: ServiceDetail, budget: usize) -> Self {
        let view = ServiceView {
            id: s.id,
            name: s.name,
            description: s.description,
            status: s.status.as_str().to_string(),
            request_schema: s.request_schema.as_ref().map(normalise),
            parameters: s.parameters.into_iter().map(ParameterView::from).collect(),
            note: s.note,
            truncated: None,
        };
        budget::fit(view, budget)
    }
}

impl Shrink for ServiceView {
    /// First the description is cut, then the request schema left out.
    fn shrink(&mut self, excess: usize) -> Option<Cut> {
        if let Some(kept) = self.description.as_mut().and_then(|d| budget::cut_text(d, excess)) {
            let what = format!("the description was cut to its first {kept} bytes");
            return Some(Cut { part: "description", what, remedy: LARGER_BUDGET.into() });
        }
        self.request_schema.take()?;
        Some(Cut {
            part: "request_schema",
            what: "the request schema was left out".into(),
            remedy: LARGER_BUDGET.into(),
        })
    }

    fn note(&mut self) -> &mut Option<String> {
        &mut self.note
    }

    fn truncated(&mut self) -> &mut Option<bool> {
        &mut self.truncated
    }
}

#[tool_router(router = services_router, vis = "pub(crate)")]
impl ToolContext {
    #[tool(
        input_schema = crate::schema::tool_input::<ListServicesArgs>(),
        output_schema = crate::schema::tool_output::<ListView<ServiceItem>>(),
        description = "List the IVCAP services you can run; then get_service for one's request schema.",
        annotations(
            title = "List services",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_services(
        &self,
        Parameters(args): Parameters<ListServicesArgs>,
    ) -> Result<Json<ListView<ServiceItem>>, String> {
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        let options = list_options(args.filter, args.order_by, args.order_desc, args.at_time.as_ref(), &SERVICE_FIELDS)
            .map_err(to_tool_error)?;
        let found = self.backend.list_services(args.name.as_deref(), &options, &page).await.map_err(to_tool_error)?;
        Ok(Json(ListView::bounded(found, ServiceItem::from, self.output_budget)))
    }

    #[tool(
        input_schema = crate::schema::tool_input::<GetServiceArgs>(),
        output_schema = crate::schema::tool_output::<ServiceView>(),
        description = "One IVCAP service by URN or exact name: description, status, parameters and the JSON Schema \
                       a submit_job input must match.",
        annotations(
            title = "Get service",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_service(&self, Parameters(args): Parameters<GetServiceArgs>) -> Result<Json<ServiceView>, String> {
        if args.service.trim().is_empty() {
            return Err(to_tool_error(crate::error::Error::invalid(
                "service",
                "is empty; pass a service URN or exact name from list_services",
            )));
        }
        let service = self.backend.get_service(&args.service).await.map_err(to_tool_error)?;
        Ok(Json(ServiceView::bounded(service, self.output_budget)))
    }
}
