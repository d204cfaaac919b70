//! Traces and spans in flight: JSON, an SVG timeline, and `/ps` as text, JSON and dot.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use monitor_core::trace::{
    AttributeValue, InFlightSpan, SpanAllocations, SpanOutcome, SpanRecord, Status, Trace,
    WatchInfo,
};
use monitor_core::{FunctionStats, SpanId};

use super::util::{html, printable, Nanos};
use super::writer::Json;

fn json_value(v: &AttributeValue, j: &mut Json<'_>) {
    match v {
        AttributeValue::Str(s) => j.str(s),
        AttributeValue::I64(i) => j.i64(*i),
        // JSON has no NaN or infinity: such a value is written as null.
        AttributeValue::F64(f) if !f.is_finite() => j.null(),
        AttributeValue::F64(f) => j.f64(*f),
        AttributeValue::Bool(b) => j.bool(*b),
    };
}

fn json_annotations<'a>(
    attrs: impl IntoIterator<Item = &'a (std::borrow::Cow<'static, str>, AttributeValue)>,
    j: &mut Json<'_>,
) {
    j.begin_object();
    for (k, v) in attrs {
        j.key(k);
        json_value(v, j);
    }
    j.end_object();
}

fn json_opt_id(id: Option<SpanId>, j: &mut Json<'_>) {
    match id {
        Some(id) => j.str(&id.to_string()),
        None => j.null(),
    };
}

/// Spans in display order: depth first from the roots (spans whose parent is not among them),
/// siblings by start. Each span is `(span_id, parent_id, start)`; returns `(index, depth)`.
fn ordered(spans: &[(SpanId, Option<SpanId>, u64)]) -> Vec<(usize, usize)> {
    let ids: HashSet<SpanId> = spans.iter().map(|s| s.0).collect();
    let mut children: HashMap<SpanId, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.1.filter(|p| ids.contains(p)) {
            Some(p) => children.entry(p).or_default().push(i),
            None => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].2, spans[i].0));
    by_start(&mut roots);
    children.values_mut().for_each(by_start);
    let mut out = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        out.push((i, depth));
        if let Some(kids) = children.get(&spans[i].0) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    out
}

/// [`ordered`] for finished spans.
fn ordered_records(spans: &[&SpanRecord]) -> Vec<(usize, usize)> {
    let keys: Vec<_> = spans.iter().map(|s| (s.span_id, s.parent_id, s.start_unix_ns)).collect();
    ordered(&keys)
}

fn json_span(s: &SpanRecord, j: &mut Json<'_>) {
    j.begin_object();
    j.key("trace_id").str(&s.trace_id.to_string());
    j.key("span_id").str(&s.span_id.to_string());
    j.key("parent_id");
    json_opt_id(s.parent_id, j);
    j.key("remote_parent").bool(s.remote_parent);
    j.key("name").str(s.name);
    j.key("category").opt_str(s.category);
    j.key("start_unix_ns").u64(s.start_unix_ns);
    j.key("duration_ns").u64(s.duration_ns);
    j.key("outcome").str(&s.outcome.to_string());
    j.key("error_kind").opt_str(s.outcome.error_kind());
    j.key("status").begin_object();
    match &s.status {
        Status::Unset => j.key("code").str("unset"),
        Status::Ok => j.key("code").str("ok"),
        Status::Error(d) => j.key("code").str("error").key("description").str(d),
    };
    j.end_object();
    j.key("annotations");
    json_annotations(&s.annotations, j);
    j.key("events").begin_array();
    for e in &s.events {
        j.begin_object().key("name").str(&e.name).key("unix_ns").u64(e.unix_ns);
        j.key("since_checkpoint_ns");
        match e.since_checkpoint_ns {
            Some(ns) => j.u64(ns),
            None => j.null(),
        };
        j.end_object();
    }
    j.end_array();
    j.key("dropped").u64(u64::from(s.dropped));
    if let Some(a) = &s.allocations {
        j.key("allocations").begin_object();
        j.key("count").u64(a.count).key("bytes").u64(a.bytes);
        j.key("self_count").u64(a.self_count).key("self_bytes").u64(a.self_bytes);
        j.end_object();
    }
    j.end_object();
}

