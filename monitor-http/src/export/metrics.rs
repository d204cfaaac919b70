//! OTLP metrics: a snapshot as an `ExportMetricsServiceRequest`, in protobuf and in OTLP/JSON.
//!
//! Every called function's statistics go out in the instrumentation scope `monitor`, with the
//! attributes `code.function` (its monitored name) and `code.namespace` (its module):
//!
//! | metric | OTLP type | what |
//! | --- | --- | --- |
//! | `monitor.function.calls` | monotonic Sum, `{call}` | finished calls by `outcome` (`success`, `error`, `panic`, `cancelled`), errors by `error.type` |
//! | `monitor.function.in_flight` | non-monotonic Sum, `{call}` | calls in flight now |
//! | `monitor.function.highwater` | Gauge, `{call}` | the most calls ever in flight at once |
//! | `monitor.function.duration` | ExponentialHistogram, `s` | durations by `outcome` (`success`, `failure`) |
//! | `monitor.function.allocations`, `.allocated_bytes` | monotonic Sum | with the counting allocator |
//! | `monitor.function.polls`, `.slow_polls` | monotonic Sum, `{poll}` | with [poll timing](monitor_core::polls) on |
//! | `monitor.function.longest_poll` | Gauge, `s` | the same |
//!
//! Instruments go out in a scope named after their own scope, their tags as attributes:
//! counters as non-monotonic Sums, meters and events as monotonic Sums of their totals,
//! integer and float distributions as Summaries (count, sum, and the quantiles 0, 0.5, 0.9,
//! 0.99 and 1), duration distributions and timers as ExponentialHistograms in seconds,
//! boolean tallies as a monotonic Sum by `value` (`true`, `false`), gauges as Gauges. The
//! process statistics and the tokio runtime's are such gauges.
//!
//! While every trace is recorded ([`keep_failed_traces`](monitor_core::trace::keep_failed_traces)),
//! the duration histograms and the error counts carry exemplars: calls standing for them, with
//! their trace and span ids, each leading to a trace the monitor holds
//! ([`exemplar_trace`](monitor_core::trace::exemplar_trace)).
//!
//! Temporality is cumulative, from the process's start. Exponential histograms use scale 6
//! (64 buckets per power of two: a bucket's midpoint is within 0.55% of any value in it), so
//! the exported distribution keeps the 1% precision of the monitor's own histograms.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use monitor_core::trace::{AttributeValue, Exemplar};
use monitor_core::{Distribution, FunctionStats, MetricValue, Outcome, Snapshot, Values};

use super::otlp::{fixed64_field, json_key_values, key_values, len_field, message, Attrs};
use super::Service;
use crate::render::writer::Json;

/// The exponential histograms' scale: 2^6 buckets per power of two.
pub(crate) const SCALE: i32 = 6;

/// The quantiles of a Summary.
const SUMMARY_QUANTILES: [f64; 5] = [0.0, 0.5, 0.9, 0.99, 1.0];

/// Cumulative, in OTLP's `AggregationTemporality`.
const CUMULATIVE: u64 = 2;
/// Delta, in OTLP's `AggregationTemporality`.
const DELTA: u64 = 1;

/// One point's attributes, owned: names come from the snapshot and from tags.
type Attributes = Vec<(String, AttributeValue)>;

/// What one metric holds.
enum Data {
    Sum { monotonic: bool, points: Vec<(Attributes, Number)> },
    Gauge(Vec<(Attributes, Number)>),
    Histogram(Vec<(Attributes, Exponential)>),
    Summary(Vec<(Attributes, SummaryPoint)>),
}

#[derive(Clone, Copy)]
enum Number {
    Int(i64),
    Double(f64),
}

/// An exponential histogram's data point at [`SCALE`].
#[derive(Clone)]
struct Exponential {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    /// Whether `min` and `max` are known (not for a delta point).
    extremes: bool,
    zero_count: u64,
    offset: i32,
    counts: Vec<u64>,
}

