//! The command line: the daemon (`run`), `check-config`, `sample-data`, and the one-off
//! `forecast` and `detect` commands that run the daemon's own per-series engine on a CSV.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand, ValueEnum};

use crate::clock::SystemClock;
use crate::config::{Settings, SourceConfig};
use crate::csvio;
use crate::engine::{EngineSettings, SeriesEngine};
use crate::model::ModelSpec;
use crate::series::{infer_step, Point};
use crate::source::demo::{self, floor_hour, DemoSpec};
use crate::timefmt::{format_timestamp, parse_time, LocalClock, MonthGrid};

/// `println!` that returns [`CliError`] when standard output is gone (a reader such as
/// `head` that stops early) instead of panicking, as `println!` does.
macro_rules! outln {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*).map_err(writing_output)?
    };
}

/// The error of a failed write to standard output.
fn writing_output(e: std::io::Error) -> CliError {
    CliError::other(format!("writing output: {e}"))
}

#[derive(Debug, Parser)]
#[command(
    name = "viewcast",
    version,
    about = "Forecasts audience traffic per channel and flags anomalies.",
    long_about = "Forecasts audience traffic per channel and flags anomalies.\n\nWithout a command, runs the daemon as `viewcast run` would: on ./config/viewcast.toml if present, else on the built-in embedded default (demo data, SQLite store, API on 127.0.0.1:8080)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum SampleFormat {
    Csv,
    LineProtocol,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon (without --config: ./config/viewcast.toml if present, else the built-in
    /// embedded default with demo data and no external service).
    Run {
        /// Configuration file (TOML).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address of the API, e.g. 127.0.0.1:8080 (overrides api.listen).
        #[arg(long)]
        listen: Option<String>,
        /// Folder of the embedded store (overrides store.data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log format (overrides log.format).
        #[arg(long, value_enum)]
        log_format: Option<LogFormat>,
    },
    /// Validate a configuration: print every problem and exit 2, or a summary and exit 0.
    CheckConfig {
        /// Configuration file (TOML); default: ./config/viewcast.toml if present, else the
        /// built-in default.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Write the demo data set (12 channels of hourly viewers with injected anomalies).
    SampleData {
        /// File to write (`-`: standard output).
        #[arg(long)]
        out: PathBuf,
        /// `csv` (timestamp,channel,value) or InfluxDB `line-protocol` (viewership,channel=… viewers=…).
        #[arg(long, value_enum, default_value = "csv")]
        format: SampleFormat,
        /// Weeks of history.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=520))]
        weeks: u32,
        /// Last hour of the data (RFC 3339 or YYYY-MM-DD HH:MM:SS, UTC); default: the current hour.
        #[arg(long)]
        end: Option<String>,
        /// Seed of the noise (the same seed and --end, the same data; the anomalies are injected at
        /// fixed hours before the end).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// How many of the 12 demo channels to write.
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=12))]
        channels: u32,
    },
    /// Forecast a CSV series (timestamp,value): prints timestamp,yhat,yhat_lower,yhat_upper.
    Forecast {
        /// CSV with a timestamp and a value column (`-`: standard input).
        #[arg(long)]
        input: PathBuf,
        /// Number of future steps.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        horizon: u32,
        /// Interval level in percent.
        #[arg(long, default_value_t = 95.0)]
        level: f64,
        /// auto, or a model name (mstl_ets, ets, seasonal_mean, ensemble, seasonal_ar,
        /// seasonal_naive, naive).
        #[arg(long, default_value = "auto")]
        model: String,
        #[command(flatten)]
        seasons: Seasons,
        /// History each fit uses, e.g. 112d (at least six cycles of the longest period).
        #[arg(long, default_value = "112d")]
        window: String,
    },
    /// Rolling-origin evaluation of every model in the catalog on a CSV series.
    Backtest {
        /// CSV with a timestamp and a value column (`-`: standard input).
        #[arg(long)]
        input: PathBuf,
        /// Steps forecast from each origin.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        horizon: u32,
        /// Number of origins (the last `folds` × `horizon` points are forecast).
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
        folds: u32,
        #[command(flatten)]
        seasons: Seasons,
        /// A table for people, or JSON with each model's per-fold MASE and auto's candidates.
        #[arg(long, value_enum, default_value = "table")]
        format: ReportFormat,
    },
    /// Causal replay of a CSV series: scores each row with only the rows up to it.
    Detect {
        /// CSV with a timestamp and a value column (`-`: standard input).
        #[arg(long)]
        input: PathBuf,
        /// Where to write the scored rows (CSV; `-`: standard output).
        #[arg(long)]
        output: PathBuf,
        /// auto, or a model name (as for `forecast`).
        #[arg(long, default_value = "auto")]
        model: String,
        #[command(flatten)]
        seasons: Seasons,
        /// Detectors to combine (the highest score wins): interval, residual, level_shift,
        /// frozen, missing. Default: residual, level_shift, frozen (cross_channel needs
        /// several series and runs only in the daemon).
        #[arg(long, value_delimiter = ',')]
        detectors: Option<Vec<String>>,
        /// Add a trailing `detector` column naming the detector that drove each score
        /// (`residual` names a zero where the series never reads zero `dropout`).
        #[arg(long)]
        explain: bool,
    },
}

