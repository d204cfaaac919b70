//! Spans: ids, the span current on each thread, and carrying it to other threads and tasks.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{SpanCtx, REMOTE_SITE};
use crate::ids::{flags, SpanId, TraceId};
use crate::record::{self, AttributeValue, Status, TraceParent};
use crate::site::CallSite;
use crate::state::{claim_stripe, release_stripe, shared_stripe, ENTRY_KEY, OWNED};

// Per-thread state of the hot path: three `const`-initialised cells without `Drop`, so each
// access is a plain thread-local load or store (the fourth key, with a destructor, is touched
// once per thread). They are separate keys, each read through a small closure, because one
// `LocalKey::with` around all the entry work grew too large for the compiler to inline it (it
// then went through an out-of-line call and a TLS getter per call).
thread_local! {
    static CURRENT: Cell<Option<SpanCtx>> = const { Cell::new(None) };
    static RNG: Cell<u64> = const { Cell::new(0) };
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
    /// The stripe this thread owns, given back when the thread ends. Touched once, at the
    /// thread's first call: a key with a destructor costs a check on every access.
    static OWNS: OwnedStripe = const { OwnedStripe(Cell::new(usize::MAX)) };
}

/// A stripe index a thread owns (see `crate::state::claim_stripe`), until it ends.
struct OwnedStripe(Cell<usize>);

impl Drop for OwnedStripe {
    fn drop(&mut self) {
        let i = self.0.replace(usize::MAX);
        if i != usize::MAX {
            // Calls this thread still makes (other keys' destructors) count on a shared stripe
            // from now on; only then may another thread own this one.
            STRIPE.set(shared_stripe());
            release_stripe(i);
        }
    }
}

/// This thread's stripe, with [`OWNED`] if it owns it (and, on its first call, its random
/// seed).
#[inline(always)]
pub(crate) fn stripe() -> usize {
    match STRIPE.get() {
        usize::MAX => init_thread(),
        s => s,
    }
}

#[cold]
#[inline(never)]
fn init_thread() -> usize {
    // Registering the key's destructor is the monitor's memory, not the call's.
    let s = match claim_stripe() {
        Some(i) if crate::alloc::uncounted(|| OWNS.try_with(|o| o.0.set(i))).is_ok() => i | OWNED,
        // The thread is ending: nothing would give the stripe back.
        Some(i) => {
            release_stripe(i);
            shared_stripe()
        }
        None => shared_stripe(),
    };
    STRIPE.set(s);
    // Seeded from std's per-process random keys, mixed with the stripe counter and the
    // thread's address of its cell, so threads and processes draw different ids without a
    // syscall per id.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_usize(s);
    h.write_usize(RNG.with(|c| std::ptr::from_ref(c) as usize));
    RNG.set(h.finish() | 1);
    s
}

/// wyrand: one multiply per 64 random bits.
#[inline(always)]
fn next_u64() -> u64 {
    let s = RNG.get().wrapping_add(0xa076_1d64_78bd_642f);
    RNG.set(s);
    let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
    ((t >> 64) as u64) ^ (t as u64)
}

/// What a call needs from its thread at entry.
pub(crate) struct Entry {
    pub(crate) parent: Option<SpanCtx>,
    pub(crate) ctx: SpanCtx,
    pub(crate) stripe: usize,
}

impl Entry {
    pub(crate) fn caller_key(&self) -> u32 {
        self.parent.map_or(ENTRY_KEY, |p| p.key)
    }

    /// The span id to close at the end, if the span is recorded (else 0).
    pub(crate) fn recorded(&self) -> u64 {
        if self.ctx.flags & flags::RECORDED != 0 {
            self.ctx.span_id.to_u64()
        } else {
            0
        }
    }
}

/// Reads the parent and draws ids for a new call at `site`; with `install`, makes it current.
#[inline(always)]
pub(crate) fn begin(site: &'static CallSite, site_id: u32, install: bool) -> Entry {
    let stripe = stripe();
    let parent = CURRENT.get();
    let trace_id = match parent {
        Some(p) => p.trace_id,
        None => TraceId::from_u128((u128::from(next_u64()) << 64) | u128::from(next_u64() | 1)),
    };
    let span_id = SpanId::from_u64(next_u64() | 1);
    let mut ctx = SpanCtx {
        trace_id,
        span_id,
        parent: parent.map_or(0, |p| p.span_id.to_u64()),
        site,
        key: site_id.checked_add(1).unwrap_or(ENTRY_KEY),
        flags: record::inherited(parent.as_ref()),
    };
    // Passed by value on the cold branch only: taking `ctx`'s address here would keep it in
    // memory on the hot path too, where rebuilding it costs store-forwarding stalls.
    if ctx.flags | record::mode() != 0 {
        ctx.flags = record::begin_recording(ctx, parent.map(|p| p.flags), site_id);
    }
    if install {
        CURRENT.set(Some(ctx));
    }
    Entry { parent, ctx, stripe }
}

