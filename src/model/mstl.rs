//! MSTL decomposition (daily + weekly seasonality, from the `augurs` crate) with an ETS model
//! of the deseasonalised series.
//!
//! The deseasonalised series is forecast by ETS *without* a trend (A,N,N or M,N,N, chosen by
//! AICc). Over a week-long horizon an extrapolated slope is the main way MSTL forecasts go
//! wrong: a slope fitted to a recovery after a holiday, or to a few weeks of seasonal drift, is
//! carried for hundreds of steps. With the level alone the forecast is the recent level plus
//! the seasonal profiles, which is what traffic series do week to week. (augurs' own `AutoETS`
//! cannot be restricted to no-trend models: its search with trend `N` finds no candidates.)
//!
//! Two choices differ from augurs' defaults, both measured over 24 week-long hold-outs of the
//! three evaluation sets (README, "Forecast accuracy"):
//! - A strictly positive series is decomposed on the log scale, so its seasonal swings are
//!   proportional to its level. Traffic is like that: a channel that loses 40% of its audience
//!   loses 40% of its evening peak, not the same number of viewers at every hour (which, on
//!   the additive scale, drives the night-time forecast below zero).
//! - With two or more periods, the longest one (the week) is periodic: its profile is the mean
//!   over the fit window, not a loess through the last few weeks. Recency comes from the level
//!   and from the daily profile; a weekly profile that follows the last holiday week does more
//!   harm than good. The shorter periods keep MSTL's default windows (7 + 4i cycles).

use std::borrow::Cow;

use augurs::ets::model::{ErrorComponent, ModelType, SeasonalComponent, TrendComponent, Unfit};
use augurs::mstl::{FittedTrendModel, MSTLModel, TrendModel};
use augurs::{Fit as _, Forecast, Predict as _};

use super::{Fitted, Forecaster, ModelError, Prediction, Result};

const NAME: &str = "mstl_ets";

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, Clone, Copy)]
pub struct MstlEts;

impl Forecaster for MstlEts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fit(&self, y: &[f64], periods: &[usize]) -> Result<Box<dyn Fitted>> {
        let shortest = periods.first().copied().unwrap_or(0);
        if periods.is_empty() || y.len() < 2 * shortest {
            return Err(ModelError::TooShort {
                model: NAME,
                have: y.len(),
                need: 2 * shortest.max(2),
            });
        }
        let mut params = augurs::mstl::stlrs::MstlParams::new();
        params.seasonal_lengths(&seasonal_lengths(periods));
        let log = y.iter().all(|v| *v > 0.0 && v.is_finite());
        // On the log scale errors are already relative: a multiplicative-error ETS would fit
        // the same thing again, at twice the cost.
        let trend = LevelEts {
            multiplicative: !log,
        };
        let model = MSTLModel::new(periods.to_vec(), trend).mstl_params(params);
        let scaled: Cow<'_, [f64]> = if log {
            Cow::Owned(y.iter().map(|v| v.ln()).collect())
        } else {
            Cow::Borrowed(y)
        };
        // augurs is outside code: a panic in it must not take the caller down.
        let fitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.fit(&scaled)))
            .map_err(|_| failed("panicked while fitting".into()))?
            .map_err(|e| failed(e.to_string()))?;
        Ok(Box::new(FittedMstl { fitted, log }))
    }
}

/// A seasonal smoothing span (in cycles) far longer than any fit window: a periodic profile.
const PERIODIC: usize = 10_001;

/// STL's seasonal smoothing span per period (odd, in cycles): MSTL's default 7 + 4i for the
/// i-th shortest, and periodic for the longest when there are several.
fn seasonal_lengths(periods: &[usize]) -> Vec<usize> {
    let longest = periods.iter().max().copied().unwrap_or(0);
    let mut order: Vec<usize> = (0..periods.len()).collect();
    order.sort_by_key(|&i| periods[i]);
    let mut lengths = vec![0; periods.len()];
    for (rank, &i) in order.iter().enumerate() {
        lengths[i] = if periods.len() > 1 && periods[i] == longest {
            PERIODIC
        } else {
            7 + 4 * (rank + 1)
        };
    }
    lengths
}

fn failed(reason: String) -> ModelError {
    ModelError::Failed {
        model: NAME,
        reason,
    }
}

