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
