//! The cross-channel detector: at one point in time, a channel whose departure from its own
//! forecast is unlike its peers' departures. When every channel drops together (a national
//! event, a measurement outage) no single channel is flagged by it; when one channel drops
//! alone (its own outage, a lost distribution partner) it is. Only the daemon runs it, since
//! only the daemon sees many series at once.

use super::robust::median_in_place;
use super::MAX_SCORE;

/// Name of the detector, as configs and records spell it.
pub const NAME: &str = "cross_channel";
/// Fewer series than this at one time: no verdict (a median of three says little).
pub const MIN_PEERS: usize = 4;
/// Scores are this many robust standard deviations of the peers' relative deviations at 1.
pub const CROSS_SIGMAS: f64 = 6.0;
/// The peers' spread is taken as at least this share of the forecast, so channels that all
/// track their forecasts closely do not flag one that is a few percent off.
pub const MIN_SPREAD: f64 = 0.02;

/// A channel's departure from its forecast relative to the mean of actual and forecast:
/// bounded (±2), so a forecast near zero (a quiet night hour, clamped at zero) does not explode
/// the ratio. None for non-finite input.
pub fn relative(value: f64, yhat: f64) -> Option<f64> {
    relative_to(value, yhat, 1e-9)
}

/// [`relative`], with the denominator at least `floor`.
fn relative_to(value: f64, yhat: f64, floor: f64) -> Option<f64> {
    let r = (value - yhat) / ((value.abs() + yhat.abs()) / 2.0).max(floor).max(1e-9);
    (value.is_finite() && yhat.is_finite() && r.is_finite()).then_some(r)
}

/// Scores each `(value, yhat)` of the series observed at one time; 0 for non-finite input and
/// for every series when fewer than [`MIN_PEERS`] are usable.
pub fn scores(obs: &[(f64, f64)]) -> Vec<f64> {
    let rel: Vec<Option<f64>> = obs.iter().map(|&(v, y)| relative(v, y)).collect();
    scores_of(&rel)
}

/// Scores departures (from [`relative`], possibly less each channel's [`Baseline`]) against
/// the median and robust spread of all of them.
pub fn scores_of(rel: &[Option<f64>]) -> Vec<f64> {
    let mut usable: Vec<f64> = rel.iter().flatten().copied().collect();
    if usable.len() < MIN_PEERS {
        return vec![0.0; rel.len()];
    }
    let med = median_in_place(&mut usable);
    for r in &mut usable {
        *r = (*r - med).abs();
    }
    let sigma = (1.4826 * median_in_place(&mut usable)).max(MIN_SPREAD);
    rel.iter()
        .map(|r| {
            r.map_or(0.0, |r| {
                ((r - med).abs() / (CROSS_SIGMAS * sigma)).min(MAX_SCORE)
            })
        })
        .collect()
}

/// How fast a channel's usual departure from its forecast is followed.
const BASELINE_ALPHA: f64 = 0.2;
/// How fast a channel's usual size is followed (about a day of hourly points).
const SCALE_ALPHA: f64 = 0.05;
/// Departures are relative to at least this share of the channel's usual size, so a quiet
/// night hour (a few viewers against a forecast near zero) is not a huge relative change.
const SCALE_SHARE: f64 = 0.5;

/// A channel's usual size and usual departure from its forecast (a forecast that runs high on
/// one channel since its audience changed), followed slowly and in bounded steps: a channel is
/// compared with its peers by how it *moves*, so a lasting change is flagged for about a day
/// rather than until the model has fully learnt it, while a sudden outage stands out at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Baseline {
    level: f64,
    scale: Option<f64>,
}

impl Baseline {
    /// The departure of `value` from `yhat`, relative to their mean or, when that is small,
    /// to half the channel's usual size (see [`relative`]).
    pub fn relative(&self, value: f64, yhat: f64) -> Option<f64> {
        relative_to(value, yhat, SCALE_SHARE * self.scale.unwrap_or(0.0))
    }

