//! The table of views: every path the monitor serves, what it answers with and how it is
//! drawn. The router, the index page's links and the documentation test all read it: a new
//! view is a renderer and one line here.

use std::fmt::Write;

use monitor_core::trace::{failed_traces, in_flight, slow_traces};
use monitor_core::Snapshot;

use crate::render;

pub(crate) const PLAIN: &str = "text/plain; charset=utf-8";
pub(crate) const JSON: &str = "application/json";
pub(crate) const SVG: &str = "image/svg+xml";
pub(crate) const DOT: &str = "text/vnd.graphviz; charset=utf-8";
pub(crate) const HTML: &str = "text/html; charset=utf-8";
/// YAML has a registered type since RFC 9512.
pub(crate) const YAML: &str = "application/yaml";

/// How a captured trace is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TraceFormat {
    Json,
    Svg,
    Text,
}

/// How a view is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Draw {
    /// From a snapshot of the registry (the function views take `?filter=`).
    Snapshot(fn(&Snapshot, &mut String)),
    /// `/funcs/json`, written while it is sent.
    FunctionsJson,
    /// `/`: the index, from a snapshot and the objectives' budgets.
    Index,
    /// `/function?name=`: one function's page, with the kept traces it is in.
    Function,
    /// `/metrics`: Prometheus or OpenMetrics as the scraper asks, written while it is sent.
    Metrics,
    /// From live state, not a snapshot: recorded calls in flight, kept traces, the history.
    Live(fn(&mut String)),
    /// Waits for the next matching call and answers with its trace.
    Capture(TraceFormat),
}

/// One view: its paths (the first is the one the index links to), its content type, its
/// title on the index (none: not linked), whether it takes `?filter=`, and how it is drawn.
pub(crate) struct View {
    pub(crate) paths: &'static [&'static str],
    pub(crate) content_type: &'static str,
    pub(crate) title: Option<&'static str>,
    pub(crate) filter: bool,
    pub(crate) draw: Draw,
}

const fn view(
    paths: &'static [&'static str],
    content_type: &'static str,
    title: Option<&'static str>,
    filter: bool,
    draw: Draw,
) -> View {
    View { paths, content_type, title, filter, draw }
}

fn ps_text(out: &mut String) {
    // The captures armed, first: a wait that has not caught its call yet shows nothing below.
    for w in monitor_core::trace::watches() {
        let waited = w.since.elapsed().unwrap_or_default();
        let _ = match w.collecting {
            None => writeln!(out, "capture waiting {:.1?}: {}", waited, printable_line(&w.what)),
            Some(t) => writeln!(out, "capture collecting trace {t}: {}", printable_line(&w.what)),
        };
    }
    let functions = monitor_core::registry().snapshot().functions;
    render::trace::write_in_flight_trees_text(&in_flight(), &functions, out);
}

/// `s` on one line: control characters (a newline from a client's regex) as spaces.
fn printable_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

fn watches_json(out: &mut String) {
    render::trace::write_watches_json(&monitor_core::trace::watches(), out);
}

fn ps_json(out: &mut String) {
    render::trace::write_in_flight_trees_json(&in_flight(), out);
}

fn ps_dot(out: &mut String) {
    render::trace::write_in_flight_trees_dot(&in_flight(), out);
}

fn errors_json(out: &mut String) {
    render::trace::write_traces_json(&failed_traces(), out);
}

fn errors_svg(out: &mut String) {
    render::trace::write_traces_svg(&failed_traces(), out);
}

fn slow_json(out: &mut String) {
    render::trace::write_traces_json(&slow_traces(), out);
}

fn slow_svg(out: &mut String) {
    render::trace::write_traces_svg(&slow_traces(), out);
}

fn errors_text(out: &mut String) {
    render::trace::write_traces_text(&failed_traces(), out);
}

fn slo_rules(out: &mut String) {
    render::slo::write_slo_rules(&monitor_core::objectives(), out);
}

fn slo_tests(out: &mut String) {
    render::slo::write_slo_tests(&monitor_core::objectives(), out);
}

fn slo_json(out: &mut String) {
    render::slo::write_slo_json(&monitor_core::objective_status(), out);
}

fn history_json(out: &mut String) {
    render::history::write_history_json(&monitor_core::history(), out);
}

