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
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::OnceLock;

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

/// The octave (a slot of [`OctaveMap`]) and the bucket within it that a value falls in.
#[inline(always)]
fn octave_of(v: u64) -> (usize, usize) {
    let i = bucket_index(v);
    (i / SUB, i % SUB)
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
        halve_once(&self.halving, || halve_buckets(&self.buckets));
    }

    /// The non-empty buckets as `(index, count)`.
    pub(crate) fn read(&self) -> Vec<(usize, u64)> {
        non_empty(&self.buckets).collect()
    }
}

/// The non-empty buckets of `buckets`, as `(index, count)`.
fn non_empty(buckets: &[AtomicU32]) -> impl Iterator<Item = (usize, u64)> + '_ {
    buckets.iter().enumerate().filter_map(|(i, b)| match b.load(Relaxed) {
        0 => None,
        n => Some((i, u64::from(n))),
    })
}

/// `x` halved, rounding up, so no bucket that saw a value goes back to zero: the shape of the
/// histograms, and so every quantile, survives.
fn half(x: u32) -> u32 {
    x - x / 2
}

/// Halves every bucket of `buckets` ([`half`]), while other threads may count in them.
fn halve_buckets(buckets: &[AtomicU32]) {
    for b in buckets {
        let _ = b.fetch_update(Relaxed, Relaxed, |x| Some(half(x)));
    }
}

