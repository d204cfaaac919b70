//! Plain-data copies of everything the registry knows, taken once and read by every renderer.

/// The quantiles every view shows, in order.
///
/// ```
/// assert_eq!(monitor_core::QUANTILES[3], 0.5);
/// ```
pub const QUANTILES: [f64; 9] = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0];

/// Everything the registry knows at one moment, as plain data.
///
/// Taken by [`Registry::snapshot`](crate::Registry::snapshot). Functions are in a stable order
/// (by name, then file and line), and a function's [`id`](FunctionStats::id) is its index here.
///
/// # Examples
///
/// ```
/// #[monitor_core::monitored(name = "snapshot_doc::parse")]
/// fn parse(s: &str) -> Result<u32, std::num::ParseIntError> {
///     s.parse()
/// }
///
/// parse("12").unwrap();
/// parse("x").unwrap_err();
/// let snap = monitor_core::registry().snapshot();
/// let f = snap.function("snapshot_doc::parse").unwrap();
/// assert_eq!((f.success, f.errors_total()), (1, 1));
/// assert_eq!(f.error("ParseIntError"), 1);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Every monitored function of the program, called or not.
    pub functions: Vec<FunctionStats>,
    /// Every registered instrument, by scope, name and tags.
    pub metrics: Vec<MetricStats>,
    /// Process-wide allocation figures, when the
    /// [`CountingAllocator`](crate::alloc::CountingAllocator) is the global allocator.
    pub alloc: Option<crate::alloc::AllocStats>,
}

impl Snapshot {
    /// The function with this exact name, if any.
    ///
    /// ```
    /// let snap = monitor_core::registry().snapshot();
    /// assert!(snap.function("no::such::function").is_none());
    /// ```
    pub fn function(&self, name: &str) -> Option<&FunctionStats> {
        self.functions.iter().find(|f| f.name == name)
    }

    /// The first instrument named `name` in scope `scope` (of any tags), if any.
    ///
    /// ```
    /// let c = monitor_core::Scope::new("snapshot_metric_doc").counter("n");
    /// c.inc();
    /// let snap = monitor_core::registry().snapshot();
    /// assert!(snap.metric("snapshot_metric_doc", "n").is_some());
    /// ```
    pub fn metric(&self, scope: &str, name: &str) -> Option<&MetricStats> {
        self.metrics.iter().find(|m| m.scope == scope && m.name == name)
    }

    /// Iterates over the functions that have been called at least once.
    ///
    /// ```
    /// let snap = monitor_core::registry().snapshot();
    /// assert!(snap.iter_called().all(|f| f.calls() > 0));
    /// ```
    pub fn iter_called(&self) -> impl Iterator<Item = &FunctionStats> {
        self.functions.iter().filter(|f| f.is_called())
    }

    /// Calls in flight now per category ("active status"): the [`CATEGORIES`] always, in that
    /// order, then every other category a monitored function has, by name. Functions without a
    /// category count as `function`.
    ///
    /// ```
    /// #[monitor_core::monitored(category = "sql")]
    /// fn query() -> u64 {
    ///     let snap = monitor_core::registry().snapshot();
    ///     snap.in_flight_by_category().iter().find(|c| c.category == "sql").map_or(0, |c| c.in_flight)
    /// }
    /// assert_eq!(query(), 1);
    /// ```
    pub fn in_flight_by_category(&self) -> Vec<CategoryInFlight> {
        let mut out: Vec<CategoryInFlight> = CATEGORIES
            .iter()
            .map(|c| CategoryInFlight { category: c, in_flight: 0, functions: 0 })
            .collect();
        let mut others: Vec<CategoryInFlight> = Vec::new();
        for f in &self.functions {
            let cat = f.category.unwrap_or(CATEGORIES[0]);
            let entry = match out.iter_mut().position(|c| c.category == cat) {
                Some(i) => &mut out[i],
                None => match others.iter().position(|c| c.category == cat) {
                    Some(i) => &mut others[i],
                    None => {
                        others.push(CategoryInFlight { category: cat, in_flight: 0, functions: 0 });
                        let last = others.len() - 1;
                        &mut others[last]
                    }
                },
            };
            entry.in_flight += f.in_flight;
            entry.functions += 1;
        }
        others.sort_by(|a, b| a.category.cmp(b.category));
        out.extend(others);
        out
    }
}

