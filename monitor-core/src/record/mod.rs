//! The recording of traces, under the hot path: live records of recorded spans, watches that
//! wait for a call, the kept failed traces, the observers that get finished spans, W3C trace
//! context, and the decision of what to record. The public face of all of this is
//! [`crate::trace`].

pub(crate) mod exemplars;
mod live;
pub(crate) mod observer;
mod slow;
mod tail;
mod w3c;
mod watch;

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use crate::context::SpanCtx;
use crate::ids::{SpanId, TraceId};
use crate::site::CallSite;

pub use exemplars::{
    exemplar_trace, exemplar_traces_held, keep_exemplars, Exemplar, MAX_PINNED_SPANS,
    MAX_PINNED_TRACES,
};
pub use live::{in_flight, InFlightSpan};
pub use observer::{
    add_batching_observer, add_observer, observers, ObserverHandle, ObserverStats, SpanObserver,
};
pub use slow::{
    keep_slow_traces, slow_traces, MAX_SLOW_FUNCTIONS, MAX_SLOW_PER_FUNCTION, SLOW_SPAN_BUDGET,
};
pub use tail::{failed_traces, keep_failed_traces, record_all, MAX_KEPT};
pub use w3c::{TraceContextError, TraceParent, TraceState};
pub use watch::{
    watches, Watch, WatchError, WatchFilter, WatchInfo, WatchWait, MAX_WATCHES, MAX_WATCH_SPANS,
};

pub(crate) use live::{annotate_span, close, event_span, set_status_span, Allocated};
pub(crate) use watch::site_added;

/// Span flags carried in a [`SpanCtx`].
pub(crate) use crate::ids::flags;

/// Which features want spans recorded; zero while none does, which is all the hot path checks.
static MODE: AtomicU8 = AtomicU8::new(0);

/// Bits of [`MODE`].
pub(crate) mod mode {
    /// Every trace is recorded ([`super::keep_failed_traces`], [`super::record_all`]).
    pub(crate) const ALL: u8 = 1;
    /// Head sampling is on, or observers listen (remote sampled parents are followed).
    pub(crate) const SAMPLE: u8 = 2;
    /// A watch waits for a call of some functions.
    pub(crate) const WATCH_SITE: u8 = 4;
    /// A watch waits for a call in a given trace.
    pub(crate) const WATCH_TRACE: u8 = 8;
    /// A watch collects a trace: calls of it continued from a `traceparent` (another service,
    /// maybe in this process) are recorded too.
    pub(crate) const WATCH_BOUND: u8 = 16;
}

pub(crate) fn set_mode(bit: u8, on: bool) {
    if on {
        MODE.fetch_or(bit, Relaxed);
    } else {
        MODE.fetch_and(!bit, Relaxed);
    }
}

/// The flags a new span takes from its parent: recorded and sampled. (A remote parent is never
/// recorded; its sampled flag is carried on, so it reaches outgoing `traceparent` headers even
/// when nothing here records.)
#[inline(always)]
pub(crate) fn inherited(parent: Option<&SpanCtx>) -> u8 {
    parent.map_or(0, |p| p.flags & flags::INHERITED)
}

/// Which features want recording: zero while none does. With [`inherited`], this one relaxed
/// load is all the hot path pays for tracing.
#[inline(always)]
pub(crate) fn mode() -> u8 {
    MODE.load(Relaxed)
}

/// A new span whose parent is recorded, or started while some feature wants recording: its
/// flags, and its live record opened if it is recorded.
#[cold]
#[inline(never)]
pub(crate) fn begin_recording(ctx: SpanCtx, parent_flags: Option<u8>, site_id: u32) -> u8 {
    let mut f = ctx.flags;
    if f & flags::RECORDED == 0 {
        let mode = mode();
        if mode != 0 {
            f |= decide(mode, parent_flags, site_id, ctx.trace_id);
        }
    }
    if f & flags::RECORDED != 0 {
        live::open(&SpanCtx { flags: f, ..ctx }, parent_flags);
    }
    f
}

/// Head sampling threshold over the trace id's high 64 bits (`u64::MAX` samples everything).
static SAMPLE_BELOW: AtomicU64 = AtomicU64::new(0);

