//! The route table: every route the API serves is listed here once, with its documentation,
//! and both the router and `GET /api/v1/openapi.json` are built from it, so the description
//! cannot drift from what is served.

use serde_json::{json, Map, Value};

/// One route and what a client needs to know about it.
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// (name, description); other query keys are tag filters where `tag_filters` is set.
    pub params: &'static [(&'static str, &'static str)],
    pub tag_filters: bool,
    /// (status, description)
    pub responses: &'static [(&'static str, &'static str)],
}

const ERRORS: &[(&str, &str)] = &[
    ("400", "bad parameter; the error names it"),
    ("404", "no series matches the filters"),
];

pub const ROUTES: &[RouteDoc] = &[
    RouteDoc { method: "get", path: "/", summary: "Page for people: every channel's actuals, forecast band and anomalies", params: &[], tag_filters: false, responses: &[("200", "HTML")] },
    RouteDoc { method: "get", path: "/healthz", summary: "200 while the process runs", params: &[], tag_filters: false, responses: &[("200", "ok")] },
    RouteDoc { method: "get", path: "/readyz", summary: "Ready once the first cycle finished and the store answers", params: &[], tag_filters: false, responses: &[("200", "ready"), ("503", "not ready or degraded; JSON reason")] },
    RouteDoc { method: "get", path: "/metrics", summary: "Prometheus text format", params: &[], tag_filters: false, responses: &[("200", "metrics")] },
    RouteDoc {
        method: "get",
        path: "/api/v1/series",
        summary: "Every series: tags, model, its seasonal periods, backtest error, interval coverage, status and reason, last point, last fit",
        params: &[],
        tag_filters: true,
        responses: &[("200", "{\"series\": [...]}"), ERRORS[0], ERRORS[1]],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/forecast",
        summary: "Latest forecast after the last observation, per matching series",
        params: &[("horizon", "duration ahead, e.g. 7d (default: model.horizon)"), ("level", "interval level, one of model.levels (default 95)"), ("format", "json or csv (or Accept: text/csv)")],
        tag_filters: true,
        responses: &[("200", "{\"series\": [{\"key\", \"tags\", \"model\", \"generated_at\", \"level\", \"points\": [...]}]}"), ERRORS[0], ERRORS[1]],
    },
    RouteDoc {
        method: "get",
        path: "/api/v1/anomalies",
        summary: "Evaluated observations with anomaly_score >= min_score, and anomaly events",
        params: &[("since", "RFC 3339 time or a duration back from now (default 7d)"), ("until", "RFC 3339 time or duration back from now"), ("min_score", "default 1"), ("limit", "at most this many points (default 10000)"), ("format", "json or csv")],
        tag_filters: true,
        responses: &[("200", "{\"anomalies\": [...], \"events\": [...]}"), ERRORS[0], ERRORS[1]],
    },
    RouteDoc {
        method: "post",
        path: "/api/v1/refit",
        summary: "Refit the matching series (all without filters) on the next cycle",
        params: &[],
        tag_filters: true,
        responses: &[("202", "{\"scheduled\": n}"), ("401", "api.token is set and the bearer token is missing or wrong"), ERRORS[0], ERRORS[1]],
    },
    RouteDoc { method: "get", path: "/api/v1/openapi.json", summary: "This description", params: &[], tag_filters: false, responses: &[("200", "OpenAPI 3")] },
];

/// The OpenAPI 3 document of [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r.params.iter().map(|(n, d)| json!({"name": n, "in": "query", "required": false, "description": d, "schema": {"type": "string"}})).collect();
        if r.tag_filters {
            params.push(json!({
                "name": "tags", "in": "query", "required": false, "style": "form", "explode": true,
                "description": "any tag key filters the series, e.g. channel=news&device=tv",
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }));
        }
        let responses: Map<String, Value> = r
            .responses
            .iter()
            .map(|(c, d)| (c.to_string(), json!({"description": d})))
            .collect();
        let mut op = json!({"summary": r.summary, "parameters": params, "responses": responses});
        if r.method == "post" {
            op["security"] = json!([{"bearer": []}, {}]);
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "viewcast", "version": env!("CARGO_PKG_VERSION"), "description": "Forecasts and anomaly flags per series."},
        "paths": paths,
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    })
}
