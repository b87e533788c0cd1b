//! InfluxDB as a source: InfluxQL over the v1 HTTP API (InfluxDB 1.x natively, 2.x and 3.x
//! through their v1-compatible query APIs), or Flux over the 2.x API (`aggregateWindow` per
//! channel). One definition fans out over every tag combination found; later channels are picked up by a later poll; only buckets newer than the
//! last complete one (plus a few recent ones again, for late data) are read after the first
//! poll; the still-filling bucket is never returned.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Poll, SeriesUpdate, Source, SourceError};
use crate::influx::v2::flux_string;
use crate::influx::{escape, Backend, InfluxError};
use crate::series::{Point, SeriesKey};

/// How buckets are aggregated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Mean,
    Sum,
    Count,
    Max,
    Min,
    /// Distinct values in the bucket (e.g. distinct viewer ids).
    DistinctCount,
}

impl Aggregate {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "mean" => Self::Mean,
            "sum" => Self::Sum,
            "count" => Self::Count,
            "max" => Self::Max,
            "min" => Self::Min,
            "distinct_count" => Self::DistinctCount,
            _ => return None,
        })
    }

    /// The `fn:` argument of Flux's `aggregateWindow`.
    fn flux(self) -> &'static str {
        match self {
            Self::Mean => "mean",
            Self::Sum => "sum",
            Self::Count => "count",
            Self::Max => "max",
            Self::Min => "min",
            Self::DistinctCount => {
                "(column, tables=<-) => tables |> distinct(column: column) |> count(column: column)"
            }
        }
    }

    fn select(self, field: &str) -> String {
        let f = escape::ident(field);
        match self {
            Self::Mean => format!("mean({f})"),
            Self::Sum => format!("sum({f})"),
            Self::Count => format!("count({f})"),
            Self::Max => format!("max({f})"),
            Self::Min => format!("min({f})"),
            Self::DistinctCount => format!("count(distinct({f}))"),
        }
    }
}

/// What to read.
#[derive(Debug, Clone)]
pub struct Query {
    pub measurement: String,
    pub field: String,
    pub aggregate: Aggregate,
    pub group_by: Vec<String>,
    pub filters: Vec<(String, String)>,
    /// Bucket width in seconds.
    pub every: i64,
    pub lookback: i64,
    /// Complete buckets read again each poll, for late data.
    pub late_buckets: i64,
    /// Series with no data for this long are retired.
    pub retire_after: i64,
}

impl Query {
    /// The InfluxQL for buckets in `[start, end)`, optionally for one series only.
    pub fn influxql(&self, rp: &str, start: i64, end: i64, only: Option<&SeriesKey>) -> String {
        let from = if rp.is_empty() {
            escape::ident(&self.measurement)
        } else {
            format!("{}.{}", escape::ident(rp), escape::ident(&self.measurement))
        };
        let mut cond = format!("time >= {start}s AND time < {end}s");
        for (k, v) in self.tag_conditions(only) {
            cond.push_str(&format!(
                " AND {} = {}",
                escape::ident(k),
                escape::string(v)
            ));
        }
        let mut group = format!("time({}s)", self.every);
        for g in &self.group_by {
            group.push_str(&format!(", {}", escape::ident(g)));
        }
        format!(
            "SELECT {} AS \"value\" FROM {from} WHERE {cond} GROUP BY {group} fill(none)",
            self.aggregate.select(&self.field)
        )
    }
}

impl Query {
    /// The tag = value conditions of a query: the configured filters, and the tags of one
    /// series when the query is for it alone.
    fn tag_conditions<'a>(
        &'a self,
        only: Option<&'a SeriesKey>,
    ) -> impl Iterator<Item = (&'a String, &'a String)> {
        self.filters
            .iter()
            .map(|(a, b)| (a, b))
            .chain(only.into_iter().flat_map(|k| k.tags().iter()))
    }

    /// The Flux for buckets in `[start, end)`, stamped with the bucket start like InfluxQL.
    pub fn flux(&self, bucket: &str, start: i64, end: i64, only: Option<&SeriesKey>) -> String {
        let t = crate::clock::rfc3339;
        let mut cond = format!(
            "r._measurement == {} and r._field == {}",
            flux_string(&self.measurement),
            flux_string(&self.field)
        );
        for (k, v) in self.tag_conditions(only) {
            cond.push_str(&format!(" and r[{}] == {}", flux_string(k), flux_string(v)));
        }
        let group: Vec<String> = self.group_by.iter().map(|g| flux_string(g)).collect();
        format!(
            "from(bucket: {})\n  |> range(start: {}, stop: {})\n  |> filter(fn: (r) => {cond})\n  |> group(columns: [{}])\n  |> aggregateWindow(every: {}s, fn: {}, createEmpty: false, timeSrc: \"_start\")",
            flux_string(bucket),
            t(start),
            t(end),
            group.join(", "),
            self.every,
            self.aggregate.flux()
        )
    }
}

#[derive(Debug, Default)]
struct State {
    /// End (exclusive) of the last poll's window.
    last_end: Option<i64>,
    /// Last bucket seen per live series.
    last: HashMap<SeriesKey, i64>,
    /// Retired series and their last bucket.
    retired: HashMap<SeriesKey, i64>,
}

#[derive(Debug)]
pub struct InfluxSource {
    client: Backend,
    query: Query,
    state: Mutex<State>,
}

fn source_err(e: InfluxError) -> SourceError {
    if e.retryable() {
        SourceError::Unreachable(e.to_string())
    } else {
        SourceError::Rejected(e.to_string())
    }
}

impl InfluxSource {
    pub fn new(client: Backend, query: Query) -> Self {
        Self {
            client,
            query,
            state: Mutex::new(State::default()),
        }
    }

