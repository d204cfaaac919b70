//! The background collector: one thread that samples what needs sampling (meter totals for
//! their rates, process statistics) every few seconds. Reading statistics never waits for it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Once;
use std::time::{Duration, Instant};

/// The collector's period in milliseconds.
static INTERVAL_MS: AtomicU64 = AtomicU64::new(5_000);

/// Sets how often the background collector samples (default 5 s; at least 100 ms).
///
/// ```
/// monitor_core::set_collect_interval(std::time::Duration::from_secs(1));
/// ```
pub fn set_collect_interval(every: Duration) {
    let ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(100);
    INTERVAL_MS.store(ms, Relaxed);
}

/// Starts the collector thread, once per process.
pub(crate) fn ensure_running() {
    static START: Once = Once::new();
    START.call_once(|| {
        // If the thread cannot start, rates are still sampled at every read.
        let _ = std::thread::Builder::new().name("monitor-collector".into()).spawn(|| loop {
            std::thread::sleep(Duration::from_millis(INTERVAL_MS.load(Relaxed)));
            collect(Instant::now());
        });
    });
}

fn collect(now: Instant) {
    crate::metrics::sample_meters(now);
    crate::process::sample();
    crate::history::sample(now);
}
