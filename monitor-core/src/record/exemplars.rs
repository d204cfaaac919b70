//! Exemplars: for every function, recent calls of recorded traces that stand for its latency
//! distribution (one per power-of-four band of durations for successes, one per failure kind),
//! each holding on to its whole trace so that an exemplar shown anywhere leads to a trace that
//! can be read at once. Fed by the failed-trace keeper as traces end, so only while every trace
//! is recorded ([`keep_failed_traces`](super::keep_failed_traces)); the calls themselves do
//! nothing more. At most [`MAX_PINNED_TRACES`] traces, of [`MAX_PINNED_SPANS`] spans in all, are
//! held.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use super::{SpanOutcome, SpanRecord, Trace};
use crate::ids::TraceId;
pub use crate::snapshot::Exemplar;

/// The most traces exemplars hold on to at once; past it, a new exemplar of another trace
/// waits for one to be let go (an exemplar replaced by a newer one lets its trace go).
pub const MAX_PINNED_TRACES: usize = 512;

/// The most spans the traces exemplars hold have in all (about 12 MiB of span records).
pub const MAX_PINNED_SPANS: usize = 50_000;

static ON: AtomicBool = AtomicBool::new(true);

/// Whether ended traces offer exemplars while every trace is recorded (on unless switched
/// off): what a recorded trace costs more for them is building its [`Trace`] when it ends,
/// even when nothing in it failed, and one uncontended lock. Switching off lets every pinned
/// trace go.
///
/// ```
/// monitor_core::trace::keep_exemplars(false);
/// assert_eq!(monitor_core::trace::exemplar_traces_held(), (0, 0));
/// monitor_core::trace::keep_exemplars(true);
/// ```
pub fn keep_exemplars(on: bool) {
    ON.store(on, Relaxed);
    if !on {
        *store() = None;
    }
}

pub(crate) fn enabled() -> bool {
    ON.load(Relaxed)
}

/// Bands of success durations: band `i` holds calls of `4^i` to `4^(i+1)` nanoseconds.
const BANDS: usize = 20;
/// Failure kinds a function keeps an exemplar of.
const FAILURE_KINDS: usize = 8;
/// How long an exemplar stands before a newer call may take its place: so that a busy
/// function's traces are not built, pinned and let go call after call, and an exemplar is
/// still at most this much older than the newest call of its kind.
const REFRESH_NS: u64 = 1_000_000_000;

#[derive(Default)]
struct Site {
    bands: [Option<Exemplar>; BANDS],
    failures: Vec<Exemplar>,
}

#[derive(Default)]
struct Store {
    sites: HashMap<&'static str, Site>,
    /// Every trace an exemplar holds on to, with how many do.
    traces: HashMap<u128, (Arc<Trace>, usize)>,
    /// Their spans, in all.
    spans: usize,
}

static STORE: Mutex<Option<Store>> = Mutex::new(None);

fn store() -> MutexGuard<'static, Option<Store>> {
    STORE.lock().unwrap_or_else(PoisonError::into_inner)
}

fn band(ns: u64) -> usize {
    let log2 = 63 - ns.max(1).leading_zeros() as usize;
    (log2 / 2).min(BANDS - 1)
}

fn exemplar(s: &SpanRecord) -> Exemplar {
    Exemplar {
        trace_id: s.trace_id,
        span_id: s.span_id,
        duration_ns: s.duration_ns,
        end_unix_ns: s.end_unix_ns(),
        outcome: s.outcome,
    }
}

impl Site {
    /// Whether a call that ended so would take an exemplar's place.
    fn wants(&self, s: &SpanRecord, end_ns: u64) -> bool {
        let stale = |e: &Exemplar| end_ns.saturating_sub(e.end_unix_ns) >= REFRESH_NS;
        if let SpanOutcome::Success = s.outcome {
            return self.bands[band(s.duration_ns)].as_ref().is_none_or(stale);
        }
        match self.failures.iter().find(|e| e.outcome == s.outcome) {
            Some(e) => stale(e),
            None => self.failures.len() < FAILURE_KINDS,
        }
    }
}

impl Store {
    /// Takes a hold on `trace` for one more exemplar.
    fn pin(&mut self, trace: &Arc<Trace>) {
        let key = trace.trace_id.to_u128();
        let spans = &mut self.spans;
        let held = self.traces.entry(key).or_insert_with(|| {
            *spans += trace.spans.len();
            (Arc::clone(trace), 0)
        });
        held.1 += 1;
    }

