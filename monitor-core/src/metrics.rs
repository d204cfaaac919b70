//! Named instruments in scopes: counters, meters, value distributions, booleans, timers and
//! gauges. Creating or finding one takes a lock; using a handle you keep never does.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock;
use crate::counters::{full_pool, Times, WideSum};
use crate::histogram::ChunkPool;
use crate::histogram::{float_index, float_range, AtomicHistogram, Lane, F_BUCKETS};
use crate::snapshot::{Distribution, MetricStats, MetricValue, Values};

/// The kind of an instrument.
///
/// ```
/// assert_eq!(monitor_core::MetricKind::Counter.to_string(), "counter");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// [`Counter`].
    Counter,
    /// [`Meter`].
    Meter,
    /// [`Event`].
    Event,
    /// [`IntVal`].
    IntVal,
    /// [`FloatVal`].
    FloatVal,
    /// [`BoolVal`].
    BoolVal,
    /// [`DurationVal`].
    DurationVal,
    /// [`Timer`].
    Timer,
    /// A gauge: a callback read at snapshot time ([`Scope::gauge`]).
    Gauge,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Meter => "meter",
            MetricKind::Event => "event",
            MetricKind::IntVal => "int value",
            MetricKind::FloatVal => "float value",
            MetricKind::BoolVal => "bool value",
            MetricKind::DurationVal => "duration value",
            MetricKind::Timer => "timer",
            MetricKind::Gauge => "gauge",
        })
    }
}

/// Why an instrument could not be created.
///
/// ```
/// use monitor_core::{MetricError, MetricKind, Scope};
/// let scope = Scope::new("metric_error_doc");
/// let _requests = scope.counter("requests");
/// assert_eq!(
///     scope.try_meter("requests").unwrap_err(),
///     MetricError::KindMismatch { existing: MetricKind::Counter, requested: MetricKind::Meter }
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricError {
    /// The name is empty.
    EmptyName,
    /// The scope already has an instrument of another kind under this name (and tags).
    KindMismatch {
        /// The kind registered first.
        existing: MetricKind,
        /// The kind asked for now.
        requested: MetricKind,
    },
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::EmptyName => f.write_str("a metric needs a non-empty name"),
            MetricError::KindMismatch { existing, requested } => write!(
                f,
                "this name is already a {existing} in this scope; a {requested} needs another name"
            ),
        }
    }
}

impl std::error::Error for MetricError {}

type Tags = Arc<[(String, String)]>;
type GaugeFn = Arc<crate::gauges::GaugeCell>;

#[derive(Clone)]
enum Instrument {
    Counter(Counter),
    Meter(Meter),
    Event(Event),
    IntVal(IntVal),
    FloatVal(FloatVal),
    BoolVal(BoolVal),
    DurationVal(DurationVal),
    Timer(Timer),
    Gauge(GaugeFn),
}

impl Instrument {
    fn kind(&self) -> MetricKind {
        match self {
            Instrument::Counter(_) => MetricKind::Counter,
            Instrument::Meter(_) => MetricKind::Meter,
            Instrument::Event(_) => MetricKind::Event,
            Instrument::IntVal(_) => MetricKind::IntVal,
            Instrument::FloatVal(_) => MetricKind::FloatVal,
            Instrument::BoolVal(_) => MetricKind::BoolVal,
            Instrument::DurationVal(_) => MetricKind::DurationVal,
            Instrument::Timer(_) => MetricKind::Timer,
            Instrument::Gauge(_) => MetricKind::Gauge,
        }
    }
}

struct Entry {
    description: Option<Arc<str>>,
    instrument: Instrument,
}

type Key = (Arc<str>, Arc<str>, Tags);

static METRICS: Mutex<BTreeMap<Key, Entry>> = Mutex::new(BTreeMap::new());

fn metrics() -> MutexGuard<'static, BTreeMap<Key, Entry>> {
    // A panic while the lock was held cannot leave the map half-changed (every change is one
    // insert), so a poisoned lock is safe to keep using.
    METRICS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A named group of instruments, usually one per module: `monitor_core::scope!()`.
///
/// Instruments are got-or-created by name: asking twice for `counter("requests")` gives two
/// handles to the same counter. Keep the handle; using it takes no lock and allocates nothing.
/// Tags (`with_tags`) make further series of the same name.
///
/// # Examples
///
/// ```
/// let scope = monitor_core::scope!();
/// let requests = scope.counter("requests");
/// let sizes = scope.with_tags(&[("route", "/items")]).int_val("response_bytes");
/// requests.inc();
/// sizes.observe(512);
///
/// let snap = monitor_core::registry().snapshot();
/// let m = snap.metric(scope.name(), "requests").unwrap();
/// assert_eq!(m.value, monitor_core::MetricValue::Counter { value: 1, high: 1, low: 0 });
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    name: Arc<str>,
    tags: Tags,
}

/// The scope of the calling module: `Scope::new(module_path!())`, or a named one.
///
/// ```
/// let here = monitor_core::scope!();
/// assert_eq!(here.name(), module_path!());
/// let named = monitor_core::scope!("billing");
/// assert_eq!(named.name(), "billing");
/// ```
#[macro_export]
macro_rules! scope {
    () => {
        $crate::Scope::new(::core::module_path!())
    };
    ($name:expr) => {
        $crate::Scope::new($name)
    };
}

