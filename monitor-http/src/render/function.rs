//! `/function?name=…`: one function's page. Counts by outcome, errors by kind, the latency
//! distribution drawn as a histogram (successes and failures), quantiles, callers and callees
//! with counts, allocations per call, its kept failed and slowest traces, and a capture button.
//! A small inline script refreshes the numbers from `/funcs/json` while the page is open.

use std::fmt::Write;
use std::sync::Arc;

use monitor_core::trace::Trace;
use monitor_core::{Distribution, FunctionPoint, FunctionStats, Snapshot};

use super::html::{capture_query, capture_regex, percent};
use super::util::{html, Nanos};

/// Traces listed per kind on the page.
const TRACES_LISTED: usize = 10;
/// Columns of the latency histogram.
const BINS: usize = 48;

/// `/function?name=<name>`: the page of the monitored function `name` (the first of that name,
/// if several share it), with its `trend` ([`monitor_core::function_history`]) and the kept
/// `failed` and `slow` traces it takes part in. Returns false, writing nothing, when no
/// function has that name.
///
/// ```
/// let snap = monitor_core::registry().snapshot();
/// let mut out = String::new();
/// assert!(!monitor_http::write_function_html(&snap, "no such function", &[], &[], &[], &mut out));
/// ```
pub fn write_function_html(
    snapshot: &Snapshot,
    name: &str,
    trend: &[FunctionPoint],
    failed: &[Arc<Trace>],
    slow: &[Arc<Trace>],
    out: &mut String,
) -> bool {
    let Some(f) = snapshot.function(name) else { return false };
    let namesakes = snapshot.functions.iter().filter(|g| g.name == name).count();
    head(f, out);
    if namesakes > 1 {
        let _ = writeln!(
            out,
            "<p class=\"muted\">{} functions share this name; this page shows the one in <code>",
            namesakes
        );
        html(f.module, out);
        out.push_str("</code>.</p>");
    }
    counts(f, out);
    trends(trend, out);
    latency(f, out);
    graph(snapshot, f, out);
    traces("Failed traces", f.name, failed, out);
    traces("Slowest traces", f.name, slow, out);
    live_script(f.name, out);
    out.push_str("</body></html>\n");
    true
}

fn head(f: &FunctionStats, out: &mut String) {
    out.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>"
    ));
    html(f.name, out);
    out.push_str(concat!(
        " · monitor</title><style>",
        "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}",
        "table{border-collapse:collapse;margin-bottom:1em}th,td{padding:.2em .6em;text-align:right}",
        "th{border-bottom:2px solid #888}tbody th{border:0;text-align:left}td.name,th.name{text-align:left;font-family:ui-monospace,monospace}",
        "h1{font-family:ui-monospace,monospace;font-size:1.3em;word-break:break-all}",
        ".muted{color:#888}#counts .err{color:#b35c00}#counts .panic{color:#c00}.cols{display:flex;flex-wrap:wrap;gap:2em}",
        "</style></head><body>\n<p><a href=\"./\">← all functions</a></p>\n<h1>"
    ));
    html(f.name, out);
    out.push_str("</h1>\n<p class=\"muted\">");
    html(f.module, out);
    if !f.file.is_empty() {
        let _ = write!(out, " — {}:{}", f.file, f.line);
    }
    if let Some(c) = f.category {
        out.push_str(" — category ");
        html(c, out);
    }
    out.push_str("</p>\n<form action=\"trace/svg\">");
    out.push_str("<input type=\"hidden\" name=\"regex\" value=\"");
    // The form sends the field as is; the link form of the same capture is percent-encoded.
    html(&capture_regex(f.name), out);
    out.push_str(concat!(
        "\">Capture the next call within <input name=\"timeout\" value=\"30s\" size=\"5\"> ",
        "<button>trace (SVG)</button> <button formaction=\"trace/json\">trace (JSON)</button> ",
        "<a href=\"trace/svg?regex="
    ));
    html(&capture_query(f.name), out);
    out.push_str("\">link</a></form>\n");
}

