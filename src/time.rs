//! Times, written once: the RFC 3339 parser for every `at_time` argument, the lenient reader
//! for times in platform payloads, and the one format every result uses.

use chrono::{DateTime, SecondsFormat, Timelike, Utc};

use crate::error::{Error, Result};

/// Parses argument `arg` as an RFC 3339 instant with an offset (`2026-01-31T12:00:00Z`,
/// `2026-01-31T13:00:00+01:00`); anything else is an argument error saying how to write it.
pub fn parse_rfc3339(arg: &str, s: &str) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).map(|t| t.with_timezone(&Utc)).map_err(|e| {
        Error::invalid(
            arg,
            format!("'{s}' is not an RFC 3339 time with an offset ({e}); write e.g. 2026-01-31T12:00:00Z"),
        )
    })
}

/// An optional time argument: absent or blank is `None`.
pub fn parse_optional(arg: &str, s: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    s.map(str::trim).filter(|t| !t.is_empty()).map(|t| parse_rfc3339(arg, t)).transpose()
}

/// A time in a platform payload: RFC 3339, or nothing when absent or unreadable (a payload
/// with an odd time is still worth showing).
pub fn from_wire(s: Option<&str>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s?.trim()).ok().map(|t| t.with_timezone(&Utc))
}

/// Now, to the microsecond: what the store's files hold, so a time written and read back
/// (and shown, and passed back as an `at_time`) is the same instant.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now)
}

/// The one way results show a time: RFC 3339 in UTC with `Z`, fractions of a second only
/// when there are any (so a time read back from a result is the same instant).
pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_need_an_offset_and_errors_name_the_argument() {
        assert_eq!(format(parse_rfc3339("at_time", "2026-01-31T13:00:00+01:00").unwrap()), "2026-01-31T12:00:00Z");
        let err = parse_rfc3339("at_time", "2026-01-31 12:00").unwrap_err().to_string();
        assert!(err.contains("'at_time'") && err.contains("RFC 3339"), "{err}");
        assert_eq!(parse_optional("at_time", Some("  ")).unwrap(), None);
        assert_eq!(parse_optional("at_time", None).unwrap(), None);
    }

    #[test]
    fn formatted_times_read_back_as_the_same_instant() {
        let t = parse_rfc3339("t", "2026-01-31T12:00:00.123456Z").unwrap();
        assert_eq!(format(t), "2026-01-31T12:00:00.123456Z");
        assert_eq!(parse_rfc3339("t", &format(t)).unwrap(), t);
        assert_eq!(from_wire(Some("garbage")), None);
        assert_eq!(now().nanosecond() % 1_000, 0);
    }
}
