//! A real Prometheus server scrapes `/metrics` and the series are queryable.
//!
//! Ports and wall clock: the server and Prometheus listen on free loopback ports; the test polls
//! Prometheus's API under a deadline (skipped outside CI when Prometheus is missing).

mod common;

use std::process::{Child, Command, Stdio};
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

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn prometheus_scrapes_and_queries_the_series() {
    let Some(prometheus) = common::tool("prometheus") else { return };
    for i in 0..9 {
        let _ = scraped(i);
    }
    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!("monitor-prometheus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: monitor\n    \
             static_configs:\n      - targets: ['{}']\n",
            server.local_addr()
        ),
    )
    .unwrap();
    let port = common::free_port();
    let _prom = Kill(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let query = |q: &str| {
        let path = format!("/api/v1/query?query={q}");
        let reply = std::panic::catch_unwind(|| common::get(addr, &path)).ok()?;
        serde_json::from_str::<serde_json::Value>(&reply.body).ok()
    };
    // Waits (boundedly) for Prometheus to start, scrape and answer.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ok, errors, up) = loop {
        let value = |q: &str| {
            query(q).and_then(|v| v["data"]["result"][0]["value"][1].as_str().map(String::from))
        };
        let ok =
            value("function_successes_total%7Bname%3D%22test_prometheus_scrape%3A%3Ascraped%22%7D");
        let errors = value(
            "function_errors_total%7Bname%3D%22test_prometheus_scrape%3A%3Ascraped%22%2Cerror_kind%3D%22TimedOut%22%7D",
        );
        let up = value("up%7Bjob%3D%22monitor%22%7D");
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
    let histogram = query("function_times_seconds_count%7Bkind%3D%22failure%22%2Cname%3D%22test_prometheus_scrape%3A%3Ascraped%22%7D").unwrap();
    assert_eq!(histogram["data"]["result"][0]["value"][1], "3");
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
