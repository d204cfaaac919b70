//! The registry of every call site, known at link time.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

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
    /// Sites made at run time, after the static ones; made on the first [`Registry::site`].
    dynamic: OnceLock<Dynamic>,
}

/// How many call sites a program can make at run time, in all of its [`SiteBudget`]s.
pub const MAX_DYNAMIC_SITES: usize = 4096;

/// A share of the call sites made at run time. Every site made through a budget
/// ([`Registry::site_in`]) counts against its own limit, so a source of names that outsiders
/// can drive (an HTTP layer naming routes and methods, a client naming hosts) can use up its
/// share but never the sites the application or another layer needs. [`Registry::site`] draws
/// on [`SiteBudget::application`].
///
/// The budgets of the monitor's own layers and of the application add up to less than
/// [`MAX_DYNAMIC_SITES`]; budgets of your own take from what is left.
///
/// ```
/// use monitor_core::{registry, SiteBudget, SiteError};
///
/// static QUEUES: SiteBudget = SiteBudget::new("queues", 2);
/// let a = registry().site_in(&QUEUES, "queue a", Some("queue")).unwrap();
/// registry().site_in(&QUEUES, "queue b", Some("queue")).unwrap();
/// // The same name is the same site, and costs nothing more.
/// assert!(std::ptr::eq(a, registry().site_in(&QUEUES, "queue a", Some("queue")).unwrap()));
/// let err = registry().site_in(&QUEUES, "queue c", Some("queue")).unwrap_err();
/// assert_eq!(err, SiteError::BudgetFull { budget: "queues", max: 2 });
/// assert_eq!(QUEUES.used(), 2);
/// ```
#[derive(Debug)]
pub struct SiteBudget {
    name: &'static str,
    limit: usize,
    used: AtomicUsize,
}

static APPLICATION: SiteBudget = SiteBudget::new("application", 1024);
static HTTP_SERVER: SiteBudget = SiteBudget::new("http_server", 1024);
static HTTP_CLIENT: SiteBudget = SiteBudget::new("http_client", 512);

impl SiteBudget {
    /// The sites [`Registry::site`] makes: 1,024.
    ///
    /// ```
    /// assert_eq!(monitor_core::SiteBudget::application().limit(), 1024);
    /// ```
    pub fn application() -> &'static SiteBudget {
        &APPLICATION
    }

    /// The sites of web servers' routes (`ServerLayer` and the like): 1,024.
    ///
    /// ```
    /// assert_eq!(monitor_core::SiteBudget::http_server().limit(), 1024);
    /// ```
    pub fn http_server() -> &'static SiteBudget {
        &HTTP_SERVER
    }

    /// The sites of outgoing requests' hosts (`ClientLayer` and the like): 512.
    ///
    /// ```
    /// assert_eq!(monitor_core::SiteBudget::http_client().limit(), 512);
    /// ```
    pub fn http_client() -> &'static SiteBudget {
        &HTTP_CLIENT
    }

    /// A budget of at most `limit` sites, named `name` in its errors.
    ///
    /// ```
    /// static JOBS: monitor_core::SiteBudget = monitor_core::SiteBudget::new("jobs", 64);
    /// assert_eq!(JOBS.limit(), 64);
    /// ```
    pub const fn new(name: &'static str, limit: usize) -> SiteBudget {
        SiteBudget { name, limit, used: AtomicUsize::new(0) }
    }

    /// The most sites this budget makes.
    ///
    /// ```
    /// assert_eq!(monitor_core::SiteBudget::http_client().limit(), 512);
    /// ```
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many sites it has made.
    ///
    /// ```
    /// assert!(monitor_core::SiteBudget::http_server().used() <= 1024);
    /// ```
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }
}

/// Why [`Registry::site`] made no call site.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    /// The name was empty.
    #[error("a call site needs a non-empty name")]
    EmptyName,
    /// Every run-time site is taken.
    #[error(
        "{max} call sites were made at run time already; name them from a bounded set \
         (a route template such as `GET /users/{{id}}`, not the request path)"
    )]
    Full {
        /// [`MAX_DYNAMIC_SITES`].
        max: usize,
    },
    /// The budget the site was to be made in has made all its sites.
    #[error(
        "the `{budget}` budget has made its {max} call sites; name them from a bounded set \
         (a route template such as `GET /users/{{id}}`, not the request path)"
    )]
    BudgetFull {
        /// The budget's name.
        budget: &'static str,
        /// Its limit.
        max: usize,
    },
}

/// Slots of the lock-free name index: four per site, so probes stay short.
const INDEX_SLOTS: usize = 4 * MAX_DYNAMIC_SITES;

/// The run-time sites: an append-only list (readers see the first `len`) and an open-addressing
/// index by name, read without locks; only making a site takes the lock.
struct Dynamic {
    sites: Box<[OnceLock<&'static CallSite>]>,
    len: AtomicUsize,
    /// Position + 1 of the site whose name hashes here (0: empty).
    index: Box<[AtomicU32]>,
    grow: Mutex<()>,
}

impl Dynamic {
    fn new() -> Self {
        Dynamic {
            sites: (0..MAX_DYNAMIC_SITES).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            index: (0..INDEX_SLOTS).map(|_| AtomicU32::new(0)).collect(),
            grow: Mutex::new(()),
        }
    }

