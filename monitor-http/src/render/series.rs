//! Every statistic as a series — `measurement,tag=value,… field value` — the model behind
//! `/stats` (text) and `/stats/json`, whose names `/metrics` and `/debug/vars` reuse.

use std::borrow::Cow;
use std::collections::HashSet;

use monitor_core::{Distribution, MetricStats, MetricValue, Snapshot, Values};

use super::util::push_escaped;

/// One value: a measurement with sorted tags, a field and its value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Series {
    pub(crate) measurement: String,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) field: String,
    pub(crate) value: f64,
}

/// The field name of a quantile: `p0`, `p10`, `p25`, `p50`, …, `p99`, `p100`.
pub(crate) fn quantile_field(q: f64) -> String {
    format!("p{}", (q * 100.0).round() as u32)
}

/// The called functions, by index in `snapshot.functions`, with the name each view shows:
/// their own, or `name#id` when two functions of one module share a name (two sites given the
/// same `name = "…"`), so no view ever has two series with one key.
pub(crate) fn unique_names(snapshot: &Snapshot) -> Vec<(usize, Cow<'static, str>)> {
    // A fast hasher, seeded per process: the standard one took longer over 10,000 names than
    // the rest of naming them. Names clients choose (routes) are few, bounded by their budget.
    let mut seen = HashSet::with_capacity_and_hasher(
        snapshot.functions.len(),
        foldhash::fast::RandomState::default(),
    );
    let called = snapshot.functions.iter().enumerate().filter(|(_, f)| f.is_called());
    called
        .map(|(i, f)| {
            let name = if seen.insert((f.name, f.module)) {
                Cow::Borrowed(f.name)
            } else {
                Cow::Owned(format!("{}#{}", f.name, f.id))
            };
            (i, name)
        })
        .collect()
}

/// Every series of the snapshot, in a stable order: per called function, its counts, its
/// errors by kind, then its success and failure times (durations in seconds).
pub(crate) fn series(snapshot: &Snapshot) -> Vec<Series> {
    let mut out = Vec::new();
    for (i, name) in unique_names(snapshot) {
        let f = &snapshot.functions[i];
        let tags = vec![
            ("name".to_string(), name.into_owned()),
            ("scope".to_string(), f.module.to_string()),
        ];
        let errors = f.errors_total();
        let counts = [
            ("current", f.in_flight),
            ("highwater", f.highwater),
            ("successes", f.success),
            ("errors", errors),
            ("panics", f.panics),
            ("cancelled", f.cancelled),
            ("failures", errors + f.panics + f.cancelled),
            ("total", f.calls()),
        ];
        let allocs = [("allocations", f.allocations), ("allocated_bytes", f.allocated_bytes)];
        let counts = counts.iter().chain(if snapshot.alloc.is_some() { &allocs[..] } else { &[] });
        for &(field, v) in counts {
            out.push(Series {
                measurement: "function".to_string(),
                tags: tags.clone(),
                field: field.to_string(),
                value: v as f64,
            });
        }
        if let Some(p) = &f.polls {
            let polls = [
                ("polls", p.polls as f64),
                ("slow_polls", p.slow_polls as f64),
                ("poll_busy_seconds", p.busy.as_secs_f64()),
                ("longest_poll_seconds", p.longest.as_secs_f64()),
            ];
            for (field, value) in polls {
                out.push(Series {
                    measurement: "function".to_string(),
                    tags: tags.clone(),
                    field: field.to_string(),
                    value,
                });
            }
        }
        for (kind, n) in &f.errors {
            let mut t = vec![("error_kind".to_string(), kind.to_string())];
            t.extend(tags.iter().cloned());
            out.push(Series {
                measurement: "function".to_string(),
                tags: t,
                field: "count".to_string(),
                value: *n as f64,
            });
        }
        for (kind, d) in [("success", &f.success_times), ("failure", &f.failure_times)] {
            let mut t = vec![("kind".to_string(), kind.to_string())];
            t.extend(tags.iter().cloned());
            times(&t, d, &mut out);
        }
    }
    for c in snapshot.in_flight_by_category() {
        out.push(Series {
            measurement: "active".to_string(),
            tags: vec![("category".to_string(), c.category.to_string())],
            field: "current".to_string(),
            value: c.in_flight as f64,
        });
    }
    for m in &snapshot.metrics {
        metric(m, &mut out);
    }
    out
}

