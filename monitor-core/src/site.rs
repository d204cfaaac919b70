//! Call sites: the static record the macro emits per function, and the run-time ones.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use once_cell::race::OnceBox;

use crate::state::{SiteState, ENTRY_KEY};

/// A monitored function: its static description, and (after its first call) its statistics.
///
/// `#[monitored]` emits one `static CallSite` per function and registers it at link time, so
/// every site is in [`registry()`](crate::registry) before any of them runs.
///
/// # Examples
///
/// ```
/// #[monitor_core::monitored(name = "site_example", category = "io")]
/// fn work() {}
///
/// let site = monitor_core::registry().sites().find(|s| s.name() == "site_example").unwrap();
/// assert_eq!(site.category(), Some("io"));
/// assert!(site.file().ends_with(".rs"));
/// ```
pub struct CallSite {
    /// The name and category given to the attribute (or to the run-time site); `None` (no
    /// pointer for the loader to relocate) for the functions that have neither, most of them.
    labels: Option<&'static SiteLabels>,
    path: fn() -> &'static str,
    /// The module and the file as one string, `module file` (the macro `concat!`s them: one
    /// pointer for the loader to relocate, and the same string for every function of a file).
    /// A module path has no space; the file name is the rest. Empty for sites made at run time.
    place: &'static str,
    line: u32,
    name: OnceLock<&'static str>,
    enabled: AtomicBool,
    state: OnceBox<SiteState>,
}

/// The name and category a site was given, kept apart from the site: most functions have
/// neither, and their sites then hold no pointer to them.
#[doc(hidden)]
#[derive(Debug)]
pub struct SiteLabels {
    /// The name given with `name = "…"` (a run-time site's name).
    pub name: Option<&'static str>,
    /// The category given with `category = "…"`.
    pub category: Option<&'static str>,
}

/// Whether monitored calls are recorded at all (see [`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Switches recording of every monitored function on or off at run time (on by default).
/// While off, a monitored call costs two relaxed loads: it records nothing, is no span, and
/// its callees see its caller as theirs. Calls already running finish recording.
///
/// ```
/// monitor_core::set_enabled(false);
/// assert!(!monitor_core::is_enabled());
/// monitor_core::set_enabled(true);
/// ```
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Relaxed);
}

/// Whether recording is switched on globally ([`set_enabled`]).
///
/// ```
/// assert!(monitor_core::is_enabled());
/// ```
pub fn is_enabled() -> bool {
    ENABLED.load(Relaxed)
}

impl CallSite {
    /// Used by the macro; `path` returns the `type_name` of an item declared inside the function,
    /// `place` is `module file` (see the field).
    #[doc(hidden)]
    pub const fn new(
        labels: Option<&'static SiteLabels>,
        path: fn() -> &'static str,
        place: &'static str,
        line: u32,
    ) -> Self {
        Self {
            labels,
            path,
            place,
            line,
            name: OnceLock::new(),
            enabled: AtomicBool::new(true),
            state: OnceBox::new(),
        }
    }

