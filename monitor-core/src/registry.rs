//! The registry: every call site and every instrument, and the snapshot of all of them that
//! every view reads.

use std::fmt;
use std::sync::OnceLock;

use crate::site::{table, CallSite, SiteBudget, SiteError, SiteTable};
use crate::snapshot::{Distribution, FunctionStats, Snapshot};
use crate::state::SiteState;

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
    table: &'static SiteTable,
}

/// The process's registry.
///
/// ```
/// let count = monitor_core::registry().sites().count();
/// assert_eq!(monitor_core::registry().snapshot().functions.len(), count);
/// ```
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry { table: table() })
}

impl Registry {
    /// The call site for a function known only at run time, such as a web route: the same
    /// name and category always give the same site, which then works like a `#[monitored]`
    /// one (see [`CallSite::instrument`]). Finding an existing site takes no lock and
    /// allocates nothing; the first use of a name makes the site (listed after the static
    /// ones, in the order they were made).
    ///
    /// Sites made here count against [`SiteBudget::application`]; see [`Registry::site_in`]
    /// for another budget.
    ///
    /// # Errors
    ///
    /// [`SiteError::EmptyName`] for `""`, and [`SiteError::BudgetFull`] once the application's
    /// 1,024 sites exist: names must come from a bounded set.
    ///
    /// ```
    /// let registry = monitor_core::registry();
    /// let site = registry.site("GET /users/{id}", Some("http_server")).unwrap();
    /// assert!(std::ptr::eq(site, registry.site("GET /users/{id}", Some("http_server")).unwrap()));
    /// assert!(registry.sites().any(|s| std::ptr::eq(s, site)));
    /// assert!(registry.site("", None).is_err());
    /// ```
    pub fn site(
        &self,
        name: &str,
        category: Option<&'static str>,
    ) -> Result<&'static CallSite, SiteError> {
        self.site_in(SiteBudget::application(), name, category)
    }

    /// Like [`Registry::site`], a new site counting against `budget`. A name that has a site
    /// already gives that site, whichever budget made it, and costs nothing.
    ///
    /// # Errors
    ///
    /// [`SiteError::EmptyName`] for `""`, [`SiteError::BudgetFull`] once `budget` has made
    /// its sites, and [`SiteError::Full`] once [`MAX_DYNAMIC_SITES`](crate::MAX_DYNAMIC_SITES) exist in all.
    ///
    /// ```
    /// use monitor_core::{registry, SiteBudget};
    /// let site = registry().site_in(SiteBudget::http_server(), "GET /health", Some("http_server"));
    /// assert!(site.is_ok());
    /// ```
    pub fn site_in(
        &self,
        budget: &SiteBudget,
        name: &str,
        category: Option<&'static str>,
    ) -> Result<&'static CallSite, SiteError> {
        let (site, made) = self.table.site_in(budget, name, category)?;
        if made {
            // A capture waiting for sites yet to be made may want this one.
            if let Some(id) = self.table.id_of(site) {
                crate::record::site_added(site, id);
            }
        }
        Ok(site)
    }

    /// Iterates over every call site, in snapshot order.
    ///
    /// ```
    /// for site in monitor_core::registry().sites() {
    ///     println!("{} at {}:{}", site.name(), site.file(), site.line());
    /// }
    /// ```
    pub fn sites(&self) -> impl Iterator<Item = &'static CallSite> + '_ {
        self.table.sites()
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
        let mut functions = self.functions(|_| true, None);
        crate::record::exemplars::fill(&mut functions);
        Snapshot { functions, metrics: crate::metrics::snapshot(), alloc: crate::alloc::stats() }
    }

    /// A snapshot for one function's view: the functions named `name` in full, the functions
    /// they call with their counts and callers but no latency distributions, every other
    /// function listed without statistics, and no instruments. Much cheaper than
    /// [`Registry::snapshot`] with many functions: it reads one function's histograms and the
    /// caller keys of the others.
    ///
    /// ```
    /// #[monitor_core::monitored(name = "around_doc::f")]
    /// fn f() {}
    /// f();
    /// let snap = monitor_core::registry().snapshot_around("around_doc::f");
    /// assert_eq!(snap.function("around_doc::f").unwrap().success_times.count, 1);
    /// assert!(snap.metrics.is_empty());
    /// ```
    pub fn snapshot_around(&self, name: &str) -> Snapshot {
        let mut functions = self.functions(|site| site.name() == name, Some(name));
        crate::record::exemplars::fill(&mut functions);
        Snapshot { functions, metrics: Vec::new(), alloc: crate::alloc::stats() }
    }

    /// The functions whose name `named` accepts, in full; every other function listed without
    /// statistics; no instruments or exemplars. What the objectives' sampler and status read:
    /// the histograms of their own functions, not of every site.
    pub(crate) fn snapshot_named(&self, named: impl Fn(&str) -> bool) -> Snapshot {
        let functions = self.functions(|site| named(site.name()), None);
        Snapshot { functions, metrics: Vec::new(), alloc: None }
    }

    /// Every function listed; the statistics only of the sites `full` picks, and with
    /// `callees_of` the counts and callers (no histograms) of the functions it calls.
    fn functions(
        &self,
        full: impl Fn(&CallSite) -> bool,
        callees_of: Option<&str>,
    ) -> Vec<FunctionStats> {
        // Readers stock the histogram chunks that calls take, so calls need not allocate.
        crate::alloc::uncounted(crate::state::keep_site_chunks_ready);
        let sites: Vec<&'static CallSite> = self.sites().collect();
        let name_of = |id: usize| sites.get(id).map_or("unknown", |s| s.name());
        let callers: Vec<usize> = match callees_of {
            Some(name) => (0..sites.len()).filter(|&i| sites[i].name() == name).collect(),
            None => Vec::new(),
        };
        sites
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
                    in_flight: 0,
                    highwater: 0,
                    success: 0,
                    errors: Vec::new(),
                    panics: 0,
                    cancelled: 0,
                    allocations: 0,
                    allocated_bytes: 0,
                    success_times: Distribution::default(),
                    failure_times: Distribution::default(),
                    polls: None,
                    exemplars: Vec::new(),
                };
                if let Some(state) = site.state_if_called() {
                    if full(site) {
                        fill(&mut f, state, &name_of, true);
                    } else if callees_of.is_some() && state.has_caller_among(&callers) {
                        fill(&mut f, state, &name_of, false);
                    }
                }
                f
            })
            .collect()
    }
}

fn fill(
    f: &mut FunctionStats,
    state: &SiteState,
    name_of: &impl Fn(usize) -> &'static str,
    timed: bool,
) {
    // Errors first and counts after: a call finishing meanwhile may show in the counts and
    // not in the histogram, never the other way round.
    f.errors = state.kinds.read();
    let c = state.read_counts();
    f.callers = state.read_callers(name_of);
    f.in_flight = c.current;
    f.highwater = c.highwater;
    f.success = c.success;
    f.panics = c.panics;
    f.cancelled = c.cancelled;
    f.allocations = c.allocations;
    f.allocated_bytes = c.allocated_bytes;
    f.polls = state.read_polls();
    if !timed {
        return;
    }
    let failures = f.failures();
    f.success_times = state.success_times.distribution(
        &state.chunks,
        &state.written_lanes(false),
        c.success,
        c.success_sum,
        c.recent_success,
    );
    f.failure_times = state.failure_times.distribution(
        &state.chunks,
        &state.written_lanes(true),
        failures,
        c.failure_sum,
        c.recent_failure,
    );
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("sites", &self.table.len()).finish()
    }
}
