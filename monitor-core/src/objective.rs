//! Service-level objectives, declared next to the function they are about: the share of calls
//! that must succeed, the share that must be faster than a latency bound, over a window. The
//! process keeps each objective's counts at every collector tick, so it knows its error budget
//! and burn rates without any Prometheus; `monitor-http` writes the Prometheus rules that
//! compute the same from `/metrics`.
//!
//! Two indicators (SLIs), each a ratio of bad calls to calls, counted over every function of the
//! objective's name:
//! - **success**: calls that returned an error or panicked, over calls that returned or
//!   panicked. Cancelled calls (a future dropped before it finished) are neither.
//! - **latency**: calls slower than the bound, over timed calls (successes and failures), read
//!   from the latency histogram with the same bucket rule as `/metrics` uses for `le`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::site::CallSite;
use crate::snapshot::{FunctionStats, Snapshot};

/// How many objectives a process may declare at run time (linked ones from `#[monitored]`
/// come on top): each keeps a bounded history of its counts.
pub const MAX_OBJECTIVES: usize = 64;

/// The shortest and longest window an objective may have.
pub const MIN_WINDOW: Duration = Duration::from_secs(3600);
/// See [`MIN_WINDOW`]: a year and a day.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 86_400);

/// The shortest alert window: rates over less than a minute are noise at any scrape interval.
pub const MIN_ALERT_WINDOW: Duration = Duration::from_secs(60);

/// Why an objective was refused.
///
/// ```
/// use monitor_core::{Objective, ObjectiveError};
/// assert_eq!(Objective::new().success(100.0).unwrap_err(), ObjectiveError::Percent(100.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectiveError {
    /// A target percentage is not strictly between 0 and 100.
    #[error(
        "objective: a target is a percentage strictly between 0 and 100, such as 99.9; got {0}"
    )]
    Percent(f64),
    /// The latency bound is zero or too large to print as seconds.
    #[error("objective: the latency bound must be more than zero and less than a day")]
    Latency,
    /// The window is outside [`MIN_WINDOW`], [`MAX_WINDOW`].
    #[error("objective: the window must be between 1h and 366d (30d is usual)")]
    Window,
    /// The objective sets neither a success nor a latency target.
    #[error("objective: set a success target, a latency target or both")]
    Empty,
    /// The name is empty.
    #[error("objective: give the monitored function's name")]
    NoName,
    /// [`MAX_OBJECTIVES`] objectives are declared already.
    #[error("objective: at most 64 objectives may be declared at run time; declare fewer, or one per service entry")]
    TooMany,
}

/// A service-level objective: a success target, a latency target or both, over a window
/// (30 days unless set).
///
/// ```
/// use std::time::Duration;
/// use monitor_core::Objective;
///
/// let o = Objective::new()
///     .success(99.9)?
///     .latency(Duration::from_millis(250), 99.0)?
///     .window(Duration::from_secs(7 * 86_400))?;
/// assert_eq!(o.success_target(), Some(99.9));
/// assert_eq!(o.latency_target(), Some((Duration::from_millis(250), 99.0)));
/// # Ok::<(), monitor_core::ObjectiveError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    success: Option<f64>,
    latency: Option<(Duration, f64)>,
    window: Duration,
}

impl Default for Objective {
    fn default() -> Self {
        Objective::new()
    }
}

fn percent(p: f64) -> Result<f64, ObjectiveError> {
    if p.is_finite() && p > 0.0 && p < 100.0 {
        Ok(p)
    } else {
        Err(ObjectiveError::Percent(p))
    }
}

impl Objective {
    /// An objective with no target yet and a 30-day window.
    ///
    /// ```
    /// assert_eq!(monitor_core::Objective::new().window_length().as_secs(), 30 * 86_400);
    /// ```
    pub const fn new() -> Objective {
        Objective { success: None, latency: None, window: Duration::from_secs(30 * 86_400) }
    }

    /// At least `percent` of calls succeed (return no error and do not panic).
    ///
    /// ```
    /// assert!(monitor_core::Objective::new().success(99.5).is_ok());
    /// ```
    pub fn success(mut self, percent: f64) -> Result<Objective, ObjectiveError> {
        self.success = Some(self::percent(percent)?);
        Ok(self)
    }

