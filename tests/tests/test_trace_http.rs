//! The trace views over HTTP, under real concurrent traffic: `/trace/json` and `/trace/svg`
//! by regex and by trace id, their errors, timeouts and caps; `/ps`; `/trace/errors`.
//!
//! Ports and wall clock: the server listens on a free loopback port; capture timeouts are
//! deadlines on the wait, and the timeout tests check only that the answer came after it.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_core::trace::{self, TraceParent};
use monitor_core::{monitored, Span};
use serde_json::Value;

use common::get;

// Watches, the failed-trace ring and record_all are process-wide: the tests take turns
// (`common::turn`).
use common::turn;

#[derive(Debug)]
struct Unavailable;

#[monitored]
fn fetch(key: u32) -> Result<u32, Unavailable> {
    trace::annotate("key", key);
    std::thread::sleep(Duration::from_micros(300));
    if key % 4 == 3 {
        Err(Unavailable)
    } else {
        Ok(key)
    }
}

#[monitored]
fn render(n: u32) -> String {
    trace::checkpoint("start");
    format!("{n}")
}

#[monitored]
fn serve_page(id: u32) -> Result<String, Unavailable> {
    let a = fetch(id)?;
    let b = std::thread::spawn(Span::current().wrap(move || fetch(id + 1))).join().unwrap()?;
    Ok(render(a + b))
}

/// Calls `serve_page` from 3 threads until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start() -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..3)
            .map(|t| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        let _ = serve_page(i % 16);
                        i += 3;
                    }
                })
            })
            .collect();
        Traffic { stop, threads }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn spans(body: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(body)
        .unwrap_or_else(|e| panic!("{e}: {body}"))
        .as_array()
        .unwrap()
        .clone()
}

fn hex(v: &Value, width: usize) -> String {
    let s = v.as_str().unwrap().to_string();
    assert_eq!(s.len(), width, "{s}");
    assert!(s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "lower hex: {s}");
    s
}

/// Checks one captured `serve_page` tree; returns the outcome of its root.
fn check_page_tree(spans: &[Value]) -> String {
    let root = &spans[0];
    assert_eq!(root["name"], "test_trace_http::serve_page");
    let trace_id = hex(&root["trace_id"], 32);
    let by_id: HashMap<String, &Value> =
        spans.iter().map(|s| (hex(&s["span_id"], 16), s)).collect();
    assert_eq!(by_id.len(), spans.len(), "unique span ids");
    let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
    for s in &spans[1..] {
        assert_eq!(hex(&s["trace_id"], 32), trace_id);
        let parent = by_id[&hex(&s["parent_id"], 16)];
        assert_eq!(parent["name"], "test_trace_http::serve_page", "{names:?}");
        let (start, pstart) =
            (s["start_unix_ns"].as_u64().unwrap(), parent["start_unix_ns"].as_u64().unwrap());
        assert!(start >= pstart);
        assert!(
            start + s["duration_ns"].as_u64().unwrap()
                <= pstart + parent["duration_ns"].as_u64().unwrap() + 1_000_000
        );
    }
    let fetches: Vec<&Value> =
        spans.iter().filter(|s| s["name"] == "test_trace_http::fetch").collect();
    assert!(!fetches.is_empty() && fetches.len() <= 2, "{names:?}");
    for f in &fetches {
        let key = f["annotations"]["key"].as_u64().unwrap();
        assert!(f["duration_ns"].as_u64().unwrap() >= 300_000);
        if key % 4 == 3 {
            assert_eq!(
                (f["outcome"].as_str(), f["error_kind"].as_str()),
                (Some("error"), Some("Unavailable"))
            );
            assert_eq!(f["status"]["code"], "error");
        } else {
            assert_eq!((f["outcome"].as_str(), &f["error_kind"]), (Some("success"), &Value::Null));
        }
    }
    let failed = fetches.iter().any(|f| f["outcome"] == "error");
    assert_eq!(root["outcome"], if failed { "error" } else { "success" });
    if !failed {
        let render = spans.iter().find(|s| s["name"] == "test_trace_http::render").expect("render");
        assert_eq!(render["events"][0]["name"], "start");
    }
    root["outcome"].as_str().unwrap().to_string()
}

