//! Watches: wait for the next call matching a filter and collect its whole tree of spans.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Condvar, LazyLock, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::{mode, set_mode, SpanRecord, Trace};
use crate::context::SpanCtx;
use crate::ids::{SpanId, TraceId};
use crate::site::CallSite;
use crate::state::ENTRY_KEY;

/// Watches that may wait at once; more are refused with [`WatchError::TooMany`].
pub const MAX_WATCHES: usize = 16;
/// Spans a watch collects; more are counted in [`Trace::dropped_spans`].
pub const MAX_WATCH_SPANS: usize = 10_000;

/// What a [`Watch`] waits for: a call of some functions, a call in a given trace, or both.
///
/// ```
/// use monitor_core::trace::WatchFilter;
/// let f = WatchFilter::function(|s| s.name().ends_with("::handle"));
/// println!("{} functions match", f.matched_functions().unwrap_or(0));
/// ```
#[derive(Clone, Default)]
pub struct WatchFilter {
    sites: Option<Vec<u32>>,
    trace: Option<TraceId>,
    /// What a site made later must pass to be watched too ([`WatchFilter::matching`]).
    later: Option<Matcher>,
    /// What it waits for, in words ([`WatchFilter::described`]).
    what: Option<Arc<str>>,
}

/// A test of sites, kept to try the sites made after a watch starts.
type Matcher = Arc<dyn Fn(&CallSite) -> bool + Send + Sync>;

impl fmt::Debug for WatchFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchFilter")
            .field("sites", &self.sites)
            .field("trace", &self.trace)
            .field("sites_made_later", &self.later.is_some())
            .field("what", &self.what)
            .finish()
    }
}

impl WatchFilter {
    /// Calls of the functions `matches` accepts among the sites there are now: every
    /// `#[monitored]` function (all known up front, see [`registry`](crate::registry)) and
    /// the run-time sites made so far. [`WatchFilter::matching`] also takes sites made later.
    ///
    /// ```
    /// let any = monitor_core::trace::WatchFilter::function(|_| true);
    /// # drop(any);
    /// ```
    pub fn function(matches: impl Fn(&CallSite) -> bool) -> WatchFilter {
        let sites = crate::site::table()
            .sites()
            .enumerate()
            .filter(|(_, s)| matches(s))
            .map(|(i, _)| i as u32)
            .collect();
        WatchFilter { sites: Some(sites), trace: None, later: None, what: None }
    }

    /// Like [`WatchFilter::function`], and also calls of the sites made after the watch
    /// starts that `matches` accepts: a route of a server layer, a host of a client layer, a
    /// SQL statement, before its first call has made its site. Start such a watch with
    /// [`Watch::start_waiting`] when nothing matches yet.
    ///
    /// ```
    /// use monitor_core::trace::{Watch, WatchFilter};
    /// let f = WatchFilter::matching(|s| s.name() == "GET /watch_doc/later");
    /// let watch = Watch::start_waiting(f).unwrap();
    /// let site = monitor_core::registry().site("GET /watch_doc/later", None).unwrap();
    /// site.open_call(monitor_core::Span::none()).finish(monitor_core::Outcome::Success);
    /// let trace = watch.wait(std::time::Duration::from_secs(5)).unwrap();
    /// assert_eq!(trace.root_span().unwrap().name, "GET /watch_doc/later");
    /// ```
    pub fn matching(matches: impl Fn(&CallSite) -> bool + Send + Sync + 'static) -> WatchFilter {
        let matches: Matcher = Arc::new(matches);
        let mut filter = WatchFilter::function(|s| matches(s));
        filter.later = Some(matches);
        filter
    }

    /// Calls in the trace `id` (of any function, unless narrowed with [`WatchFilter::function`]
    /// first and then [`WatchFilter::in_trace`]).
    ///
    /// ```
    /// let f = monitor_core::trace::WatchFilter::trace(monitor_core::TraceId::from_u128(1));
    /// assert_eq!(f.matched_functions(), None);
    /// ```
    pub fn trace(id: TraceId) -> WatchFilter {
        WatchFilter { sites: None, trace: Some(id), later: None, what: None }
    }

    /// Narrows this filter to calls in the trace `id`.
    ///
    /// ```
    /// use monitor_core::{trace::WatchFilter, TraceId};
    /// let f = WatchFilter::function(|_| true).in_trace(TraceId::from_u128(1));
    /// # drop(f);
    /// ```
    pub fn in_trace(mut self, id: TraceId) -> WatchFilter {
        self.trace = Some(id);
        self
    }

    /// Says what the watch waits for, as [`watches`] lists it (at most 200 bytes are kept).
    ///
    /// ```
    /// let f = monitor_core::trace::WatchFilter::function(|_| true).described("any call");
    /// # drop(f);
    /// ```
    #[must_use]
    pub fn described(mut self, what: &str) -> WatchFilter {
        let mut end = what.len().min(200);
        while !what.is_char_boundary(end) {
            end -= 1;
        }
        self.what = Some(Arc::from(&what[..end]));
        self
    }

