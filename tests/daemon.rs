//! The daemon from outside: the real binary on a free loopback port with a temp data dir,
//! on the embedded default (demo feed, SQLite store).

use std::time::Duration;

mod common;

use common::{get_json, http, Daemon, HOUR};

fn parse_time(s: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp()
}

#[test]
fn embedded_default_end_to_end_with_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // The working directory has no config/: the built-in embedded default applies.
    let before = chrono::Utc::now().timestamp();
    let d = Daemon::start(&data, tmp.path());
    let ready_in = d.wait_ready(Duration::from_secs(120));
    let after = chrono::Utc::now().timestamp();
    eprintln!("ready in {ready_in:?}");
    let port = d.port;

    let (code, series) = get_json(port, "/api/v1/series");
    assert_eq!(code, 200);
    let series = series["series"].as_array().unwrap().clone();
    assert_eq!(series.len(), 12);
    assert!(
        series
            .iter()
            .all(|s| s["status"] == "ok" && s["model"].is_string()),
        "{series:?}"
    );

    let (code, f) = get_json(port, "/api/v1/forecast?horizon=7d");
    assert_eq!(code, 200);
    let f = f["series"].as_array().unwrap().clone();
    assert_eq!(f.len(), 12);
    for s in &f {
        let pts = s["points"].as_array().unwrap();
        assert_eq!(pts.len(), 168, "{}", s["key"]);
        for p in pts {
            let (l, y, u) = (
                p["yhat_lower"].as_f64().unwrap(),
                p["yhat"].as_f64().unwrap(),
                p["yhat_upper"].as_f64().unwrap(),
            );
            assert!(0.0 <= l && l <= y && y <= u, "{p}");
        }
    }
    let generated_at =
        f.iter().find(|s| s["key"] == "channel=news").unwrap()["generated_at"].clone();

    // The demo injects an outage on `sports` 70 hours before the first start's hour.
    let (code, a) = get_json(port, "/api/v1/anomalies?channel=sports&since=30d");
    assert_eq!(code, 200);
    let times: Vec<i64> = a["anomalies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| parse_time(x["time"].as_str().unwrap()))
        .collect();
    let anchors = [
        before - before.rem_euclid(HOUR),
        after - after.rem_euclid(HOUR),
    ];
    assert!(
        anchors.iter().any(|a| times
            .iter()
            .any(|t| (a - 70 * HOUR..a - 67 * HOUR).contains(t))),
        "no anomaly during the injected outage; anomalies at {times:?}"
    );

    let (code, e) = get_json(port, "/api/v1/forecast?horizon=forever");
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("horizon"));
    let (code, e) = get_json(port, "/api/v1/forecast?channel=no-such-channel");
    assert_eq!(code, 404);
    assert!(e["error"].is_string());
    let (code, body) = http(port, "GET", "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(body.contains("viewcast_anomaly_score{channel=\"sports\"}"));
    prometheus_scrapes_every_channel(port, tmp.path());
    page_draws_every_channel_in_chromium(port, tmp.path());

    // A second daemon on the same data folder is refused, naming the first (both ran,
    // and both wrote the same store and spool).
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_viewcast"))
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is in use by another viewcast (pid ") && stderr.contains("--data-dir"),
        "{stderr}"
    );

    let (status, took) = d.terminate();
    assert!(status.success(), "exit status {status:?}");
    eprintln!("stopped in {took:?}");

    // After a restart the stored forecasts are served at once.
    let d = Daemon::start(&data, tmp.path());
    let (code, f2) = get_json(d.port, "/api/v1/forecast?channel=news");
    assert_eq!(code, 200);
    let s = &f2["series"][0];
    assert!(!s["points"].as_array().unwrap().is_empty());
    let restarted_hour = chrono::Utc::now().timestamp() / HOUR;
    if restarted_hour == after / HOUR {
        // Same hour, no new data: the forecast is the stored one, not a new fit.
        assert_eq!(s["generated_at"], generated_at);
    }
    d.wait_ready(Duration::from_secs(60));
    let (status, _) = d.terminate();
    assert!(status.success());
}

/// While the source cannot be reached and nothing has been read, the page says so instead
/// of showing an empty table: /readyz's reason and that no series exist yet.
#[test]
fn the_page_says_why_it_is_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let closed = common::free_port();
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/influxdb-v1.toml");
    let url = format!("http://127.0.0.1:{closed}");
    let d = Daemon::start_with(
        &tmp.path().join("data"),
        tmp.path(),
        &["--config", config.to_str().unwrap()],
        &[("INFLUXDB_URL", &url)],
    );
    common::wait_for(
        "/readyz to name the source",
        Duration::from_secs(30),
        || http(d.port, "GET", "/readyz").filter(|(c, b)| *c == 503 && b.contains("unreachable")),
    );
    let out = chromium(
        tmp.path(),
        &["--dump-dom"],
        &format!("http://127.0.0.1:{}/", d.port),
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("data-done=\"1\""), "{dom}");
    assert!(!dom.contains("data-errors="), "script errors: {dom}");
    assert!(dom.contains("data-ready=\"0\"") && dom.contains("data-series=\"0\""));
    let notice = dom
        .split("<div id=\"notice\">")
        .nth(1)
        .and_then(|rest| rest.split("</div>").next())
        .unwrap_or_else(|| panic!("no visible notice: {dom}"));
    assert!(notice.starts_with("Not ready: "), "{notice}");
    assert!(
        notice.contains(&url) && notice.contains("unreachable"),
        "{notice}"
    );
    assert!(notice.contains("No series yet"), "{notice}");
    assert!(d.terminate().0.success());
}