#[test]
fn trace_json_by_regex_under_concurrent_traffic() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let _traffic = Traffic::start();
    let mut outcomes = Vec::new();
    for _ in 0..12 {
        let r = get(server.local_addr(), "/trace/json?regex=serve_pag%5Be%5D&timeout=10s");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("content-type"), "application/json");
        let s = spans(&r.body);
        assert_eq!(r.header("x-monitor-trace-id"), s[0]["trace_id"].as_str().unwrap());
        outcomes.push(check_page_tree(&s));
    }
    // A regex on an inner function captures from there: one span.
    let r = get(server.local_addr(), "/trace/json?regex=%3A%3Afetch%24");
    assert_eq!(r.status, 200, "{}", r.body);
    let s = spans(&r.body);
    assert_eq!((s.len(), s[0]["name"].as_str()), (1, Some("test_trace_http::fetch")));
    assert!(s[0]["parent_id"].is_string(), "its parent is outside the capture");
    assert!(outcomes.iter().any(|o| o == "success"), "{outcomes:?}");
}

#[monitored]
fn remote_handler(n: u32) -> u32 {
    fetch(n).unwrap_or(0)
}

#[test]
fn trace_json_by_trace_id_of_a_remote_caller() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let tp: TraceParent =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    let caller = std::thread::spawn(move || {
        // Other traces first; then the one asked for.
        for i in 0..50 {
            remote_handler(i);
            std::thread::sleep(Duration::from_millis(5));
        }
        Span::from_remote(tp).in_scope(|| remote_handler(1))
    });
    let r = get(server.local_addr(), &format!("/trace/json?trace_id={}&timeout=20s", tp.trace_id));
    caller.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let s = spans(&r.body);
    assert_eq!(s.len(), 2);
    assert_eq!(s[0]["name"], "test_trace_http::remote_handler");
    assert_eq!(s[0]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(s[0]["parent_id"], "00f067aa0ba902b7");
    assert_eq!(s[0]["remote_parent"], true);
    assert_eq!(s[1]["parent_id"], s[0]["span_id"]);
}

#[test]
fn trace_svg_parses_as_xml_and_renders_in_chromium() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let _traffic = Traffic::start();
    let r = get(server.local_addr(), "/trace/svg?regex=serve_page");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("content-type"), "image/svg+xml");
    let doc = roxmltree::Document::parse(&r.body).unwrap_or_else(|e| panic!("{e}:\n{}", r.body));
    let svg = doc.root_element();
    assert_eq!(svg.tag_name().name(), "svg");
    let bars: Vec<_> = svg.descendants().filter(|n| n.has_tag_name("rect")).collect();
    let groups: Vec<_> = svg
        .descendants()
        .filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("span ")))
        .collect();
    assert_eq!(bars.len(), groups.len());
    assert!(bars.len() >= 2, "root and at least one fetch");
    // Each bar's label reads `name (duration)`, its tooltip gives the details; the root is first.
    let label = groups[0].descendants().find(|n| n.has_tag_name("text")).unwrap().text().unwrap();
    assert!(label.starts_with("test_trace_http::serve_page ("), "{label}");
    let tip = groups[0].descendants().find(|n| n.has_tag_name("title")).unwrap().text().unwrap();
    assert!(tip.contains("outcome: "), "{tip}");
    // Children are nested inside the root's time span.
    let x = |n: &roxmltree::Node<'_, '_>, a: &str| n.attribute(a).unwrap().parse::<f64>().unwrap();
    let (rx, rw) = (x(&bars[0], "x"), x(&bars[0], "width"));
    for b in &bars[1..] {
        assert!(x(b, "x") >= rx - 0.1 && x(b, "x") + x(b, "width") <= rx + rw + 1.5);
    }

    // The index's capture link of the function answers the same way.
    let index = get(server.local_addr(), "/").body;
    let row = index.split("<tr").find(|r| r.contains(">test_trace_http::serve_page<")).unwrap();
    // (The name links to the function's page; the capture link is the row's trace link.)
    let href = row
        .split("href=\"")
        .skip(1)
        .find(|h| h.starts_with("trace/svg?regex="))
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let r = get(server.local_addr(), &format!("/{href}"));
    assert_eq!(r.status, 200, "{href}: {}", r.body);
    assert!(r.body.contains("test_trace_http::serve_page ("));

    let url = format!("http://{}/trace/svg?regex=serve_page", server.local_addr());
    let Some(out) = common::chromium(&["--dump-dom"], &url) else { return };
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(dom.contains("<svg") && dom.contains("test_trace_http::serve_page ("), "{dom}");
    let Some(png) = common::screenshot(&url, 1200, 400) else { return };
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "a real picture of the timeline");
}

