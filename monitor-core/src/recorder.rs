//! The `metrics` facade's counters, gauges and histograms as the monitor's instruments
//! (feature `metrics`): any crate that counts through `metrics::counter!`, `gauge!` or
//! `histogram!` shows up in every view — `/stats`, `/metrics`, `/debug/vars`, the index.
//!
//! Each metric lands in the scope named after its target (the module that emitted it, unless
//! the macro named another), with its labels as the scope's tags:
//!
//! | `metrics` | monitor | shown as |
//! | --- | --- | --- |
//! | `counter!` | [`Meter`] (a trailing `_total` dropped: the views add it back) | total and rate |
//! | `gauge!` | a gauge of the last value set (`increment` and `decrement` move it) | value |
//! | `histogram!` | [`FloatVal`] | count, sum, extremes, quantiles |
//!
//! Descriptions become `HELP`, with the unit appended (`… [seconds]`). At most
//! [`MAX_SERIES`] distinct (target, name, labels) series are made; later ones are not kept,
//! and counted in the `monitor` scope's `metrics_series_dropped` event.
//!
//! ```
//! monitor_core::recorder::MonitorRecorder::new().install().unwrap();
//! metrics::counter!("jobs_done_total", "queue" => "mail").increment(3);
//! let snap = monitor_core::registry().snapshot();
//! let jobs = snap.metrics.iter().find(|m| m.name == "jobs_done").unwrap();
//! assert_eq!(jobs.tags, vec![("queue".to_string(), "mail".to_string())]);
//! ```
//!
//! To keep an exporter a team already runs, compose the two with a fanout recorder (e.g.
//! `metrics_util::layers::FanoutBuilder`) and install that instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use ::metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SetRecorderError, SharedString, Unit,
};

use crate::metrics::{Event, FloatVal, Meter, Scope};

/// The most series the recorder makes.
pub const MAX_SERIES: usize = 4096;

/// A [`metrics::Recorder`] that feeds the monitor's instruments (see the module docs).
///
/// ```
/// let recorder = monitor_core::recorder::MonitorRecorder::new();
/// # drop(recorder);
/// ```
#[derive(Debug, Default)]
pub struct MonitorRecorder {
    state: Mutex<State>,
}

/// A series: target, name and labels.
type SeriesId = (String, String, Vec<(String, String)>);

#[derive(Debug, Default)]
struct State {
    /// Every series made, by (target, name, labels): a handle to give again.
    series: HashMap<SeriesId, Handle>,
    /// Descriptions by metric name, as `describe_*` gives them (they name no target).
    descriptions: HashMap<String, String>,
    /// Series refused for the cap.
    dropped: Option<Event>,
}

#[derive(Debug, Clone)]
enum Handle {
    Counter(Arc<MeterFn>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<FloatFn>),
}

#[derive(Debug)]
struct MeterFn(Meter);

impl CounterFn for MeterFn {
    fn increment(&self, value: u64) {
        self.0.mark(value);
    }

    fn absolute(&self, value: u64) {
        let total = self.0.total();
        if value > total {
            self.0.mark(value - total);
        }
    }
}

/// The last value of a gauge, as f64 bits.
#[derive(Debug, Default)]
struct GaugeCell(AtomicU64);

impl GaugeCell {
    fn update(&self, f: impl Fn(f64) -> f64) {
        let _ =
            self.0.fetch_update(Relaxed, Relaxed, |bits| Some(f(f64::from_bits(bits)).to_bits()));
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }

    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }

    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Relaxed);
    }
}

#[derive(Debug)]
struct FloatFn(FloatVal);

impl HistogramFn for FloatFn {
    fn record(&self, value: f64) {
        self.0.observe(value);
    }
}

/// Which kind of series is asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl MonitorRecorder {
    /// A recorder with no series yet.
    ///
    /// ```
    /// let r = monitor_core::recorder::MonitorRecorder::new();
    /// # drop(r);
    /// ```
    pub fn new() -> MonitorRecorder {
        MonitorRecorder::default()
    }

    /// Installs this recorder as the process's `metrics` recorder.
    ///
    /// # Errors
    ///
    /// The `metrics` crate's error when a recorder is installed already (install a fanout of
    /// both instead).
    ///
    /// ```
    /// let _ = monitor_core::recorder::MonitorRecorder::new().install();
    /// ```
    pub fn install(self) -> Result<(), SetRecorderError<MonitorRecorder>> {
        ::metrics::set_global_recorder(self)
    }

    fn describe(&self, key: &KeyName, unit: Option<Unit>, description: &SharedString) {
        let help = match unit {
            Some(unit) if unit != Unit::Count => format!("{description} [{}]", unit.as_str()),
            _ => description.to_string(),
        };
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        // The first description given is kept, also for series made before it.
        let help = state.descriptions.entry(key.as_str().to_string()).or_insert(help).clone();
        for ((target, name, labels), handle) in &state.series {
            if name == key.as_str() {
                let kind = handle_kind(handle);
                let cell = match handle {
                    Handle::Gauge(cell) => Some(cell),
                    _ => None,
                };
                let name = instrument_name(name, kind);
                let _ = register(&scope_of(target, labels), &name, kind, Some(&help), cell);
            }
        }
    }

    fn series(&self, key: &Key, metadata: &Metadata<'_>, kind: Kind) -> Option<Handle> {
        let labels: Vec<(String, String)> =
            key.labels().map(|l| (l.key().to_string(), l.value().to_string())).collect();
        let id = (metadata.target().to_string(), key.name().to_string(), labels);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = state.series.get(&id) {
            return (handle_kind(handle) == kind).then(|| handle.clone());
        }
        if state.series.len() >= MAX_SERIES {
            state
                .dropped
                .get_or_insert_with(|| Scope::new("monitor").event("metrics_series_dropped"))
                .mark();
            return None;
        }
        let scope = scope_of(&id.0, &id.2);
        let help = state.descriptions.get(key.name()).cloned();
        let help = help.as_deref();
        let name = instrument_name(key.name(), kind);
        let handle = register(&scope, &name, kind, help, None)?;
        state.series.insert(id, handle.clone());
        Some(handle)
    }
}

