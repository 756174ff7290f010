//! Backup ids: the UTC start time `YYYYMMDDTHHMMSSZ`, with `-N` appended
//! when a backup of that second already exists.

use chrono::{DateTime, NaiveDateTime, Utc};

const ID_FORMAT: &str = "%Y%m%dT%H%M%SZ";

/// The id for a backup started at `time`, with `suffix` (0 = none).
pub(crate) fn format_id(time: DateTime<Utc>, suffix: u32) -> String {
    let base = time.format(ID_FORMAT).to_string();
    if suffix == 0 {
        base
    } else {
        format!("{base}-{suffix}")
    }
}

/// The time an id stands for, `None` when `id` is not a backup id (so
/// other folders at the destination are never taken for backups).
pub fn parse_id(id: &str) -> Option<DateTime<Utc>> {
    let (base, suffix) = match id.split_once('-') {
        Some((b, s)) => (b, Some(s)),
        None => (id, None),
    };
    if suffix.is_some_and(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    NaiveDateTime::parse_from_str(base, ID_FORMAT)
        .ok()
        .filter(|_| base.len() == 16)
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(format_id(t, 0), "20260102T030405Z");
        assert_eq!(format_id(t, 2), "20260102T030405Z-2");
        assert_eq!(parse_id("20260102T030405Z"), Some(t));
        assert_eq!(parse_id("20260102T030405Z-2"), Some(t));
        assert_eq!(parse_id("20260102T030405Z-x"), None);
        assert_eq!(parse_id("notes"), None);
        assert_eq!(parse_id("20260102T030405"), None);
    }
}
