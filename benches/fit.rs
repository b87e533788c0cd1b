//! Fit + forecast timings on demo data: `cargo bench --bench fit`.
//! Reports the median over repeated runs for each model and history length, plus the
//! per-series refit the daemon pays (fit, calibration fit and forecasts at every level;
//! one-off events reused from the last search) and that search (`series::prepare`), which
//! the daemon runs as often as it re-chooses the model.
//! Under `cargo test` (no `--bench` flag) it runs one iteration as a smoke test.

use std::sync::Arc;
use std::time::Instant;

use viewcast::engine::{EngineSettings, SeriesEngine};
use viewcast::model::{self, ModelSpec};
use viewcast::source::demo::DemoSpec;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The median over `reps` runs of `run(r)`, which returns the milliseconds since the
/// `Instant` it started timing at (its setup excluded).
fn median_ms(reps: usize, run: impl FnMut(usize) -> Instant) -> f64 {
    median(
        (0..reps)
            .map(run)
            .map(|t| t.elapsed().as_secs_f64() * 1e3)
            .collect(),
    )
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let reps = if bench { 30 } else { 1 };
    let anchor = 1_764_000_000;
    let spec = DemoSpec::new(42, 12, anchor);
    for weeks in [4usize, 16] {
        let n = weeks * 168;
        let data = spec.generate(anchor - n as i64 * 3600 + 3600, anchor);
        let values =
            |r: usize| -> Vec<f64> { data[r % data.len()].1.iter().map(|p| p.value).collect() };
        // ETS's season is the day: auto weighs it on hourly series with no weekly cycle.
        let week: &[usize] = &[24, 168];
        for (name, periods) in [
            ("mstl_ets", week),
            ("ets", &[24]),
            ("seasonal_ar", week),
            ("seasonal_naive", week),
        ] {
            let ms = median_ms(reps, |r| {
                let y = values(r);
                let t = Instant::now();
                let f = model::fit(&ModelSpec::Named(name), &y, periods).expect("fit");
                let p = model::predict(f.fitted.as_ref(), 168, 95.0, true).expect("predict");
                assert_eq!(p.point.len(), 168);
                t
            });
            println!(
                "{name:>15} fit+168-step forecast, {n:>5} hourly points: median {ms:.2} ms ({reps} runs)"
            );
        }
        let ms = median_ms(reps, |r| {
            let mut e = SeriesEngine::new(
                Arc::new(EngineSettings {
                    window_secs: n as i64 * 3600,
                    ..EngineSettings::default()
                }),
                3600,
            );
            e.ingest(&data[r % data.len()].1, i64::MAX);
            let t = Instant::now();
            assert!(e.refit_now().refitted);
            t
        });
        println!(
            "{:>15} daemon refit (auto, calibrated, 3 levels), {n:>5} points: median {ms:.2} ms",
            "engine"
        );
        let ms = median_ms(reps, |r| {
            let y = values(r);
            let t = Instant::now();
            let prepared = viewcast::series::prepare(&y, 3600, None).expect("finite values");
            assert!(prepared.searched);
            t
        });
        println!(
            "{:>15} one-off event search (series::prepare), {n:>5} points: median {ms:.2} ms",
            "engine"
        );
    }
}
