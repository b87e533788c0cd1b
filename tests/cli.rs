//! The command line from outside: the real binary on small files made here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn viewcast(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_viewcast"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run viewcast")
}

fn write_series(
    dir: &Path,
    name: &str,
    values: impl IntoIterator<Item = Option<f64>>,
    step_h: i64,
) -> PathBuf {
    let mut s = String::from("timestamp,value\n");
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for (i, v) in values.into_iter().enumerate() {
        let t = start + chrono::Duration::hours(i as i64 * step_h);
        let v = v.map(|v| v.to_string()).unwrap_or_else(|| "NaN".into());
        s.push_str(&format!("{},{v}\n", t.format("%Y-%m-%d %H:%M:%S")));
    }
    let p = dir.join(name);
    std::fs::write(&p, s).unwrap();
    p
}

/// `s.csv` in `dir`: `hours` hourly values of [`seasonal`].
fn seasonal_hours(dir: &Path, hours: usize) -> PathBuf {
    write_series(dir, "s.csv", (0..hours).map(|i| Some(seasonal(i))), 1)
}

/// Runs `viewcast detect` on `input`, writing `output`, with `extra` arguments.
fn detect(dir: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "detect",
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    viewcast(&args, dir)
}

/// A daily cycle plus noise in [0, 31): a multiplicative hash, so the noise has no period of
/// its own for a model to learn (a plain `i * k % 31` repeats every 31 hours exactly).
fn seasonal(i: usize) -> f64 {
    let h = (i % 24) as f64;
    let noise = ((i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64
        / (1u64 << 24) as f64
        * 31.0;
    1000.0 + 400.0 * (h / 24.0 * std::f64::consts::TAU).sin() + noise
}

/// Runs `viewcast detect` on `input` with the defaults, writing `out.csv` in `dir`; it must
/// succeed. Returns what it wrote and what it said on stderr.
fn detected(dir: &Path, input: &Path) -> (String, String) {
    let o = dir.join("out.csv");
    let out = detect(dir, input, &o, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    (std::fs::read_to_string(&o).unwrap(), stderr)
}

fn rows(out: &Output) -> Vec<Vec<String>> {
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Runs `viewcast forecast` on `input` for `horizon` steps; it must succeed. Returns the
/// output rows and what it wrote to stderr.
fn forecast_rows(dir: &Path, input: &Path, horizon: usize) -> (Vec<Vec<String>>, String) {
    forecast_rows_with(dir, input, horizon, &[])
}

/// [`forecast_rows`] with `extra` arguments.
fn forecast_rows_with(
    dir: &Path,
    input: &Path,
    horizon: usize,
    extra: &[&str],
) -> (Vec<Vec<String>>, String) {
    let h = horizon.to_string();
    let mut args = vec![
        "forecast",
        "--input",
        input.to_str().unwrap(),
        "--horizon",
        &h,
    ];
    args.extend_from_slice(extra);
    let out = viewcast(&args, dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{}: {stderr}", input.display());
    (rows(&out), stderr)
}

#[test]
fn forecast_continues_the_grid_with_ordered_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let f = seasonal_hours(dir.path(), 24 * 28);
    let out = viewcast(
        &[
            "forecast",
            "--input",
            f.to_str().unwrap(),
            "--horizon",
            "48",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("timestamp,yhat,yhat_lower,yhat_upper\n"));
    let r = rows(&out);
    assert_eq!(r.len(), 48);
    assert_eq!(r[0][0], "2024-01-29 00:00:00");
    assert_eq!(r[47][0], "2024-01-30 23:00:00");
    for row in &r {
        let v: Vec<f64> = row[1..].iter().map(|x| x.parse().unwrap()).collect();
        assert!(v[1] <= v[0] && v[0] <= v[2], "{row:?}");
    }
    // The forecast follows the daily cycle it was given (peak near 06:00, trough near 18:00).
    let at = |h: usize| r[h][1].parse::<f64>().unwrap();
    assert!(at(6) > at(18) + 500.0);
}

/// The summary on stderr says what calibrated the interval, in words and numbers: the factor
/// of each stretch of horizon steps (it once printed Rust's `Some([2.76])`, steps unnamed),
/// and, when the history holds no backtest fold, that the interval is not calibrated.
#[test]
fn the_forecast_summary_names_its_interval_calibration() {
    let dir = tempfile::tempdir().unwrap();
    let (_, long) = forecast_rows(dir.path(), &seasonal_hours(dir.path(), 24 * 28), 48);
    let line = long
        .lines()
        .find(|l| l.starts_with("model: "))
        .unwrap_or_else(|| panic!("no summary line in {long:?}"));
    let (_, factors) = line
        .split_once("95% interval scaled by the backtest, by horizon step: ")
        .unwrap_or_else(|| panic!("{line}"));
    // `1-6 ×1.05, 7-12 ×0.98, …, 19+ ×1.10`: consecutive step ranges, each with its factor.
    let mut next = 1;
    for bucket in factors.trim_end_matches(')').split(", ") {
        let (steps, factor) = bucket.split_once(" ×").unwrap_or_else(|| panic!("{line}"));
        assert!(factor.parse::<f64>().is_ok_and(|f| f > 0.0), "{line}");
        let from = steps.split(['-', '+']).next().unwrap();
        assert_eq!(from.parse::<usize>().ok(), Some(next), "{line}");
        next = match steps.split_once('-') {
            Some((_, to)) => to.parse::<usize>().unwrap() + 1,
            None if steps.ends_with('+') => usize::MAX,
            None => next + 1,
        };
    }
    assert_eq!(next, usize::MAX, "the last bucket runs on: {line}");
    let (_, short) = forecast_rows(dir.path(), &seasonal_hours(dir.path(), 30), 6);
    assert!(
        short.contains("not calibrated") || short.contains("none, too few"),
        "{short}"
    );
    assert!(
        !long.contains("Some(") && !short.contains("Some("),
        "{long}{short}"
    );
    // Exactly two weeks: both periods apply, no fold fits, and auto takes the ensemble.
    let (_, two_weeks) = forecast_rows(dir.path(), &seasonal_hours(dir.path(), 24 * 14), 24);
    assert!(
        two_weeks.contains(
            "model: ensemble, periods 24,168 (history too short for a backtest fold: interval not calibrated)"
        ),
        "{two_weeks}"
    );
}

/// Rows out of time order are read sorted and a timestamp written twice is taken once, as
/// before, but no longer silently: stderr says so and names the first such row. A tidy file
/// gets no warning.
#[test]
fn unsorted_and_repeated_timestamps_are_read_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let tidy = seasonal_hours(dir.path(), 24 * 21);
    let (_, quiet) = forecast_rows(dir.path(), &tidy, 24);
    assert!(
        !quiet.contains("warning") && !quiet.contains("note"),
        "{quiet}"
    );
    let text = std::fs::read_to_string(&tidy).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(300, 301);
    let repeat = lines[400].to_string();
    lines.insert(401, &repeat);
    let messy = dir.path().join("messy.csv");
    std::fs::write(&messy, lines.join("\n") + "\n").unwrap();
    let (rows, stderr) = forecast_rows(dir.path(), &messy, 24);
    assert_eq!(rows.len(), 24);
    let first_late = lines[301].split(',').next().unwrap();
    let first_repeat = repeat.split(',').next().unwrap();
    assert!(
        stderr.contains(&format!(
            "1 row out of time order (the first: {first_late})"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "1 row with a timestamp seen before (the first: {first_repeat})"
        )),
        "{stderr}"
    );
    // detect still writes one row per input row, in input order.
    let out = dir.path().join("out.csv");
    let d = detect(dir.path(), &messy, &out, &[]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let written = std::fs::read_to_string(&out).unwrap();
    let stamps: Vec<&str> = written
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let input: Vec<&str> = lines
        .iter()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(stamps, input);
}

/// Steps of the time grid with no value are filled before fitting, and stderr says how many
/// and where the longest gap starts (rows simply missing, and a row without a number).
#[test]
fn gaps_in_the_input_are_filled_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let n = 24 * 21;
    let f = write_series(
        dir.path(),
        "gappy.csv",
        (0..n).map(|i| Some(seasonal(i))),
        1,
    );
    let text = std::fs::read_to_string(&f).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Five hours gone from day 10, and one value blanked on day 15.
    let gap_start = lines[1 + 240].split(',').next().unwrap().to_string();
    let blank = format!("{},", lines[1 + 360].split(',').next().unwrap());
    let kept: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !(241..246).contains(i))
        .map(|(i, l)| {
            if i == 361 {
                blank.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&f, kept.join("\n") + "\n").unwrap();
    let (rows, stderr) = forecast_rows(dir.path(), &f, 24);
    assert_eq!(rows.len(), 24);
    assert!(
        stderr.contains(&format!(
            "6 of {n} steps of 1h have no value and are filled before fitting (the longest gap: 5 steps from {gap_start})"
        )),
        "{stderr}"
    );
}

/// Asserts that `out` is a usage error (exit 2) whose message holds `needle`.
fn assert_usage_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

/// A stray year in one row of second-by-second data (2099 for 2024) is a clear error naming
/// the gap, for forecast and detect alike: the grid it implies (2.4 billion steps) aborted
/// the process asking for 19 GB.
#[test]
fn a_stray_year_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("far.csv");
    std::fs::write(
        &f,
        "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:00:01,2\n2024-01-01 00:00:02,3\n\
         2024-01-01 00:00:03,3\n2099-01-01 00:00:00,4\n",
    )
    .unwrap();
    let out_csv = dir.path().join("out.csv");
    for args in [
        vec!["forecast", "--input", f.to_str().unwrap(), "--horizon", "3"],
        vec![
            "detect",
            "--input",
            f.to_str().unwrap(),
            "--output",
            out_csv.to_str().unwrap(),
        ],
    ] {
        assert_usage_error(
            &viewcast(&args, dir.path()),
            "time steps, more than the 10000000 a series may have; the largest gap between rows is 27393d 23h 59m 57s after 2024-01-01 00:00:03 (a wrong year?)",
        );
    }
}

/// An audience kept in local time, stamped in UTC as InfluxDB stores it: the evening peak at
/// 20:00 in London is at 20:00Z in winter and 19:00Z from 31 March 2024. From eight weeks of
/// winter, a forecast across the change with `--timezone Europe/London` moves the peak to
/// 19:00Z from the 31st on (without, it stays at 20:00Z: the model only sees UTC), on the
/// input's own grid of hours; a history across the autumn change, whose hour of 01:00
/// London time comes twice, is forecast the same way; a zone that does not exist is bad
/// usage.
#[test]
fn a_series_is_modelled_on_its_local_clock_with_timezone() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, range: std::ops::Range<i64>, local: &dyn Fn(i64) -> i64| {
        let mut s = String::from("timestamp,value\n");
        for ts in range.step_by(3600) {
            let hour = (local(ts) / 3600) % 24;
            let v = 100.0 + if hour == 20 { 400.0 } else { 0.0 } + (ts / 3600 % 7) as f64;
            let t = chrono::DateTime::from_timestamp(ts, 0).unwrap();
            s.push_str(&format!("{},{v}\n", t.format("%Y-%m-%dT%H:%M:%SZ")));
        }
        let p = dir.path().join(name);
        std::fs::write(&p, s).unwrap();
        p
    };
    // 2024-02-05 to 2024-03-30 00:00Z, all winter time.
    let f = write("london.csv", 1_707_091_200..1_711_756_800, &|ts| ts);
    let peaks = |f: &Path, from: i64, extra: &[&str]| {
        let (rows, stderr) = forecast_rows_with(dir.path(), f, 72, extra);
        assert_eq!(rows.len(), 72, "{stderr}");
        let times: Vec<i64> = rows
            .iter()
            .map(|r| {
                chrono::DateTime::parse_from_rfc3339(&r[0])
                    .unwrap()
                    .timestamp()
            })
            .collect();
        assert!(times.windows(2).all(|w| w[1] - w[0] == 3600));
        assert_eq!(times[0], from);
        (0..3)
            .map(|d| {
                let day = &rows[d * 24..(d + 1) * 24];
                let top = day
                    .iter()
                    .max_by(|a, b| {
                        a[1].parse::<f64>()
                            .unwrap()
                            .total_cmp(&b[1].parse().unwrap())
                    })
                    .unwrap();
                top[0][11..13].to_string()
            })
            .collect::<Vec<_>>()
    };
    let london = ["--timezone", "Europe/London"];
    assert_eq!(peaks(&f, 1_711_756_800, &london), ["20", "19", "19"]);
    assert_eq!(peaks(&f, 1_711_756_800, &[]), ["20", "20", "20"]);
    // Summer weeks up to 2024-10-26 00:00Z, then the forecast across the autumn change.
    let f = write("autumn.csv", 1_725_148_800..1_729_900_800, &|ts| ts + 3600);
    assert_eq!(peaks(&f, 1_729_900_800, &london), ["19", "20", "20"]);
    let out = viewcast(
        &[
            "forecast",
            "--input",
            f.to_str().unwrap(),
            "--horizon",
            "4",
            "--timezone",
            "Mars/Olympus_Mons",
        ],
        dir.path(),
    );
    assert_usage_error(&out, "is not an IANA time zone");
}

/// A poller whose half-hourly readings land up to four minutes late, every other one (26
/// and 34 minutes apart), is put on a 30-minute grid (a day of 48 steps) on the times of the
/// punctual half, every reading at a time of its own, and the summary says how many readings
/// are off the grid and by how much; its forecast runs on that grid.
#[test]
fn a_jittered_feed_is_put_on_its_round_step_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    let mut s = String::from("timestamp,value\n");
    let n = 48 * 21;
    for i in 0..n {
        let late = if i % 2 == 1 { 240 } else { 0 };
        let t = start + chrono::Duration::seconds(i as i64 * 1800 + late);
        s.push_str(&format!(
            "{},{}\n",
            t.format("%Y-%m-%d %H:%M:%S"),
            seasonal(i / 2)
        ));
    }
    let f = dir.path().join("jittered.csv");
    std::fs::write(&f, s).unwrap();
    let (rows, stderr) = forecast_rows(dir.path(), &f, 4);
    assert!(
        stderr.contains(&format!(
            "{} of {n} readings are off the 30m grid (by up to 4m) and are taken at the nearest grid time",
            n / 2
        )),
        "{stderr}"
    );
    // A day of 48 steps: the grid is 30 minutes (the week is tried too, as unconfirmed).
    assert!(
        stderr.contains("model: ensemble, periods 48 ") || stderr.contains("periods 48,336 "),
        "{stderr}"
    );
    assert!(!stderr.contains("have no value"), "{stderr}");
    let times: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        times,
        [
            "2024-01-22 00:00:00",
            "2024-01-22 00:30:00",
            "2024-01-22 01:00:00",
            "2024-01-22 01:30:00"
        ]
    );
    // An hourly feed with one reading at 05:10 besides 05:00's: the later one is kept.
    let f = seasonal_hours(dir.path(), 24 * 14);
    let mut text = std::fs::read_to_string(&f).unwrap();
    text.push_str("2024-01-03 05:10:00,1234\n");
    std::fs::write(&f, text).unwrap();
    let (_, stderr) = forecast_rows(dir.path(), &f, 4);
    assert!(
        stderr.contains(
            "1 of 337 readings are off the 1h grid (by up to 10m) and are taken at the nearest grid time; 1 shares a grid time with a later one and is left out"
        ),
        "{stderr}"
    );
}

/// `--input -` reads standard input and forecasts exactly as from the file. A `--period`
/// the history is too short for is named on stderr and left out, not a failure; one
/// shorter than 2 or absurdly long is bad usage.
#[test]
fn input_from_stdin_and_a_period_too_long_for_the_history() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let f = seasonal_hours(dir.path(), 24 * 14);
    let (from_file, _) = forecast_rows(dir.path(), &f, 24);
    let mut child = Command::new(env!("CARGO_BIN_EXE_viewcast"))
        .args(["forecast", "--input", "-", "--horizon", "24"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(&f).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&out), from_file);

    let with_periods = |p: &str| forecast_rows_with(dir.path(), &f, 24, &["--period", p]);
    let (r, stderr) = with_periods("24,1000");
    assert!(
        stderr.contains(
            "warning: --period 1000 needs two cycles (2000 steps) of history, the input spans 336: left out"
        ),
        "{stderr}"
    );
    assert_eq!(r, with_periods("24").0);
    // Two cycles of this one overflow a 64-bit count: that wrapped to 0 and panicked.
    for period in ["24,9223372036854775808", "1"] {
        let out = viewcast(
            &[
                "forecast",
                "--input",
                f.to_str().unwrap(),
                "--horizon",
                "24",
                "--period",
                period,
            ],
            dir.path(),
        );
        assert_usage_error(
            &out,
            "--period: each period is between 2 and 10000000 steps",
        );
    }
}

