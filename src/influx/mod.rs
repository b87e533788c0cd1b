//! The InfluxDB v1 HTTP API (`/query` with InfluxQL, `/write` with line protocol), which
//! InfluxDB 1.x serves natively and 2.x / 3.x serve as their v1 compatibility API; plus the
//! escaping rules of both languages.

pub mod escape;
pub mod v2;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// Could not reach the server, or it timed out: worth retrying.
    #[error("InfluxDB at {url} unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server failed (5xx): worth retrying.
    #[error("InfluxDB at {url} answered {status}: {body}")]
    Server {
        url: String,
        status: u16,
        body: String,
    },
    /// The server refused the request (4xx): retrying the same request will not help.
    #[error("InfluxDB at {url} rejected the request ({status}): {body}")]
    Rejected {
        url: String,
        status: u16,
        body: String,
    },
    #[error("InfluxDB at {url}: unexpected answer: {reason}")]
    Protocol { url: String, reason: String },
}

impl InfluxError {
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            InfluxError::Unreachable { .. } | InfluxError::Server { .. }
        )
    }
}

/// Where and how to reach one InfluxDB database.
#[derive(Debug, Clone)]
pub struct Conn {
    pub url: String,
    pub database: String,
    pub retention_policy: String,
    pub username: String,
    pub password: Secret,
    /// For InfluxDB 2.x/3.x v1-compatible APIs: `Authorization: Token …`.
    pub token: Secret,
    pub timeout: Duration,
}

