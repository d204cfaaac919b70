//! A call site's statistics, built on its first call: striped counters, error kinds, caller
//! edges, histograms and the highwater. The hot path's writes land here.

use std::sync::atomic::{
    AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release, SeqCst},
};
use std::sync::OnceLock;
use std::time::Duration;

use crossbeam_utils::CachePadded;
use once_cell::race::OnceBox;

use crate::counters::{add, Recent, Times, WideSum};
use crate::histogram::{keep_chunks_ready, Lane, Lanes, LastChunk, SharedChunks};
use crate::polls::SLOW_POLL;
use crate::snapshot::{Caller, CallerCount, PollStats};

/// [`SLOW_POLL`] in nanoseconds.
const SLOW_POLL_NS: u64 = SLOW_POLL.as_nanos() as u64;

/// Stripes of per-site counters. Each thread writes the stripe its index picks, so threads
/// calling the same function do not fight over one cache line; a snapshot sums the stripes.
/// Twice the CPUs (threads beyond that cannot all run at once), from 2 to 8.
pub(crate) fn stripes() -> usize {
    static N: OnceLock<usize> = OnceLock::new();
    *N.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(4, std::num::NonZeroUsize::get);
        (2 * cpus).next_power_of_two().clamp(2, MAX_STRIPES)
    })
}

/// The most stripes a site has.
const MAX_STRIPES: usize = 8;

/// Distinct callers a site keeps apart; more are counted as [`Caller::Other`].
pub(crate) const CALLER_SLOTS: usize = 8;
/// Distinct error kinds a site keeps apart; more are counted as `other`.
pub(crate) const KIND_SLOTS: usize = 64;
/// Caller key of calls with no monitored caller.
pub(crate) const ENTRY_KEY: u32 = u32::MAX;

/// Counters one thread (of those sharing the stripe) writes. With its two histogram lanes it
/// fills the 256 bytes its padding takes anyway.
///
/// A stripe whose index a thread owns ([`OWNED`]) has that thread as its only writer of
/// everything but `left_elsewhere`, so the owner adds to the other counters with plain loads
/// and stores ([`add`]), and lowers `current` with them at the end of a call it started. The
/// histogram chunks its lanes take are the owner's alone too, counted in the same way; only a
/// chunk a lane shares with others, once the site can take no more, takes a locked add
/// ([`crate::histogram::SharedChunks`]).
#[derive(Default)]
pub(crate) struct Stripe {
    /// Calls started on this stripe, less those that ended on it: on an owned stripe, those
    /// its owner ended; on a shared one, all of them. Wrapping: only its difference with
    /// `left_elsewhere` means anything, and that fits an `i32` (see [`calls_between`]).
    current: AtomicU32,
    /// Calls started on this owned stripe that ended on another thread (a future resumed
    /// elsewhere), counted there with a locked add: the owner's plain stores to `current`
    /// would lose another thread's. The calls in flight are `current - left_elsewhere`.
    left_elsewhere: AtomicU32,
    pub(crate) success: AtomicU64,
    pub(crate) panics: AtomicU64,
    pub(crate) cancelled: AtomicU64,
    pub(crate) success_sum: WideSum,
    pub(crate) failure_sum: WideSum,
    pub(crate) success_recent: Recent,
    pub(crate) failure_recent: Recent,
    /// Calls per caller slot; the last one counts callers past [`CALLER_SLOTS`].
    pub(crate) callers: [AtomicU64; CALLER_SLOTS + 1],
    /// Allocations made while calls ran (with the counting allocator installed).
    pub(crate) allocations: AtomicU64,
    pub(crate) allocated_bytes: AtomicU64,
    /// Octave chunks of this stripe's calls in the site's two histograms.
    pub(crate) success_lane: Lane,
    pub(crate) failure_lane: Lane,
    /// The octave of this stripe's last success and its chunk. Failures, rarer, read their
    /// lane every time: a second one would take the stripe past its 256 bytes.
    pub(crate) success_last: LastChunk,
}