macro_rules! getters {
    ($($(#[$doc:meta])* $get:ident, $try_get:ident, $described:ident, $ty:ident, $kind:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $get(&self, name: &str) -> $ty {
                self.$try_get(name).unwrap_or_else(|_| $ty::new())
            }

            #[doc = concat!(
                "Like [`Scope::", stringify!($get), "`], but says why when the name is taken by ",
                "another kind of instrument, or empty, instead of handing back an unregistered one.",
                "\n\n```\nlet s = monitor_core::Scope::new(\"try_doc\");\nassert!(s.",
                stringify!($try_get), "(\"\").is_err());\n```"
            )]
            pub fn $try_get(&self, name: &str) -> Result<$ty, MetricError> {
                self.$described(name, None)
            }

            #[doc = concat!(
                "Like [`Scope::", stringify!($try_get), "`], with a description (shown as ",
                "Prometheus `HELP`; the first one given is kept).\n\n```\nlet s = ",
                "monitor_core::Scope::new(\"described_doc\");\ns.", stringify!($described),
                "(\"x\", Some(\"An example.\")).unwrap();\n```"
            )]
            pub fn $described(
                &self,
                name: &str,
                description: Option<&str>,
            ) -> Result<$ty, MetricError> {
                match self.get_or_create(name, MetricKind::$kind, description, || {
                    Instrument::$kind($ty::new())
                })? {
                    Instrument::$kind(it) => Ok(it),
                    other => Err(MetricError::KindMismatch {
                        existing: other.kind(),
                        requested: MetricKind::$kind,
                    }),
                }
            }
        )*
    };
}

impl Scope {
    /// A scope named `name` (a module path, or any name).
    ///
    /// ```
    /// let s = monitor_core::Scope::new("payments");
    /// assert_eq!(s.name(), "payments");
    /// ```
    pub fn new(name: &str) -> Scope {
        Scope { name: Arc::from(name), tags: Arc::from(Vec::new()) }
    }

