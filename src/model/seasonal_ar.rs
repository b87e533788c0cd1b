//! Seasonal naive with a fading correction: SARIMA(1,0,0)(0,1,0)ₘ. The forecast is last
//! cycle's value at the same phase plus φᵏ times how far the latest observation ran from its
//! own value a cycle earlier. A week running 5% above the last one keeps most of that for the
//! next hours and fades back to "same time last cycle" over the horizon, which is where the
//! plain seasonal naive forecast loses to it on series with slow weather- or news-driven swings.
//!
//! Where one cycle's shape is a noisy copy of the next (a road's Sunday night, a bike share's
//! rainy Tuesday), the cycle is smoothed: the profile at each phase follows the cycles
//! exponentially, `s ← s + (1 − θ)(y − s)`, and is moved to the last cycle's mean, so a change
//! of level is followed at once and only the shape is averaged. θ is the value on a grid whose
//! week-ahead forecasts (profile, level and fading gap together, the forecast the model makes)
//! from every cycle of the history erred least, and it is kept only when it beats θ = 0, the
//! plain model, by more than one standard error of the per-cycle log error ratio (as `auto`
//! judges models, [`super::backtest::choose`]). Measured (`benches/unseen_series.py
//! --holdouts 30`, series no default was tuned on, week-ahead rMAE): road traffic volume
//! 1.097 → 0.892, bike sharing 0.957 → 0.947, electricity 0.827 → 0.819, freeway occupancy
//! 0.983 → 0.972, bitcoin 0.841 → 0.829, Peyton Manning 0.838 → 0.833, solar 0.779 → 0.786.
//! Over the evaluation sets' weeks (`benches/rolling_holdouts.py --weeks 50`) 0.665 / 0.852 /
//! 0.898 → 0.663 / 0.842 / 0.902. It costs the README's single hold-outs of elecdemand
//! (Christmas week, where the week before had the holiday's shape: 0.725 → 0.789) and nyc taxi
//! (0.821 → 0.848). Smoothed without the level of the last cycle, the profile lagged every
//! change of level (elecdemand's hold-out 0.826, no better than statsforecast's MSTL).

use super::{z_for_level, Fitted, Forecaster, ModelError, Prediction, Result};

/// Largest correlation of neighbouring seasonal differences the model accepts (a value near 1
/// would carry today's gap into next week undamped).
const MAX_PHI: f64 = 0.99;

/// The smoothing weights θ tried: 0 (last cycle's shape) to 0.9 (about ten cycles' memory).
const THETAS: [f64; 19] = [
    0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8,
    0.85, 0.9,
];

#[derive(Debug, Clone, Copy)]
pub struct SeasonalAr;

impl Forecaster for SeasonalAr {
    fn name(&self) -> &'static str {
        "seasonal_ar"
    }

    fn fit(&self, y: &[f64], periods: &[usize]) -> Result<Box<dyn Fitted>> {
        let m = super::longest_period(self.name(), y, periods)?;
        // At least a cycle of seasonal differences to estimate φ on.
        if y.len() < 2 * m + 2 {
            return Err(ModelError::TooShort {
                model: self.name(),
                have: y.len(),
                need: 2 * m + 2,
            });
        }
        let theta = fit_theta(y, m);
        let smoothed = Profile::run(y, m, theta, |_, _| {});
        let d = &smoothed.gaps;
        let phi = ar1(d);
        let resid: Vec<f64> = d.windows(2).map(|w| w[1] - phi * w[0]).collect();
        let sigma = super::rms(&resid);
        if !(phi.is_finite() && sigma.is_finite()) {
            return Err(ModelError::Failed {
                model: self.name(),
                reason: "non-finite values in the history".into(),
            });
        }
        Ok(Box::new(FittedSeasonalAr {
            last: smoothed.next_cycle(),
            gap: d[d.len() - 1],
            phi,
            sigma,
        }))
    }
}

/// The correlation of neighbouring values of `d`, clamped to [0, MAX_PHI].
fn ar1(d: &[f64]) -> f64 {
    let (num, den) = d
        .windows(2)
        .fold((0.0, 0.0), |(n, s), w| (n + w[0] * w[1], s + w[0] * w[0]));
    if den > 0.0 {
        (num / den).clamp(0.0, MAX_PHI)
    } else {
        0.0
    }
}

/// The cycle profile smoothed with weight θ, run over a history.
struct Profile {
    /// Smoothed value at each phase (time index modulo the period).
    s: Vec<f64>,
    /// Sum of `s`, and of the last cycle of the history: their difference is the shift that
    /// puts the profile at the last cycle's level.
    s_sum: f64,
    y_sum: f64,
    /// How far each observation from the second cycle on ran from the profile (shifted to
    /// the level of the cycle before it) as it stood one step earlier.
    gaps: Vec<f64>,
}

