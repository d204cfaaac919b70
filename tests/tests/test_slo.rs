//! Objectives end to end: the rules and their unit tests as served pass `promtool check rules`
//! and `promtool test rules`; a real Prometheus loads the served rules, scrapes a service whose
//! traffic breaks one objective and keeps another, and pages for the broken one only; and the
//! budget the process computes agrees with the one Prometheus records.
//!
//! Ports and wall clock: the server and Prometheus listen on free loopback ports; the test polls
//! Prometheus's API under a deadline (skipped outside CI when Prometheus is missing).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monitor_core::{monitored, Objective};

/// Fails one call in 50 (2%) against a 95% target: 40% of the budget spent, no alert.
#[monitored(objective(success = 95.0, window = "1h"))]
fn healthy_checkout(i: u64) -> Result<u64, std::io::Error> {
    if i % 50 == 0 {
        Err(std::io::Error::from(std::io::ErrorKind::TimedOut))
    } else {
        Ok(i)
    }
}

/// Fails 3 calls in 10 and makes 3 in 10 slow: 30 times the budget of both targets.
#[monitored(objective(success = 99.0, latency = "2ms", latency_target = 99.0, window = "1h"))]
fn failing_payment(i: u64) -> Result<u64, std::io::Error> {
    if i % 10 < 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    if i % 10 >= 7 {
        Err(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    } else {
        Ok(i)
    }
}

/// A name that would break YAML, PromQL and Go templates if written unescaped.
#[monitored(
    name = "slo \"hostile\" {{ $labels.name }} \\ name\n: - #",
    objective(success = 99.95, latency = "250ms", latency_target = 99.5, window = "30d")
)]
fn hostile() {}

fn serve() -> monitor_http::Server {
    monitor_http::serve("127.0.0.1:0").unwrap()
}