    /// The scope's name.
    ///
    /// ```
    /// assert_eq!(monitor_core::Scope::new("x").name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scope's tags, sorted by key.
    ///
    /// ```
    /// let s = monitor_core::Scope::new("x").with_tags(&[("b", "2"), ("a", "1")]);
    /// assert_eq!(s.tags()[0], ("a".to_string(), "1".to_string()));
    /// ```
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }

    /// The same scope with more tags (a later value replaces an earlier one of the same key).
    ///
    /// ```
    /// let s = monitor_core::Scope::new("x").with_tags(&[("region", "eu")]);
    /// assert_eq!(s.tags().len(), 1);
    /// ```
    pub fn with_tags(&self, tags: &[(&str, &str)]) -> Scope {
        let mut all: BTreeMap<String, String> = self.tags.iter().cloned().collect();
        for (k, v) in tags {
            all.insert((*k).to_string(), (*v).to_string());
        }
        Scope { name: Arc::clone(&self.name), tags: all.into_iter().collect::<Vec<_>>().into() }
    }

    fn get_or_create(
        &self,
        name: &str,
        kind: MetricKind,
        description: Option<&str>,
        make: impl FnOnce() -> Instrument,
    ) -> Result<Instrument, MetricError> {
        if name.is_empty() {
            return Err(MetricError::EmptyName);
        }
        let key = (Arc::clone(&self.name), Arc::from(name), Arc::clone(&self.tags));
        let mut map = metrics();
        let entry =
            map.entry(key).or_insert_with(|| Entry { description: None, instrument: make() });
        if let (None, Some(d)) = (&entry.description, description) {
            entry.description = Some(Arc::from(d));
        }
        let existing = entry.instrument.kind();
        if existing != kind {
            return Err(MetricError::KindMismatch { existing, requested: kind });
        }
        Ok(entry.instrument.clone())
    }

    getters! {
        /// The counter `name` of this scope, created at zero if new. If the name is taken by
        /// another kind of instrument, the counter returned works but is not registered (see
        /// [`Scope::try_counter`]).
        ///
        /// ```
        /// let c = monitor_core::scope!().counter("open_files");
        /// c.inc();
        /// assert_eq!(c.value(), 1);
        /// ```
        counter, try_counter, try_counter_described, Counter, Counter;
        /// The meter `name` of this scope (see [`Meter`]).
        ///
        /// ```
        /// let m = monitor_core::scope!().meter("bytes_sent");
        /// m.mark(1500);
        /// assert_eq!(m.total(), 1500);
        /// ```
        meter, try_meter, try_meter_described, Meter, Meter;
        /// The event `name` of this scope (see [`Event`]).
        ///
        /// ```
        /// let e = monitor_core::scope!().event("cache_flush");
        /// e.mark();
        /// assert_eq!(e.total(), 1);
        /// ```
        event, try_event, try_event_described, Event, Event;
        /// The integer distribution `name` of this scope (see [`IntVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().int_val("batch_size");
        /// v.observe(32);
        /// ```
        int_val, try_int_val, try_int_val_described, IntVal, IntVal;
        /// The float distribution `name` of this scope (see [`FloatVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().float_val("load_factor");
        /// v.observe(0.75);
        /// ```
        float_val, try_float_val, try_float_val_described, FloatVal, FloatVal;
        /// The boolean tally `name` of this scope (see [`BoolVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().bool_val("cache_hit");
        /// v.observe(true);
        /// ```
        bool_val, try_bool_val, try_bool_val_described, BoolVal, BoolVal;
        /// The duration distribution `name` of this scope (see [`DurationVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().duration_val("queue_wait");
        /// v.observe(std::time::Duration::from_millis(3));
        /// ```
        duration_val, try_duration_val, try_duration_val_described, DurationVal, DurationVal;
        /// The timer `name` of this scope (see [`Timer`]).
        ///
        /// ```
        /// let t = monitor_core::scope!().timer("flush");
        /// let guard = t.start();
        /// guard.stop();
        /// ```
        timer, try_timer, try_timer_described, Timer, Timer;
    }

    /// Registers (or replaces) the gauge `name`: `read` is called at every snapshot and its
    /// value shown. A gauge that panics or returns NaN or infinity is shown as 0.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let queue = Arc::new(AtomicUsize::new(3));
    /// let q = Arc::clone(&queue);
    /// let scope = monitor_core::Scope::new("gauge_doc");
    /// scope.gauge("queue_len", move || q.load(Ordering::Relaxed) as f64).unwrap();
    /// let snap = monitor_core::registry().snapshot();
    /// assert_eq!(snap.metric("gauge_doc", "queue_len").unwrap().value, monitor_core::MetricValue::Gauge(3.0));
    /// ```
    pub fn gauge(
        &self,
        name: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricError> {
        self.gauge_described(name, None, read)
    }

    /// [`Scope::gauge`] with a description (shown as Prometheus `HELP`).
    ///
    /// ```
    /// let s = monitor_core::Scope::new("gauge_doc2");
    /// s.gauge_described("answer", Some("The answer."), || 42.0).unwrap();
    /// ```
    pub fn gauge_described(
        &self,
        name: &str,
        description: Option<&str>,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricError> {
        if name.is_empty() {
            return Err(MetricError::EmptyName);
        }
        let read: GaugeFn = crate::gauges::GaugeCell::new(read);
        let key = (Arc::clone(&self.name), Arc::from(name), Arc::clone(&self.tags));
        let mut map = metrics();
        match map.get_mut(&key) {
            Some(Entry { instrument: Instrument::Gauge(f), description: d }) => {
                *f = read;
                if let Some(desc) = description {
                    *d = Some(Arc::from(desc));
                }
                Ok(())
            }
            Some(other) => Err(MetricError::KindMismatch {
                existing: other.instrument.kind(),
                requested: MetricKind::Gauge,
            }),
            None => {
                map.insert(
                    key,
                    Entry {
                        description: description.map(Arc::from),
                        instrument: Instrument::Gauge(read),
                    },
                );
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("name", &self.name).field("tags", &self.tags).finish()
    }
}

/// A value that goes up and down: open connections, queue depth. Tracks its highest and
/// lowest values since it was created at zero (so never NaN, unlike a mean of nothing).
///
/// ```
/// let c = monitor_core::Counter::new();
/// c.add(5);
/// c.dec();
/// c.set(-2);
/// assert_eq!((c.value(), c.high(), c.low()), (-2, 5, -2));
/// ```
#[derive(Clone, Default)]
#[must_use = "a counter counts only through its handle"]
pub struct Counter(Arc<CounterInner>);

#[derive(Default)]
struct CounterInner {
    value: AtomicI64,
    high: AtomicI64,
    low: AtomicI64,
}

impl Counter {
    /// A counter at zero, not registered in any scope (see [`Scope::counter`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().value(), 0);
    /// ```
    pub fn new() -> Counter {
        Counter::default()
    }

    /// Adds one.
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.inc();
    /// assert_eq!(c.value(), 1);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.dec();
    /// assert_eq!(c.value(), -1);
    /// ```
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// Adds `n` (which may be negative).
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.add(-3);
    /// assert_eq!(c.low(), -3);
    /// ```
    #[inline]
    pub fn add(&self, n: i64) {
        let now = self.0.value.fetch_add(n, Relaxed).wrapping_add(n);
        self.0.seen(now);
    }

    /// Sets the value.
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.set(10);
    /// assert_eq!(c.high(), 10);
    /// ```
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.value.store(v, Relaxed);
        self.0.seen(v);
    }

    /// The current value.
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().value(), 0);
    /// ```
    pub fn value(&self) -> i64 {
        self.0.value.load(Relaxed)
    }

    /// The highest value it has had.
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().high(), 0);
    /// ```
    pub fn high(&self) -> i64 {
        self.0.high.load(Relaxed)
    }

    /// The lowest value it has had.
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().low(), 0);
    /// ```
    pub fn low(&self) -> i64 {
        self.0.low.load(Relaxed)
    }
}

impl CounterInner {
    #[inline]
    fn seen(&self, v: i64) {
        // Every value the counter takes is seen by the one thread that produced it, so the
        // extremes are exact; the loads keep the common case free of read-modify-writes.
        if v > self.high.load(Relaxed) {
            self.high.fetch_max(v, Relaxed);
        }
        if v < self.low.load(Relaxed) {
            self.low.fetch_min(v, Relaxed);
        }
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counter({})", self.value())
    }
}

