//! Reading gauges, whose callbacks are the user's code, without letting one that is slow hold
//! a snapshot (and every page and scrape waiting on it): callbacks run on a thread of their
//! own, a snapshot gives each of them at most [`gauge_time_limit`], and a gauge that has not
//! answered by then (with those after it in the same round) shows the last value it gave,
//! marked stale and counted.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// A gauge's callback with the last value it gave.
pub(crate) struct GaugeCell {
    read: Box<dyn Fn() -> f64 + Send + Sync>,
    /// The last value read, as `f64` bits.
    last: AtomicU64,
    /// The round that last read it (0: never).
    round: AtomicU64,
}

impl GaugeCell {
    pub(crate) fn new(read: impl Fn() -> f64 + Send + Sync + 'static) -> Arc<GaugeCell> {
        Arc::new(GaugeCell {
            read: Box::new(read),
            last: AtomicU64::new(0),
            round: AtomicU64::new(0),
        })
    }

    /// Calls the callback: a panic or a value that is not finite reads as 0.
    fn read_now(&self, round: u64) {
        let v = catch_unwind(AssertUnwindSafe(|| (self.read)())).unwrap_or(0.0);
        let v = if v.is_finite() { v } else { 0.0 };
        self.last.store(v.to_bits(), Relaxed);
        self.round.store(round, Relaxed);
    }
}

/// A gauge's value in a snapshot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reading {
    pub(crate) value: f64,
    /// Its callback did not answer in time: `value` is the last it gave (0 if none yet).
    pub(crate) stale: bool,
}

const DEFAULT_LIMIT_MS: u64 = 250;
static LIMIT_MS: AtomicU64 = AtomicU64::new(DEFAULT_LIMIT_MS);
/// Gauge reads that missed the time limit, in all.
static STALE: AtomicU64 = AtomicU64::new(0);

/// Sets how long a snapshot waits for each gauge's callback (250 ms by default). A gauge that
/// has not answered by then is shown with its last value, marked stale, and counted in
/// [`stale_gauge_reads`] (so are the gauges still to be read after it); its callback goes on
/// in the background and no gauge is called again until it returns.
///
/// ```
/// use std::time::Duration;
/// monitor_core::set_gauge_time_limit(Duration::from_millis(500));
/// assert_eq!(monitor_core::gauge_time_limit(), Duration::from_millis(500));
/// # monitor_core::set_gauge_time_limit(Duration::from_millis(250));
/// ```
pub fn set_gauge_time_limit(limit: Duration) {
    LIMIT_MS.store(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1), Relaxed);
}

/// How long a snapshot waits for each gauge ([`set_gauge_time_limit`]).
///
/// ```
/// assert!(monitor_core::gauge_time_limit() > std::time::Duration::ZERO);
/// ```
pub fn gauge_time_limit() -> Duration {
    Duration::from_millis(LIMIT_MS.load(Relaxed))
}

/// How many gauge reads missed the time limit since the program started.
///
/// ```
/// let _ = monitor_core::stale_gauge_reads();
/// ```
pub fn stale_gauge_reads() -> u64 {
    STALE.load(Relaxed)
}

/// The reading thread: takes rounds of cells, reads each, and says when a round is done.
struct Reader {
    rounds: SyncSender<(u64, Vec<Arc<GaugeCell>>)>,
    state: Mutex<ReaderState>,
    cond: Condvar,
}

#[derive(Default)]
struct ReaderState {
    /// A round is being read.
    busy: bool,
    /// The last round done.
    done: u64,
    /// The last round handed out.
    last: u64,
    /// Callbacks that have returned, in all: a snapshot waits while this moves.
    progress: u64,
}

fn reader() -> Option<&'static Reader> {
    static READER: OnceLock<Option<&'static Reader>> = OnceLock::new();
    *READER.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel::<(u64, Vec<Arc<GaugeCell>>)>(1);
        let reader: &'static Reader = Box::leak(Box::new(Reader {
            rounds: tx,
            state: Mutex::new(ReaderState::default()),
            cond: Condvar::new(),
        }));
        std::thread::Builder::new()
            .name("monitor-gauges".into())
            .spawn(move || {
                for (round, cells) in rx {
                    for cell in &cells {
                        cell.read_now(round);
                        reader.lock().progress += 1;
                        reader.cond.notify_all();
                    }
                    let mut st = reader.lock();
                    st.done = round;
                    st.busy = false;
                    drop(st);
                    reader.cond.notify_all();
                }
            })
            .ok()?;
        Some(reader)
    })
}

