//! Instruments, scopes, `#[derive(Metrics)]` and process statistics, as users reach them.
//!
//! Scheduling: the threaded tests join every thread before they count, so any interleaving gives
//! the same numbers; process statistics are read from the real `/proc`.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use monitor_core::{
    registry, BoolVal, Counter, DurationVal, Event, FloatVal, IntVal, Meter, MetricError,
    MetricKind, MetricValue, Metrics, Scope, Timer,
};

#[test]
fn every_instrument_shows_in_the_snapshot() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    let scope = Scope::new("test_metrics::all");
    let c = scope.counter("conns");
    c.add(3);
    c.dec();
    let m = scope.meter("bytes");
    m.mark(1000);
    scope.event("flushes").mark();
    let iv = scope.int_val("batch");
    for n in [1, 2, 3, 100] {
        iv.observe(n);
    }
    scope.float_val("ratio").observe(0.25);
    let b = scope.bool_val("hit");
    b.observe(true);
    b.observe(false);
    b.observe(true);
    scope.duration_val("wait").observe(Duration::from_millis(4));
    let t = scope.timer("flush_time");
    t.start().stop();
    scope.gauge("temperature", || 21.5).unwrap();

    let snap = registry().snapshot();
    let get = |name: &str| snap.metric("test_metrics::all", name).unwrap().value.clone();
    assert_eq!(get("conns"), MetricValue::Counter { value: 2, high: 3, low: 0 });
    match get("bytes") {
        MetricValue::Meter { total, rate } => assert!(total == 1000 && rate >= 0.0),
        other => panic!("{other:?}"),
    }
    assert!(matches!(get("flushes"), MetricValue::Event { total: 1, .. }));
    match get("batch") {
        MetricValue::IntVal(v) => {
            assert_eq!((v.count, v.sum, v.min, v.max, v.recent), (4, 106.0, 1.0, 100.0, 100.0));
            assert_eq!(v.avg(), 26.5);
            assert_eq!(v.quantile(0.5), 2.0);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(get("ratio"), MetricValue::FloatVal(v) if v.max == 0.25));
    assert_eq!(get("hit"), MetricValue::BoolVal { trues: 2, falses: 1, recent: Some(true) });
    assert!(matches!(get("wait"), MetricValue::DurationVal(d) if d.max_ns == 4_000_000));
    assert!(matches!(get("flush_time"), MetricValue::Timer(d) if d.count == 1));
    assert_eq!(get("temperature"), MetricValue::Gauge(21.5));
}

#[test]
fn names_are_got_or_created_and_kinds_guarded() {
    let scope = Scope::new("test_metrics::names");
    scope.counter("x").inc();
    scope.counter("x").inc();
    assert_eq!(scope.counter("x").value(), 2, "the same counter");
    let tagged = scope.with_tags(&[("shard", "1")]);
    tagged.counter("x").inc();
    assert_eq!(tagged.counter("x").value(), 1, "tags make another series");
    assert_eq!(
        scope.try_int_val("x").unwrap_err(),
        MetricError::KindMismatch { existing: MetricKind::Counter, requested: MetricKind::IntVal }
    );
    assert_eq!(scope.try_counter("").unwrap_err(), MetricError::EmptyName);
    assert!(scope.try_counter("").unwrap_err().to_string().contains("non-empty"));
    // The infallible form hands back a working, unregistered instrument.
    let detached = scope.meter("x");
    detached.mark(5);
    assert_eq!(detached.total(), 5);
    assert!(matches!(
        registry().snapshot().metric("test_metrics::names", "x").unwrap().value,
        MetricValue::Counter { value: 2, .. }
    ));
    assert!(scope.gauge("x", || 1.0).is_err());
}

#[test]
fn gauges_never_break_a_snapshot() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    let scope = Scope::new("test_metrics::gauges");
    scope.gauge("nan", || f64::NAN).unwrap();
    scope.gauge("panics", || panic!("broken gauge")).unwrap();
    std::panic::set_hook(Box::new(|_| {}));
    let snap = registry().snapshot();
    let _ = std::panic::take_hook();
    assert_eq!(snap.metric("test_metrics::gauges", "nan").unwrap().value, MetricValue::Gauge(0.0));
    assert_eq!(
        snap.metric("test_metrics::gauges", "panics").unwrap().value,
        MetricValue::Gauge(0.0)
    );
    scope.gauge("nan", || 7.0).unwrap();
    assert_eq!(
        registry().snapshot().metric("test_metrics::gauges", "nan").unwrap().value,
        MetricValue::Gauge(7.0),
        "re-registering replaces"
    );
}