/// One series of a query answer.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySeries {
    pub tags: BTreeMap<String, String>,
    /// (Unix seconds, value); null values are NaN.
    pub values: Vec<(i64, f64)>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    results: Vec<StatementResult>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct StatementResult {
    #[serde(default)]
    series: Vec<RawSeries>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct RawSeries {
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    values: Vec<Vec<serde_json::Value>>,
}

/// A client of one database.
#[derive(Debug, Clone)]
pub struct Client {
    conn: Conn,
    http: reqwest::Client,
}

impl Client {
    pub fn new(conn: Conn) -> Result<Self, InfluxError> {
        let http = reqwest::Client::builder()
            .timeout(conn.timeout)
            .connect_timeout(conn.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| InfluxError::Unreachable {
                url: conn.url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self { conn, http })
    }

    pub fn conn(&self) -> &Conn {
        &self.conn
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}/{}", self.conn.url.trim_end_matches('/'), path)
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let req = if !self.conn.username.is_empty() {
            req.basic_auth(&self.conn.username, Some(self.conn.password.expose()))
        } else {
            req
        };
        if self.conn.token.is_empty() {
            req
        } else {
            req.header(
                "Authorization",
                format!("Token {}", self.conn.token.expose()),
            )
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, InfluxError> {
        let url = self.conn.url.clone();
        let resp = self
            .auth(req)
            .send()
            .await
            .map_err(|e| InfluxError::Unreachable {
                url: url.clone(),
                reason: without_url(&e),
            })?;
        let status = resp.status().as_u16();
        let body = resp.text().await.map_err(|e| InfluxError::Unreachable {
            url: url.clone(),
            reason: without_url(&e),
        })?;
        match status {
            200..=299 => Ok(body),
            400..=499 => Err(InfluxError::Rejected {
                url,
                status,
                body: clip(&body),
            }),
            _ => Err(InfluxError::Server {
                url,
                status,
                body: clip(&body),
            }),
        }
    }

    /// Runs an InfluxQL statement (chunked, times as Unix seconds) and merges the series.
    pub async fn query(&self, q: &str) -> Result<Vec<QuerySeries>, InfluxError> {
        let mut params = vec![
            ("db", self.conn.database.as_str()),
            ("q", q),
            ("epoch", "s"),
            ("chunked", "true"),
            ("chunk_size", "20000"),
        ];
        if !self.conn.retention_policy.is_empty() {
            params.push(("rp", self.conn.retention_policy.as_str()));
        }
        let body = self
            .send(self.http.post(self.endpoint("query")).form(&params))
            .await?;
        let url = self.conn.url.clone();
        let mut merged: BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> = BTreeMap::new();
        for line in body.lines().filter(|l| !l.trim().is_empty()) {
            let chunk: Chunk = serde_json::from_str(line).map_err(|e| InfluxError::Protocol {
                url: url.clone(),
                reason: e.to_string(),
            })?;
            if let Some(e) = chunk.error {
                return Err(InfluxError::Rejected {
                    url,
                    status: 200,
                    body: e,
                });
            }
            for r in chunk.results {
                if let Some(e) = r.error {
                    return Err(InfluxError::Rejected {
                        url,
                        status: 200,
                        body: e,
                    });
                }
                for s in r.series {
                    let ti = s.columns.iter().position(|c| c == "time").unwrap_or(0);
                    let vi = if ti == 0 { 1 } else { 0 };
                    let out = merged.entry(s.tags).or_default();
                    for row in s.values {
                        let Some(t) = row.get(ti).and_then(serde_json::Value::as_i64) else {
                            continue;
                        };
                        let v = row
                            .get(vi)
                            .and_then(serde_json::Value::as_f64)
                            .unwrap_or(f64::NAN);
                        out.push((t, v));
                    }
                }
            }
        }
        Ok(merged
            .into_iter()
            .map(|(tags, values)| QuerySeries { tags, values })
            .collect())
    }

    /// Writes line protocol with second precision.
    pub async fn write(&self, lines: &str) -> Result<(), InfluxError> {
        let mut params = vec![("db", self.conn.database.as_str()), ("precision", "s")];
        if !self.conn.retention_policy.is_empty() {
            params.push(("rp", self.conn.retention_policy.as_str()));
        }
        let req = self
            .http
            .post(self.endpoint("write"))
            .query(&params)
            .body(lines.to_string());
        self.send(req).await.map(|_| ())
    }

    /// `CREATE DATABASE` (idempotent); used by tests and the benchmark.
    pub async fn create_database(&self) -> Result<(), InfluxError> {
        let q = format!("CREATE DATABASE {}", escape::ident(&self.conn.database));
        self.send(
            self.http
                .post(self.endpoint("query"))
                .form(&[("q", q.as_str())]),
        )
        .await
        .map(|_| ())
    }
}

/// The two APIs behind one type: InfluxQL / `/write` (v1, also served by 2.x and 3.x), or
/// Flux / `/api/v2/write` (2.x, Cloud).
#[derive(Debug, Clone)]
pub enum Backend {
    V1(Client),
    V2(v2::Client2),
}

impl Backend {
    pub fn describe(&self) -> String {
        match self {
            Backend::V1(c) => format!("influxdb_v1 {} db {}", c.conn().url, c.conn().database),
            Backend::V2(c) => format!("influxdb_v2 {} bucket {}", c.conn().url, c.conn().bucket),
        }
    }

    pub async fn write(&self, lines: &str) -> Result<(), InfluxError> {
        match self {
            Backend::V1(c) => c.write(lines).await,
            Backend::V2(c) => c.write(lines).await,
        }
    }
}

/// reqwest errors can carry the URL with credentials in its query; keep only the cause.
fn without_url(e: &reqwest::Error) -> String {
    let msg = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "connection refused or failed".to_string()
    } else {
        "request failed".to_string()
    };
    with_causes(msg, std::error::Error::source(e))
}

/// `msg`, then each cause of the chain from `src` that it does not already say: hyper's
/// causes repeat their own causes' text, and a refused connection read "error trying to
/// connect: tcp connect error: Connection refused (os error 111): tcp connect error:
/// Connection refused (os error 111): Connection refused (os error 111)".
fn with_causes(mut msg: String, mut src: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(s) = src {
        let text = s.to_string();
        if !msg.contains(&text) {
            msg = format!("{msg}: {text}");
        }
        src = s.source();
    }
    msg
}

fn clip(s: &str) -> String {
    let s = s.trim();
    if s.len() > 500 {
        let mut end = 500;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}…", &s[..end])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A refused connection is named once, not once per layer of hyper's error chain.
    #[tokio::test]
    async fn a_refused_connection_reads_once() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/ping?p=secret"))
            .send()
            .await
            .unwrap_err();
        let msg = without_url(&e);
        assert!(msg.starts_with("connection refused or failed: "), "{msg}");
        assert_eq!(msg.matches("Connection refused").count(), 1, "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }
}