/// How `forecast`, `backtest` and `detect` see a series' seasons.
#[derive(Debug, clap::Args)]
pub struct Seasons {
    /// Seasonal periods in steps, e.g. 24,168 (default: inferred from the time step).
    #[arg(long, value_delimiter = ',')]
    period: Option<Vec<usize>>,
    /// The clock to model the series on (an IANA name such as Europe/London), as
    /// `model.timezone` in the config: a daily cycle kept in local time then stays put
    /// when the clocks change. Times are read and written as the input writes them.
    #[arg(long)]
    timezone: Option<LocalClock>,
}

/// An error with its exit code: 2 for bad usage, config or input; 1 for anything else.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
    pub fn other(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
}

pub fn execute(cli: Cli) -> Result<(), CliError> {
    let command = cli.command.unwrap_or(Command::Run {
        config: None,
        listen: None,
        data_dir: None,
        log_format: None,
    });
    match command {
        Command::Run {
            config,
            listen,
            data_dir,
            log_format,
        } => run(config, listen, data_dir, log_format),
        Command::CheckConfig { config } => check_config(config),
        Command::SampleData {
            out,
            format,
            weeks,
            end,
            seed,
            channels,
        } => sample_data(&out, format, weeks, end, seed, channels),
        Command::Forecast {
            input,
            horizon,
            level,
            model,
            seasons: Seasons { period, timezone },
            window,
        } => forecast(
            &input,
            horizon as usize,
            level,
            &model,
            period,
            timezone,
            &window,
        ),
        Command::Detect {
            input,
            output,
            model,
            seasons: Seasons { period, timezone },
            detectors,
            explain,
        } => detect(
            &input, &output, &model, period, timezone, detectors, explain,
        ),
        Command::Backtest {
            input,
            horizon,
            folds,
            seasons: Seasons { period, timezone },
            format,
        } => backtest_cmd(
            &input,
            horizon as usize,
            folds as usize,
            period,
            timezone,
            format,
        ),
    }
}

/// `--config`, else ./config/viewcast.toml when present, else the built-in default.
fn config_path(config: Option<PathBuf>) -> Option<PathBuf> {
    config.or_else(|| {
        let p = PathBuf::from("config/viewcast.toml");
        p.exists().then_some(p)
    })
}

fn load(config: Option<PathBuf>) -> Result<Settings, CliError> {
    Settings::load(config_path(config).as_deref()).map_err(|e| CliError::usage(e.to_string()))
}

fn run(
    config: Option<PathBuf>,
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    log_format: Option<LogFormat>,
) -> Result<(), CliError> {
    let settings = load(config)?;
    // Bad usage, exit 2 like a bad config (it exited 1 from inside the daemon).
    if let Some(l) = &listen {
        crate::daemon::listen_addr(l).map_err(CliError::usage)?;
    }
    let json = match log_format {
        Some(f) => f == LogFormat::Json,
        None => settings.config.log.format == "json",
    };
    crate::telemetry::init(json);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::other(format!("starting the runtime: {e}")))?;
    let overrides = crate::daemon::Overrides { listen, data_dir };
    rt.block_on(crate::daemon::run(
        settings,
        overrides,
        Arc::new(SystemClock),
    ))
    .map_err(|e| CliError::other(e.to_string()))?;
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}

