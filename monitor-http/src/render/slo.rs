//! The objectives' views: Prometheus recording and alerting rules fitted to the series
//! `/metrics` writes (`/slo/rules.yaml`), promtool unit tests of those rules
//! (`/slo/tests.yaml`), and the budgets the process computes itself (`/slo/json`, and a table
//! on the index page).
//!
//! Every string that comes from a name is written as a JSON string literal, which is also a
//! valid YAML double-quoted scalar and a valid PromQL string; expressions are YAML block
//! scalars, so nothing a name holds can end them.

use std::fmt::Write;
use std::time::Duration;

use monitor_core::{NamedObjective, Objective, ObjectiveStatus, Severity, Sli};

use super::util::{html, json_f64, json_str};

/// The recorded series of bad ratios, by `name`, `sli` and `window`.
pub(crate) const BAD_RATIO: &str = "monitor_slo:bad_ratio";
/// The recorded share of the budget left over the objective's window, by `name` and `sli`.
pub(crate) const BUDGET: &str = "monitor_slo:error_budget_remaining";

/// The alert of each severity.
fn alert_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Page => "MonitorObjectivePage",
        _ => "MonitorObjectiveTicket",
    }
}

/// A duration as Prometheus writes it: in the largest unit that divides it (`30d`, `6h`,
/// `5m`, `90s`).
pub(crate) fn prom_duration(d: Duration) -> String {
    let s = d.as_secs().max(1);
    for (unit, n) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s % n == 0 {
            return format!("{}{unit}", s / n);
        }
    }
    format!("{s}s")
}

/// `s` as a JSON string literal.
fn quoted(s: &str) -> String {
    let mut out = String::new();
    json_str(s, &mut out);
    out
}

/// The `le` label `/metrics` writes for a bound: the bound in seconds as Rust prints it.
fn le_of(bound: Duration) -> String {
    format!("{}", bound.as_secs_f64())
}

/// The allowed bad ratio, as PromQL: `(1 - 99.9 / 100)`, the target as given.
fn allowed(target: f64) -> String {
    format!("(1 - {target} / 100)")
}

/// `sum(rate(metric{name=…}[window])) or vector(0)`, for counters a function may not have yet.
fn rate_or_zero(metric: &str, name: &str, window: &str) -> String {
    format!("(sum(rate({metric}{{name={name}}}[{window}])) or vector(0))")
}

/// The expression of one indicator's bad ratio over `window`, without labels (the rule adds
/// them).
fn bad_ratio_expr(sli: Sli, name: &str, window: &str) -> String {
    match sli {
        Sli::Latency(bound) => {
            let le = quoted(&le_of(bound));
            format!(
                "1 - (\n  sum(rate(function_times_seconds_bucket{{name={name},le={le}}}[{window}]))\n  /\n  sum(rate(function_times_seconds_count{{name={name}}}[{window}]))\n)\n"
            )
        }
        _ => {
            let errors = rate_or_zero("function_errors_total", name, window);
            let panics = rate_or_zero("function_panics_total", name, window);
            let ok = rate_or_zero("function_successes_total", name, window);
            format!("({errors} + {panics})\n/\n({ok} + {errors} + {panics})\n")
        }
    }
}

/// Appends `text` as a YAML block scalar (`|`) at `indent` spaces.
fn block(text: &str, indent: usize, out: &mut String) {
    out.push_str("|\n");
    for line in text.lines() {
        let _ = writeln!(out, "{:indent$}{line}", "");
    }
}

/// The selector of a recorded bad ratio.
fn recorded(name: &str, sli: Sli, window: Duration) -> String {
    format!(
        "{BAD_RATIO}{{name={name},sli={},window={}}}",
        quoted(sli.as_str()),
        quoted(&prom_duration(window))
    )
}

/// The human text of a window pair.
fn pair_text(long: Duration, short: Duration, burn: f64) -> String {
    format!("{burn}x over {} and {}", prom_duration(long), prom_duration(short))
}