    /// At least `percent` of calls take at most `bound`. The bound becomes a bucket bound of
    /// the `/metrics` histogram.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(monitor_core::Objective::new().latency(Duration::ZERO, 99.0).is_err());
    /// ```
    pub fn latency(mut self, bound: Duration, percent: f64) -> Result<Objective, ObjectiveError> {
        if bound.is_zero() || bound >= Duration::from_secs(86_400) {
            return Err(ObjectiveError::Latency);
        }
        self.latency = Some((bound, self::percent(percent)?));
        Ok(self)
    }

    /// The window the targets hold over, between [`MIN_WINDOW`] and [`MAX_WINDOW`].
    ///
    /// ```
    /// use std::time::Duration;
    /// assert!(monitor_core::Objective::new().window(Duration::from_secs(60)).is_err());
    /// ```
    pub fn window(mut self, window: Duration) -> Result<Objective, ObjectiveError> {
        if window < MIN_WINDOW || window > MAX_WINDOW {
            return Err(ObjectiveError::Window);
        }
        self.window = window;
        Ok(self)
    }

    /// An objective checked by `#[monitored(objective(...))]` at compile time.
    #[doc(hidden)]
    pub const fn __checked(
        success: Option<f64>,
        latency: Option<(Duration, f64)>,
        window: Duration,
    ) -> Objective {
        Objective { success, latency, window }
    }

    /// The success target in percent, if any.
    ///
    /// ```
    /// assert_eq!(monitor_core::Objective::new().success_target(), None);
    /// ```
    pub fn success_target(&self) -> Option<f64> {
        self.success
    }

    /// The latency bound and its target in percent, if any.
    ///
    /// ```
    /// assert_eq!(monitor_core::Objective::new().latency_target(), None);
    /// ```
    pub fn latency_target(&self) -> Option<(Duration, f64)> {
        self.latency
    }

    /// The window.
    ///
    /// ```
    /// assert_eq!(monitor_core::Objective::new().window_length().as_secs(), 2_592_000);
    /// ```
    pub fn window_length(&self) -> Duration {
        self.window
    }

    /// The indicators this objective sets a target for, with the target in percent.
    ///
    /// ```
    /// use monitor_core::{Objective, Sli};
    /// let o = Objective::new().success(99.0)?;
    /// assert_eq!(o.indicators(), vec![(Sli::Success, 99.0)]);
    /// # Ok::<(), monitor_core::ObjectiveError>(())
    /// ```
    pub fn indicators(&self) -> Vec<(Sli, f64)> {
        let mut out = Vec::with_capacity(2);
        if let Some(p) = self.success {
            out.push((Sli::Success, p));
        }
        if let Some((bound, p)) = self.latency {
            out.push((Sli::Latency(bound), p));
        }
        out
    }

    /// The multi-window, multi-burn-rate alerts of the Google SRE workbook, scaled to this
    /// objective's window: for 30 days, page when the last hour and the last 5 minutes both
    /// burn the budget 14.4 times too fast, or 6 hours and 30 minutes at 6 times; open a
    /// ticket at 3 times over a day and 2 hours, or once over 3 days and 6 hours. No window
    /// is shorter than [`MIN_ALERT_WINDOW`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let alerts = monitor_core::Objective::new().alert_windows();
    /// assert_eq!(alerts[0].long, Duration::from_secs(3600));
    /// assert_eq!(alerts[0].short, Duration::from_secs(300));
    /// assert_eq!(alerts[0].burn_rate, 14.4);
    /// ```
    pub fn alert_windows(&self) -> [AlertWindow; 4] {
        let w = self.window;
        let part = |n: u64| Duration::from_secs(w.as_secs() / n).max(MIN_ALERT_WINDOW);
        let alert = |severity, long, short, burn_rate| AlertWindow {
            severity,
            long: part(long),
            short: part(short),
            burn_rate,
        };
        [
            alert(Severity::Page, 720, 8640, 14.4),
            alert(Severity::Page, 120, 1440, 6.0),
            alert(Severity::Ticket, 30, 360, 3.0),
            alert(Severity::Ticket, 10, 120, 1.0),
        ]
    }

