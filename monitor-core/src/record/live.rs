//! Recorded spans while they run: one entry per span in a sharded table, made at the call's
//! start and turned into a [`SpanRecord`] at its end.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use super::{
    flags, observer, site_name, tail, watch, AttributeValue, SpanAllocations, SpanEvent,
    SpanOutcome, SpanRecord, Status,
};
use crate::clock;
use crate::context::SpanCtx;
use crate::ids::{SpanId, TraceId};
use crate::site::CallSite;

/// Attributes plus events a span keeps; more are counted in [`SpanRecord::dropped`].
pub(crate) const SPAN_LIMIT: usize = 128;

const SHARDS: usize = 32;

struct Live {
    trace_id: TraceId,
    parent_id: Option<SpanId>,
    remote_parent: bool,
    site: Option<&'static CallSite>,
    start_tick: u64,
    last_checkpoint: u64,
    sampled: bool,
    /// Counted among its trace's open spans for failure tracking.
    tail: bool,
    status: Option<Status>,
    annotations: Vec<(Cow<'static, str>, AttributeValue)>,
    events: Vec<SpanEvent>,
    dropped: u32,
    /// What its children that ran inside it allocated, counted and bytes.
    children_allocated: (u64, u64),
}

static TABLE: LazyLock<Vec<Mutex<HashMap<u64, Live>>>> =
    LazyLock::new(|| (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect());
static RECORDED: AtomicU64 = AtomicU64::new(0);

fn shard(span: SpanId) -> MutexGuard<'static, HashMap<u64, Live>> {
    // Span ids are random: their low bits spread evenly.
    let m = &TABLE[(span.to_u64() as usize) % SHARDS];
    // A panic while holding a shard lock leaves plain data behind; keep using it.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens the record of a new recorded span (`ctx.flags` has [`flags::RECORDED`]).
pub(crate) fn open(ctx: &SpanCtx, parent_flags: Option<u8>) {
    // The record's allocations are the monitor's, not the calls'.
    crate::alloc::uncounted(|| open_record(ctx, parent_flags));
}

fn open_record(ctx: &SpanCtx, parent_flags: Option<u8>) {
    RECORDED.fetch_add(1, Relaxed);
    let tail = tail::open(ctx.trace_id);
    let tick = clock::now();
    let live = Live {
        trace_id: ctx.trace_id,
        parent_id: ctx.parent_id(),
        remote_parent: parent_flags.is_some_and(|p| p & flags::REMOTE != 0),
        site: ctx.local_site(),
        start_tick: tick,
        last_checkpoint: tick,
        sampled: ctx.flags & flags::SAMPLED != 0,
        tail,
        status: None,
        annotations: Vec::new(),
        events: Vec::new(),
        dropped: 0,
        children_allocated: (0, 0),
    };
    shard(ctx.span_id).insert(ctx.span_id.to_u64(), live);
    watch::opened(ctx);
}

/// What a call allocated, with the counting allocator installed: everything allocated on its
/// threads while it ran, and whether it ran only inside its parent's running (a sync call, or
/// a future its parent awaited), so that the parent's count includes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allocated {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
    pub(crate) nested: bool,
}

/// Closes a recorded span and hands its record on.
#[cold]
#[inline(never)]
pub(crate) fn close(
    span_id: SpanId,
    start_tick: u64,
    duration_ns: u64,
    outcome: SpanOutcome,
    allocated: Option<Allocated>,
) {
    // The record's allocations are the monitor's, not those of the calls still running.
    crate::alloc::uncounted(|| close_record(span_id, start_tick, duration_ns, outcome, allocated));
}

fn close_record(
    span_id: SpanId,
    start_tick: u64,
    duration_ns: u64,
    outcome: SpanOutcome,
    allocated: Option<Allocated>,
) {
    let Some(live) = shard(span_id).remove(&span_id.to_u64()) else { return };
    let allocations = allocated.map(|a| {
        let (kids, kid_bytes) = live.children_allocated;
        if let (true, Some(parent)) = (a.nested, live.parent_id) {
            with_live(parent, |p| {
                p.children_allocated.0 += a.count;
                p.children_allocated.1 += a.bytes;
            });
        }
        SpanAllocations {
            count: a.count,
            bytes: a.bytes,
            self_count: a.count.saturating_sub(kids),
            self_bytes: a.bytes.saturating_sub(kid_bytes),
        }
    });
    // The call's own start (a little after the record opened), on the shared wall-clock anchor.
    let start_unix_ns = clock::unix_ns_at(start_tick);
    let status = live.status.unwrap_or(match outcome {
        SpanOutcome::Success | SpanOutcome::Cancelled => Status::Unset,
        SpanOutcome::Error(kind) => Status::Error(Cow::Borrowed(kind)),
        SpanOutcome::Panic => Status::Error(Cow::Borrowed("panic")),
    });
    let record = Arc::new(SpanRecord {
        trace_id: live.trace_id,
        span_id,
        parent_id: live.parent_id,
        remote_parent: live.remote_parent,
        name: site_name(live.site),
        category: live.site.and_then(CallSite::category),
        start_unix_ns,
        duration_ns,
        outcome,
        status,
        annotations: live.annotations,
        events: live.events,
        dropped: live.dropped,
        sampled: live.sampled,
        allocations,
    });
    if live.sampled {
        observer::deliver(&record);
    }
    watch::closed(&record);
    if live.tail {
        tail::close(record);
    }
}

/// Changes a live record (an annotation, an event): the monitor's allocations, not the call's.
fn with_live(span: SpanId, f: impl FnOnce(&mut Live)) {
    crate::alloc::uncounted(|| {
        if let Some(live) = shard(span).get_mut(&span.to_u64()) {
            f(live);
        }
    });
}

fn room(live: &mut Live) -> bool {
    if live.annotations.len() + live.events.len() < SPAN_LIMIT {
        true
    } else {
        live.dropped = live.dropped.saturating_add(1);
        false
    }
}

#[cold]
#[inline(never)]
pub(crate) fn annotate_span(span: SpanId, key: Cow<'static, str>, value: AttributeValue) {
    with_live(span, |live| {
        if let Some(slot) = live.annotations.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else if room(live) {
            live.annotations.push((key, value));
        }
    });
}

#[cold]
#[inline(never)]
pub(crate) fn event_span(span: SpanId, name: Cow<'static, str>, checkpoint: bool) {
    let tick = clock::now();
    let unix_ns = clock::unix_ns_at(tick);
    with_live(span, |live| {
        if !room(live) {
            return;
        }
        let since_checkpoint_ns = checkpoint.then(|| {
            let ns = clock::nanos_between(live.last_checkpoint, tick);
            live.last_checkpoint = tick;
            ns
        });
        live.events.push(SpanEvent { name, unix_ns, since_checkpoint_ns });
    });
}

#[cold]
#[inline(never)]
pub(crate) fn set_status_span(span: SpanId, status: Status) {
    with_live(span, |live| live.status = Some(status));
}

/// A recorded span that is still running.
///
/// ```
/// for s in monitor_core::trace::in_flight() {
///     println!("{} {} {} ms", s.trace_id, s.name, s.elapsed_ns / 1_000_000);
/// }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InFlightSpan {
    /// The trace.
    pub trace_id: TraceId,
    /// The span.
    pub span_id: SpanId,
    /// Its parent.
    pub parent_id: Option<SpanId>,
    /// The function's name.
    pub name: &'static str,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Time running so far.
    pub elapsed_ns: u64,
    /// Attributes so far.
    pub annotations: Vec<(Cow<'static, str>, AttributeValue)>,
}

/// The recorded spans running now, oldest first. Only recorded traces are listed: turn on
/// [`record_all`](super::record_all) (or [`keep_failed_traces`](super::keep_failed_traces)) to
/// see every call in flight.
///
/// ```
/// assert!(monitor_core::trace::in_flight().iter().all(|s| s.elapsed_ns < u64::MAX));
/// ```
pub fn in_flight() -> Vec<InFlightSpan> {
    let now = clock::now();
    let mut out = Vec::new();
    for m in TABLE.iter() {
        let table = m.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        out.extend(table.iter().map(|(&id, live)| InFlightSpan {
            trace_id: live.trace_id,
            span_id: SpanId::from_u64(id),
            parent_id: live.parent_id,
            name: site_name(live.site),
            start_unix_ns: clock::unix_ns_at(live.start_tick),
            elapsed_ns: clock::nanos_between(live.start_tick, now),
            annotations: live.annotations.clone(),
        }));
    }
    out.sort_by_key(|s| (s.start_unix_ns, s.span_id));
    out
}

pub(crate) fn recorded() -> u64 {
    RECORDED.load(Relaxed)
}

pub(crate) fn count() -> usize {
    TABLE.iter().map(|m| m.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()).sum()
}