fn check_config(config: Option<PathBuf>) -> Result<(), CliError> {
    let s = load(config)?;
    let c = &s.config;
    let source = match &c.source {
        SourceConfig::Demo(d) => format!(
            "demo feed, {} channels, seed {}, {} of history",
            d.channels, d.seed, d.history
        ),
        SourceConfig::Csv(x) => format!("csv {}", x.path.display()),
        SourceConfig::InfluxdbV1(q) | SourceConfig::InfluxdbV2(q) => format!(
            "{} {}({}) of {} by {:?} every {}",
            if matches!(c.source, SourceConfig::InfluxdbV1(_)) {
                "influxdb_v1"
            } else {
                "influxdb_v2"
            },
            q.aggregate,
            q.field,
            q.measurement,
            q.group_by,
            q.every
        ),
    };
    outln!("{}: ok", s.origin);
    outln!("  source:   {source}");
    outln!(
        "  schedule: every {}, refit every {}, backfill {}",
        c.schedule.interval,
        c.schedule.refit_every,
        c.schedule.backfill
    );
    outln!(
        "  model:    {} (horizon {}; levels {} %; window {}{})",
        c.model.name,
        c.model.horizon,
        crate::config::levels_text(&c.model.levels),
        c.model.window,
        c.model
            .preset
            .as_ref()
            .map(|p| format!("; preset {p}"))
            .unwrap_or_default()
    );
    outln!(
        "  detect:   {} at the {}% interval, threshold {}",
        c.detect.detectors.join(", "),
        c.detect.level,
        c.detect.threshold
    );
    if let Some(i) = &s.influx {
        outln!(
            "  influxdb: {} database {} ({} sink(s))",
            i.url,
            i.database,
            s.sink_layouts.len()
        );
    }
    outln!(
        "  store:    {}/viewcast.db (retention {})",
        c.store.data_dir.display(),
        c.store.retention
    );
    outln!(
        "  api:      http://{} (token {})",
        c.api.listen,
        if s.api_token.is_empty() {
            "not set"
        } else {
            "set"
        }
    );
    Ok(())
}

fn sample_data(
    out: &Path,
    format: SampleFormat,
    weeks: u32,
    end: Option<String>,
    seed: u64,
    channels: u32,
) -> Result<(), CliError> {
    let end = match end {
        Some(e) => parse_time(&e).map_err(|m| CliError::usage(format!("--end: {m}")))?,
        None => chrono::Utc::now().timestamp(),
    };
    let end = floor_hour(end);
    let spec = DemoSpec::new(seed, channels as usize, end);
    let from = end - i64::from(weeks) * 7 * 86_400 + demo::HOUR;
    let data = spec.generate(from, end);
    let mut w = create_output(out)?;
    let io = |e: std::io::Error| CliError::other(format!("{}: {e}", out.display()));
    match format {
        SampleFormat::Csv => {
            writeln!(w, "timestamp,{},value", demo::TAG).map_err(io)?;
            let n = data.first().map_or(0, |d| d.1.len());
            for i in 0..n {
                for (key, pts) in &data {
                    let ch = key.tags().get(demo::TAG).map_or("", |s| s.as_str());
                    writeln!(
                        w,
                        "{},{ch},{}",
                        format_timestamp(
                            pts[i].ts,
                            crate::timefmt::TimeForm::Plain { t: false, frac: 0 }
                        ),
                        pts[i].value
                    )
                    .map_err(io)?;
                }
            }
        }
        SampleFormat::LineProtocol => {
            for (key, pts) in &data {
                let ch = key.tags().get(demo::TAG).map_or("", |s| s.as_str());
                for p in pts {
                    writeln!(
                        w,
                        "{},{}={ch} {}={:.1} {}",
                        demo::MEASUREMENT,
                        demo::TAG,
                        demo::FIELD,
                        p.value,
                        p.ts * 1_000_000_000
                    )
                    .map_err(io)?;
                }
            }
        }
    }
    w.flush().map_err(io)?;
    eprintln!(
        "wrote {} channels × {} hours to {}",
        data.len(),
        data.first().map_or(0, |d| d.1.len()),
        out.display()
    );
    for inj in spec.injected() {
        eprintln!(
            "  injected {:?} on {} from {}",
            inj.kind,
            inj.channel,
            crate::clock::rfc3339(inj.start)
        );
    }
    Ok(())
}