impl Stripe {
    /// Calls in flight that started on this stripe.
    fn in_flight(&self) -> u32 {
        // The ends counted elsewhere first: a call counted there started before (its start
        // happens before its end, and the locked add publishes both), so this never reads an
        // end without its start.
        let elsewhere = self.left_elsewhere.load(SeqCst);
        calls_between(self.current.load(SeqCst), elsewhere)
    }
}

/// The calls in flight on a stripe whose wrapping counters of calls started (less those ended
/// on it) and of those ended elsewhere are `started` and `ended`.
fn calls_between(started: u32, ended: u32) -> u32 {
    // Reinterpreted as signed: a difference read mid-update may be briefly below zero.
    #[allow(clippy::cast_possible_wrap)]
    let n = started.wrapping_sub(ended) as i32;
    clamp_count(i64::from(n))
}

/// An in-flight count as the bounds keep it (never below zero; saturating far above any real
/// concurrency).
fn clamp_count(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// Distinct error kinds the process keeps apart, over all its sites; a kind first seen after
/// that is counted as `other` at the sites that had not seen it yet.
const MAX_KINDS: usize = 4096;

/// Every error kind any site has seen, in the order first seen, never emptied: a site keeps a
/// kind as its position here (two bytes, where the name would take 24). Each entry is a null
/// pointer until its kind is first seen (then it points to the name, in 16 bytes of the heap),
/// so the table is all zeros: in no binary's file, and its unused pages never mapped. (A
/// table of `OnceLock`s, whose empty state is not zero, put 96 KiB into every binary.)
static KIND_NAMES: [OnceBox<&'static str>; MAX_KINDS] = [const { OnceBox::new() }; MAX_KINDS];

const _: () = assert!(MAX_KINDS < u16::MAX as usize, "a kind's position + 1 fits a u16");

/// Whether two kind names are one kind: the same string, most often at the same address.
fn same_kind(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// The name of entry `id` (position + 1) of [`KIND_NAMES`], once it is set.
fn kind_name(id: u16) -> Option<&'static str> {
    KIND_NAMES.get(usize::from(id).checked_sub(1)?)?.get().copied()
}

/// Whether entry `id` (position + 1) of [`KIND_NAMES`] is `kind`.
fn is_kind(id: u16, kind: &'static str) -> bool {
    kind_name(id).is_some_and(|name| same_kind(name, kind))
}

/// `kind`'s position + 1 in [`KIND_NAMES`], added if new; `None` once the table is full.
/// Scans the filled entries: it runs at a kind's first sight at a site, the only time an error
/// may wait, and allocate the entry's 16 bytes (the monitor's, not the call's).
fn kind_id(kind: &'static str) -> Option<u16> {
    KIND_NAMES.iter().zip(1..).find_map(|(name, id)| {
        let claimed = match name.get() {
            Some(k) => *k,
            // Another thread may claim the entry first: its kind is the entry's, ours is freed.
            None => *crate::alloc::uncounted(|| name.get_or_init(|| Box::new(kind))),
        };
        same_kind(claimed, kind).then_some(id)
    })
}

/// Error counts by kind. Slots fill in order and never empty, so a kind is found by scanning the
/// filled prefix, and two threads racing to add the same new kind meet on the same slot.
pub(crate) struct ErrorKinds {
    /// The kind of each slot, as its position + 1 in [`KIND_NAMES`] (0: empty).
    ids: [AtomicU16; KIND_SLOTS],
    counts: [AtomicU64; KIND_SLOTS],
    other: AtomicU64,
}

impl ErrorKinds {
    fn new() -> Self {
        Self {
            ids: std::array::from_fn(|_| AtomicU16::new(0)),
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            other: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, kind: &'static str) {
        for (slot, count) in self.ids.iter().zip(&self.counts) {
            let id = match slot.load(Relaxed) {
                // First sight of a kind at this site, never more than KIND_SLOTS times.
                0 => {
                    let Some(new) = kind_id(kind) else { break };
                    match slot.compare_exchange(0, new, Relaxed, Relaxed) {
                        Ok(_) => new,
                        Err(id) => id,
                    }
                }
                id => id,
            };
            if is_kind(id, kind) {
                count.fetch_add(1, Relaxed);
                return;
            }
        }
        self.other.fetch_add(1, Relaxed);
    }

    pub(crate) fn read(&self) -> Vec<(&'static str, u64)> {
        // Slots fill in order: the first empty one ends the kinds seen.
        let mut out: Vec<_> = self
            .ids
            .iter()
            .zip(&self.counts)
            .map_while(|(id, count)| {
                let id = id.load(Relaxed);
                (id != 0).then(|| (kind_name(id), count))
            })
            .filter_map(|(name, count)| Some((name?, count.load(Relaxed))))
            .filter(|(_, n)| *n > 0)
            .collect();
        match self.other.load(Relaxed) {
            0 => {}
            n => out.push(("other", n)),
        }
        out.sort_unstable_by(|a, b| a.0.cmp(b.0));
        out
    }
}

/// What a site records, allocated on its first call.
pub(crate) struct SiteState {
    pub(crate) id: u32,
    /// Read by every call, written only when a bound it keeps moves or a stripe is first written.
    peaks: CachePadded<Peaks>,
    stripes: Box<[CachePadded<Stripe>]>,
    /// The chunks of the site's two histograms, taken from the process's store as their
    /// octaves are first reached.
    pub(crate) chunks: SharedChunks,
    pub(crate) success_times: Times,
    pub(crate) failure_times: Times,
    pub(crate) kinds: ErrorKinds,
    /// Caller keys: 0 is an empty slot, [`ENTRY_KEY`] is entry, else the caller's id + 1.
    caller_keys: [AtomicU32; CALLER_SLOTS],
    /// Poll counts, one per stripe, made at the site's first poll timed (see `crate::polls`).
    polls: OnceLock<Box<[CachePadded<PollStripe>]>>,
    /// The site's `tracing` callsite, made at its first call a subscriber may want.
    #[cfg(feature = "tracing")]
    pub(crate) tracing: crate::tracing_spans::Slot,
}

/// What one stripe counts of the polls timed.
#[derive(Default)]
struct PollStripe {
    polls: AtomicU64,
    slow: AtomicU64,
    busy_ns: AtomicU64,
    longest_ns: AtomicU64,
}

/// The in-flight highwater, kept exact without a counter every call writes.
///
/// Each stripe counts its own calls in flight, and publishes here a bound at least as high (it
/// raises its bound before anything can depend on it, and only a settling pass lowers it). A
/// starting call adds the bounds up: if the sum is within the highwater, no count can exceed it
/// and the call is done, having read one line nobody writes; that is every call once the
/// highwater is reached. Otherwise it settles: reads every stripe's count, raises the highwater
/// to their sum, and lowers bounds to what is in flight.
///
/// A call and the stripes it races with meet through sequentially consistent operations (its
/// count and their bounds, their counts and its bound), so of two calls starting together at
/// least one sees the other. What settling sums is a series of loads, not one instant, so a
/// call that ends while another settles may be missed: calls that overlap for longer than a
/// settling pass always count.
struct Peaks {
    bounds: [AtomicU32; MAX_STRIPES],
    highwater: AtomicU64,
    /// Stripes a call has written, one bit each: readers visit only those (the others hold
    /// nothing but zeros), which for a site called from one thread is a quarter of its lines.
    /// Set once per stripe, by the first call to write it, before it writes.
    written: AtomicU64,
}

const _: () = assert!(MAX_STRIPES <= 64, "one bit per stripe in `Peaks::written`");

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

/// Set in a thread's stripe index when the thread owns the stripe (fits a `u32`; masking the
/// index with the number of stripes drops it).
pub(crate) const OWNED: usize = 1 << 31;

/// Which stripe indices a thread owns.
static OWNERS: [AtomicBool; MAX_STRIPES] = [const { AtomicBool::new(false) }; MAX_STRIPES];

/// Stripes threads may own: all but a quarter (at least one), which the other threads share.
/// A program's busy threads (a worker per CPU, its main thread) mostly fit in the first.
fn ownable() -> usize {
    let n = stripes();
    n - (n / 4).max(1)
}

/// A stripe index for a new thread to own: the first ownable one no living thread owns.
/// Until the thread gives it back ([`release_stripe`]), no other thread writes its stripe of
/// any site but what [`Stripe`] says.
pub(crate) fn claim_stripe() -> Option<usize> {
    OWNERS.iter().take(ownable()).position(|owner| {
        // Acquire: the stores of the thread that owned it before happen before this one's.
        owner.compare_exchange(false, true, Acquire, Relaxed).is_ok()
    })
}

/// Gives back a stripe index a thread owned (the thread is ending).
pub(crate) fn release_stripe(i: usize) {
    if let Some(owner) = OWNERS.get(i & !OWNED) {
        // Release: this thread's stores to the stripe happen before the next owner's.
        owner.store(false, Release);
    }
}

/// A stripe index shared by the threads that own none: one of the stripes nobody may own,
/// round robin, so concurrently started threads spread out.
pub(crate) fn shared_stripe() -> usize {
    let owned = ownable();
    owned + NEXT_STRIPE.fetch_add(1, Relaxed) % (stripes() - owned)
}

/// Sites whose statistics were made (that were called).
static CALLED: AtomicUsize = AtomicUsize::new(0);

/// Keeps a histogram chunk ready for every called site, and a few more (see
/// [`keep_chunks_ready`]).
pub(crate) fn keep_site_chunks_ready() {
    keep_chunks_ready(CALLED.load(Relaxed));
}

impl SiteState {
    pub(crate) fn new(id: u32) -> Self {
        // The site's first call may allocate, so it stocks the store its calls take from.
        CALLED.fetch_add(1, Relaxed);
        keep_site_chunks_ready();
        Self {
            id,
            peaks: CachePadded::new(Peaks {
                bounds: std::array::from_fn(|_| AtomicU32::new(0)),
                highwater: AtomicU64::new(0),
                written: AtomicU64::new(0),
            }),
            stripes: (0..stripes()).map(|_| CachePadded::new(Stripe::default())).collect(),
            chunks: SharedChunks::new(),
            success_times: Times::new(),
            failure_times: Times::new(),
            kinds: ErrorKinds::new(),
            caller_keys: std::array::from_fn(|_| AtomicU32::new(0)),
            polls: OnceLock::new(),
            #[cfg(feature = "tracing")]
            tracing: crate::tracing_spans::Slot::default(),
        }
    }

    /// Counts a poll of `ns` timed on stripe `i`.
    #[inline]
    pub(crate) fn record_poll(&self, i: usize, ns: u64) {
        let stripes = self.polls.get_or_init(|| {
            (0..self.stripes.len()).map(|_| CachePadded::new(PollStripe::default())).collect()
        });
        let s = &stripes[i & (stripes.len() - 1)];
        s.polls.fetch_add(1, Relaxed);
        if ns >= SLOW_POLL_NS {
            s.slow.fetch_add(1, Relaxed);
        }
        s.busy_ns.fetch_add(ns, Relaxed);
        if ns > s.longest_ns.load(Relaxed) {
            s.longest_ns.fetch_max(ns, Relaxed);
        }
    }

    /// The polls timed, if any was.
    pub(crate) fn read_polls(&self) -> Option<PollStats> {
        let stripes = self.polls.get()?;
        let mut p = PollStats::default();
        let mut busy = 0u64;
        let mut longest = 0u64;
        for s in stripes.iter() {
            p.polls += s.polls.load(Relaxed);
            p.slow_polls += s.slow.load(Relaxed);
            busy = busy.saturating_add(s.busy_ns.load(Relaxed));
            longest = longest.max(s.longest_ns.load(Relaxed));
        }
        p.busy = Duration::from_nanos(busy);
        p.longest = Duration::from_nanos(longest);
        Some(p)
    }

    /// Stripe `i` (this thread's), for a call's end to count on.
    #[inline(always)]
    pub(crate) fn stripe(&self, i: usize) -> &Stripe {
        // The number of stripes is a power of two: a mask, not a division, on every call.
        let i = i & (self.stripes.len() - 1);
        self.mark_written(i);
        &self.stripes[i]
    }

    /// Marks stripe `i` as written, before anything is written to it: a load of the line of
    /// bounds every call reads, and a write of it once per stripe.
    #[inline(always)]
    fn mark_written(&self, i: usize) {
        let bit = 1 << i;
        if self.peaks.written.load(Relaxed) & bit == 0 {
            self.peaks.written.fetch_or(bit, Relaxed);
        }
    }

    /// The stripes a call has written.
    fn written_stripes(&self) -> impl Iterator<Item = &Stripe> {
        let written = self.peaks.written.load(Relaxed);
        let stripes = self.stripes.iter().enumerate();
        stripes.filter(move |(i, _)| written & (1 << i) != 0).map(|(_, s)| &**s)
    }

    /// Counts a call starting on stripe `i` (this thread's): in flight, highwater, and the
    /// caller edge.
    #[inline(always)]
    pub(crate) fn begin(&self, i: usize, caller_key: u32) {
        let sole = i & OWNED != 0;
        let i = i & (self.stripes.len() - 1);
        self.mark_written(i);
        let stripe = &self.stripes[i];
        let started = stripe.current.fetch_add(1, SeqCst).wrapping_add(1);
        // Ends counted by other threads lag at most: `now` may be above the stripe's true count,
        // which only raises its bound.
        let now = calls_between(started, stripe.left_elsewhere.load(Relaxed));
        let bounds = &self.peaks.bounds[..self.stripes.len()];
        if let Some(bound) = bounds.get(i) {
            if now > bound.load(SeqCst) {
                bound.fetch_max(now, SeqCst);
            }
        }
        let sum: u64 = bounds.iter().map(|b| u64::from(b.load(SeqCst))).sum();
        if sum > self.peaks.highwater.load(SeqCst) {
            self.settle();
        }
        add(&stripe.callers[self.caller_slot(caller_key)], 1, sole);
    }

    /// The lanes of the site's success histogram, one per stripe.
    pub(crate) fn success_lanes(&self) -> StripeLanes<'_> {
        StripeLanes { stripes: &self.stripes, failure: false, written: u64::MAX }
    }

    /// The lanes of the site's failure histogram, one per stripe.
    pub(crate) fn failure_lanes(&self) -> StripeLanes<'_> {
        StripeLanes { stripes: &self.stripes, failure: true, written: u64::MAX }
    }

    /// The lanes of the site's success (or `failure`) histogram for a reader: those of the
    /// stripes a call has written.
    pub(crate) fn written_lanes(&self, failure: bool) -> StripeLanes<'_> {
        StripeLanes { stripes: &self.stripes, failure, written: self.peaks.written.load(Relaxed) }
    }

    /// Counts a call that started on stripe `started` ending on stripe `here` (this thread's).
    /// The thread that owns the stripe a call started on ends it with a plain store, most calls:
    /// a locked subtraction here cost 2.5 ns of a 33 ns call.
    #[inline(always)]
    pub(crate) fn end(&self, started: usize, here: usize) {
        let stripe = &self.stripes[started & (self.stripes.len() - 1)];
        if started & OWNED == 0 {
            stripe.current.fetch_sub(1, Relaxed);
        } else if started == here {
            // This thread owns the stripe: nobody else writes `current`.
            let current = stripe.current.load(Relaxed);
            stripe.current.store(current.wrapping_sub(1), Relaxed);
        } else {
            stripe.left_elsewhere.fetch_add(1, Release);
        }
    }

    /// Raises the highwater to the calls in flight, and lowers each stripe's bound to its count.
    #[cold]
    #[inline(never)]
    fn settle(&self) {
        let mut total = 0u64;
        for (stripe, bound) in self.stripes.iter().zip(&self.peaks.bounds) {
            let now = stripe.in_flight();
            total += u64::from(now);
            let b = bound.load(SeqCst);
            // A call starting on that stripe meanwhile either sees the lowered bound and raises
            // it, or has counted itself before the second load below, which puts it back.
            if b > now && bound.compare_exchange(b, now, SeqCst, SeqCst).is_ok() {
                let again = stripe.in_flight();
                if again > now {
                    bound.fetch_max(again, SeqCst);
                }
            }
        }
        self.peaks.highwater.fetch_max(total, SeqCst);
    }

    #[inline(always)]
    fn caller_slot(&self, key: u32) -> usize {
        for (i, slot) in self.caller_keys.iter().enumerate() {
            match slot.load(Relaxed) {
                k if k == key => return i,
                // Slots fill in order: an empty one means the key is new; claim it.
                0 => match slot.compare_exchange(0, key, Relaxed, Relaxed) {
                    Ok(_) => return i,
                    Err(k) if k == key => return i,
                    Err(_) => {}
                },
                _ => {}
            }
        }
        CALLER_SLOTS
    }

    /// Whether one of the functions of these snapshot ids is among the callers kept apart: read
    /// from the caller keys alone, without summing the stripes.
    pub(crate) fn has_caller_among(&self, ids: &[usize]) -> bool {
        self.caller_keys.iter().any(|k| match k.load(Relaxed) {
            0 | ENTRY_KEY => false,
            k => ids.contains(&((k - 1) as usize)),
        })
    }

    pub(crate) fn read_callers(&self, name_of: impl Fn(usize) -> &'static str) -> Vec<CallerCount> {
        let mut counts = [0u64; CALLER_SLOTS + 1];
        for stripe in self.written_stripes() {
            for (sum, c) in counts.iter_mut().zip(&stripe.callers) {
                *sum += c.load(Relaxed);
            }
        }
        let mut out = Vec::new();
        for (i, &count) in counts.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let caller = match self.caller_keys.get(i).map(|k| k.load(Relaxed)) {
                None => Caller::Other,
                Some(ENTRY_KEY) => Caller::Entry,
                Some(0) => continue,
                Some(k) => {
                    let id = (k - 1) as usize;
                    Caller::Function { id, name: name_of(id) }
                }
            };
            out.push(CallerCount { caller, count });
        }
        out.sort_by(|a, b| {
            b.count.cmp(&a.count).then_with(|| a.caller.name().cmp(b.caller.name()))
        });
        out
    }

    pub(crate) fn read_counts(&self) -> Counts {
        let mut c = Counts::default();
        let mut recent_success = (0, 0);
        let mut recent_failure = (0, 0);
        for s in self.written_stripes() {
            c.current += u64::from(s.in_flight());
            c.success += s.success.load(Relaxed);
            c.panics += s.panics.load(Relaxed);
            c.cancelled += s.cancelled.load(Relaxed);
            c.allocations += s.allocations.load(Relaxed);
            c.allocated_bytes += s.allocated_bytes.load(Relaxed);
            c.success_sum += s.success_sum.get();
            c.failure_sum += s.failure_sum.get();
            recent_success = recent_success.max(s.success_recent.get());
            recent_failure = recent_failure.max(s.failure_recent.get());
        }
        c.recent_success = recent_success.1;
        c.recent_failure = recent_failure.1;
        // A stripe's count read a moment after another's may add up to more than the highwater
        // has seen: what is in flight now is itself a level reached.
        let seen = self.peaks.highwater.load(Relaxed);
        if c.current > seen {
            self.peaks.highwater.fetch_max(c.current, Relaxed);
        }
        c.highwater = seen.max(c.current);
        c
    }
}

