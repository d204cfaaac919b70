//! `/`: the HTML index, links to every view and a table of the functions.

use std::fmt::Write;

use monitor_core::{FunctionStats, MetricValue, Snapshot};

use super::util::{html, Nanos};

/// `/`: a page with links to every view, the trend charts of the collector's history
/// ([`monitor_core::history`]), calls in flight by category, and a table of the called functions (name, category,
/// current, highwater, success, errors, panics, cancelled, p50 and p99 of successes); functions
/// never called are listed below it. All links are relative, so the page works under any
/// prefix the routes are mounted at. A small inline script keeps the sections current in
/// place (every 2 s or more, see the README), marking the numbers that changed.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_html(&monitor_core::registry().snapshot(), &mut out);
/// assert!(out.starts_with("<!doctype html>"));
/// ```
pub fn write_html(snapshot: &Snapshot, out: &mut String) {
    write_index(snapshot, &[], out);
}

/// The index page with the table of objectives' budgets.
pub(crate) fn write_index(
    snapshot: &Snapshot,
    objectives: &[monitor_core::ObjectiveStatus],
    out: &mut String,
) {
    out.push_str(concat!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        "<title>monitor</title><style>",
        "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}",
        "table{border-collapse:collapse}th,td{padding:.25em .6em;text-align:right}",
        "th{border-bottom:2px solid #888;position:sticky;top:0;background:#fff}",
        "td.name,th.name{text-align:left;font-family:ui-monospace,monospace}",
        "tr:nth-child(even){background:#f4f4f4}tr.err td.errors{color:#b35c00;font-weight:bold}",
        "tr.panic td.panics{color:#c00;font-weight:bold}.muted{color:#888}",
        "nav a{margin-right:1em}.charts{display:flex;flex-wrap:wrap;gap:1em}",
        "figure.chart{margin:0}figcaption{font-size:12px}",
        "td.changed{animation:changed 2s ease-out}@keyframes changed{from{background:#ffe066}}",
        "</style></head><body>\n<h1>monitor</h1>\n<nav>"
    ));
    for (href, title) in crate::views::links() {
        let _ = write!(out, "<a href=\"{href}\">{title}</a>");
    }
    out.push_str("</nav>\n");
    out.push_str(concat!(
        "<form action=\"trace/svg\" class=\"capture\">Capture the next call of ",
        "<input name=\"regex\" placeholder=\"function name regex\" required> within ",
        "<input name=\"timeout\" value=\"30s\" size=\"5\"> ",
        "<button>trace (SVG)</button> <button formaction=\"trace/json\">trace (JSON)</button>",
        "</form>\n"
    ));
    out.push_str("<div id=\"live-trends\" data-live>\n");
    super::history::write_history_charts(&monitor_core::history(), out);
    super::slo::write_slo_table(objectives, out);
    out.push_str("</div>\n");
    // Hidden until a function is called; the refresh shows it then.
    let hidden = if snapshot.iter_called().next().is_some() { "" } else { " hidden" };
    let _ = writeln!(
        out,
        concat!(
            "<section id=\"graph-section\"{}><h2>Call graph</h2>\n<div class=\"graph\" ",
            "style=\"max-height:640px;overflow:auto;border:1px solid #ddd\"><object id=\"graph\" ",
            "data=\"funcs/svg\" type=\"image/svg+xml\">call graph</object></div></section>"
        ),
        hidden
    );
    out.push_str("<div id=\"live-in-flight\" data-live>\n<h2>In flight by category</h2>\n");
    super::in_flight::write_in_flight_svg(snapshot, out);
    out.push_str("</div>\n<div id=\"live-functions\" data-live>\n");
    let called: Vec<&FunctionStats> = snapshot.iter_called().collect();
    let _ = writeln!(
        out,
        "<p>{} functions monitored, {} called. Durations are of successful calls.</p>",
        snapshot.functions.len(),
        called.len()
    );
    out.push_str(concat!(
        "<table id=\"functions\"><thead><tr><th class=\"name\">function</th>",
        "<th class=\"name\">category</th><th>current</th><th>highwater</th><th>success</th>",
        "<th>errors</th><th>panics</th><th>cancelled</th><th>p50</th><th>p99</th>",
        "<th class=\"name\">trace</th></tr></thead>",
        "<tbody>\n"
    ));
    for f in &called {
        row(f, out);
    }
    out.push_str("</tbody></table>\n");
    let idle: Vec<&FunctionStats> =
        snapshot.functions.iter().filter(|f| f.calls() == 0 && f.in_flight == 0).collect();
    if !idle.is_empty() {
        let _ =
            write!(out, "<details><summary>{} functions never called</summary><ul>", idle.len());
        for f in idle {
            out.push_str("<li class=\"name\">");
            html(f.name, out);
            out.push_str("</li>");
        }
        out.push_str("</ul></details>\n");
    }
    out.push_str("</div>\n");
    // There even when empty, so instruments registered later appear.
    out.push_str("<div id=\"live-metrics\" data-live>\n");
    if !snapshot.metrics.is_empty() {
        metrics_table(snapshot, out);
    }
    out.push_str("</div>\n");
    out.push_str(LIVE_SCRIPT);
    out.push_str("</body></html>\n");
}

