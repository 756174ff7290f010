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

/// A WAL segment: its timeline and its number (the position it starts at
/// divided by the segment size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    /// The timeline.
    pub timeline: u32,
    /// The segment's number.
    pub number: u64,
}

impl Segment {
    /// Reads a segment name (`000000010000000000000003`); `None` for other names.
    pub fn parse(name: &str, segment_size: u64) -> Option<Segment> {
        if name.len() != 24 || !is_archived_name(name) {
            return None;
        }
        let field = |range: std::ops::Range<usize>| u64::from_str_radix(&name[range], 16).ok();
        let per_id = 0x1_0000_0000 / segment_size;
        Some(Segment {
            timeline: u32::try_from(field(0..8)?).ok()?,
            number: field(8..16)? * per_id + field(16..24)?,
        })
    }

    /// Its file name.
    pub fn name(self, segment_size: u64) -> String {
        Lsn(self.number * segment_size).segment_name(self.timeline, segment_size)
    }
}

/// The segments from `first` on that `names` lacks, up to the newest it
/// holds: a restore replays no further than the first of them. A number
/// held on any timeline counts (a timeline switch starts the new timeline
/// inside the old one's last segment); a missing one is named on the
/// newest timeline seen before it.
pub fn missing_segments(names: &[String], first: &str, segment_size: u64) -> Vec<String> {
    let Some(first) = Segment::parse(first, segment_size) else {
        return Vec::new();
    };
    let held: Vec<Segment> = names
        .iter()
        .filter_map(|n| Segment::parse(n, segment_size))
        .filter(|s| s.number >= first.number && s.timeline >= first.timeline)
        .collect();
    let Some(newest) = held.iter().map(|s| s.number).max() else {
        return vec![first.name(segment_size)];
    };
    let mut missing = Vec::new();
    let mut timeline = first.timeline;
    for number in first.number..=newest {
        let here: Vec<&Segment> = held.iter().filter(|s| s.number == number).collect();
        match here.iter().map(|s| s.timeline).max() {
            Some(t) => timeline = timeline.max(t),
            None => missing.push(Segment { timeline, number }.name(segment_size)),
        }
    }
    missing
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
    fn gaps_in_the_archive_are_named() {
        let size = 16 << 20;
        let names: Vec<String> = [
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000005",
            "00000002.history",
            "000000020000000000000005",
            "000000020000000000000007",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            missing_segments(&names, "000000010000000000000002", size),
            vec!["000000010000000000000004", "000000020000000000000006"]
        );
        assert!(missing_segments(&names[..2], "000000010000000000000002", size).is_empty());
        assert_eq!(
            missing_segments(&[], "000000010000000000000002", size),
            vec!["000000010000000000000002"]
        );
        let wrap = Segment::parse("0000000100000001000000FF", size).unwrap();
        assert_eq!(
            Segment {
                number: wrap.number + 1,
                ..wrap
            }
            .name(size),
            "000000010000000200000000"
        );
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
