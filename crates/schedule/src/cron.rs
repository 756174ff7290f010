//! [`Schedule`]: a standard cron expression in a time zone, and the next
//! time it names.
//!
//! Parsing and the search are croner's; this module adds the standard
//! subset's rules (five fields, names only where they belong, no Quartz
//! extensions), errors that name the bad field, and the time zone.
//!
//! # Daylight saving time
//!
//! Times are searched on the zone's wall clock and returned as instants,
//! by the rules of Vixie cron (croner's OCPS rules):
//!
//! * **A skipped hour** (spring forward, e.g. 02:00 → 03:00): a job at a
//!   fixed time inside the gap (`30 2 * * *`) runs **once**, at the first
//!   wall clock time after the gap on that day (03:00). Jobs with `*` or a
//!   step in the minute or hour field just have no slots in the gap.
//! * **A repeated hour** (fall back, e.g. 03:00 → 02:00): a job at a fixed
//!   time inside it runs **once**, at the first of the two instants (the
//!   summer-time one). Jobs with `*` or a step in the minute or hour field
//!   run at every matching instant of both passes.

use std::fmt;

use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use crate::error::{Result, ScheduleError, ScheduleErrorKind};

/// One field of a cron expression: its name and which extras it allows.
struct Field {
    name: &'static str,
    /// Names allowed in place of numbers (`JAN`, `MON`).
    names: &'static [&'static str],
    /// Whether `?` (any) is allowed, as in day-of-month and day-of-week.
    question: bool,
}

const MONTHS: &[&str] = &[
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const fn field(name: &'static str, names: &'static [&'static str], question: bool) -> Field {
    Field {
        name,
        names,
        question,
    }
}

const SECOND: Field = field("second", &[], false);
const FIVE_FIELDS: [Field; 5] = [
    field("minute", &[], false),
    field("hour", &[], false),
    field("day-of-month", &[], true),
    field("month", MONTHS, false),
    field("day-of-week", WEEKDAYS, true),
];

/// A cron schedule in a time zone.
///
/// ```
/// use pgharbor_schedule::{jiff::Timestamp, Schedule};
///
/// let s = Schedule::parse("0 2 * * *", Some("Europe/Berlin")).unwrap();
/// let after: Timestamp = "2025-01-10T12:00:00Z".parse().unwrap();
/// assert_eq!(s.next_after(after).unwrap().to_string(), "2025-01-11T01:00:00Z");
/// assert_eq!(s.to_string(), "0 2 * * * (Europe/Berlin)");
/// ```
#[derive(Clone, Debug)]
pub struct Schedule {
    expression: String,
    cron: Cron,
    zone: TimeZone,
    zone_name: String,
    seconds: bool,
}

impl Schedule {
    /// Parses a standard five-field cron expression (minute, hour,
    /// day-of-month, month, day-of-week) or one of `@yearly`/`@annually`,
    /// `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`.
    ///
    /// Fields take numbers, `*`, ranges (`1-5`), lists (`1,15`), steps
    /// (`*/15`, `0-30/10`), `JAN`–`DEC` in the month field and `SUN`–`SAT`
    /// in the day-of-week field (`0` and `7` are both Sunday), and `?` for
    /// either day field. When both day fields are restricted a day matching
    /// either runs (Vixie cron).
    ///
    /// `zone` is an IANA name such as `Europe/Berlin`; without one the `TZ`
    /// environment variable is used when set, and UTC otherwise.
    pub fn parse(expression: &str, zone: Option<&str>) -> Result<Schedule> {
        Schedule::build(expression, zone, false)
    }

    /// Like [`parse`](Schedule::parse) with a leading `second` field (six
    /// fields): sub-minute schedules for tests and demonstrations. Nothing
    /// else reads this form (Kubernetes' CronJob has no seconds).
    pub fn parse_with_seconds(expression: &str, zone: Option<&str>) -> Result<Schedule> {
        Schedule::build(expression, zone, true)
    }

    fn build(expression: &str, zone: Option<&str>, seconds: bool) -> Result<Schedule> {
        let expression = expression.split_whitespace().collect::<Vec<_>>().join(" ");
        let context = format!("cron schedule `{expression}`");
        let expanded = expand(&expression, seconds).map_err(|e| e.context(&context))?;
        let cron = parser(seconds)
            .parse(&expanded.join(" "))
            .map_err(|e| invalid_schedule(e.to_string()).context(&context))?;
        let (zone, zone_name) = resolve_zone(zone)?;
        let schedule = Schedule {
            expression,
            cron,
            zone,
            zone_name,
            seconds,
        };
        if schedule.next_after(Timestamp::UNIX_EPOCH).is_none() {
            return Err(invalid_schedule("it names no date that exists").context(context));
        }
        Ok(schedule)
    }

    /// The first time strictly after `after` that the schedule names, or
    /// `None` when there is none (past the year 4999). See the module
    /// documentation for the daylight saving time rules.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let start = after.to_zoned(self.zone.clone());
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|z| z.timestamp())
    }

    /// The expression as written (whitespace normalised).
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The time zone the expression is read in.
    pub fn time_zone(&self) -> &TimeZone {
        &self.zone
    }

    /// The time zone's IANA name (`UTC` by default).
    pub fn time_zone_name(&self) -> &str {
        &self.zone_name
    }

    /// Whether the expression has a leading seconds field
    /// ([`parse_with_seconds`](Schedule::parse_with_seconds)).
    pub fn has_seconds(&self) -> bool {
        self.seconds
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.expression, self.zone_name)
    }
}

