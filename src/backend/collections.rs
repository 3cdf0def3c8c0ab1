//! Collections: named groups of entities (usually artifacts), kept entirely in the
//! Datafabric the way the Python SDK keeps them (docs/ivcap-wire.md §8.1): a
//! definition aspect [`COLLECTION_SCHEMA`] `{name, description?}` and one membership aspect
//! [`COLLECTION_ITEM_SCHEMA`] `{collection, item}` per member, both about the collection URN.
//! So collections made by the SDK are seen here and the other way round.
//!
//! The operations are written once, as provided methods over [`AspectsBackend`]; a backend
//! overrides only what it can do better (the platform retracts a listed aspect with one
//! `DELETE`, the local store checks and writes a membership under its directory lock).

use serde_json::{Map, Value, json};

use super::aspects::{Aspect, AspectQuery, AspectsBackend, NewAspect};
use super::{Page, PageRequest};
use crate::error::{Error, Missing, Result};
pub use crate::urn::COLLECTION_PREFIX;
use crate::urn::is_urn;

/// Schema of a collection definition.
pub const COLLECTION_SCHEMA: &str = "urn:ivcap:schema:collection.1";
/// Schema of one membership record.
pub const COLLECTION_ITEM_SCHEMA: &str = "urn:ivcap:schema:collection-item.1";
/// Most URNs one `update_collection` takes in `add` and in `remove` (each is a request or two).
pub const MAX_CHANGES: usize = 100;

/// A collection's definition.
#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    /// The collection URN (the entity of its aspects).
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

impl Collection {
    /// The collection a definition aspect describes.
    fn from_definition(a: Aspect) -> Self {
        let text = |k: &str| a.content.as_ref().and_then(|c| c.get(k)).and_then(Value::as_str).map(str::to_string);
        Collection { name: text("name").unwrap_or_default(), description: text("description"), id: a.entity }
    }
}

/// A definition to write, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCollection {
    /// The given URN, or a new `urn:ivcap:collection:<uuid>`.
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub policy: Option<String>,
}

impl NewCollection {
    /// Checks the arguments of `create_collection`.
    pub fn new(collection: Option<&str>, name: &str, description: Option<&str>, policy: Option<&str>) -> Result<Self> {
        let name = name.trim();
        if name.is_empty() {
            return Err(Error::invalid("name", "is empty; pass a name for the collection, e.g. \"Field trip June\""));
        }
        let id = match collection.map(str::trim).filter(|c| !c.is_empty()) {
            Some(c) => collection_urn(c)?,
            None => format!("{COLLECTION_PREFIX}{}", uuid::Uuid::new_v4()),
        };
        let description = description.map(str::trim).filter(|d| !d.is_empty()).map(str::to_string);
        // The aspect checks the policy; the URN is already checked.
        let probe = NewAspect::new(&id, COLLECTION_SCHEMA, json!({}), policy)?;
        Ok(NewCollection { id, name: name.to_string(), description, policy: probe.policy })
    }

    /// The definition aspect, as the SDK writes it.
    fn aspect(&self) -> NewAspect {
        let mut content = Map::new();
        content.insert("name".into(), Value::String(self.name.clone()));
        if let Some(d) = &self.description {
            content.insert("description".into(), Value::String(d.clone()));
        }
        NewAspect {
            entity: self.id.clone(),
            schema: COLLECTION_SCHEMA.into(),
            content: Value::Object(content),
            policy: self.policy.clone(),
        }
    }
}

/// What `create_collection` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub collection: Collection,
    /// A definition was there and was replaced.
    pub replaced: bool,
}

/// A definition and one page of its members' URNs.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionPage {
    pub collection: Collection,
    pub members: Page<String>,
}

/// What `update_collection` did, item by item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    pub added: Vec<String>,
    pub already_members: Vec<String>,
    /// Their memberships were retracted.
    pub removed: Vec<String>,
    pub not_members: Vec<String>,
}

/// What `retract_collection` did.
#[derive(Debug, Clone, PartialEq)]
pub struct Retracted {
    /// Membership aspects retracted.
    pub memberships: usize,
    /// Whether there was a definition to retract.
    pub definition: bool,
}

