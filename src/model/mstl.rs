//! MSTL decomposition (daily + weekly seasonality) with an AutoETS model of the
//! deseasonalised series, from the `augurs` crate; AutoETS alone when no period applies.

use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit as _, Predict as _};

use super::{Fitted, Forecaster, ModelError, Prediction, Result};

const NAME: &str = "mstl_ets";

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
        let model = MSTLModel::new(periods.to_vec(), AutoETS::non_seasonal().into_trend_model());
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
