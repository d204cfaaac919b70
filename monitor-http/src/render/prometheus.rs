//! `/metrics`: Prometheus text exposition (0.0.4) and OpenMetrics 1.0.

use std::fmt::Write;

use std::collections::BTreeMap;

use monitor_core::{Distribution, FunctionStats, MetricStats, MetricValue, Snapshot, Values};

use super::stats::{metric_tags, unique_names};
use super::util::push_escaped;

/// Latency bucket bounds in seconds for the Prometheus histograms.
///
/// ```
/// let b = monitor_http::Buckets::new(vec![0.001, 0.01, 0.1]).unwrap();
/// assert_eq!(b.bounds(), &[0.001, 0.01, 0.1]);
/// assert!(monitor_http::Buckets::new(vec![0.1, 0.01]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(Vec<f64>);

/// Why a set of bucket bounds was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BucketsError {
    /// No bounds were given.
    #[error("histogram buckets: give at least one bound")]
    Empty,
    /// A bound is NaN, infinite, zero or negative.
    #[error("histogram buckets: bounds must be finite and positive (seconds)")]
    NotPositive,
    /// The bounds are not strictly increasing.
    #[error("histogram buckets: bounds must be strictly increasing")]
    NotIncreasing,
}

impl Buckets {
    /// Bounds in seconds, strictly increasing, finite and positive (`+Inf` is implied).
    ///
    /// ```
    /// use monitor_http::{Buckets, BucketsError};
    /// assert_eq!(Buckets::new(vec![]), Err(BucketsError::Empty));
    /// assert_eq!(Buckets::new(vec![f64::NAN]), Err(BucketsError::NotPositive));
    /// ```
    pub fn new(bounds: Vec<f64>) -> Result<Buckets, BucketsError> {
        if bounds.is_empty() {
            return Err(BucketsError::Empty);
        }
        if bounds.iter().any(|b| !b.is_finite() || *b <= 0.0) {
            return Err(BucketsError::NotPositive);
        }
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err(BucketsError::NotIncreasing);
        }
        Ok(Buckets(bounds))
    }

    /// The bounds, in seconds.
    ///
    /// ```
    /// assert_eq!(monitor_http::Buckets::default().bounds().len(), 16);
    /// ```
    pub fn bounds(&self) -> &[f64] {
        &self.0
    }
}

impl Default for Buckets {
    /// 100 µs to 10 s, about three per decade.
    fn default() -> Self {
        Buckets(vec![
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            2.5, 5.0, 10.0,
        ])
    }
}

/// Which exposition format to write.
///
/// ```
/// assert_eq!(monitor_http::Format::default(), monitor_http::Format::Prometheus);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl Format {
    /// The Content-Type of a response in this format.
    ///
    /// ```
    /// assert!(monitor_http::Format::OpenMetrics.content_type().starts_with("application/openmetrics-text"));
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

fn label_value(v: &str, out: &mut String) {
    push_escaped(v, out, |c| match c {
        '\\' => Some("\\\\".into()),
        '"' => Some("\\\"".into()),
        '\n' => Some("\\n".into()),
        _ => None,
    });
}

fn labels(pairs: &[(&str, &str)], out: &mut String) {
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        label_value(v, out);
        out.push('"');
    }
    out.push('}');
}

/// One metric family: HELP and TYPE, then its samples.
struct Family<'a> {
    name: &'a str,
    kind: &'a str,
    help: &'a str,
}

impl Family<'_> {
    fn header(&self, format: Format, out: &mut String) {
        // OpenMetrics names a counter family without its `_total` suffix.
        let name = match (format, self.kind) {
            (Format::OpenMetrics, "counter") => self.name.trim_end_matches("_total"),
            _ => self.name,
        };
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} {}", self.kind);
    }
}

