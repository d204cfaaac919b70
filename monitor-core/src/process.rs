//! Process statistics — uptime, threads, open files, memory, CPU time, page faults, context
//! switches — as gauges of the `process` scope (tagged with the executable's name).
//!
//! On Linux they come from `/proc/self/stat`, `/proc/self/status` and `/proc/self/fd`; the
//! background collector reads them every few seconds (see
//! [`set_collect_interval`](crate::set_collect_interval)) into atomics, so a snapshot never
//! touches the file system. Elsewhere only `uptime_seconds` is available.
//!
//! ```
//! monitor_core::process::register();
//! let snap = monitor_core::registry().snapshot();
//! let uptime = snap.metric("process", "uptime_seconds").unwrap();
//! assert!(matches!(uptime.value, monitor_core::MetricValue::Gauge(s) if s >= 0.0));
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;
use std::time::Instant;

use crate::metrics::Scope;

/// The statistics, in the order of [`FIELDS`].
const N: usize = 11;

/// Name and description of each statistic.
const FIELDS: [(&str, &str); N] = [
    ("uptime_seconds", "Seconds since the process started."),
    ("threads", "Threads of the process."),
    ("open_fds", "Open file descriptors."),
    ("resident_bytes", "Resident set size (memory in RAM), in bytes."),
    ("virtual_bytes", "Virtual memory size, in bytes."),
    ("cpu_user_seconds", "CPU time spent in user mode, in seconds."),
    ("cpu_system_seconds", "CPU time spent in the kernel, in seconds."),
    ("minor_page_faults", "Page faults served without I/O."),
    ("major_page_faults", "Page faults that needed I/O."),
    ("voluntary_context_switches", "Context switches the process asked for (it waited)."),
    ("involuntary_context_switches", "Context switches forced on the process (preempted)."),
];

struct State {
    started: Instant,
    /// The latest sample, as f64 bits; NaN bits where the platform does not say.
    values: [AtomicU64; N],
}

static STATE: OnceLock<State> = OnceLock::new();
static REGISTERED: AtomicBool = AtomicBool::new(false);

/// Registers the process statistics as gauges of the `process` scope, tagged
/// `exe=<executable name>`, and starts the collector that samples them. Calling it again does
/// nothing.
///
/// ```
/// monitor_core::process::register();
/// monitor_core::process::register();
/// ```
pub fn register() {
    let state = STATE.get_or_init(|| State {
        started: process_start().unwrap_or_else(Instant::now),
        values: std::array::from_fn(|_| AtomicU64::new(f64::NAN.to_bits())),
    });
    if REGISTERED.swap(true, Relaxed) {
        return;
    }
    sample();
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown".to_string());
    let scope = Scope::new("process").with_tags(&[("exe", &exe)]);
    for (i, (name, help)) in FIELDS.iter().enumerate() {
        let state: &'static State = state;
        let read = move || {
            if i == 0 {
                return state.started.elapsed().as_secs_f64();
            }
            f64::from_bits(state.values[i].load(Relaxed))
        };
        // Only what the platform reports becomes a gauge.
        if i == 0 || !read().is_nan() {
            let _ = scope.gauge_described(name, Some(help), read);
        }
    }
    crate::collector::add_sampler("process", |_| sample());
}

/// Reads the process statistics into the atomics the gauges show (the collector's job).
pub(crate) fn sample() {
    let Some(state) = STATE.get() else { return };
    if let Some(values) = read_proc() {
        for (cell, v) in state.values.iter().zip(values) {
            if let Some(v) = v {
                cell.store(v.to_bits(), Relaxed);
            }
        }
    }
}

/// Clock ticks per second of `/proc` times: USER_HZ, fixed at 100 by Linux's user ABI.
const TICKS: f64 = 100.0;

fn read_proc() -> Option<[Option<f64>; N]> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // `f[0]` is field 3 (state) of proc(5), so field n is `f[n - 3]`.
    let field = |n: usize| f.get(n - 3).and_then(|s| s.parse::<f64>().ok());
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let status_field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
    Some([
        None,
        field(20),
        fds,
        status_field("VmRSS:").map(|kb| kb * 1024.0),
        status_field("VmSize:").map(|kb| kb * 1024.0),
        field(14).map(|t| t / TICKS),
        field(15).map(|t| t / TICKS),
        field(10),
        field(12),
        status_field("voluntary_ctxt_switches:"),
        status_field("nonvoluntary_ctxt_switches:"),
    ])
}

/// When the process started: from `/proc` on Linux, elsewhere the first time this was asked.
/// Cumulative metrics count from it.
///
/// ```
/// let started = monitor_core::process::started_at();
/// assert!(started <= std::time::SystemTime::now());
/// ```
pub fn started_at() -> std::time::SystemTime {
    static AT: std::sync::OnceLock<std::time::SystemTime> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        let now = std::time::SystemTime::now();
        process_start().map_or(now, |start| now - start.elapsed())
    })
}

/// When the process started, from its start time in `/proc` (ticks after boot) and the
/// system's uptime.
fn process_start() -> Option<Instant> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 =
        std::fs::read_to_string("/proc/uptime").ok()?.split_whitespace().next()?.parse().ok()?;
    let age = (uptime - start_ticks / TICKS).max(0.0);
    Instant::now().checked_sub(std::time::Duration::from_secs_f64(age))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn proc_reads_real_values() {
        let v = read_proc().unwrap();
        let threads = v[1].unwrap();
        assert!(threads >= 1.0);
        assert!(v[2].unwrap() >= 3.0, "stdin, stdout, stderr at least");
        assert!(v[3].unwrap() > 1e6, "resident memory");
        assert!(v[4].unwrap() >= v[3].unwrap());
        assert!(v[5].unwrap() >= 0.0 && v[6].unwrap() >= 0.0);
        assert!(v[9].unwrap() >= 0.0);
        let start = process_start().unwrap();
        assert!(start.elapsed().as_secs() < 3600, "started recently");
    }
}
