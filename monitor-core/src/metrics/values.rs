//! The value distributions: integers, floats, booleans and durations, with their counts,
//! sums, extremes, most recent value and quantiles.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::counters::{all_octaves, Times, WideSum};
use crate::histogram::{
    float_index, float_range, AtomicHistogram, Lane, LastChunk, OwnChunks, F_BUCKETS,
};
use crate::snapshot::{Distribution, Values};

/// An exact sum of `i64`s: a carry word counts wraps of the low word, both ways.
#[derive(Default)]
struct SignedSum {
    low: AtomicU64,
    high: AtomicI64,
}

impl SignedSum {
    #[inline]
    fn add(&self, v: i64) {
        let u = v as u64;
        let prev = self.low.fetch_add(u, Relaxed);
        let carry = i64::from(prev.checked_add(u).is_none()) - i64::from(v < 0);
        if carry != 0 {
            self.high.fetch_add(carry, Relaxed);
        }
    }

    fn get(&self) -> i128 {
        (i128::from(self.high.load(Relaxed)) << 64) + i128::from(self.low.load(Relaxed))
    }
}

/// A distribution of numbers: what [`IntVal`] and [`FloatVal`] share.
struct ValInner {
    hist: AtomicHistogram,
    count: AtomicU64,
    float_sum: AtomicU64,
    int_sum: SignedSum,
    min: AtomicU64,
    max: AtomicU64,
    recent: AtomicU64,
}

fn f64_update(cell: &AtomicU64, v: f64, better: impl Fn(f64, f64) -> bool) {
    let mut cur = cell.load(Relaxed);
    while better(v, f64::from_bits(cur)) {
        match cell.compare_exchange_weak(cur, v.to_bits(), Relaxed, Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
}

impl ValInner {
    fn new() -> Self {
        ValInner {
            hist: AtomicHistogram::with_buckets(F_BUCKETS),
            count: AtomicU64::new(0),
            float_sum: AtomicU64::new(0f64.to_bits()),
            int_sum: SignedSum::default(),
            min: AtomicU64::new(f64::INFINITY.to_bits()),
            max: AtomicU64::new(f64::NEG_INFINITY.to_bits()),
            recent: AtomicU64::new(0f64.to_bits()),
        }
    }

    #[inline]
    fn observe(&self, v: f64) {
        self.hist.record_index(float_index(v));
        self.count.fetch_add(1, Relaxed);
        f64_update(&self.min, v, |new, cur| new < cur);
        f64_update(&self.max, v, |new, cur| new > cur);
        self.recent.store(v.to_bits(), Relaxed);
    }

    fn read(&self, int: bool) -> Values {
        let count = self.count.load(Relaxed);
        if count == 0 {
            return Values::default();
        }
        let sum = if int {
            self.int_sum.get() as f64
        } else {
            f64::from_bits(self.float_sum.load(Relaxed))
        };
        let buckets = self
            .hist
            .read()
            .into_iter()
            .map(|(i, n)| {
                let (lo, hi) = float_range(i);
                if int {
                    // The integers the bucket can hold, as inclusive bounds, so that small
                    // integers come back exact: positive buckets hold [lo, hi), negative ones
                    // (lo, hi], the zero bucket only 0.
                    let (a, b) = if lo >= 0.0 {
                        (lo.ceil(), hi.ceil() - 1.0)
                    } else if hi <= 0.0 && lo < -1.0 {
                        (lo.floor() + 1.0, hi.floor())
                    } else {
                        (0.0, 0.0)
                    };
                    (a, b.max(a), n)
                } else {
                    (lo, hi, n)
                }
            })
            .collect();
        Values {
            count,
            sum,
            min: f64::from_bits(self.min.load(Relaxed)),
            max: f64::from_bits(self.max.load(Relaxed)),
            recent: f64::from_bits(self.recent.load(Relaxed)),
            buckets,
        }
    }
}

/// A distribution of integers — batch sizes, response bytes: count, exact sum, min, max,
/// average, most recent and quantiles (within 1%), from the same lock-free log-linear histogram
/// as function times. Holds a 32 KiB histogram.
///
/// ```
/// let v = monitor_core::IntVal::new();
/// for n in [3, 5, -2] {
///     v.observe(n);
/// }
/// let s = v.stats();
/// assert_eq!((s.count, s.sum, s.min, s.max), (3, 6.0, -2.0, 5.0));
/// ```
#[derive(Clone)]
#[must_use = "a distribution records only through its handle"]
pub struct IntVal(Arc<ValInner>);

impl Default for IntVal {
    fn default() -> Self {
        IntVal::new()
    }
}

impl IntVal {
    /// An empty distribution, not registered in any scope (see [`Scope::int_val`](crate::Scope::int_val)).
    ///
    /// ```
    /// assert_eq!(monitor_core::IntVal::new().stats().count, 0);
    /// ```
    pub fn new() -> IntVal {
        IntVal(Arc::new(ValInner::new()))
    }

    /// Records one value.
    ///
    /// ```
    /// let v = monitor_core::IntVal::new();
    /// v.observe(7);
    /// assert_eq!(v.stats().recent, 7.0);
    /// ```
    #[inline]
    pub fn observe(&self, v: i64) {
        self.0.int_sum.add(v);
        self.0.observe(v as f64);
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::IntVal::new().stats().avg(), 0.0);
    /// ```
    pub fn stats(&self) -> Values {
        self.0.read(true)
    }
}

impl fmt::Debug for IntVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IntVal(count: {})", self.0.count.load(Relaxed))
    }
}