/// Reads a CLI input series, sorted by time, with its step. A series dated in calendar
/// months is put on an even grid (its points' times are grid times; `grid` maps them back).
fn read_series(input: &Path) -> Result<Series, CliError> {
    let mut table = csvio::read(input, "value", &[]).map_err(|e| CliError::usage(e.to_string()))?;
    if table.rows.is_empty() {
        return Err(CliError::usage(format!(
            "{}: no data rows",
            input.display()
        )));
    }
    for warning in order_warnings(&table.rows) {
        eprintln!("viewcast: warning: {}: {warning}", input.display());
    }
    let mut ts: Vec<i64> = table.rows.iter().map(|r| r.point.ts).collect();
    ts.sort_unstable();
    let grid = MonthGrid::detect(&ts);
    if let Some(g) = grid {
        for r in &mut table.rows {
            r.point.ts = g.to_grid(r.point.ts);
        }
        ts = ts.into_iter().map(|t| g.to_grid(t)).collect();
    }
    let step = infer_step(&ts).unwrap_or(3600);
    if let (Some(&first), Some(&last)) = (ts.first(), ts.last()) {
        let steps = (last - first) / step.max(1) + 1;
        if steps > MAX_GRID_STEPS {
            let (gap, after) = ts
                .windows(2)
                .map(|w| (w[1] - w[0], w[0]))
                .max_by_key(|&(gap, _)| gap)
                .unwrap_or((0, first));
            return Err(CliError::usage(format!(
                "{}: the rows span {} at a step of {}: {steps} time steps, more than the {MAX_GRID_STEPS} a series may have; the largest gap between rows is {} after {} (a wrong year?)",
                input.display(),
                crate::timefmt::format_duration(last - first),
                crate::timefmt::format_step(step),
                crate::timefmt::format_duration(gap),
                format_timestamp(grid.map_or(after, |g| g.from_grid(after)), table.form),
            )));
        }
    }
    let points: Vec<Point> = table.rows.iter().map(|r| r.point).collect();
    let non_negative = points
        .iter()
        .filter(|p| p.value.is_finite())
        .all(|p| p.value >= 0.0);
    let regular = crate::series::regularize(&points, step);
    let series = Series {
        table,
        step,
        grid,
        points,
        regular,
        non_negative,
    };
    for note in [series.grid_note(), series.gap_note()]
        .into_iter()
        .flatten()
    {
        eprintln!("viewcast: note: {}: {note}", input.display());
    }
    Ok(series)
}

/// The most time steps an input series may span (ten years of half-minute data): its grid
/// is held in memory several times over, and a stray year in one row (2204 for 2024) asked
/// for billions of steps, which aborted the process.
const MAX_GRID_STEPS: i64 = 10_000_000;

/// What the reader does silently but a user should know: rows out of time order (they are
/// read sorted) and timestamps written more than once (each time is taken once).
fn order_warnings(rows: &[csvio::Row]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let (mut late, mut first_late) = (0usize, None);
    let (mut repeated, mut first_repeat) = (0usize, None);
    let mut latest = i64::MIN;
    for r in rows {
        let t = r.point.ts;
        if !seen.insert(t) {
            repeated += 1;
            first_repeat.get_or_insert(r.raw_ts.as_str());
        } else if t < latest {
            late += 1;
            first_late.get_or_insert(r.raw_ts.as_str());
        }
        latest = latest.max(t);
    }
    let mut out = Vec::new();
    if let Some(t) = first_late {
        out.push(format!(
            "{} out of time order (the first: {t}); read sorted by time",
            count(late, "row")
        ));
    }
    if let Some(t) = first_repeat {
        out.push(format!(
            "{} with a timestamp seen before (the first: {t}); each time is taken once: its last value goes into the history, `detect` scores its first",
            count(repeated, "row")
        ));
    }
    out
}

/// `1 row`, `2 rows`.
fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// A CLI input series.
struct Series {
    table: csvio::Table,
    step: i64,
    /// Set when the series is dated in calendar months.
    grid: Option<MonthGrid>,
    points: Vec<Point>,
    /// The points on the time grid (NaN where a step has no value): what `backtest` prepares
    /// and the gap note counts.
    regular: crate::series::Regular,
    /// No value is negative.
    non_negative: bool,
}

impl Series {
    /// Checks the `--period`s, and says on stderr which of them the input is too short for:
    /// a period needs two whole cycles of history, and without them it is left out rather
    /// than failing.
    fn check_periods(&self, period: Option<&[usize]>) -> Result<(), CliError> {
        use crate::series::{valid_period, MAX_PERIOD};
        if !period.unwrap_or_default().iter().all(|&p| valid_period(p)) {
            return Err(CliError::usage(format!(
                "--period: each period is between 2 and {MAX_PERIOD} steps"
            )));
        }
        let times = self.points.iter().map(|p| p.ts);
        let (Some(first), Some(last)) = (times.clone().min(), times.max()) else {
            return Ok(());
        };
        let steps = ((last - first) / self.step.max(1) + 1) as usize;
        for &p in period.unwrap_or_default() {
            if steps < p.saturating_mul(2) {
                eprintln!(
                    "viewcast: warning: --period {p} needs two cycles ({} steps) of history, the input spans {steps}: left out",
                    p.saturating_mul(2)
                );
            }
        }
        Ok(())
    }

