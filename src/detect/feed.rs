//! Detectors of a broken feed rather than a changed audience: the same value repeated where
//! the series normally moves ([`FrozenDetector`]), and observations that stop arriving where
//! the series is normally live ([`silence_score`], used by the daemon between cycles and by
//! [`MissingDetector`] on the first point after a gap).

use super::{Detector, Expected, MAX_SCORE};

/// A run of identical values must be at least this long to be flagged.
pub const MIN_FROZEN_RUN: usize = 6;
/// A gap must be at least this many steps to be flagged.
pub const MIN_MISSING_STEPS: f64 = 3.0;
/// Observations seen before either detector judges what is normal for the series.
const MIN_HISTORY: usize = 48;

/// Scores the current run of identical values against the longest run the series showed
/// before: a run twice as long as anything seen (and at least [`MIN_FROZEN_RUN`]) scores 1.
/// Series that often repeat values (counts that sit at zero overnight) learn a long normal run
/// and are left alone.
///
/// A long run is flagged from the first time the forecast expected something else, and from
/// then on until it ends. Where the forecast expects exactly the repeated value (the zeros of
/// a channel off the air), the repeat is what a live feed does too: a channel on the air an
/// hour a day learns a 23-hour run, and the silence after a missed show (47 hours, flagged as
/// a dropout at the show's hour) went on to open a second event for the same incident at the
/// 46th hour, still off the air. A dead feed is still flagged at the first hour it should have
/// moved after the limit (there, 48 hours) and stays flagged.
#[derive(Debug, Clone, Default)]
pub struct FrozenDetector {
    last: Option<f64>,
    run: usize,
    longest_normal: usize,
    seen: usize,
    /// The run in progress has been flagged.
    flagged: bool,
}

impl Detector for FrozenDetector {
    fn name(&self) -> &'static str {
        "frozen"
    }

    fn observe(&mut self, _ts: i64, value: f64, e: &Expected) -> f64 {
        if !value.is_finite() {
            return 0.0;
        }
        self.seen += 1;
        let limit = (2 * self.longest_normal).max(MIN_FROZEN_RUN);
        if self.last == Some(value) {
            self.run += 1;
        } else {
            // A run counts as normal once it has ended short of the limit, so neither a dead
            // feed nor the run in progress teaches the detector that long runs are normal.
            if self.seen <= MIN_HISTORY + 1 || self.run < limit {
                self.longest_normal = self.longest_normal.max(self.run);
            }
            self.run = 1;
            self.last = Some(value);
            self.flagged = false;
        }
        if self.seen <= MIN_HISTORY || self.run < limit {
            return 0.0;
        }
        let expected_this = (e.yhat - value).abs() <= 1e-9 * value.abs().max(1.0);
        if !self.flagged && expected_this {
            return 0.0;
        }
        self.flagged = true;
        (self.run as f64 / limit as f64).min(MAX_SCORE)
    }
}

/// How unusual a silence of `gap_steps` is for a series whose longest normal gap was
/// `longest_normal` steps: 1 at twice that (and at least [`MIN_MISSING_STEPS`]).
pub fn silence_score(gap_steps: f64, longest_normal: f64) -> f64 {
    let limit = (2.0 * longest_normal).max(MIN_MISSING_STEPS);
    if gap_steps < limit {
        0.0
    } else {
        (gap_steps / limit).min(MAX_SCORE)
    }
}

/// Flags the first observation after an unusually long gap in the feed (a replay sees
/// missing data only when it ends; the daemon also checks silent series on every cycle).
#[derive(Debug, Clone)]
pub struct MissingDetector {
    step: i64,
    last_ts: Option<i64>,
    longest_normal: f64,
    seen: usize,
}

impl MissingDetector {
    pub fn new(step_secs: i64) -> Self {
        Self {
            step: step_secs.max(1),
            last_ts: None,
            longest_normal: 1.0,
            seen: 0,
        }
    }
}

impl Detector for MissingDetector {
    fn name(&self) -> &'static str {
        "missing"
    }

    fn observe(&mut self, ts: i64, _value: f64, _e: &Expected) -> f64 {
        let gap = match self.last_ts.replace(ts) {
            Some(prev) if ts > prev => (ts - prev) as f64 / self.step as f64,
            _ => return 0.0,
        };
        self.seen += 1;
        if self.seen <= MIN_HISTORY {
            self.longest_normal = self.longest_normal.max(gap);
            return 0.0;
        }
        let score = silence_score(gap, self.longest_normal);
        if score < 1.0 {
            self.longest_normal = self.longest_normal.max(gap);
        }
        score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: Expected = Expected {
        yhat: 0.0,
        lower: 0.0,
        upper: 0.0,
    };

    #[test]
    fn a_frozen_feed_is_flagged_but_normal_repeats_are_not() {
        let mut d = FrozenDetector::default();
        // Two hours at zero every night are normal for this series.
        let mut flags = Vec::new();
        for i in 0..24 * 10 {
            let v = if i % 24 < 2 { 0.0 } else { (i % 24) as f64 };
            if d.observe(0, v, &E) >= 1.0 {
                flags.push(i);
            }
        }
        assert!(flags.is_empty(), "{flags:?}");
        // Then the feed freezes on its last value.
        let first = (0..12)
            .position(|_| d.observe(0, 7.0, &E) >= 1.0)
            .expect("flagged");
        assert_eq!(first + 1, MIN_FROZEN_RUN, "the run reaches the limit");
    }

    #[test]
    fn a_missed_show_is_not_flagged_again_while_off_the_air_but_a_dead_feed_is() {
        // On the air at 20:00 only; the forecast expects the show then and zero otherwise.
        let expect = |i: usize| Expected {
            yhat: if i % 24 == 20 { 500.0 } else { 0.0 },
            lower: 0.0,
            upper: if i % 24 == 20 { 900.0 } else { 100.0 },
        };
        let feed = |missed: usize, dead_from: usize| {
            let mut d = FrozenDetector::default();
            (0..24 * 20)
                .filter(|&i| {
                    let on_air = i % 24 == 20 && i / 24 != missed && i < dead_from;
                    let v = if on_air { 480.0 + (i / 24) as f64 } else { 0.0 };
                    d.observe(0, v, &expect(i)) >= 1.0
                })
                .collect::<Vec<_>>()
        };
        // One show missed on day 10: 47 hours at zero, past twice the normal 23, but every
        // hour of it after the show's is off the air. (Before, its 46th and 47th hours were
        // flagged: a second event for the incident the dropout already reported.)
        assert_eq!(feed(10, usize::MAX), Vec::<usize>::new());
        // The feed dies after day 10's show: flagged from the first show hour past the limit
        // (day 12, 48 hours on), and every hour after it.
        let flags = feed(usize::MAX, 24 * 10 + 21);
        assert_eq!(flags.first(), Some(&(24 * 12 + 20)));
        assert_eq!(flags.len(), 24 * 20 - (24 * 12 + 20));
    }

    #[test]
    fn missing_flags_an_unusual_gap() {
        let mut d = MissingDetector::new(3600);
        for i in 0..100 {
            assert_eq!(d.observe(i * 3600, 1.0, &E), 0.0);
        }
        // Six hours without data.
        let s = d.observe(105 * 3600, 1.0, &E);
        assert!(s >= 1.0, "{s}");
        assert_eq!(d.observe(106 * 3600, 1.0, &E), 0.0);
        assert_eq!(silence_score(2.0, 1.0), 0.0);
        assert_eq!(silence_score(30.0, 5.0), 3.0);
    }
}