#[test]
fn instruments_are_exact_under_threads() {
    let scope = Scope::new("test_metrics::mt");
    let (c, m, v, b, d) = (
        scope.counter("c"),
        scope.meter("m"),
        scope.int_val("v"),
        scope.bool_val("b"),
        scope.duration_val("d"),
    );
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let (c, m, v, b, d) = (c.clone(), m.clone(), v.clone(), b.clone(), d.clone());
            thread::spawn(move || {
                for i in 0..5_000i64 {
                    c.inc();
                    if i % 2 == 0 {
                        c.dec();
                    }
                    m.mark(2);
                    v.observe(i * (t + 1));
                    b.observe(i % 3 == 0);
                    d.observe(Duration::from_nanos(i as u64));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(c.value(), 8 * 2_500);
    assert_eq!(m.total(), 8 * 5_000 * 2);
    let s = v.stats();
    assert_eq!(s.count, 40_000);
    assert_eq!(s.sum, (1..=8).map(|k| k * (0..5_000i64).sum::<i64>()).sum::<i64>() as f64);
    assert_eq!(b.trues() + b.falses(), 40_000);
    assert_eq!(b.trues(), 8 * (0..5_000).filter(|i| i % 3 == 0).count() as u64);
    let ds = d.stats();
    assert_eq!((ds.count, ds.sum_ns), (40_000, 8 * (0..5_000u128).sum::<u128>()));
}

/// Requests served by the API.
#[derive(Metrics)]
struct Api {
    /// Requests received.
    requests: Counter,
    /// Time to answer.
    latency: Timer,
    #[metric(name = "payload_bytes", tags(direction = "in"))]
    payload: IntVal,
    #[metric(skip)]
    #[allow(dead_code)]
    name: String,
    cache: Cache,
}

#[derive(Metrics)]
#[metric(prefix = "")]
struct Cache {
    hits: BoolVal,
    evictions: Event,
    load: FloatVal,
    fill: DurationVal,
    traffic: Meter,
}

#[test]
fn derive_registers_every_field() {
    let api = Api::register(&Scope::new("test_metrics::derive"));
    api.requests.inc();
    api.payload.observe(10);
    api.cache.hits.observe(true);
    api.cache.load.observe(0.5);
    api.cache.fill.observe(Duration::from_micros(3));
    api.cache.traffic.mark(1);
    api.latency.start().stop();
    let again = Api::register(&Scope::new("test_metrics::derive"));
    again.requests.inc();
    assert_eq!(api.requests.value(), 2, "registering twice shares the instruments");

    let snap = registry().snapshot();
    let m = |name: &str| {
        snap.metric("test_metrics::derive", name).unwrap_or_else(|| panic!("no {name}"))
    };
    assert_eq!(m("api.requests").description.as_deref(), Some("Requests received."));
    assert_eq!(m("api.requests").value, MetricValue::Counter { value: 2, high: 2, low: 0 });
    assert_eq!(m("api.payload_bytes").tags, vec![("direction".to_string(), "in".to_string())]);
    assert!(matches!(m("api.latency").value, MetricValue::Timer(ref d) if d.count == 1));
    for nested in [
        "api.cache.hits",
        "api.cache.evictions",
        "api.cache.load",
        "api.cache.fill",
        "api.cache.traffic",
    ] {
        assert!(snap.metric("test_metrics::derive", nested).is_some(), "{nested}");
    }
    let in_module = Cache::register_in_module();
    in_module.evictions.mark();
    assert!(
        registry().snapshot().metric("test_metrics", "hits").is_some(),
        "prefix \"\" and the module's scope"
    );
}

#[test]
fn process_stats_have_real_values() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    monitor_core::process::register();
    let snap = registry().snapshot();
    let gauge = |name: &str| match snap.metric("process", name).map(|m| &m.value) {
        Some(MetricValue::Gauge(v)) => *v,
        other => panic!("{name}: {other:?}"),
    };
    assert!(gauge("uptime_seconds") >= 0.0);
    if cfg!(target_os = "linux") {
        assert!(gauge("threads") >= 1.0);
        assert!(gauge("open_fds") >= 3.0);
        assert!(gauge("resident_bytes") > 1_000_000.0);
        assert!(gauge("virtual_bytes") >= gauge("resident_bytes"));
        assert!(gauge("cpu_user_seconds") >= 0.0);
        assert!(gauge("voluntary_context_switches") >= 0.0);
        let exe = &snap.metric("process", "threads").unwrap().tags[0];
        assert_eq!(exe.0, "exe");
        assert!(exe.1.starts_with("test_metrics"));
    }
}

#[test]
fn instruments_render_in_every_view() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    let scope = Scope::new("test_metrics::views").with_tags(&[("region", "eu \"west\"")]);
    scope.counter("open").add(4);
    scope.int_val("size.bytes").observe(128);
    scope.meter("sent").mark(9);
    scope.bool_val("ok").observe(true);
    scope.timer("step").start().stop();
    let snap = Arc::new(registry().snapshot());
    let mut stats = String::new();
    monitor_http::write_stats_text(&snap, &mut stats);
    assert!(
        stats.contains("open,region=eu\\ \"west\",scope=test_metrics::views value 4\n"),
        "{stats}"
    );
    assert!(stats.contains("size.bytes,region=eu\\ \"west\",scope=test_metrics::views p50 "));
    let mut prom = String::new();
    monitor_http::write_prometheus(
        &snap,
        &monitor_http::Buckets::default(),
        monitor_http::ExpositionFormat::Prometheus,
        &mut prom,
    );
    assert!(
        prom.contains("open{region=\"eu \\\"west\\\"\",scope=\"test_metrics::views\"} 4\n"),
        "{prom}"
    );
    assert!(prom.contains("# TYPE size_bytes summary\n"));
    assert!(prom.contains("size_bytes{region=\"eu \\\"west\\\"\",scope=\"test_metrics::views\",quantile=\"0.5\"} 128\n"));
    assert!(prom.contains("# TYPE sent_total counter\n"));
    assert!(prom.contains("# TYPE ok_true_total counter\n"));
    assert!(prom.contains("# TYPE step_seconds summary\n"));
    common::check_with("promtool", &["check", "metrics"], &prom);
    let mut json = String::new();
    monitor_http::write_stats_json(&snap, &mut json);
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r[0] == "sent" && r[2] == "total" && r[3] == 9));
}