#[monitored]
fn never_called_here() {}

#[test]
fn trace_requests_are_checked_and_waits_are_bounded() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let r = get(addr, "/trace/json?regex=no-function-is-called-this");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("matches 0 functions"), "{}", r.body);
    let r = get(addr, "/trace/json?regex=(unclosed");
    assert_eq!(r.status, 400);
    assert!(r.body.contains("invalid"), "{}", r.body);
    for bad in [
        "trace_id=xyz",
        "trace_id=00000000000000000000000000000000",
        "regex=a&timeout=soon",
        "regex=a&timeout=10m",
        "regex=a&preselect=maybe",
        "",
    ] {
        let r = get(addr, &format!("/trace/json?{bad}"));
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert_eq!(get(addr, "/funcs?regex=a").status, 400, "trace parameters on other views");
    assert_eq!(get(addr, "/trace/svg?filter=a").status, 400);

    // A function that is never called: the wait ends at the timeout with 504.
    let t = Instant::now();
    let r = get(addr, "/trace/svg?regex=never_called_here&timeout=300ms");
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("never_called_here") && r.body.contains("300ms"), "{}", r.body);
    assert!(t.elapsed() >= Duration::from_millis(300));
    // preselect=false waits even when nothing matches.
    let t = Instant::now();
    let r = get(addr, "/trace/json?regex=no-such-name&preselect=false&timeout=200ms");
    assert_eq!(r.status, 504);
    assert!(t.elapsed() >= Duration::from_millis(200));
}