/// How far back a meter's rate looks.
///
/// ```
/// assert_eq!(monitor_core::RATE_WINDOW.as_secs(), 60);
/// ```
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Counts things that happen — bytes sent, requests — with their total and their recent rate
/// per second.
///
/// The rate is over the last minute ([`RATE_WINDOW`]), from samples of the total that the
/// background collector takes every few seconds (and every read takes): a meter younger than
/// the window is measured over its age, and an idle meter's rate falls to zero once its last
/// marks leave the window. Marking is one relaxed `fetch_add`.
///
/// ```
/// let m = monitor_core::Meter::new();
/// m.mark(10);
/// assert_eq!(m.total(), 10);
/// assert!(m.rate() >= 0.0);
/// ```
#[derive(Clone)]
#[must_use = "a meter counts only through its handle"]
pub struct Meter(Arc<MeterInner>);

struct MeterInner {
    total: AtomicU64,
    /// `(when, total then)`, oldest first; the first is at or before the window's start.
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new()
    }
}

impl Meter {
    /// A meter at zero, not registered in any scope (see [`Scope::meter`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::Meter::new().total(), 0);
    /// ```
    pub fn new() -> Meter {
        Self::new_at(Instant::now())
    }

    fn new_at(now: Instant) -> Meter {
        crate::collector::add_sampler("meters", sample_meters);
        Meter(Arc::new(MeterInner {
            total: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::from([(now, 0)])),
        }))
    }

    /// Counts `n` more.
    ///
    /// ```
    /// let m = monitor_core::Meter::new();
    /// m.mark(3);
    /// assert_eq!(m.total(), 3);
    /// ```
    #[inline]
    pub fn mark(&self, n: u64) {
        self.0.total.fetch_add(n, Relaxed);
    }

    /// Everything counted so far.
    ///
    /// ```
    /// assert_eq!(monitor_core::Meter::new().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.0.total.load(Relaxed)
    }

    /// Per second, over the last [`RATE_WINDOW`] (or the meter's age, if younger).
    ///
    /// ```
    /// assert_eq!(monitor_core::Meter::new().rate(), 0.0);
    /// ```
    pub fn rate(&self) -> f64 {
        self.rate_at(Instant::now())
    }

    /// Records a sample of the total at `now` (at most one a second), dropping those no
    /// longer needed.
    pub(crate) fn sample_at(&self, now: Instant) {
        let total = self.total();
        let mut samples = self.0.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let due = samples
            .back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= Duration::from_secs(1));
        if due {
            samples.push_back((now, total));
        }
        if let Some(start) = now.checked_sub(RATE_WINDOW) {
            while samples.len() >= 2 && samples[1].0 <= start {
                samples.pop_front();
            }
        }
    }

    pub(crate) fn rate_at(&self, now: Instant) -> f64 {
        self.sample_at(now);
        let total = self.total();
        let samples = self.0.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(&(since, then)) = samples.front() else { return 0.0 };
        let secs = now.saturating_duration_since(since).as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            total.saturating_sub(then) as f64 / secs
        }
    }
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Meter(total: {})", self.total())
    }
}

/// Something that happens, counted one at a time: a [`Meter`] marked by one.
///
/// ```
/// let e = monitor_core::Event::new();
/// e.mark();
/// e.mark();
/// assert_eq!(e.total(), 2);
/// ```
#[derive(Clone, Default, Debug)]
#[must_use = "an event counts only through its handle"]
pub struct Event(Meter);

impl Event {
    /// An event at zero, not registered in any scope (see [`Scope::event`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::Event::new().total(), 0);
    /// ```
    pub fn new() -> Event {
        Event(Meter::new())
    }

    /// Counts one occurrence.
    ///
    /// ```
    /// let e = monitor_core::Event::new();
    /// e.mark();
    /// assert_eq!(e.total(), 1);
    /// ```
    #[inline]
    pub fn mark(&self) {
        self.0.mark(1);
    }

    /// Occurrences so far.
    ///
    /// ```
    /// assert_eq!(monitor_core::Event::new().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.0.total()
    }

    /// Occurrences per second over the last [`RATE_WINDOW`].
    ///
    /// ```
    /// assert_eq!(monitor_core::Event::new().rate(), 0.0);
    /// ```
    pub fn rate(&self) -> f64 {
        self.0.rate()
    }
}

/// An exact sum of `i64`s: a carry word counts wraps of the low word, both ways.
#[derive(Default)]
struct SignedSum {
    low: AtomicU64,
    high: AtomicI64,
}

impl SignedSum {
    #[inline]
    fn add(&self, v: i64) {
        let u = v as u64;
        let prev = self.low.fetch_add(u, Relaxed);
        let carry = i64::from(prev.checked_add(u).is_none()) - i64::from(v < 0);
        if carry != 0 {
            self.high.fetch_add(carry, Relaxed);
        }
    }

    fn get(&self) -> i128 {
        (i128::from(self.high.load(Relaxed)) << 64) + i128::from(self.low.load(Relaxed))
    }
}

/// A distribution of numbers: what [`IntVal`] and [`FloatVal`] share.
struct ValInner {
    hist: AtomicHistogram,
    count: AtomicU64,
    float_sum: AtomicU64,
    int_sum: SignedSum,
    min: AtomicU64,
    max: AtomicU64,
    recent: AtomicU64,
}