/// Makes `ctx` the current span, returning the one it replaces.
#[inline(always)]
pub(crate) fn replace_current(ctx: Option<SpanCtx>) -> Option<SpanCtx> {
    CURRENT.replace(ctx)
}

/// Restores a saved current span when dropped, also while unwinding.
pub(crate) struct Restore(pub(crate) Option<SpanCtx>);

impl Drop for Restore {
    #[inline]
    fn drop(&mut self) {
        replace_current(self.0);
    }
}

/// A handle to a monitored call's span, to carry it where the thread-local stack does not reach:
/// a spawned thread, a spawned task, a callback run elsewhere.
///
/// Calls made under a carried span get it as their parent: they join its trace and count it as
/// their caller in the call graph. A `Span` is a small `Copy` value; carrying one costs nothing
/// until it is entered.
///
/// # Examples
///
/// ```
/// use monitor_core::{monitored, Span};
///
/// #[monitored(name = "span_doc::worker")]
/// fn worker() -> Option<monitor_core::TraceId> { Span::current().trace_id() }
///
/// #[monitored(name = "span_doc::handler")]
/// fn handler() -> bool {
///     let span = Span::current();
///     let seen = std::thread::spawn(span.wrap(worker)).join().unwrap();
///     seen == span.trace_id()
/// }
///
/// assert!(handler());
/// let snap = monitor_core::registry().snapshot();
/// assert_eq!(snap.function("span_doc::worker").unwrap().calls_from("span_doc::handler"), 1);
/// ```
#[derive(Clone, Copy, Default)]
#[must_use = "a Span does nothing until it is entered with `in_scope`, `wrap` or `wrap_future`"]
pub struct Span {
    ctx: Option<SpanCtx>,
}

impl Span {
    /// The span of the monitored call running on this thread (or in this task), or the empty span
    /// when there is none.
    ///
    /// ```
    /// assert!(monitor_core::Span::current().is_none());
    /// ```
    #[inline]
    pub fn current() -> Span {
        Span { ctx: CURRENT.get() }
    }

    pub(crate) fn from_ctx(ctx: SpanCtx) -> Span {
        Span { ctx: Some(ctx) }
    }

    pub(crate) fn ctx(self) -> Option<SpanCtx> {
        self.ctx
    }

    /// The empty span: entering it makes calls entry points.
    ///
    /// ```
    /// assert!(monitor_core::Span::none().is_none());
    /// ```
    pub const fn none() -> Span {
        Span { ctx: None }
    }

    /// Whether this is the empty span.
    ///
    /// ```
    /// assert!(monitor_core::Span::none().is_none());
    /// ```
    pub fn is_none(&self) -> bool {
        self.ctx.is_none()
    }

    /// The trace this span belongs to.
    ///
    /// ```
    /// assert_eq!(monitor_core::Span::none().trace_id(), None);
    /// ```
    pub fn trace_id(&self) -> Option<TraceId> {
        self.ctx.map(|c| c.trace_id)
    }

    /// This span's id.
    ///
    /// ```
    /// assert_eq!(monitor_core::Span::none().span_id(), None);
    /// ```
    pub fn span_id(&self) -> Option<SpanId> {
        self.ctx.map(|c| c.span_id)
    }

    /// The id of this span's parent: the monitored call that was current when this one started
    /// (`None` for the first call of a trace).
    ///
    /// ```
    /// use monitor_core::{monitored, Span, SpanId};
    ///
    /// #[monitored]
    /// fn child() -> Option<SpanId> { Span::current().parent_id() }
    ///
    /// #[monitored]
    /// fn parent() -> bool { child() == Span::current().span_id() }
    ///
    /// assert!(parent());
    /// assert_eq!(child(), None);
    /// ```
    pub fn parent_id(&self) -> Option<SpanId> {
        self.ctx.and_then(|c| c.parent_id())
    }

