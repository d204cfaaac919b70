//! `/active`: calls in flight per category ("active status"), as text, JSON and an SVG chart.

use std::fmt::Write;

use monitor_core::Snapshot;

use super::util::html;
use super::writer::Json;

/// `/active`: one line per category, `category current functions`, the standard categories
/// first (see [`monitor_core::CATEGORIES`]).
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_in_flight_text(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.lines().nth(1).unwrap().starts_with("function "));
/// ```
pub fn write_in_flight_text(snapshot: &Snapshot, out: &mut String) {
    let cats = snapshot.in_flight_by_category();
    let width = cats.iter().map(|c| c.category.len()).max().unwrap_or(8).max(8);
    let _ = writeln!(out, "{:width$} {:>9} {:>9}", "category", "in flight", "functions");
    for c in cats {
        let _ = writeln!(out, "{:width$} {:>9} {:>9}", c.category, c.in_flight, c.functions);
    }
}

/// `/active/json`: `[{"category": …, "current": …, "functions": …}]`.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_in_flight_json(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with("[{\"category\":\"function\""));
/// ```
pub fn write_in_flight_json(snapshot: &Snapshot, out: &mut String) {
    let mut j = Json::new(out);
    j.begin_array();
    for c in snapshot.in_flight_by_category() {
        j.begin_object();
        j.key("category").str(c.category);
        j.key("current").u64(c.in_flight);
        j.key("functions").u64(c.functions as u64);
        j.end_object();
    }
    j.end_array();
    out.push('\n');
}

/// A horizontal bar chart of calls in flight per category, as inline SVG for the index page.
pub(crate) fn write_in_flight_svg(snapshot: &Snapshot, out: &mut String) {
    let cats = snapshot.in_flight_by_category();
    let max = cats.iter().map(|c| c.in_flight).max().unwrap_or(0).max(1);
    let row = 20.0;
    let (label_w, bar_w) = (130.0, 300.0);
    let height = row * cats.len() as f64 + 4.0;
    let _ = write!(
        out,
        "<svg class=\"active\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"calls in flight by category\">",
        label_w + bar_w + 60.0
    );
    for (i, c) in cats.iter().enumerate() {
        let y = row * i as f64 + 2.0;
        let w = bar_w * c.in_flight as f64 / max as f64;
        out.push_str("<g><title>");
        let noun = if c.functions == 1 { "function" } else { "functions" };
        html(&format!("{}: {} in flight ({} {noun})", c.category, c.in_flight, c.functions), out);
        let _ = write!(out, "</title><text x=\"0\" y=\"{:.0}\" font-size=\"12\">", y + 13.0);
        html(c.category, out);
        let _ = write!(
            out,
            "</text><rect x=\"{label_w:.0}\" y=\"{y:.0}\" width=\"{w:.1}\" height=\"{:.0}\" fill=\"#3b7dd8\"/><text x=\"{:.1}\" y=\"{:.0}\" font-size=\"12\">{}</text></g>",
            row - 4.0,
            label_w + w + 4.0,
            y + 13.0,
            c.in_flight
        );
    }
    out.push_str("</svg>\n");
}