/// A trace as a JSON list of spans, root first, then depth first with children by start time.
/// Each span: `trace_id`, `span_id`, `parent_id` (lower hex), `name`, `category`,
/// `start_unix_ns`, `duration_ns`, `outcome` (`success`, `error`, `panic`, `cancelled`),
/// `error_kind`, `status`, `annotations` (an object), `events`, `dropped`, and with the
/// counting allocator installed `allocations` (`count`, `bytes`, `self_count`, `self_bytes`).
///
/// ```
/// # fn show(trace: &monitor_core::trace::Trace) {
/// let mut out = String::new();
/// monitor_http::write_trace_json(trace, &mut out);
/// # }
/// ```
pub fn write_trace_json(trace: &Trace, out: &mut String) {
    let mut j = Json::new(out);
    trace_json(trace, &mut j);
    out.push('\n');
}

/// A trace's spans, one a line, as a JSON list.
fn trace_json(trace: &Trace, j: &mut Json<'_>) {
    let spans: Vec<&SpanRecord> = trace.spans.iter().map(|s| &**s).collect();
    j.one_per_line().begin_array();
    for (i, _) in ordered_records(&spans) {
        json_span(spans[i], j);
    }
    j.end_array();
}

/// Several traces (e.g. [`monitor_core::trace::failed_traces`]) as a JSON list of
/// `{"trace_id", "root_span_id", "dropped_spans", "spans": [...]}`.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_traces_json(&[], &mut out);
/// assert_eq!(out.trim(), "[]");
/// ```
pub fn write_traces_json(traces: &[std::sync::Arc<Trace>], out: &mut String) {
    let mut j = Json::new(out);
    j.begin_array();
    for t in traces {
        j.begin_object();
        j.key("trace_id").str(&t.trace_id.to_string());
        j.key("root_span_id").str(&t.root.to_string());
        j.key("dropped_spans").u64(t.dropped_spans);
        j.key("spans");
        trace_json(t, &mut j);
        j.end_object();
    }
    j.end_array();
    out.push('\n');
}

const ROW: f64 = 22.0;
const WIDTH: f64 = 1200.0;

fn colour(s: &SpanRecord) -> &'static str {
    match s.outcome {
        SpanOutcome::Success => "#4c9a52",
        SpanOutcome::Error(_) => "#d9480f",
        SpanOutcome::Panic => "#a61e4d",
        _ => "#868e96",
    }
}

fn tooltip(s: &SpanRecord, t0: u64, out: &mut String) {
    let mut t = format!(
        "{}\nspan {} (parent {})\nstart +{}  duration {}\noutcome: {}",
        s.name,
        s.span_id,
        s.parent_id.map_or_else(|| "none".to_string(), |p| p.to_string()),
        Nanos(u128::from(s.start_unix_ns.saturating_sub(t0))),
        Nanos(u128::from(s.duration_ns)),
        s.outcome
    );
    if let Some(k) = s.outcome.error_kind() {
        let _ = write!(t, " ({k})");
    }
    if let Status::Error(d) = &s.status {
        let _ = write!(t, "\nstatus: error: {d}");
    }
    if let Some(a) = &s.allocations {
        let _ = write!(t, "\n{}", Allocations(a));
    }
    for (k, v) in &s.annotations {
        let _ = write!(t, "\n{k} = {v}");
    }
    for e in &s.events {
        let _ = write!(
            t,
            "\nevent +{} {}",
            Nanos(u128::from(e.unix_ns.saturating_sub(s.start_unix_ns))),
            e.name
        );
        if let Some(ns) = e.since_checkpoint_ns {
            let _ = write!(t, " ({} since previous checkpoint)", Nanos(u128::from(ns)));
        }
    }
    html(&t, out);
}

