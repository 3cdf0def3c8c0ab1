//! `GET /1/services2` and `GET /1/services2/{id}` (docs/ivcap-wire.md §5). Seeding a service
//! also asserts one `urn:sd-core:schema.ai-tool.1` aspect per request schema it is given
//! (§5.3), so a test can make services with one, two or no tool definitions, and
//! [`StandIn::change_service`] / [`StandIn::remove_service`] change them while a server runs.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::paging::{envelope, json_field, list_params, order_desc, select};
use crate::{AppState, AspectRec, StandIn, not_found, now, origin, self_link};

/// Schema of a service's tool definition aspect.
pub const AI_TOOL_SCHEMA: &str = "urn:sd-core:schema.ai-tool.1";

/// A seeded service.
#[derive(Debug, Clone)]
pub struct ServiceRec {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `active`, `inactive` or `error`.
    pub status: String,
    /// `ParameterDefT` entries (`[]` for tool services).
    pub parameters: Value,
}

/// The content of a tool-definition aspect (docs/ivcap-wire.md §5).
fn tool_definition(id: &str, name: &str, description: &str, schema: &Value) -> Value {
    json!({
        "$schema": AI_TOOL_SCHEMA, "id": format!("urn:sd-core:ai-tool.{name}"), "name": name,
        "service-id": id, "description": description, "fn_signature": format!("{name}(…)"),
        "fn_schema": schema,
    })
}

impl StandIn {
    /// Seeds a service with one tool-definition aspect per entry of `fn_schemas`.
    pub fn add_service(&self, id: &str, name: &str, description: &str, fn_schemas: &[Value]) {
        self.with_data(|d| {
            d.services.push(ServiceRec {
                id: id.to_string(),
                name: name.to_string(),
                description: description.to_string(),
                status: "active".into(),
                parameters: json!([]),
            });
            for schema in fn_schemas {
                d.aspects.push(AspectRec::new(id, AI_TOOL_SCHEMA, tool_definition(id, name, description, schema)));
            }
        });
    }

    /// Gives a seeded service these `ParameterDefT` entries (a service described by
    /// parameters rather than a tool definition).
    pub fn set_service_parameters(&self, id: &str, parameters: Value) {
        self.with_data(|d| {
            if let Some(svc) = d.services.iter_mut().find(|s| s.id == id) {
                svc.parameters = parameters;
            }
        });
    }

    /// Changes a running service: a new description and a new tool definition that replaces
    /// (retracts) the live ones, as re-deploying a tool service does.
    pub fn change_service(&self, id: &str, description: &str, fn_schema: &Value) {
        self.with_data(|d| {
            let Some(svc) = d.services.iter_mut().find(|s| s.id == id) else { return };
            svc.description = description.to_string();
            let name = svc.name.clone();
            let t = now();
            let mut replaced = None;
            for a in
                d.aspects.iter_mut().filter(|a| a.entity == id && a.schema == AI_TOOL_SCHEMA && a.valid_to.is_none())
            {
                a.valid_to = Some(t.clone());
                replaced = Some(a.id.clone());
            }
            let mut rec = AspectRec::new(id, AI_TOOL_SCHEMA, tool_definition(id, &name, description, fn_schema));
            rec.replaces = replaced;
            d.aspects.push(rec);
        });
    }

    /// Removes a service and retracts its tool definitions.
    pub fn remove_service(&self, id: &str) {
        self.with_data(|d| {
            d.services.retain(|s| s.id != id);
            let t = now();
            for a in
                d.aspects.iter_mut().filter(|a| a.entity == id && a.schema == AI_TOOL_SCHEMA && a.valid_to.is_none())
            {
                a.valid_to = Some(t.clone());
            }
        });
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/1/services2", get(list)).route("/1/services2/{id}", get(read))
}

async fn list(State(s): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let lp = match list_params(q.as_deref()) {
        Ok(lp) => lp,
        Err(e) => return e,
    };
    let search = lp.get("search").map(str::to_lowercase);
    let services: Vec<ServiceRec> = s
        .data()
        .services
        .iter()
        .filter(|svc| search.as_deref().is_none_or(|t| svc.name.to_lowercase().contains(t)))
        .cloned()
        .collect();
    let origin = origin(&headers);
    let items: Vec<Value> = services
        .iter()
        .map(|svc| {
            let mut item = json!({
                "id": svc.id, "name": svc.name, "description": svc.description,
                "controller-schema": "urn:ivcap:schema.service.rest.1",
                "href": format!("{origin}/1/services2/{}", svc.id),
            });
            if search.is_some() {
                item["score"] = json!(1.0);
            }
            item
        })
        .collect();
    const FIELDS: &[&str] = &["id", "name", "description"];
    let items = match select(items, &lp, FIELDS, &["name", "description"], order_desc(&lp), json_field) {
        Ok(items) => items,
        Err(e) => return e,
    };
    axum::Json(envelope(items, &lp, &origin, "/1/services2", Some(now()))).into_response()
}

async fn read(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(svc) = s.data().services.iter().find(|svc| svc.id == id).cloned() else {
        return not_found(&id);
    };
    let href = format!("{}/1/services2/{}", origin(&headers), svc.id);
    axum::Json(json!({
        "id": svc.id, "name": svc.name, "description": svc.description, "status": svc.status,
        "account": "urn:ivcap:account:00000000-0000-0000-0000-000000000001",
        "controller-schema": "urn:ivcap:schema.service.rest.1",
        "controller": [{"$schema": "urn:ivcap:schema.service.rest.1", "image": "img:latest", "port": 8090}],
        "parameters": svc.parameters, "policy": "urn:ivcap:policy:ivcap.open.metadata", "tags": [],
        "links": self_link(&href),
    }))
    .into_response()
}
