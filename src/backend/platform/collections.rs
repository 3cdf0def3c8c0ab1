//! Collections on the platform (docs/ivcap-wire.md §8.1): the aspect calls the
//! Python SDK makes — definition lists with `limit=2`, membership lookups by `content-path`
//! `$.item ? (@ == "<item>")`, `POST`/`PUT /1/aspects`. What differs from the shared
//! operations: a membership or definition a list just returned is retracted with one
//! `DELETE /1/aspects/{id}` (idempotent, so retried), not the get–delete–re-read of
//! `retract_aspect`, so retracting a collection of n members costs about n requests.

use reqwest::Method;

use super::{PlatformBackend, Target, enc};
use crate::backend::collections::CollectionsBackend;
use crate::error::{Missing, Result};

#[async_trait::async_trait]
impl CollectionsBackend for PlatformBackend {
    async fn retract_listed(&self, id: &str) -> Result<()> {
        let path = format!("/1/aspects/{}", enc(id));
        self.send(Target { kind: Missing::Aspect, id }, true, &|| self.request(Method::DELETE, &path)).await?;
        Ok(())
    }
}
