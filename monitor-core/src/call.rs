//! Recording one call: the shared part, the guard of sync functions and the async wrapper.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::clock;
use crate::context::SpanCtx;
use crate::counters::add;
use crate::ids::SpanId;
use crate::outcome::Outcome;
use crate::site::CallSite;
use crate::span::{self, replace_current, Restore, Span};
use crate::state::{SiteState, OWNED};

/// A call's `tracing` span (feature `tracing`): made when the call starts, entered while it
/// runs. Without the feature, nothing.
mod traced {
    use crate::context::SpanCtx;
    use crate::site::CallSite;
    use crate::state::SiteState;

    #[cfg(feature = "tracing")]
    pub(super) type Traced = Option<tracing::Span>;
    /// Nothing: without the feature a call has no `tracing` span.
    #[cfg(not(feature = "tracing"))]
    #[derive(Default)]
    pub(super) struct Traced;

    #[cfg(feature = "tracing")]
    #[inline]
    pub(super) fn open(state: &SiteState, site: &'static CallSite, ctx: &SpanCtx) -> Traced {
        let place = || (site.name(), site.module(), site.file(), site.line());
        crate::tracing_spans::open(&state.tracing, place, (ctx.trace_id, ctx.span_id))
    }

    #[cfg(feature = "tracing")]
    #[inline]
    pub(super) fn enter(t: &Traced) {
        if let Some(span) = t {
            crate::tracing_spans::enter(span);
        }
    }

    /// Exits the span; with `close`, also lets it go (the call is over).
    #[cfg(feature = "tracing")]
    #[inline]
    pub(super) fn exit(t: &mut Traced, close: bool) {
        if let Some(span) = t {
            crate::tracing_spans::exit(span);
        }
        if close {
            *t = None;
        }
    }

    #[cfg(not(feature = "tracing"))]
    #[inline(always)]
    pub(super) fn open(_: &SiteState, _: &'static CallSite, _: &SpanCtx) -> Traced {
        Traced
    }

    #[cfg(not(feature = "tracing"))]
    #[inline(always)]
    pub(super) fn enter(_: &Traced) {}

    #[cfg(not(feature = "tracing"))]
    #[inline(always)]
    pub(super) fn exit(_: &mut Traced, _: bool) {}
}

/// Error kind of a sync call that left through a `return` the macro could not see (one inside
/// another macro's expansion, such as `anyhow::bail!`): such exits are almost always errors.
pub(crate) const HIDDEN_RETURN: &str = "hidden_return";

/// A call in progress. Recording its end is idempotent. It has no `Drop`: the sync guard ends
/// it in its own `Drop`, and the async wrapper counts it cancelled in its `PinnedDrop`, so a
/// switched-off guard's drop is a single inlined check.
///
/// It lives in every monitored future, which executors and callers move by value: it is kept
/// to 48 bytes (what a stretch of running on one thread needs is kept by that stretch, see
/// [`Call::resume`]).
struct Call {
    state: &'static SiteState,
    start: u64,
    /// The span id if the span is recorded, else 0.
    rec: u64,
    /// What the call allocated while it ran before, counted and bytes (only with the counting
    /// allocator installed).
    allocated: (u64, u64),
    stripe: u32,
    done: bool,
    /// Every stretch it ran so far ran inside its parent's (a sync call, or a future polled
    /// while its parent polls): the parent's allocation count then includes its own.
    nested: bool,
}

/// This thread's allocation counters when a call started running on it (only with the
/// counting allocator installed).
type AllocBase = Option<(u64, u64)>;

impl Call {
    /// Starts a call of `site` on this thread: its span (made current with `install`) and its
    /// record, counted as started.
    #[inline(always)]
    fn start(site: &'static CallSite, install: bool) -> (span::Entry, Call) {
        let state = site.state();
        let entry = span::begin(site, state.id, install);
        state.begin(entry.stripe, entry.caller_key());
        // Read last, so the bookkeeping above is not part of the measured time.
        let call = Call {
            state,
            start: clock::now(),
            rec: entry.recorded(),
            allocated: (0, 0),
            // Stripes are at most `MAX_STRIPES`.
            stripe: entry.stripe as u32,
            done: false,
            nested: true,
        };
        (entry, call)
    }

