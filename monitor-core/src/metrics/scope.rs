//! A scope: the module (or any name) instruments are grouped under, with its tags.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use super::registry::{metrics, Entry, Instrument, Key, Tags};
use super::*;

/// A named group of instruments, usually one per module: `monitor_core::scope!()`.
///
/// Instruments are got-or-created by name: asking twice for `counter("requests")` gives two
/// handles to the same counter. Keep the handle; using it takes no lock and allocates nothing.
/// Tags (`with_tags`) make further series of the same name.
///
/// # Examples
///
/// ```
/// let scope = monitor_core::scope!();
/// let requests = scope.counter("requests");
/// let sizes = scope.with_tags(&[("route", "/items")]).int_val("response_bytes");
/// requests.inc();
/// sizes.observe(512);
///
/// let snap = monitor_core::registry().snapshot();
/// let m = snap.metric(scope.name(), "requests").unwrap();
/// assert_eq!(m.value, monitor_core::MetricValue::Counter { value: 1, high: 1, low: 0 });
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub(super) name: Arc<str>,
    pub(super) tags: Tags,
}

/// The scope of the calling module: `Scope::new(module_path!())`, or a named one.
///
/// ```
/// let here = monitor_core::scope!();
/// assert_eq!(here.name(), module_path!());
/// let named = monitor_core::scope!("billing");
/// assert_eq!(named.name(), "billing");
/// ```
#[macro_export]
macro_rules! scope {
    () => {
        $crate::Scope::new(::core::module_path!())
    };
    ($name:expr) => {
        $crate::Scope::new($name)
    };
}

macro_rules! getters {
    ($($(#[$doc:meta])* $get:ident, $try_get:ident, $described:ident, $ty:ident, $kind:ident;)*) => {
        $(
            $(#[$doc])*
            pub fn $get(&self, name: &str) -> $ty {
                self.$try_get(name).unwrap_or_else(|_| $ty::new())
            }

            #[doc = concat!(
                "Like [`Scope::", stringify!($get), "`], but says why when the name is taken by ",
                "another kind of instrument, or empty, instead of handing back an unregistered one.",
                "\n\n```\nlet s = monitor_core::Scope::new(\"try_doc\");\nassert!(s.",
                stringify!($try_get), "(\"\").is_err());\n```"
            )]
            pub fn $try_get(&self, name: &str) -> Result<$ty, MetricError> {
                self.$described(name, None)
            }

            #[doc = concat!(
                "Like [`Scope::", stringify!($try_get), "`], with a description (shown as ",
                "Prometheus `HELP`; the first one given is kept).\n\n```\nlet s = ",
                "monitor_core::Scope::new(\"described_doc\");\ns.", stringify!($described),
                "(\"x\", Some(\"An example.\")).unwrap();\n```"
            )]
            pub fn $described(
                &self,
                name: &str,
                description: Option<&str>,
            ) -> Result<$ty, MetricError> {
                match self.get_or_create(name, MetricKind::$kind, description, || {
                    Instrument::$kind($ty::new())
                })? {
                    Instrument::$kind(it) => Ok(it),
                    other => Err(MetricError::KindMismatch {
                        existing: other.kind(),
                        requested: MetricKind::$kind,
                    }),
                }
            }
        )*
    };
}

/// The most tag sets one instrument name of a scope has: past it, new tag sets share one
/// overflow series tagged `otel.metric.overflow=true` (what OpenTelemetry's SDKs do, with the
/// same default), so tags with unbounded values — ids, paths — cannot grow memory without
/// bound, and nothing counted is lost. Gauges past it are refused.
pub const MAX_SERIES_PER_INSTRUMENT: usize = 2000;

/// The tags of the overflow series.
fn overflow_tags() -> Tags {
    Arc::from(vec![("otel.metric.overflow".to_string(), "true".to_string())])
}