    async fn read(
        &self,
        start: i64,
        end: i64,
        only: Option<&SeriesKey>,
    ) -> Result<Vec<(SeriesKey, Vec<Point>)>, SourceError> {
        let series = match &self.client {
            Backend::V1(c) => {
                let q = self
                    .query
                    .influxql(&c.conn().retention_policy, start, end, only);
                tracing::debug!(query = %q, "reading InfluxDB");
                c.query(&q).await
            }
            Backend::V2(c) => {
                let q = self.query.flux(&c.conn().bucket, start, end, only);
                tracing::debug!(query = %q, "reading InfluxDB");
                c.query(q, &self.query.group_by).await
            }
        }
        .map_err(source_err)?;
        Ok(series
            .into_iter()
            .map(|s| {
                let key = SeriesKey(
                    s.tags
                        .into_iter()
                        .filter(|(k, _)| self.query.group_by.contains(k))
                        .collect(),
                );
                let mut pts: Vec<Point> = s
                    .values
                    .into_iter()
                    .map(|(ts, value)| Point { ts, value })
                    .collect();
                pts.sort_by_key(|p| p.ts);
                (key, pts)
            })
            .collect())
    }
}

#[async_trait]
impl Source for InfluxSource {
    fn describe(&self) -> String {
        format!(
            "{} measurement {}",
            self.client.describe(),
            self.query.measurement
        )
    }

    fn tag_keys(&self) -> Vec<String> {
        self.query.group_by.clone()
    }

    async fn poll(&self, now: i64) -> Result<Poll, SourceError> {
        let every = self.query.every.max(1);
        // The bucket that contains `now` is still filling: read up to its start only.
        let end = now.div_euclid(every) * every;
        let last_end = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .last_end;
        let full_start = end - self.query.lookback;
        let start = match last_end {
            Some(le) => (le - self.query.late_buckets * every).max(full_start),
            None => full_start,
        };
        let mut found = self.read(start, end, None).await?;
        // A series first seen on an incremental read gets its whole history once.
        if last_end.is_some() {
            let known: Vec<bool> = {
                let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                found.iter().map(|(k, _)| st.last.contains_key(k)).collect()
            };
            for (i, is_known) in known.into_iter().enumerate() {
                if !is_known && start > full_start {
                    let key = found[i].0.clone();
                    if let Some((_, pts)) = self
                        .read(full_start, end, Some(&key))
                        .await?
                        .into_iter()
                        .find(|(k, _)| *k == key)
                    {
                        tracing::info!(series = %key, points = pts.len(), "new series discovered");
                        found[i].1 = pts;
                    }
                }
            }
        }
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let cutoff = end - self.query.retire_after;
        let mut updates = Vec::new();
        let mut retired = Vec::new();
        for (key, points) in found {
            let Some(last) = points.last().map(|p| p.ts) else {
                continue;
            };
            // A retired series comes back only with data newer than what it had.
            if let Some(&dead) = st.retired.get(&key) {
                if last <= dead {
                    continue;
                }
                st.retired.remove(&key);
            }
            if last < cutoff {
                st.last.remove(&key);
                st.retired.insert(key.clone(), last);
                retired.push(key);
                continue;
            }
            let e = st.last.entry(key.clone()).or_insert(last);
            *e = (*e).max(last);
            updates.push(SeriesUpdate {
                key,
                step: every,
                points,
            });
        }
        let silent: Vec<(SeriesKey, i64)> = st
            .last
            .iter()
            .filter(|(_, t)| **t < cutoff)
            .map(|(k, t)| (k.clone(), *t))
            .collect();
        for (k, t) in silent {
            st.last.remove(&k);
            st.retired.insert(k.clone(), t);
            retired.push(k);
        }
        for k in &retired {
            tracing::info!(series = %k, "series retired: no data for the retirement period");
        }
        st.last_end = Some(end);
        Ok(Poll { updates, retired })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hourly buckets of `viewers` by channel, filtered to one device.
    fn query(measurement: &str, aggregate: Aggregate, device: &str) -> Query {
        Query {
            measurement: measurement.into(),
            field: "viewers".into(),
            aggregate,
            group_by: vec!["channel".into()],
            filters: vec![("device".into(), device.into())],
            every: 3600,
            lookback: 86_400,
            late_buckets: 2,
            retire_after: 86_400,
        }
    }

    #[test]
    fn flux_uses_aggregate_window_per_channel() {
        let q = query("viewership", Aggregate::Mean, "tv");
        assert_eq!(
            q.flux("b", 0, 7200, Some(&SeriesKey::new([("channel", "a\"b")]))),
            "from(bucket: \"b\")\n  |> range(start: 1970-01-01T00:00:00Z, stop: 1970-01-01T02:00:00Z)\n  |> filter(fn: (r) => r._measurement == \"viewership\" and r._field == \"viewers\" and r[\"device\"] == \"tv\" and r[\"channel\"] == \"a\\\"b\")\n  |> group(columns: [\"channel\"])\n  |> aggregateWindow(every: 3600s, fn: mean, createEmpty: false, timeSrc: \"_start\")"
        );
    }

    #[test]
    fn influxql_escapes_names_and_filters() {
        let q = query("view ership", Aggregate::DistinctCount, "it's");
        let only = SeriesKey::new([("channel", "a\"b")]);
        assert_eq!(
            q.influxql("autogen", 0, 3600, Some(&only)),
            "SELECT count(distinct(\"viewers\")) AS \"value\" FROM \"autogen\".\"view ership\" WHERE time >= 0s AND time < 3600s AND \"device\" = 'it\\'s' AND \"channel\" = 'a\"b' GROUP BY time(3600s), \"channel\" fill(none)"
        );
    }
}