/// A real Prometheus server scrapes the daemon; its query API returns
/// `viewcast_anomaly_score` for every channel.
fn prometheus_scrapes_every_channel(daemon_port: u16, dir: &std::path::Path) {
    let port = common::free_port();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: viewcast\n    static_configs:\n      - targets: ['127.0.0.1:{daemon_port}']\n"),
    )
    .unwrap();
    let mut prom = std::process::Command::new("prometheus")
        .args([
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", dir.join("prometheus-data").display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus is not installed: run ./tests/run-all.sh, which installs Debian's prometheus");
    let result = common::wait_for(
        "Prometheus to return every channel's anomaly score",
        Duration::from_secs(60),
        || {
            let (code, v) = http(port, "GET", "/api/v1/query?query=viewcast_anomaly_score")
                .and_then(|(c, b)| {
                    serde_json::from_str::<serde_json::Value>(&b)
                        .ok()
                        .map(|v| (c, v))
                })?;
            let r = v["data"]["result"].as_array()?.clone();
            (code == 200 && r.len() == 12).then_some(r)
        },
    );
    let dashboard_ok = grafana_promql_answers(port);
    let _ = prom.kill();
    let _ = prom.wait();
    if let Err(e) = dashboard_ok {
        panic!("{e}");
    }
    let mut channels: Vec<&str> = result
        .iter()
        .map(|s| s["metric"]["channel"].as_str().unwrap())
        .collect();
    channels.sort();
    assert_eq!(channels.len(), 12);
    assert!(channels.contains(&"news") && channels.contains(&"sports"));
    assert!(result
        .iter()
        .all(|s| s["value"][1].as_str().unwrap().parse::<f64>().is_ok()));
}

/// Every PromQL expression of the shipped Grafana dashboard is valid for this Prometheus, and
/// the ones over plain gauges return data from the scraped daemon.
fn grafana_promql_answers(prom_port: u16) -> Result<(), String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/grafana/viewcast-dashboard.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["datasource"]["type"] == "prometheus")
        .map(|t| t["expr"].as_str().unwrap().replace("$channel", ".*"))
        .collect();
    if exprs.len() < 5 {
        return Err(format!("too few PromQL targets: {exprs:?}"));
    }
    for e in exprs {
        let q = format!("/api/v1/query?query={}", common::influx::enc(&e));
        let (code, body) = http(prom_port, "GET", &q).ok_or("prometheus did not answer")?;
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|x| x.to_string())?;
        if code != 200 || v["status"] != "success" {
            return Err(format!("{e}: {code} {body}"));
        }
        let gauge = !e.contains("rate(") && !e.contains(">= 1");
        if gauge && v["data"]["result"].as_array().is_none_or(|r| r.is_empty()) {
            return Err(format!("{e}: no data: {body}"));
        }
    }
    Ok(())
}

fn chromium(dir: &std::path::Path, extra: &[&str], url: &str) -> std::process::Output {
    let profile = dir.join("chromium-profile");
    std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args([
            "--virtual-time-budget=20000",
            "--run-all-compositor-stages-before-draw",
        ])
        .args(extra)
        .arg(url)
        .output()
        .expect(
            "chromium is not installed: run ./tests/run-all.sh, which installs Debian's chromium",
        )
}

/// The page at `/` in real headless Chromium: every channel's chart is drawn from the REST
/// API with no script error; a screenshot is kept in target/tmp/viewcast-page.png.
fn page_draws_every_channel_in_chromium(port: u16, dir: &std::path::Path) {
    let url = format!("http://127.0.0.1:{port}/");
    let out = chromium(dir, &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains("data-done=\"1\""),
        "the page's script did not finish: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dom.contains("data-errors="), "script errors: {dom}");
    assert!(
        dom.contains("data-charts=\"12\""),
        "not every chart was drawn"
    );
    assert!(dom.contains("data-ready=\"1\""));
    assert!(dom.contains("<div id=\"notice\" hidden=\"\">"), "{dom}");
    assert_eq!(
        dom.matches("class=\"band\"").count(),
        12,
        "a forecast band per channel"
    );
    assert_eq!(dom.matches("class=\"actual\"").count(), 12);
    assert!(
        dom.contains("class=\"anomaly\""),
        "the injected anomalies are marked"
    );
    // A time axis: a tick per UTC midnight over two weeks back and one ahead, consecutive
    // days, labelled; where the actuals end; and each anomaly says what it was on hover.
    let days: Vec<chrono::NaiveDate> = dom
        .split("data-day=\"")
        .skip(1)
        .map(|s| s[..10].parse().expect("a YYYY-MM-DD day"))
        .collect();
    assert_eq!(days.len() % 12, 0, "{days:?}");
    let per_chart = days.len() / 12;
    assert!((20..=23).contains(&per_chart), "{per_chart} days a chart");
    for chart in days.chunks(per_chart) {
        assert!(
            chart
                .windows(2)
                .all(|w| w[1] - w[0] == chrono::Duration::days(1)),
            "{chart:?}"
        );
    }
    assert!(dom.matches("class=\"day-label\"").count() >= 12 * 5);
    assert_eq!(dom.matches("class=\"now\"").count(), 12);
    let titles = dom.matches("class=\"anomaly\"><title>").count();
    assert_eq!(titles, dom.matches("class=\"anomaly\"").count());
    assert!(
        dom.contains("; score "),
        "an anomaly's title gives its score"
    );
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewcast-page.png");
    let out = chromium(
        dir,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,1800",
        ],
        &url,
    );
    assert!(
        out.status.success() && shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshot: {}", shot.display());
}
