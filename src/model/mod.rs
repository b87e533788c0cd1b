//! Forecasting models behind one trait, and the choice of model per series.
//!
//! A model is fitted on a gap-free series (see [`crate::series::interpolate`]) with the
//! seasonal periods that apply, and the fitted model predicts points and intervals.

pub mod backtest;
mod ensemble;
pub mod ets;
pub(crate) mod mstl;
mod naive;
mod seasonal_ar;

use std::fmt;

pub use ensemble::{Ensemble, SeasonalMean};
pub use ets::Ets;
pub use mstl::MstlEts;
pub use naive::SeasonalNaive;
pub use seasonal_ar::SeasonalAr;

/// What can go wrong while fitting or predicting.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("too few points to fit {model}: {have}, need at least {need}")]
    TooShort {
        model: &'static str,
        have: usize,
        need: usize,
    },
    #[error("{model} failed: {reason}")]
    Failed { model: &'static str, reason: String },
    #[error("unknown model `{0}` (known: auto, {known})", known = NAMES.join(", "))]
    Unknown(String),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Names of the models in the catalog, as configs and `--model` spell them.
pub const NAMES: &[&str] = &[
    "mstl_ets",
    "ets",
    "seasonal_mean",
    "seasonal_ar",
    "ensemble",
    "seasonal_naive",
    "naive",
];

/// The models `auto` chooses among by backtest, when the history has a seasonal period.
/// (The ensemble comes after its members so a backtest can reuse their forecasts.)
pub const AUTO_CANDIDATES: &[&str] = &["mstl_ets", "seasonal_naive", "seasonal_ar", "ensemble"];

/// The candidates of `auto` that average over many cycles (MSTL's seasonal components, and
/// the ensemble, half of which is MSTL): another candidate displaces them only by beating
/// them by more than the noise of the backtest folds (see [`backtest::choose`]).
pub const AVERAGING_MODELS: &[&str] = &["mstl_ets", "ensemble"];

/// The models `auto` chooses among when the series has no seasonal period the data supports:
/// the last value (a random walk's best guess), or ETS without a season (a level, maybe a
/// damped trend, by AICc), which on a noisy series that keeps to its level forecasts about
/// that level rather than the last reading.
pub const AUTO_NON_SEASONAL: &[&str] = &["naive", "ets"];

/// The longest (confirmed) season seasonal ETS is a candidate of `auto` for: daily data's
/// week, monthly and quarterly data's year, and hourly data's day when the data confirm no
/// week. On the short seasons ETS costs a few milliseconds and its trend earns its place (a
/// monthly series growing 1% a month: backtest MASE 0.15 against 0.54 for the next best).
/// Hourly with no week (weather, say), its smoothed level and damped trend follow what a
/// copy of yesterday or MSTL's last-hour level cannot: on hourly air temperature, data no
/// default was tuned on, day-ahead rMAE went from 0.676 and 0.979 to 0.570 and 0.791
/// (Seattle, San Francisco; 140 hold-outs each, `benches/rolling_holdouts.py --weather
/// --weeks 20`), at about 5× the cost of an `mstl_ets` fit (22 ms on 16 weeks, `cargo bench
/// --bench fit`). With a week (the evaluation sets) it would see only the day, never won
/// their backtest, and is left out; so are longer seasons (48 steps), where it costs more.
pub const ETS_MAX_SEASON: usize = 24;

/// [`AUTO_CANDIDATES`] and seasonal ETS, for short seasons.
pub const AUTO_SHORT_SEASON: &[&str] = &[
    "mstl_ets",
    "ets",
    "seasonal_naive",
    "seasonal_ar",
    "ensemble",
];

/// The part of `periods` (shortest first) a fit of model `name` depends on: ETS's season is
/// the shortest period alone, so a backtest reuses its fold forecast across period sets that
/// differ only in longer periods.
pub fn periods_used<'p>(name: &str, periods: &'p [usize]) -> &'p [usize] {
    match name {
        "ets" => &periods[..periods.len().min(1)],
        _ => periods,
    }
}

/// What `auto` chooses among for a series with these periods.
pub fn auto_candidates(periods: &[usize]) -> &'static [&'static str] {
    match periods.iter().max() {
        None => AUTO_NON_SEASONAL,
        Some(&p) if p <= ETS_MAX_SEASON => AUTO_SHORT_SEASON,
        Some(_) => AUTO_CANDIDATES,
    }
}

