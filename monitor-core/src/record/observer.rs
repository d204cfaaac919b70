//! Span observers: finished spans of sampled (and kept failed) traces, handed to user code on
//! its own thread through a bounded queue that never blocks a monitored call.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{mode, sampling_on, set_mode, SpanRecord};

/// Receives finished spans, in batches, on a thread of its own (exporters implement this).
///
/// Spans arrive as they end — children usually before their parents — for traces that are
/// sampled ([`set_sample_ratio`](super::set_sample_ratio)), and all at once for failed traces
/// kept by [`keep_failed_traces`](super::keep_failed_traces).
///
/// ```
/// use std::sync::Arc;
/// use monitor_core::trace::{SpanObserver, SpanRecord};
///
/// struct Print;
/// impl SpanObserver for Print {
///     fn observe(&mut self, spans: &[Arc<SpanRecord>]) {
///         for s in spans {
///             println!("{} {} {} ns", s.trace_id, s.name, s.duration_ns);
///         }
///     }
/// }
/// let handle = monitor_core::trace::add_observer("print", Print, 1024);
/// handle.shutdown();
/// ```
pub trait SpanObserver: Send + 'static {
    /// Handles a batch of finished spans (at most a few hundred).
    fn observe(&mut self, spans: &[Arc<SpanRecord>]);

    /// Called once when the observer is shut down, after the last batch.
    fn flush(&mut self) {}
}

struct Slot {
    name: String,
    tx: SyncSender<Arc<SpanRecord>>,
    /// Apart from the sender, so the gauges that read them do not keep the channel open.
    counts: Arc<Counts>,
}

impl Slot {
    fn stats(&self) -> ObserverStats {
        ObserverStats {
            name: self.name.clone(),
            delivered: self.counts.delivered.load(Relaxed),
            dropped: self.counts.dropped.load(Relaxed),
        }
    }
}

#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    dropped: AtomicU64,
}

static OBSERVERS: RwLock<Vec<Arc<Slot>>> = RwLock::new(Vec::new());

/// Most spans handed to [`SpanObserver::observe`] at once.
const BATCH: usize = 512;

pub(crate) fn refresh_mode() {
    let any = !OBSERVERS.read().unwrap_or_else(PoisonError::into_inner).is_empty();
    set_mode(mode::SAMPLE, any || sampling_on());
}

/// Hands a finished span to every observer without blocking; a full queue drops it (counted).
pub(crate) fn deliver(record: &Arc<SpanRecord>) {
    let observers = OBSERVERS.read().unwrap_or_else(PoisonError::into_inner);
    for slot in observers.iter() {
        match slot.tx.try_send(Arc::clone(record)) {
            Ok(()) => slot.counts.delivered.fetch_add(1, Relaxed),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                slot.counts.dropped.fetch_add(1, Relaxed)
            }
        };
    }
}

/// Registers an observer with a queue of `capacity` spans (at least 1) and starts its thread.
/// Keep the handle: dropping it (or [`ObserverHandle::shutdown`]) stops the observer after it
/// has handled what is queued.
///
/// ```
/// # use std::sync::Arc;
/// # struct Nop;
/// # impl monitor_core::trace::SpanObserver for Nop { fn observe(&mut self, _: &[Arc<monitor_core::trace::SpanRecord>]) {} }
/// let h = monitor_core::trace::add_observer("nop", Nop, 4096);
/// assert_eq!(monitor_core::trace::observers().iter().filter(|o| o.name == "nop").count(), 1);
/// h.shutdown();
/// ```
pub fn add_observer(
    name: impl Into<String>,
    observer: impl SpanObserver,
    capacity: usize,
) -> ObserverHandle {
    add_batching_observer(name, observer, capacity, BATCH, Duration::ZERO)
}

/// [`add_observer`] with batches of up to `batch` spans (at least 1) that wait up to `linger`
/// after their first span for more: fewer, fuller calls of [`SpanObserver::observe`], as an
/// exporter wants for its requests (the OpenTelemetry SDK's batch processor sends up to 512
/// spans, 5 s after the first). A shutdown cuts the wait short.
///
/// ```
/// # use std::sync::Arc;
/// # struct Nop;
/// # impl monitor_core::trace::SpanObserver for Nop { fn observe(&mut self, _: &[Arc<monitor_core::trace::SpanRecord>]) {} }
/// use std::time::Duration;
/// let h = monitor_core::trace::add_batching_observer("batches", Nop, 4096, 512, Duration::from_secs(5));
/// h.shutdown();
/// ```
pub fn add_batching_observer(
    name: impl Into<String>,
    observer: impl SpanObserver,
    capacity: usize,
    batch: usize,
    linger: Duration,
) -> ObserverHandle {
    let (tx, rx) = mpsc::sync_channel(capacity.max(1));
    let slot = Arc::new(Slot { name: name.into(), tx, counts: Arc::default() });
    let (done_tx, done) = mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name(format!("monitor-observer-{}", slot.name))
        .spawn(move || {
            run(&rx, observer, batch.max(1), linger);
            let _ = done_tx.send(());
        })
        .ok();
    OBSERVERS.write().unwrap_or_else(PoisonError::into_inner).push(Arc::clone(&slot));
    refresh_mode();
    super::register_stats();
    // Its counts as gauges of the `trace` scope, tagged with its name; they stay (frozen) after
    // it is shut down, so what it delivered and dropped remains visible.
    let scope = crate::metrics::Scope::new("trace").with_tags(&[("observer", &slot.name)]);
    let (d, x) = (Arc::clone(&slot.counts), Arc::clone(&slot.counts));
    let _ = scope.gauge_described(
        "observer_delivered",
        Some("Spans queued for this observer."),
        move || d.delivered.load(Relaxed) as f64,
    );
    let _ = scope.gauge_described(
        "observer_dropped",
        Some("Spans dropped because this observer's queue was full."),
        move || x.dropped.load(Relaxed) as f64,
    );
    ObserverHandle { slot: Some(slot), thread, done }
}

