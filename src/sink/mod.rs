//! Where results go: the records one cycle produces and the `Sink` trait that writes them
//! (the embedded store always; InfluxDB when configured).

pub mod influxdb;

use async_trait::async_trait;

use crate::engine::ForecastSet;
use crate::series::SeriesKey;

/// How a series stands after a cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Too little history to model yet.
    WarmingUp,
    /// The last fit or detection failed; the reason is recorded.
    Error,
    /// The source has had no data for it for `retire_after`; it is no longer modelled.
    Retired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::WarmingUp => "warming_up",
            Status::Error => "error",
            Status::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Status {
        match s {
            "ok" => Status::Ok,
            "warming_up" => Status::WarmingUp,
            "retired" => Status::Retired,
            _ => Status::Error,
        }
    }

    pub const ALL: [Status; 4] = [
        Status::Ok,
        Status::WarmingUp,
        Status::Error,
        Status::Retired,
    ];
}

/// One evaluated observation, as written to `viewcast_anomaly`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRecord {
    pub time: i64,
    pub value: f64,
    pub yhat: f64,
    pub yhat_lower: f64,
    pub yhat_upper: f64,
    pub score: f64,
    pub is_anomaly: bool,
    pub detector: String,
}

impl AnomalyRecord {
    /// Whether every number is finite: what a store can hold (SQLite keeps NaN as NULL,
    /// InfluxDB refuses it in line protocol and with it the whole batch).
    pub fn is_finite(&self) -> bool {
        [
            self.value,
            self.yhat,
            self.yhat_lower,
            self.yhat_upper,
            self.score,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// The state of a series after a cycle.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesState {
    pub status: Status,
    pub reason: Option<String>,
    pub model: Option<String>,
    pub step: i64,
    pub last_point: Option<i64>,
    pub last_fit: Option<i64>,
    pub scored_through: Option<i64>,
    /// Backtest MASE of the model in use, once a backtest has run.
    pub backtest_mase: Option<f64>,
}

impl SeriesState {
    /// A state with `status` and nothing known yet.
    pub fn new(status: Status, step: i64) -> Self {
        Self {
            status,
            reason: None,
            model: None,
            step,
            last_point: None,
            last_fit: None,
            scored_through: None,
            backtest_mase: None,
        }
    }
}

/// Everything one cycle produced for one series.
#[derive(Debug, Clone)]
pub struct SeriesOutput {
    pub key: SeriesKey,
    pub state: SeriesState,
    /// A new forecast, when the series was refitted this cycle.
    pub forecast: Option<ForecastSet>,
    pub anomalies: Vec<AnomalyRecord>,
    /// Anomaly events opened, extended or closed this cycle.
    pub events: Vec<crate::detect::events::Event>,
}

/// Everything one cycle produced.
#[derive(Debug, Clone, Default)]
pub struct CycleOutput {
    /// Wall-clock time of the cycle (Unix seconds): the forecasts' `generated_at`.
    pub generated_at: i64,
    pub series: Vec<SeriesOutput>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing to {sink}: {reason}")]
    Write { sink: String, reason: String },
}

#[async_trait]
pub trait Sink: Send + Sync + std::fmt::Debug {
    fn name(&self) -> &str;
    async fn write(&self, output: &CycleOutput) -> Result<(), SinkError>;
}
