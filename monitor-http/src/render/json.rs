//! `/funcs/json`: every called function as a JSON object.

use std::fmt::Write;

use monitor_core::{Distribution, FunctionStats, Snapshot};

use super::util::{json_str, Quantile};

/// `/funcs/json`: a list with one object per called function: `id`, `name`, `module`, `file`,
/// `line`, `category`, `entry`, `callers` (`[{"name", "count"}]`), `current`, `highwater`,
/// `success`, `errors` (kind → count), `panics`, `cancelled`, `allocations` and
/// `allocated_bytes` (while its calls ran; 0 without the counting allocator), and `success_times` /
/// `failure_times` (`count`, `sum_ns`, `min_ns`, `max_ns`, `avg_ns`, `recent_ns` and
/// `quantiles` keyed `"0.00"` … `"1.00"`, all integer nanoseconds).
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_funcs_json(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with('['));
/// ```
pub fn write_funcs_json(snapshot: &Snapshot, out: &mut String) {
    out.push('[');
    for (i, f) in snapshot.iter_called().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n  ");
        function(f, out);
    }
    out.push_str("\n]\n");
}

fn function(f: &FunctionStats, out: &mut String) {
    let _ = write!(out, "{{\"id\": {}, \"name\": ", f.id);
    json_str(f.name, out);
    out.push_str(", \"module\": ");
    json_str(f.module, out);
    out.push_str(", \"file\": ");
    json_str(f.file, out);
    let _ = write!(out, ", \"line\": {}, \"category\": ", f.line);
    match f.category {
        Some(c) => json_str(c, out),
        None => out.push_str("null"),
    }
    let _ = write!(out, ", \"entry\": {}, \"callers\": [", f.is_entry());
    for (i, c) in f.callers.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"name\": ");
        json_str(c.caller.name(), out);
        let _ = write!(out, ", \"count\": {}}}", c.count);
    }
    let _ = write!(
        out,
        "], \"current\": {}, \"highwater\": {}, \"success\": {}, \"errors\": {{",
        f.current, f.highwater, f.success
    );
    for (i, (kind, n)) in f.errors.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_str(kind, out);
        let _ = write!(out, ": {n}");
    }
    let _ = write!(
        out,
        "}}, \"panics\": {}, \"cancelled\": {}, \"allocations\": {}, \"allocated_bytes\": {}",
        f.panics, f.cancelled, f.allocations, f.allocated_bytes
    );
    out.push_str(", \"success_times\": ");
    times(&f.success_times, out);
    out.push_str(", \"failure_times\": ");
    times(&f.failure_times, out);
    out.push('}');
}

fn times(d: &Distribution, out: &mut String) {
    let _ = write!(
        out,
        "{{\"count\": {}, \"sum_ns\": {}, \"min_ns\": {}, \"max_ns\": {}, \"avg_ns\": {}, \
         \"recent_ns\": {}, \"quantiles\": {{",
        d.count,
        d.sum_ns,
        d.min_ns,
        d.max_ns,
        d.avg_ns().round() as u64,
        d.recent_ns
    );
    for (i, (q, ns)) in d.quantiles().iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "\"{}\": {ns}", Quantile(*q));
    }
    out.push_str("}}");
}