    /// The call starts (or resumes) running on this thread: the base to give [`Call::pause`]
    /// when it stops.
    #[inline(always)]
    fn resume() -> AllocBase {
        crate::alloc::thread_counts()
    }

    /// The call stops running on this thread: what this thread allocated since `base` is its.
    #[inline(always)]
    fn pause(&mut self, base: AllocBase) {
        if let (Some((n0, b0)), Some((n1, b1))) = (base, crate::alloc::thread_counts()) {
            self.allocated.0 += n1.wrapping_sub(n0);
            self.allocated.1 += b1.wrapping_sub(b0);
        }
    }

    /// Records the end; `base` is the running stretch's, `None` if it is not running.
    #[inline(always)]
    fn finish(&mut self, end: Outcome, base: AllocBase) {
        if self.done {
            return;
        }
        self.done = true;
        self.pause(base);
        let at = clock::now();
        let ns = clock::nanos_between(self.start, at);
        let state = self.state;
        let here = span::stripe();
        // In flight on the stripe the call started on; the rest on this thread's, whose
        // counters it may own (a future may end on another thread than it started on).
        state.end(self.stripe as usize, here);
        if self.rec != 0 {
            self.close_span(ns, end);
        }
        let sole = here & OWNED != 0;
        let stripe = state.stripe(here);
        if self.allocated != (0, 0) {
            add(&stripe.allocations, self.allocated.0, sole);
            add(&stripe.allocated_bytes, self.allocated.1, sole);
        }
        if let Outcome::Success = end {
            add(&stripe.success, 1, sole);
            stripe.success_sum.add(ns, sole);
            stripe.success_recent.set(ns, at);
            state.success_times.record(
                ns,
                &state.chunks,
                &stripe.success_lane,
                Some(&stripe.success_last),
                &state.success_lanes(),
                sole,
            );
            return;
        }
        match end {
            Outcome::Error(kind) => state.kinds.record(kind),
            Outcome::Panic => add(&stripe.panics, 1, sole),
            _ => add(&stripe.cancelled, 1, sole),
        }
        stripe.failure_sum.add(ns, sole);
        stripe.failure_recent.set(ns, at);
        state.failure_times.record(
            ns,
            &state.chunks,
            &stripe.failure_lane,
            None,
            &state.failure_lanes(),
            sole,
        );
    }
}

impl Call {
    /// Hands a recorded call's end to its trace, with what it allocated (counting allocator
    /// installed).
    #[cold]
    #[inline(never)]
    fn close_span(&self, ns: u64, end: Outcome) {
        let allocated = crate::alloc::thread_counts().map(|_| crate::record::Allocated {
            count: self.allocated.0,
            bytes: self.allocated.1,
            nested: self.nested,
        });
        crate::record::close(SpanId::from_u64(self.rec), self.start, ns, end, allocated);
    }
}