/// `/metrics`: every called function's statistics as Prometheus metric families, with latency
/// as histograms over `buckets` (cumulative `le` buckets, `_sum` in seconds, exact `_count`).
/// Functions are labelled `name` and `scope` (module), errors `error_name`, times `kind`.
///
/// ```
/// use monitor_http::{write_prometheus, Buckets, Format};
/// let mut out = String::new();
/// write_prometheus(&monitor_core::registry().snapshot(), &Buckets::default(), Format::Prometheus, &mut out);
/// assert!(out.contains("# TYPE function_current gauge"));
/// ```
pub fn write_prometheus(snapshot: &Snapshot, buckets: &Buckets, format: Format, out: &mut String) {
    let funcs: Vec<(&FunctionStats, String)> = unique_names(snapshot);
    // Each function's label set, escaped once and reused by every family.
    let sets: Vec<String> = funcs
        .iter()
        .map(|(f, name)| {
            let mut set = String::new();
            labels(&[("name", name), ("scope", f.module)], &mut set);
            set
        })
        .collect();
    // Room for the function families at once: a line per function in up to seven families
    // and two histograms of a line per bound. Growing a string of many megabytes by doubling
    // copies it and faults its pages in again at every step.
    let lines = 7 + 2 * (buckets.bounds().len() + 3);
    out.reserve(sets.iter().map(|set| set.len() + 40).sum::<usize>() * lines);
    let family = |name, kind, help, value: &dyn Fn(&FunctionStats) -> u64, out: &mut String| {
        Family { name, kind, help }.header(format, out);
        for ((f, _), set) in funcs.iter().zip(&sets) {
            out.push_str(name);
            out.push_str(set);
            out.push(' ');
            push_u64(value(f), out);
            out.push('\n');
        }
    };
    family("function_current", "gauge", "Calls in flight now.", &|f| f.current, out);
    family(
        "function_highwater",
        "gauge",
        "Most calls ever in flight at once.",
        &|f| f.highwater,
        out,
    );
    family(
        "function_successes_total",
        "counter",
        "Calls that returned a success.",
        &|f| f.success,
        out,
    );
    family("function_panics_total", "counter", "Calls that panicked.", &|f| f.panics, out);
    family(
        "function_cancelled_total",
        "counter",
        "Async calls dropped before they finished.",
        &|f| f.cancelled,
        out,
    );
    if snapshot.alloc.is_some() {
        family(
            "function_allocations_total",
            "counter",
            "Allocations made while its calls ran, nested calls included.",
            &|f| f.allocations,
            out,
        );
        family(
            "function_allocated_bytes_total",
            "counter",
            "Bytes allocated while its calls ran, nested calls included.",
            &|f| f.allocated_bytes,
            out,
        );
    }
    Family { name: "active_calls", kind: "gauge", help: "Calls in flight now, by category." }
        .header(format, out);
    for c in snapshot.active_by_category() {
        out.push_str("active_calls");
        labels(&[("category", c.category)], out);
        let _ = writeln!(out, " {}", c.current);
    }
    Family {
        name: "function_errors_total",
        kind: "counter",
        help: "Calls that returned an error, by error kind.",
    }
    .header(format, out);
    for (f, name_label) in &funcs {
        for (kind, n) in &f.errors {
            out.push_str("function_errors_total");
            labels(&[("error_name", kind), ("name", name_label), ("scope", f.module)], out);
            let _ = writeln!(out, " {n}");
        }
    }
    Family {
        name: "function_times_seconds",
        kind: "histogram",
        help: "Durations of calls, by kind: success, or failure (errors, panics, cancellations).",
    }
    .header(format, out);
    // Each bound as nanoseconds and as the `le` label, computed once.
    let les: Vec<(f64, String)> =
        buckets.bounds().iter().map(|b| (b * 1e9, format!("{b}"))).collect();
    for ((f, _), set) in funcs.iter().zip(&sets) {
        for (kind, d) in [("success", &f.success_times), ("failure", &f.failure_times)] {
            // A histogram with nothing in it yet is left out; its series appear with the
            // first value.
            if d.count == 0 {
                continue;
            }
            // `kind` sorts first: `{kind="…",name=…,scope=…`, open for `le`.
            let set = format!("{{kind=\"{kind}\",{}", &set[1..set.len() - 1]);
            histogram(&set, d, &les, out);
        }
    }
    write_instruments(snapshot, format, out);
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
}

