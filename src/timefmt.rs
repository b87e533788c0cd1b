//! Parsing of the timestamps and durations users type, and rendering times back in the
//! form the input used.

use chrono::{DateTime, NaiveDateTime, Utc};

/// How the timestamps of an input were written, so output can use the same form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeForm {
    /// `YYYY-MM-DD HH:MM:SS` with `frac` digits of fractional seconds (0 = none).
    Plain { frac: u8 },
    /// RFC 3339 (always rendered in UTC with a `Z`).
    Rfc3339,
}

/// Parses one timestamp to Unix seconds (fractions are kept to the microsecond but
/// rounded down to whole seconds for the time grid) and reports its form.
pub fn parse_timestamp(s: &str) -> Option<(i64, TimeForm)> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some((dt.timestamp(), TimeForm::Rfc3339));
    }
    for (fmt, has_frac) in [("%Y-%m-%d %H:%M:%S%.f", true), ("%Y-%m-%d %H:%M:%S", false)] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            let frac = if has_frac {
                s.rsplit_once('.')
                    .map(|(_, f)| f.len().min(9) as u8)
                    .unwrap_or(0)
            } else {
                0
            };
            return Some((dt.and_utc().timestamp(), TimeForm::Plain { frac }));
        }
    }
    // A few exports write `YYYY-MM-DDTHH:MM:SS` without an offset: take it as UTC.
    if let Ok(dt) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some((dt.and_utc().timestamp(), TimeForm::Plain { frac: 0 }));
    }
    None
}

/// Renders Unix seconds in the given form.
pub fn format_timestamp(ts: i64, form: TimeForm) -> String {
    let Some(dt) = DateTime::<Utc>::from_timestamp(ts, 0) else {
        return ts.to_string();
    };
    match form {
        TimeForm::Rfc3339 => dt.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        TimeForm::Plain { frac: 0 } => dt.format("%Y-%m-%d %H:%M:%S").to_string(),
        TimeForm::Plain { frac } => {
            format!(
                "{}.{}",
                dt.format("%Y-%m-%d %H:%M:%S"),
                "0".repeat(frac as usize)
            )
        }
    }
}

/// Parses a duration such as `1h`, `90m`, `7d`, `2w` into seconds. Zero is allowed.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("`{s}` is not a duration like 90m, 1h, 7d ({e})"))
        .and_then(|d| i64::try_from(d.as_secs()).map_err(|_| format!("`{s}` is too long")))
}

/// Parses an RFC 3339 time or a plain `YYYY-MM-DD HH:MM:SS` (UTC) into Unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    parse_timestamp(s)
        .map(|(t, _)| t)
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time such as 2026-01-31T20:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_rfc3339_and_round_trips() {
        let (t, f) = parse_timestamp("2015-01-18 23:00:00").unwrap();
        assert_eq!(f, TimeForm::Plain { frac: 0 });
        assert_eq!(format_timestamp(t, f), "2015-01-18 23:00:00");
        let (t2, f2) = parse_timestamp("2015-01-18T23:00:00Z").unwrap();
        assert_eq!(t, t2);
        assert_eq!(format_timestamp(t2, f2), "2015-01-18T23:00:00Z");
        let (t3, f3) = parse_timestamp("2015-01-18 23:00:00.000000").unwrap();
        assert_eq!(t3, t);
        assert_eq!(format_timestamp(t3, f3), "2015-01-18 23:00:00.000000");
        let (t4, _) = parse_timestamp("2015-01-19T00:00:00+01:00").unwrap();
        assert_eq!(t4, t);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("").is_none());
        assert!(parse_duration("7 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86400);
        assert_eq!(parse_duration("90m").unwrap(), 5400);
    }
}