fn parser(seconds: bool) -> CronParser {
    let seconds = if seconds {
        Seconds::Required
    } else {
        Seconds::Disallowed
    };
    CronParser::builder()
        .seconds(seconds)
        .year(Year::Disallowed)
        .build()
}

fn invalid_schedule(message: impl Into<String>) -> ScheduleError {
    ScheduleError::new(ScheduleErrorKind::InvalidSchedule, message)
}

/// The fields of `expression` (nicknames expanded), each checked alone so
/// that an error names the field it is in.
fn expand(expression: &str, seconds: bool) -> Result<Vec<String>> {
    let fields: Vec<&Field> = seconds
        .then_some(&SECOND)
        .into_iter()
        .chain(&FIVE_FIELDS)
        .collect();
    let parts: Vec<String> = match nickname(expression)? {
        Some(five) => seconds
            .then_some("0")
            .into_iter()
            .chain(five.split(' '))
            .map(str::to_owned)
            .collect(),
        None => expression.split(' ').map(str::to_uppercase).collect(),
    };
    if parts.len() != fields.len() {
        let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
        return Err(invalid_schedule(format!(
            "expected {} fields ({}), found {}",
            fields.len(),
            names.join(" "),
            parts.len()
        )));
    }
    for (i, f) in fields.iter().enumerate() {
        check_field(f, &parts[i])
            .map_err(|e| e.context(format!("the {} field `{}`", f.name, parts[i])))?;
        let mut probe = vec!["*"; fields.len()];
        probe[i] = &parts[i];
        if let Err(e) = parser(seconds).parse(&probe.join(" ")) {
            return Err(invalid_schedule(format!(
                "the {} field `{}` is invalid: {e}",
                f.name, parts[i]
            )));
        }
    }
    Ok(parts)
}

/// The five fields a `@nickname` stands for; `None` for other expressions.
fn nickname(expression: &str) -> Result<Option<&'static str>> {
    if !expression.starts_with('@') {
        return Ok(None);
    }
    let five = match expression.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        _ => {
            return Err(invalid_schedule(
                "unknown nickname (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
            ))
        }
    };
    Ok(Some(five))
}

/// Characters and names `field` may hold (croner checks the numbers).
fn check_field(field: &Field, text: &str) -> Result<()> {
    if let Some(bad) = text.chars().find(|c| {
        !(c.is_ascii_digit()
            || matches!(c, '*' | ',' | '-' | '/')
            || (*c == '?' && field.question)
            || (c.is_ascii_alphabetic() && !field.names.is_empty()))
    }) {
        return Err(invalid_schedule(format!("`{bad}` is not allowed here")));
    }
    for name in text.split(|c: char| !c.is_ascii_alphabetic()) {
        if !name.is_empty() && !field.names.contains(&name) {
            return Err(invalid_schedule(format!(
                "unknown name `{name}` (expected one of {})",
                field.names.join(", ")
            )));
        }
    }
    Ok(())
}

/// The zone named `zone`, else the `TZ` environment variable's, else UTC;
/// with its IANA name.
fn resolve_zone(zone: Option<&str>) -> Result<(TimeZone, String)> {
    match zone {
        Some(name) => named_zone(name),
        None => match std::env::var("TZ") {
            Ok(tz) if !tz.trim().is_empty() => named_zone(tz.trim().trim_start_matches(':'))
                .map_err(|e| e.context("the TZ environment variable")),
            _ => Ok((TimeZone::UTC, "UTC".to_owned())),
        },
    }
}

fn named_zone(name: &str) -> Result<(TimeZone, String)> {
    let zone = TimeZone::get(name).map_err(|_| {
        ScheduleError::new(
            ScheduleErrorKind::InvalidTimeZone,
            format!("unknown time zone `{name}` (expected an IANA name such as Europe/Berlin)"),
        )
    })?;
    let canonical = zone.iana_name().unwrap_or(name).to_owned();
    Ok((zone, canonical))
}
