//! MSTL decomposition (daily + weekly seasonality, from the `augurs` crate) with an ETS model
//! of the deseasonalised series.
//!
//! The deseasonalised series is forecast by ETS *without* a trend (A,N,N or M,N,N, chosen by
//! AICc). Over a week-long horizon an extrapolated slope is the main way MSTL forecasts go
//! wrong: a slope fitted to a recovery after a holiday, or to a few weeks of seasonal drift, is
//! carried for hundreds of steps. With the level alone the forecast is the recent level plus
//! the seasonal profiles, which is what traffic series do week to week. (augurs' own `AutoETS`
//! cannot be restricted to no-trend models: its search with trend `N` finds no candidates.)

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
        let model = MSTLModel::new(periods.to_vec(), LevelEts);
        // augurs is outside code: a panic in it must not take the caller down.
        let fitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.fit(y)))
            .map_err(|_| failed("panicked while fitting".into()))?
            .map_err(|e| failed(e.to_string()))?;
        Ok(Box::new(FittedMstl(fitted)))
    }
}

fn failed(reason: String) -> ModelError {
    ModelError::Failed {
        model: NAME,
        reason,
    }
}

/// ETS with a level and no trend or season, error additive or multiplicative by AICc.
#[derive(Debug, Clone, Copy)]
struct LevelEts;

impl TrendModel for LevelEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("ETS(Z,N,N)")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let positive = y.iter().all(|v| *v > 0.0);
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

struct FittedMstl(augurs::mstl::FittedMSTLModel);

impl Fitted for FittedMstl {
    fn name(&self) -> &'static str {
        NAME
    }

    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction> {
        let f = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.0.predict(horizon, level / 100.0)
        }))
        .map_err(|_| failed("panicked while predicting".into()))?
        .map_err(|e| failed(e.to_string()))?;
        let iv = f
            .intervals
            .ok_or_else(|| failed("no intervals returned".into()))?;
        Ok(Prediction {
            level,
            point: f.point,
            lower: iv.lower,
            upper: iv.upper,
        })
    }
}
