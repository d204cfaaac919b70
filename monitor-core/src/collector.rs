//! The background collector: one thread that runs the samplers other parts of the crate hand
//! it (meter totals for their rates, process statistics, the history) every few seconds. It
//! knows none of them by name. Reading statistics never waits for it.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

/// Something to run at every tick, with the tick's time.
pub(crate) type Sampler = fn(Instant);

/// The samplers, by name (a part adds its own once).
static SAMPLERS: Mutex<Vec<(&'static str, Sampler)>> = Mutex::new(Vec::new());

/// Runs `sampler` at every tick from now on (once per `name`), and starts the collector.
pub(crate) fn add_sampler(name: &'static str, sampler: Sampler) {
    {
        let mut samplers = SAMPLERS.lock().unwrap_or_else(PoisonError::into_inner);
        if !samplers.iter().any(|(n, _)| *n == name) {
            samplers.push((name, sampler));
        }
    }
    ensure_running();
}

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
fn ensure_running() {
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
    // Copied out, so a sampler may add another without waiting on the lock.
    let samplers: Vec<Sampler> =
        SAMPLERS.lock().unwrap_or_else(PoisonError::into_inner).iter().map(|(_, s)| *s).collect();
    for sample in samplers {
        sample(now);
    }
}