#[test]
fn a_daily_series_written_as_dates_is_forecast_in_dates() {
    // Ten weeks of daily totals, weekends 40% up, dated `YYYY-MM-DD` as daily exports are:
    // the forecast must come back on the same dates (a scorer matches rows by timestamp),
    // with the week's shape and calibrated intervals.
    let dir = tempfile::tempdir().unwrap();
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(); // a Monday
    let mut s = String::from("timestamp,value\n");
    for i in 0..70 {
        let weekend = if i % 7 >= 5 { 1.4 } else { 1.0 };
        let day = start + chrono::Duration::days(i);
        s.push_str(&format!("{day},{}\n", 1e5 * weekend + seasonal(i as usize)));
    }
    let f = dir.path().join("daily.csv");
    std::fs::write(&f, s).unwrap();
    let (r, stderr) = forecast_rows(dir.path(), &f, 3);
    let dates: Vec<&str> = r.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(dates, ["2024-03-11", "2024-03-12", "2024-03-13"]);
    assert!(
        !stderr.contains("by horizon None"),
        "uncalibrated: {stderr}"
    );
    let (r, _) = forecast_rows(dir.path(), &f, 7);
    assert_eq!(r[6][0], "2024-03-17");
    let at = |d: usize| r[d][1].parse::<f64>().unwrap();
    assert!(
        at(5) > 1.3 * at(2),
        "Saturday {} against Wednesday {}",
        at(5),
        at(2)
    );
}

