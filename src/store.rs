//! The embedded SQLite store: per-series state, the latest forecast of each series and the
//! history of evaluated observations. WAL mode, one transaction per cycle; it survives
//! restarts, so the API can serve stored forecasts before the first new cycle ends.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension};

use crate::engine::ForecastSet;
use crate::model::Prediction;
use crate::series::SeriesKey;
use crate::sink::{AnomalyRecord, CycleOutput, SeriesState, Sink, SinkError, Status};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("embedded store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("embedded store {path}: cannot create folder: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("embedded store: a blocking task failed: {0}")]
    Join(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    key TEXT PRIMARY KEY, tags TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, model TEXT,
    step INTEGER NOT NULL, last_point INTEGER, last_fit INTEGER, scored_through INTEGER,
    generated_at INTEGER, fit_through INTEGER, backtest_mase REAL, periods TEXT);
CREATE TABLE IF NOT EXISTS forecast (
    key TEXT NOT NULL, level REAL NOT NULL, time INTEGER NOT NULL,
    yhat REAL NOT NULL, lower REAL NOT NULL, upper REAL NOT NULL,
    PRIMARY KEY (key, level, time)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anomaly (
    key TEXT NOT NULL, time INTEGER NOT NULL, value REAL NOT NULL, yhat REAL NOT NULL,
    lower REAL NOT NULL, upper REAL NOT NULL, score REAL NOT NULL, is_anomaly INTEGER NOT NULL,
    detector TEXT NOT NULL, PRIMARY KEY (key, time)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS anomaly_time ON anomaly (time);
CREATE TABLE IF NOT EXISTS event (
    key TEXT NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL, peak REAL NOT NULL,
    detector TEXT NOT NULL, open INTEGER NOT NULL, PRIMARY KEY (key, start)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT, sink TEXT NOT NULL, points INTEGER NOT NULL,
    lines TEXT NOT NULL, created INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS spool_sink ON spool (sink, id);
";

/// A stored series row.
#[derive(Debug, Clone)]
pub struct SeriesRow {
    pub key: SeriesKey,
    pub state: SeriesState,
    pub generated_at: Option<i64>,
    /// The seasonal periods of the latest forecast's model (empty before one, or for none).
    pub periods: Vec<usize>,
}

/// Stored periods back (what does not parse, e.g. from a hand-edited store, is left out).
fn parse_periods(text: Option<&str>) -> Vec<usize> {
    text.unwrap_or_default()
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// A stored forecast with when it was made.
#[derive(Debug, Clone)]
pub struct StoredForecast {
    pub generated_at: i64,
    pub set: ForecastSet,
}

/// A stored anomaly event.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub key: SeriesKey,
    pub start: i64,
    pub end: i64,
    pub peak: f64,
    pub detector: String,
    pub open: bool,
}

/// A stored evaluated observation.
#[derive(Debug, Clone)]
pub struct StoredAnomaly {
    pub key: SeriesKey,
    pub record: AnomalyRecord,
}

#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) `dir/viewcast.db`.
    pub fn open(dir: &Path) -> Result<Arc<Store>> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("viewcast.db");
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let writer = Connection::open(&path).map_err(err)?;
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
            )
            .and_then(|_| writer.execute_batch(SCHEMA))
            .map_err(err)?;
        // Stores made before `backtest_mase` existed gain the column (an error here only means
        // it is already there).
        let _ = writer.execute("ALTER TABLE series ADD COLUMN backtest_mase REAL", []);
        let _ = writer.execute("ALTER TABLE series ADD COLUMN periods TEXT", []);
        let reader = Connection::open(&path).map_err(err)?;
        reader
            .execute_batch("PRAGMA busy_timeout=5000;")
            .map_err(err)?;
        Ok(Arc::new(Store {
            path: path.clone(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        }))
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn with_writer<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut c = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut c).map_err(|e| self.err(e))
    }

    fn with_reader<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let c = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        f(&c).map_err(|e| self.err(e))
    }

    /// A cheap query that proves the store answers.
    pub fn ping(&self) -> Result<()> {
        self.with_reader(|c| c.query_row("SELECT 1", [], |_| Ok(())))
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.with_reader(|c| {
            c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
        })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.with_writer(|c| {
            c.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                [key, value],
            )
            .map(|_| ())
        })
    }

    /// Writes one cycle's output in a single transaction.
    pub fn write_cycle(&self, out: &CycleOutput) -> Result<()> {
        self.with_writer(|c| {
            let tx = c.transaction()?;
            {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO series (key, tags, status, reason, model, step, last_point, last_fit, scored_through, backtest_mase)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT(key) DO UPDATE SET tags=excluded.tags, status=excluded.status,
                       reason=excluded.reason, model=COALESCE(excluded.model, series.model), step=excluded.step,
                       last_point=excluded.last_point, last_fit=excluded.last_fit, scored_through=excluded.scored_through,
                       backtest_mase=COALESCE(excluded.backtest_mase, series.backtest_mase)",
                )?;
                let mut set_gen = tx.prepare_cached("UPDATE series SET generated_at = ?2, fit_through = ?3, model = ?4, periods = ?5 WHERE key = ?1")?;
                let mut clear = tx.prepare_cached("DELETE FROM forecast WHERE key = ?1")?;
                let mut ins_f = tx.prepare_cached("INSERT INTO forecast (key, level, time, yhat, lower, upper) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?;
                let mut ins_a = tx.prepare_cached(
                    "INSERT OR REPLACE INTO anomaly (key, time, value, yhat, lower, upper, score, is_anomaly, detector)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                )?;
                let mut ins_e = tx.prepare_cached(
                    "INSERT OR REPLACE INTO event (key, start, end, peak, detector, open) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for s in &out.series {
                    let key = s.key.to_string();
                    let tags = serde_json::to_string(s.key.tags()).unwrap_or_else(|_| "{}".into());
                    let st = &s.state;
                    upsert.execute(params![key, tags, st.status.as_str(), st.reason, st.model, st.step, st.last_point, st.last_fit, st.scored_through, st.backtest_mase])?;
                    if let Some(f) = &s.forecast {
                        set_gen.execute(params![key, out.generated_at, f.through, f.model, crate::series::periods_text(&f.periods)])?;
                        clear.execute([&key])?;
                        for b in &f.bands {
                            for i in 0..b.point.len() {
                                let t = f.origin() + i as i64 * f.step;
                                // NaN would be NULL here and fail the cycle's whole write.
                                if [b.point[i], b.lower[i], b.upper[i]].iter().all(|v| v.is_finite()) {
                                    ins_f.execute(params![key, b.level, t, b.point[i], b.lower[i], b.upper[i]])?;
                                }
                            }
                        }
                    }
                    for e in &s.events {
                        ins_e.execute(params![key, e.start, e.end, e.peak, e.detector, e.open])?;
                    }
                    for a in s.anomalies.iter().filter(|a| a.is_finite()) {
                        ins_a.execute(params![key, a.time, a.value, a.yhat, a.yhat_lower, a.yhat_upper, a.score, a.is_anomaly, a.detector])?;
                    }
                }
            }
            tx.commit()
        })
    }

    /// Events overlapping `[since, until]` with a peak of at least `min_score`, oldest first.
    pub fn events(
        &self,
        since: i64,
        until: i64,
        min_score: f64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>> {
        self.with_reader(|c| {
            let mut st = c.prepare_cached(
                "SELECT s.tags, e.start, e.end, e.peak, e.detector, e.open FROM event e JOIN series s ON s.key = e.key
                 WHERE e.end >= ?1 AND e.start <= ?2 AND e.peak >= ?3 ORDER BY e.start, e.key LIMIT ?4",
            )?;
            let rows = st.query_map(params![since, until, min_score, limit as i64], |r| {
                let tags: String = r.get(0)?;
                Ok(StoredEvent {
                    key: SeriesKey(serde_json::from_str(&tags).unwrap_or_default()),
                    start: r.get(1)?,
                    end: r.get(2)?,
                    peak: r.get(3)?,
                    detector: r.get(4)?,
                    open: r.get(5)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Deletes evaluated observations older than `before`.
    pub fn prune(&self, before: i64) -> Result<usize> {
        self.with_writer(|c| {
            c.execute("DELETE FROM event WHERE end < ?1", [before])?;
            c.execute("DELETE FROM anomaly WHERE time < ?1", [before])
        })
    }

    pub fn series(&self) -> Result<Vec<SeriesRow>> {
        self.with_reader(|c| {
            let mut st = c.prepare_cached(
                "SELECT tags, status, reason, model, step, last_point, last_fit, scored_through, generated_at, backtest_mase, periods
                 FROM series ORDER BY key",
            )?;
            let rows = st.query_map([], |r| {
                let tags: String = r.get(0)?;
                let status: String = r.get(1)?;
                Ok(SeriesRow {
                    key: SeriesKey(serde_json::from_str(&tags).unwrap_or_default()),
                    state: SeriesState {
                        status: Status::parse(&status),
                        reason: r.get(2)?,
                        model: r.get(3)?,
                        step: r.get(4)?,
                        last_point: r.get(5)?,
                        last_fit: r.get(6)?,
                        scored_through: r.get(7)?,
                        backtest_mase: r.get(9)?,
                    },
                    generated_at: r.get(8)?,
                    periods: parse_periods(r.get::<_, Option<String>>(10)?.as_deref()),
                })
            })?;
            rows.collect()
        })
    }

    /// The latest forecast of a series, all levels.
    pub fn forecast(&self, key: &SeriesKey) -> Result<Option<StoredForecast>> {
        let k = key.to_string();
        self.with_reader(|c| {
            let head: Option<(i64, i64, String, i64, Option<String>)> = c
                .query_row(
                    "SELECT generated_at, fit_through, model, step, periods FROM series WHERE key = ?1 AND generated_at IS NOT NULL",
                    [&k],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, Option<String>>(4)?)),
                )
                .optional()?;
            let Some((generated_at, through, model, step, periods)) = head else { return Ok(None) };
            let periods = parse_periods(periods.as_deref());
            let mut st = c.prepare_cached("SELECT level, yhat, lower, upper FROM forecast WHERE key = ?1 ORDER BY level, time")?;
            let mut bands: Vec<Prediction> = Vec::new();
            let mut rows = st.query([&k])?;
            while let Some(r) = rows.next()? {
                let level: f64 = r.get(0)?;
                if bands.last().is_none_or(|b| b.level != level) {
                    bands.push(Prediction { level, point: vec![], lower: vec![], upper: vec![] });
                }
                if let Some(b) = bands.last_mut() {
                    b.point.push(r.get(1)?);
                    b.lower.push(r.get(2)?);
                    b.upper.push(r.get(3)?);
                }
            }
            Ok(Some(StoredForecast { generated_at, set: ForecastSet { model, periods, through, step, bands, calibrated: true } }))
        })
    }

    /// Per series key (as `SeriesKey::to_string`), how many observations since `since` fell
    /// inside the stored interval, of how many were evaluated.
    pub fn coverage(&self, since: i64) -> Result<HashMap<String, (u64, u64)>> {
        self.with_reader(|c| {
            let mut st = c.prepare_cached(
                "SELECT key, SUM(value >= lower AND value <= upper), COUNT(*)
                 FROM anomaly WHERE time >= ?1 GROUP BY key",
            )?;
            let rows = st.query_map(params![since], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    (r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64),
                ))
            })?;
            rows.collect()
        })
    }

    /// Evaluated observations with `since ≤ time ≤ until` and `score ≥ min_score`, oldest first.
    pub fn anomalies(
        &self,
        since: i64,
        until: i64,
        min_score: f64,
        limit: usize,
    ) -> Result<Vec<StoredAnomaly>> {
        self.with_reader(|c| {
            let mut st = c.prepare_cached(
                "SELECT s.tags, a.time, a.value, a.yhat, a.lower, a.upper, a.score, a.is_anomaly, a.detector
                 FROM anomaly a JOIN series s ON s.key = a.key
                 WHERE a.time >= ?1 AND a.time <= ?2 AND a.score >= ?3 ORDER BY a.time, a.key LIMIT ?4",
            )?;
            let rows = st.query_map(params![since, until, min_score, limit as i64], |r| {
                let tags: String = r.get(0)?;
                Ok(StoredAnomaly {
                    key: SeriesKey(serde_json::from_str(&tags).unwrap_or_default()),
                    record: AnomalyRecord {
                        time: r.get(1)?,
                        value: r.get(2)?,
                        yhat: r.get(3)?,
                        yhat_lower: r.get(4)?,
                        yhat_upper: r.get(5)?,
                        score: r.get(6)?,
                        is_anomaly: r.get(7)?,
                        detector: r.get(8)?,
                    },
                })
            })?;
            rows.collect()
        })
    }
}

/// What to do when a spool is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolFull {
    /// Delete the oldest batches to make room (recent results matter most).
    DropOldest,
    /// Keep what is spooled and discard the new batches.
    DropNewest,
}

impl Store {
    /// Appends batches of line protocol (with their point counts) to a sink's spool in one
    /// transaction, keeping the spool at or under `max_points`. Returns the points dropped.
    pub fn spool_append(
        &self,
        sink: &str,
        batches: &[(String, usize)],
        max_points: usize,
        policy: SpoolFull,
        now: i64,
    ) -> Result<usize> {
        self.with_writer(|c| {
            let tx = c.transaction()?;
            let mut dropped = 0usize;
            {
                let pending: i64 = tx.query_row(
                    "SELECT COALESCE(SUM(points), 0) FROM spool WHERE sink = ?1",
                    [sink],
                    |r| r.get(0),
                )?;
                let mut pending = pending as usize;
                let mut ins = tx.prepare_cached(
                    "INSERT INTO spool (sink, points, lines, created) VALUES (?1, ?2, ?3, ?4)",
                )?;
                let mut oldest = tx.prepare_cached(
                    "SELECT id, points FROM spool WHERE sink = ?1 ORDER BY id LIMIT 1",
                )?;
                let mut del = tx.prepare_cached("DELETE FROM spool WHERE id = ?1")?;
                for (lines, points) in batches {
                    if pending + points > max_points {
                        match policy {
                            SpoolFull::DropNewest => {
                                dropped += points;
                                continue;
                            }
                            SpoolFull::DropOldest => {
                                while pending + points > max_points {
                                    let Some((id, n)) = oldest
                                        .query_row([sink], |r| {
                                            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
                                        })
                                        .optional()?
                                    else {
                                        break;
                                    };
                                    del.execute([id])?;
                                    pending -= n as usize;
                                    dropped += n as usize;
                                }
                                if pending + points > max_points {
                                    dropped += points;
                                    continue;
                                }
                            }
                        }
                    }
                    ins.execute(params![sink, *points as i64, lines, now])?;
                    pending += points;
                }
            }
            tx.commit()?;
            Ok(dropped)
        })
    }

    /// The oldest spooled batch of a sink: (id, line protocol, points).
    pub fn spool_peek(&self, sink: &str) -> Result<Option<(i64, String, usize)>> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT id, lines, points FROM spool WHERE sink = ?1 ORDER BY id LIMIT 1",
                [sink],
                |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as usize)),
            )
            .optional()
        })
    }

    pub fn spool_delete(&self, id: i64) -> Result<()> {
        self.with_writer(|c| {
            c.execute("DELETE FROM spool WHERE id = ?1", [id])
                .map(|_| ())
        })
    }

    /// Points waiting in a sink's spool.
    pub fn spool_pending(&self, sink: &str) -> Result<usize> {
        self.with_reader(|c| {
            c.query_row(
                "SELECT COALESCE(SUM(points), 0) FROM spool WHERE sink = ?1",
                [sink],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as usize)
        })
    }
}

