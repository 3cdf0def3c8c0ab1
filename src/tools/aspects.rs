//! The aspects toolset: `add_aspect`, `update_aspect`, `get_aspect`, `list_aspects`,
//! `retract_aspect` — the Datafabric, with time travel and retraction.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::CallToolResult;
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ToolContext;
use super::args::{AtTime, at_time, page_request, paged_args};
use super::budget::{self, Cut, Shrink};
use super::{ListView, linked, to_tool_error};
use crate::backend::aspects::{Aspect, AspectQuery, NewAspect, Order};
use crate::backend::listing::{ASPECT_FIELDS, ListOptions};
use crate::error::Error;
use crate::time::format as time;

/// Arguments of `add_aspect` and `update_aspect`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AspectArgs {
    /// Entity URN, e.g. "urn:ivcap:artifact:…".
    pub entity: String,
    /// Schema URN, e.g. "urn:example:schema:label.1" (no %).
    pub schema: String,
    /// JSON object, e.g. {"label": "cat"}.
    #[schemars(with = "Map<String, Value>")]
    pub content: Value,
    /// "urn:ivcap:policy:…"; omit for the default.
    #[serde(default)]
    pub policy: Option<String>,
}

/// Arguments of `get_aspect` and `retract_aspect`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AspectIdArgs {
    /// Aspect URN (or its uuid), from add_aspect or list_aspects.
    pub aspect: String,
}

paged_args! {
    /// Arguments of `list_aspects`.
    pub struct ListAspectsArgs {
        /// Entity URN (exact).
        #[serde(default)]
        pub entity: Option<String>,
        /// Schema URN; % = any text, e.g. "urn:example:schema:%".
        #[serde(default)]
        pub schema: Option<String>,
        /// PostgreSQL JSONPath the content must match, e.g. `$.items[*] ? (@.size > 10000)`.
        #[serde(default)]
        pub content_path: Option<String>,
        /// RFC 3339; default now (live only).
        #[serde(default)]
        pub at_time: Option<AtTime>,
        /// Return the content too (default false).
        #[serde(default)]
        pub include_content: Option<bool>,
        /// e.g. entity = 'urn:x:1'
        #[serde(default)]
        pub filter: Option<String>,
        /// Default valid_from.
        #[serde(default)]
        pub order_by: Option<String>,
        /// "DESC" (newest first, default) or "ASC".
        #[serde(default)]
        pub order_direction: Option<String>,
    }
}

/// The new aspect.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AddedView {
    /// URN of the new aspect.
    pub id: String,
}

/// What update_aspect did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdatedView {
    /// URN of the new aspect.
    pub id: String,
    /// URN of the aspect it retracted; absent when none was live (the new one was simply added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaced: Option<String>,
}

/// One aspect record.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AspectView {
    pub id: String,
    pub entity: String,
    pub schema: String,
    /// The asserted JSON object (absent when it did not fit the output budget; see note).
    #[schemars(with = "Option<Map<String, Value>>")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<Value>,
    /// When it was asserted (RFC 3339).
    pub valid_from: String,
    /// When it was retracted or replaced (RFC 3339); absent while live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub asserter: Option<String>,
    /// The aspect this one replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// An aspect in a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AspectItem {
    /// Aspect URN; pass it to get_aspect or retract_aspect.
    pub id: String,
    pub entity: String,
    pub schema: String,
    /// When it was asserted (RFC 3339).
    pub valid_from: String,
    /// When it was retracted (RFC 3339); absent while live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
    /// The content, when include_content was true.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub content: Option<Value>,
}

/// A retracted aspect.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RetractedView {
    pub id: String,
    /// When it stopped being valid (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<String>,
}

impl From<Aspect> for AspectItem {
    fn from(a: Aspect) -> Self {
        AspectItem {
            id: a.id,
            entity: a.entity,
            schema: a.schema,
            valid_from: time(a.valid_from),
            valid_to: a.valid_to.map(time),
            content: a.content,
        }
    }
}

impl AspectView {
    /// The view of `a`, its content left out if it would break `budget`.
    pub(crate) fn bounded(a: Aspect, budget: usize) -> Self {
        let view = AspectView {
            id: a.id,
            entity: a.entity,
            schema: a.schema,
            content: a.content,
            valid_from: time(a.valid_from),
            valid_to: a.valid_to.map(time),
            asserter: a.asserter,
            replaces: a.replaces,
            policy: a.policy,
            truncated: None,
            note: None,
        };
        budget::fit(view, budget)
    }
}

impl Shrink for AspectView {
    /// The content goes whole: half a JSON object would mislead.
    fn shrink(&mut self, _excess: usize) -> Option<Cut> {
        let content = self.content.take()?;
        Some(Cut {
            part: "content",
            what: format!("the content ({} characters) was left out", budget::json_len(&content)),
            remedy:
                "test parts of it with list_aspects content_path, or restart the server with a larger --output-budget"
                    .into(),
        })
    }

    fn note(&mut self) -> &mut Option<String> {
        &mut self.note
    }

    fn truncated(&mut self) -> &mut Option<bool> {
        &mut self.truncated
    }
}