/// A metric name from an instrument's name: anything but `[a-zA-Z0-9_:]` becomes `_`.
fn metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == ':' { c } else { '_' })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// A label name from a tag key: `[a-zA-Z_][a-zA-Z0-9_]*`, never starting with `__`.
fn label_name(key: &str) -> String {
    let mut out: String =
        key.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() || out.starts_with("__") {
        out.insert_str(0, "tag_");
    }
    out
}

/// The samples of one family of instruments, gathered before writing so each family is
/// written once with its HELP and TYPE.
struct Samples {
    kind: &'static str,
    help: String,
    lines: String,
}

fn instrument_labels(m: &MetricStats) -> Vec<(String, String)> {
    let mut seen = std::collections::HashSet::new();
    metric_tags(m)
        .into_iter()
        .map(|(k, v)| (label_name(&k), v))
        .filter(|(k, _)| seen.insert(k.clone()))
        .collect()
}

fn sample(
    name: &str,
    labels_: &[(String, String)],
    extra: Option<(&str, &str)>,
    value: f64,
    out: &mut String,
) {
    out.push_str(name);
    let mut all: Vec<(&str, &str)> =
        labels_.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    if let Some(e) = extra {
        all.push(e);
    }
    labels(&all, out);
    let v = if value.is_finite() { value } else { 0.0 };
    let _ = writeln!(out, " {v}");
}

/// Registered instruments: counters and gauges as gauges, meters and events as `_total`
/// counters with a `_rate` gauge, distributions as summaries (quantiles, `_sum`, `_count`;
/// durations in seconds), boolean tallies as `_true_total`/`_false_total` counters with a
/// `_disposition` gauge. A family name already taken by another kind is left out.
fn write_instruments(snapshot: &Snapshot, format: Format, out: &mut String) {
    let mut families: BTreeMap<String, Samples> = BTreeMap::new();
    for m in &snapshot.metrics {
        let base = metric_name(&m.name);
        let labels_ = instrument_labels(m);
        let help =
            m.description.clone().unwrap_or_else(|| format!("{} of scope {}", m.name, m.scope));
        let mut add = |family: String, kind: &'static str, f: &dyn Fn(&str, &mut String)| {
            // The function and category families are ours; a user family of the same name is
            // left out rather than mixed into them.
            if family.starts_with("function_") || family.starts_with("active_calls") {
                return;
            }
            let entry = families.entry(family.clone()).or_insert_with(|| Samples {
                kind,
                help: help.replace('\\', "\\\\").replace('\n', "\\n"),
                lines: String::new(),
            });
            if entry.kind == kind {
                f(&family, &mut entry.lines);
            }
        };
        match &m.value {
            MetricValue::Counter { value, .. } => {
                add(base.clone(), "gauge", &|n, o| sample(n, &labels_, None, *value as f64, o));
            }
            MetricValue::Gauge(v) => {
                add(base.clone(), "gauge", &|n, o| sample(n, &labels_, None, *v, o))
            }
            MetricValue::Meter { total, rate } | MetricValue::Event { total, rate } => {
                add(format!("{base}_total"), "counter", &|n, o| {
                    sample(n, &labels_, None, *total as f64, o)
                });
                add(format!("{base}_rate"), "gauge", &|n, o| sample(n, &labels_, None, *rate, o));
            }
            MetricValue::BoolVal { trues, falses, .. } => {
                add(format!("{base}_true_total"), "counter", &|n, o| {
                    sample(n, &labels_, None, *trues as f64, o)
                });
                add(format!("{base}_false_total"), "counter", &|n, o| {
                    sample(n, &labels_, None, *falses as f64, o)
                });
                add(format!("{base}_disposition"), "gauge", &|n, o| {
                    sample(n, &labels_, None, *trues as f64 - *falses as f64, o)
                });
            }
            MetricValue::IntVal(v) | MetricValue::FloatVal(v) => {
                add(base.clone(), "summary", &|n, o| summary(n, &labels_, v, o));
            }
            MetricValue::DurationVal(d) | MetricValue::Timer(d) => {
                let v = seconds(d);
                add(format!("{base}_seconds"), "summary", &|n, o| summary(n, &labels_, &v, o));
            }
        }
    }
    for (name, fam) in families {
        let help = fam.help;
        Family { name: &name, kind: fam.kind, help: &help }.header(format, out);
        out.push_str(&fam.lines);
    }
}