#[test]
fn a_monthly_series_is_forecast_in_calendar_months_with_its_trend() {
    // Nine years of monthly totals on the 1st, growing 1% a month with a yearly swing; the
    // tenth year held out. Months are 28–31 days long: the forecast must still land on the
    // 1st of each month, keep the year's shape and the growth (seasonal naive, a year
    // behind, misses the growth; without a trend model the error was 0.39 of its).
    let dir = tempfile::tempdir().unwrap();
    let value = |i: usize| {
        let month = (i % 12) as f64;
        // 2% noise: `seasonal` less its daily cycle, which would be a 24-month one here.
        let noise = (seasonal(i)
            - 1000.0
            - 400.0 * (((i % 24) as f64) / 24.0 * std::f64::consts::TAU).sin())
            / 31.0;
        1000.0
            * 1.01f64.powi(i as i32)
            * (1.0 + 0.2 * (month / 12.0 * std::f64::consts::TAU).sin())
            * (1.0 + 0.04 * (noise - 0.5))
    };
    let mut s = String::from("timestamp,value\n");
    for i in 0..108 {
        s.push_str(&format!(
            "{}-{:02}-01,{}\n",
            2010 + i / 12,
            1 + i % 12,
            value(i)
        ));
    }
    let f = dir.path().join("monthly.csv");
    std::fs::write(&f, s).unwrap();
    let (r, _) = forecast_rows(dir.path(), &f, 12);
    let dates: Vec<&str> = r.iter().map(|row| row[0].as_str()).collect();
    assert_eq!(dates[0], "2019-01-01");
    assert_eq!(dates[1], "2019-02-01");
    assert_eq!(dates[11], "2019-12-01");
    let (mut mae, mut naive) = (0.0, 0.0);
    for (k, row) in r.iter().enumerate() {
        let actual = value(108 + k);
        mae += (row[1].parse::<f64>().unwrap() - actual).abs();
        naive += (value(96 + k) - actual).abs();
    }
    assert!(
        mae < 0.2 * naive,
        "MAE {mae:.0} against seasonal naive's {naive:.0}"
    );
}