    /// Says how many readings are not on the time grid (a jittered feed, or local times
    /// across a change of clocks), by up to how much, and how many share a grid time with a
    /// later reading and are left out: None when every reading is on a grid time of its own.
    fn grid_note(&self) -> Option<String> {
        let grid = &self.regular;
        let step = grid.step.max(1);
        let mut times: Vec<i64> = self
            .points
            .iter()
            .filter(|p| p.value.is_finite())
            .map(|p| p.ts)
            .collect();
        times.sort_unstable();
        times.dedup();
        let off: Vec<i64> = times
            .iter()
            .map(|&t| (t - grid.ts(grid.slot(t))).abs())
            .filter(|d| *d > 0)
            .collect();
        let shared = times
            .windows(2)
            .filter(|w| grid.slot(w[0]) == grid.slot(w[1]))
            .count();
        if off.is_empty() && shared == 0 {
            return None;
        }
        let mut note = format!(
            "{} of {} are off the {} grid (by up to {}) and are taken at the nearest grid time",
            off.len(),
            count(times.len(), "reading"),
            crate::timefmt::format_step(step),
            crate::timefmt::format_step(off.iter().max().copied().unwrap_or(0)),
        );
        if shared > 0 {
            note += &format!(
                "; {}",
                if shared == 1 {
                    "1 shares a grid time with a later one and is left out".to_string()
                } else {
                    format!("{shared} share a grid time with a later one and are left out")
                }
            );
        }
        Some(note)
    }

    /// Says how many steps of the time grid have no value (no row, or no number in it) and
    /// are filled before fitting, and where the longest such run starts: None when none are.
    fn gap_note(&self) -> Option<String> {
        let grid = &self.regular;
        let missing = grid.values.iter().filter(|v| !v.is_finite()).count();
        if missing == 0 || missing == grid.values.len() {
            return None;
        }
        let runs = crate::series::runs(grid.values.len(), |i| !grid.values[i].is_finite());
        // The first of the longest (max_by_key keeps the last of equals).
        let longest = runs.iter().rev().max_by_key(|r| r.len())?;
        Some(format!(
            "{missing} of {} steps of {} have no value and are filled before fitting (the longest gap: {} from {})",
            grid.values.len(),
            crate::timefmt::format_step(self.step),
            count(longest.len(), "step"),
            self.format(grid.ts(longest.start))
        ))
    }

    /// Renders a time of the series' (grid) axis as the input wrote its timestamps.
    fn format(&self, t: i64) -> String {
        let t = self.grid.map_or(t, |g| g.from_grid(t));
        format_timestamp(t, self.table.form)
    }
}

fn cli_settings(
    model: &str,
    period: Option<Vec<usize>>,
    timezone: Option<LocalClock>,
    non_negative: bool,
) -> Result<EngineSettings, CliError> {
    let spec: ModelSpec = model
        .parse()
        .map_err(|e: crate::model::ModelError| CliError::usage(format!("--model: {e}")))?;
    Ok(EngineSettings {
        model: spec,
        periods: period,
        non_negative,
        clock: timezone,
        ..EngineSettings::default()
    })
}

