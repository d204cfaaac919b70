//! `/metrics`: Prometheus text exposition (0.0.4) and OpenMetrics 1.0.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt::Write;

use monitor_core::trace::Exemplar;
use monitor_core::{Distribution, FunctionStats, MetricStats, MetricValue, Snapshot, Values};

use super::series::{metric_tags, unique_names};
use super::util::{plain_ascii, push_escaped, push_u64};
use super::Parts;

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
#[non_exhaustive]
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

    /// These bounds and `extra` ones (seconds), in order and without repeats.
    pub(crate) fn including(&self, extra: &[f64]) -> Buckets {
        let mut all = self.0.clone();
        all.extend(extra.iter().copied().filter(|b| b.is_finite() && *b > 0.0));
        all.sort_by(f64::total_cmp);
        all.dedup();
        Buckets(all)
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
/// assert_eq!(monitor_http::ExpositionFormat::default(), monitor_http::ExpositionFormat::Prometheus);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ExpositionFormat {
    /// Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Prometheus,
    /// OpenMetrics 1.0 (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

impl ExpositionFormat {
    /// The Content-Type of a response in this format.
    ///
    /// ```
    /// assert!(monitor_http::ExpositionFormat::OpenMetrics.content_type().starts_with("application/openmetrics-text"));
    /// ```
    pub fn content_type(self) -> &'static str {
        match self {
            ExpositionFormat::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            ExpositionFormat::OpenMetrics => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            }
        }
    }
}

fn label_value(v: &str, out: &mut String) {
    // Most values (every function's name) need no escape: one scan of their bytes.
    if plain_ascii(v.as_bytes()) {
        out.push_str(v);
        return;
    }
    push_escaped(v, out, |c| match c {
        '\\' => Some("\\\\".into()),
        '"' => Some("\\\"".into()),
        '\n' => Some("\\n".into()),
        _ => None,
    });
}

/// `{k="v",…}`, values escaped.
fn labels(pairs: &[(&str, &str)], out: &mut String) {
    out.push('{');
    labels_into(pairs, out);
    out.push('}');
}

/// `k="v",…` without the braces.
fn labels_into(pairs: &[(&str, &str)], out: &mut String) {
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        label_value(v, out);
        out.push('"');
    }
}

/// One metric family: HELP and TYPE, then its samples.
struct Family<'a> {
    name: &'a str,
    kind: &'a str,
    help: &'a str,
}

impl Family<'_> {
    fn header(&self, format: ExpositionFormat, out: &mut String) {
        // OpenMetrics names a counter family without its `_total` suffix.
        let name = match (format, self.kind) {
            (ExpositionFormat::OpenMetrics, "counter") => self.name.trim_end_matches("_total"),
            _ => self.name,
        };
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} {}", self.kind);
    }
}

/// `/metrics`: every called function's statistics as Prometheus metric families, with latency
/// as histograms over `buckets` (cumulative `le` buckets, `_sum` in seconds, exact `_count`).
/// Functions are labelled `name` and `scope` (module), errors `error_kind`, times `kind`.
///
/// ```
/// use monitor_http::{write_prometheus, Buckets, ExpositionFormat};
/// let mut out = String::new();
/// write_prometheus(&monitor_core::registry().snapshot(), &Buckets::default(), ExpositionFormat::Prometheus, &mut out);
/// assert!(out.contains("# TYPE function_current gauge"));
/// ```
pub fn write_prometheus(
    snapshot: &Snapshot,
    buckets: &Buckets,
    format: ExpositionFormat,
    out: &mut String,
) {
    let mut writer = MetricsWriter::new(snapshot, buckets, format);
    // Growing a string of many megabytes by doubling copies it and faults its pages in again
    // at every step.
    out.reserve(writer.guess_len());
    while writer.write(out, usize::MAX) {}
}

/// A function family with one sample per called function.
struct ValueFamily {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    /// The function's sample, if it has one.
    value: fn(&FunctionStats) -> Option<Sample>,
    /// Whether the snapshot has the family at all.
    shown: fn(&Snapshot) -> bool,
}