fn f64_update(cell: &AtomicU64, v: f64, better: impl Fn(f64, f64) -> bool) {
    let mut cur = cell.load(Relaxed);
    while better(v, f64::from_bits(cur)) {
        match cell.compare_exchange_weak(cur, v.to_bits(), Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
}

impl ValInner {
    fn new() -> Self {
        ValInner {
            hist: AtomicHistogram::with_buckets(F_BUCKETS),
            count: AtomicU64::new(0),
            float_sum: AtomicU64::new(0f64.to_bits()),
            int_sum: SignedSum::default(),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            recent: AtomicU64::new(0f64.to_bits()),
        }
    }

    #[inline]
    fn observe(&self, v: f64) {
        self.hist.record_index(float_index(v));
        self.count.fetch_add(1, Relaxed);
        f64_update(&self.min, v, |new, cur| new < cur);
        f64_update(&self.max, v, |new, cur| new > cur);
        self.recent.store(v.to_bits(), Relaxed);
    }

    fn read(&self, int: bool) -> Values {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return Values::default();
        }
        let sum = if int {
            self.int_sum.get() as f64
        } else {
            f64::from_bits(self.float_sum.load(Relaxed))
        };
        let buckets = self
            .hist
            .read()
            .into_iter()
            .map(|(i, n)| {
                let (lo, hi) = float_range(i);
                if int {
                    // The integers the bucket can hold, as inclusive bounds, so that small
                    // integers come back exact: positive buckets hold [lo, hi), negative ones
                    // (lo, hi], the zero bucket only 0.
                    let (a, b) = if lo >= 0.0 {
                        (lo.ceil(), hi.ceil() - 1.0)
                    } else if hi <= 0.0 && lo < -1.0 {
                        (lo.floor() + 1.0, hi.floor())
                    } else {
                        (0.0, 0.0)
                    };
                    (a, b.max(a), n)
                } else {
                    (lo, hi, n)
                }
            })
            .collect();
        Values {
            count,
            sum,
            min: f64::from_bits(self.min.load(Relaxed)),
            max: f64::from_bits(self.max.load(Relaxed)),
            recent: f64::from_bits(self.recent.load(Relaxed)),
            buckets,
        }
    }
}

/// A distribution of integers — batch sizes, response bytes: count, exact sum, min, max,
/// average, most recent and quantiles (within 1%), from the same lock-free log-linear histogram
/// as function times. Holds a 32 KiB histogram.
///
/// ```
/// let v = monitor_core::IntVal::new();
/// for n in [3, 5, -2] {
///     v.observe(n);
/// }
/// let s = v.stats();
/// assert_eq!((s.count, s.sum, s.min, s.max), (3, 6.0, -2.0, 5.0));
/// ```
#[derive(Clone)]
#[must_use = "a distribution records only through its handle"]
pub struct IntVal(Arc<ValInner>);

impl Default for IntVal {
    fn default() -> Self {
        IntVal::new()
    }
}

impl IntVal {
    /// An empty distribution, not registered in any scope (see [`Scope::int_val`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::IntVal::new().stats().count, 0);
    /// ```
    pub fn new() -> IntVal {
        IntVal(Arc::new(ValInner::new()))
    }

    /// Records one value.
    ///
    /// ```
    /// let v = monitor_core::IntVal::new();
    /// v.observe(7);
    /// assert_eq!(v.stats().recent, 7.0);
    /// ```
    #[inline]
    pub fn observe(&self, v: i64) {
        self.0.int_sum.add(v);
        self.0.observe(v as f64);
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::IntVal::new().stats().avg(), 0.0);
    /// ```
    pub fn stats(&self) -> Values {
        self.0.read(true)
    }
}

impl fmt::Debug for IntVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IntVal(count: {})", self.0.count.load(Relaxed))
    }
}

/// A distribution of floating-point numbers — ratios, load: like [`IntVal`]; NaN and infinite
/// values are ignored, and magnitudes below 2⁻²⁰ share the zero bucket.
///
/// ```
/// let v = monitor_core::FloatVal::new();
/// v.observe(0.5);
/// v.observe(f64::NAN);
/// assert_eq!(v.stats().count, 1);
/// ```
#[derive(Clone)]
#[must_use = "a distribution records only through its handle"]
pub struct FloatVal(Arc<ValInner>);

impl Default for FloatVal {
    fn default() -> Self {
        FloatVal::new()
    }
}

impl FloatVal {
    /// An empty distribution, not registered in any scope (see [`Scope::float_val`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::FloatVal::new().stats().count, 0);
    /// ```
    pub fn new() -> FloatVal {
        FloatVal(Arc::new(ValInner::new()))
    }

    /// Records one value (NaN and infinities are ignored).
    ///
    /// ```
    /// let v = monitor_core::FloatVal::new();
    /// v.observe(2.5);
    /// assert_eq!(v.stats().max, 2.5);
    /// ```
    #[inline]
    pub fn observe(&self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let mut cur = self.0.float_sum.load(Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self.0.float_sum.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.0.observe(v);
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::FloatVal::new().stats().quantile(0.5), 0.0);
    /// ```
    pub fn stats(&self) -> Values {
        self.0.read(false)
    }
}

impl fmt::Debug for FloatVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FloatVal(count: {})", self.0.count.load(Relaxed))
    }
}

