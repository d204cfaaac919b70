//! `#[monitored]` calls as `tracing` spans (feature `tracing`): every monitored call is also a
//! span that `tracing` subscribers see — named as the function is in the monitor, at INFO,
//! with the function's module as target and its file and line — entered while the call runs
//! (at every poll of an async call), so the events and `tracing` spans inside it are its
//! children and `fmt` logs carry it. The span's fields `monitor.trace_id` and
//! `monitor.span_id` are the call's ids in the monitor, so a log line leads to the trace.
//!
//! ```
//! #[monitor_core::monitored(name = "shop::lookup")]
//! fn lookup(key: u32) -> u32 {
//!     // Logged inside the call's span: `shop::lookup{monitor.trace_id=… monitor.span_id=…}`.
//!     tracing::info!(key, "looking up");
//!     let current = tracing::Span::current();
//!     assert_eq!(current.metadata().map(|m| m.name()), Some("shop::lookup"));
//!     key * 2
//! }
//!
//! // Any subscriber: here `fmt`, writing nowhere.
//! let subscriber = tracing_subscriber::fmt().with_writer(std::io::sink).finish();
//! tracing::subscriber::with_default(subscriber, || lookup(7));
//! ```
//!
//! Spans of a function are made only while a subscriber wants them: with none, or with a
//! filter that leaves them out, a call pays a relaxed load of its callsite's interest.
//! `monitor_tracing::MonitorLayer` knows these spans by their fields and does not count them a
//! second time.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::OnceLock;

use tracing_core::callsite::{Callsite, Identifier};
use tracing_core::field::{display, FieldSet, Value};
use tracing_core::metadata::{Kind, Level, LevelFilter, Metadata};
use tracing_core::subscriber::Interest;

use crate::ids::{SpanId, TraceId};

/// The fields of a monitored call's span; `monitor_tracing` knows the spans by the first.
pub const TRACE_ID_FIELD: &str = "monitor.trace_id";
/// The field of a monitored call's span that holds its span id.
pub const SPAN_ID_FIELD: &str = "monitor.span_id";
const FIELDS: &[&str] = &[TRACE_ID_FIELD, SPAN_ID_FIELD];

/// A `tracing` callsite made at run time for one monitored function, on its first call.
pub(crate) struct SiteCallsite {
    meta: OnceLock<Metadata<'static>>,
    /// The interest of the subscribers: [`NEVER`], [`SOMETIMES`] or [`ALWAYS`].
    interest: AtomicU8,
}

const NEVER: u8 = 0;
const SOMETIMES: u8 = 1;
const ALWAYS: u8 = 2;

impl Callsite for SiteCallsite {
    fn set_interest(&self, interest: Interest) {
        let i = if interest.is_never() {
            NEVER
        } else if interest.is_always() {
            ALWAYS
        } else {
            SOMETIMES
        };
        self.interest.store(i, Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.meta.get().unwrap_or(&PLACEHOLDER)
    }
}

/// What a callsite shows in the instant between its making and its metadata's (never seen by a
/// subscriber: the metadata is set before the callsite is registered).
struct Placeholder;

impl Callsite for Placeholder {
    fn set_interest(&self, _: Interest) {}

    fn metadata(&self) -> &Metadata<'_> {
        &PLACEHOLDER
    }
}

static PLACEHOLDER: Metadata<'static> = Metadata::new(
    "monitored",
    "monitor",
    Level::INFO,
    None,
    None,
    None,
    FieldSet::new(FIELDS, Identifier(&Placeholder)),
    Kind::SPAN,
);

/// Per site, its callsite: made once, kept for the life of the process (sites are bounded).
#[derive(Default)]
pub(crate) struct Slot(OnceLock<&'static SiteCallsite>);

// A callsite's metadata holds a `&dyn Callsite`, which the compiler cannot see is unwind safe;
// it is: the metadata never changes once set, and the interest is one atomic. Without these,
// the feature would take `RefUnwindSafe` from every `CallSite`, and break user code that
// captures one in `catch_unwind`.
impl std::panic::RefUnwindSafe for Slot {}
impl std::panic::UnwindSafe for Slot {}

/// Where a function is, for its callsite: name, module, file, line.
pub(crate) type Place = (&'static str, &'static str, &'static str, u32);

fn callsite(slot: &Slot, place: impl FnOnce() -> Place) -> &'static SiteCallsite {
    slot.0.get_or_init(|| {
        let (name, module, file, line) = place();
        let cs: &'static SiteCallsite = Box::leak(Box::new(SiteCallsite {
            meta: OnceLock::new(),
            interest: AtomicU8::new(SOMETIMES),
        }));
        let _ = cs.meta.set(Metadata::new(
            name,
            module,
            Level::INFO,
            Some(file),
            Some(line),
            Some(module),
            FieldSet::new(FIELDS, Identifier(cs)),
            Kind::SPAN,
        ));
        tracing_core::callsite::register(cs);
        cs
    })
}

/// The span of a call with these ids starting at `place`, if a subscriber wants it; not
/// entered.
#[inline]
pub(crate) fn open(
    slot: &Slot,
    place: impl FnOnce() -> Place,
    ids: (TraceId, SpanId),
) -> Option<tracing::Span> {
    if LevelFilter::current() < Level::INFO {
        return None;
    }
    let cs = callsite(slot, place);
    let interest = cs.interest.load(Relaxed);
    if interest == NEVER {
        return None;
    }
    let meta = cs.metadata();
    if interest == SOMETIMES && !tracing_core::dispatcher::get_default(|d| d.enabled(meta)) {
        return None;
    }
    make(meta, ids)
}

#[inline(never)]
fn make(meta: &'static Metadata<'static>, ids: (TraceId, SpanId)) -> Option<tracing::Span> {
    let (trace_id, span_id) = (display(ids.0), display(ids.1));
    let values: [Option<&dyn Value>; 2] = [Some(&trace_id), Some(&span_id)];
    let span = tracing::Span::new(meta, &meta.fields().value_set_all(&values));
    (!span.is_disabled()).then_some(span)
}

/// Enters `span` on this thread (what `tracing::Span::enter` does, without a guard that
/// borrows it).
#[inline]
pub(crate) fn enter(span: &tracing::Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
}

/// Exits `span` on this thread.
#[inline]
pub(crate) fn exit(span: &tracing::Span) {
    span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
}
