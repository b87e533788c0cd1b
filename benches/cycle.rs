//! One full daemon cycle against a local `influxd`: N synthetic channels × 4 weeks of hourly
//! data are loaded, then the cold first cycle (read everything, fit every series), a
//! steady-state cycle (one new hour per channel: incremental read, refit, detect) and the
//! first cycle after a restart (read everything, replay the default 14-day backfill without
//! reporting it, score one new hour) are timed, split into reading, modelling and writing
//! (spool + delivery to InfluxDB), with peak memory.
//!
//! `cargo bench --bench cycle -- 1000 10000` (default: 1000). Under `cargo test` it runs
//! once with 20 channels as a smoke test. Needs `influxd` (Debian's influxdb package).

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::influx::InfluxServer;
use tokio_util::sync::CancellationToken;
use viewcast::clock::{Clock, ManualClock};
use viewcast::engine::EngineSettings;
use viewcast::influx::{Backend, Client, Conn};
use viewcast::metrics::Metrics;
use viewcast::scheduler::Scheduler;
use viewcast::sink::influxdb::{InfluxSink, Layout};
use viewcast::sink::Sink;
use viewcast::source::demo::DemoSpec;
use viewcast::source::influxdb::{Aggregate, InfluxSource, Query};
use viewcast::store::{SpoolFull, Store, StoreSink};

const HOUR: i64 = 3600;

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn load(influx: &InfluxServer, spec: &DemoSpec, n: usize, from: i64, to: i64) {
    let mut buf = String::new();
    let mut lines = 0;
    for ch in 0..n {
        let mut ts = from;
        while ts <= to {
            buf.push_str(&format!(
                "viewership,channel=ch{ch:05} viewers={:.1} {ts}\n",
                spec.value(ch, ts)
            ));
            lines += 1;
            ts += HOUR;
            if lines == 100_000 {
                influx.write("bench", &buf, "s");
                buf.clear();
                lines = 0;
            }
        }
    }
    if !buf.is_empty() {
        influx.write("bench", &buf, "s");
    }
}

async fn run(n: usize) {
    let influx = InfluxServer::start();
    influx.query("", "CREATE DATABASE bench");
    let end = 1_767_225_600; // 2026-01-01T00:00Z: the last complete hour at the bench's "now"
    let spec = DemoSpec::new(7, 12, end);
    let t = Instant::now();
    load(&influx, &spec, n, end - 28 * 24 * HOUR + HOUR, end);
    let load_secs = t.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let conn = Conn {
        url: influx.url(),
        database: "bench".into(),
        retention_policy: String::new(),
        username: String::new(),
        password: Default::default(),
        token: Default::default(),
        timeout: Duration::from_secs(300),
    };
    let query = Query {
        measurement: "viewership".into(),
        field: "viewers".into(),
        aggregate: Aggregate::Mean,
        group_by: vec!["channel".into()],
        filters: vec![],
        every: HOUR,
        lookback: 28 * 86_400,
        late_buckets: 2,
        retire_after: 7 * 86_400,
    };
    let clock = Arc::new(ManualClock::new(end + HOUR + 60));
    // A daemon as started: its own source (no watermark yet), scheduler and sinks, on
    // `store`.
    let start = |backfill: i64, store: &Arc<Store>| {
        let source = Arc::new(InfluxSource::new(
            Backend::V1(Client::new(conn.clone()).unwrap()),
            query.clone(),
        ));
        let metrics = Arc::new(Metrics::new(&["channel".into()], n + 1).unwrap());
        let layout = Layout {
            forecast_measurement: "viewcast_forecast".into(),
            anomaly_measurement: "viewcast_anomaly".into(),
            level: 95.0,
            batch_lines: 5000,
            spool_max_points: 100_000_000,
            on_spool_full: SpoolFull::DropOldest,
        };
        let mut sched = Scheduler::new(
            source,
            vec![],
            store.clone(),
            metrics.clone(),
            clock.clone(),
            Arc::new(EngineSettings::default()),
            Duration::from_secs(60),
            backfill,
            30 * 86_400,
            0,
        );
        let sink = InfluxSink::new(
            "influxdb".into(),
            Backend::V1(Client::new(conn.clone()).unwrap()),
            store.clone(),
            layout,
            metrics,
            sched.health.clone(),
        );
        sched.sinks = vec![
            Arc::new(StoreSink(store.clone())) as Arc<dyn Sink>,
            sink.clone(),
        ];
        (sched, sink)
    };
    let cancel = CancellationToken::new();

    println!(
        "N = {n}: loaded {} points into influxd in {load_secs:.1} s",
        n * 28 * 24
    );
    // A first start with the default backfill, on a store of its own: it scores (and
    // writes) the 14 days before the latest hour. The cold cycle after it has no backfill.
    let first_dir = tempfile::tempdir().unwrap();
    let first_store = Store::open(first_dir.path()).unwrap();
    let mut daemon = None;
    // (label, one new hour first, a daemon started first with this backfill and store)
    for (label, advance, start_with) in [
        (
            "first start, default backfill (score and write 14 d)",
            false,
            Some((14 * 86_400, &first_store)),
        ),
        (
            "cold cycle (full read, fit all, no backfill)",
            false,
            Some((0, &store)),
        ),
        ("steady cycle (1 new hour each)", true, None),
        // The default backfill: the restart replays 14 days before what was scored.
        (
            "restart (full read, replay 14 d, 1 new hour)",
            true,
            Some((14 * 86_400, &store)),
        ),
    ] {
        if advance {
            let next = clock.now() - 60;
            load(&influx, &spec, n, next, next);
            clock.advance(HOUR);
        }
        if let Some((backfill, on)) = start_with {
            daemon = Some(start(backfill, on));
        }
        let (sched, sink) = daemon.as_mut().expect("the first scenario starts a daemon");
        let t = Instant::now();
        let r = sched.cycle(&cancel).await;
        let t_deliver = Instant::now();
        assert!(sink.drain().await, "delivery to InfluxDB failed");
        let deliver = t_deliver.elapsed().as_secs_f64();
        let total = t.elapsed().as_secs_f64();
        assert_eq!(r.series, n, "{r:?}");
        assert_eq!(r.errors, 0, "{r:?}");
        println!(
            "  {label}: {total:.1} s = read {:.1} s + model {:.1} s ({} fits) + spool {:.1} s + deliver {deliver:.1} s; now {}",
            r.read_secs,
            r.model_secs,
            r.fits,
            r.write_secs,
            viewcast::clock::rfc3339(clock.now())
        );
    }
    println!("  peak memory (RSS) {:.0} MiB", peak_rss_mib());
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if bench {
        let given: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
        if given.is_empty() {
            vec![1000]
        } else {
            given
        }
    } else {
        vec![20]
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        rt.block_on(run(n));
    }
}