/// What `auto` chooses among for the series `y` (gap-free) with these periods: a constant
/// gets `naive` alone (every model forecasts it exactly, and the simplest says so), else
/// [`auto_candidates`]. The daemon and `viewcast backtest` both ask this, so the backtest
/// names the model that runs (it said `ets` for a constant the daemon forecast with `naive`).
pub fn auto_candidates_for(y: &[f64], periods: &[usize]) -> &'static [&'static str] {
    if y.iter().all(|v| *v == y[0]) {
        &["naive"]
    } else {
        auto_candidates(periods)
    }
}

/// Point forecasts with a central prediction interval at `level` percent.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub level: f64,
    pub point: Vec<f64>,
    pub lower: Vec<f64>,
    pub upper: Vec<f64>,
}

impl Prediction {
    /// Sets the point forecast to zero where `zero_at` (see [`structural_zeros`]) says. The
    /// bounds stay the model's, widened to reach zero where they did not: a phase that starts
    /// to read something (a new show, an earlier dawn) is judged and pulled back to them as
    /// before, so the history can learn it.
    pub fn keep_zeros(&mut self, zero_at: &[bool]) {
        let steps = self.point.len().min(zero_at.len());
        for j in (0..steps).filter(|&j| zero_at[j]) {
            self.point[j] = 0.0;
            self.lower[j] = self.lower[j].min(0.0);
            self.upper[j] = self.upper[j].max(0.0);
        }
    }

    /// Keeps the bounds within `[lo, hi]` (the point stays as forecast: `tidy` then orders
    /// the bounds around it).
    pub fn clamp_bounds(&mut self, lo: f64, hi: f64) {
        for b in self.lower.iter_mut().chain(self.upper.iter_mut()) {
            *b = b.clamp(lo, hi);
        }
    }

    /// Orders the bounds around the point, clamps at zero for non-negative series, and
    /// rejects non-finite output so nothing downstream ever sees NaN.
    pub fn tidy(mut self, non_negative: bool, model: &'static str) -> Result<Self> {
        for i in 0..self.point.len() {
            let (p, l, u) = (self.point[i], self.lower[i], self.upper[i]);
            if !(p.is_finite() && l.is_finite() && u.is_finite()) {
                return Err(ModelError::Failed {
                    model,
                    reason: format!("non-finite forecast at step {}", i + 1),
                });
            }
            let (mut p, mut l, mut u) = (p, l.min(p), u.max(p));
            if non_negative {
                p = p.max(0.0);
                l = l.max(0.0);
                u = u.max(0.0);
            }
            self.point[i] = p;
            self.lower[i] = l;
            self.upper[i] = u;
        }
        Ok(self)
    }
}

/// An unfitted model.
pub trait Forecaster: Send + Sync + fmt::Debug {
    fn name(&self) -> &'static str;
    /// Fits on a gap-free series. `periods` are the seasonal periods (in steps) that the
    /// history supports, shortest first; models use what they can of them.
    fn fit(&self, y: &[f64], periods: &[usize]) -> Result<Box<dyn Fitted>>;
}

/// A fitted model.
pub trait Fitted: Send + Sync {
    fn name(&self) -> &'static str;
    /// Predicts `horizon` steps after the training data with a `level`% interval.
    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction>;
    /// How much wider than [`Fitted::predict`]'s the interval should be when no backtest
    /// calibrates it (too short a history): 1 unless the model knows its own interval to be
    /// too narrow. A backtest measures the raw interval, so calibrated forecasts ignore this.
    fn uncalibrated_spread(&self) -> f64 {
        1.0
    }
}

/// Which model to use: a named one, or `auto`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSpec {
    Auto,
    Named(&'static str),
}

impl std::str::FromStr for ModelSpec {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self> {
        if s == "auto" {
            return Ok(Self::Auto);
        }
        NAMES
            .iter()
            .find(|n| **n == s)
            .map(|n| Self::Named(n))
            .ok_or_else(|| ModelError::Unknown(s.to_string()))
    }
}

/// The longest seasonal period, which cycle-repeating models work on; an error naming `model`
/// when the history supports none.
pub(crate) fn longest_period(model: &'static str, y: &[f64], periods: &[usize]) -> Result<usize> {
    periods.iter().max().copied().ok_or(ModelError::TooShort {
        model,
        have: y.len(),
        need: 2,
    })
}