/// A tally of yes/no outcomes — cache hits: trues, falses, the most recent, and the
/// disposition (trues − falses).
///
/// ```
/// let hits = monitor_core::BoolVal::new();
/// hits.observe(true);
/// hits.observe(true);
/// hits.observe(false);
/// assert_eq!((hits.trues(), hits.falses(), hits.recent()), (2, 1, Some(false)));
/// ```
#[derive(Clone, Default)]
#[must_use = "a tally records only through its handle"]
pub struct BoolVal(Arc<BoolInner>);

#[derive(Default)]
struct BoolInner {
    trues: AtomicU64,
    falses: AtomicU64,
    /// 0: nothing yet, 1: false, 2: true.
    recent: AtomicU8,
}

impl BoolVal {
    /// An empty tally, not registered in any scope (see [`Scope::bool_val`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().recent(), None);
    /// ```
    pub fn new() -> BoolVal {
        BoolVal::default()
    }

    /// Records one outcome.
    ///
    /// ```
    /// let b = monitor_core::BoolVal::new();
    /// b.observe(true);
    /// assert_eq!(b.trues(), 1);
    /// ```
    #[inline]
    pub fn observe(&self, v: bool) {
        if v {
            self.0.trues.fetch_add(1, Relaxed);
        } else {
            self.0.falses.fetch_add(1, Relaxed);
        }
        self.0.recent.store(1 + u8::from(v), Relaxed);
    }

    /// How many were true.
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().trues(), 0);
    /// ```
    pub fn trues(&self) -> u64 {
        self.0.trues.load(Relaxed)
    }

    /// How many were false.
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().falses(), 0);
    /// ```
    pub fn falses(&self) -> u64 {
        self.0.falses.load(Relaxed)
    }

    /// The most recent outcome.
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().recent(), None);
    /// ```
    pub fn recent(&self) -> Option<bool> {
        match self.0.recent.load(Relaxed) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }
}

impl fmt::Debug for BoolVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoolVal(true: {}, false: {})", self.trues(), self.falses())
    }
}

/// A distribution of durations — queue waits: the same statistics and histogram as a
/// monitored function's times.
///
/// ```
/// use std::time::Duration;
/// let v = monitor_core::DurationVal::new();
/// v.observe(Duration::from_millis(2));
/// assert_eq!(v.stats().max_ns, 2_000_000);
/// ```
#[derive(Clone)]
#[must_use = "a distribution records only through its handle"]
pub struct DurationVal(Arc<DurationInner>);

struct DurationInner {
    pool: ChunkPool,
    lane: Lane,
    times: Times,
    count: AtomicU64,
    sum: WideSum,
    recent: AtomicU64,
}

impl Default for DurationVal {
    fn default() -> Self {
        DurationVal::new()
    }
}

impl DurationVal {
    /// An empty distribution, not registered in any scope (see [`Scope::duration_val`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::DurationVal::new().stats().count, 0);
    /// ```
    pub fn new() -> DurationVal {
        DurationVal(Arc::new(DurationInner {
            pool: full_pool(),
            lane: Lane::new(),
            times: Times::new(),
            count: AtomicU64::new(0),
            sum: WideSum::default(),
            recent: AtomicU64::new(0),
        }))
    }

    /// Records one duration.
    ///
    /// ```
    /// let v = monitor_core::DurationVal::new();
    /// v.observe(std::time::Duration::from_micros(5));
    /// assert_eq!(v.stats().count, 1);
    /// ```
    #[inline]
    pub fn observe(&self, d: Duration) {
        self.observe_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    #[inline]
    fn observe_nanos(&self, ns: u64) {
        let inner = &self.0;
        inner.times.record(ns, &inner.pool, &inner.lane, &inner.lane);
        inner.sum.add(ns);
        inner.recent.store(ns, Relaxed);
        inner.count.fetch_add(1, Relaxed);
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::DurationVal::new().stats().quantile(0.9), 0);
    /// ```
    pub fn stats(&self) -> Distribution {
        let inner = &self.0;
        inner.times.distribution(
            &inner.pool,
            &inner.lane,
            inner.count.load(Relaxed),
            inner.sum.get(),
            inner.recent.load(Relaxed),
        )
    }
}

impl fmt::Debug for DurationVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurationVal(count: {})", self.0.count.load(Relaxed))
    }
}

/// Times pieces of code: [`Timer::start`] returns a guard that records the elapsed time once,
/// when stopped or dropped, into a [`DurationVal`]-like distribution.
///
/// ```
/// let t = monitor_core::Timer::new();
/// {
///     let _running = t.start();
///     // ... the timed work ...
/// }
/// let elapsed = t.start().stop();
/// assert_eq!(t.stats().count, 2);
/// assert!(elapsed.as_nanos() > 0 || elapsed.is_zero());
/// ```
#[derive(Clone, Default, Debug)]
#[must_use = "a timer records only through its handle"]
pub struct Timer(DurationVal);