/// ETS with a level and no trend or season, error additive or (when allowed and the series is
/// positive) multiplicative by AICc.
#[derive(Debug, Clone, Copy)]
struct LevelEts {
    multiplicative: bool,
}

impl TrendModel for LevelEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("ETS(Z,N,N)")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let positive = self.multiplicative && y.iter().all(|v| *v > 0.0);
        let errors: &[ErrorComponent] = if positive {
            &[ErrorComponent::Additive, ErrorComponent::Multiplicative]
        } else {
            &[ErrorComponent::Additive]
        };
        let best = errors
            .iter()
            .filter_map(|&error| {
                Unfit::new(ModelType {
                    error,
                    trend: TrendComponent::None,
                    season: SeasonalComponent::None,
                })
                .damped(false)
                .fit(y)
                .ok()
                .filter(|m| m.aicc().is_finite())
            })
            .min_by(|a, b| a.aicc().total_cmp(&b.aicc()))
            .ok_or("no ETS level model could be fitted")?;
        Ok(Box::new(FittedLevel(best)))
    }
}

#[derive(Debug)]
struct FittedLevel(augurs::ets::model::Model);

impl FittedTrendModel for FittedLevel {
    fn predict_inplace(
        &self,
        horizon: usize,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        Ok(self.0.predict_inplace(horizon, level, forecast)?)
    }

    fn predict_in_sample_inplace(
        &self,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        Ok(self.0.predict_in_sample_inplace(level, forecast)?)
    }

    fn training_data_size(&self) -> Option<usize> {
        None
    }
}

struct FittedMstl {
    fitted: augurs::mstl::FittedMSTLModel,
    /// Fitted to the log of the series: forecasts are mapped back with exp.
    log: bool,
}

impl Fitted for FittedMstl {
    fn name(&self) -> &'static str {
        NAME
    }

    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction> {
        let f = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.fitted.predict(horizon, level / 100.0)
        }))
        .map_err(|_| failed("panicked while predicting".into()))?
        .map_err(|e| failed(e.to_string()))?;
        let iv = f
            .intervals
            .ok_or_else(|| failed("no intervals returned".into()))?;
        // exp is monotone, so the interval's bounds map to the bounds of the interval on the
        // original scale (the point becomes the median rather than the mean).
        let back = |v: Vec<f64>| -> Vec<f64> {
            if self.log {
                v.into_iter().map(f64::exp).collect()
            } else {
                v
            }
        };
        Ok(Prediction {
            level,
            point: back(f.point),
            lower: back(iv.lower),
            upper: back(iv.upper),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_period_alone_is_periodic() {
        assert_eq!(seasonal_lengths(&[24, 168]), vec![11, PERIODIC]);
        assert_eq!(seasonal_lengths(&[168, 24]), vec![PERIODIC, 11]);
        assert_eq!(seasonal_lengths(&[48, 336, 17_520]), vec![11, 15, PERIODIC]);
        assert_eq!(seasonal_lengths(&[7]), vec![11]);
    }

    #[test]
    fn a_positive_series_keeps_its_shape_after_losing_half_its_level() {
        // An hourly audience whose night is 15% of its mean hour, at 1000 for three weeks and
        // at 500 for the fourth: the night forecast must be about 75, not the old night's
        // offset below the new level (negative on the additive scale).
        let profile = |h: usize| 1.0 - 0.85 * ((h as f64 / 24.0) * std::f64::consts::TAU).cos();
        let y: Vec<f64> = (0..24 * 28)
            .map(|i| {
                let level = if i < 24 * 21 { 1000.0 } else { 500.0 };
                level * profile(i % 24) * (1.0 + 0.02 * ((i * 7919 % 13) as f64 / 13.0 - 0.5))
            })
            .collect();
        let p = MstlEts
            .fit(&y, &[24, 168])
            .unwrap()
            .predict(48, 95.0)
            .unwrap();
        for (k, &v) in p.point.iter().enumerate() {
            let want = 500.0 * profile(k % 24);
            assert!(
                (v - want).abs() < 0.25 * want + 10.0,
                "step {k}: {v} against {want}"
            );
            assert!(p.lower[k] > 0.0 && p.lower[k] <= v && v <= p.upper[k]);
        }
    }
}