/// The categories every in-flight view shows, with the names to give
/// `#[monitored(category = "…")]`: plain functions, SQL statements, database connection
/// acquisition, outgoing HTTP requests, and sockets.
pub const CATEGORIES: [&str; 5] = ["function", "sql", "db_connection", "http_client", "socket"];

/// Calls in flight in one category (see [`Snapshot::in_flight_by_category`]).
///
/// ```
/// let c = monitor_core::CategoryInFlight { category: "sql", in_flight: 2, functions: 3 };
/// assert_eq!(c.in_flight, 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryInFlight {
    /// The category's name.
    pub category: &'static str,
    /// Calls in flight now.
    pub in_flight: u64,
    /// Monitored functions in the category.
    pub functions: usize,
}

/// Who called a function.
///
/// ```
/// use monitor_core::Caller;
/// assert_eq!(Caller::Entry.name(), "entry");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Caller {
    /// No monitored function was running on the thread or task: the call is an entry point.
    Entry,
    /// A monitored function.
    Function {
        /// Its [`FunctionStats::id`].
        id: usize,
        /// Its name.
        name: &'static str,
    },
    /// Callers beyond the number of distinct callers a function keeps apart (8), counted together.
    Other,
}

impl Caller {
    /// The caller's name: a function's name, `entry` or `other`.
    ///
    /// ```
    /// assert_eq!(monitor_core::Caller::Other.name(), "other");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Caller::Entry => "entry",
            Caller::Function { name, .. } => name,
            Caller::Other => "other",
        }
    }
}

/// One edge of the call graph: a caller and how many calls it made.
///
/// ```
/// # use monitor_core::{Caller, CallerCount};
/// let edge = CallerCount { caller: Caller::Entry, count: 3 };
/// assert_eq!(edge.caller.name(), "entry");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallerCount {
    /// Who called.
    pub caller: Caller,
    /// How many calls it made.
    pub count: u64,
}

/// What one monitored function has done so far.
///
/// ```
/// #[monitor_core::monitored(name = "stats_doc::query", category = "sql")]
/// fn query() {}
///
/// query();
/// let snap = monitor_core::registry().snapshot();
/// let f = snap.function("stats_doc::query").unwrap();
/// assert_eq!(f.category, Some("sql"));
/// assert_eq!(f.success_times.count, 1);
/// assert!(f.is_entry());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunctionStats {
    /// Index of this function in [`Snapshot::functions`]; stable for the life of the process.
    pub id: usize,
    /// The function's path as a user writes it, e.g. `vlite::Proxy::handle`, or the name given
    /// with `#[monitored(name = "…")]`.
    pub name: &'static str,
    /// The module the function is defined in (`module_path!()`).
    pub module: &'static str,
    /// The source file.
    pub file: &'static str,
    /// The line of the function in its source file.
    pub line: u32,
    /// The category given with `#[monitored(category = "…")]`.
    pub category: Option<&'static str>,
    /// Who called it, most calls first, then by name.
    pub callers: Vec<CallerCount>,
    /// Calls in flight now.
    pub in_flight: u64,
    /// The most calls that were ever in flight at once.
    pub highwater: u64,
    /// Calls that returned a success.
    pub success: u64,
    /// Calls that returned an error, by kind, sorted by kind.
    pub errors: Vec<(&'static str, u64)>,
    /// Calls that panicked (the panic went on unchanged).
    pub panics: u64,
    /// Async calls whose future was dropped before it finished.
    pub cancelled: u64,
    /// Allocations made while its calls ran, nested calls included (0 unless the
    /// [`CountingAllocator`](crate::alloc::CountingAllocator) is installed).
    pub allocations: u64,
    /// Bytes those allocations asked for.
    pub allocated_bytes: u64,
    /// Durations of successful calls.
    pub success_times: Distribution,
    /// Durations of failed calls: errors, panics and cancellations.
    pub failure_times: Distribution,
    /// Its polls, for an async function polled while [poll timing](crate::polls) was on.
    pub polls: Option<PollStats>,
    /// Recent calls of recorded traces that stand for its latencies and failures, each
    /// leading to its whole trace ([`trace::exemplar_trace`](crate::trace::exemplar_trace)).
    pub exemplars: Vec<Exemplar>,
}

