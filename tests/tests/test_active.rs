//! In flight by category: `/active`, its series in `/stats` and `/metrics`, the index chart.
//!
//! Ports: the server listens on a free loopback port (`127.0.0.1:0`).

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Barrier};

use monitor_core::monitored;

#[monitored(category = "sql")]
fn query(release: Arc<Barrier>) {
    release.wait();
}

#[monitored(category = "queue")]
fn consume(release: Arc<Barrier>) {
    release.wait();
}

#[monitored]
fn plain(started: mpsc::Sender<()>, release: Arc<Barrier>) {
    started.send(()).unwrap();
    // A plain function that runs a query: both count, each in its category.
    query(release);
}

#[test]
fn calls_in_flight_are_counted_per_category() {
    let release = Arc::new(Barrier::new(5));
    let (tx, rx) = mpsc::channel();
    let mut threads = Vec::new();
    for _ in 0..2 {
        let (tx, r) = (tx.clone(), Arc::clone(&release));
        threads.push(std::thread::spawn(move || plain(tx, r)));
    }
    let r = Arc::clone(&release);
    threads.push(std::thread::spawn(move || query(r)));
    let r = Arc::clone(&release);
    threads.push(std::thread::spawn(move || consume(r)));
    rx.recv().unwrap();
    rx.recv().unwrap();
    // Wait until all four are inside their calls.
    let snap = loop {
        let snap = monitor_core::registry().snapshot();
        let sql = snap
            .in_flight_by_category()
            .iter()
            .find(|c| c.category == "sql")
            .map_or(0, |c| c.in_flight);
        let queue = snap
            .in_flight_by_category()
            .iter()
            .find(|c| c.category == "queue")
            .map_or(0, |c| c.in_flight);
        if sql == 3 && queue == 1 {
            break snap;
        }
        std::thread::yield_now();
    };
    let cats = snap.in_flight_by_category();
    let names: Vec<&str> = cats.iter().map(|c| c.category).collect();
    assert_eq!(names[..5], monitor_core::CATEGORIES, "the standard categories first, always");
    assert!(names.contains(&"queue"));
    let get = |name: &str| cats.iter().find(|c| c.category == name).unwrap().in_flight;
    // The test harness's own functions have no category: `plain` is the one in flight.
    assert_eq!((get("function"), get("sql"), get("queue"), get("http_client")), (2, 3, 1, 0));

    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    let text = common::get(addr, "/active").body;
    assert!(
        text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["sql", "3", "1"]),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&common::get(addr, "/active/json").body).unwrap();
    let sql = json.as_array().unwrap().iter().find(|c| c["category"] == "sql").unwrap();
    assert_eq!((sql["current"].as_u64(), sql["functions"].as_u64()), (Some(3), Some(1)));
    let stats = common::get(addr, "/stats").body;
    assert!(stats.contains("active,category=sql current 3\n"), "{stats}");
    let metrics = common::get(addr, "/metrics").body;
    assert!(metrics.contains("active_calls{category=\"sql\"} 3\n"), "{metrics}");
    common::check_with("promtool", &["check", "metrics"], &metrics);
    let index = common::get(addr, "/").body;
    let chart = index.split("<svg class=\"active\"").nth(1).expect("chart on the index");
    assert!(chart.contains("<title>sql: 3 in flight (1 function)</title>"), "{chart}");

    release.wait();
    for t in threads {
        t.join().unwrap();
    }
    let after = monitor_core::registry().snapshot().in_flight_by_category();
    assert!(after.iter().all(|c| c.category == "function" || c.in_flight == 0), "{after:?}");
}
