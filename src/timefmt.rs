//! Parsing of the timestamps and durations users type, and rendering times back in the
//! form the input used.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// How the timestamps of an input were written, so output can use the same form (a forecast
/// of a daily series written `2026-01-31` comes back as `2026-02-01`, not as a UTC instant).
/// Times without an offset are taken as UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeForm {
    /// `YYYY-MM-DD HH:MM:SS` (`T` instead of the space when `t`) with `frac` digits of
    /// fractional seconds (0 = none).
    Plain { t: bool, frac: u8 },
    /// `YYYY-MM-DD HH:MM`.
    Minutes { t: bool },
    /// `YYYY-MM-DD`: midnight.
    Date,
    /// RFC 3339 (`2026-01-31T20:00:00Z`, `2026-01-31 21:00:00+01:00`), rendered at the
    /// input's offset and with its separator; `zulu` writes a zero offset as `Z`.
    Rfc3339 {
        t: bool,
        offset_secs: i32,
        zulu: bool,
    },
    /// Unix time as an integer, `per_sec` units a second (1, 10³, 10⁶ or 10⁹).
    Epoch { per_sec: i64 },
}

/// Parses one timestamp to Unix seconds (fractions are dropped: the time grid is in whole
/// seconds) and reports its form.
pub fn parse_timestamp(s: &str) -> Option<(i64, TimeForm)> {
    let s = s.trim();
    if let Some(parsed) = parse_epoch(s) {
        return Some(parsed);
    }
    if s.len() == 10 {
        let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
        return Some((
            day.and_hms_opt(0, 0, 0)?.and_utc().timestamp(),
            TimeForm::Date,
        ));
    }
    let t = matches!(s.as_bytes().get(10), Some(b'T' | b't'));
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        let form = TimeForm::Rfc3339 {
            t,
            offset_secs: dt.offset().local_minus_utc(),
            zulu: s.ends_with(['Z', 'z']),
        };
        return Some((dt.timestamp(), form));
    }
    let (date_time, frac) = match s.rsplit_once('.') {
        Some((head, digits))
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            (head, digits.len().min(9) as u8)
        }
        _ => (s, 0),
    };
    let sep = if t { "T" } else { " " };
    if let Ok(dt) = NaiveDateTime::parse_from_str(date_time, &format!("%Y-%m-%d{sep}%H:%M:%S")) {
        return Some((dt.and_utc().timestamp(), TimeForm::Plain { t, frac }));
    }
    if frac == 0 {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, &format!("%Y-%m-%d{sep}%H:%M")) {
            return Some((dt.and_utc().timestamp(), TimeForm::Minutes { t }));
        }
    }
    None
}

/// Unix seconds, milliseconds, microseconds or nanoseconds, told apart by their number of
/// digits (times between 1973 and 2286).
fn parse_epoch(s: &str) -> Option<(i64, TimeForm)> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let per_sec = match s.len() {
        9 | 10 => 1,
        12 | 13 => 1_000,
        15 | 16 => 1_000_000,
        18 | 19 => 1_000_000_000,
        _ => return None,
    };
    let v: i64 = s.parse().ok()?;
    Some((v.div_euclid(per_sec), TimeForm::Epoch { per_sec }))
}

/// Renders Unix seconds in the given form.
pub fn format_timestamp(ts: i64, form: TimeForm) -> String {
    if let TimeForm::Epoch { per_sec } = form {
        return ts.saturating_mul(per_sec).to_string();
    }
    let Some(dt) = DateTime::<Utc>::from_timestamp(ts, 0) else {
        return ts.to_string();
    };
    let sep = |t: bool| if t { 'T' } else { ' ' };
    let seconds = |t: bool| format!("%Y-%m-%d{}%H:%M:%S", sep(t));
    match form {
        TimeForm::Date if ts.rem_euclid(86_400) == 0 => dt.format("%Y-%m-%d").to_string(),
        TimeForm::Minutes { t } if ts.rem_euclid(60) == 0 => {
            dt.format(&format!("%Y-%m-%d{}%H:%M", sep(t))).to_string()
        }
        TimeForm::Rfc3339 {
            t,
            offset_secs,
            zulu,
        } => {
            let local = FixedOffset::east_opt(offset_secs)
                .map(|o| dt.with_timezone(&o))
                .unwrap_or_else(|| dt.fixed_offset());
            let offset = if zulu && offset_secs == 0 {
                "Z".to_string()
            } else {
                local.format("%:z").to_string()
            };
            format!("{}{offset}", local.format(&seconds(t)))
        }
        TimeForm::Plain { t, frac } => {
            let whole = dt.format(&seconds(t)).to_string();
            if frac == 0 {
                whole
            } else {
                format!("{whole}.{}", "0".repeat(frac as usize))
            }
        }
        // A step off the input's grain (a daily series' forecast at 06:00): say it in full.
        _ => dt.format(&seconds(false)).to_string(),
    }
}

