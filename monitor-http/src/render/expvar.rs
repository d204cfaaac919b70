//! `/debug/vars`: expvar-style JSON, as Go's `expvar` serves it.

use std::collections::BTreeMap;

use monitor_core::Snapshot;

use super::stats::{key, series};
use super::util::{json_f64, json_str};

/// Go `runtime.MemStats` fields the Datadog agent's `go_expvar` check reads. A Rust process has
/// no garbage collector: the GC fields are zero. The allocation fields come from the counting
/// allocator when it is installed (zero otherwise); `Sys` and `HeapSys` carry the resident set
/// size on Linux.
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

fn resident_bytes() -> u64 {
    // statm's second field: resident pages.
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096
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
    out.push_str("{\n\"cmdline\": [");
    for (i, arg) in std::env::args_os().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_str(&arg.to_string_lossy(), out);
    }
    out.push_str("],\n\"memstats\": {");
    let rss = resident_bytes();
    let a = snapshot.alloc.unwrap_or_default();
    for (i, field) in MEMSTATS.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        json_str(field, out);
        let value = match *field {
            "Sys" | "HeapSys" => rss,
            "Alloc" | "HeapAlloc" | "HeapInuse" => a.in_use_bytes(),
            "TotalAlloc" => a.allocated_bytes,
            "Mallocs" => a.allocations,
            "Frees" => a.frees,
            "HeapObjects" => a.live_objects(),
            _ => 0,
        };
        out.push_str(&format!(": {value}"));
    }
    out.push_str(", \"NumGC\": 0, \"PauseNs\": [");
    out.push_str(&vec!["0"; 256].join(","));
    out.push_str("]}");
    let mut grouped: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for s in series(snapshot) {
        let mut k = String::new();
        key(&s, &mut k);
        grouped.entry(k).or_default().push((s.field, s.value));
    }
    for (k, fields) in grouped {
        out.push_str(",\n");
        json_str(&k, out);
        out.push_str(": {");
        for (i, (field, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json_str(field, out);
            out.push_str(": ");
            json_f64(*v, out);
        }
        out.push('}');
    }
    out.push_str("\n}\n");
}
