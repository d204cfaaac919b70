//! The registry of every call site, known at link time.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

use crate::private::CALL_SITES;
use crate::site::{CallSite, SiteState};
use crate::snapshot::{Distribution, FunctionStats, Snapshot};

/// Every monitored function of the program, in a stable order (name, file, line).
///
/// There is one, made on first use from the sites the linker gathered, so it lists functions
/// that have never run. Reading it never blocks a monitored call.
///
/// # Examples
///
/// ```
/// #[monitor_core::monitored(name = "registry_doc::never_called")]
/// fn never_called() {}
///
/// let snap = monitor_core::registry().snapshot();
/// let f = snap.function("registry_doc::never_called").unwrap();
/// assert_eq!(f.calls(), 0);
/// ```
pub struct Registry {
    sites: Vec<&'static CallSite>,
    ids: HashMap<usize, u32>,
}

/// The process's registry.
///
/// ```
/// let count = monitor_core::registry().sites().count();
/// assert_eq!(monitor_core::registry().snapshot().functions.len(), count);
/// ```
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::build)
}

fn address(site: &CallSite) -> usize {
    std::ptr::from_ref(site) as usize
}

impl Registry {
    fn build() -> Registry {
        let mut sites: Vec<&'static CallSite> = CALL_SITES.iter().copied().collect();
        sites.sort_by(|a, b| {
            (a.name(), a.file(), a.line(), a.module()).cmp(&(
                b.name(),
                b.file(),
                b.line(),
                b.module(),
            ))
        });
        // A static linked in twice would show up twice; keep one.
        sites.dedup_by(|a, b| std::ptr::eq(*a, *b));
        let ids = sites.iter().enumerate().map(|(i, s)| (address(s), i as u32)).collect();
        Registry { sites, ids }
    }

    pub(crate) fn id_of(&self, site: &CallSite) -> Option<u32> {
        self.ids.get(&address(site)).copied()
    }

    /// Iterates over every call site, in snapshot order.
    ///
    /// ```
    /// for site in monitor_core::registry().sites() {
    ///     println!("{} at {}:{}", site.name(), site.file(), site.line());
    /// }
    /// ```
    pub fn sites(&self) -> impl Iterator<Item = &'static CallSite> + '_ {
        self.sites.iter().copied()
    }

    /// Copies every statistic — functions and registered instruments — into plain data. Costs a pass over each called site's counters and
    /// histogram buckets; monitored calls go on undisturbed meanwhile.
    ///
    /// ```
    /// let snap = monitor_core::registry().snapshot();
    /// for (i, f) in snap.functions.iter().enumerate() {
    ///     assert_eq!(f.id, i);
    /// }
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let name_of = |id: usize| self.sites.get(id).map_or("unknown", |s| s.name());
        let functions = self
            .sites
            .iter()
            .enumerate()
            .map(|(id, site)| {
                let mut f = FunctionStats {
                    id,
                    name: site.name(),
                    module: site.module(),
                    file: site.file(),
                    line: site.line(),
                    category: site.category(),
                    callers: Vec::new(),
                    current: 0,
                    highwater: 0,
                    success: 0,
                    errors: Vec::new(),
                    panics: 0,
                    cancelled: 0,
                    allocations: 0,
                    allocated_bytes: 0,
                    success_times: Distribution::default(),
                    failure_times: Distribution::default(),
                };
                if let Some(state) = site.state_if_called() {
                    fill(&mut f, state, &name_of);
                }
                f
            })
            .collect();
        Snapshot { functions, metrics: crate::metrics::snapshot(), alloc: crate::alloc::stats() }
    }
}

fn fill(f: &mut FunctionStats, state: &SiteState, name_of: &impl Fn(usize) -> &'static str) {
    // Errors first and counts after: a call finishing meanwhile may show in the counts and
    // not in the histogram, never the other way round.
    f.errors = state.kinds.read();
    let c = state.read_counts();
    f.callers = state.read_callers(name_of);
    f.current = c.current;
    f.highwater = c.highwater;
    f.success = c.success;
    f.panics = c.panics;
    f.cancelled = c.cancelled;
    f.allocations = c.allocations;
    f.allocated_bytes = c.allocated_bytes;
    let failures = f.errors_total() + c.panics + c.cancelled;
    f.success_times =
        state.success_times.distribution(&state.pool, c.success, c.success_sum, c.recent_success);
    f.failure_times =
        state.failure_times.distribution(&state.pool, failures, c.failure_sum, c.recent_failure);
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("sites", &self.sites.len()).finish()
    }
}