fn forecast(
    input: &Path,
    horizon: usize,
    level: f64,
    model: &str,
    period: Option<Vec<usize>>,
    timezone: Option<LocalClock>,
    window: &str,
) -> Result<(), CliError> {
    let window_secs = crate::timefmt::parse_duration(window)
        .map_err(|e| CliError::usage(format!("--window: {e}")))?;
    if !(level > 0.0 && level < 100.0) {
        return Err(CliError::usage(format!(
            "--level: {level} is not a percentage between 0 and 100"
        )));
    }
    let series = read_series(input)?;
    series.check_periods(period.as_deref())?;
    let (step, points) = (series.step, &series.points);
    let mut settings = cli_settings(model, period, timezone, series.non_negative)?;
    settings.horizon_secs = horizon as i64 * step;
    settings.levels = vec![level];
    settings.detect_level = level;
    settings.min_points = 1;
    settings.window_secs = window_secs.max(1);
    let mut engine = SeriesEngine::new(Arc::new(settings), step);
    let out = engine.ingest(points, i64::MAX);
    let f = match (engine.forecast(), out.error) {
        (Some(f), _) => f,
        (None, Some(e)) => return Err(CliError::usage(format!("{}: {e}", input.display()))),
        (None, None) => {
            return Err(CliError::usage(format!(
                "{}: no finite values to forecast from",
                input.display()
            )))
        }
    };
    let band = f
        .band(level)
        .ok_or_else(|| CliError::other("no forecast band"))?;
    match engine.selection() {
        Some(sel) => {
            let slot = f.bands.iter().position(|b| b.level == band.level);
            let factors = match slot
                .and_then(|i| sel.factors.get(i))
                .and_then(Option::as_ref)
            {
                Some(c) => c.to_string(),
                None => "none, too few backtest outcomes to calibrate on".into(),
            };
            eprintln!(
                "model: {}, periods {} (backtest MASE {:.3}; {level}% interval scaled by the backtest, by horizon step: {factors})",
                f.model,
                list(&sel.fit_periods),
                sel.mase,
            )
        }
        None => eprintln!(
            "model: {}, periods {} (history too short for a backtest fold: interval not calibrated)",
            f.model,
            list(&f.periods)
        ),
    }
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    writeln!(w, "timestamp,yhat,yhat_lower,yhat_upper").map_err(writing_output)?;
    for i in 0..horizon.min(band.point.len()) {
        let t = f.origin() + i as i64 * step;
        writeln!(
            w,
            "{},{},{},{}",
            series.format(t),
            band.point[i],
            band.lower[i],
            band.upper[i]
        )
        .map_err(writing_output)?;
    }
    w.flush().map_err(writing_output)
}

/// Events listed by name in `detect`'s summary; the rest are counted.
const SUMMARY_EVENTS: usize = 10;

/// What `detect` found, on stderr: counts, and the events (runs of flagged rows) with their
/// times as the input writes them, peak score and the detector behind it.
fn detect_summary(series: &Series, output: &Path, out: &crate::engine::Ingested) {
    let warm_up = out
        .evaluated
        .iter()
        .filter(|e| e.expected.is_none())
        .count();
    let flagged = out.evaluated.iter().filter(|e| e.is_anomaly).count();
    eprintln!(
        "{}: {} rows, {} times scored ({warm_up} in the warm-up, before a forecast), {flagged} of them flagged, in {} event(s)",
        output.display(),
        series.table.rows.len(),
        out.evaluated.len(),
        out.events.len()
    );
    for e in out.events.iter().take(SUMMARY_EVENTS) {
        let when = if e.start == e.end {
            series.format(e.start)
        } else {
            format!("{} to {}", series.format(e.start), series.format(e.end))
        };
        eprintln!(
            "  {when}: peak score {:.2} ({}){}",
            e.peak,
            e.detector,
            if e.open {
                ", still open at the end"
            } else {
                ""
            }
        );
    }
    if out.events.len() > SUMMARY_EVENTS {
        eprintln!("  … and {} more", out.events.len() - SUMMARY_EVENTS);
    }
}

/// A buffered writer to the file `path` (created or truncated), or to standard output for `-`,
/// as `--input -` reads standard input.
fn create_output(path: &Path) -> Result<Box<dyn Write>, CliError> {
    if path == Path::new("-") {
        return Ok(Box::new(std::io::BufWriter::new(std::io::stdout())));
    }
    let file = std::fs::File::create(path)
        .map_err(|e| CliError::usage(format!("{}: {e}", path.display())))?;
    Ok(Box::new(std::io::BufWriter::new(file)))
}

/// Refuses an `--output` that is the `--input` file (by path, link or hard link): the
/// scores were written over the series they were computed from, and the data was gone.
fn refuse_to_overwrite(input: &Path, output: &Path) -> Result<(), CliError> {
    use std::os::unix::fs::MetadataExt as _;
    if input == Path::new("-") {
        return Ok(());
    }
    let same = match (std::fs::metadata(input), std::fs::metadata(output)) {
        (Ok(i), Ok(o)) => i.dev() == o.dev() && i.ino() == o.ino(),
        _ => false,
    };
    if same {
        return Err(CliError::usage(format!(
            "--output: {} is the input file; write the scores to another file",
            output.display()
        )));
    }
    Ok(())
}

