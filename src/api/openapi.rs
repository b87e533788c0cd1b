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
        params: &[("since", "RFC 3339 time or a duration back from now (default: 7 days before until, or before now)"), ("until", "RFC 3339 time or duration back from now"), ("min_score", "default 1"), ("limit", "at most this many points (default 10000)"), ("format", "json or csv")],
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

/// What the document says that depends on the running daemon: the tag keys its series
/// have (each is a filter parameter) and the interval levels it keeps.
#[derive(Debug, Clone, Default)]
pub struct Served {
    pub tag_keys: Vec<String>,
    pub levels: Vec<f64>,
}

/// A duration as the API takes it: `7d`, `90m`, `1h 30m` (humantime's units).
const DURATION: &str = "^ *[1-9][0-9]* *(weeks?|w|days?|d|hours?|hr|h|minutes?|min|m|seconds?|sec|s)( *[0-9]+ *(weeks?|w|days?|d|hours?|hr|h|minutes?|min|m|seconds?|sec|s))* *$";

/// The schema of query parameter `name`, as strict as the handlers are: a client generated
/// from the document then sends what is accepted (schemathesis found `horizon=` and
/// `level=` as plain strings, rejected with 400).
fn param_schema(name: &str, served: &Served) -> Value {
    match name {
        "horizon" => json!({"type": "string", "pattern": DURATION}),
        "since" | "until" => json!({"anyOf": [
            {"type": "string", "format": "date-time"},
            {"type": "string", "pattern": DURATION, "description": "that long before now"},
            {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2})?)?$", "description": "UTC"},
            {"type": "string", "pattern": "^[0-9]{1,19}$", "description": "Unix time (s, ms, µs or ns)"},
        ]}),
        "level" if !served.levels.is_empty() => json!({"type": "number", "enum": served.levels}),
        "level" => {
            json!({"type": "number", "exclusiveMinimum": true, "minimum": 0, "exclusiveMaximum": true, "maximum": 100})
        }
        "format" => json!({"type": "string", "enum": ["json", "csv"]}),
        "min_score" => json!({"type": "number", "minimum": 0}),
        "limit" => json!({"type": "integer", "minimum": 1, "maximum": 100_000}),
        _ => json!({"type": "string"}),
    }
}

/// The tag filters of a route: one parameter per tag key the series have (a key given
/// several times matches any of its values), or any key while there are no series yet.
fn tag_params(served: &Served) -> Vec<Value> {
    if served.tag_keys.is_empty() {
        return vec![json!({
            "name": "tags", "in": "query", "required": false, "style": "form", "explode": true,
            "description": "any tag key filters the series, e.g. channel=news&device=tv; a key given several times matches any of its values (channel=news&channel=sports)",
            "schema": {"type": "object", "additionalProperties": {"type": "string"}}
        })];
    }
    served
        .tag_keys
        .iter()
        .map(|k| {
            json!({
                "name": k, "in": "query", "required": false, "style": "form", "explode": true,
                "description": format!("only series whose tag `{k}` has one of these values"),
                "schema": {"type": "array", "items": {"type": "string"}}
            })
        })
        .collect()
}

/// The OpenAPI 3 document of [`ROUTES`], for a daemon serving `served`.
pub fn document(served: &Served) -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = r.params.iter().map(|(n, d)| json!({"name": n, "in": "query", "required": false, "description": d, "schema": param_schema(n, served)})).collect();
        if r.tag_filters {
            params.extend(tag_params(served));
        }
        let responses: Map<String, Value> = r
            .responses
            .iter()
            .map(|(c, d)| {
                let mut resp = json!({"description": d});
                if let Some(content) = content(r.path, c) {
                    resp["content"] = content;
                }
                (c.to_string(), resp)
            })
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
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": schemas(),
        },
    })
}