    /// How many functions the filter matches (`None`: any function).
    ///
    /// ```
    /// let none = monitor_core::trace::WatchFilter::function(|_| false);
    /// assert_eq!(none.matched_functions(), Some(0));
    /// ```
    pub fn matched_functions(&self) -> Option<usize> {
        self.sites.as_ref().map(Vec::len)
    }
}

/// Why a watch could not start or ended without a trace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WatchError {
    /// Too many watches wait already.
    #[error("{max} trace watches are already waiting; retry when one has finished")]
    TooMany {
        /// The limit, [`MAX_WATCHES`].
        max: usize,
    },
    /// The filter matches no function and names no trace.
    #[error("the watch matches 0 functions; check the function names on the index page")]
    MatchesNothing,
    /// No matching call finished its tree in time.
    #[error("no matching call finished within {0:?}; trigger one, or wait longer")]
    Timeout(Duration),
}

#[derive(Default)]
struct State {
    bound: Option<(TraceId, SpanId)>,
    spans: Vec<Arc<SpanRecord>>,
    dropped: u64,
    done: Option<Trace>,
    waker: Option<Waker>,
}

struct Inner {
    what: Option<Arc<str>>,
    since: std::time::SystemTime,
    /// The sites watched (`None`: any); grows as matching sites are made.
    sites: Option<Mutex<Vec<u32>>>,
    later: Option<Matcher>,
    trace: Option<TraceId>,
    state: Mutex<State>,
    cond: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Watches not yet done: unbound ones wait for a call, bound ones collect their trace.
static WATCHES: Mutex<Vec<Arc<Inner>>> = Mutex::new(Vec::new());
static COUNT: AtomicUsize = AtomicUsize::new(0);
/// Per site id: unbound watches waiting for a call of it.
static SITE_WATCH: LazyLock<Vec<AtomicU8>> =
    LazyLock::new(|| (0..crate::site::table().id_capacity()).map(|_| AtomicU8::new(0)).collect());

fn refresh_mode(watches: &[Arc<Inner>]) {
    let unbound = || watches.iter().filter(|w| lock(&w.state).bound.is_none());
    set_mode(mode::WATCH_SITE, unbound().any(|w| w.sites.is_some()));
    set_mode(mode::WATCH_TRACE, unbound().any(|w| w.trace.is_some()));
    set_mode(mode::WATCH_BOUND, watches.iter().any(|w| lock(&w.state).bound.is_some()));
}

fn unflag_sites(w: &Inner) {
    let Some(sites) = &w.sites else { return };
    for &id in lock(sites).iter() {
        if let Some(c) = SITE_WATCH.get(id as usize) {
            c.fetch_sub(1, Relaxed);
        }
    }
}

/// A run-time site was made: unbound watches that take later sites and match it watch it.
pub(crate) fn site_added(site: &CallSite, id: u32) {
    if COUNT.load(Relaxed) == 0 {
        return;
    }
    let watches = lock(&WATCHES);
    for w in watches.iter() {
        let (Some(matches), Some(sites)) = (&w.later, &w.sites) else { continue };
        if lock(&w.state).bound.is_some() || !matches(site) {
            continue;
        }
        let mut sites = lock(sites);
        // Made by two threads at once, it is announced twice.
        if !sites.contains(&id) {
            sites.push(id);
            if let Some(c) = SITE_WATCH.get(id as usize) {
                c.fetch_add(1, Relaxed);
            }
        }
    }
}

pub(crate) fn site_watched(site_id: u32) -> bool {
    SITE_WATCH.get(site_id as usize).is_some_and(|c| c.load(Relaxed) > 0)
}

pub(crate) fn trace_watched(trace: TraceId) -> bool {
    lock(&WATCHES).iter().any(|w| w.trace == Some(trace) && lock(&w.state).bound.is_none())
}

/// Whether a watch collects `trace`.
pub(crate) fn trace_bound(trace: TraceId) -> bool {
    lock(&WATCHES).iter().any(|w| lock(&w.state).bound.is_some_and(|(t, _)| t == trace))
}

pub(crate) fn count() -> usize {
    COUNT.load(Relaxed)
}

/// A recorded span started: binds the first waiting watch it matches.
pub(crate) fn opened(ctx: &SpanCtx) {
    if COUNT.load(Relaxed) == 0 {
        return;
    }
    let site_id = if ctx.key == ENTRY_KEY { None } else { Some(ctx.key - 1) };
    let watches = lock(&WATCHES);
    for w in watches.iter() {
        let site_ok = match (&w.sites, site_id) {
            (None, _) => true,
            (Some(sites), Some(id)) => lock(sites).contains(&id),
            (Some(_), None) => false,
        };
        if !site_ok || w.trace.is_some_and(|t| t != ctx.trace_id) {
            continue;
        }
        let mut st = lock(&w.state);
        if st.bound.is_some() {
            continue;
        }
        st.bound = Some((ctx.trace_id, ctx.span_id));
        drop(st);
        unflag_sites(w);
        refresh_mode(&watches);
        return;
    }
}

/// A recorded span ended: bound watches of its trace collect it; a root's end completes one.
pub(crate) fn closed(record: &Arc<SpanRecord>) {
    if COUNT.load(Relaxed) == 0 {
        return;
    }
    let mut watches = lock(&WATCHES);
    let mut finished = false;
    for w in watches.iter() {
        let mut st = lock(&w.state);
        let Some((trace, root)) = st.bound else { continue };
        if trace != record.trace_id || st.done.is_some() {
            continue;
        }
        if st.spans.len() < MAX_WATCH_SPANS {
            st.spans.push(Arc::clone(record));
        } else {
            st.dropped += 1;
        }
        if record.span_id == root {
            let mut t = Trace {
                trace_id: trace,
                root,
                spans: std::mem::take(&mut st.spans),
                dropped_spans: st.dropped,
            };
            t.prune();
            st.done = Some(t);
            if let Some(waker) = st.waker.take() {
                waker.wake();
            }
            w.cond.notify_all();
            finished = true;
        }
    }
    if finished {
        watches.retain(|w| lock(&w.state).done.is_none());
        COUNT.store(watches.len(), Relaxed);
        refresh_mode(&watches);
    }
}

/// A watch waiting or collecting now, as [`watches`] lists it.
///
/// ```
/// for w in monitor_core::trace::watches() {
///     println!("{} since {:?}, collecting {:?}", w.what, w.since, w.collecting);
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchInfo {
    /// What it waits for ([`WatchFilter::described`]; else what the filter says).
    pub what: String,
    /// How many functions it watches (`None`: any).
    pub functions: Option<usize>,
    /// The trace it is limited to.
    pub trace: Option<TraceId>,
    /// Whether sites made later may match too ([`WatchFilter::matching`]).
    pub sites_made_later: bool,
    /// When it started.
    pub since: std::time::SystemTime,
    /// The trace it is collecting, once a matching call started.
    pub collecting: Option<TraceId>,
}

/// The watches waiting for a call or collecting one's trace now, oldest first: the captures
/// armed, visible while they wait.
///
/// ```
/// use monitor_core::trace::{watches, Watch, WatchFilter};
/// let w = Watch::start_waiting(WatchFilter::function(|_| false).described("the doc's watch")).unwrap();
/// assert!(watches().iter().any(|i| i.what == "the doc's watch" && i.collecting.is_none()));
/// drop(w);
/// ```
pub fn watches() -> Vec<WatchInfo> {
    lock(&WATCHES)
        .iter()
        .map(|w| {
            let functions = w.sites.as_ref().map(|s| lock(s).len());
            let what = w.what.as_deref().map_or_else(
                || match (functions, w.trace) {
                    (Some(n), None) => format!("a call of {n} functions"),
                    (Some(n), Some(t)) => format!("a call of {n} functions in trace {t}"),
                    (None, Some(t)) => format!("a call in trace {t}"),
                    (None, None) => "any call".to_string(),
                },
                str::to_string,
            );
            WatchInfo {
                what,
                functions,
                trace: w.trace,
                sites_made_later: w.later.is_some(),
                since: w.since,
                collecting: lock(&w.state).bound.map(|(t, _)| t),
            }
        })
        .collect()
}

/// A wait for the next call matching a [`WatchFilter`]: from that call on, its trace is
/// recorded, and when the call ends, its whole tree of spans — across threads and tasks — is
/// the result. Dropping the watch cancels it.
///
/// At most [`MAX_WATCHES`] wait at once. While one waits, calls of the watched functions pay
/// for recording; others pay one more relaxed load.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use monitor_core::{monitored, trace::{Watch, WatchFilter, WatchError}};
///
/// #[monitored(name = "watch_doc::idle")]
/// fn idle() {}
///
/// let watch = Watch::start(WatchFilter::function(|s| s.name() == "watch_doc::idle")).unwrap();
/// assert_eq!(watch.wait(Duration::from_millis(10)).unwrap_err(), WatchError::Timeout(Duration::from_millis(10)));
/// idle();
/// assert_eq!(watch.wait(Duration::from_secs(5)).unwrap().root_span().unwrap().name, "watch_doc::idle");
/// ```
pub struct Watch {
    inner: Arc<Inner>,
}

impl Watch {
    /// Starts waiting for a matching call.
    ///
    /// ```
    /// use monitor_core::trace::{Watch, WatchError, WatchFilter};
    /// assert_eq!(Watch::start(WatchFilter::function(|_| false)).unwrap_err(), WatchError::MatchesNothing);
    /// ```
    pub fn start(filter: WatchFilter) -> Result<Watch, WatchError> {
        if filter.trace.is_none() && filter.sites.as_ref().is_none_or(Vec::is_empty) {
            return Err(WatchError::MatchesNothing);
        }
        Watch::register(filter)
    }