/// One sample's value.
enum Sample {
    Count(u64),
    Seconds(std::time::Duration),
}

fn always(_: &Snapshot) -> bool {
    true
}

/// Allocation families are written when the snapshot counts allocations.
fn counts_allocations(s: &Snapshot) -> bool {
    s.alloc.is_some()
}

/// Poll families are written when a function's polls were timed.
fn has_polls(s: &Snapshot) -> bool {
    s.functions.iter().any(|f| f.polls.is_some())
}

const VALUE_FAMILIES: [ValueFamily; 11] = [
    ValueFamily {
        name: "function_current",
        kind: "gauge",
        help: "Calls in flight now.",
        value: |f| Some(Sample::Count(f.in_flight)),
        shown: always,
    },
    ValueFamily {
        name: "function_highwater",
        kind: "gauge",
        help: "Most calls ever in flight at once.",
        value: |f| Some(Sample::Count(f.highwater)),
        shown: always,
    },
    ValueFamily {
        name: "function_successes_total",
        kind: "counter",
        help: "Calls that returned a success.",
        value: |f| Some(Sample::Count(f.success)),
        shown: always,
    },
    ValueFamily {
        name: "function_panics_total",
        kind: "counter",
        help: "Calls that panicked.",
        value: |f| Some(Sample::Count(f.panics)),
        shown: always,
    },
    ValueFamily {
        name: "function_cancelled_total",
        kind: "counter",
        help: "Async calls dropped before they finished.",
        value: |f| Some(Sample::Count(f.cancelled)),
        shown: always,
    },
    ValueFamily {
        name: "function_allocations_total",
        kind: "counter",
        help: "Allocations made while its calls ran, nested calls included.",
        value: |f| Some(Sample::Count(f.allocations)),
        shown: counts_allocations,
    },
    ValueFamily {
        name: "function_allocated_bytes_total",
        kind: "counter",
        help: "Bytes allocated while its calls ran, nested calls included.",
        value: |f| Some(Sample::Count(f.allocated_bytes)),
        shown: counts_allocations,
    },
    ValueFamily {
        name: "function_polls_total",
        kind: "counter",
        help: "Polls of an async function, while poll timing is on.",
        value: |f| f.polls.map(|p| Sample::Count(p.polls)),
        shown: has_polls,
    },
    ValueFamily {
        name: "function_slow_polls_total",
        kind: "counter",
        help: "Polls of an async function that took 50 us or longer, while poll timing is on.",
        value: |f| f.polls.map(|p| Sample::Count(p.slow_polls)),
        shown: has_polls,
    },
    ValueFamily {
        name: "function_poll_busy_seconds_total",
        kind: "counter",
        help: "Time the polls of an async function took, while poll timing is on.",
        value: |f| f.polls.map(|p| Sample::Seconds(p.busy)),
        shown: has_polls,
    },
    ValueFamily {
        name: "function_longest_poll_seconds",
        kind: "gauge",
        help: "The longest single poll of an async function, while poll timing is on.",
        value: |f| f.polls.map(|p| Sample::Seconds(p.longest)),
        shown: has_polls,
    },
];

/// Where a [`MetricsWriter`] is: the family it writes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// `VALUE_FAMILIES[i]`.
    Values(usize),
    Active,
    Errors,
    Times,
    Instruments,
    Done,
}

/// `/metrics` written a function at a time ([`Parts`]), so a response sends it as it is written
/// instead of holding the whole text: at 10,000 functions that text is 33 MB, and a fresh
/// buffer of that size costs as much in page faults as writing it does.
///
/// `S` is the snapshot, owned (a response body) or borrowed ([`write_prometheus`]).
pub(crate) struct MetricsWriter<S> {
    snapshot: S,
    format: ExpositionFormat,
    /// The called functions: index in `snapshot.functions`, and where its labels end in `sets`.
    funcs: Vec<(usize, usize)>,
    /// Each called function's labels, `name="…",scope="…"`, escaped once and reused by every
    /// family; without braces, so a histogram can put `kind` first and `le` last.
    sets: String,
    /// Each bound as nanoseconds, and its bucket line's end (see [`bound_tails`]).
    les: Vec<(f64, String)>,
    part: Part,
    /// The next function to write in `part`.
    next: usize,
}

