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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::AspectsBackend;
    use crate::backend::aspects::AspectQuery;

    #[tokio::test]
    async fn concurrent_adds_of_one_item_make_one_membership() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(LocalBackend::new(dir.path()).unwrap());
        let adds = (0..8).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.add_member("urn:ex:c:1", "urn:ex:a:1").await.unwrap() })
        });
        let added: Vec<bool> = futures::future::join_all(adds).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(added.iter().filter(|a| **a).count(), 1, "{added:?}");
        let q = AspectQuery {
            entity: Some("urn:ex:c:1".into()),
            schema: Some(COLLECTION_ITEM_SCHEMA.into()),
            ..AspectQuery::default()
        };
        let live = store.list_aspects(&q, &crate::backend::PageRequest::first(50)).await.unwrap();
        assert_eq!(live.items.len(), 1);
        assert!(store.remove_member("urn:ex:c:1", "urn:ex:a:1").await.unwrap());
        assert!(!store.remove_member("urn:ex:c:1", "urn:ex:a:1").await.unwrap());
    }
}
