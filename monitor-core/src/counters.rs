//! General counters: a sum that cannot overflow, a most recent value with its time, and a
//! duration histogram with its exact extremes. Depend on the histogram alone.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::histogram::{Chunks, Lane, Lanes, LastChunk, OctaveMap, OwnChunks, SLOTS};
use crate::snapshot::Distribution;

/// Chunks for every octave of a histogram of its own ([`crate::DurationVal`]): each keeps 1%.
pub(crate) fn all_octaves() -> OwnChunks {
    OwnChunks::new(SLOTS)
}

/// A sum of nanoseconds that cannot overflow: a carry word counts wraps of the low word.
#[derive(Default)]
pub(crate) struct WideSum {
    low: AtomicU64,
    high: AtomicU64,
}

/// Adds `n` to `counter`: with `sole` (the calling thread is the counter's only writer) a
/// plain load and store, else a locked read-modify-write. Readers load either alike.
#[inline(always)]
pub(crate) fn add(counter: &AtomicU64, n: u64, sole: bool) {
    if sole {
        counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
    } else {
        counter.fetch_add(n, Relaxed);
    }
}

impl WideSum {
    /// Adds `v`; `sole` as for [`add`].
    #[inline]
    pub(crate) fn add(&self, v: u64, sole: bool) {
        let prev = if sole {
            let prev = self.low.load(Relaxed);
            self.low.store(prev.wrapping_add(v), Relaxed);
            prev
        } else {
            self.low.fetch_add(v, Relaxed)
        };
        if prev.checked_add(v).is_none() {
            add(&self.high, 1, sole);
        }
    }

    pub(crate) fn get(&self) -> u128 {
        (u128::from(self.high.load(Relaxed)) << 64) | u128::from(self.low.load(Relaxed))
    }
}

/// The last value recorded on a stripe, with the clock reading that ended it, so a snapshot can
/// tell which stripe saw the most recent one.
#[derive(Default)]
pub(crate) struct Recent {
    value: AtomicU64,
    at: AtomicU64,
}

impl Recent {
    #[inline]
    pub(crate) fn set(&self, value: u64, at: u64) {
        self.value.store(value, Relaxed);
        self.at.store(at, Relaxed);
    }

    pub(crate) fn get(&self) -> (u64, u64) {
        (self.at.load(Relaxed), self.value.load(Relaxed))
    }
}

/// A duration histogram (octave chunks taken as first reached) with its exact extremes.
pub(crate) struct Times {
    hist: OctaveMap,
    min: AtomicU64,
    max: AtomicU64,
}

impl Times {
    pub(crate) fn new() -> Self {
        Self { hist: OctaveMap::new(), min: AtomicU64::new(u64::MAX), max: AtomicU64::new(0) }
    }

    /// The distribution, given the exact count, sum and most recent value kept elsewhere.
    pub(crate) fn distribution(
        &self,
        chunks: &impl Chunks,
        lanes: &impl Lanes,
        count: u64,
        sum: u128,
        recent: u64,
    ) -> Distribution {
        Distribution::from_parts(
            count,
            sum,
            self.min.load(Relaxed),
            self.max.load(Relaxed),
            recent,
            self.hist.read(chunks, lanes),
        )
    }

    /// Records `ns` through `lane`, one of `lanes`, and `last` if the lane's writers keep one
    /// ([`OctaveMap::record_after`]); `sole` if this thread is the lane's only writer (it owns
    /// the lane's stripe).
    #[inline(always)]
    pub(crate) fn record(
        &self,
        ns: u64,
        chunks: &impl Chunks,
        lane: &Lane,
        last: Option<&LastChunk>,
        lanes: &impl Lanes,
        sole: bool,
    ) {
        match last {
            Some(last) => self.hist.record_after(ns, chunks, lane, last, lanes, sole),
            None => self.hist.record(ns, chunks, lane, lanes, sole),
        }
        // Load first: after warm-up a new extreme is rare, and a load of a line nobody writes
        // stays in this core's cache, where an RMW would take the line away from other cores.
        if ns < self.min.load(Relaxed) {
            self.min.fetch_min(ns, Relaxed);
        }
        if ns > self.max.load(Relaxed) {
            self.max.fetch_max(ns, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_sum_carries() {
        let s = WideSum::default();
        s.add(u64::MAX, false);
        s.add(2, true);
        assert_eq!(s.get(), u128::from(u64::MAX) + 2);
    }
}
