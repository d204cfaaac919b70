//! Support for the code `#[monitored]` generates. Not public API: no stability promise.

use std::convert::Infallible;
use std::ops::ControlFlow;
use std::task::Poll;

pub use crate::call::{Guard, Instrumented};
pub use crate::metrics::MetricField;
pub use crate::objective::{LinkedObjective, Objective};
pub use crate::outcome::Outcome;
pub use crate::site::{CallSite, SiteLabels};
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "freebsd",
    target_os = "openbsd",
)))]
pub use linkme;

use crate::error::{short_type_name, ErrorKind};

/// Every `#[monitored]` function's call site, gathered by the linker, where the expansion's
/// own link section is not used (see `linked_items!` in the crate root).
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "freebsd",
    target_os = "openbsd",
)))]
#[linkme::distributed_slice]
pub static CALL_SITES: [&'static CallSite];

/// Every `#[monitored(objective(...))]`'s objective, where the link section is not used.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "fuchsia",
    target_os = "freebsd",
    target_os = "openbsd",
)))]
#[linkme::distributed_slice]
pub static OBJECTIVES: [&'static LinkedObjective];

/// Gives a future's output type before the future's body is checked: an `async` block passed
/// here learns its output from `T`, as the body of an `async fn` (or of a function returning
/// `impl Future<Output = T>`) learns it from the signature, so `?` conversions, coercions and
/// closures infer as in the original body. `T` may hold `_` where the signature has an
/// `impl Trait`.
#[inline(always)]
pub fn with_output<T, F: core::future::Future<Output = T>>(future: F) -> F {
    future
}

/// An outcome classifier for calls whose value tells nothing (a unit, a reference, an
/// `impl Trait`): always a success.
#[inline(always)]
pub fn success<T: ?Sized>(_: &T) -> Outcome {
    Outcome::Success
}

/// Wraps a returned value for outcome classification by autoref specialisation: the generated
/// code calls `(&&&Probe(&value)).__monitor_outcome()`, and method resolution picks the first
/// of these impls that applies to the concrete type.
#[allow(missing_debug_implementations)]
pub struct Probe<'a, T: ?Sized>(pub &'a T);

/// How a returned value classifies. One trait with an impl at each reference level: method
/// resolution on `&&&Probe(&value)` takes the first that applies to the value's type.
/// Only the test of the value is inlined into the monitored function; naming an error is out
/// of line, once per error type.
pub trait Classify {
    fn __monitor_outcome(&self) -> Outcome;
}

/// A fallible value (a `Result`, or a `Poll` of one) whose error is `ErrorKind`: the kind is
/// the name the error gives.
impl<R: Fallible> Classify for &&Probe<'_, R>
where
    R::Error: ErrorKind,
{
    #[inline(always)]
    fn __monitor_outcome(&self) -> Outcome {
        match self.0.__monitor_error() {
            None => Outcome::Success,
            Some(e) => named(e),
        }
    }
}

#[cold]
#[inline(never)]
fn named<E: ErrorKind + ?Sized>(e: &E) -> Outcome {
    Outcome::Error(e.error_kind())
}

/// Any other fallible value: the kind is the short name of the error's type.
impl<R: Fallible> Classify for &Probe<'_, R> {
    #[inline(always)]
    fn __monitor_outcome(&self) -> Outcome {
        match self.0.__monitor_error() {
            None => Outcome::Success,
            Some(_) => type_named::<R::Error>(),
        }
    }
}

#[cold]
#[inline(never)]
fn type_named<E: ?Sized>() -> Outcome {
    Outcome::Error(short_type_name(std::any::type_name::<E>()))
}

/// What a returned value says of the call: the error of a `Result`, of a `Poll::Ready` holding
/// one (what `poll_*` functions return), or of a stream's item.
pub trait Fallible {
    /// The error, if the value is or holds one.
    type Error;
    fn __monitor_error(&self) -> Option<&Self::Error>;
}

impl<T, E> Fallible for Result<T, E> {
    type Error = E;
    #[inline(always)]
    fn __monitor_error(&self) -> Option<&E> {
        self.as_ref().err()
    }
}

impl<T, E> Fallible for Poll<Result<T, E>> {
    type Error = E;
    #[inline(always)]
    fn __monitor_error(&self) -> Option<&E> {
        match self {
            Poll::Ready(Err(e)) => Some(e),
            _ => None,
        }
    }
}