    pub fn adjust(&self, rel: f64) -> f64 {
        rel - self.level
    }

    /// Takes in one observation and its departure; a wild one moves the baseline no more
    /// than one just at the flagging limit of a quiet hour would.
    pub fn update(&mut self, value: f64, yhat: f64, rel: f64) {
        let limit = CROSS_SIGMAS * MIN_SPREAD;
        if rel.is_finite() {
            self.level += BASELINE_ALPHA * (rel - self.level).clamp(-limit, limit);
        }
        let size = (value.abs() + yhat.abs()) / 2.0;
        if size.is_finite() {
            self.scale = Some(match self.scale {
                Some(s) => s + SCALE_ALPHA * (size - s),
                None => size,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channel_that_drops_alone_is_flagged_one_that_drops_with_all_is_not() {
        // Twelve channels near their forecasts, one at a third of it.
        let mut obs: Vec<(f64, f64)> = (0..12)
            .map(|i| (1000.0 * (1.0 + 0.01 * (i as f64 - 6.0)), 1000.0))
            .collect();
        let before = obs.clone();
        obs[3].0 = 330.0;
        let s = scores(&obs);
        assert!(s[3] >= 1.0, "{s:?}");
        assert!(
            s.iter().enumerate().all(|(i, x)| i == 3 || *x < 1.0),
            "{s:?}"
        );
        // Everyone at a third of the forecast: nobody is unlike the others.
        let all: Vec<(f64, f64)> = before.iter().map(|&(v, y)| (v * 0.33, y)).collect();
        let s = scores(&all);
        assert!(s.iter().all(|x| *x < 1.0), "{s:?}");
    }

    #[test]
    fn too_few_peers_or_bad_values_give_no_verdict() {
        assert_eq!(
            scores(&[(1.0, 100.0), (100.0, 100.0), (100.0, 100.0)]),
            vec![0.0; 3]
        );
        let s = scores(&[
            (f64::NAN, 100.0),
            (100.0, 100.0),
            (101.0, 100.0),
            (99.0, 100.0),
            (100.0, 0.0),
            (5.0, 100.0),
        ]);
        assert_eq!(s[0], 0.0);
        assert!(s[5] >= 1.0 && s[1] < 1.0, "{s:?}");
    }

    #[test]
    fn a_lasting_change_is_absorbed_by_the_baseline_within_a_day() {
        let mut b = Baseline::default();
        let mut flagged = 0;
        // Eleven peers on their forecasts; one channel 40% below its own from now on.
        for hour in 0..48 {
            let mut rel: Vec<Option<f64>> = (0..11)
                .map(|i| relative(1000.0 + 10.0 * (i as f64 - 5.0), 1000.0))
                .collect();
            let own = relative(600.0, 1000.0).unwrap();
            rel.push(Some(b.adjust(own)));
            let s = scores_of(&rel);
            if s[11] >= 1.0 {
                flagged += 1;
                assert!(hour < 24, "still flagged after a day");
            }
            b.update(600.0, 1000.0, own);
        }
        assert!(flagged >= 3, "the change itself is flagged: {flagged}");
    }

    #[test]
    fn a_quiet_hour_is_measured_against_the_usual_size_of_the_channel() {
        let mut b = Baseline::default();
        for _ in 0..100 {
            b.update(1000.0, 1000.0, 0.0);
        }
        // Prime time: a true ratio.
        assert_eq!(b.relative(1500.0, 1000.0), relative(1500.0, 1000.0));
        // Night: 30 viewers against a forecast of 0 is 6% of half the usual size, not +200%.
        let r = b.relative(30.0, 0.0).unwrap();
        assert!((r - 0.06).abs() < 1e-9, "{r}");
        assert_eq!(Baseline::default().relative(30.0, 0.0), Some(2.0));
    }
}