/// Registers a series' instrument in `scope` — or finds it, giving it `help` if it had none —
/// and returns its handle; a gauge reads `cell` when given one (its value so far), else a
/// new one.
fn register(
    scope: &Scope,
    name: &str,
    kind: Kind,
    help: Option<&str>,
    cell: Option<&Arc<GaugeCell>>,
) -> Option<Handle> {
    Some(match kind {
        Kind::Counter => {
            Handle::Counter(Arc::new(MeterFn(scope.try_meter_described(name, help).ok()?)))
        }
        Kind::Histogram => {
            Handle::Histogram(Arc::new(FloatFn(scope.try_float_val_described(name, help).ok()?)))
        }
        Kind::Gauge => {
            let cell = cell.map_or_else(|| Arc::new(GaugeCell::default()), Arc::clone);
            let read = Arc::clone(&cell);
            scope.gauge_described(name, help, move || f64::from_bits(read.0.load(Relaxed))).ok()?;
            Handle::Gauge(cell)
        }
    })
}

fn handle_kind(handle: &Handle) -> Kind {
    match handle {
        Handle::Counter(_) => Kind::Counter,
        Handle::Gauge(_) => Kind::Gauge,
        Handle::Histogram(_) => Kind::Histogram,
    }
}

/// The instrument's name: a counter's trailing `_total` goes (the views add it back).
fn instrument_name(name: &str, kind: Kind) -> String {
    match (kind, name.strip_suffix("_total")) {
        (Kind::Counter, Some(base)) if !base.is_empty() => base.to_string(),
        _ => name.to_string(),
    }
}

fn scope_of(target: &str, labels: &[(String, String)]) -> Scope {
    let tags: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Scope::new(target).with_tags(&tags)
}

impl Recorder for MonitorRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, unit, &description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, unit, &description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.describe(&key, unit, &description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        match self.series(key, metadata, Kind::Counter) {
            Some(Handle::Counter(c)) => Counter::from_arc(c),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        match self.series(key, metadata, Kind::Gauge) {
            Some(Handle::Gauge(g)) => Gauge::from_arc(g),
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        match self.series(key, metadata, Kind::Histogram) {
            Some(Handle::Histogram(h)) => Histogram::from_arc(h),
            _ => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::metrics::with_local_recorder;

    /// The instrument's statistics. Other tests of this binary hold the gauges' reader with
    /// slow callbacks, which makes a gauge read stale: take snapshots until it is fresh (a wait
    /// bounded by the test's own timeout; nothing here measures speed).
    fn stats(scope: &str, name: &str) -> crate::MetricStats {
        loop {
            let m = crate::registry().snapshot().metric(scope, name).cloned().unwrap();
            if !m.stale {
                return m;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn each_kind_lands_in_its_instrument() {
        let recorder = MonitorRecorder::new();
        with_local_recorder(&recorder, || {
            metrics::describe_histogram!("rec_t_latency", Unit::Seconds, "How long.");
            metrics::counter!(target: "rec_t", "rec_t_sent_total").increment(4);
            metrics::counter!(target: "rec_t", "rec_t_sent_total").absolute(10);
            metrics::counter!(target: "rec_t", "rec_t_sent_total").absolute(7);
            metrics::gauge!(target: "rec_t", "rec_t_depth").set(5.0);
            metrics::gauge!(target: "rec_t", "rec_t_depth").increment(2.5);
            metrics::gauge!(target: "rec_t", "rec_t_depth").decrement(1.0);
            for v in [1.0, 2.0, 3.0] {
                metrics::histogram!(target: "rec_t", "rec_t_latency").record(v);
            }
        });
        let sent = stats("rec_t", "rec_t_sent");
        assert!(matches!(sent.value, crate::MetricValue::Meter { total: 10, .. }), "{sent:?}");
        assert_eq!(stats("rec_t", "rec_t_depth").value, crate::MetricValue::Gauge(6.5));
        let latency = stats("rec_t", "rec_t_latency");
        assert_eq!(latency.description.as_deref(), Some("How long. [seconds]"));
        match latency.value {
            crate::MetricValue::FloatVal(v) => assert_eq!((v.count, v.sum), (3, 6.0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn series_past_the_cap_are_counted_not_kept() {
        let recorder = MonitorRecorder::new();
        with_local_recorder(&recorder, || {
            for i in 0..MAX_SERIES + 5 {
                metrics::counter!(target: "rec_cap", "rec_cap_hits", "i" => i.to_string())
                    .increment(1);
            }
        });
        assert_eq!(recorder.state.lock().unwrap().series.len(), MAX_SERIES);
        let dropped = stats("monitor", "metrics_series_dropped");
        assert!(
            matches!(dropped.value, crate::MetricValue::Event { total, .. } if total >= 5),
            "{dropped:?}"
        );
    }
}