impl Timer {
    /// A timer with nothing recorded, not registered in any scope (see [`Scope::timer`]).
    ///
    /// ```
    /// assert_eq!(monitor_core::Timer::new().stats().count, 0);
    /// ```
    pub fn new() -> Timer {
        Timer(DurationVal::new())
    }

    /// Starts timing.
    ///
    /// ```
    /// let t = monitor_core::Timer::new();
    /// t.start().stop();
    /// ```
    #[inline]
    pub fn start(&self) -> TimerGuard<'_> {
        TimerGuard { timer: self, start: clock::now(), done: false }
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::Timer::new().stats().count, 0);
    /// ```
    pub fn stats(&self) -> Distribution {
        self.0.stats()
    }
}

/// A running [`Timer`] measurement: records once, at [`TimerGuard::stop`] or when dropped.
///
/// ```
/// let t = monitor_core::Timer::new();
/// let g = t.start();
/// drop(g);
/// assert_eq!(t.stats().count, 1);
/// ```
#[must_use = "dropping the guard right away records a zero-length time"]
pub struct TimerGuard<'a> {
    timer: &'a Timer,
    start: u64,
    done: bool,
}

impl TimerGuard<'_> {
    /// Stops timing, records, and returns the elapsed time.
    ///
    /// ```
    /// let t = monitor_core::Timer::new();
    /// let took = t.start().stop();
    /// assert!(took < std::time::Duration::from_secs(60));
    /// ```
    pub fn stop(mut self) -> Duration {
        self.record()
    }

    fn record(&mut self) -> Duration {
        let ns = clock::nanos_between(self.start, clock::now());
        if !self.done {
            self.done = true;
            self.timer.0.observe_nanos(ns);
        }
        Duration::from_nanos(ns)
    }
}

impl Drop for TimerGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record();
        }
    }
}

impl fmt::Debug for TimerGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerGuard").field("done", &self.done).finish_non_exhaustive()
    }
}

/// Samples every meter's total (the collector calls this every few seconds).
pub(crate) fn sample_meters(now: Instant) {
    let meters: Vec<Meter> = metrics()
        .values()
        .filter_map(|e| match &e.instrument {
            Instrument::Meter(m) | Instrument::Event(Event(m)) => Some(m.clone()),
            _ => None,
        })
        .collect();
    for m in meters {
        m.sample_at(now);
    }
}

