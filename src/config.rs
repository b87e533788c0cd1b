//! The TOML configuration: parsing with unknown keys rejected, `${VAR}` expansion, and
//! validation that reports every problem at once. `config/viewcast.toml` is compiled in as
//! the built-in default, so running without a file is the same as running with that one.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::EngineSettings;
use crate::model::ModelSpec;
use crate::series::{valid_period, MAX_PERIOD};
use crate::timefmt::parse_duration;

/// The shipped embedded-default configuration.
pub const DEFAULT_TOML: &str = include_str!("../config/viewcast.toml");

/// A secret whose `Debug` and `Display` never show it.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("**REDACTED**")
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub source: SourceConfig,
    /// The InfluxDB server used by an `influxdb_v1` source and sinks.
    pub influxdb: Option<InfluxConfig>,
    #[serde(default)]
    pub sinks: Vec<SinkConfig>,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub detect: DetectConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub api: ApiConfig,
    #[serde(default)]
    pub metrics: MetricsConfig,
    #[serde(default)]
    pub log: LogConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    Demo(DemoSourceConfig),
    Csv(CsvSourceConfig),
    InfluxdbV1(InfluxSourceConfig),
    InfluxdbV2(InfluxSourceConfig),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxConfig {
    pub url: String,
    /// v1 API: the database (InfluxDB 2.x maps it to a bucket through DBRP mappings).
    #[serde(default)]
    pub database: String,
    /// v2 API: organization and bucket.
    #[serde(default)]
    pub org: String,
    #[serde(default)]
    pub bucket: String,
    #[serde(default)]
    pub retention_policy: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    pub password_file: Option<PathBuf>,
    /// For the v1-compatible APIs of InfluxDB 2.x / 3.x.
    #[serde(default)]
    pub token: Secret,
    pub token_file: Option<PathBuf>,
    #[serde(default = "d_timeout")]
    pub timeout: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxSourceConfig {
    #[serde(default = "d_measurement")]
    pub measurement: String,
    #[serde(default = "d_field")]
    pub field: String,
    #[serde(default = "d_aggregate")]
    pub aggregate: String,
    #[serde(default = "d_tag_columns")]
    pub group_by: Vec<String>,
    #[serde(default = "d_every")]
    pub every: String,
    #[serde(default = "d_lookback")]
    pub lookback: String,
    #[serde(default = "d_late_buckets")]
    pub late_buckets: u32,
    #[serde(default = "d_retire_after")]
    pub retire_after: String,
    #[serde(default)]
    pub filters: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    InfluxdbV1(InfluxSinkConfig),
    InfluxdbV2(InfluxSinkConfig),
}

impl SinkConfig {
    pub fn settings(&self) -> &InfluxSinkConfig {
        match self {
            SinkConfig::InfluxdbV1(s) | SinkConfig::InfluxdbV2(s) => s,
        }
    }

    pub fn is_v2(&self) -> bool {
        matches!(self, SinkConfig::InfluxdbV2(_))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InfluxSinkConfig {
    #[serde(default = "d_forecast_measurement")]
    pub forecast_measurement: String,
    #[serde(default = "d_anomaly_measurement")]
    pub anomaly_measurement: String,
    #[serde(default = "d_sink_level")]
    pub level: f64,
    #[serde(default = "d_batch_lines")]
    pub batch_lines: usize,
    #[serde(default = "d_spool_max_points")]
    pub spool_max_points: usize,
    #[serde(default = "d_on_spool_full")]
    pub on_spool_full: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSourceConfig {
    #[serde(default = "d_seed")]
    pub seed: u64,
    #[serde(default = "d_channels")]
    pub channels: usize,
    #[serde(default = "d_history")]
    pub history: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSourceConfig {
    pub path: PathBuf,
    #[serde(default = "d_value_column")]
    pub value_column: String,
    #[serde(default = "d_tag_columns")]
    pub tag_columns: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    pub interval: String,
    pub refit_every: String,
    pub backfill: String,
    pub backfill_refit_every: String,
    pub fit_threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// A preset from `models/` whose settings fill in what this section leaves out.
    pub preset: Option<String>,
    pub name: String,
    pub periods: Vec<usize>,
    pub horizon: String,
    pub levels: Vec<f64>,
    pub window: String,
    pub min_points: usize,
    pub non_negative: bool,
    pub select_every: String,
    pub backtest_folds: usize,
    pub timezone: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    pub detectors: Vec<String>,
    pub level: f64,
    pub threshold: f64,
    pub confirm: usize,
    pub instant_score: f64,
    pub release: f64,
    pub critical_score: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub retention: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: String,
    pub token: Secret,
    pub token_file: Option<PathBuf>,
    pub max_horizon: String,
    pub auth_all_routes: bool,
    pub cors_origins: Vec<String>,
    pub request_timeout: String,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub max_series: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: String,
}

fn d_seed() -> u64 {
    42
}
fn d_channels() -> usize {
    12
}
fn d_history() -> String {
    "8w".into()
}
fn d_timeout() -> String {
    "30s".into()
}
fn d_measurement() -> String {
    "viewership".into()
}
fn d_field() -> String {
    "viewers".into()
}
fn d_aggregate() -> String {
    "mean".into()
}
fn d_every() -> String {
    "1h".into()
}
fn d_lookback() -> String {
    "112d".into()
}
fn d_late_buckets() -> u32 {
    2
}
fn d_retire_after() -> String {
    "7d".into()
}
fn d_forecast_measurement() -> String {
    "viewcast_forecast".into()
}
fn d_anomaly_measurement() -> String {
    "viewcast_anomaly".into()
}
fn d_sink_level() -> f64 {
    95.0
}
fn d_batch_lines() -> usize {
    5000
}
fn d_spool_max_points() -> usize {
    10_000_000
}
fn d_on_spool_full() -> String {
    "drop_oldest".into()
}
fn d_value_column() -> String {
    "value".into()
}
fn d_tag_columns() -> Vec<String> {
    vec!["channel".into()]
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            interval: "1m".into(),
            refit_every: "1h".into(),
            backfill: "14d".into(),
            backfill_refit_every: "1d".into(),
            fit_threads: 0,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            preset: None,
            name: "auto".into(),
            periods: vec![],
            horizon: "7d".into(),
            levels: vec![80.0, 95.0, 99.0],
            window: "112d".into(),
            min_points: 48,
            non_negative: true,
            select_every: "7d".into(),
            backtest_folds: 4,
            timezone: "UTC".into(),
        }
    }
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            detectors: crate::detect::DEFAULT_NAMES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            level: 99.0,
            threshold: 1.0,
            confirm: 2,
            instant_score: 3.0,
            critical_score: 3.0,
            release: 0.8,
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: "data".into(),
            retention: "30d".into(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            token: Secret::default(),
            token_file: None,
            max_horizon: "35d".into(),
            auth_all_routes: false,
            cors_origins: Vec::new(),
            request_timeout: "30s".into(),
            max_body_bytes: 65_536,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { max_series: 1000 }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: "text".into(),
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.iter().map(|p| format!("{origin}: {p}", origin = .origin)).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub origin: String,
    pub problems: Vec<String>,
}

/// The validated, typed settings the daemon runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub origin: String,
    pub interval_secs: i64,
    pub backfill_secs: i64,
    pub retention_secs: i64,
    pub max_horizon_secs: i64,
    pub request_timeout_secs: i64,
    pub history_secs: i64,
    pub api_token: Secret,
    pub engine: EngineSettings,
    /// The InfluxDB connection, when `[influxdb]` is given.
    pub influx: Option<crate::influx::Conn>,
    /// The same server seen through the v2 API (org, bucket, token).
    pub influx2: Option<crate::influx::v2::Conn2>,
    /// The source query, for an `influxdb_v1` source.
    pub influx_query: Option<crate::source::influxdb::Query>,
    /// Sink layouts, in `sinks` order.
    pub sink_layouts: Vec<crate::sink::influxdb::Layout>,
}

/// Replaces `${VAR}` and `${VAR:-default}` from `lookup`, outside comment lines. Values are
/// escaped for TOML strings, since that is where they land. Unset variables without a
/// default are problems.
pub fn expand_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut problems = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                problems.push(format!("line {}: `${{` without a closing `}}`", n + 1));
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let inner = &after[..end];
            let (name, default) = match inner.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (inner, None),
            };
            let value = lookup(name)
                .filter(|v| !(v.is_empty() && default.is_some()))
                .or(default.map(str::to_string));
            match value {
                Some(v) => out.push_str(&v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")),
                None => problems.push(format!("line {}: environment variable {name} is not set (write ${{{name}:-default}} to give a default)", n + 1)),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

impl Settings {
    /// Loads `path`, or the built-in default when None.
    pub fn load(path: Option<&Path>) -> Result<Settings, ConfigError> {
        let (text, origin) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    origin: p.display().to_string(),
                    problems: vec![e.to_string()],
                })?;
                (text, p.display().to_string())
            }
            None => (
                DEFAULT_TOML.to_string(),
                "built-in default (config/viewcast.toml)".to_string(),
            ),
        };
        let dir = path.and_then(Path::parent);
        Self::parse_in(&text, &origin, dir)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Settings, ConfigError> {
        Self::parse_in(text, origin, None)
    }

    /// Parses a config whose presets are looked up beside `dir` (see [`preset_text`]).
    fn parse_in(text: &str, origin: &str, dir: Option<&Path>) -> Result<Settings, ConfigError> {
        let fail = |problems: Vec<String>| ConfigError {
            origin: origin.to_string(),
            problems,
        };
        let text = expand_env(text, |k| std::env::var(k).ok()).map_err(fail)?;
        // A preset that cannot be applied is one problem; the config's own keys are still
        // checked, so that every problem is reported at once.
        let (text, preset_problem) = match apply_preset(&text, dir) {
            Ok(applied) => (applied, None),
            Err(p) => (text, Some(p)),
        };
        let with_preset = |mut problems: Vec<String>| {
            problems.splice(0..0, preset_problem.clone());
            fail(problems)
        };
        let config: Config = toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            let at = e.span().map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: ")
            });
            with_preset(vec![format!("{}{msg}", at.unwrap_or_default())])
        })?;
        match validate(config, origin) {
            Ok(_) if preset_problem.is_some() => Err(with_preset(Vec::new())),
            Ok(settings) => Ok(settings),
            Err(problems) => Err(with_preset(problems)),
        }
    }
}

