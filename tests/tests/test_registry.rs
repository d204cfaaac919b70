//! The registry knows every site up front; snapshots are plain, ordered data.
//!
//! Wall clock: real sleeps, checked only against the lower bounds a sleep guarantees.

use std::time::Duration;

use monitor_core::{monitored, registry, QUANTILES};

#[monitored(name = "registry::never_called", category = "socket")]
#[allow(dead_code)]
fn never_called() {}

#[monitored]
#[allow(dead_code)]
fn never_called_generic<T: Default>() -> T {
    T::default()
}

#[monitored]
fn sleeper(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

#[test]
fn never_called_functions_are_listed_with_zero_counts() {
    let snap = registry().snapshot();
    let f = snap.function("registry::never_called").unwrap();
    assert_eq!((f.calls(), f.in_flight, f.highwater), (0, 0, 0));
    assert_eq!(f.category, Some("socket"));
    assert!(f.callers.is_empty());
    assert_eq!(f.success_times.count, 0);
    assert!(f.file.ends_with("test_registry.rs"));
    assert_eq!(f.line, 11, "the line of the function's name");
    assert!(snap.function("test_registry::never_called_generic").is_some());
    assert!(snap.iter_called().all(|f| f.name != "registry::never_called"));
}

#[test]
fn order_and_ids_are_stable() {
    let a = registry().snapshot();
    let b = registry().snapshot();
    let names = |s: &monitor_core::Snapshot| s.functions.iter().map(|f| f.name).collect::<Vec<_>>();
    assert_eq!(names(&a), names(&b));
    let mut sorted = names(&a);
    sorted.sort_unstable();
    assert_eq!(names(&a), sorted);
    for (i, f) in a.functions.iter().enumerate() {
        assert_eq!(f.id, i);
    }
}

#[test]
fn distributions_describe_real_durations() {
    for ms in [1, 2, 3, 20] {
        sleeper(ms);
    }
    let snap = registry().snapshot();
    let d = &snap.function("test_registry::sleeper").unwrap().success_times;
    assert_eq!(d.count, 4);
    // Sleeps last at least as long as asked; no upper bound is assumed on a shared machine.
    assert!(d.min_ns >= 1_000_000);
    assert!(d.max_ns >= 20_000_000);
    assert!(d.recent_ns >= 20_000_000);
    assert!(d.sum_ns >= 26_000_000);
    assert!(d.avg_ns() >= 6_500_000.0);
    let q = d.quantiles();
    assert_eq!(q.len(), QUANTILES.len());
    assert_eq!(q[0].1, d.min_ns);
    assert_eq!(q[8].1, d.max_ns);
    assert!(q.windows(2).all(|w| w[0].1 <= w[1].1), "quantiles are monotone: {q:?}");
}