    fn unpin(&mut self, trace: TraceId) {
        let key = trace.to_u128();
        if let Some((_, n)) = self.traces.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                if let Some((t, _)) = self.traces.remove(&key) {
                    self.spans -= t.spans.len();
                }
            }
        }
    }

    /// Puts `new` where `old` was, if its trace can be held; else `old` stays.
    fn replace(
        &mut self,
        old: Option<Exemplar>,
        new: Exemplar,
        trace: &Arc<Trace>,
    ) -> Option<Exemplar> {
        if old.is_some_and(|o| o.trace_id == new.trace_id) {
            return Some(new);
        }
        let held = |id: TraceId| self.traces.get(&id.to_u128()).map(|(t, n)| (*n, t.spans.len()));
        // What letting `old` go would free: a trace and its spans, if nothing else holds it.
        let (freed, freed_spans) = match old.and_then(|o| held(o.trace_id)) {
            Some((1, spans)) => (1, spans),
            _ => (0, 0),
        };
        let fits = held(new.trace_id).is_some()
            || (self.traces.len() - freed < MAX_PINNED_TRACES
                && self.spans - freed_spans + trace.spans.len() <= MAX_PINNED_SPANS);
        if !fits {
            return old;
        }
        if let Some(o) = old {
            self.unpin(o.trace_id);
        }
        self.pin(trace);
        Some(new)
    }
}

/// Whether any of the spans of an ended trace would become an exemplar: if not, its trace
/// need not be built. Never waits, as [`offer`].
pub(crate) fn wanted(spans: &[Arc<SpanRecord>]) -> bool {
    if !enabled() {
        return false;
    }
    let guard = match STORE.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return false,
    };
    let Some(store) = guard.as_ref() else { return true };
    spans.iter().any(|s| {
        let end = s.end_unix_ns();
        store.sites.get(s.name).is_none_or(|site| site.wants(s, end))
    })
}

/// Offers the spans of an ended `trace` as exemplars of their functions: each takes the
/// place of its kind's exemplar where that one has stood for [`REFRESH_NS`].
///
/// Never waits: while a reader holds the store, the trace is not offered (exemplars are
/// samples; the calls' counts are elsewhere and complete).
pub(crate) fn offer(trace: &Arc<Trace>) {
    if !enabled() {
        return;
    }
    let mut guard = match STORE.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => return,
    };
    guard.get_or_insert_with(Store::default).offer(trace);
}

impl Store {
    fn offer(&mut self, trace: &Arc<Trace>) {
        for s in &trace.spans {
            let new = exemplar(s);
            if self.sites.get(s.name).is_some_and(|site| !site.wants(s, new.end_unix_ns)) {
                continue;
            }
            let mut site = self.sites.remove(s.name).unwrap_or_default();
            if let SpanOutcome::Success = s.outcome {
                let b = band(s.duration_ns);
                site.bands[b] = self.replace(site.bands[b], new, trace);
            } else {
                match site.failures.iter().position(|e| e.outcome == s.outcome) {
                    Some(i) => {
                        if let Some(e) = self.replace(Some(site.failures[i]), new, trace) {
                            site.failures[i] = e;
                        }
                    }
                    None if site.failures.len() < FAILURE_KINDS => {
                        if let Some(e) = self.replace(None, new, trace) {
                            site.failures.push(e);
                        }
                    }
                    None => {}
                }
            }
            self.sites.insert(s.name, site);
        }
    }
}

/// Fills in the exemplars of each function of a snapshot (successes by duration, then
/// failures), under one hold of the store.
pub(crate) fn fill(functions: &mut [crate::snapshot::FunctionStats]) {
    let guard = store();
    let Some(store) = guard.as_ref().filter(|s| !s.sites.is_empty()) else { return };
    for f in functions {
        if let Some(site) = store.sites.get(f.name) {
            f.exemplars = site.bands.iter().flatten().chain(&site.failures).copied().collect();
        }
    }
}

/// The trace an exemplar leads to, while an exemplar holds it, or a kept failed or slow trace.
///
/// ```
/// let id = monitor_core::TraceId::from_u128(7);
/// assert!(monitor_core::trace::exemplar_trace(id).is_none());
/// ```
pub fn exemplar_trace(id: TraceId) -> Option<Arc<Trace>> {
    let pinned =
        store().as_ref().and_then(|s| s.traces.get(&id.to_u128()).map(|(t, _)| Arc::clone(t)));
    pinned
        .or_else(|| super::failed_traces().into_iter().find(|t| t.trace_id == id))
        .or_else(|| super::slow_traces().into_iter().find(|t| t.trace_id == id))
}