    /// Every window the alerts and the budget read, shortest first, without repeats.
    ///
    /// ```
    /// let w = monitor_core::Objective::new().windows();
    /// assert_eq!(w.first().map(|d| d.as_secs()), Some(300));
    /// assert_eq!(w.last().map(|d| d.as_secs()), Some(30 * 86_400));
    /// ```
    pub fn windows(&self) -> Vec<Duration> {
        let mut all: Vec<Duration> =
            self.alert_windows().iter().flat_map(|a| [a.long, a.short]).collect();
        all.push(self.window);
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// One of an objective's indicators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sli {
    /// Calls that neither returned an error nor panicked.
    Success,
    /// Calls that took at most this long.
    Latency(Duration),
}

impl Sli {
    /// `success` or `latency`: the `sli` label of the rules.
    ///
    /// ```
    /// assert_eq!(monitor_core::Sli::Success.as_str(), "success");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Sli::Success => "success",
            Sli::Latency(_) => "latency",
        }
    }

    /// This indicator's bad calls and calls in a function's statistics.
    fn count(&self, f: &FunctionStats) -> Counts {
        match *self {
            Sli::Success => {
                let bad = f.errors_total() + f.panics;
                Counts { bad, total: f.success + bad }
            }
            Sli::Latency(bound) => {
                let secs = bound.as_secs_f64();
                let timed = f.success_times.count + f.failure_times.count;
                let fast =
                    f.success_times.count_at_most(secs) + f.failure_times.count_at_most(secs);
                Counts { bad: timed.saturating_sub(fast), total: timed }
            }
        }
    }
}

/// Whom an alert calls: someone now, or a ticket for working hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Severity {
    /// Someone is paged.
    Page,
    /// A ticket is opened.
    Ticket,
}

impl Severity {
    /// `page` or `ticket`: the `severity` label of the alerts.
    ///
    /// ```
    /// assert_eq!(monitor_core::Severity::Page.as_str(), "page");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }
}

/// One alert condition: the budget burns more than `burn_rate` times too fast over both the
/// long and the short window (the short one makes the alert stop soon after the burn does).
///
/// ```
/// let a = monitor_core::Objective::new().alert_windows()[3];
/// assert_eq!((a.long.as_secs(), a.short.as_secs(), a.burn_rate), (3 * 86_400, 6 * 3600, 1.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AlertWindow {
    /// Whom it calls.
    pub severity: Severity,
    /// The long window.
    pub long: Duration,
    /// The short window.
    pub short: Duration,
    /// How many times faster than the budget allows.
    pub burn_rate: f64,
}

/// An objective with the name of the monitored functions it is about.
///
/// ```
/// for o in monitor_core::objectives() {
///     println!("{}: {:?}", o.name, o.objective);
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NamedObjective {
    /// The monitored name (every function of that name counts).
    pub name: String,
    /// The targets.
    pub objective: Objective,
}

/// An objective declared by `#[monitored(objective(...))]`, gathered by the linker.
#[doc(hidden)]
#[derive(Debug)]
pub struct LinkedObjective {
    site: &'static CallSite,
    objective: Objective,
}

impl LinkedObjective {
    #[doc(hidden)]
    pub const fn new(site: &'static CallSite, objective: Objective) -> LinkedObjective {
        LinkedObjective { site, objective }
    }
}

/// Objectives declared at run time, in order.
static DECLARED: Mutex<Vec<NamedObjective>> = Mutex::new(Vec::new());