fn decide(mode: u8, parent_flags: Option<u8>, site_id: u32, trace_id: TraceId) -> u8 {
    let mut f = 0;
    if mode & mode::SAMPLE != 0 {
        let sampled = match parent_flags {
            Some(p) => p & flags::SAMPLED != 0,
            None => {
                let below = SAMPLE_BELOW.load(Relaxed);
                below == u64::MAX || ((trace_id.to_u128() >> 64) as u64) < below
            }
        };
        if sampled {
            f |= flags::RECORDED | flags::SAMPLED;
        }
    }
    if mode & mode::ALL != 0
        || (mode & mode::WATCH_SITE != 0 && watch::site_watched(site_id))
        || (mode & mode::WATCH_TRACE != 0 && watch::trace_watched(trace_id))
        || (mode & mode::WATCH_BOUND != 0
            && parent_flags.is_some_and(|p| p & flags::REMOTE != 0)
            && watch::trace_bound(trace_id))
    {
        f |= flags::RECORDED;
    }
    f
}

/// Errors of the trace settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// A sample ratio outside 0..=1 (or NaN).
    #[error("sample ratio {0} is not within 0.0..=1.0; pass e.g. 0.01 to sample 1% of traces")]
    BadRatio(f64),
}

/// Samples this fraction of new traces (0 to 1; 0, the default, samples none): their spans go
/// to the [`SpanObserver`]s as they end, and outgoing `traceparent` headers carry the sampled
/// flag. The decision is made once per trace, from its id, so every process that sees the same
/// id and ratio decides alike. Remote parents sampled upstream are followed while sampling is on
/// or observers listen.
///
/// ```
/// assert!(monitor_core::trace::set_sample_ratio(2.0).is_err());
/// monitor_core::trace::set_sample_ratio(0.0).unwrap();
/// ```
pub fn set_sample_ratio(ratio: f64) -> Result<(), TraceError> {
    if !(0.0..=1.0).contains(&ratio) {
        return Err(TraceError::BadRatio(ratio));
    }
    let below = if ratio >= 1.0 { u64::MAX } else { (ratio * 2f64.powi(64)) as u64 };
    SAMPLE_BELOW.store(below, Relaxed);
    observer::refresh_mode();
    register_stats();
    Ok(())
}

/// The current head sample ratio.
///
/// ```
/// assert_eq!(monitor_core::trace::sample_ratio(), 0.0);
/// ```
pub fn sample_ratio() -> f64 {
    match SAMPLE_BELOW.load(Relaxed) {
        u64::MAX => 1.0,
        b => b as f64 / 2f64.powi(64),
    }
}

pub(crate) fn sampling_on() -> bool {
    SAMPLE_BELOW.load(Relaxed) != 0
}

/// An attribute value: a string, an integer, a float or a boolean (OpenTelemetry's scalars).
///
/// ```
/// use monitor_core::trace::AttributeValue;
/// assert_eq!(AttributeValue::from(3_i64), AttributeValue::I64(3));
/// assert_eq!(AttributeValue::from("x").to_string(), "x");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    /// A string.
    Str(Cow<'static, str>),
    /// A signed integer.
    I64(i64),
    /// A float.
    F64(f64),
    /// A boolean.
    Bool(bool),
}

impl fmt::Display for AttributeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttributeValue::Str(s) => f.write_str(s),
            AttributeValue::I64(v) => write!(f, "{v}"),
            AttributeValue::F64(v) => write!(f, "{v}"),
            AttributeValue::Bool(v) => write!(f, "{v}"),
        }
    }
}

impl From<&'static str> for AttributeValue {
    fn from(v: &'static str) -> Self {
        AttributeValue::Str(Cow::Borrowed(v))
    }
}
impl From<String> for AttributeValue {
    fn from(v: String) -> Self {
        AttributeValue::Str(Cow::Owned(v))
    }
}
impl From<Cow<'static, str>> for AttributeValue {
    fn from(v: Cow<'static, str>) -> Self {
        AttributeValue::Str(v)
    }
}
impl From<bool> for AttributeValue {
    fn from(v: bool) -> Self {
        AttributeValue::Bool(v)
    }
}
impl From<f64> for AttributeValue {
    fn from(v: f64) -> Self {
        AttributeValue::F64(v)
    }
}
impl From<f32> for AttributeValue {
    fn from(v: f32) -> Self {
        AttributeValue::F64(f64::from(v))
    }
}
macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for AttributeValue {
            fn from(v: $t) -> Self {
                AttributeValue::I64(i64::from(v))
            }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32);