impl CallSite {
    /// Runs `fut` as a call of this site, the way `#[monitored]` runs an async function: the
    /// call starts now (its parent is the span current now, e.g. a [`Span::from_remote`]
    /// entered with [`Span::in_scope`]), each poll runs under its span, `classify` tells the
    /// outcome from the output, and dropping the future before it finishes counts as cancelled.
    /// Meant for sites made at run time with [`Registry::site`](crate::Registry::site).
    ///
    /// [`Span::from_remote`]: crate::Span::from_remote
    /// [`Span::in_scope`]: crate::Span::in_scope
    ///
    /// ```
    /// use monitor_core::{registry, Outcome};
    ///
    /// let site = registry().site("instrument_doc::GET /health", Some("http_server")).unwrap();
    /// let status = block_on(site.instrument(async { 503u16 }, |s: &u16| {
    ///     if *s >= 500 { Outcome::Error("http_503") } else { Outcome::Success }
    /// }));
    /// assert_eq!(status, 503);
    /// let snap = registry().snapshot();
    /// let f = snap.function("instrument_doc::GET /health").unwrap();
    /// assert_eq!(f.errors, vec![("http_503", 1)]);
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    /// # }
    /// ```
    pub fn instrument<F, C>(&'static self, fut: F, classify: C) -> Instrumented<F, C>
    where
        F: Future,
        C: Fn(&F::Output) -> Outcome,
    {
        Instrumented::new(self, fut, classify)
    }

    /// Like [`CallSite::instrument`], for a body that needs the call's span before it exists,
    /// e.g. to send its `traceparent` with an outgoing request: the call starts, then `make`
    /// runs under its span (given to it; the current span if the site is switched off) and
    /// returns the body. A panic in `make` counts as the call's panic. [`CallSite::start_body`]
    /// does the same in two steps, without a closure.
    ///
    /// ```
    /// use monitor_core::{registry, Outcome, Span};
    ///
    /// let site = registry().site("instrument_with_doc::fetch", Some("http_client")).unwrap();
    /// let fut = site.instrument_with(
    ///     |span| {
    ///         let header = span.traceparent().unwrap().to_string(); // sent with the request
    ///         async move { header }
    ///     },
    ///     |_| Outcome::Success,
    /// );
    /// let sent = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut);
    /// assert!(sent.starts_with("00-"));
    /// ```
    pub fn instrument_with<F, C>(
        &'static self,
        make: impl FnOnce(Span) -> F,
        classify: C,
    ) -> Instrumented<F, C>
    where
        F: Future,
        C: Fn(&F::Output) -> Outcome,
    {
        let start = self.start_body(Span::current());
        let inner = make(start.span());
        start.body(inner, classify)
    }
}

/// An async call started whose body is yet to be made: what [`CallSite::instrument_with`] does
/// in two steps, for middleware that makes the body itself. [`CallSite::start_body`] starts
/// the call and makes its span current; code that runs before [`BodyStart::body`] (calling
/// the inner service, which may do work before it returns its future) runs under that span;
/// `body` hands over the future and makes the span before the start current again. Dropped
/// without `body`, for instance by a panic, the call counts as a panic. Moving the body into
/// place once, instead of through a closure, saves copying it (an HTTP request, a future)
/// several times. It is not `Send`: it makes its span current on the thread that made it, and
/// `body` must run there.
///
/// ```
/// use monitor_core::{registry, Outcome, Span};
///
/// let site = registry().site("start_body_doc::fetch", Some("http_client")).unwrap();
/// let start = site.start_body(Span::none());
/// let header = start.span().traceparent().unwrap().to_string(); // sent with the request
/// let fut = start.body(async move { header }, |_| Outcome::Success);
/// let sent = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(fut);
/// assert!(sent.starts_with("00-"));
/// ```
///
/// It cannot be sent to another thread:
///
/// ```compile_fail
/// fn on_another_thread<T: Send + 'static>(t: T) { std::thread::spawn(move || drop(t)); }
/// let site = monitor_core::registry().site("start_body_not_send", None).unwrap();
/// on_another_thread(site.start_body(monitor_core::Span::none()));
/// ```
#[must_use = "a started body dropped without `body` counts as a panic"]
pub struct BodyStart {
    site: &'static CallSite,
    call: Option<Call>,
    ctx: Option<SpanCtx>,
    /// The span current before the start, made current again when this drops: at the end of
    /// `body`, or without one.
    _restore: Restore,
    /// It restores this thread's current span: it stays on the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl CallSite {
    /// Starts an async call of this site as a child of `parent` (the empty span: an entry
    /// point) and makes its span current until [`BodyStart::body`]; a switched-off site records
    /// nothing, and `parent` is current meanwhile.
    ///
    /// ```
    /// let site = monitor_core::registry().site("start_body_parent_doc", None).unwrap();
    /// let start = site.start_body(monitor_core::Span::none());
    /// assert!(start.span().parent_id().is_none());
    /// let fut = start.body(async {}, |_| monitor_core::Outcome::Success);
    /// # drop(fut);
    /// ```
    #[inline]
    pub fn start_body(&'static self, parent: Span) -> BodyStart {
        let restore = Restore(replace_current(parent.ctx()));
        if !self.active() {
            return BodyStart {
                site: self,
                call: None,
                ctx: None,
                _restore: restore,
                _not_send: PhantomData,
            };
        }
        let (ctx, call) = start_async(self);
        replace_current(Some(ctx));
        BodyStart {
            site: self,
            call: Some(call),
            ctx: Some(ctx),
            _restore: restore,
            _not_send: PhantomData,
        }
    }
}

impl BodyStart {
    /// The call's span (the parent if the site is switched off).
    ///
    /// ```
    /// let site = monitor_core::registry().site("body_start_span_doc", None).unwrap();
    /// let start = site.start_body(monitor_core::Span::none());
    /// assert!(start.span().trace_id().is_some());
    /// # let _ = start.body(async {}, |_| monitor_core::Outcome::Success);
    /// ```
    pub fn span(&self) -> Span {
        match self.ctx {
            Some(ctx) => Span::from_ctx(ctx),
            None => Span::current(),
        }
    }