    /// Switches recording of this function on or off at run time (on by default); see
    /// [`set_enabled`] for what a switched-off call does.
    ///
    /// ```
    /// #[monitor_core::monitored(name = "switch_doc::noisy")]
    /// fn noisy() {}
    ///
    /// let site = monitor_core::registry().sites().find(|s| s.name() == "switch_doc::noisy").unwrap();
    /// site.set_enabled(false);
    /// noisy();
    /// assert!(!site.is_enabled());
    /// site.set_enabled(true);
    /// noisy();
    /// assert_eq!(monitor_core::registry().snapshot().function("switch_doc::noisy").unwrap().calls(), 1);
    /// ```
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Relaxed);
    }

    /// Whether this function's calls are recorded (its own switch; see also [`is_enabled`]).
    ///
    /// ```
    /// # for site in monitor_core::registry().sites() {
    /// let _ = site.is_enabled();
    /// # }
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// Whether a call starting now is recorded: both switches on.
    #[inline(always)]
    pub(crate) fn active(&self) -> bool {
        ENABLED.load(Relaxed) && self.enabled.load(Relaxed)
    }

    /// The function's name: the one given with `name = "…"`, else its Rust path as a user
    /// writes it (module path, impl type for methods, function name), e.g. `vlite::Proxy::handle`.
    ///
    /// ```
    /// mod shop {
    ///     pub struct Cart;
    ///     impl Cart {
    ///         #[monitor_core::monitored]
    ///         pub fn total(&self) -> u32 { 0 }
    ///     }
    /// }
    /// shop::Cart.total();
    /// assert!(monitor_core::registry().sites().any(|s| s.name().ends_with("shop::Cart::total")));
    /// ```
    pub fn name(&self) -> &'static str {
        self.name.get_or_init(|| match self.labels.and_then(|l| l.name) {
            Some(name) => name,
            None => clean_path((self.path)()),
        })
    }

    /// The module the function is defined in, as `module_path!()` gives it (for a site made
    /// at run time: its category, or `dynamic`).
    ///
    /// ```
    /// # for site in monitor_core::registry().sites() {
    /// assert!(!site.module().is_empty());
    /// # }
    /// ```
    pub fn module(&self) -> &'static str {
        match self.place.split_once(' ') {
            Some((module, _)) => module,
            None => self.category().unwrap_or(RUN_TIME_MODULE),
        }
    }

    /// The source file of the function (empty for a site made at run time).
    ///
    /// ```
    /// # for site in monitor_core::registry().sites() {
    /// assert!(!site.file().is_empty());
    /// # }
    /// ```
    pub fn file(&self) -> &'static str {
        self.place.split_once(' ').map_or("", |(_, file)| file)
    }

    /// The line of the function in its source file (0 for a site made at run time).
    ///
    /// ```
    /// # for site in monitor_core::registry().sites() {
    /// assert!(site.line() > 0);
    /// # }
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The category given with `#[monitored(category = "…")]`.
    ///
    /// ```
    /// # for site in monitor_core::registry().sites() {
    /// let _ = site.category();
    /// # }
    /// ```
    pub fn category(&self) -> Option<&'static str> {
        self.labels.and_then(|l| l.category)
    }

    /// The site's statistics, built on its first call.
    #[inline(always)]
    pub(crate) fn state(&'static self) -> &'static SiteState {
        match self.state.get() {
            Some(state) => state,
            None => self.init_state(),
        }
    }

    /// The site's statistics if it was ever called.
    pub(crate) fn state_if_called(&self) -> Option<&SiteState> {
        self.state.get()
    }

    #[cold]
    #[inline(never)]
    fn init_state(&'static self) -> &'static SiteState {
        // The monitor's memory (the registry too, on the program's first call), not the calls'.
        crate::alloc::uncounted(|| {
            let id = table().id_of(self).unwrap_or(ENTRY_KEY);
            // A lost race frees the loser's box; every thread then uses the winner's.
            self.state.get_or_init(|| Box::new(SiteState::new(id)))
        })
    }
}

impl fmt::Debug for CallSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallSite")
            .field("name", &self.name())
            .field("module", &self.module())
            .field("file", &self.file())
            .field("line", &self.line())
            .field("category", &self.category())
            .finish()
    }
}

/// Turns `krate::m::Foo<_>::method::__MonitorMarker` into `krate::m::Foo::method`, and
/// `<krate::Foo<_> as krate::Trait>::method::…` into `krate::Foo::method`.
fn clean_path(raw: &'static str) -> &'static str {
    let trimmed = raw.rsplit_once("::").map_or(raw, |(head, _marker)| head);
    let needs_work = trimmed.contains(['<', '{']);
    if !needs_work {
        return trimmed;
    }
    let mut out = String::with_capacity(trimmed.len());
    let mut rest = trimmed;
    // `<Type as Trait>::rest` → `Type::rest`.
    if let Some(inner) = rest.strip_prefix('<') {
        let mut depth = 0usize;
        let mut end = None;
        for (i, c) in inner.char_indices() {
            match c {
                '<' => depth += 1,
                '>' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                '>' => depth -= 1,
                _ => {}
            }
        }
        if let Some(end) = end {
            let qualified = &inner[..end];
            let ty = split_as(qualified).unwrap_or(qualified);
            out.push_str(ty);
            rest = &inner[end + 1..];
        }
    }
    out.push_str(rest);
    let mut cleaned = String::with_capacity(out.len());
    let mut depth = 0usize;
    for c in out.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => cleaned.push(c),
            _ => {}
        }
    }
    let cleaned = cleaned.replace("::{{closure}}", "");
    // Leaked once per site, the first time its name is asked for: names live as long as the site.
    Box::leak(cleaned.into_boxed_str())
}