    fn list(&self) -> impl Iterator<Item = &'static CallSite> + '_ {
        let len = self.len.load(Ordering::Acquire);
        self.sites[..len].iter().filter_map(|s| s.get().copied())
    }

    /// The site named so, or the index slot where it would go.
    fn find(&self, name: &str, category: Option<&str>) -> Result<&'static CallSite, usize> {
        let mut slot = hash(name, category) as usize % INDEX_SLOTS;
        loop {
            let pos = self.index[slot].load(Ordering::Acquire);
            if pos == 0 {
                return Err(slot);
            }
            if let Some(site) = self.sites.get(pos as usize - 1).and_then(|s| s.get().copied()) {
                if site.name() == name && site.category() == category {
                    return Ok(site);
                }
            }
            slot = (slot + 1) % INDEX_SLOTS;
        }
    }

    #[cold]
    fn add(
        &self,
        budget: &SiteBudget,
        name: &str,
        category: Option<&'static str>,
    ) -> Result<&'static CallSite, SiteError> {
        let _grow = self.grow.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another thread may have made it while this one waited.
        let slot = match self.find(name, category) {
            Ok(site) => return Ok(site),
            Err(slot) => slot,
        };
        // Budgets change only under the lock held here.
        if budget.used.load(Ordering::Relaxed) >= budget.limit {
            return Err(SiteError::BudgetFull { budget: budget.name, max: budget.limit });
        }
        let pos = self.len.load(Ordering::Relaxed);
        let cell = self.sites.get(pos).ok_or(SiteError::Full { max: MAX_DYNAMIC_SITES })?;
        budget.used.fetch_add(1, Ordering::Relaxed);
        // Leaked once per name, bounded by MAX_DYNAMIC_SITES: sites live as long as the program.
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let site: &'static CallSite = Box::leak(Box::new(CallSite::new(
            Some(name),
            no_path,
            category.unwrap_or("dynamic"),
            "",
            0,
            category,
        )));
        let _ = cell.set(site);
        self.len.store(pos + 1, Ordering::Release);
        self.index[slot].store(pos as u32 + 1, Ordering::Release);
        Ok(site)
    }
}

fn no_path() -> &'static str {
    ""
}

/// FNV-1a over the name and category: the index only needs spread, the comparison decides.
fn hash(name: &str, category: Option<&str>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = name.bytes().chain([0xff]).chain(category.unwrap_or("").bytes());
    for b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
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
        let mut sites: Vec<&'static CallSite> = crate::sections::call_sites().to_vec();
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
        Registry { sites, ids, dynamic: OnceLock::new() }
    }

    pub(crate) fn id_of(&self, site: &CallSite) -> Option<u32> {
        if let Some(&id) = self.ids.get(&address(site)) {
            return Some(id);
        }
        let pos = self.dynamic.get()?.list().position(|s| std::ptr::eq(s, site))?;
        u32::try_from(self.sites.len() + pos).ok()
    }

    /// How many site ids there can ever be: the static sites and [`MAX_DYNAMIC_SITES`].
    pub(crate) fn id_capacity(&self) -> usize {
        self.sites.len() + MAX_DYNAMIC_SITES
    }

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
        self.site_in(&APPLICATION, name, category)
    }

    /// Like [`Registry::site`], a new site counting against `budget`. A name that has a site
    /// already gives that site, whichever budget made it, and costs nothing.
    ///
    /// # Errors
    ///
    /// [`SiteError::EmptyName`] for `""`, [`SiteError::BudgetFull`] once `budget` has made
    /// its sites, and [`SiteError::Full`] once [`MAX_DYNAMIC_SITES`] exist in all.
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
        if name.is_empty() {
            return Err(SiteError::EmptyName);
        }
        let dynamic = self.dynamic.get_or_init(Dynamic::new);
        match dynamic.find(name, category) {
            Ok(site) => Ok(site),
            Err(_) => dynamic.add(budget, name, category),
        }
    }

    /// Iterates over every call site, in snapshot order.
    ///
    /// ```
    /// for site in monitor_core::registry().sites() {
    ///     println!("{} at {}:{}", site.name(), site.file(), site.line());
    /// }
    /// ```
    pub fn sites(&self) -> impl Iterator<Item = &'static CallSite> + '_ {
        self.sites.iter().copied().chain(self.dynamic.get().into_iter().flat_map(Dynamic::list))
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
        let sites: Vec<&'static CallSite> = self.sites().collect();
        let name_of = |id: usize| sites.get(id).map_or("unknown", |s| s.name());
        let functions = sites
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
    f.success_times = state.success_times.distribution(
        &state.pool,
        &state.success_lanes(),
        c.success,
        c.success_sum,
        c.recent_success,
    );
    f.failure_times = state.failure_times.distribution(
        &state.pool,
        &state.failure_lanes(),
        failures,
        c.failure_sum,
        c.recent_failure,
    );
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("sites", &self.sites.len()).finish()
    }
}