impl<S: Borrow<Snapshot>> MetricsWriter<S> {
    pub(crate) fn new(snapshot: S, buckets: &Buckets, format: ExpositionFormat) -> Self {
        let names = unique_names(snapshot.borrow());
        let mut sets = String::new();
        let funcs = names
            .into_iter()
            .map(|(i, name)| {
                let f = &snapshot.borrow().functions[i];
                labels_into(&[("name", &name), ("scope", f.module)], &mut sets);
                (i, sets.len())
            })
            .collect();
        let les = bound_tails(buckets.bounds());
        MetricsWriter { snapshot, format, funcs, sets, les, part: Part::Values(0), next: 0 }
    }

    /// The text's length at 10,000 functions is mostly histogram lines: a guess of the whole
    /// length, to reserve it once when writing it all.
    fn guess_len(&self) -> usize {
        let lines = VALUE_FAMILIES.len() + 2 * (self.les.len() + 3);
        (self.sets.len() + self.funcs.len() * 50) * lines
    }
}

impl Part {
    /// The family this part writes, to head it with.
    fn family(self) -> Option<Family<'static>> {
        let (name, kind, help) = match self {
            Part::Values(i) => {
                let f = VALUE_FAMILIES.get(i)?;
                (f.name, f.kind, f.help)
            }
            Part::Active => ("active_calls", "gauge", "Calls in flight now, by category."),
            Part::Errors => {
                ("function_errors_total", "counter", "Calls that returned an error, by error kind.")
            }
            Part::Times => (
                "function_times_seconds",
                "histogram",
                "Durations of calls, by kind: success, or failure (errors, panics, \
                 cancellations).",
            ),
            // Each instrument family has its own header.
            Part::Instruments | Part::Done => return None,
        };
        Some(Family { name, kind, help })
    }
}

impl<S: Borrow<Snapshot> + Send> Parts for MetricsWriter<S> {
    fn write(&mut self, out: &mut String, min: usize) -> bool {
        let format = self.format;
        while out.len() < min {
            let snapshot = self.snapshot.borrow();
            if let Part::Values(i) = self.part {
                match VALUE_FAMILIES.get(i) {
                    None => self.part = Part::Active,
                    Some(f) if self.next == 0 && !(f.shown)(snapshot) => {
                        self.part = Part::Values(i + 1)
                    }
                    Some(_) => {}
                }
                if self.part != Part::Values(i) {
                    continue;
                }
            }
            if self.next == 0 {
                if let Some(family) = self.part.family() {
                    family.header(format, out);
                }
            }
            let funcs = Functions { snapshot, funcs: &self.funcs, sets: &self.sets };
            let (done, then) = match self.part {
                Part::Values(i) => {
                    let family = &VALUE_FAMILIES[i];
                    let done = funcs.each(&mut self.next, out, min, |f, set, out| {
                        let Some(value) = (family.value)(f) else { return };
                        out.push_str(family.name);
                        out.push('{');
                        out.push_str(set);
                        out.push_str("} ");
                        match value {
                            Sample::Count(n) => push_u64(n, out),
                            Sample::Seconds(d) => {
                                let _ = write!(out, "{}", d.as_secs_f64());
                            }
                        }
                        out.push('\n');
                    });
                    (done, Part::Values(i + 1))
                }
                Part::Active => {
                    for c in snapshot.in_flight_by_category() {
                        out.push_str("active_calls");
                        labels(&[("category", c.category)], out);
                        out.push(' ');
                        push_u64(c.in_flight, out);
                        out.push('\n');
                    }
                    (true, Part::Errors)
                }
                Part::Errors => {
                    let open_metrics = format == ExpositionFormat::OpenMetrics;
                    let done = funcs.each(&mut self.next, out, min, |f, set, out| {
                        for (kind, n) in &f.errors {
                            // `error_kind` sorts before `name` and `scope`.
                            out.push_str("function_errors_total{error_kind=\"");
                            label_value(kind, out);
                            out.push_str("\",");
                            out.push_str(set);
                            out.push_str("} ");
                            push_u64(*n, out);
                            if open_metrics {
                                let of_kind = f.exemplars.iter().find(|e| {
                                    matches!(e.outcome, monitor_core::Outcome::Error(k) if k == *kind)
                                });
                                if let Some(e) = of_kind {
                                    exemplar(e, 1.0, out);
                                }
                            }
                            out.push('\n');
                        }
                    });
                    (done, Part::Times)
                }
                Part::Times => {
                    let les = &self.les;
                    let mut head = String::new();
                    let open_metrics = format == ExpositionFormat::OpenMetrics;
                    let done = funcs.each(&mut self.next, out, min, |f, set, out| {
                        for (kind, d) in
                            [("success", &f.success_times), ("failure", &f.failure_times)]
                        {
                            // A histogram with nothing in it yet is left out; its series
                            // appear with the first value.
                            if d.count > 0 {
                                let success = kind == "success";
                                let exemplars: Vec<&Exemplar> = if open_metrics {
                                    f.exemplars
                                        .iter()
                                        .filter(|e| e.outcome.is_failure() != success)
                                        .collect()
                                } else {
                                    Vec::new()
                                };
                                histogram(kind, set, d, les, &exemplars, &mut head, out);
                            }
                        }
                    });
                    (done, Part::Instruments)
                }
                Part::Instruments => {
                    write_instruments(snapshot, format, out);
                    if format == ExpositionFormat::OpenMetrics {
                        out.push_str("# EOF\n");
                    }
                    (true, Part::Done)
                }
                Part::Done => return false,
            };
            if done {
                self.part = then;
            }
        }
        self.part != Part::Done
    }
}