/// Declares an objective for the monitored functions named `name` (a run-time site such as a
/// route `GET /orders/{id}`, or a function whose attribute sets none). Declaring a name again
/// replaces its objective, also one from `#[monitored(objective(...))]`.
///
/// # Errors
///
/// [`ObjectiveError::NoName`] for an empty name, [`ObjectiveError::Empty`] for an objective
/// with no target, [`ObjectiveError::TooMany`] past [`MAX_OBJECTIVES`] names.
///
/// ```
/// use monitor_core::{declare_objective, objectives, Objective};
/// declare_objective("GET /orders/{id}", Objective::new().success(99.9)?)?;
/// assert!(objectives().iter().any(|o| o.name == "GET /orders/{id}"));
/// # Ok::<(), monitor_core::ObjectiveError>(())
/// ```
pub fn declare_objective(name: &str, objective: Objective) -> Result<(), ObjectiveError> {
    if name.is_empty() {
        return Err(ObjectiveError::NoName);
    }
    if objective.success.is_none() && objective.latency.is_none() {
        return Err(ObjectiveError::Empty);
    }
    let mut declared = DECLARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(o) = declared.iter_mut().find(|o| o.name == name) {
        o.objective = objective;
    } else if declared.len() >= MAX_OBJECTIVES {
        return Err(ObjectiveError::TooMany);
    } else {
        declared.push(NamedObjective { name: name.to_string(), objective });
    }
    drop(declared);
    if ON.load(Relaxed) {
        sample_now();
    }
    Ok(())
}

/// Every objective: those of `#[monitored(objective(...))]` by name (the first for a name),
/// then those declared at run time (which replace a linked one of the same name).
///
/// ```
/// #[monitor_core::monitored(name = "objectives_doc::pay", objective(success = 99.0))]
/// fn pay() {}
///
/// let all = monitor_core::objectives();
/// let pay = all.iter().find(|o| o.name == "objectives_doc::pay").unwrap();
/// assert_eq!(pay.objective.success_target(), Some(99.0));
/// ```
pub fn objectives() -> Vec<NamedObjective> {
    let mut out: Vec<NamedObjective> = Vec::new();
    for linked in imp::linked() {
        let name = linked.site.name();
        if !out.iter().any(|o| o.name == name) {
            out.push(NamedObjective { name: name.to_string(), objective: linked.objective });
        }
    }
    for d in DECLARED.lock().unwrap_or_else(PoisonError::into_inner).iter() {
        match out.iter_mut().find(|o| o.name == d.name) {
            Some(o) => o.objective = d.objective,
            None => out.push(d.clone()),
        }
    }
    out
}

/// The latency bounds of every objective, in seconds, increasing: `/metrics` adds them to
/// its histogram buckets so that the rules can read each one.
///
/// ```
/// let bounds = monitor_core::objective_latency_bounds();
/// assert!(bounds.windows(2).all(|w| w[0] < w[1]));
/// ```
pub fn objective_latency_bounds() -> Vec<f64> {
    let mut out: Vec<f64> = objectives()
        .iter()
        .filter_map(|o| o.objective.latency)
        .map(|(bound, _)| bound.as_secs_f64())
        .collect();
    out.sort_by(f64::total_cmp);
    out.dedup();
    out
}

// The in-process history of each objective's counts.

/// Bad calls and calls, cumulative since the process started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    bad: u64,
    total: u64,
}

impl Counts {
    fn add(self, o: Counts) -> Counts {
        Counts { bad: self.bad + o.bad, total: self.total + o.total }
    }

    fn since(self, base: Counts) -> Counts {
        Counts {
            bad: self.bad.saturating_sub(base.bad),
            total: self.total.saturating_sub(base.total),
        }
    }
}

/// One indicator's counts at one moment.
#[derive(Debug, Clone, Copy)]
struct Point {
    unix_s: u64,
    counts: Counts,
}

/// Resolutions of the kept points: (seconds between points, points kept). Every tick for half
/// an hour at 5 s, each minute for 12 hours, each 10 minutes for a week, each 6 hours for a
/// year and a day: at most 3,552 points (85 KiB) per indicator.
const LEVELS: [(u64, usize); 4] = [(0, 360), (60, 720), (600, 1008), (21_600, 1464)];

/// The points of one indicator, at each resolution.
#[derive(Default)]
struct Series {
    levels: [VecDeque<Point>; 4],
}

impl Series {
    fn push(&mut self, p: Point) {
        for (level, &(step, cap)) in self.levels.iter_mut().zip(&LEVELS) {
            if level.back().is_none_or(|b| p.unix_s >= b.unix_s + step.max(1)) {
                level.push_back(p);
                if level.len() > cap {
                    level.pop_front();
                }
            }
        }
    }

    /// The newest point at or before `unix_s`, at any resolution.
    fn at_or_before(&self, unix_s: u64) -> Option<Point> {
        self.levels
            .iter()
            .filter_map(|l| {
                let i = l.partition_point(|p| p.unix_s <= unix_s);
                i.checked_sub(1).map(|i| l[i])
            })
            .max_by_key(|p| p.unix_s)
    }