    /// The call's body: the future that is the call from now on, whose output `classify` tells
    /// the outcome of. The span current before the start is current again.
    ///
    /// ```
    /// let site = monitor_core::registry().site("body_start_body_doc", None).unwrap();
    /// let fut = site.start_body(monitor_core::Span::none()).body(async { 7 }, |_| {
    ///     monitor_core::Outcome::Success
    /// });
    /// # drop(fut);
    /// ```
    #[inline]
    pub fn body<F, C>(mut self, inner: F, classify: C) -> Instrumented<F, C>
    where
        F: Future,
        C: Fn(&F::Output) -> Outcome,
    {
        let call = self.call.take();
        let traced = match (&call, &self.ctx) {
            (Some(c), Some(ctx)) => traced::open(c.state, self.site, ctx),
            _ => Default::default(),
        };
        let call = call.map_or(Slot::Empty, Slot::Running);
        Instrumented { inner, classify, ctx: self.ctx, call, traced }
    }
}

impl Drop for BodyStart {
    fn drop(&mut self) {
        if let Some(mut call) = self.call.take() {
            call.finish(Outcome::Panic, None);
        }
    }
}

impl fmt::Debug for BodyStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStart").field("site", &self.site.name()).finish_non_exhaustive()
    }
}

/// A call started and ended by hand, for code that sees a call's start and its end as separate
/// events: a bridge from another instrumentation library (`monitor-tracing` makes each
/// `tracing` span one), a callback API, a state machine. It is not current anywhere until its
/// [`span`](OpenCall::span) is entered; [`OpenCall::finish`] records its outcome, and dropping
/// it unfinished counts it as cancelled. It may end on another thread than it started on.
///
/// ```
/// use monitor_core::{registry, Outcome, Span};
///
/// let site = registry().site("open_call_doc::job", None).unwrap();
/// let call = site.open_call(Span::current());
/// call.span().in_scope(|| { /* monitored calls here are the job's callees */ });
/// call.finish(Outcome::Error("timeout"));
///
/// let snap = registry().snapshot();
/// assert_eq!(snap.function("open_call_doc::job").unwrap().errors, vec![("timeout", 1)]);
/// ```
#[must_use = "an open call dropped unfinished counts as cancelled"]
pub struct OpenCall {
    call: Option<Call>,
    span: Span,
}

impl CallSite {
    /// Starts a call of this site now, as a child of `parent` (the empty span: an entry
    /// point), without making it current. A switched-off site records nothing and the call's
    /// span is `parent`.
    ///
    /// ```
    /// let site = monitor_core::registry().site("open_call_start_doc", None).unwrap();
    /// let call = site.open_call(monitor_core::Span::none());
    /// assert!(call.span().parent_id().is_none());
    /// call.finish(monitor_core::Outcome::Success);
    /// ```
    pub fn open_call(&'static self, parent: Span) -> OpenCall {
        if !self.active() {
            return OpenCall { call: None, span: parent };
        }
        let prev = replace_current(parent.ctx());
        let (entry, call) = Call::start(self, false);
        replace_current(prev);
        OpenCall { call: Some(call), span: Span::from_ctx(entry.ctx) }
    }
}

impl OpenCall {
    /// The call's span: enter it ([`Span::in_scope`], [`Span::enter`]) to make the calls it
    /// makes its callees, annotate it while it is recorded.
    ///
    /// ```
    /// let site = monitor_core::registry().site("open_call_span_doc", None).unwrap();
    /// let call = site.open_call(monitor_core::Span::none());
    /// assert!(call.span().span_id().is_some());
    /// call.finish(monitor_core::Outcome::Success);
    /// ```
    pub fn span(&self) -> Span {
        self.span
    }

    /// Ends the call with `outcome`.
    ///
    /// ```
    /// let site = monitor_core::registry().site("open_call_finish_doc", None).unwrap();
    /// site.open_call(monitor_core::Span::none()).finish(monitor_core::Outcome::Success);
    /// let snap = monitor_core::registry().snapshot();
    /// assert_eq!(snap.function("open_call_finish_doc").unwrap().success, 1);
    /// ```
    pub fn finish(mut self, outcome: Outcome) {
        if let Some(call) = self.call.as_mut() {
            call.finish(outcome, None);
        }
    }
}