#[test]
fn concurrent_watches_are_capped() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    // Fill every watch place with waits that cannot succeed: by trace id, and (issue 14) with
    // `preselect=false` and a regex that matches nothing, which must take a place too.
    let id = "0123456789abcdef0123456789abcdef";
    for wait in [format!("trace_id={id}"), "regex=no-such-function&preselect=false".to_string()] {
        let waiting: Vec<_> = (0..trace::MAX_WATCHES)
            .map(|_| {
                let wait = wait.clone();
                std::thread::spawn(move || {
                    get(addr, &format!("/trace/json?{wait}&timeout=3s")).status
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(3);
        while trace::stats().watches < trace::MAX_WATCHES {
            assert!(Instant::now() < deadline, "the waits did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        for _ in 0..3 {
            let r = get(addr, &format!("/trace/json?{wait}&timeout=1s"));
            assert_eq!(r.status, 503, "{}", r.body);
            assert_eq!(r.header("retry-after"), "1");
        }
        for w in waiting {
            assert_eq!(w.join().unwrap(), 504);
        }
        // Finished waits free their places.
        assert_eq!(trace::stats().watches, 0);
        assert_eq!(get(addr, &format!("/trace/json?{wait}&timeout=10ms")).status, 504);
    }
}

#[monitored]
fn long_running(release: std::sync::mpsc::Receiver<()>) {
    fetch(0).ok();
    trace::annotate("phase", "waiting");
    release.recv().ok();
}

#[monitored]
fn outer_running(release: std::sync::mpsc::Receiver<()>) {
    long_running(release);
}

#[test]
fn ps_shows_recorded_calls_in_flight_as_trees() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    trace::record_all(true);
    let (tx, rx) = std::sync::mpsc::channel();
    let th = std::thread::spawn(move || outer_running(rx));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !trace::in_flight()
        .iter()
        .any(|s| s.name.ends_with("long_running") && !s.annotations.is_empty())
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    trace::record_all(false);
    let text = get(addr, "/ps").body;
    let outer = text
        .lines()
        .position(|l| l.trim_start().starts_with("test_trace_http::outer_running ["))
        .unwrap_or_else(|| panic!("{text}"));
    let inner = &text.lines().nth(outer + 1).unwrap();
    assert!(
        inner.starts_with("    test_trace_http::long_running [") && inner.contains("phase=waiting"),
        "{text}"
    );
    assert!(
        text.contains("in flight per function:\n")
            && text.contains("test_trace_http::long_running 1"),
        "{text}"
    );
    let json: Value = serde_json::from_str(&get(addr, "/ps/json").body).unwrap();
    let mine: Vec<&Value> = json
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"].as_str().unwrap().contains("_running"))
        .collect();
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[1]["parent_id"], mine[0]["span_id"]);
    let dot = get(addr, "/ps/dot").body;
    assert!(dot.contains("->"), "{dot}");
    common::check_with("dot", &["-Tsvg", "-o", "/dev/null"], &dot);
    tx.send(()).unwrap();
    th.join().unwrap();
    assert!(!get(addr, "/ps/json").body.contains("_running"));
}

#[test]
fn trace_errors_lists_failed_traces() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    trace::keep_failed_traces(8);
    for i in 0..8 {
        let _ = serve_page(i);
    }
    let r = get(server.local_addr(), "/trace/errors");
    let svg = get(server.local_addr(), "/trace/errors/svg").body;
    let stacks = get(server.local_addr(), "/trace/errors/text");
    trace::keep_failed_traces(0);
    // As call stacks: a trace line, then each call on a line of its own, children indented.
    assert_eq!(stacks.status, 200);
    assert!(stacks.header("content-type").starts_with("text/plain"));
    assert!(
        stacks.body.lines().filter(|l| l.starts_with("call test_trace_http::serve_page")).count()
            >= 4,
        "{}",
        stacks.body
    );
    assert!(stacks.body.contains("\n    call test_trace_http::"), "{}", stacks.body);
    assert!(stacks.body.contains(" error "), "{}", stacks.body);
    assert_eq!(r.status, 200);
    let traces: Value = serde_json::from_str(&r.body).unwrap();
    let traces = traces.as_array().unwrap();
    // Keys 3 and 7 fail (as the first fetch of pages 3 and 7, the second of 2 and 6).
    let mine: Vec<&Value> =
        traces.iter().filter(|t| t["spans"][0]["name"] == "test_trace_http::serve_page").collect();
    assert_eq!(mine.len(), 4, "{}", r.body);
    for t in &mine {
        assert_eq!(t["root_span_id"], t["spans"][0]["span_id"]);
        assert_eq!(check_page_tree(t["spans"].as_array().unwrap()), "error");
    }
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(doc.descendants().filter(|n| n.has_tag_name("rect")).count() >= 4 * 2);
}

#[monitored]
fn downstream(headers: http::HeaderMap) -> (Span, monitor_core::trace::TraceState) {
    let _ = headers;
    (Span::current(), monitor_core::trace::TraceState::default())
}

#[monitored]
fn upstream(incoming_state: monitor_core::trace::TraceState) -> (Span, Span, String) {
    let mut out = http::HeaderMap::new();
    monitor_http::propagation::inject(&Span::current(), Some(&incoming_state), &mut out);
    // The next service reads the headers this one sent.
    let ctx = monitor_http::propagation::extract(&out).expect("valid headers");
    let (child, _) = ctx.span().in_scope(|| downstream(out.clone()));
    (Span::current(), child, ctx.state.to_string())
}

#[test]
fn traceparent_and_tracestate_carry_a_trace_across_services() {
    let _turn = turn();
    let mut incoming = http::HeaderMap::new();
    incoming.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
    );
    incoming.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
    let ctx = monitor_http::propagation::extract(&incoming).unwrap();
    let (up, down, state) = ctx.span().in_scope(|| upstream(ctx.state.clone()));
    assert_eq!(up.trace_id(), Some(ctx.parent.trace_id));
    assert_eq!(up.parent_id(), Some(ctx.parent.parent_id));
    assert_eq!(down.trace_id(), up.trace_id(), "one trace across both services");
    assert_eq!(down.parent_id(), up.span_id(), "the downstream call's parent is the upstream call");
    assert!(up.is_sampled() == down.is_sampled());
    assert_eq!(state, "congo=t61rcWkgMzE", "tracestate passed on");
}

