//! A STUB of the InfluxDB 2.x HTTP API, because no 2.x server can run on these machines.
//! It replays the real protocol for what viewcast uses: `POST /api/v2/query` answers Flux
//! queries with annotated CSV (the `#datatype`, `#group` and `#default` rows, one table per
//! channel) and `POST /api/v2/write` takes line protocol with `org`, `bucket` and `precision`,
//! answering 204, or 401 without the right `Authorization: Token …`. It evaluates only the
//! parts of a query viewcast sends (the time range and equality filters on `channel`) over
//! hourly data, so bucket means are the stored values. `set_writes_down(true)` makes writes
//! answer 503 (a write path outage while queries still work).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

#[derive(Default)]
pub struct StubState {
    pub series: BTreeMap<String, Vec<(i64, f64)>>,
    pub queries: Vec<String>,
    /// (query-string parameters, body) of each accepted write.
    pub writes: Vec<(BTreeMap<String, String>, String)>,
    pub down: bool,
}

pub struct Influx2Stub {
    pub port: u16,
    pub state: Arc<Mutex<StubState>>,
    _thread: std::thread::JoinHandle<()>,
}

pub const ORG: &str = "broadcaster";
pub const BUCKET: &str = "viewership";
pub const TOKEN: &str = "stub-token";

type Shared = Arc<Mutex<StubState>>;

fn authorized(h: &HeaderMap) -> bool {
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Token {TOKEN}"))
}

fn refuse(code: StatusCode, msg: &str) -> Response {
    (
        code,
        [("content-type", "application/json")],
        format!(
            "{{\"code\":\"{}\",\"message\":\"{msg}\"}}",
            if code == StatusCode::UNAUTHORIZED {
                "unauthorized"
            } else {
                "unavailable"
            }
        ),
    )
        .into_response()
}

/// The text between `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

fn rfc(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

async fn query(
    State(st): State<Shared>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "unauthorized access");
    }
    let mut st = st.lock().unwrap();
    if params.get("org").map(String::as_str) != Some(ORG) {
        return refuse(StatusCode::NOT_FOUND, "organization not found");
    }
    let v: serde_json::Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "invalid json"),
    };
    let flux = v["query"].as_str().unwrap_or_default().to_string();
    st.queries.push(flux.clone());
    let parse = |s: Option<&str>| {
        s.and_then(|t| chrono::DateTime::parse_from_rfc3339(t.trim()).ok())
            .map(|t| t.timestamp())
    };
    let (Some(start), Some(stop)) = (
        parse(between(&flux, "range(start: ", ",")),
        parse(between(&flux, "stop: ", ")")),
    ) else {
        return refuse(StatusCode::BAD_REQUEST, "compilation failed: missing range");
    };
    let only = between(&flux, "r[\"channel\"] == \"", "\")")
        .map(|c| c.replace("\\\"", "\"").replace("\\\\", "\\"));
    let mut csv = String::from(
        "#datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string\r\n\
         #group,false,false,true,true,false,false,true\r\n\
         #default,_result,,,,,,\r\n\
         ,result,table,_start,_stop,_time,_value,channel\r\n",
    );
    let mut table = 0;
    for (channel, points) in &st.series {
        if only.as_ref().is_some_and(|o| o != channel) {
            continue;
        }
        let rows: Vec<_> = points
            .iter()
            .filter(|(t, _)| *t >= start && *t < stop)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let quoted = if channel.contains([',', '"']) {
            format!("\"{}\"", channel.replace('"', "\"\""))
        } else {
            channel.clone()
        };
        for (t, v) in rows {
            csv.push_str(&format!(
                ",,{table},{},{},{},{v},{quoted}\r\n",
                rfc(start),
                rfc(stop),
                rfc(*t)
            ));
        }
        table += 1;
    }
    csv.push_str("\r\n");
    ([("content-type", "text/csv; charset=utf-8")], csv).into_response()
}

async fn write(
    State(st): State<Shared>,
    Query(params): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !authorized(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "unauthorized access");
    }
    let mut st = st.lock().unwrap();
    if st.down {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "temporarily unavailable");
    }
    if params.get("org").map(String::as_str) != Some(ORG)
        || params.get("bucket").map(String::as_str) != Some(BUCKET)
    {
        return refuse(StatusCode::NOT_FOUND, "bucket not found");
    }
    st.writes.push((params, body));
    StatusCode::NO_CONTENT.into_response()
}

impl Influx2Stub {
    pub fn start(series: BTreeMap<String, Vec<(i64, f64)>>) -> Influx2Stub {
        let state: Shared = Arc::new(Mutex::new(StubState {
            series,
            ..Default::default()
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let app = Router::new()
            .route("/api/v2/query", post(query))
            .route("/api/v2/write", post(write))
            .with_state(state.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
        });
        Influx2Stub {
            port,
            state,
            _thread: thread,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_writes_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Lines written so far, across all accepted requests.
    pub fn lines(&self) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .writes
            .iter()
            .flat_map(|(_, b)| b.lines().map(str::to_string).collect::<Vec<_>>())
            .collect()
    }
}
