//! InfluxDB 2.x / Cloud through its native API (Flux queries, `/api/v2/write`), with the
//! `influxdb2` crate.

use std::collections::BTreeMap;

use influxdb2::api::write::TimestampPrecision;
use influxdb2::models::Query as FluxQuery;
use influxdb2::RequestError;
use influxdb2_structmap::value::Value;

use super::{InfluxError, QuerySeries};
use crate::config::Secret;

/// Where and how to reach one bucket.
#[derive(Debug, Clone)]
pub struct Conn2 {
    pub url: String,
    pub org: String,
    pub bucket: String,
    pub token: Secret,
    pub timeout: std::time::Duration,
}

#[derive(Clone)]
pub struct Client2 {
    conn: Conn2,
    client: influxdb2::Client,
}

impl std::fmt::Debug for Client2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client2").field("conn", &self.conn).finish()
    }
}

/// A double-quoted Flux string literal (`${` would start interpolation).
pub fn flux_string(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace("${", "\\${")
    )
}

impl Client2 {
    pub fn new(conn: Conn2) -> Result<Self, InfluxError> {
        let builder = reqwest::Client::builder().timeout(conn.timeout);
        let client = influxdb2::ClientBuilder::with_builder(
            builder,
            conn.url.clone(),
            conn.org.clone(),
            conn.token.expose().to_string(),
        )
        .build()
        .map_err(|e| InfluxError::Unreachable {
            url: conn.url.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self { conn, client })
    }

    pub fn conn(&self) -> &Conn2 {
        &self.conn
    }

    fn error(&self, e: RequestError) -> InfluxError {
        let url = self.conn.url.clone();
        match e {
            RequestError::Http { status, text } if status.is_server_error() => {
                InfluxError::Server {
                    url,
                    status: status.as_u16(),
                    body: text,
                }
            }
            RequestError::Http { status, text } => InfluxError::Rejected {
                url,
                status: status.as_u16(),
                body: text,
            },
            RequestError::ReqwestProcessing { source } => InfluxError::Unreachable {
                url,
                reason: if source.is_timeout() {
                    "timed out".into()
                } else {
                    "connection failed".into()
                },
            },
            other => InfluxError::Protocol {
                url,
                reason: format!("{other:?}"),
            },
        }
    }

    /// Runs a Flux query whose tables hold `_time` and `_value`; rows are grouped into series
    /// by the values of `tag_keys`. The crate's query call can panic on a broken response
    /// body, so it runs in its own task and a panic becomes an error.
    pub async fn query(
        &self,
        flux: String,
        tag_keys: &[String],
    ) -> Result<Vec<QuerySeries>, InfluxError> {
        let client = self.client.clone();
        let records =
            tokio::spawn(async move { client.query_raw(Some(FluxQuery::new(flux))).await })
                .await
                .map_err(|e| InfluxError::Protocol {
                    url: self.conn.url.clone(),
                    reason: format!("reading the answer failed: {e}"),
                })?
                .map_err(|e| self.error(e))?;
        let mut merged: BTreeMap<BTreeMap<String, String>, Vec<(i64, f64)>> = BTreeMap::new();
        for r in records {
            let tags: BTreeMap<String, String> = tag_keys
                .iter()
                .filter_map(|k| match r.values.get(k) {
                    Some(Value::String(v)) => Some((k.clone(), v.clone())),
                    _ => None,
                })
                .collect();
            let Some(Value::TimeRFC(t)) = r.values.get("_time") else {
                continue;
            };
            let v = match r.values.get("_value") {
                Some(Value::Double(d)) => d.into_inner(),
                Some(Value::Long(l)) => *l as f64,
                Some(Value::UnsignedLong(l)) => *l as f64,
                _ => f64::NAN,
            };
            merged.entry(tags).or_default().push((t.timestamp(), v));
        }
        Ok(merged
            .into_iter()
            .map(|(tags, values)| QuerySeries { tags, values })
            .collect())
    }

    /// Writes line protocol with second precision.
    pub async fn write(&self, lines: &str) -> Result<(), InfluxError> {
        self.client
            .write_line_protocol_with_precision(
                &self.conn.org,
                &self.conn.bucket,
                lines.to_string(),
                TimestampPrecision::Seconds,
            )
            .await
            .map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_strings_escape_quotes_backslashes_and_interpolation() {
        assert_eq!(flux_string("a\"b\\c ${x}"), "\"a\\\"b\\\\c \\${x}\"");
    }
}