/// Calls/s, errors/s and p99 over the collector's last half hour, for this function alone.
fn trends(trend: &[FunctionPoint], out: &mut String) {
    out.push_str("<h2>Trends</h2>\n<div class=\"cols\" id=\"trends\">");
    let rate = |v: f64| format!("{v:.1}/s");
    let series = |pick: fn(&FunctionPoint) -> f64| trend.iter().map(pick).collect::<Vec<f64>>();
    super::history::chart("calls", &series(|p| p.calls_per_s), &rate, out);
    super::history::chart("errors", &series(|p| p.errors_per_s), &rate, out);
    let ns = |v: f64| Nanos(v as u128).to_string();
    super::history::chart("p99", &series(|p| p.p99_ns as f64), &ns, out);
    out.push_str("</div>\n");
}

fn counts(f: &FunctionStats, out: &mut String) {
    let (allocs, bytes) = f.allocations_per_call();
    out.push_str("<h2>Calls</h2>\n<table id=\"counts\"><thead><tr>");
    for h in ["calls", "in flight", "highwater", "success", "errors", "panics", "cancelled"] {
        let _ = write!(out, "<th>{h}</th>");
    }
    let _ = writeln!(
        out,
        "<th>allocations / call</th><th>bytes / call</th></tr></thead><tbody><tr>\
         <td data-k=\"calls\">{}</td><td data-k=\"current\">{}</td><td data-k=\"highwater\">{}</td>\
         <td data-k=\"success\">{}</td><td class=\"err\" data-k=\"errors\">{}</td>\
         <td class=\"panic\" data-k=\"panics\">{}</td><td data-k=\"cancelled\">{}</td>\
         <td>{allocs:.1}</td><td>{bytes:.0}</td></tr></tbody></table>",
        f.calls(),
        f.in_flight,
        f.highwater,
        f.success,
        f.errors_total(),
        f.panics,
        f.cancelled
    );
    if f.errors.is_empty() {
        return;
    }
    out.push_str(concat!(
        "<h2>Errors by kind</h2>\n<table id=\"errors\"><thead><tr><th class=\"name\">kind</th>",
        "<th>count</th></tr></thead><tbody>"
    ));
    let mut kinds = f.errors.clone();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    for (kind, n) in kinds {
        out.push_str("<tr><td class=\"name\">");
        html(kind, out);
        let _ = write!(out, "</td><td>{n}</td></tr>");
    }
    out.push_str("</tbody></table>\n");
}

