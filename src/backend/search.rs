//! Search: Datalog queries, in Google's Mangle language, over the Datafabric as it was at
//! a point in time. The platform evaluates them itself (`POST /1/search`); the local
//! backend evaluates them in process over facts drawn from the local store.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Page, PageRequest};
use crate::error::Result;

/// Datalog search.
#[async_trait::async_trait]
pub trait SearchBackend {
    /// Runs the Mangle program `query` against the Datafabric valid at `at_time` (default
    /// now). Items are the answers: objects of bound variables (platform answers may be any
    /// JSON). Later pages need the same `query`.
    async fn search(&self, query: &str, at_time: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<Value>>;
}