/// Keeps the index current without reloading it: every few seconds it fetches the page again
/// and swaps in each `data-live` section (trends and objectives, in flight, the functions, the
/// metrics), marking the cells whose text changed (`class="changed"`, the old text in
/// `data-was`) and keeping an opened list open. It waits twenty times as long as the last fetch
/// took (at least 2 s, at most a minute), so a large page is fetched less often; the call graph
/// is shown once a function is called, and reloaded when the number of called functions
/// changes and at least every 30 s.
const LIVE_SCRIPT: &str = concat!(
    "<script>(()=>{let graphAt=Date.now();",
    "async function refresh(){const t0=performance.now();try{",
    "const r=await fetch(location.href,{cache:'no-store'});if(!r.ok)return;",
    "const doc=new DOMParser().parseFromString(await r.text(),'text/html');",
    "const called=s=>s.querySelectorAll('#functions tr[data-id]').length;const before=called(document);",
    "for(const old of document.querySelectorAll('[data-live]')){",
    "const fresh=doc.getElementById(old.id);if(!fresh)continue;",
    "const rows=new Map();for(const tr of old.querySelectorAll('tr[data-id]'))rows.set(tr.dataset.id,tr);",
    "for(const tr of fresh.querySelectorAll('tr[data-id]')){const was=rows.get(tr.dataset.id);if(!was)continue;",
    "tr.querySelectorAll('td').forEach((td,i)=>{const w=was.cells[i];",
    "if(w&&w.textContent!==td.textContent){td.classList.add('changed');td.dataset.was=w.textContent;}});}",
    "const open=old.querySelector('details[open]'),twin=fresh.querySelector('details');",
    "if(open&&twin)twin.open=true;old.replaceWith(document.adoptNode(fresh));}",
    "const g=document.getElementById('graph'),section=document.getElementById('graph-section');",
    "const now=called(document);if(section&&section.hidden&&now>0)section.hidden=false;",
    "if(g&&now>0&&(now!==before||Date.now()-graphAt>30000)){g.replaceWith(g.cloneNode(true));graphAt=Date.now();}",
    "document.body.dataset.refreshed=Date.now();",
    "}catch(e){}finally{setTimeout(refresh,Math.min(60000,Math.max(2000,(performance.now()-t0)*20)));}}",
    "setTimeout(refresh,2000);})();</script>\n"
);

/// The registered instruments: scope, name, tags, kind and a one-line summary of the values.
fn metrics_table(snapshot: &Snapshot, out: &mut String) {
    out.push_str(concat!(
        "<h2>Metrics</h2>\n<table id=\"metrics\"><thead><tr><th class=\"name\">metric</th>",
        "<th class=\"name\">scope</th><th class=\"name\">tags</th><th class=\"name\">kind</th>",
        "<th class=\"name\">value</th></tr></thead><tbody>\n"
    ));
    for m in &snapshot.metrics {
        let (kind, value) = summary(&m.value);
        out.push_str("<tr><td class=\"name\" title=\"");
        html(m.description.as_deref().unwrap_or(""), out);
        out.push_str("\">");
        html(&m.name, out);
        out.push_str("</td><td class=\"name\">");
        html(&m.scope, out);
        out.push_str("</td><td class=\"name\">");
        let tags: Vec<String> = m.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        html(&tags.join(", "), out);
        let _ = write!(out, "</td><td class=\"name\">{kind}</td><td class=\"name\">");
        html(&value, out);
        if m.stale {
            out.push_str(" <i title=\"its callback missed the time limit\">(stale)</i>");
        }
        out.push_str("</td></tr>\n");
    }
    out.push_str("</tbody></table>\n");
}