/// A call standing for others of its function: its trace and span, how long it took, when it
/// ended and how.
///
/// ```
/// // Every exemplar leads to its whole trace.
/// for f in &monitor_core::registry().snapshot().functions {
///     for e in &f.exemplars {
///         let trace = monitor_core::trace::exemplar_trace(e.trace_id).unwrap();
///         assert!(trace.spans.iter().any(|s| s.span_id == e.span_id));
///     }
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Exemplar {
    /// The call's trace.
    pub trace_id: crate::ids::TraceId,
    /// The call's span.
    pub span_id: crate::ids::SpanId,
    /// How long it took, in nanoseconds.
    pub duration_ns: u64,
    /// When it ended, in nanoseconds since the Unix epoch.
    pub end_unix_ns: u64,
    /// How it ended.
    pub outcome: crate::outcome::Outcome,
}

/// The polls of a monitored async function timed while [poll timing](crate::polls) was on.
///
/// ```
/// let p = monitor_core::PollStats::default();
/// assert_eq!((p.polls, p.slow_polls, p.longest), (0, 0, std::time::Duration::ZERO));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollStats {
    /// Polls timed.
    pub polls: u64,
    /// Polls that took [`SLOW_POLL`](crate::polls::SLOW_POLL) or longer.
    pub slow_polls: u64,
    /// The time the polls took in all: how long the function ran on executor threads.
    pub busy: std::time::Duration,
    /// The longest single poll.
    pub longest: std::time::Duration,
}

impl FunctionStats {
    /// Calls that finished, in any way.
    ///
    /// ```
    /// let snap = monitor_core::registry().snapshot();
    /// for f in &snap.functions {
    ///     assert_eq!(f.calls(), f.success + f.errors_total() + f.panics + f.cancelled);
    /// }
    /// ```
    pub fn calls(&self) -> u64 {
        self.success + self.errors_total() + self.panics + self.cancelled
    }

    /// Whether the function has been called: a call has finished, or one is in flight. The
    /// views list these functions ([`Snapshot::iter_called`]).
    ///
    /// ```
    /// #[monitor_core::monitored]
    /// fn ping() {}
    /// #[monitor_core::monitored]
    /// fn never() {}
    /// ping();
    /// let snap = monitor_core::registry().snapshot();
    /// let called: Vec<&str> =
    ///     snap.functions.iter().filter(|f| f.is_called()).map(|f| f.name).collect();
    /// assert!(called.iter().any(|n| n.ends_with("ping")));
    /// assert!(!called.iter().any(|n| n.ends_with("never")));
    /// ```
    pub fn is_called(&self) -> bool {
        self.calls() > 0 || self.in_flight > 0
    }

    /// Allocations per finished call, and bytes per finished call (0 when unknown).
    ///
    /// ```
    /// # let snap = monitor_core::registry().snapshot();
    /// # for f in &snap.functions {
    /// let (allocs, bytes) = f.allocations_per_call();
    /// assert!(allocs >= 0.0 && bytes >= 0.0);
    /// # }
    /// ```
    pub fn allocations_per_call(&self) -> (f64, f64) {
        match self.calls() {
            0 => (0.0, 0.0),
            n => (self.allocations as f64 / n as f64, self.allocated_bytes as f64 / n as f64),
        }
    }

    /// Calls that returned an error, of any kind.
    ///
    /// ```
    /// # let snap = monitor_core::registry().snapshot();
    /// # for f in &snap.functions {
    /// assert_eq!(f.errors_total(), f.errors.iter().map(|(_, n)| n).sum::<u64>());
    /// # }
    /// ```
    pub fn errors_total(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }

    /// Calls that failed: errors, panics and cancellations (see [`Outcome`](crate::Outcome));
    /// what `failure_times` counts.
    ///
    /// ```
    /// # let f = monitor_core::registry().snapshot();
    /// # if let Some(f) = f.functions.first() {
    /// assert_eq!(f.failures(), f.calls() - f.success);
    /// # }
    /// ```
    pub fn failures(&self) -> u64 {
        self.errors_total() + self.panics + self.cancelled
    }

    /// Calls that returned an error of this kind.
    ///
    /// ```
    /// # let snap = monitor_core::registry().snapshot();
    /// # for f in &snap.functions {
    /// assert_eq!(f.error("NoSuchKind"), 0);
    /// # }
    /// ```
    pub fn error(&self, kind: &str) -> u64 {
        self.errors.iter().find(|(k, _)| *k == kind).map_or(0, |(_, n)| *n)
    }

