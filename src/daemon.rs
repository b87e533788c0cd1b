//! Builds the daemon from its settings (source, store, sinks, metrics, scheduler, API) and
//! runs it until SIGINT/SIGTERM: scheduling stops, in-flight work and the store flush, then
//! the HTTP server, all within 10 seconds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::api::{app, AppState};
use crate::clock::Clock;
use crate::config::{Settings, SourceConfig};
use crate::influx::v2::Client2;
use crate::influx::{Backend, Client};
use crate::metrics::Metrics;
use crate::scheduler::Scheduler;
use crate::sink::influxdb::InfluxSink;
use crate::sink::Sink;
use crate::source::demo::{floor_hour, DemoSpec};
use crate::source::influxdb::InfluxSource;
use crate::source::{CsvSource, DemoSource, Source};
use crate::store::{Store, StoreSink};

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Other(String),
}

/// Takes `viewcast.lock` in the data folder for as long as the returned file lives, and
/// writes this process's id into it. Two daemons on one folder both ran: both polled,
/// fitted and wrote the same store, and with an InfluxDB sink both sent the same spool.
/// The lock is the OS's (flock), so it goes with the process however it ends.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, DaemonError> {
    use std::io::{Read as _, Seek as _, Write as _};
    let failed =
        |e: std::io::Error| DaemonError::Other(format!("data folder {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let path = dir.join("viewcast.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(failed)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0).map_err(failed)?;
            file.rewind().map_err(failed)?;
            writeln!(file, "{}", std::process::id()).map_err(failed)?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = match pid.trim() {
                "" => String::new(),
                p => format!(" (pid {p})"),
            };
            Err(DaemonError::Other(format!(
                "data folder {} is in use by another viewcast{pid}: give each daemon its own --data-dir",
                dir.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(failed(e)),
    }
}

/// The socket address `--listen` names, or what is wrong with it.
pub fn listen_addr(listen: &str) -> Result<SocketAddr, String> {
    listen
        .parse()
        .map_err(|_| format!("--listen: `{listen}` is not an address like 127.0.0.1:8080"))
}

/// Command-line overrides of the config.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
}

/// Builds the configured source. The demo feed's anomalies are anchored to the first start
/// (kept in the store), so a restart continues the same data set.
pub fn build_source(
    settings: &Settings,
    store: &Store,
    clock: &dyn Clock,
) -> Result<Arc<dyn Source>, DaemonError> {
    Ok(match &settings.config.source {
        SourceConfig::Demo(d) => {
            let anchor = match store
                .meta("demo_anchor")?
                .and_then(|v| v.parse::<i64>().ok())
            {
                Some(a) => a,
                None => {
                    let a = floor_hour(clock.now());
                    store.set_meta("demo_anchor", &a.to_string())?;
                    a
                }
            };
            Arc::new(DemoSource::new(
                DemoSpec::new(d.seed, d.channels, anchor),
                settings.history_secs,
            ))
        }
        SourceConfig::Csv(c) => Arc::new(CsvSource::new(
            c.path.clone(),
            c.value_column.clone(),
            c.tag_columns.clone(),
        )),
        SourceConfig::InfluxdbV1(_) | SourceConfig::InfluxdbV2(_) => {
            let v2 = matches!(settings.config.source, SourceConfig::InfluxdbV2(_));
            let query = settings
                .influx_query
                .clone()
                .ok_or_else(|| DaemonError::Other("an InfluxDB source needs [influxdb]".into()))?;
            Arc::new(InfluxSource::new(backend(settings, v2)?, query))
        }
    })
}

/// The configured InfluxDB server through the v1 or the v2 API.
fn backend(settings: &Settings, v2: bool) -> Result<Backend, DaemonError> {
    let err = |e: crate::influx::InfluxError| DaemonError::Other(e.to_string());
    let missing =
        || DaemonError::Other("InfluxDB sources and sinks need an [influxdb] section".into());
    Ok(if v2 {
        Backend::V2(Client2::new(settings.influx2.clone().ok_or_else(missing)?).map_err(err)?)
    } else {
        Backend::V1(Client::new(settings.influx.clone().ok_or_else(missing)?).map_err(err)?)
    })
}

/// Runs the daemon until a shutdown signal.
pub async fn run(
    settings: Settings,
    overrides: Overrides,
    clock: Arc<dyn Clock>,
) -> Result<(), DaemonError> {
    let cancel = CancellationToken::new();
    let signal = cancel.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        info!("shutdown requested");
        signal.cancel();
    });
    serve(settings, overrides, clock, cancel).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the daemon until `cancel` fires.
