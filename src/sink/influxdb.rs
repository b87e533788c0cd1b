//! InfluxDB as a sink: forecasts and evaluated observations as line protocol
//! (`viewcast_forecast`, `viewcast_anomaly`), through a durable spool in the embedded store.
//!
//! `write` only appends a cycle's batches to the spool (so a slow or absent InfluxDB never
//! stalls a cycle); a drainer task sends the oldest batch first and removes it only once
//! InfluxDB acknowledged it. Unreachable, 5xx or timeout: exponential backoff with jitter,
//! the problem shown in `/readyz`. 4xx (bad data): logged, counted and dropped, since sending
//! it again would fail again. Overwrites make a retried write idempotent.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{CycleOutput, Sink, SinkError};
use crate::influx::{escape, Backend};
use crate::metrics::Metrics;
use crate::scheduler::Health;
use crate::store::{SpoolFull, Store};

/// How results are laid out in InfluxDB and how the spool behaves.
#[derive(Debug, Clone)]
pub struct Layout {
    pub forecast_measurement: String,
    pub anomaly_measurement: String,
    /// The interval level written as `yhat_lower` / `yhat_upper` of forecasts.
    pub level: f64,
    pub batch_lines: usize,
    pub spool_max_points: usize,
    pub on_spool_full: SpoolFull,
}

#[derive(Debug)]
pub struct InfluxSink {
    name: String,
    client: Backend,
    store: Arc<Store>,
    layout: Layout,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    wake: Notify,
    backoff: Mutex<Duration>,
}

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Formats a float so InfluxDB reads it as a float (never as an integer).
fn float(v: f64) -> String {
    format!("{v:?}")
}

/// Renders one cycle's results as line protocol, in batches of at most `batch_lines`.
pub fn render(out: &CycleOutput, layout: &Layout) -> Vec<(String, usize)> {
    let mut batches = Vec::new();
    let mut cur = String::new();
    let mut n = 0usize;
    let mut push = |line: String, cur: &mut String, n: &mut usize| {
        cur.push_str(&line);
        cur.push('\n');
        *n += 1;
        if *n >= layout.batch_lines {
            batches.push((std::mem::take(cur), *n));
            *n = 0;
        }
    };
    let fm = escape::measurement(&layout.forecast_measurement);
    let am = escape::measurement(&layout.anomaly_measurement);
    for s in &out.series {
        let tags = |extra: (&str, &str)| {
            let mut all: Vec<(&str, &str)> = s
                .key
                .tags()
                .iter()
                .filter(|(k, _)| k.as_str() != extra.0)
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            all.push(extra);
            all.sort();
            let mut t = String::new();
            for (k, v) in all {
                let _ = write!(t, ",{}={}", escape::tag(k), escape::tag(v));
            }
            t
        };
        if let Some(f) = &s.forecast {
            if let Some(b) = f.band(layout.level) {
                let t = tags(("model", &f.model));
                for i in 0..b.point.len() {
                    let ts = f.origin() + i as i64 * f.step;
                    let line = format!(
                        "{fm}{t} yhat={},yhat_lower={},yhat_upper={} {ts}",
                        float(b.point[i]),
                        float(b.lower[i]),
                        float(b.upper[i])
                    );
                    push(line, &mut cur, &mut n);
                }
            }
        }
        for a in &s.anomalies {
            if !a.is_finite() {
                continue;
            }
            let t = tags(("detector", &a.detector));
            let line = format!(
                "{am}{t} y={},yhat={},yhat_lower={},yhat_upper={},anomaly_score={},is_anomaly={} {}",
                float(a.value),
                float(a.yhat),
                float(a.yhat_lower),
                float(a.yhat_upper),
                float(a.score),
                a.is_anomaly,
                a.time
            );
            push(line, &mut cur, &mut n);
        }
    }
    if n > 0 {
        batches.push((cur, n));
    }
    batches
}

impl InfluxSink {
    pub fn new(
        name: String,
        client: Backend,
        store: Arc<Store>,
        layout: Layout,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Arc<Self> {
        Arc::new(Self {
            name,
            client,
            store,
            layout,
            metrics,
            health,
            wake: Notify::new(),
            backoff: Mutex::new(MIN_BACKOFF),
        })
    }

    fn component(&self) -> String {
        format!("sink {}", self.name)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> crate::store::Result<T> + Send + 'static,
    ) -> Result<T, SinkError> {
        let store = self.store.clone();
        let name = self.name.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| SinkError::Write {
                sink: name.clone(),
                reason: e.to_string(),
            })?
            .map_err(|e| SinkError::Write {
                sink: name,
                reason: e.to_string(),
            })
    }

    async fn update_pending(&self) {
        let name = self.name.clone();
        if let Ok(n) = self.blocking(move |s| s.spool_pending(&name)).await {
            self.metrics.spool_pending.set(n as i64);
        }
    }

