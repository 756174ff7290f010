//! Cron parsing, errors naming the field, and next times across month ends
//! and daylight saving time changes.

use pgharbor_schedule::jiff::Timestamp;
use pgharbor_schedule::{Schedule, ScheduleErrorKind};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// The next `n` times after `after`, as UTC strings.
fn next_n(s: &Schedule, after: &str, n: usize) -> Vec<String> {
    let mut t = ts(after);
    (0..n)
        .map(|_| {
            t = s.next_after(t).unwrap();
            t.to_string()
        })
        .collect()
}

fn utc(expr: &str) -> Schedule {
    Schedule::parse(expr, Some("UTC")).unwrap()
}

#[test]
fn standard_syntax() {
    assert_eq!(
        next_n(&utc("0 2 * * *"), "2025-03-01T02:00:00Z", 2),
        ["2025-03-02T02:00:00Z", "2025-03-03T02:00:00Z"]
    );
    assert_eq!(
        next_n(&utc("*/20 9-10 * * MON-FRI"), "2025-03-07T10:30:00Z", 3),
        // Friday 10:40, then Monday.
        [
            "2025-03-07T10:40:00Z",
            "2025-03-10T09:00:00Z",
            "2025-03-10T09:20:00Z"
        ]
    );
    assert_eq!(
        next_n(&utc("15 4 1,15 jan,jul *"), "2025-01-01T05:00:00Z", 3),
        [
            "2025-01-15T04:15:00Z",
            "2025-07-01T04:15:00Z",
            "2025-07-15T04:15:00Z"
        ]
    );
    // Both day fields restricted: either matches (Vixie cron).
    assert_eq!(
        next_n(&utc("0 0 13 * FRI"), "2025-06-01T00:00:00Z", 3),
        [
            "2025-06-06T00:00:00Z",
            "2025-06-13T00:00:00Z",
            "2025-06-20T00:00:00Z"
        ]
    );
    // 7 is Sunday as well as 0.
    assert_eq!(
        next_n(&utc("0 12 * * 7"), "2025-06-01T13:00:00Z", 1),
        ["2025-06-08T12:00:00Z"]
    );
}

#[test]
fn nicknames() {
    let after = "2025-05-14T10:30:00Z";
    for (nick, next) in [
        ("@hourly", "2025-05-14T11:00:00Z"),
        ("@daily", "2025-05-15T00:00:00Z"),
        ("@midnight", "2025-05-15T00:00:00Z"),
        ("@weekly", "2025-05-18T00:00:00Z"),
        ("@monthly", "2025-06-01T00:00:00Z"),
        ("@yearly", "2026-01-01T00:00:00Z"),
        ("@ANNUALLY", "2026-01-01T00:00:00Z"),
    ] {
        assert_eq!(next_n(&utc(nick), after, 1), [next], "{nick}");
    }
    assert_eq!(utc("@daily").to_string(), "@daily (UTC)");
}

#[test]
fn month_ends_and_leap_days() {
    // The 31st skips months without one.
    assert_eq!(
        next_n(&utc("0 3 31 * *"), "2025-01-31T04:00:00Z", 3),
        [
            "2025-03-31T03:00:00Z",
            "2025-05-31T03:00:00Z",
            "2025-07-31T03:00:00Z"
        ]
    );
    // 29 February only in leap years.
    assert_eq!(
        next_n(&utc("0 0 29 2 *"), "2025-01-01T00:00:00Z", 2),
        ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
    );
    // Across the year end.
    assert_eq!(
        next_n(&utc("30 23 * * *"), "2025-12-31T23:30:00Z", 1),
        ["2026-01-01T23:30:00Z"]
    );
}

#[test]
fn berlin_spring_forward_runs_a_fixed_time_once() {
    // 2025-03-30: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
    let s = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
    assert_eq!(
        next_n(&s, "2025-03-28T12:00:00Z", 4),
        [
            "2025-03-29T01:30:00Z", // 02:30 CET
            "2025-03-30T01:00:00Z", // 03:00 CEST, the first time after the gap
            "2025-03-31T00:30:00Z", // 02:30 CEST
            "2025-04-01T00:30:00Z",
        ]
    );
}

#[test]
fn berlin_fall_back_runs_a_fixed_time_once() {
    // 2025-10-26: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    let s = Schedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
    assert_eq!(
        next_n(&s, "2025-10-25T12:00:00Z", 2),
        ["2025-10-26T00:30:00Z", "2025-10-27T01:30:00Z"] // the first 02:30 (CEST) only
    );
    // A start between the two 02:30s does not run the second one.
    assert_eq!(
        next_n(&s, "2025-10-26T00:45:00Z", 1),
        ["2025-10-27T01:30:00Z"]
    );
}

