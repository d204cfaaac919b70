//! Every view stays valid for its strictest real reader whatever the names, tags and values:
//! function names, error kinds, scopes, instrument names, tags, annotations and events drawn
//! from a seeded generator of hostile strings (control characters, NUL, quotes, markup,
//! separators, line breaks, U+2028, U+FFFE, emoji, 20,000 characters), and gauges of every
//! awkward float, rendered by every view and read back by serde_json, roxmltree, Graphviz and
//! promtool. One test: the names it makes would show in the views of tests beside it.

mod common;

use std::time::Duration;

use monitor_core::trace::{Watch, WatchFilter};
use monitor_core::{registry, Outcome, Scope};
use monitor_http::{Buckets, ExpositionFormat};

/// A small, seeded generator (xorshift): the same strings every run, so a failure reproduces.
struct Strings(u64);

const PIECES: &[&str] = &[
    "\0", "\x01", "\x1b[31m", "\x7f", "\t", "\n", "\r\n", "\"", "'", "\\", "\\N", "\\n", "<", ">",
    "&", "&amp;", "]]>", "<!--", "{", "}", "=", ",", ";", ":", "#", "%", "+", " ", "/", "?", "é",
    "中文", "🦀", "\u{2028}", "\u{2029}", "\u{fffe}", "\u{ffff}", "\u{feff}", "\u{200b}", "a", "Z",
    "9", "_", "-", ".", "le", "name",
];

impl Strings {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn string(&mut self) -> String {
        let len = self.next_u64() % 12 + 1;
        (0..len).map(|_| PIECES[(self.next_u64() % PIECES.len() as u64) as usize]).collect()
    }

    fn leaked(&mut self) -> &'static str {
        Box::leak(self.string().into_boxed_str())
    }
}

fn parse_json(what: &str, text: &str) {
    if let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        panic!("{what} is not JSON ({e}):\n{text}");
    }
}

fn parse_xml(what: &str, text: &str) {
    if let Err(e) = roxmltree::Document::parse(text) {
        panic!("{what} is not XML ({e}):\n{text}");
    }
}

#[test]
fn every_view_is_valid_for_any_name_or_value() {
    monitor_core::set_gauge_time_limit(Duration::from_secs(30));
    let mut gen = Strings(0x9e37_79b9_7f4a_7c15);
    let long = "x".repeat(20_000);
    let mut names: Vec<String> = (0..60).map(|_| gen.string()).collect();
    names.push(long.clone());
    names.push(format!("{long}\0"));

    // Functions of hostile names, with hostile error kinds and categories, called.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (i, name) in names.iter().enumerate() {
        let category: Option<&'static str> = if i % 3 == 0 { Some(gen.leaked()) } else { None };
        let site = registry().site(name, category).unwrap();
        let kind = gen.leaked();
        let outcome =
            move |_: &u32| if i % 2 == 0 { Outcome::Error(kind) } else { Outcome::Success };
        rt.block_on(site.instrument(async move { 1u32 }, outcome));
    }

    // Instruments of hostile scopes, names and tags; gauges of every awkward float.
    for (i, value) in [
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        -0.0,
        1e-300,
        123_456_789_012_345_680.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.1,
    ]
    .into_iter()
    .enumerate()
    {
        let scope = Scope::new(&gen.string()).with_tags(&[(&gen.string(), &gen.string())]);
        scope.gauge(&format!("{}{i}", gen.string()), move || value).unwrap();
        scope.counter(&gen.string()).add(-(i as i64));
        scope.float_val(&gen.string()).observe(value);
        scope.meter(&gen.string()).mark(i as u64);
    }

    // A captured trace with hostile annotations and events.
    let traced = registry().site(&names[1], None).unwrap();
    let watch = Watch::start(WatchFilter::function(move |s| std::ptr::eq(s, traced))).unwrap();
    let (key, value, event) = (gen.string(), gen.string(), gen.string());
    rt.block_on(traced.instrument(
        async move {
            monitor_core::trace::annotate(key, value);
            monitor_core::trace::event(event);
            1u32
        },
        |_| Outcome::Error("\u{0}kind\u{1b}"),
    ));
    let trace = watch.wait(Duration::from_secs(10)).unwrap();

    let snap = registry().snapshot();
    let mut out = String::new();
    monitor_http::write_functions_json(&snap, &mut out);
    parse_json("/funcs/json", &out);
    out.clear();
    monitor_http::write_stats_json(&snap, &mut out);
    parse_json("/stats/json", &out);
    out.clear();
    monitor_http::write_expvar(&snap, &mut out);
    parse_json("/debug/vars", &out);
    out.clear();
    monitor_http::write_trace_json(&trace, &mut out);
    parse_json("/trace/json", &out);
    out.clear();
    monitor_http::write_in_flight_json(&snap, &mut out);
    parse_json("/active/json", &out);

    out.clear();
    monitor_http::write_trace_svg(&trace, &mut out);
    parse_xml("/trace/svg", &out);
    out.clear();
    monitor_http::write_traces_svg(&[&trace], &mut out);
    parse_xml("/trace/errors/svg", &out);
    out.clear();
    monitor_http::write_graph_svg(&snap, &mut out);
    parse_xml("/funcs/svg", &out);
    out.clear();
    monitor_http::write_graph_svg_limited(&snap, 1, &mut out);
    parse_xml("/funcs/svg (by module)", &out);
    for name in &names {
        out.clear();
        assert!(monitor_http::write_function_html(&snap, name, &[], &[], &[], &mut out));
        assert!(
            !out.contains('\0') && !out.contains('\u{1b}'),
            "a function page has a control character"
        );
    }
    out.clear();
    monitor_http::write_html(&snap, &mut out);
    assert!(!out.contains('\0') && !out.contains('\u{1b}'), "the index has a control character");

    out.clear();
    monitor_http::write_dot(&snap, &mut out);
    common::check_with("dot", &["-Tsvg", "-o", "/dev/null"], &out);

    // promtool reads the Prometheus text format (OpenMetrics is checked by a real Prometheus
    // scrape in test_prometheus_scrape).
    out.clear();
    monitor_http::write_prometheus(
        &snap,
        &Buckets::default(),
        ExpositionFormat::Prometheus,
        &mut out,
    );
    common::check_with("promtool", &["check", "metrics"], &out);

    // The text views are for people at a terminal: no control character reaches it, and every
    // function or series stays on its line.
    out.clear();
    monitor_http::write_text(&snap, &mut out);
    let functions = out.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(functions, snap.iter_called().count(), "one line per function's name");
    monitor_http::write_stats_text(&snap, &mut out);
    let control = out.chars().find(|&c| c.is_control() && c != '\n');
    assert_eq!(control, None, "a text view has a control character");
}