/// Interval levels as a config writes them: `80, 95, 99`.
pub fn levels_text(levels: &[f64]) -> String {
    levels
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The presets shipped in `models/`, built in so they work wherever the binary is.
pub const PRESETS: &[(&str, &str)] = &[
    ("auto", include_str!("../models/auto.toml")),
    ("daily-totals", include_str!("../models/daily-totals.toml")),
    (
        "half-hourly-demand",
        include_str!("../models/half-hourly-demand.toml"),
    ),
    (
        "hourly-viewership",
        include_str!("../models/hourly-viewership.toml"),
    ),
];

/// The text of preset `name`: `models/NAME.toml` beside the config file (or one level up,
/// as in this repository's layout) when it exists, else the built-in copy.
pub fn preset_text(name: &str, dir: Option<&Path>) -> Result<String, String> {
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(format!(
            "model.preset: `{name}` is not a preset name (letters, digits, - and _)"
        ));
    }
    if let Some(dir) = dir {
        for base in [dir.join("models"), dir.join("..").join("models")] {
            let file = base.join(format!("{name}.toml"));
            if let Ok(text) = std::fs::read_to_string(&file) {
                return Ok(text);
            }
        }
    }
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.to_string())
        .ok_or_else(|| {
            let known: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
            format!(
                "model.preset: no preset `{name}` (built in: {}; or models/{name}.toml beside the config)",
                known.join(", ")
            )
        })
}