fn latency(f: &FunctionStats, out: &mut String) {
    out.push_str(
        "<h2>Latency</h2>\n<div class=\"cols\"><table id=\"quantiles\"><thead><tr><th></th>",
    );
    let sets = [("success", &f.success_times), ("failure", &f.failure_times)];
    for (set, _) in sets {
        let _ = write!(out, "<th>{set}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    let row = |label: &str, pick: &dyn Fn(&Distribution) -> Option<u64>, out: &mut String| {
        let _ = write!(out, "<tr><th>{label}</th>");
        for (_, d) in sets {
            match pick(d).filter(|_| d.count > 0) {
                Some(ns) => {
                    let _ = write!(out, "<td>{}</td>", Nanos(u128::from(ns)));
                }
                None => out.push_str("<td class=\"muted\">-</td>"),
            }
        }
        out.push_str("</tr>");
    };
    let _ = write!(
        out,
        "<tr><th>count</th><td>{}</td><td>{}</td></tr>",
        f.success_times.count, f.failure_times.count
    );
    row("min", &|d| Some(d.min_ns), out);
    for q in [0.5, 0.9, 0.99, 0.999] {
        row(&format!("p{}", q * 100.0), &|d| Some(d.quantile(q)), out);
    }
    row("max", &|d| Some(d.max_ns), out);
    row("mean", &|d| Some(d.avg_ns() as u64), out);
    out.push_str("</tbody></table>\n");
    histogram_svg(&f.success_times, &f.failure_times, out);
    out.push_str("</div>\n");
}

/// The latency distribution as an SVG histogram on a logarithmic time axis: each column's
/// successes in blue, failures in orange above them.
pub(crate) fn histogram_svg(success: &Distribution, failure: &Distribution, out: &mut String) {
    let (w, h, left, bottom) = (560.0, 180.0, 40.0, 24.0);
    let all = success.buckets.iter().chain(&failure.buckets);
    let lo = all.clone().map(|b| b.low_ns.max(1)).min();
    let hi = all.map(|b| b.high_ns.max(2)).max();
    let _ = write!(
        out,
        "<svg id=\"histogram\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
         viewBox=\"0 0 {w} {h}\" font-size=\"10\" font-family=\"sans-serif\">"
    );
    let (Some(lo), Some(hi)) = (lo, hi) else {
        let _ = write!(
            out,
            "<text x=\"{left}\" y=\"{}\" fill=\"#888\">no calls yet</text></svg>",
            h / 2.0
        );
        return;
    };
    let (llo, lhi) = ((lo as f64).log10(), (hi as f64).log10().max((lo as f64).log10() + 1.0));
    let bin_of = |ns: u64| {
        let x = ((ns.max(1) as f64).log10() - llo) / (lhi - llo);
        ((x * BINS as f64) as usize).min(BINS - 1)
    };
    // Relative bucket counts scaled to each distribution's exact count.
    let mut bins = [[0f64; 2]; BINS];
    for (i, d) in [success, failure].into_iter().enumerate() {
        let total: u64 = d.buckets.iter().map(|b| b.count).sum();
        if total == 0 {
            continue;
        }
        let scale = d.count as f64 / total as f64;
        for b in &d.buckets {
            bins[bin_of(b.low_ns + (b.high_ns - b.low_ns) / 2)][i] += b.count as f64 * scale;
        }
    }
    let top = bins.iter().map(|b| b[0] + b[1]).fold(0.0, f64::max).max(1.0);
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - 8.0;
    let col = plot_w / BINS as f64;
    for (i, [s, e]) in bins.iter().enumerate() {
        let x = left + i as f64 * col;
        let sh = s / top * plot_h;
        let eh = e / top * plot_h;
        let base = 8.0 + plot_h;
        if *s > 0.0 {
            let _ = write!(
                out,
                "<rect class=\"success\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{sh:.1}\" fill=\"#4a7bd0\"><title>{s:.0} successes</title></rect>",
                base - sh,
                col - 1.0
            );
        }
        if *e > 0.0 {
            let _ = write!(
                out,
                "<rect class=\"failure\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{eh:.1}\" fill=\"#e08a2c\"><title>{e:.0} failures</title></rect>",
                base - sh - eh,
                col - 1.0
            );
        }
    }
    // Ticks at each power of ten within the range.
    let base = 8.0 + plot_h;
    let _ = write!(
        out,
        "<line x1=\"{left}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" stroke=\"#888\"/>",
        w - 8.0
    );
    let mut decade = llo.ceil() as i32;
    while f64::from(decade) <= lhi {
        let x = left + (f64::from(decade) - llo) / (lhi - llo) * plot_w;
        let ns = 10f64.powi(decade) as u128;
        let _ = write!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{base}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#888\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
            base + 4.0,
            base + 15.0,
            Nanos(ns)
        );
        decade += 1;
    }
    let _ = write!(out, "<text x=\"2\" y=\"14\" fill=\"#555\">{top:.0}</text></svg>");
}

