//! The `tracing` bridge in a real service: an axum app behind tower-http's `TraceLayer`, whose
//! handler calls a `#[tracing::instrument(err)]` function, which calls a `#[monitored]`
//! function, which calls a plain `#[tracing::instrument]` one. Under real HTTP traffic the
//! monitor's own server shows every span with exact counts and the caller edges across both
//! kinds; a capture returns one tree of both; the `fmt` layer still prints.
//!
//! Ports: the service and the monitor listen on free loopback ports. One test in this binary:
//! the subscriber is the process's global default.

mod common;

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use monitor_core::monitored;
use serde_json::Value;
use tracing_subscriber::layer::SubscriberExt;

use common::get as http_get;

/// Digits only: `key` parsed, through the monitored step.
#[tracing::instrument(err)]
async fn answer(key: String) -> Result<u64, std::num::ParseIntError> {
    let n = parse(&key)?;
    Ok(n * 2)
}

#[monitored]
fn parse(key: &str) -> Result<u64, std::num::ParseIntError> {
    checked(key)
}

#[tracing::instrument]
fn checked(key: &str) -> Result<u64, std::num::ParseIntError> {
    tracing::info!(len = key.len(), "checking");
    key.parse()
}

async fn route(Path(key): Path<String>) -> (StatusCode, String) {
    if key == "boom" {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom".into());
    }
    match answer(key).await {
        Ok(v) => (StatusCode::OK, v.to_string()),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// What the `fmt` layer writes, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn start_service(rt: &tokio::runtime::Runtime) -> SocketAddr {
    rt.block_on(async {
        let app = Router::new()
            .route("/answer/{key}", get(route))
            .layer(tower_http::trace::TraceLayer::new_for_http());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    })
}

fn function<'a>(functions: &'a [Value], name: &str) -> &'a Value {
    functions
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in /funcs/json: {functions:#?}"))
}

fn calls_from(f: &Value, caller: &str) -> u64 {
    f["callers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == caller)
        .map_or(0, |c| c["count"].as_u64().unwrap())
}

#[test]
fn tracing_spans_and_monitored_calls_share_one_graph_and_one_trace() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone()))
        .with(monitor_tracing::MonitorLayer::new());
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let rt = rt.unwrap();
    let service = start_service(&rt);
    let monitor = monitor_http::serve("127.0.0.1:0").unwrap();

    for key in ["1", "22", "333", "4", "55", "x", "y", "6", "7", "zz"] {
        let r = http_get(service, &format!("/answer/{key}"));
        assert_eq!(r.status, if key.parse::<u64>().is_ok() { 200 } else { 400 }, "{key}");
    }
    assert_eq!(http_get(service, "/answer/boom").status, 500);

    let r = http_get(monitor.local_addr(), "/funcs/json");
    assert_eq!(r.status, 200);
    let json: Value = serde_json::from_str(&r.body).unwrap();
    let functions = json.as_array().unwrap();

    // TraceLayer's span: every request; the 500 is its ERROR event's failure.
    let request = function(functions, "tower_http::trace::make_span::request");
    assert_eq!(
        (request["success"].as_u64(), request["errors"]["error"].as_u64()),
        (Some(10), Some(1))
    );
    // instrument(err): its ERROR event makes the three bad keys errors.
    let answer = function(functions, "test_tracing::answer");
    assert_eq!(
        (answer["success"].as_u64(), answer["errors"]["error"].as_u64()),
        (Some(7), Some(3))
    );
    assert_eq!(calls_from(answer, "tower_http::trace::make_span::request"), 10);
    // The monitored call: its caller is a tracing span.
    let parse = function(functions, "test_tracing::parse");
    assert_eq!(parse["success"].as_u64(), Some(7));
    assert_eq!(parse["errors"]["ParseIntError"].as_u64(), Some(3));
    assert_eq!(calls_from(parse, "test_tracing::answer"), 10);
    // A tracing span whose caller is a monitored call (no `err`: every span a success).
    let checked = function(functions, "test_tracing::checked");
    assert_eq!(checked["success"].as_u64(), Some(10));
    assert_eq!(calls_from(checked, "test_tracing::parse"), 10);
    for f in [request, answer, parse, checked] {
        assert_eq!(f["current"], 0, "{f}");
    }

    // A capture of the next `answer`: one trace, both kinds of span in one tree.
    let capture = std::thread::spawn(move || {
        http_get(monitor.local_addr(), "/trace/json?regex=test_tracing%3A%3Aanswer&timeout=10s")
    });
    let mut sent = 0;
    while !capture.is_finished() && sent < 500 {
        std::thread::sleep(std::time::Duration::from_millis(20));
        http_get(service, "/answer/8");
        sent += 1;
    }
    let r = capture.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let spans: Vec<Value> = serde_json::from_str(&r.body).unwrap();
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["test_tracing::answer", "test_tracing::parse", "test_tracing::checked"]);
    assert!(spans.windows(2).all(|w| w[0]["trace_id"] == w[1]["trace_id"]), "{spans:#?}");
    assert_eq!(spans[1]["parent_id"], spans[0]["span_id"]);
    assert_eq!(spans[2]["parent_id"], spans[1]["span_id"]);
    // The span's fields are its attributes, the events inside it its events.
    assert_eq!(spans[0]["annotations"]["key"], "8", "{:#?}", spans[0]);
    assert_eq!(spans[2]["events"][0]["name"], "checking", "{:#?}", spans[2]);

    // The fmt layer printed, with the spans it always shows.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("checking"), "{text}");
    assert!(text.contains("answer{key=\"x\"}"), "{text}");
    assert!(text.contains("ERROR"), "{text}");
}