    /// Calls this caller made (0 if it never called).
    ///
    /// ```
    /// # use monitor_core::Caller;
    /// # let snap = monitor_core::registry().snapshot();
    /// # for f in &snap.functions {
    /// assert_eq!(f.calls_from("entry"), f.callers.iter()
    ///     .filter(|c| c.caller == Caller::Entry).map(|c| c.count).sum::<u64>());
    /// # }
    /// ```
    pub fn calls_from(&self, caller: &str) -> u64 {
        self.callers.iter().filter(|c| c.caller.name() == caller).map(|c| c.count).sum()
    }

    /// Whether some calls came with no monitored caller (the function is an entry point).
    ///
    /// ```
    /// # let snap = monitor_core::registry().snapshot();
    /// # for f in &snap.functions {
    /// assert_eq!(f.is_entry(), f.calls_from("entry") > 0);
    /// # }
    /// ```
    pub fn is_entry(&self) -> bool {
        self.callers.iter().any(|c| c.caller == Caller::Entry)
    }
}

/// A histogram bucket of a [`Distribution`]: `count` values in `[low_ns, high_ns)`.
///
/// ```
/// let b = monitor_core::Bucket { low_ns: 64, high_ns: 65, count: 2 };
/// assert!(b.low_ns < b.high_ns);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    /// Smallest value of the bucket, in nanoseconds.
    pub low_ns: u64,
    /// One past the largest value of the bucket, in nanoseconds.
    pub high_ns: u64,
    /// Values recorded in the bucket (relative: see [`Distribution::buckets`]).
    pub count: u64,
}

/// A distribution of durations: exact count, sum, min, max and most recent value, and a
/// histogram whose quantiles are within 1% of the true values.
///
/// ```
/// let d = monitor_core::Distribution::default();
/// assert_eq!((d.count, d.avg_ns(), d.quantile(0.5)), (0, 0.0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distribution {
    /// How many durations were recorded.
    pub count: u64,
    /// Their sum, in nanoseconds.
    pub sum_ns: u128,
    /// The smallest, in nanoseconds (0 when `count` is 0).
    pub min_ns: u64,
    /// The largest, in nanoseconds (0 when `count` is 0).
    pub max_ns: u64,
    /// The most recently recorded one, in nanoseconds (0 when `count` is 0).
    pub recent_ns: u64,
    /// The non-empty histogram buckets, in increasing order. Counts are relative: after billions
    /// of values in one bucket the histogram halves itself, keeping its shape; `count` stays exact.
    pub buckets: Vec<Bucket>,
}

impl Distribution {
    pub(crate) fn from_parts(
        count: u64,
        sum_ns: u128,
        min_ns: u64,
        max_ns: u64,
        recent_ns: u64,
        buckets: Vec<(u64, u64, u64)>,
    ) -> Self {
        if count == 0 {
            return Self::default();
        }
        let buckets = buckets
            .into_iter()
            .map(|(low_ns, high_ns, count)| Bucket { low_ns, high_ns, count })
            .collect();
        Self { count, sum_ns, min_ns, max_ns, recent_ns, buckets }
    }

