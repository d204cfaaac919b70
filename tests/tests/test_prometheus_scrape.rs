//! A real Prometheus server scrapes `/metrics` and the series are queryable.
//!
//! Ports and wall clock: the server and Prometheus listen on free loopback ports; the test polls
//! Prometheus's API under a deadline (skipped outside CI when Prometheus is missing).

mod common;

use std::time::{Duration, Instant};

use monitor_core::monitored;

#[monitored]
fn scraped(i: u32) -> Result<u32, std::io::Error> {
    if i % 3 == 0 {
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    } else {
        Ok(i)
    }
}

#[test]
fn prometheus_scrapes_and_queries_the_series() {
    for i in 0..9 {
        let _ = scraped(i);
    }
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let Some(prom) = common::Prometheus::start(server.local_addr(), &[]) else { return };
    let query = |q: &str| prom.api(&format!("/api/v1/query?query={}", common::promql(q)));
    // Waits (boundedly) for Prometheus to start, scrape and answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ok, errors, up) = loop {
        let value = |q: &str| {
            query(q).and_then(|v| v["data"]["result"][0]["value"][1].as_str().map(String::from))
        };
        let ok = value(r#"function_successes_total{name="test_prometheus_scrape::scraped"}"#);
        let errors = value(
            r#"function_errors_total{name="test_prometheus_scrape::scraped",error_kind="TimedOut"}"#,
        );
        let up = value(r#"up{job="monitor"}"#);
        if let (Some(ok), Some(errors), Some(up)) = (&ok, &errors, &up) {
            break (ok.clone(), errors.clone(), up.clone());
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never had the series: {:?}",
            (ok, errors, up)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!((ok.as_str(), errors.as_str(), up.as_str()), ("6", "3", "1"));
    let histogram = query(
        r#"function_times_seconds_count{kind="failure",name="test_prometheus_scrape::scraped"}"#,
    )
    .unwrap();
    assert_eq!(histogram["data"]["result"][0]["value"][1], "3");
    server.shutdown();
}
