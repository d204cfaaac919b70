//! How a call ended: one type for the classifiers, the counts, the spans and every view.

use std::fmt;

/// How a call ended. A call ends in exactly one of these: its value tells success or an error
/// (what `#[monitored]` works out, and what a [`CallSite::instrument`](crate::CallSite::instrument)
/// classifier answers), a panic is counted while it unwinds, and an async call whose future is
/// dropped unfinished is cancelled.
///
/// A *failure* is every end but success: an error, a panic or a cancellation. The failure
/// latency distribution (`failure_times`) and the kept failed traces take all three.
///
/// ```
/// use monitor_core::Outcome;
/// fn classify(status: &u16) -> Outcome {
///     if *status >= 500 { Outcome::Error("server_error") } else { Outcome::Success }
/// }
/// assert_eq!(classify(&503), Outcome::Error("server_error"));
/// assert!(Outcome::Cancelled.is_failure());
/// assert_eq!(Outcome::Error("NotFound").error_kind(), Some("NotFound"));
/// assert_eq!(Outcome::Panic.to_string(), "panic");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// Returned a success (anything but an error).
    Success,
    /// Returned an error of this kind.
    Error(&'static str),
    /// Panicked.
    Panic,
    /// Dropped before it finished (async).
    Cancelled,
}

impl Outcome {
    /// An error, a panic or a cancellation.
    ///
    /// ```
    /// assert!(!monitor_core::Outcome::Success.is_failure());
    /// ```
    pub fn is_failure(&self) -> bool {
        !matches!(self, Outcome::Success)
    }

    /// The error kind, for errors.
    ///
    /// ```
    /// assert_eq!(monitor_core::Outcome::Panic.error_kind(), None);
    /// ```
    pub fn error_kind(&self) -> Option<&'static str> {
        match self {
            Outcome::Error(k) => Some(k),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Success => "success",
            Outcome::Error(_) => "error",
            Outcome::Panic => "panic",
            Outcome::Cancelled => "cancelled",
        })
    }
}
