//! Secret names on the platform: `GET /1/secrets/list` (docs/ivcap-wire.md §10). The endpoint
//! that returns a secret's value is never called.

use serde::Deserialize;

use super::{PlatformBackend, Target};
use crate::backend::{Page, PageRequest, SecretInfo, SecretsBackend};
use crate::error::{Missing, Result};

/// Item of the secrets list.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct SecretListItemRt {
    secret_name: String,
    #[serde(default)]
    expiry_time: Option<i64>,
}

#[async_trait::async_trait]
impl SecretsBackend for PlatformBackend {
    async fn list_secrets(&self, filter: Option<&str>, page: &PageRequest) -> Result<Page<SecretInfo>> {
        let filters: Vec<(&str, String)> =
            filter.map(str::trim).filter(|f| !f.is_empty()).map(|f| ("filter", f.to_string())).into_iter().collect();
        let page: Page<SecretListItemRt> = self
            .get_list("/1/secrets/list", &filters, page, Target { kind: Missing::Resource, id: "/1/secrets/list" })
            .await?;
        Ok(page.map(|s| SecretInfo { name: s.secret_name, expiry_time: s.expiry_time }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::platform::{ListRt, fixtures};

    #[test]
    fn captured_secret_list_decodes_names_and_expiry_only() {
        let list: ListRt<SecretListItemRt> = fixtures::decode("secrets/list.json");
        let item = list.into_page(None).unwrap().items.remove(0);
        assert_eq!((item.secret_name.as_str(), item.expiry_time), ("openai-key", Some(1_767_225_600)));
    }
}
