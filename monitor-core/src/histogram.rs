//! A lock-free log-linear histogram of durations in nanoseconds.
//!
//! Values below 64 get a bucket each; above that, every power of two is split into 64 equal
//! buckets (HDR-style), so a bucket is at most 1/64 of its lower bound wide and reporting its
//! midpoint is off by at most 1/128 (< 0.8%) of the true value. Values from 2^40 ns (about 18
//! minutes) up share the last bucket; the exact maximum is kept beside the histogram, so the top
//! quantiles of such calls are still clamped to a real value.
//!
//! Buckets are `AtomicU32` to keep a histogram at 8.75 KiB. A bucket that passes 2^31 makes one
//! thread halve every bucket (rounding up, so no bucket that saw a value goes back to zero): the
//! shape, and so every quantile, survives, while exact counts and sums are kept elsewhere.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::Relaxed};

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const MAX_EXP: u32 = 40;
/// Number of buckets in a histogram.
pub(crate) const BUCKETS: usize = SUB + (MAX_EXP - SUB_BITS) as usize * SUB;
const HALVE_AT: u32 = 1 << 31;

/// The bucket a value falls in.
#[inline]
pub(crate) fn bucket_index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    if exp >= MAX_EXP {
        return BUCKETS - 1;
    }
    // The top SUB_BITS + 1 bits of v, less the leading one: 0..SUB.
    let sub = (v >> (exp - SUB_BITS)) as usize - SUB;
    (exp - SUB_BITS + 1) as usize * SUB + sub
}

/// The values `[low, high)` that land in bucket `i`.
pub(crate) fn bucket_range(i: usize) -> (u64, u64) {
    if i < SUB {
        return (i as u64, i as u64 + 1);
    }
    let shift = (i / SUB) as u32 - 1;
    let sub = (i % SUB) as u64;
    ((SUB as u64 + sub) << shift, (SUB as u64 + sub + 1) << shift)
}

/// Values of a float histogram below this magnitude share the zero bucket.
const F_MIN_EXP: i32 = -20;
/// Values of a float histogram from this magnitude up share the outermost buckets.
const F_MAX_EXP: i32 = 44;
const F_HALF: usize = (F_MAX_EXP - F_MIN_EXP) as usize * SUB;
/// Buckets of a float histogram: negatives, zero, positives.
pub(crate) const F_BUCKETS: usize = 2 * F_HALF + 1;

/// The bucket of a magnitude `m` (> 0), within one half.
fn float_magnitude_index(m: f64) -> usize {
    let bits = m.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    if exp >= F_MAX_EXP {
        return F_HALF - 1;
    }
    // The top SUB_BITS bits of the mantissa pick the sub-bucket.
    let sub = ((bits >> (52 - SUB_BITS)) & (SUB as u64 - 1)) as usize;
    (exp - F_MIN_EXP) as usize * SUB + sub
}

/// The bucket of a finite value in a float histogram: monotone in the value.
#[inline]
pub(crate) fn float_index(v: f64) -> usize {
    let zero = f64::powi(2.0, F_MIN_EXP);
    if v >= zero {
        F_HALF + 1 + float_magnitude_index(v)
    } else if v <= -zero {
        F_HALF - 1 - float_magnitude_index(-v)
    } else {
        F_HALF
    }
}

/// The values `[low, high)` of bucket `i` of a float histogram.
pub(crate) fn float_range(i: usize) -> (f64, f64) {
    let magnitude = |j: usize| {
        let exp = (j / SUB) as i32 + F_MIN_EXP;
        let sub = (j % SUB) as f64;
        let base = f64::powi(2.0, exp);
        (base * (1.0 + sub / SUB as f64), base * (1.0 + (sub + 1.0) / SUB as f64))
    };
    let zero = f64::powi(2.0, F_MIN_EXP);
    match i.cmp(&F_HALF) {
        std::cmp::Ordering::Equal => (-zero, zero),
        std::cmp::Ordering::Greater => magnitude(i - F_HALF - 1),
        std::cmp::Ordering::Less => {
            let (lo, hi) = magnitude(F_HALF - 1 - i);
            (-hi, -lo)
        }
    }
}

/// Fixed buckets written with relaxed `fetch_add`: no lock, no allocation after construction.
pub(crate) struct AtomicHistogram {
    buckets: Box<[AtomicU32]>,
    halving: AtomicBool,
}

