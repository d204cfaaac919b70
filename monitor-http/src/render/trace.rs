//! Traces and spans in flight: JSON, an SVG timeline, and `/ps` as text, JSON and dot.

use std::collections::HashMap;
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

/// The spans as a forest, each span `(span_id, parent_id, start)`: the roots (spans whose
/// parent is not among them) and each span's children, both by start.
fn forest(spans: &[(SpanId, Option<SpanId>, u64)]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let index: HashMap<SpanId, usize> = spans.iter().enumerate().map(|(i, s)| (s.0, i)).collect();
    let mut kids = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.1.and_then(|p| index.get(&p)) {
            Some(&p) if p != i => kids[p].push(i),
            _ => roots.push(i),
        }
    }
    let by_start = |v: &mut Vec<usize>| v.sort_by_key(|&i| (spans[i].2, spans[i].0));
    by_start(&mut roots);
    kids.iter_mut().for_each(by_start);
    (roots, kids)
}

/// Spans in display order: depth first from the roots, siblings by start (see [`forest`]);
/// returns `(index, depth)`.
fn ordered(spans: &[(SpanId, Option<SpanId>, u64)]) -> Vec<(usize, usize)> {
    let (roots, kids) = forest(spans);
    let mut out = Vec::with_capacity(spans.len());
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        out.push((i, depth));
        stack.extend(kids[i].iter().rev().map(|&k| (k, depth + 1)));
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
/// Left and right margin of the time axis.
const PAD: f64 = 10.0;
/// Rows one trace's timeline draws at most. Past it, runs of same-named siblings share a row
/// and the deepest levels fold into their parents' labels, so a trace of any size stays
/// readable and its picture bounded.
pub(crate) const MAX_ROWS: usize = 150;
/// Siblings of one name, one after another, that share a row once a trace is over
/// [`MAX_ROWS`] spans.
const RUN: usize = 3;
/// Horizontal advance of one column of the label font (12px monospace is 0.6 em), rounded up.
const COL: f64 = 7.5;

fn colour(s: &SpanRecord) -> &'static str {
    match s.outcome {
        SpanOutcome::Success => "#4c9a52",
        SpanOutcome::Error(_) => "#d9480f",
        SpanOutcome::Panic => "#a61e4d",
        _ => "#868e96",
    }
}

/// Columns `s` takes in the label font: one per ASCII character, two for any other (wide
/// scripts take two; counting two for the rest only ever places a label more carefully).
fn columns(s: &str) -> usize {
    s.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum()
}

/// `name` then `suffix`, cut short with `…` to fit in `max` columns (the name first).
fn fit(name: &str, suffix: &str, max: usize) -> String {
    let cut = |s: &str, room: usize| {
        let mut used = 0;
        let mut out: String = s
            .chars()
            .take_while(|c| {
                used += columns(c.encode_utf8(&mut [0; 4]));
                used < room
            })
            .collect();
        out.push('…');
        out
    };
    if columns(name) + columns(suffix) <= max {
        format!("{name}{suffix}")
    } else if columns(suffix) + 6 <= max {
        cut(name, max - columns(suffix) - 1) + suffix
    } else if max >= 2 {
        cut(&format!("{name}{suffix}"), max - 1)
    } else {
        String::new()
    }
}

/// Where a label goes: inside its bar when it fits there, else beside it (right, then left),
/// else cut to the widest of the three — never across one of the bar's ends, never past the
/// picture's edge.
#[derive(Clone, Copy)]
struct Place {
    x: f64,
    anchor: &'static str,
    inside: bool,
    columns: usize,
}

