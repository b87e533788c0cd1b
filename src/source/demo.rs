//! The built-in demo data set: hourly viewers of 12 TV channels with prime-time peaks, a
//! weekend shape, slow trends, noise and a few injected anomalies at known times. Values are
//! a pure function of (seed, channel, hour), so the feed can grow hour by hour and still
//! agree with what `viewcast sample-data` writes.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{SeriesUpdate, Source, SourceError};
use crate::series::{Point, SeriesKey};

pub const HOUR: i64 = 3600;
pub const MEASUREMENT: &str = "viewership";
pub const FIELD: &str = "viewers";
pub const TAG: &str = "channel";

/// (name, base viewers, morning, midday, prime weight, prime hour, weekend factor, trend/week)
type Profile = (&'static str, f64, f64, f64, f64, f64, f64, f64);

const CHANNELS: [Profile; 12] = [
    ("news", 420_000.0, 0.55, 0.30, 0.80, 19.0, 0.85, 0.002),
    ("sports", 380_000.0, 0.10, 0.25, 1.00, 20.5, 1.60, 0.004),
    ("kids", 150_000.0, 0.90, 0.45, 0.25, 18.0, 1.35, -0.003),
    ("movies", 300_000.0, 0.05, 0.20, 1.00, 21.0, 1.25, 0.001),
    ("music", 90_000.0, 0.30, 0.35, 0.60, 22.0, 1.10, -0.006),
    (
        "documentary",
        120_000.0,
        0.10,
        0.30,
        0.90,
        20.0,
        1.05,
        0.005,
    ),
    ("drama", 350_000.0, 0.10, 0.35, 1.00, 21.0, 0.90, 0.003),
    ("comedy", 200_000.0, 0.05, 0.20, 0.95, 21.5, 1.10, 0.000),
    ("weather", 60_000.0, 0.70, 0.30, 0.40, 18.5, 0.95, 0.001),
    ("shopping", 45_000.0, 0.20, 0.50, 0.50, 20.0, 1.20, -0.002),
    ("regional", 80_000.0, 0.40, 0.25, 0.70, 18.0, 0.80, 0.002),
    ("classics", 70_000.0, 0.10, 0.40, 0.60, 20.0, 1.15, -0.004),
];

/// Kinds of injected anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// Viewers drop to near zero (a transmission fault).
    Outage,
    /// Viewers triple (breaking news, a derby).
    Spike,
    /// Viewers drop by 40% and stay there (a lost distribution partner).
    LevelShift,
}

/// An anomaly the generator injects: `[start, end)` on one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Injected {
    pub channel: &'static str,
    pub kind: AnomalyKind,
    pub start: i64,
    pub end: i64,
}

/// The demo data set. Anomalies sit at fixed offsets before `anchor` (an hour boundary).
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub seed: u64,
    pub channels: usize,
    pub anchor: i64,
}

impl DemoSpec {
    pub fn new(seed: u64, channels: usize, anchor: i64) -> Self {
        Self {
            seed,
            channels: channels.clamp(1, CHANNELS.len()),
            anchor: floor_hour(anchor),
        }
    }

    pub fn channel_names(&self) -> Vec<&'static str> {
        CHANNELS.iter().take(self.channels).map(|c| c.0).collect()
    }

    pub fn injected(&self) -> Vec<Injected> {
        let a = self.anchor;
        let all = [
            Injected {
                channel: "sports",
                kind: AnomalyKind::Outage,
                start: a - 70 * HOUR,
                end: a - 67 * HOUR,
            },
            Injected {
                channel: "drama",
                kind: AnomalyKind::Spike,
                start: a - 118 * HOUR,
                end: a - 116 * HOUR,
            },
            Injected {
                channel: "shopping",
                kind: AnomalyKind::LevelShift,
                start: a - 190 * HOUR,
                end: i64::MAX,
            },
        ];
        let names = self.channel_names();
        all.into_iter()
            .filter(|i| names.contains(&i.channel))
            .collect()
    }

    /// Viewers of channel `ch` (index) in the hour starting at `ts` (an hour boundary).
    pub fn value(&self, ch: usize, ts: i64) -> f64 {
        let (name, base, morning, midday, prime, prime_hour, weekend, trend) =
            CHANNELS[ch % CHANNELS.len()];
        let hour = (ts.rem_euclid(86_400) / HOUR) as f64;
        let weekday = ((ts.div_euclid(86_400)) + 3).rem_euclid(7); // 0 = Monday
        let bump = |centre: f64, width: f64| {
            let d = (hour - centre).abs();
            let d = d.min(24.0 - d);
            (-(d * d) / (2.0 * width * width)).exp()
        };
        let shape = 0.08
            + morning * bump(8.0, 1.5)
            + midday * bump(13.0, 2.5)
            + prime * bump(prime_hour, 1.8);
        let is_weekend = weekday >= 5;
        let day = if is_weekend { weekend } else { 1.0 } * if weekday == 4 { 1.05 } else { 1.0 };
        let weeks = (ts - self.anchor) as f64 / (7.0 * 86_400.0);
        let level = (1.0 + trend * weeks).max(0.1);
        let noise = 1.0 + 0.04 * gaussian(self.seed, ch as u64, ts);
        let mut v = base * shape * day * level * noise.max(0.5);
        for inj in self.injected() {
            if inj.channel == name && ts >= inj.start && ts < inj.end {
                v *= match inj.kind {
                    AnomalyKind::Outage => 0.02,
                    AnomalyKind::Spike => 3.0,
                    AnomalyKind::LevelShift => 0.6,
                };
            }
        }
        v.max(0.0).round()
    }

    /// Every channel's points in `[from, to]` (hour boundaries).
    pub fn generate(&self, from: i64, to: i64) -> Vec<(SeriesKey, Vec<Point>)> {
        let from = ceil_hour(from);
        self.channel_names()
            .into_iter()
            .enumerate()
            .map(|(ch, name)| {
                let pts = (0..)
                    .map(|k| from + k * HOUR)
                    .take_while(|ts| *ts <= to)
                    .map(|ts| Point {
                        ts,
                        value: self.value(ch, ts),
                    })
                    .collect();
                (SeriesKey::new([(TAG, name)]), pts)
            })
            .collect()
    }
}