/// Draws one trace's timeline at vertical offset `y0`; returns its height.
fn timeline(trace: &Trace, y0: f64, out: &mut String) -> f64 {
    let spans: Vec<&SpanRecord> = trace.spans.iter().map(|s| &**s).collect();
    let t0 = spans.iter().map(|s| s.start_unix_ns).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.end_unix_ns()).max().unwrap_or(t0).max(t0 + 1);
    let total = (t1 - t0) as f64;
    let x_of = |ns: u64| (ns.saturating_sub(t0)) as f64 / total * (WIDTH - 20.0) + 10.0;
    let _ = write!(
        out,
        "<text x=\"10\" y=\"{:.0}\" class=\"h\">trace {} · {} spans · {}",
        y0 + 16.0,
        trace.trace_id,
        spans.len(),
        Nanos(u128::from(t1 - t0))
    );
    if trace.dropped_spans > 0 {
        let _ = write!(out, " · {} spans dropped", trace.dropped_spans);
    }
    out.push_str("</text>\n");
    // Time axis: five ticks.
    let axis = y0 + 26.0;
    for k in 0..=4 {
        let x = 10.0 + (WIDTH - 20.0) * f64::from(k) / 4.0;
        let ns = (total * f64::from(k) / 4.0) as u128;
        let _ = writeln!(out, "<line x1=\"{x:.1}\" y1=\"{axis:.0}\" x2=\"{x:.1}\" y2=\"{:.0}\" class=\"tick\"/><text x=\"{:.1}\" y=\"{:.0}\" class=\"t\">+{}</text>", axis + 4.0, if k == 4 { x - 2.0 } else { x + 2.0 }, axis - 2.0, Nanos(ns));
    }
    let mut y = axis + 8.0;
    for (i, _depth) in ordered_records(&spans) {
        let s = spans[i];
        let x = x_of(s.start_unix_ns);
        let w = (s.duration_ns as f64 / total * (WIDTH - 20.0)).max(1.0);
        let _ = write!(out, "<g class=\"span {}\"><title>", s.outcome);
        tooltip(s, t0, out);
        let _ = write!(out, "</title><rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.0}\" rx=\"2\" fill=\"{}\"/>", y, ROW - 4.0, colour(s));
        for e in &s.events {
            let ex = x_of(e.unix_ns);
            let _ = write!(
                out,
                "<line x1=\"{ex:.1}\" y1=\"{:.1}\" x2=\"{ex:.1}\" y2=\"{:.1}\" class=\"ev\"/>",
                y,
                y + ROW - 4.0
            );
        }
        // Labels start at their bar; in the right part they end at the bar's end instead.
        let label_x = x + 3.0;
        let anchor_right = label_x > WIDTH * 0.6;
        let (lx, anchor) = if anchor_right { (x + w - 3.0, "end") } else { (label_x, "start") };
        let _ =
            write!(out, "<text x=\"{lx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">", y + ROW - 9.0);
        html(&format!("{} ({})", s.name, Nanos(u128::from(s.duration_ns))), out);
        out.push_str("</text></g>\n");
        y += ROW;
    }
    y - y0 + 10.0
}

const SVG_STYLE: &str = concat!(
    "<style>text{font:12px ui-monospace,monospace;fill:#111}text.h{font-weight:bold}",
    "text.t{fill:#666;font-size:10px}line.tick{stroke:#bbb}line.ev{stroke:#fff;stroke-width:1.5}",
    "g.span text{fill:#111;paint-order:stroke;stroke:#fff;stroke-width:3px}</style>\n"
);

/// A trace as an SVG timeline: one bar per span, nested by parent (depth first, children by
/// start), coloured by outcome (green success, orange error, crimson panic, grey cancelled),
/// labelled `name (duration)`, with a tooltip of ids, outcome, annotations and events (white
/// ticks on the bar).
///
/// ```
/// # fn show(trace: &monitor_core::trace::Trace) {
/// let mut svg = String::new();
/// monitor_http::write_trace_svg(trace, &mut svg);
/// # }
/// ```
pub fn write_trace_svg(trace: &Trace, out: &mut String) {
    write_traces_svg(std::slice::from_ref(trace), out);
}

/// Several traces stacked in one SVG (see [`write_trace_svg`]).
///
/// ```
/// let mut svg = String::new();
/// monitor_http::write_traces_svg::<monitor_core::trace::Trace>(&[], &mut svg);
/// assert!(svg.contains("no traces"));
/// ```
pub fn write_traces_svg<T: std::borrow::Borrow<Trace>>(traces: &[T], out: &mut String) {
    let mut body = String::new();
    let mut y = 0.0;
    for t in traces {
        y += timeline(t.borrow(), y, &mut body);
    }
    if traces.is_empty() {
        body.push_str("<text x=\"10\" y=\"20\">no traces</text>\n");
        y = 30.0;
    }
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH:.0}\" height=\"{y:.0}\" viewBox=\"0 0 {WIDTH:.0} {y:.0}\">\n{SVG_STYLE}{body}</svg>\n"
    );
}

