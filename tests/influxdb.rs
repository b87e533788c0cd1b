//! InfluxDB in and out, against a real `influxd` (Debian's influxdb 1.6.7, v1 API): the
//! shipped `config/influxdb-v1.toml` reading the sample data, the exact schema written back,
//! tag values with every special character, channels that appear later, the bucket still
//! filling, and an outage (with a daemon restart in the middle) that loses nothing, and a server with
//! authentication on.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::influx::InfluxServer;
use common::{get_json, http, metric, wait_for, Daemon, HOUR};

/// A channel name with quotes, a backslash, a comma, spaces, `=` and non-ASCII text.
const ODD: &str = "Kanal \"Eins\", Süd\\Nord = 1 ñ";
/// The same, escaped by hand for a line-protocol tag value.
const ODD_LP: &str = "Kanal\\ \"Eins\"\\,\\ Süd\\Nord\\ \\=\\ 1\\ ñ";

fn shipped_config(dir: &Path, replace: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/influxdb-v1.toml"),
    )
    .unwrap();
    for (a, b) in replace {
        assert!(text.contains(a), "{a} not in the shipped config");
        text = text.replacen(a, b, 1);
    }
    let p = dir.join("viewcast.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The shipped config polling every second, with a 2-day backfill over 3 weeks of history.
fn fast_config(dir: &Path) -> std::path::PathBuf {
    shipped_config(
        dir,
        &[
            ("interval = \"1m\"", "interval = \"1s\""),
            ("backfill = \"14d\"", "backfill = \"2d\""),
            ("lookback = \"112d\"", "lookback = \"21d\""),
        ],
    )
}

/// Waits for the daemon's first cycle and for its spool to drain into `influx`, then counts
/// the forecast points written per channel.
fn forecasts_written(d: &Daemon, influx: &InfluxServer) -> BTreeMap<String, i64> {
    d.wait_ready(Duration::from_secs(120));
    wait_for("the spool to drain", Duration::from_secs(60), || {
        metric(d.port, "viewcast_spool_pending_points").filter(|n| *n == 0.0)
    });
    counts(
        influx,
        "SELECT count(yhat) FROM viewcast_forecast GROUP BY channel",
    )
}

fn sample_lines(dir: &Path, weeks: u32, end: i64) -> String {
    let out = dir.join("sample.lp");
    let end = chrono::DateTime::from_timestamp(end, 0)
        .unwrap()
        .to_rfc3339();
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_viewcast"))
        .args([
            "sample-data",
            "--format",
            "line-protocol",
            "--out",
            out.to_str().unwrap(),
            "--weeks",
            &weeks.to_string(),
            "--end",
            &end,
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

/// Lines for one extra channel: the `news` lines renamed.
fn renamed(lines: &str, tag_lp: &str) -> String {
    lines
        .lines()
        .filter(|l| l.starts_with("viewership,channel=news "))
        .map(|l| l.replacen("channel=news", &format!("channel={tag_lp}"), 1) + "\n")
        .collect()
}

fn counts(influx: &InfluxServer, q: &str) -> BTreeMap<String, i64> {
    influx
        .series("viewership", q)
        .into_iter()
        .map(|(tags, rows)| {
            (
                tags["channel"].as_str().unwrap().to_string(),
                rows[0][1].as_i64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn reads_sample_data_writes_the_schema_back_and_picks_up_new_channels() {
    let tmp = tempfile::tempdir().unwrap();
    let influx = InfluxServer::start();
    influx.query("", "CREATE DATABASE viewership");
    let now = chrono::Utc::now().timestamp();
    let end = now - now.rem_euclid(HOUR);
    // The sample data runs to the current hour: that bucket is still filling.
    let lines = sample_lines(tmp.path(), 3, end);
    influx.write("viewership", &lines, "ns");
    influx.write("viewership", &renamed(&lines, ODD_LP), "ns");

    let config = fast_config(tmp.path());
    let url = influx.url();
    let d = Daemon::start_with(
        &tmp.path().join("data"),
        tmp.path(),
        &["--config", config.to_str().unwrap()],
        &[("INFLUXDB_URL", &url), ("INFLUXDB_DB", "viewership")],
    );
    // Every channel, including the odd one, got a 168-point forecast and anomaly points.
    let forecasts = forecasts_written(&d, &influx);
    assert_eq!(forecasts.len(), 13, "{forecasts:?}");
    assert!(forecasts.values().all(|n| *n == 168), "{forecasts:?}");
    assert!(
        forecasts.contains_key(ODD),
        "odd channel name did not round-trip: {forecasts:?}"
    );
    let anomalies = counts(
        &influx,
        "SELECT count(y) FROM viewcast_anomaly GROUP BY channel",
    );
    assert_eq!(anomalies.len(), 13);
    assert!(anomalies.values().all(|n| *n >= 40), "{anomalies:?}");
    let odd_q = format!(
        "SELECT count(yhat) FROM viewcast_forecast WHERE channel = '{}'",
        ODD.replace('\\', "\\\\").replace('\'', "\\'")
    );
    assert_eq!(influx.series("viewership", &odd_q)[0].1[0][1], 168);
    grafana_queries_answer(&influx);

    // The exact schema: tags and field types.
    let keys = |q: &str| -> Vec<String> {
        influx
            .series("viewership", q)
            .into_iter()
            .flat_map(|(_, rows)| rows.into_iter().map(|r| r[0].as_str().unwrap().to_string()))
            .collect()
    };
    assert_eq!(
        keys("SHOW TAG KEYS FROM viewcast_forecast"),
        vec!["channel", "model"]
    );
    assert_eq!(
        keys("SHOW TAG KEYS FROM viewcast_anomaly"),
        vec!["channel", "detector"]
    );
    let fields = |m: &str| -> Vec<(String, String)> {
        influx
            .series("viewership", &format!("SHOW FIELD KEYS FROM {m}"))
            .into_iter()
            .flat_map(|(_, rows)| {
                rows.into_iter().map(|r| {
                    (
                        r[0].as_str().unwrap().to_string(),
                        r[1].as_str().unwrap().to_string(),
                    )
                })
            })
            .collect()
    };
    let f = |pairs: &[(&str, &str)]| {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        fields("viewcast_forecast"),
        f(&[
            ("yhat", "float"),
            ("yhat_lower", "float"),
            ("yhat_upper", "float")
        ])
    );
    assert_eq!(
        fields("viewcast_anomaly"),
        f(&[
            ("anomaly_score", "float"),
            ("is_anomaly", "boolean"),
            ("y", "float"),
            ("yhat", "float"),
            ("yhat_lower", "float"),
            ("yhat_upper", "float")
        ])
    );

    // The still-filling bucket (the sample data's last hour) never became an observation.
    let (_, series) = get_json(d.port, "/api/v1/series?channel=news");
    let last =
        chrono::DateTime::parse_from_rfc3339(series["series"][0]["last_point"].as_str().unwrap())
            .unwrap()
            .timestamp();
    let now = chrono::Utc::now().timestamp();
    if now - now.rem_euclid(HOUR) == end {
        assert_eq!(last, end - HOUR, "the bucket at {end} is still filling");
    }
    let observed = influx.series(
        "viewership",
        &format!("SELECT count(y) FROM viewcast_anomaly WHERE time >= {end}s"),
    );
    if now - now.rem_euclid(HOUR) == end {
        assert!(
            observed.is_empty(),
            "the still-filling bucket was scored: {observed:?}"
        );
    }

    // A channel written after start-up is forecast on a later cycle.
    influx.write("viewership", &renamed(&lines, "late-night"), "ns");
    wait_for(
        "the new channel's forecast in InfluxDB",
        Duration::from_secs(90),
        || {
            counts(
                &influx,
                "SELECT count(yhat) FROM viewcast_forecast GROUP BY channel",
            )
            .get("late-night")
            .filter(|n| **n == 168)
            .copied()
        },
    );
    let (code, f) = get_json(d.port, "/api/v1/forecast?channel=late-night");
    assert_eq!(code, 200);
    assert_eq!(f["series"][0]["points"].as_array().unwrap().len(), 168);

    let (status, _) = d.terminate();
    assert!(status.success());
}

/// With authentication on, the shipped config's credentials (from the environment, a
/// password with `&`, `=` and a space) read and write; a wrong password leaves the daemon
/// serving with `/readyz` naming the 401; neither password ever reaches the log.
#[test]
fn credentials_read_and_write_and_never_reach_the_log() {
    const PASSWORD: &str = "s3cr&t=1 x";
    let tmp = tempfile::tempdir().unwrap();
    let influx = InfluxServer::start_with_auth(Some(("viewcast", PASSWORD)));
    influx.query("", "CREATE DATABASE viewership");
    let now = chrono::Utc::now().timestamp();
    let lines = sample_lines(tmp.path(), 3, now - now.rem_euclid(HOUR));
    influx.write("viewership", &lines, "ns");
    let config = fast_config(tmp.path());
    let url = influx.url();
    let run = |password: &str, name: &str| {
        let log = std::fs::File::create(tmp.path().join(name)).unwrap();
        Daemon::start_logging(
            &tmp.path().join(name).with_extension("data"),
            tmp.path(),
            &["--config", config.to_str().unwrap()],
            &[
                ("INFLUXDB_URL", &url),
                ("INFLUXDB_DB", "viewership"),
                ("INFLUXDB_USER", "viewcast"),
                ("INFLUXDB_PASSWORD", password),
                ("RUST_LOG", "debug"),
            ],
            log.into(),
        )
    };

    let d = run(PASSWORD, "right.log");
    let forecasts = forecasts_written(&d, &influx);
    assert_eq!(forecasts.len(), 12, "{forecasts:?}");
    assert!(d.terminate().0.success());

    let d = run("n0t-the-pa55", "wrong.log");
    let reason = wait_for(
        "/readyz to name the refusal",
        Duration::from_secs(30),
        || http(d.port, "GET", "/readyz").filter(|(c, b)| *c == 503 && b.contains("401")),
    );
    assert!(reason.1.contains("authorization failed"), "{}", reason.1);
    assert!(d.terminate().0.success());

    for (name, secret) in [("right.log", PASSWORD), ("wrong.log", "n0t-the-pa55")] {
        let log = std::fs::read_to_string(tmp.path().join(name)).unwrap();
        assert!(log.contains("viewcast started"), "{name}: {log}");
        // A log that is not a terminal is plain text.
        assert!(
            !log.contains('\x1b'),
            "{name} holds terminal colour codes: {log}"
        );
        assert!(!log.contains(secret), "{name} holds the password");
        assert!(
            !log.contains(&common::influx::enc(secret)),
            "{name} holds the password"
        );
    }
}

/// Every InfluxQL query of the shipped Grafana dashboard, with its template variables filled
/// in as Grafana would, runs on what the daemon wrote; all but the flagged-only ones return
/// values.
fn grafana_queries_answer(influx: &InfluxServer) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/grafana/viewcast-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries: Vec<String> = Vec::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().into_iter().flatten() {
            if t["datasource"]["type"] == "influxdb" {
                queries.push(t["query"].as_str().unwrap().to_string());
            }
        }
    }
    for a in dash["annotations"]["list"].as_array().unwrap() {
        queries.push(a["query"].as_str().unwrap().to_string());
    }
    for v in dash["templating"]["list"].as_array().unwrap() {
        if v["type"] == "query" {
            queries.push(v["query"].as_str().unwrap().to_string());
        }
    }
    assert!(queries.len() >= 6, "{queries:?}");
    for q in queries {
        // Grafana renders the dashboard's range (now-14d to now+7d) as explicit bounds.
        let sql = q
            .replace("$timeFilter", "time >= now() - 14d AND time <= now() + 7d")
            .replace("$__interval", "1h")
            .replace("$channel", "news");
        let v = influx.query("viewership", &sql);
        let r = &v["results"][0];
        assert!(r["error"].is_null(), "{sql}: {v}");
        if q.contains("\"is_anomaly\" = true") {
            continue;
        }
        let values = r["series"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            values
                .iter()
                .any(|row| row.as_array().unwrap().iter().skip(1).any(|x| !x.is_null())),
            "{sql}: no values: {v}"
        );
    }
}

fn csv_series(dir: &Path, name: &str, start: i64, hours: usize) {
    let mut s = String::from("timestamp,value\n");
    for i in 0..hours {
        let t = start + i as i64 * HOUR;
        let h = (t.rem_euclid(86_400) / HOUR) as f64;
        let v =
            1000.0 + 500.0 * (h / 24.0 * std::f64::consts::TAU).sin() + ((i * 7919) % 37) as f64;
        s.push_str(&format!(
            "{},{v}\n",
            chrono::DateTime::from_timestamp(t, 0)
                .unwrap()
                .format("%Y-%m-%d %H:%M:%S")
        ));
    }
    std::fs::write(dir.join(format!("{name}.csv")), s).unwrap();
}

#[test]
fn an_outage_with_a_daemon_restart_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut influx = InfluxServer::start();
    influx.query("", "CREATE DATABASE viewership");
    let exports = tmp.path().join("exports");
    std::fs::create_dir(&exports).unwrap();
    let start = 1_767_225_600; // 2026-01-01T00:00:00Z
    let channels = ["alpha", "beta", "gamma"];
    for c in channels {
        csv_series(&exports, c, start, 21 * 24);
    }
    let config = tmp.path().join("viewcast.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\ntype = \"csv\"\npath = \"{}\"\n\n[influxdb]\nurl = \"{}\"\ndatabase = \"viewership\"\n\n[[sinks]]\ntype = \"influxdb_v1\"\nbatch_lines = 100\n\n[schedule]\ninterval = \"1s\"\nbackfill = \"1d\"\n",
            exports.display(),
            influx.url()
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let args = ["--config", config.to_str().unwrap()];
    let d = Daemon::start_with(&data, tmp.path(), &args, &[]);
    d.wait_ready(Duration::from_secs(120));
    wait_for(
        "the first results in InfluxDB",
        Duration::from_secs(60),
        || metric(d.port, "viewcast_spool_pending_points").filter(|n| *n == 0.0),
    );
    let before = counts(
        &influx,
        "SELECT count(y) FROM viewcast_anomaly GROUP BY channel",
    );
    assert_eq!(before.len(), 3);

    // Outage: InfluxDB goes away; new observations arrive and a refit is forced.
    influx.stop();
    for c in channels {
        csv_series(&exports, c, start, 21 * 24 + 3);
    }
    let (code, _) = http(d.port, "POST", "/api/v1/refit").unwrap();
    assert_eq!(code, 202);
    let pending = wait_for(
        "results to pile up in the spool",
        Duration::from_secs(60),
        || metric(d.port, "viewcast_spool_pending_points").filter(|n| *n > 0.0),
    );
    assert_eq!(
        http(d.port, "GET", "/healthz").unwrap().0,
        200,
        "the daemon stays healthy"
    );
    let (code, ready) = get_json(d.port, "/readyz");
    assert_eq!(code, 503);
    assert!(
        ready["error"].as_str().unwrap().contains("degraded"),
        "{ready}"
    );
    let (code, _) = get_json(d.port, "/api/v1/forecast?channel=alpha");
    assert_eq!(code, 200, "the API keeps serving");

    // The daemon restarts in the middle of the outage: the spool survives.
    let (status, _) = d.terminate();
    assert!(status.success());
    let d = Daemon::start_with(&data, tmp.path(), &args, &[]);
    let still = wait_for(
        "the spool gauge after restart",
        Duration::from_secs(30),
        || metric(d.port, "viewcast_spool_pending_points").filter(|n| *n > 0.0),
    );
    assert!(
        still >= pending,
        "spool shrank across a restart: {still} < {pending}"
    );

    // InfluxDB returns: everything spooled arrives, nothing twice.
    influx.resume();
    wait_for("the spool to drain", Duration::from_secs(120), || {
        metric(d.port, "viewcast_spool_pending_points").filter(|n| *n == 0.0)
    });
    let after = counts(
        &influx,
        "SELECT count(y) FROM viewcast_anomaly GROUP BY channel",
    );
    for c in channels {
        assert_eq!(
            after[c],
            before[c] + 3,
            "{c}: the three hours observed during the outage, once each"
        );
        let t = start + (21 * 24 + 2) as i64 * HOUR;
        let rows = influx.series(
            "viewership",
            &format!("SELECT y FROM viewcast_anomaly WHERE channel = '{c}' AND time = {t}s"),
        );
        assert_eq!(rows.len(), 1, "{c} at {t}");
        assert_eq!(rows[0].1.len(), 1);
    }
    let forecasts = counts(
        &influx,
        "SELECT count(yhat) FROM viewcast_forecast GROUP BY channel",
    );
    let latest = influx.series(
        "viewership",
        &format!(
            "SELECT count(yhat) FROM viewcast_forecast WHERE time > {}s GROUP BY channel",
            start + (21 * 24 + 2) as i64 * HOUR
        ),
    );
    assert_eq!(
        latest.len(),
        3,
        "the forecast refitted during the outage arrived"
    );
    assert!(forecasts.values().all(|n| *n >= 168));
    wait_for(
        "readiness once InfluxDB is back",
        Duration::from_secs(30),
        || http(d.port, "GET", "/readyz").filter(|(c, _)| *c == 200),
    );
    let (status, _) = d.terminate();
    assert!(status.success());
}

/// InfluxDB 2.x cannot run here: this test runs the real v2 code path (the `influxdb2` crate,
/// Flux, `/api/v2/write`) against `common::influx2_stub`, a stub that replays the 2.x protocol.
#[test]
fn v2_api_through_the_protocol_stub() {
    use common::influx2_stub::{Influx2Stub, BUCKET, ORG, TOKEN};
    let tmp = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp();
    let end = now - now.rem_euclid(HOUR);
    let mut series = BTreeMap::new();
    for (c, base) in [
        ("news", 1000.0),
        ("a \"quoted\", channel", 500.0),
        ("kids", 300.0),
    ] {
        let pts: Vec<(i64, f64)> = (0..21 * 24 + 1)
            .map(|i| {
                let t = end - (21 * 24 - i) * HOUR;
                let h = (t.rem_euclid(86_400) / HOUR) as f64;
                (
                    t,
                    base * (1.5 + (h / 24.0 * std::f64::consts::TAU).sin())
                        + ((i * 7919) % 23) as f64,
                )
            })
            .collect();
        series.insert(c.to_string(), pts);
    }
    let stub = Influx2Stub::start(series);
    let config = tmp.path().join("viewcast.toml");
    let shipped = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/influxdb-v2.toml"),
    )
    .unwrap();
    std::fs::write(
        &config,
        shipped
            .replacen("interval = \"1m\"", "interval = \"1s\"", 1)
            .replacen("backfill = \"14d\"", "backfill = \"1d\"", 1),
    )
    .unwrap();
    let url = stub.url();
    let env = [
        ("INFLUXDB_URL", url.as_str()),
        ("INFLUXDB_ORG", ORG),
        ("INFLUXDB_BUCKET", BUCKET),
        ("INFLUXDB_TOKEN", TOKEN),
    ];
    let d = Daemon::start_with(
        &tmp.path().join("data"),
        tmp.path(),
        &["--config", config.to_str().unwrap()],
        &env,
    );
    d.wait_ready(Duration::from_secs(120));
    wait_for("the spool to drain", Duration::from_secs(60), || {
        metric(d.port, "viewcast_spool_pending_points").filter(|n| *n == 0.0)
    });

    {
        let st = stub.state.lock().unwrap();
        let q = &st.queries[0];
        assert!(
            q.contains("aggregateWindow(every: 3600s, fn: mean")
                && q.contains("group(columns: [\"channel\"])"),
            "{q}"
        );
        let (params, _) = &st.writes[0];
        assert_eq!(params.get("precision").map(String::as_str), Some("s"));
        assert_eq!(params.get("bucket").map(String::as_str), Some(BUCKET));
    }
    let lines = stub.lines();
    let forecast_for = |tag: &str| {
        lines
            .iter()
            .filter(|l| l.starts_with(&format!("viewcast_forecast,channel={tag},model=")))
            .count()
    };
    assert_eq!(forecast_for("news"), 168);
    assert_eq!(
        forecast_for("a\\ \"quoted\"\\,\\ channel"),
        168,
        "escaped tag value"
    );
    assert!(lines
        .iter()
        .any(|l| l.starts_with("viewcast_anomaly,channel=kids,detector=")
            && l.contains(" y=")
            && l.contains("is_anomaly=")));
    // The still-filling hour the stub holds was not read as an observation.
    let (_, s) = get_json(d.port, "/api/v1/series?channel=news");
    let last = chrono::DateTime::parse_from_rfc3339(s["series"][0]["last_point"].as_str().unwrap())
        .unwrap()
        .timestamp();
    let now = chrono::Utc::now().timestamp();
    if now - now.rem_euclid(HOUR) == end {
        assert_eq!(last, end - HOUR);
    }

    // Writes fail: results are spooled, then delivered when it is back.
    stub.set_writes_down(true);
    let before = stub.lines().len();
    assert_eq!(http(d.port, "POST", "/api/v1/refit").unwrap().0, 202);
    wait_for(
        "results to pile up in the spool",
        Duration::from_secs(60),
        || metric(d.port, "viewcast_spool_pending_points").filter(|n| *n > 0.0),
    );
    let (code, ready) = get_json(d.port, "/readyz");
    assert_eq!(code, 503);
    assert!(ready["error"].as_str().unwrap().contains("degraded"));
    stub.set_writes_down(false);
    wait_for("the spool to drain", Duration::from_secs(90), || {
        metric(d.port, "viewcast_spool_pending_points").filter(|n| *n == 0.0)
    });
    assert!(
        stub.lines().len() >= before + 3 * 168,
        "the refitted forecasts arrived"
    );
    let (status, _) = d.terminate();
    assert!(status.success());
}

#[test]
fn silent_channels_are_retired_and_come_back_with_new_data() {
    use viewcast::influx::{Backend, Client, Conn};
    use viewcast::source::influxdb::{Aggregate, InfluxSource, Query};
    use viewcast::source::Source;
    let influx = InfluxServer::start();
    influx.query("", "CREATE DATABASE viewership");
    let now: i64 = 1_767_225_600 + 1800; // 2026-01-01T00:30Z: the 00:00 bucket is still filling
    let end = now - now.rem_euclid(HOUR);
    let mut lines = String::new();
    for i in 1..=48 {
        lines.push_str(&format!(
            "viewership,channel=live viewers=10 {}\n",
            end - i * HOUR
        ));
        if i > 5 {
            lines.push_str(&format!(
                "viewership,channel=gone viewers=10 {}\n",
                end - i * HOUR
            ));
        }
    }
    influx.write("viewership", &lines, "s");
    let conn = Conn {
        url: influx.url(),
        database: "viewership".into(),
        retention_policy: String::new(),
        username: String::new(),
        password: Default::default(),
        token: Default::default(),
        timeout: Duration::from_secs(10),
    };
    let query = Query {
        measurement: "viewership".into(),
        field: "viewers".into(),
        aggregate: Aggregate::Mean,
        group_by: vec!["channel".into()],
        filters: vec![],
        every: HOUR,
        lookback: 3 * 86_400,
        late_buckets: 2,
        retire_after: 3 * HOUR,
    };
    let src = InfluxSource::new(Backend::V1(Client::new(conn).unwrap()), query);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let names = |p: &viewcast::source::Poll| -> (Vec<String>, Vec<String>) {
        (
            p.updates.iter().map(|u| u.key.to_string()).collect(),
            p.retired.iter().map(|k| k.to_string()).collect(),
        )
    };
    let first = rt.block_on(src.poll(now)).unwrap();
    assert_eq!(
        names(&first),
        (
            vec!["channel=live".to_string()],
            vec!["channel=gone".to_string()]
        )
    );
    assert_eq!(first.updates[0].points.len(), 48);
    assert_eq!(first.updates[0].points.last().unwrap().ts, end - HOUR);
    let again = rt.block_on(src.poll(now + HOUR)).unwrap();
    assert!(
        names(&again).1.is_empty(),
        "a retired channel is reported once"
    );
    // `gone` is back: the next poll reads its whole history again.
    influx.write(
        "viewership",
        &format!("viewership,channel=gone viewers=10 {}\n", end),
        "s",
    );
    let back = rt.block_on(src.poll(now + 2 * HOUR)).unwrap();
    let gone = back
        .updates
        .iter()
        .find(|u| u.key.to_string() == "channel=gone")
        .expect("gone is back");
    assert_eq!(gone.points.len(), 44);
}

/// A batch InfluxDB refuses (4xx: bad data, unknown bucket) is logged, counted and dropped,
/// not retried forever; a 5xx keeps it.
#[test]
fn rejected_batches_are_counted_and_dropped_not_retried() {
    use common::influx2_stub::{Influx2Stub, ORG, TOKEN};
    use std::sync::Arc;
    use viewcast::influx::v2::{Client2, Conn2};
    use viewcast::influx::Backend;
    use viewcast::metrics::Metrics;
    use viewcast::scheduler::Health;
    use viewcast::sink::influxdb::{InfluxSink, Layout};
    use viewcast::sink::{AnomalyRecord, CycleOutput, SeriesOutput, SeriesState, Sink, Status};
    use viewcast::store::{SpoolFull, Store};

    let stub = Influx2Stub::start(BTreeMap::new());
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let metrics = Arc::new(Metrics::new(&["channel".into()], 10).unwrap());
    let conn = |bucket: &str| Conn2 {
        url: stub.url(),
        org: ORG.into(),
        bucket: bucket.into(),
        token: viewcast::config::Secret::new(TOKEN),
        timeout: Duration::from_secs(5),
    };
    let layout = Layout {
        forecast_measurement: "viewcast_forecast".into(),
        anomaly_measurement: "viewcast_anomaly".into(),
        level: 95.0,
        batch_lines: 1,
        spool_max_points: 100,
        on_spool_full: SpoolFull::DropOldest,
    };
    let out = CycleOutput {
        generated_at: 0,
        series: vec![SeriesOutput {
            key: viewcast::series::SeriesKey::new([("channel", "news")]),
            state: SeriesState::new(Status::Ok, 3600),
            forecast: None,
            anomalies: (0..3)
                .map(|i| AnomalyRecord {
                    time: i * 3600,
                    value: 1.0,
                    yhat: 1.0,
                    yhat_lower: 0.0,
                    yhat_upper: 2.0,
                    score: 0.0,
                    is_anomaly: false,
                    detector: "interval".into(),
                })
                .collect(),
            events: vec![],
        }],
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Unknown bucket: the stub answers 404, as 2.x does.
    let sink = InfluxSink::new(
        "bad".into(),
        Backend::V2(Client2::new(conn("no-such-bucket")).unwrap()),
        store.clone(),
        layout.clone(),
        metrics.clone(),
        Arc::new(Health::default()),
    );
    rt.block_on(sink.write(&out)).unwrap();
    assert_eq!(store.spool_pending("bad").unwrap(), 3);
    assert!(
        rt.block_on(sink.drain()),
        "a 4xx is not a reason to stop draining"
    );
    assert_eq!(
        store.spool_pending("bad").unwrap(),
        0,
        "rejected batches are dropped"
    );
    assert!(metrics
        .render()
        .contains("viewcast_errors_total{stage=\"sink\"} 3"));
    // 5xx: kept for a retry.
    stub.set_writes_down(true);
    let good = InfluxSink::new(
        "good".into(),
        Backend::V2(Client2::new(conn(common::influx2_stub::BUCKET)).unwrap()),
        store.clone(),
        layout,
        metrics,
        Arc::new(Health::default()),
    );
    rt.block_on(good.write(&out)).unwrap();
    assert!(!rt.block_on(good.drain()));
    assert_eq!(store.spool_pending("good").unwrap(), 3);
    stub.set_writes_down(false);
    assert!(rt.block_on(good.drain()));
    assert_eq!(store.spool_pending("good").unwrap(), 0);
    assert_eq!(stub.lines().len(), 3);
}