/// A distribution of floating-point numbers — ratios, load: like [`IntVal`]; NaN and infinite
/// values are ignored, and magnitudes below 2⁻²⁰ share the zero bucket.
///
/// ```
/// let v = monitor_core::FloatVal::new();
/// v.observe(0.5);
/// v.observe(f64::NAN);
/// assert_eq!(v.stats().count, 1);
/// ```
#[derive(Clone)]
#[must_use = "a distribution records only through its handle"]
pub struct FloatVal(Arc<ValInner>);

impl Default for FloatVal {
    fn default() -> Self {
        FloatVal::new()
    }
}

impl FloatVal {
    /// An empty distribution, not registered in any scope (see [`Scope::float_val`](crate::Scope::float_val)).
    ///
    /// ```
    /// assert_eq!(monitor_core::FloatVal::new().stats().count, 0);
    /// ```
    pub fn new() -> FloatVal {
        FloatVal(Arc::new(ValInner::new()))
    }

    /// Records one value (NaN and infinities are ignored).
    ///
    /// ```
    /// let v = monitor_core::FloatVal::new();
    /// v.observe(2.5);
    /// assert_eq!(v.stats().max, 2.5);
    /// ```
    #[inline]
    pub fn observe(&self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let mut cur = self.0.float_sum.load(Relaxed);
        loop {
            let next = (f64::from_bits(cur) + v).to_bits();
            match self.0.float_sum.compare_exchange_weak(cur, next, Relaxed, Relaxed) {
                Ok(_) => break,
                Err(actual) => cur = actual,
            }
        }
        self.0.observe(v);
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::FloatVal::new().stats().quantile(0.5), 0.0);
    /// ```
    pub fn stats(&self) -> Values {
        self.0.read(false)
    }
}

impl fmt::Debug for FloatVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FloatVal(count: {})", self.0.count.load(Relaxed))
    }
}

/// A tally of yes/no outcomes — cache hits: trues, falses, the most recent, and the
/// disposition (trues − falses).
///
/// ```
/// let hits = monitor_core::BoolVal::new();
/// hits.observe(true);
/// hits.observe(true);
/// hits.observe(false);
/// assert_eq!((hits.trues(), hits.falses(), hits.recent()), (2, 1, Some(false)));
/// ```
#[derive(Clone, Default)]
#[must_use = "a tally records only through its handle"]
pub struct BoolVal(Arc<BoolInner>);

#[derive(Default)]
struct BoolInner {
    trues: AtomicU64,
    falses: AtomicU64,
    /// 0: nothing yet, 1: false, 2: true.
    recent: AtomicU8,
}

impl BoolVal {
    /// An empty tally, not registered in any scope (see [`Scope::bool_val`](crate::Scope::bool_val)).
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().recent(), None);
    /// ```
    pub fn new() -> BoolVal {
        BoolVal::default()
    }

    /// Records one outcome.
    ///
    /// ```
    /// let b = monitor_core::BoolVal::new();
    /// b.observe(true);
    /// assert_eq!(b.trues(), 1);
    /// ```
    #[inline]
    pub fn observe(&self, v: bool) {
        if v {
            self.0.trues.fetch_add(1, Relaxed);
        } else {
            self.0.falses.fetch_add(1, Relaxed);
        }
        self.0.recent.store(1 + u8::from(v), Relaxed);
    }

    /// How many were true.
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().trues(), 0);
    /// ```
    pub fn trues(&self) -> u64 {
        self.0.trues.load(Relaxed)
    }

    /// How many were false.
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().falses(), 0);
    /// ```
    pub fn falses(&self) -> u64 {
        self.0.falses.load(Relaxed)
    }

    /// The most recent outcome.
    ///
    /// ```
    /// assert_eq!(monitor_core::BoolVal::new().recent(), None);
    /// ```
    pub fn recent(&self) -> Option<bool> {
        match self.0.recent.load(Relaxed) {
            1 => Some(false),
            2 => Some(true),
            _ => None,
        }
    }
}