#[test]
fn degenerate_series_forecast_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<Option<f64>>)> = vec![
        ("constant", vec![Some(5.0); 400]),
        ("zeros", vec![Some(0.0); 400]),
        (
            "nans",
            (0..400)
                .map(|i| if i % 7 == 0 { None } else { Some(seasonal(i)) })
                .collect(),
        ),
        ("short", (0..200).map(|i| Some(seasonal(i))).collect()),
        ("tiny", vec![Some(3.0), Some(4.0)]),
        ("one", vec![Some(3.0)]),
    ];
    for (name, values) in cases {
        let f = write_series(dir.path(), &format!("{name}.csv"), values, 1);
        let (r, _) = forecast_rows(dir.path(), &f, 24);
        assert_eq!(r.len(), 24, "{name}");
        for row in &r {
            assert!(
                row[1..]
                    .iter()
                    .all(|x| x.parse::<f64>().is_ok_and(f64::is_finite)),
                "{name}: {row:?}"
            );
        }
        if name == "zeros" {
            assert!(
                r.iter().all(|row| row[1] == "0" && row[2] == "0"),
                "zeros stay zero, bounds clamped: {:?}",
                r[0]
            );
        }
    }
    // A constant is backtested like any series (its MASE had no scale: every score was NaN,
    // and the forecast said the history was too short for a fold).
    let f = write_series(dir.path(), "flat.csv", vec![Some(5.0); 24 * 30], 1);
    let (_, stderr) = forecast_rows(dir.path(), &f, 24);
    assert!(
        stderr.contains("model: naive,") && stderr.contains("backtest MASE 0.000"),
        "{stderr}"
    );
    // ...and its backtest names the model the forecast runs (it said `ets`).
    let path = f.to_str().unwrap();
    let args = [
        "backtest",
        "--input",
        path,
        "--horizon",
        "24",
        "--format",
        "json",
    ];
    let out = viewcast(&args, dir.path());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["auto"], "naive", "{doc}");
    // One glitch, a counter read as 10^15, in a month of a daily cycle: the day is still
    // found and forecast, within bounds of the cycle's size (it was a flat line whose upper
    // bound reached 5·10^13).
    let glitch = (0..24 * 30).map(|i| Some(if i == 500 { 1e15 } else { seasonal(i) }));
    let f = write_series(dir.path(), "glitch.csv", glitch, 1);
    let (r, stderr) = forecast_rows(dir.path(), &f, 24);
    assert!(stderr.contains("periods 24"), "{stderr}");
    for (i, row) in r.iter().enumerate() {
        let [yhat, upper] = [1, 3].map(|c| row[c].parse::<f64>().unwrap());
        assert!((yhat - seasonal(24 * 30 + i)).abs() < 100.0, "{row:?}");
        assert!(upper < 2000.0, "{row:?}");
    }
    // A channel on air one hour a day, zero the rest: the day is its period (for a while
    // its hours were taken for outliers, and it was forecast with none).
    let sparse = (0..24 * 30).map(|i| Some(if i % 24 == 20 { seasonal(i) } else { 0.0 }));
    let f = write_series(dir.path(), "sparse.csv", sparse, 1);
    let (r, stderr) = forecast_rows(dir.path(), &f, 24);
    assert!(stderr.contains("periods 24"), "{stderr}");
    assert!(r[20][1].parse::<f64>().unwrap() > 500.0, "{:?}", r[20]);
    // Gaps: a missing day in the middle still gives an hourly grid after the last point.
    let mut vals: Vec<(usize, f64)> = (0..24 * 15).map(|i| (i, seasonal(i))).collect();
    vals.retain(|(i, _)| !(100..124).contains(i));
    let mut s = String::from("timestamp,value\n");
    for (i, v) in vals {
        s.push_str(&format!(
            "2024-02-{:02}T{:02}:00:00Z,{v}\n",
            1 + i / 24,
            i % 24
        ));
    }
    let f = dir.path().join("gaps.csv");
    std::fs::write(&f, s).unwrap();
    let out = viewcast(
        &["forecast", "--input", f.to_str().unwrap(), "--horizon", "3"],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        rows(&out)[0][0],
        "2024-02-16T00:00:00Z",
        "RFC 3339 input gives RFC 3339 output"
    );
}