    fn oldest(&self) -> Option<Point> {
        self.levels.iter().filter_map(|l| l.front().copied()).min_by_key(|p| p.unix_s)
    }
}

/// The series, by objective name and indicator.
static HISTORY: Mutex<BTreeMap<(String, &'static str), Series>> = Mutex::new(BTreeMap::new());
static ON: AtomicBool = AtomicBool::new(false);

/// Starts keeping each objective's counts at every collector tick (the monitor server does it
/// when it starts), so that [`objective_status`] can tell the budget over the window.
///
/// ```
/// monitor_core::enable_objective_history();
/// ```
pub fn enable_objective_history() {
    if !ON.swap(true, Relaxed) {
        sample_now();
    }
    crate::collector::add_sampler("objectives", |_| sample_now());
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// This indicator's counts over every function named `name`.
fn counts(snap: &Snapshot, name: &str, sli: Sli) -> Counts {
    snap.functions
        .iter()
        .filter(|f| f.name == name)
        .fold(Counts::default(), |c, f| c.add(sli.count(f)))
}

fn sample_now() {
    let all = objectives();
    if all.is_empty() {
        return;
    }
    let snap =
        crate::registry::registry().snapshot_named(|name| all.iter().any(|o| o.name == name));
    let unix_s = unix_now();
    let mut history = HISTORY.lock().unwrap_or_else(PoisonError::into_inner);
    // An objective declared again with other indicators leaves its old series behind: drop
    // what no objective reads, so that the map stays within the objectives' number.
    history.retain(|(name, sli), _| {
        all.iter().any(|o| {
            &o.name == name && o.objective.indicators().iter().any(|i| i.0.as_str() == *sli)
        })
    });
    for o in &all {
        for (sli, _) in o.objective.indicators() {
            let counts = counts(&snap, &o.name, sli);
            history
                .entry((o.name.clone(), sli.as_str()))
                .or_default()
                .push(Point { unix_s, counts });
        }
    }
}

/// One indicator's state over one window.
///
/// ```
/// for o in monitor_core::objective_status() {
///     for s in &o.indicators {
///         println!("{} {}: {:.1}% of budget left", o.name, s.sli.as_str(), 100.0 * s.budget_remaining);
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WindowCounts {
    /// The window asked for.
    pub window: Duration,
    /// How much of it the history covers (less while the process is younger than the window,
    /// or the history was started late).
    pub covered: Duration,
    /// Calls in it.
    pub calls: u64,
    /// Bad calls in it.
    pub bad: u64,
}

impl WindowCounts {
    /// Bad calls over calls; `None` without calls.
    ///
    /// ```
    /// # use monitor_core::objective_status;
    /// for o in objective_status() { for s in &o.indicators { let _ = s.over_window.bad_ratio(); } }
    /// ```
    pub fn bad_ratio(&self) -> Option<f64> {
        (self.calls > 0).then(|| self.bad as f64 / self.calls as f64)
    }
}

/// One indicator of an objective, now.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IndicatorStatus {
    /// Which indicator.
    pub sli: Sli,
    /// Its target, in percent.
    pub target: f64,
    /// The counts over the objective's window.
    pub over_window: WindowCounts,
    /// The share of the error budget left over the window: 1 untouched, 0 spent, below 0
    /// overspent. 1 without calls.
    pub budget_remaining: f64,
    /// The counts over each window the alerts read, shortest first.
    pub windows: Vec<WindowCounts>,
    /// The burn rate over each of those windows (bad ratio over the allowed ratio; 0 without
    /// calls), in the same order.
    pub burn_rates: Vec<(Duration, f64)>,
    /// Whether a page alert's condition holds.
    pub page: bool,
    /// Whether a ticket alert's condition holds.
    pub ticket: bool,
}

/// An objective and each of its indicators, now.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ObjectiveStatus {
    /// The monitored name.
    pub name: String,
    /// The targets.
    pub objective: Objective,
    /// Each indicator the objective sets a target for.
    pub indicators: Vec<IndicatorStatus>,
}