/// Fills the `[model]` and `[detect]` keys the config leaves out from the preset it names.
/// Keys the config sets always win.
fn apply_preset(text: &str, dir: Option<&Path>) -> Result<String, String> {
    // A config that does not parse is reported by the typed parse, with its line.
    let Ok(mut doc) = text.parse::<toml::Table>() else {
        return Ok(text.to_string());
    };
    let Some(name) = doc
        .get("model")
        .and_then(|m| m.get("preset"))
        .map(|p| p.as_str().map(str::to_string))
    else {
        return Ok(text.to_string());
    };
    let name = name.ok_or("model.preset: must be a string")?;
    let preset: toml::Table = preset_text(&name, dir)?
        .parse()
        .map_err(|e: toml::de::Error| format!("preset `{name}`: {}", e.message()))?;
    for (section, values) in preset {
        if section != "model" && section != "detect" {
            return Err(format!(
                "preset `{name}`: unknown table [{section}] (presets hold [model] and [detect])"
            ));
        }
        let toml::Value::Table(values) = values else {
            return Err(format!("preset `{name}`: `{section}` must be a table"));
        };
        let target = doc
            .entry(section.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(target) = target.as_table_mut() else {
            return Err(format!("{section}: must be a table"));
        };
        for (k, v) in values {
            if k == "preset" {
                return Err(format!(
                    "preset `{name}`: a preset cannot name another preset"
                ));
            }
            target.entry(k).or_insert(v);
        }
    }
    toml::to_string(&doc).map_err(|e| format!("preset `{name}`: {e}"))
}

fn validate(config: Config, origin: &str) -> Result<Settings, Vec<String>> {
    let mut problems = Vec::new();
    let mut dur = |key: &str, v: &str, min: i64| -> i64 {
        match parse_duration(v) {
            Ok(d) if d < min => {
                problems.push(format!("{key}: `{v}` is too short (at least {min}s)"));
                min
            }
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{key}: {e}"));
                min.max(1)
            }
        }
    };
    let s = &config.schedule;
    let interval_secs = dur("schedule.interval", &s.interval, 1);
    let refit_every = dur("schedule.refit_every", &s.refit_every, 0);
    let backfill_secs = dur("schedule.backfill", &s.backfill, 0);
    let replay_refit = dur("schedule.backfill_refit_every", &s.backfill_refit_every, 1);
    let m = &config.model;
    let horizon_secs = dur("model.horizon", &m.horizon, 1);
    let window_secs = dur("model.window", &m.window, 1);
    let select_every_secs = dur("model.select_every", &m.select_every, 0);
    let retention_secs = dur("store.retention", &config.store.retention, 3600);
    let max_horizon_secs = dur("api.max_horizon", &config.api.max_horizon, 1);
    let request_timeout_secs = dur("api.request_timeout", &config.api.request_timeout, 1);
    let history_secs = match &config.source {
        SourceConfig::Demo(d) => dur("source.history", &d.history, 3600),
        _ => 0,
    };
    let influx_timeout = config
        .influxdb
        .as_ref()
        .map(|i| dur("influxdb.timeout", &i.timeout, 1));
    let influx_query = match &config.source {
        SourceConfig::InfluxdbV1(q) | SourceConfig::InfluxdbV2(q) => Some((
            dur("source.every", &q.every, 1),
            dur("source.lookback", &q.lookback, 1),
            dur("source.retire_after", &q.retire_after, 1),
        )),
        _ => None,
    };
    let spec = match m.name.parse::<ModelSpec>() {
        Ok(s) => s,
        Err(e) => {
            problems.push(format!("model.name: {e}"));
            ModelSpec::Auto
        }
    };
    if m.levels.is_empty() {
        problems.push("model.levels: give at least one level, e.g. [80, 95]".into());
    }
    for (i, l) in m.levels.iter().enumerate() {
        if !(*l > 0.0 && *l < 100.0) {
            problems.push(format!(
                "model.levels: {l} is not a percentage between 0 and 100"
            ));
        } else if m.levels[..i].contains(l) {
            problems.push(format!("model.levels: {l} is listed twice"));
        }
    }
    // Without folds, auto cannot choose and no interval is calibrated, with nothing to say so.
    if !(1..=100).contains(&m.backtest_folds) {
        problems.push(format!(
            "model.backtest_folds: {} is not between 1 and 100",
            m.backtest_folds
        ));
    }
    if !m
        .levels
        .iter()
        .any(|l| (*l - config.detect.level).abs() < 1e-9)
    {
        problems.push(format!(
            "detect.level: {} is not one of model.levels ({})",
            config.detect.level,
            levels_text(&m.levels)
        ));
    }
    if !m.periods.iter().all(|&p| valid_period(p)) {
        problems.push(format!(
            "model.periods: a period is between 2 and {MAX_PERIOD} steps"
        ));
    }
    if config.detect.confirm == 0 {
        problems.push("detect.confirm: at least 1".into());
    }
    if !(config.detect.release > 0.0 && config.detect.release <= 1.0) {
        problems.push("detect.release: a fraction of the threshold in (0, 1]".into());
    }
    if config.detect.instant_score.is_nan() || config.detect.instant_score < config.detect.threshold
    {
        problems.push("detect.instant_score: must be at least detect.threshold".into());
    }
    if config.detect.critical_score.is_nan()
        || config.detect.critical_score < config.detect.threshold
    {
        problems.push("detect.critical_score: must be at least detect.threshold".into());
    }
    if m.min_points < 3 {
        problems.push("model.min_points: at least 3".into());
    }
    for d in &config.detect.detectors {
        if !crate::detect::is_known(d) {
            problems.push(format!(
                "detect.detectors: unknown detector `{d}` (known: {})",
                crate::detect::NAMES.join(", ")
            ));
        }
    }
    if !(config.detect.threshold > 0.0 && config.detect.threshold.is_finite()) {
        problems.push("detect.threshold: must be a positive number".into());
    }
    if horizon_secs > max_horizon_secs {
        problems.push(format!(
            "model.horizon: {} is beyond api.max_horizon {}",
            m.horizon, config.api.max_horizon
        ));
    }
    match &config.source {
        SourceConfig::Demo(d) if !(1..=12).contains(&d.channels) => problems.push(format!(
            "source.channels: {} is not between 1 and 12",
            d.channels
        )),
        SourceConfig::Csv(c) if !c.path.exists() => {
            problems.push(format!("source.path: {} does not exist", c.path.display()))
        }
        _ => {}
    }
    if config.api.listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(format!(
            "api.listen: `{}` is not an address like 127.0.0.1:8080",
            config.api.listen
        ));
    }
    let mut read_secret = |key: &str, inline: &Secret, file: &Option<PathBuf>| -> Secret {
        match file {
            Some(f) => match std::fs::read_to_string(f) {
                Ok(t) => Secret::new(t.trim()),
                Err(e) => {
                    problems.push(format!("{key}: {}: {e}", f.display()));
                    Secret::default()
                }
            },
            None => inline.clone(),
        }
    };
    let influx = config.influxdb.as_ref().map(|i| crate::influx::Conn {
        url: i.url.clone(),
        database: i.database.clone(),
        retention_policy: i.retention_policy.clone(),
        username: i.username.clone(),
        password: read_secret("influxdb.password_file", &i.password, &i.password_file),
        token: read_secret("influxdb.token_file", &i.token, &i.token_file),
        timeout: std::time::Duration::from_secs(influx_timeout.unwrap_or(30) as u64),
    });
    let mut api_token = config.api.token.clone();
    if let Some(f) = &config.api.token_file {
        match std::fs::read_to_string(f) {
            Ok(t) => api_token = Secret::new(t.trim()),
            Err(e) => problems.push(format!("api.token_file: {}: {e}", f.display())),
        }
    }
    if !["text", "json"].contains(&config.log.format.as_str()) {
        problems.push(format!(
            "log.format: `{}` is not \"text\" or \"json\"",
            config.log.format
        ));
    }
    if config.metrics.max_series == 0 {
        problems.push("metrics.max_series: at least 1".into());
    }
    if let Some(i) = &config.influxdb {
        if !(i.url.starts_with("http://") || i.url.starts_with("https://")) {
            problems.push(format!(
                "influxdb.url: `{}` is not an http:// or https:// URL",
                i.url
            ));
        }
        let v1 = matches!(config.source, SourceConfig::InfluxdbV1(_))
            || config.sinks.iter().any(|s| !s.is_v2());
        let v2 = matches!(config.source, SourceConfig::InfluxdbV2(_))
            || config.sinks.iter().any(SinkConfig::is_v2);
        if v1 && i.database.is_empty() {
            problems.push("influxdb.database: the v1 API needs a database".into());
        }
        if v2 && (i.org.is_empty() || i.bucket.is_empty()) {
            problems.push("influxdb.org / influxdb.bucket: the v2 API needs both".into());
        }
        if v2 && i.token.is_empty() && i.token_file.is_none() {
            problems.push("influxdb.token: the v2 API needs a token (or token_file)".into());
        }
    }
    let needs_influx = matches!(
        config.source,
        SourceConfig::InfluxdbV1(_) | SourceConfig::InfluxdbV2(_)
    ) || !config.sinks.is_empty();
    if needs_influx && config.influxdb.is_none() {
        problems.push("influxdb: an InfluxDB source or sink needs an [influxdb] section".into());
    }
    let influx_query = match (&config.source, influx_query) {
        (
            SourceConfig::InfluxdbV1(q) | SourceConfig::InfluxdbV2(q),
            Some((every, lookback, retire_after)),
        ) => {
            let aggregate = crate::source::influxdb::Aggregate::parse(&q.aggregate);
            if aggregate.is_none() {
                problems.push(format!("source.aggregate: `{}` is not one of mean, sum, count, max, min, distinct_count", q.aggregate));
            }
            if q.group_by.is_empty() {
                problems
                    .push("source.group_by: give at least one tag key, e.g. [\"channel\"]".into());
            }
            if lookback < 2 * every {
                problems.push(
                    "source.lookback: must cover at least two buckets of source.every".into(),
                );
            }
            aggregate.map(|aggregate| crate::source::influxdb::Query {
                measurement: q.measurement.clone(),
                field: q.field.clone(),
                aggregate,
                group_by: q.group_by.clone(),
                filters: q
                    .filters
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                every,
                lookback,
                late_buckets: i64::from(q.late_buckets),
                retire_after,
            })
        }
        _ => None,
    };
    let mut sink_layouts = Vec::new();
    for (i, s) in config.sinks.iter().enumerate() {
        let s = s.settings();
        let on_spool_full = match s.on_spool_full.as_str() {
            "drop_oldest" => crate::store::SpoolFull::DropOldest,
            "drop_newest" => crate::store::SpoolFull::DropNewest,
            other => {
                problems.push(format!(
                    "sinks[{i}].on_spool_full: `{other}` is not drop_oldest or drop_newest"
                ));
                crate::store::SpoolFull::DropOldest
            }
        };
        if !config
            .model
            .levels
            .iter()
            .any(|l| (*l - s.level).abs() < 1e-9)
        {
            problems.push(format!(
                "sinks[{i}].level: {} is not one of model.levels ({})",
                s.level,
                levels_text(&config.model.levels)
            ));
        }
        if s.batch_lines == 0 || s.spool_max_points == 0 {
            problems.push(format!(
                "sinks[{i}]: batch_lines and spool_max_points must be at least 1"
            ));
        }
        sink_layouts.push(crate::sink::influxdb::Layout {
            forecast_measurement: s.forecast_measurement.clone(),
            anomaly_measurement: s.anomaly_measurement.clone(),
            level: s.level,
            batch_lines: s.batch_lines.max(1),
            spool_max_points: s.spool_max_points.max(1),
            on_spool_full,
        });
    }
    let clock = m
        .timezone
        .parse::<crate::timefmt::LocalClock>()
        .map_err(|e| problems.push(format!("model.timezone: {e}")))
        .ok();
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut levels = m.levels.clone();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    let engine = EngineSettings {
        model: spec,
        periods: (!m.periods.is_empty()).then(|| m.periods.clone()),
        horizon_secs,
        levels,
        detect_level: config.detect.level,
        window_secs,
        refit_every_secs: refit_every,
        replay_refit_every_secs: replay_refit,
        min_points: m.min_points,
        non_negative: m.non_negative,
        detectors: config.detect.detectors.clone(),
        threshold: config.detect.threshold,
        select_every_secs,
        backtest_folds: m.backtest_folds,
        events: crate::detect::events::EventRules {
            threshold: config.detect.threshold,
            confirm: config.detect.confirm,
            instant: config.detect.instant_score,
            critical: config.detect.critical_score,
            release: config.detect.release,
        },
        clock,
    };
    Ok(Settings {
        origin: origin.to_string(),
        interval_secs,
        backfill_secs,
        retention_secs,
        max_horizon_secs,
        request_timeout_secs,
        history_secs,
        api_token,
        engine,
        influx2: config.influxdb.as_ref().zip(influx.as_ref()).map(|(i, c)| {
            crate::influx::v2::Conn2 {
                url: i.url.clone(),
                org: i.org.clone(),
                bucket: i.bucket.clone(),
                token: c.token.clone(),
                timeout: c.timeout,
            }
        }),
        influx,
        influx_query,
        sink_layouts,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_default_is_valid_and_matches_serde_defaults() {
        let s = Settings::load(None).unwrap();
        assert!(matches!(s.config.source, SourceConfig::Demo(_)));
        assert_eq!(s.interval_secs, 60);
        assert_eq!(s.engine.horizon_secs, 7 * 86_400);
        // A file with only the source section gets the same settings as the shipped file.
        let minimal = Settings::parse("[source]\ntype = \"demo\"\n", "t").unwrap();
        assert_eq!(format!("{:?}", minimal.engine), format!("{:?}", s.engine));
        assert_eq!(minimal.interval_secs, s.interval_secs);
        assert_eq!(minimal.config.api.listen, s.config.api.listen);
        assert_eq!(minimal.retention_secs, s.retention_secs);
    }

    /// An operator who switches from the embedded default to InfluxDB changes where series come
    /// from and go to, not how they are modelled or judged: the shipped InfluxDB configs once
    /// kept the first detector (`interval` alone) after the default moved on to four.
    #[test]
    fn the_shipped_influxdb_configs_model_and_detect_as_the_default() {
        let default = Settings::load(None).unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
        for name in ["influxdb-v1.toml", "influxdb-v2.toml"] {
            // v2's organisation, bucket and token have no default: give them here.
            let text = std::fs::read_to_string(dir.join(name))
                .unwrap()
                .replace("${INFLUXDB_ORG}", "broadcaster")
                .replace("${INFLUXDB_BUCKET}", "viewership")
                .replace("${INFLUXDB_TOKEN}", "t0ken");
            let s = Settings::parse(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                format!("{:?}", s.engine),
                format!("{:?}", default.engine),
                "{name}"
            );
            assert_eq!(
                format!("{:?}", s.config.detect),
                format!("{:?}", default.config.detect),
                "{name}"
            );
        }
    }

    /// Every file in models/ is built in, loads as a preset, validates, and sets what it says.
    #[test]
    fn every_preset_in_models_loads() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_suffix(".toml").map(str::to_string)
            })
            .collect();
        files.sort();
        let built_in: Vec<String> = PRESETS.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(files, built_in, "models/ and config::PRESETS disagree");
        for name in &files {
            let text = format!("[source]\ntype = \"demo\"\n[model]\npreset = \"{name}\"\n");
            let s = Settings::parse(&text, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            let preset: toml::Table = PRESETS
                .iter()
                .find(|(n, _)| n == name)
                .unwrap()
                .1
                .parse()
                .unwrap();
            let model = preset["model"].as_table().unwrap();
            assert_eq!(
                s.config.model.name,
                model["name"].as_str().unwrap(),
                "{name}"
            );
            if let Some(w) = model.get("window") {
                assert_eq!(s.config.model.window, w.as_str().unwrap(), "{name}");
            }
            if let Some(l) = preset["detect"].get("level") {
                assert_eq!(
                    s.engine.detect_level,
                    l.as_integer().unwrap() as f64,
                    "{name}"
                );
            }
            // And through a file beside the config, as an operator's own preset would be.
            let tmp = tempfile::tempdir().unwrap();
            std::fs::create_dir(tmp.path().join("models")).unwrap();
            let own = PRESETS.iter().find(|(n, _)| n == name).unwrap().1;
            std::fs::write(
                tmp.path().join("models/mine.toml"),
                own.replace("horizon = \"7d\"", "horizon = \"2d\""),
            )
            .unwrap();
            let cfg = tmp.path().join("viewcast.toml");
            std::fs::write(
                &cfg,
                "[source]\ntype = \"demo\"\n[model]\npreset = \"mine\"\n",
            )
            .unwrap();
            let s = Settings::load(Some(&cfg)).unwrap_or_else(|e| panic!("{name}: {e}"));
            if own.contains("horizon = \"7d\"") {
                assert_eq!(s.engine.horizon_secs, 2 * 86_400, "{name}");
            }
        }
    }

    #[test]
    fn config_keys_win_over_the_preset_and_bad_presets_are_clear_errors() {
        let s = Settings::parse(
            "[source]\ntype = \"demo\"\n[model]\npreset = \"daily-totals\"\nname = \"seasonal_naive\"\n[detect]\nlevel = 80\n",
            "t",
        )
        .unwrap();
        assert_eq!(s.config.model.name, "seasonal_naive");
        assert_eq!(
            s.config.model.window, "365d",
            "the rest comes from the preset"
        );
        assert_eq!(s.engine.detect_level, 80.0);
        for (text, expect) in [
            ("[model]\npreset = \"nope\"\n", "no preset `nope`"),
            ("[model]\npreset = \"../etc/passwd\"\n", "not a preset name"),
            ("[model]\npreset = 3\n", "must be a string"),
        ] {
            let e = Settings::parse(text, "t").unwrap_err().to_string();
            assert!(e.contains(expect), "{text}: {e}");
        }
    }

    #[test]
    fn reports_every_problem_at_once() {
        let text = "[source]\ntype = \"demo\"\nchannels = 40\n[schedule]\ninterval = \"5 parsecs\"\n[model]\nname = \"prophet\"\nlevels = [95, 99, 150, 99]\nbacktest_folds = 0\n[api]\nlisten = \"nowhere\"\n";
        let e = Settings::parse(text, "bad.toml").unwrap_err();
        assert_eq!(e.problems.len(), 7, "{:?}", e.problems);
        let all = e.to_string();
        for needle in [
            "source.channels",
            "schedule.interval",
            "model.name",
            "model.levels: 150 is not a percentage",
            "model.levels: 99 is listed twice",
            "model.backtest_folds: 0 is not between 1 and 100",
            "api.listen",
        ] {
            assert!(all.contains(needle), "{needle} missing from {all}");
        }
        assert!(all.starts_with("bad.toml: "));
    }

    /// A preset that cannot be applied does not hide the config's own problems.
    #[test]
    fn a_bad_preset_is_reported_with_the_other_problems() {
        let text = "[source]\ntype = \"demo\"\n[model]\npreset = \"nope\"\nname = \"prophet\"\n[detect]\nlevel = 90\n";
        let e = Settings::parse(text, "bad.toml").unwrap_err();
        assert_eq!(e.problems.len(), 3, "{:?}", e.problems);
        assert!(
            e.problems[0].contains("no preset `nope`"),
            "{:?}",
            e.problems
        );
        assert!(e.problems[1].contains("model.name"), "{:?}", e.problems);
        assert!(
            e.problems[2].contains("detect.level: 90 is not one of model.levels (80, 95, 99)"),
            "{:?}",
            e.problems
        );
        // Alone, it is still an error.
        let e = Settings::parse(
            "[source]\ntype = \"demo\"\n[model]\npreset = \"nope\"\n",
            "t",
        )
        .unwrap_err();
        assert_eq!(e.problems.len(), 1, "{:?}", e.problems);
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let e = Settings::parse("[source]\ntype = \"demo\"\n[model]\nhorizn = \"7d\"\n", "t")
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("horizn") && msg.contains("line 4"), "{msg}");
        let e = Settings::parse("[source]\ntype = \"demo\"\nsed = 1\n", "t").unwrap_err();
        assert!(e.to_string().contains("sed"), "{e}");
    }

    #[test]
    fn env_expansion_with_defaults_and_escaping() {
        let env = |k: &str| match k {
            "SET" => Some("a\"b".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(expand_env("x = \"${SET}\"", env).unwrap(), "x = \"a\\\"b\"");
        assert_eq!(
            expand_env("x = \"${UNSET:-dflt}\"", env).unwrap(),
            "x = \"dflt\""
        );
        assert_eq!(expand_env("x = \"${EMPTY:-d}\"", env).unwrap(), "x = \"d\"");
        assert_eq!(expand_env("# ${UNSET}\n", env).unwrap(), "# ${UNSET}\n");
        let e = expand_env("a = \"${UNSET}\"\nb = \"${ALSO}\"", env).unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(e[1].contains("line 2") && e[1].contains("ALSO"));
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::parse(
            "[source]\ntype = \"demo\"\n[api]\ntoken = \"hunter2\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(s.api_token.expose(), "hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
