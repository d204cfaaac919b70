//! Timers: a duration distribution fed by a guard that records once, when stopped or dropped.

use std::fmt;
use std::time::Duration;

use super::DurationVal;
use crate::clock;
use crate::snapshot::Distribution;

/// Times pieces of code: [`Timer::start`] returns a guard that records the elapsed time once,
/// when stopped or dropped, into a [`DurationVal`]-like distribution.
///
/// ```
/// let t = monitor_core::Timer::new();
/// {
///     let _running = t.start();
///     // ... the timed work ...
/// }
/// let elapsed = t.start().stop();
/// assert_eq!(t.stats().count, 2);
/// assert!(elapsed.as_nanos() > 0 || elapsed.is_zero());
/// ```
#[derive(Clone, Default, Debug)]
#[must_use = "a timer records only through its handle"]
pub struct Timer(DurationVal);

impl Timer {
    /// A timer with nothing recorded, not registered in any scope (see [`Scope::timer`](crate::Scope::timer)).
    ///
    /// ```
    /// assert_eq!(monitor_core::Timer::new().stats().count, 0);
    /// ```
    pub fn new() -> Timer {
        Timer(DurationVal::new())
    }

    /// Starts timing.
    ///
    /// ```
    /// let t = monitor_core::Timer::new();
    /// t.start().stop();
    /// ```
    #[inline]
    pub fn start(&self) -> TimerGuard<'_> {
        TimerGuard { timer: self, start: clock::now(), done: false }
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::Timer::new().stats().count, 0);
    /// ```
    pub fn stats(&self) -> Distribution {
        self.0.stats()
    }
}

/// A running [`Timer`] measurement: records once, at [`TimerGuard::stop`] or when dropped.
///
/// ```
/// let t = monitor_core::Timer::new();
/// let g = t.start();
/// drop(g);
/// assert_eq!(t.stats().count, 1);
/// ```
#[must_use = "dropping the guard right away records a zero-length time"]
pub struct TimerGuard<'a> {
    timer: &'a Timer,
    start: u64,
    done: bool,
}

impl TimerGuard<'_> {
    /// Stops timing, records, and returns the elapsed time.
    ///
    /// ```
    /// let t = monitor_core::Timer::new();
    /// let took = t.start().stop();
    /// assert!(took < std::time::Duration::from_secs(60));
    /// ```
    pub fn stop(mut self) -> Duration {
        self.record()
    }

    fn record(&mut self) -> Duration {
        let ns = clock::nanos_between(self.start, clock::now());
        if !self.done {
            self.done = true;
            self.timer.0.observe_nanos(ns);
        }
        Duration::from_nanos(ns)
    }
}

impl Drop for TimerGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.record();
        }
    }
}

impl fmt::Debug for TimerGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimerGuard").field("done", &self.done).finish_non_exhaustive()
    }
}
