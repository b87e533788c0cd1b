//! Rolling-origin evaluation: each model is fitted on the history up to an origin and scored
//! on the next `horizon` points, for the last few origins. The engine uses it to choose the
//! model per series (`auto`) and to calibrate intervals; `viewcast backtest` prints it.

use std::time::Instant;

use super::{by_name, predict, z_for_level, Prediction};
use crate::series::supported_periods;

/// How one model did over the folds.
#[derive(Debug, Clone)]
pub struct Score {
    pub model: &'static str,
    /// MAE scaled by the in-sample MAE of the seasonal naive forecast (per fold, averaged).
    pub mase: f64,
    /// MAE relative to the seasonal naive forecast on the same folds (< 1 beats it).
    pub rmae: f64,
    /// Share of outcomes inside the model's own 95% interval.
    pub coverage: f64,
    /// Mean time of one fit + forecast, in milliseconds.
    pub fit_ms: f64,
    /// |error| / σ-equivalent of the interval (half-width at 95% / z₉₅), every step of every fold.
    pub scores: Vec<f64>,
}

/// The folds that fit in `n` points: origins `n - k·horizon` for k = folds..1, each leaving
/// at least `min_train` points to fit on.
pub fn origins(n: usize, horizon: usize, folds: usize, min_train: usize) -> Vec<usize> {
    (1..=folds)
        .rev()
        .filter_map(|k| n.checked_sub(k * horizon))
        .filter(|&o| o >= min_train)
        .collect()
}

/// Mean |y_t − y_{t−m}| over the series: the scale of MASE.
fn naive_scale(y: &[f64], m: usize) -> f64 {
    let m = m.max(1);
    if y.len() <= m {
        return f64::NAN;
    }
    (m..y.len()).map(|t| (y[t] - y[t - m]).abs()).sum::<f64>() / (y.len() - m) as f64
}

fn mean_of(a: &Prediction, b: &Prediction) -> Prediction {
    let avg = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| (p + q) / 2.0).collect();
    Prediction {
        level: a.level,
        point: avg(&a.point, &b.point),
        lower: avg(&a.lower, &b.lower),
        upper: avg(&a.upper, &b.upper),
    }
}

/// What one model gathered over the folds.
#[derive(Default)]
struct Acc {
    mase: Vec<f64>,
    mae: Vec<f64>,
    inside: usize,
    total: usize,
    ms: f64,
    scores: Vec<f64>,
    failed: bool,
}