fn place(x: f64, w: f64, columns: usize) -> Place {
    let room = |px: f64| (px / COL).floor().max(0.0) as usize;
    let at =
        |x, anchor, inside, room: usize| Place { x, anchor, inside, columns: columns.min(room) };
    let inside = at(x + 3.0, "start", true, room(w - 6.0));
    let right = at(x + w + 4.0, "start", false, room(WIDTH - 2.0 - (x + w + 4.0)));
    let left = at(x - 4.0, "end", false, room(x - 6.0));
    [inside, right, left].into_iter().find(|p| p.columns == columns).unwrap_or_else(|| {
        [left, right, inside].into_iter().max_by_key(|p| p.columns).unwrap_or(inside)
    })
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

/// One row of a timeline: a span, or a run of same-named siblings drawn side by side.
struct Unit {
    spans: Vec<usize>,
    kids: Vec<usize>,
    /// Spans under it (its spans' descendants).
    below: usize,
    /// Spans under it that no row of their own shows.
    folded: usize,
}

/// What a timeline draws: its rows (indexes into `units`, in display order), whether runs
/// share rows, and how many spans are drawn nowhere (not even folded into a drawn row).
struct Layout {
    units: Vec<Unit>,
    rows: Vec<usize>,
    grouped: bool,
    undrawn: usize,
}

/// Lays out a trace in at most [`MAX_ROWS`] rows: every span its own row while they fit;
/// past that, runs of [`RUN`] or more same-named siblings share a row (their children merged,
/// so a loop of a thousand calls is one row per level), and the rows nearest the root are
/// drawn, each counting in its label the spans under it that have no row; if even the top
/// level is too wide, the last roots are left out and counted.
fn layout(spans: &[&SpanRecord]) -> Layout {
    let keys: Vec<_> = spans.iter().map(|s| (s.span_id, s.parent_id, s.start_unix_ns)).collect();
    let (roots, kids) = forest(&keys);
    let grouped = spans.len() > MAX_ROWS;
    let split = |members: Vec<usize>| -> Vec<Vec<usize>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < members.len() {
            let name = spans[members[i]].name;
            let end = members[i..]
                .iter()
                .position(|&m| spans[m].name != name)
                .map_or(members.len(), |n| i + n);
            if grouped && end - i >= RUN {
                out.push(members[i..end].to_vec());
            } else {
                out.extend(members[i..end].iter().map(|&m| vec![m]));
            }
            i = end;
        }
        out
    };
    // Breadth first: units come out level by level.
    let mut units: Vec<Unit> = split(roots)
        .into_iter()
        .map(|spans| Unit { spans, kids: Vec::new(), below: 0, folded: 0 })
        .collect();
    let top_level = units.len();
    let mut next = 0;
    while next < units.len() {
        let mut members: Vec<usize> =
            units[next].spans.iter().flat_map(|&s| kids[s].iter().copied()).collect();
        if units[next].spans.len() > 1 {
            members.sort_by_key(|&i| (keys[i].2, keys[i].0));
        }
        for group in split(members) {
            let id = units.len();
            units[next].kids.push(id);
            units.push(Unit { spans: group, kids: Vec::new(), below: 0, folded: 0 });
        }
        next += 1;
    }
    for u in (0..units.len()).rev() {
        let below = units[u].kids.iter().map(|&k| units[k].spans.len() + units[k].below).sum();
        units[u].below = below;
    }
    // Breadth-first order puts every parent before its children, so any prefix of it is a
    // tree cut: draw the first units that fit, and fold the rest into their drawn ancestors.
    let drawn = if units.len() <= MAX_ROWS {
        units.len()
    } else if top_level >= MAX_ROWS {
        MAX_ROWS - 1
    } else {
        MAX_ROWS
    };
    for u in 0..drawn {
        units[u].folded = units[u]
            .kids
            .iter()
            .filter(|&&k| k >= drawn)
            .map(|&k| units[k].spans.len() + units[k].below)
            .sum();
    }
    let mut rows = Vec::with_capacity(drawn);
    let mut stack: Vec<usize> = (0..top_level.min(drawn)).rev().collect();
    while let Some(u) = stack.pop() {
        rows.push(u);
        stack.extend(units[u].kids.iter().rev().filter(|&&k| k < drawn));
    }
    let shown: usize = rows.iter().map(|&u| units[u].spans.len() + units[u].folded).sum();
    Layout { units, rows, grouped, undrawn: spans.len() - shown }
}