impl fmt::Debug for BoolVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BoolVal(true: {}, false: {})", self.trues(), self.falses())
    }
}

/// A distribution of durations — queue waits: the same statistics and histogram as a
/// monitored function's times.
///
/// ```
/// use std::time::Duration;
/// let v = monitor_core::DurationVal::new();
/// v.observe(Duration::from_millis(2));
/// assert_eq!(v.stats().max_ns, 2_000_000);
/// ```
#[derive(Clone)]
#[must_use = "a distribution records only through its handle"]
pub struct DurationVal(Arc<DurationInner>);

struct DurationInner {
    chunks: OwnChunks,
    lane: Lane,
    last: LastChunk,
    times: Times,
    count: AtomicU64,
    sum: WideSum,
    recent: AtomicU64,
}

impl Default for DurationVal {
    fn default() -> Self {
        DurationVal::new()
    }
}

impl DurationVal {
    /// An empty distribution, not registered in any scope (see [`Scope::duration_val`](crate::Scope::duration_val)).
    ///
    /// ```
    /// assert_eq!(monitor_core::DurationVal::new().stats().count, 0);
    /// ```
    pub fn new() -> DurationVal {
        DurationVal(Arc::new(DurationInner {
            chunks: all_octaves(),
            lane: Lane::new(),
            last: LastChunk::default(),
            times: Times::new(),
            count: AtomicU64::new(0),
            sum: WideSum::default(),
            recent: AtomicU64::new(0),
        }))
    }

    /// Records one duration.
    ///
    /// ```
    /// let v = monitor_core::DurationVal::new();
    /// v.observe(std::time::Duration::from_micros(5));
    /// assert_eq!(v.stats().count, 1);
    /// ```
    #[inline]
    pub fn observe(&self, d: Duration) {
        self.observe_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    #[inline]
    pub(super) fn observe_nanos(&self, ns: u64) {
        let inner = &self.0;
        inner.times.record(ns, &inner.chunks, &inner.lane, Some(&inner.last), &inner.lane, false);
        inner.sum.add(ns, false);
        inner.recent.store(ns, Relaxed);
        inner.count.fetch_add(1, Relaxed);
    }

    /// What it has recorded.
    ///
    /// ```
    /// assert_eq!(monitor_core::DurationVal::new().stats().quantile(0.9), 0);
    /// ```
    pub fn stats(&self) -> Distribution {
        let inner = &self.0;
        inner.times.distribution(
            &inner.chunks,
            &inner.lane,
            inner.count.load(Relaxed),
            inner.sum.get(),
            inner.recent.load(Relaxed),
        )
    }
}

impl fmt::Debug for DurationVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurationVal(count: {})", self.0.count.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Counter;
    use super::*;
    #[test]
    fn signed_sum_is_exact() {
        let s = SignedSum::default();
        for v in [i64::MAX, i64::MAX, -1, i64::MIN, 5] {
            s.add(v);
        }
        let want = i128::from(i64::MAX) * 2 - 1 + i128::from(i64::MIN) + 5;
        assert_eq!(s.get(), want);
    }

    #[test]
    fn counters_and_vals_mt_are_exact() {
        let c = Counter::new();
        let v = IntVal::new();
        let f = FloatVal::new();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let (c, v, f) = (c.clone(), v.clone(), f.clone());
                std::thread::spawn(move || {
                    for i in 0..10_000i64 {
                        c.inc();
                        v.observe(i - 5_000 + t);
                        f.observe(0.5);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!((c.value(), c.high(), c.low()), (40_000, 40_000, 0));
        let s = v.stats();
        assert_eq!(s.count, 40_000);
        assert_eq!(
            s.sum,
            (0..4).map(|t| (0..10_000i64).map(|i| i - 5_000 + t).sum::<i64>()).sum::<i64>() as f64
        );
        assert_eq!((s.min, s.max), (-5_000.0, 4_999.0 + 3.0));
        assert_eq!(f.stats().sum, 20_000.0);
    }
}
