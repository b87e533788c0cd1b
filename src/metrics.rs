//! Every Prometheus metric the daemon exports, kept in one place. Per-series gauges carry
//! the series' tags as labels, capped at `metrics.max_series` series.

use std::collections::HashSet;
use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::series::SeriesKey;
use crate::sink::Status;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    label_keys: Vec<String>,
    max_series: usize,
    exported: Mutex<HashSet<SeriesKey>>,
    pub yhat: GaugeVec,
    pub yhat_lower: GaugeVec,
    pub yhat_upper: GaugeVec,
    pub anomaly_score: GaugeVec,
    pub is_anomaly: GaugeVec,
    pub series_not_exported: IntCounter,
    pub cycle_duration: Histogram,
    pub cycles: IntCounterVec,
    pub fit_duration: Histogram,
    pub series: IntGaugeVec,
    pub errors: IntCounterVec,
    pub spool_pending: IntGauge,
    pub spool_dropped: IntCounter,
    pub last_success: Gauge,
    pub http_requests: IntCounterVec,
    pub http_duration: prometheus::HistogramVec,
}

/// Turns a tag key into a valid Prometheus label name.
pub fn label_name(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) || s.starts_with("__") {
        s.insert_str(0, "tag_");
    }
    s
}

impl Metrics {
    /// `tag_keys` are the series' tag keys, the labels of the per-series gauges.
    pub fn new(tag_keys: &[String], max_series: usize) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let label_keys: Vec<String> = tag_keys.iter().map(|k| label_name(k)).collect();
        let labels: Vec<&str> = label_keys.iter().map(String::as_str).collect();
        let gv = |name: &str, help: &str| -> Result<GaugeVec, prometheus::Error> {
            let g = GaugeVec::new(Opts::new(name, help), &labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let yhat = gv("viewcast_forecast_yhat", "Point forecast for the next step")?;
        let yhat_lower = gv(
            "viewcast_forecast_yhat_lower",
            "Lower bound of the next step's prediction interval",
        )?;
        let yhat_upper = gv(
            "viewcast_forecast_yhat_upper",
            "Upper bound of the next step's prediction interval",
        )?;
        let anomaly_score = gv(
            "viewcast_anomaly_score",
            "Anomaly score of the latest observation (>= 1 is anomalous)",
        )?;
        let is_anomaly = gv(
            "viewcast_is_anomaly",
            "1 when the latest observation is anomalous",
        )?;
        let reg = |c: Box<dyn prometheus::core::Collector>| registry.register(c);
        let series_not_exported = IntCounter::new(
            "viewcast_series_not_exported_total",
            "Series left out of per-series metrics by metrics.max_series",
        )?;
        reg(Box::new(series_not_exported.clone()))?;
        let cycle_duration = Histogram::with_opts(
            HistogramOpts::new(
                "viewcast_cycle_duration_seconds",
                "Duration of a full poll-fit-detect-write cycle",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
            ]),
        )?;
        reg(Box::new(cycle_duration.clone()))?;
        let cycles = IntCounterVec::new(
            Opts::new("viewcast_cycles_total", "Cycles run, by result"),
            &["result"],
        )?;
        reg(Box::new(cycles.clone()))?;
        let fit_duration = Histogram::with_opts(
            HistogramOpts::new(
                "viewcast_model_fit_duration_seconds",
                "Duration of one model fit and forecast",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
        )?;
        reg(Box::new(fit_duration.clone()))?;
        let series = IntGaugeVec::new(
            Opts::new("viewcast_series", "Series known, by status"),
            &["status"],
        )?;
        reg(Box::new(series.clone()))?;
        let errors = IntCounterVec::new(
            Opts::new("viewcast_errors_total", "Errors, by pipeline stage"),
            &["stage"],
        )?;
        reg(Box::new(errors.clone()))?;
        let spool_pending = IntGauge::new(
            "viewcast_spool_pending_points",
            "Points waiting in the spool for an external sink",
        )?;
        reg(Box::new(spool_pending.clone()))?;
        let spool_dropped = IntCounter::new(
            "viewcast_spool_dropped_points_total",
            "Points dropped because a spool was full",
        )?;
        reg(Box::new(spool_dropped.clone()))?;
        let last_success = Gauge::new(
            "viewcast_last_success_timestamp_seconds",
            "Unix time of the last successful cycle",
        )?;
        reg(Box::new(last_success.clone()))?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "viewcast_http_requests_total",
                "HTTP requests, by route template, method and status",
            ),
            &["route", "method", "status"],
        )?;
        reg(Box::new(http_requests.clone()))?;
        let http_duration = prometheus::HistogramVec::new(
            HistogramOpts::new(
                "viewcast_http_request_duration_seconds",
                "HTTP request duration, by route template",
            )
            .buckets(vec![0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            &["route"],
        )?;
        reg(Box::new(http_duration.clone()))?;
        let build_info = IntGaugeVec::new(
            Opts::new("viewcast_build_info", "Build information"),
            &["version"],
        )?;
        reg(Box::new(build_info.clone()))?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        for s in Status::ALL {
            series.with_label_values(&[s.as_str()]).set(0);
        }
        for stage in ["source", "model", "sink", "store"] {
            errors.with_label_values(&[stage]);
        }
        for r in ["ok", "error"] {
            cycles.with_label_values(&[r]);
        }
        Ok(Self {
            registry,
            label_keys,
            max_series,
            exported: Mutex::new(HashSet::new()),
            yhat,
            yhat_lower,
            yhat_upper,
            anomaly_score,
            is_anomaly,
            series_not_exported,
            cycle_duration,
            cycles,
            fit_duration,
            series,
            errors,
            spool_pending,
            spool_dropped,
            last_success,
            http_requests,
            http_duration,
        })
    }

    /// Label values of a series, in label order; None once the cap is reached.
    fn labels(&self, key: &SeriesKey) -> Option<Vec<String>> {
        let mut exported = self.exported.lock().unwrap_or_else(|e| e.into_inner());
        if !exported.contains(key) {
            if exported.len() >= self.max_series {
                self.series_not_exported.inc();
                return None;
            }
            exported.insert(key.clone());
        }
        let tags = key.tags();
        Some(
            self.label_keys
                .iter()
                .map(|lk| {
                    tags.iter()
                        .find(|(k, _)| &label_name(k) == lk)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                })
                .collect(),
        )
    }

    /// Sets the next-step forecast gauges of a series.
    pub fn set_forecast(&self, key: &SeriesKey, yhat: f64, lower: f64, upper: f64) {
        if let Some(l) = self.labels(key) {
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            self.yhat.with_label_values(&l).set(yhat);
            self.yhat_lower.with_label_values(&l).set(lower);
            self.yhat_upper.with_label_values(&l).set(upper);
        }
    }

    /// Sets the anomaly gauges of a series from its latest observation.
    pub fn set_anomaly(&self, key: &SeriesKey, score: f64, is_anomaly: bool) {
        if let Some(l) = self.labels(key) {
            let l: Vec<&str> = l.iter().map(String::as_str).collect();
            self.anomaly_score.with_label_values(&l).set(score);
            self.is_anomaly
                .with_label_values(&l)
                .set(if is_anomaly { 1.0 } else { 0.0 });
        }
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_series_gauges_up_to_the_cap() {
        let m = Metrics::new(&["channel".into()], 1).unwrap();
        m.set_anomaly(&SeriesKey::new([("channel", "news")]), 2.5, true);
        m.set_anomaly(&SeriesKey::new([("channel", "kids")]), 0.1, false);
        let text = m.render();
        assert!(
            text.contains("viewcast_anomaly_score{channel=\"news\"} 2.5"),
            "{text}"
        );
        assert!(!text.contains("kids"));
        assert!(text.contains("viewcast_series_not_exported_total 1"));
        assert!(text.contains("viewcast_build_info{version="));
        assert_eq!(label_name("device-type"), "device_type");
        assert_eq!(label_name("1x"), "tag_1x");
    }
}
