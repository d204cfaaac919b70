//! The `tracing` bridge in a real service: an axum app behind tower-http's `TraceLayer`, whose
//! handler calls a `#[tracing::instrument(err)]` function, which calls a `#[monitored]`
//! function, which calls a plain `#[tracing::instrument]` one. Under real HTTP traffic the
//! monitor's own server shows every span with exact counts and the caller edges across both
//! kinds; a capture returns one tree of both; the `fmt` layer still prints.
//!
//! The other way round (monitor-core's feature `tracing`): `#[monitored]` calls are spans
//! `tracing` subscribers see, parents of the spans and events inside them, with the monitor's
//! trace and span ids as fields, and the bridge does not count them twice.
//!
//! Outcomes only the layer can tell: a span dropped unfinished is cancelled (where its
//! callsite reports returns), a span a panic closed a panic.
//!
//! Ports: the service and the monitor listen on free loopback ports. The first test sets the
//! process's global subscriber; the others use one of their own on their thread, and functions
//! of their own.

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

    // The fmt layer printed, with the spans it always shows; the monitored call among them,
    // with the ids of the captured trace.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("checking"), "{text}");
    assert!(text.contains("answer{key=\"x\"}"), "{text}");
    assert!(text.contains("ERROR"), "{text}");
    let ids = format!(
        "answer{{key=\"8\"}}:test_tracing::parse{{monitor.trace_id={} monitor.span_id={}}}:checked{{key=\"8\"}}",
        spans[1]["trace_id"].as_str().unwrap(),
        spans[1]["span_id"].as_str().unwrap()
    );
    assert!(text.contains(&ids), "{ids} not in {text}");
    // The monitored call's own tracing span is not bridged a second time.
    let named = |n: &str| functions.iter().filter(|f| f["name"] == n).count();
    assert_eq!(named("test_tracing::parse"), 1);
}

#[monitored(name = "tracing_spans::outer")]
async fn outer(rounds: u32) -> Result<(monitor_core::TraceId, monitor_core::SpanId), String> {
    for i in 0..rounds {
        tokio::task::yield_now().await;
        // After a yield: the call's tracing span is entered again at every poll.
        tracing::info!(i, "round");
    }
    let span = monitor_core::Span::current();
    // A tracing span inside the call: bridged, it is the current monitored span in there.
    let _inner = tracing::info_span!("inner").entered();
    tracing::info!("done");
    span.trace_id().zip(span.span_id()).ok_or_else(|| "no span".to_string())
}

#[monitored(name = "tracing_spans::job")]
fn job() -> Result<(), std::io::Error> {
    tracing::warn!("sync inside");
    Ok(())
}

/// Reports its return, so that a span of it dropped unfinished is known as cancelled.
#[tracing::instrument(ret)]
async fn waits(ms: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ms
}

#[tracing::instrument]
fn explodes() {
    panic!("explodes on purpose");
}

#[test]
fn spans_dropped_unfinished_are_cancelled_and_panics_are_panics() {
    let subscriber = tracing_subscriber::registry().with(monitor_tracing::MonitorLayer::new());
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    tracing::subscriber::with_default(subscriber, || {
        rt.block_on(async {
            assert_eq!(waits(1).await, 1);
            // Dropped by the timeout long before it would finish.
            let slow = tokio::time::timeout(std::time::Duration::from_millis(5), waits(60_000));
            assert!(slow.await.is_err());
            assert_eq!(waits(2).await, 2);
        });
        assert!(std::panic::catch_unwind(explodes).is_err());
    });
    let snap = monitor_core::registry().snapshot();
    let waits = snap.function("test_tracing::waits").unwrap();
    assert_eq!((waits.success, waits.cancelled, waits.in_flight), (2, 1, 0));
    let explodes = snap.function("test_tracing::explodes").unwrap();
    assert_eq!((explodes.success, explodes.panics), (0, 1));
}

#[test]
fn monitored_calls_are_tracing_spans() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || writer.clone()))
        .with(monitor_tracing::MonitorLayer::new());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
        job().unwrap();
        rt.block_on(outer(3)).unwrap()
    });

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let outer =
        format!("tracing_spans::outer{{monitor.trace_id={trace_id} monitor.span_id={span_id}}}");
    for line in ["round i=0", "round i=2", "inner: done"] {
        let want = format!("{outer}: test_tracing: {line}");
        let want = want.replace("}: test_tracing: inner: done", "}:inner: test_tracing: done");
        assert!(text.contains(&want), "{want} not in {text}");
    }
    assert!(text.contains("tracing_spans::job{monitor.trace_id="), "{text}");

    let snap = monitor_core::registry().snapshot();
    let count = |n: &str| snap.functions.iter().filter(|f| f.name == n && f.is_called()).count();
    assert_eq!((count("tracing_spans::outer"), count("tracing_spans::job")), (1, 1));
    let outer = snap.function("tracing_spans::outer").unwrap();
    assert_eq!(outer.success, 1);
    // The tracing span inside the monitored call is bridged as its callee.
    let inner = snap.functions.iter().find(|f| f.name == "test_tracing::inner").unwrap();
    assert_eq!(inner.calls_from("tracing_spans::outer"), 1);
}