/// Trees of in-flight spans, per trace: (depth, span).
fn ps_trees(spans: &[InFlightSpan]) -> Vec<Vec<(usize, &InFlightSpan)>> {
    // Traces in the order their first span appears (oldest first).
    let mut index: HashMap<monitor_core::TraceId, usize> = HashMap::new();
    let mut by_trace: Vec<Vec<&InFlightSpan>> = Vec::new();
    for s in spans {
        let i = *index.entry(s.trace_id).or_insert_with(|| {
            by_trace.push(Vec::new());
            by_trace.len() - 1
        });
        by_trace[i].push(s);
    }
    by_trace
        .into_iter()
        .map(|v| {
            let keys: Vec<_> =
                v.iter().map(|s| (s.span_id, s.parent_id, s.start_unix_ns)).collect();
            ordered(&keys).into_iter().map(|(i, depth)| (depth, v[i])).collect()
        })
        .collect()
}

/// `/trace/watches`: the captures armed now (waiting for a call, or collecting its trace), as
/// JSON: what each waits for, how many functions it watches (`null`: any), whether sites made
/// later count, since when (`since_unix_ms`), and the trace it collects.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_watches_json(&monitor_core::trace::watches(), &mut out);
/// assert!(out.starts_with('['));
/// ```
pub fn write_watches_json(watches: &[WatchInfo], out: &mut String) {
    let mut j = Json::new(out);
    j.begin_array();
    for w in watches {
        j.begin_object().key("what").str(&w.what).key("functions");
        match w.functions {
            Some(n) => j.u64(n as u64),
            None => j.null(),
        };
        let trace = w.trace.map(|t| t.to_string());
        j.key("trace_id").opt_str(trace.as_deref());
        j.key("sites_made_later").bool(w.sites_made_later);
        let since = w.since.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        j.key("since_unix_ms").u64(u64::try_from(since.as_millis()).unwrap_or(u64::MAX));
        let collecting = w.collecting.map(|t| t.to_string());
        j.key("collecting").opt_str(collecting.as_deref());
        j.end_object();
    }
    j.end_array();
    out.push('\n');
}

/// `/ps`: the recorded spans running now as trees per trace, oldest first, with elapsed time;
/// then the calls in flight per function (from `current`, known for every call).
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_in_flight_trees_text(&monitor_core::trace::in_flight(), &monitor_core::registry().snapshot().functions, &mut out);
/// ```
pub fn write_in_flight_trees_text(
    spans: &[InFlightSpan],
    functions: &[FunctionStats],
    out: &mut String,
) {
    let trees = ps_trees(spans);
    if trees.is_empty() {
        out.push_str("no recorded spans in flight (monitor_core::trace::record_all(true) records every call)\n");
    }
    for tree in trees {
        if let Some((_, root)) = tree.first() {
            let _ = writeln!(out, "trace {}", root.trace_id);
        }
        for (depth, s) in tree {
            let _ = write!(
                out,
                "{:indent$}{} [{}] running {}",
                "",
                s.name,
                s.span_id,
                Nanos(u128::from(s.elapsed_ns)),
                indent = 2 + 2 * depth
            );
            for (k, v) in &s.annotations {
                let _ = write!(out, " {k}={v}");
            }
            out.push('\n');
        }
    }
    out.push_str("\nin flight per function:\n");
    let mut any = false;
    for f in functions.iter().filter(|f| f.in_flight > 0) {
        any = true;
        let _ = writeln!(out, "  {} {}", f.name, f.in_flight);
    }
    if !any {
        out.push_str("  none\n");
    }
}

/// `/ps/json`: the recorded spans running now, as a list of
/// `{trace_id, span_id, parent_id, name, start_unix_ns, elapsed_ns, annotations}`.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_in_flight_trees_json(&[], &mut out);
/// assert_eq!(out.trim(), "[]");
/// ```
pub fn write_in_flight_trees_json(spans: &[InFlightSpan], out: &mut String) {
    let mut j = Json::new(out);
    j.one_per_line().begin_array();
    for s in spans {
        j.begin_object();
        j.key("trace_id").str(&s.trace_id.to_string());
        j.key("span_id").str(&s.span_id.to_string());
        j.key("parent_id");
        json_opt_id(s.parent_id, &mut j);
        j.key("name").str(s.name);
        j.key("start_unix_ns").u64(s.start_unix_ns);
        j.key("elapsed_ns").u64(s.elapsed_ns);
        j.key("annotations");
        json_annotations(&s.annotations, &mut j);
        j.end_object();
    }
    j.end_array();
    out.push('\n');
}