/// The mean Gregorian month in seconds: the step of a series on a [`MonthGrid`].
pub const MONTH_SECS: i64 = 2_629_746;

/// A series dated in calendar months (monthly, quarterly, yearly data): the same day of each
/// month (or each month's last day) at the same time. Months differ in length, so such a
/// series is not evenly spaced in seconds; it is put on an even grid of `MONTH_SECS` per
/// month for the models and mapped back to calendar dates for output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthGrid {
    /// Day of the month, or None for the month's last day.
    day: Option<u32>,
    time: NaiveTime,
}

impl MonthGrid {
    /// The grid `ts` (Unix seconds) lie on, if they are dated in calendar months: at least
    /// three, on one day of the month (or all on month ends) at one time of day, with steps
    /// of at least a month.
    pub fn detect(ts: &[i64]) -> Option<Self> {
        let dates: Vec<NaiveDateTime> = ts
            .iter()
            .map(|&t| DateTime::<Utc>::from_timestamp(t, 0).map(|d| d.naive_utc()))
            .collect::<Option<_>>()?;
        let first = *dates.first()?;
        if dates.len() < 3 || dates.iter().any(|d| d.time() != first.time()) {
            return None;
        }
        let last_day = |d: &NaiveDateTime| {
            d.date()
                .checked_add_months(chrono::Months::new(1))
                .and_then(|n| n.with_day(1))
                .and_then(|n| n.pred_opt())
                .is_some_and(|end| end == d.date())
        };
        let day = if dates.iter().all(|d| d.day() == first.day()) {
            Some(first.day())
        } else if dates.iter().all(last_day) {
            None
        } else {
            return None;
        };
        let mut months: Vec<i64> = dates.iter().map(month_index).collect();
        months.sort_unstable();
        months.dedup();
        if months.len() < 3 {
            return None;
        }
        Some(Self {
            day,
            time: first.time(),
        })
    }

    /// `ts` on the even grid: its month's index times [`MONTH_SECS`].
    pub fn to_grid(&self, ts: i64) -> i64 {
        DateTime::<Utc>::from_timestamp(ts, 0)
            .map_or(ts, |d| month_index(&d.naive_utc()) * MONTH_SECS)
    }

    /// The calendar date (Unix seconds) of grid time `t`: the nearest month's day and time.
    pub fn from_grid(&self, t: i64) -> i64 {
        let index = (t as f64 / MONTH_SECS as f64).round() as i64;
        let (year, month0) = (index.div_euclid(12), index.rem_euclid(12) as u32);
        let Ok(year) = i32::try_from(year + 1970) else {
            return t;
        };
        let Some(first) = NaiveDate::from_ymd_opt(year, month0 + 1, 1) else {
            return t;
        };
        let date = match self.day {
            Some(d) => first.with_day(d),
            None => first
                .checked_add_months(chrono::Months::new(1))
                .and_then(|n| n.pred_opt()),
        };
        date.map_or(t, |d| d.and_time(self.time).and_utc().timestamp())
    }
}

/// Months since January 1970.
fn month_index(d: &NaiveDateTime) -> i64 {
    (i64::from(d.year()) - 1970) * 12 + i64::from(d.month0())
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

/// An IANA time zone whose wall clock a series' seasonality follows (`--timezone`). People
/// keep local time: stamped in UTC, as InfluxDB stores it, an audience's daily cycle moves by
/// an hour twice a year, and a forecast made across a change of clocks puts its peaks an hour
/// off (`benches/unseen_series.py --dst`). Modelled on local clock readings instead, the
/// cycle stays put: the hour the clocks skip is a gap, the hour they repeat one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalClock(chrono_tz::Tz);

impl std::str::FromStr for LocalClock {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse::<chrono_tz::Tz>().map(Self).map_err(|_| {
            format!("`{s}` is not an IANA time zone (such as Europe/London or America/New_York)")
        })
    }
}

impl LocalClock {
    /// Whether this is UTC (or a fixed alias of it), whose clock is the time axis itself.
    pub fn is_utc(&self) -> bool {
        matches!(
            self.0.name(),
            "UTC"
                | "Etc/UTC"
                | "UCT"
                | "Etc/UCT"
                | "Universal"
                | "Etc/Universal"
                | "Zulu"
                | "Etc/Zulu"
                | "GMT"
                | "Etc/GMT"
                | "Etc/GMT0"
                | "Etc/GMT+0"
                | "Etc/GMT-0"
                | "GMT0"
                | "GMT+0"
                | "GMT-0"
                | "Greenwich"
                | "Etc/Greenwich"
        )
    }

