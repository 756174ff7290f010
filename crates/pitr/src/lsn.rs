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

/// The timelines a recovery follows from a base backup to the newest
/// timeline descending from it: each timeline with the WAL position it
/// begins at (its parent's switch point; 0 for the first), oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelinePath {
    steps: Vec<(u32, u64)>,
}

impl TimelinePath {
    /// Only the base backup's own timeline.
    pub fn single(timeline: u32) -> TimelinePath {
        TimelinePath {
            steps: vec![(timeline, 0)],
        }
    }

    /// The path to `timeline`, whose history file says `history`, from
    /// `base` (one of its ancestors); `None` when `timeline` does not
    /// descend from `base`, or the history is not one.
    pub fn from_history(base: u32, timeline: u32, history: &str) -> Option<TimelinePath> {
        let mut steps = Vec::new();
        let mut begins = 0;
        for line in history.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let parent: u32 = fields.next()?.parse().ok()?;
            let switch = Lsn::parse(fields.next()?)?;
            if parent >= base {
                steps.push((parent, begins));
            }
            begins = switch.0;
        }
        steps.push((timeline, begins));
        (steps.first().map(|s| s.0) == Some(base)).then_some(TimelinePath { steps })
    }

    /// The newest timeline of the path.
    pub fn newest(&self) -> u32 {
        self.steps.last().map_or(1, |s| s.0)
    }

    /// The timeline whose file recovery reads for segment `number`: the
    /// newest one begun at or before that segment (a timeline's first
    /// segment holds its parent's WAL up to the switch, then its own).
    fn timeline_of(&self, number: u64, segment_size: u64) -> u32 {
        self.steps
            .iter()
            .rev()
            .find(|(_, begins)| begins / segment_size <= number)
            .map_or(self.steps[0].0, |s| s.0)
    }

    /// Whether `segment` is on the path: its timeline is, and the segment
    /// is not past the switch to the next one.
    fn holds(&self, segment: Segment, segment_size: u64) -> bool {
        let Some(at) = self.steps.iter().position(|s| s.0 == segment.timeline) else {
            return false;
        };
        let begins = self.steps[at].1 / segment_size;
        let ends = self.steps.get(at + 1).map(|next| next.1 / segment_size);
        segment.number >= begins && ends.is_none_or(|end| segment.number <= end)
    }
}

/// The segments from `first` on that `names` lacks along `path`, up to the
/// newest it holds: a restore replays no further than the first of them.
/// Each is named on the timeline recovery reads it from.
pub fn missing_segments(
    names: &[String],
    first: &str,
    segment_size: u64,
    path: &TimelinePath,
) -> Vec<String> {
    let Some(first) = Segment::parse(first, segment_size) else {
        return Vec::new();
    };
    let held: Vec<Segment> = names
        .iter()
        .filter_map(|n| Segment::parse(n, segment_size))
        .filter(|s| s.number >= first.number && path.holds(*s, segment_size))
        .collect();
    let Some(newest) = held.iter().map(|s| s.number).max() else {
        return vec![first.name(segment_size)];
    };
    (first.number..=newest)
        .map(|number| Segment {
            timeline: path.timeline_of(number, segment_size),
            number,
        })
        .filter(|wanted| !held.contains(wanted))
        .map(|missing| missing.name(segment_size))
        .collect()
}

/// The timelines newer than `base` that the archive holds segments or a
/// history file of, newest first.
pub fn newer_timelines(names: &[String], base: u32) -> Vec<u32> {
    let mut timelines: Vec<u32> = names
        .iter()
        .filter_map(|n| u32::from_str_radix(n.get(..8)?, 16).ok())
        .filter(|t| *t > base)
        .collect();
    timelines.sort_unstable_by(|a, b| b.cmp(a));
    timelines.dedup();
    timelines
}

/// The history file's name of `timeline`.
pub fn history_name(timeline: u32) -> String {
    format!("{timeline:08X}.history")
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
    fn gaps_in_the_archive_are_named_on_the_timeline_recovery_reads() {
        let size = 16 << 20;
        let names: Vec<String> = [
            "000000010000000000000002",
            "000000010000000000000003",
            "000000010000000000000005",
            "000000010000000000000006",
            "00000002.history",
            "000000020000000000000005",
            "000000020000000000000007",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Timeline 2 began inside segment 5, at 0/5000100.
        let path = TimelinePath::from_history(1, 2, "1\t0/5000100\tno recovery target specified\n")
            .unwrap();
        assert_eq!(path.newest(), 2);
        // Segment 6 of timeline 1 is past the switch: it does not count.
        assert_eq!(
            missing_segments(&names, "000000010000000000000002", size, &path),
            vec!["000000010000000000000004", "000000020000000000000006"]
        );
        let single = TimelinePath::single(1);
        assert_eq!(
            missing_segments(&names, "000000010000000000000002", size, &single),
            vec!["000000010000000000000004"]
        );
        assert!(
            missing_segments(&names[..2], "000000010000000000000002", size, &single).is_empty()
        );
        assert_eq!(
            missing_segments(&[], "000000010000000000000002", size, &single),
            vec!["000000010000000000000002"]
        );
        assert_eq!(newer_timelines(&names, 1), vec![2]);
        assert_eq!(history_name(10), "0000000A.history");
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
    fn a_timeline_path_is_read_from_its_history_file() {
        let history = "1\t0/3000000\tbefore 2000-01-01\n\n2\t0/5000100\tno recovery target\n";
        let path = TimelinePath::from_history(1, 3, history).unwrap();
        assert_eq!(path.steps, vec![(1, 0), (2, 0x300_0000), (3, 0x500_0100)]);
        let from_two = TimelinePath::from_history(2, 3, history).unwrap();
        assert_eq!(from_two.steps, vec![(2, 0x300_0000), (3, 0x500_0100)]);
        assert!(
            TimelinePath::from_history(4, 5, history).is_none(),
            "not a descendant"
        );
        assert!(TimelinePath::from_history(1, 3, "1\tnonsense\n").is_none());
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