impl Exponential {
    /// The change from `before` (the same series, earlier); from zero if it restarted.
    fn subtract(&mut self, before: &Exponential) {
        if before.count > self.count {
            return;
        }
        self.count -= before.count;
        self.sum -= before.sum;
        self.zero_count = self.zero_count.saturating_sub(before.zero_count);
        for (i, c) in before.counts.iter().enumerate() {
            let index = i64::from(before.offset) + i as i64 - i64::from(self.offset);
            if let Some(slot) = usize::try_from(index).ok().and_then(|k| self.counts.get_mut(k)) {
                *slot = slot.saturating_sub(*c);
            }
        }
        // Empty buckets at either end go.
        let first = self.counts.iter().position(|&c| c > 0);
        let last = self.counts.iter().rposition(|&c| c > 0);
        match (first, last) {
            (Some(f), Some(l)) => {
                self.counts = self.counts[f..=l].to_vec();
                self.offset += i32::try_from(f).unwrap_or(0);
            }
            _ => self.counts.clear(),
        }
    }
}

struct SummaryPoint {
    count: u64,
    sum: f64,
    quantiles: Vec<(f64, f64)>,
}

struct Metric {
    name: String,
    description: String,
    unit: &'static str,
    data: Data,
    /// Its points are the change since the last export (monotonic sums and histograms of a
    /// delta exporter).
    delta: bool,
    /// Exemplars of its points, by the point's index, in index order.
    exemplars: Vec<(usize, Exemplar)>,
}

/// The metrics of one instrumentation scope.
struct ScopeMetrics {
    name: String,
    metrics: Vec<Metric>,
}

/// Points of one snapshot, with the times they cover.
pub(crate) struct Batch {
    scopes: Vec<ScopeMetrics>,
    start_ns: u64,
    time_ns: u64,
    /// The start of delta points: the last export's time.
    delta_start_ns: u64,
}

/// What a delta exporter remembers of the last export: each series' cumulative value.
#[derive(Default)]
pub(crate) struct Previous {
    time_ns: Option<u64>,
    sums: std::collections::HashMap<String, i64>,
    histograms: std::collections::HashMap<String, Exponential>,
}

/// A series' identity across exports: scope, metric, attributes.
fn series_key(scope: &str, metric: &str, attrs: &Attributes) -> String {
    let mut key = format!("{scope}\u{0}{metric}");
    for (k, v) in attrs {
        key.push('\u{0}');
        key.push_str(k);
        key.push('=');
        key.push_str(&format!("{v:?}"));
    }
    key
}

impl Batch {
    /// Turns the monotonic sums and the histograms into their change since `previous` (which
    /// then holds this batch's values): what a delta exporter sends. Non-monotonic sums,
    /// gauges and summaries stay as they are, as OpenTelemetry's delta preference keeps them.
    /// A value lower than before (a restarted series) counts from zero.
    pub(crate) fn into_delta(mut self, previous: &mut Previous) -> Batch {
        self.delta_start_ns = previous.time_ns.unwrap_or(self.start_ns);
        previous.time_ns = Some(self.time_ns);
        for scope in &mut self.scopes {
            for m in &mut scope.metrics {
                match &mut m.data {
                    Data::Sum { monotonic: true, points } => {
                        m.delta = true;
                        for (attrs, n) in points.iter_mut() {
                            let Number::Int(now) = *n else { continue };
                            let key = series_key(&scope.name, &m.name, attrs);
                            let before = previous.sums.insert(key, now).unwrap_or(0);
                            *n = Number::Int(if now >= before { now - before } else { now });
                        }
                    }
                    Data::Histogram(points) => {
                        m.delta = true;
                        for (attrs, e) in points.iter_mut() {
                            let key = series_key(&scope.name, &m.name, attrs);
                            let now = e.clone();
                            if let Some(before) = previous.histograms.insert(key, now) {
                                e.subtract(&before);
                            }
                            // The interval's extremes are not known.
                            e.extremes = false;
                        }
                    }
                    _ => {}
                }
                if m.delta {
                    let since = self.delta_start_ns;
                    m.exemplars.retain(|(_, e)| e.end_unix_ns >= since);
                }
            }
        }
        self
    }
}