/// Runs `pass`, a halving of a histogram's buckets, on one thread: the one that sets
/// `halving`; the others carry on recording. A bucket keeps 2^31 of headroom, far more than
/// can arrive while one pass over the buckets runs.
fn halve_once(halving: &AtomicBool, pass: impl FnOnce()) {
    if halving.swap(true, Acquire) {
        return;
    }
    pass();
    halving.store(false, Release);
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

/// The 64 buckets of one octave.
pub(crate) struct Chunk([AtomicU32; SUB]);

impl Chunk {
    /// Counts one value in bucket `sub`; `owner` is halved if the bucket grows too big.
    #[inline(always)]
    fn record(&self, sub: usize, owner: &impl Chunks) {
        let Some(bucket) = self.0.get(sub) else { return };
        // Relaxed: a bucket count is a statistic read at snapshot time; no other memory is
        // published through it.
        if bucket.fetch_add(1, Relaxed) >= HALVE_AT {
            owner.halve();
        }
    }

    /// As [`Chunk::record`], for the chunk's only writer ([`Write::Sole`]): a plain load and
    /// store, where a locked add cost about 2.7 ns of a 29 ns call. Chunk `n` of `owner`.
    #[inline(always)]
    fn record_sole(&self, sub: usize, owner: &impl Chunks, n: usize) {
        let Some(bucket) = self.0.get(sub) else { return };
        let prev = bucket.load(Relaxed);
        bucket.store(prev.wrapping_add(1), Relaxed);
        if prev >= HALVE_AT {
            owner.halve();
            owner.catch_up(n);
        }
    }

    /// The non-empty buckets, as `(sub-bucket, count)`.
    #[cfg(test)]
    fn read(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        non_empty(&self.0)
    }
}

/// How a writer counts in a chunk ([`Chunks::to_write`]).
pub(crate) enum Write<'a> {
    /// With a locked add: other writers may count in it too.
    Shared(&'a Chunk),
    /// With a plain load and store: the writer is the chunk's only one.
    Sole(&'a Chunk),
    /// The writer is the chunk's only one, and owes it a halving ([`Chunks::catch_up`]).
    Behind,
}

/// Halvings that take any bucket to 1 (or 0), after which more change nothing: a sole
/// writer's chunk never owes more (see [`SharedChunks::halve`]).
const MOST_OWED: u8 = 32;

/// Halves `x` `times` times ([`half`]).
fn halved(mut x: u32, times: u8) -> u32 {
    for _ in 0..times.min(MOST_OWED) {
        x = half(x);
    }
    x
}

/// Where the octave chunks of one or more histograms come from, numbered `0..` in the order
/// they were taken (at most 255 of them, so that a [`Lane`] names one in a byte).
pub(crate) trait Chunks {
    /// A new chunk's number, if one can be had. `sole`: the lane taking it has one writer at a
    /// time (a thread that owns its stripe), who may count in it with plain stores; no other
    /// lane then shares it.
    fn take(&self, sole: bool) -> Option<usize>;
    /// Chunk `n`, if it was taken (and, from another thread, is seen to be).
    fn chunk(&self, n: usize) -> Option<&Chunk>;
    /// Chunk `n` for a writer of the lane that maps it: how to count in it.
    fn to_write(&self, n: usize) -> Option<Write<'_>>;
    /// Whether a lane other than the one that took chunk `n` may count in it.
    fn shareable(&self, n: usize) -> bool;
    /// How many numbers were handed out (a lost race may leave one of them without a chunk).
    fn taken(&self) -> usize;
    /// Halvings a reader applies to chunk `n`'s buckets: those its only writer has not made
    /// yet ([`Chunks::halve`]).
    fn owed(&self, n: usize) -> u8;
    /// Halves every bucket of every chunk taken, which all the owner's histograms share, so
    /// that their shape survives: shared chunks at once, a sole writer's chunks when their
    /// writer next counts in them, and for readers as if at once.
    fn halve(&self);
    /// Makes the halvings chunk `n` owes; called by its only writer.
    fn catch_up(&self, n: usize);
}

/// Chunks of one owner alone, all allocated up front: for a histogram that may be dropped
/// ([`crate::DurationVal`]), whose memory goes with it.
pub(crate) struct OwnChunks {
    chunks: Box<[Chunk]>,
    next: AtomicUsize,
    halving: AtomicBool,
}

impl OwnChunks {
    /// `size` chunks (at most 255).
    pub(crate) fn new(size: usize) -> Self {
        let chunk = || Chunk(std::array::from_fn(|_| AtomicU32::new(0)));
        Self {
            chunks: (0..size.min(255)).map(|_| chunk()).collect(),
            next: AtomicUsize::new(0),
            halving: AtomicBool::new(false),
        }
    }
}

impl Chunks for OwnChunks {
    /// Never written with plain stores: `sole` is ignored.
    fn take(&self, _sole: bool) -> Option<usize> {
        let n = self.next.fetch_add(1, Relaxed);
        if n < self.chunks.len() {
            Some(n)
        } else {
            self.next.store(self.chunks.len(), Relaxed);
            None
        }
    }

    #[inline(always)]
    fn chunk(&self, n: usize) -> Option<&Chunk> {
        self.chunks.get(n)
    }

    #[inline(always)]
    fn to_write(&self, n: usize) -> Option<Write<'_>> {
        self.chunks.get(n).map(Write::Shared)
    }

    fn shareable(&self, _: usize) -> bool {
        true
    }

    fn taken(&self) -> usize {
        self.next.load(Relaxed).min(self.chunks.len())
    }

    fn owed(&self, _: usize) -> u8 {
        0
    }

    #[cold]
    #[inline(never)]
    fn halve(&self) {
        let taken = &self.chunks[..self.taken()];
        halve_once(&self.halving, || taken.iter().for_each(|c| halve_buckets(&c.0)));
    }

    fn catch_up(&self, _: usize) {}
}

/// Chunks a site may take from the process's store: enough for its success and failure
/// histograms to keep 1% precision over 44 octaves between them. A site holds only the chunks
/// of the octaves its calls reached.
pub(crate) const SITE_CHUNKS: usize = 44;

/// Chunks drawn from the process's store as they are first needed, for an owner that lives as
/// long as the program (a call site): the store never takes a chunk back.
///
/// A chunk taken for a lane with one writer at a time (a thread that owns its stripe) is that
/// writer's alone: it counts with plain stores, and halves the chunk itself, the next time it
/// counts in it after the site's halving. Until then a reader halves what it reads.
pub(crate) struct SharedChunks {
    /// Each chunk taken: the store's index plus one (0: none yet) in the low [`ID_BITS`],
    /// [`SOLE`] for a sole writer's chunk, and above those the site's halvings the chunk
    /// has made (a sole writer's; a shared chunk is halved at once).
    ids: [AtomicU32; SITE_CHUNKS],
    next: AtomicUsize,
    halving: AtomicBool,
    /// Halvings of the site's chunks, wrapping: a sole writer's chunk owes at most
    /// [`MOST_OWED`] of them, far from 256.
    halvings: AtomicU8,
}

/// Bits of a [`SharedChunks`] entry that hold the store's index plus one.
const ID_BITS: u32 = 23;
/// Set in a [`SharedChunks`] entry whose chunk has one writer at a time.
const SOLE: u32 = 1 << ID_BITS;
/// Where a [`SharedChunks`] entry keeps its chunk's halvings.
const HALVINGS_SHIFT: u32 = 24;

const _: () = assert!(SEGMENTS * SEGMENT < 1 << ID_BITS, "a store index + 1 fits its bits");

/// The halvings a chunk whose [`SharedChunks`] entry is `entry` owes when the site has made
/// `halvings`: none for a shared chunk.
#[inline(always)]
fn owed(entry: u32, halvings: u8) -> u8 {
    if entry & SOLE == 0 {
        return 0;
    }
    halvings.wrapping_sub(made(entry))
}

/// The halvings the chunk whose [`SharedChunks`] entry is `entry` has made.
#[inline(always)]
fn made(entry: u32) -> u8 {
    // The halvings fit the top byte: the truncation drops nothing.
    #[allow(clippy::cast_possible_truncation)]
    let made = (entry >> HALVINGS_SHIFT) as u8;
    made
}

/// The chunk a [`SharedChunks`] entry names, if it names one.
#[inline(always)]
fn chunk_of(entry: u32) -> Option<&'static Chunk> {
    let id = (entry & (SOLE - 1)).checked_sub(1)?;
    STORE.chunk(id as usize)
}

/// `entry` with its chunk's halvings made set to `made`.
fn with_made(entry: u32, made: u8) -> u32 {
    entry & ((1 << HALVINGS_SHIFT) - 1) | u32::from(made) << HALVINGS_SHIFT
}

impl SharedChunks {
    pub(crate) fn new() -> Self {
        Self {
            ids: std::array::from_fn(|_| AtomicU32::new(0)),
            next: AtomicUsize::new(0),
            halving: AtomicBool::new(false),
            halvings: AtomicU8::new(0),
        }
    }

    /// Entry `n` of `ids` and the chunk it names, if taken (and seen to be).
    #[inline(always)]
    fn entry(&self, n: usize) -> Option<(u32, &Chunk)> {
        // Relaxed: the thread that took a chunk stored its id itself; another lane sharing it
        // may not see the id yet, and then counts the value per octave (see `OctaveMap`).
        let entry = self.ids.get(n)?.load(Relaxed);
        Some((entry, chunk_of(entry)?))
    }

    /// The halvings a sole writer's chunk whose entry is `entry` has not made.
    #[inline(always)]
    fn owed_by(&self, entry: u32) -> u8 {
        owed(entry, self.halvings.load(Relaxed))
    }
}

