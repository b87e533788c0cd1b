//! Seasonal naive with a fading correction: SARIMA(1,0,0)(0,1,0)ₘ. The forecast is last
//! cycle's value at the same phase plus φᵏ times how far the latest observation ran from its
//! own value a cycle earlier. A week running 5% above the last one keeps most of that for the
//! next hours and fades back to "same time last cycle" over the horizon, which is where the
//! plain seasonal naive forecast loses to it on series with slow weather- or news-driven swings.

use super::{z_for_level, Fitted, Forecaster, ModelError, Prediction, Result};

/// Largest correlation of neighbouring seasonal differences the model accepts (a value near 1
/// would carry today's gap into next week undamped).
const MAX_PHI: f64 = 0.99;

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
        let d: Vec<f64> = (m..y.len()).map(|t| y[t] - y[t - m]).collect();
        let (num, den) = d
            .windows(2)
            .fold((0.0, 0.0), |(n, s), w| (n + w[0] * w[1], s + w[0] * w[0]));
        let phi = if den > 0.0 {
            (num / den).clamp(0.0, MAX_PHI)
        } else {
            0.0
        };
        let resid: Vec<f64> = d.windows(2).map(|w| w[1] - phi * w[0]).collect();
        let sigma = super::rms(&resid);
        if !(phi.is_finite() && sigma.is_finite()) {
            return Err(ModelError::Failed {
                model: self.name(),
                reason: "non-finite values in the history".into(),
            });
        }
        Ok(Box::new(FittedSeasonalAr {
            last: y[y.len() - m..].to_vec(),
            gap: d[d.len() - 1],
            phi,
            sigma,
        }))
    }
}

struct FittedSeasonalAr {
    /// The last cycle.
    last: Vec<f64>,
    /// The latest observation less its value a cycle earlier.
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

    #[test]
    fn needs_two_cycles_and_survives_a_constant_series() {
        assert!(SeasonalAr.fit(&[1.0; 40], &[24]).is_err());
        let f = SeasonalAr.fit(&[5.0; 100], &[24]).unwrap();
        let p = f.predict(30, 95.0).unwrap();
        assert!(p.point.iter().all(|v| *v == 5.0));
        assert!(p.lower.iter().zip(&p.upper).all(|(l, u)| l == u));
    }
}
