//! Aspects: typed, time-bounded assertions about an entity in the append-only Datafabric.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// One aspect record. Retracted aspects keep their record, with `valid_to` set.
#[derive(Debug, Clone, PartialEq)]
pub struct Aspect {
    /// `urn:ivcap:aspect:<uuid>`.
    pub id: String,
    /// The URN the aspect is about.
    pub entity: String,
    /// The schema URN of `content`.
    pub schema: String,
    /// The asserted JSON object (absent when a list was asked without content).
    pub content: Option<Value>,
    pub valid_from: DateTime<Utc>,
    /// When it was retracted or replaced; `None` while live.
    pub valid_to: Option<DateTime<Utc>>,
    pub asserter: Option<String>,
    /// The aspect this one replaced (an update).
    pub replaces: Option<String>,
    pub policy: Option<String>,
}

impl Aspect {
    /// Valid at `at`: asserted at or before it and not retracted by then.
    pub fn valid_at(&self, at: DateTime<Utc>) -> bool {
        self.valid_from <= at && self.valid_to.is_none_or(|to| at < to)
    }
}