impl Profile {
    /// Runs the profile over `y` with period `m` and weight `theta`, calling
    /// `at_origin(profile, t)` after each step t from the first cycle on (the profile then
    /// knows `y[..=t]`).
    fn run(y: &[f64], m: usize, theta: f64, mut at_origin: impl FnMut(&Self, usize)) -> Self {
        let first: Vec<f64> = y[..m].to_vec();
        let sum = first.iter().sum();
        let mut p = Self {
            s: first,
            s_sum: sum,
            y_sum: sum,
            gaps: Vec::with_capacity(y.len() - m),
        };
        for t in m..y.len() {
            let phase = t % m;
            p.gaps.push(y[t] - p.s[phase] - p.shift());
            let old = p.s[phase];
            p.s[phase] += (1.0 - theta) * (y[t] - old);
            p.s_sum += p.s[phase] - old;
            p.y_sum += y[t] - y[t - m];
            at_origin(&p, t);
        }
        p
    }

    fn shift(&self) -> f64 {
        (self.y_sum - self.s_sum) / self.s.len() as f64
    }

    /// The profile at the level of the last cycle, for the `k`-th step after the history.
    fn ahead(&self, k: usize) -> f64 {
        // The history run so far is the first cycle and one step per gap.
        let n = self.s.len() + self.gaps.len();
        self.s[(n + k) % self.s.len()] + self.shift()
    }

    /// [`Profile::ahead`] for one cycle, index 0 the next step.
    fn next_cycle(&self) -> Vec<f64> {
        (0..self.s.len()).map(|k| self.ahead(k)).collect()
    }
}

/// The absolute error of the model's next-cycle forecast with weight `theta`, summed over
/// one cycle from each origin at a whole number of cycles after the first two (φ from the
/// whole history's gaps at that θ, as the fit takes it).
fn cycle_errors(y: &[f64], m: usize, theta: f64) -> Vec<f64> {
    // One run keeps, at each origin, the gap and how far the next cycle ran from the
    // profile; φ, known once the run has seen every gap, then fades the gap in.
    let mut origins: Vec<(f64, Vec<f64>)> = Vec::new();
    let run = Profile::run(y, m, theta, |p, t| {
        let o = t + 1;
        if o >= 2 * m && o + m <= y.len() && o % m == 0 {
            let gap = p.gaps[p.gaps.len() - 1];
            origins.push((gap, (0..m).map(|k| y[o + k] - p.ahead(k)).collect()));
        }
    });
    let phi = ar1(&run.gaps);
    origins
        .iter()
        .map(|(gap, off)| {
            let mut phi_k = 1.0;
            off.iter()
                .map(|d| {
                    phi_k *= phi;
                    (d - phi_k * gap).abs()
                })
                .sum()
        })
        .collect()
}

