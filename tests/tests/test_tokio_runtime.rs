//! A tokio runtime's vitals as gauges: a runtime of two workers with three tasks parked on a
//! channel, then released; the gauges read back from a snapshot and from `/metrics` (checked
//! with promtool).
//!
//! Wall clock and scheduling: after the tasks are released the test waits (bounded by its own
//! deadline, no speed asserted) until the runtime reports them finished and a worker asleep.

mod common;

use std::time::{Duration, Instant};

use monitor_core::MetricValue;

fn gauge(name: &str) -> f64 {
    let snap = monitor_core::registry().snapshot();
    let m = snap
        .metrics
        .iter()
        .find(|m| {
            m.scope == "tokio" && m.name == name && m.tags == [("runtime".into(), "app".into())]
        })
        .unwrap_or_else(|| panic!("tokio {name} not in the snapshot"));
    match m.value {
        MetricValue::Gauge(v) => v,
        ref other => panic!("{other:?}"),
    }
}

#[test]
fn runtime_vitals_are_gauges() {
    // Gauges are read within a time limit; a loaded machine must not make these stale.
    monitor_core::set_gauge_time_limit(Duration::from_secs(30));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    monitor_core::tokio_runtime::register("app", rt.handle()).unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    for _ in 0..3 {
        let mut rx = rx.clone();
        rt.spawn(async move {
            while !*rx.borrow_and_update() {
                rx.changed().await.unwrap()
            }
        });
    }
    assert_eq!(gauge("workers"), 2.0);
    assert_eq!(gauge("alive_tasks"), 3.0);
    assert!(gauge("global_queue_depth") >= 0.0);

    let mut prom = String::new();
    let snap = monitor_core::registry().snapshot();
    monitor_http::write_prometheus(
        &snap,
        &monitor_http::Buckets::default(),
        monitor_http::ExpositionFormat::Prometheus,
        &mut prom,
    );
    assert!(prom.contains("alive_tasks{runtime=\"app\",scope=\"tokio\"} 3\n"), "{prom}");
    assert!(prom.contains("# HELP busy_seconds Time the workers spent running tasks"), "{prom}");
    common::check_with("promtool", &["check", "metrics"], &prom);

    tx.send(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while gauge("alive_tasks") != 0.0 {
        assert!(Instant::now() < deadline, "the released tasks never finished");
        std::thread::sleep(Duration::from_millis(10));
    }
    // A worker adds its busy time and its park when it goes to sleep, which an idle worker
    // does soon but at no promised moment: wait for it, within the same deadline.
    while gauge("busy_seconds") == 0.0 || gauge("parks") == 0.0 {
        assert!(Instant::now() < deadline, "no worker reported running the tasks and sleeping");
        std::thread::sleep(Duration::from_millis(10));
    }
}
