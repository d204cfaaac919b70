//! Presentation and export for `monitor`: renderers over a [`monitor_core::Snapshot`], and the
//! HTTP server that serves them.
//!
//! # Example
//!
//! ```
//! use monitor_core::monitored;
//!
//! #[monitored]
//! fn work() {}
//!
//! work();
//! // A server on its own thread: browse http://127.0.0.1:9000/ (here: any free port).
//! let server = monitor_http::serve("127.0.0.1:0").unwrap();
//! println!("monitor at http://{}/", server.local_addr());
//!
//! // Or render without a server, e.g. the call graph to a file for `dot -Tsvg`.
//! let mut dot = String::new();
//! monitor_http::write_dot(&monitor_core::registry().snapshot(), &mut dot);
//! assert!(dot.contains("entry ->"));
//! server.shutdown();
//! ```
//!
//! # Views
//!
//! | path | what | function |
//! | --- | --- | --- |
//! | `/` | HTML index: links and a table of the functions | [`write_html`] |
//! | `/function` | one function's page (`?name=`): counts, errors by kind, latency histogram and quantiles, callers and callees, its kept traces, live | [`write_function_html`] |
//! | `/funcs`, `/funcs/text` | per function: callers, counts, errors, latency quantiles | [`write_text`] |
//! | `/funcs/json` | the same as JSON | [`write_functions_json`] |
//! | `/funcs/svg` | the call graph, laid out in process (no Graphviz), nodes linked to their pages | [`write_graph_svg`] |
//! | `/funcs/dot` | the call graph for Graphviz | [`write_dot`] |
//! | `/stats`, `/stats/text` | every series, `measurement,tag=value field value` | [`write_stats_text`] |
//! | `/stats/json` | `[measurement, {tags}, field, value]` | [`write_stats_json`] |
//! | `/metrics` | Prometheus text format, or OpenMetrics when asked | [`write_prometheus`] |
//! | `/debug/vars` | expvar-style JSON (Go's `expvar`, for Datadog's go_expvar check) | [`write_expvar`] |
//! | `/trace/svg`, `/trace/json`, `/trace/text` | the next matching call's tree of spans (`regex=`, `timeout=`), or a held trace (`trace_id=`) | [`write_trace_svg`], [`write_trace_json`], [`write_trace_text`] |
//! | `/history/json` | the collector's history: calls/s, errors/s, p99, in flight, users | [`write_history_json`] |
//! | `/active`, `/active/json` | calls in flight per category | [`write_in_flight_text`], [`write_in_flight_json`] |
//! | `/ps`, `/ps/json`, `/ps/dot` | recorded calls in flight as trees | [`write_in_flight_trees_text`], [`write_in_flight_trees_json`], [`write_in_flight_trees_dot`] |
//! | `/trace/errors`, `/trace/errors/svg`, `/trace/errors/text` | the kept failed traces | [`write_traces_json`], [`write_traces_svg`], [`write_traces_text`] |
//! | `/trace/slow`, `/trace/slow/svg` | the kept slowest traces of each entry function | [`write_traces_json`], [`write_traces_svg`] |
//! | `/trace/watches` | the captures armed now (also listed atop `/ps`) | [`write_watches_json`] |
//! | `/slo/json` | every objective's budget left and burn rates, computed in the process | [`write_slo_json`] |
//! | `/slo/rules.yaml` | Prometheus recording and multi-window, multi-burn-rate alerting rules for them | [`write_slo_rules`] |
//! | `/slo/tests.yaml` | promtool unit tests of those rules | [`write_slo_tests`] |
//!
//! The function views take `?filter=<part of a name>`. Every renderer is a pure function of a
//! snapshot; the server reads the statistics and never blocks the instrumented program.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod body;
#[cfg(any(feature = "otlp", feature = "zipkin"))]
pub mod export;
pub mod identity;
pub mod layer;
pub mod propagation;
mod render;
mod routes;
mod server;
mod views;

pub use body::Body;
pub use render::dot::write_dot;
pub use render::expvar::write_expvar;
pub use render::function::write_function_html;
pub use render::graph::{write_graph_svg, write_graph_svg_limited};
pub use render::history::write_history_json;
pub use render::html::write_html;
pub use render::in_flight::{write_in_flight_json, write_in_flight_text};
pub use render::json::write_functions_json;
pub use render::prometheus::{write_prometheus, Buckets, BucketsError, ExpositionFormat};
pub use render::slo::{write_slo_json, write_slo_rules, write_slo_tests};
pub use render::stats::{write_stats_json, write_stats_text};
pub use render::text::write_text;
pub use render::trace::{
    write_in_flight_trees_dot, write_in_flight_trees_json, write_in_flight_trees_text,
    write_trace_json, write_trace_svg, write_trace_text, write_traces_json, write_traces_svg,
    write_traces_text, write_watches_json,
};
pub use routes::{PrefixError, Routes};
#[cfg(feature = "axum")]
pub use server::axum_router;
pub use server::{serve, Config, MonitorService, ServeError, Server};

/// The README's examples, compiled and run as doctests so they cannot rot. They live here
/// because this crate sees both `monitor-core` and the server. The web-service examples need
/// axum, reqwest and hyper-util's client, which the workspace's test crates switch on: `cargo
/// test` runs these; `cargo test -p monitor-http` alone, built without them, leaves them out.
#[cfg(all(doctest, feature = "axum", feature = "reqwest"))]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

/// Generated inputs for the parsers' tests: strings built from pieces that parsers trip on.
#[cfg(test)]
pub(crate) mod fuzz {
    /// A seeded xorshift generator: the same inputs every run, so a failure reproduces.
    pub(crate) struct Inputs(pub(crate) u64);

    const PIECES: &[&str] = &[
        "%",
        "%2",
        "%20",
        "%+f",
        "%zz",
        "%ff",
        "%e2%82",
        "+",
        "&",
        "=",
        ";",
        ",",
        " ",
        "\t",
        "\0",
        "\x7f",
        "\"",
        "'",
        "\\",
        "-",
        "_",
        ".",
        ":",
        "/",
        "?",
        "#",
        "0",
        "1",
        "9",
        "00",
        "ms",
        "s",
        "m",
        "h",
        "e",
        "E",
        "inf",
        "NaN",
        "-0",
        "1e9",
        "regex",
        "timeout",
        "trace_id",
        "preselect",
        "filter",
        "true",
        "false",
        "4bf92f3577b34da6a3ce929d0e0e4736",
        "ABCDEF",
        "00f067aa0ba902b7",
        "01",
        "ff",
        "é",
        "🦀",
        "\u{2028}",
        "[",
        "]",
        "(",
        ")",
        "*",
        "{",
        "}",
        "session",
        "for",
        "by",
        "proto",
        "host",
        "unknown",
        "[::1]",
        "127.0.0.1",
        "::ffff:1.2.3.4",
    ];

    impl Inputs {
        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// A string of up to `max` pieces.
        pub(crate) fn string(&mut self, max: u64) -> String {
            let n = self.next_u64() % (max + 1);
            (0..n).map(|_| PIECES[(self.next_u64() % PIECES.len() as u64) as usize]).collect()
        }
    }
}
