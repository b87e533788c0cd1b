//! Series identity (tags) and the regular time grid every model works on.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// The identity of one series: its tags (e.g. `channel=news`), ordered by key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SeriesKey(pub BTreeMap<String, String>);

impl SeriesKey {
    pub fn new<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    pub fn tags(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// True when every `(key, value)` filter matches this series' tags.
    pub fn matches(&self, filters: &[(String, String)]) -> bool {
        filters.iter().all(|(k, v)| self.0.get(k) == Some(v))
    }
}

impl fmt::Display for SeriesKey {
    /// `channel=news,device=tv`: stable, readable, used as the store's key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (k, v) in &self.0 {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{k}={v}")?;
        }
        Ok(())
    }
}

/// One observation: Unix seconds and a value (NaN marks a missing value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts: i64,
    pub value: f64,
}

/// A series on a regular grid: `values[i]` is the value at `start + i * step`; NaN = missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Regular {
    pub start: i64,
    pub step: i64,
    pub values: Vec<f64>,
}

impl Regular {
    pub fn ts(&self, i: usize) -> i64 {
        self.start + i as i64 * self.step
    }

    pub fn end(&self) -> i64 {
        self.ts(self.values.len().saturating_sub(1))
    }
}

/// The typical spacing of the timestamps: the median of positive differences.
pub fn infer_step(ts: &[i64]) -> Option<i64> {
    let mut diffs: Vec<i64> = ts
        .windows(2)
        .map(|w| w[1] - w[0])
        .filter(|d| *d > 0)
        .collect();
    if diffs.is_empty() {
        return None;
    }
    diffs.sort_unstable();
    Some(diffs[diffs.len() / 2])
}

/// Puts points on the grid `start + k*step` (each point goes to its nearest slot, the later
/// of two points in one slot wins). Missing slots and non-finite values become NaN.
pub fn regularize(points: &[Point], step: i64) -> Regular {
    let step = step.max(1);
    let Some(first) = points.iter().map(|p| p.ts).min() else {
        return Regular {
            start: 0,
            step,
            values: Vec::new(),
        };
    };
    let last = points.iter().map(|p| p.ts).max().unwrap_or(first);
    let n = ((last - first + step / 2) / step) as usize + 1;
    let mut values = vec![f64::NAN; n];
    for p in points {
        let slot = ((p.ts - first + step / 2) / step) as usize;
        if slot < n && p.value.is_finite() {
            values[slot] = p.value;
        }
    }
    Regular {
        start: first,
        step,
        values,
    }
}

/// Fills NaN gaps by linear interpolation; leading/trailing gaps take the nearest value.
/// Returns None when no value is finite.
pub fn interpolate(values: &[f64]) -> Option<Vec<f64>> {
    let known: Vec<usize> = (0..values.len())
        .filter(|&i| values[i].is_finite())
        .collect();
    let (&first, &last) = (known.first()?, known.last()?);
    let mut out = values.to_vec();
    out[..first].fill(values[first]);
    out[last..].fill(values[last]);
    for w in known.windows(2) {
        let (a, b) = (w[0], w[1]);
        for (i, slot) in out.iter_mut().enumerate().take(b).skip(a + 1) {
            let f = (i - a) as f64 / (b - a) as f64;
            *slot = values[a] + f * (values[b] - values[a]);
        }
    }
    Some(out)
}

/// Seasonal periods (in steps) implied by the time step: a day and a week where the step
/// divides them (hourly → 24, 168), a week for daily data. Only periods the history supports
/// (at least two full cycles) are kept.
pub fn infer_periods(step: i64, len: usize) -> Vec<usize> {
    const DAY: i64 = 86_400;
    const WEEK: i64 = 7 * DAY;
    let candidates: Vec<i64> = if step <= 0 {
        vec![]
    } else if step < DAY && DAY % step == 0 {
        vec![DAY / step, WEEK / step]
    } else if step < DAY {
        // Irregular-ish steps (e.g. 14 minutes): round to the nearest whole number of steps.
        let d = (DAY as f64 / step as f64).round() as i64;
        vec![d, 7 * d]
    } else if step == DAY {
        vec![7]
    } else {
        vec![]
    };
    supported_periods(candidates.into_iter().map(|p| p as usize), len)
}

/// Keeps periods of at least 2 steps for which `len` holds two full cycles.
pub fn supported_periods(periods: impl IntoIterator<Item = usize>, len: usize) -> Vec<usize> {
    let mut out: Vec<usize> = periods
        .into_iter()
        .filter(|&p| p >= 2 && len >= 2 * p)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_display_is_sorted_and_filters_match() {
        let k = SeriesKey::new([("device", "tv"), ("channel", "news")]);
        assert_eq!(k.to_string(), "channel=news,device=tv");
        assert!(k.matches(&[("channel".into(), "news".into())]));
        assert!(!k.matches(&[("channel".into(), "kids".into())]));
    }

    #[test]
    fn regularize_fills_gaps_with_nan_and_interpolates() {
        let pts = [
            Point { ts: 0, value: 1.0 },
            Point {
                ts: 3600,
                value: f64::NAN,
            },
            Point {
                ts: 3 * 3600,
                value: 4.0,
            },
        ];
        let r = regularize(&pts, 3600);
        assert_eq!(r.values.len(), 4);
        assert!(r.values[1].is_nan() && r.values[2].is_nan());
        let f = interpolate(&r.values).unwrap();
        assert_eq!(f, vec![1.0, 2.0, 3.0, 4.0]);
        assert!(interpolate(&[f64::NAN, f64::NAN]).is_none());
    }

    #[test]
    fn periods_follow_step_and_history() {
        assert_eq!(infer_periods(3600, 24 * 7 * 4), vec![24, 168]);
        assert_eq!(infer_periods(3600, 200), vec![24]);
        assert_eq!(infer_periods(3600, 40), Vec::<usize>::new());
        assert_eq!(infer_periods(1800, 5000), vec![48, 336]);
        assert_eq!(
            infer_periods(300, 5000),
            vec![288, 2016]
                .into_iter()
                .filter(|p| 5000 >= 2 * p)
                .collect::<Vec<_>>()
        );
        assert_eq!(infer_periods(86_400, 30), vec![7]);
        assert_eq!(infer_step(&[0, 10, 20, 35, 45]), Some(10));
    }
}