/// The checked assertion of `add_aspect` / `update_aspect`.
fn new_aspect(a: AspectArgs) -> Result<NewAspect, String> {
    NewAspect::new(&a.entity, &a.schema, a.content, a.policy.as_deref()).map_err(to_tool_error)
}

/// The `resource_link` of a new aspect.
fn aspect_link(id: &str, new: &NewAspect) -> rmcp::model::ContentBlock {
    super::links::link(id, &format!("aspect ({}) about {}", new.schema, new.entity))
}

/// A filter argument: trimmed, empty = absent.
fn given(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

#[tool_router(router = aspects_router, vis = "pub(crate)")]
impl ToolContext {
    #[tool(
        input_schema = crate::schema::tool_input::<AspectArgs>(),
        description = "Assert a JSON fact (content) about an entity URN under a schema URN; it adds (update_aspect \
                       replaces).",
        output_schema = crate::schema::tool_output::<AddedView>(),
        annotations(
            title = "Add aspect",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn add_aspect(&self, Parameters(args): Parameters<AspectArgs>) -> Result<CallToolResult, String> {
        let new = new_aspect(args)?;
        let id = self.backend.add_aspect(&new).await.map_err(to_tool_error)?;
        let link = aspect_link(&id, &new);
        linked(&AddedView { id }, vec![link]).map_err(to_tool_error)
    }

    #[tool(
        input_schema = crate::schema::tool_input::<AspectArgs>(),
        description = "Retract the live (entity, schema) aspect (its record stays) and assert new content; adds if \
                       none is live; fails if several are.",
        output_schema = crate::schema::tool_output::<UpdatedView>(),
        annotations(
            title = "Update aspect",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn update_aspect(&self, Parameters(args): Parameters<AspectArgs>) -> Result<CallToolResult, String> {
        let new = new_aspect(args)?;
        let done = self.backend.update_aspect(&new).await.map_err(to_tool_error)?;
        let link = aspect_link(&done.id, &new);
        linked(&UpdatedView { id: done.id, replaced: done.replaced }, vec![link]).map_err(to_tool_error)
    }

    #[tool(
        input_schema = crate::schema::tool_input::<AspectIdArgs>(),
        output_schema = crate::schema::tool_output::<AspectView>(),
        description = "One aspect by URN: entity, schema, content, valid_from, valid_to; retracted ones too.",
        annotations(
            title = "Get aspect",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_aspect(&self, Parameters(args): Parameters<AspectIdArgs>) -> Result<Json<AspectView>, String> {
        let aspect = self.backend.get_aspect(&args.aspect).await.map_err(to_tool_error)?;
        Ok(Json(AspectView::bounded(aspect, self.output_budget)))
    }

    #[tool(
        input_schema = crate::schema::tool_input::<ListAspectsArgs>(),
        output_schema = crate::schema::tool_output::<ListView<AspectItem>>(),
        description = "Query aspects by entity, schema (% wildcards) and a JSONPath on the content, as valid now or \
                       at a past at_time, newest first.",
        annotations(
            title = "List aspects",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_aspects(
        &self,
        Parameters(args): Parameters<ListAspectsArgs>,
    ) -> Result<Json<ListView<AspectItem>>, String> {
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        let entity = given(args.entity);
        if let Some(e) = &entity
            && !crate::urn::is_urn(e)
        {
            return Err(to_tool_error(Error::invalid(
                "entity",
                format!("'{e}' is not a URN; pass an entity URN such as urn:example:site:42, or omit entity"),
            )));
        }
        let at_time = at_time(args.at_time.as_ref()).map_err(to_tool_error)?;
        let order = given(args.order_direction).map(|o| Order::parse(&o)).transpose().map_err(to_tool_error)?;
        let options =
            ListOptions::new(args.filter, args.order_by, None, at_time, &ASPECT_FIELDS).map_err(to_tool_error)?;
        let query = AspectQuery {
            entity,
            schema: given(args.schema),
            content_path: given(args.content_path),
            at_time,
            include_content: args.include_content.unwrap_or(false),
            filter: options.filter,
            order_by: options.order_by,
            order: order.unwrap_or_default(),
        };
        let found = self.backend.list_aspects(&query, &page).await.map_err(to_tool_error)?;
        Ok(Json(ListView::bounded(found, AspectItem::from, self.output_budget)))
    }

    #[tool(
        input_schema = crate::schema::tool_input::<AspectIdArgs>(),
        output_schema = crate::schema::tool_output::<RetractedView>(),
        description = "Retract an aspect: valid_to is set now; the record stays readable (get_aspect, list_aspects \
                       at_time). Twice is a harmless error.",
        annotations(
            title = "Retract aspect",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn retract_aspect(
        &self,
        Parameters(args): Parameters<AspectIdArgs>,
    ) -> Result<Json<RetractedView>, String> {
        let aspect = self.backend.retract_aspect(&args.aspect).await.map_err(to_tool_error)?;
        Ok(Json(RetractedView { id: aspect.id, valid_to: aspect.valid_to.map(time) }))
    }
}
