//! Meters and events: totals with their rate per second over the last minute.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::registry::sample_meters;

/// How far back a meter's rate looks.
///
/// ```
/// assert_eq!(monitor_core::RATE_WINDOW.as_secs(), 60);
/// ```
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Counts things that happen — bytes sent, requests — with their total and their recent rate
/// per second.
///
/// The rate is over the last minute ([`RATE_WINDOW`]), from samples of the total that the
/// background collector takes every few seconds (and every read takes): a meter younger than
/// the window is measured over its age, and an idle meter's rate falls to zero once its last
/// marks leave the window. Marking is one relaxed `fetch_add`.
///
/// ```
/// let m = monitor_core::Meter::new();
/// m.mark(10);
/// assert_eq!(m.total(), 10);
/// assert!(m.rate() >= 0.0);
/// ```
#[derive(Clone)]
#[must_use = "a meter counts only through its handle"]
pub struct Meter(Arc<MeterInner>);

struct MeterInner {
    total: AtomicU64,
    /// `(when, total then)`, oldest first; the first is at or before the window's start.
    samples: Mutex<VecDeque<(Instant, u64)>>,
}

impl Default for Meter {
    fn default() -> Self {
        Meter::new()
    }
}

impl Meter {
    /// A meter at zero, not registered in any scope (see [`Scope::meter`](crate::Scope::meter)).
    ///
    /// ```
    /// assert_eq!(monitor_core::Meter::new().total(), 0);
    /// ```
    pub fn new() -> Meter {
        Self::new_at(Instant::now())
    }

    fn new_at(now: Instant) -> Meter {
        crate::collector::add_sampler("meters", sample_meters);
        Meter(Arc::new(MeterInner {
            total: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::from([(now, 0)])),
        }))
    }

    /// Counts `n` more.
    ///
    /// ```
    /// let m = monitor_core::Meter::new();
    /// m.mark(3);
    /// assert_eq!(m.total(), 3);
    /// ```
    #[inline]
    pub fn mark(&self, n: u64) {
        self.0.total.fetch_add(n, Relaxed);
    }

    /// Everything counted so far.
    ///
    /// ```
    /// assert_eq!(monitor_core::Meter::new().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.0.total.load(Relaxed)
    }

    /// Per second, over the last [`RATE_WINDOW`] (or the meter's age, if younger).
    ///
    /// ```
    /// assert_eq!(monitor_core::Meter::new().rate(), 0.0);
    /// ```
    pub fn rate(&self) -> f64 {
        self.rate_at(Instant::now())
    }

    /// Records a sample of the total at `now` (at most one a second), dropping those no
    /// longer needed.
    pub(crate) fn sample_at(&self, now: Instant) {
        let total = self.total();
        let mut samples = self.0.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let due = samples
            .back()
            .is_none_or(|(t, _)| now.saturating_duration_since(*t) >= Duration::from_secs(1));
        if due {
            samples.push_back((now, total));
        }
        if let Some(start) = now.checked_sub(RATE_WINDOW) {
            while samples.len() >= 2 && samples[1].0 <= start {
                samples.pop_front();
            }
        }
    }

    pub(crate) fn rate_at(&self, now: Instant) -> f64 {
        self.sample_at(now);
        let total = self.total();
        let samples = self.0.samples.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(&(since, then)) = samples.front() else { return 0.0 };
        let secs = now.saturating_duration_since(since).as_secs_f64();
        if secs <= 0.0 {
            0.0
        } else {
            total.saturating_sub(then) as f64 / secs
        }
    }
}

impl fmt::Debug for Meter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Meter(total: {})", self.total())
    }
}

/// Something that happens, counted one at a time: a [`Meter`] marked by one.
///
/// ```
/// let e = monitor_core::Event::new();
/// e.mark();
/// e.mark();
/// assert_eq!(e.total(), 2);
/// ```
#[derive(Clone, Default, Debug)]
#[must_use = "an event counts only through its handle"]
pub struct Event(pub(super) Meter);

impl Event {
    /// An event at zero, not registered in any scope (see [`Scope::event`](crate::Scope::event)).
    ///
    /// ```
    /// assert_eq!(monitor_core::Event::new().total(), 0);
    /// ```
    pub fn new() -> Event {
        Event(Meter::new())
    }

    /// Counts one occurrence.
    ///
    /// ```
    /// let e = monitor_core::Event::new();
    /// e.mark();
    /// assert_eq!(e.total(), 1);
    /// ```
    #[inline]
    pub fn mark(&self) {
        self.0.mark(1);
    }

    /// Occurrences so far.
    ///
    /// ```
    /// assert_eq!(monitor_core::Event::new().total(), 0);
    /// ```
    pub fn total(&self) -> u64 {
        self.0.total()
    }

    /// Occurrences per second over the last [`RATE_WINDOW`].
    ///
    /// ```
    /// assert_eq!(monitor_core::Event::new().rate(), 0.0);
    /// ```
    pub fn rate(&self) -> f64 {
        self.0.rate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meter_rate_over_a_controlled_clock() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let m = Meter::new_at(t0);
        assert_eq!(m.rate_at(t0), 0.0, "a new meter has no rate, and no NaN");
        m.mark(100);
        // Younger than the window: measured over its age.
        assert_eq!(m.rate_at(at(10)), 10.0);
        // Steady 10/s for a while, sampled every 5 s as the collector does.
        for s in (15..=120).step_by(5) {
            m.mark(50);
            m.sample_at(at(s));
        }
        let r = m.rate_at(at(120));
        assert!((r - 10.0).abs() < 0.5, "steady rate {r}");
        // Idle: falls to zero once the marks leave the window.
        for s in (125..=200).step_by(5) {
            m.sample_at(at(s));
        }
        assert_eq!(m.rate_at(at(200)), 0.0);
        assert_eq!(m.total(), 100 + 22 * 50);
        assert!(m.0.samples.lock().unwrap().len() <= 14, "history stays bounded");
    }
}