#[test]
fn promtool_checks_and_tests_the_served_rules() {
    hostile();
    // One more, declared at run time as a route would be, with a 7-day window.
    monitor_core::declare_objective(
        "GET /orders/{id}",
        Objective::new()
            .success(99.9)
            .unwrap()
            .latency(Duration::from_micros(1500), 99.0)
            .unwrap()
            .window(Duration::from_secs(7 * 86_400))
            .unwrap(),
    )
    .unwrap();
    let server = serve();
    let rules = common::get(server.local_addr(), "/slo/rules.yaml");
    let tests = common::get(server.local_addr(), "/slo/tests.yaml");
    let metrics = common::get(server.local_addr(), "/metrics").body;
    let json = common::get(server.local_addr(), "/slo/json").body;
    let index = common::get(server.local_addr(), "/").body;
    server.shutdown();
    // The hostile name survives JSON and HTML whole.
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> =
        json["objectives"].as_array().unwrap().iter().filter_map(|o| o["name"].as_str()).collect();
    assert!(names.contains(&"slo \"hostile\" {{ $labels.name }} \\ name\n: - #"), "{names:?}");
    assert!(index.contains("<table id=\"objectives\">"));
    assert!(index.contains("slo &quot;hostile&quot;"));
    assert_eq!(rules.status, 200);
    assert!(rules.header("content-type").starts_with("application/yaml"));
    for name in ["healthy_checkout", "failing_payment", "GET /orders/{id}", "hostile"] {
        assert!(rules.body.contains(name), "{name} has no rules:\n{}", rules.body);
    }
    // The latency bounds became bucket bounds of /metrics, so the rules can read them.
    for le in ["le=\"0.002\"", "le=\"0.0015\"", "le=\"0.25\""] {
        assert!(metrics.contains(le), "/metrics has no {le}");
    }
    let Some(promtool) = common::tool("promtool") else { return };
    let dir = std::env::temp_dir().join(format!("monitor-slo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("rules.yaml"), &rules.body).unwrap();
    std::fs::write(dir.join("tests.yaml"), &tests.body).unwrap();
    for args in [["check", "rules", "rules.yaml"], ["test", "rules", "tests.yaml"]] {
        let out =
            std::process::Command::new(&promtool).args(args).current_dir(&dir).output().unwrap();
        assert!(
            out.status.success(),
            "promtool {args:?} failed:\n{}\n{}\n--- rules ---\n{}\n--- tests ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            rules.body,
            tests.body
        );
    }
    // The tests are not empty: each indicator has its paging and its silent test.
    let tests_run = tests.body.matches("  - name: ").count();
    assert_eq!(tests_run, 2 * 7, "{}", tests.body);
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn prometheus_pages_for_the_broken_objective_only() {
    monitor_core::set_collect_interval(Duration::from_millis(500));
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let _ = healthy_checkout(i);
                let _ = failing_payment(i);
                i += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let server = serve();
    let rules = common::get(server.local_addr(), "/slo/rules.yaml").body;
    let Some(prom) = common::Prometheus::start_with_rules(server.local_addr(), Some(&rules), &[])
    else {
        stop.store(true, Ordering::Relaxed);
        return;
    };
    let firing = || -> Option<Vec<(String, String, String)>> {
        let alerts = prom.api("/api/v1/alerts")?;
        let list = alerts["data"]["alerts"].as_array()?.clone();
        Some(
            list.iter()
                .filter(|a| a["state"] == "firing")
                .map(|a| {
                    let l = &a["labels"];
                    let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
                    (s("alertname"), s("name"), s("sli"))
                })
                .collect(),
        )
    };
    let payment = "test_slo::failing_payment";
    let page =
        |sli: &str| ("MonitorObjectivePage".to_string(), payment.to_string(), sli.to_string());
    let deadline = Instant::now() + Duration::from_secs(90);
    let alerts = loop {
        let now = firing().unwrap_or_default();
        if now.contains(&page("success")) && now.contains(&page("latency")) {
            break now;
        }
        assert!(Instant::now() < deadline, "the page never fired: {now:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(
        alerts.iter().all(|(_, name, _)| name == payment),
        "only the broken objective alerts: {alerts:?}"
    );

    // The process knows the same without Prometheus.
    let status = monitor_core::objective_status();
    let of = |name: &str| status.iter().find(|o| o.name.ends_with(name)).unwrap();
    assert!(of("failing_payment").indicators.iter().all(|s| s.page));
    assert!(of("healthy_checkout").indicators.iter().all(|s| !s.page && !s.ticket));
    let json = common::get(server.local_addr(), "/slo/json").body;
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let objectives = json["objectives"].as_array().unwrap();
    let checkout = objectives.iter().find(|o| o["name"] == "test_slo::healthy_checkout").unwrap();
    assert_eq!(checkout["indicators"][0]["page"], false);

    // The budget left of the healthy objective: 2% bad of a 5% budget leaves 60%, in the
    // process over its whole life and in Prometheus over the scrapes it has. They agree within
    // 0.05 (a bad ratio within 0.25 percentage points): Prometheus's window starts at its first
    // scrape and extrapolates each counter on its own.
    let query =
        r#"monitor_slo:error_budget_remaining{name="test_slo::healthy_checkout",sli="success"}"#;
    let from_prometheus = loop {
        let v = prom
            .api(&format!("/api/v1/query?query={}", common::promql(query)))
            .and_then(|v| v["data"]["result"][0]["value"][1].as_str()?.parse::<f64>().ok());
        if let Some(v) = v.filter(|v| v.is_finite()) {
            break v;
        }
        assert!(Instant::now() < deadline, "no recorded budget in Prometheus");
        std::thread::sleep(Duration::from_millis(500));
    };
    let in_process = of("healthy_checkout").indicators[0].budget_remaining;
    assert!(
        (in_process - 0.6).abs() < 0.02,
        "in process: {in_process} of the budget left, expected 0.6"
    );
    assert!(
        (in_process - from_prometheus).abs() < 0.05,
        "in process {in_process}, Prometheus {from_prometheus}"
    );
    stop.store(true, Ordering::Relaxed);
    traffic.join().unwrap();
    drop(prom);
    server.shutdown();
}
