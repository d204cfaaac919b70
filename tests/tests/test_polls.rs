//! Poll timing of monitored async functions on a real tokio runtime: exact poll counts per
//! function from many tasks on two workers, a poll that blocks its thread found as slow and
//! longest, nothing counted while timing is off, and the counts in `/funcs/json` and
//! `/metrics` (checked with promtool).
//!
//! One test function: the switch is process-wide. Clocks: a blocking sleep sets a lower bound
//! on the slow poll's time; no upper bound on any time is asserted.

mod common;

use std::time::Duration;

#[monitor_core::monitored(name = "polls::yields")]
async fn yields(times: u32) -> u32 {
    for _ in 0..times {
        tokio::task::yield_now().await;
    }
    times
}

#[monitor_core::monitored(name = "polls::blocks")]
async fn blocks() {
    tokio::task::yield_now().await;
    // The bug poll timing finds: a blocking call inside an async function.
    std::thread::sleep(Duration::from_millis(3));
}

#[monitor_core::monitored(name = "polls::sync")]
fn sync_fn() {}

fn function(name: &str) -> monitor_core::FunctionStats {
    monitor_core::registry().snapshot().function(name).cloned().unwrap()
}

#[test]
fn polls_are_counted_exactly_while_switched_on() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();

    // Off: calls are counted, polls are not.
    rt.block_on(yields(3));
    let off = function("polls::yields");
    assert_eq!(off.success, 1);
    assert_eq!(off.polls, None, "nothing timed while off");

    monitor_core::polls::set_enabled(true);
    let tasks: Vec<_> = (0..50u32).map(|i| rt.spawn(yields(i % 5))).collect();
    rt.block_on(async {
        for t in tasks {
            t.await.unwrap();
        }
    });
    rt.block_on(blocks());
    sync_fn();
    monitor_core::polls::set_enabled(false);
    // Off again: this call's polls are not counted.
    rt.block_on(yields(4));

    let f = function("polls::yields");
    let polls = f.polls.expect("timed");
    // A call yielding k times is polled k + 1 times: 10 calls of each k in 0..5.
    let expected: u64 = (0..50u64).map(|i| i % 5 + 1).sum();
    assert_eq!(polls.polls, expected);
    assert_eq!(f.success, 52);
    assert!(polls.longest <= polls.busy);
    assert!(polls.busy <= Duration::from_nanos(f.success_times.sum_ns as u64));

    let b = function("polls::blocks").polls.expect("timed");
    assert_eq!(b.polls, 2);
    assert!(b.slow_polls >= 1, "{b:?}");
    assert!(b.longest >= Duration::from_millis(3), "{b:?}");
    assert_eq!(function("polls::sync").polls, None, "sync functions are not polled");

    let snap = monitor_core::registry().snapshot();
    let mut json = String::new();
    monitor_http::write_functions_json(&snap, &mut json);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let entry =
        |name: &str| v.as_array().unwrap().iter().find(|f| f["name"] == name).cloned().unwrap();
    assert_eq!(entry("polls::yields")["polls"]["count"], expected);
    assert!(entry("polls::blocks")["polls"]["longest_ns"].as_u64().unwrap() >= 3_000_000);
    assert!(entry("polls::sync").get("polls").is_none());

    let mut prom = String::new();
    monitor_http::write_prometheus(
        &snap,
        &monitor_http::Buckets::default(),
        monitor_http::ExpositionFormat::Prometheus,
        &mut prom,
    );
    let line =
        format!("function_polls_total{{name=\"polls::yields\",scope=\"test_polls\"}} {expected}\n");
    assert!(prom.contains(&line), "{prom}");
    assert!(prom.contains("function_longest_poll_seconds{name=\"polls::blocks\""), "{prom}");
    assert!(!prom.contains("function_polls_total{name=\"polls::sync\""), "{prom}");
    common::check_with("promtool", &["check", "metrics"], &prom);
}
