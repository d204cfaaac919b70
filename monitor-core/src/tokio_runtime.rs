//! A tokio runtime's own vitals beside the process statistics (feature `tokio`): gauges of the
//! `tokio` scope, tagged `runtime=<name>`, read through tokio's stable runtime metrics.
//!
//! | gauge | what |
//! | --- | --- |
//! | `workers` | worker threads |
//! | `alive_tasks` | tasks spawned and not yet finished |
//! | `global_queue_depth` | tasks waiting in the shared queue |
//! | `busy_seconds` | time the workers spent running tasks, summed (64-bit targets) |
//! | `parks` | times the workers went to sleep for lack of work, summed (64-bit targets) |
//!
//! Steals and the runtime's own poll counts need tokio built with `--cfg tokio_unstable`; they
//! are not read here. The polls of monitored async functions, slow ones and the longest
//! among them, are counted on any executor by [poll timing](crate::polls).
//!
//! ```
//! let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
//! monitor_core::tokio_runtime::register("main", rt.handle()).unwrap();
//! let snap = monitor_core::registry().snapshot();
//! let workers = snap.metrics.iter().find(|m| m.scope == "tokio" && m.name == "workers").unwrap();
//! assert_eq!(workers.value, monitor_core::MetricValue::Gauge(2.0));
//! ```

use tokio::runtime::{Handle, RuntimeMetrics};

use crate::metrics::{MetricError, Scope};

/// How one gauge reads the runtime's metrics.
type Read = fn(&RuntimeMetrics) -> f64;

/// Registers the gauges of the runtime `handle` belongs to, tagged `runtime=name` (a later
/// registration under the same name replaces them). The gauges keep the handle, so they can be
/// read after the runtime is shut down too (then they show what it last had).
///
/// # Errors
///
/// [`MetricError::KindMismatch`] when one of the gauges' names in the `tokio` scope with this
/// tag is already another kind of instrument.
///
/// ```
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// monitor_core::tokio_runtime::register("doc", rt.handle()).unwrap();
/// ```
pub fn register(name: &str, handle: &Handle) -> Result<(), MetricError> {
    let scope = Scope::new("tokio").with_tags(&[("runtime", name)]);
    let gauges: [(&str, &str, Read); 5] = [
        ("workers", "Worker threads of the runtime.", |m| count(m.num_workers())),
        ("alive_tasks", "Tasks spawned and not yet finished.", |m| count(m.num_alive_tasks())),
        ("global_queue_depth", "Tasks waiting in the runtime's shared queue.", |m| {
            count(m.global_queue_depth())
        }),
        ("busy_seconds", "Time the workers spent running tasks, summed, in seconds.", busy),
        ("parks", "Times the workers went to sleep for lack of work, summed.", parks),
    ];
    for (gauge, help, read) in gauges {
        let handle = handle.clone();
        scope.gauge_described(gauge, Some(help), move || read(&handle.metrics()))?;
    }
    Ok(())
}

/// A count as a gauge's value (exact below 2^53).
#[allow(clippy::cast_precision_loss)]
fn count(n: usize) -> f64 {
    n as f64
}

#[cfg(target_has_atomic = "64")]
#[allow(clippy::cast_precision_loss)]
fn parks(m: &RuntimeMetrics) -> f64 {
    (0..m.num_workers()).map(|w| m.worker_park_count(w) as f64).sum()
}

#[cfg(target_has_atomic = "64")]
fn busy(m: &RuntimeMetrics) -> f64 {
    (0..m.num_workers()).map(|w| m.worker_total_busy_duration(w).as_secs_f64()).sum()
}

// Without 64-bit atomics tokio keeps no per-worker counts: the gauges show 0.
#[cfg(not(target_has_atomic = "64"))]
fn parks(_: &RuntimeMetrics) -> f64 {
    0.0
}

#[cfg(not(target_has_atomic = "64"))]
fn busy(_: &RuntimeMetrics) -> f64 {
    0.0
}
