//! Keeping slow traces: of the traces that finished in the last window, the `n` slowest of each
//! entry function (the function at the trace's root in this process), whole. Fed by the
//! failed-trace keeper's complete traces (see `tail`), so while on every trace is recorded.
//! Bounded: at most [`MAX_SLOW_PER_FUNCTION`] per function, [`MAX_SLOW_FUNCTIONS`] functions,
//! and [`SLOW_SPAN_BUDGET`] spans over all of them (the fastest kept go first).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Trace;

/// The most slow traces [`keep_slow_traces`] keeps per entry function.
pub const MAX_SLOW_PER_FUNCTION: usize = 64;
/// The most entry functions slow traces are kept for; the traces of others are not kept (and
/// counted in `monitor.slow_traces_refused`).
pub const MAX_SLOW_FUNCTIONS: usize = 256;
/// The most spans the kept slow traces hold in all.
pub const SLOW_SPAN_BUDGET: usize = 200_000;

static PER_FUNCTION: AtomicUsize = AtomicUsize::new(0);
static WINDOW_S: AtomicU64 = AtomicU64::new(3600);
static REFUSED: AtomicU64 = AtomicU64::new(0);

#[derive(Default)]
struct Kept {
    /// By entry function: its kept traces, with their root's duration and end.
    by_root: HashMap<&'static str, Vec<Slow>>,
    spans: usize,
}

#[derive(Clone)]
struct Slow {
    duration_ns: u64,
    end_unix_ns: u64,
    trace: Arc<Trace>,
}

static KEPT: Mutex<Option<Kept>> = Mutex::new(None);

fn lock() -> MutexGuard<'static, Option<Kept>> {
    KEPT.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps, for each entry function (the function at the root of a trace in this process: a
/// request, a job), the `n` slowest traces that finished in the last `window`, whole, for
/// [`slow_traces`] and the `/trace/slow` view; `n = 0` turns it off. At most
/// [`MAX_SLOW_PER_FUNCTION`]; the window is at least a second.
///
/// While on, every trace is recorded, as for
/// [`keep_failed_traces`](crate::trace::keep_failed_traces): the slow request of 3 a.m. is
/// there without sampling luck.
///
/// ```
/// use std::time::Duration;
/// monitor_core::trace::keep_slow_traces(4, Duration::from_secs(3600));
/// monitor_core::trace::keep_slow_traces(0, Duration::from_secs(3600));
/// ```
pub fn keep_slow_traces(n: usize, window: Duration) {
    let n = n.min(MAX_SLOW_PER_FUNCTION);
    PER_FUNCTION.store(n, Relaxed);
    WINDOW_S.store(window.as_secs().max(1), Relaxed);
    {
        let mut kept = lock();
        if n == 0 {
            *kept = None;
        } else if let Some(k) = kept.as_mut() {
            for list in k.by_root.values_mut() {
                list.truncate(n);
            }
            k.spans = k.by_root.values().flatten().map(|s| s.trace.spans.len()).sum();
        }
    }
    super::tail::refresh_mode();
}

/// Whether slow traces are kept.
pub(crate) fn on() -> bool {
    PER_FUNCTION.load(Relaxed) > 0
}

fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The slow traces kept now, slowest first (by the root span's duration), at most
/// [`MAX_SLOW_PER_FUNCTION`] per entry function. Traces older than the window are left out.
///
/// ```
/// assert!(monitor_core::trace::slow_traces().is_empty() || monitor_core::trace::slow_traces()[0].root_span().is_some());
/// ```
pub fn slow_traces() -> Vec<Arc<Trace>> {
    let window_ns = WINDOW_S.load(Relaxed).saturating_mul(1_000_000_000);
    let since = now_unix_ns().saturating_sub(window_ns);
    let mut all: Vec<Slow> = lock()
        .as_ref()
        .map(|k| k.by_root.values().flatten().filter(|s| s.end_unix_ns >= since).cloned().collect())
        .unwrap_or_default();
    all.sort_by_key(|s| std::cmp::Reverse(s.duration_ns));
    all.into_iter().map(|s| s.trace).collect()
}

/// A complete trace: kept if it is among the slowest of its entry function in the window.
pub(crate) fn offer(trace: &Arc<Trace>) {
    let n = PER_FUNCTION.load(Relaxed);
    if n == 0 {
        return;
    }
    let Some(root) = trace.root_span() else { return };
    let (name, duration_ns) = (root.name, root.duration_ns);
    let end_unix_ns = root.start_unix_ns.saturating_add(duration_ns);
    let since = now_unix_ns().saturating_sub(WINDOW_S.load(Relaxed).saturating_mul(1_000_000_000));
    let mut guard = lock();
    let kept = guard.get_or_insert_with(Kept::default);
    if !kept.by_root.contains_key(name) && kept.by_root.len() >= MAX_SLOW_FUNCTIONS {
        // Free the slots of functions whose traces have all aged out first.
        let before = kept.by_root.len();
        kept.by_root.retain(|_, list| list.iter().any(|s| s.end_unix_ns >= since));
        if kept.by_root.len() == before {
            REFUSED.fetch_add(1, Relaxed);
            return;
        }
    }
    let list = kept.by_root.entry(name).or_default();
    // What aged out of the window goes first; then the trace takes the place of the fastest
    // kept, if it is slower.
    let mut freed: usize = 0;
    list.retain(|s| {
        let keep = s.end_unix_ns >= since;
        if !keep {
            freed += s.trace.spans.len();
        }
        keep
    });
    if list.len() >= n {
        match list.last() {
            Some(fastest) if fastest.duration_ns < duration_ns => {
                freed += list.pop().map_or(0, |s| s.trace.spans.len());
            }
            _ => {
                kept.spans -= freed;
                return;
            }
        }
    }
    let at = list.partition_point(|s| s.duration_ns >= duration_ns);
    list.insert(at, Slow { duration_ns, end_unix_ns, trace: Arc::clone(trace) });
    kept.spans = kept.spans - freed + trace.spans.len();
    // Over the span budget: the fastest kept traces of any function go.
    while kept.spans > SLOW_SPAN_BUDGET {
        let fastest = kept
            .by_root
            .iter()
            .filter_map(|(name, list)| list.last().map(|s| (*name, s.duration_ns)))
            .min_by_key(|&(_, d)| d);
        let Some((name, _)) = fastest else { break };
        if let Some(s) = kept.by_root.get_mut(name).and_then(Vec::pop) {
            kept.spans -= s.trace.spans.len();
        }
        REFUSED.fetch_add(1, Relaxed);
    }
    kept.by_root.retain(|_, list| !list.is_empty());
}

/// Slow traces held now.
pub(crate) fn kept() -> usize {
    lock().as_ref().map_or(0, |k| k.by_root.values().map(Vec::len).sum())
}

/// Traces not kept for lack of room (functions, or the span budget).
pub(crate) fn refused() -> u64 {
    REFUSED.load(Relaxed)
}
