//! Local mode keeps no secrets: the list is empty and says why.

use super::LocalBackend;
use crate::backend::{Page, PageRequest, SecretInfo, SecretsBackend};
use crate::error::Result;

#[async_trait::async_trait]
impl SecretsBackend for LocalBackend {
    async fn list_secrets(&self, _filter: Option<&str>, page: &PageRequest) -> Result<Page<SecretInfo>> {
        page.inner_token()?;
        Ok(Page {
            items: Vec::new(),
            next_page: None,
            note: Some(
                "local mode has no secrets; secrets exist only on an IVCAP platform (set IVCAP_URL and IVCAP_JWT)"
                    .into(),
            ),
        })
    }
}