/// Root mean square of in-sample errors (0 when there are none).
pub(crate) fn rms(errors: &[f64]) -> f64 {
    if errors.is_empty() {
        0.0
    } else {
        (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt()
    }
}

/// Residuals each phase needs before the seasonal naive interval follows the phase's own
/// spread: an RMS from n residuals errs by about 1/√(2n) of itself, a tenth at 50.
const MIN_PER_PHASE: usize = 50;

/// The RMS of `resid` (the residual of time index `first + j` at `j`) by phase of the
/// shortest of `periods` (the hour of the day), when every phase has [`MIN_PER_PHASE`]
/// residuals; otherwise one RMS for all. The σ of time index t is `σs[t % σs.len()]`. A road's
/// copy of last week errs by hundreds of vehicles at rush hour and by a few at night: with one
/// σ its interval was as wide at 3 a.m. as at 8. (`seasonal_ar` keeps one σ: by phase, its
/// own interval score improved but the ensemble's, which averages its bounds with
/// `mstl_ets`'s, worsened by 2-10% on three of three sets.)
pub(crate) fn rms_by_phase(resid: &[f64], first: usize, periods: &[usize]) -> Vec<f64> {
    let day = periods
        .iter()
        .copied()
        .filter(|&p| p > 1)
        .min()
        .unwrap_or(1);
    if day < 2 || resid.len() / day < MIN_PER_PHASE {
        return vec![rms(resid)];
    }
    (0..day)
        .map(|phase| rms(&crate::series::at_phase(resid, first, day, phase).collect::<Vec<_>>()))
        .collect()
}

/// Builds the unfitted model of a catalog name.
pub fn by_name(name: &str) -> Result<Box<dyn Forecaster>> {
    match name {
        "mstl_ets" => Ok(Box::new(MstlEts)),
        "ets" => Ok(Box::new(Ets)),
        "ensemble" => Ok(Box::new(Ensemble)),
        "seasonal_mean" => Ok(Box::new(SeasonalMean)),
        "seasonal_ar" => Ok(Box::new(SeasonalAr)),
        "seasonal_naive" => Ok(Box::new(SeasonalNaive::seasonal())),
        "naive" => Ok(Box::new(SeasonalNaive::naive())),
        other => Err(ModelError::Unknown(other.to_string())),
    }
}

/// A fitted model together with a forecast made from it.
pub struct Fit {
    pub model: &'static str,
    pub fitted: Box<dyn Fitted>,
}

/// Fits the model `spec` names. A named model that fails is an error. `auto` here is what
/// runs without a backtest to choose by (a history too short for one fold, e.g. exactly two
/// weeks of hourly data): the ensemble of MSTL+ETS and the last cycle, then step by step
/// (MSTL+ETS → seasonal naive → naive), so a short, constant or odd series still gets a
/// forecast. With no evidence for either member, their mean is the safer bet: over every
/// two-week history of eight series (the three forecast sets hourly and daily, NAB's taxi
/// and ad-exchange series) it erred 7% less than MSTL+ETS alone where MSTL did worst (hourly
/// taxi rides: rMAE 1.018 against 1.091), 4% more where MSTL did best (taylor's daily
/// totals: 0.913 against 0.875), and less overall (geometric mean 0.930 against 0.944).
pub fn fit(spec: &ModelSpec, y: &[f64], periods: &[usize]) -> Result<Fit> {
    let candidates: Vec<&'static str> = match spec {
        ModelSpec::Named(n) => vec![n],
        ModelSpec::Auto => {
            let constant = y.iter().all(|v| *v == y[0]);
            if constant || periods.is_empty() {
                vec!["seasonal_naive", "naive"]
            } else {
                vec!["ensemble", "mstl_ets", "seasonal_naive", "naive"]
            }
        }
    };
    let mut last_err = None;
    for name in candidates {
        let model = by_name(name)?;
        match model
            .fit(y, periods)
            .and_then(|f| f.predict(1, 95.0).map(|_| f))
        {
            Ok(fitted) => {
                return Ok(Fit {
                    model: name,
                    fitted,
                })
            }
            Err(e) => {
                tracing::debug!(model = name, error = %e, "model did not fit, trying the next");
                last_err = Some(e);
            }
        }
    }
    Err(last_err.unwrap_or(ModelError::TooShort {
        model: "naive",
        have: y.len(),
        need: 1,
    }))
}

/// Cycles of a period, every one reading exactly zero at a time, before the forecast there
/// is zero: four (a month of days, four weeks of weeks).
const MIN_ZERO_CYCLES: usize = 4;