/// Every objective's budget and burn rates now, from a snapshot taken now and the counts kept
/// at each collector tick (see [`enable_objective_history`]; without it the windows reach back
/// to the process's start or cover nothing).
///
/// ```
/// #[monitor_core::monitored(name = "status_doc::work", objective(success = 99.0))]
/// fn work() -> Result<(), std::fmt::Error> { Err(std::fmt::Error) }
///
/// let _ = work();
/// let all = monitor_core::objective_status();
/// let s = &all.iter().find(|o| o.name == "status_doc::work").unwrap().indicators[0];
/// assert_eq!((s.over_window.calls, s.over_window.bad), (1, 1));
/// assert!((s.budget_remaining - (1.0 - 1.0 / 0.01)).abs() < 1e-6);
/// ```
pub fn objective_status() -> Vec<ObjectiveStatus> {
    let all = objectives();
    if all.is_empty() {
        return Vec::new();
    }
    let snap =
        crate::registry::registry().snapshot_named(|name| all.iter().any(|o| o.name == name));
    let now = unix_now();
    let started =
        crate::process::started_at().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let history = HISTORY.lock().unwrap_or_else(PoisonError::into_inner);
    let empty = Series::default();
    all.into_iter()
        .map(|o| {
            let indicators = o
                .objective
                .indicators()
                .into_iter()
                .map(|(sli, target)| {
                    let series = history.get(&(o.name.clone(), sli.as_str())).unwrap_or(&empty);
                    let current = counts(&snap, &o.name, sli);
                    let over = |window: Duration| over(series, current, now, started, window);
                    indicator(&o.objective, sli, target, over)
                })
                .collect();
            ObjectiveStatus { name: o.name, objective: o.objective, indicators }
        })
        .collect()
}

/// The counts over `window` back from `now`.
fn over(
    series: &Series,
    current: Counts,
    now: u64,
    started: u64,
    window: Duration,
) -> WindowCounts {
    let from = now.saturating_sub(window.as_secs());
    // Counts start at zero when the process does: a process younger than the window is
    // covered from its start. Otherwise from the newest kept point old enough, else the oldest.
    let base = if started >= from {
        Some(Point { unix_s: started, counts: Counts::default() })
    } else {
        series.at_or_before(from).or_else(|| series.oldest())
    };
    let base = base.unwrap_or(Point { unix_s: now, counts: current });
    let c = current.since(base.counts);
    WindowCounts {
        window,
        covered: Duration::from_secs(now.saturating_sub(base.unix_s)),
        calls: c.total,
        bad: c.bad,
    }
}

fn indicator(
    objective: &Objective,
    sli: Sli,
    target: f64,
    over: impl Fn(Duration) -> WindowCounts,
) -> IndicatorStatus {
    let allowed = 1.0 - target / 100.0;
    let burn = |w: &WindowCounts| w.bad_ratio().map_or(0.0, |r| r / allowed);
    let over_window = over(objective.window);
    let budget_remaining = over_window.bad_ratio().map_or(1.0, |r| 1.0 - r / allowed);
    let windows: Vec<WindowCounts> = objective.windows().into_iter().map(&over).collect();
    let burn_of = |d: Duration| windows.iter().find(|w| w.window == d).map_or(0.0, burn);
    let firing = |severity: Severity| {
        objective
            .alert_windows()
            .iter()
            .filter(|a| a.severity == severity)
            .any(|a| burn_of(a.long) > a.burn_rate && burn_of(a.short) > a.burn_rate)
    };
    IndicatorStatus {
        sli,
        target,
        budget_remaining,
        burn_rates: windows.iter().map(|w| (w.window, burn(w))).collect(),
        page: firing(Severity::Page),
        ticket: firing(Severity::Ticket),
        windows,
        over_window,
    }
}