/// Evaluates `models` on gap-free `y` (list an ensemble after its members to reuse their
/// forecasts). Models that fail on a fold are left out.
pub fn evaluate(
    y: &[f64],
    periods: &[usize],
    horizon: usize,
    folds: usize,
    models: &[&'static str],
    non_negative: bool,
) -> Vec<Score> {
    let longest = periods.iter().max().copied().unwrap_or(1);
    let os = origins(y.len(), horizon, folds, (2 * longest).max(8));
    let z95 = z_for_level(95.0);
    let mut naive_mae = Vec::new();
    let mut accs: Vec<Acc> = models.iter().map(|_| Acc::default()).collect();
    for &o in &os {
        let (train, test) = (&y[..o], &y[o..o + horizon]);
        let p = supported_periods(periods.iter().copied(), train.len());
        let m = p.iter().max().copied().unwrap_or(1);
        let scale = naive_scale(train, m);
        let mae_of = |f: &[f64]| {
            test.iter().zip(f).map(|(a, b)| (a - b).abs()).sum::<f64>() / horizon as f64
        };
        let naive: Vec<f64> = (0..horizon)
            .map(|h| train[train.len() - m + (h % m)])
            .collect();
        naive_mae.push(mae_of(&naive));
        let mut fold_preds: std::collections::HashMap<&str, Prediction> =
            std::collections::HashMap::new();
        for (name, acc) in models.iter().zip(accs.iter_mut()) {
            if acc.failed {
                continue;
            }
            let t = Instant::now();
            // The ensemble is the mean of two members already evaluated on this fold: reuse
            // their forecasts rather than fit them again.
            let pred: Option<Prediction> = match (
                *name,
                fold_preds.get("mstl_ets"),
                fold_preds.get("seasonal_mean"),
            ) {
                ("ensemble", Some(a), Some(b)) => Some(mean_of(a, b)),
                _ => by_name(name)
                    .ok()
                    .and_then(|f| f.fit(train, &p).ok())
                    .and_then(|f| predict(f.as_ref(), horizon, 95.0, non_negative).ok()),
            };
            acc.ms += t.elapsed().as_secs_f64() * 1e3;
            let Some(pred) = pred else {
                acc.failed = true;
                continue;
            };
            let mae = mae_of(&pred.point);
            acc.mase.push(mae / scale);
            acc.mae.push(mae);
            for (h, actual) in test.iter().enumerate() {
                acc.inside += (pred.lower[h] <= *actual && *actual <= pred.upper[h]) as usize;
                acc.total += 1;
                let half = ((pred.upper[h] - pred.lower[h]) / 2.0)
                    .max(1e-9 * pred.point[h].abs().max(1.0));
                acc.scores
                    .push((actual - pred.point[h]).abs() / (half / z95));
            }
            fold_preds.insert(name, pred);
        }
    }
    let naive_total: f64 = naive_mae.iter().sum();
    models
        .iter()
        .zip(accs)
        .filter(|(_, acc)| !acc.failed && !acc.mase.is_empty())
        .map(|(name, acc)| Score {
            model: name,
            mase: acc.mase.iter().sum::<f64>() / acc.mase.len() as f64,
            rmae: acc.mae.iter().sum::<f64>() / naive_total.max(1e-12),
            coverage: acc.inside as f64 / acc.total.max(1) as f64,
            fit_ms: acc.ms / os.len() as f64,
            scores: acc.scores,
        })
        .collect()
}

/// The factor by which a model's σ-equivalent must grow so its `level`% interval
/// would have covered that share of the backtest outcomes (split-conformal). Never below 1:
/// a few folds are too little evidence to narrow what the model itself claims.
pub fn calibration_factor(scores: &[f64], level: f64) -> Option<f64> {
    if scores.len() < 20 {
        return None;
    }
    let mut s = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let k = (((s.len() + 1) as f64 * level / 100.0).ceil() as usize).clamp(1, s.len());
    Some((s[k - 1] / z_for_level(level)).clamp(1.0, 20.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_leave_room_to_train() {
        assert_eq!(origins(100, 10, 3, 50), vec![70, 80, 90]);
        assert_eq!(origins(100, 30, 3, 50), vec![70]);
        assert!(origins(10, 30, 3, 5).is_empty());
    }

    #[test]
    fn picks_the_model_that_suits_the_data() {
        // A pure weekly repetition with noise: the seasonal models beat naive.
        let y: Vec<f64> = (0..24 * 7 * 6)
            .map(|i| ((i % 168) as f64 / 10.0).sin() * 100.0 + 500.0 + ((i * 7919) % 13) as f64)
            .collect();
        let s = evaluate(
            &y,
            &[24, 168],
            168,
            3,
            &["seasonal_naive", "seasonal_mean", "naive"],
            true,
        );
        assert_eq!(s.len(), 3);
        let best = s.iter().min_by(|a, b| a.mase.total_cmp(&b.mase)).unwrap();
        assert_ne!(best.model, "naive");
        let naive = s.iter().find(|x| x.model == "seasonal_naive").unwrap();
        assert!(
            (naive.rmae - 1.0).abs() < 1e-9,
            "seasonal naive is its own reference"
        );
        assert_eq!(naive.scores.len(), 3 * 168);
    }

    #[test]
    fn calibration_factor_is_one_for_gaussian_scores_at_their_quantile() {
        // Scores that are exactly |N(0,1)| quantiles: the 95% interval needs no change.
        let scores: Vec<f64> = (1..=999)
            .map(|i| crate::model::normal_quantile(0.5 + i as f64 / 2000.0))
            .collect();
        let f = calibration_factor(&scores, 95.0).unwrap();
        assert!((f - 1.0).abs() < 0.01, "{f}");
        assert!(calibration_factor(&scores[..5], 95.0).is_none());
    }
}