/// The called functions of a snapshot with their label sets.
struct Functions<'a> {
    snapshot: &'a Snapshot,
    funcs: &'a [(usize, usize)],
    sets: &'a str,
}

impl Functions<'_> {
    /// Writes `one` for each function from `next` on, at least one, until `out` reaches `min`
    /// bytes. Returns true, with `next` back at 0, once the last function is written.
    fn each(
        &self,
        next: &mut usize,
        out: &mut String,
        min: usize,
        mut one: impl FnMut(&FunctionStats, &str, &mut String),
    ) -> bool {
        while let Some(&(i, end)) = self.funcs.get(*next) {
            let start = match *next {
                0 => 0,
                n => self.funcs[n - 1].1,
            };
            one(&self.snapshot.functions[i], &self.sets[start..end], out);
            *next += 1;
            if out.len() >= min && *next < self.funcs.len() {
                return false;
            }
        }
        *next = 0;
        true
    }
}

/// `name` in Prometheus's snake case: ASCII letters lower-cased, with `_` before a capital that
/// follows a lower-case letter or a digit (`requestCount` → `request_count`); anything else but
/// digits becomes `_` (a `:` too: it is reserved for recording rules).
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if prev_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            prev_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            prev_lower = true;
        } else {
            out.push('_');
            prev_lower = false;
        }
    }
    out
}