    /// The monitored function this span is a call of.
    ///
    /// ```
    /// #[monitor_core::monitored(name = "span_doc::site")]
    /// fn f() -> &'static str { monitor_core::Span::current().site().unwrap().name() }
    /// assert_eq!(f(), "span_doc::site");
    /// ```
    pub fn site(&self) -> Option<&'static CallSite> {
        self.ctx.and_then(|c| c.local_site())
    }

    /// The span of a caller in another process, from its `traceparent` header: calls made under
    /// it join that trace, with the caller's span as their parent (they are entry points of the
    /// call graph). The caller's sampled flag is followed while sampling or observers are on.
    ///
    /// ```
    /// use monitor_core::{monitored, trace::TraceParent, Span};
    ///
    /// #[monitored]
    /// fn handle() -> Span { Span::current() }
    ///
    /// let tp: TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap();
    /// let span = Span::from_remote(tp).in_scope(handle);
    /// assert_eq!(span.trace_id(), Some(tp.trace_id));
    /// assert_eq!(span.parent_id(), Some(tp.parent_id));
    /// ```
    pub fn from_remote(parent: TraceParent) -> Span {
        let sampled = if parent.sampled() { flags::SAMPLED } else { 0 };
        Span {
            ctx: Some(SpanCtx {
                trace_id: parent.trace_id,
                span_id: parent.parent_id,
                parent: 0,
                site: &REMOTE_SITE,
                key: ENTRY_KEY,
                flags: flags::REMOTE | sampled,
            }),
        }
    }

    /// The `traceparent` to send with a request made under this span, so the next service
    /// continues the trace; `None` for the empty span.
    ///
    /// ```
    /// #[monitor_core::monitored]
    /// fn call_out() -> String { monitor_core::Span::current().traceparent().unwrap().to_string() }
    /// assert!(call_out().starts_with("00-"));
    /// ```
    pub fn traceparent(&self) -> Option<TraceParent> {
        self.ctx.map(|c| TraceParent::new(c.trace_id, c.span_id, c.flags & flags::SAMPLED != 0))
    }

    /// Whether this span's details are recorded (a watch, sampling or failure keeping wants
    /// them); annotations and events on an unrecorded span are dropped at the cost of a check.
    ///
    /// ```
    /// assert!(!monitor_core::Span::none().is_recorded());
    /// ```
    pub fn is_recorded(&self) -> bool {
        self.recorded_id().is_some()
    }

    /// Whether the trace is sampled: its spans go to the observers and out with `traceparent`.
    ///
    /// ```
    /// assert!(!monitor_core::Span::none().is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.ctx.is_some_and(|c| c.flags & flags::SAMPLED != 0)
    }

    fn recorded_id(&self) -> Option<SpanId> {
        self.ctx.filter(|c| c.flags & flags::RECORDED != 0).map(|c| c.span_id)
    }

    /// Sets an attribute of this span (a later value for the same key replaces the earlier).
    ///
    /// ```
    /// monitor_core::Span::current().annotate("rows", 42);
    /// ```
    pub fn annotate(&self, key: impl Into<Cow<'static, str>>, value: impl Into<AttributeValue>) {
        if let Some(id) = self.recorded_id() {
            record::annotate_span(id, key.into(), value.into());
        }
    }

    /// Adds a timestamped event to this span.
    ///
    /// ```
    /// monitor_core::Span::current().event("retrying");
    /// ```
    pub fn event(&self, name: impl Into<Cow<'static, str>>) {
        if let Some(id) = self.recorded_id() {
            record::event_span(id, name.into(), false);
        }
    }

    /// Adds a checkpoint: an event carrying the time since the previous checkpoint (or the
    /// span's start), to see which phase of a call took the time.
    ///
    /// ```
    /// monitor_core::Span::current().checkpoint("serialized");
    /// ```
    pub fn checkpoint(&self, name: impl Into<Cow<'static, str>>) {
        if let Some(id) = self.recorded_id() {
            record::event_span(id, name.into(), true);
        }
    }

    /// Sets this span's status, overriding the one derived from the call's outcome.
    ///
    /// ```
    /// monitor_core::Span::current().set_status(monitor_core::trace::Status::error("upstream said no"));
    /// ```
    pub fn set_status(&self, status: Status) {
        if let Some(id) = self.recorded_id() {
            record::set_status_span(id, status);
        }
    }

    /// Runs `f` with this span as the current one, then restores the previous (also on panic).
    ///
    /// ```
    /// let span = monitor_core::Span::none();
    /// assert_eq!(span.in_scope(|| 2 + 2), 4);
    /// ```
    pub fn in_scope<R>(self, f: impl FnOnce() -> R) -> R {
        let _restore = Restore(replace_current(self.ctx));
        f()
    }

    /// Makes this span the current one on this thread until the returned guard drops, which
    /// restores the one before. For code whose enter and exit are separate callbacks (a
    /// bridge); elsewhere [`Span::in_scope`] says the same with less to get wrong. Guards must
    /// drop in the reverse order of their making, on the thread that made them.
    ///
    /// ```
    /// use monitor_core::Span;
    /// let site = monitor_core::registry().site("span_enter_doc", None).unwrap();
    /// let call = site.open_call(Span::none());
    /// let entered = call.span().enter();
    /// assert_eq!(Span::current().span_id(), call.span().span_id());
    /// drop(entered);
    /// assert!(Span::current().is_none());
    /// call.finish(monitor_core::Outcome::Success);
    /// ```
    pub fn enter(self) -> EnteredSpan {
        EnteredSpan { prev: replace_current(self.ctx), _not_send: PhantomData }
    }

    /// Wraps `f` so that it runs under this span wherever it is called, e.g. on a new thread.
    ///
    /// ```
    /// let span = monitor_core::Span::current();
    /// let answer = std::thread::spawn(span.wrap(|| 42)).join().unwrap();
    /// assert_eq!(answer, 42);
    /// ```
    pub fn wrap<R>(self, f: impl FnOnce() -> R) -> impl FnOnce() -> R {
        move || self.in_scope(f)
    }

    /// Wraps `fut` so that each of its polls runs under this span, e.g. in a spawned task.
    ///
    /// ```
    /// use monitor_core::Span;
    /// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// # rt.block_on(async {
    /// let task = tokio::spawn(Span::current().wrap_future(async { 1 }));
    /// assert_eq!(task.await.unwrap(), 1);
    /// # });
    /// ```
    pub fn wrap_future<F: Future>(self, fut: F) -> WithSpan<F> {
        WithSpan { span: self, inner: fut }
    }
}