/// Tag sets registered per scope and instrument name, kept beside the instruments (under
/// their lock) so that a new tag set is checked against the limit without walking its name's
/// series.
static SERIES: Mutex<BTreeMap<ScopeAndName, usize>> = Mutex::new(BTreeMap::new());

type ScopeAndName = (Arc<str>, Arc<str>);

/// `key` if it is registered or within the limit of its name's tag sets, else the key of its
/// name's overflow series. A new key within the limit is counted as taken: the caller, holding
/// the instruments' lock, registers it.
pub(super) fn bounded(map: &BTreeMap<Key, Entry>, key: Key) -> Key {
    if key.2.is_empty() || map.contains_key(&key) {
        return key;
    }
    let (scope, name) = (Arc::clone(&key.0), Arc::clone(&key.1));
    let mut series = SERIES.lock().unwrap_or_else(PoisonError::into_inner);
    let taken = series.entry((Arc::clone(&scope), Arc::clone(&name)));
    // The first new tag set of a name counts what is there (its untagged series, if any).
    let taken = taken.or_insert_with(|| {
        let first: Key = (Arc::clone(&scope), Arc::clone(&name), Arc::from(Vec::new()));
        map.range(first..).take_while(|(k, _)| k.0 == scope && k.1 == name).count()
    });
    if *taken < MAX_SERIES_PER_INSTRUMENT {
        *taken += 1;
        key
    } else {
        (scope, name, overflow_tags())
    }
}

impl Scope {
    /// A scope named `name` (a module path, or any name).
    ///
    /// ```
    /// let s = monitor_core::Scope::new("payments");
    /// assert_eq!(s.name(), "payments");
    /// ```
    pub fn new(name: &str) -> Scope {
        Scope { name: Arc::from(name), tags: Arc::from(Vec::new()) }
    }

    /// The scope's name.
    ///
    /// ```
    /// assert_eq!(monitor_core::Scope::new("x").name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scope's tags, sorted by key.
    ///
    /// ```
    /// let s = monitor_core::Scope::new("x").with_tags(&[("b", "2"), ("a", "1")]);
    /// assert_eq!(s.tags()[0], ("a".to_string(), "1".to_string()));
    /// ```
    pub fn tags(&self) -> &[(String, String)] {
        &self.tags
    }

    /// The same scope with more tags (a later value replaces an earlier one of the same key).
    ///
    /// ```
    /// let s = monitor_core::Scope::new("x").with_tags(&[("region", "eu")]);
    /// assert_eq!(s.tags().len(), 1);
    /// ```
    pub fn with_tags(&self, tags: &[(&str, &str)]) -> Scope {
        let mut all: BTreeMap<String, String> = self.tags.iter().cloned().collect();
        for (k, v) in tags {
            all.insert((*k).to_string(), (*v).to_string());
        }
        Scope { name: Arc::clone(&self.name), tags: all.into_iter().collect::<Vec<_>>().into() }
    }

    fn get_or_create(
        &self,
        name: &str,
        kind: MetricKind,
        description: Option<&str>,
        make: impl FnOnce() -> Instrument,
    ) -> Result<Instrument, MetricError> {
        if name.is_empty() {
            return Err(MetricError::EmptyName);
        }
        let key = (Arc::clone(&self.name), Arc::from(name), Arc::clone(&self.tags));
        let mut map = metrics();
        let key = bounded(&map, key);
        let entry =
            map.entry(key).or_insert_with(|| Entry { description: None, instrument: make() });
        if let (None, Some(d)) = (&entry.description, description) {
            entry.description = Some(Arc::from(d));
        }
        let existing = entry.instrument.kind();
        if existing != kind {
            return Err(MetricError::KindMismatch { existing, requested: kind });
        }
        Ok(entry.instrument.clone())
    }