fn detect(
    input: &Path,
    output: &Path,
    model: &str,
    period: Option<Vec<usize>>,
    timezone: Option<LocalClock>,
    detectors: Option<Vec<String>>,
    explain: bool,
) -> Result<(), CliError> {
    refuse_to_overwrite(input, output)?;
    let series = read_series(input)?;
    series.check_periods(period.as_deref())?;
    let Series {
        ref table,
        step,
        ref points,
        non_negative,
        ..
    } = series;
    let mut settings = cli_settings(model, period, timezone, non_negative)?;
    if let Some(names) = detectors {
        if let Some(bad) = names.iter().find(|n| !crate::detect::is_known(n)) {
            return Err(CliError::usage(format!(
                "--detectors: unknown detector `{bad}` (known: {})",
                crate::detect::NAMES.join(", ")
            )));
        }
        settings.detectors = names;
    }
    let mut engine = SeriesEngine::new(Arc::new(settings), step);
    let mut bar = ProgressBar::new("detect", "rows");
    let out =
        engine.ingest_with_progress(points, i64::MIN, &mut |done, total| bar.update(done, total));
    bar.finish();
    let by_ts: std::collections::HashMap<i64, &crate::engine::Evaluated> =
        out.evaluated.iter().map(|e| (e.ts, e)).collect();
    let mut w = create_output(output)?;
    let io = |e: std::io::Error| CliError::other(format!("{}: {e}", output.display()));
    let extra = if explain { ",detector" } else { "" };
    writeln!(
        w,
        "timestamp,value,yhat,yhat_lower,yhat_upper,anomaly_score,is_anomaly{extra}"
    )
    .map_err(io)?;
    let num = |v: f64| {
        if v.is_finite() {
            v.to_string()
        } else {
            String::new()
        }
    };
    for r in &table.rows {
        let ev = by_ts.get(&r.point.ts);
        let (y, l, u) = match ev.and_then(|e| e.expected) {
            Some(e) => (num(e.yhat), num(e.lower), num(e.upper)),
            None => (String::new(), String::new(), String::new()),
        };
        let score = ev.map_or(0.0, |e| e.verdict.score);
        let flag = ev.is_some_and(|e| e.is_anomaly);
        let detector = match (explain, ev) {
            (false, _) => "",
            (true, Some(e)) if e.verdict.score > 0.0 => &format!(",{}", e.verdict.detector),
            (true, _) => ",none",
        };
        writeln!(
            w,
            "{},{},{y},{l},{u},{score},{flag}{detector}",
            csv_raw(&r.raw_ts),
            num(r.point.value)
        )
        .map_err(io)?;
    }
    w.flush().map_err(io)?;
    detect_summary(&series, output, &out);
    Ok(())
}