/// Which of the `steps` steps after `y` (step j continues `y` at index `y.len() + j`) fall on
/// a phase of one of `periods` that read exactly zero in every cycle of `y` (at least
/// [`MIN_ZERO_CYCLES`] of them): a solar plant's night, the hours a channel is off the air, a
/// shop's closed Sunday. The models spread the neighbouring hours into them (MSTL's trend
/// filter, a smoothed profile): a channel on air one hour a day was forecast 146 viewers in
/// the silent hour after its show, and the hour was flagged as a level shift when it read
/// zero; a solar plant's nights were forecast at 0.3 (week-ahead rMAE over ten hold-outs
/// 0.798, now 0.781). See [`Prediction::keep_zeros`].
pub fn structural_zeros(y: &[f64], periods: &[usize], steps: usize) -> Vec<bool> {
    let n = y.len();
    let mut zero_at = vec![false; steps];
    for &p in periods {
        if p < 2 || n / p < MIN_ZERO_CYCLES {
            continue;
        }
        let zero: Vec<bool> = (0..p)
            .map(|phase| crate::series::at_phase(y, 0, p, phase).all(|v| v == 0.0))
            .collect();
        for (j, z) in zero_at.iter_mut().enumerate() {
            *z |= zero[(n + j) % p];
        }
    }
    zero_at
}

/// Predicts and tidies the output (ordered bounds, non-negative when asked).
pub fn predict(
    fitted: &dyn Fitted,
    horizon: usize,
    level: f64,
    non_negative: bool,
) -> Result<Prediction> {
    fitted
        .predict(horizon, level)?
        .tidy(non_negative, fitted.name())
}

/// The standard normal quantile (Acklam's rational approximation, |error| < 1.2e-9).
#[allow(clippy::excessive_precision)] // the published coefficients, kept as printed
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let p = p.clamp(1e-12, 1.0 - 1e-12);
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

/// z for a central interval of `level` percent, e.g. 95 → 1.96.
pub fn z_for_level(level: f64) -> f64 {
    normal_quantile(0.5 + level.clamp(0.0, 99.999) / 200.0)
}

