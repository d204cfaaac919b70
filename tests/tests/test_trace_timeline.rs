//! The trace timeline (`/trace/svg`) as a browser draws it: every label inside its bar or
//! beside it, never across one of the bar's ends, and every text inside the picture; a trace
//! of thousands of spans drawn in a bounded number of rows; valid XML for any name.
//!
//! Ports: none (the SVG is written to a temporary file that headless Chromium opens; the
//! browser checks are skipped outside CI when Chromium is missing).

mod common;

use std::sync::Arc;
use std::time::Duration;

use monitor_core::trace::{SpanRecord, Trace, Watch, WatchFilter};
use monitor_core::{monitored, registry, Outcome, Span, SpanId};

#[monitored(name = "timeline::inner")]
fn inner() {}

#[monitored(name = "timeline::step")]
fn step() {
    inner();
}

#[monitored(name = "timeline::looping")]
fn looping() {
    for _ in 0..1000 {
        step();
    }
}

#[monitored(name = "timeline::wide")]
fn wide(sites: &[&'static monitor_core::CallSite]) {
    let parent = Span::current();
    for site in sites {
        site.open_call(parent).finish(Outcome::Success);
    }
}

fn capture(name: &'static str, run: impl FnOnce()) -> Trace {
    let _turn = common::turn();
    let watch = Watch::start(WatchFilter::function(move |s| s.name() == name)).unwrap();
    run();
    watch.wait(Duration::from_secs(10)).unwrap()
}

fn svg_of(trace: &Trace) -> String {
    let mut out = String::new();
    monitor_http::write_trace_svg(trace, &mut out);
    out
}

/// The rows drawn (one `g` per row) and their labels.
fn labels(svg: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"));
    doc.descendants()
        .filter(|n| n.has_tag_name("g"))
        .map(|g| {
            let text = g.children().find(|n| n.has_tag_name("text")).unwrap();
            text.text().unwrap_or_default().to_string()
        })
        .collect()
}

fn height(svg: &str) -> f64 {
    let doc = roxmltree::Document::parse(svg).unwrap();
    doc.root_element().attribute("height").unwrap().parse().unwrap()
}

#[test]
fn a_loop_of_a_thousand_calls_is_one_row_per_level() {
    let trace = capture("timeline::looping", looping);
    assert_eq!(trace.spans.len(), 2001);
    let svg = svg_of(&trace);
    let rows = labels(&svg);
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert!(rows[0].starts_with("timeline::looping ("), "{rows:?}");
    assert!(rows[1].starts_with("timeline::step ×1000 ("), "{rows:?}");
    assert!(rows[2].starts_with("timeline::inner ×1000 ("), "{rows:?}");
    assert!(svg.contains("runs of one name share a row"), "{svg}");
    // Every call is still drawn, on its run's row: the root, two extents and 2,000 bars.
    assert_eq!(svg.matches("<rect").count(), 1 + 2 + 2000);
    assert!(height(&svg) < 200.0);
}

#[test]
fn a_thousand_different_children_fold_into_their_parent() {
    let sites: Vec<_> = (0..1000)
        .map(|i| registry().site(&format!("timeline::child{i:04}"), None).unwrap())
        .collect();
    let trace = capture("timeline::wide", || wide(&sites));
    assert_eq!(trace.spans.len(), 1001);
    let svg = svg_of(&trace);
    let rows = labels(&svg);
    // The root and the first children that fit; the rest counted on the root's row.
    assert_eq!(rows.len(), 150, "{rows:?}");
    assert!(rows[0].contains("+851 spans folded"), "{}", rows[0]);
    assert!(rows[1].starts_with("timeline::child0000 ("), "{}", rows[1]);
    assert!(svg.contains("851 spans folded into the rows above them"));
    assert!(!svg.contains("not drawn"));
    assert!(height(&svg) < 150.0 * 22.0 + 60.0);
}

#[test]
fn a_thousand_roots_are_drawn_up_to_the_limit_and_the_rest_counted() {
    let mut trace = capture("timeline::wide", || wide(&[]));
    let root = Arc::clone(&trace.spans[0]);
    // Spans whose parents were never seen: each one a root of its own.
    trace.spans = (0..1000u64)
        .map(|i| {
            let mut s = (*root).clone();
            s.span_id = SpanId::from_u64(i + 1);
            s.parent_id = Some(SpanId::from_u64(1_000_000 + i));
            s.name = Box::leak(format!("timeline::orphan{i}").into_boxed_str());
            s.start_unix_ns += i * 1000;
            Arc::new(s)
        })
        .collect();
    let svg = svg_of(&trace);
    assert_eq!(labels(&svg).len(), 149);
    assert!(svg.contains(">851 more spans not drawn"), "{svg}");
}

/// A trace whose bars sit where labels are hard to place: wide and narrow, at both ends, named
/// long, short and hostile.
fn awkward_trace() -> Trace {
    let mut trace = capture("timeline::wide", || wide(&[]));
    let root = (*trace.spans[0]).clone();
    let t0 = root.start_unix_ns;
    let total = 1_000_000_u64;
    let long = "timeline::a_function_with_a_rather_long_name_that_will_not_fit_in_a_narrow_bar";
    let huge: &'static str = Box::leak(format!("timeline::{}", "x".repeat(400)).into_boxed_str());
    let shapes: [(&'static str, u64, u64); 9] = [
        ("timeline::root", 0, total),
        (long, 0, 5_000),
        (long, total - 5_000, 5_000),
        (long, total / 2, 3_000),
        (huge, 0, total),
        ("timeline::<&\"'>\u{0}\u{1b}\u{fffe} 名前 🦀 \u{202e}rtl", 400_000, 10_000),
        ("timeline::half", 250_000, 500_000),
        ("a", 999_000, 1_000),
        ("timeline::名前名前名前名前名前名前名前名前名前名前名前名前", 600_000, 20_000),
    ];
    trace.spans = shapes
        .iter()
        .enumerate()
        .map(|(i, &(name, start, duration))| {
            let mut s: SpanRecord = root.clone();
            s.span_id = SpanId::from_u64(i as u64 + 1);
            s.parent_id = (i > 0).then(|| SpanId::from_u64(1));
            s.name = name;
            s.start_unix_ns = t0 + start;
            s.duration_ns = duration;
            s.events.clear();
            Arc::new(s)
        })
        .collect();
    trace.root = SpanId::from_u64(1);
    trace
}

#[test]
fn labels_sit_inside_or_beside_their_bars_in_chromium() {
    let trace = awkward_trace();
    let svg = svg_of(&trace);
    assert_eq!(labels(&svg).len(), 9, "valid XML, one row per span");
    // Laid out by the browser with its own fonts, measured with its own geometry.
    let page = format!(
        "<!doctype html><html><body>{svg}<pre id=\"result\"></pre><script>{CHECK}</script></body></html>"
    );
    let file = std::env::temp_dir().join(format!("monitor-timeline-{}.html", std::process::id()));
    std::fs::write(&file, page).unwrap();
    let url = format!("file://{}", file.display());
    let out = common::chromium(&["--dump-dom"], &url);
    let png = common::screenshot(&url, 1220, 320);
    let _ = std::fs::remove_file(&file);
    let (Some(out), Some(png)) = (out, png) else { return };
    let dom = String::from_utf8_lossy(&out.stdout);
    let result = dom.split("<pre id=\"result\">").nth(1).unwrap().split("</pre>").next().unwrap();
    assert_eq!(result, "9 rows, every label placed", "{result}");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000);
}

/// In the page: each row's label is inside its bar or clear of it, and every text is inside
/// the picture.
const CHECK: &str = r"
const svg = document.querySelector('svg');
const width = svg.viewBox.baseVal.width;
const bad = [];
for (const t of svg.querySelectorAll('text')) {
  const b = t.getBBox();
  if (b.x < -0.5 || b.x + b.width > width + 0.5) bad.push('outside the picture: ' + t.textContent);
}
const rows = svg.querySelectorAll('g.span');
for (const g of rows) {
  const r = g.querySelector('rect').getBBox();
  const b = g.querySelector('text').getBBox();
  const inside = b.x >= r.x - 0.5 && b.x + b.width <= r.x + r.width + 0.5;
  const clear = b.x + b.width <= r.x + 0.5 || b.x >= r.x + r.width - 0.5;
  if (!inside && !clear) bad.push('across its bar: ' + g.querySelector('text').textContent);
}
document.getElementById('result').textContent =
  bad.length ? bad.join('\n') : rows.length + ' rows, every label placed';
";