fn csv_raw(s: &str) -> String {
    if s.contains([',', '"']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn backtest_cmd(
    input: &Path,
    horizon: usize,
    folds: usize,
    period: Option<Vec<usize>>,
    timezone: Option<LocalClock>,
    format: ReportFormat,
) -> Result<(), CliError> {
    let series = read_series(input)?;
    series.check_periods(period.as_deref())?;
    let Series { step, regular, .. } = series;
    // On a local clock the backtest runs on the clock's grid, as the engine's fits do.
    let values =
        match crate::engine::LocalGrid::over(timezone, regular.start, step, regular.values.len()) {
            Some(g) => g.values(&regular.values),
            None => regular.values,
        };
    let prepared = crate::series::prepare(&values, step, period.as_deref())
        .ok_or_else(|| CliError::usage(format!("{}: no finite values", input.display())))?;
    let (y, periods) = (&prepared.y, &prepared.periods);
    let non_negative = y.iter().all(|v| *v >= 0.0);
    let models: Vec<&'static str> = crate::model::NAMES.to_vec();
    // A progress bar on a terminal: a backtest of every model on a long series takes a while.
    let mut bar = ProgressBar::new("backtest", "fits");
    let scores = crate::model::backtest::evaluate(
        prepared.history(),
        horizon,
        crate::model::backtest::Folds::last(folds),
        &models,
        non_negative,
        &mut |done, total| bar.update(done, total),
    );
    bar.finish();
    if scores.is_empty() {
        use crate::model::backtest::{min_train, origins};
        let problem = if origins(y.len(), horizon, folds, min_train(periods)).is_empty() {
            format!(
                "{} points are too few for {folds} folds of {horizon} steps",
                y.len()
            )
        } else {
            "no model could be fitted and scored on any fold (values too large to compute with?)"
                .into()
        };
        return Err(CliError::usage(format!("{}: {problem}", input.display())));
    }
    let used = scores.iter().map(|s| s.folds()).max().unwrap_or(0);
    let candidates = crate::model::auto_candidates_for(y, periods);
    let best = crate::model::backtest::choose(&scores, candidates);
    let auto = best.map_or("naive", |s| s.model);
    let auto_periods = best.map_or(&[][..], |s| s.periods.as_slice());
    match format {
        ReportFormat::Json => {
            let models: Vec<serde_json::Value> = scores
                .iter()
                .map(|s| serde_json::json!({"model": s.model, "periods": s.periods, "mase": s.mase, "fold_mase": s.fold_mase, "rmae": s.rmae, "coverage": s.coverage, "fit_ms": s.fit_ms}))
                .collect();
            let doc = serde_json::json!({"input": input.display().to_string(), "horizon": horizon, "folds": used, "folds_requested": folds, "periods": periods, "unconfirmed_periods": prepared.unconfirmed, "models": models, "auto": auto, "auto_periods": auto_periods, "auto_candidates": candidates});
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        ReportFormat::Table => {
            outln!(
                "{} — {} points, periods {}, {used} folds × {horizon} steps",
                input.display(),
                y.len(),
                list(periods)
            );
            if used < folds {
                outln!(
                    "  ({} of {folds} left out: too little history before them, or a lasting change of level inside them)",
                    folds - used
                );
            }
            if !prepared.unconfirmed.is_empty() {
                outln!(
                    "  (periods {} not confirmed by the data: every model is also run with them)",
                    list(&prepared.unconfirmed)
                );
            }
            outln!(
                "{:<16}{:>14}{:>10}{:>10}{:>10}{:>12}",
                "model",
                "periods",
                "MASE",
                "rMAE",
                "cover95",
                "fit ms"
            );
            for s in &scores {
                outln!(
                    "{:<16}{:>14}{:>10}{:>10}{:>10.3}{:>12.1}",
                    s.model,
                    list(&s.periods),
                    error_cell(s.mase),
                    error_cell(s.rmae),
                    s.coverage,
                    s.fit_ms
                );
            }
            outln!(
                "auto would choose: {auto} (periods {}; it chooses among {})",
                list(auto_periods),
                candidates.join(", ")
            );
            // When the one-standard-error rule overrode the lowest median, say so: the
            // table alone would suggest the other model.
            let lowest = crate::model::backtest::lowest_mase(&scores, candidates);
            if let (Some(low), Some(b)) = (lowest, best) {
                if low.model != b.model {
                    outln!(
                        "  ({} has the lowest median MASE, but its lead over {} is within the noise of the folds)",
                        low.model, b.model
                    );
                }
            }
        }
    }
    Ok(())
}

/// A relative error for the backtest table, in its 10-character column: three decimals, or
/// in scientific notation when that would not fit (a model far off a series the seasonal
/// naive forecast predicts almost exactly scores in the millions), `-` when undefined.
fn error_cell(v: f64) -> String {
    if !v.is_finite() {
        "-".into()
    } else if v.abs() < 1e5 {
        format!("{v:.3}")
    } else {
        format!("{v:.2e}")
    }
}

/// Periods as `24,168` (`-` for none).
fn list(periods: &[usize]) -> String {
    if periods.is_empty() {
        return "-".into();
    }
    crate::series::periods_text(periods)
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
struct ProgressBar {
    label: &'static str,
    /// What is counted ("fits", "rows").
    unit: &'static str,
    enabled: bool,
    drawn: bool,
}

impl ProgressBar {
    fn new(label: &'static str, unit: &'static str) -> Self {
        use std::io::IsTerminal;
        Self {
            label,
            unit,
            enabled: std::io::stderr().is_terminal(),
            drawn: false,
        }
    }

    fn update(&mut self, done: usize, total: usize) {
        if !self.enabled || total == 0 {
            return;
        }
        const WIDTH: usize = 30;
        let filled = (done * WIDTH / total).min(WIDTH);
        eprint!(
            "\r{} [{}{}] {done}/{total} {}",
            self.label,
            "=".repeat(filled),
            " ".repeat(WIDTH - filled),
            self.unit
        );
        self.drawn = true;
    }

    fn finish(&mut self) {
        if self.drawn {
            eprint!("\r{}\r", " ".repeat(60));
        }
    }
}
