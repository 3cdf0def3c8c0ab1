//! The shared internal client. Tools talk only to [`Backend`]; the platform backend speaks
//! the IVCAP REST API and the local backend keeps a filesystem store. Each domain has its
//! own trait and types in a module here (`services`, `secrets`, …), implemented once per
//! backend in `platform/<domain>.rs` and `local/<domain>.rs`. No MCP types appear below
//! this module.

/// A status read from wire text, as an enum: the values this version knows, and `Other`
/// for any other text, kept as it came so it can still be shown. `parse` and `as_str` map
/// between the two. (Declared before the modules so each domain can use it.)
macro_rules! wire_status {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A status this version does not know.
            Other(String),
        }

        impl $name {
            /// Parses wire text; unknown text is kept as `Other`.
            pub fn parse(s: &str) -> Self {
                match s {
                    $($text => $name::$variant,)*
                    other => $name::Other(other.to_string()),
                }
            }

            /// The wire text.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }
    };
}

pub mod artifacts;
pub mod aspects;
pub mod collections;
pub mod jobs;
pub mod local;
pub mod paging;
pub mod platform;
pub mod progress;
pub mod search;
pub mod secrets;
pub mod services;

pub use artifacts::{Artifact, ArtifactStatus, ArtifactsBackend};
pub use aspects::{Aspect, AspectQuery, AspectsBackend, NewAspect};
pub use collections::CollectionsBackend;
pub use jobs::{Job, JobStatus, JobSummary, JobsBackend};
pub use paging::{DEFAULT_LIMIT, LIMIT_RANGE, Page, PageRequest};
pub use search::SearchBackend;
pub use secrets::{SecretInfo, SecretsBackend};
pub use services::{ServiceDetail, ServiceParameter, ServiceStatus, ServiceSummary, ServicesBackend, ToolService};

/// Everything a tool can ask of IVCAP, whichever IVCAP it is.
pub trait Backend:
    ServicesBackend
    + JobsBackend
    + ArtifactsBackend
    + AspectsBackend
    + CollectionsBackend
    + SearchBackend
    + SecretsBackend
    + Send
    + Sync
{
}

impl<
    T: ServicesBackend
        + JobsBackend
        + ArtifactsBackend
        + AspectsBackend
        + CollectionsBackend
        + SearchBackend
        + SecretsBackend
        + Send
        + Sync,
> Backend for T
{
}

/// Is `s` a URN (`urn:<nid>:<nss>`)?
pub fn is_urn(s: &str) -> bool {
    let mut parts = s.splitn(3, ':');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(u), Some(nid), Some(nss)) if u.eq_ignore_ascii_case("urn") && !nid.is_empty() && !nss.is_empty()
    ) && !s.chars().any(char::is_whitespace)
}

/// SQL `LIKE` matching with `%` as the only wildcard (IVCAP's filters and schema prefixes);
/// ASCII case-insensitive when `ignore_case`.
pub fn like_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Greedy match with back-tracking to the last `%`: linear in practice.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '%' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_patterns() {
        assert!(like_match("urn:x:%", "urn:x:schema.1", false));
        assert!(like_match("%alpha%", "The Alpha service", true));
        assert!(!like_match("%alpha%", "The Alpha service", false));
        assert!(like_match("a%c%e", "abcde", false));
        assert!(!like_match("a%c", "abd", false));
        assert!(like_match("exact", "exact", false));
        assert!(!like_match("exact", "exactly", false));
    }

    use super::*;

    #[test]
    fn urns() {
        assert!(is_urn("urn:ivcap:service:123"));
        assert!(!is_urn("urn:ivcap"));
        assert!(!is_urn("hello"));
        assert!(!is_urn("urn:a:b c"));
    }
}