impl Reader {
    fn lock(&self) -> MutexGuard<'_, ReaderState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `ready`, giving each callback that runs meanwhile the time limit; `false`
    /// if one took longer.
    fn wait<'a>(
        &self,
        mut st: MutexGuard<'a, ReaderState>,
        ready: impl Fn(&ReaderState) -> bool,
    ) -> (MutexGuard<'a, ReaderState>, bool) {
        let limit = gauge_time_limit();
        let mut seen = st.progress;
        let mut deadline = Instant::now() + limit;
        while !ready(&st) {
            if st.progress != seen {
                seen = st.progress;
                deadline = Instant::now() + limit;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (st, false);
            }
            st = self.cond.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        (st, true)
    }
}

/// Reads `cells`, giving each callback at most the time limit; the readings are in the same
/// order.
pub(crate) fn read_all(cells: &[Arc<GaugeCell>]) -> Vec<Reading> {
    if cells.is_empty() {
        return Vec::new();
    }
    let Some(reader) = reader() else {
        // No thread to be had: read here, as before there was one.
        for cell in cells {
            cell.read_now(u64::MAX);
        }
        return readings(cells, u64::MAX);
    };
    // Another snapshot's round first; one stuck in a slow callback makes this one stale.
    let (mut st, free) = reader.wait(reader.lock(), |st| !st.busy);
    let round = st.last + 1;
    if !free {
        return readings(cells, round);
    }
    st.last = round;
    st.busy = true;
    if reader.rounds.try_send((round, cells.to_vec())).is_err() {
        // The reading thread is gone: nothing is being read.
        st.busy = false;
        return readings(cells, round);
    }
    let _ = reader.wait(st, |st| st.done >= round);
    readings(cells, round)
}

fn readings(cells: &[Arc<GaugeCell>], round: u64) -> Vec<Reading> {
    cells
        .iter()
        .map(|c| {
            let stale = c.round.load(Relaxed) < round;
            if stale {
                STALE.fetch_add(1, Relaxed);
            }
            Reading { value: f64::from_bits(c.last.load(Relaxed)), stale }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_gauge_is_stale_and_holds_no_one() {
        let fast = GaugeCell::new(|| 2.0);
        let slow = GaugeCell::new(|| {
            std::thread::sleep(Duration::from_millis(600));
            7.0
        });
        let nan = GaugeCell::new(|| f64::NAN);
        set_gauge_time_limit(Duration::from_millis(100));
        let cells = vec![Arc::clone(&fast), Arc::clone(&slow), Arc::clone(&nan)];
        let before = stale_gauge_reads();
        let start = Instant::now();
        let first = read_all(&cells);
        // Wall clock: the wait is bounded by the limit, set to 100 ms here, far below the slow
        // callback's 600 ms; the bound checked leaves room for a loaded machine.
        assert!(start.elapsed() < Duration::from_millis(500), "{:?}", start.elapsed());
        assert!(first[1].stale);
        assert_eq!(first[1].value, 0.0, "never read yet");
        assert!(stale_gauge_reads() > before);
        // While the slow callback runs, a snapshot waits the limit for it once more, then shows
        // every gauge stale.
        let start = Instant::now();
        let second = read_all(&cells);
        assert!(start.elapsed() < Duration::from_millis(500));
        assert!(second.iter().all(|r| r.stale));
        // Once it has returned, every gauge is read again, fresh.
        let reader = reader().unwrap();
        drop(reader.wait(reader.lock(), |st| !st.busy));
        while slow.round.load(Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let fast_only = vec![Arc::clone(&fast), Arc::clone(&nan)];
        let third = read_all(&fast_only);
        assert_eq!(
            third,
            vec![Reading { value: 2.0, stale: false }, Reading { value: 0.0, stale: false }]
        );
        assert_eq!(f64::from_bits(slow.last.load(Relaxed)), 7.0);
        set_gauge_time_limit(Duration::from_millis(DEFAULT_LIMIT_MS));
    }

    #[test]
    fn a_gauge_that_panics_reads_as_zero() {
        let cell = GaugeCell::new(|| panic!("no value"));
        cell.last.store(5.0f64.to_bits(), Relaxed);
        cell.read_now(3);
        assert_eq!((f64::from_bits(cell.last.load(Relaxed)), cell.round.load(Relaxed)), (0.0, 3));
    }
}
