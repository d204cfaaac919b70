//! The collector's history and the index's trend charts, on a fast collector.
//!
//! Wall clock and ports: the collector runs every 100 ms of real time while the test makes
//! traffic until four intervals have some, under a 10 s deadline; the rates it checks are loose
//! bounds (2 ms sleeps can only last longer), and the server listens on a free loopback port.

mod common;

use std::time::{Duration, Instant};

use monitor_core::monitored;

#[derive(Debug)]
struct Busy;

#[monitored]
fn request(i: u32) -> Result<u32, Busy> {
    std::thread::sleep(Duration::from_millis(2));
    if i % 4 == 0 {
        Err(Busy)
    } else {
        Ok(i)
    }
}

#[test]
fn history_feeds_the_trend_charts() {
    monitor_core::set_collect_interval(Duration::from_millis(100));
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    // Traffic for a while: about 400 calls/s, a quarter of them failing, each 2 ms or more.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    let points = loop {
        let _ = request(i);
        i += 1;
        let points = monitor_core::history();
        if points.iter().filter(|p| p.calls_per_s > 0.0).count() >= 4 {
            break points;
        }
        assert!(Instant::now() < deadline, "no history after 10 s: {points:?}");
    };
    let busy: Vec<_> = points.iter().filter(|p| p.calls_per_s > 0.0).collect();
    for p in &busy[1..] {
        // Whole intervals of traffic (the first may be partial).
        assert!(p.calls_per_s > 50.0 && p.calls_per_s < 1000.0, "{p:?}");
        assert!(
            p.errors_per_s > 0.1 * p.calls_per_s && p.errors_per_s < 0.4 * p.calls_per_s,
            "{p:?}"
        );
        assert!(p.p99_ns >= 1_900_000 && p.p99_ns < 1_000_000_000, "{p:?}");
        assert_eq!(p.in_flight[0].0, "function");
    }

    let json: serde_json::Value =
        serde_json::from_str(&common::get(addr, "/history/json").body).unwrap();
    let last = json.as_array().unwrap().last().unwrap().clone();
    assert!(last["unix_s"].as_u64().unwrap() > 1_700_000_000);
    assert!(last["in_flight"]["sql"].is_u64(), "{last}");

    let index = common::get(addr, "/").body;
    assert_eq!(index.matches("<svg class=\"chart\"").count(), 4, "calls, errors, p99, in flight");
    assert!(index.contains("<polyline"), "{index}");

    let url = format!("http://{addr}/");
    let Some(out) = common::chromium(&["--dump-dom"], &url) else { return };
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert_eq!(dom.matches("<svg class=\"chart\"").count(), 4, "{dom}");
    assert!(dom.contains("<figcaption>calls: <b>"), "{dom}");
}
