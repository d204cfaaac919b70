//! Traces: recording whole trees of spans on demand, keeping the failed ones, and handing
//! finished spans to observers (exporters).
//!
//! Every monitored call is a span with ids (see [`Span`]), but a span's details —
//! start time, annotations, events, status — are kept only for **recorded** traces, so that the
//! ordinary call pays one relaxed load for all of this. A trace is recorded from a call on when:
//!
//! - a [`Watch`] waits for it (the next call of a matching function, or of a given trace id);
//! - it is head-sampled ([`set_sample_ratio`]), or its remote parent was sampled upstream;
//! - [`keep_failed_traces`] or [`record_all`] is on: then every trace is recorded, and the
//!   ones in which a call failed (an error, a panic or a cancellation) are kept
//!   ([`failed_traces`]).
//!
//! Recorded spans in flight are listed by [`in_flight`]; finished spans of sampled (and of kept
//! failed) traces go to the [`SpanObserver`]s through bounded queues that never block a call.
//!
//! # Example
//!
//! ```
//! use monitor_core::{monitored, trace};
//!
//! #[monitored(name = "trace_doc::query")]
//! fn query(id: u32) -> Result<u32, std::fmt::Error> {
//!     trace::annotate("id", i64::from(id));
//!     trace::checkpoint("parsed");
//!     if id == 0 { Err(std::fmt::Error) } else { Ok(id) }
//! }
//!
//! #[monitored(name = "trace_doc::handle")]
//! fn handle(id: u32) -> u32 { query(id).unwrap_or(0) }
//!
//! let watch = trace::Watch::start(trace::WatchFilter::function(|s| s.name() == "trace_doc::handle")).unwrap();
//! handle(7);
//! let trace = watch.wait(std::time::Duration::from_secs(5)).unwrap();
//! assert_eq!(trace.spans.len(), 2);
//! let q = trace.spans.iter().find(|s| s.name == "trace_doc::query").unwrap();
//! assert_eq!(q.parent_id, Some(trace.root));
//! assert_eq!(q.annotations[0].1, trace::AttributeValue::I64(7));
//! assert_eq!(q.events[0].name, "parsed");
//! ```

#[cfg(feature = "log")]
pub mod log;

use std::borrow::Cow;

use crate::ids::{SpanId, TraceId};
use crate::span::Span;

pub use crate::record::{
    add_batching_observer, add_observer, exemplar_trace, exemplar_traces_held, failed_traces,
    in_flight, keep_exemplars, keep_failed_traces, keep_slow_traces, observers, record_all,
    sample_ratio, set_sample_ratio, slow_traces, stats, watches, AttributeValue, Exemplar,
    InFlightSpan, ObserverHandle, ObserverStats, SpanAllocations, SpanEvent, SpanObserver,
    SpanOutcome, SpanRecord, Status, Trace, TraceContextError, TraceError, TraceParent, TraceState,
    TraceStats, Watch, WatchError, WatchFilter, WatchInfo, WatchWait, MAX_KEPT, MAX_PINNED_SPANS,
    MAX_PINNED_TRACES, MAX_SLOW_FUNCTIONS, MAX_SLOW_PER_FUNCTION, MAX_WATCHES, MAX_WATCH_SPANS,
    SLOW_SPAN_BUDGET,
};

/// The trace id of the monitored call running on this thread (or in this task), for logs.
///
/// ```
/// assert_eq!(monitor_core::trace::current_trace_id(), None);
/// ```
pub fn current_trace_id() -> Option<TraceId> {
    Span::current().trace_id()
}

/// The span id of the monitored call running on this thread (or in this task), for logs.
///
/// ```
/// assert_eq!(monitor_core::trace::current_span_id(), None);
/// ```
pub fn current_span_id() -> Option<SpanId> {
    Span::current().span_id()
}

/// Adds a key/value attribute to the current span (kept if its trace is recorded).
///
/// ```
/// monitor_core::trace::annotate("user", "alice");
/// ```
pub fn annotate(key: impl Into<Cow<'static, str>>, value: impl Into<AttributeValue>) {
    Span::current().annotate(key, value);
}

/// Adds a timestamped event to the current span (kept if its trace is recorded).
///
/// ```
/// monitor_core::trace::event("cache miss");
/// ```
pub fn event(name: impl Into<Cow<'static, str>>) {
    Span::current().event(name);
}

/// Adds a checkpoint event to the current span: an event that also carries the time since the
/// previous checkpoint (or the span's start).
///
/// ```
/// monitor_core::trace::checkpoint("serialize");
/// ```
pub fn checkpoint(name: impl Into<Cow<'static, str>>) {
    Span::current().checkpoint(name);
}

/// Sets the status of the current span (see [`Status`]).
///
/// ```
/// monitor_core::trace::set_status(monitor_core::trace::Status::Ok);
/// ```
pub fn set_status(status: Status) {
    Span::current().set_status(status);
}
