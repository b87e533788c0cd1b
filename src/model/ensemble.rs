//! Simple, robust models that earn their place on real series: the seasonal mean (the
//! average of the last few cycles at the same phase, which shrugs off a one-off week) and an
//! equal-weight ensemble of MSTL+ETS and the seasonal AR forecast (last cycle's exact shape,
//! corrected by the current gap to it): the two err in different ways, so their mean often
//! beats both.

use super::{
    Fitted, Forecaster, ModelError, MstlEts, Prediction, Result, SeasonalAr, SeasonalNaive,
};

/// Cycles averaged by the seasonal mean.
const CYCLES: usize = 3;

#[derive(Debug, Clone, Copy)]
pub struct SeasonalMean;

impl Forecaster for SeasonalMean {
    fn name(&self) -> &'static str {
        "seasonal_mean"
    }

    fn fit(&self, y: &[f64], periods: &[usize]) -> Result<Box<dyn Fitted>> {
        let m = super::longest_period(self.name(), y, periods)?;
        // Keep at least one cycle after the first k to measure the rule's own error on.
        let k = (y.len() / m).saturating_sub(1).min(CYCLES);
        if k < 2 {
            return Err(ModelError::TooShort {
                model: self.name(),
                have: y.len(),
                need: 3 * m,
            });
        }
        let n = y.len();
        let profile: Vec<f64> = (0..m)
            .map(|p| (1..=k).map(|j| y[n - j * m + p]).sum::<f64>() / k as f64)
            .collect();
        // One-step-of-a-cycle error of the same rule in sample, where k cycles precede.
        let resid: Vec<f64> = (k * m..n)
            .map(|t| y[t] - (1..=k).map(|j| y[t - j * m]).sum::<f64>() / k as f64)
            .collect();
        let sigma = super::rms(&resid);
        Ok(Box::new(FittedMean { profile, sigma, k }))
    }
}

struct FittedMean {
    profile: Vec<f64>,
    sigma: f64,
    k: usize,
}

impl Fitted for FittedMean {
    fn name(&self) -> &'static str {
        "seasonal_mean"
    }

    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction> {
        // Further cycles reuse the same profile: the error grows like a random walk in cycles.
        let k = self.k as f64;
        Ok(super::naive::repeat_profile(
            &self.profile,
            |_| self.sigma,
            horizon,
            level,
            |cycles| 1.0 + cycles as f64 / k,
        ))
    }
}

/// The mean of MSTL+ETS and the seasonal AR forecast (seasonal naive while the history is
/// shorter than two cycles), point and bounds alike.
#[derive(Debug, Clone, Copy)]
pub struct Ensemble;

impl Ensemble {
    /// The catalog names of the members, as a backtest that already has their forecasts can
    /// average them.
    pub const MEMBERS: [&'static str; 2] = ["mstl_ets", "seasonal_ar"];
}

impl Forecaster for Ensemble {
    fn name(&self) -> &'static str {
        "ensemble"
    }

    fn fit(&self, y: &[f64], periods: &[usize]) -> Result<Box<dyn Fitted>> {
        Ok(Box::new(FittedEnsemble(vec![
            MstlEts.fit(y, periods)?,
            SeasonalAr
                .fit(y, periods)
                .or_else(|_| SeasonalNaive::seasonal().fit(y, periods))?,
        ])))
    }
}

struct FittedEnsemble(Vec<Box<dyn Fitted>>);

impl Fitted for FittedEnsemble {
    fn name(&self) -> &'static str {
        "ensemble"
    }

    /// The members' own corrections, averaged as their bounds are.
    fn uncalibrated_spread(&self) -> f64 {
        self.0.iter().map(|f| f.uncalibrated_spread()).sum::<f64>() / self.0.len() as f64
    }

    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction> {
        let parts = self
            .0
            .iter()
            .map(|f| f.predict(horizon, level))
            .collect::<Result<Vec<_>>>()?;
        let w = 1.0 / parts.len() as f64;
        let avg = |get: fn(&Prediction) -> &Vec<f64>| {
            (0..horizon)
                .map(|i| parts.iter().map(|p| get(p)[i]).sum::<f64>() * w)
                .collect()
        };
        Ok(Prediction {
            level,
            point: avg(|p| &p.point),
            lower: avg(|p| &p.lower),
            upper: avg(|p| &p.upper),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seasonal_mean_averages_the_last_cycles() {
        // Three cycles of 0,1,2,3 with the last one shifted up by 3: the mean is +1.
        let y: Vec<f64> = (0..16)
            .map(|i| (i % 4) as f64 + if i >= 12 { 3.0 } else { 0.0 })
            .collect();
        let p = SeasonalMean
            .fit(&y, &[4])
            .unwrap()
            .predict(4, 95.0)
            .unwrap();
        assert_eq!(p.point, vec![1.0, 2.0, 3.0, 4.0]);
        // The interval reflects the rule's in-sample error (never zero width on noisy data).
        assert!(p.upper[0] > p.point[0]);
        assert!(SeasonalMean.fit(&y[..11], &[4]).is_err());
    }
}