    /// The mean in nanoseconds, 0.0 when empty (never NaN).
    ///
    /// ```
    /// assert_eq!(monitor_core::Distribution::default().avg_ns(), 0.0);
    /// ```
    pub fn avg_ns(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count as f64
        }
    }

    /// The `q` quantile in nanoseconds (`q` is clamped to `[0, 1]`; NaN reads as 0): 0 is the
    /// exact minimum, 1 the exact maximum, anything between is within 1% of the true value.
    /// Returns 0 when empty.
    ///
    /// ```
    /// let d = monitor_core::Distribution::default();
    /// assert_eq!(d.quantile(0.99), 0);
    /// ```
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        match quantile_bucket(self.buckets.iter().map(|b| b.count), q) {
            Rank::Min => self.min_ns,
            Rank::Max => self.max_ns,
            Rank::Bucket(i) => {
                let b = &self.buckets[i];
                let mid = b.low_ns + (b.high_ns - 1 - b.low_ns) / 2;
                mid.clamp(self.min_ns, self.max_ns)
            }
        }
    }

    /// How many of the durations were at most `seconds`, by the rule `/metrics` uses for a
    /// histogram bucket's `le`: a bucket of the histogram counts when its midpoint is at most
    /// the bound (its values lie within 1% of that midpoint), scaled to the exact count.
    ///
    /// ```
    /// let d = monitor_core::Distribution::default();
    /// assert_eq!(d.count_at_most(0.25), 0);
    /// ```
    pub fn count_at_most(&self, seconds: f64) -> u64 {
        let bound_ns = seconds * 1e9;
        let total: u64 = self.buckets.iter().map(|b| b.count).sum();
        if total == 0 {
            return 0;
        }
        let within: u64 = self
            .buckets
            .iter()
            .take_while(|b| (b.low_ns as f64 + (b.high_ns - 1) as f64) / 2.0 <= bound_ns)
            .map(|b| b.count)
            .sum();
        let scaled = (u128::from(within) * u128::from(self.count)) / u128::from(total);
        u64::try_from(scaled).unwrap_or(u64::MAX).min(self.count)
    }

    /// The standard [`QUANTILES`] as `(q, nanoseconds)` pairs.
    ///
    /// ```
    /// let d = monitor_core::Distribution::default();
    /// assert_eq!(d.quantiles().len(), monitor_core::QUANTILES.len());
    /// ```
    pub fn quantiles(&self) -> [(f64, u64); QUANTILES.len()] {
        QUANTILES.map(|q| (q, self.quantile(q)))
    }
}

/// Where a quantile falls in a histogram.
enum Rank {
    Min,
    Max,
    Bucket(usize),
}

/// The bucket holding the `q` quantile of a histogram with these bucket counts (`q` clamped to
/// `[0, 1]`, NaN read as 0); the extremes are exact and kept beside the histogram.
fn quantile_bucket(counts: impl Iterator<Item = u64> + Clone, q: f64) -> Rank {
    let total: u64 = counts.clone().sum();
    let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
    if total == 0 || q == 0.0 {
        return Rank::Min;
    }
    if q == 1.0 {
        return Rank::Max;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in counts.enumerate() {
        seen += n;
        if seen >= rank {
            return Rank::Bucket(i);
        }
    }
    Rank::Max
}

/// A distribution of numbers ([`IntVal`](crate::IntVal), [`FloatVal`](crate::FloatVal)):
/// count, sum, min, max, most recent, and a histogram whose quantiles are within 1%.
///
/// ```
/// let v = monitor_core::Values::default();
/// assert_eq!((v.count, v.avg(), v.quantile(0.5)), (0, 0.0, 0.0));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Values {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum (exact for integers up to 2^53).
    pub sum: f64,
    /// The smallest (0 when `count` is 0).
    pub min: f64,
    /// The largest (0 when `count` is 0).
    pub max: f64,
    /// The most recent (0 when `count` is 0).
    pub recent: f64,
    /// The non-empty buckets as `(low, high, count)`, in increasing order (relative counts).
    /// For an [`IntVal`](crate::IntVal) the bounds are the integers the bucket holds,
    /// inclusive; otherwise `[low, high)` for positive values and `(low, high]` for negative.
    pub buckets: Vec<(f64, f64, u64)>,
}

impl Values {
    /// The mean, 0.0 when empty (never NaN).
    ///
    /// ```
    /// assert_eq!(monitor_core::Values::default().avg(), 0.0);
    /// ```
    pub fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }

    /// The `q` quantile: 0 is the exact minimum, 1 the exact maximum, anything between within
    /// 1% of the true value (0.0 when empty).
    ///
    /// ```
    /// let v = monitor_core::IntVal::new();
    /// for n in 1..=100 { v.observe(n); }
    /// let p50 = v.stats().quantile(0.5);
    /// assert!((p50 - 50.0).abs() <= 0.5);
    /// ```
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        match quantile_bucket(self.buckets.iter().map(|b| b.2), q) {
            Rank::Min => self.min,
            Rank::Max => self.max,
            Rank::Bucket(i) => {
                let (lo, hi, _) = self.buckets[i];
                ((lo + hi) / 2.0).clamp(self.min, self.max)
            }
        }
    }

    /// The standard [`QUANTILES`] as `(q, value)` pairs.
    ///
    /// ```
    /// assert_eq!(monitor_core::Values::default().quantiles().len(), 9);
    /// ```
    pub fn quantiles(&self) -> [(f64, f64); QUANTILES.len()] {
        QUANTILES.map(|q| (q, self.quantile(q)))
    }
}

