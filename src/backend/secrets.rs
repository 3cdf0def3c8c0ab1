//! Secrets: names and expiry only. Values are never fetched.

use super::{Page, PageRequest};
use crate::error::Result;

/// A secret's public facts.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretInfo {
    pub name: String,
    /// As the platform gives it (int64, unit unspecified).
    pub expiry_time: Option<i64>,
}

/// Secret listing.
#[async_trait::async_trait]
pub trait SecretsBackend {
    /// Lists secret names matching `filter` (a name pattern such as `openai.*`).
    async fn list_secrets(&self, filter: Option<&str>, page: &PageRequest) -> Result<Page<SecretInfo>>;
}
