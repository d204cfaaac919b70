//! Recording one call: the shared part, the guard of sync functions and the async wrapper.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};

use crate::clock;
use crate::site::{CallSite, SiteState};
use crate::span::{self, replace_current, SpanCtx};

/// How a call ended, as the macro-generated code classifies a returned value.
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call returned a success (anything but an `Err`).
    Success,
    /// The call returned an error of this kind.
    Error(&'static str),
}

/// Every way a call can end.
#[derive(Clone, Copy, Debug)]
enum End {
    Success,
    Error(&'static str),
    Panic,
    Cancelled,
}

impl From<Outcome> for End {
    #[inline]
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Success => End::Success,
            Outcome::Error(kind) => End::Error(kind),
        }
    }
}

/// Error kind of a sync call that left through a `return` the macro could not see (one inside
/// another macro's expansion, such as `anyhow::bail!`): such exits are almost always errors.
pub(crate) const HIDDEN_RETURN: &str = "hidden_return";

/// A call in progress. Recording its end is idempotent; dropping it unfinished counts it as
/// cancelled.
struct Call {
    state: &'static SiteState,
    stripe: usize,
    start: u64,
    done: bool,
    /// This thread's allocation counters when the call last started running on it (only with
    /// the counting allocator installed), and what it allocated while running before.
    alloc_base: Option<(u64, u64)>,
    allocated: (u64, u64),
}

impl Call {
    #[inline]
    fn start(state: &'static SiteState, stripe: usize, caller_key: u32) -> Self {
        state.begin(state.stripe(stripe), caller_key);
        // Read last, so the bookkeeping above is not part of the measured time.
        Call {
            state,
            stripe,
            start: clock::now(),
            done: false,
            alloc_base: None,
            allocated: (0, 0),
        }
    }

    /// The call starts (or resumes) running on this thread.
    #[inline]
    fn resume(&mut self) {
        self.alloc_base = crate::alloc::thread_counts();
    }

    /// The call stops running on this thread: what this thread allocated meanwhile is its.
    #[inline]
    fn pause(&mut self) {
        if let (Some((n0, b0)), Some((n1, b1))) =
            (self.alloc_base.take(), crate::alloc::thread_counts())
        {
            self.allocated.0 += n1.wrapping_sub(n0);
            self.allocated.1 += b1.wrapping_sub(b0);
        }
    }

    #[inline]
    fn finish(&mut self, end: End) {
        if self.done {
            return;
        }
        self.done = true;
        self.pause();
        let at = clock::now();
        let ns = clock::nanos_between(self.start, at);
        let state = self.state;
        state.end();
        let stripe = state.stripe(self.stripe);
        if self.allocated != (0, 0) {
            stripe.allocations.fetch_add(self.allocated.0, Relaxed);
            stripe.allocated_bytes.fetch_add(self.allocated.1, Relaxed);
        }
        if let End::Success = end {
            stripe.success.fetch_add(1, Relaxed);
            stripe.success_sum.add(ns);
            stripe.success_recent.set(ns, at);
            state.success_times.record(ns);
            return;
        }
        match end {
            End::Error(kind) => state.kinds.record(kind),
            End::Panic => {
                stripe.panics.fetch_add(1, Relaxed);
            }
            _ => {
                stripe.cancelled.fetch_add(1, Relaxed);
            }
        }
        stripe.failure_sum.add(ns);
        stripe.failure_recent.set(ns, at);
        state.failure_times.record(ns);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.finish(End::Cancelled);
    }
}

/// The guard of a monitored sync call: current span for its duration, outcome at its end.
#[doc(hidden)]
#[must_use = "the call is recorded when the guard finishes or drops"]
pub struct Guard {
    call: Call,
    parent: Option<SpanCtx>,
}

impl Guard {
    /// Starts a call of `site` on this thread.
    #[inline]
    pub fn enter(site: &'static CallSite) -> Guard {
        let state = site.state();
        let entry = span::begin(site, state.id, true);
        let mut call = Call::start(state, entry.stripe, entry.caller_key());
        call.resume();
        Guard { call, parent: entry.parent }
    }

    /// Ends the call with the outcome of its returned value.
    #[inline]
    pub fn finish(mut self, outcome: Outcome) {
        self.call.finish(outcome.into());
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        if !self.call.done {
            self.call.finish(if std::thread::panicking() {
                End::Panic
            } else {
                End::Error(HIDDEN_RETURN)
            });
        }
        replace_current(self.parent);
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("done", &self.call.done).finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// The future of a monitored async call. The call starts when this is made (for an
    /// `async fn`: at its first poll), runs under its own span at every poll, ends with the
    /// output's outcome, and counts as cancelled if dropped first.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F, C> {
        #[pin]
        inner: F,
        classify: C,
        ctx: SpanCtx,
        call: Option<Call>,
    }
}

impl<F, C> Instrumented<F, C>
where
    F: Future,
    C: Fn(&F::Output) -> Outcome,
{
    /// Starts a call of `site` whose body is `inner`; its parent is the span current now.
    #[inline]
    pub fn new(site: &'static CallSite, inner: F, classify: C) -> Self {
        let state = site.state();
        let entry = span::begin(site, state.id, false);
        let call = Call::start(state, entry.stripe, entry.caller_key());
        Instrumented { inner, classify, ctx: entry.ctx, call: Some(call) }
    }
}

/// Restores the current span after a poll and, if the poll panicked, records the panic then
/// (an executor may catch the panic and drop the future later, when it no longer unwinds).
struct PollGuard<'a> {
    call: &'a mut Option<Call>,
    prev: Option<SpanCtx>,
}

impl Drop for PollGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        replace_current(self.prev);
        if let Some(call) = self.call.as_mut() {
            call.pause();
        }
        if std::thread::panicking() {
            if let Some(mut call) = self.call.take() {
                call.finish(End::Panic);
            }
        }
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
        if let Some(call) = this.call.as_mut() {
            call.resume();
        }
        let guard = PollGuard { call: this.call, prev: replace_current(Some(*this.ctx)) };
        match this.inner.poll(cx) {
            Poll::Ready(out) => {
                if let Some(mut call) = guard.call.take() {
                    call.finish((this.classify)(&out).into());
                }
                Poll::Ready(out)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<F, C> fmt::Debug for Instrumented<F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instrumented").field("site", &self.ctx.site.name()).finish_non_exhaustive()
    }
}
