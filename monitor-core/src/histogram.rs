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

use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed,
};

const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const MAX_EXP: u32 = 40;
/// Number of buckets in a histogram.
pub(crate) const BUCKETS: usize = SUB + (MAX_EXP - SUB_BITS) as usize * SUB;
const HALVE_AT: u32 = 1 << 31;

/// The bucket a value falls in.
#[inline(always)]
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
    /// A histogram of durations in nanoseconds ([`bucket_index`]), dense (for tests: sites use
    /// [`OctaveMap`]).
    #[cfg(test)]
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

    #[cfg(test)]
    pub(crate) fn record(&self, v: u64) {
        self.record_index(bucket_index(v));
    }

    /// Counts one value in bucket `i` (ignored if out of range).
    #[inline(always)]
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

    /// The non-empty buckets among `start .. start + len`, as `(index - start, count)`.
    fn read_range(&self, start: usize, len: usize) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.buckets.iter().skip(start).take(len).enumerate().filter_map(|(i, b)| {
            match b.load(Relaxed) {
                0 => None,
                n => Some((i, u64::from(n))),
            }
        })
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

/// Octaves of a duration histogram: the first 64 nanoseconds, then one per power of two up to
/// 2^40 ns. Slot `s` holds the buckets `s * 64 .. s * 64 + 64` of [`bucket_index`].
pub(crate) const SLOTS: usize = BUCKETS / SUB;

/// A fixed pool of 64-bucket octave chunks, allocated up front, that [`OctaveMap`]s take from
/// the first time a value lands in an octave. Several histograms may share one pool.
pub(crate) struct ChunkPool {
    next: AtomicUsize,
    chunks: AtomicHistogram,
    size: usize,
}

impl ChunkPool {
    /// A pool of `size` chunks (at most 255).
    pub(crate) fn new(size: usize) -> Self {
        let size = size.min(255);
        Self { next: AtomicUsize::new(0), chunks: AtomicHistogram::with_buckets(size * SUB), size }
    }

    /// The next free chunk, if any.
    fn take(&self) -> Option<usize> {
        let chunk = self.next.fetch_add(1, Relaxed);
        if chunk < self.size {
            Some(chunk)
        } else {
            self.next.store(self.size, Relaxed);
            None
        }
    }
}

/// Which pool chunk holds each octave for one lane of writers: 0 if none yet, else the chunk's
/// index + 1 (a pool holds at most 255 chunks).
///
/// A site gives each of its counter stripes a lane, so threads on different stripes count the
/// same octave in different chunks and never write the same cache line; a snapshot adds the
/// lanes up.
pub(crate) struct Lane([AtomicU8; SLOTS]);

impl Lane {
    pub(crate) fn new() -> Self {
        Self(std::array::from_fn(|_| AtomicU8::new(0)))
    }
}

impl Default for Lane {
    fn default() -> Self {
        Self::new()
    }
}

/// The lanes one histogram is recorded through.
pub(crate) trait Lanes {
    fn count(&self) -> usize;
    fn lane(&self, i: usize) -> &Lane;
}

/// A histogram with one lane, for values that have no stripes ([`crate::DurationVal`]).
impl Lanes for Lane {
    fn count(&self) -> usize {
        1
    }

    fn lane(&self, _: usize) -> &Lane {
        self
    }
}

/// A duration histogram with the layout of [`bucket_index`] whose octaves live in chunks of a
/// [`ChunkPool`], taken on first use per [`Lane`]: recording never allocates, memory follows the
/// octaves in use, and a snapshot reads only those. Once the pool is empty, a lane reaching a
/// new octave shares the chunk another lane holds for it, and only an octave no lane holds is
/// counted per octave and reported with that coarser precision.
pub(crate) struct OctaveMap {
    /// Octaves some lane has a chunk for, one bit each: a read visits only those.
    mapped: AtomicU64,
    /// Values of octaves that found the pool empty and no chunk to share.
    coarse: [AtomicU32; SLOTS],
}

const _: () = assert!(SLOTS <= 64, "one bit per octave in `OctaveMap::mapped`");

impl OctaveMap {
    pub(crate) fn new() -> Self {
        Self { mapped: AtomicU64::new(0), coarse: std::array::from_fn(|_| AtomicU32::new(0)) }
    }