/// `+2.5ms`: a tick's time with no trailing zeros.
fn tick_label(ns: u128) -> String {
    let s = Nanos(ns).to_string();
    let unit_at = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, unit) = s.split_at(unit_at);
    let number = if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    };
    format!("+{number}{unit}")
}

/// The time axis over `total` nanoseconds: ticks at round steps, each labelled inside the
/// picture, with light grid lines down to `bottom`.
fn axis(total: f64, y: f64, bottom: f64, out: &mut String) {
    let raw = total / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * magnitude)
        .max(1.0);
    let mut k = 0u32;
    loop {
        let ns = (step * f64::from(k)).round();
        if ns > total {
            break;
        }
        let x = ns / total * (WIDTH - 2.0 * PAD) + PAD;
        let label = tick_label(ns as u128);
        let half = columns(&label) as f64 * COL * 0.5;
        let (lx, anchor) = if x - half < 2.0 {
            (x.max(2.0), "start")
        } else if x + half > WIDTH - 2.0 {
            (x.min(WIDTH - 2.0), "end")
        } else {
            (x, "middle")
        };
        let _ = writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{y:.0}\" x2=\"{x:.1}\" y2=\"{bottom:.0}\" class=\"tick\"/><text x=\"{lx:.1}\" y=\"{:.0}\" text-anchor=\"{anchor}\" class=\"t\">{label}</text>",
            y - 2.0
        );
        k += 1;
    }
}

/// The tooltip of a run of same-named siblings drawn on one row.
fn run_tooltip(run: &[&SpanRecord], t0: u64, out: &mut String) {
    let total: u64 = run.iter().map(|s| s.duration_ns).sum();
    let shortest = run.iter().map(|s| s.duration_ns).min().unwrap_or(0);
    let longest = run.iter().map(|s| s.duration_ns).max().unwrap_or(0);
    let failed = run.iter().filter(|s| s.outcome.error_kind().is_some()).count();
    let panics = run.iter().filter(|s| s.outcome == SpanOutcome::Panic).count();
    let mut t = format!(
        "{} ×{} one after another\nfrom +{}, {} in all, {} to {} each\n{} ok, {failed} errors, {panics} panics",
        run[0].name,
        run.len(),
        Nanos(u128::from(run[0].start_unix_ns.saturating_sub(t0))),
        Nanos(u128::from(total)),
        Nanos(u128::from(shortest)),
        Nanos(u128::from(longest)),
        run.iter().filter(|s| s.outcome == SpanOutcome::Success).count(),
    );
    let _ = write!(t, "\nfirst span {}", run[0].span_id);
    html(&t, out);
}

