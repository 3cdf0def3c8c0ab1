//! The URN vocabulary: every id prefix this server reads or writes, written once, and the
//! checks on URNs and on names that become part of one.

/// Platform artifacts: `urn:ivcap:artifact:<uuid>`.
pub const ARTIFACT_PREFIX: &str = "urn:ivcap:artifact:";
/// Local artifacts, as the Python SDK's `LocalIVCAP` names them: `urn:file://<absolute path>`.
pub const LOCAL_ARTIFACT_PREFIX: &str = "urn:file://";
/// Datafabric aspects: `urn:ivcap:aspect:<uuid>`.
pub const ASPECT_PREFIX: &str = "urn:ivcap:aspect:";
/// Jobs: `urn:ivcap:job:<uuid>`.
pub const JOB_PREFIX: &str = "urn:ivcap:job:";
/// Services: `urn:ivcap:service:<id>` (locally `<id>` is the service's name).
pub const SERVICE_PREFIX: &str = "urn:ivcap:service:";
/// Collections: `urn:ivcap:collection:<uuid>`.
pub const COLLECTION_PREFIX: &str = "urn:ivcap:collection:";
/// Access policies: `urn:ivcap:policy:<name>`.
pub const POLICY_PREFIX: &str = "urn:ivcap:policy:";
/// Accounts, as a login's `account-id` records them: `urn:ivcap:account:<id>`.
pub const ACCOUNT_PREFIX: &str = "urn:ivcap:account:";
/// Account providers, as a login's `provider-id` records them: `urn:ivcap:provider:<id>`.
pub const PROVIDER_PREFIX: &str = "urn:ivcap:provider:";

/// What kind of IVCAP entity a URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    Artifact,
    Aspect,
    Job,
    Service,
}

impl EntityKind {
    /// The kind of entity `uri` names, by its URN prefix; `None` for anything else.
    pub fn of(uri: &str) -> Option<Self> {
        let has_id = |prefix: &str| uri.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty());
        if has_id(ARTIFACT_PREFIX) || has_id(LOCAL_ARTIFACT_PREFIX) {
            Some(EntityKind::Artifact)
        } else if has_id(ASPECT_PREFIX) {
            Some(EntityKind::Aspect)
        } else if has_id(JOB_PREFIX) {
            Some(EntityKind::Job)
        } else if has_id(SERVICE_PREFIX) {
            Some(EntityKind::Service)
        } else {
            None
        }
    }
}

/// Is `s` a URN (`urn:<nid>:<nss>`)?
pub fn is_urn(s: &str) -> bool {
    let mut parts = s.splitn(3, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(u), Some(nid), Some(nss)) if u.eq_ignore_ascii_case("urn") && !nid.is_empty() && !nss.is_empty()
    ) && !s.chars().any(char::is_whitespace)
}

/// Can `name` stand in a URN and a file name as it is (a local service's name: its file
/// `services/<name>.json` and its URN `urn:ivcap:service:<name>`)?
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urns() {
        assert!(is_urn("urn:ivcap:service:123"));
        assert!(!is_urn("urn:ivcap"));
        assert!(!is_urn("hello"));
        assert!(!is_urn("urn:a:b c"));
    }

    #[test]
    fn uris_are_classified_by_their_urn_prefix() {
        assert_eq!(EntityKind::of("urn:ivcap:artifact:1"), Some(EntityKind::Artifact));
        assert_eq!(EntityKind::of("urn:file:///store/artifacts/a.txt"), Some(EntityKind::Artifact));
        assert_eq!(EntityKind::of("urn:ivcap:aspect:1"), Some(EntityKind::Aspect));
        assert_eq!(EntityKind::of("urn:ivcap:job:1"), Some(EntityKind::Job));
        assert_eq!(EntityKind::of("urn:ivcap:service:echo"), Some(EntityKind::Service));
        for other in ["urn:ivcap:job:", "test://static-text", "urn:ivcap:order:1", ""] {
            assert_eq!(EntityKind::of(other), None, "{other}");
        }
    }

    #[test]
    fn plain_names() {
        assert!(is_plain_name("column-stats_2.1"));
        assert!(!is_plain_name("") && !is_plain_name("a b") && !is_plain_name("../x"));
    }
}