impl Drop for OpenCall {
    fn drop(&mut self) {
        if let Some(call) = self.call.as_mut() {
            call.finish(Outcome::Cancelled, None);
        }
    }
}

impl fmt::Debug for OpenCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenCall")
            .field("recording", &self.call.is_some())
            .field("span", &self.span)
            .finish()
    }
}

/// Counts an async call whose future was dropped before it finished.
#[inline(never)]
fn cancel(call: &mut Call) {
    call.finish(Outcome::Cancelled, None);
}

/// The guard of a monitored sync call: current span for its duration, outcome at its end.
#[doc(hidden)]
#[must_use = "the call is recorded when the guard finishes or drops"]
pub struct Guard(Option<Running>);

/// A recorded sync call: its record and the span to restore when it ends.
struct Running {
    call: Call,
    parent: Option<SpanCtx>,
    alloc_base: AllocBase,
    /// Whether the call ends as a success if the guard drops unfinished without a panic (its
    /// value tells nothing, [`Guard::enter_valueless`]); else that is an unseen early return.
    valueless: bool,
    traced: traced::Traced,
}

impl Guard {
    /// A guard that records nothing yet; [`Guard::enter`] starts the call in place.
    ///
    /// The generated code makes the guard once and works on it through `&mut`: it is never
    /// moved, so a switched-off call costs only the switch check, and the bookkeeping is one
    /// call into a non-generic function each way, which keeps the expansion small.
    #[inline(always)]
    pub const fn idle() -> Guard {
        Guard(None)
    }

    /// Starts a call of `site` on this thread (records nothing if the site is switched off),
    /// to be ended by [`Guard::finish`] with its value's outcome. Dropped unfinished, the call
    /// left through a `return` the attribute could not see: an error of kind `hidden_return`.
    #[inline(always)]
    pub fn enter(&mut self, site: &'static CallSite) {
        if site.active() {
            self.start(site, false);
        }
    }

    /// Starts a call whose outcome its value cannot tell (it returns `()`, a reference, an
    /// `impl Trait`…): it ends when the guard drops, as a success unless it panics. The body
    /// needs no rewriting then; every `return` of it ends the call as it leaves.
    #[inline(always)]
    pub fn enter_valueless(&mut self, site: &'static CallSite) {
        if site.active() {
            self.start(site, true);
        }
    }

    #[inline(never)]
    fn start(&mut self, site: &'static CallSite, valueless: bool) {
        let (entry, call) = Call::start(site, true);
        let traced = traced::open(call.state, site, &entry.ctx);
        traced::enter(&traced);
        self.0 = Some(Running {
            call,
            parent: entry.parent,
            alloc_base: Call::resume(),
            valueless,
            traced,
        });
    }

    /// Ends the call with the outcome of its returned value. The guard is left idle, so the
    /// compiler sees that its drop at the function's normal return does nothing and leaves
    /// it out (the guard is not moved: moving it copies it).
    #[inline(always)]
    pub fn finish(&mut self, outcome: Outcome) {
        if let Some(running) = &mut self.0 {
            running.end(outcome);
            self.0 = None;
        }
    }
}

impl Running {
    /// Records the end and restores the caller's span; later calls do nothing.
    #[inline(never)]
    fn end(&mut self, end: Outcome) {
        if !self.call.done {
            self.call.finish(end, self.alloc_base);
            replace_current(self.parent);
            traced::exit(&mut self.traced, true);
        }
    }
}

impl Running {
    /// The guard dropped: a panic unwinding, the end of a call whose value tells nothing, or an
    /// exit the attribute could not see; nothing if the call was finished. Out of line, so a
    /// monitored function's own code is one test and one call.
    #[inline(never)]
    fn dropped(&mut self) {
        if !self.call.done {
            self.end(if std::thread::panicking() {
                Outcome::Panic
            } else if self.valueless {
                Outcome::Success
            } else {
                Outcome::Error(HIDDEN_RETURN)
            });
        }
    }
}

