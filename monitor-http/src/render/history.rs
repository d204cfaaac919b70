//! The collector's history: `/history/json`, and small SVG charts for the index page.

use std::fmt::Write;

use monitor_core::HistoryPoint;

use super::util::{html, Nanos};
use super::writer::Json;

/// `/history/json`: the points, oldest first: `{"unix_s", "calls_per_s", "errors_per_s",
/// "p99_ns", "in_flight": {category: n}, "unique_users"}`.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_history_json(&[], &mut out);
/// assert_eq!(out.trim(), "[]");
/// ```
pub fn write_history_json(points: &[HistoryPoint], out: &mut String) {
    let mut j = Json::new(out);
    j.one_per_line().begin_array();
    for p in points {
        j.begin_object();
        j.key("unix_s").u64(p.unix_s);
        j.key("calls_per_s").f64(p.calls_per_s);
        j.key("errors_per_s").f64(p.errors_per_s);
        j.key("p99_ns").u64(p.p99_ns);
        j.key("in_flight").begin_object();
        for (category, n) in &p.in_flight {
            j.key(category).u64(*n);
        }
        j.end_object();
        j.key("unique_users");
        match p.unique_users {
            Some(u) => j.f64(u),
            None => j.null(),
        };
        j.end_object();
    }
    j.end_array();
    out.push('\n');
}

const W: f64 = 260.0;
const H: f64 = 56.0;

/// One sparkline: a title with the latest value, a polyline scaled to the maximum.
pub(crate) fn chart(title: &str, values: &[f64], show: &dyn Fn(f64) -> String, out: &mut String) {
    let max = values.iter().copied().fold(0.0f64, f64::max);
    let latest = values.last().copied().unwrap_or(0.0);
    out.push_str("<figure class=\"chart\"><figcaption>");
    html(title, out);
    out.push_str(": <b>");
    html(&show(latest), out);
    out.push_str("</b> <span class=\"muted\">max ");
    html(&show(max), out);
    let _ = write!(
        out,
        "</span></figcaption><svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{W:.0}\" height=\"{H:.0}\" viewBox=\"0 0 {W:.0} {H:.0}\"><rect width=\"{W:.0}\" height=\"{H:.0}\" fill=\"#f6f8fa\"/>"
    );
    if values.len() >= 2 {
        out.push_str("<polyline fill=\"none\" stroke=\"#3b7dd8\" stroke-width=\"1.5\" points=\"");
        let step = W / (values.len() - 1) as f64;
        for (i, v) in values.iter().enumerate() {
            let y = if max > 0.0 { H - 2.0 - v / max * (H - 4.0) } else { H - 2.0 };
            let _ = write!(out, "{:.1},{:.1} ", i as f64 * step, y);
        }
        out.push_str("\"/>");
    } else {
        let _ = write!(
            out,
            "<text x=\"6\" y=\"{:.0}\" font-size=\"11\" fill=\"#888\">collecting…</text>",
            H / 2.0 + 4.0
        );
    }
    out.push_str("</svg></figure>\n");
}

/// The index's trend charts: calls/s, errors/s, p99 of entry calls, calls in flight, and unique
/// users when counted.
pub(crate) fn write_history_charts(points: &[HistoryPoint], out: &mut String) {
    let span = match (points.first(), points.last()) {
        (Some(a), Some(b)) if b.unix_s > a.unix_s => {
            format!(" (last {} min)", (b.unix_s - a.unix_s).div_ceil(60))
        }
        _ => String::new(),
    };
    let _ = writeln!(out, "<h2>Trends{span}</h2>\n<div class=\"charts\">");
    let col = |f: &dyn Fn(&HistoryPoint) -> f64| points.iter().map(f).collect::<Vec<f64>>();
    let rate = |v: f64| format!("{v:.1}/s");
    chart("calls", &col(&|p| p.calls_per_s), &rate, out);
    chart("errors", &col(&|p| p.errors_per_s), &rate, out);
    chart("p99 of entry calls", &col(&|p| p.p99_ns as f64), &|v| Nanos(v as u128).to_string(), out);
    chart(
        "in flight",
        &col(&|p| p.in_flight.iter().map(|(_, n)| *n as f64).sum()),
        &|v| format!("{v:.0}"),
        out,
    );
    if points.iter().any(|p| p.unique_users.is_some()) {
        chart(
            "unique users",
            &col(&|p| p.unique_users.unwrap_or(0.0)),
            &|v| format!("{v:.0}"),
            out,
        );
    }
    out.push_str("</div>\n");
}