/// `s` as a collection URN, or an argument error naming `collection`.
pub fn collection_urn(s: &str) -> Result<String> {
    let s = s.trim();
    if is_urn(s) && !s.contains('%') {
        return Ok(s.to_string());
    }
    Err(Error::invalid(
        "collection",
        format!("'{s}' is not a URN; pass a collection URN such as urn:ivcap:collection:… from list_collections"),
    ))
}

/// The URNs of `argument` (`add` or `remove`), checked and without repeats, in order.
pub fn member_urns(argument: &str, urns: &[String]) -> Result<Vec<String>> {
    if urns.len() > MAX_CHANGES {
        return Err(Error::invalid(
            argument,
            format!("has {} URNs, more than {MAX_CHANGES}; split the change over several calls", urns.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(urns.len());
    for (i, urn) in urns.iter().enumerate() {
        let urn = urn.trim();
        if !is_urn(urn) || urn.chars().any(char::is_control) {
            return Err(Error::invalid(
                argument,
                format!("item {i} '{urn}' is not a URN; pass entity URNs such as urn:ivcap:artifact:…"),
            ));
        }
        if !out.iter().any(|u| u == urn) {
            out.push(urn.to_string());
        }
    }
    Ok(out)
}

/// `text` as a SQL/JSON path string literal.
fn path_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The content path that finds the membership of `item` (as the SDK's add and remove do).
pub fn item_path(item: &str) -> String {
    format!("$.item ? (@ == {})", path_string(item))
}

/// The content path for a `name` pattern: `%` matches any run of characters, the rest is
/// literal, case-insensitive (the regex is anchored, so no `%` means the whole name).
pub fn name_path(pattern: &str) -> Result<String> {
    if pattern.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("name", "contains control characters; pass the name text, with % as a wildcard"));
    }
    let mut regex = String::from("^");
    for c in pattern.chars() {
        match c {
            '%' => regex.push_str(".*"),
            c if "\\.^$|?*+()[]{}".contains(c) => {
                regex.push('\\');
                regex.push(c);
            }
            c => regex.push(c),
        }
    }
    regex.push('$');
    Ok(format!("$.name ? (@ like_regex {} flag \"is\")", path_string(&regex)))
}

/// The live aspects of `collection` under `schema` (first page), optionally matching `path`.
fn query(collection: &str, schema: &str, path: Option<String>, include_content: bool) -> AspectQuery {
    AspectQuery {
        entity: Some(collection.to_string()),
        schema: Some(schema.to_string()),
        content_path: path,
        include_content,
        ..AspectQuery::default()
    }
}

/// The error for a collection with no live definition.
fn no_collection(id: &str) -> Error {
    Error::not_found(Missing::Collection, id)
}

/// Collections: create-or-replace, read, list, change members, retract.
#[async_trait::async_trait]
pub trait CollectionsBackend: AspectsBackend + Sync {
    /// Writes the definition: adds it, or replaces the live one (create-or-replace, as the SDK).
    async fn create_collection(&self, new: &NewCollection) -> Result<Created> {
        let done = self.update_aspect(&new.aspect()).await?;
        let collection =
            Collection { id: new.id.clone(), name: new.name.clone(), description: new.description.clone() };
        Ok(Created { collection, replaced: done.replaced.is_some() })
    }

    /// The live definition of `id`; a collection without one does not exist.
    async fn collection(&self, id: &str) -> Result<Collection> {
        let id = collection_urn(id)?;
        let found = self.list_aspects(&query(&id, COLLECTION_SCHEMA, None, true), &PageRequest::first(2)).await?;
        found.items.into_iter().next().map(Collection::from_definition).ok_or_else(|| no_collection(&id))
    }

    /// The definition and one page of member URNs (oldest membership first, so pages are stable as members join).
    async fn get_collection(&self, id: &str, page: &PageRequest) -> Result<CollectionPage> {
        let collection = self.collection(id).await?;
        let mut q = query(&collection.id, COLLECTION_ITEM_SCHEMA, None, true);
        q.order = super::aspects::Order::Asc;
        let members = self.list_aspects(&q, page).await?;
        let members =
            members.map(|a| a.content.as_ref().and_then(|c| c.get("item")).and_then(Value::as_str).map(str::to_string));
        let note = members.note;
        let next_page = members.next_page;
        let items = members.items.into_iter().flatten().collect();
        Ok(CollectionPage { collection, members: Page { items, next_page, note } })
    }

    /// Live definitions, newest first, optionally those whose name matches the `%` pattern `name`.
    async fn list_collections(&self, name: Option<&str>, page: &PageRequest) -> Result<Page<Collection>> {
        let content_path = name.map(name_path).transpose()?;
        let q = AspectQuery {
            schema: Some(COLLECTION_SCHEMA.into()),
            content_path,
            include_content: true,
            ..AspectQuery::default()
        };
        Ok(self.list_aspects(&q, page).await?.map(Collection::from_definition))
    }

    /// Adds `item` to `collection` unless it is a member already; true when added.
    async fn add_member(&self, collection: &str, item: &str) -> Result<bool> {
        let q = query(collection, COLLECTION_ITEM_SCHEMA, Some(item_path(item)), false);
        if !self.list_aspects(&q, &PageRequest::first(1)).await?.items.is_empty() {
            return Ok(false);
        }
        self.add_aspect(&membership(collection, item)).await?;
        Ok(true)
    }

    /// Retracts every live membership of `item` in `collection`; true when there was one.
    async fn remove_member(&self, collection: &str, item: &str) -> Result<bool> {
        let q = query(collection, COLLECTION_ITEM_SCHEMA, Some(item_path(item)), false);
        let live = self.list_aspects(&q, &PageRequest::first(*super::LIMIT_RANGE.end())).await?.items;
        for a in &live {
            self.retract_listed(&a.id).await?;
        }
        Ok(!live.is_empty())
    }

    /// Adds and removes members of an existing collection; idempotent.
    async fn update_collection(&self, id: &str, add: &[String], remove: &[String]) -> Result<Changes> {
        let collection = self.collection(id).await?.id;
        let mut changes = Changes::default();
        for item in add {
            let list = if self.add_member(&collection, item).await? {
                &mut changes.added
            } else {
                &mut changes.already_members
            };
            list.push(item.clone());
        }
        for item in remove {
            let list = if self.remove_member(&collection, item).await? {
                &mut changes.removed
            } else {
                &mut changes.not_members
            };
            list.push(item.clone());
        }
        Ok(changes)
    }

    /// What `retract_collection(id)` would end, without changing anything: the live
    /// definition (if any) and how many live memberships there are (asked before the call,
    /// docs/guide.md "Confirmations").
    async fn retract_preview(&self, id: &str) -> Result<(Option<Collection>, usize)> {
        let id = collection_urn(id)?;
        let definition = match self.collection(&id).await {
            Ok(c) => Some(c),
            Err(Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let q = query(&id, COLLECTION_ITEM_SCHEMA, None, false);
        let mut page = PageRequest::first(*super::LIMIT_RANGE.end());
        let mut memberships = 0;
        loop {
            let found = self.list_aspects(&q, &page).await?;
            memberships += found.items.len();
            match found.next_page {
                Some(next) => page = PageRequest::new(Some(page.limit), Some(next))?,
                None => return Ok((definition, memberships)),
            }
        }
    }

    /// Which of `items` are live members of `collection` (what a removal would end).
    async fn live_members(&self, collection: &str, items: &[String]) -> Result<Vec<String>> {
        let mut live = Vec::new();
        for item in items {
            let q = query(collection, COLLECTION_ITEM_SCHEMA, Some(item_path(item)), false);
            if !self.list_aspects(&q, &PageRequest::first(1)).await?.items.is_empty() {
                live.push(item.clone());
            }
        }
        Ok(live)
    }

    /// Retracts every membership of `id`, then its definition. Memberships without a
    /// definition (e.g. from an upload into a collection never defined) are retracted too;
    /// with neither, the collection does not exist.
    async fn retract_collection(&self, id: &str) -> Result<Retracted> {
        let id = collection_urn(id)?;
        let memberships = self.retract_all(&query(&id, COLLECTION_ITEM_SCHEMA, None, false)).await?;
        let definition = self.retract_all(&query(&id, COLLECTION_SCHEMA, None, false)).await? > 0;
        if memberships == 0 && !definition {
            return Err(no_collection(&id));
        }
        Ok(Retracted { memberships, definition })
    }

    /// Retracts every live aspect `q` finds: the first page again and again until it is
    /// empty (each pass retracts what it found, so the next finds the rest). An aspect
    /// found twice was not retracted, and stops the loop with an error.
    async fn retract_all(&self, q: &AspectQuery) -> Result<usize> {
        let mut done: std::collections::HashSet<String> = Default::default();
        loop {
            let page = self.list_aspects(q, &PageRequest::first(*super::LIMIT_RANGE.end())).await?;
            if page.items.is_empty() {
                return Ok(done.len());
            }
            for a in page.items {
                if !done.insert(a.id.clone()) {
                    return Err(Error::UnexpectedAnswer(format!(
                        "{} is still listed as live after it was retracted; {} were retracted so far, call retract_collection again",
                        a.id,
                        done.len() - 1
                    )));
                }
                self.retract_listed(&a.id).await?;
            }
        }
    }

    /// Retracts a live aspect a list just returned.
    async fn retract_listed(&self, id: &str) -> Result<()> {
        self.retract_aspect(id).await.map(drop)
    }
}

/// The membership aspect of `item` in `collection`, as the SDK writes it.
pub fn membership(collection: &str, item: &str) -> NewAspect {
    NewAspect {
        entity: collection.to_string(),
        schema: COLLECTION_ITEM_SCHEMA.into(),
        content: json!({"collection": collection, "item": item}),
        policy: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_collections_are_checked_and_get_a_urn() {
        let c = NewCollection::new(None, " Trip ", Some(""), None).unwrap();
        assert!(c.id.starts_with(COLLECTION_PREFIX) && uuid::Uuid::parse_str(&c.id[COLLECTION_PREFIX.len()..]).is_ok());
        assert_eq!((c.name.as_str(), c.description.as_deref()), ("Trip", None));
        assert_eq!(c.aspect().content, json!({"name": "Trip"}));
        let e = NewCollection::new(None, " ", None, None).unwrap_err().to_string();
        assert!(e.contains("'name'"), "{e}");
        let e = NewCollection::new(Some("trip"), "T", None, None).unwrap_err().to_string();
        assert!(e.contains("'collection'") && e.contains("not a URN"), "{e}");
        let e = NewCollection::new(Some("urn:x:c:1"), "T", None, Some("open")).unwrap_err().to_string();
        assert!(e.contains("'policy'"), "{e}");
        let c = NewCollection::new(Some("urn:x:c:1"), "T", Some("d"), None).unwrap();
        assert_eq!(c.aspect().content, json!({"name": "T", "description": "d"}));
    }

    #[test]
    fn member_urns_are_checked_and_deduplicated() {
        let urns = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(member_urns("add", &urns(&["urn:a:1", " urn:a:1", "urn:a:2"])).unwrap(), ["urn:a:1", "urn:a:2"]);
        let e = member_urns("remove", &urns(&["urn:a:1", "file.txt"])).unwrap_err().to_string();
        assert!(e.contains("'remove'") && e.contains("item 1 'file.txt'"), "{e}");
        let many: Vec<String> = (0..=MAX_CHANGES).map(|i| format!("urn:a:{i}")).collect();
        assert!(member_urns("add", &many).unwrap_err().to_string().contains("split"));
    }

    #[test]
    fn content_paths_quote_and_escape() {
        assert_eq!(item_path("urn:a:\"x\\"), r#"$.item ? (@ == "urn:a:\"x\\")"#);
        assert_eq!(name_path("CTD%").unwrap(), r#"$.name ? (@ like_regex "^CTD.*$" flag "is")"#);
        assert_eq!(name_path("a.b").unwrap(), r#"$.name ? (@ like_regex "^a\\.b$" flag "is")"#);
        assert!(name_path("a\u{1}").is_err());
    }
}