impl Chunks for SharedChunks {
    fn take(&self, sole: bool) -> Option<usize> {
        if self.next.load(Relaxed) >= SITE_CHUNKS {
            return None;
        }
        let id = STORE.take()?;
        let n = self.next.fetch_add(1, Relaxed);
        // A thread that lost the race for the last number leaves its chunk unused: at most one
        // chunk per racing thread, once per site.
        let slot = self.ids.get(n)?;
        // Store indices are below SEGMENTS * SEGMENT (2^19): `id + 1` fits. An empty chunk
        // owes no halving: it starts at the site's count.
        let mut entry = id as u32 + 1;
        if sole {
            entry |= SOLE | u32::from(self.halvings.load(Relaxed)) << HALVINGS_SHIFT;
        }
        slot.store(entry, Relaxed);
        Some(n)
    }

    #[inline(always)]
    fn chunk(&self, n: usize) -> Option<&Chunk> {
        self.entry(n).map(|(_, chunk)| chunk)
    }

    #[inline(always)]
    fn to_write(&self, n: usize) -> Option<Write<'_>> {
        let (entry, chunk) = self.entry(n)?;
        Some(match entry & SOLE {
            0 => Write::Shared(chunk),
            _ if self.owed_by(entry) == 0 => Write::Sole(chunk),
            _ => Write::Behind,
        })
    }

    fn shareable(&self, n: usize) -> bool {
        self.entry(n).is_some_and(|(entry, _)| entry & SOLE == 0)
    }

    fn taken(&self) -> usize {
        self.next.load(Relaxed).min(SITE_CHUNKS)
    }

    fn owed(&self, n: usize) -> u8 {
        self.entry(n).map_or(0, |(entry, _)| self.owed_by(entry))
    }

    #[cold]
    #[inline(never)]
    fn halve(&self) {
        halve_once(&self.halving, || {
            // First: a reader then halves a sole writer's chunk it reads, whose writer halves
            // it later, when it next counts in it.
            let halvings = self.halvings.fetch_add(1, Relaxed).wrapping_add(1);
            for slot in &self.ids[..self.taken()] {
                let entry = slot.load(Relaxed);
                if entry & SOLE == 0 {
                    if let Some(chunk) = chunk_of(entry) {
                        halve_buckets(&chunk.0);
                    }
                } else if owed(entry, halvings) > MOST_OWED {
                    // An idle writer's chunk: halved more than `MOST_OWED` times, it would
                    // read as it does now, so it is marked as owing no more, and `halvings`
                    // wrapping around can never make it look owed nothing. Its writer,
                    // catching up at once, may store its own count over this one: the next
                    // halving marks it again.
                    let made = halvings.wrapping_sub(MOST_OWED);
                    let _ = slot.compare_exchange(entry, with_made(entry, made), Relaxed, Relaxed);
                }
            }
        });
    }

    #[cold]
    #[inline(never)]
    fn catch_up(&self, n: usize) {
        let Some((entry, chunk)) = self.entry(n) else { return };
        let owed = self.owed_by(entry);
        if owed == 0 {
            return;
        }
        // Only this thread writes the chunk, and (but for `halve` marking an idle chunk) its
        // entry's halvings: plain stores.
        for b in &chunk.0 {
            b.store(halved(b.load(Relaxed), owed), Relaxed);
        }
        self.ids[n].store(with_made(entry, made(entry).wrapping_add(owed)), Relaxed);
    }
}

/// Chunks in one segment of the store: 1 MiB.
const SEGMENT: usize = 4096;
/// The most segments the store makes: 128 MiB of chunks, all 44 of more than 11,000 sites.
const SEGMENTS: usize = 128;
/// The fewest chunks the store keeps ready for sites to take without allocating.
const READY: usize = 2048;

/// The process's octave chunks, handed out one at a time and never taken back. Segments are
/// allocated zeroed: the pages of chunks nobody has written stay unmapped, so what is resident
/// follows the chunks in use, not the chunks ready.
struct Store {
    segments: [OnceLock<Box<[Chunk; SEGMENT]>>; SEGMENTS],
    /// Chunks handed out.
    taken: AtomicUsize,
    /// Chunks in the segments made.
    made: AtomicUsize,
}

static STORE: Store = Store {
    segments: [const { OnceLock::new() }; SEGMENTS],
    taken: AtomicUsize::new(0),
    made: AtomicUsize::new(0),
};

impl Store {
    /// A ready chunk's index, if one is left; never allocates.
    fn take(&self) -> Option<usize> {
        // Acquire: a chunk counted in `made` is in a segment that is set.
        let made = self.made.load(Acquire);
        self.taken.fetch_update(Relaxed, Relaxed, |t| (t < made).then_some(t + 1)).ok()
    }

    #[inline(always)]
    fn chunk(&self, id: usize) -> Option<&Chunk> {
        self.segments.get(id / SEGMENT)?.get()?.get(id % SEGMENT)
    }
}

/// Makes sure the store holds chunks nobody has taken, one for each of `owners` and at least
/// [`READY`], allocating segments if it does not: every owner can then reach a new octave, or
/// a new thread, without finding the store empty. Ready chunks are untouched zeroed pages, so
/// they take address space, not resident memory. Called where allocating is fine: a site's
/// first call, a snapshot. An owner that finds the store empty in between shares another
/// lane's chunk, or counts its new octave's values per octave, until the next call of this.
pub(crate) fn keep_chunks_ready(owners: usize) {
    let ready = owners.max(READY);
    loop {
        let made = STORE.made.load(Acquire);
        if made.saturating_sub(STORE.taken.load(Relaxed)) >= ready {
            return;
        }
        let Some(segment) = STORE.segments.get(made / SEGMENT) else { return };
        segment.get_or_init(zeroed_segment);
        // Release: whoever reads the new count sees the segment set.
        STORE.made.fetch_max(made + SEGMENT, Release);
    }
}