/// The tags of an instrument's series: `scope`, then its own, sorted by key (an own tag named
/// `scope` is shown as `tag_scope`).
pub(crate) fn metric_tags(m: &MetricStats) -> Vec<(String, String)> {
    let mut tags = vec![("scope".to_string(), m.scope.clone())];
    for (k, v) in &m.tags {
        let k = if k == "scope" { "tag_scope".to_string() } else { k.clone() };
        tags.push((k, v.clone()));
    }
    tags.sort();
    tags
}

/// An instrument's series: measurement is its name, fields by kind.
fn metric(m: &MetricStats, out: &mut Vec<Series>) {
    let tags = metric_tags(m);
    let mut push = |field: &str, value: f64| {
        out.push(Series {
            measurement: m.name.clone(),
            tags: tags.clone(),
            field: field.to_string(),
            value,
        });
    };
    match &m.value {
        MetricValue::Counter { value, high, low } => {
            push("value", *value as f64);
            push("high", *high as f64);
            push("low", *low as f64);
        }
        MetricValue::Meter { total, rate } | MetricValue::Event { total, rate } => {
            push("total", *total as f64);
            push("rate", *rate);
        }
        MetricValue::IntVal(v) | MetricValue::FloatVal(v) => values(v, &mut push),
        MetricValue::BoolVal { trues, falses, recent } => {
            push("true", *trues as f64);
            push("false", *falses as f64);
            if let Some(r) = recent {
                push("recent", f64::from(u8::from(*r)));
            }
            push("disposition", *trues as f64 - *falses as f64);
        }
        MetricValue::DurationVal(d) | MetricValue::Timer(d) => {
            times_as(&m.name, &tags, d, out);
        }
        MetricValue::Gauge(v) => push("value", *v),
        // A kind this version does not know is shown nowhere rather than wrongly.
        _ => {}
    }
}

fn values(v: &Values, push: &mut impl FnMut(&str, f64)) {
    push("count", v.count as f64);
    if v.count == 0 {
        return;
    }
    push("sum", v.sum);
    push("min", v.min);
    push("max", v.max);
    push("avg", v.avg());
    push("recent", v.recent);
    for (q, x) in v.quantiles() {
        push(&quantile_field(q), x);
    }
}

fn times(tags: &[(String, String)], d: &Distribution, out: &mut Vec<Series>) {
    times_as("function_times", tags, d, out);
}

fn times_as(measurement: &str, tags: &[(String, String)], d: &Distribution, out: &mut Vec<Series>) {
    let secs = |ns: f64| ns / 1e9;
    let mut push = |field: String, value: f64| {
        out.push(Series {
            measurement: measurement.to_string(),
            tags: tags.to_vec(),
            field,
            value,
        });
    };
    push("count".into(), d.count as f64);
    if d.count == 0 {
        return;
    }
    push("sum".into(), secs(d.sum_ns as f64));
    push("min".into(), secs(d.min_ns as f64));
    push("max".into(), secs(d.max_ns as f64));
    push("avg".into(), secs(d.avg_ns()));
    push("recent".into(), secs(d.recent_ns as f64));
    for (q, ns) in d.quantiles() {
        push(quantile_field(q), secs(ns as f64));
    }
}

/// Escapes a tag key or value as monkit's line format does: `,`, `=`, space and `\`.
fn escape_tag(s: &str, out: &mut String) {
    push_escaped(s, out, |c| match c {
        ',' => Some("\\,".into()),
        '=' => Some("\\=".into()),
        ' ' => Some("\\ ".into()),
        '\\' => Some("\\\\".into()),
        '\n' => Some("\\n".into()),
        '\r' => Some("\\r".into()),
        c if c.is_control() => Some(format!("\\u{{{:x}}}", u32::from(c)).into()),
        _ => None,
    });
}

/// The series key, `measurement,tag=value,…`, as `/stats` shows it.
pub(crate) fn key(s: &Series, out: &mut String) {
    escape_tag(&s.measurement, out);
    for (k, v) in &s.tags {
        out.push(',');
        escape_tag(k, out);
        out.push('=');
        escape_tag(v, out);
    }
}
