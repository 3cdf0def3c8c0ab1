//! Collections in local mode: the same aspects the Python SDK writes (`LocalIVCAP` reads them
//! as it reads any aspect). What differs from the shared operations: a membership is looked
//! up and added, or looked up and retracted, under the aspect directory's lock, so two
//! concurrent changes (two tool calls, or two server processes) never leave one item in a
//! collection twice.

use super::LocalBackend;
use crate::backend::collections::{COLLECTION_ITEM_SCHEMA, CollectionsBackend, item_path, membership};
use crate::error::Result;
use crate::files::blocking;

#[async_trait::async_trait]
impl CollectionsBackend for LocalBackend {
    async fn add_member(&self, collection: &str, item: &str) -> Result<bool> {
        let (store, new, path) = (self.aspects.clone(), membership(collection, item), item_path(item));
        blocking(move || store.add_unless_matching(&new, &path)).await
    }

    async fn remove_member(&self, collection: &str, item: &str) -> Result<bool> {
        let (store, collection, path) = (self.aspects.clone(), collection.to_string(), item_path(item));
        blocking(move || Ok(store.retract_matching(&collection, COLLECTION_ITEM_SCHEMA, &path)? > 0)).await
    }
}