/// The annotations of an alert, as `(key, template)`.
fn annotations(
    o: &Objective,
    sli: Sli,
    target: f64,
    severity: Severity,
) -> [(&'static str, String); 2] {
    let pairs: Vec<String> = o
        .alert_windows()
        .iter()
        .filter(|a| a.severity == severity)
        .map(|a| pair_text(a.long, a.short, a.burn_rate))
        .collect();
    let what = match sli {
        Sli::Latency(bound) => {
            format!("{target}% of calls within {bound:?}")
        }
        _ => format!("{target}% of calls succeed"),
    };
    [
        (
            "summary",
            "{{ $labels.name }} burns its {{ $labels.sli }} error budget too fast".to_string(),
        ),
        (
            "description",
            format!(
                "Objective: {what} over {}. Bad calls are spending the error budget faster than \
                 it allows ({}).",
                prom_duration(o.window_length()),
                pairs.join(", or ")
            ),
        ),
    ]
}

/// `/slo/rules.yaml`: for every objective, a rule group recording each indicator's bad ratio
/// over every window the alerts read and over the objective's window, the budget left, and the
/// page and ticket alerts of the SRE workbook's multi-window, multi-burn-rate scheme.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_slo_rules(&monitor_core::objectives(), &mut out);
/// assert!(out.starts_with("# "));
/// ```
pub fn write_slo_rules(objectives: &[NamedObjective], out: &mut String) {
    out.push_str(concat!(
        "# Prometheus rules for the objectives declared in this process, fitted to the series\n",
        "# its /metrics writes. Save beside /slo/tests.yaml as rules.yaml; check them with\n",
        "# `promtool check rules rules.yaml` and `promtool test rules tests.yaml`.\n",
    ));
    if objectives.is_empty() {
        out.push_str("groups: []\n");
        return;
    }
    out.push_str("groups:\n");
    for o in objectives {
        let name = quoted(&o.name);
        let _ =
            writeln!(out, "  - name: {}\n    rules:", quoted(&format!("monitor_slo {}", o.name)));
        for (sli, target) in o.objective.indicators() {
            let label = quoted(sli.as_str());
            for window in o.objective.windows() {
                let w = prom_duration(window);
                let _ = write!(out, "      - record: {BAD_RATIO}\n        expr: ");
                block(&bad_ratio_expr(sli, &name, &w), 10, out);
                let _ = writeln!(
                    out,
                    "        labels:\n          name: {name}\n          sli: {label}\n          window: {}",
                    quoted(&w)
                );
            }
            let _ = write!(out, "      - record: {BUDGET}\n        expr: ");
            let budget = format!(
                "1 - sum without (window) ({}) / {}",
                recorded(&name, sli, o.objective.window_length()),
                allowed(target)
            );
            block(&budget, 10, out);
            for severity in [Severity::Page, Severity::Ticket] {
                let conditions: Vec<String> = o
                    .objective
                    .alert_windows()
                    .iter()
                    .filter(|a| a.severity == severity)
                    .map(|a| {
                        let over = |w| {
                            format!(
                                "{} > ({} * {})",
                                recorded(&name, sli, w),
                                a.burn_rate,
                                allowed(target)
                            )
                        };
                        format!(
                            "  (\n    {}\n    and on (name, sli)\n    {}\n  )",
                            over(a.long),
                            over(a.short)
                        )
                    })
                    .collect();
                let expr = format!(
                    "max without (window) (\n{}\n)",
                    conditions.join("\n  or on (name, sli)\n")
                );
                let _ = write!(out, "      - alert: {}\n        expr: ", alert_name(severity));
                block(&expr, 10, out);
                let _ = writeln!(out, "        labels:\n          severity: {}", severity.as_str());
                out.push_str("        annotations:\n");
                for (key, text) in annotations(&o.objective, sli, target, severity) {
                    let _ = writeln!(out, "          {key}: {}", quoted(&text));
                }
            }
        }
    }
}

/// Calls per minute in the tests' input series: enough that the budget of any target a
/// percentage can write to a few decimals is a whole number of calls.
const PER_MINUTE: u64 = 1_000_000;

/// `/slo/tests.yaml`: promtool unit tests of [`write_slo_rules`]' rules, which it reads from
/// `rules.yaml` beside it. For every indicator: bad calls at 15 times the rate the budget
/// allows page (and open a ticket); at exactly the allowed rate nothing pages.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_slo_tests(&monitor_core::objectives(), &mut out);
/// assert!(out.contains("rule_files:"));
/// ```
pub fn write_slo_tests(objectives: &[NamedObjective], out: &mut String) {
    out.push_str(concat!(
        "# promtool unit tests for /slo/rules.yaml: save that file beside this one as rules.yaml\n",
        "# and run `promtool test rules tests.yaml`.\n",
        "rule_files:\n  - rules.yaml\nevaluation_interval: 1m\n",
    ));
    if objectives.is_empty() {
        out.push_str("tests: []\n");
        return;
    }
    out.push_str("tests:\n");
    for o in objectives {
        for (sli, target) in o.objective.indicators() {
            let allowed = 1.0 - target / 100.0;
            // The longest window pair of a page, filled twice over.
            let page = o.objective.alert_windows()[0];
            let minutes = 2 * page.long.as_secs().div_ceil(60).max(5);
            let at = prom_duration(Duration::from_secs(minutes * 60));
            let fifteen = ((15.0 * allowed * PER_MINUTE as f64).ceil() as u64).min(PER_MINUTE);
            // A target so low that even every call failing is no 14.4-fold burn can never
            // page: it gets the silent test alone.
            if (fifteen as f64) / (PER_MINUTE as f64) > page.burn_rate * allowed {
                let what =
                    format!("{} {}: a burn of 15 times the budget pages", o.name, sli.as_str());
                test(o, sli, &what, fifteen, minutes, out);
                let labels = [("name", o.name.as_str()), ("sli", sli.as_str())];
                for severity in [Severity::Page, Severity::Ticket] {
                    let _ = writeln!(
                        out,
                        "      - eval_time: {at}\n        alertname: {}\n        exp_alerts:\n          - exp_labels:\n              severity: {}",
                        alert_name(severity),
                        severity.as_str()
                    );
                    for (k, v) in labels {
                        let _ = writeln!(out, "              {k}: {}", quoted(v));
                    }
                    out.push_str("            exp_annotations:\n");
                    for (key, text) in annotations(&o.objective, sli, target, severity) {
                        let text = text
                            .replace("{{ $labels.name }}", &o.name)
                            .replace("{{ $labels.sli }}", sli.as_str());
                        let _ = writeln!(out, "              {key}: {}", quoted(&text));
                    }
                }
            }
            let one = (allowed * PER_MINUTE as f64).floor() as u64;
            let what =
                format!("{} {}: a burn at the budget's rate does not page", o.name, sli.as_str());
            test(o, sli, &what, one, minutes, out);
            let _ = writeln!(
                out,
                "      - eval_time: {at}\n        alertname: {}\n        exp_alerts: []",
                alert_name(Severity::Page)
            );
        }
    }
}

/// One test's header and input series: `bad` of [`PER_MINUTE`] calls each minute are bad.
fn test(o: &NamedObjective, sli: Sli, what: &str, bad: u64, minutes: u64, out: &mut String) {
    let _ = writeln!(out, "  - name: {}\n    interval: 1m\n    input_series:", quoted(what));
    let name = quoted(&o.name);
    let mut series = |metric: String, per_minute: u64| {
        let _ = writeln!(
            out,
            "      - series: {}\n        values: \"0+{per_minute}x{minutes}\"",
            quoted(&metric)
        );
    };
    match sli {
        Sli::Latency(bound) => {
            let set = format!("kind=\"success\",name={name},scope=\"test\"");
            series(
                format!("function_times_seconds_bucket{{{set},le={}}}", quoted(&le_of(bound))),
                PER_MINUTE - bad,
            );
            series(format!("function_times_seconds_bucket{{{set},le=\"+Inf\"}}"), PER_MINUTE);
            series(format!("function_times_seconds_count{{{set}}}"), PER_MINUTE);
        }
        _ => {
            let set = format!("name={name},scope=\"test\"");
            series(format!("function_successes_total{{{set}}}"), PER_MINUTE - bad);
            series(format!("function_errors_total{{error_kind=\"Test\",{set}}}"), bad);
            series(format!("function_panics_total{{{set}}}"), 0);
        }
    }
    out.push_str("    alert_rule_test:\n");
}

/// `/slo/json`: every objective's budget and burn rates as the process computes them from the
/// collector's history ([`monitor_core::objective_status`]). Durations are in seconds; a ratio
/// without calls is `null`.
///
/// ```
/// let mut out = String::new();
/// monitor_http::write_slo_json(&monitor_core::objective_status(), &mut out);
/// assert!(out.starts_with("{\"objectives\":["));
/// ```
pub fn write_slo_json(status: &[ObjectiveStatus], out: &mut String) {
    out.push_str("{\"objectives\":[");
    for (i, o) in status.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"name\":");
        json_str(&o.name, out);
        let _ =
            write!(out, ",\"window_s\":{},\"indicators\":[", o.objective.window_length().as_secs());
        for (j, s) in o.indicators.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"sli\":");
            json_str(s.sli.as_str(), out);
            out.push_str(",\"target\":");
            json_f64(s.target, out);
            if let Sli::Latency(bound) = s.sli {
                out.push_str(",\"latency_s\":");
                json_f64(bound.as_secs_f64(), out);
            }
            let w = &s.over_window;
            let _ = write!(
                out,
                ",\"covered_s\":{},\"calls\":{},\"bad\":{},\"bad_ratio\":",
                w.covered.as_secs(),
                w.calls,
                w.bad
            );
            match w.bad_ratio() {
                Some(r) => json_f64(r, out),
                None => out.push_str("null"),
            }
            out.push_str(",\"budget_remaining\":");
            json_f64(s.budget_remaining, out);
            out.push_str(",\"burn_rates\":[");
            for (k, (window, rate)) in s.burn_rates.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{{\"window_s\":{},\"burn_rate\":", window.as_secs());
                json_f64(*rate, out);
                out.push('}');
            }
            let _ = write!(out, "],\"page\":{},\"ticket\":{}}}", s.page, s.ticket);
        }
        out.push_str("]}");
    }
    out.push_str("]}\n");
}