/// One of a site's histograms, as the lanes its stripes hold.
pub(crate) struct StripeLanes<'a> {
    stripes: &'a [CachePadded<Stripe>],
    failure: bool,
    /// The stripes whose lanes are read; the others read as empty, without touching them.
    written: u64,
}

/// The lane of a stripe no call has written.
static NO_LANE: Lane = Lane::new();

impl Lanes for StripeLanes<'_> {
    fn count(&self) -> usize {
        self.stripes.len()
    }

    fn lane(&self, i: usize) -> &Lane {
        if self.written & (1 << i) == 0 {
            return &NO_LANE;
        }
        let stripe = &self.stripes[i];
        if self.failure {
            &stripe.failure_lane
        } else {
            &stripe.success_lane
        }
    }
}

#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) allocations: u64,
    pub(crate) allocated_bytes: u64,
    pub(crate) success: u64,
    pub(crate) panics: u64,
    pub(crate) cancelled: u64,
    pub(crate) success_sum: u128,
    pub(crate) failure_sum: u128,
    pub(crate) recent_success: u64,
    pub(crate) recent_failure: u64,
    pub(crate) current: u64,
    pub(crate) highwater: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    #[test]
    fn kinds_mt_no_duplicates_and_exact() {
        let kinds = Arc::new(ErrorKinds::new());
        let names: Vec<&'static str> =
            (0..80).map(|i| &*Box::leak(format!("K{i}").into_boxed_str())).collect();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let kinds = Arc::clone(&kinds);
                let names = names.clone();
                std::thread::spawn(move || {
                    for round in 0..100 {
                        for (i, n) in names.iter().enumerate() {
                            if (i + round + t) % 2 == 0 {
                                kinds.record(n);
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let read = kinds.read();
        let total: u64 = read.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 4 * 100 * 40);
        let kept: Vec<_> = read.iter().filter(|(k, _)| *k != "other").collect();
        assert_eq!(kept.len(), KIND_SLOTS);
        let mut unique: Vec<_> = kept.iter().map(|(k, _)| *k).collect();
        unique.dedup();
        assert_eq!(unique.len(), KIND_SLOTS);
    }

    #[test]
    fn sites_share_the_names_of_kinds() {
        // The same name from two places (two pointers) is one kind, at any site, and one entry
        // of the process's table.
        let (a, b) = (ErrorKinds::new(), ErrorKinds::new());
        let name: &'static str = Box::leak(String::from("SharedKindName").into_boxed_str());
        a.record("SharedKindName");
        b.record(name);
        b.record("Another");
        a.record(name);
        assert_eq!(a.read(), vec![("SharedKindName", 2)]);
        assert_eq!(b.read(), vec![("Another", 1), ("SharedKindName", 1)]);
        let entries = KIND_NAMES.iter().filter_map(OnceBox::get);
        assert_eq!(entries.filter(|n| **n == "SharedKindName").count(), 1);
    }

    /// Readers visit only the stripes marked written: a call's end counted on a stripe no call
    /// started on (the future ended on another thread) is still read, counts and histogram.
    #[test]
    fn ends_on_a_stripe_never_started_on_are_read() {
        let state = SiteState::new(0);
        state.begin(0, ENTRY_KEY);
        state.end(0, 0);
        let last = state.stripes.len() - 1;
        assert_eq!(state.read_counts().success, 0);
        let stripe = state.stripe(last);
        add(&stripe.success, 1, false);
        stripe.success_sum.add(1_000, false);
        state.success_times.record(
            1_000,
            &state.chunks,
            &stripe.success_lane,
            Some(&stripe.success_last),
            &state.success_lanes(),
            false,
        );
        let c = state.read_counts();
        assert_eq!((c.success, c.success_sum), (1, 1_000));
        let d = state.success_times.distribution(
            &state.chunks,
            &state.written_lanes(false),
            c.success,
            c.success_sum,
            0,
        );
        assert_eq!(d.buckets.iter().map(|b| b.count).sum::<u64>(), 1);
        // A stripe nothing was written to reads as empty without being visited.
        assert_eq!(state.peaks.written.load(Relaxed).count_ones(), if last == 0 { 1 } else { 2 });
    }

    #[test]
    fn a_stripe_with_its_lanes_fills_its_padding() {
        // Bigger than this and every site would pay another cache line per stripe.
        assert!(std::mem::size_of::<CachePadded<Stripe>>() <= 256);
    }

    #[test]
    fn highwater_counts_overlaps_across_stripes() {
        let state = SiteState::new(0);
        let stripes = state.stripes.len();
        // One call in flight on each stripe at once, then many calls that never overlap.
        (0..stripes).for_each(|i| state.begin(i, ENTRY_KEY));
        (0..stripes).for_each(|i| state.end(i, i));
        for i in 0..1_000 {
            state.begin(i, ENTRY_KEY);
            state.end(i, i);
        }
        let c = state.read_counts();
        assert_eq!((c.current, c.highwater), (0, stripes as u64));
        // Nested calls on one stripe; then two on each of two stripes: four at once.
        (0..6).for_each(|_| state.begin(1, ENTRY_KEY));
        assert_eq!(state.read_counts().highwater, (stripes as u64).max(6));
        (0..6).for_each(|_| state.end(1, 1));
        let state = SiteState::new(0);
        for i in [0, 0, 1, 1] {
            state.begin(i, ENTRY_KEY);
        }
        assert_eq!(state.read_counts().highwater, 4);
        for i in [0, 1, 0] {
            state.end(i, i);
        }
        state.begin(1, ENTRY_KEY);
        let c = state.read_counts();
        assert_eq!((c.current, c.highwater), (2, 4));
    }

    #[test]
    fn an_owned_stripe_counts_ends_on_other_threads_apart() {
        let state = SiteState::new(0);
        let (mine, other) = (OWNED, 1 | OWNED);
        (0..3).for_each(|_| state.begin(mine, ENTRY_KEY));
        state.end(mine, mine);
        // A future resumed on a thread owning another stripe, and on one sharing a stripe.
        state.end(mine, other);
        assert_eq!(state.read_counts().current, 1);
        state.end(mine, 3);
        let c = state.read_counts();
        assert_eq!((c.current, c.highwater), (0, 3));
        // The stripe's own count of ends lags behind: calls go on without settling.
        for _ in 0..1_000 {
            state.begin(mine, ENTRY_KEY);
            state.end(mine, mine);
        }
        assert_eq!(state.stripes[0].in_flight(), 0);
        assert_eq!(state.peaks.bounds[0].load(SeqCst), 3);
    }

    #[test]
    fn ends_on_an_owners_stripe_and_elsewhere_are_exact_together() {
        // The owner starts calls and ends half of them itself with plain stores while another
        // thread ends the other half: every end is counted, none twice.
        let state = Arc::new(SiteState::new(0));
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let ender = {
            let state = Arc::clone(&state);
            std::thread::spawn(move || rx.iter().for_each(|()| state.end(OWNED, 1 | OWNED)))
        };
        for i in 0..100_000 {
            state.begin(OWNED, ENTRY_KEY);
            if i % 2 == 0 {
                state.end(OWNED, OWNED);
            } else {
                tx.send(()).unwrap();
            }
        }
        drop(tx);
        ender.join().unwrap();
        assert_eq!(state.read_counts().current, 0);
    }

    #[test]
    fn highwater_sees_threads_that_overlap() {
        // Rounds of `n` threads, each starting a call, then all waiting until every call has
        // started: the highwater must reach exactly the largest round, with no shared counter.
        let state = Arc::new(SiteState::new(0));
        let mut most = 0;
        for n in [2, 3, 5, 4, 1] {
            most = n.max(most);
            let barrier = Arc::new(std::sync::Barrier::new(n));
            let threads: Vec<_> = (0..n)
                .map(|t| {
                    let (state, barrier) = (Arc::clone(&state), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        for _ in 0..200 {
                            state.begin(t, ENTRY_KEY);
                            state.end(t, t);
                        }
                        state.begin(t, ENTRY_KEY);
                        barrier.wait();
                        state.end(t, t);
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            let c = state.read_counts();
            assert_eq!((c.current, c.highwater), (0, most as u64));
        }
    }

    #[test]
    fn caller_slots_mt() {
        let state = Arc::new(SiteState::new(0));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let state = Arc::clone(&state);
                std::thread::spawn(move || {
                    for i in 0..10_000u32 {
                        let key = 1 + (i + t) % 12;
                        state.begin(t as usize, key);
                        state.end(t as usize, t as usize);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let callers = state.read_callers(|_| "f");
        assert_eq!(callers.iter().map(|c| c.count).sum::<u64>(), 40_000);
        assert_eq!(callers.iter().filter(|c| c.caller != Caller::Other).count(), CALLER_SLOTS);
        let c = state.read_counts();
        assert_eq!(c.current, 0);
        assert!((1..=4).contains(&c.highwater));
    }
}
