//! Anomaly detectors: each scores an observation against what was expected of it
//! (≥ 1 = anomalous); a set of detectors reports the highest score and which detector drove it.

pub mod cross;
pub mod events;
pub mod feed;
pub mod robust;

use std::fmt;

/// What the forecast made before an observation expected of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expected {
    pub yhat: f64,
    pub lower: f64,
    pub upper: f64,
}

/// The verdict on one observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub detector: &'static str,
}

/// Scores can grow without bound (a zero-width interval); cap them so they stay readable
/// and serialisable.
pub const MAX_SCORE: f64 = 1000.0;

/// A detector keeps whatever per-series state it needs; one instance per series.
pub trait Detector: Send + fmt::Debug {
    fn name(&self) -> &'static str;
    /// Scores `value` (observed at `ts`) given the forecast made before it arrived.
    fn observe(&mut self, ts: i64, value: f64, expected: &Expected) -> f64;
    /// What the last score is reported as: the detector's name, unless it tells kinds of
    /// anomaly apart (`residual` reports a dropout as `dropout`).
    fn reported_as(&self) -> &'static str {
        self.name()
    }
}

/// Distance from the point forecast in units of the interval's half-width on that side:
/// 1 = on the boundary, so ≥ 1 is outside the interval.
#[derive(Debug, Default, Clone, Copy)]
pub struct IntervalDetector;

impl Detector for IntervalDetector {
    fn name(&self) -> &'static str {
        "interval"
    }

    fn observe(&mut self, _ts: i64, value: f64, e: &Expected) -> f64 {
        interval_score(value, e)
    }
}

pub fn interval_score(value: f64, e: &Expected) -> f64 {
    if !value.is_finite() {
        return 0.0;
    }
    let (dist, half) = if value >= e.yhat {
        (value - e.yhat, e.upper - e.yhat)
    } else {
        (e.yhat - value, e.yhat - e.lower)
    };
    // A zero-width side (constant history) flags any departure at all.
    let floor = 1e-9 * e.yhat.abs().max(1.0);
    if dist <= floor {
        return 0.0;
    }
    (dist / half.max(floor)).min(MAX_SCORE)
}

/// Names of the detectors, as configs spell them.
pub const NAMES: &[&str] = &[
    "interval",
    "residual",
    "level_shift",
    "frozen",
    "missing",
    cross::NAME,
];

/// The detectors a config gets when it names none.
/// (`missing` is left out of replays by default: irregular feeds have gaps that are not
/// incidents; the daemon checks silent series on every cycle regardless.)
pub const DEFAULT_NAMES: &[&str] = &["residual", "level_shift", "frozen", cross::NAME];

/// Builds a per-series detector by name, for a series observed every `step_secs`
/// (`cross_channel` is none: the scheduler runs it across series).
pub fn by_name(name: &str, step_secs: i64) -> Option<Box<dyn Detector>> {
    Some(match name {
        "interval" => Box::new(IntervalDetector),
        "residual" => Box::new(robust::ResidualDetector::new(step_secs)),
        "level_shift" => Box::new(robust::LevelShiftDetector::new(step_secs)),
        "frozen" => Box::new(feed::FrozenDetector::default()),
        "missing" => Box::new(feed::MissingDetector::new(step_secs)),
        _ => return None,
    })
}

/// Whether a config may name this detector.
pub fn is_known(name: &str) -> bool {
    NAMES.contains(&name)
}

/// The detectors of one series, combined: the highest score wins.
#[derive(Debug)]
pub struct DetectorSet {
    detectors: Vec<Box<dyn Detector>>,
    names: Vec<String>,
    step_secs: i64,
}

impl DetectorSet {
    /// `names` must be valid (config validation checks them); unknown names are skipped.
    pub fn new(names: &[String], step_secs: i64) -> Self {
        let mut detectors: Vec<Box<dyn Detector>> =
            names.iter().filter_map(|n| by_name(n, step_secs)).collect();
        if detectors.is_empty() {
            detectors.push(Box::new(IntervalDetector));
        }
        Self {
            detectors,
            names: names.to_vec(),
            step_secs,
        }
    }

    /// Forgets what the detectors learnt: the series has changed for good (an anomaly that
    /// lasted too long to be one), so its old noise and runs no longer say what is normal.
    pub fn reset(&mut self) {
        *self = Self::new(&self.names, self.step_secs);
    }

    pub fn observe(&mut self, ts: i64, value: f64, expected: &Expected) -> Verdict {
        let mut best = Verdict {
            score: 0.0,
            detector: self.detectors[0].name(),
        };
        for d in &mut self.detectors {
            let s = d.observe(ts, value, expected);
            if s > best.score {
                best = Verdict {
                    score: s,
                    detector: d.reported_as(),
                };
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_score_is_one_on_the_boundary() {
        let e = Expected {
            yhat: 100.0,
            lower: 80.0,
            upper: 140.0,
        };
        assert_eq!(interval_score(100.0, &e), 0.0);
        assert!((interval_score(140.0, &e) - 1.0).abs() < 1e-12);
        assert!((interval_score(80.0, &e) - 1.0).abs() < 1e-12);
        assert!((interval_score(0.0, &e) - 5.0).abs() < 1e-12);
        assert!((interval_score(120.0, &e) - 0.5).abs() < 1e-12);
        assert_eq!(interval_score(f64::NAN, &e), 0.0);
    }

    #[test]
    fn zero_width_interval_flags_any_departure_with_a_finite_score() {
        let e = Expected {
            yhat: 0.0,
            lower: 0.0,
            upper: 0.0,
        };
        assert_eq!(interval_score(0.0, &e), 0.0);
        assert_eq!(interval_score(5.0, &e), MAX_SCORE);
    }
}