    /// Counts `v` through `lane`, one of `lanes`.
    #[inline(always)]
    pub(crate) fn record(&self, v: u64, pool: &ChunkPool, lane: &Lane, lanes: &impl Lanes) {
        let i = bucket_index(v);
        let (slot, sub) = (i / SUB, i % SUB);
        match lane.0[slot].load(Relaxed) {
            0 => self.record_cold(slot, sub, pool, lane, lanes),
            m => pool.chunks.record_index((usize::from(m) - 1) * SUB + sub),
        }
    }

    #[cold]
    #[inline(never)]
    fn record_cold(
        &self,
        slot: usize,
        sub: usize,
        pool: &ChunkPool,
        lane: &Lane,
        lanes: &dyn Lanes,
    ) {
        match Self::claim(slot, pool, lane, lanes) {
            Some(chunk) => {
                // Set by every lane that maps the octave, after mapping it: a read racing with
                // this misses at most the counts of this instant.
                self.mapped.fetch_or(1 << slot, Relaxed);
                pool.chunks.record_index(chunk * SUB + sub);
            }
            None => {
                self.coarse[slot].fetch_add(1, Relaxed);
            }
        }
    }

    /// Gives `slot` of `lane` a chunk: a new one from the pool, else one another lane holds for
    /// the same octave. Two threads racing for one slot agree on the winner's chunk (the loser's
    /// chunk stays unused).
    fn claim(slot: usize, pool: &ChunkPool, lane: &Lane, lanes: &dyn Lanes) -> Option<usize> {
        let mark = match pool.take() {
            // Chunks are preallocated, zeroed atomics: mapping one publishes no other memory.
            // The pool holds at most 255 chunks, so `chunk + 1` fits.
            Some(chunk) => chunk as u8 + 1,
            None => {
                (0..lanes.count()).map(|i| lanes.lane(i).0[slot].load(Relaxed)).find(|&m| m != 0)?
            }
        };
        match lane.0[slot].compare_exchange(0, mark, Relaxed, Relaxed) {
            Ok(_) => Some(usize::from(mark) - 1),
            Err(m) => Some(usize::from(m) - 1),
        }
    }

    /// The non-empty buckets as `(low, high, count)`, in increasing order of `low`: each chunk
    /// any of `lanes` maps is counted once, however many lanes share it.
    pub(crate) fn read(&self, pool: &ChunkPool, lanes: &impl Lanes) -> Vec<(u64, u64, u64)> {
        let mut out = Vec::new();
        // The distinct chunks of one octave (marks are at most 255).
        let mut chunks = [0u8; 255];
        let mapped = self.mapped.load(Relaxed);
        for slot in 0..SLOTS {
            let mut n = 0;
            let lanes_here = if mapped & (1 << slot) == 0 { 0 } else { lanes.count() };
            for i in 0..lanes_here {
                let m = lanes.lane(i).0[slot].load(Relaxed);
                if m != 0 && !chunks[..n].contains(&m) && n < chunks.len() {
                    chunks[n] = m;
                    n += 1;
                }
            }
            let base = |m: u8| (usize::from(m) - 1) * SUB;
            match &chunks[..n] {
                [] => {}
                // The common case, one lane (or one chunk every lane shares): read it as is.
                &[m] => out.extend(pool.chunks.read_range(base(m), SUB).map(|(sub, n)| {
                    let (lo, hi) = bucket_range(slot * SUB + sub);
                    (lo, hi, n)
                })),
                several => {
                    let mut counts = [0u64; SUB];
                    for &m in several {
                        for (sub, n) in pool.chunks.read_range(base(m), SUB) {
                            counts[sub] += n;
                        }
                    }
                    for (sub, &n) in counts.iter().enumerate().filter(|(_, &n)| n > 0) {
                        let (lo, hi) = bucket_range(slot * SUB + sub);
                        out.push((lo, hi, n));
                    }
                }
            }
            if let n @ 1.. = self.coarse[slot].load(Relaxed) {
                let (lo, _) = bucket_range(slot * SUB);
                let (_, hi) = bucket_range(slot * SUB + SUB - 1);
                out.push((lo, hi, u64::from(n)));
            }
        }
        out.sort_by_key(|&(lo, hi, _)| (lo, hi));
        out
    }
}

