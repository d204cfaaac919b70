//! The plain-text view of the function statistics (`/funcs`).

use std::fmt::Write;

use monitor_core::{Distribution, FunctionStats, Snapshot};

use super::util::{counts_line, printable, Nanos, Quantile};

/// Writes every called function of `snapshot` as text: its callers, counts, errors by kind,
/// allocations and polls when they are counted, and both latency distributions with quantiles. Functions never called are left out.
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
    let _ = writeln!(out, "[{}] {}", f.id, printable(f.name));
    let parents: Vec<_> = f.callers.iter().map(|c| printable(c.caller.name())).collect();
    let _ = writeln!(out, "  parents: {}", parents.join(", "));
    let _ = writeln!(out, "  {}", counts_line(f));
    for (kind, n) in &f.errors {
        let _ = writeln!(out, "  error {}: {n}", printable(kind));
    }
    if f.allocations > 0 {
        let (n, bytes) = f.allocations_per_call();
        let _ = writeln!(out, "  allocates: {n:.1} times, {bytes:.0} bytes per call");
    }
    if let Some(p) = &f.polls {
        let _ = writeln!(
            out,
            "  polls: {}, slow: {}, busy: {}, longest: {}",
            p.polls,
            p.slow_polls,
            Nanos(p.busy.as_nanos()),
            Nanos(p.longest.as_nanos())
        );
    }
    write_times("success times", &f.success_times, out);
    write_times("failure times", &f.failure_times, out);
}

fn write_times(title: &str, d: &Distribution, out: &mut String) {
    if d.count == 0 {
        let _ = writeln!(out, "  {title}: none");
        return;
    }
    let _ = writeln!(out, "  {title}:");
    for (q, ns) in d.quantiles() {
        let _ = writeln!(out, "    {}: {}", Quantile(q), Nanos(u128::from(ns)));
    }
    let _ = writeln!(
        out,
        "    avg: {}, recent: {}, sum: {}, count: {}",
        Nanos(d.avg_ns() as u128),
        Nanos(u128::from(d.recent_ns)),
        Nanos(d.sum_ns),
        d.count
    );
}
