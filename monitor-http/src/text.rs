//! The plain-text view of the function statistics (`/funcs`).

use std::fmt::Write;
use std::time::Duration;

use monitor_core::{Distribution, FunctionStats, Snapshot};

/// Writes every called function of `snapshot` as text: its callers, counts, errors by kind and
/// both latency distributions with quantiles. Functions never called are left out.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_text(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.is_empty() || out.starts_with('['));
/// ```
pub fn write_text(snapshot: &Snapshot, out: &mut String) {
    for f in snapshot.iter_called() {
        write_function(f, out);
    }
}

fn write_function(f: &FunctionStats, out: &mut String) {
    // Writing to a String cannot fail.
    let _ = writeln!(out, "[{}] {}", f.id, f.name);
    let parents: Vec<&str> = f.callers.iter().map(|c| c.caller.name()).collect();
    let _ = writeln!(out, "  parents: {}", parents.join(", "));
    let _ = writeln!(
        out,
        "  current: {}, highwater: {}, success: {}, errors: {}, panics: {}, cancelled: {}",
        f.current,
        f.highwater,
        f.success,
        f.errors_total(),
        f.panics,
        f.cancelled
    );
    for (kind, n) in &f.errors {
        let _ = writeln!(out, "  error {kind}: {n}");
    }
    write_times("success times", &f.success_times, out);
    write_times("failure times", &f.failure_times, out);
}

fn write_times(title: &str, d: &Distribution, out: &mut String) {
    let _ = writeln!(out, "  {title}:");
    for (q, ns) in d.quantiles() {
        let _ = writeln!(out, "    {q:.2}: {:?}", Duration::from_nanos(ns));
    }
    let _ = writeln!(
        out,
        "    avg: {:?}, recent: {:?}, sum: {:?}, count: {}",
        Duration::from_nanos(d.avg_ns() as u64),
        Duration::from_nanos(d.recent_ns),
        Duration::from_nanos(u64::try_from(d.sum_ns).unwrap_or(u64::MAX)),
        d.count
    );
}
