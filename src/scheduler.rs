//! The cycle: poll the source for new points, ingest them per series on a bounded blocking
//! pool (fit, forecast, detect), write the results to every sink, update metrics and health.
//! A panic or error in one series is recorded for that series and never stops the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, info_span, warn, Instrument};

use crate::clock::Clock;
use crate::detect::cross;
use crate::detect::events::EventTracker;
use crate::engine::{EngineSettings, Ingested, SeriesEngine};
use crate::metrics::Metrics;
use crate::series::{Point, SeriesKey};
use crate::sink::{AnomalyRecord, CycleOutput, SeriesOutput, SeriesState, Sink, Status};
use crate::source::Source;
use crate::store::Store;

/// Whether the daemon is ready, and why not; shared with the API. Each component (the
/// source, a sink) reports its own problem, so one recovering does not hide another.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
    problems: Mutex<std::collections::BTreeMap<String, String>>,
}

impl Health {
    /// None when ready; the reason otherwise.
    pub fn not_ready_reason(&self) -> Option<String> {
        let problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        if !problems.is_empty() {
            let all: Vec<String> = problems.iter().map(|(c, p)| format!("{c}: {p}")).collect();
            return Some(format!("degraded: {}", all.join("; ")));
        }
        (!self.ready.load(Ordering::SeqCst)).then(|| "the first cycle has not finished yet".into())
    }

    /// Records (Some) or clears (None) the problem of one component.
    pub fn set_problem(&self, component: &str, problem: Option<String>) {
        let mut problems = self.problems.lock().unwrap_or_else(|e| e.into_inner());
        match problem {
            Some(p) => problems.insert(component.to_string(), p),
            None => problems.remove(component),
        };
    }

    pub fn mark_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }
}

/// Refits asked for through the API: each entry is a set of tag filters (empty = all).
#[derive(Debug, Default)]
pub struct RefitQueue(Mutex<Vec<Vec<(String, String)>>>);

impl RefitQueue {
    pub fn push(&self, filters: Vec<(String, String)>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(filters);
    }

    fn drain(&self) -> Vec<Vec<(String, String)>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What a cycle did, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct CycleReport {
    pub series: usize,
    pub points: usize,
    pub fits: usize,
    pub anomalies: usize,
    pub errors: usize,
    /// Wall time spent reading the source, modelling (fit, forecast, detect) and writing.
    pub read_secs: f64,
    pub model_secs: f64,
    pub write_secs: f64,
}

#[derive(Debug, Clone)]
struct Known {
    state: SeriesState,
}

pub struct Scheduler {
    pub source: Arc<dyn Source>,
    pub sinks: Vec<Arc<dyn Sink>>,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
    pub health: Arc<Health>,
    pub refits: Arc<RefitQueue>,
    pub settings: Arc<EngineSettings>,
    pub interval: Duration,
    pub backfill_secs: i64,
    pub retention_secs: i64,
    fit_permits: Arc<Semaphore>,
    engines: HashMap<SeriesKey, Arc<Mutex<SeriesEngine>>>,
    known: HashMap<SeriesKey, Known>,
    /// Events of the cross-channel detector, per series (it runs here, across series).
    cross_events: HashMap<SeriesKey, EventTracker>,
    /// Each series' usual departure from its forecast, for the cross-channel detector.
    cross_baselines: HashMap<SeriesKey, cross::Baseline>,
    /// Whether the store's series state was loaded (once, at the first cycle).
    restored: bool,
}

type Job = (SeriesKey, i64, Vec<Point>, i64, bool);

/// The records of scored observations (those with a value, scored against a forecast). A
/// time step without a value (an empty cell of a CSV export) is no observation: it has
/// nothing to report, and its NaN failed the embedded store's whole write for every series.
fn records(evaluated: &[crate::engine::Evaluated]) -> Vec<AnomalyRecord> {
    evaluated
        .iter()
        .filter(|ev| ev.value.is_finite())
        .filter_map(|ev| {
            ev.expected.map(|e| AnomalyRecord {
                time: ev.ts,
                value: ev.value,
                yhat: e.yhat,
                yhat_lower: e.lower,
                yhat_upper: e.upper,
                score: ev.verdict.score,
                is_anomaly: ev.is_anomaly,
                detector: ev.verdict.detector.to_string(),
            })
        })
        .collect()
}

/// An observation the cross-channel detector compares: one of this cycle's records (by
/// index) or one replayed after a restart.
enum Scored<'a> {
    Reported(usize),
    Replayed(&'a AnomalyRecord),
}

impl<'a> Scored<'a> {
    fn record<'s>(&self, series: &'s SeriesOutput) -> &'s AnomalyRecord
    where
        'a: 's,
    {
        match *self {
            Scored::Reported(i) => &series.anomalies[i],
            Scored::Replayed(r) => r,
        }
    }
}