impl Drop for Guard {
    #[inline(always)]
    fn drop(&mut self) {
        if let Some(running) = &mut self.0 {
            running.dropped();
        }
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("recording", &self.0.is_some()).finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of a monitored async call. The call starts when this is made (for an
    /// `async fn`: at its first poll), runs under its own span at every poll, ends with the
    /// output's outcome, and counts as cancelled if dropped first. Made by
    /// [`CallSite::instrument`] and by `#[monitored]` on async functions.
    ///
    /// ```
    /// use monitor_core::{Instrumented, Outcome};
    /// let site = monitor_core::registry().site("instrumented_doc", None).unwrap();
    /// let fut: Instrumented<_, _> = site.instrument(async { 7 }, |_| Outcome::Success);
    /// # drop(fut);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F, C> {
        #[pin]
        inner: F,
        classify: C,
        ctx: Option<SpanCtx>,
        call: Slot,
        // The call's `tracing` span (feature `tracing`).
        traced: traced::Traced,
    }

    impl<F, C> PinnedDrop for Instrumented<F, C> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(call) = this.project().call.running_mut() {
                cancel(call);
            }
        }
    }
}

impl<F, C> Instrumented<F, C>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
{
    /// Starts a call of `site` whose body is `inner`; its parent is the span current now.
    /// If the site is switched off, the future is only polled through.
    #[doc(hidden)]
    #[inline]
    pub fn new(site: &'static CallSite, inner: F, classify: C) -> Self {
        if !site.active() {
            return Instrumented::passed_through(inner, classify);
        }
        let (ctx, call) = start_async(site);
        let traced = traced::open(call.state, site, &ctx);
        Instrumented { inner, classify, ctx: Some(ctx), call: Slot::Running(call), traced }
    }

    /// Like [`Instrumented::new`], with the call starting at the first poll: what an `async fn`
    /// does, whose body starts then. The call's records are then written where the future
    /// already lives, instead of being moved there with it.
    #[doc(hidden)]
    #[inline]
    pub fn deferred(site: &'static CallSite, inner: F, classify: C) -> Self {
        Instrumented {
            inner,
            classify,
            ctx: None,
            call: Slot::Deferred(site),
            traced: Default::default(),
        }
    }

    /// `inner` polled through, no call: what a switched-off site runs.
    fn passed_through(inner: F, classify: C) -> Self {
        Instrumented { inner, classify, ctx: None, call: Slot::Empty, traced: Default::default() }
    }
}

/// The bookkeeping of an async call's start, out of line and not generic.
#[inline(never)]
fn start_async(site: &'static CallSite) -> (SpanCtx, Call) {
    let (entry, call) = Call::start(site, false);
    (entry.ctx, call)
}

/// A monitored future's call: to start at the first poll, running, or none (ended, or the
/// site switched off). The site of a call yet to start is kept where its record goes, so the
/// future stays within 128 bytes (see the test `a_monitored_future_stays_small`).
enum Slot {
    /// To start at the first poll (an `async fn`'s call, [`Instrumented::deferred`]).
    Deferred(&'static CallSite),
    Running(Call),
    Empty,
}

impl Slot {
    #[inline(always)]
    fn running(&self) -> Option<&Call> {
        match self {
            Slot::Running(call) => Some(call),
            _ => None,
        }
    }

    #[inline(always)]
    fn running_mut(&mut self) -> Option<&mut Call> {
        match self {
            Slot::Running(call) => Some(call),
            _ => None,
        }
    }

    /// The running call, leaving the slot empty.
    #[inline(always)]
    fn take_running(&mut self) -> Option<Call> {
        match std::mem::replace(self, Slot::Empty) {
            Slot::Running(call) => Some(call),
            other => {
                *self = other;
                None
            }
        }
    }
}

/// Starts a call of `site` in the future being polled, leaving `ctx` `None` if the site is
/// switched off (the future then runs without a call). The poll makes the span current as at
/// every later poll.
///
/// The span that was current is not handed back from here: returned through memory written
/// a moment before, it was read back in wider loads than it was written with, a
/// store-forwarding stall of a few nanoseconds on every monitored `async fn`.
#[inline(never)]
fn start_in_place(
    site: &'static CallSite,
    ctx: &mut Option<SpanCtx>,
    call: &mut Slot,
    traced: &mut traced::Traced,
) {
    if !site.active() {
        *call = Slot::Empty;
        return;
    }
    let (entry, started) = Call::start(site, false);
    *traced = traced::open(started.state, site, &entry.ctx);
    *call = Slot::Running(started);
    *ctx = Some(entry.ctx);
}

/// Restores the current span after a poll and, if the poll panicked, records the panic then
/// (an executor may catch the panic and drop the future later, when it no longer unwinds).
struct PollGuard<'a> {
    call: &'a mut Slot,
    prev: Option<SpanCtx>,
    alloc_base: AllocBase,
    traced: &'a mut traced::Traced,
}

