//! Counters: a value that goes up and down, with its high and low.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::Arc;

/// A value that goes up and down: open connections, queue depth. Tracks its highest and
/// lowest values since it was created at zero (so never NaN, unlike a mean of nothing).
///
/// ```
/// let c = monitor_core::Counter::new();
/// c.add(5);
/// c.dec();
/// c.set(-2);
/// assert_eq!((c.value(), c.high(), c.low()), (-2, 5, -2));
/// ```
#[derive(Clone, Default)]
#[must_use = "a counter counts only through its handle"]
pub struct Counter(Arc<CounterInner>);

#[derive(Default)]
struct CounterInner {
    value: AtomicI64,
    high: AtomicI64,
    low: AtomicI64,
}

impl Counter {
    /// A counter at zero, not registered in any scope (see [`Scope::counter`](crate::Scope::counter)).
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().value(), 0);
    /// ```
    pub fn new() -> Counter {
        Counter::default()
    }

    /// Adds one.
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.inc();
    /// assert_eq!(c.value(), 1);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// Subtracts one.
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.dec();
    /// assert_eq!(c.value(), -1);
    /// ```
    #[inline]
    pub fn dec(&self) {
        self.add(-1);
    }

    /// Adds `n` (which may be negative).
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.add(-3);
    /// assert_eq!(c.low(), -3);
    /// ```
    #[inline]
    pub fn add(&self, n: i64) {
        let now = self.0.value.fetch_add(n, Relaxed).wrapping_add(n);
        self.0.seen(now);
    }

    /// Sets the value.
    ///
    /// ```
    /// let c = monitor_core::Counter::new();
    /// c.set(10);
    /// assert_eq!(c.high(), 10);
    /// ```
    #[inline]
    pub fn set(&self, v: i64) {
        self.0.value.store(v, Relaxed);
        self.0.seen(v);
    }

    /// The current value.
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().value(), 0);
    /// ```
    pub fn value(&self) -> i64 {
        self.0.value.load(Relaxed)
    }

    /// The highest value it has had.
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().high(), 0);
    /// ```
    pub fn high(&self) -> i64 {
        self.0.high.load(Relaxed)
    }

    /// The lowest value it has had.
    ///
    /// ```
    /// assert_eq!(monitor_core::Counter::new().low(), 0);
    /// ```
    pub fn low(&self) -> i64 {
        self.0.low.load(Relaxed)
    }
}

impl CounterInner {
    #[inline]
    fn seen(&self, v: i64) {
        // Every value the counter takes is seen by the one thread that produced it, so the
        // extremes are exact; the loads keep the common case free of read-modify-writes.
        if v > self.high.load(Relaxed) {
            self.high.fetch_max(v, Relaxed);
        }
        if v < self.low.load(Relaxed) {
            self.low.fetch_min(v, Relaxed);
        }
    }
}

impl fmt::Debug for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counter({})", self.value())
    }
}