/// What one series' blocking job hands back to the cycle.
struct JobResult {
    ing: Ingested,
    forecast: Option<crate::engine::ForecastSet>,
    last_point: Option<i64>,
    scored_through: Option<i64>,
    has_forecast: bool,
    step: i64,
    backtest_mase: Option<f64>,
    /// Steps of the fit window with a value, and all its steps.
    held: (usize, usize),
}

impl Scheduler {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        source: Arc<dyn Source>,
        sinks: Vec<Arc<dyn Sink>>,
        store: Arc<Store>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        settings: Arc<EngineSettings>,
        interval: Duration,
        backfill_secs: i64,
        retention_secs: i64,
        fit_threads: usize,
    ) -> Self {
        let threads = if fit_threads == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            fit_threads
        };
        Self {
            source,
            sinks,
            store,
            metrics,
            clock,
            health: Arc::new(Health::default()),
            refits: Arc::new(RefitQueue::default()),
            settings,
            interval,
            backfill_secs,
            retention_secs,
            fit_permits: Arc::new(Semaphore::new(threads.max(1))),
            engines: HashMap::new(),
            known: HashMap::new(),
            cross_events: HashMap::new(),
            cross_baselines: HashMap::new(),
            restored: false,
        }
    }

    /// Runs cycles every `interval` until cancelled.
    pub async fn run(mut self, cancel: CancellationToken) {
        loop {
            let started = Instant::now();
            self.cycle(&cancel).await;
            let wait = self.interval.saturating_sub(started.elapsed());
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        info!("scheduler stopped");
    }

    /// One cycle. Never fails as a whole: problems are logged, counted and shown in health.
    pub async fn cycle(&mut self, cancel: &CancellationToken) -> CycleReport {
        let now = self.clock.now();
        let span = info_span!("cycle", now = %crate::clock::rfc3339(now));
        let started = Instant::now();
        let report = self.cycle_inner(now, cancel).instrument(span).await;
        self.metrics
            .cycle_duration
            .observe(started.elapsed().as_secs_f64());
        report
    }

    async fn cycle_inner(&mut self, now: i64, cancel: &CancellationToken) -> CycleReport {
        let mut report = CycleReport::default();
        let phase = Instant::now();
        let polled = self.source.poll(now).await;
        report.read_secs = phase.elapsed().as_secs_f64();
        let (updates, retired) = match polled {
            Ok(p) => {
                self.health.set_problem("source", None);
                (p.updates, p.retired)
            }
            Err(e) => {
                warn!(error = %e, "polling the source failed");
                self.metrics.errors.with_label_values(&["source"]).inc();
                self.metrics.cycles.with_label_values(&["error"]).inc();
                let problem = format!("{}: {e}", self.source.describe());
                self.health.set_problem("source", Some(problem));
                report.errors += 1;
                return report;
            }
        };
        if !self.restored {
            self.restore();
            self.restored = true;
        }
        let refit_filters = self.refits.drain();
        let mut jobs: Vec<Job> = Vec::new();
        let mut updated = std::collections::HashSet::new();
        for u in updates {
            report.points += u.points.len();
            let last = u.points.iter().map(|p| p.ts).max().unwrap_or(i64::MIN);
            // A new series: the backfill window before its latest observation is scored. A
            // series a run before a restart had scored: the window before what it scored,
            // which the engine replays without reporting it again (see
            // `SeriesEngine::restore`). A series this run holds: whatever is new.
            let scored = self.known.get(&u.key).and_then(|k| k.state.scored_through);
            let score_from = match scored {
                _ if self.engines.contains_key(&u.key) => i64::MIN,
                Some(t) => t.saturating_sub(self.backfill_secs),
                None => last.saturating_sub(self.backfill_secs),
            };
            let force = refit_filters.iter().any(|f| u.key.matches(f));
            updated.insert(u.key.clone());
            jobs.push((u.key, u.step, u.points, score_from, force));
        }
        for key in self.engines.keys() {
            if !updated.contains(key) && refit_filters.iter().any(|f| key.matches(f)) {
                jobs.push((key.clone(), 0, vec![], i64::MAX, true));
            }
        }
        report.series = jobs.len();

        let phase = Instant::now();
        let mut set = JoinSet::new();
        for (key, step, points, score_from, force) in jobs {
            let engine = self.engine(&key, step);
            let permits = self.fit_permits.clone();
            let cancel = cancel.clone();
            let span = info_span!("series", series = %key);
            set.spawn(
                async move {
                    let _permit = tokio::select! {
                        p = permits.acquire_owned() => p.ok()?,
                        _ = cancel.cancelled() => return None,
                    };
                    let job = tokio::task::spawn_blocking(move || {
                        let mut e = engine.lock().unwrap_or_else(|p| p.into_inner());
                        let mut out = e.ingest(&points, score_from);
                        if force {
                            let forced = e.refit_now();
                            out.fit_secs.extend(forced.fit_secs);
                            out.refitted |= forced.refitted;
                            out.error = forced.error.or(out.error);
                        }
                        let fc = if out.refitted {
                            e.forecast().map(|f| f.truncated(e.horizon_steps()))
                        } else {
                            None
                        };
                        JobResult {
                            ing: out,
                            forecast: fc,
                            last_point: e.last_ts(),
                            scored_through: e.scored_through(),
                            has_forecast: e.forecast().is_some(),
                            step: e.step(),
                            backtest_mase: e.selection().map(|s| s.mase),
                            held: e.held(),
                        }
                    });
                    Some((key, job.await))
                }
                .instrument(span),
            );
        }

        let mut output = CycleOutput {
            generated_at: now,
            series: Vec::new(),
        };
        for key in retired {
            self.engines.remove(&key);
            if let Some(k) = self.known.get_mut(&key) {
                k.state.status = Status::Retired;
                k.state.reason = Some("no data from the source for the retirement period".into());
                let state = k.state.clone();
                output.series.push(SeriesOutput {
                    key,
                    state,
                    forecast: None,
                    anomalies: vec![],
                    events: vec![],
                });
            }
        }
        // Per series, what it replayed after a restart (for the cross-channel detector).
        let mut replayed: HashMap<SeriesKey, Vec<AnomalyRecord>> = HashMap::new();
        while let Some(joined) = set.join_next().await {
            let Ok(Some((key, result))) = joined else {
                continue;
            };
            let prev = self.known.get(&key).map(|k| k.state.clone());
            let state_out = match result {
                Ok(job) => {
                    if !job.ing.replayed.is_empty() {
                        replayed.insert(key.clone(), records(&job.ing.replayed));
                    }
                    self.record_series(&key, job, prev, now, &mut report)
                }
                Err(e) => {
                    let reason = if e.is_panic() {
                        "panicked while modelling (see logs)".to_string()
                    } else {
                        e.to_string()
                    };
                    warn!(series = %key, %reason, "series failed");
                    self.metrics.errors.with_label_values(&["model"]).inc();
                    report.errors += 1;
                    let mut state = prev.unwrap_or(SeriesState::new(Status::Error, 0));
                    state.status = Status::Error;
                    state.reason = Some(reason);
                    SeriesOutput {
                        key: key.clone(),
                        state,
                        forecast: None,
                        anomalies: vec![],
                        events: vec![],
                    }
                }
            };
            self.known.insert(
                key,
                Known {
                    state: state_out.state.clone(),
                },
            );
            output.series.push(state_out);
        }

        if self.settings.detectors.iter().any(|d| d == cross::NAME) {
            self.cross_channel(&mut output, &replayed, &mut report);
        }
        self.check_silence(now, &mut output);

        report.model_secs = phase.elapsed().as_secs_f64();
        let phase = Instant::now();
        let mut write_ok = true;
        for sink in &self.sinks {
            let component = format!("sink {}", sink.name());
            match sink.write(&output).await {
                Ok(()) => self.health.set_problem(&component, None),
                Err(e) => {
                    warn!(sink = sink.name(), error = %e, "write failed");
                    self.metrics.errors.with_label_values(&["sink"]).inc();
                    self.health.set_problem(&component, Some(e.to_string()));
                    write_ok = false;
                    report.errors += 1;
                }
            }
        }
        report.write_secs = phase.elapsed().as_secs_f64();
        let store = self.store.clone();
        let cutoff = now - self.retention_secs;
        let _ = tokio::task::spawn_blocking(move || store.prune(cutoff)).await;

        for s in Status::ALL {
            let n = self.known.values().filter(|k| k.state.status == s).count();
            self.metrics
                .series
                .with_label_values(&[s.as_str()])
                .set(n as i64);
        }
        if write_ok {
            self.metrics.cycles.with_label_values(&["ok"]).inc();
            self.metrics.last_success.set(self.clock.now() as f64);
            self.health.mark_ready();
        } else {
            self.metrics.cycles.with_label_values(&["error"]).inc();
        }
        info!(
            series = report.series,
            points = report.points,
            fits = report.fits,
            anomalies = report.anomalies,
            errors = report.errors,
            "cycle finished"
        );
        report
    }

    /// Scores every observation of this cycle against the other series' observations at
    /// the same time (series of the same step), and raises a record's score where it is
    /// higher. Its flags form events of their own, per series, under the same rules.
    /// Observations `replayed` after a restart only bring the baselines and event trackers
    /// back to where they were.
    fn cross_channel(
        &mut self,
        output: &mut CycleOutput,
        replayed: &HashMap<SeriesKey, Vec<AnomalyRecord>>,
        report: &mut CycleReport,
    ) {
        // (step, time) → (series index, the observation) of every scored observation.
        let mut at: std::collections::BTreeMap<(i64, i64), Vec<(usize, Scored)>> =
            Default::default();
        for (si, s) in output.series.iter().enumerate() {
            for r in replayed.get(&s.key).into_iter().flatten() {
                at.entry((s.state.step, r.time))
                    .or_default()
                    .push((si, Scored::Replayed(r)));
            }
            for (ri, r) in s.anomalies.iter().enumerate() {
                at.entry((s.state.step, r.time))
                    .or_default()
                    .push((si, Scored::Reported(ri)));
            }
        }
        // In time order, so each series' event tracker sees its observations in order.
        let mut by_time: Vec<_> = at.into_iter().collect();
        by_time.sort_by_key(|((_, t), _)| *t);
        let mut touched = std::collections::BTreeSet::new();
        for (_, members) in by_time {
            // Each departure as it is, and less the series' usual one (what is compared).
            let (raw, adjusted): (Vec<Option<f64>>, Vec<Option<f64>>) = members
                .iter()
                .map(|(si, obs)| {
                    let s = &output.series[*si];
                    let r = obs.record(s);
                    let b = self
                        .cross_baselines
                        .get(&s.key)
                        .copied()
                        .unwrap_or_default();
                    let rel = b.relative(r.value, r.yhat);
                    (rel, rel.map(|x| b.adjust(x)))
                })
                .unzip();
            let scores = cross::scores_of(&adjusted);
            for (((si, obs), score), rel) in members.iter().zip(scores).zip(raw) {
                let series = &mut output.series[*si];
                if let Some(rel) = rel {
                    let r = obs.record(series);
                    self.cross_baselines
                        .entry(series.key.clone())
                        .or_default()
                        .update(r.value, r.yhat, rel);
                }
                let verdict = crate::detect::Verdict {
                    score,
                    detector: cross::NAME,
                };
                let tracker = self
                    .cross_events
                    .entry(series.key.clone())
                    .or_insert_with(|| EventTracker::new(self.settings.events));
                let ri = match obs {
                    Scored::Reported(ri) => *ri,
                    Scored::Replayed(r) => {
                        tracker.observe(r.time, &verdict);
                        continue;
                    }
                };
                let rec = &mut series.anomalies[ri];
                let (flag, event) = tracker.observe(rec.time, &verdict);
                if score > rec.score {
                    rec.score = score;
                    rec.detector = cross::NAME.to_string();
                }
                if flag && !rec.is_anomaly {
                    rec.is_anomaly = true;
                    report.anomalies += 1;
                }
                if let Some(e) = event {
                    match series.events.iter_mut().find(|x| x.start == e.start) {
                        Some(x) if x.detector == e.detector => *x = e,
                        _ => series.events.push(e),
                    }
                }
                touched.insert(*si);
            }
        }
        for si in touched {
            let s = &output.series[si];
            if let Some(a) = s.anomalies.last() {
                self.metrics.set_anomaly(&s.key, a.score, a.is_anomaly);
            }
        }
    }

    /// A series that normally delivers every step but has been silent for unusually long (a
    /// dead feed) is shown as anomalous in the metrics on-call alerts on, with the reason in
    /// its state, until data arrives again.
    fn check_silence(&mut self, now: i64, output: &mut CycleOutput) {
        let updated: std::collections::HashSet<SeriesKey> =
            output.series.iter().map(|s| s.key.clone()).collect();
        for (key, k) in &mut self.known {
            let st = &mut k.state;
            let (Some(last), true) = (st.last_point, st.step > 0) else {
                continue;
            };
            if st.status == Status::Retired || updated.contains(key) {
                continue;
            }
            // The newest bucket is still filling, so one step of silence is normal.
            let gap = (now - last - st.step) as f64 / st.step as f64;
            let score = crate::detect::feed::silence_score(gap, 1.0);
            if score < 1.0 {
                continue;
            }
            self.metrics.set_anomaly(key, score, true);
            let reason = format!(
                "missing: no new data for {}",
                crate::timefmt::format_duration(now - last)
            );
            if st.reason.as_deref() != Some(reason.as_str()) {
                st.reason = Some(reason);
                output.series.push(SeriesOutput {
                    key: key.clone(),
                    state: st.clone(),
                    forecast: None,
                    anomalies: vec![],
                    events: vec![],
                });
            }
        }
    }

    fn record_series(
        &self,
        key: &SeriesKey,
        job: JobResult,
        prev: Option<SeriesState>,
        now: i64,
        report: &mut CycleReport,
    ) -> SeriesOutput {
        let JobResult {
            ing,
            forecast,
            last_point,
            scored_through,
            has_forecast,
            step,
            backtest_mase,
            held,
        } = job;
        for s in &ing.fit_secs {
            self.metrics.fit_duration.observe(*s);
        }
        report.fits += ing.fit_secs.len();
        let (status, reason) = match (&ing.error, has_forecast) {
            (Some(e), _) => {
                self.metrics.errors.with_label_values(&["model"]).inc();
                report.errors += 1;
                warn!(series = %key, error = %e, "fit failed");
                (
                    Status::Error,
                    Some(if has_forecast {
                        format!("{e}; serving the previous forecast")
                    } else {
                        e.to_string()
                    }),
                )
            }
            (None, true) => (Status::Ok, None),
            (None, false) => (
                Status::WarmingUp,
                // Rows without a value count as time, not as points: a feed of empty
                // values said "fewer than 48 points so far" for ever.
                Some(format!(
                    "fewer than {} points with a value so far ({} of {} time steps have one)",
                    self.settings.min_points, held.0, held.1
                )),
            ),
        };
        let anomalies = records(&ing.evaluated);
        report.anomalies += anomalies.iter().filter(|a| a.is_anomaly).count();
        if let Some(a) = anomalies.last() {
            self.metrics.set_anomaly(key, a.score, a.is_anomaly);
        }
        if let Some(f) = &forecast {
            if let Some(b) = f.band(self.settings.detect_level) {
                if let (Some(y), Some(l), Some(u)) =
                    (b.point.first(), b.lower.first(), b.upper.first())
                {
                    self.metrics.set_forecast(key, *y, *l, *u);
                }
            }
        }
        let prev_model = prev.as_ref().and_then(|p| p.model.clone());
        let prev_fit = prev.as_ref().and_then(|p| p.last_fit);
        let state = SeriesState {
            status,
            reason,
            model: forecast.as_ref().map(|f| f.model.clone()).or(prev_model),
            step,
            last_point,
            last_fit: if forecast.is_some() {
                Some(now)
            } else {
                prev_fit
            },
            scored_through,
            backtest_mase: backtest_mase.or(prev.as_ref().and_then(|p| p.backtest_mase)),
        };
        SeriesOutput {
            key: key.clone(),
            state,
            forecast,
            anomalies,
            events: ing.events,
        }
    }

    fn engine(&mut self, key: &SeriesKey, step: i64) -> Arc<Mutex<SeriesEngine>> {
        self.engines
            .entry(key.clone())
            .or_insert_with(|| {
                let mut e = SeriesEngine::new(self.settings.clone(), step);
                // A series seen before a restart continues where it stopped: its stored
                // forecast scores the points that arrive now, and nothing is scored twice.
                if let Some(k) = self.known.get(key) {
                    let forecast = self.store.forecast(key).ok().flatten().map(|f| f.set);
                    e.restore(forecast, k.state.scored_through);
                }
                Arc::new(Mutex::new(e))
            })
            .clone()
    }

    /// Loads what the store knows of each series (after a restart).
    fn restore(&mut self) {
        match self.store.series() {
            Ok(rows) => {
                for r in rows {
                    self.known.insert(r.key, Known { state: r.state });
                }
            }
            Err(e) => warn!(error = %e, "could not read series state from the store"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::source::demo::{AnomalyKind, DemoSpec};
    use crate::source::DemoSource;
    use crate::store::{StoreSink, StoredAnomaly, StoredEvent};

    const NOW: i64 = 1_764_000_000 + 1800;

    /// A scheduler as the daemon builds one, storing into `store` only, with two fit
    /// threads and 30 days' retention.
    fn test_scheduler(
        source: Arc<dyn Source>,
        store: &Arc<Store>,
        metrics: Arc<Metrics>,
        clock: Arc<ManualClock>,
        settings: EngineSettings,
        backfill: i64,
    ) -> Scheduler {
        Scheduler::new(
            source,
            vec![Arc::new(StoreSink(store.clone()))],
            store.clone(),
            metrics,
            clock,
            Arc::new(settings),
            Duration::from_secs(60),
            backfill,
            30 * 86_400,
            2,
        )
    }

    /// The metrics of a channel-tagged test scheduler.
    fn test_metrics() -> Arc<Metrics> {
        Arc::new(Metrics::new(&["channel".into()], 100).unwrap())
    }

    /// The demo's twelve channels through one cycle, for four draws of the demo: the injected
    /// outage, spike and level shift become stored events with their severity's score, the
    /// rest stays quiet, and the cross-channel detector runs across the channels.
    #[tokio::test]
    async fn a_cycle_stores_anomaly_points_and_events_for_what_was_injected() {
        const SEEDS: std::ops::RangeInclusive<u64> = 5..=8;
        let mut false_alarms = Vec::new();
        for seed in SEEDS {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(dir.path()).unwrap();
            let spec = DemoSpec::new(seed, 12, NOW);
            let injected = spec.injected();
            let source = Arc::new(DemoSource::new(spec, 28 * 86_400));
            let mut sched = test_scheduler(
                source,
                &store,
                test_metrics(),
                Arc::new(ManualClock::new(NOW)),
                EngineSettings::default(),
                9 * 86_400,
            );
            let report = sched.cycle(&CancellationToken::new()).await;
            assert!(report.anomalies > 0, "seed {seed}: {report:?}");

            let points = store.anomalies(0, i64::MAX, 0.0, 1_000_000).unwrap();
            assert!(
                points.len() >= 12 * 8 * 24,
                "seed {seed}: every scored observation is stored: {}",
                points.len()
            );
            assert!(points
                .iter()
                .any(|p| p.record.detector == cross::NAME && p.record.score > 0.0));

            let events = store.events(0, i64::MAX, 0.0, 10_000).unwrap();
            let overlaps = |e: &crate::store::StoredEvent, i: &crate::source::demo::Injected| {
                e.key.to_string() == format!("channel={}", i.channel)
                    && e.start < i.end
                    && e.end >= i.start
            };
            for i in &injected {
                let found = events.iter().find(|e| overlaps(e, i));
                let Some(e) = found else {
                    panic!("seed {seed}: no event for {i:?}; events: {events:?}");
                };
                if i.kind != AnomalyKind::LevelShift {
                    assert!(
                        e.start <= i.start + 3600,
                        "seed {seed}: {:?} seen within its first hour: {e:?}",
                        i.kind
                    );
                }
            }
            let outage = events
                .iter()
                .find(|e| overlaps(e, &injected[0]))
                .expect("checked above");
            assert!(
                outage.peak >= 3.0,
                "seed {seed}: an outage is critical: {outage:?}"
            );
            false_alarms.extend(
                events
                    .into_iter()
                    .filter(|e| !injected.iter().any(|i| overlaps(e, i))),
            );
        }
        // Twelve channels over nine days with 4% noise: about one warning a month per
        // channel, 4 per draw (one draw alone varies from 0 to 5).
        let draws = SEEDS.count();
        assert!(
            false_alarms.len() <= 4 * draws,
            "{} events on clean channels in {draws} draws: {false_alarms:?}",
            false_alarms.len()
        );
    }

    /// Runs the demo's first four channels at `first`, then at `then`, restarting in between
    /// (a new scheduler, source and metrics on the same store) when `restart` is set. Gives
    /// the second cycle's report and what the store then holds.
    async fn two_cycles(
        first: i64,
        then: i64,
        restart: bool,
        backfill: i64,
    ) -> (CycleReport, Vec<StoredAnomaly>, Vec<StoredEvent>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock = Arc::new(ManualClock::new(first));
        // The restarted source reads from the same first hour as the first did.
        let scheduler = |history: i64| {
            test_scheduler(
                Arc::new(DemoSource::new(DemoSpec::new(7, 4, NOW), history)),
                &store,
                test_metrics(),
                clock.clone(),
                EngineSettings::default(),
                backfill,
            )
        };
        let cancel = CancellationToken::new();
        let mut sched = scheduler(14 * 86_400);
        sched.cycle(&cancel).await;
        if restart {
            sched = scheduler(14 * 86_400 + then - first);
        }
        clock.advance(then - first);
        let report = sched.cycle(&cancel).await;
        let anomalies = store.anomalies(0, i64::MAX, 0.0, 1_000_000).unwrap();
        let events = store.events(0, i64::MAX, 0.0, 10_000).unwrap();
        (report, anomalies, events)
    }

    /// A restart neither blinds the detectors nor reports anything twice: the restarted
    /// daemon replays what it had scored (per series, and across series for the
    /// cross-channel detector), so it flags an outage in its first hours exactly as an
    /// uninterrupted daemon does, with the same scores.
    #[tokio::test]
    async fn after_a_restart_the_daemon_scores_as_if_it_had_never_stopped() {
        let outage = DemoSpec::new(7, 4, NOW)
            .injected()
            .into_iter()
            .find(|i| i.kind == AnomalyKind::Outage)
            .expect("the demo has an outage");
        let (first, then) = (outage.start - 3 * 3600, outage.end);
        let (straight, rows, events) = two_cycles(first, then, false, 7 * 86_400).await;
        let (restarted, rows_after, events_after) = two_cycles(first, then, true, 7 * 86_400).await;

        let flagged = |rows: &[StoredAnomaly]| {
            rows.iter()
                .filter(|a| a.record.is_anomaly && a.record.time > first)
                .map(|a| (a.key.to_string(), a.record.time))
                .collect::<Vec<_>>()
        };
        assert!(
            flagged(&rows_after).contains(&("channel=sports".into(), outage.start)),
            "the outage after the restart is flagged: {:?}",
            flagged(&rows_after)
        );
        assert_eq!(flagged(&rows_after), flagged(&rows));
        assert_eq!(
            restarted.anomalies, straight.anomalies,
            "nothing flagged twice"
        );
        let scores = |rows: &[StoredAnomaly]| {
            rows.iter()
                .map(|a| (a.key.to_string(), a.record.clone()))
                .collect::<Vec<_>>()
        };
        assert!(scores(&rows_after) == scores(&rows), "the same scores");
        assert_eq!(
            format!("{events_after:?}"),
            format!("{events:?}"),
            "the same events"
        );
    }

    /// With no backfill the first cycle scores nothing and every later one scores what is
    /// new. (The backfill window was measured back from each cycle's latest observation
    /// until a series had scored something, so with `backfill = 0` nothing was ever scored.)
    #[tokio::test]
    async fn without_backfill_new_observations_are_still_scored() {
        let first = NOW - 10 * 3600;
        let (report, rows, _) = two_cycles(first, first + 2 * 3600, false, 0).await;
        let mut scored: Vec<(String, i64)> = rows
            .iter()
            .map(|a| (a.key.to_string(), a.record.time))
            .collect();
        scored.sort();
        let expected: Vec<(String, i64)> = ["kids", "movies", "news", "sports"]
            .iter()
            .flat_map(|c| {
                let hour = crate::source::demo::floor_hour(first);
                [hour, hour + 3600].map(|t| (format!("channel={c}"), t))
            })
            .collect();
        assert_eq!(scored, expected, "{report:?}");
    }

    /// What is written and served is the configured horizon, however far the forecast held
    /// for scoring reaches.
    #[tokio::test]
    async fn the_stored_forecast_is_the_configured_horizon() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let settings = EngineSettings {
            horizon_secs: 3 * 3600,
            ..EngineSettings::default()
        };
        let mut sched = test_scheduler(
            Arc::new(DemoSource::new(DemoSpec::new(7, 2, NOW), 14 * 86_400)),
            &store,
            test_metrics(),
            Arc::new(ManualClock::new(NOW)),
            settings,
            86_400,
        );
        sched.cycle(&CancellationToken::new()).await;
        for r in store.series().unwrap() {
            let f = store.forecast(&r.key).unwrap().expect("a stored forecast");
            assert_eq!(f.set.len(), 3, "{}", r.key);
        }
    }

    /// The demo feed with one channel that can be cut off.
    #[derive(Debug)]
    struct Cut {
        inner: DemoSource,
        channel: &'static str,
        cut: AtomicBool,
    }

    #[async_trait::async_trait]
    impl crate::source::Source for Cut {
        fn describe(&self) -> String {
            "demo with a cut-off channel".into()
        }
        fn tag_keys(&self) -> Vec<String> {
            self.inner.tag_keys()
        }
        async fn poll(&self, now: i64) -> Result<crate::source::Poll, crate::source::SourceError> {
            let mut poll = self.inner.poll(now).await?;
            if self.cut.load(Ordering::SeqCst) {
                let name = format!("channel={}", self.channel);
                poll.updates.retain(|u| u.key.to_string() != name);
            }
            Ok(poll)
        }
    }

    #[tokio::test]
    async fn a_silent_channel_is_flagged_with_the_reason_in_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let source = Arc::new(Cut {
            inner: DemoSource::new(DemoSpec::new(7, 4, NOW), 14 * 86_400),
            channel: "news",
            cut: AtomicBool::new(false),
        });
        let metrics = test_metrics();
        let clock = Arc::new(ManualClock::new(NOW));
        let mut sched = test_scheduler(
            source.clone(),
            &store,
            metrics.clone(),
            clock.clone(),
            EngineSettings::default(),
            86_400,
        );
        let cancel = CancellationToken::new();
        sched.cycle(&cancel).await;
        source.cut.store(true, Ordering::SeqCst);
        let news = |m: &str| {
            let line = format!("viewcast_is_anomaly{{channel=\"{m}\"}}");
            metrics
                .render()
                .lines()
                .find(|l| l.starts_with(&line))
                .map(|l| l.rsplit(' ').next().unwrap().to_string())
        };
        // Two silent hours are within what a live feed does; four are not.
        clock.advance(2 * 3600);
        sched.cycle(&cancel).await;
        assert_eq!(news("news").as_deref(), Some("0"));
        clock.advance(2 * 3600);
        sched.cycle(&cancel).await;
        assert_eq!(news("news").as_deref(), Some("1"));
        assert_eq!(news("sports").as_deref(), Some("0"), "the others are live");
        let rows = store.series().unwrap();
        let row = rows
            .iter()
            .find(|r| r.key.to_string() == "channel=news")
            .unwrap();
        let reason = row.state.reason.clone().unwrap_or_default();
        assert!(
            reason.starts_with("missing: no new data for 5h"),
            "{reason}"
        );
    }

    /// A feed of hourly steps, one in four with a value.
    #[derive(Debug)]
    struct Sparse(i64);

    #[async_trait::async_trait]
    impl crate::source::Source for Sparse {
        fn describe(&self) -> String {
            format!("{} hours, one in four with a value", self.0)
        }
        fn tag_keys(&self) -> Vec<String> {
            vec!["channel".into()]
        }
        async fn poll(&self, now: i64) -> Result<crate::source::Poll, crate::source::SourceError> {
            let end = now - now.rem_euclid(3600);
            let points = (0..self.0)
                .map(|i| crate::series::Point {
                    ts: end - (self.0 - i) * 3600,
                    value: if i % 4 == 0 { 100.0 } else { f64::NAN },
                })
                .collect();
            Ok(vec![crate::source::SeriesUpdate {
                key: SeriesKey::new([("channel", "sparse")]),
                step: 3600,
                points,
            }]
            .into())
        }
    }

    /// A default scheduler on a [`Sparse`] feed of `hours`, its store in a temporary folder.
    fn sparse_scheduler(hours: i64, backfill: i64) -> (tempfile::TempDir, Arc<Store>, Scheduler) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sched = test_scheduler(
            Arc::new(Sparse(hours)),
            &store,
            test_metrics(),
            Arc::new(ManualClock::new(NOW)),
            EngineSettings::default(),
            backfill,
        );
        (dir, store, sched)
    }

    /// While warming up, the reason counts the steps with a value: a feed of empty values
    /// said "fewer than 48 points so far" however many rows came in.
    #[tokio::test]
    async fn warming_up_counts_the_points_with_a_value() {
        let (_dir, store, mut sched) = sparse_scheduler(40, 86_400);
        sched.cycle(&CancellationToken::new()).await;
        let rows = store.series().unwrap();
        assert_eq!(rows[0].state.status, Status::WarmingUp);
        assert_eq!(
            rows[0].state.reason.as_deref(),
            Some("fewer than 48 points with a value so far (10 of 40 time steps have one)")
        );
    }

    /// Steps without a value are no observations: nothing is reported for them, and the
    /// cycle's write goes through. Their NaN reached the embedded store as NULL and failed
    /// the whole write, every series' forecasts and scores with it (found running the daemon
    /// on exported traffic counts with empty cells).
    #[tokio::test]
    async fn steps_without_a_value_are_not_reported_and_the_write_goes_through() {
        let (_dir, store, mut sched) = sparse_scheduler(24 * 28, 14 * 86_400);
        let report = sched.cycle(&CancellationToken::new()).await;
        assert_eq!(report.errors, 0, "{report:?}");
        let rows = store.series().unwrap();
        assert_eq!(rows[0].state.status, Status::Ok, "{:?}", rows[0].state);
        let stored = store
            .anomalies(0, i64::MAX, f64::NEG_INFINITY, 10_000)
            .unwrap();
        // One in four of the 14 replayed days' steps has a value.
        assert!((80..=84).contains(&stored.len()), "{}", stored.len());
        assert!(stored.iter().all(|a| a.record.value == 100.0));
    }
}
