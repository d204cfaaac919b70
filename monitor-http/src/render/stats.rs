//! Every statistic as a series — `measurement,tag=value,… field value` — the model behind
//! `/stats` (text) and `/stats/json`, whose names `/metrics` and `/debug/vars` reuse.

use std::fmt::Write;

use monitor_core::{Distribution, FunctionStats, Snapshot, QUANTILES};

use super::util::{json_f64, json_str};

/// One value: a measurement with sorted tags, a field and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) measurement: &'static str,
    pub(crate) tags: Vec<(&'static str, String)>,
    pub(crate) field: String,
    pub(crate) value: f64,
}

/// The field name of a quantile: `p0`, `p10`, `p25`, `p50`, …, `p99`, `p100`.
pub(crate) fn quantile_field(q: f64) -> String {
    format!("p{}", (q * 100.0).round() as u32)
}

/// The called functions with the name each view shows: their own, or `name#id` when two
/// functions of one module share a name (two sites given the same `name = "…"`), so no view
/// ever has two series with one key.
pub(crate) fn unique_names(snapshot: &Snapshot) -> Vec<(&FunctionStats, String)> {
    let mut seen = std::collections::HashSet::new();
    snapshot
        .iter_called()
        .map(|f| {
            let name = if seen.insert((f.name, f.module)) {
                f.name.to_string()
            } else {
                format!("{}#{}", f.name, f.id)
            };
            (f, name)
        })
        .collect()
}

/// Every series of the snapshot, in a stable order: per called function, its counts, its
/// errors by kind, then its success and failure times (durations in seconds).
pub(crate) fn series(snapshot: &Snapshot) -> Vec<Series> {
    let mut out = Vec::new();
    for (f, name) in unique_names(snapshot) {
        let tags = vec![("name", name), ("scope", f.module.to_string())];
        let errors = f.errors_total();
        let counts = [
            ("current", f.current),
            ("highwater", f.highwater),
            ("successes", f.success),
            ("errors", errors),
            ("panics", f.panics),
            ("cancelled", f.cancelled),
            ("failures", errors + f.panics + f.cancelled),
            ("total", f.calls()),
        ];
        for (field, v) in counts {
            out.push(Series {
                measurement: "function",
                tags: tags.clone(),
                field: field.to_string(),
                value: v as f64,
            });
        }
        for (kind, n) in &f.errors {
            let mut t = vec![("error_name", kind.to_string())];
            t.extend(tags.iter().cloned());
            out.push(Series {
                measurement: "function",
                tags: t,
                field: "count".to_string(),
                value: *n as f64,
            });
        }
        for (kind, d) in [("success", &f.success_times), ("failure", &f.failure_times)] {
            let mut t = vec![("kind", kind.to_string())];
            t.extend(tags.iter().cloned());
            times(&t, d, &mut out);
        }
    }
    out
}

fn times(tags: &[(&'static str, String)], d: &Distribution, out: &mut Vec<Series>) {
    let secs = |ns: f64| ns / 1e9;
    let mut push = |field: String, value: f64| {
        out.push(Series { measurement: "function_times", tags: tags.to_vec(), field, value });
    };
    push("count".into(), d.count as f64);
    if d.count == 0 {
        return;
    }
    push("sum".into(), secs(d.sum_ns as f64));
    push("min".into(), secs(d.min_ns as f64));
    push("max".into(), secs(d.max_ns as f64));
    push("avg".into(), secs(d.avg_ns()));
    push("recent".into(), secs(d.recent_ns as f64));
    for (q, ns) in d.quantiles() {
        push(quantile_field(q), secs(ns as f64));
    }
    debug_assert_eq!(QUANTILES.len(), 9);
}

/// Escapes a tag key or value as monkit's line format does: `,`, `=`, space and `\`.
fn escape_tag(s: &str, out: &mut String) {
    for c in s.chars() {
        if matches!(c, ',' | '=' | ' ' | '\\') {
            out.push('\\');
        }
        if c == '\n' {
            out.push_str("\\n");
        } else {
            out.push(c);
        }
    }
}

/// The series key, `measurement,tag=value,…`, as `/stats` shows it.
pub(crate) fn key(s: &Series, out: &mut String) {
    out.push_str(s.measurement);
    for (k, v) in &s.tags {
        out.push(',');
        escape_tag(k, out);
        out.push('=');
        escape_tag(v, out);
    }
}

/// `/stats`: one `measurement,tag=value,… field value` line per series.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_stats_text(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.lines().all(|l| l.split(' ').count() >= 3));
/// ```
pub fn write_stats_text(snapshot: &Snapshot, out: &mut String) {
    for s in series(snapshot) {
        key(&s, out);
        let _ = writeln!(out, " {} {}", s.field, finite(s.value));
    }
}

fn finite(v: f64) -> f64 {
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

/// `/stats/json`: a list of `[measurement, {tags}, field, value]`. Never NaN or infinity.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_stats_json(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with('[') && out.ends_with("]\n"));
/// ```
pub fn write_stats_json(snapshot: &Snapshot, out: &mut String) {
    out.push('[');
    for (i, s) in series(snapshot).iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("\n  [");
        json_str(s.measurement, out);
        out.push_str(", {");
        for (j, (k, v)) in s.tags.iter().enumerate() {
            if j > 0 {
                out.push_str(", ");
            }
            json_str(k, out);
            out.push_str(": ");
            json_str(v, out);
        }
        out.push_str("}, ");
        json_str(&s.field, out);
        out.push_str(", ");
        json_f64(s.value, out);
        out.push(']');
    }
    out.push_str("\n]\n");
}