/// Splits `Type as Trait` at the ` as ` that is not nested in generics.
fn split_as(s: &str) -> Option<&str> {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 && s[i..].starts_with(" as ") => return Some(&s[..i]),
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The table of every site: the static ones the linker gathered, then the run-time ones.

/// Every call site of the program: the static ones the linker gathered (see `imp`), in a
/// stable order (name, file, line, module), then those made at run time, in the order they
/// were made. A site's position is its id.
pub(crate) struct SiteTable {
    sites: Vec<&'static CallSite>,
    ids: HashMap<usize, u32>,
    /// Sites made at run time; made on the first [`SiteTable::site_in`].
    dynamic: OnceLock<Dynamic>,
}

/// The process's table of sites, built on first use.
pub(crate) fn table() -> &'static SiteTable {
    static TABLE: OnceLock<SiteTable> = OnceLock::new();
    TABLE.get_or_init(SiteTable::build)
}

/// The order of the static sites: by name, file, line and module. Out of line, so sorting them
/// is the standard library's sort with a call to this, not a copy of it with every accessor
/// inlined.
#[inline(never)]
fn in_table_order(a: &&'static CallSite, b: &&'static CallSite) -> std::cmp::Ordering {
    let key = |s: &CallSite| (s.name(), s.file(), s.line(), s.module());
    key(a).cmp(&key(b))
}

fn address(site: &CallSite) -> usize {
    std::ptr::from_ref(site) as usize
}

impl SiteTable {
    fn build() -> SiteTable {
        let mut sites: Vec<&'static CallSite> = linked_sites().collect();
        sites.sort_by(in_table_order);
        // A static linked in twice would show up twice; keep one.
        sites.dedup_by(|a, b| std::ptr::eq(*a, *b));
        let ids = sites.iter().enumerate().map(|(i, s)| (address(s), i as u32)).collect();
        SiteTable { sites, ids, dynamic: OnceLock::new() }
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

    /// The site of `name` and `category`, made in `budget` if there is none (see
    /// [`crate::Registry::site_in`]), and whether this call made it.
    pub(crate) fn site_in(
        &self,
        budget: &SiteBudget,
        name: &str,
        category: Option<&'static str>,
    ) -> Result<(&'static CallSite, bool), SiteError> {
        if name.is_empty() {
            return Err(SiteError::EmptyName);
        }
        let dynamic = self.dynamic.get_or_init(Dynamic::new);
        match dynamic.find(name, category) {
            Ok(site) => Ok((site, false)),
            Err(_) => dynamic.add(budget, name, category),
        }
    }

    /// Every site, in id order.
    pub(crate) fn sites(&self) -> impl Iterator<Item = &'static CallSite> + '_ {
        self.sites.iter().copied().chain(self.dynamic.get().into_iter().flat_map(Dynamic::list))
    }

    /// How many sites there are now.
    pub(crate) fn len(&self) -> usize {
        self.sites.len() + self.dynamic.get().map_or(0, |d| d.list().count())
    }
}

/// How many call sites a program can make at run time, in all of its [`SiteBudget`]s.
pub const MAX_DYNAMIC_SITES: usize = 4096;

/// A share of the call sites made at run time. Every site made through a budget
/// ([`Registry::site_in`](crate::Registry::site_in)) counts against its own limit, so a source of names that outsiders
/// can drive (an HTTP layer naming routes and methods, a client naming hosts) can use up its
/// share but never the sites the application or another layer needs. [`Registry::site`](crate::Registry::site) draws
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
    /// The sites [`Registry::site`](crate::Registry::site) makes: 1,024.
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

/// Why [`Registry::site`](crate::Registry::site) made no call site.
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
    /// The seed of [`hash`].
    seed: u64,
    grow: Mutex<()>,
}

impl Dynamic {
    fn new() -> Self {
        Dynamic {
            sites: (0..MAX_DYNAMIC_SITES).map(|_| OnceLock::new()).collect(),
            len: AtomicUsize::new(0),
            index: (0..INDEX_SLOTS).map(|_| AtomicU32::new(0)).collect(),
            seed: std::hash::BuildHasher::hash_one(
                &std::collections::hash_map::RandomState::new(),
                0,
            ),
            grow: Mutex::new(()),
        }
    }

