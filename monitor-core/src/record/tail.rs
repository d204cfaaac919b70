//! Keeping failed traces: while on, every trace is recorded and its finished spans are held
//! until its last recorded span in this process ends; traces in which a call failed are kept
//! (the newest `n`), the others dropped. Memory is bounded by a global budget of held spans.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};

use super::{mode, observer, set_mode, SpanRecord, Trace};
use crate::ids::{SpanId, TraceId};

/// Spans held for unfinished traces, across all of them.
pub(crate) const PENDING_SPAN_BUDGET: usize = 100_000;
/// Traces tracked at once.
pub(crate) const PENDING_TRACES: usize = 10_000;
/// The most failed traces [`keep_failed_traces`] keeps.
pub const MAX_KEPT: usize = 1024;

const SHARDS: usize = 16;

#[derive(Default)]
struct Pending {
    open: u32,
    failed: bool,
    spans: Vec<Arc<SpanRecord>>,
    dropped: u64,
}

static PENDING: LazyLock<Vec<Mutex<HashMap<u128, Pending>>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect());
static PENDING_TRACE_COUNT: AtomicUsize = AtomicUsize::new(0);
static HELD: AtomicUsize = AtomicUsize::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);

static KEEP: AtomicUsize = AtomicUsize::new(0);
static ALL: AtomicBool = AtomicBool::new(false);
static KEPT: Mutex<VecDeque<Arc<Trace>>> = Mutex::new(VecDeque::new());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn shard(trace: TraceId) -> MutexGuard<'static, HashMap<u128, Pending>> {
    lock(&PENDING[(trace.to_u128() >> 64) as usize % SHARDS])
}

/// Turns the recording of every trace on while failed or slow traces are kept, or all asked.
pub(crate) fn refresh_mode() {
    let on = KEEP.load(Relaxed) > 0 || ALL.load(Relaxed) || super::slow::on();
    set_mode(mode::ALL, on);
    if on {
        super::register_stats();
    }
}

/// Keeps the newest `n` traces in which a monitored call failed (an error, a panic or a
/// cancellation), with all their recorded spans, for [`failed_traces`] and the `/trace/errors`
/// view; `0` turns it off.
/// Kept traces also go to the span observers, sampled or not.
///
/// While on, every trace is recorded (a few hundred nanoseconds per call, see the README), so
/// the one in ten thousand failure is there without sampling luck. At most [`MAX_KEPT`].
///
/// ```
/// monitor_core::trace::keep_failed_traces(32);
/// monitor_core::trace::keep_failed_traces(0);
/// ```
pub fn keep_failed_traces(n: usize) {
    let n = n.min(MAX_KEPT);
    KEEP.store(n, Relaxed);
    let mut kept = lock(&KEPT);
    while kept.len() > n {
        kept.pop_back();
    }
    drop(kept);
    refresh_mode();
}

/// Records every trace while on, so that [`in_flight`](super::in_flight) (and `/ps`) lists every
/// monitored call running; off by default, as recording costs a few hundred nanoseconds a call.
///
/// ```
/// monitor_core::trace::record_all(true);
/// monitor_core::trace::record_all(false);
/// ```
pub fn record_all(on: bool) {
    ALL.store(on, Relaxed);
    refresh_mode();
}

/// The failed traces kept by [`keep_failed_traces`], newest first.
///
/// ```
/// assert!(monitor_core::trace::failed_traces().len() <= monitor_core::trace::MAX_KEPT);
/// ```
pub fn failed_traces() -> Vec<Arc<Trace>> {
    lock(&KEPT).iter().cloned().collect()
}

/// Counts a recorded span of `trace` as open; false if neither failed nor slow traces are kept,
/// or tracking is full.
pub(crate) fn open(trace: TraceId) -> bool {
    if KEEP.load(Relaxed) == 0 && !super::slow::on() {
        return false;
    }
    let mut pending = shard(trace);
    if let Some(p) = pending.get_mut(&trace.to_u128()) {
        p.open += 1;
        return true;
    }
    if PENDING_TRACE_COUNT.load(Relaxed) >= PENDING_TRACES {
        DROPPED.fetch_add(1, Relaxed);
        return false;
    }
    PENDING_TRACE_COUNT.fetch_add(1, Relaxed);
    pending.insert(trace.to_u128(), Pending { open: 1, ..Pending::default() });
    true
}

/// A span counted by [`open`] ended.
pub(crate) fn close(record: Arc<SpanRecord>) {
    let trace = record.trace_id;
    let done = {
        let mut pending = shard(trace);
        let Some(p) = pending.get_mut(&trace.to_u128()) else { return };
        p.failed |= record.outcome.is_failure();
        if HELD.fetch_add(1, Relaxed) < PENDING_SPAN_BUDGET {
            p.spans.push(record);
        } else {
            HELD.fetch_sub(1, Relaxed);
            p.dropped += 1;
        }
        p.open -= 1;
        if p.open > 0 {
            return;
        }
        PENDING_TRACE_COUNT.fetch_sub(1, Relaxed);
        pending.remove(&trace.to_u128())
    };
    let Some(p) = done else { return };
    HELD.fetch_sub(p.spans.len(), Relaxed);
    let keep = KEEP.load(Relaxed);
    let slow = super::slow::on();
    // Failed traces are kept; others are built only where a span would be an exemplar, or the
    // trace may be among the slowest.
    let failed_kept = keep > 0 && p.failed;
    if !(failed_kept || slow || keep > 0 && super::exemplars::wanted(&p.spans)) {
        return;
    }
    // The root: the span whose parent is not among the trace's spans (the last such to end).
    let root = root_of(&p.spans);
    let Some(root) = root else { return };
    let failed = p.failed;
    let kept = Arc::new(Trace { trace_id: trace, root, spans: p.spans, dropped_spans: p.dropped });
    if keep > 0 {
        super::exemplars::offer(&kept);
    }
    super::slow::offer(&kept);
    if !failed || keep == 0 {
        return;
    }
    for s in kept.spans.iter().filter(|s| !s.sampled) {
        observer::deliver(s);
    }
    let mut ring = lock(&KEPT);
    ring.push_front(kept);
    ring.truncate(keep);
}

/// The root of a trace's spans: the last to end of those whose parent is not among them.
fn root_of(spans: &[Arc<SpanRecord>]) -> Option<SpanId> {
    let last = spans.last().map(|s| s.span_id);
    // Small traces (most) are searched directly; larger ones through a set of their ids.
    let find = |has: &dyn Fn(SpanId) -> bool| {
        spans.iter().rev().find(|s| s.parent_id.is_none_or(|id| !has(id))).map(|s| s.span_id)
    };
    let found = if spans.len() <= 16 {
        find(&|id| spans.iter().any(|s| s.span_id == id))
    } else {
        let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id).collect();
        find(&|id| ids.contains(&id))
    };
    found.or(last)
}

pub(crate) fn kept() -> usize {
    lock(&KEPT).len()
}

pub(crate) fn dropped() -> u64 {
    DROPPED.load(Relaxed)
}