/// A segment of zeroed chunks, straight from the allocator: zeroed pages it gets fresh from
/// the system are not touched, so they cost no resident memory until a chunk is written.
#[allow(unsafe_code)]
fn zeroed_segment() -> Box<[Chunk; SEGMENT]> {
    let layout = std::alloc::Layout::new::<[Chunk; SEGMENT]>();
    // SAFETY: the layout is of a non-zero-sized type.
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<[Chunk; SEGMENT]>();
    if ptr.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    // SAFETY: `ptr` is non-null, was allocated by the global allocator with the layout of
    // `[Chunk; SEGMENT]` (as `Box` frees it), and its bytes are zero: a `Chunk` is an array of
    // `AtomicU32`, which has the in-memory representation of `u32`, for which zero is valid.
    unsafe { Box::from_raw(ptr) }
}

/// Which chunk holds each octave for one lane of writers: 0 if none yet, else the chunk's
/// number + 1.
///
/// A site gives each of its counter stripes a lane, so threads on different stripes count the
/// same octave in different chunks and never write the same cache line; a snapshot adds the
/// lanes up.
pub(crate) struct Lane([AtomicU8; SLOTS]);

impl Lane {
    pub(crate) const fn new() -> Self {
        Self([const { AtomicU8::new(0) }; SLOTS])
    }
}

impl Default for Lane {
    fn default() -> Self {
        Self::new()
    }
}

/// The octave a lane of writers last counted a value in, and the number of the chunk its lane
/// maps for it: `(slot + 1) << 8 | chunk`, 0 before the first. The next value of the same
/// octave goes straight to that chunk, without reading the lane. A lane never maps an octave
/// to another chunk once it has one, so whatever any writer stored here stays true.
#[derive(Default)]
pub(crate) struct LastChunk(AtomicU16);

const _: () = assert!(SLOTS < 255, "an octave's slot + 1 fits the high byte of `LastChunk`");

impl LastChunk {
    /// The chunk number remembered for `slot`, if `slot` was the last one counted in.
    #[inline(always)]
    fn chunk_for(&self, slot: usize) -> Option<usize> {
        let seen = self.0.load(Relaxed);
        (usize::from(seen >> 8) == slot + 1).then_some(usize::from(seen & 0xff))
    }

