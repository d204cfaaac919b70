//! Poll timing: while it is switched on, every poll of a monitored async function is timed, and
//! its site counts its polls, its slow polls, the time its polls took in all (the time the
//! function really ran on an executor thread, as opposed to its latency, which includes its
//! waits), and its longest single poll. A poll that runs long blocks every other task of its
//! executor thread: the classic async bug, found here without `tokio_unstable` or a console.
//!
//! Off by default. Off, it costs a poll one relaxed load of a flag; on, two more clock reads
//! and four relaxed atomic operations on the thread's stripe (`bench/` measures both).
//!
//! ```
//! use std::time::Duration;
//!
//! #[monitor_core::monitored(name = "polls_doc::work")]
//! async fn work() {
//!     std::thread::sleep(Duration::from_millis(2)); // blocks its executor thread
//! }
//!
//! monitor_core::polls::set_enabled(true);
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! rt.block_on(work());
//! let snap = monitor_core::registry().snapshot();
//! let polls = snap.function("polls_doc::work").unwrap().polls.unwrap();
//! assert_eq!((polls.polls, polls.slow_polls), (1, 1));
//! assert!(polls.longest >= Duration::from_millis(2));
//! ```

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// A poll that takes at least this long counts as slow: 50 µs, the threshold tokio-metrics
/// uses, past which the tasks queued behind it on its thread are visibly delayed.
pub const SLOW_POLL: Duration = Duration::from_micros(50);

static ON: AtomicBool = AtomicBool::new(false);

/// Switches poll timing on or off, for every monitored async function at once. Counts kept so
/// far stay; a site's poll counts are allocated at its first poll while timing is on.
///
/// ```
/// monitor_core::polls::set_enabled(true);
/// assert!(monitor_core::polls::is_enabled());
/// monitor_core::polls::set_enabled(false);
/// ```
pub fn set_enabled(on: bool) {
    ON.store(on, Relaxed);
}

/// Whether polls are timed now.
///
/// ```
/// let _timed: bool = monitor_core::polls::is_enabled();
/// ```
#[inline(always)]
pub fn is_enabled() -> bool {
    ON.load(Relaxed)
}