/// Uniform noise in [-1, 1) from a fixed seed (a 64-bit LCG), for tests.
#[cfg(test)]
pub(crate) fn test_noise(seed: u64) -> impl FnMut() -> f64 {
    let mut x = seed;
    move || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seasonal(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let h = (i % 24) as f64;
                let d = ((i / 24) % 7) as f64;
                1000.0
                    + 300.0 * (h / 24.0 * std::f64::consts::TAU).sin()
                    + 50.0 * d
                    + ((i * 7919) % 13) as f64
            })
            .collect()
    }

    #[test]
    fn seasonal_ets_is_a_candidate_of_auto_up_to_a_daily_season_of_hours() {
        for (periods, ets) in [
            (&[7][..], true),
            (&[12], true),
            (&[24], true),
            (&[48], false),
            (&[24, 168], false),
            (&[], true),
        ] {
            assert_eq!(
                auto_candidates(periods).contains(&"ets"),
                ets,
                "{periods:?}"
            );
        }
        assert_eq!(periods_used("ets", &[24, 168]), [24]);
        assert_eq!(periods_used("ets", &[]), [0usize; 0]);
        assert_eq!(periods_used("mstl_ets", &[24, 168]), [24, 168]);
    }

    #[test]
    fn quantiles_match_tables() {
        assert!((z_for_level(95.0) - 1.959964).abs() < 1e-5);
        assert!((z_for_level(80.0) - 1.281552).abs() < 1e-5);
        assert!((normal_quantile(0.001) + 3.090232).abs() < 1e-5);
    }

    #[test]
    fn structural_zeros_need_every_cycle_to_read_zero() {
        let band = |n| Prediction {
            level: 95.0,
            point: vec![5.0; n],
            lower: vec![1.0; n],
            upper: vec![9.0; n],
        };
        // Period 4, five cycles: phase 1 always zero, phase 2 zero but once, phase 3 never.
        let mut y: Vec<f64> = (0..20).map(|i| [7.0, 0.0, 0.0, 3.0][i % 4]).collect();
        y[14] = 2.0;
        let mut b = band(6);
        b.keep_zeros(&structural_zeros(&y, &[4], 6));
        // Step j continues y at index 20 + j: phase j % 4.
        assert_eq!(b.point, vec![5.0, 0.0, 5.0, 5.0, 5.0, 0.0]);
        assert_eq!(b.upper, vec![9.0; 6]);
        assert_eq!(b.lower, vec![1.0, 0.0, 1.0, 1.0, 1.0, 0.0]);
        // Three cycles are too few to say.
        let mut b = band(6);
        b.keep_zeros(&structural_zeros(&y[..12], &[4], 6));
        assert_eq!(b, band(6));
    }

    #[test]
    fn auto_without_a_backtest_fits_the_ensemble_and_orders_bounds() {
        let y = seasonal(672);
        let f = fit(&ModelSpec::Auto, &y, &[24, 168]).unwrap();
        assert_eq!(f.model, "ensemble");
        // Its interval, uncalibrated, is widened as its members' are, on average.
        let mstl = MstlEts.fit(&y, &[24, 168]).unwrap().uncalibrated_spread();
        assert!(mstl > 1.0, "{mstl}");
        let spread = f.fitted.uncalibrated_spread();
        assert!(
            (spread - (mstl + 1.0) / 2.0).abs() < 1e-12,
            "{spread} {mstl}"
        );
        let p = predict(f.fitted.as_ref(), 168, 95.0, true).unwrap();
        assert_eq!(p.point.len(), 168);
        for i in 0..168 {
            assert!(p.lower[i] <= p.point[i] && p.point[i] <= p.upper[i]);
            assert!(p.lower[i] >= 0.0);
        }
        // Tracks the daily cycle: the forecast at the peak hour beats the trough hour.
        let peak = p.point[6];
        let trough = p.point[18];
        assert!(peak > trough + 300.0, "peak {peak} trough {trough}");
    }

    #[test]
    fn degenerate_series_still_forecast() {
        for y in [
            vec![5.0; 400],
            vec![0.0; 400],
            vec![3.0, 4.0, 5.0],
            vec![7.0],
        ] {
            let periods = crate::series::supported_periods([24, 168], y.len());
            let f = fit(&ModelSpec::Auto, &y, &periods).unwrap();
            let p = predict(f.fitted.as_ref(), 24, 95.0, true).unwrap();
            assert!(p
                .point
                .iter()
                .chain(&p.lower)
                .chain(&p.upper)
                .all(|v| v.is_finite()));
        }
        assert!(fit(&ModelSpec::Auto, &[], &[]).is_err());
    }

    mod fuzz {
        //! Any values a source can deliver (zeros, negatives, constants, magnitudes near
        //! f64's limits), with any periods: every model fits or says why, never panics.

        use super::super::*;
        use proptest::prelude::*;

        fn value() -> impl Strategy<Value = f64> {
            prop_oneof![
                4 => 0.0..1000.0f64,
                1 => Just(0.0),
                1 => -1000.0..0.0f64,
                1 => prop::sample::select(vec![1e300, -1e300, 1e-300, f64::MAX, f64::MIN_POSITIVE, 1e15]),
            ]
        }

        fn series() -> impl Strategy<Value = Vec<f64>> {
            prop_oneof![
                prop::collection::vec(value(), 0..60),
                prop::collection::vec(value(), 300..600),
                (1usize..600, value()).prop_map(|(n, v)| vec![v; n]),
                (300usize..600, value(), 0.0..1e6f64)
                    .prop_map(|(n, v, a)| (0..n).map(|i| v + a * ((i % 24) as f64)).collect()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
            #[test]
            fn models_and_backtests_never_panic(y in series(), p in 0usize..5) {
                let periods = [vec![], vec![24], vec![24, 168], vec![7], vec![2]][p].clone();
                let specs = std::iter::once(ModelSpec::Auto)
                    .chain(NAMES.iter().map(|n| ModelSpec::Named(n)));
                for spec in specs {
                    if let Ok(f) = fit(&spec, &y, &periods) {
                        for level in [80.0, 99.9] {
                            let _ = predict(f.fitted.as_ref(), 48, level, true);
                            let _ = predict(f.fitted.as_ref(), 48, level, false);
                        }
                    }
                }
                let _ = backtest::evaluate(
                    backtest::History::plain(&y, &periods),
                    24,
                    backtest::Folds::last(3),
                    NAMES,
                    true,
                    &mut |_, _| {},
                );
            }
        }
    }

    #[test]
    fn unknown_model_names_are_errors() {
        assert!("prophet".parse::<ModelSpec>().is_err());
        assert_eq!(
            "seasonal_naive".parse::<ModelSpec>().unwrap(),
            ModelSpec::Named("seasonal_naive")
        );
    }
}
