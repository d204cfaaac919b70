//! `/debug/vars`: expvar-style JSON, as Go's `expvar` serves it.

use std::collections::BTreeMap;

use monitor_core::{MetricValue, Snapshot};

use super::series::{key, series};
use super::writer::Json;

/// Go `runtime.MemStats` fields the Datadog agent's `go_expvar` check reads. A Rust process has
/// no garbage collector: the GC fields are zero. The allocation fields come from the counting
/// allocator when it is installed (zero otherwise); `Sys` and `HeapSys` carry the resident set
/// size of the `process` gauges (Linux, once `process::register` ran; zero otherwise).
const MEMSTATS: [&str; 13] = [
    "Alloc",
    "TotalAlloc",
    "Sys",
    "Lookups",
    "Mallocs",
    "Frees",
    "HeapAlloc",
    "HeapSys",
    "HeapIdle",
    "HeapInuse",
    "HeapReleased",
    "HeapObjects",
    "PauseTotalNs",
];

/// The resident set size from the snapshot's process gauges (read by the collector, so that
/// rendering stays a pure function of the snapshot); zero where they are not registered.
fn resident_bytes(snapshot: &Snapshot) -> u64 {
    match snapshot.metric("process", "resident_bytes").map(|m| &m.value) {
        // A byte count: whole, non-negative and far below 2^53, so the cast is exact.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(MetricValue::Gauge(v)) if v.is_finite() && *v >= 0.0 => *v as u64,
        _ => 0,
    }
}

/// `/debug/vars`: `cmdline` (the program's arguments), `memstats` (with `PauseNs` as a
/// 256-long array and `NumGC`), then every `/stats` series key as a further top-level key whose
/// object maps each field to its value.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_expvar(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.contains("\"memstats\""));
/// ```
pub fn write_expvar(snapshot: &Snapshot, out: &mut String) {
    let mut j = Json::new(out);
    j.one_per_line().begin_object();
    j.key("cmdline").begin_array();
    for arg in std::env::args_os() {
        j.str(&arg.to_string_lossy());
    }
    j.end_array();
    j.key("memstats").begin_object();
    let rss = resident_bytes(snapshot);
    let a = snapshot.alloc.unwrap_or_default();
    for field in MEMSTATS {
        let value = match field {
            "Sys" | "HeapSys" => rss,
            "Alloc" | "HeapAlloc" | "HeapInuse" => a.in_use_bytes(),
            "TotalAlloc" => a.allocated_bytes,
            "Mallocs" => a.allocations,
            "Frees" => a.frees,
            "HeapObjects" => a.live_objects(),
            _ => 0,
        };
        j.key(field).u64(value);
    }
    j.key("NumGC").u64(0);
    j.key("PauseNs").begin_array();
    for _ in 0..256 {
        j.u64(0);
    }
    j.end_array().end_object();
    let mut grouped: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for s in series(snapshot) {
        let mut k = String::new();
        key(&s, &mut k);
        grouped.entry(k).or_default().push((s.field, s.value));
    }
    for (k, fields) in grouped {
        j.key(&k).begin_object();
        for (field, v) in &fields {
            j.key(field).f64(*v);
        }
        j.end_object();
    }
    j.end_object();
    out.push('\n');
}