/// Every view, in the order of the index's links.
pub(crate) const VIEWS: &[View] = &[
    view(&["/"], HTML, None, true, Draw::Index),
    view(&["/function"], HTML, None, false, Draw::Function),
    view(
        &["/funcs", "/funcs/", "/funcs/text"],
        PLAIN,
        Some("functions (text)"),
        true,
        Draw::Snapshot(render::text::write_text),
    ),
    view(&["/funcs/json"], JSON, Some("functions (JSON)"), true, Draw::FunctionsJson),
    view(
        &["/funcs/svg"],
        SVG,
        Some("call graph (SVG)"),
        true,
        Draw::Snapshot(render::graph::write_graph_svg),
    ),
    view(
        &["/funcs/dot"],
        DOT,
        Some("call graph (Graphviz dot)"),
        true,
        Draw::Snapshot(render::dot::write_dot),
    ),
    view(
        &["/stats", "/stats/", "/stats/text"],
        PLAIN,
        Some("all statistics (text)"),
        true,
        Draw::Snapshot(render::stats::write_stats_text),
    ),
    view(
        &["/stats/json"],
        JSON,
        Some("all statistics (JSON)"),
        true,
        Draw::Snapshot(render::stats::write_stats_json),
    ),
    // The content type follows the scraper's `Accept`.
    view(&["/metrics"], PLAIN, Some("Prometheus metrics"), true, Draw::Metrics),
    view(
        &["/debug/vars"],
        JSON,
        Some("expvar (JSON)"),
        true,
        Draw::Snapshot(render::expvar::write_expvar),
    ),
    view(
        &["/active", "/active/", "/active/text"],
        PLAIN,
        Some("in flight by category"),
        true,
        Draw::Snapshot(render::in_flight::write_in_flight_text),
    ),
    view(
        &["/active/json"],
        JSON,
        None,
        true,
        Draw::Snapshot(render::in_flight::write_in_flight_json),
    ),
    // (`/history/json` has always let a `filter` pass; it is the whole process's.)
    view(&["/history/json"], JSON, Some("trends (JSON)"), true, Draw::Live(history_json)),
    view(
        &["/slo/json"],
        JSON,
        Some("objectives: budgets and burn rates (JSON)"),
        false,
        Draw::Live(slo_json),
    ),
    view(
        &["/slo/rules.yaml"],
        YAML,
        Some("objectives: Prometheus rules"),
        false,
        Draw::Live(slo_rules),
    ),
    view(
        &["/slo/tests.yaml"],
        YAML,
        Some("objectives: promtool tests of the rules"),
        false,
        Draw::Live(slo_tests),
    ),
    view(
        &["/ps", "/ps/", "/ps/text"],
        PLAIN,
        Some("calls in flight (recorded traces)"),
        false,
        Draw::Live(ps_text),
    ),
    view(&["/ps/json"], JSON, None, false, Draw::Live(ps_json)),
    view(&["/ps/dot"], DOT, None, false, Draw::Live(ps_dot)),
    view(&["/trace/svg"], SVG, None, false, Draw::Capture(TraceFormat::Svg)),
    view(&["/trace/json"], JSON, None, false, Draw::Capture(TraceFormat::Json)),
    view(&["/trace/text"], PLAIN, None, false, Draw::Capture(TraceFormat::Text)),
    view(&["/trace/errors/svg"], SVG, Some("failed traces (SVG)"), false, Draw::Live(errors_svg)),
    view(
        &["/trace/errors", "/trace/errors/json"],
        JSON,
        Some("failed traces (JSON)"),
        false,
        Draw::Live(errors_json),
    ),
    view(
        &["/trace/slow", "/trace/slow/json"],
        JSON,
        Some("slowest traces per entry function (JSON)"),
        false,
        Draw::Live(slow_json),
    ),
    view(&["/trace/slow/svg"], SVG, Some("slowest traces (SVG)"), false, Draw::Live(slow_svg)),
    view(&["/trace/watches"], JSON, Some("captures armed (JSON)"), false, Draw::Live(watches_json)),
    view(
        &["/trace/errors/text"],
        PLAIN,
        Some("failed traces (call stacks)"),
        false,
        Draw::Live(errors_text),
    ),
];

/// The view at `path` (under the prefix), if any.
pub(crate) fn find(path: &str) -> Option<&'static View> {
    VIEWS.iter().find(|v| v.paths.contains(&path))
}

/// The index's links: (relative href, title).
pub(crate) fn links() -> impl Iterator<Item = (&'static str, &'static str)> {
    VIEWS.iter().filter_map(|v| Some((v.paths[0].trim_start_matches('/'), v.title?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The crate documentation and the README list every view (by its first path).
    #[test]
    fn the_docs_list_every_view() {
        let crate_doc = include_str!("lib.rs");
        let readme = include_str!("../../README.md");
        for v in VIEWS {
            let path = format!("`{}`", v.paths[0]);
            assert!(crate_doc.contains(&path), "the crate docs' table misses {path}");
            assert!(readme.contains(&path), "the README's table misses {path}");
        }
    }

    #[test]
    fn paths_are_unique_and_found() {
        let mut all: Vec<&str> = VIEWS.iter().flat_map(|v| v.paths.iter().copied()).collect();
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "a path in two views");
        for p in all {
            assert!(find(p).is_some_and(|v| v.paths.contains(&p)));
        }
        assert!(links().all(|(href, _)| !href.starts_with('/')));
    }
}