/// The smoothing weight: the θ of [`THETAS`] with the least error over the history's
/// cycles, when it beats θ = 0 by more than the noise of those cycles
/// ([`super::backtest::beats_beyond_noise`]); otherwise 0, the plain model.
fn fit_theta(y: &[f64], m: usize) -> f64 {
    let plain = cycle_errors(y, m, 0.0);
    if plain.len() < 2 {
        return 0.0;
    }
    THETAS[1..]
        .iter()
        .map(|&theta| {
            let errors = cycle_errors(y, m, theta);
            (errors.iter().sum::<f64>(), theta, errors)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .filter(|(_, _, errors)| super::backtest::beats_beyond_noise(errors, &plain))
        .map_or(0.0, |(_, theta, _)| theta)
}

struct FittedSeasonalAr {
    /// The next cycle before the gap's share: the last cycle, or the smoothed profile at its
    /// level.
    last: Vec<f64>,
    /// How far the latest observation ran from its value in that profile.
    gap: f64,
    phi: f64,
    sigma: f64,
}

impl Fitted for FittedSeasonalAr {
    fn name(&self) -> &'static str {
        "seasonal_ar"
    }

    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction> {
        let m = self.last.len();
        let z = z_for_level(level);
        let mut point = Vec::with_capacity(horizon);
        let mut var = Vec::with_capacity(horizon);
        // Variance of the k-step seasonal difference: σ²(1 + φ² + … + φ^(2(k−1))).
        let (mut phi_k, mut diff_var) = (1.0, 0.0);
        for k in 0..horizon {
            diff_var += phi_k * phi_k * self.sigma * self.sigma;
            phi_k *= self.phi;
            let (base, base_var) = if k < m {
                (self.last[k], 0.0)
            } else {
                (point[k - m], var[k - m])
            };
            point.push(base + phi_k * self.gap);
            var.push(base_var + diff_var);
        }
        let half: Vec<f64> = var.iter().map(|v: &f64| z * v.sqrt()).collect();
        Ok(Prediction {
            level,
            lower: point.iter().zip(&half).map(|(p, h)| p - h).collect(),
            upper: point.iter().zip(&half).map(|(p, h)| p + h).collect(),
            point,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_to_last_cycle_fades_at_the_rate_it_faded_before() {
        // A daily profile plus a slow wave that moves every day off the one before, so the
        // seasonal differences are strongly correlated from one hour to the next.
        let y: Vec<f64> = (0..24 * 20)
            .map(|i| {
                let t = i as f64;
                100.0 + 30.0 * (t / 24.0 * std::f64::consts::TAU).sin() + 10.0 * (t / 90.0).sin()
            })
            .collect();
        let f = SeasonalAr.fit(&y, &[24]).unwrap();
        let p = f.predict(48, 95.0).unwrap();
        let n = y.len();
        let gap = y[n - 1] - y[n - 25];
        // One step ahead: last cycle's value plus nearly all of the gap.
        let one = p.point[0] - y[n - 24];
        assert!(one * gap > 0.0 && (one / gap) > 0.9, "{one} vs {gap}");
        // The correction shrinks along the horizon, and the interval widens.
        let later = p.point[23] - y[n - 1];
        assert!(later.abs() < one.abs(), "{later} vs {one}");
        assert!(p.upper[47] - p.point[47] > p.upper[0] - p.point[0]);

        // Better than last cycle's values on what really followed.
        let truth: Vec<f64> = (n..n + 24)
            .map(|i| {
                let t = i as f64;
                100.0 + 30.0 * (t / 24.0 * std::f64::consts::TAU).sin() + 10.0 * (t / 90.0).sin()
            })
            .collect();
        let mae = |f: &dyn Fn(usize) -> f64| (0..24).map(|k| (truth[k] - f(k)).abs()).sum::<f64>();
        assert!(mae(&|k| p.point[k]) < mae(&|k| y[n - 24 + k]) * 0.8);
    }

    use crate::model::test_noise as noise;

    #[test]
    fn a_noisy_cycle_is_smoothed_and_a_change_of_level_is_followed() {
        // A daily profile with much noise at every hour, 20 days, the last two 50 higher.
        let mut u = noise(7);
        let profile = |h: usize| 100.0 + 40.0 * (h as f64 / 24.0 * std::f64::consts::TAU).sin();
        let level = |day: usize| if day >= 18 { 50.0 } else { 0.0 };
        let y: Vec<f64> = (0..24 * 20)
            .map(|i| profile(i % 24) + level(i / 24) + 15.0 * u())
            .collect();
        let m = 24;
        let theta = fit_theta(&y, m);
        assert!(theta >= 0.3, "θ = {theta}");
        let p = SeasonalAr.fit(&y, &[m]).unwrap().predict(m, 95.0).unwrap();
        // Nearer the true next day than a copy of the last day, and at the new level.
        let truth: Vec<f64> = (0..m).map(|h| profile(h) + 50.0).collect();
        let mae = |f: &[f64]| {
            f.iter()
                .zip(&truth)
                .map(|(a, b)| (a - b).abs())
                .sum::<f64>()
                / 24.0
        };
        let copy = &y[y.len() - m..];
        assert!(
            mae(&p.point) < 0.7 * mae(copy),
            "{} vs {}",
            mae(&p.point),
            mae(copy)
        );
        let mean = p.point.iter().sum::<f64>() / 24.0;
        assert!((mean - 150.0).abs() < 6.0, "mean {mean}");
    }

    #[test]
    fn a_cycle_that_carries_on_from_the_last_keeps_the_plain_model() {
        // Each day's shape is the day before's plus a lasting change at every hour (a random
        // walk by hour): yesterday is the best guess and averaging older days only lags.
        let mut u = noise(11);
        let mut day: Vec<f64> = (0..24).map(|h| 100.0 + 3.0 * h as f64).collect();
        let mut y = Vec::new();
        for _ in 0..20 {
            for v in day.iter_mut() {
                *v += 10.0 * u();
            }
            y.extend_from_slice(&day);
        }
        assert_eq!(fit_theta(&y, 24), 0.0);
        // Then the forecast is last day's values plus the fading gap, as before smoothing.
        let p = SeasonalAr
            .fit(&y, &[24])
            .unwrap()
            .predict(24, 95.0)
            .unwrap();
        let gap = y[y.len() - 1] - y[y.len() - 25];
        let phi = ar1(&(24..y.len()).map(|t| y[t] - y[t - 24]).collect::<Vec<_>>());
        let expected = y[y.len() - 24] + phi * gap;
        assert!(
            (p.point[0] - expected).abs() < 1e-9,
            "{} vs {expected}",
            p.point[0]
        );
    }

    #[test]
    fn needs_two_cycles_and_survives_a_constant_series() {
        assert!(SeasonalAr.fit(&[1.0; 40], &[24]).is_err());
        let f = SeasonalAr.fit(&[5.0; 100], &[24]).unwrap();
        let p = f.predict(30, 95.0).unwrap();
        assert!(p.point.iter().all(|v| *v == 5.0));
        assert!(p.lower.iter().zip(&p.upper).all(|(l, u)| l == u));
    }
}