    fn list(&self) -> impl Iterator<Item = &'static CallSite> + '_ {
        let len = self.len.load(Ordering::Acquire);
        self.sites[..len].iter().filter_map(|s| s.get().copied())
    }

    /// The site named so, or the index slot where it would go.
    fn find(&self, name: &str, category: Option<&str>) -> Result<&'static CallSite, usize> {
        let mut slot = hash(self.seed, name, category) as usize % INDEX_SLOTS;
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
    ) -> Result<(&'static CallSite, bool), SiteError> {
        let _grow = self.grow.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another thread may have made it while this one waited.
        let slot = match self.find(name, category) {
            Ok(site) => return Ok((site, false)),
            Err(slot) => slot,
        };
        // Budgets change only under the lock held here.
        if budget.used.load(Ordering::Relaxed) >= budget.limit {
            return Err(SiteError::BudgetFull { budget: budget.name, max: budget.limit });
        }
        let pos = self.len.load(Ordering::Relaxed);
        let cell = self.sites.get(pos).ok_or(SiteError::Full { max: MAX_DYNAMIC_SITES })?;
        budget.used.fetch_add(1, Ordering::Relaxed);
        // Leaked once per name (its labels and site too), bounded by MAX_DYNAMIC_SITES: sites
        // live as long as the program.
        let name: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let labels: &'static SiteLabels =
            Box::leak(Box::new(SiteLabels { name: Some(name), category }));
        let site: &'static CallSite =
            Box::leak(Box::new(CallSite::new(Some(labels), no_path, "", 0)));
        let _ = cell.set(site);
        self.len.store(pos + 1, Ordering::Release);
        self.index[slot].store(pos as u32 + 1, Ordering::Release);
        Ok((site, true))
    }
}

fn no_path() -> &'static str {
    ""
}

/// The module of a site made at run time without a category.
const RUN_TIME_MODULE: &str = "dynamic";

/// The name and category hashed sixteen bytes to a multiply, from a seed chosen per process:
/// the index only needs spread (the comparison decides), and names clients choose (request
/// paths) cannot be crafted offline to collide. Each request through the HTTP layers hashes
/// its site's name, so the hash is short: a route name or a category of up to 16 bytes is two
/// overlapping loads and one 64×64→128-bit multiply whose halves are folded together (a byte at
/// a time, FNV, was a tenth of a request's cost; eight bytes to a dependent multiply, a
/// twentieth).
fn hash(seed: u64, name: &str, category: Option<&str>) -> u64 {
    let h = hash_bytes(seed, name.as_bytes());
    let h = match category {
        Some(c) => hash_bytes(h ^ 1, c.as_bytes()),
        None => fold(h ^ K0, K1),
    };
    // The index uses the low bits, which the fold already spreads; once more for the seed.
    fold(h ^ K2, seed ^ K3)
}

/// Odd constants from the digits of pi, kept apart from each other so no input zeroes both
/// factors of a multiply.
const K0: u64 = 0x243f_6a88_85a3_08d3;
const K1: u64 = 0x1319_8a2e_0370_7344;
const K2: u64 = 0xa409_3822_299f_31d1;
const K3: u64 = 0x082e_fa98_ec4e_6c89;

/// The 128-bit product of `a` and `b`, its high half folded onto its low half.
#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    // Truncations meant: the two halves of the product.
    #[allow(clippy::cast_possible_truncation)]
    let (low, high) = (p as u64, (p >> 64) as u64);
    low ^ high
}

/// Eight bytes from the start of `b` (which has at least eight), little-endian.
#[inline(always)]
fn load8(b: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Four bytes from the start of `b` (which has at least four), little-endian.
#[inline(always)]
fn load4(b: &[u8]) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[..4]);
    u64::from(u32::from_le_bytes(w))
}

/// `bytes` hashed onto `h`: 16 bytes a multiply, the last 16 (or fewer) read as two
/// overlapping words; the length goes in last, so "ab" + "c" and "a" + "bc" differ.
#[inline(always)]
fn hash_bytes(mut h: u64, bytes: &[u8]) -> u64 {
    let len = bytes.len();
    let (a, b) = if len > 16 {
        let mut rest = bytes;
        while rest.len() > 16 {
            h = fold(load8(rest) ^ K0 ^ h, load8(&rest[8..]) ^ K1);
            rest = &rest[16..];
        }
        let tail = &bytes[len - 16..];
        (load8(tail), load8(&tail[8..]))
    } else if len >= 8 {
        (load8(bytes), load8(&bytes[len - 8..]))
    } else if len >= 4 {
        (load4(bytes), load4(&bytes[len - 4..]))
    } else if len > 0 {
        let spread = u64::from(bytes[0]) << 16 | u64::from(bytes[len / 2]) << 8;
        (spread | u64::from(bytes[len - 1]), 0)
    } else {
        (0, 0)
    };
    fold(a ^ K0 ^ h, b ^ K1 ^ len as u64)
}