fn summary(v: &MetricValue) -> (&'static str, String) {
    let dist = |d: &monitor_core::Distribution| {
        format!(
            "count {}, p50 {}, p99 {}",
            d.count,
            Nanos(u128::from(d.quantile(0.5))),
            Nanos(u128::from(d.quantile(0.99)))
        )
    };
    let vals = |v: &monitor_core::Values| {
        format!(
            "count {}, avg {:.4}, p50 {:.4}, p99 {:.4}",
            v.count,
            v.avg(),
            v.quantile(0.5),
            v.quantile(0.99)
        )
    };
    match v {
        MetricValue::Counter { value, high, low } => {
            ("counter", format!("{value} (high {high}, low {low})"))
        }
        MetricValue::Meter { total, rate } => ("meter", format!("{total} total, {rate:.2}/s")),
        MetricValue::Event { total, rate } => ("event", format!("{total} total, {rate:.2}/s")),
        MetricValue::IntVal(x) => ("int", vals(x)),
        MetricValue::FloatVal(x) => ("float", vals(x)),
        MetricValue::BoolVal { trues, falses, .. } => {
            ("bool", format!("{trues} true, {falses} false"))
        }
        MetricValue::DurationVal(d) => ("duration", dist(d)),
        MetricValue::Timer(d) => ("timer", dist(d)),
        MetricValue::Gauge(x) => ("gauge", format!("{x}")),
        _ => ("other", String::new()),
    }
}

fn row(f: &FunctionStats, out: &mut String) {
    let errors = f.errors_total();
    let class = match (f.panics > 0, errors > 0) {
        (true, true) => " class=\"err panic\"",
        (true, false) => " class=\"panic\"",
        (false, true) => " class=\"err\"",
        (false, false) => "",
    };
    let _ = write!(out, "<tr{class} data-id=\"{}\"><td class=\"name\" title=\"", f.id);
    if f.file.is_empty() {
        html(f.module, out); // made at run time: no source location
    } else {
        html(&format!("{} ({}:{})", f.module, f.file, f.line), out);
    }
    out.push_str("\"><a href=\"function?name=");
    html(&percent(f.name), out);
    out.push_str("\">");
    html(f.name, out);
    out.push_str("</a></td><td class=\"name\">");
    html(f.category.unwrap_or(""), out);
    let _ = write!(
        out,
        "</td><td>{}</td><td>{}</td><td>{}</td><td class=\"errors\" title=\"",
        f.in_flight, f.highwater, f.success
    );
    let kinds: Vec<String> = f.errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    html(&kinds.join(", "), out);
    let _ = write!(
        out,
        "\">{errors}</td><td class=\"panics\">{}</td><td>{}</td>",
        f.panics, f.cancelled
    );
    let d = &f.success_times;
    if d.count == 0 {
        out.push_str("<td class=\"muted\">-</td><td class=\"muted\">-</td>");
    } else {
        let _ = write!(
            out,
            "<td>{}</td><td>{}</td>",
            Nanos(u128::from(d.quantile(0.5))),
            Nanos(u128::from(d.quantile(0.99)))
        );
    }
    out.push_str("<td class=\"name\"><a href=\"trace/svg?regex=");
    html(&capture_query(f.name), out);
    out.push_str("\">capture</a></td></tr>\n");
}

/// `^name$` with the regex metacharacters escaped.
pub(crate) fn capture_regex(name: &str) -> String {
    let mut re = String::from("^");
    for c in name.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    re.push('$');
    re
}

/// [`capture_regex`] percent-encoded for a query string.
pub(crate) fn capture_query(name: &str) -> String {
    percent(&capture_regex(name))
}

/// `s` percent-encoded for a query value: all but letters, digits and `-._~`.
pub(crate) fn percent(s: &str) -> String {
    let mut q = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            q.push(char::from(b));
        } else {
            let _ = write!(q, "%{b:02X}");
        }
    }
    q
}

#[cfg(test)]
mod tests {
    #[test]
    fn capture_links_match_exactly_one_name() {
        let q = super::capture_query("a::B<T>::f.x");
        assert_eq!(q, "%5Ea%3A%3AB%3CT%3E%3A%3Af%5C.x%24");
        let re = regex::Regex::new(r"^a::B<T>::f\.x$").unwrap();
        assert!(re.is_match("a::B<T>::f.x") && !re.is_match("a::B<T>::fax"));
    }
}