/// Traces exemplars hold on to, and their spans: what they cost in memory.
///
/// ```
/// let (traces, spans) = monitor_core::trace::exemplar_traces_held();
/// assert!(traces <= monitor_core::trace::MAX_PINNED_TRACES && spans >= traces);
/// ```
pub fn exemplar_traces_held() -> (usize, usize) {
    store()
        .as_ref()
        .map_or((0, 0), |s| (s.traces.len(), s.traces.values().map(|(t, _)| t.spans.len()).sum()))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;
    use crate::ids::SpanId;
    use crate::record::Status;

    /// A trace of `spans` successes of `name`, each `ns` long, ending at `end_ns`.
    fn trace(id: u128, name: &'static str, spans: usize, ns: u64, end_ns: u64) -> Arc<Trace> {
        let spans = (0..spans)
            .map(|i| {
                Arc::new(SpanRecord {
                    trace_id: TraceId::from_u128(id),
                    span_id: SpanId::from_u64(i as u64 + 1),
                    parent_id: None,
                    remote_parent: false,
                    name,
                    category: None,
                    start_unix_ns: end_ns - ns,
                    duration_ns: ns,
                    outcome: SpanOutcome::Success,
                    status: Status::Unset,
                    annotations: Vec::<(Cow<'static, str>, _)>::new(),
                    events: Vec::new(),
                    dropped: 0,
                    sampled: false,
                    allocations: None,
                })
            })
            .collect();
        Arc::new(Trace {
            trace_id: TraceId::from_u128(id),
            root: SpanId::from_u64(1),
            spans,
            dropped_spans: 0,
        })
    }

    fn offer_to(store: &mut Store, t: &Arc<Trace>) {
        store.offer(t);
    }

    #[test]
    fn an_exemplar_stands_until_it_is_stale_and_then_lets_its_trace_go() {
        let mut store = Store::default();
        offer_to(&mut store, &trace(1, "f", 1, 1_000, 10_000_000_000));
        // Within the refresh interval the first stays; its trace is the one held.
        offer_to(&mut store, &trace(2, "f", 1, 1_000, 10_500_000_000));
        assert_eq!(store.sites["f"].bands[band(1_000)].unwrap().trace_id.to_u128(), 1);
        // Later, the newer call takes its place and the first trace is let go.
        offer_to(&mut store, &trace(3, "f", 1, 1_000, 11_000_000_000));
        assert_eq!(store.sites["f"].bands[band(1_000)].unwrap().trace_id.to_u128(), 3);
        assert_eq!((store.traces.len(), store.spans), (1, 1));
        // Another band is another exemplar.
        offer_to(&mut store, &trace(4, "f", 1, 1_000_000, 11_000_000_000));
        assert_eq!((store.traces.len(), store.spans), (2, 2));
    }

    #[test]
    fn pinned_traces_and_spans_are_bounded() {
        let mut store = Store::default();
        let names: Vec<&'static str> =
            (0..MAX_PINNED_TRACES + 10).map(|i| &*format!("f{i}").leak()).collect();
        for (i, name) in names.iter().enumerate() {
            offer_to(&mut store, &trace(i as u128 + 1, name, 1, 1_000, 10_000_000_000));
        }
        assert_eq!(store.traces.len(), MAX_PINNED_TRACES);
        // A stale exemplar held by its trace alone can still be replaced at the limit.
        let late = trace(9_999, names[0], 1, 1_000, 20_000_000_000);
        offer_to(&mut store, &late);
        assert_eq!(store.sites[names[0]].bands[band(1_000)].unwrap().trace_id.to_u128(), 9_999);
        assert_eq!(store.traces.len(), MAX_PINNED_TRACES);

        // A trace too large for the span budget is not held.
        let mut store = Store::default();
        offer_to(&mut store, &trace(1, "big", MAX_PINNED_SPANS, 1_000, 10_000_000_000));
        assert_eq!(store.spans, MAX_PINNED_SPANS);
        offer_to(&mut store, &trace(2, "other", 1, 1_000, 10_000_000_000));
        assert_eq!((store.traces.len(), store.spans), (1, MAX_PINNED_SPANS));
        assert!(store.sites["other"].bands.iter().all(Option::is_none));
    }
}
