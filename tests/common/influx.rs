//! A real `influxd` (Debian's influxdb 1.6) for tests: its own temp folders, loopback ports
//! chosen at run time, stopped and started again on the same data to simulate an outage.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, http, http_body, wait_for};

pub struct InfluxServer {
    pub port: u16,
    dir: tempfile::TempDir,
    config: PathBuf,
    child: Option<Child>,
    /// `&u=…&p=…` for a server with authentication on, empty otherwise.
    credentials: String,
}

/// URL-encodes a query-string value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl InfluxServer {
    pub fn start() -> InfluxServer {
        Self::start_with_auth(None)
    }

    /// With `auth` (user, password), authentication is on and that user is its admin.
    pub fn start_with_auth(auth: Option<(&str, &str)>) -> InfluxServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let rpc = free_port();
        let d = dir.path().display();
        let config = dir.path().join("influxdb.conf");
        std::fs::write(
            &config,
            format!(
                "reporting-enabled = false\nbind-address = \"127.0.0.1:{rpc}\"\n\
                 [meta]\n  dir = \"{d}/meta\"\n  logging-enabled = false\n\
                 [data]\n  dir = \"{d}/data\"\n  wal-dir = \"{d}/wal\"\n  query-log-enabled = false\n\
                 [monitor]\n  store-enabled = false\n\
                 [http]\n  bind-address = \"127.0.0.1:{port}\"\n  log-enabled = false\n  auth-enabled = {}\n\
                 [continuous_queries]\n  enabled = false\n",
                auth.is_some()
            ),
        )
        .unwrap();
        let mut s = InfluxServer {
            port,
            dir,
            config,
            child: None,
            credentials: String::new(),
        };
        s.resume();
        if let Some((user, password)) = auth {
            // With no user yet, influxd takes this one statement without credentials.
            let q =
                format!("CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES");
            s.query("", &q);
            s.credentials = format!("&u={}&p={}", enc(user), enc(password));
        }
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same folders and port.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("influxd.log")).unwrap();
        let child = Command::new("influxd")
            .args(["run", "-config", self.config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("influxd is not installed: run ./tests/run-all.sh, which installs Debian's influxdb");
        self.child = Some(child);
        let port = self.port;
        wait_for("influxd to answer /ping", Duration::from_secs(30), || {
            http(port, "GET", "/ping").filter(|(c, _)| *c == 204)
        });
    }

    /// Stops the server (the outage).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn query(&self, db: &str, q: &str) -> Value {
        let path = format!(
            "/query?db={}&epoch=s&q={}{}",
            enc(db),
            enc(q),
            self.credentials
        );
        let (code, body) = http_body(self.port, "POST", &path, b"").expect("influxd answers");
        assert_eq!(code, 200, "{q}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub fn write(&self, db: &str, lines: &str, precision: &str) {
        let path = format!(
            "/write?db={}&precision={precision}{}",
            enc(db),
            self.credentials
        );
        let (code, body) =
            http_body(self.port, "POST", &path, lines.as_bytes()).expect("influxd answers");
        assert_eq!(code, 204, "write failed: {body}");
    }

    /// `(tags, rows)` of each series in the first statement's answer.
    pub fn series(&self, db: &str, q: &str) -> Vec<(Value, Vec<Vec<Value>>)> {
        let v = self.query(db, q);
        v["results"][0]["series"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| {
                        (
                            s["tags"].clone(),
                            s["values"]
                                .as_array()
                                .unwrap()
                                .iter()
                                .map(|r| r.as_array().unwrap().clone())
                                .collect(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for InfluxServer {
    fn drop(&mut self) {
        self.stop();
    }
}