    /// Sends spooled batches, oldest first, until the spool is empty or InfluxDB fails.
    /// Returns false when it stopped on a retryable failure.
    pub async fn drain(&self) -> bool {
        loop {
            let name = self.name.clone();
            let next = match self.blocking(move |s| s.spool_peek(&name)).await {
                Ok(n) => n,
                Err(e) => {
                    warn!(error = %e, "reading the spool failed");
                    return false;
                }
            };
            let Some((id, lines, points)) = next else {
                self.health.set_problem(&self.component(), None);
                self.update_pending().await;
                return true;
            };
            match self.client.write(&lines).await {
                Ok(()) => {}
                Err(e) if e.retryable() => {
                    self.metrics.errors.with_label_values(&["sink"]).inc();
                    self.health
                        .set_problem(&self.component(), Some(format!("{e}; results are spooled")));
                    self.update_pending().await;
                    warn!(sink = %self.name, error = %e, "InfluxDB write failed; keeping the batch in the spool");
                    return false;
                }
                Err(e) => {
                    self.metrics.errors.with_label_values(&["sink"]).inc();
                    warn!(sink = %self.name, error = %e, points, "InfluxDB rejected a batch; dropping it");
                }
            }
            if let Err(e) = self.blocking(move |s| s.spool_delete(id)).await {
                warn!(error = %e, "removing a sent batch from the spool failed");
                return false;
            }
            *self.backoff.lock().unwrap_or_else(|e| e.into_inner()) = MIN_BACKOFF;
        }
    }

    /// Drains the spool whenever `write` adds to it, retrying failures with exponential
    /// backoff and jitter, until cancelled.
    pub async fn run_drainer(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let ok = self.drain().await;
            let wait = if ok {
                None
            } else {
                let mut b = self.backoff.lock().unwrap_or_else(|e| e.into_inner());
                let now = *b;
                *b = (*b * 2).min(MAX_BACKOFF);
                Some(jitter(now))
            };
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = self.wake.notified() => {}
                _ = async { match wait { Some(w) => tokio::time::sleep(w).await, None => std::future::pending().await } } => {}
            }
        }
        info!(sink = %self.name, "spool drainer stopped");
    }
}

/// Full jitter between half and the whole of `d`, from the clock's sub-second noise.
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    let f = 0.5 + 0.5 * (nanos % 1000) as f64 / 1000.0;
    d.mul_f64(f)
}

#[async_trait]
impl Sink for InfluxSink {
    fn name(&self) -> &str {
        &self.name
    }

    async fn write(&self, output: &CycleOutput) -> Result<(), SinkError> {
        let batches = render(output, &self.layout);
        if batches.is_empty() {
            return Ok(());
        }
        let (name, max, policy, now) = (
            self.name.clone(),
            self.layout.spool_max_points,
            self.layout.on_spool_full,
            output.generated_at,
        );
        let dropped = self
            .blocking(move |s| s.spool_append(&name, &batches, max, policy, now))
            .await?;
        if dropped > 0 {
            self.metrics.spool_dropped.inc_by(dropped as u64);
            warn!(sink = %self.name, dropped, policy = ?self.layout.on_spool_full, "spool full: points dropped");
        }
        self.update_pending().await;
        self.wake.notify_one();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ForecastSet;
    use crate::model::Prediction;
    use crate::series::SeriesKey;
    use crate::sink::{AnomalyRecord, SeriesOutput, SeriesState, Status};

    #[test]
    fn renders_the_schema_with_escaping_and_float_fields() {
        let key = SeriesKey::new([("channel", "a b,c")]);
        let out = CycleOutput {
            generated_at: 0,
            series: vec![SeriesOutput {
                key,
                state: SeriesState::new(Status::Ok, 3600),
                forecast: Some(ForecastSet {
                    model: "mstl_ets".into(),
                    periods: vec![24, 168],
                    through: 0,
                    step: 3600,
                    bands: vec![Prediction {
                        level: 95.0,
                        point: vec![100.0, 101.5],
                        lower: vec![90.0, 91.0],
                        upper: vec![110.0, 112.0],
                    }],
                    calibrated: true,
                }),
                anomalies: vec![
                    AnomalyRecord {
                        time: 7200,
                        value: 5.0,
                        yhat: 100.0,
                        yhat_lower: 90.0,
                        yhat_upper: 110.0,
                        score: 9.5,
                        is_anomaly: true,
                        detector: "interval".into(),
                    },
                    AnomalyRecord {
                        time: 10800,
                        value: f64::NAN,
                        yhat: 100.0,
                        yhat_lower: 90.0,
                        yhat_upper: 110.0,
                        score: 0.0,
                        is_anomaly: false,
                        detector: "interval".into(),
                    },
                ],
                events: vec![],
            }],
        };
        let layout = Layout {
            forecast_measurement: "viewcast_forecast".into(),
            anomaly_measurement: "viewcast_anomaly".into(),
            level: 95.0,
            batch_lines: 2,
            spool_max_points: 100,
            on_spool_full: SpoolFull::DropOldest,
        };
        let b = render(&out, &layout);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].1, 2);
        let lines: Vec<&str> = b.iter().flat_map(|(l, _)| l.lines()).collect();
        assert_eq!(lines[0], "viewcast_forecast,channel=a\\ b\\,c,model=mstl_ets yhat=100.0,yhat_lower=90.0,yhat_upper=110.0 3600");
        assert_eq!(lines[1], "viewcast_forecast,channel=a\\ b\\,c,model=mstl_ets yhat=101.5,yhat_lower=91.0,yhat_upper=112.0 7200");
        assert_eq!(lines[2], "viewcast_anomaly,channel=a\\ b\\,c,detector=interval y=5.0,yhat=100.0,yhat_lower=90.0,yhat_upper=110.0,anomaly_score=9.5,is_anomaly=true 7200");
        assert_eq!(lines.len(), 3, "a NaN observation is not written");
    }
}
