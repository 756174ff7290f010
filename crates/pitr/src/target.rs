//! [`RecoveryTarget`]: where a point-in-time restore stops, and the
//! `recovery_target_*` settings that say so to PostgreSQL.

use chrono::{DateTime, FixedOffset, NaiveDateTime, TimeZone as _, Utc};
use pgharbor_backup::{BackupError, BackupErrorKind, Result};

use crate::lsn::Lsn;

/// Where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecoveryTarget {
    /// The state as committed at this moment: every transaction committed
    /// at or before it, none after.
    Time(DateTime<FixedOffset>),
    /// Up to and including this WAL position.
    Lsn(Lsn),
    /// Up to and including this transaction's commit.
    Xid(u64),
    /// Up to this restore point (`pg_create_restore_point('name')`).
    Name(String),
    /// Everything the archive holds.
    Latest,
}

impl RecoveryTarget {
    /// Parses a `--time` value: `2026-12-06 10:42:17+01`, `…T…`, fractions
    /// of seconds and `Z` allowed; a time without its UTC offset is refused
    /// (it would mean different moments on the server and here).
    pub fn parse_time(text: &str) -> Result<RecoveryTarget> {
        let text = text.trim();
        let normalized = text.replacen(' ', "T", 1);
        if let Ok(t) = DateTime::parse_from_rfc3339(&normalized) {
            return Ok(RecoveryTarget::Time(t));
        }
        for format in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z"] {
            if let Ok(t) = DateTime::parse_from_str(&normalized, format) {
                return Ok(RecoveryTarget::Time(t));
            }
        }
        let without_offset = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"]
            .iter()
            .any(|f| NaiveDateTime::parse_from_str(&normalized, f).is_ok());
        let why = if without_offset {
            "it has no UTC offset: add one, e.g. +01 or Z, so it names one moment"
        } else {
            "write it as 2026-12-06 10:42:17+01 (a date, a time and a UTC offset)"
        };
        Err(invalid(format!(
            "--time '{text}' is not a time pgharbor reads: {why}"
        )))
    }

    /// Parses a `--lsn` value (`0/3000028`).
    pub fn parse_lsn(text: &str) -> Result<RecoveryTarget> {
        Lsn::parse(text).map(RecoveryTarget::Lsn).ok_or_else(|| {
            invalid(format!(
                "--lsn '{text}' is not a WAL position: write it as PostgreSQL prints one, e.g. \
                 0/3000028 (pg_current_wal_lsn())"
            ))
        })
    }

    /// The moment a time target names, in UTC.
    pub fn time(&self) -> Option<DateTime<Utc>> {
        match self {
            RecoveryTarget::Time(t) => Some(t.with_timezone(&Utc)),
            _ => None,
        }
    }

    /// The `recovery_target_*` setting, `None` for [`RecoveryTarget::Latest`].
    pub fn setting(&self) -> Option<(&'static str, String)> {
        match self {
            RecoveryTarget::Time(t) => Some((
                "recovery_target_time",
                Utc.from_utc_datetime(&t.naive_utc())
                    .format("%Y-%m-%d %H:%M:%S%.6f+00")
                    .to_string(),
            )),
            RecoveryTarget::Lsn(lsn) => Some(("recovery_target_lsn", lsn.to_string())),
            RecoveryTarget::Xid(xid) => Some(("recovery_target_xid", xid.to_string())),
            RecoveryTarget::Name(name) => Some(("recovery_target_name", name.clone())),
            RecoveryTarget::Latest => None,
        }
    }

    /// For messages: `time 2026-12-06 09:42:17+00`, `the end of the archive`, …
    pub fn describe(&self) -> String {
        match (self, self.setting()) {
            (RecoveryTarget::Latest, _) | (_, None) => "the end of the archive".to_owned(),
            (RecoveryTarget::Time(_), Some((_, v))) => format!("time {v}"),
            (RecoveryTarget::Lsn(_), Some((_, v))) => format!("WAL position {v}"),
            (RecoveryTarget::Xid(_), Some((_, v))) => format!("transaction {v}"),
            (RecoveryTarget::Name(_), Some((_, v))) => format!("restore point '{v}'"),
        }
    }
}

fn invalid(message: String) -> BackupError {
    BackupError::new(BackupErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_an_offset_are_read_and_written_in_utc() {
        let t = RecoveryTarget::parse_time("2026-12-06 10:42:17+01").unwrap();
        assert_eq!(
            t.setting().unwrap(),
            (
                "recovery_target_time",
                "2026-12-06 09:42:17.000000+00".to_owned()
            )
        );
        let t = RecoveryTarget::parse_time("2026-12-06T09:42:17.250Z").unwrap();
        assert_eq!(t.setting().unwrap().1, "2026-12-06 09:42:17.250000+00");
        let t = RecoveryTarget::parse_time("2026-12-06 10:42:17.5+01:00").unwrap();
        assert_eq!(t.setting().unwrap().1, "2026-12-06 09:42:17.500000+00");
    }

    #[test]
    fn a_time_without_offset_or_malformed_is_refused_saying_why() {
        let e = RecoveryTarget::parse_time("2026-12-06 10:42:17").unwrap_err();
        assert!(e.message().contains("has no UTC offset"), "{e}");
        let e = RecoveryTarget::parse_time("yesterday").unwrap_err();
        assert!(e.message().contains("--time 'yesterday'"), "{e}");
        let e = RecoveryTarget::parse_lsn("3000028").unwrap_err();
        assert!(e.message().contains("not a WAL position"), "{e}");
    }
}
