//! `/stats` and `/stats/json`: every series of the model (see `series`), as text and JSON.

use std::fmt::Write;

use monitor_core::Snapshot;

use super::series::{key, series};
use super::writer::Json;

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
    let mut j = Json::new(out);
    j.one_per_line().begin_array();
    for s in series(snapshot) {
        j.begin_array().str(&s.measurement).begin_object();
        for (k, v) in &s.tags {
            j.key(k).str(v);
        }
        j.end_object().str(&s.field).f64(s.value).end_array();
    }
    j.end_array();
    out.push('\n');
}
