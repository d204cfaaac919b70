//! A short history of the process's vital signs, sampled by the background collector: calls/s,
//! errors/s, the p99 of entry calls over each interval, calls in flight by category and unique
//! users. The index page draws it as small charts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::snapshot::{MetricValue, Snapshot};

/// Points kept: 30 minutes at the default 5 s collector interval.
pub const HISTORY_POINTS: usize = 360;

/// One sample of the history.
///
/// ```
/// for p in monitor_core::history() {
///     println!("{} {:.1} calls/s, p99 {} ns", p.unix_s, p.calls_per_s, p.p99_ns);
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistoryPoint {
    /// When, in seconds since the Unix epoch.
    pub unix_s: u64,
    /// Calls finished per second over the interval before it (every monitored function).
    pub calls_per_s: f64,
    /// Calls that failed (an error, a panic or a cancellation) per second over that interval.
    pub errors_per_s: f64,
    /// The 99th percentile of entry calls (those no monitored function called: requests, jobs)
    /// that finished in that interval, in nanoseconds; 0 when none did.
    pub p99_ns: u64,
    /// Calls in flight at the sample, by category (see
    /// [`Snapshot::in_flight_by_category`](crate::Snapshot::in_flight_by_category)).
    pub in_flight: Vec<(&'static str, u64)>,
    /// The sum of the registered [`UniqueUsers`](crate::UniqueUsers) estimates, if any.
    pub unique_users: Option<f64>,
}

struct State {
    points: VecDeque<HistoryPoint>,
    prev: Option<Prev>,
}

struct Prev {
    at: Instant,
    calls: u64,
    failures: u64,
    entry_buckets: BTreeMap<(u64, u64), u64>,
}

static ON: AtomicBool = AtomicBool::new(false);
static STATE: Mutex<State> = Mutex::new(State { points: VecDeque::new(), prev: None });

/// Starts keeping the history (the monitor server does it when it starts). The first point
/// comes one collector interval after the second sample.
///
/// ```
/// monitor_core::enable_history();
/// ```
pub fn enable_history() {
    ON.store(true, Relaxed);
    crate::collector::add_sampler("history", sample);
}

/// The history, oldest first, at most [`HISTORY_POINTS`].
///
/// ```
/// assert!(monitor_core::history().len() <= monitor_core::HISTORY_POINTS);
/// ```
pub fn history() -> Vec<HistoryPoint> {
    STATE.lock().unwrap_or_else(PoisonError::into_inner).points.iter().cloned().collect()
}

/// The collector's tick.
pub(crate) fn sample(now: Instant) {
    if !ON.load(Relaxed) {
        return;
    }
    let snap = crate::registry().snapshot();
    let point_parts = measure(&snap);
    let mut st = STATE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(prev) = st.prev.take() else {
        st.prev = Some(Prev {
            at: now,
            calls: point_parts.calls,
            failures: point_parts.failures,
            entry_buckets: point_parts.entry_buckets,
        });
        return;
    };
    let secs = now.saturating_duration_since(prev.at).as_secs_f64().max(1e-3);
    // The interval's own entry-call histogram: today's buckets less the last sample's.
    // (Keys sort by low end, so the result is in order.)
    let interval: Vec<(u64, u64)> = point_parts
        .entry_buckets
        .iter()
        .map(|(key, &n)| {
            (key.0, n.saturating_sub(prev.entry_buckets.get(key).copied().unwrap_or(0)))
        })
        .filter(|&(_, n)| n > 0)
        .collect();
    let point = HistoryPoint {
        unix_s: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        calls_per_s: point_parts.calls.saturating_sub(prev.calls) as f64 / secs,
        errors_per_s: point_parts.failures.saturating_sub(prev.failures) as f64 / secs,
        p99_ns: quantile(&interval, 0.99),
        in_flight: snap
            .in_flight_by_category()
            .into_iter()
            .map(|c| (c.category, c.in_flight))
            .collect(),
        unique_users: point_parts.unique_users,
    };
    st.prev = Some(Prev {
        at: now,
        calls: point_parts.calls,
        failures: point_parts.failures,
        entry_buckets: point_parts.entry_buckets,
    });
    st.points.push_back(point);
    while st.points.len() > HISTORY_POINTS {
        st.points.pop_front();
    }
    drop(st);
    sample_functions(&snap, now);
}

/// How many functions' trends are updated at each sample: the busiest by calls.
pub const TREND_FUNCTIONS: usize = 256;
/// How many functions' trends are kept (the least recently updated go first).
const TREND_SERIES: usize = 512;

/// One sample of a function's trend ([`function_history`]).
///
/// ```
/// for p in monitor_core::function_history("api::handle") {
///     println!("{} {:.1} calls/s, p99 {} ns", p.unix_s, p.calls_per_s, p.p99_ns);
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunctionPoint {
    /// When, in seconds since the Unix epoch.
    pub unix_s: u64,
    /// Calls finished per second over the interval before it.
    pub calls_per_s: f64,
    /// Calls that failed (an error, a panic or a cancellation) per second over that interval.
    pub errors_per_s: f64,
    /// The 99th percentile of the calls that finished in that interval, in nanoseconds; 0 when
    /// none did.
    pub p99_ns: u64,
}

struct Trend {
    at: Instant,
    calls: u64,
    failures: u64,
    /// The histogram at the last sample: (bucket low end, count), by low end.
    buckets: Vec<(u64, u64)>,
    points: VecDeque<FunctionPoint>,
    updated: u64,
}

struct Trends {
    tick: u64,
    by_name: HashMap<&'static str, Trend>,
}

static TRENDS: Mutex<Option<Trends>> = Mutex::new(None);

/// A function's own trend: calls/s, errors/s and p99 over each collector interval of the last
/// [`HISTORY_POINTS`], oldest first, while the history is kept ([`enable_history`]). Kept for
/// the [`TREND_FUNCTIONS`] busiest functions at each sample (of a name, the first function);
/// empty for others.
///
/// ```
/// assert!(monitor_core::function_history("no such function").is_empty());
/// ```
pub fn function_history(name: &str) -> Vec<FunctionPoint> {
    let trends = TRENDS.lock().unwrap_or_else(PoisonError::into_inner);
    trends
        .as_ref()
        .and_then(|t| t.by_name.get(name))
        .map(|t| t.points.iter().cloned().collect())
        .unwrap_or_default()
}

/// A function's histogram, successes and failures together, as (low end, count) by low end.
fn merged(f: &crate::snapshot::FunctionStats) -> Vec<(u64, u64)> {
    let mut all: BTreeMap<u64, u64> = BTreeMap::new();
    for b in f.success_times.buckets.iter().chain(&f.failure_times.buckets) {
        *all.entry(b.low_ns).or_default() += b.count;
    }
    all.into_iter().collect()
}

fn sample_functions(snap: &Snapshot, now: Instant) {
    let mut busiest: Vec<&crate::snapshot::FunctionStats> =
        snap.functions.iter().filter(|f| f.is_called()).collect();
    busiest.sort_by_key(|f| std::cmp::Reverse(f.calls()));
    let unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut guard = TRENDS.lock().unwrap_or_else(PoisonError::into_inner);
    let trends = guard.get_or_insert_with(|| Trends { tick: 0, by_name: HashMap::new() });
    trends.tick += 1;
    let tick = trends.tick;
    let mut seen: Vec<&str> = Vec::new();
    for f in busiest.into_iter() {
        if seen.len() >= TREND_FUNCTIONS {
            break;
        }
        if seen.contains(&f.name) {
            continue;
        }
        seen.push(f.name);
        let (calls, failures, buckets) = (f.calls(), f.failures(), merged(f));
        let Some(t) = trends.by_name.get_mut(f.name) else {
            trends.by_name.insert(
                f.name,
                Trend { at: now, calls, failures, buckets, points: VecDeque::new(), updated: tick },
            );
            continue;
        };
        let secs = now.saturating_duration_since(t.at).as_secs_f64().max(1e-3);
        let interval: Vec<(u64, u64)> = buckets
            .iter()
            .map(|&(low, n)| {
                let before =
                    t.buckets.binary_search_by_key(&low, |b| b.0).map_or(0, |i| t.buckets[i].1);
                (low, n.saturating_sub(before))
            })
            .filter(|&(_, n)| n > 0)
            .collect();
        t.points.push_back(FunctionPoint {
            unix_s,
            calls_per_s: calls.saturating_sub(t.calls) as f64 / secs,
            errors_per_s: failures.saturating_sub(t.failures) as f64 / secs,
            p99_ns: quantile(&interval, 0.99),
        });
        while t.points.len() > HISTORY_POINTS {
            t.points.pop_front();
        }
        (t.at, t.calls, t.failures, t.buckets, t.updated) = (now, calls, failures, buckets, tick);
    }
    if trends.by_name.len() > TREND_SERIES {
        let mut ages: Vec<(u64, &'static str)> =
            trends.by_name.iter().map(|(name, t)| (t.updated, *name)).collect();
        ages.sort_unstable();
        for (_, name) in ages.iter().take(trends.by_name.len() - TREND_SERIES) {
            trends.by_name.remove(name);
        }
    }
}

struct Parts {
    calls: u64,
    failures: u64,
    entry_buckets: BTreeMap<(u64, u64), u64>,
    unique_users: Option<f64>,
}

fn measure(snap: &Snapshot) -> Parts {
    let mut parts =
        Parts { calls: 0, failures: 0, entry_buckets: BTreeMap::new(), unique_users: None };
    for f in &snap.functions {
        parts.calls += f.calls();
        parts.failures += f.failures();
        if f.is_entry() {
            for b in f.success_times.buckets.iter().chain(&f.failure_times.buckets) {
                *parts.entry_buckets.entry((b.low_ns, b.high_ns)).or_default() += b.count;
            }
        }
    }
    for m in snap.metrics.iter().filter(|m| m.name == "unique_users") {
        if let MetricValue::Gauge(v) = m.value {
            *parts.unique_users.get_or_insert(0.0) += v;
        }
    }
    parts
}

/// The `q` quantile of `(low_ns, count)` buckets sorted by `low_ns` (the bucket's low end).
fn quantile(buckets: &[(u64, u64)], q: f64) -> u64 {
    let total: u64 = buckets.iter().map(|b| b.1).sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for &(lo, n) in buckets {
        seen += n;
        if seen >= rank {
            return lo;
        }
    }
    buckets.last().map_or(0, |b| b.0)
}