impl From<u64> for AttributeValue {
    /// Values above `i64::MAX` saturate.
    fn from(v: u64) -> Self {
        AttributeValue::I64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<usize> for AttributeValue {
    /// Values above `i64::MAX` saturate.
    fn from(v: usize) -> Self {
        AttributeValue::I64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// A timestamped event in a span.
///
/// ```
/// let e = monitor_core::trace::SpanEvent { name: "retry".into(), unix_ns: 0, since_checkpoint_ns: None };
/// assert_eq!(e.name, "retry");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// What happened.
    pub name: Cow<'static, str>,
    /// When, in nanoseconds since the Unix epoch.
    pub unix_ns: u64,
    /// For a checkpoint: nanoseconds since the previous checkpoint or the span's start.
    pub since_checkpoint_ns: Option<u64>,
}

/// A span's status, as OpenTelemetry defines it. Unless set, it is `Unset` for a successful
/// call and `Error` with the error kind for a failed one.
///
/// ```
/// use monitor_core::trace::Status;
/// assert_eq!(Status::error("timed out"), Status::Error("timed out".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Status {
    /// No status given.
    #[default]
    Unset,
    /// The operation succeeded (set by the user).
    Ok,
    /// The operation failed, with a description.
    Error(Cow<'static, str>),
}

impl Status {
    /// An error status with a description.
    ///
    /// ```
    /// let s = monitor_core::trace::Status::error("bad input");
    /// # drop(s);
    /// ```
    pub fn error(description: impl Into<Cow<'static, str>>) -> Status {
        Status::Error(description.into())
    }
}

/// How a span's call ended: the one [`Outcome`](crate::Outcome) type, under the name the trace
/// views and observers have used.
///
/// ```
/// use monitor_core::trace::SpanOutcome;
/// assert!(SpanOutcome::Panic.is_failure());
/// assert_eq!(SpanOutcome::Error("NotFound").to_string(), "error");
/// ```
pub type SpanOutcome = crate::outcome::Outcome;

/// A finished span of a recorded trace.
///
/// ```
/// # let trace_doc = ();
/// fn slow(s: &monitor_core::trace::SpanRecord) -> bool { s.duration_ns > 1_000_000 }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SpanRecord {
    /// The trace.
    pub trace_id: TraceId,
    /// This span.
    pub span_id: SpanId,
    /// Its parent, if any (local or remote).
    pub parent_id: Option<SpanId>,
    /// Whether the parent is in another process (from a `traceparent` header).
    pub remote_parent: bool,
    /// The function's name.
    pub name: &'static str,
    /// The function's category (`#[monitored(category = "…")]`).
    pub category: Option<&'static str>,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_ns: u64,
    /// Duration in nanoseconds.
    pub duration_ns: u64,
    /// How the call ended.
    pub outcome: SpanOutcome,
    /// The status: set by the user, else derived from the outcome.
    pub status: Status,
    /// Attributes added with [`annotate`](crate::trace::annotate).
    pub annotations: Vec<(Cow<'static, str>, AttributeValue)>,
    /// Events, in order.
    pub events: Vec<SpanEvent>,
    /// Attributes and events refused beyond the per-span limit.
    pub dropped: u32,
    /// Whether the trace was head-sampled.
    pub sampled: bool,
    /// What the call allocated, with the counting allocator
    /// ([`alloc::CountingAllocator`](crate::alloc::CountingAllocator)) installed; `None` without.
    pub allocations: Option<SpanAllocations>,
}

/// What one recorded call allocated while it ran: in all (its children that ran inside it
/// included) and on its own.
///
/// Counted from the calling threads' counters while the call runs (every poll of an async
/// call), so a child that runs elsewhere — a task spawned with the span — counts in its own
/// span and not in its parent's.
///
/// ```
/// let a = monitor_core::trace::SpanAllocations { count: 3, bytes: 96, self_count: 1, self_bytes: 32 };
/// assert_eq!(a.count - a.self_count, 2, "made by its children");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpanAllocations {
    /// Allocations, its children's included.
    pub count: u64,
    /// Bytes allocated, its children's included.
    pub bytes: u64,
    /// Allocations it made itself.
    pub self_count: u64,
    /// Bytes it allocated itself.
    pub self_bytes: u64,
}

impl SpanRecord {
    /// End, in nanoseconds since the Unix epoch.
    ///
    /// ```
    /// fn end(s: &monitor_core::trace::SpanRecord) -> u64 { s.end_unix_ns() }
    /// ```
    pub fn end_unix_ns(&self) -> u64 {
        self.start_unix_ns.saturating_add(self.duration_ns)
    }
}

/// A captured trace: the spans under `root`, in the order they ended.
///
/// ```
/// fn failed(t: &monitor_core::trace::Trace) -> usize { t.spans.iter().filter(|s| s.outcome.is_failure()).count() }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Trace {
    /// The trace id.
    pub trace_id: TraceId,
    /// The span the capture started at.
    pub root: SpanId,
    /// The spans (the root included).
    pub spans: Vec<Arc<SpanRecord>>,
    /// Spans left out beyond the per-trace limit.
    pub dropped_spans: u64,
}

impl Trace {
    /// The root span's record.
    ///
    /// ```
    /// fn root_name(t: &monitor_core::trace::Trace) -> Option<&'static str> { t.root_span().map(|s| s.name) }
    /// ```
    pub fn root_span(&self) -> Option<&SpanRecord> {
        self.spans.iter().find(|s| s.span_id == self.root).map(|s| &**s)
    }

