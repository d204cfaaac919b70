//! The clock of the hot path: raw TSC reads (through `quanta`) where the CPU has an invariant
//! TSC, the OS monotonic clock elsewhere. Two raw reads cost about half of two
//! `std::time::Instant::now()`.

use std::sync::atomic::{
    fence, AtomicU64, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};
use std::sync::OnceLock;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

#[inline(always)]
pub(crate) fn clock() -> &'static quanta::Clock {
    match CLOCK.get() {
        Some(c) => c,
        None => init(),
    }
}

#[cold]
#[inline(never)]
fn init() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// A raw clock reading; only differences of two readings, through [`nanos_between`], mean time.
#[inline(always)]
pub(crate) fn now() -> u64 {
    clock().raw()
}

#[inline(always)]
pub(crate) fn nanos_between(start: u64, end: u64) -> u64 {
    clock().delta_as_nanos(start, end)
}

/// A raw reading paired with the wall clock at the same moment.
#[derive(Clone, Copy)]
struct Anchor {
    tick: u64,
    unix_ns: u64,
}

/// An anchor shared by every thread, as a sequence lock over atomics: `seq` is odd while a
/// writer stores the pair and zero before the first. Readers never wait: one that meets a
/// write in progress measures an anchor of its own. (Recorded spans read it at their start and
/// end, on every thread: a lock's shared counter would be written by all of them.)
struct AnchorCell {
    seq: AtomicU64,
    tick: AtomicU64,
    unix_ns: AtomicU64,
}

impl AnchorCell {
    const fn new() -> AnchorCell {
        AnchorCell { seq: AtomicU64::new(0), tick: AtomicU64::new(0), unix_ns: AtomicU64::new(0) }
    }

    /// The stored anchor; none before the first, or while one is being stored.
    fn load(&self) -> Option<Anchor> {
        let before = self.seq.load(Acquire);
        let tick = self.tick.load(Relaxed);
        let unix_ns = self.unix_ns.load(Relaxed);
        fence(Acquire);
        let after = self.seq.load(Relaxed);
        (before != 0 && before % 2 == 0 && before == after).then_some(Anchor { tick, unix_ns })
    }

    /// Stores `anchor` unless another thread is storing one now (theirs is as good).
    fn store(&self, anchor: Anchor) {
        let seq = self.seq.load(Relaxed);
        if seq % 2 == 1 || self.seq.compare_exchange(seq, seq + 1, Relaxed, Relaxed).is_err() {
            return;
        }
        fence(Release);
        self.tick.store(anchor.tick, Relaxed);
        self.unix_ns.store(anchor.unix_ns, Relaxed);
        self.seq.store(seq + 2, Release);
    }
}

static ANCHOR: AnchorCell = AnchorCell::new();

/// How long an anchor serves before it is measured again (the wall clock may be slewed).
const ANCHOR_LIFE_NS: u64 = 60_000_000_000;

/// Pairs a raw reading with the wall clock: of five tries, the one whose two raw readings
/// around the wall-clock read are closest (a thread preempted in between gives a wide pair).
fn measure_anchor() -> Anchor {
    let mut best: Option<(u64, Anchor)> = None;
    for _ in 0..5 {
        let t0 = now();
        let unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let t1 = now();
        let gap = t1.wrapping_sub(t0);
        if best.is_none_or(|(g, _)| gap < g) {
            best = Some((gap, Anchor { tick: t0.wrapping_add(gap / 2), unix_ns }));
        }
    }
    best.map_or(Anchor { tick: now(), unix_ns: 0 }, |(_, a)| a)
}

/// The wall-clock time (ns since the Unix epoch) of a raw reading. Every reading maps through
/// one shared anchor, so times keep the raw clock's order across threads (two separate
/// wall-clock reads would not: a thread preempted between its raw and wall reads shifts its
/// time by the preemption).
pub(crate) fn unix_ns_at(tick: u64) -> u64 {
    let anchor = match ANCHOR.load() {
        Some(a) if tick < a.tick || nanos_between(a.tick, tick) < ANCHOR_LIFE_NS => a,
        _ => {
            let fresh = measure_anchor();
            ANCHOR.store(fresh);
            fresh
        }
    };
    if tick >= anchor.tick {
        anchor.unix_ns.saturating_add(nanos_between(anchor.tick, tick))
    } else {
        anchor.unix_ns.saturating_sub(nanos_between(tick, anchor.tick))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_times_follow_the_raw_clock_and_the_wall_clock() {
        let wall = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        };
        let before = wall();
        let ticks: Vec<u64> = (0..1000).map(|_| now()).collect();
        let after = wall();
        let times: Vec<u64> = ticks.iter().map(|&t| unix_ns_at(t)).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "in the raw clock's order");
        // Within a millisecond of the wall clock around them.
        assert!(times[0] + 1_000_000 >= before && times[999] <= after + 1_000_000);
        // A reading older than the anchor maps back in time.
        assert!(unix_ns_at(ticks[0]) == times[0]);
    }

    #[test]
    fn the_anchor_is_read_whole_while_threads_store_it() {
        let cell = AnchorCell::new();
        assert!(cell.load().is_none(), "nothing stored yet");
        let stop = std::sync::atomic::AtomicBool::new(false);
        let (whole, torn) = std::thread::scope(|s| {
            for w in 0..2u64 {
                let (stop, cell) = (&stop, &cell);
                s.spawn(move || {
                    let mut k = w + 1;
                    while !stop.load(Relaxed) {
                        cell.store(Anchor { tick: k, unix_ns: k.wrapping_mul(3) });
                        k += 2;
                        std::thread::yield_now();
                    }
                });
            }
            // 100,000 reads, and on until one saw a store: under load the writers may start
            // late (a wait bounded by the test's own timeout; it asserts nothing about speed).
            let (mut whole, mut torn, mut reads) = (0u32, 0u32, 0u32);
            while reads < 100_000 || whole + torn == 0 {
                reads = reads.saturating_add(1);
                match cell.load() {
                    Some(a) if a.unix_ns == a.tick.wrapping_mul(3) => whole += 1,
                    Some(_) => torn += 1,
                    None => std::thread::yield_now(),
                }
            }
            stop.store(true, Relaxed);
            (whole, torn)
        });
        assert_eq!(torn, 0, "torn anchors ({whole} whole)");
        assert!(whole > 0, "no read saw a stored anchor");
        assert_eq!(cell.load().map(|a| a.unix_ns % 3), Some(0));
    }
}
