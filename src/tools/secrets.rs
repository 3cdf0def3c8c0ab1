//! The secrets toolset: `list_secrets`. Names and expiry only; values never.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::Serialize;

use super::ToolContext;
use super::args::{page_request, paged_args};
use super::{ListView, to_tool_error};
use crate::backend::SecretInfo;

paged_args! {
    /// Arguments of `list_secrets`.
    pub struct ListSecretsArgs {
        /// Name pattern, e.g. "openai.*".
        #[serde(default)]
        pub filter: Option<String>,
    }
}

/// A secret's name and expiry; never its value.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SecretItem {
    pub name: String,
    /// Expiry as the platform reports it (int64).
    pub expiry_time: Option<i64>,
}

#[tool_router(router = secrets_router, vis = "pub(crate)")]
impl ToolContext {
    #[tool(
        input_schema = crate::schema::tool_input::<ListSecretsArgs>(),
        output_schema = crate::schema::tool_output::<ListView<SecretItem>>(),
        description = "Names and expiry times of your IVCAP secrets (never values).",
        annotations(
            title = "List secrets",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_secrets(
        &self,
        Parameters(args): Parameters<ListSecretsArgs>,
    ) -> Result<Json<ListView<SecretItem>>, String> {
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        let found = self.backend.list_secrets(args.filter.as_deref(), &page).await.map_err(to_tool_error)?;
        let view = |s: SecretInfo| SecretItem { name: s.name, expiry_time: s.expiry_time };
        Ok(Json(ListView::bounded(found, view, self.output_budget)))
    }
}
