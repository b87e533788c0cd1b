//! Where observations come from. A source fans one definition out over every series it finds
//! and, after the first full read, returns only what is new since the previous poll.

mod csv;
pub mod demo;
pub mod influxdb;

use async_trait::async_trait;

pub use self::csv::CsvSource;
pub use demo::DemoSource;

use crate::series::{Point, SeriesKey};

/// New complete observations of one series.
#[derive(Debug, Clone)]
pub struct SeriesUpdate {
    pub key: SeriesKey,
    /// The series' time step in seconds.
    pub step: i64,
    pub points: Vec<Point>,
}

/// What one poll found.
#[derive(Debug, Clone, Default)]
pub struct Poll {
    pub updates: Vec<SeriesUpdate>,
    /// Series that have had no data for the source's retirement period.
    pub retired: Vec<SeriesKey>,
}

impl From<Vec<SeriesUpdate>> for Poll {
    fn from(updates: Vec<SeriesUpdate>) -> Self {
        Poll {
            updates,
            retired: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("reading {what}: {reason}")]
    Read { what: String, reason: String },
    #[error("source unreachable: {0}")]
    Unreachable(String),
    #[error("query rejected: {0}")]
    Rejected(String),
}

#[async_trait]
pub trait Source: Send + Sync + std::fmt::Debug {
    /// A short description for logs and `/readyz`.
    fn describe(&self) -> String;
    /// Tag keys that identify the series (the labels of per-series metrics).
    fn tag_keys(&self) -> Vec<String>;
    /// Complete observations newer than those returned before (the full history the first
    /// time). `now` is Unix seconds; a bucket still filling at `now` is never returned.
    async fn poll(&self, now: i64) -> Result<Poll, SourceError>;
}