/// Draws one trace's timeline at vertical offset `y0`; returns its height.
fn timeline(trace: &Trace, y0: f64, out: &mut String) -> f64 {
    let spans: Vec<&SpanRecord> = trace.spans.iter().map(|s| &**s).collect();
    let t0 = spans.iter().map(|s| s.start_unix_ns).min().unwrap_or(0);
    let t1 = spans.iter().map(|s| s.end_unix_ns()).max().unwrap_or(t0).max(t0 + 1);
    let total = (t1 - t0) as f64;
    let x_of = |ns: u64| (ns.saturating_sub(t0)) as f64 / total * (WIDTH - 2.0 * PAD) + PAD;
    let width_of = |ns: u64| (ns as f64 / total * (WIDTH - 2.0 * PAD)).max(1.0);
    let plan = layout(&spans);
    let _ = write!(
        out,
        "<text x=\"{PAD}\" y=\"{:.0}\" class=\"h\">trace {} · {} spans · {}",
        y0 + 16.0,
        trace.trace_id,
        spans.len(),
        Nanos(u128::from(t1 - t0))
    );
    if trace.dropped_spans > 0 {
        let _ = write!(out, " · {} spans dropped", trace.dropped_spans);
    }
    if plan.grouped {
        out.push_str(" · runs of one name share a row");
    }
    let folded: usize = plan.rows.iter().map(|&u| plan.units[u].folded).sum();
    if folded > 0 {
        let _ = write!(out, " · {folded} spans folded into the rows above them");
    }
    out.push_str("</text>\n");
    let top = y0 + 36.0;
    let rows = plan.rows.len() + usize::from(plan.undrawn > 0);
    let bottom = top + ROW * rows as f64;
    axis(total, top - 6.0, bottom - 4.0, out);
    let mut y = top;
    for &u in &plan.rows {
        let unit = &plan.units[u];
        let run: Vec<&SpanRecord> = unit.spans.iter().map(|&i| spans[i]).collect();
        let s = run[0];
        let (x, w, suffix) = if run.len() == 1 {
            let _ = write!(out, "<g class=\"span {}\"><title>", s.outcome);
            tooltip(s, t0, out);
            let (x, w) = (x_of(s.start_unix_ns), width_of(s.duration_ns));
            let _ = write!(out, "</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.0}\" rx=\"2\" fill=\"{}\"/>", ROW - 4.0, colour(s));
            for e in &s.events {
                let ex = x_of(e.unix_ns);
                let _ = write!(
                    out,
                    "<line x1=\"{ex:.1}\" y1=\"{y:.1}\" x2=\"{ex:.1}\" y2=\"{:.1}\" class=\"ev\"/>",
                    y + ROW - 4.0
                );
            }
            (x, w, format!(" ({})", Nanos(u128::from(s.duration_ns))))
        } else {
            out.push_str("<g class=\"span run\"><title>");
            run_tooltip(&run, t0, out);
            let start = run.iter().map(|s| s.start_unix_ns).min().unwrap_or(t0);
            let end = run.iter().map(|s| s.end_unix_ns()).max().unwrap_or(start);
            let (x, w) = (x_of(start), width_of(end - start));
            // The run's extent is its bar; each call is drawn on it.
            let _ = write!(out, "</title><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.0}\" rx=\"2\" class=\"extent\"/>", ROW - 4.0);
            for m in &run {
                let _ = write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.0}\" fill=\"{}\"/>",
                    x_of(m.start_unix_ns),
                    width_of(m.duration_ns),
                    ROW - 4.0,
                    colour(m)
                );
            }
            let total: u64 = run.iter().map(|s| s.duration_ns).sum();
            (x, w, format!(" ×{} ({} in all)", run.len(), Nanos(u128::from(total))))
        };
        let suffix = match unit.folded {
            0 => suffix,
            folded => format!("{suffix} +{folded} spans folded"),
        };
        let at = place(x, w, columns(s.name) + columns(&suffix));
        let class = if at.inside && run.len() == 1 { " class=\"in\"" } else { "" };
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{}\"{class}>",
            at.x,
            y + ROW - 9.0,
            at.anchor
        );
        html(&fit(s.name, &suffix, at.columns), out);
        out.push_str("</text></g>\n");
        y += ROW;
    }
    if plan.undrawn > 0 {
        let _ = writeln!(
            out,
            "<text x=\"{PAD}\" y=\"{:.1}\" class=\"more\">{} more spans not drawn (the trace's JSON holds every span)</text>",
            y + ROW - 9.0,
            plan.undrawn
        );
    }
    bottom - y0 + 6.0
}

const SVG_STYLE: &str = concat!(
    "<style>text{font:12px ui-monospace,monospace;fill:#111}text.h{font-weight:bold}",
    "text.t{fill:#666;font-size:10px}line.tick{stroke:#e4e4e4}line.ev{stroke:#fff;stroke-width:1.5}",
    "rect.extent{fill:#dee2e6}text.more{fill:#666}",
    "g.span text{fill:#111;paint-order:stroke;stroke:#fff;stroke-width:3px}",
    "g.span text.in{fill:#fff;stroke:none}</style>\n"
);

/// A trace as an SVG timeline: one bar per span, nested by parent (depth first, children by
/// start), coloured by outcome (green success, orange error, crimson panic, grey cancelled),
/// labelled `name (duration)` inside the bar where it fits and beside it where not, with a
/// tooltip of ids, outcome, annotations and events (white ticks on the bar). A trace of more
/// than 150 spans is drawn in at most 150 rows: runs of same-named siblings share one, and
/// spans that still do not fit are counted on the row of their nearest drawn ancestor.
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
