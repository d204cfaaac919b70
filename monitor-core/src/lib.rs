//! The runtime of `monitor`: annotate a function with `#[monitored]` and the process knows, for
//! every annotated function, its calls in flight and the most ever in flight, successes, errors
//! by kind, panics, cancellations, success and failure latency distributions with quantiles, who
//! called it (the call graph), and a span with W3C-sized trace ids for every call.
//!
//! # Example
//!
//! ```
//! use monitor_core::monitored;
//!
//! #[monitored(name = "example::load")]
//! fn load(path: &str) -> std::io::Result<String> {
//!     std::fs::read_to_string(path)
//! }
//!
//! #[monitored(name = "example::handle")]
//! fn handle() -> usize {
//!     load("/no/such/file").map_or(0, |s| s.len())
//! }
//!
//! handle();
//! let snap = monitor_core::registry().snapshot();
//! let load = snap.function("example::load").unwrap();
//! assert_eq!(load.error("NotFound"), 1);
//! assert_eq!(load.calls_from("example::handle"), 1);
//! assert!(snap.function("example::handle").unwrap().is_entry());
//! ```
//!
//! # Concepts
//!
//! - A **call site** ([`CallSite`]) is the static record `#[monitored]` emits for a function.
//!   The linker gathers all of them, so [`registry()`] lists every monitored function before any
//!   has run.
//! - Every call ends in exactly one **outcome**: success, error (with a kind), panic, or
//!   cancelled (an async call whose future was dropped before finishing). The outcome comes from
//!   the returned value's type: any `Result` that is `Err` is an error, named by [`ErrorKind`]
//!   when the error implements it, else by the short name of its type.
//! - Every call is a **span** ([`Span`]) whose parent is the call running on the same thread or
//!   task; the parent-child pairs of functions make the **call graph**. [`Span::current`] with
//!   [`Span::wrap`] or [`FutureExt`] carries it into spawned threads and tasks.
//! - [`Registry::snapshot`] copies it all into plain data ([`Snapshot`]) for rendering.
//!
//! # Performance
//!
//! After a function's first call, a call allocates nothing and takes no lock: two clock reads,
//! a thread-local span swap, relaxed atomic increments on counters striped per thread, and one
//! lock-free histogram bucket increment. The first call of a function allocates its statistics
//! (about 20 KiB); the first time a function returns a new error kind, the kind claims a slot.
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

/// Declares `mod $module` with `fn linked() -> impl Iterator<Item = &'static $ty>`: every `$ty`
/// static the expansion of `#[monitored]` put in the link section `$section` (ELF targets,
/// where the linker defines `__start_`/`__stop_` symbols around it), elsewhere the references
/// to them in the `linkme` slice `__private::$slice`.
macro_rules! linked_items {
    // The items themselves, not references to them: one static per item instead of two is a
    // fifth of what `#[monitored]` costs `cargo check` per function.
    ($module:ident, $ty:path, $section:literal, $start:literal, $stop:literal, $slice:ident) => {
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "fuchsia",
            target_os = "freebsd",
            target_os = "openbsd",
        ))]
        // Reading a link section is unsafe by definition; see the SAFETY notes.
        #[allow(unsafe_code)]
        mod $module {
            use $ty as Item;

            /// An empty element, so that the section exists (and its bounds are defined) in a
            /// program with no item in it.
            #[used]
            #[unsafe(link_section = $section)]
            static PRESENT: [Item; 0] = [];

            // SAFETY: the linker defines both symbols, at the start and the end of the section,
            // for any section whose name is a C identifier (and `PRESENT` makes sure there is
            // one).
            unsafe extern "Rust" {
                #[link_name = $start]
                static START: [Item; 0];
                #[link_name = $stop]
                static STOP: [Item; 0];
            }

            pub(crate) fn linked() -> impl Iterator<Item = &'static Item> {
                let start = (&raw const START).cast::<Item>();
                let stop = (&raw const STOP).cast::<Item>();
                // SAFETY: every item in the section is an `Item` static (the only statics put
                // there are the expansion's, of that type, and `PRESENT`), each aligned to
                // `Item`'s alignment and of a size that is a multiple of it, so the linker lays
                // them out as an array from `start` to `stop`. They live as long as the program
                // and are only ever reached through shared references (their mutable state is
                // atomic or behind `OnceLock`s), as the functions they belong to reach them.
                let items: &'static [Item] = unsafe {
                    let len = usize::try_from(stop.offset_from(start)).unwrap_or(0);
                    std::slice::from_raw_parts(start, len)
                };
                items.iter()
            }
        }

        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "fuchsia",
            target_os = "freebsd",
            target_os = "openbsd",
        )))]
        mod $module {
            pub(crate) fn linked() -> impl Iterator<Item = &'static $ty> {
                crate::__private::$slice.iter().copied()
            }
        }
    };
}

pub mod alloc;
mod call;
mod clock;
mod collector;
mod context;
mod counters;
mod error;
mod gauges;
mod histogram;
mod history;
mod ids;
mod metrics;
mod objective;
mod outcome;
pub mod polls;
pub mod process;
mod record;
#[cfg(feature = "metrics")]
pub mod recorder;
mod registry;
mod site;
mod snapshot;
mod span;
mod state;
#[cfg(feature = "tokio")]
pub mod tokio_runtime;
pub mod trace;
#[cfg(feature = "tracing")]
pub mod tracing_spans;
mod users;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use call::{BodyStart, Instrumented, OpenCall};
pub use collector::set_collect_interval;
pub use error::ErrorKind;
pub use gauges::{gauge_time_limit, set_gauge_time_limit, stale_gauge_reads};
pub use history::{
    enable_history, function_history, history, FunctionPoint, HistoryPoint, HISTORY_POINTS,
    TREND_FUNCTIONS,
};
pub use ids::{SpanId, TraceId};
pub use metrics::{
    BoolVal, Counter, DurationVal, Event, FloatVal, IntVal, Meter, MetricError, MetricKind,
    Metrics, Scope, Timer, TimerGuard, MAX_SERIES_PER_INSTRUMENT, RATE_WINDOW,
};
pub use objective::{
    declare_objective, enable_objective_history, objective_latency_bounds, objective_status,
    objectives, AlertWindow, IndicatorStatus, NamedObjective, Objective, ObjectiveError,
    ObjectiveStatus, Severity, Sli, WindowCounts, MAX_OBJECTIVES, MAX_WINDOW, MIN_ALERT_WINDOW,
    MIN_WINDOW,
};
pub use outcome::Outcome;
pub use registry::{registry, Registry};
pub use site::{is_enabled, set_enabled, CallSite};
pub use site::{SiteBudget, SiteError, MAX_DYNAMIC_SITES};
pub use snapshot::{
    Bucket, Caller, CallerCount, CategoryInFlight, Distribution, FunctionStats, MetricStats,
    MetricValue, PollStats, Snapshot, Values, CATEGORIES, QUANTILES,
};
pub use span::{EnteredSpan, FutureExt, Span, WithSpan};
pub use users::{UniqueUsers, UsersError};

#[cfg(feature = "macros")]
pub use monitor_macros::{monitored, ErrorKind, Metrics};

/// The crate README's example, run as a doctest so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