fn run(
    rx: &Receiver<Arc<SpanRecord>>,
    mut observer: impl SpanObserver,
    most: usize,
    linger: Duration,
) {
    let mut batch = Vec::with_capacity(most.min(BATCH));
    while let Ok(first) = rx.recv() {
        let until = Instant::now() + linger;
        batch.push(first);
        while batch.len() < most {
            let next = match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => rx.recv_timeout(left).ok(),
                _ => rx.try_recv().ok(),
            };
            match next {
                Some(s) => batch.push(s),
                None => break,
            }
        }
        observer.observe(&batch);
        batch.clear();
    }
    observer.flush();
}

/// Delivered and dropped spans of one observer.
///
/// ```
/// for o in monitor_core::trace::observers() {
///     println!("{}: {} delivered, {} dropped", o.name, o.delivered, o.dropped);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ObserverStats {
    /// The name given to [`add_observer`].
    pub name: String,
    /// Spans queued for it.
    pub delivered: u64,
    /// Spans dropped because its queue was full.
    pub dropped: u64,
}

/// The registered observers and their counts.
///
/// ```
/// let _ = monitor_core::trace::observers();
/// ```
pub fn observers() -> Vec<ObserverStats> {
    OBSERVERS.read().unwrap_or_else(PoisonError::into_inner).iter().map(|s| s.stats()).collect()
}

/// Keeps an observer registered; dropping it unregisters the observer and lets its thread
/// finish the queue in the background, [`ObserverHandle::shutdown`] also waits for that.
pub struct ObserverHandle {
    slot: Option<Arc<Slot>>,
    thread: Option<JoinHandle<()>>,
    /// Says when the observer's thread has handled its queue and flushed.
    done: Receiver<()>,
}

impl ObserverHandle {
    /// This observer's counts while it is registered.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # struct Nop;
    /// # impl monitor_core::trace::SpanObserver for Nop { fn observe(&mut self, _: &[Arc<monitor_core::trace::SpanRecord>]) {} }
    /// let h = monitor_core::trace::add_observer("counted", Nop, 16);
    /// assert_eq!(h.stats().map(|s| s.dropped), Some(0));
    /// h.shutdown();
    /// ```
    pub fn stats(&self) -> Option<ObserverStats> {
        self.slot.as_deref().map(Slot::stats)
    }

    /// Unregisters the observer and waits until it has handled every queued span and flushed.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # struct Nop;
    /// # impl monitor_core::trace::SpanObserver for Nop { fn observe(&mut self, _: &[Arc<monitor_core::trace::SpanRecord>]) {} }
    /// monitor_core::trace::add_observer("nop2", Nop, 16).shutdown();
    /// ```
    pub fn shutdown(mut self) {
        self.unregister();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Like [`ObserverHandle::shutdown`], waiting at most `limit`: `true` if the observer
    /// finished in time. If not, its thread goes on in the background and never holds the
    /// process's exit; whatever it has not handled then is lost.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # struct Nop;
    /// # impl monitor_core::trace::SpanObserver for Nop { fn observe(&mut self, _: &[Arc<monitor_core::trace::SpanRecord>]) {} }
    /// let h = monitor_core::trace::add_observer("bounded", Nop, 16);
    /// assert!(h.shutdown_within(std::time::Duration::from_secs(5)));
    /// ```
    pub fn shutdown_within(mut self, limit: std::time::Duration) -> bool {
        self.unregister();
        if self.thread.is_none() {
            return true;
        }
        let finished = self.done.recv_timeout(limit).is_ok();
        if finished {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
        finished
    }

    fn unregister(&mut self) {
        if let Some(slot) = self.slot.take() {
            OBSERVERS
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|s| !Arc::ptr_eq(s, &slot));
            refresh_mode();
        }
    }
}

impl Drop for ObserverHandle {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl fmt::Debug for ObserverHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObserverHandle")
            .field("name", &self.slot.as_ref().map(|s| &s.name))
            .finish()
    }
}