/// A capture of a route nobody has requested yet (its site does not exist) catches its first
/// request: with `preselect=false` it waits though nothing matches, and the route's site, made
/// by that request, is watched as soon as it is made.
#[test]
fn a_capture_catches_a_route_made_after_it_started() {
    use tower_layer::Layer;
    use tower_service::Service;

    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let route = "GET /capture_later/{id}";
    assert!(monitor_core::registry().snapshot().function(route).is_none(), "not made yet");
    // Without preselect=false a regex matching nothing is refused at once.
    let r = get(addr, "/trace/json?regex=capture_later");
    assert_eq!(r.status, 400, "{}", r.body);
    let capture = std::thread::spawn(move || {
        get(addr, "/trace/json?regex=%5EGET%20/capture_later&preselect=false&timeout=30s")
    });
    // The capture is armed once a watch waits (the server answers `/trace/*` off its task).
    let deadline = Instant::now() + Duration::from_secs(30);
    while trace::stats().watches == 0 {
        assert!(Instant::now() < deadline, "the capture never armed");
        std::thread::sleep(Duration::from_millis(5));
    }
    let answer: common::Answer = |_| http::Response::new(());
    let mut svc = monitor_http::layer::ServerLayer::new()
        .route(|parts| {
            parts.uri.path().starts_with("/capture_later/").then(|| "/capture_later/{id}".into())
        })
        .layer(common::ServiceFn(answer));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(svc.call(http::Request::get("/capture_later/7").body(()).unwrap())).unwrap();
    let r = capture.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let s = spans(&r.body);
    assert_eq!(s[0]["name"], route, "{}", r.body);
    server.shutdown();
}

/// An armed capture is visible while it waits: in `/trace/watches` (JSON) and atop `/ps`.
#[test]
fn armed_captures_are_listed() {
    let _turn = turn();
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let capture = std::thread::spawn(move || {
        get(addr, "/trace/json?regex=no_such_function_yet&preselect=false&timeout=2s")
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let r = get(addr, "/trace/watches");
        assert_eq!(r.status, 200, "{}", r.body);
        let v: Value = serde_json::from_str(&r.body).unwrap();
        let mine = v
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["what"].as_str().is_some_and(|s| s.contains("no_such_function_yet")));
        if let Some(w) = mine {
            break w.clone();
        }
        assert!(Instant::now() < deadline, "never listed: {}", r.body);
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(listed["functions"], 0);
    assert_eq!(listed["sites_made_later"], true);
    assert!(listed["collecting"].is_null());
    let ps = get(addr, "/ps");
    assert!(
        ps.body.contains("capture waiting") && ps.body.contains("no_such_function_yet"),
        "{}",
        ps.body
    );
    assert_eq!(capture.join().unwrap().status, 504);
    let after = get(addr, "/trace/watches");
    assert!(!after.body.contains("no_such_function_yet"), "gone after its timeout: {}", after.body);
    server.shutdown();
}