impl<T, E> Fallible for Poll<Option<Result<T, E>>> {
    type Error = E;
    #[inline(always)]
    fn __monitor_error(&self) -> Option<&E> {
        match self {
            Poll::Ready(Some(Err(e))) => Some(e),
            _ => None,
        }
    }
}

/// Anything else returned is a success.
impl<T: ?Sized> Classify for Probe<'_, T> {
    #[inline(always)]
    fn __monitor_outcome(&self) -> Outcome {
        Outcome::Success
    }
}

/// What `?` does, for the types whose `?` a monitored body may use: the generated code rewrites
/// `expr?` into a `match` on [`Try::__monitor_branch`] that leaves through the body's label
/// instead of returning past the call's bookkeeping.
#[diagnostic::on_unimplemented(
    message = "`?` on `{Self}` is not supported inside a #[monitored] function",
    label = "`?` here",
    note = "inside #[monitored] functions `?` works on `Result`, `Option` and `Poll<Result>`; \
            match on this value instead"
)]
pub trait Try {
    type Output;
    type Residual;
    fn __monitor_branch(self) -> ControlFlow<Self::Residual, Self::Output>;
}

/// Builds the early-return value from a `?` residual, converting errors with `From`.
#[diagnostic::on_unimplemented(
    message = "`?` cannot return its residual as `{Self}` from a #[monitored] function",
    label = "`?` here",
    note = "inside #[monitored] functions `?` returns through `Result`, `Option` or \
            `Poll<Result>`"
)]
pub trait FromResidual<R> {
    fn __monitor_from_residual(residual: R) -> Self;
}

impl<T, E> Try for Result<T, E> {
    type Output = T;
    type Residual = Result<Infallible, E>;
    #[inline(always)]
    fn __monitor_branch(self) -> ControlFlow<Self::Residual, T> {
        match self {
            Ok(v) => ControlFlow::Continue(v),
            Err(e) => ControlFlow::Break(Err(e)),
        }
    }
}

impl<T> Try for Option<T> {
    type Output = T;
    type Residual = Option<Infallible>;
    #[inline(always)]
    fn __monitor_branch(self) -> ControlFlow<Self::Residual, T> {
        match self {
            Some(v) => ControlFlow::Continue(v),
            None => ControlFlow::Break(None),
        }
    }
}

impl<T, E> Try for Poll<Result<T, E>> {
    type Output = Poll<T>;
    type Residual = Result<Infallible, E>;
    #[inline(always)]
    fn __monitor_branch(self) -> ControlFlow<Self::Residual, Poll<T>> {
        match self {
            Poll::Ready(Ok(v)) => ControlFlow::Continue(Poll::Ready(v)),
            Poll::Ready(Err(e)) => ControlFlow::Break(Err(e)),
            Poll::Pending => ControlFlow::Continue(Poll::Pending),
        }
    }
}

impl<T, E> Try for Poll<Option<Result<T, E>>> {
    type Output = Poll<Option<T>>;
    type Residual = Result<Infallible, E>;
    #[inline(always)]
    fn __monitor_branch(self) -> ControlFlow<Self::Residual, Poll<Option<T>>> {
        match self {
            Poll::Ready(Some(Ok(v))) => ControlFlow::Continue(Poll::Ready(Some(v))),
            Poll::Ready(Some(Err(e))) => ControlFlow::Break(Err(e)),
            Poll::Ready(None) => ControlFlow::Continue(Poll::Ready(None)),
            Poll::Pending => ControlFlow::Continue(Poll::Pending),
        }
    }
}

impl<T, E, F: From<E>> FromResidual<Result<Infallible, E>> for Result<T, F> {
    #[inline(always)]
    fn __monitor_from_residual(residual: Result<Infallible, E>) -> Self {
        match residual {
            Err(e) => Err(From::from(e)),
            Ok(never) => match never {},
        }
    }
}

impl<T> FromResidual<Option<Infallible>> for Option<T> {
    #[inline(always)]
    fn __monitor_from_residual(_: Option<Infallible>) -> Self {
        None
    }
}

impl<T, E, F: From<E>> FromResidual<Result<Infallible, E>> for Poll<Result<T, F>> {
    #[inline(always)]
    fn __monitor_from_residual(residual: Result<Infallible, E>) -> Self {
        Poll::Ready(Result::__monitor_from_residual(residual))
    }
}

impl<T, E, F: From<E>> FromResidual<Result<Infallible, E>> for Poll<Option<Result<T, F>>> {
    #[inline(always)]
    fn __monitor_from_residual(residual: Result<Infallible, E>) -> Self {
        Poll::Ready(Some(Result::__monitor_from_residual(residual)))
    }
}