#[test]
fn berlin_interval_jobs_follow_the_real_clock() {
    // Every 30 minutes: no slots in the skipped hour, both passes of the
    // repeated one.
    let s = Schedule::parse("*/30 * * * *", Some("Europe/Berlin")).unwrap();
    assert_eq!(
        next_n(&s, "2025-03-30T00:15:00Z", 3),
        [
            "2025-03-30T00:30:00Z",
            "2025-03-30T01:00:00Z",
            "2025-03-30T01:30:00Z"
        ]
    );
    assert_eq!(
        next_n(&s, "2025-10-26T00:15:00Z", 4),
        [
            "2025-10-26T00:30:00Z", // 02:30 CEST
            "2025-10-26T01:00:00Z", // 02:00 CET
            "2025-10-26T01:30:00Z", // 02:30 CET
            "2025-10-26T02:00:00Z",
        ]
    );
}

#[test]
fn new_york_spring_forward_and_fall_back() {
    let s = Schedule::parse("30 2 * * *", Some("America/New_York")).unwrap();
    // 2025-03-09: 02:00 EST becomes 03:00 EDT.
    assert_eq!(
        next_n(&s, "2025-03-08T00:00:00Z", 3),
        [
            "2025-03-08T07:30:00Z", // 02:30 EST
            "2025-03-09T07:00:00Z", // 03:00 EDT
            "2025-03-10T06:30:00Z", // 02:30 EDT
        ]
    );
    // 2025-11-02: 02:00 EDT becomes 01:00 EST; 01:30 happens twice.
    let s = Schedule::parse("30 1 * * *", Some("America/New_York")).unwrap();
    assert_eq!(
        next_n(&s, "2025-11-01T12:00:00Z", 2),
        ["2025-11-02T05:30:00Z", "2025-11-03T06:30:00Z"]
    );
}

#[test]
fn time_zones() {
    let s = Schedule::parse("0 2 * * *", Some("Europe/Berlin")).unwrap();
    assert_eq!(s.time_zone_name(), "Europe/Berlin");
    assert_eq!(s.to_string(), "0 2 * * * (Europe/Berlin)");
    let e = Schedule::parse("0 2 * * *", Some("Mars/Olympus")).unwrap_err();
    assert_eq!(e.kind(), ScheduleErrorKind::InvalidTimeZone);
    assert!(e.to_string().contains("Mars/Olympus"), "{e}");
}

#[test]
fn errors_name_the_field() {
    for (expr, field) in [
        ("61 2 * * *", "minute field `61`"),
        ("0 24 * * *", "hour field `24`"),
        ("0 2 32 * *", "day-of-month field `32`"),
        ("0 2 * 13 *", "month field `13`"),
        ("0 2 * * 8", "day-of-week field `8`"),
        ("0 2 * FOO *", "month field `FOO`"),
        ("0 2 * * MON-FOO", "day-of-week field `MON-FOO`"),
        ("0 MON * * *", "hour field `MON`"),
        ("0 2 L * *", "day-of-month field `L`"),
        ("*/0 2 * * *", "minute field `*/0`"),
        ("0 2 5-1x * *", "day-of-month field `5-1X`"),
    ] {
        let e = Schedule::parse(expr, Some("UTC")).unwrap_err();
        assert_eq!(e.kind(), ScheduleErrorKind::InvalidSchedule, "{expr}");
        let msg = e.to_string();
        assert!(msg.contains(field), "{expr}: {msg}");
        assert!(msg.starts_with(&format!("cron schedule `{expr}`")), "{msg}");
    }
    let e = Schedule::parse("0 2 * *", Some("UTC")).unwrap_err();
    assert!(
        e.to_string()
            .contains("expected 5 fields (minute hour day-of-month month day-of-week), found 4"),
        "{e}"
    );
    let e = Schedule::parse("0 0 2 * * *", Some("UTC")).unwrap_err();
    assert!(e.to_string().contains("found 6"), "{e}");
    let e = Schedule::parse("@fortnightly", Some("UTC")).unwrap_err();
    assert!(e.to_string().contains("unknown nickname"), "{e}");
    let e = Schedule::parse("0 0 30 2 *", Some("UTC")).unwrap_err();
    assert!(e.to_string().contains("names no date"), "{e}");
}

#[test]
fn seconds_for_tests() {
    let s = Schedule::parse_with_seconds("*/5 * * * * *", Some("UTC")).unwrap();
    assert!(s.has_seconds());
    assert_eq!(
        next_n(&s, "2025-01-01T00:00:03.5Z", 2),
        ["2025-01-01T00:00:05Z", "2025-01-01T00:00:10Z"]
    );
    let e = Schedule::parse_with_seconds("60 * * * * *", Some("UTC")).unwrap_err();
    assert!(e.to_string().contains("second field `60`"), "{e}");
}