    /// Keeps only the spans under the root (the root included).
    pub(crate) fn prune(&mut self) {
        let mut keep = std::collections::HashSet::new();
        keep.insert(self.root);
        // Spans end before their parents (usually), so walk to a fixed point.
        loop {
            let before = keep.len();
            for s in &self.spans {
                if s.parent_id.is_some_and(|p| keep.contains(&p)) {
                    keep.insert(s.span_id);
                }
            }
            if keep.len() == before {
                break;
            }
        }
        self.spans.retain(|s| keep.contains(&s.span_id));
    }
}

/// Counts of the trace machinery, for the stats views.
///
/// ```
/// let s = monitor_core::trace::stats();
/// assert!(s.recorded_spans >= s.in_flight as u64);
/// ```
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct TraceStats {
    /// Spans recorded since start.
    pub recorded_spans: u64,
    /// Recorded spans running now.
    pub in_flight: usize,
    /// Watches waiting or collecting now.
    pub watches: usize,
    /// Failed traces kept now.
    pub failed_kept: usize,
    /// Traces not tracked for failure because too many were pending.
    pub tail_dropped: u64,
    /// Traces exemplars hold on to now, and their spans ([`exemplar_traces_held`]).
    pub exemplar_traces: (usize, usize),
    /// Slow traces kept now ([`keep_slow_traces`]).
    pub slow_kept: usize,
    /// Slow traces not kept for lack of room (too many entry functions, or the span budget).
    pub slow_refused: u64,
    /// Per observer: delivered and dropped spans.
    pub observers: Vec<ObserverStats>,
}

/// Counts of the trace machinery now.
///
/// ```
/// let stats = monitor_core::trace::stats();
/// println!("{} spans recorded", stats.recorded_spans);
/// ```
pub fn stats() -> TraceStats {
    TraceStats {
        recorded_spans: live::recorded(),
        in_flight: live::count(),
        watches: watch::count(),
        failed_kept: tail::kept(),
        tail_dropped: tail::dropped(),
        exemplar_traces: exemplar_traces_held(),
        slow_kept: slow::kept(),
        slow_refused: slow::refused(),
        observers: observers(),
    }
}

/// Registers the trace machinery's counts as gauges of the `trace` scope (once, when a trace
/// feature is first used), so every view shows them: spans recorded, in flight, watches,
/// failed traces kept and traces not tracked for lack of room.
pub(crate) fn register_stats() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let scope = crate::metrics::Scope::new("trace");
        type Read = fn() -> f64;
        let gauges: [(&str, &str, Read); 7] = [
            ("recorded_spans", "Spans recorded since start.", || live::recorded() as f64),
            ("in_flight", "Recorded spans running now.", || live::count() as f64),
            ("watches", "Trace captures waiting or collecting now.", || watch::count() as f64),
            ("failed_kept", "Failed traces kept now.", || tail::kept() as f64),
            (
                "tail_dropped",
                "Traces not tracked for failure because too many were pending.",
                || tail::dropped() as f64,
            ),
            ("slow_kept", "Slow traces kept now.", || slow::kept() as f64),
            (
                "slow_refused",
                "Slow traces not kept for lack of room (entry functions or spans).",
                || slow::refused() as f64,
            ),
        ];
        for (name, help, read) in gauges {
            let _ = scope.gauge_described(name, Some(help), read);
        }
    });
}

/// A site's name for records (`remote` for remote contexts).
pub(crate) fn site_name(site: Option<&'static CallSite>) -> &'static str {
    site.map_or("remote", CallSite::name)
}
