//! Seasonal naive ("same hour last week") and plain naive forecasts: the baselines, and the
//! fallback for series too short or too odd for anything else.

use super::{z_for_level, Fitted, Forecaster, ModelError, Prediction, Result};

#[derive(Debug, Clone, Copy)]
pub struct SeasonalNaive {
    seasonal: bool,
}

impl SeasonalNaive {
    /// Repeats the last cycle of the longest period the history supports.
    pub fn seasonal() -> Self {
        Self { seasonal: true }
    }

    /// Repeats the last value.
    pub fn naive() -> Self {
        Self { seasonal: false }
    }
}

impl Forecaster for SeasonalNaive {
    fn name(&self) -> &'static str {
        if self.seasonal {
            "seasonal_naive"
        } else {
            "naive"
        }
    }

    fn fit(&self, y: &[f64], periods: &[usize]) -> Result<Box<dyn Fitted>> {
        let m = if self.seasonal {
            super::longest_period(self.name(), y, periods)?
        } else {
            1
        };
        if y.len() < m.max(1) {
            return Err(ModelError::TooShort {
                model: self.name(),
                have: y.len(),
                need: m,
            });
        }
        let resid: Vec<f64> = (m..y.len()).map(|t| y[t] - y[t - m]).collect();
        let sigmas = if self.seasonal {
            super::rms_by_phase(&resid, m, periods)
        } else {
            vec![super::rms(&resid)]
        };
        Ok(Box::new(FittedNaive {
            name: self.name(),
            last: y[y.len() - m..].to_vec(),
            sigmas,
            next_phase: y.len(),
        }))
    }
}

struct FittedNaive {
    name: &'static str,
    last: Vec<f64>,
    /// One-cycle-ahead σ by phase of the shortest period (one σ for all without it).
    sigmas: Vec<f64>,
    /// The time index of the first forecast step (its phase is this modulo `sigmas.len()`).
    next_phase: usize,
}

impl Fitted for FittedNaive {
    fn name(&self) -> &'static str {
        self.name
    }

    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction> {
        // Each further cycle adds one more step of seasonal-random-walk variance.
        let k = self.sigmas.len();
        Ok(repeat_profile(
            &self.last,
            |h| self.sigmas[(self.next_phase + h) % k],
            horizon,
            level,
            |cycles| (cycles + 1) as f64,
        ))
    }
}

/// Repeats `profile` cycle after cycle with an interval of ±z·σ(step)·√growth(completed
/// cycles).
pub(super) fn repeat_profile(
    profile: &[f64],
    sigma: impl Fn(usize) -> f64,
    horizon: usize,
    level: f64,
    growth: impl Fn(usize) -> f64,
) -> Prediction {
    let m = profile.len().max(1);
    let z = z_for_level(level);
    let mut p = Prediction {
        level,
        point: vec![],
        lower: vec![],
        upper: vec![],
    };
    for h in 0..horizon {
        let y = profile[h % m];
        let half = z * sigma(h) * growth(h / m).sqrt();
        p.point.push(y);
        p.lower.push(y - half);
        p.upper.push(y + half);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_last_cycle_with_widening_interval() {
        let y: Vec<f64> = (0..48)
            .map(|i| (i % 24) as f64 + if i >= 24 { 1.0 } else { 0.0 })
            .collect();
        let f = SeasonalNaive::seasonal().fit(&y, &[24]).unwrap();
        let p = f.predict(48, 95.0).unwrap();
        assert_eq!(p.point[0], 1.0);
        assert_eq!(p.point[23], 24.0);
        assert_eq!(p.point[24], 1.0);
        // residuals are all 1 → sigma 1; second cycle is sqrt(2) wider.
        assert!((p.upper[0] - p.point[0] - 1.959964).abs() < 1e-4);
        assert!((p.upper[24] - p.point[24] - 1.959964 * 2f64.sqrt()).abs() < 1e-4);
    }

    #[test]
    fn the_interval_follows_the_spread_of_each_hour_of_the_day() {
        // A "day" of 4 steps in a "week" of 8: the first step of each day is ten times as
        // noisy as the others.
        let y = |n: usize| -> Vec<f64> {
            (0..n)
                .map(|i| {
                    let sign = if (i * 7919) % 3 == 0 { 1.0 } else { -1.0 };
                    let noise = if i % 4 == 0 { 10.0 } else { 1.0 };
                    100.0 + (i % 8) as f64 + sign * noise
                })
                .collect()
        };
        let half = |n: usize| {
            let y = y(n);
            let p = SeasonalNaive::seasonal()
                .fit(&y, &[4, 8])
                .unwrap()
                .predict(8, 95.0)
                .unwrap();
            (0..8)
                .map(|h| (p.upper[h] - p.point[h], (n + h).is_multiple_of(4)))
                .collect::<Vec<_>>()
        };
        // 400 steps: 98 residuals per phase. The noisy phase's interval is about ten times
        // the others'.
        let long = half(400);
        for &(w, noisy) in &long {
            let others = long
                .iter()
                .filter(|x| !x.1)
                .map(|x| x.0)
                .fold(0.0, f64::max);
            if noisy {
                assert!(w > 5.0 * others, "{long:?}");
            }
        }
        // 100 steps: too few residuals per phase to tell, one σ for all.
        let short = half(100);
        assert!(
            short.iter().all(|x| (x.0 - short[0].0).abs() < 1e-9),
            "{short:?}"
        );
    }
}