#[test]
fn bad_input_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.csv");
    std::fs::write(
        &f,
        "timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,lots\n",
    )
    .unwrap();
    let out = viewcast(
        &["forecast", "--input", f.to_str().unwrap(), "--horizon", "3"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv:3: `lots` is not a number"), "{err}");

    let out = viewcast(
        &["forecast", "--input", "/nonexistent.csv", "--horizon", "3"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let good = write_series(dir.path(), "good.csv", (0..10).map(|i| Some(i as f64)), 1);
    let out = viewcast(
        &[
            "forecast",
            "--input",
            good.to_str().unwrap(),
            "--horizon",
            "3",
            "--model",
            "prophet",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model `prophet`"));
    let out = viewcast(&["forecast", "--horizon", "3"], dir.path());
    assert_eq!(out.status.code(), Some(2), "clap usage errors exit 2");

    // Values at the edge of f64 overflow every model: said as such, not as too few points.
    let huge = write_series(
        dir.path(),
        "huge.csv",
        (0..480).map(|i| Some(if i % 5 == 0 { 1e308 } else { -1e308 })),
        1,
    );
    let out = viewcast(
        &[
            "backtest",
            "--input",
            huge.to_str().unwrap(),
            "--horizon",
            "24",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no model could be fitted and scored on any fold"),
        "{err}"
    );

    // `--output` naming the input, directly or through a link, is refused and the input is
    // left as it was (the scores were written over the series they came from).
    let input = seasonal_hours(dir.path(), 24 * 21);
    let before = std::fs::read(&input).unwrap();
    let link = dir.path().join("same.csv");
    std::fs::hard_link(&input, &link).unwrap();
    for output in [&input, &link] {
        let out = detect(dir.path(), &input, output, &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("is the input file"), "{err}");
        assert_eq!(std::fs::read(&input).unwrap(), before);
    }

    // A bad --listen is bad usage, before anything starts (it exited 1 from the daemon).
    let out = viewcast(&["run", "--listen", "127.0.0.1:99999"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--listen: `127.0.0.1:99999`"), "{err}");
}

/// A channel on air one hour a day (zero the rest) whose show does not air one day: the
/// missed hour is a dropout and opens an event at once (it scored 0.36: the series'
/// "resolution" was its whole audience; then 2.2, an anomaly but, a single hour, no event),
/// the silent hours before it are never flagged, and the show's return the next day does
/// not score as anomalous (the miss was learnt as it came, so the copy of yesterday forecast
/// an empty hour and the return was the anomaly).
#[test]
fn detect_on_a_channel_on_air_one_hour_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let miss = 24 * 35 + 20;
    let values = (0..24 * 40).map(|i| {
        let show = i % 24 == 20 && i != miss;
        // seasonal(i) - 1000 - 400 sin(...) is the noise in [0, 31): scaled to ±500.
        let h = (i % 24) as f64;
        let noise = seasonal(i) - 1000.0 - 400.0 * (h / 24.0 * std::f64::consts::TAU).sin();
        Some(if show {
            (5000.0 + (noise - 15.5) * 32.0).round()
        } else {
            0.0
        })
    });
    let f = write_series(dir.path(), "part-time.csv", values, 1);
    let (text, _) = detected(dir.path(), &f);
    let row = |i: usize| -> Vec<String> {
        text.lines()
            .nth(i + 1)
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let score = |i: usize| row(i)[5].parse::<f64>().unwrap();
    assert!(
        score(miss) >= 3.0 && row(miss)[6] == "true",
        "{:?}",
        row(miss)
    );
    // Before the miss, after the warm-up, no silent hour is flagged: read and forecast as
    // exactly zero, they were flagged for a day (peak score 15) as departing from the level
    // error of a show the forecast had misjudged.
    let silent_flags: Vec<usize> = (24 * 3..miss)
        .filter(|&i| i % 24 != 20 && row(i)[6] == "true")
        .collect();
    assert!(silent_flags.is_empty(), "{silent_flags:?}");
    // The silence after the miss, 46 hours of zeros where 23 were the longest, is forecast
    // as zero and is not a second event (`frozen` opened one on its 46th and 47th hours), and
    // the return scores below 1.
    let after: Vec<usize> = (miss + 1..miss + 24)
        .filter(|&i| row(i)[6] == "true")
        .collect();
    assert!(after.is_empty(), "{after:?}");
    assert!(score(miss + 24) < 1.0, "{:?}", row(miss + 24));
    // Every show from the fourth day on is forecast near its audience: in the first weeks the
    // shows, departing every day from the silent hours' spread, were taken out as one-off
    // events, and two days' shows were forecast as 0.
    let yhat = |i: usize| row(i)[2].parse::<f64>().unwrap();
    let missed: Vec<(usize, f64)> = (3..40)
        .map(|d| (d, yhat(24 * d + 20)))
        .filter(|&(_, f)| f < 2500.0)
        .collect();
    assert!(missed.is_empty(), "{missed:?}");
}

/// Every command that prints reports a standard output it cannot write to (a full disk, a
/// reader that stopped) as an error, exit 1, instead of panicking as `println!` does; and
/// `detect --output -` writes its rows there.
#[test]
fn output_to_standard_output_and_its_failures() {
    let dir = tempfile::tempdir().unwrap();
    let input = seasonal_hours(dir.path(), 24 * 21);
    let path = input.to_str().unwrap();
    let out = viewcast(&["detect", "--input", path, "--output", "-"], dir.path());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&out).len(), 24 * 21);
    assert!(!dir.path().join("-").exists());
    let commands: [&[&str]; 4] = [
        &["backtest", "--input", path, "--horizon", "24"],
        &[
            "backtest",
            "--input",
            path,
            "--horizon",
            "24",
            "--format",
            "json",
        ],
        &["forecast", "--input", path, "--horizon", "24"],
        &["check-config"],
    ];
    for args in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_viewcast"))
            .args(args)
            .current_dir(dir.path())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("writing output") && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn detect_writes_one_row_per_input_row_and_flags_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let n = 24 * 21;
    let f = write_series(
        dir.path(),
        "s.csv",
        (0..n).map(|i| Some(if i == n - 30 { 10.0 } else { seasonal(i) })),
        1,
    );
    let (text, stderr) = detected(dir.path(), &f);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "timestamp,value,yhat,yhat_lower,yhat_upper,anomaly_score,is_anomaly"
    );
    assert_eq!(lines.len(), n + 1);
    assert!(lines[1].starts_with("2024-01-01 00:00:00,"));
    assert!(
        lines[1].ends_with(",,,,0,false"),
        "warm-up rows have no forecast: {}",
        lines[1]
    );
    assert!(
        lines[n - 30 + 1].ends_with(",true"),
        "{}",
        lines[n - 30 + 1]
    );
    let flagged = lines.iter().filter(|l| l.ends_with(",true")).count();
    assert!(flagged <= 10, "{flagged} flags");
    // stderr sums it up and names the event by its time, as the input writes it.
    assert!(
        stderr.contains(&format!("{n} rows, {n} times scored"))
            && stderr.contains(&format!("{flagged} of them flagged")),
        "{stderr}"
    );
    let outage = lines[n - 30 + 1].split(',').next().unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l.trim_start().starts_with(outage) && l.contains("peak score")),
        "{outage} not named: {stderr}"
    );
}

#[test]
fn detect_runs_the_named_detectors_and_explains_its_scores() {
    let dir = tempfile::tempdir().unwrap();
    let n = 24 * 21;
    // The feed freezes for the last twelve hours.
    let f = write_series(
        dir.path(),
        "s.csv",
        (0..n).map(|i| Some(seasonal(i.min(n - 12)))),
        1,
    );
    let o = dir.path().join("out.csv");
    let run =
        |detectors: &str| detect(dir.path(), &f, &o, &["--detectors", detectors, "--explain"]);
    let out = run("frozen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&o).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].ends_with(",is_anomaly,detector"), "{}", lines[0]);
    let flagged: Vec<usize> = (1..lines.len())
        .filter(|&i| lines[i].ends_with(",true,frozen"))
        .collect();
    assert!(
        !flagged.is_empty() && flagged[0] > n - 12 && flagged[0] <= n - 12 + 7,
        "six equal values score 1, the second such opens an event: {flagged:?}"
    );
    assert!(
        lines[1..n - 11].iter().all(|l| !l.contains(",true,")),
        "nothing before the freeze"
    );

    let out = run("residual,psychic");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown detector `psychic`"), "{err}");
}

#[test]
fn sample_data_is_reproducible_in_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.csv");
    let b = dir.path().join("b.csv");
    let lp = dir.path().join("d.lp");
    for p in [&a, &b] {
        let out = viewcast(
            &[
                "sample-data",
                "--out",
                p.to_str().unwrap(),
                "--weeks",
                "2",
                "--end",
                "2026-01-31T20:00:00Z",
            ],
            dir.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let text = std::fs::read_to_string(&a).unwrap();
    assert_eq!(text, std::fs::read_to_string(&b).unwrap());
    // `--out -` is standard output, as `--input -` is standard input (it made a file `-`).
    let args = [
        "sample-data",
        "--out",
        "-",
        "--weeks",
        "2",
        "--end",
        "2026-01-31T20:00:00Z",
    ];
    let out = viewcast(&args, dir.path());
    assert_eq!(String::from_utf8_lossy(&out.stdout), text);
    assert!(!dir.path().join("-").exists());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "timestamp,channel,value");
    assert_eq!(lines.len(), 1 + 12 * 2 * 168);
    assert!(lines.last().unwrap().starts_with("2026-01-31 20:00:00,"));
    let out = viewcast(
        &[
            "sample-data",
            "--out",
            lp.to_str().unwrap(),
            "--format",
            "line-protocol",
            "--weeks",
            "1",
            "--end",
            "2026-01-31T20:00:00Z",
        ],
        dir.path(),
    );
    assert!(out.status.success());
    let lp = std::fs::read_to_string(&lp).unwrap();
    let first = lp.lines().next().unwrap();
    assert!(
        first.starts_with("viewership,channel=news viewers="),
        "{first}"
    );
    assert!(
        first.ends_with(&format!(
            " {}",
            (1_769_889_600i64 - 167 * 3600) * 1_000_000_000
        )),
        "{first}"
    );
    let out = viewcast(
        &["sample-data", "--out", "x.csv", "--end", "someday"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_config_lists_every_problem_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let ok = viewcast(&["check-config"], dir.path());
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("built-in default"));
    // Every shipped config is valid (the InfluxDB ones with their environment given).
    for name in ["influxdb-v1.toml", "influxdb-v2.toml"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config")
            .join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_viewcast"))
            .args(["check-config", "--config", p.to_str().unwrap()])
            .envs([
                ("INFLUXDB_ORG", "org"),
                ("INFLUXDB_BUCKET", "bucket"),
                ("INFLUXDB_TOKEN", "token"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/influxdb-v2.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_viewcast"))
        .args(["check-config", "--config", v2.to_str().unwrap()])
        .env_remove("INFLUXDB_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "the v2 config needs INFLUXDB_TOKEN"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("INFLUXDB_TOKEN"));
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/viewcast.toml");
    let ok = viewcast(
        &["check-config", "--config", shipped.to_str().unwrap()],
        dir.path(),
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[source]\ntype = \"demo\"\n[schedule]\ninterval = \"often\"\nrefit_every = \"x\"\n[model]\nperiods = [24, 9223372036854775808]\ntimezone = \"Mars/Base\"\n[detect]\nlevel = 90\n").unwrap();
    let out = viewcast(
        &["check-config", "--config", bad.to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "schedule.interval",
        "schedule.refit_every",
        "model.periods: a period is between 2 and 10000000 steps",
        "model.timezone: `Mars/Base` is not an IANA time zone",
        "detect.level",
    ] {
        assert!(err.contains(needle), "{needle} missing: {err}");
    }
}

#[test]
fn backtest_says_when_the_lowest_median_mase_leads_only_within_the_noise() {
    // The first 60 daily totals of NYC taxi rides: over three weekly folds seasonal ETS has
    // the lowest median MASE, but not by more than one standard error of its fold-by-fold
    // lead over mstl_ets, which `auto` keeps (model::backtest::choose).
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/nyc_taxi_daily.json")).unwrap();
    let y: Vec<f64> = doc["y"].as_array().unwrap()[..60]
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let f = write_series(dir.path(), "daily.csv", y.into_iter().map(Some), 24);
    let args = ["backtest", "--input", f.to_str().unwrap(), "--horizon", "7"];
    let json = viewcast(&[&args[..], &["--format", "json"]].concat(), dir.path());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    // The JSON names the models auto chooses among: for a weekly season, seasonal ETS too.
    let candidates = v["auto_candidates"].as_array().unwrap();
    assert!(
        candidates.contains(&"ets".into()) && !candidates.contains(&"seasonal_mean".into()),
        "{v}"
    );
    let lowest = v["models"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| candidates.contains(&m["model"]))
        .min_by(|a, b| {
            a["mase"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["mase"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(lowest["model"], "ets", "{v}");
    assert_eq!(v["auto"], "mstl_ets", "{v}");
    let table = String::from_utf8_lossy(&viewcast(&args, dir.path()).stdout).to_string();
    assert!(
        table.contains("auto would choose: mstl_ets (periods 7; it chooses among mstl_ets, ets, seasonal_naive, seasonal_ar, ensemble)")
            && table.contains("ets has the lowest median MASE, but its lead over mstl_ets is within the noise"),
        "{table}"
    );
}

#[test]
fn backtest_reports_every_model_and_the_auto_choice() {
    let dir = tempfile::tempdir().unwrap();
    let f = seasonal_hours(dir.path(), 24 * 35);
    let out = viewcast(
        &[
            "backtest",
            "--input",
            f.to_str().unwrap(),
            "--horizon",
            "24",
            "--folds",
            "3",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // A daily cycle alone: the week is not confirmed, so every model also runs with it.
    assert_eq!(v["periods"], serde_json::json!([24]));
    assert_eq!(v["unconfirmed_periods"], serde_json::json!([168]));
    let rows = v["models"].as_array().unwrap();
    let with = |periods: serde_json::Value| -> Vec<&str> {
        rows.iter()
            .filter(|m| m["periods"] == periods)
            .map(|m| m["model"].as_str().unwrap())
            .collect()
    };
    let models = with(serde_json::json!([24]));
    assert_eq!(
        models,
        vec![
            "mstl_ets",
            "ets",
            "seasonal_mean",
            "seasonal_ar",
            "ensemble",
            "seasonal_naive",
            "naive"
        ]
    );
    let weekly = with(serde_json::json!([24, 168]));
    assert!(weekly.contains(&"mstl_ets"), "{weekly:?}");
    assert_eq!(models.len() + weekly.len(), rows.len());
    for m in rows {
        for k in ["mase", "rmae", "coverage", "fit_ms"] {
            assert!(m[k].as_f64().is_some_and(f64::is_finite), "{k} of {m}");
        }
        // The median MASE is the median of the folds' (three of them, 24 steps each).
        let mut folds: Vec<f64> = m["fold_mase"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(folds.len(), 3, "{m}");
        folds.sort_by(f64::total_cmp);
        assert!(
            (folds[1] - m["mase"].as_f64().unwrap()).abs() < 1e-12,
            "{m}"
        );
    }
    // rMAE is relative to the seasonal naive forecast of the longest period tried.
    let naive = rows
        .iter()
        .find(|m| m["model"] == "seasonal_naive" && m["periods"] == serde_json::json!([24, 168]))
        .unwrap();
    assert!((naive["rmae"].as_f64().unwrap() - 1.0).abs() < 1e-9);
    assert!(v["auto_periods"].is_array());
    assert!(models.contains(&v["auto"].as_str().unwrap()));
    let table = viewcast(
        &[
            "backtest",
            "--input",
            f.to_str().unwrap(),
            "--horizon",
            "24",
        ],
        dir.path(),
    );
    assert!(String::from_utf8_lossy(&table.stdout).contains("auto would choose:"));
    let short = write_series(dir.path(), "short.csv", (0..10).map(|i| Some(i as f64)), 1);
    let out = viewcast(
        &[
            "backtest",
            "--input",
            short.to_str().unwrap(),
            "--horizon",
            "24",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "too short for one fold");
}

mod fuzz {
    //! Whatever a CSV holds, every command ends with exit 0 or 2 (bad input, named), never
    //! a panic (101) or the catch-all 1.

    use proptest::prelude::*;

    fn times() -> impl Strategy<Value = Vec<i64>> {
        let step = prop_oneof![Just(3600i64), Just(1800), Just(300), Just(86_400), Just(1)];
        prop_oneof![
            // A regular grid from anywhere in time.
            (1usize..400, step, -3_000_000_000i64..5_000_000_000)
                .prop_map(|(n, step, t0)| (0..n as i64).map(|i| t0 + i * step).collect()),
            // Irregular steps, repeats (0) and gaps.
            (
                0i64..2_000_000_000,
                prop::collection::vec(0i64..20_000, 1..400)
            )
                .prop_map(|(t0, steps)| {
                    steps
                        .iter()
                        .scan(t0, |t, s| {
                            *t += s;
                            Some(*t)
                        })
                        .collect()
                }),
            // Anything, unsorted.
            prop::collection::vec(-100_000_000_000i64..100_000_000_000, 1..60),
        ]
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => (0.0..1e5f64).prop_map(|v| format!("{v:.3}")),
            1 => Just(String::new()),
            1 => Just("NaN".into()),
            1 => Just("inf".into()),
            1 => Just("1e308".into()),
            1 => Just("-1e308".into()),
            1 => Just("1e-310".into()),
            1 => Just("0".into()),
            1 => Just("-5".into()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
        #[test]
        fn every_command_exits_0_or_2_on_any_series(
            times in times(),
            values in prop::collection::vec(value(), 400),
            form in 0usize..3,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let input = dir.path().join("in.csv");
            let mut text = String::from("timestamp,value\n");
            for (t, v) in times.iter().zip(values.iter().cycle()) {
                let date = chrono::DateTime::from_timestamp(*t, 0);
                let stamp = match (form, date) {
                    (1, Some(d)) => d.format("%Y-%m-%d %H:%M:%S").to_string(),
                    (2, Some(d)) => d.to_rfc3339(),
                    _ => t.to_string(),
                };
                text.push_str(&format!("{stamp},{v}\n"));
            }
            std::fs::write(&input, text).unwrap();
            let i = input.to_str().unwrap();
            let o = dir.path().join("out.csv");
            let o = o.to_str().unwrap();
            for args in [
                vec!["forecast", "--input", i, "--horizon", "30"],
                vec!["backtest", "--input", i, "--horizon", "12", "--format", "json"],
                vec!["detect", "--input", i, "--output", o],
            ] {
                let out = super::viewcast(&args, dir.path());
                let code = out.status.code();
                prop_assert!(
                    code == Some(0) || code == Some(2),
                    "{args:?} exited {code:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}