/// A registered instrument's statistics.
///
/// ```
/// let s = monitor_core::Scope::new("metric_stats_doc");
/// s.bool_val("hit").observe(true);
/// let snap = monitor_core::registry().snapshot();
/// let m = snap.metric("metric_stats_doc", "hit").unwrap();
/// assert_eq!(m.value, monitor_core::MetricValue::BoolVal { trues: 1, falses: 0, recent: Some(true) });
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MetricStats {
    /// The scope's name.
    pub scope: String,
    /// The instrument's name.
    pub name: String,
    /// The scope's tags, sorted by key.
    pub tags: Vec<(String, String)>,
    /// What it measures, if described.
    pub description: Option<String>,
    /// Its kind and values.
    pub value: MetricValue,
    /// A gauge whose callback did not answer within the time limit
    /// ([`set_gauge_time_limit`](crate::set_gauge_time_limit)): its value is the last it gave.
    pub stale: bool,
}

/// The values of one instrument, by kind.
///
/// ```
/// let v = monitor_core::MetricValue::Gauge(1.5);
/// assert!(matches!(v, monitor_core::MetricValue::Gauge(x) if x == 1.5));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricValue {
    /// A [`Counter`](crate::Counter).
    Counter {
        /// Its value now.
        value: i64,
        /// Its highest value.
        high: i64,
        /// Its lowest value.
        low: i64,
    },
    /// A [`Meter`](crate::Meter).
    Meter {
        /// Everything counted.
        total: u64,
        /// Per second, recently.
        rate: f64,
    },
    /// An [`Event`](crate::Event).
    Event {
        /// Occurrences.
        total: u64,
        /// Per second, recently.
        rate: f64,
    },
    /// An [`IntVal`](crate::IntVal).
    IntVal(Values),
    /// A [`FloatVal`](crate::FloatVal).
    FloatVal(Values),
    /// A [`BoolVal`](crate::BoolVal).
    BoolVal {
        /// Trues.
        trues: u64,
        /// Falses.
        falses: u64,
        /// The most recent.
        recent: Option<bool>,
    },
    /// A [`DurationVal`](crate::DurationVal).
    DurationVal(Distribution),
    /// A [`Timer`](crate::Timer).
    Timer(Distribution),
    /// A gauge's reading.
    Gauge(f64),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::histogram::{Lane, OctaveMap, OwnChunks, SLOTS};

    fn dist(values: &[u64]) -> Distribution {
        let pool = OwnChunks::new(SLOTS);
        let (h, lane) = (OctaveMap::new(), Lane::new());
        for &v in values {
            h.record(v, &pool, &lane, &lane, false);
        }
        Distribution::from_parts(
            values.len() as u64,
            values.iter().map(|&v| u128::from(v)).sum(),
            *values.iter().min().unwrap(),
            *values.iter().max().unwrap(),
            *values.last().unwrap(),
            h.read(&pool, &lane),
        )
    }

    #[test]
    fn quantiles_within_one_percent() {
        // A deterministic spread over nine decades.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut values: Vec<u64> = (0..20_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let decade = x % 9;
                10u64.pow(decade as u32) + x % (9 * 10u64.pow(decade as u32))
            })
            .collect();
        let d = dist(&values);
        values.sort_unstable();
        for q in [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999] {
            let rank = ((q * values.len() as f64).ceil() as usize).max(1);
            let truth = values[rank - 1] as f64;
            let got = d.quantile(q) as f64;
            assert!((got - truth).abs() <= truth * 0.01, "q={q}: got {got}, true {truth}");
        }
        assert_eq!(d.quantile(0.0), values[0]);
        assert_eq!(d.quantile(1.0), *values.last().unwrap());
        assert_eq!(d.quantile(f64::NAN), values[0]);
    }

    #[test]
    fn single_value_is_exact() {
        let d = dist(&[123_456_789]);
        for (_, v) in d.quantiles() {
            assert_eq!(v, 123_456_789);
        }
        assert_eq!(d.avg_ns(), 123_456_789.0);
    }
}