/// A span made current by [`Span::enter`]; dropping it restores the span current before. It
/// stays on the thread that made it.
#[must_use = "the span is current only until this guard drops"]
pub struct EnteredSpan {
    prev: Option<SpanCtx>,
    /// The span to restore is this thread's.
    _not_send: PhantomData<*const ()>,
}

impl Drop for EnteredSpan {
    fn drop(&mut self) {
        replace_current(self.prev);
    }
}

impl fmt::Debug for EnteredSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnteredSpan").finish_non_exhaustive()
    }
}

impl fmt::Debug for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.ctx {
            None => f.write_str("Span(none)"),
            Some(c) => f
                .debug_struct("Span")
                .field("trace_id", &c.trace_id)
                .field("span_id", &c.span_id)
                .field("parent_id", &c.parent_id())
                .field("site", &record::site_name(c.local_site()))
                .finish(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A future that runs each poll of the inner one under a [`Span`]; made by
    /// [`Span::wrap_future`] and [`FutureExt`].
    ///
    /// ```
    /// use monitor_core::{FutureExt, WithSpan};
    /// let fut: WithSpan<_> = async { 1 }.with_current_span();
    /// # drop(fut);
    /// ```
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub struct WithSpan<F> {
        span: Span,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for WithSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _restore = Restore(replace_current(this.span.ctx));
        this.inner.poll(cx)
    }
}

/// Carrying the current span into futures that run elsewhere (spawned tasks).
///
/// ```
/// use monitor_core::FutureExt;
/// # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// # rt.block_on(async {
/// let handle = tokio::spawn(async { 7 }.with_current_span());
/// assert_eq!(handle.await.unwrap(), 7);
/// # });
/// ```
pub trait FutureExt: Future + Sized {
    /// Runs this future under `span`.
    ///
    /// ```
    /// use monitor_core::{FutureExt, Span};
    /// let fut = async {}.with_span(Span::none());
    /// # drop(fut);
    /// ```
    fn with_span(self, span: Span) -> WithSpan<Self> {
        span.wrap_future(self)
    }

    /// Runs this future under the span current now, wherever it is polled.
    ///
    /// ```
    /// use monitor_core::FutureExt;
    /// let fut = async {}.with_current_span();
    /// # drop(fut);
    /// ```
    fn with_current_span(self) -> WithSpan<Self> {
        Span::current().wrap_future(self)
    }
}

impl<F: Future> FutureExt for F {}
