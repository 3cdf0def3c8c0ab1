//! The collections toolset: `create_collection`, `list_collections`, `get_collection`,
//! `update_collection`, `retract_collection` — named groups of entity URNs, stored as aspects
//! the way the Python SDK stores them, so either side sees the other's collections.

use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::{tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ToolContext;
use super::args::{page_request, paged_args};
use super::budget::{self, Cut, Shrink};
use super::{ListView, to_tool_error};
use crate::backend::collections::{Changes, Collection, CollectionPage, NewCollection, collection_urn, member_urns};
use crate::error::Error;

/// Arguments of `create_collection`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCollectionArgs {
    /// e.g. "Field trip June".
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// URN of one to replace; omit for a new one.
    #[serde(default)]
    pub collection: Option<String>,
    /// "urn:ivcap:policy:…"; omit for the default.
    #[serde(default)]
    pub policy: Option<String>,
}

paged_args! {
    /// Arguments of `list_collections`.
    pub struct ListCollectionsArgs {
        /// Name pattern, case-insensitive, % = any text, e.g. "trip%".
        #[serde(default)]
        pub name: Option<String>,
    }
}

paged_args! {
    /// Arguments of `get_collection`.
    pub struct GetCollectionArgs {
        pub collection: String,
    }
}

/// Arguments of `update_collection`. The fields say what they are; descriptions here would only
/// repeat the tool's and cost `tools/list` bytes (as in `get_collection`, `retract_collection`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCollectionArgs {
    pub collection: String,
    #[serde(default)]
    pub add: Option<Vec<String>>,
    #[serde(default)]
    pub remove: Option<Vec<String>>,
}

/// Arguments of `retract_collection`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetractCollectionArgs {
    pub collection: String,
}

/// A collection's definition.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionItem {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

impl From<Collection> for CollectionItem {
    fn from(c: Collection) -> Self {
        CollectionItem { id: c.id, name: c.name, description: c.description }
    }
}

/// The definition written.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// An existing definition was replaced.
    pub replaced: bool,
}

/// A definition and a page of its members.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CollectionView {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Member URNs, oldest membership first.
    pub members: Vec<String>,
    pub next_page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Members on the page before any were cut.
    #[serde(skip)]
    total: usize,
}

impl From<CollectionPage> for CollectionView {
    fn from(p: CollectionPage) -> Self {
        let c = p.collection;
        CollectionView {
            id: c.id,
            name: c.name,
            description: c.description,
            total: p.members.items.len(),
            members: p.members.items,
            next_page: p.members.next_page,
            truncated: None,
            note: p.members.note,
        }
    }
}

impl Shrink for CollectionView {
    /// Drops members from the end; one stays.
    fn shrink(&mut self, excess: usize) -> Option<Cut> {
        budget::cut_items(&mut self.members, self.total, excess, "members")
    }

    fn note(&mut self) -> &mut Option<String> {
        &mut self.note
    }

    fn truncated(&mut self) -> &mut Option<bool> {
        &mut self.truncated
    }
}

/// What update_collection did, URN by URN.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChangesView {
    pub id: String,
    pub added: Vec<String>,
    pub already_members: Vec<String>,
    /// Their memberships were retracted.
    pub removed: Vec<String>,
    pub not_members: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Shrink for ChangesView {
    /// Cuts the longest list from the end; the note gives every list's full length.
    fn shrink(&mut self, excess: usize) -> Option<Cut> {
        let lists = [&mut self.added, &mut self.already_members, &mut self.removed, &mut self.not_members];
        let longest = lists.into_iter().max_by_key(|l| l.len()).filter(|l| l.len() > 1)?;
        let mut freed = 0;
        while freed < excess && longest.len() > 1 {
            freed += longest.pop().map_or(0, |u| u.len() + 3);
        }
        Some(Cut {
            part: "lists",
            what: "some URN lists are cut short".into(),
            remedy: "call get_collection to see the members, or change fewer URNs per call".into(),
        })
    }

    fn note(&mut self) -> &mut Option<String> {
        &mut self.note
    }

    fn truncated(&mut self) -> &mut Option<bool> {
        &mut self.truncated
    }
}

/// What retract_collection did.
#[derive(Debug, Serialize, JsonSchema)]
pub struct RetractedView {
    pub id: String,
    /// Membership aspects retracted.
    pub memberships_retracted: usize,
    /// Whether there was a definition to retract.
    pub definition_retracted: bool,
}