    getters! {
        /// The counter `name` of this scope, created at zero if new. If the name is taken by
        /// another kind of instrument, the counter returned works but is not registered (see
        /// [`Scope::try_counter`]).
        ///
        /// ```
        /// let c = monitor_core::scope!().counter("open_files");
        /// c.inc();
        /// assert_eq!(c.value(), 1);
        /// ```
        counter, try_counter, try_counter_described, Counter, Counter;
        /// The meter `name` of this scope (see [`Meter`]).
        ///
        /// ```
        /// let m = monitor_core::scope!().meter("bytes_sent");
        /// m.mark(1500);
        /// assert_eq!(m.total(), 1500);
        /// ```
        meter, try_meter, try_meter_described, Meter, Meter;
        /// The event `name` of this scope (see [`Event`]).
        ///
        /// ```
        /// let e = monitor_core::scope!().event("cache_flush");
        /// e.mark();
        /// assert_eq!(e.total(), 1);
        /// ```
        event, try_event, try_event_described, Event, Event;
        /// The integer distribution `name` of this scope (see [`IntVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().int_val("batch_size");
        /// v.observe(32);
        /// ```
        int_val, try_int_val, try_int_val_described, IntVal, IntVal;
        /// The float distribution `name` of this scope (see [`FloatVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().float_val("load_factor");
        /// v.observe(0.75);
        /// ```
        float_val, try_float_val, try_float_val_described, FloatVal, FloatVal;
        /// The boolean tally `name` of this scope (see [`BoolVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().bool_val("cache_hit");
        /// v.observe(true);
        /// ```
        bool_val, try_bool_val, try_bool_val_described, BoolVal, BoolVal;
        /// The duration distribution `name` of this scope (see [`DurationVal`]).
        ///
        /// ```
        /// let v = monitor_core::scope!().duration_val("queue_wait");
        /// v.observe(std::time::Duration::from_millis(3));
        /// ```
        duration_val, try_duration_val, try_duration_val_described, DurationVal, DurationVal;
        /// The timer `name` of this scope (see [`Timer`]).
        ///
        /// ```
        /// let t = monitor_core::scope!().timer("flush");
        /// let guard = t.start();
        /// guard.stop();
        /// ```
        timer, try_timer, try_timer_described, Timer, Timer;
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").field("name", &self.name).field("tags", &self.tags).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::MetricValue;

    #[test]
    fn tag_sets_past_the_limit_share_the_overflow_series() {
        let scope = Scope::new("series_limit_test");
        let ids: Vec<String> = (0..MAX_SERIES_PER_INSTRUMENT + 5).map(|i| i.to_string()).collect();
        for id in &ids {
            scope.with_tags(&[("user", id)]).counter("logins").inc();
        }
        // Known series stay themselves; a new one past the limit counts in the overflow.
        scope.with_tags(&[("user", "0")]).counter("logins").inc();
        let snap = super::super::registry::snapshot();
        let logins: Vec<_> =
            snap.iter().filter(|m| m.scope == "series_limit_test" && m.name == "logins").collect();
        assert_eq!(logins.len(), MAX_SERIES_PER_INSTRUMENT + 1);
        let value = |tag: (&str, &str)| {
            logins
                .iter()
                .find(|m| m.tags == [(tag.0.to_string(), tag.1.to_string())])
                .map(|m| m.value.clone())
        };
        assert_eq!(value(("user", "0")), Some(MetricValue::Counter { value: 2, high: 2, low: 0 }));
        assert_eq!(
            value(("otel.metric.overflow", "true")),
            Some(MetricValue::Counter { value: 5, high: 5, low: 0 }),
            "nothing counted is lost"
        );
        // Another name of the scope has a limit of its own; gauges past it are refused.
        assert_eq!(scope.with_tags(&[("user", "x")]).gauge("sessions", || 1.0), Ok(()));
        for id in &ids {
            let _ = scope.with_tags(&[("user", id)]).gauge("sessions", || 1.0);
        }
        let err = scope.with_tags(&[("user", "one more")]).gauge("sessions", || 1.0);
        assert_eq!(err, Err(MetricError::TooManySeries));
    }
}