impl Drop for PollGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        replace_current(self.prev);
        if let Some(call) = self.call.running_mut() {
            call.pause(self.alloc_base);
        }
        if std::thread::panicking() {
            if let Some(mut call) = self.call.take_running() {
                call.finish(Outcome::Panic, None);
            }
        }
        // Closed with the call: once it finished, or panicked.
        traced::exit(self.traced, self.call.running().is_none());
    }
}

impl<F, C> Future for Instrumented<F, C>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if let Slot::Deferred(site) = *this.call {
            start_in_place(site, this.ctx, this.call, this.traced);
        }
        // No span: the site is switched off, or the call has ended.
        let Some(ctx) = *this.ctx else { return this.inner.poll(cx) };
        let prev = replace_current(Some(ctx));
        // A recorded call's poll that its parent's poll does not enclose (the future runs in
        // another task): what it allocates is not in the parent's count. (At the first poll,
        // the span replaced is the parent itself.)
        if let Some(call) = this.call.running_mut().filter(|c| c.rec != 0) {
            if prev.map_or(0, |p| p.span_id.to_u64()) != ctx.parent {
                call.nested = false;
            }
        }
        let alloc_base = Call::resume();
        traced::enter(this.traced);
        let mut guard = PollGuard { call: this.call, prev, alloc_base, traced: this.traced };
        let polled = if crate::polls::is_enabled() {
            timed_poll(this.inner, cx, guard.call.running())
        } else {
            this.inner.poll(cx)
        };
        match polled {
            Poll::Ready(out) => {
                if let Some(mut call) = guard.call.take_running() {
                    call.finish((this.classify)(&out), guard.alloc_base.take());
                }
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Polls `inner` and counts the poll's time at `call`'s site (see `crate::polls`).
#[inline(never)]
fn timed_poll<F: Future>(
    inner: Pin<&mut F>,
    cx: &mut Context<'_>,
    call: Option<&Call>,
) -> Poll<F::Output> {
    let start = clock::now();
    let polled = inner.poll(cx);
    if let Some(call) = call {
        let ns = clock::nanos_between(start, clock::now());
        call.state.record_poll(call.stripe as usize, ns);
    }
    polled
}

impl<F, C> fmt::Debug for Instrumented<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented")
            .field("site", &self.ctx.map(|c| crate::record::site_name(c.local_site())))
            .finish_non_exhaustive()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monitored_future_stays_small() {
        // Every monitored future carries a context and a call, and is moved by value (into
        // its caller's future, into a task): past 128 bytes, each move is a call to memcpy.
        assert_eq!(std::mem::size_of::<SpanCtx>(), 48);
        assert_eq!(std::mem::size_of::<Option<Call>>(), 48);
        let classify = |_: &u8| Outcome::Success;
        let fut = Instrumented {
            inner: std::future::ready(1u8),
            classify,
            ctx: None,
            call: Slot::Empty,
            traced: Default::default(),
        };
        // The site of a deferred call takes no room of its own.
        assert_eq!(std::mem::size_of::<Slot>(), 48);
        // 96 bytes, the future's 2 and padding to the context's 16-byte alignment; with
        // `tracing`'s span (feature `tracing`, 40 bytes), 32 more.
        let traced = if cfg!(feature = "tracing") { 32 } else { 0 };
        assert_eq!(std::mem::size_of_val(&fut), 112 + traced);
        // An `async fn` of one argument: its body's future (16 bytes) in the wrapper, in the
        // function's own future (144 bytes before the deferred site shared the call's room).
        if !cfg!(feature = "tracing") {
            assert_eq!(std::mem::size_of_val(&small_async(1)), 128);
        }
    }

    #[crate::monitored(crate = crate)]
    async fn small_async(x: u64) -> Result<u64, std::io::Error> {
        Ok(x + 1)
    }
}