pub async fn serve(
    settings: Settings,
    overrides: Overrides,
    clock: Arc<dyn Clock>,
    cancel: CancellationToken,
) -> Result<(), DaemonError> {
    let cfg = &settings.config;
    let data_dir = overrides
        .data_dir
        .clone()
        .unwrap_or_else(|| cfg.store.data_dir.clone());
    let listen = overrides
        .listen
        .clone()
        .unwrap_or_else(|| cfg.api.listen.clone());
    let addr = listen_addr(&listen).map_err(DaemonError::Other)?;

    // Held until the daemon returns: a second daemon on the same folder is refused.
    let _lock = lock_data_dir(&data_dir)?;
    let store = Store::open(&data_dir)?;
    let source = build_source(&settings, &store, clock.as_ref())?;
    let metrics = Arc::new(Metrics::new(&source.tag_keys(), cfg.metrics.max_series)?);
    let mut sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(StoreSink(store.clone()))];
    let engine = Arc::new(settings.engine.clone());
    let mut scheduler = Scheduler::new(
        source.clone(),
        Vec::new(),
        store.clone(),
        metrics.clone(),
        clock.clone(),
        engine.clone(),
        Duration::from_secs(settings.interval_secs as u64),
        settings.backfill_secs,
        settings.retention_secs,
        cfg.schedule.fit_threads,
    );
    let drain_cancel = CancellationToken::new();
    let mut drainers = Vec::new();
    for (i, (layout, cfg)) in settings.sink_layouts.iter().zip(&cfg.sinks).enumerate() {
        let client = backend(&settings, cfg.is_v2())?;
        let name = if i == 0 {
            "influxdb".to_string()
        } else {
            format!("influxdb-{i}")
        };
        let sink = InfluxSink::new(
            name,
            client,
            store.clone(),
            layout.clone(),
            metrics.clone(),
            scheduler.health.clone(),
        );
        drainers.push(tokio::spawn(sink.clone().run_drainer(drain_cancel.clone())));
        sinks.push(sink);
    }
    scheduler.sinks = sinks;
    let state = AppState {
        store: store.clone(),
        metrics,
        health: scheduler.health.clone(),
        refits: scheduler.refits.clone(),
        clock,
        token: settings.api_token.clone(),
        default_horizon_secs: engine.horizon_secs,
        max_horizon_secs: settings.max_horizon_secs,
        levels: engine.levels.clone(),
        default_level: if engine.levels.contains(&95.0) {
            95.0
        } else {
            engine.detect_level
        },
        options: crate::api::ApiOptions {
            auth_all_routes: cfg.api.auth_all_routes,
            cors_origins: cfg.api.cors_origins.clone(),
            request_timeout: Duration::from_secs(settings.request_timeout_secs as u64),
            max_body_bytes: cfg.api.max_body_bytes,
        },
        events: engine.events,
        detect_level: engine.detect_level,
    };

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: listen.clone(),
            source,
        })?;
    let bound = listener
        .local_addr()
        .map_err(|source| DaemonError::Listen {
            addr: listen.clone(),
            source,
        })?;
    info!(
        listen = %format!("http://{bound}"),
        source = %source.describe(),
        store = %data_dir.join("viewcast.db").display(),
        config = %settings.origin,
        "viewcast started"
    );

    let sched_cancel = cancel.child_token();
    let mut sched = tokio::spawn(scheduler.run(sched_cancel.clone()));
    let http_cancel = CancellationToken::new();
    let http_stop = http_cancel.clone();
    let mut server = tokio::spawn(async move {
        axum::serve(listener, app(state))
            .with_graceful_shutdown(async move { http_stop.cancelled().await })
            .await
    });

    tokio::select! {
        _ = cancel.cancelled() => {}
        r = &mut server => {
            sched_cancel.cancel();
            return Err(DaemonError::Other(format!("HTTP server stopped: {r:?}")));
        }
    }
    // Drain the write side first (the scheduler finishes in-flight series and writes them),
    // then the front end.
    if tokio::time::timeout(Duration::from_secs(7), &mut sched)
        .await
        .is_err()
    {
        warn!("scheduler did not stop within 7s; leaving in-flight work");
        sched.abort();
    }
    http_cancel.cancel();
    if tokio::time::timeout(Duration::from_secs(2), &mut server)
        .await
        .is_err()
    {
        server.abort();
    }
    info!("viewcast stopped");
    Ok(())
}
