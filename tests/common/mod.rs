//! Helpers shared by the integration tests: free loopback ports, a minimal HTTP client and
//! the real `viewcast` binary as a child process.
#![allow(dead_code)]

pub mod influx;
pub mod influx2_stub;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const HOUR: i64 = 3600;

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.0 client: the server closes the connection after the body.
pub fn http_body(port: u16, method: &str, path: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .ok()?;
    s.write_all(body).ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

pub fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    http_body(port, method, path, b"")
}

pub fn get_json(port: u16, path: &str) -> (u16, Value) {
    let (code, body) = http(port, "GET", path).unwrap_or_else(|| panic!("no answer to {path}"));
    (
        code,
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}")),
    )
}

/// Polls `f` every 200 ms until it returns Some, or panics after `within`.
pub fn wait_for<T>(what: &str, within: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The value of an unlabelled metric in the text format.
pub fn metric(port: u16, name: &str) -> Option<f64> {
    let (_, body) = http(port, "GET", "/metrics")?;
    body.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

pub struct Daemon {
    pub child: Child,
    pub port: u16,
}

impl Daemon {
    /// Starts `viewcast run` with extra arguments and environment, on a free port.
    pub fn start_with(data_dir: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        Self::start_logging(data_dir, cwd, args, env, Stdio::inherit())
    }

    /// [`Daemon::start_with`], its log (stderr) going to `log`.
    pub fn start_logging(
        data_dir: &Path,
        cwd: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: Stdio,
    ) -> Daemon {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_viewcast"));
        cmd.args([
            "run",
            "--listen",
            &listen,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ])
        .args(args)
        .current_dir(cwd)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start viewcast");
        let d = Daemon { child, port };
        wait_for("the daemon to listen", Duration::from_secs(30), || {
            http(port, "GET", "/healthz")
        });
        d
    }

    pub fn start(data_dir: &Path, cwd: &Path) -> Daemon {
        Self::start_with(data_dir, cwd, &[], &[])
    }

    pub fn wait_ready(&self, within: Duration) -> Duration {
        let started = Instant::now();
        wait_for("readiness", within, || {
            http(self.port, "GET", "/readyz").filter(|(c, _)| *c == 200)
        });
        started.elapsed()
    }

    /// SIGTERM, then the exit status within 10 s.
    pub fn terminate(mut self) -> (std::process::ExitStatus, Duration) {
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