impl Batch {
    /// The data points in the batch.
    pub(crate) fn points(&self) -> u64 {
        let n = |d: &Data| match d {
            Data::Sum { points, .. } | Data::Gauge(points) => points.len(),
            Data::Histogram(p) => p.len(),
            Data::Summary(p) => p.len(),
        };
        self.scopes.iter().flat_map(|s| &s.metrics).map(|m| n(&m.data) as u64).sum()
    }
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn str_attr(key: &str, value: &str) -> (String, AttributeValue) {
    (key.to_string(), AttributeValue::Str(value.to_string().into()))
}

fn count(n: u64) -> Number {
    Number::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// The metrics of `snapshot`, cumulative since `start`.
pub(crate) fn batch(snapshot: &Snapshot, start: SystemTime) -> Batch {
    let mut scopes = vec![ScopeMetrics { name: "monitor".into(), metrics: functions(snapshot) }];
    scopes.extend(instruments(snapshot));
    scopes.retain(|s| !s.metrics.is_empty());
    let start_ns = unix_ns(start);
    Batch { scopes, start_ns, time_ns: unix_ns(SystemTime::now()), delta_start_ns: start_ns }
}

fn functions(snapshot: &Snapshot) -> Vec<Metric> {
    let mut calls = Vec::new();
    let mut in_flight = Vec::new();
    let mut highwater = Vec::new();
    let mut durations = Vec::new();
    let mut allocations = Vec::new();
    let mut allocated = Vec::new();
    let mut polls = Vec::new();
    let mut slow_polls = Vec::new();
    let mut longest = Vec::new();
    let mut call_exemplars = Vec::new();
    let mut duration_exemplars = Vec::new();
    for f in snapshot.iter_called() {
        let base = vec![str_attr("code.function", f.name), str_attr("code.namespace", f.module)];
        let with = |extra: &[(&str, &str)]| {
            let mut a = base.clone();
            a.extend(extra.iter().map(|(k, v)| str_attr(k, v)));
            a
        };
        calls.push((with(&[("outcome", "success")]), count(f.success)));
        for (kind, n) in &f.errors {
            let of_kind = f.exemplars.iter().filter(|e| e.outcome == Outcome::Error(kind));
            call_exemplars.extend(of_kind.map(|e| (calls.len(), *e)));
            calls.push((with(&[("outcome", "error"), ("error.type", kind)]), count(*n)));
        }
        for (outcome, n) in [("panic", f.panics), ("cancelled", f.cancelled)] {
            if n > 0 {
                calls.push((with(&[("outcome", outcome)]), count(n)));
            }
        }
        in_flight.push((base.clone(), count(f.in_flight)));
        highwater.push((base.clone(), count(f.highwater)));
        for (outcome, d) in [("success", &f.success_times), ("failure", &f.failure_times)] {
            if d.count > 0 {
                let failure = outcome == "failure";
                let these = f.exemplars.iter().filter(|e| e.outcome.is_failure() == failure);
                duration_exemplars.extend(these.map(|e| (durations.len(), *e)));
                durations.push((with(&[("outcome", outcome)]), exponential(d)));
            }
        }
        if snapshot.alloc.is_some() {
            allocations.push((base.clone(), count(f.allocations)));
            allocated.push((base.clone(), count(f.allocated_bytes)));
        }
        function_polls(f, &base, &mut polls, &mut slow_polls, &mut longest);
    }
    let sum = |monotonic, points| Data::Sum { monotonic, points };
    let mut calls =
        metric("monitor.function.calls", "Finished calls, by outcome.", "{call}", sum(true, calls));
    calls.exemplars = call_exemplars;
    let mut durations = metric(
        "monitor.function.duration",
        "Durations of finished calls: success, or failure (errors, panics, cancellations).",
        "s",
        Data::Histogram(durations),
    );
    durations.exemplars = duration_exemplars;
    let mut out = vec![
        calls,
        metric("monitor.function.in_flight", "Calls in flight.", "{call}", sum(false, in_flight)),
        metric(
            "monitor.function.highwater",
            "The most calls in flight at once.",
            "{call}",
            Data::Gauge(highwater),
        ),
        durations,
    ];
    if snapshot.alloc.is_some() {
        out.push(metric(
            "monitor.function.allocations",
            "Allocations made while its calls ran, nested calls included.",
            "{allocation}",
            sum(true, allocations),
        ));
        out.push(metric(
            "monitor.function.allocated_bytes",
            "Bytes allocated while its calls ran, nested calls included.",
            "By",
            sum(true, allocated),
        ));
    }
    if !polls.is_empty() {
        out.push(metric("monitor.function.polls", "Polls timed.", "{poll}", sum(true, polls)));
        out.push(metric(
            "monitor.function.slow_polls",
            "Polls that took 50 us or longer.",
            "{poll}",
            sum(true, slow_polls),
        ));
        out.push(metric(
            "monitor.function.longest_poll",
            "The longest single poll.",
            "s",
            Data::Gauge(longest),
        ));
    }
    out
}

type Points = Vec<(Attributes, Number)>;

fn function_polls(
    f: &FunctionStats,
    base: &Attributes,
    polls: &mut Points,
    slow: &mut Points,
    longest: &mut Points,
) {
    if let Some(p) = &f.polls {
        polls.push((base.clone(), count(p.polls)));
        slow.push((base.clone(), count(p.slow_polls)));
        longest.push((base.clone(), Number::Double(p.longest.as_secs_f64())));
    }
}

fn metric(name: &str, description: &str, unit: &'static str, data: Data) -> Metric {
    Metric {
        name: name.into(),
        description: description.into(),
        unit,
        data,
        delta: false,
        exemplars: Vec::new(),
    }
}

/// Instruments, by scope then name: one metric per name and kind, a point per tag set.
fn instruments(snapshot: &Snapshot) -> Vec<ScopeMetrics> {
    let mut by_scope: BTreeMap<&str, BTreeMap<(&str, u8), Metric>> = BTreeMap::new();
    for m in &snapshot.metrics {
        let attrs: Attributes = m.tags.iter().map(|(k, v)| str_attr(k, v)).collect();
        let Some((kind, unit, data)) = instrument_data(&m.value, attrs) else { continue };
        let metrics = by_scope.entry(m.scope.as_str()).or_default();
        let description = m.description.clone().unwrap_or_default();
        let entry = metrics
            .entry((m.name.as_str(), kind))
            .or_insert_with(|| metric(&m.name, &description, unit, empty_like(&data)));
        merge(&mut entry.data, data);
    }
    by_scope
        .into_iter()
        .map(|(name, metrics)| ScopeMetrics {
            name: name.to_string(),
            metrics: metrics.into_values().collect(),
        })
        .collect()
}

fn empty_like(d: &Data) -> Data {
    match d {
        Data::Sum { monotonic, .. } => Data::Sum { monotonic: *monotonic, points: Vec::new() },
        Data::Gauge(_) => Data::Gauge(Vec::new()),
        Data::Histogram(_) => Data::Histogram(Vec::new()),
        Data::Summary(_) => Data::Summary(Vec::new()),
    }
}

/// Adds the points of `more` (of the same kind) to `into`.
fn merge(into: &mut Data, more: Data) {
    match (into, more) {
        (Data::Sum { points, .. }, Data::Sum { points: p, .. }) => points.extend(p),
        (Data::Gauge(points), Data::Gauge(p)) => points.extend(p),
        (Data::Histogram(points), Data::Histogram(p)) => points.extend(p),
        (Data::Summary(points), Data::Summary(p)) => points.extend(p),
        _ => {}
    }
}

/// An instrument's kind (to keep kinds of one name apart), unit and points.
fn instrument_data(v: &MetricValue, attrs: Attributes) -> Option<(u8, &'static str, Data)> {
    Some(match v {
        MetricValue::Counter { value, .. } => {
            (0, "", Data::Sum { monotonic: false, points: vec![(attrs, Number::Int(*value))] })
        }
        MetricValue::Meter { total, .. } | MetricValue::Event { total, .. } => {
            (1, "", Data::Sum { monotonic: true, points: vec![(attrs, count(*total))] })
        }
        MetricValue::IntVal(v) | MetricValue::FloatVal(v) => {
            (2, "", Data::Summary(vec![(attrs, summary(v))]))
        }
        MetricValue::BoolVal { trues, falses, .. } => {
            let with = |value: &str| {
                let mut a = attrs.clone();
                a.push(str_attr("value", value));
                a
            };
            let points = vec![(with("true"), count(*trues)), (with("false"), count(*falses))];
            (3, "", Data::Sum { monotonic: true, points })
        }
        MetricValue::DurationVal(d) | MetricValue::Timer(d) => {
            (4, "s", Data::Histogram(vec![(attrs, exponential(d))]))
        }
        MetricValue::Gauge(g) => (5, "", Data::Gauge(vec![(attrs, Number::Double(*g))])),
        _ => return None,
    })
}

fn summary(v: &Values) -> SummaryPoint {
    SummaryPoint {
        count: v.count,
        sum: v.sum,
        quantiles: SUMMARY_QUANTILES.iter().map(|&q| (q, v.quantile(q))).collect(),
    }
}

/// The exponential bucket of `v` seconds (> 0) at [`SCALE`]: bucket `i` holds
/// `(base^i, base^(i+1)]`, base = 2^(2^-SCALE).
fn bucket_of(v: f64) -> i32 {
    let i = (v.log2() * f64::from(1 << SCALE)).ceil() - 1.0;
    // Durations in seconds stay far inside the i32 range (2^40 ns is 2^10 s).
    i.clamp(f64::from(i32::MIN / 2), f64::from(i32::MAX / 2)) as i32
}

/// A duration distribution as an exponential histogram in seconds: each of the monitor's
/// buckets counted at its midpoint; bucket counts scaled so that they add up to the exact
/// count (a snapshot reads the histogram and the count a moment apart).
fn exponential(d: &Distribution) -> Exponential {
    let total: u64 = d.buckets.iter().map(|b| b.count).sum();
    let mut out = Exponential {
        count: d.count,
        sum: d.sum_ns as f64 / 1e9,
        min: d.min_ns as f64 / 1e9,
        max: d.max_ns as f64 / 1e9,
        extremes: d.count > 0,
        zero_count: 0,
        offset: 0,
        counts: Vec::new(),
    };
    if total == 0 {
        out.zero_count = d.count;
        return out;
    }
    let mut cum = 0u64;
    let mut scaled_before = 0u64;
    let mut by_index: Vec<(i32, u64)> = Vec::with_capacity(d.buckets.len());
    for b in &d.buckets {
        cum += b.count;
        let scaled = u64::try_from(u128::from(cum) * u128::from(d.count) / u128::from(total))
            .unwrap_or(d.count);
        let n = scaled - scaled_before;
        scaled_before = scaled;
        let mid_ns = (b.low_ns as f64 + b.high_ns.saturating_sub(1) as f64) / 2.0;
        if mid_ns <= 0.0 {
            out.zero_count += n;
        } else if n > 0 {
            by_index.push((bucket_of(mid_ns / 1e9), n));
        }
    }
    if let (Some(&(first, _)), Some(&(last, _))) = (by_index.first(), by_index.last()) {
        out.offset = first;
        let len = usize::try_from(last - first).unwrap_or(0) + 1;
        out.counts = vec![0; len];
        for (i, n) in by_index {
            if let Some(c) = usize::try_from(i - first).ok().and_then(|k| out.counts.get_mut(k)) {
                *c += n;
            }
        }
    }
    out
}

// --- protobuf -------------------------------------------------------------------------------

fn owned_attrs(a: &Attributes) -> Attrs<'_> {
    a.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
}

fn double_field(field: u32, v: f64, out: &mut Vec<u8>) {
    super::otlp::tag(field, 1, out);
    out.extend_from_slice(&v.to_le_bytes());
}

fn sint32_field(field: u32, v: i32, out: &mut Vec<u8>) {
    let zigzag = ((v << 1) ^ (v >> 31)) as u32;
    super::otlp::varint_field(field, u64::from(zigzag), out);
}

/// `ExportMetricsServiceRequest` (opentelemetry/proto/collector/metrics/v1) as protobuf.
pub(crate) fn encode_protobuf(service: &Service, batch: &Batch, out: &mut Vec<u8>) {
    message(1, out, |rm| {
        message(1, rm, |res| key_values(1, &super::otlp::resource_attributes(service), res));
        for scope in &batch.scopes {
            message(2, rm, |sm| {
                message(1, sm, |s| {
                    len_field(1, scope.name.as_bytes(), s);
                    if scope.name == "monitor" {
                        len_field(2, env!("CARGO_PKG_VERSION").as_bytes(), s);
                    }
                });
                for m in &scope.metrics {
                    message(2, sm, |mm| encode_metric(m, batch, mm));
                }
            });
        }
    });
}

fn encode_metric(m: &Metric, batch: &Batch, out: &mut Vec<u8>) {
    len_field(1, m.name.as_bytes(), out);
    if !m.description.is_empty() {
        len_field(2, m.description.as_bytes(), out);
    }
    if !m.unit.is_empty() {
        len_field(3, m.unit.as_bytes(), out);
    }
    let start = if m.delta { batch.delta_start_ns } else { batch.start_ns };
    let temporality = if m.delta { DELTA } else { CUMULATIVE };
    let times = |p: &mut Vec<u8>| {
        fixed64_field(2, start, p);
        fixed64_field(3, batch.time_ns, p);
    };
    let number = |attrs: &Attributes, n: Number, p: &mut Vec<u8>| {
        key_values(7, &owned_attrs(attrs), p);
        times(p);
        match n {
            Number::Double(v) => double_field(4, v, p),
            Number::Int(v) => {
                super::otlp::tag(6, 1, p);
                p.extend_from_slice(&v.to_le_bytes());
            }
        }
    };
    match &m.data {
        Data::Gauge(points) => message(5, out, |g| {
            for (a, n) in points {
                message(1, g, |p| number(a, *n, p));
            }
        }),
        Data::Sum { monotonic, points } => message(7, out, |s| {
            for (i, (a, n)) in points.iter().enumerate() {
                message(1, s, |p| {
                    number(a, *n, p);
                    exemplars(m, i, 5, p);
                });
            }
            super::otlp::varint_field(2, temporality, s);
            super::otlp::varint_field(3, u64::from(*monotonic), s);
        }),
        Data::Histogram(points) => message(10, out, |h| {
            for (i, (a, e)) in points.iter().enumerate() {
                message(1, h, |p| {
                    key_values(1, &owned_attrs(a), p);
                    times(p);
                    fixed64_field(4, e.count, p);
                    double_field(5, e.sum, p);
                    sint32_field(6, SCALE, p);
                    fixed64_field(7, e.zero_count, p);
                    if !e.counts.is_empty() {
                        message(8, p, |b| {
                            sint32_field(1, e.offset, b);
                            let mut packed = Vec::with_capacity(e.counts.len() * 2);
                            for c in &e.counts {
                                super::otlp::varint(*c, &mut packed);
                            }
                            len_field(2, &packed, b);
                        });
                    }
                    exemplars(m, i, 11, p);
                    if e.extremes {
                        double_field(12, e.min, p);
                        double_field(13, e.max, p);
                    }
                });
            }
            super::otlp::varint_field(2, temporality, h);
        }),
        Data::Summary(points) => message(11, out, |s| {
            for (a, sp) in points {
                message(1, s, |p| {
                    key_values(7, &owned_attrs(a), p);
                    times(p);
                    fixed64_field(4, sp.count, p);
                    double_field(5, sp.sum, p);
                    for (q, v) in &sp.quantiles {
                        message(6, p, |qv| {
                            double_field(1, *q, qv);
                            double_field(2, *v, qv);
                        });
                    }
                });
            }
        }),
    }
}

/// The exemplars of `m`'s point `i`, each an `Exemplar` message in `field`: when the call
/// ended, its value (one call for a count, its duration in seconds for a histogram), and its
/// span and trace ids.
fn exemplars(m: &Metric, i: usize, field: u32, out: &mut Vec<u8>) {
    let histogram = matches!(m.data, Data::Histogram(_));
    for (_, e) in exemplars_of(m, i) {
        message(field, out, |x| {
            fixed64_field(2, e.end_unix_ns, x);
            if histogram {
                double_field(3, e.duration_ns as f64 / 1e9, x);
            }
            len_field(4, &e.span_id.to_u64().to_be_bytes(), x);
            len_field(5, &e.trace_id.to_u128().to_be_bytes(), x);
            if !histogram {
                super::otlp::tag(6, 1, x);
                x.extend_from_slice(&1i64.to_le_bytes());
            }
        });
    }
}

/// The exemplars of `m`'s point `i`: found by halving, since they are in index order (a
/// batch of thousands of functions would otherwise scan them all for every point).
fn exemplars_of(m: &Metric, i: usize) -> &[(usize, Exemplar)] {
    let from = m.exemplars.partition_point(|(at, _)| *at < i);
    let to = m.exemplars.partition_point(|(at, _)| *at <= i);
    &m.exemplars[from..to]
}

/// The same, in OTLP/JSON.
fn json_exemplars(m: &Metric, i: usize, j: &mut Json<'_>) {
    let histogram = matches!(m.data, Data::Histogram(_));
    let these = exemplars_of(m, i);
    if these.is_empty() {
        return;
    }
    j.key("exemplars").begin_array();
    for (_, e) in these {
        j.begin_object().key("timeUnixNano").str(&e.end_unix_ns.to_string());
        if histogram {
            j.key("asDouble");
            json_f64(e.duration_ns as f64 / 1e9, j);
        } else {
            j.key("asInt").i64(1);
        }
        j.key("spanId").str(&e.span_id.to_string());
        j.key("traceId").str(&e.trace_id.to_string());
        j.end_object();
    }
    j.end_array();
}

// --- JSON -----------------------------------------------------------------------------------

/// `ExportMetricsServiceRequest` as OTLP/JSON: timestamps as strings and other 64-bit integers
/// as numbers, the one spelling that decoders which read only one of the two forms the
/// protobuf JSON mapping allows (opentelemetry-proto's, rotel's) all accept.
pub(crate) fn encode_json(service: &Service, batch: &Batch, out: &mut Vec<u8>) {
    let mut text = String::with_capacity(4096);
    let mut j = Json::new(&mut text);
    j.begin_object().key("resourceMetrics").begin_array().begin_object();
    j.key("resource").begin_object().key("attributes");
    json_key_values(&super::otlp::resource_attributes(service), &mut j);
    j.end_object();
    j.key("scopeMetrics").begin_array();
    for scope in &batch.scopes {
        j.begin_object().key("scope").begin_object().key("name").str(&scope.name);
        if scope.name == "monitor" {
            j.key("version").str(env!("CARGO_PKG_VERSION"));
        }
        j.end_object();
        j.key("metrics").begin_array();
        for m in &scope.metrics {
            json_metric(m, batch, &mut j);
        }
        j.end_array().end_object();
    }
    j.end_array().end_object().end_array().end_object();
    out.extend_from_slice(text.as_bytes());
}

fn json_f64(v: f64, j: &mut Json<'_>) {
    if v.is_finite() {
        j.f64(v);
    } else if v.is_nan() {
        j.str("NaN");
    } else {
        j.str(if v < 0.0 { "-Infinity" } else { "Infinity" });
    }
}

fn json_metric(m: &Metric, batch: &Batch, j: &mut Json<'_>) {
    j.begin_object().key("name").str(&m.name);
    if !m.description.is_empty() {
        j.key("description").str(&m.description);
    }
    if !m.unit.is_empty() {
        j.key("unit").str(m.unit);
    }
    let start = if m.delta { batch.delta_start_ns } else { batch.start_ns };
    let temporality = if m.delta { DELTA } else { CUMULATIVE };
    let (start, time) = (start.to_string(), batch.time_ns.to_string());
    let head = |attrs: &Attributes, j: &mut Json<'_>| {
        j.begin_object().key("attributes");
        json_key_values(&owned_attrs(attrs), j);
        j.key("startTimeUnixNano").str(&start).key("timeUnixNano").str(&time);
    };
    let numbers = |points: &[(Attributes, Number)], j: &mut Json<'_>| {
        j.key("dataPoints").begin_array();
        for (i, (a, n)) in points.iter().enumerate() {
            head(a, j);
            match n {
                Number::Int(v) => {
                    j.key("asInt").i64(*v);
                }
                Number::Double(v) => {
                    j.key("asDouble");
                    json_f64(*v, j);
                }
            }
            json_exemplars(m, i, j);
            j.end_object();
        }
        j.end_array();
    };
    match &m.data {
        Data::Gauge(points) => {
            j.key("gauge").begin_object();
            numbers(points, j);
            j.end_object();
        }
        Data::Sum { monotonic, points } => {
            j.key("sum").begin_object();
            numbers(points, j);
            j.key("aggregationTemporality").u64(temporality).key("isMonotonic").bool(*monotonic);
            j.end_object();
        }
        Data::Histogram(points) => {
            j.key("exponentialHistogram").begin_object().key("dataPoints").begin_array();
            for (i, (a, e)) in points.iter().enumerate() {
                head(a, j);
                j.key("count").u64(e.count).key("sum");
                json_f64(e.sum, j);
                j.key("scale").i64(i64::from(SCALE));
                j.key("zeroCount").u64(e.zero_count);
                if !e.counts.is_empty() {
                    j.key("positive").begin_object().key("offset").i64(i64::from(e.offset));
                    j.key("bucketCounts").begin_array();
                    for c in &e.counts {
                        j.u64(*c);
                    }
                    j.end_array().end_object();
                }
                json_exemplars(m, i, j);
                if e.extremes {
                    j.key("min");
                    json_f64(e.min, j);
                    j.key("max");
                    json_f64(e.max, j);
                }
                j.end_object();
            }
            j.end_array().key("aggregationTemporality").u64(temporality).end_object();
        }
        Data::Summary(points) => {
            j.key("summary").begin_object().key("dataPoints").begin_array();
            for (a, sp) in points {
                head(a, j);
                j.key("count").u64(sp.count).key("sum");
                json_f64(sp.sum, j);
                j.key("quantileValues").begin_array();
                for (q, v) in &sp.quantiles {
                    j.begin_object().key("quantile");
                    json_f64(*q, j);
                    j.key("value");
                    json_f64(*v, j);
                    j.end_object();
                }
                j.end_array().end_object();
            }
            j.end_array().end_object();
        }
    }
    j.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_hold_their_values_within_the_scale_s_error() {
        let base = 2f64.powf(1.0 / f64::from(1 << SCALE));
        for v in [1e-9, 3.7e-6, 0.001, 0.25, 1.0, 2.0, 1234.5] {
            let i = bucket_of(v);
            let (low, high) = (base.powi(i), base.powi(i + 1));
            assert!(low < v && v <= high * (1.0 + 1e-12), "{v}: ({low}, {high}]");
            let mid = (low + high) / 2.0;
            assert!(((mid - v) / v).abs() < 0.0055, "{v}");
        }
        // Exact powers of two are the upper bound of their bucket.
        assert_eq!(bucket_of(1.0), -1);
        assert_eq!(bucket_of(2.0), (1 << SCALE) - 1);
    }
}