// ---------------------------------------------------------------------------------------------
// The static sites, from the linker.

/// Every `#[monitored]` function's call site in the program.
fn linked_sites() -> impl Iterator<Item = &'static CallSite> {
    imp::linked()
}

linked_items!(
    imp,
    crate::site::CallSite,
    "monitor_call_sites",
    "__start_monitor_call_sites",
    "__stop_monitor_call_sites",
    CALL_SITES
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_index_hash_spreads_similar_names_and_keeps_parts_apart() {
        let seed = 0x1234_5678;
        assert_ne!(hash(seed, "ab", Some("c")), hash(seed, "a", Some("bc")));
        assert_ne!(hash(seed, "GET /a", None), hash(seed, "GET /a", Some("")));
        assert_ne!(hash(seed, "GET /a", None), hash(seed + 1, "GET /a", None));
        // Route-like names differing in a few bytes: slots as many as a random hash fills
        // (4,096 keys in 16,384 slots: 3,624 expected).
        let slots: HashSet<usize> = (0..4096)
            .map(|i| hash(seed, &format!("GET /users/{i}/orders"), Some("http_server")) as usize)
            .map(|h| h % INDEX_SLOTS)
            .collect();
        assert!(slots.len() > 3_400, "{} slots", slots.len());
        // The same for names past 16 bytes (several multiplies), differing early or late.
        for name in [|i| format!("GET /api/v2/users/{i}/orders"), |i| format!("{i} /a")] {
            let slots: HashSet<usize> =
                (0..4096).map(|i| hash(seed, &name(i), None) as usize % INDEX_SLOTS).collect();
            assert!(slots.len() > 3_400, "{} slots", slots.len());
        }
        // Every length around the word sizes: no two alike.
        let hashes: HashSet<u64> =
            (0..70).map(|n| hash(seed, &"a".repeat(n), Some("http_server"))).collect();
        assert_eq!(hashes.len(), 70);
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean_path("k::m::f::__MonitorMarker"), "k::m::f");
        assert_eq!(clean_path("k::m::Foo<_>::method::__MonitorMarker"), "k::m::Foo::method");
        assert_eq!(
            clean_path("<k::m::Foo<_, Vec<u8>> as k::m::Tr<u8>>::t::__MonitorMarker"),
            "k::m::Foo::t"
        );
        assert_eq!(clean_path("k::f::{{closure}}::__MonitorMarker"), "k::f");
    }

    #[crate::monitored(crate = crate)]
    fn in_the_section() {}

    /// Every monitored function holds one in its binary, called or not.
    #[test]
    fn a_site_is_small() {
        assert_eq!(std::mem::size_of::<CallSite>(), 72);
    }

    #[crate::monitored(crate = crate)]
    fn placed() {}
    const AFTER_PLACED: u32 = line!();

    /// A site gives back the line of the function's name, and its module and file from the
    /// one string the macro joins them in; a site made at run time has its category for a
    /// module, no file, line 0.
    #[test]
    fn a_site_knows_its_place() {
        let site = super::linked_sites().find(|s| s.name().ends_with("::placed")).unwrap();
        assert_eq!(site.line(), AFTER_PLACED - 1);
        assert_eq!(site.module(), module_path!());
        assert_eq!(site.file(), file!());
        let made = crate::registry().site("a_site_knows_its_place", Some("jobs")).unwrap();
        assert_eq!((made.module(), made.file(), made.line()), ("jobs", "", 0));
        let made = crate::registry().site("a_site_knows_its_place", None).unwrap();
        assert_eq!(made.module(), "dynamic");
    }

    #[test]
    fn the_section_holds_every_site_once() {
        let here = super::linked_sites().filter(|s| s.name().ends_with("in_the_section")).count();
        assert_eq!(here, 1);
        assert!(super::linked_sites().all(|s| !s.name().is_empty()));
    }
}
