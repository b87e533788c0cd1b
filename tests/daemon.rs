//! The daemon from outside: the real binary on a free loopback port with a temp data dir,
//! on the embedded default (demo feed, SQLite store).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const HOUR: i64 = 3600;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.0 client: the server closes the connection after the body.
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (code, body) = http(port, "GET", path).unwrap_or_else(|| panic!("no answer to {path}"));
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")),
    )
}

struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(data_dir: &Path, cwd: &Path) -> Daemon {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_viewcast"))
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
                data_dir.to_str().unwrap(),
            ])
            .current_dir(cwd)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start viewcast");
        let d = Daemon { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(port, "GET", "/healthz").is_none() {
            assert!(
                Instant::now() < deadline,
                "daemon did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }

    fn wait_ready(&self, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if http(self.port, "GET", "/readyz").is_some_and(|(c, _)| c == 200) {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "not ready within {within:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGTERM, then the exit status within 10 s.
    fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("daemon did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