#[cfg(test)]
mod pooled_tests {
    use super::*;
    use std::sync::Arc;

    fn dense(values: impl Iterator<Item = u64>) -> Vec<(u64, u64, u64)> {
        let d = AtomicHistogram::new();
        values.for_each(|v| d.record(v));
        d.read()
            .into_iter()
            .map(|(i, n)| {
                let (lo, hi) = bucket_range(i);
                (lo, hi, n)
            })
            .collect()
    }

    /// A histogram recorded through one lane.
    struct Single(OctaveMap, Lane);

    impl Single {
        fn new() -> Self {
            Single(OctaveMap::new(), Lane::new())
        }

        fn record(&self, v: u64, pool: &ChunkPool) {
            self.0.record(v, pool, &self.1, &self.1);
        }

        fn read(&self, pool: &ChunkPool) -> Vec<(u64, u64, u64)> {
            self.0.read(pool, &self.1)
        }
    }

    /// A histogram recorded through several lanes.
    struct Striped(OctaveMap, Vec<Lane>);

    impl Lanes for Vec<Lane> {
        fn count(&self) -> usize {
            self.len()
        }

        fn lane(&self, i: usize) -> &Lane {
            &self[i]
        }
    }

    #[test]
    fn a_full_pool_matches_the_dense_histogram() {
        let pool = ChunkPool::new(SLOTS);
        let h = Single::new();
        let values = || (0..200_000u64).map(|i| i.wrapping_mul(0x9e37_79b9) % (1 << 41));
        values().for_each(|v| h.record(v, &pool));
        assert_eq!(h.read(&pool), dense(values()));
    }

    #[test]
    fn lanes_add_up_and_share_chunks_once_the_pool_is_empty() {
        // Lane 0 takes the pool's 12 chunks for 12 octaves; then 4 threads, one per lane, count
        // values of those octaves. Lanes 1 to 3 find the pool empty and share lane 0's chunks:
        // every value lands in its full-precision bucket, counted once.
        let pool = Arc::new(ChunkPool::new(12));
        let h = Arc::new(Striped(OctaveMap::new(), (0..4).map(|_| Lane::new()).collect()));
        let first: Vec<u64> = (0..12).map(|e| 64u64 << e).collect();
        first.iter().for_each(|&v| h.0.record(v, &pool, &h.1[0], &h.1));
        let values = |t: u64| (0..30_000u64).map(move |i| (64 + (i * 7 + t) % 64) << (i % 12));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (pool, h) = (Arc::clone(&pool), Arc::clone(&h));
                std::thread::spawn(move || {
                    let lane = &h.1[t as usize];
                    values(t).for_each(|v| h.0.record(v, &pool, lane, &h.1));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = first.iter().copied().chain((0..4).flat_map(values));
        assert_eq!(h.0.read(&pool, &h.1), dense(all));
        for lane in &h.1 {
            let marks: Vec<u8> = lane.0.iter().map(|m| m.load(Relaxed)).collect();
            assert_eq!(marks, h.1[0].0.iter().map(|m| m.load(Relaxed)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn two_maps_share_a_pool_and_overflow_coarsely() {
        let pool = ChunkPool::new(10);
        let (a, b) = (Single::new(), Single::new());
        // 8 octaves each: 10 get chunks, 6 are counted per octave.
        for e in 6..14 {
            a.record(1 << e, &pool);
            b.record(1 << (e + 10), &pool);
        }
        let (ra, rb) = (a.read(&pool), b.read(&pool));
        assert_eq!(ra.iter().chain(&rb).map(|b| b.2).sum::<u64>(), 16);
        let coarse = ra.iter().chain(&rb).filter(|(lo, hi, _)| hi - lo > lo / 32).count();
        assert_eq!(coarse, 6);
        assert_eq!(ra[0], (64, 65, 1), "octaves with a chunk keep full precision");
    }

    #[test]
    fn claiming_mt_keeps_every_count() {
        let pool = Arc::new(ChunkPool::new(12));
        let h = Arc::new(Single::new());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (pool, h) = (Arc::clone(&pool), Arc::clone(&h));
                std::thread::spawn(move || {
                    for i in 0..40_000u64 {
                        h.record(1 << (6 + (i + t) % 24), &pool);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.read(&pool).iter().map(|b| b.2).sum::<u64>(), 160_000);
    }
}