/// The index page's table of objectives: nothing when there are none.
pub(crate) fn write_slo_table(status: &[ObjectiveStatus], out: &mut String) {
    if status.is_empty() {
        return;
    }
    out.push_str(concat!(
        "<h2>Objectives</h2>\n<table id=\"objectives\"><thead><tr><th class=\"name\">function</th>",
        "<th class=\"name\">indicator</th><th>target</th><th>window</th><th>calls</th>",
        "<th>bad</th><th>budget left</th><th>burn (shortest window)</th><th class=\"name\">alert</th>",
        "</tr></thead><tbody>\n"
    ));
    for o in status {
        for s in &o.indicators {
            let alert = if s.page {
                "page"
            } else if s.ticket {
                "ticket"
            } else {
                ""
            };
            let class = if s.page {
                " class=\"panic\""
            } else if s.ticket {
                " class=\"err\""
            } else {
                ""
            };
            let _ = write!(out, "<tr{class}><td class=\"name\">");
            html(&o.name, out);
            out.push_str("</td><td class=\"name\">");
            match s.sli {
                Sli::Latency(bound) => {
                    let _ = write!(out, "latency ≤ {bound:?}");
                }
                _ => out.push_str("success"),
            }
            let burn = s.burn_rates.first().map_or(0.0, |b| b.1);
            let _ = writeln!(
                out,
                "</td><td>{}%</td><td>{}</td><td>{}</td><td>{}</td><td class=\"budget\">{:.1}%</td><td>{burn:.2}×</td><td class=\"name panics\">{alert}</td></tr>",
                s.target,
                prom_duration(o.objective.window_length()),
                s.over_window.calls,
                s.over_window.bad,
                100.0 * s.budget_remaining,
            );
        }
    }
    out.push_str("</tbody></table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_as_prometheus_writes_them() {
        let d = |s| prom_duration(Duration::from_secs(s));
        assert_eq!(
            (d(30 * 86_400), d(6 * 3600), d(300), d(90)),
            ("30d".into(), "6h".into(), "5m".into(), "90s".into())
        );
    }

    #[test]
    fn latency_labels_match_the_bucket_bounds() {
        assert_eq!(le_of(Duration::from_millis(250)), "0.25");
        assert_eq!(le_of(Duration::from_micros(100)), format!("{}", 0.0001));
    }
}