    /// Like [`Watch::start`], also for a filter that matches no function now: the watch waits
    /// all the same, holding its place among the [`MAX_WATCHES`], though no call of a
    /// function that exists now can end it.
    ///
    /// # Errors
    ///
    /// [`WatchError::TooMany`] when [`MAX_WATCHES`] wait already.
    ///
    /// ```
    /// use monitor_core::trace::{Watch, WatchFilter};
    /// let none = WatchFilter::function(|s| s.name() == "no such function");
    /// assert!(Watch::start(none.clone()).is_err());
    /// let w = Watch::start_waiting(none).unwrap();
    /// assert!(w.wait(std::time::Duration::ZERO).is_err());
    /// ```
    pub fn start_waiting(filter: WatchFilter) -> Result<Watch, WatchError> {
        Watch::register(filter)
    }

    fn register(filter: WatchFilter) -> Result<Watch, WatchError> {
        super::register_stats();
        let inner = Arc::new(Inner {
            what: filter.what,
            since: std::time::SystemTime::now(),
            sites: filter.sites.map(Mutex::new),
            later: filter.later,
            trace: filter.trace,
            state: Mutex::new(State::default()),
            cond: Condvar::new(),
        });
        let mut watches = lock(&WATCHES);
        if watches.len() >= MAX_WATCHES {
            return Err(WatchError::TooMany { max: MAX_WATCHES });
        }
        if let Some(sites) = &inner.sites {
            for &id in lock(sites).iter() {
                if let Some(c) = SITE_WATCH.get(id as usize) {
                    c.fetch_add(1, Relaxed);
                }
            }
        }
        watches.push(Arc::clone(&inner));
        COUNT.store(watches.len(), Relaxed);
        refresh_mode(&watches);
        Ok(Watch { inner })
    }