    /// Remembers that `lane` maps `slot` (if it does, to a chunk numbered below 256).
    #[inline(always)]
    fn remember(&self, slot: usize, lane: &Lane) {
        let mark = lane.0.get(slot).map_or(0, |m| m.load(Relaxed));
        if let (Some(chunk), Ok(slot)) = (mark.checked_sub(1), u8::try_from(slot + 1)) {
            self.0.store(u16::from(slot) << 8 | u16::from(chunk), Relaxed);
        }
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

/// A duration histogram with the layout of [`bucket_index`] whose octaves live in [`Chunks`],
/// taken on first use per [`Lane`]: recording never allocates, memory follows the octaves in
/// use, and a snapshot reads only those. When no chunk can be taken, a lane reaching a new
/// octave shares the chunk another lane holds for it, and only an octave no lane holds is
/// counted per octave and reported with that coarser precision (and the lane tries again at
/// its next value there).
pub(crate) struct OctaveMap {
    /// Octaves some lane has a chunk for, one bit each: a read visits only those.
    mapped: AtomicU64,
    /// Values of octaves that found no chunk.
    coarse: [AtomicU32; SLOTS],
    /// Octaves with values in `coarse`, one bit each.
    coarsened: AtomicU64,
}

const _: () = assert!(SLOTS <= 64, "one bit per octave in `OctaveMap::mapped`");

impl OctaveMap {
    pub(crate) fn new() -> Self {
        Self {
            mapped: AtomicU64::new(0),
            coarse: std::array::from_fn(|_| AtomicU32::new(0)),
            coarsened: AtomicU64::new(0),
        }
    }

    /// Counts `v` through `lane`, one of `lanes`, in a chunk of `chunks`. `sole`: the lane has
    /// one writer at a time, this thread ([`Chunks::take`]).
    #[inline(always)]
    pub(crate) fn record(
        &self,
        v: u64,
        chunks: &impl Chunks,
        lane: &Lane,
        lanes: &impl Lanes,
        sole: bool,
    ) {
        let (slot, sub) = octave_of(v);
        self.record_in(slot, sub, chunks, lane, lanes, sole);
    }

    /// Counts a value in bucket `sub` of chunk `n`, the way its writers count; false if this
    /// thread does not see the chunk yet.
    #[inline(always)]
    fn count_in(chunks: &impl Chunks, n: usize, sub: usize) -> bool {
        match chunks.to_write(n) {
            Some(Write::Shared(chunk)) => chunk.record(sub, chunks),
            Some(Write::Sole(chunk)) => chunk.record_sole(sub, chunks, n),
            Some(Write::Behind) => Self::catch_up_and_count(chunks, n, sub),
            None => return false,
        }
        true
    }

    /// Makes the halvings chunk `n` owes, then counts in it (its only writer).
    #[cold]
    #[inline(never)]
    fn catch_up_and_count(chunks: &impl Chunks, n: usize, sub: usize) {
        chunks.catch_up(n);
        // Should the site halve again meanwhile, the value is counted before that halving is
        // made: as the other chunks count theirs.
        if let Some(chunk) = chunks.chunk(n) {
            chunk.record_sole(sub, chunks, n);
        }
    }

    /// Counts a value of bucket `sub` of octave `slot` through `lane`, one of `lanes`.
    #[inline(always)]
    fn record_in(
        &self,
        slot: usize,
        sub: usize,
        chunks: &impl Chunks,
        lane: &Lane,
        lanes: &impl Lanes,
        sole: bool,
    ) {
        let mark = lane.0[slot].load(Relaxed);
        if !usize::from(mark).checked_sub(1).is_some_and(|n| Self::count_in(chunks, n, sub)) {
            self.record_cold(slot, sub, chunks, lane, lanes, sole);
        }
    }

    /// As [`OctaveMap::record`], going straight to the chunk `last` remembers when `v` falls in
    /// the same octave as the value before it, as a function's latencies mostly do: about 1 ns
    /// of a 30 ns call, measured beside reading the lane every time.
    #[inline(always)]
    pub(crate) fn record_after(
        &self,
        v: u64,
        chunks: &impl Chunks,
        lane: &Lane,
        last: &LastChunk,
        lanes: &impl Lanes,
        sole: bool,
    ) {
        let (slot, sub) = octave_of(v);
        if !last.chunk_for(slot).is_some_and(|n| Self::count_in(chunks, n, sub)) {
            self.record_and_remember(slot, sub, chunks, lane, last, lanes, sole);
        }
    }

    /// A value in another octave than the last: out of line, so that the call it ends keeps
    /// only the remembered path. The lane is read again after counting: counting may have
    /// given it its chunk for the octave.
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn record_and_remember(
        &self,
        slot: usize,
        sub: usize,
        chunks: &impl Chunks,
        lane: &Lane,
        last: &LastChunk,
        lanes: &impl Lanes,
        sole: bool,
    ) {
        self.record_in(slot, sub, chunks, lane, lanes, sole);
        last.remember(slot, lane);
    }

    #[cold]
    #[inline(never)]
    fn record_cold(
        &self,
        slot: usize,
        sub: usize,
        chunks: &impl Chunks,
        lane: &Lane,
        lanes: &dyn Lanes,
        sole: bool,
    ) {
        let chunk = match lane.0[slot].load(Relaxed) {
            0 => Self::claim(slot, chunks, lane, lanes, sole),
            // Mapped by another thread, whose chunk this one does not see yet.
            m => Some(usize::from(m) - 1),
        };
        match chunk.filter(|&n| chunks.chunk(n).is_some()) {
            Some(n) => {
                // Set by every lane that maps the octave, after mapping it: a read racing with
                // this misses at most the counts of this instant.
                self.mapped.fetch_or(1 << slot, Relaxed);
                Self::count_in(chunks, n, sub);
            }
            None => {
                self.coarse[slot].fetch_add(1, Relaxed);
                self.coarsened.fetch_or(1 << slot, Relaxed);
            }
        }
    }

    /// Gives `slot` of `lane` a chunk: a new one, else one another lane holds for the same
    /// octave and shares (not a sole writer's). Two threads racing for one slot agree on the
    /// winner's chunk (the loser's stays unused).
    fn claim(
        slot: usize,
        chunks: &dyn Chunks,
        lane: &Lane,
        lanes: &dyn Lanes,
        sole: bool,
    ) -> Option<usize> {
        let mark = match chunks.take(sole) {
            // Chunks are zeroed atomics: mapping one publishes no other memory. An owner
            // hands out at most 255 chunk numbers, so `n + 1` fits.
            Some(n) => u8::try_from(n + 1).ok()?,
            None => (0..lanes.count())
                .map(|i| lanes.lane(i).0[slot].load(Relaxed))
                .find(|&m| m != 0 && chunks.shareable(usize::from(m) - 1))?,
        };
        match lane.0[slot].compare_exchange(0, mark, Relaxed, Relaxed) {
            Ok(_) => Some(usize::from(mark) - 1),
            Err(m) => Some(usize::from(m) - 1),
        }
    }

    /// The non-empty buckets as `(low, high, count)`, in increasing order of `low`: each chunk
    /// any of `lanes` maps is counted once, however many lanes share it.
    pub(crate) fn read(&self, chunks: &impl Chunks, lanes: &impl Lanes) -> Vec<(u64, u64, u64)> {
        let mapped = self.mapped.load(Relaxed);
        // Room for a few buckets per octave reached: growing from empty, reallocation by
        // reallocation, was most of the cost of a snapshot of many sites.
        let mut out = Vec::with_capacity(mapped.count_ones() as usize * 8);
        // The distinct chunks of one octave: one per lane at most.
        let mut marks = [0u8; 64];
        // Only the octaves that have values: most of a site's are empty.
        let mut octaves = mapped | self.coarsened.load(Relaxed);
        while octaves != 0 {
            let slot = octaves.trailing_zeros() as usize;
            octaves &= octaves - 1;
            let mut n = 0;
            let lanes_here = if mapped & (1 << slot) == 0 { 0 } else { lanes.count() };
            for i in 0..lanes_here {
                let m = lanes.lane(i).0[slot].load(Relaxed);
                if m != 0 && !marks[..n].contains(&m) && n < marks.len() {
                    marks[n] = m;
                    n += 1;
                }
            }
            let chunk = |m: u8| {
                let n = usize::from(m) - 1;
                chunks.chunk(n).map(|c| (c, chunks.owed(n)))
            };
            let mut push = |sub: usize, count: u64| {
                if count > 0 {
                    let (lo, hi) = bucket_range(slot * SUB + sub);
                    out.push((lo, hi, count));
                }
            };
            match &marks[..n] {
                [] => {}
                // The common case, one lane (or one chunk every lane shares): read it as is.
                &[m] => {
                    if let Some((c, owed)) = chunk(m) {
                        for (sub, b) in c.0.iter().enumerate() {
                            push(sub, u64::from(halved(b.load(Relaxed), owed)));
                        }
                    }
                }
                // Each chunk counted once, however many lanes share it.
                several => {
                    let mut counts = [0u64; SUB];
                    for (c, owed) in several.iter().filter_map(|&m| chunk(m)) {
                        for (sum, b) in counts.iter_mut().zip(&c.0) {
                            *sum += u64::from(halved(b.load(Relaxed), owed));
                        }
                    }
                    for (sub, &count) in counts.iter().enumerate() {
                        push(sub, count);
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

        fn record(&self, v: u64, chunks: &impl Chunks) {
            self.0.record(v, chunks, &self.1, &self.1, false);
        }

        fn read(&self, chunks: &impl Chunks) -> Vec<(u64, u64, u64)> {
            self.0.read(chunks, &self.1)
        }
    }

    /// A histogram recorded through several lanes.
    struct Striped(OctaveMap, Vec<Lane>);

    impl Striped {
        /// Four lanes.
        fn four() -> Arc<Self> {
            Arc::new(Striped(OctaveMap::new(), (0..4).map(|_| Lane::new()).collect()))
        }

        /// Four threads at once, thread `t` recording `values(t)` through lane `t`.
        fn record_on_four_threads<C, I>(
            self: &Arc<Self>,
            chunks: &Arc<C>,
            values: impl Fn(u64) -> I + Copy + Send + 'static,
        ) where
            C: Chunks + Send + Sync + 'static,
            I: Iterator<Item = u64>,
        {
            self.record_on_threads(chunks, values, |_| false);
        }

        /// As [`Striped::record_on_four_threads`], thread `t` the only writer of its lane
        /// if `sole(t)`.
        fn record_on_threads<C, I>(
            self: &Arc<Self>,
            chunks: &Arc<C>,
            values: impl Fn(u64) -> I + Copy + Send + 'static,
            sole: impl Fn(u64) -> bool + Copy + Send + 'static,
        ) where
            C: Chunks + Send + Sync + 'static,
            I: Iterator<Item = u64>,
        {
            let threads: Vec<_> = (0..4u64)
                .map(|t| {
                    let (chunks, h) = (Arc::clone(chunks), Arc::clone(self));
                    std::thread::spawn(move || {
                        let lane = &h.1[t as usize];
                        values(t).for_each(|v| h.0.record(v, &*chunks, lane, &h.1, sole(t)));
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
        }
    }

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
        let pool = OwnChunks::new(SLOTS);
        let h = Single::new();
        let values = || (0..200_000u64).map(|i| i.wrapping_mul(0x9e37_79b9) % (1 << 41));
        values().for_each(|v| h.record(v, &pool));
        assert_eq!(h.read(&pool), dense(values()));
    }

    #[test]
    fn the_last_chunk_counts_what_the_lane_would() {
        // Runs of one octave, octaves in turn, and values the pool has no chunk for: through a
        // remembered chunk or the lane, every value lands in its bucket once.
        let (pool, plain_pool) = (OwnChunks::new(6), OwnChunks::new(6));
        let (h, plain) = (Single::new(), Single::new());
        let last = LastChunk::default();
        let values = || {
            (0..60_000u64).map(|i| match i % 3 {
                0 => 1_000 + i % 64,
                1 if i % 7 == 0 => 64 << (i % 12),
                _ => (1_000 + i % 512) << ((i / 1_000) % 9),
            })
        };
        values().for_each(|v| h.0.record_after(v, &pool, &h.1, &last, &h.1, false));
        values().for_each(|v| plain.record(v, &plain_pool));
        assert_eq!(h.read(&pool), plain.read(&plain_pool));
        assert_ne!(h.0.coarsened.load(Relaxed), 0, "the pool ran out: some octaves coarse");
        assert_ne!(last.0.load(Relaxed), 0, "a mapped octave was remembered");
    }

    #[test]
    fn lanes_remembering_their_last_chunk_stay_exact_across_threads() {
        let pool = Arc::new(OwnChunks::new(SLOTS * 4));
        let h = Striped::four();
        let lasts: Arc<Vec<LastChunk>> = Arc::new((0..4).map(|_| LastChunk::default()).collect());
        let values =
            |t: u64| (0..50_000u64).map(move |i| (64 + (i + t) % 64) << ((i / 100 + t) % 20));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (pool, h, lasts) = (Arc::clone(&pool), Arc::clone(&h), Arc::clone(&lasts));
                std::thread::spawn(move || {
                    let (lane, last) = (&h.1[t as usize], &lasts[t as usize]);
                    values(t).for_each(|v| h.0.record_after(v, &*pool, lane, last, &h.1, false));
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.0.read(&*pool, &h.1), dense((0..4).flat_map(values)));
    }

    #[test]
    fn lanes_add_up_and_share_chunks_once_the_pool_is_empty() {
        // Lane 0 takes the pool's 12 chunks for 12 octaves; then 4 threads, one per lane, count
        // values of those octaves. Lanes 1 to 3 find the pool empty and share lane 0's chunks:
        // every value lands in its full-precision bucket, counted once.
        let pool = Arc::new(OwnChunks::new(12));
        let h = Striped::four();
        let first: Vec<u64> = (0..12).map(|e| 64u64 << e).collect();
        first.iter().for_each(|&v| h.0.record(v, &*pool, &h.1[0], &h.1, false));
        let values = |t: u64| (0..30_000u64).map(move |i| (64 + (i * 7 + t) % 64) << (i % 12));
        h.record_on_four_threads(&pool, values);
        let all = first.iter().copied().chain((0..4).flat_map(values));
        assert_eq!(h.0.read(&*pool, &h.1), dense(all));
        for lane in &h.1 {
            let marks: Vec<u8> = lane.0.iter().map(|m| m.load(Relaxed)).collect();
            assert_eq!(marks, h.1[0].0.iter().map(|m| m.load(Relaxed)).collect::<Vec<_>>());
        }
    }

    #[test]
    fn two_maps_share_a_pool_and_overflow_coarsely() {
        let pool = OwnChunks::new(10);
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
        let pool = Arc::new(OwnChunks::new(12));
        let h = Arc::new(Single::new());
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (pool, h) = (Arc::clone(&pool), Arc::clone(&h));
                std::thread::spawn(move || {
                    for i in 0..40_000u64 {
                        h.record(1 << (6 + (i + t) % 24), &*pool);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.read(&*pool).iter().map(|b| b.2).sum::<u64>(), 160_000);
    }

    /// Shared chunks for a test, with the store stocked first (other tests take from it too).
    fn shared() -> SharedChunks {
        keep_chunks_ready(0);
        SharedChunks::new()
    }

    #[test]
    fn shared_chunks_match_the_dense_histogram() {
        let chunks = shared();
        let (success, failure) = (Single::new(), Single::new());
        // Every octave: values below 64, then 64..128 shifted into each of the others.
        let values = || {
            (0..200_000u64).map(|i| match i % 35 {
                0 => i % 64,
                e => (64 + i * 7 % 64) << (e - 1),
            })
        };
        // Two histograms over all 35 octaves share one site's 44 chunks: the first takes 35,
        // the second 9, its other octaves are counted per octave, and every value is counted.
        values().for_each(|v| success.record(v, &chunks));
        values().for_each(|v| failure.record(v, &chunks));
        assert_eq!(chunks.taken(), SITE_CHUNKS);
        assert_eq!(success.read(&chunks), dense(values()));
        let read = failure.read(&chunks);
        assert_eq!(read.iter().map(|b| b.2).sum::<u64>(), 200_000);
        let whole_octaves = read.iter().filter(|(lo, hi, _)| hi - lo >= (*lo).max(64)).count();
        assert_eq!(whole_octaves, 2 * SLOTS - SITE_CHUNKS);
    }

    #[test]
    fn a_site_holds_only_the_octaves_it_reached() {
        let chunks = shared();
        let h = Single::new();
        for v in [100, 120, 5_000, 5_100, 5_200] {
            h.record(v, &chunks);
        }
        assert_eq!(chunks.taken(), 2, "two octaves, two chunks");
        assert_eq!(h.read(&chunks).iter().map(|b| b.2).sum::<u64>(), 5);
    }

    #[test]
    fn shared_chunks_mt_keep_every_count_and_precision() {
        let chunks = Arc::new(shared());
        let h = Striped::four();
        let values = |t: u64| (0..30_000u64).map(move |i| (64 + (i * 7 + t) % 64) << (i % 5));
        h.record_on_four_threads(&chunks, values);
        // Four lanes of five octaves: twenty chunks, within a site's 44.
        assert_eq!(h.0.read(&*chunks, &h.1), dense((0..4).flat_map(values)));
        assert_eq!(chunks.taken(), 20);
    }

    #[test]
    fn halving_covers_the_owners_chunks_alone() {
        let (mine, other) = (shared(), shared());
        let (a, b, c) = (Single::new(), Single::new(), Single::new());
        a.record(100, &mine);
        b.record(5_000, &mine);
        c.record(100, &other);
        for _ in 0..4 {
            b.record(5_000, &mine);
        }
        fn bucket(chunks: &SharedChunks, n: usize, v: u64) -> &AtomicU32 {
            chunks.chunk(n).map(|c| &c.0[bucket_index(v) % SUB]).expect("a chunk taken")
        }
        bucket(&mine, 0, 100).store(HALVE_AT, Relaxed);
        a.record(100, &mine);
        assert_eq!(a.read(&mine)[0].2, u64::from(HALVE_AT / 2 + 1));
        assert_eq!(b.read(&mine)[0].2, 3, "the owner's other histogram halves with it");
        assert_eq!(c.read(&other)[0].2, 1, "another owner's chunks are untouched");
        assert!(!mine.halving.load(Relaxed));
    }

    #[test]
    fn sole_writers_count_exactly_in_chunks_nobody_shares() {
        let chunks = Arc::new(shared());
        let h = Striped::four();
        let values = |t: u64| (0..30_000u64).map(move |i| (64 + (i * 7 + t) % 64) << (i % 5));
        h.record_on_threads(&chunks, values, |_| true);
        assert_eq!(h.0.read(&*chunks, &h.1), dense((0..4).flat_map(values)));
        assert_eq!(chunks.taken(), 20);
        assert!((0..20).all(|n| !chunks.shareable(n)), "every chunk a sole writer's");
    }

    #[test]
    fn once_the_pool_is_empty_only_shared_chunks_are_shared() {
        let chunks = Arc::new(shared());
        let h = Striped::four();
        // Lane 0, a sole writer, takes 35 chunks (every octave); lane 1, shared, the last 9
        // (octaves 10 to 18).
        fn octave(e: u64) -> u64 {
            if e == 0 {
                3
            } else {
                64 << (e - 1)
            }
        }
        (0..35).for_each(|e| h.0.record(octave(e), &*chunks, &h.1[0], &h.1, true));
        (10..19).for_each(|e| h.0.record(octave(e) + 1, &*chunks, &h.1[1], &h.1, false));
        assert_eq!(chunks.taken(), SITE_CHUNKS);
        // Lane 2 (shared) and lane 3 (a sole writer) reach octaves 5 to 19 on their threads.
        let values = |t: u64| (0..20_000u64).map(move |i| octave(5 + (i + t) % 15) + 2);
        let both = move |t: u64| values(t).take(if t >= 2 { usize::MAX } else { 0 });
        h.record_on_threads(&chunks, both, |t| t == 3);
        let read = h.0.read(&*chunks, &h.1);
        let total = 35 + 9 + 2 * 20_000;
        assert_eq!(read.iter().map(|b| b.2).sum::<u64>(), total);
        for lane in [2, 3] {
            for e in 5..20 {
                let (mark, lane_1) = (h.1[lane].0[e].load(Relaxed), h.1[1].0[e].load(Relaxed));
                // Octaves 10 to 18 share lane 1's chunk; the others, lane 0's alone, find
                // none, and are counted per octave.
                assert_eq!(mark, if (10..19).contains(&e) { lane_1 } else { 0 }, "{e}");
            }
        }
        // Lane 1's chunks kept full precision for both of the lanes that share them.
        let in_12 = |v: &u64| (octave(12)..octave(13)).contains(v);
        let shared_octave = read.iter().filter(|(lo, _, _)| in_12(lo));
        assert!(shared_octave.clone().all(|(lo, hi, _)| hi - lo < lo / 32));
        let counted = values(2).chain(values(3)).filter(in_12).count() as u64;
        assert_eq!(shared_octave.map(|b| b.2).sum::<u64>(), 1 + 1 + counted);
    }

    /// A site's chunks and four lanes, recorded through lane 0 as its only writer or through
    /// lane 1 as a shared one.
    struct SoleAndShared(SharedChunks, Arc<Striped>);

    impl SoleAndShared {
        fn new() -> Self {
            SoleAndShared(shared(), Striped::four())
        }

        fn sole(&self, v: u64) {
            let h = &self.1;
            h.0.record(v, &self.0, &h.1[0], &h.1, true);
        }

        fn shared(&self, v: u64) {
            let h = &self.1;
            h.0.record(v, &self.0, &h.1[1], &h.1, false);
        }

        /// The bucket of `v` in chunk `n`.
        fn bucket(&self, n: usize, v: u64) -> &AtomicU32 {
            &self.0.chunk(n).expect("taken").0[bucket_index(v) % SUB]
        }

        /// The count read for the bucket of `v`.
        fn count(&self, v: u64) -> Option<u64> {
            let read = self.1 .0.read(&self.0, &self.1 .1);
            read.iter().find(|b| b.0 <= v && v < b.1).map(|b| b.2)
        }
    }

    #[test]
    fn a_sole_writers_chunks_halve_when_next_written_and_read_halved_before() {
        let site = SoleAndShared::new();
        site.sole(100);
        (0..5).for_each(|_| site.sole(5_000));
        (0..3).for_each(|_| site.shared(100));
        site.bucket(0, 100).store(HALVE_AT, Relaxed);
        site.sole(100);
        // The writer's own chunk halved at once, the shared one by the halving: 2^30 + 1
        // and 2. The writer's other chunk owes its halving, which the read makes.
        assert_eq!(site.count(100), Some(u64::from(HALVE_AT / 2) + 1 + 2));
        assert_eq!((site.0.owed(1), site.bucket(1, 5_000).load(Relaxed)), (1, 5));
        assert_eq!(site.count(5_000), Some(3));
        // Written again, it halves itself first: 3, plus the new value.
        site.sole(5_000);
        assert_eq!((site.0.owed(1), site.bucket(1, 5_000).load(Relaxed)), (0, 4));
        assert_eq!(site.count(5_000), Some(4));
        assert!(!site.0.halving.load(Relaxed));
    }

    #[test]
    fn an_idle_writers_chunk_stays_halved_through_any_number_of_halvings() {
        let site = SoleAndShared::new();
        site.sole(5_000);
        site.shared(100);
        // The sole writer goes idle with a bucket near full; the shared chunk then fills and
        // halves the site 300 times: more than the site's count of halvings holds.
        site.bucket(0, 5_000).store(HALVE_AT - 1, Relaxed);
        for i in 1..=300u32 {
            site.bucket(1, 100).store(HALVE_AT, Relaxed);
            site.shared(100);
            let times = u8::try_from(i.min(u32::from(MOST_OWED))).expect("small");
            assert_eq!(site.0.owed(0), times, "halving {i}");
            assert_eq!(
                site.count(5_000),
                Some(u64::from(halved(HALVE_AT - 1, times))),
                "halving {i}"
            );
        }
        assert_eq!(site.count(5_000), Some(1));
        // Written again, it makes what it owes: 1, and the new value.
        site.sole(5_000);
        assert_eq!((site.0.owed(0), site.count(5_000)), (0, Some(2)));
    }

    #[test]
    fn a_zeroed_segment_reads_as_empty() {
        let segment = zeroed_segment();
        assert!(segment.iter().all(|c| c.read().next().is_none()));
        segment[SEGMENT - 1].record(3, &OwnChunks::new(0));
        assert_eq!(segment[SEGMENT - 1].read().collect::<Vec<_>>(), vec![(3, 1)]);
    }
}