    /// The local clock reading at the instant `utc`, on the same seconds axis.
    pub fn to_local(&self, utc: i64) -> i64 {
        use chrono::{Offset as _, TimeZone as _};
        chrono::DateTime::from_timestamp(utc, 0).map_or(utc, |d| {
            let offset = self.0.offset_from_utc_datetime(&d.naive_utc()).fix();
            utc + i64::from(offset.local_minus_utc())
        })
    }

    /// The instant of the local clock reading `local`: the earlier of two (the hour the
    /// clocks go back is read twice), None for one the clocks skip.
    pub fn to_utc(&self, local: i64) -> Option<i64> {
        use chrono::TimeZone as _;
        let naive = chrono::DateTime::from_timestamp(local, 0)?.naive_utc();
        self.0
            .from_local_datetime(&naive)
            .earliest()
            .map(|d| d.timestamp())
    }
}

/// A time step for people: `1h`, `30m`, `1d`, and `1 month`, `3 months` for the calendar
/// grid of [`MONTH_SECS`].
pub fn format_step(secs: i64) -> String {
    if secs >= MONTH_SECS && secs % MONTH_SECS == 0 {
        let n = secs / MONTH_SECS;
        return if n == 1 {
            "1 month".into()
        } else {
            format!("{n} months")
        };
    }
    format_duration(secs)
}

/// A duration as the config writes it, in days at most: `35d`, `1d 12h`, `1h 30m`, `45s`
/// (`0s` for zero or less). humantime's own form counts months of 30.44 days, so the
/// default `api.max_horizon` of 35d read `1month 4days 13h 26m 24s`.
pub fn format_duration(secs: i64) -> String {
    if secs <= 0 {
        return "0s".into();
    }
    let parts: Vec<String> = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")]
        .iter()
        .scan(secs, |left, &(unit, suffix)| {
            let n = *left / unit;
            *left %= unit;
            Some((n > 0).then(|| format!("{n}{suffix}")))
        })
        .flatten()
        .collect();
    parts.join(" ")
}

