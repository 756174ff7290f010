//! Durations written the way people write them: `90s`, `10m`, `1h30m`, `2d`.

use crate::error::{HealthError, HealthErrorKind};
use std::time::Duration;

/// Parses `500ms`, `30s`, `10m`, `1h`, `2d`, combinations like `1h30m`,
/// and a bare number of seconds (`45`, `0.5`).
pub fn parse(text: &str) -> Result<Duration, HealthError> {
    let bad = || {
        HealthError::new(
            HealthErrorKind::InvalidInput,
            format!("invalid duration \"{text}\"; write e.g. 30s, 10m, 1h, 1h30m, 2d"),
        )
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| bad());
    }
    let mut total = 0.0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| bad())
}

/// Formats a duration compactly: `850ms`, `42s`, `5m 03s`, `2h 10m`, `3d 4h`.
pub fn format(d: Duration) -> String {
    format_secs(d.as_secs_f64())
}

/// Like [`format`], from seconds.
pub fn format_secs(secs: f64) -> String {
    if secs < 1.0 {
        return format!("{}ms", (secs * 1000.0).round() as u64);
    }
    let s = secs.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        3600..=86399 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("45").unwrap(), Duration::from_secs(45));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2d").unwrap(), Duration::from_secs(172800));
        for bad in ["", "m", "10x", "-1", "1h-"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format_secs(0.25), "250ms");
        assert_eq!(format_secs(303.0), "5m 03s");
        assert_eq!(format_secs(7800.0), "2h 10m");
    }
}