pub fn floor_hour(ts: i64) -> i64 {
    ts - ts.rem_euclid(HOUR)
}

fn ceil_hour(ts: i64) -> i64 {
    floor_hour(ts + HOUR - 1)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A standard normal draw that depends only on (seed, channel, time): Box-Muller on two
/// hashed uniforms.
fn gaussian(seed: u64, ch: u64, ts: i64) -> f64 {
    let a = splitmix(seed ^ splitmix(ch.wrapping_mul(0x1000_0001) ^ splitmix(ts as u64)));
    let b = splitmix(a);
    let u1 = ((a >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (b >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// The demo data as a live feed: each poll returns the hours completed since the last one.
#[derive(Debug)]
pub struct DemoSource {
    spec: DemoSpec,
    history_secs: i64,
    cursors: Mutex<HashMap<SeriesKey, i64>>,
}

impl DemoSource {
    pub fn new(spec: DemoSpec, history_secs: i64) -> Self {
        Self {
            spec,
            history_secs,
            cursors: Mutex::new(HashMap::new()),
        }
    }

    pub fn spec(&self) -> &DemoSpec {
        &self.spec
    }
}

#[async_trait]
impl Source for DemoSource {
    fn describe(&self) -> String {
        format!(
            "demo ({} channels, seed {})",
            self.spec.channels, self.spec.seed
        )
    }

    fn tag_keys(&self) -> Vec<String> {
        vec![TAG.to_string()]
    }

    async fn poll(&self, now: i64) -> Result<super::Poll, SourceError> {
        // The hour that contains `now` is still filling: the last complete one starts an hour earlier.
        let last_complete = floor_hour(now) - HOUR;
        let first = last_complete - self.history_secs + HOUR;
        let mut cursors = self.cursors.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::new();
        for (key, points) in self.spec.generate(first, last_complete) {
            let cursor = cursors.get(&key).copied().unwrap_or(i64::MIN);
            let points: Vec<Point> = points.into_iter().filter(|p| p.ts > cursor).collect();
            if let Some(last) = points.last() {
                cursors.insert(key.clone(), last.ts);
                out.push(SeriesUpdate {
                    key,
                    step: HOUR,
                    points,
                });
            }
        }
        Ok(out.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANCHOR: i64 = 1_764_000_000; // 2025-11-24T16:00:00Z

    #[test]
    fn reproducible_non_negative_with_daily_and_weekly_shape() {
        let spec = DemoSpec::new(42, 12, ANCHOR);
        let a = spec.generate(ANCHOR - 8 * 7 * 86_400, ANCHOR);
        let b = DemoSpec::new(42, 12, ANCHOR).generate(ANCHOR - 8 * 7 * 86_400, ANCHOR);
        assert_eq!(a, b);
        assert_eq!(a.len(), 12);
        assert_eq!(a[0].1.len(), 8 * 168 + 1);
        assert!(a.iter().all(|(_, p)| p.iter().all(|p| p.value >= 0.0)));
        // Prime time beats 4am on the movie channel.
        let movies = &a[3].1;
        let at = |h: i64| {
            movies
                .iter()
                .filter(|p| p.ts.rem_euclid(86_400) / HOUR == h)
                .map(|p| p.value)
                .sum::<f64>()
        };
        assert!(at(21) > 5.0 * at(4));
        let other_seed = DemoSpec::new(7, 12, ANCHOR).generate(ANCHOR - 86_400, ANCHOR);
        assert_ne!(other_seed[0].1, a[0].1[a[0].1.len() - 25..].to_vec());
    }

    #[test]
    fn injected_anomalies_show_in_the_data() {
        let spec = DemoSpec::new(42, 12, ANCHOR);
        let inj = spec.injected();
        assert_eq!(inj.len(), 3);
        let sports = CHANNELS.iter().position(|c| c.0 == "sports").unwrap();
        let outage = &inj[0];
        let during = spec.value(sports, outage.start);
        let week_before = spec.value(sports, outage.start - 7 * 86_400);
        assert!(during < 0.05 * week_before, "{during} vs {week_before}");
    }

    #[tokio::test]
    async fn feed_returns_only_complete_new_hours() {
        let src = DemoSource::new(DemoSpec::new(1, 12, ANCHOR), 7 * 86_400);
        let first = src.poll(ANCHOR + 1800).await.unwrap().updates;
        assert_eq!(first.len(), 12);
        assert_eq!(first[0].points.len(), 168);
        // 16:30 → the 16:00 hour is still filling; the last complete hour is 15:00.
        assert_eq!(first[0].points.last().unwrap().ts, ANCHOR - HOUR);
        assert!(src.poll(ANCHOR + 1900).await.unwrap().updates.is_empty());
        let next = src.poll(ANCHOR + HOUR + 5).await.unwrap().updates;
        assert_eq!(next[0].points.len(), 1);
        assert_eq!(next[0].points[0].ts, ANCHOR);
    }
}
