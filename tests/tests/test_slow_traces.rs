//! The slowest traces of each entry function are kept whole, bounded, over a rolling window,
//! and served at `/trace/slow` (JSON) and `/trace/slow/svg`.
//!
//! Wall clock: the slow calls sleep 40 and 80 ms against fast ones that do not sleep, so which
//! are slowest holds unless the machine stalls a fast call for 40 ms; the window test waits
//! out a 1 s window. The settings are global: the tests run one at a time (`common::turn`).

mod common;

use std::time::Duration;

use monitor_core::monitored;
use monitor_core::trace::{keep_slow_traces, slow_traces, MAX_SLOW_PER_FUNCTION};

#[monitored]
fn step(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[monitored]
fn request(ms: u64) {
    step(ms);
    step(0);
}

#[monitored]
fn job() {}

fn root_name(t: &monitor_core::trace::Trace) -> &'static str {
    t.root_span().map_or("", |s| s.name)
}

#[test]
fn the_slowest_of_each_entry_function_are_kept_whole() {
    let _turn = common::turn();
    keep_slow_traces(2, Duration::from_secs(3600));
    for ms in [0, 0, 40, 0, 80, 0] {
        request(ms);
    }
    job();
    let kept = slow_traces();
    keep_slow_traces(0, Duration::from_secs(3600));
    let requests: Vec<_> =
        kept.iter().filter(|t| root_name(t) == "test_slow_traces::request").collect();
    assert_eq!(requests.len(), 2, "two per function");
    let durations: Vec<u64> = requests.iter().map(|t| t.root_span().unwrap().duration_ns).collect();
    assert!(durations[0] >= durations[1], "slowest first: {durations:?}");
    assert!(durations[1] >= 40_000_000, "the 80 and 40 ms calls: {durations:?}");
    // Whole: the root and both of its children.
    for t in &requests {
        assert_eq!(t.spans.len(), 3);
        assert_eq!(t.spans.iter().filter(|s| s.name == "test_slow_traces::step").count(), 2);
    }
    assert_eq!(kept.iter().filter(|t| root_name(t) == "test_slow_traces::job").count(), 1);
    assert!(slow_traces().is_empty(), "turned off, nothing is held");
}

#[test]
fn bounded_per_function_and_rolling() {
    let _turn = common::turn();
    keep_slow_traces(usize::MAX, Duration::from_secs(1));
    for _ in 0..MAX_SLOW_PER_FUNCTION + 10 {
        job();
    }
    let jobs = |all: &[std::sync::Arc<monitor_core::trace::Trace>]| {
        all.iter().filter(|t| root_name(t) == "test_slow_traces::job").count()
    };
    assert_eq!(jobs(&slow_traces()), MAX_SLOW_PER_FUNCTION);
    assert_eq!(monitor_core::trace::stats().slow_kept, MAX_SLOW_PER_FUNCTION);
    // Past the window they are left out, and a new, fast trace is kept again.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(jobs(&slow_traces()), 0);
    job();
    assert_eq!(jobs(&slow_traces()), 1);
    assert_eq!(monitor_core::trace::stats().slow_kept, 1, "the aged ones were let go");
    keep_slow_traces(0, Duration::from_secs(1));
}

#[test]
fn served_as_json_and_svg() {
    let _turn = common::turn();
    keep_slow_traces(1, Duration::from_secs(3600));
    request(1);
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let json = common::get(server.local_addr(), "/trace/slow");
    let svg = common::get(server.local_addr(), "/trace/slow/svg");
    server.shutdown();
    keep_slow_traces(0, Duration::from_secs(3600));
    assert_eq!(json.status, 200);
    let v: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    let text = v.to_string();
    assert!(text.contains("test_slow_traces::request"), "{text}");
    assert!(svg.header("content-type").starts_with("image/svg+xml"));
    roxmltree::Document::parse(&svg.body).unwrap();
    assert!(svg.body.contains("test_slow_traces::step"));
}
