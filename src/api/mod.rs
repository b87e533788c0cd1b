//! The REST API, `/metrics` and health routes. `app(state)` builds the router, so tests can
//! call it with `oneshot` and no socket.

mod error;
pub mod openapi;
mod params;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

pub use error::ApiError;
use params::Params;

use crate::clock::{rfc3339, Clock};
use crate::config::Secret;
use crate::metrics::Metrics;
use crate::scheduler::{Health, RefitQueue};
use crate::store::{SeriesRow, Store};

/// What the API needs from the rest of the daemon.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub refits: Arc<RefitQueue>,
    pub clock: Arc<dyn Clock>,
    pub token: Secret,
    pub default_horizon_secs: i64,
    pub max_horizon_secs: i64,
    pub levels: Vec<f64>,
    pub default_level: f64,
    pub options: ApiOptions,
    /// Threshold and critical score: the severity of what the store holds.
    pub events: crate::detect::events::EventRules,
    /// The level of the interval each observation is compared with (and stored with).
    pub detect_level: f64,
}

/// Protections and conveniences around every route.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Every route (not only POST) needs the bearer token when one is set.
    pub auth_all_routes: bool,
    /// Origins allowed by CORS (browser-based BI tools); empty sends no CORS headers.
    pub cors_origins: Vec<String>,
    pub request_timeout: std::time::Duration,
    pub max_body_bytes: usize,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            auth_all_routes: false,
            cors_origins: Vec::new(),
            request_timeout: std::time::Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
        }
    }
}

/// Counts and times each request by route template (never the raw path), and enforces the
/// token on every route when `auth_all_routes` is set.
async fn guard(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = req.method().as_str().to_string();
    let started = std::time::Instant::now();
    let resp =
        if s.options.auth_all_routes && !s.token.is_empty() && !authorized(req.headers(), &s.token)
        {
            ApiError::Unauthorized.into_response()
        } else {
            next.run(req).await
        };
    s.metrics
        .http_requests
        .with_label_values(&[&route, &method, resp.status().as_str()])
        .inc();
    s.metrics
        .http_duration
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    resp
}

fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    token_matches(given, token.expose())
}

pub fn app(state: AppState) -> Router {
    let mut router = Router::new();
    // Every route comes from the documented table, so openapi.json lists exactly what is served.
    for r in openapi::ROUTES {
        router = match (r.method, r.path) {
            ("get", "/") => router.route(r.path, get(page)),
            ("get", "/healthz") => router.route(r.path, get(|| async { "ok\n" })),
            ("get", "/readyz") => router.route(r.path, get(readyz)),
            ("get", "/metrics") => router.route(r.path, get(metrics)),
            ("get", "/api/v1/series") => router.route(r.path, get(series)),
            ("get", "/api/v1/forecast") => router.route(r.path, get(forecast)),
            ("get", "/api/v1/anomalies") => router.route(r.path, get(anomalies)),
            ("post", "/api/v1/refit") => router.route(r.path, post(refit)),
            ("get", "/api/v1/openapi.json") => router.route(r.path, get(openapi_json)),
            // A documented route without a handler is a programming error caught by the tests.
            _ => router,
        };
    }
    let o = state.options.clone();
    let mut router = router
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            o.max_body_bytes,
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            o.request_timeout,
        ));
    if !o.cors_origins.is_empty() {
        let origins: Vec<axum::http::HeaderValue> = o
            .cors_origins
            .iter()
            .filter_map(|x| x.parse().ok())
            .collect();
        router = router.layer(
            tower_http::cors::CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
                .allow_headers([header::AUTHORIZATION, header::ACCEPT]),
        );
    }
    router.with_state(state)
}

/// Runs blocking store reads off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The page for people: compiled into the binary, draws its charts from the REST API.
async fn page() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("page.html"),
    )
        .into_response()
}

async fn readyz(State(s): State<AppState>) -> Response {
    let store = s.store.clone();
    let store_ok = blocking(move || store.ping()).await;
    match (s.health.not_ready_reason(), store_ok) {
        (_, Err(_)) => {
            ApiError::Unavailable("the embedded store does not answer".into()).into_response()
        }
        (Some(reason), _) => ApiError::Unavailable(reason).into_response(),
        (None, Ok(())) => Json(json!({"status": "ready"})).into_response(),
    }
}

/// The OpenAPI document, with the tag keys of the series held now as filter parameters.
async fn openapi_json(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = s.store.clone();
    let rows = blocking(move || store.series()).await?;
    let served = openapi::Served {
        tag_keys: tag_keys(&rows).into_iter().cloned().collect(),
        levels: s.levels.clone(),
    };
    Ok(Json(openapi::document(&served)))
}