fn seconds(d: &Distribution) -> Values {
    let s = |ns: u64| ns as f64 / 1e9;
    Values {
        count: d.count,
        sum: d.sum_ns as f64 / 1e9,
        min: s(d.min_ns),
        max: s(d.max_ns),
        recent: s(d.recent_ns),
        buckets: d.buckets.iter().map(|b| (s(b.low_ns), s(b.high_ns), b.count)).collect(),
    }
}

fn summary(name: &str, labels_: &[(String, String)], v: &Values, out: &mut String) {
    for (q, x) in v.quantiles() {
        let qs = format!("{q}");
        sample(name, labels_, Some(("quantile", &qs)), x, out);
    }
    sample(&format!("{name}_sum"), labels_, None, v.sum, out);
    sample(&format!("{name}_count"), labels_, None, v.count as f64, out);
}

/// Appends `n` in decimal, without the formatting machinery (this runs for every line).
fn push_u64(mut n: u64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap_or("0"));
}

/// Cumulative counts at each bound. The histogram's buckets (at most 1.6% wide) are assigned
/// to a bound by their midpoint; counts are scaled to the exact `count`, since the histogram
/// keeps relative counts after halving itself. The label set is written once and reused.
fn histogram(set: &str, d: &Distribution, les: &[(f64, String)], out: &mut String) {
    let total: u64 = d.buckets.iter().map(|b| b.count).sum();
    let scale = |n: u64| -> u64 {
        if total == 0 {
            0
        } else {
            ((u128::from(n) * u128::from(d.count)) / u128::from(total)) as u64
        }
    };
    let mut cum = 0u64;
    let mut it = d.buckets.iter().peekable();
    let line = |le: &str, n: u64, out: &mut String| {
        out.push_str("function_times_seconds_bucket");
        out.push_str(set);
        out.push_str(",le=\"");
        out.push_str(le);
        out.push_str("\"} ");
        push_u64(n, out);
        out.push('\n');
    };
    for (bound_ns, le) in les {
        while let Some(b) = it.peek() {
            let mid = (b.low_ns as f64 + (b.high_ns - 1) as f64) / 2.0;
            if mid <= *bound_ns {
                cum += b.count;
                it.next();
            } else {
                break;
            }
        }
        line(le, scale(cum).min(d.count), out);
    }
    line("+Inf", d.count, out);
    let _ = writeln!(out, "function_times_seconds_sum{set}}} {}", d.sum_ns as f64 / 1e9);
    let _ = writeln!(out, "function_times_seconds_count{set}}} {}", d.count);
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_u64_writes_decimal() {
        for n in [0, 7, 10, 1234567890, u64::MAX] {
            let mut s = String::new();
            super::push_u64(n, &mut s);
            assert_eq!(s, n.to_string());
        }
    }

    #[test]
    fn label_values_are_escaped() {
        for (v, want) in
            [("", ""), ("plain", "plain"), ("a\\b\"c\nd", "a\\\\b\\\"c\\nd"), ("é\"", "é\\\"")]
        {
            let mut s = String::new();
            super::label_value(v, &mut s);
            assert_eq!(s, want);
        }
    }
}
