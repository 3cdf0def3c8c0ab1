//! Search: Datalog queries, in Google's Mangle language, over the Datafabric as it was at
//! a point in time. The platform evaluates them itself (`POST /1/search`); the local
//! backend evaluates them in process over facts drawn from the local store.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Page, PageRequest};
use crate::error::{Error, Result};

/// Largest query text accepted, in bytes. The longest real programs (rules plus a few
/// `:load_aspect` tables) are a few KiB; 64 KiB leaves ample room, while a megabyte of
/// "query" is data pasted by mistake, and parsing and evaluating it would hold memory and a
/// core for nothing.
pub const MAX_QUERY_BYTES: usize = 64 << 10;

/// Refuses a query over [`MAX_QUERY_BYTES`], before any work is done on it.
pub fn check_query_size(query: &str) -> Result<()> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(Error::invalid(
            "query",
            format!(
                "is {} bytes, over the limit of {MAX_QUERY_BYTES} bytes (64 KiB); a query is a Datalog program, \
                 not data: put large data in aspects or artifacts and query those",
                query.len()
            ),
        ));
    }
    Ok(())
}

/// Datalog search.
#[async_trait::async_trait]
pub trait SearchBackend {
    /// Runs the Mangle program `query` against the Datafabric valid at `at_time` (default
    /// now). Items are the answers: objects of bound variables (platform answers may be any
    /// JSON). Later pages need the same `query`.
    async fn search(&self, query: &str, at_time: Option<DateTime<Utc>>, page: &PageRequest) -> Result<Page<Value>>;
}
