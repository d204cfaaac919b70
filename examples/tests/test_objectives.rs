//! The demo declares objectives, and its traffic breaks the proxy's.
//!
//! Wall clock: clients give up after 5 s, far above any call here, so no call is cancelled.

use std::sync::Arc;
use std::time::Duration;

use monitor_examples::vlite::{traffic, Proxy};

/// The demo's traffic breaks the proxy's objective: its budget is overspent and it would page.
#[test]
fn the_demo_breaks_the_proxy_objective() {
    std::panic::set_hook(Box::new(|_| {}));
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let tally = rt.block_on(traffic(Arc::new(Proxy::new(3)), 300, 32, Duration::from_secs(5), 5));
    let _ = std::panic::take_hook();
    let status = monitor_core::objective_status();
    let handle = status
        .iter()
        .find(|o| o.name == "monitor_examples::vlite::Proxy::handle")
        .expect("Proxy::handle declares an objective");
    let success = &handle.indicators[0];
    assert_eq!(success.sli, monitor_core::Sli::Success);
    assert!(success.over_window.calls >= 300, "{success:?}");
    assert_eq!(success.over_window.bad, tally.errors + tally.panics);
    assert!(success.budget_remaining < 0.0 && success.page, "{success:?}");
}
