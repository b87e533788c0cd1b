//! Consecutive anomalous observations form one event (start, end, peak score, detector).
//! A minimum duration and hysteresis keep alerts from flapping: an event opens after
//! `confirm` consecutive observations at or above the threshold (or at once for a score of
//! `instant` or more), and stays open while scores stay above `release` × threshold.

use super::Verdict;

/// When observations become (and stop being) an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventRules {
    pub threshold: f64,
    pub confirm: usize,
    pub instant: f64,
    pub release: f64,
    /// A score (or an event's peak) at least this high is critical rather than a warning.
    pub critical: f64,
}

/// How urgent an anomaly is, from its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl EventRules {
    /// The severity of a score: none below the threshold, critical from `critical` up.
    pub fn severity(&self, score: f64) -> Option<Severity> {
        if score >= self.critical.max(self.threshold) {
            Some(Severity::Critical)
        } else if score >= self.threshold {
            Some(Severity::Warning)
        } else {
            None
        }
    }
}

impl Default for EventRules {
    fn default() -> Self {
        Self {
            threshold: 1.0,
            confirm: 2,
            instant: 3.0,
            release: 0.8,
            critical: 3.0,
        }
    }
}

/// An anomaly event of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub start: i64,
    /// The last observation in the event so far.
    pub end: i64,
    pub peak: f64,
    pub detector: &'static str,
    /// Still going on at the last observation.
    pub open: bool,
}

#[derive(Debug, Default)]
pub struct EventTracker {
    rules: EventRules,
    /// Observations above the threshold not yet confirmed: (time, score, detector).
    pending: Vec<(i64, f64, &'static str)>,
    open: Option<Event>,
}

impl EventTracker {
    pub fn new(rules: EventRules) -> Self {
        Self {
            rules,
            pending: Vec::new(),
            open: None,
        }
    }

    /// Feeds one verdict; returns whether this observation is part of an event, and the event
    /// it opened, extended or closed (if any).
    pub fn observe(&mut self, ts: i64, v: &Verdict) -> (bool, Option<Event>) {
        let r = self.rules;
        if let Some(e) = self.open.as_mut() {
            if v.score >= r.release * r.threshold {
                e.end = ts;
                if v.score > e.peak {
                    e.peak = v.score;
                    e.detector = v.detector;
                }
                return (true, Some(e.clone()));
            }
            let mut closed = self.open.take().expect("checked above");
            closed.open = false;
            return (false, Some(closed));
        }
        if v.score < r.threshold {
            self.pending.clear();
            return (false, None);
        }
        self.pending.push((ts, v.score, v.detector));
        if v.score >= r.instant || self.pending.len() >= r.confirm.max(1) {
            let (start, _, _) = self.pending[0];
            let (peak, detector) =
                self.pending
                    .iter()
                    .fold(
                        (0.0, v.detector),
                        |(p, d), (_, s, det)| if *s > p { (*s, *det) } else { (p, d) },
                    );
            self.pending.clear();
            let e = Event {
                start,
                end: ts,
                peak,
                detector,
                open: true,
            };
            self.open = Some(e.clone());
            return (true, Some(e));
        }
        (false, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(score: f64) -> Verdict {
        Verdict {
            score,
            detector: "interval",
        }
    }

    #[test]
    fn a_single_blip_is_not_an_event_but_a_big_one_is() {
        let mut t = EventTracker::new(EventRules::default());
        assert!(!t.observe(0, &v(1.5)).0);
        assert_eq!(t.observe(1, &v(0.2)), (false, None));
        let (flag, e) = t.observe(2, &v(5.0));
        assert!(flag);
        assert_eq!(
            e.unwrap(),
            Event {
                start: 2,
                end: 2,
                peak: 5.0,
                detector: "interval",
                open: true
            }
        );
    }

    #[test]
    fn confirmation_hysteresis_and_close() {
        let mut t = EventTracker::new(EventRules::default());
        assert!(!t.observe(10, &v(1.2)).0);
        let (flag, e) = t.observe(11, &v(1.6));
        assert!(flag);
        assert_eq!(
            e.unwrap().start,
            10,
            "the event starts at the first observation above the threshold"
        );
        // 0.9 is below the threshold but above the release level: the event goes on.
        let (flag, e) = t.observe(12, &v(0.9));
        assert!(flag && e.unwrap().open);
        let (flag, e) = t.observe(13, &v(0.3));
        assert!(!flag);
        assert_eq!(
            e.unwrap(),
            Event {
                start: 10,
                end: 12,
                peak: 1.6,
                detector: "interval",
                open: false
            }
        );
        assert_eq!(t.observe(14, &v(0.1)), (false, None));
    }

    #[test]
    fn severity_follows_the_score() {
        let r = EventRules {
            critical: 5.0,
            ..EventRules::default()
        };
        assert_eq!(r.severity(0.99), None);
        assert_eq!(r.severity(1.0), Some(Severity::Warning));
        assert_eq!(r.severity(4.9).map(Severity::as_str), Some("warning"));
        assert_eq!(r.severity(5.0).map(Severity::as_str), Some("critical"));
    }
}
