//! The demo service under traffic: what the monitor records matches what the clients saw.
//!
//! Wall clock: clients give up after 60 ms, so how many calls are cancelled depends on the
//! machine; the test checks that the monitor's counts equal what the clients saw, whatever that
//! was.

use std::sync::Arc;
use std::time::Duration;

use monitor_core::registry;
use monitor_examples::vlite::{traffic, Proxy};

#[test]
fn monitor_agrees_with_the_clients() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    std::panic::set_hook(Box::new(|_| {}));
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let proxy = Arc::new(Proxy::new(7));
    let tally = rt.block_on(traffic(proxy, 400, 32, Duration::from_millis(60), 11));
    let _ = std::panic::take_hook();
    assert_eq!(tally.ok + tally.errors + tally.panics + tally.timeouts, 400);
    assert!(tally.ok > 0 && tally.errors > 0, "{tally:?}");

    let snap = registry().snapshot();
    let f = |name: &str| {
        snap.function(&format!("monitor_examples::vlite::{name}"))
            .unwrap_or_else(|| panic!("no {name}"))
    };
    let handle = f("Proxy::handle");
    assert_eq!(handle.success, tally.ok);
    assert_eq!(handle.errors_total(), tally.errors);
    assert_eq!(handle.panics, tally.panics);
    assert_eq!(handle.cancelled, tally.timeouts);
    assert_eq!(handle.in_flight, 0);
    assert_eq!(handle.calls_from("entry"), 400);
    assert!(handle.error("Unauthorized") > 0);

    let authorize = f("Proxy::authorize");
    assert_eq!(authorize.calls(), 400);
    assert_eq!(authorize.error("Unauthorized"), handle.error("Unauthorized"));

    let fetch = f("Upstream::fetch");
    assert_eq!(fetch.calls_from("monitor_examples::vlite::Proxy::handle"), fetch.calls());
    assert_eq!(fetch.category, Some("http_client"));
    let connect = f("Upstream::connect");
    assert_eq!(connect.category, Some("socket"));
    assert_eq!(connect.calls_from("monitor_examples::vlite::Upstream::fetch"), connect.calls());
    assert_eq!(connect.calls(), fetch.calls());
    // Every upstream error reaches the handler, except those of calls the client abandoned.
    assert!(handle.error("NotFound") + handle.error("Upstream") <= fetch.errors_total());

    let render = f("render");
    assert_eq!(render.panics, tally.panics, "every panic comes from render");
    assert_eq!(render.calls_from("monitor_examples::vlite::Proxy::handle"), render.calls());

    // The proxy's own metrics agree too.
    let metric = |name: &str| {
        snap.metric("vlite", name).unwrap_or_else(|| panic!("no {name}")).value.clone()
    };
    // Users by token: up to one per request with a token (most tokens are drawn from 1,000).
    match metric("unique_users") {
        monitor_core::MetricValue::Gauge(users) => {
            assert!((100.0..=400.0).contains(&users), "unique users {users}");
        }
        other => panic!("unique_users is {other:?}"),
    }
    match metric("proxy_metrics.in_flight") {
        // Back to zero however requests ended (errors, panics, timeouts); up to 32 at once.
        monitor_core::MetricValue::Counter { value, high, low } => {
            assert_eq!((value, low), (0, 0));
            assert!((1..=32).contains(&high), "high {high}");
        }
        other => panic!("{other:?}"),
    }
    match metric("proxy_metrics.response_bytes") {
        monitor_core::MetricValue::IntVal(v) => assert_eq!(v.count, tally.ok),
        other => panic!("{other:?}"),
    }

    let mut text = String::new();
    monitor_http::write_text(&snap, &mut text);
    assert!(text.contains("] monitor_examples::vlite::Proxy::handle\n  parents: entry\n"));
    assert!(text.contains(&format!("error Unauthorized: {}", handle.error("Unauthorized"))));
}