/// The embedded store as a sink; writes run on the blocking pool.
#[derive(Debug, Clone)]
pub struct StoreSink(pub Arc<Store>);

#[async_trait]
impl Sink for StoreSink {
    fn name(&self) -> &str {
        "embedded"
    }

    async fn write(&self, output: &CycleOutput) -> Result<(), SinkError> {
        let store = self.0.clone();
        let output = output.clone();
        tokio::task::spawn_blocking(move || store.write_cycle(&output))
            .await
            .map_err(|e| StoreError::Join(e.to_string()))
            .and_then(|r| r)
            .map_err(|e| SinkError::Write {
                sink: "embedded".into(),
                reason: e.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::SeriesOutput;

    fn output() -> CycleOutput {
        let key = SeriesKey::new([("channel", "news")]);
        let band = |level: f64| Prediction {
            level,
            point: vec![10.0, 11.0],
            lower: vec![8.0, 9.0],
            upper: vec![12.0, 13.0],
        };
        CycleOutput {
            generated_at: 1000,
            series: vec![SeriesOutput {
                key,
                state: SeriesState {
                    status: Status::Ok,
                    reason: None,
                    model: Some("mstl_ets".into()),
                    step: 3600,
                    last_point: Some(7200),
                    last_fit: Some(1000),
                    scored_through: Some(7200),
                    backtest_mase: Some(0.8),
                },
                forecast: Some(ForecastSet {
                    model: "mstl_ets".into(),
                    periods: vec![24, 168],
                    through: 7200,
                    step: 3600,
                    bands: vec![band(80.0), band(95.0)],
                    calibrated: true,
                }),
                anomalies: vec![AnomalyRecord {
                    time: 7200,
                    value: 0.0,
                    yhat: 10.0,
                    yhat_lower: 8.0,
                    yhat_upper: 12.0,
                    score: 5.0,
                    is_anomaly: true,
                    detector: "interval".into(),
                }],
                events: vec![crate::detect::events::Event {
                    start: 3600,
                    end: 7200,
                    peak: 5.0,
                    detector: "interval",
                    open: true,
                }],
            }],
        }
    }

    #[test]
    fn round_trips_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.write_cycle(&output()).unwrap();
            s.set_meta("demo_anchor", "123").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.meta("demo_anchor").unwrap().as_deref(), Some("123"));
        let rows = s.series().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].state.model.as_deref(), Some("mstl_ets"));
        assert_eq!(rows[0].state.backtest_mase, Some(0.8));
        assert_eq!(rows[0].periods, vec![24, 168]);
        let f = s.forecast(&rows[0].key).unwrap().unwrap();
        assert_eq!(f.generated_at, 1000);
        assert_eq!(f.set, output().series[0].forecast.clone().unwrap());
        let a = s.anomalies(0, i64::MAX, 1.0, 100).unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].record, output().series[0].anomalies[0]);
        assert!(s.anomalies(0, i64::MAX, 6.0, 100).unwrap().is_empty());
        let ev = s.events(7000, i64::MAX, 1.0, 100).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(
            (ev[0].start, ev[0].end, ev[0].peak, ev[0].open),
            (3600, 7200, 5.0, true)
        );
        assert!(s.events(7201, i64::MAX, 1.0, 100).unwrap().is_empty());
        assert_eq!(s.prune(10_000).unwrap(), 1);
    }

    #[test]
    fn spool_keeps_order_survives_reopen_and_honours_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let b = |n: usize| (format!("batch{n}"), 10);
            assert_eq!(
                s.spool_append("influx", &[b(1), b(2), b(3)], 25, SpoolFull::DropOldest, 0)
                    .unwrap(),
                10
            );
            assert_eq!(s.spool_pending("influx").unwrap(), 20);
            assert_eq!(
                s.spool_append("influx", &[b(4)], 25, SpoolFull::DropNewest, 0)
                    .unwrap(),
                10
            );
        }
        let s = Store::open(dir.path()).unwrap();
        let (id, lines, n) = s.spool_peek("influx").unwrap().unwrap();
        assert_eq!((lines.as_str(), n), ("batch2", 10));
        s.spool_delete(id).unwrap();
        assert_eq!(s.spool_peek("influx").unwrap().unwrap().1, "batch3");
        assert!(s.spool_peek("other").unwrap().is_none());
    }

    #[test]
    fn a_newer_forecast_replaces_the_older() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.write_cycle(&output()).unwrap();
        let mut o = output();
        o.generated_at = 2000;
        if let Some(f) = o.series[0].forecast.as_mut() {
            f.through = 10_800;
            f.bands.truncate(1);
        }
        s.write_cycle(&o).unwrap();
        let f = s.forecast(&o.series[0].key).unwrap().unwrap();
        assert_eq!(f.generated_at, 2000);
        assert_eq!(f.set.bands.len(), 1);
        assert_eq!(f.set.through, 10_800);
    }
}