/// A metric name from an instrument's name: `[a-z0-9_]` in snake case, not starting with a
/// digit.
fn metric_name(name: &str) -> String {
    let mut out = snake_case(name);
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// A label name from a tag key: `[a-z_][a-z0-9_]*` in snake case, never starting with `__`.
fn label_name(key: &str) -> String {
    let mut out = snake_case(key);
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() || out.starts_with("__") {
        out.insert_str(0, "tag_");
    }
    out
}

/// `help` as a HELP line's text: backslashes and line breaks escaped, other control characters
/// (a carriage return would end the line for some readers) as spaces; never empty.
fn help_text(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    for c in help.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    if out.trim().is_empty() {
        out = "(no description)".into();
    }
    out
}

/// The names a family of `kind` named `family` announces (in either format) or writes series
/// under.
fn reserved(family: &str, kind: &str) -> Vec<String> {
    match kind {
        "counter" => {
            let stem = family.strip_suffix("_total").unwrap_or(family);
            vec![family.into(), stem.into(), format!("{stem}_created")]
        }
        "summary" => vec![
            family.into(),
            format!("{family}_sum"),
            format!("{family}_count"),
            format!("{family}_created"),
        ],
        _ => vec![family.into()],
    }
}

/// `family`, or `family` with `_2`, `_3`… (before a `_total`), whichever first takes no name
/// another family has.
fn free_name(family: String, kind: &str, taken: &std::collections::HashSet<String>) -> String {
    let clashes = |name: &str| reserved(name, kind).iter().any(|n| taken.contains(n));
    if !clashes(&family) {
        return family;
    }
    let (stem, suffix) = match family.strip_suffix("_total") {
        Some(stem) => (stem, "_total"),
        None => (family.as_str(), ""),
    };
    (2..).map(|n| format!("{stem}_{n}{suffix}")).find(|name| !clashes(name)).unwrap_or(family)
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
fn write_instruments(snapshot: &Snapshot, format: ExpositionFormat, out: &mut String) {
    let mut families: BTreeMap<String, Samples> = BTreeMap::new();
    // Every name a family announces or writes series under.
    let mut taken: std::collections::HashSet<String> = std::collections::HashSet::new();
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
            let family = match families.get(&family) {
                Some(existing) if existing.kind == kind => family,
                // A family of this name and another kind, or one whose series would take a
                // name another family has (`x_count` of a summary `x` and a gauge `x_count`):
                // this one gets a name of its own.
                _ => free_name(family, kind, &taken),
            };
            let entry = families.entry(family.clone()).or_insert_with(|| {
                taken.extend(reserved(&family, kind));
                Samples { kind, help: help_text(&help), lines: String::new() }
            });
            f(&family, &mut entry.lines);
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
            _ => {}
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

/// An OpenMetrics exemplar after a sample: the call's trace and span, `value`, and when it
/// ended (seconds since the epoch).
fn exemplar(e: &Exemplar, value: f64, out: &mut String) {
    let _ = write!(
        out,
        " # {{trace_id=\"{}\",span_id=\"{}\"}} {value} {}.{:09}",
        e.trace_id,
        e.span_id,
        e.end_unix_ns / 1_000_000_000,
        e.end_unix_ns % 1_000_000_000
    );
}

/// Each bound as nanoseconds, and the rest of its bucket line from the `le` label on
/// (`,le="0.005"} `): written once per scrape, not once per line.
fn bound_tails(bounds: &[f64]) -> Vec<(f64, String)> {
    bounds.iter().map(|b| (b * 1e9, format!(",le=\"{b}\"}} "))).collect()
}

/// Cumulative counts at each bound. The histogram's buckets (at most 1.6% wide) are assigned
/// to a bound by their midpoint; counts are scaled to the exact `count`, since the histogram
/// keeps relative counts after halving itself. Each bucket carries the newest of `exemplars`
/// whose duration falls in it. `head` is scratch space for what every bucket line starts with
/// (the family, `kind` and the function's labels `set`), put together once per histogram.
fn histogram(
    kind: &str,
    set: &str,
    d: &Distribution,
    les: &[(f64, String)],
    exemplars: &[&Exemplar],
    head: &mut String,
    out: &mut String,
) {
    let total: u64 = d.buckets.iter().map(|b| b.count).sum();
    let scale = |n: u64| -> u64 {
        if total == d.count {
            n
        } else if total == 0 {
            0
        } else {
            ((u128::from(n) * u128::from(d.count)) / u128::from(total)) as u64
        }
    };
    head.clear();
    series_head("_bucket", kind, set, head);
    let mut cum = 0u64;
    let mut it = d.buckets.iter().peekable();
    let mut low = f64::NEG_INFINITY;
    // The newest exemplar in `(low, high]` nanoseconds.
    let exemplar_in = |low: f64, high: f64| {
        exemplars
            .iter()
            .filter(|e| (e.duration_ns as f64) > low && (e.duration_ns as f64) <= high)
            .max_by_key(|e| e.end_unix_ns)
    };
    for (bound_ns, tail) in les {
        while let Some(b) = it.peek() {
            let mid = (b.low_ns as f64 + (b.high_ns - 1) as f64) / 2.0;
            if mid <= *bound_ns {
                cum += b.count;
                it.next();
            } else {
                break;
            }
        }
        out.push_str(head);
        out.push_str(tail);
        push_u64(scale(cum).min(d.count), out);
        if let Some(e) = exemplar_in(low, *bound_ns) {
            exemplar(e, e.duration_ns as f64 / 1e9, out);
        }
        out.push('\n');
        low = *bound_ns;
    }
    out.push_str(head);
    out.push_str(",le=\"+Inf\"} ");
    push_u64(d.count, out);
    if let Some(e) = exemplar_in(low, f64::INFINITY) {
        exemplar(e, e.duration_ns as f64 / 1e9, out);
    }
    out.push('\n');
    series_head("_sum", kind, set, out);
    let _ = writeln!(out, "}} {}", d.sum_ns as f64 / 1e9);
    series_head("_count", kind, set, out);
    out.push_str("} ");
    push_u64(d.count, out);
    out.push('\n');
}

/// What a line of a function's times histogram starts with, up to its labels' closing brace:
/// the family with `suffix`, then `kind`, then the function's labels `set` (`kind` sorts before
/// `name` and `scope`, and a bucket's `le` comes after them).
fn series_head(suffix: &str, kind: &str, set: &str, out: &mut String) {
    out.push_str("function_times_seconds");
    out.push_str(suffix);
    out.push_str("{kind=\"");
    out.push_str(kind);
    out.push_str("\",");
    out.push_str(set);
}

#[cfg(test)]
mod tests {
    /// The objectives' latency indicator (`Distribution::count_at_most`, in monitor-core) reads
    /// a histogram as the `le` buckets here do, so the process and Prometheus count the same
    /// calls as fast.
    #[test]
    fn bucket_counts_are_the_objectives_counts() {
        use monitor_core::{Bucket, Distribution};
        // A spread over five decades, in the histogram's own buckets (about 2% wide), with
        // relative counts that sum to more than the exact count (a halved histogram).
        let mut buckets = Vec::new();
        let mut low = 1_000u64;
        while low < 20_000_000_000 {
            let high = low + low / 50 + 1;
            buckets.push(Bucket { low_ns: low, high_ns: high, count: 1 + low % 7 });
            low = high + low / 3;
        }
        let relative: u64 = buckets.iter().map(|b| b.count).sum();
        let d = Distribution { count: relative / 2 + 1, buckets, ..Distribution::default() };
        let bounds = [0.000_05, 0.0001, 0.0015, 0.002, 0.25, 1.0, 7.5];
        let les = super::bound_tails(&bounds);
        let mut out = String::new();
        super::histogram("success", "name=\"f\"", &d, &les, &[], &mut String::new(), &mut out);
        for b in bounds {
            let line =
                format!("function_times_seconds_bucket{{kind=\"success\",name=\"f\",le=\"{b}\"}} ");
            let at = out.find(&line).unwrap() + line.len();
            let written: u64 = out[at..].split('\n').next().unwrap().parse().unwrap();
            assert_eq!(written, d.count_at_most(b), "le {b}");
        }
    }

    #[test]
    fn written_in_parts_it_is_the_same_text() {
        use super::{write_prometheus, Buckets, ExpositionFormat, MetricsWriter};
        use crate::render::{in_parts, traffic};

        let snap = traffic();
        for format in [ExpositionFormat::Prometheus, ExpositionFormat::OpenMetrics] {
            let mut whole = String::new();
            write_prometheus(&snap, &Buckets::default(), format, &mut whole);
            assert!(whole.contains("function_errors_total{error_kind="));
            assert!(whole.contains("function_times_seconds_bucket{kind=\"failure\""));
            for min in [1, 60, 700, 5000, usize::MAX] {
                let writer = MetricsWriter::new(&snap, &Buckets::default(), format);
                let parts = in_parts(writer, min);
                assert_eq!(parts.concat(), whole, "in parts of {min} bytes or more");
                if min < 100 {
                    // Cut after each function: more parts than families.
                    assert!(parts.len() > 10, "{} parts", parts.len());
                }
            }
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