/// `/ps/dot`: the recorded spans running now for Graphviz, one cluster per trace.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_in_flight_trees_dot(&[], &mut out);
/// assert!(out.starts_with("digraph"));
/// ```
pub fn write_in_flight_trees_dot(spans: &[InFlightSpan], out: &mut String) {
    out.push_str("digraph ps {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n");
    for (n, tree) in ps_trees(spans).into_iter().enumerate() {
        let _ = writeln!(out, "  subgraph cluster_{n} {{");
        if let Some((_, root)) = tree.first() {
            let _ = writeln!(out, "    label=\"trace {}\";", root.trace_id);
        }
        for (_, s) in &tree {
            let label = format!(
                "{}\\nrunning {}",
                s.name.replace('\\', "\\\\").replace('"', "\\\""),
                Nanos(u128::from(s.elapsed_ns))
            );
            let _ = writeln!(out, "    s{} [label=\"{label}\"];", s.span_id);
            if let Some(p) = s.parent_id.filter(|p| tree.iter().any(|(_, q)| q.span_id == *p)) {
                let _ = writeln!(out, "    s{p} -> s{};", s.span_id);
            }
        }
        out.push_str("  }\n");
    }
    out.push_str("}\n");
}

/// `allocates 3 (96 B), own 1 (32 B)`.
struct Allocations<'a>(&'a SpanAllocations);

impl std::fmt::Display for Allocations<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let a = self.0;
        write!(
            f,
            "allocates {} ({} B), own {} ({} B)",
            a.count, a.bytes, a.self_count, a.self_bytes
        )
    }
}

/// A trace as an indented call stack, one span a line, for a terminal or a ticket:
///
/// ```text
/// trace 4bf92f3577b34da6a3ce929d0e0e4736, 3 spans
/// call shop::checkout [00f067aa0ba902b7] 14.04ms ok, allocates 2 (1024 B), own 1 (512 B)
///     annotation user = ann
///     checkpoint validated +1.164ms
///     event payment requested +2.100ms
///     call shop::fetch [1f2e3d4c5b6a7980] 1.193ms error NotFound, allocates 0 (0 B), own 0 (0 B)
/// ```
///
/// Each span's line: `call`, its name, span id, duration, outcome (`ok`, `error <kind>`,
/// `panic`, `cancelled`) and, with the counting allocator installed, what it allocated in all
/// and on its own. Below it, one level deeper: its annotations, its checkpoints (with the time
/// since the previous one) and events (with the time since the span's start), then its
/// children by start. Names are written with control characters escaped, so each stays on its
/// line.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_traces_text::<monitor_core::trace::Trace>(&[], &mut out);
/// assert_eq!(out, "no traces\n");
/// ```
pub fn write_trace_text(trace: &Trace, out: &mut String) {
    let spans: Vec<&SpanRecord> = trace.spans.iter().map(|s| &**s).collect();
    let _ = write!(out, "trace {}, {} spans", trace.trace_id, spans.len());
    if trace.dropped_spans > 0 {
        let _ = write!(out, ", {} dropped", trace.dropped_spans);
    }
    out.push('\n');
    for (i, depth) in ordered_records(&spans) {
        let s = spans[i];
        let pad = "    ".repeat(depth);
        let _ = write!(
            out,
            "{pad}call {} [{}] {} ",
            printable(s.name),
            s.span_id,
            Nanos(u128::from(s.duration_ns))
        );
        match s.outcome {
            SpanOutcome::Success => out.push_str("ok"),
            SpanOutcome::Error(kind) => {
                let _ = write!(out, "error {}", printable(kind));
            }
            other => {
                let _ = write!(out, "{other}");
            }
        }
        if let Some(a) = &s.allocations {
            let _ = write!(out, ", {}", Allocations(a));
        }
        if s.remote_parent {
            if let Some(p) = s.parent_id {
                let _ = write!(out, ", remote parent {p}");
            }
        }
        out.push('\n');
        for (k, v) in &s.annotations {
            let _ = writeln!(
                out,
                "{pad}    annotation {} = {}",
                printable(k),
                printable(&v.to_string())
            );
        }
        for e in &s.events {
            match e.since_checkpoint_ns {
                Some(ns) => {
                    let _ = writeln!(
                        out,
                        "{pad}    checkpoint {} +{}",
                        printable(&e.name),
                        Nanos(u128::from(ns))
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "{pad}    event {} +{}",
                        printable(&e.name),
                        Nanos(u128::from(e.unix_ns.saturating_sub(s.start_unix_ns)))
                    );
                }
            }
        }
    }
}