    /// Blocks until the watched call's tree is complete, or `timeout` passes. After a timeout
    /// the watch still waits; call again, or drop it.
    ///
    /// ```
    /// # use monitor_core::trace::{Watch, WatchFilter};
    /// let w = Watch::start(WatchFilter::trace(monitor_core::TraceId::from_u128(5))).unwrap();
    /// assert!(w.wait(std::time::Duration::ZERO).is_err());
    /// ```
    pub fn wait(&self, timeout: Duration) -> Result<Trace, WatchError> {
        let deadline = Instant::now() + timeout;
        let mut st = lock(&self.inner.state);
        loop {
            if let Some(t) = st.done.take() {
                return Ok(t);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WatchError::Timeout(timeout));
            }
            st = self.inner.cond.wait_timeout(st, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// A future of the watched call's tree, for async servers (put your runtime's timeout
    /// around it).
    ///
    /// ```
    /// # use monitor_core::trace::{Watch, WatchFilter};
    /// let w = Watch::start(WatchFilter::trace(monitor_core::TraceId::from_u128(6))).unwrap();
    /// let fut = w.wait_async();
    /// # drop(fut);
    /// ```
    pub fn wait_async(&self) -> WatchWait<'_> {
        WatchWait { watch: self }
    }

    /// Whether a matching call has started (the watch is collecting its trace).
    ///
    /// ```
    /// # use monitor_core::trace::{Watch, WatchFilter};
    /// let w = Watch::start(WatchFilter::trace(monitor_core::TraceId::from_u128(8))).unwrap();
    /// assert!(!w.is_bound());
    /// ```
    pub fn is_bound(&self) -> bool {
        lock(&self.inner.state).bound.is_some()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut watches = lock(&WATCHES);
        let before = watches.len();
        watches.retain(|w| !Arc::ptr_eq(w, &self.inner));
        if watches.len() != before && lock(&self.inner.state).bound.is_none() {
            unflag_sites(&self.inner);
        }
        COUNT.store(watches.len(), Relaxed);
        refresh_mode(&watches);
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch")
            .field("functions", &self.inner.sites.as_ref().map(|s| lock(s).len()))
            .field("trace", &self.inner.trace)
            .field("bound", &self.is_bound())
            .finish()
    }
}

/// The future of [`Watch::wait_async`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct WatchWait<'a> {
    watch: &'a Watch,
}

impl Future for WatchWait<'_> {
    type Output = Trace;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Trace> {
        let mut st = lock(&self.watch.inner.state);
        match st.done.take() {
            Some(t) => Poll::Ready(t),
            None => {
                st.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