fn graph(snapshot: &Snapshot, f: &FunctionStats, out: &mut String) {
    out.push_str("<div class=\"cols\"><div><h2>Callers</h2>\n<table id=\"callers\"><tbody>");
    let mut callers: Vec<(&str, u64)> =
        f.callers.iter().map(|c| (c.caller.name(), c.count)).collect();
    callers.sort_by_key(|c| std::cmp::Reverse(c.1));
    link_rows(&callers, out);
    out.push_str("</tbody></table></div><div><h2>Callees</h2>\n<table id=\"callees\"><tbody>");
    let mut callees: Vec<(&str, u64)> = snapshot
        .functions
        .iter()
        .filter_map(|g| {
            let n = g.callers.iter().filter(|c| c.caller.name() == f.name).map(|c| c.count).sum();
            (n > 0).then_some((g.name, n))
        })
        .collect();
    callees.sort_by_key(|c| std::cmp::Reverse(c.1));
    link_rows(&callees, out);
    out.push_str("</tbody></table></div></div>\n");
}

/// Rows of `name count`, each name a link to its own page (`entry` and other callers that are
/// no function stay text).
fn link_rows(rows: &[(&str, u64)], out: &mut String) {
    if rows.is_empty() {
        out.push_str("<tr><td class=\"muted\">none</td></tr>");
    }
    for (name, n) in rows {
        out.push_str("<tr><td class=\"name\"><a href=\"function?name=");
        html(&percent(name), out);
        out.push_str("\">");
        html(name, out);
        let _ = write!(out, "</a></td><td>{n}</td></tr>");
    }
}

fn traces(title: &str, name: &str, traces: &[Arc<Trace>], out: &mut String) {
    let of_this: Vec<(&Arc<Trace>, u64, String)> = traces
        .iter()
        .filter_map(|t| {
            let span = t.spans.iter().filter(|s| s.name == name).max_by_key(|s| s.duration_ns)?;
            Some((t, span.duration_ns, span.outcome.to_string()))
        })
        .take(TRACES_LISTED)
        .collect();
    let _ = writeln!(out, "<h2>{title}</h2>");
    if of_this.is_empty() {
        out.push_str("<p class=\"muted\">none kept</p>\n");
        return;
    }
    out.push_str(concat!(
        "<table class=\"traces\"><thead><tr><th class=\"name\">trace</th><th class=\"name\">root</th>",
        "<th>this call</th><th class=\"name\">outcome</th></tr></thead><tbody>"
    ));
    for (t, ns, outcome) in of_this {
        let id = t.trace_id.to_string();
        let _ = write!(out, "<tr><td class=\"name\"><a href=\"trace/svg?trace_id={id}\">{id}</a></td><td class=\"name\">");
        html(t.root_span().map_or("", |s| s.name), out);
        let _ = write!(
            out,
            "</td><td>{}</td><td class=\"name\">{outcome}</td></tr>",
            Nanos(u128::from(ns))
        );
    }
    out.push_str("</tbody></table>\n");
}

/// Refreshes the counts every 2 s from `/funcs/json`, filtered to this name, until the page
/// closes. The name reaches the script as a JSON string inside a `<script>` element, where
/// `<` is written `\u003c` so no name can end the element.
fn live_script(name: &str, out: &mut String) {
    let mut literal = String::new();
    super::util::json_str(name, &mut literal);
    let literal = literal.replace('<', "\\u003c");
    let _ = write!(
        out,
        "<script>const NAME={literal};\n{}</script>\n",
        concat!(
            "async function refresh(){try{",
            "const r=await fetch('funcs/json?filter='+encodeURIComponent(NAME));",
            "const all=await r.json();const f=(all.functions||all).find(x=>x.name===NAME);if(!f)return;",
            "const errors=Object.values(f.errors||{}).reduce((a,b)=>a+b,0);",
            "const v={current:f.current,highwater:f.highwater,success:f.success,errors:errors,",
            "panics:f.panics,cancelled:f.cancelled,calls:f.success+errors+f.panics+f.cancelled};",
            "for(const [k,x] of Object.entries(v)){const c=document.querySelector('[data-k=\"'+k+'\"]');",
            "if(c&&x!==undefined){if(!('first' in c.dataset))c.dataset.first=c.textContent;",
            "c.textContent=x;}}",
            "document.body.dataset.refreshed=Date.now();}catch(e){}}",
            "setInterval(refresh,2000);"
        )
    );
}