/// Parses an RFC 3339 time, a plain `YYYY-MM-DD[ HH:MM[:SS]]` (UTC) or Unix time into Unix
/// seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    parse_timestamp(s)
        .map(|(t, _)| t)
        .ok_or_else(|| format!("`{s}` is not an RFC 3339 time such as 2026-01-31T20:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_read_as_people_write_them() {
        assert_eq!(format_step(3600), "1h");
        assert_eq!(format_step(1800), "30m");
        assert_eq!(format_step(86_400), "1d");
        assert_eq!(format_step(MONTH_SECS), "1 month");
        // Europe/London: GMT in winter, BST (+1h) from 01:00 UTC on 31 March 2024.
        let london: LocalClock = "Europe/London".parse().unwrap();
        let (winter, summer) = (1_704_067_200, 1_717_200_000); // 2024-01-01, 2024-06-01
        assert_eq!(london.to_local(winter), winter);
        assert_eq!(london.to_local(summer), summer + 3600);
        assert_eq!(london.to_utc(summer + 3600), Some(summer));
        // 01:30 local on 31 March does not exist; 01:30 on 27 October is read twice.
        assert_eq!(london.to_utc(1_711_848_600), None);
        assert_eq!(london.to_utc(1_729_992_600), Some(1_729_992_600 - 3600));
        assert!("Mars/Olympus_Mons"
            .parse::<LocalClock>()
            .unwrap_err()
            .contains("IANA"));
        assert_eq!(format_step(3 * MONTH_SECS), "3 months");
        // Days at most, as the config writes durations, and read back by parse_duration:
        // 35 days once read `1month 4days 13h 26m 24s`.
        for (secs, text) in [
            (35 * 86_400, "35d"),
            (86_400 + 12 * 3600, "1d 12h"),
            (5400, "1h 30m"),
            (45, "45s"),
            (0, "0s"),
        ] {
            assert_eq!(format_duration(secs), text);
            assert_eq!(parse_duration(text), Ok(secs));
        }
        assert_eq!(format_duration(-5), "0s");
    }

    #[test]
    fn parses_plain_and_rfc3339_and_round_trips() {
        let (t, f) = parse_timestamp("2015-01-18 23:00:00").unwrap();
        assert_eq!(f, TimeForm::Plain { t: false, frac: 0 });
        assert_eq!(format_timestamp(t, f), "2015-01-18 23:00:00");
        let (t2, f2) = parse_timestamp("2015-01-18T23:00:00Z").unwrap();
        assert_eq!(t, t2);
        assert_eq!(format_timestamp(t2, f2), "2015-01-18T23:00:00Z");
        let (t3, f3) = parse_timestamp("2015-01-18 23:00:00.000000").unwrap();
        assert_eq!(t3, t);
        assert_eq!(format_timestamp(t3, f3), "2015-01-18 23:00:00.000000");
        let (t4, f4) = parse_timestamp("2015-01-19T00:00:00+01:00").unwrap();
        assert_eq!(t4, t);
        assert_eq!(format_timestamp(t4 + 3600, f4), "2015-01-19T01:00:00+01:00");
    }

    #[test]
    fn every_common_form_comes_back_as_written() {
        // Each form: a timestamp as a user's export writes it, and the next hour (or day) as
        // the output must write it so that the two line up.
        for (input, next, step) in [
            ("2015-01-18", "2015-01-19", 86_400),
            ("2015-01-18 23:00", "2015-01-19 00:00", 3600),
            ("2015-01-18T23:00", "2015-01-19T00:00", 3600),
            ("2015-01-18T23:00:00", "2015-01-19T00:00:00", 3600),
            ("2015-01-18T23:00:00.000", "2015-01-19T00:00:00.000", 3600),
            (
                "2015-01-18 23:00:00+00:00",
                "2015-01-19 00:00:00+00:00",
                3600,
            ),
            (
                "2015-01-18 23:00:00-05:00",
                "2015-01-19 00:00:00-05:00",
                3600,
            ),
            ("2015-01-18T23:00:00z", "2015-01-19T00:00:00Z", 3600),
            ("1421622000", "1421625600", 3600),
            ("1421622000000", "1421625600000", 3600),
            ("1421622000000000000", "1421625600000000000", 3600),
        ] {
            let (t, f) = parse_timestamp(input).unwrap_or_else(|| panic!("{input} not parsed"));
            assert_eq!(format_timestamp(t + step, f), next, "{input} ({f:?})");
        }
        // The same instant, however written.
        let utc = parse_timestamp("2015-01-19 04:00:00").unwrap().0;
        assert_eq!(parse_timestamp("2015-01-18 23:00:00-05:00").unwrap().0, utc);
        assert_eq!(parse_timestamp("1421640000").unwrap().0, utc);
        // Off a daily series' grain, a time is written in full rather than cut to the day.
        let (d, f) = parse_timestamp("2015-01-18").unwrap();
        assert_eq!(format_timestamp(d + 6 * 3600, f), "2015-01-18 06:00:00");
    }

    #[test]
    fn calendar_months_map_to_an_even_grid_and_back() {
        let t = |s: &str| parse_timestamp(s).unwrap().0;
        let monthly: Vec<i64> = ["2020-11-01", "2020-12-01", "2021-01-01", "2021-02-01"]
            .map(t)
            .to_vec();
        let g = MonthGrid::detect(&monthly).expect("monthly");
        let grid: Vec<i64> = monthly.iter().map(|&x| g.to_grid(x)).collect();
        assert!(
            grid.windows(2).all(|w| w[1] - w[0] == MONTH_SECS),
            "{grid:?}"
        );
        assert_eq!(g.from_grid(grid[3] + MONTH_SECS), t("2021-03-01"));
        assert_eq!(g.from_grid(grid[0]), monthly[0]);
        // Month ends, quarterly.
        let ends: Vec<i64> = ["2019-12-31", "2020-03-31", "2020-06-30", "2020-09-30"]
            .map(t)
            .to_vec();
        let g = MonthGrid::detect(&ends).expect("quarter ends");
        let next = g.from_grid(g.to_grid(ends[3]) + 3 * MONTH_SECS);
        assert_eq!(next, t("2020-12-31"));
        assert_eq!(
            g.from_grid(g.to_grid(ends[0]) + 2 * MONTH_SECS),
            t("2020-02-29")
        );
        // Daily and hourly data are not monthly; nor are three days of one month.
        let daily: Vec<i64> = (0..40).map(|i| t("2020-01-01") + i * 86_400).collect();
        assert!(MonthGrid::detect(&daily).is_none());
        let hourly: Vec<i64> = (0..40).map(|i| t("2020-01-01") + i * 3600).collect();
        assert!(MonthGrid::detect(&hourly).is_none());
        assert!(MonthGrid::detect(&[t("2020-01-01"), t("2020-01-01")]).is_none());
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_timestamp("yesterday").is_none());
        assert!(parse_timestamp("").is_none());
        assert!(parse_timestamp("2015-13-01").is_none());
        assert!(parse_timestamp("2015-01-18 25:00").is_none());
        assert!(
            parse_timestamp("12345").is_none(),
            "too few digits for a Unix time"
        );
        assert!(parse_timestamp("2015-01-18 23:00:00.").is_none());
        assert!(parse_duration("7 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_duration("7d").unwrap(), 7 * 86400);
        assert_eq!(parse_duration("90m").unwrap(), 5400);
    }
}
