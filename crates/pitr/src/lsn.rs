//! WAL positions (`0/3000028`) and the names of WAL files
//! (`000000010000000000000003`, `00000002.history`).

use std::fmt;

/// A WAL position (log sequence number).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl Lsn {
    /// Parses PostgreSQL's `X/Y` form (both hexadecimal).
    pub fn parse(text: &str) -> Option<Lsn> {
        let (high, low) = text.trim().split_once('/')?;
        let high = u32::from_str_radix(high, 16).ok()?;
        let low = u32::from_str_radix(low, 16).ok()?;
        Some(Lsn((u64::from(high) << 32) | u64::from(low)))
    }

    /// The name of the WAL segment holding this position on `timeline`,
    /// with segments of `segment_size` bytes.
    pub fn segment_name(self, timeline: u32, segment_size: u64) -> String {
        let segment = self.0 / segment_size;
        let per_id = 0x1_0000_0000 / segment_size;
        format!(
            "{timeline:08X}{:08X}{:08X}",
            segment / per_id,
            segment % per_id
        )
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// Whether `name` is a WAL file the archive keeps: a complete segment
/// (24 hexadecimal digits) or a timeline history file (`XXXXXXXX.history`).
pub fn is_archived_name(name: &str) -> bool {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
    };
    match name.strip_suffix(".history") {
        Some(timeline) => timeline.len() == 8 && hex(timeline),
        None => name.len() == 24 && hex(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_segment_names() {
        let lsn = Lsn::parse("0/3000028").unwrap();
        assert_eq!(lsn.0, 0x300_0028);
        assert_eq!(lsn.to_string(), "0/3000028");
        assert_eq!(lsn.segment_name(1, 16 << 20), "000000010000000000000003");
        let high = Lsn::parse("1A/FF000000").unwrap();
        assert_eq!(high.segment_name(2, 16 << 20), "000000020000001A000000FF");
        assert_eq!(high.segment_name(2, 64 << 20), "000000020000001A0000003F");
        assert!(Lsn::parse("12").is_none());
        assert!(Lsn::parse("0/xyz").is_none());
        assert!(Lsn::parse("0/1") < Lsn::parse("1/0"));
    }

    #[test]
    fn only_complete_segments_and_history_files_are_archived() {
        assert!(is_archived_name("000000010000000000000003"));
        assert!(is_archived_name("00000002.history"));
        assert!(!is_archived_name("000000010000000000000003.partial"));
        assert!(!is_archived_name("000000010000000000000003.tmp"));
        assert!(!is_archived_name("00000001000000000000000a"));
        assert!(!is_archived_name("archive_status"));
    }
}