impl AtomicHistogram {
    /// A histogram of durations in nanoseconds ([`bucket_index`]).
    pub(crate) fn new() -> Self {
        Self::with_buckets(BUCKETS)
    }

    /// A histogram with `n` buckets, indexed by the caller.
    pub(crate) fn with_buckets(n: usize) -> Self {
        Self {
            buckets: (0..n).map(|_| AtomicU32::new(0)).collect(),
            halving: AtomicBool::new(false),
        }
    }

    #[inline]
    pub(crate) fn record(&self, v: u64) {
        self.record_index(bucket_index(v));
    }

    /// Counts one value in bucket `i` (ignored if out of range).
    #[inline]
    pub(crate) fn record_index(&self, i: usize) {
        let Some(bucket) = self.buckets.get(i) else { return };
        // Relaxed: a bucket count is a statistic read at snapshot time; no other memory is
        // published through it.
        let prev = bucket.fetch_add(1, Relaxed);
        if prev >= HALVE_AT {
            self.halve();
        }
    }

    #[cold]
    #[inline(never)]
    fn halve(&self) {
        // One thread halves; the others carry on recording. A bucket keeps 2^31 of headroom, far
        // more than can arrive while one pass over the buckets runs.
        if self.halving.swap(true, Relaxed) {
            return;
        }
        for b in self.buckets.iter() {
            let _ = b.fetch_update(Relaxed, Relaxed, |x| Some(x - x / 2));
        }
        self.halving.store(false, Relaxed);
    }

    /// The non-empty buckets as `(index, count)`.
    pub(crate) fn read(&self) -> Vec<(usize, u64)> {
        self.buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| match b.load(Relaxed) {
                0 => None,
                n => Some((i, u64::from(n))),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn index_and_range_agree() {
        let mut v = 0u64;
        while v < (1 << 41) {
            let i = bucket_index(v);
            let (lo, hi) = bucket_range(i);
            if i < BUCKETS - 1 {
                assert!(lo <= v && v < hi, "v={v} i={i} [{lo},{hi})");
                // Width bound that gives the < 1% error.
                assert!((hi - lo) * 64 <= lo.max(64), "bucket {i} too wide: [{lo},{hi})");
            } else {
                assert!(v >= lo);
            }
            v = v * 17 / 16 + 1;
        }
        assert_eq!(bucket_index(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_range(BUCKETS - 1).1, 1 << MAX_EXP);
    }

    #[test]
    fn buckets_are_contiguous() {
        for i in 1..BUCKETS {
            assert_eq!(bucket_range(i - 1).1, bucket_range(i).0, "gap before bucket {i}");
        }
    }

    #[test]
    fn float_index_is_monotone_and_ranges_agree() {
        let mut values = vec![0.0, 1e-9, -1e-9, 1e-6, -1e-6, 1e20, -1e20];
        let mut v = 1e-6;
        while v < 1e13 {
            values.push(v);
            values.push(-v);
            v *= 1.013;
        }
        values.sort_by(f64::total_cmp);
        let idx: Vec<usize> = values.iter().map(|&v| float_index(v)).collect();
        assert!(idx.windows(2).all(|w| w[0] <= w[1]));
        assert!(idx.iter().all(|&i| i < F_BUCKETS));
        for (&v, &i) in values.iter().zip(&idx) {
            let (lo, hi) = float_range(i);
            if i != 0 && i != F_BUCKETS - 1 {
                assert!(
                    lo <= v && v < hi || (v < 0.0 && lo < v && v <= hi),
                    "v={v} i={i} [{lo},{hi})"
                );
                if i != F_HALF {
                    assert!(
                        (hi - lo).abs() <= lo.abs().min(hi.abs()) / 63.9,
                        "bucket {i} too wide"
                    );
                }
            }
        }
    }

    #[test]
    fn halving_keeps_shape() {
        let h = AtomicHistogram::new();
        h.buckets[bucket_index(100)].store(HALVE_AT, Relaxed);
        h.buckets[bucket_index(5000)].store(3, Relaxed);
        h.record(100);
        let read = h.read();
        assert_eq!(
            read,
            vec![(bucket_index(100), u64::from(HALVE_AT / 2 + 1)), (bucket_index(5000), 2)]
        );
    }

    #[test]
    fn record_mt_is_exact() {
        let h = Arc::new(AtomicHistogram::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..50_000u64 {
                        h.record(i % 1000 + t);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let total: u64 = h.read().iter().map(|(_, c)| c).sum();
        assert_eq!(total, 200_000);
    }
}
