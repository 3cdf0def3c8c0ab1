//! The search toolset: `search`, a Datalog (Mangle) query over the Datafabric.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value};

use super::ToolContext;
use super::args::{AtTime, at_time, page_request, paged_args};
use super::{ListView, to_tool_error};
use crate::backend::search::check_query_size;
use crate::error::Error;

paged_args! {
    /// Arguments of `search`.
    pub struct SearchArgs {
        /// Mangle, e.g. `:- ivcap_artifact(Id, Name, Mime), Mime = "image/jpeg".` or a `query(E) :- …` rule;
        /// aspect tables: `:load_aspect(/t, "<schema urn>", [".a", ".list[*]"]).`
        pub query: String,
        #[serde(default)]
        pub at_time: Option<AtTime>,
    }
}

#[tool_router(router = search_router, vis = "pub(crate)")]
impl ToolContext {
    #[tool(
        input_schema = crate::schema::tool_input::<SearchArgs>(),
        output_schema = crate::schema::tool_output::<ListView<Answer>>(),
        description = "Datalog (Mangle) over the Datafabric: joins, recursion, negation, aggregation; optionally at \
                       a past at_time. Answers are objects of the query's variables. Predicates: ivcap_artifact(Id, Name, MimeType), \
                       ivcap_aspect(Entity, Schema, Content) (fields: :match_field(Content, /field, V)), \
                       ivcap_service(Id, Name), ivcap_job(Id, Status, ServiceId), \
                       ivcap_artifact_produced_by(ArtifactId, JobId).",
        annotations(
            title = "Search (Datalog)",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn search(&self, Parameters(args): Parameters<SearchArgs>) -> Result<Json<ListView<Answer>>, String> {
        check_query_size(&args.query).map_err(to_tool_error)?;
        let at_time = at_time(args.at_time.as_ref()).map_err(to_tool_error)?;
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        if args.query.trim().is_empty() {
            return Err(to_tool_error(Error::invalid(
                "query",
                "is empty; pass a Mangle query such as `:- ivcap_service(Id, Name).`",
            )));
        }
        let found = self.backend.search(&args.query, at_time, &page).await.map_err(to_tool_error)?;
        Ok(Json(ListView::bounded(found, Answer, self.output_budget)))
    }
}

/// One answer: an object of the query's variables. Its schema says "object" (any members)
/// rather than `true`, which strict schema linters reject as an output item schema.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Answer(#[schemars(with = "Map<String, Value>")] Value);