/// Several traces as text (see [`write_trace_text`]), a blank line between them.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_traces_text(&monitor_core::trace::failed_traces(), &mut out);
/// ```
pub fn write_traces_text<T: std::borrow::Borrow<Trace>>(traces: &[T], out: &mut String) {
    if traces.is_empty() {
        out.push_str("no traces\n");
    }
    for (n, t) in traces.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        write_trace_text(t.borrow(), out);
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::time::Duration;

    use monitor_core::trace::{SpanEvent, SpanOutcome, Watch, WatchFilter};
    use monitor_core::{monitored, SpanId};

    use super::*;

    #[monitored(name = "shop::handle")]
    fn handle() {
        fetch_data();
        store();
    }

    #[monitored(name = "shop::fetch_data")]
    fn fetch_data() {}

    #[monitored(name = "shop::store\nit")]
    fn store() {
        insert();
    }

    #[monitored(name = "db::insert")]
    fn insert() {}

    /// A real trace of four calls, its times, ids and outcomes then set to known values.
    fn known_trace() -> Trace {
        let watch = Watch::start(WatchFilter::function(|s| s.name() == "shop::handle")).unwrap();
        handle();
        let mut trace = watch.wait(Duration::from_secs(10)).unwrap();
        let t0 = 1_700_000_000_000_000_000;
        let ids: HashMap<SpanId, SpanId> = trace
            .spans
            .iter()
            .map(|s| {
                let id = match s.name {
                    "shop::handle" => 0xca7a_87c4,
                    "shop::fetch_data" => 2,
                    "db::insert" => 4,
                    _ => 3,
                };
                (s.span_id, SpanId::from_u64(id))
            })
            .collect();
        let mut spans: Vec<SpanRecord> = trace.spans.iter().map(|s| (**s).clone()).collect();
        for s in &mut spans {
            s.span_id = ids[&s.span_id];
            s.parent_id = s.parent_id.and_then(|p| ids.get(&p).copied());
            s.annotations.clear();
            s.events.clear();
            s.allocations = None;
            (s.start_unix_ns, s.duration_ns) = match s.name {
                "shop::handle" => (t0, 14_038_083),
                "shop::fetch_data" => (t0 + 100, 1_192_829),
                "db::insert" => (t0 + 3_100_000, 10_000_000),
                _ => (t0 + 3_000_000, 10_428_663),
            };
            match s.name {
                "shop::handle" => {
                    s.annotations.push((Cow::Borrowed("user"), "ann".into()));
                    s.events = vec![
                        event("serialize", t0 + 1_163_587, Some(1_163_587)),
                        event("payment requested", t0 + 2_000_000, None),
                        event("store", t0 + 3_600_000, Some(2_436_265)),
                    ];
                    s.allocations = Some(SpanAllocations {
                        count: 2,
                        bytes: 1_032,
                        self_count: 2,
                        self_bytes: 1_032,
                    });
                }
                "shop::fetch_data" => s.allocations = Some(SpanAllocations::default()),
                "db::insert" => s.outcome = SpanOutcome::Panic,
                _ => s.outcome = SpanOutcome::Error("Conflict"),
            }
        }
        // Out of order: the text orders them.
        spans.reverse();
        trace.root = SpanId::from_u64(0xca7a_87c4);
        trace.spans = spans.into_iter().map(Arc::new).collect();
        trace
    }

    fn event(name: &'static str, unix_ns: u64, since: Option<u64>) -> SpanEvent {
        SpanEvent { name: name.into(), unix_ns, since_checkpoint_ns: since }
    }

    #[test]
    fn a_known_trace_as_text() {
        let trace = known_trace();
        let mut out = String::new();
        write_trace_text(&trace, &mut out);
        let id = trace.trace_id;
        assert_eq!(
            out,
            format!(
                "trace {id}, 4 spans
call shop::handle [00000000ca7a87c4] 14.04ms ok, allocates 2 (1032 B), own 2 (1032 B)
    annotation user = ann
    checkpoint serialize +1.164ms
    event payment requested +2.000ms
    checkpoint store +2.436ms
    call shop::fetch_data [0000000000000002] 1.193ms ok, allocates 0 (0 B), own 0 (0 B)
    call shop::store\\nit [0000000000000003] 10.43ms error Conflict
        call db::insert [0000000000000004] 10.00ms panic
"
            )
        );
        let mut both = String::new();
        write_traces_text(&[&trace, &trace], &mut both);
        assert_eq!(both, format!("{out}\n{out}"));
    }
}