async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

/// Every tag key the series have, in order.
fn tag_keys(rows: &[SeriesRow]) -> BTreeSet<&String> {
    rows.iter().flat_map(|r| r.key.tags().keys()).collect()
}

/// Series matching the tag filters; 400 for a tag key no series has, 404 when none match.
async fn matching(s: &AppState, filters: &[(String, String)]) -> Result<Vec<SeriesRow>, ApiError> {
    let store = s.store.clone();
    let rows = blocking(move || store.series()).await?;
    let keys = tag_keys(&rows);
    if let Some((k, _)) = filters.iter().find(|(k, _)| !keys.contains(k)) {
        return Err(ApiError::bad(
            k,
            format!(
                "unknown parameter or tag key (tag keys: {})",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let rows: Vec<SeriesRow> = rows
        .into_iter()
        .filter(|r| r.key.matches(filters))
        .collect();
    if rows.is_empty() && !filters.is_empty() {
        let f: Vec<String> = filters.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Err(ApiError::NotFound(format!(
            "no series matches {}",
            f.join(",")
        )));
    }
    Ok(rows)
}

/// How far back `/api/v1/series` measures how often observations fell inside their interval.
const COVERAGE_WINDOW_SECS: i64 = 7 * 86_400;

async fn series(State(s): State<AppState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &[])?;
    let rows = matching(&s, &p.filters).await?;
    let store = s.store.clone();
    let since = s.clock.now() - COVERAGE_WINDOW_SECS;
    let coverage = blocking(move || store.coverage(since)).await?;
    let list: Vec<Value> = rows
        .iter()
        .map(|r| {
            let cov = coverage.get(&r.key.to_string()).filter(|(_, n)| *n > 0);
            json!({
                "key": r.key.to_string(),
                "tags": r.key.tags(),
                "model": r.state.model,
                "periods": r.periods,
                "status": r.state.status.as_str(),
                "reason": r.state.reason,
                "last_point": r.state.last_point.map(rfc3339),
                "last_fit": r.state.last_fit.map(rfc3339),
                "backtest_mase": r.state.backtest_mase,
                "interval_coverage": cov.map(|(inside, n)| json!({
                    "level": s.detect_level,
                    "share": *inside as f64 / *n as f64,
                    "observations": n,
                    "days": COVERAGE_WINDOW_SECS / 86_400,
                })),
            })
        })
        .collect();
    Ok(Json(json!({ "series": list })).into_response())
}

fn wants_csv(p: &Params, headers: &HeaderMap) -> bool {
    match p.format.as_deref() {
        Some(f) => f == "csv",
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(prefers_csv),
    }
}

/// Whether an `Accept` header ranks CSV above JSON (RFC 9110: media ranges with their `q`
/// weights, case-insensitive; the more specific range of a type counts; on a tie, JSON, the
/// default). Looking for `text/csv` anywhere gave CSV to `application/json, text/csv` and to
/// `text/csv;q=0.1, application/json`, and JSON to `TEXT/CSV`.
fn prefers_csv(accept: &str) -> bool {
    // The weight `accept` gives a media type: that of the most specific range matching it.
    let weight = |kind: &str, sub: &str| {
        accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let (k, s) = parts.next()?.trim().split_once('/')?;
                let q = parts
                    .filter_map(|p| p.trim().split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                    .map_or(Some(1.0), |(_, v)| v.trim().parse::<f64>().ok())?;
                let specific = match (k.trim(), s.trim()) {
                    (k, s) if k.eq_ignore_ascii_case(kind) && s.eq_ignore_ascii_case(sub) => 2,
                    (k, "*") if k.eq_ignore_ascii_case(kind) => 1,
                    ("*", "*") => 0,
                    _ => return None,
                };
                Some((specific, q))
            })
            .max_by_key(|&(specific, _)| specific)
            .map_or(0.0, |(_, q)| q)
    };
    weight("text", "csv") > weight("application", "json")
}

fn csv_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response()
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

async fn forecast(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref(), &["horizon", "level", "format"])?;
    let horizon = p.duration("horizon")?.unwrap_or(s.default_horizon_secs);
    if horizon <= 0 || horizon > s.max_horizon_secs {
        return Err(ApiError::bad(
            "horizon",
            format!(
                "must be positive and at most {} (api.max_horizon)",
                crate::timefmt::format_step(s.max_horizon_secs)
            ),
        ));
    }
    let level = p.number("level")?.unwrap_or(s.default_level);
    if !s.levels.iter().any(|l| (l - level).abs() < 1e-9) {
        return Err(ApiError::bad(
            "level",
            format!(
                "{level} is not one of the configured levels ({})",
                crate::config::levels_text(&s.levels)
            ),
        ));
    }
    p.format_ok()?;
    let rows = matching(&s, &p.filters).await?;
    let store = s.store.clone();
    let keys: Vec<_> = rows.iter().map(|r| r.key.clone()).collect();
    let stored = blocking(move || {
        keys.iter()
            .map(|k| store.forecast(k))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    let mut out = Vec::new();
    for (row, f) in rows.iter().zip(stored) {
        let Some(f) = f else { continue };
        let Some(band) = f.set.band(level) else {
            continue;
        };
        let after = row.state.last_point.unwrap_or(i64::MIN);
        let points: Vec<(i64, f64, f64, f64)> = (0..band.point.len())
            .map(|i| {
                (
                    f.set.origin() + i as i64 * f.set.step,
                    band.point[i],
                    band.lower[i],
                    band.upper[i],
                )
            })
            .filter(|(t, ..)| *t > after && *t <= after.saturating_add(horizon))
            .collect();
        out.push((row, f.set.model.clone(), f.generated_at, points));
    }
    if wants_csv(&p, &headers) {
        let tag_keys = tag_keys(&rows);
        let mut body = tag_keys
            .iter()
            .map(|k| csv_cell(k))
            .collect::<Vec<_>>()
            .join(",");
        body.push_str(if tag_keys.is_empty() { "" } else { "," });
        body.push_str("model,time,yhat,yhat_lower,yhat_upper\n");
        for (row, model, _, points) in &out {
            let tags: Vec<String> = tag_keys
                .iter()
                .map(|k| csv_cell(row.key.tags().get(*k).map_or("", |v| v.as_str())))
                .collect();
            for (t, y, l, u) in points {
                let prefix = if tags.is_empty() {
                    String::new()
                } else {
                    format!("{},", tags.join(","))
                };
                body.push_str(&format!(
                    "{prefix}{},{},{y},{l},{u}\n",
                    csv_cell(model),
                    rfc3339(*t)
                ));
            }
        }
        return Ok(csv_response(body));
    }
    let series: Vec<Value> = out
        .into_iter()
        .map(|(row, model, generated_at, points)| {
            json!({
                "key": row.key.to_string(),
                "tags": row.key.tags(),
                "model": model,
                "generated_at": rfc3339(generated_at),
                "level": level,
                "points": points.iter().map(|(t, y, l, u)| json!({"time": rfc3339(*t), "yhat": y, "yhat_lower": l, "yhat_upper": u})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({ "series": series })).into_response())
}

/// "warning" or "critical" for a flagged observation (or an event, by its peak), "" otherwise.
fn severity(s: &AppState, score: f64, flagged: bool) -> &'static str {
    let rules = &s.events;
    match (flagged, rules.severity(score)) {
        (true, Some(sev)) => sev.as_str(),
        // Flagged by an event's hysteresis while just under the threshold.
        (true, None) => crate::detect::events::Severity::Warning.as_str(),
        (false, _) => "",
    }
}

async fn anomalies(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(
        q.as_deref(),
        &["since", "until", "min_score", "format", "limit"],
    )?;
    let now = s.clock.now();
    let until = p.time("until", now)?.unwrap_or(i64::MAX);
    // Without `since`, the 7 days before `until` (or before now): an `until` alone, further
    // back than a week, asked for nothing and was refused.
    let since = p
        .time("since", now)?
        .unwrap_or(until.min(now).saturating_sub(7 * 86_400));
    if since > until {
        return Err(ApiError::bad("since", "is after `until`".into()));
    }
    let min_score = p.number("min_score")?.unwrap_or(1.0);
    if min_score < 0.0 {
        return Err(ApiError::bad("min_score", "must be at least 0".into()));
    }
    let limit = p.number("limit")?.unwrap_or(10_000.0);
    if !(1.0..=100_000.0).contains(&limit) {
        return Err(ApiError::bad(
            "limit",
            "must be between 1 and 100000".into(),
        ));
    }
    p.format_ok()?;
    let rows = matching(&s, &p.filters).await?;
    let keys: BTreeSet<String> = rows.iter().map(|r| r.key.to_string()).collect();
    let store = s.store.clone();
    let found = blocking(move || store.anomalies(since, until, min_score, limit as usize)).await?;
    let found: Vec<_> = found
        .into_iter()
        .filter(|a| keys.contains(&a.key.to_string()))
        .collect();
    if wants_csv(&p, &headers) {
        let mut body = String::from(
            "key,time,value,yhat,yhat_lower,yhat_upper,anomaly_score,is_anomaly,detector,severity\n",
        );
        for a in &found {
            let r = &a.record;
            body.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{}\n",
                csv_cell(&a.key.to_string()),
                rfc3339(r.time),
                r.value,
                r.yhat,
                r.yhat_lower,
                r.yhat_upper,
                r.score,
                r.is_anomaly,
                csv_cell(&r.detector),
                severity(&s, r.score, r.is_anomaly)
            ));
        }
        return Ok(csv_response(body));
    }
    let list: Vec<Value> = found
        .iter()
        .map(|a| {
            let r = &a.record;
            json!({
                "key": a.key.to_string(),
                "tags": a.key.tags(),
                "time": rfc3339(r.time),
                "value": r.value,
                "yhat": r.yhat,
                "yhat_lower": r.yhat_lower,
                "yhat_upper": r.yhat_upper,
                "anomaly_score": r.score,
                "is_anomaly": r.is_anomaly,
                "detector": r.detector,
                "severity": (r.is_anomaly).then(|| severity(&s, r.score, true)),
            })
        })
        .collect();
    let store = s.store.clone();
    let events = blocking(move || store.events(since, until, min_score, limit as usize)).await?;
    let events: Vec<Value> = events
        .iter()
        .filter(|e| keys.contains(&e.key.to_string()))
        .map(|e| {
            json!({
                "key": e.key.to_string(),
                "tags": e.key.tags(),
                "start": rfc3339(e.start),
                "end": rfc3339(e.end),
                "peak_score": e.peak,
                "detector": e.detector,
                "severity": severity(&s, e.peak, true),
                "open": e.open,
            })
        })
        .collect();
    Ok(Json(json!({ "anomalies": list, "events": events })).into_response())
}

/// Constant-time comparison, so response timing says nothing about the token.
fn token_matches(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

async fn refit(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    if !s.token.is_empty() && !authorized(&headers, &s.token) {
        return Err(ApiError::Unauthorized);
    }
    let p = Params::parse(q.as_deref(), &[])?;
    let rows = matching(&s, &p.filters).await?;
    s.refits.push(p.filters.clone());
    Ok((StatusCode::ACCEPTED, Json(json!({"scheduled": rows.len()}))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::engine::EngineSettings;
    use crate::scheduler::Scheduler;
    use crate::sink::Sink;
    use crate::source::demo::DemoSpec;
    use crate::source::DemoSource;
    use crate::store::StoreSink;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::time::Duration;
    use tower::ServiceExt;

    const NOW: i64 = 1_764_000_000 + 1800;

    async fn setup(token: &str) -> (tempfile::TempDir, AppState, Scheduler) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let source = Arc::new(DemoSource::new(DemoSpec::new(42, 3, NOW), 21 * 86_400));
        let metrics = Arc::new(Metrics::new(&["channel".into()], 100).unwrap());
        let settings = Arc::new(EngineSettings::default());
        let sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(StoreSink(store.clone()))];
        let sched = Scheduler::new(
            source,
            sinks,
            store.clone(),
            metrics.clone(),
            clock.clone(),
            settings.clone(),
            Duration::from_secs(60),
            2 * 86_400,
            30 * 86_400,
            2,
        );
        let state = AppState {
            store,
            metrics,
            health: sched.health.clone(),
            refits: sched.refits.clone(),
            clock,
            token: Secret::new(token),
            default_horizon_secs: 7 * 86_400,
            max_horizon_secs: 35 * 86_400,
            levels: settings.levels.clone(),
            default_level: 95.0,
            options: ApiOptions::default(),
            events: settings.events,
            detect_level: settings.detect_level,
        };
        (dir, state, sched)
    }

    async fn call(
        state: &AppState,
        method: &str,
        uri: &str,
        auth: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = app(state.clone())
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).to_string())
    }

    fn json(s: &str) -> Value {
        serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    #[tokio::test]
    async fn routes_answer_with_the_contract_shapes() {
        let (_dir, state, mut sched) = setup("").await;
        let (code, body) = call(&state, "GET", "/readyz", None).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("first cycle"));
        sched
            .cycle(&tokio_util::sync::CancellationToken::new())
            .await;
        assert_eq!(call(&state, "GET", "/readyz", None).await.0, StatusCode::OK);
        assert_eq!(
            call(&state, "GET", "/healthz", None).await.0,
            StatusCode::OK
        );

        let (code, body) = call(&state, "GET", "/api/v1/series", None).await;
        assert_eq!(code, StatusCode::OK);
        let series = json(&body)["series"].as_array().unwrap().clone();
        assert_eq!(series.len(), 3);
        assert_eq!(series[0]["status"], "ok");
        assert!(
            series
                .iter()
                .all(|s| s["backtest_mase"].as_f64().is_some_and(|m| m > 0.0)
                    && s["periods"]
                        .as_array()
                        .is_some_and(|p| p.contains(&24.into()))),
            "{series:?}"
        );
        // Two days were scored: each series tells how often its 99% interval held.
        for x in &series {
            let c = &x["interval_coverage"];
            assert_eq!(c["level"], 99.0, "{x}");
            assert!(c["observations"].as_u64().unwrap() >= 40, "{x}");
            let share = c["share"].as_f64().unwrap();
            assert!((0.8..=1.0).contains(&share), "{x}");
        }

        let (code, body) = call(
            &state,
            "GET",
            "/api/v1/forecast?channel=news&horizon=1d&level=80",
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let f = json(&body);
        let s = &f["series"][0];
        assert_eq!(s["key"], "channel=news");
        assert_eq!(s["tags"]["channel"], "news");
        assert_eq!(s["level"], 80.0);
        let pts = s["points"].as_array().unwrap();
        assert_eq!(pts.len(), 24);
        assert_eq!(pts[0]["time"], "2025-11-24T16:00:00Z");
        for p in pts {
            let (l, y, u) = (
                p["yhat_lower"].as_f64().unwrap(),
                p["yhat"].as_f64().unwrap(),
                p["yhat_upper"].as_f64().unwrap(),
            );
            assert!(0.0 <= l && l <= y && y <= u);
        }

        let (code, body) = call(
            &state,
            "GET",
            "/api/v1/forecast?channel=news&horizon=2h&format=csv",
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(lines[0], "channel,model,time,yhat,yhat_lower,yhat_upper");
        assert_eq!(lines.len(), 3);

        let (code, body) = call(
            &state,
            "GET",
            "/api/v1/anomalies?since=30d&min_score=0",
            None,
        )
        .await;
        assert_eq!(code, StatusCode::OK);
        let a = json(&body)["anomalies"].as_array().unwrap().clone();
        assert!(
            a.len() > 100,
            "every evaluated observation is stored: {}",
            a.len()
        );
        assert!(a[0]["detector"].is_string() && a[0]["anomaly_score"].is_number());
        for x in &a {
            let flagged = x["is_anomaly"].as_bool().unwrap();
            let severity = x["severity"].as_str();
            assert_eq!(flagged, severity.is_some(), "{x}");
            if let Some(sev) = severity {
                let critical = x["anomaly_score"].as_f64().unwrap() >= 3.0;
                assert_eq!(sev, if critical { "critical" } else { "warning" }, "{x}");
            }
        }

        let metrics = call(&state, "GET", "/metrics", None).await.1;
        assert!(
            metrics.contains("viewcast_forecast_yhat{channel=\"news\"}"),
            "{metrics}"
        );
        assert!(metrics.contains("viewcast_cycles_total{result=\"ok\"} 1"));
    }

    /// Checks `v` against the schema `s` of `doc` (what openapi.rs writes: `$ref`, `type`,
    /// `nullable`, `enum`, `items`, `properties` with `required`, and `additionalProperties`
    /// false or a schema), naming the first place that does not conform.
    fn conforms(doc: &Value, s: &Value, v: &Value, at: &str) -> Result<(), String> {
        if let Some(r) = s["$ref"].as_str() {
            let name = r.rsplit('/').next().unwrap();
            return conforms(doc, &doc["components"]["schemas"][name], v, at);
        }
        if v.is_null() {
            return match s["nullable"].as_bool() {
                Some(true) => Ok(()),
                _ => Err(format!("{at}: null, and the schema is not nullable")),
            };
        }
        let fits = match s["type"].as_str() {
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("number") => v.is_number(),
            Some("integer") => v.is_u64() || v.is_i64(),
            Some("boolean") => v.is_boolean(),
            _ => true,
        };
        if !fits {
            return Err(format!("{at}: {v} is not of type {}", s["type"]));
        }
        if let Some(allowed) = s["enum"].as_array() {
            if !allowed.contains(v) {
                return Err(format!("{at}: {v} is not one of {}", s["enum"]));
            }
        }
        if let Some(items) = v.as_array() {
            for (i, x) in items.iter().enumerate() {
                conforms(doc, &s["items"], x, &format!("{at}[{i}]"))?;
            }
        }
        if let Some(obj) = v.as_object() {
            let props = s["properties"].as_object();
            for k in s["required"].as_array().into_iter().flatten() {
                let k = k.as_str().unwrap();
                if !obj.contains_key(k) {
                    return Err(format!("{at}: `{k}` missing"));
                }
            }
            for (k, x) in obj {
                match (props.and_then(|p| p.get(k)), &s["additionalProperties"]) {
                    (Some(p), _) => conforms(doc, p, x, &format!("{at}.{k}"))?,
                    (None, Value::Bool(false)) => {
                        return Err(format!("{at}: `{k}` is not in the schema"))
                    }
                    (None, extra) if extra.is_object() => {
                        conforms(doc, extra, x, &format!("{at}.{k}"))?
                    }
                    (None, _) => {}
                }
            }
        }
        Ok(())
    }

    /// Every JSON body the API serves, successes and errors, conforms to the schema its route
    /// and status have in openapi.json, so a client generated from it reads what is served.
    #[tokio::test]
    async fn served_bodies_conform_to_their_openapi_schemas() {
        let (_dir, state, mut sched) = setup("").await;
        sched
            .cycle(&tokio_util::sync::CancellationToken::new())
            .await;
        let (_, body) = call(&state, "GET", "/api/v1/openapi.json", None).await;
        let doc = json(&body);
        let cases = [
            ("GET", "/readyz", "/readyz"),
            ("GET", "/api/v1/series", "/api/v1/series"),
            ("GET", "/api/v1/forecast?horizon=6h", "/api/v1/forecast"),
            (
                "GET",
                "/api/v1/anomalies?since=30d&min_score=0",
                "/api/v1/anomalies",
            ),
            ("POST", "/api/v1/refit", "/api/v1/refit"),
            ("GET", "/api/v1/forecast?level=abc", "/api/v1/forecast"),
            ("GET", "/api/v1/series?channel=nobody", "/api/v1/series"),
        ];
        let mut statuses = Vec::new();
        for (method, uri, path) in cases {
            let (code, body) = call(&state, method, uri, None).await;
            let v = json(&body);
            let schema = &doc["paths"][path][method.to_lowercase()]["responses"][code.as_str()]
                ["content"]["application/json"]["schema"];
            assert!(schema.is_object(), "{method} {uri}: no schema for {code}");
            if let Err(e) = conforms(&doc, schema, &v, "body") {
                panic!("{method} {uri} ({code}): {e}\n{body}");
            }
            statuses.push(code.as_u16());
        }
        assert_eq!(statuses, [200, 200, 200, 200, 202, 400, 404]);
        // Not vacuous: the lists that were checked had entries, nullable fields included.
        let (_, body) = call(
            &state,
            "GET",
            "/api/v1/anomalies?since=30d&min_score=0",
            None,
        )
        .await;
        let v = json(&body);
        assert!(!v["anomalies"].as_array().unwrap().is_empty(), "{v}");
        assert!(v["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["severity"].is_null()));
        let (_, body) = call(&state, "GET", "/api/v1/series", None).await;
        assert!(json(&body)["series"].as_array().unwrap().len() >= 3);
        // A tag key given twice selects the series with either value.
        let all = json(&body);
        let names: Vec<&str> = all["series"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["tags"]["channel"].as_str().unwrap())
            .collect();
        let uri = format!("/api/v1/series?channel={}&channel={}", names[0], names[1]);
        let (code, two) = call(&state, "GET", &uri, None).await;
        assert_eq!(code, StatusCode::OK, "{two}");
        assert_eq!(json(&two)["series"].as_array().unwrap().len(), 2, "{two}");
        // And the checker does catch a key the schema lacks.
        let mut extra = json(&body);
        extra["series"][0]["surprise"] = Value::Bool(true);
        let list = &doc["paths"]["/api/v1/series"]["get"]["responses"]["200"]["content"]
            ["application/json"]["schema"];
        assert!(conforms(&doc, list, &extra, "body").is_err());
    }

    #[tokio::test]
    async fn every_documented_route_is_served_and_in_openapi() {
        let (_dir, state, mut sched) = setup("").await;
        sched
            .cycle(&tokio_util::sync::CancellationToken::new())
            .await;
        let (code, body) = call(&state, "GET", "/api/v1/openapi.json", None).await;
        assert_eq!(code, StatusCode::OK);
        let doc = json(&body);
        assert_eq!(doc["openapi"], "3.0.3");
        let paths = doc["paths"].as_object().unwrap();
        assert_eq!(paths.len(), openapi::ROUTES.len());
        for r in openapi::ROUTES {
            assert!(
                paths[r.path][r.method].is_object(),
                "{} {} missing from openapi.json",
                r.method,
                r.path
            );
            let (code, _) = call(&state, &r.method.to_uppercase(), r.path, None).await;
            assert_ne!(
                code,
                StatusCode::NOT_FOUND,
                "{} {} is documented but not served",
                r.method,
                r.path
            );
            assert_ne!(
                code,
                StatusCode::METHOD_NOT_ALLOWED,
                "{} {}",
                r.method,
                r.path
            );
        }
        for p in ["/api/v1/forecast", "/api/v1/anomalies"] {
            let names: Vec<&str> = paths[p]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap())
                .collect();
            assert!(
                names.contains(&"format") && names.contains(&"channel"),
                "{p}: {names:?}"
            );
        }
    }

    /// The parameters' schemas take what the handlers take and refuse what they refuse, so a
    /// client generated from the document sends valid requests (schemathesis sent
    /// `horizon=` and `?x=` from schemas that allowed any string and any key).
    #[tokio::test]
    async fn openapi_parameters_are_as_strict_as_the_handlers() {
        let (_dir, state, mut sched) = setup("").await;
        // Before any series, any key may filter.
        let (_, body) = call(&state, "GET", "/api/v1/openapi.json", None).await;
        let before = json(&body);
        sched
            .cycle(&tokio_util::sync::CancellationToken::new())
            .await;
        let (_, body) = call(&state, "GET", "/api/v1/openapi.json", None).await;
        let doc = json(&body);
        let param = |doc: &Value, path: &str, name: &str| -> Value {
            doc["paths"][path]["get"]["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .map(|p| p["schema"].clone())
                .unwrap_or(Value::Null)
        };
        assert_eq!(param(&before, "/api/v1/series", "tags")["type"], "object");
        // After a cycle: the series' tag key, not any key.
        let forecast = "/api/v1/forecast";
        assert_eq!(param(&doc, forecast, "channel")["type"], "array");
        assert!(param(&doc, forecast, "tags").is_null());
        assert_eq!(param(&doc, forecast, "level")["enum"], json!(state.levels));
        assert_eq!(
            param(&doc, forecast, "format")["enum"],
            json!(["json", "csv"])
        );
        let pattern = param(&doc, forecast, "horizon")["pattern"].clone();
        assert_eq!(
            param(&doc, "/api/v1/anomalies", "since")["anyOf"][1]["pattern"],
            pattern
        );
        let duration = regex::Regex::new(pattern.as_str().unwrap()).unwrap();
        for (given, ok) in [
            ("7d", true),
            ("90m", true),
            ("1h%2030m", true),
            ("2w", true),
            ("36hours", true),
            ("", false),
            ("soon", false),
            ("-1d", false),
            ("0d", false),
            ("7%20parsecs", false),
        ] {
            let text = given.replace("%20", " ");
            assert_eq!(duration.is_match(&text), ok, "pattern on `{text}`");
            let (code, body) =
                call(&state, "GET", &format!("{forecast}?horizon={given}"), None).await;
            let want = if ok {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            assert_eq!(code, want, "horizon=`{text}`: {body}");
        }
        for level in &state.levels {
            let (code, _) = call(&state, "GET", &format!("{forecast}?level={level}"), None).await;
            assert_eq!(code, StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn protections_metrics_by_route_template_cors_and_auth_on_every_route() {
        let (_dir, mut state, mut sched) = setup("s3cret").await;
        sched
            .cycle(&tokio_util::sync::CancellationToken::new())
            .await;
        assert_eq!(
            call(&state, "GET", "/api/v1/forecast?channel=news", None)
                .await
                .0,
            StatusCode::OK,
            "GET is open by default"
        );
        call(&state, "GET", "/api/v1/forecast?channel=kids", None).await;
        let m = state.metrics.render();
        assert!(m.contains("viewcast_http_requests_total{method=\"GET\",route=\"/api/v1/forecast\",status=\"200\"} 2"), "{m}");
        assert!(
            !m.contains("channel=news\","),
            "raw paths never become labels"
        );
        // A body over the limit is refused before any handler runs.
        let big = Request::builder()
            .method("POST")
            .uri("/api/v1/refit")
            .header("authorization", "Bearer s3cret")
            .header("content-length", "100000")
            .body(Body::from(vec![b'x'; 100_000]))
            .unwrap();
        assert_eq!(
            app(state.clone()).oneshot(big).await.unwrap().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        state.options.auth_all_routes = true;
        state.options.cors_origins = vec!["https://bi.example".into()];
        assert_eq!(
            call(&state, "GET", "/api/v1/series", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(&state, "GET", "/api/v1/series", Some("Bearer s3cret"))
                .await
                .0,
            StatusCode::OK
        );
        let pre = Request::builder()
            .method("OPTIONS")
            .uri("/api/v1/series")
            .header("origin", "https://bi.example")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap();
        let resp = app(state.clone()).oneshot(pre).await.unwrap();
        assert_eq!(
            resp.headers().get("access-control-allow-origin").unwrap(),
            "https://bi.example"
        );
    }

    #[test]
    fn accept_headers_are_weighed() {
        for (accept, csv) in [
            ("text/csv", true),
            ("TEXT/CSV", true),
            ("text/*", true),
            ("text/csv;q=0.9, application/json;q=0.5", true),
            ("application/json;q=0.2, text/*;q=0.5", true),
            ("*/*", false),
            ("application/json, text/csv", false),
            ("text/csv;q=0.1, application/json", false),
            ("text/csv;q=0", false),
            ("text/html", false),
            ("", false),
            ("text/csv;q=abc", false),
        ] {
            assert_eq!(prefers_csv(accept), csv, "{accept}");
        }
    }

    #[tokio::test]
    async fn bad_requests_get_json_errors_naming_the_parameter() {
        let (_dir, state, mut sched) = setup("s3cret").await;
        sched
            .cycle(&tokio_util::sync::CancellationToken::new())
            .await;
        for (uri, param) in [
            ("/api/v1/forecast?horizon=soon", "horizon"),
            ("/api/v1/forecast?horizon=900d", "horizon"),
            ("/api/v1/forecast?level=42", "level"),
            ("/api/v1/forecast?format=xml", "format"),
            ("/api/v1/forecast?colour=red", "colour"),
            ("/api/v1/anomalies?since=last-tuesday", "since"),
            ("/api/v1/anomalies?min_score=abc", "min_score"),
        ] {
            let (code, body) = call(&state, "GET", uri, None).await;
            assert_eq!(code, StatusCode::BAD_REQUEST, "{uri}: {body}");
            assert!(
                json(&body)["error"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("`{param}`")),
                "{uri}: {body}"
            );
        }
        // The limit reads as the config writes it (it read `1month 4days 13h 26m 24s`).
        let (_, body) = call(&state, "GET", "/api/v1/forecast?horizon=900d", None).await;
        assert!(body.contains("at most 35d (api.max_horizon)"), "{body}");
        // `until` alone gives the week before it (an `until` over a week back was refused:
        // the default `since`, a week before now, was after it).
        let uri = "/api/v1/anomalies?until=2020-01-01T00:00:00Z&min_score=0";
        let (code, body) = call(&state, "GET", uri, None).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        assert_eq!(json(&body)["anomalies"], json!([]));
        let until = NOW - 86_400;
        let uri = format!("/api/v1/anomalies?until={}&min_score=0", rfc3339(until));
        let (code, body) = call(&state, "GET", &uri, None).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        let times: Vec<i64> = json(&body)["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| crate::timefmt::parse_time(a["time"].as_str().unwrap()).unwrap())
            .collect();
        assert!(!times.is_empty());
        assert!(times
            .iter()
            .all(|t| (until - 7 * 86_400..=until).contains(t)));
        let (code, body) = call(&state, "GET", "/api/v1/forecast?channel=nope", None).await;
        assert_eq!(code, StatusCode::NOT_FOUND);
        assert!(json(&body)["error"]
            .as_str()
            .unwrap()
            .contains("channel=nope"));
        assert_eq!(
            call(&state, "GET", "/no/such/route", None).await.0,
            StatusCode::NOT_FOUND
        );

        assert_eq!(
            call(&state, "POST", "/api/v1/refit?channel=news", None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            call(
                &state,
                "POST",
                "/api/v1/refit?channel=news",
                Some("Bearer wrong")
            )
            .await
            .0,
            StatusCode::UNAUTHORIZED
        );
        let (code, body) = call(
            &state,
            "POST",
            "/api/v1/refit?channel=news",
            Some("Bearer s3cret"),
        )
        .await;
        assert_eq!(code, StatusCode::ACCEPTED);
        assert!(!body.contains("s3cret"));
        assert_eq!(json(&body)["scheduled"], 1);
        let report = sched
            .cycle(&tokio_util::sync::CancellationToken::new())
            .await;
        assert_eq!(
            report.fits, 1,
            "the refit ran on the next cycle: {report:?}"
        );
    }
}
