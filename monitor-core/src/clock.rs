//! The clock of the hot path: raw TSC reads (through `quanta`) where the CPU has an invariant
//! TSC, the OS monotonic clock elsewhere. Two raw reads cost about half of two
//! `std::time::Instant::now()`.

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

static ANCHOR: std::sync::RwLock<Option<Anchor>> = std::sync::RwLock::new(None);

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
    let current = *ANCHOR.read().unwrap_or_else(std::sync::PoisonError::into_inner);
    let anchor = match current {
        Some(a) if tick < a.tick || nanos_between(a.tick, tick) < ANCHOR_LIFE_NS => a,
        _ => {
            let fresh = measure_anchor();
            *ANCHOR.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(fresh);
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
}