/// Copies every registered instrument's statistics. Gauges are read outside the lock, on the
/// gauges' own thread and within their time limit (see `gauges`); a gauge that panics reads
/// as 0, one that is too slow as its last value, marked stale.
pub(crate) fn snapshot() -> Vec<MetricStats> {
    let entries: Vec<(Key, Option<Arc<str>>, Instrument)> = metrics()
        .iter()
        .map(|(k, e)| (k.clone(), e.description.clone(), e.instrument.clone()))
        .collect();
    let cells: Vec<GaugeFn> = entries
        .iter()
        .filter_map(|(_, _, i)| match i {
            Instrument::Gauge(cell) => Some(Arc::clone(cell)),
            _ => None,
        })
        .collect();
    let mut readings = crate::gauges::read_all(&cells).into_iter();
    let now = Instant::now();
    let mut out: Vec<MetricStats> = entries
        .into_iter()
        .map(|((scope, name, tags), description, instrument)| {
            let mut stale = false;
            let value = match instrument {
                Instrument::Counter(c) => {
                    MetricValue::Counter { value: c.value(), high: c.high(), low: c.low() }
                }
                Instrument::Meter(m) => {
                    MetricValue::Meter { total: m.total(), rate: m.rate_at(now) }
                }
                Instrument::Event(Event(m)) => {
                    MetricValue::Event { total: m.total(), rate: m.rate_at(now) }
                }
                Instrument::IntVal(v) => MetricValue::IntVal(v.stats()),
                Instrument::FloatVal(v) => MetricValue::FloatVal(v.stats()),
                Instrument::BoolVal(b) => MetricValue::BoolVal {
                    trues: b.trues(),
                    falses: b.falses(),
                    recent: b.recent(),
                },
                Instrument::DurationVal(d) => MetricValue::DurationVal(d.stats()),
                Instrument::Timer(t) => MetricValue::Timer(t.stats()),
                Instrument::Gauge(_) => {
                    let r = readings
                        .next()
                        .unwrap_or(crate::gauges::Reading { value: 0.0, stale: true });
                    stale = r.stale;
                    MetricValue::Gauge(r.value)
                }
            };
            MetricStats {
                scope: scope.to_string(),
                name: name.to_string(),
                tags: tags.to_vec(),
                description: description.map(|d| d.to_string()),
                value,
                stale,
            }
        })
        .collect();
    // Shown once a gauge has missed its time limit, so that it is seen in every view.
    let missed = crate::gauges::stale_gauge_reads();
    if missed > 0 {
        out.push(MetricStats {
            scope: "monitor".into(),
            name: "late_callback_reads".into(),
            tags: Vec::new(),
            description: Some(
                "Gauge reads that missed the time limit and showed the gauge's last value.".into(),
            ),
            value: MetricValue::Counter {
                value: i64::try_from(missed).unwrap_or(i64::MAX),
                high: i64::try_from(missed).unwrap_or(i64::MAX),
                low: 0,
            },
            stale: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_rate_over_a_controlled_clock() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let m = Meter::new_at(t0);
        assert_eq!(m.rate_at(t0), 0.0, "a new meter has no rate, and no NaN");
        m.mark(100);
        // Younger than the window: measured over its age.
        assert_eq!(m.rate_at(at(10)), 10.0);
        // Steady 10/s for a while, sampled every 5 s as the collector does.
        for s in (15..=120).step_by(5) {
            m.mark(50);
            m.sample_at(at(s));
        }
        let r = m.rate_at(at(120));
        assert!((r - 10.0).abs() < 0.5, "steady rate {r}");
        // Idle: falls to zero once the marks leave the window.
        for s in (125..=200).step_by(5) {
            m.sample_at(at(s));
        }
        assert_eq!(m.rate_at(at(200)), 0.0);
        assert_eq!(m.total(), 100 + 22 * 50);
        assert!(m.0.samples.lock().unwrap().len() <= 14, "history stays bounded");
    }

    #[test]
    fn signed_sum_is_exact() {
        let s = SignedSum::default();
        for v in [i64::MAX, i64::MAX, -1, i64::MIN, 5] {
            s.add(v);
        }
        let want = i128::from(i64::MAX) * 2 - 1 + i128::from(i64::MIN) + 5;
        assert_eq!(s.get(), want);
    }

    #[test]
    fn counters_and_vals_mt_are_exact() {
        let c = Counter::new();
        let v = IntVal::new();
        let f = FloatVal::new();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (c, v, f) = (c.clone(), v.clone(), f.clone());
                std::thread::spawn(move || {
                    for i in 0..10_000i64 {
                        c.inc();
                        v.observe(i - 5_000 + t);
                        f.observe(0.5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((c.value(), c.high(), c.low()), (40_000, 40_000, 0));
        let s = v.stats();
        assert_eq!(s.count, 40_000);
        assert_eq!(
            s.sum,
            (0..4).map(|t| (0..10_000i64).map(|i| i - 5_000 + t).sum::<i64>()).sum::<i64>() as f64
        );
        assert_eq!((s.min, s.max), (-5_000.0, 4_999.0 + 3.0));
        assert_eq!(f.stats().sum, 20_000.0);
    }
}

/// A struct of instruments that registers all of them at once; implement it with
/// `#[derive(Metrics)]`.
///
/// The derive registers each field as `<prefix>.<field>` (the prefix defaults to the struct's
/// name in snake case; `#[metric(prefix = "…")]` changes it), uses a field's doc comment as its
/// description, and accepts `#[metric(name = "…")]`, `#[metric(skip)]` (the field is
/// `Default::default()`) and `#[metric(tags(key = "value", …))]` on fields. A field may itself
/// be a struct deriving `Metrics`: its fields nest under the field's name. The derive also adds
/// `register(&Scope)` and `register_in_module()`.
///
/// # Examples
///
/// ```
/// use monitor_core::{Counter, IntVal, Metrics, Scope};
///
/// #[derive(Metrics)]
/// struct Pool {
///     /// Connections handed out now.
///     in_use: Counter,
///     #[metric(name = "wait_count", tags(pool = "main"))]
///     waits: IntVal,
///     #[metric(skip)]
///     label: String,
/// }
///
/// let pool = Pool::register(&Scope::new("derive_doc"));
/// pool.in_use.inc();
/// let snap = monitor_core::registry().snapshot();
/// let m = snap.metric("derive_doc", "pool.in_use").unwrap();
/// assert_eq!(m.description.as_deref(), Some("Connections handed out now."));
/// assert!(snap.metric("derive_doc", "pool.wait_count").is_some());
/// assert!(pool.label.is_empty());
/// ```
pub trait Metrics: Sized {
    /// Creates (or finds) every instrument in `scope` under `prefix.<field>`.
    fn register_as(scope: &Scope, prefix: &str) -> Self;
}

/// What a field of a `#[derive(Metrics)]` struct can be: an instrument, or a struct deriving
/// `Metrics`. Not public API.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an instrument, so #[derive(Metrics)] cannot register it",
    label = "not an instrument",
    note = "fields of a #[derive(Metrics)] struct are Counter, Meter, Event, IntVal, FloatVal, \
            BoolVal, DurationVal, Timer, or structs deriving Metrics; mark others #[metric(skip)]"
)]
pub trait MetricField: Sized {
    fn __monitor_make(scope: &Scope, name: &str, description: Option<&str>) -> Self;
}

macro_rules! metric_fields {
    ($($ty:ident => $described:ident),*) => {
        $(
            impl MetricField for $ty {
                fn __monitor_make(scope: &Scope, name: &str, description: Option<&str>) -> Self {
                    scope.$described(name, description).unwrap_or_else(|_| $ty::new())
                }
            }
        )*
    };
}

metric_fields!(
    Counter => try_counter_described,
    Meter => try_meter_described,
    Event => try_event_described,
    IntVal => try_int_val_described,
    FloatVal => try_float_val_described,
    BoolVal => try_bool_val_described,
    DurationVal => try_duration_val_described,
    Timer => try_timer_described
);

impl<T: Metrics> MetricField for T {
    fn __monitor_make(scope: &Scope, name: &str, _description: Option<&str>) -> Self {
        T::register_as(scope, name)
    }
}