/// A reference to schema `name` of [`schemas`].
fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The body of a response, by route and status: a JSON schema from [`schemas`] (and CSV where
/// `format=csv` gives it), or the media type of a body for people or Prometheus.
fn content(path: &str, status: &str) -> Option<Value> {
    let json_body = |name: &str| json!({"application/json": {"schema": schema(name)}});
    let string = json!({"schema": {"type": "string"}});
    Some(match (path, status) {
        ("/", "200") => json!({"text/html": string}),
        ("/healthz" | "/metrics", "200") => json!({"text/plain": string}),
        ("/readyz", "200") => json_body("Ready"),
        ("/api/v1/series", "200") => json_body("SeriesList"),
        ("/api/v1/forecast", "200") => {
            json!({"application/json": {"schema": schema("ForecastList")}, "text/csv": string})
        }
        ("/api/v1/anomalies", "200") => {
            json!({"application/json": {"schema": schema("AnomalyList")}, "text/csv": string})
        }
        ("/api/v1/refit", "202") => json_body("Scheduled"),
        ("/api/v1/openapi.json", "200") => {
            json!({"application/json": {"schema": {"type": "object"}}})
        }
        (_, "400" | "401" | "404" | "500" | "503") => json_body("Error"),
        _ => return None,
    })
}

/// JSON schemas of the API's bodies. Every key a body has is listed, and every listed key is
/// always present (null where the schema says nullable): the API tests check served bodies
/// against these.
fn schemas() -> Value {
    let time = json!({"type": "string", "format": "date-time"});
    let time_or_null = json!({"type": "string", "format": "date-time", "nullable": true});
    let number = json!({"type": "number"});
    let string = json!({"type": "string"});
    let array_of = |item: &str| json!({"type": "array", "items": schema(item)});
    let severity = json!({"type": "string", "enum": ["warning", "critical"]});
    let object = |props: Value| {
        let required: Vec<&String> = props
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
    };
    // Everything about one series starts with its key and tags.
    let of_series = |mut props: Value| {
        props["key"] = string.clone();
        props["tags"] = schema("Tags");
        object(props)
    };
    let mut coverage = object(
        json!({"level": number, "share": number, "observations": {"type": "integer"}, "days": {"type": "integer"}}),
    );
    coverage["nullable"] = true.into();
    coverage["description"] =
        "share of the last days' observations inside the detect.level interval".into();
    let mut series = of_series(json!({
        "model": {"type": "string", "nullable": true, "description": "the model fitted last (auto's choice)"},
        "periods": {"type": "array", "items": {"type": "integer"}, "description": "seasonal periods in steps"},
        "status": {"type": "string", "enum": ["ok", "warming_up", "error", "retired"]},
        "reason": {"type": "string", "nullable": true, "description": "why the status is not ok"},
        "last_point": time_or_null,
        "last_fit": time_or_null,
        "backtest_mase": {"type": "number", "nullable": true},
        "interval_coverage": coverage,
    }));
    series["properties"]["key"]["description"] = "the tags as k=v pairs joined by commas".into();
    let mut nullable_severity = severity.clone();
    nullable_severity["nullable"] = true.into();
    json!({
        "Tags": {"type": "object", "additionalProperties": string, "description": "the series' tags, e.g. {\"channel\": \"news\"}"},
        "Series": series,
        "SeriesList": object(json!({"series": array_of("Series")})),
        "ForecastPoint": object(json!({"time": time, "yhat": number, "yhat_lower": number, "yhat_upper": number})),
        "Forecast": of_series(json!({
            "model": string,
            "generated_at": time,
            "level": number,
            "points": array_of("ForecastPoint"),
        })),
        "ForecastList": object(json!({"series": array_of("Forecast")})),
        "Anomaly": of_series(json!({
            "time": time,
            "value": number,
            "yhat": number,
            "yhat_lower": number,
            "yhat_upper": number,
            "anomaly_score": {"type": "number", "description": "1 or more is anomalous"},
            "is_anomaly": {"type": "boolean", "description": "part of an event (confirmed)"},
            "detector": string,
            "severity": nullable_severity,
        })),
        "Event": of_series(json!({
            "start": time,
            "end": time,
            "peak_score": number,
            "detector": string,
            "severity": severity,
            "open": {"type": "boolean", "description": "still going on at the last observation"},
        })),
        "AnomalyList": object(json!({"anomalies": array_of("Anomaly"), "events": array_of("Event")})),
        "Scheduled": object(json!({"scheduled": {"type": "integer", "description": "series that will be refitted"}})),
        "Ready": object(json!({"status": {"type": "string", "enum": ["ready"]}})),
        "Error": object(json!({"error": string})),
    })
}