#[tool_router(router = collections_router, vis = "pub(crate)")]
impl ToolContext {
    #[tool(
        input_schema = crate::schema::tool_input::<CreateCollectionArgs>(),
        description = "Create a collection (a named group of URNs), or replace the name and description of one.",
        output_schema = crate::schema::tool_output::<CreatedView>(),
        annotations(
            title = "Create collection",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn create_collection(
        &self,
        Parameters(args): Parameters<CreateCollectionArgs>,
    ) -> Result<Json<CreatedView>, String> {
        let new = NewCollection::new(
            args.collection.as_deref(),
            &args.name,
            args.description.as_deref(),
            args.policy.as_deref(),
        )
        .map_err(to_tool_error)?;
        let done = self.backend.create_collection(&new).await.map_err(to_tool_error)?;
        let c = done.collection;
        Ok(Json(CreatedView { id: c.id, name: c.name, description: c.description, replaced: done.replaced }))
    }

    #[tool(
        input_schema = crate::schema::tool_input::<ListCollectionsArgs>(),
        output_schema = crate::schema::tool_output::<ListView<CollectionItem>>(),
        description = "List collections, newest first.",
        annotations(
            title = "List collections",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn list_collections(
        &self,
        Parameters(args): Parameters<ListCollectionsArgs>,
    ) -> Result<Json<ListView<CollectionItem>>, String> {
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        let name = args.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
        let found = self.backend.list_collections(name, &page).await.map_err(to_tool_error)?;
        Ok(Json(ListView::bounded(found, CollectionItem::from, self.output_budget)))
    }

    #[tool(
        input_schema = crate::schema::tool_input::<GetCollectionArgs>(),
        output_schema = crate::schema::tool_output::<CollectionView>(),
        description = "A collection's name, description and a page of member URNs.",
        annotations(
            title = "Get collection",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn get_collection(
        &self,
        Parameters(args): Parameters<GetCollectionArgs>,
    ) -> Result<Json<CollectionView>, String> {
        let page = page_request(args.limit, args.page).map_err(to_tool_error)?;
        let found = self.backend.get_collection(&args.collection, &page).await.map_err(to_tool_error)?;
        Ok(Json(budget::fit(CollectionView::from(found), self.output_budget)))
    }

    #[tool(
        input_schema = crate::schema::tool_input::<UpdateCollectionArgs>(),
        output_schema = crate::schema::tool_output::<ChangesView>(),
        description = "Add or remove members (URNs, up to 100 each); idempotent.",
        annotations(
            title = "Update collection",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn update_collection(
        &self,
        Parameters(args): Parameters<UpdateCollectionArgs>,
    ) -> Result<Json<ChangesView>, String> {
        let id = collection_urn(&args.collection).map_err(to_tool_error)?;
        let add = member_urns("add", &args.add.unwrap_or_default()).map_err(to_tool_error)?;
        let remove = member_urns("remove", &args.remove.unwrap_or_default()).map_err(to_tool_error)?;
        if add.is_empty() && remove.is_empty() {
            return Err(to_tool_error(Error::invalid("add", "add and remove are both empty; pass URNs in either")));
        }
        if let Some(both) = add.iter().find(|u| remove.contains(u)) {
            return Err(to_tool_error(Error::invalid(
                "remove",
                format!("'{both}' is in both add and remove; pass it in one of them"),
            )));
        }
        let changes = self.backend.update_collection(&id, &add, &remove).await.map_err(to_tool_error)?;
        let Changes { added, already_members, removed, not_members } = changes;
        let view = ChangesView { id, added, already_members, removed, not_members, truncated: None, note: None };
        Ok(Json(budget::fit(view, self.output_budget)))
    }

    #[tool(
        input_schema = crate::schema::tool_input::<RetractCollectionArgs>(),
        output_schema = crate::schema::tool_output::<RetractedView>(),
        description = "Retract a collection: its definition and memberships (not the members).",
        annotations(
            title = "Retract collection",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    pub async fn retract_collection(
        &self,
        Parameters(args): Parameters<RetractCollectionArgs>,
    ) -> Result<Json<RetractedView>, String> {
        let id = collection_urn(&args.collection).map_err(to_tool_error)?;
        let done = self.backend.retract_collection(&id).await.map_err(to_tool_error)?;
        Ok(Json(RetractedView { id, memberships_retracted: done.memberships, definition_retracted: done.definition }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Page;

    #[test]
    fn a_large_page_of_members_is_cut_to_the_budget_and_says_how_to_page() {
        let members: Vec<String> = (0..50).map(|i| format!("urn:ivcap:artifact:{i:04}-{}", "x".repeat(60))).collect();
        let collection = Collection { id: "urn:ivcap:collection:1".into(), name: "Big".into(), description: None };
        let page = CollectionPage { collection, members: Page::new(members, Some("t")) };
        let view = budget::fit(CollectionView::from(page), 1_000);
        assert!(budget::json_len(&view) <= 1_000, "{}", budget::json_len(&view));
        assert_eq!(view.truncated, Some(true));
        let note = view.note.unwrap_or_default();
        assert!(note.contains(&format!("only {} of the 50 members", view.members.len())), "{note}");
        assert!(note.contains(&format!("limit={}", view.members.len())), "{note}");
    }

    #[test]
    fn long_change_lists_are_cut_and_marked() {
        let urns: Vec<String> = (0..100).map(|i| format!("urn:ex:item:{i:04}-{}", "y".repeat(40))).collect();
        let view = ChangesView {
            id: "urn:ivcap:collection:1".into(),
            added: urns.clone(),
            already_members: vec![],
            removed: urns,
            not_members: vec![],
            truncated: None,
            note: None,
        };
        let view = budget::fit(view, 2_000);
        assert!(budget::json_len(&view) <= 2_000);
        assert_eq!(view.truncated, Some(true));
        assert!(view.note.unwrap_or_default().contains("get_collection"));
    }
}