// The linked objectives.
linked_items!(
    imp,
    crate::objective::LinkedObjective,
    "monitor_objectives",
    "__start_monitor_objectives",
    "__stop_monitor_objectives",
    OBJECTIVES
);

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(unix_s: u64, bad: u64, total: u64) -> Point {
        Point { unix_s, counts: Counts { bad, total } }
    }

    #[test]
    fn alert_windows_scale_with_the_window() {
        let o = Objective::new().window(Duration::from_secs(3 * 86_400)).unwrap();
        let a = o.alert_windows();
        // A tenth of the 30-day windows, the short page window floored at a minute.
        assert_eq!((a[0].long.as_secs(), a[0].short.as_secs()), (360, 60));
        assert_eq!((a[3].long.as_secs(), a[3].short.as_secs()), (25_920, 2_160));
        let hour = Objective::new().window(MIN_WINDOW).unwrap();
        assert!(hour.windows().iter().all(|w| *w >= MIN_ALERT_WINDOW));
    }

    #[test]
    fn validation() {
        assert!(Objective::new().success(f64::NAN).is_err());
        assert!(Objective::new().success(0.0).is_err());
        assert!(Objective::new().latency(Duration::from_millis(1), 100.0).is_err());
        assert!(Objective::new().window(MAX_WINDOW + Duration::from_secs(1)).is_err());
        assert_eq!(declare_objective("", Objective::new()), Err(ObjectiveError::NoName));
        assert_eq!(declare_objective("x", Objective::new()), Err(ObjectiveError::Empty));
    }

    #[test]
    fn series_keep_every_resolution_bounded() {
        let mut s = Series::default();
        for i in 0..200_000u64 {
            s.push(pt(i * 5, i, 10 * i));
        }
        for (l, (_, cap)) in s.levels.iter().zip(LEVELS) {
            assert!(l.len() <= cap);
        }
        let last = 199_999 * 5;
        // Recent: exact to the tick; a day ago: to the minute; older: to ten minutes.
        assert_eq!(s.at_or_before(last - 600).map(|p| p.unix_s), Some(last - 600));
        let day = s.at_or_before(last - 86_400).unwrap().unix_s;
        assert!(last - 86_400 - day < 600, "{day}");
        assert!(s.oldest().unwrap().unix_s <= last - 7 * 86_400);
    }

    #[test]
    fn windows_reach_back_to_a_point_or_the_start() {
        let mut s = Series::default();
        s.push(pt(100_000, 1, 100));
        s.push(pt(101_000, 5, 200));
        let now = Counts { bad: 9, total: 300 };
        // The process started long ago: from the newest point old enough.
        let w = over(&s, now, 102_000, 10, Duration::from_secs(1_500));
        assert_eq!((w.calls, w.bad, w.covered.as_secs()), (200, 8, 2_000));
        // Older than every point: from the oldest.
        let w = over(&s, now, 102_000, 10, Duration::from_secs(86_400));
        assert_eq!((w.calls, w.bad, w.covered.as_secs()), (200, 8, 2_000));
        // A process younger than the window: from zero at its start.
        let w = over(&s, now, 102_000, 99_000, Duration::from_secs(86_400));
        assert_eq!((w.calls, w.bad, w.covered.as_secs()), (300, 9, 3_000));
    }

    #[test]
    fn burn_rates_and_alerts() {
        let o = Objective::new().success(99.0).unwrap();
        // 20% bad everywhere: 20 times too fast, a page and a ticket.
        let w = |window| WindowCounts { window, covered: window, calls: 1_000, bad: 200 };
        let s = indicator(&o, Sli::Success, 99.0, w);
        assert!(s.page && s.ticket);
        assert!((s.budget_remaining - (1.0 - 20.0)).abs() < 1e-9);
        assert!(s.burn_rates.iter().all(|(_, b)| (b - 20.0).abs() < 1e-9));
        // 2%: twice too fast, a ticket (over 3 days at once) but no page.
        let w = |window| WindowCounts { window, covered: window, calls: 1_000, bad: 20 };
        let s = indicator(&o, Sli::Success, 99.0, w);
        assert!(!s.page && s.ticket);
        // 0.5%: within the budget.
        let w = |window| WindowCounts { window, covered: window, calls: 1_000, bad: 5 };
        let s = indicator(&o, Sli::Success, 99.0, w);
        assert!(!s.page && !s.ticket);
        // Nothing called: the budget is whole.
        let w = |window| WindowCounts { window, covered: window, calls: 0, bad: 0 };
        assert_eq!(indicator(&o, Sli::Success, 99.0, w).budget_remaining, 1.0);
    }
}
