//! `tracing` spans as monitored calls. Add [`MonitorLayer`] to the subscriber a service already
//! builds, and every span — its own `#[instrument]`s and those of its libraries (tower-http's
//! `TraceLayer`, hyper, sqlx…) — becomes a call the monitor counts, at a site named
//! `target::name`: calls in flight and highwater, successes and errors by kind, latency
//! distributions, and callers. Spans and `#[monitored]` calls are each other's callers in one
//! call graph, whichever nests inside which, and share one trace: a captured trace shows both,
//! and the exporters send both.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! #[monitor_core::monitored]
//! fn lookup(key: u32) -> Result<u32, std::io::Error> {
//!     Ok(key * 2)
//! }
//!
//! #[tracing::instrument(err)]
//! fn handle(key: u32) -> Result<u32, std::io::Error> {
//!     lookup(key)
//! }
//!
//! let subscriber = tracing_subscriber::registry().with(monitor_tracing::MonitorLayer::new());
//! tracing::subscriber::with_default(subscriber, || handle(7).unwrap());
//!
//! let snap = monitor_core::registry().snapshot();
//! let named = |end: &str| snap.functions.iter().find(|f| f.name.ends_with(end)).unwrap();
//! let handle = named("::handle");
//! assert_eq!(handle.success, 1);
//! assert_eq!(named("::lookup").calls_from(handle.name), 1);
//! ```
//!
//! A span's outcome is an error when it recorded an `error` field, or an ERROR-level event
//! happened inside it (what `#[instrument(err)]` emits); a panic when a panic unwinding
//! closed it; cancelled when it closed without its return reported, at a callsite whose
//! spans report their returns (`#[instrument(ret)]`: tracing tells a layer no more than that
//! a span closed, so only such spans can tell a future dropped unfinished from one that
//! finished); else a success. The error's kind is
//! the value of a `kind` field (of the span or the event), else the `ErrorKind` of an
//! `std::io::Error` recorded as a field, else `error`. Kinds are interned, at most
//! [`MAX_KINDS`] of them; further ones count as `other`.
//!
//! While a span's trace is recorded (a capture, sampling, kept failed traces), its fields are
//! the span's attributes and the events inside it its span events. Filters compose as with any
//! layer: `MonitorLayer::new().with_filter(Targets::new().with_target("my_app", Level::INFO))`
//! bridges only those spans, and `fmt` and every other layer keep working unchanged.
//!
//! Sites come from their own budget, [`SPAN_SITES`] (1,024): span names are static, so the
//! number of sites is bounded by the code; past the budget a span is not counted.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError, RwLock};

use monitor_core::trace::AttributeValue;
use monitor_core::Span;
use monitor_core::{registry, CallSite, EnteredSpan, ErrorKind, OpenCall, Outcome, SiteBudget};
use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The sites tracing spans make: 1,024.
pub static SPAN_SITES: SiteBudget = SiteBudget::new("tracing", 1024);

/// The most distinct error kinds the layer names; further kinds count as `other`.
pub const MAX_KINDS: usize = 256;

/// The field that marks the span of a `#[monitored]` call (`monitor_core::tracing_spans`).
const MONITORED_MARK: &str = "monitor.trace_id";

/// The field of the event `#[instrument(ret)]` emits as its function returns.
const RETURN_FIELD: &str = "return";

/// The kind of an error whose kind nothing tells.
const PLAIN_ERROR: &str = "error";

/// A [`tracing_subscriber::Layer`] that makes spans monitored calls (see the crate docs).
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt;
/// let subscriber = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer())
///     .with(monitor_tracing::MonitorLayer::new().category("tracing"));
/// # drop(subscriber);
/// ```
pub struct MonitorLayer {
    /// The site of each span callsite (keyed by its metadata's address), `None` for one the
    /// budget refused.
    sites: RwLock<HashMap<usize, Option<&'static SpanSite>>>,
    category: Option<&'static str>,
    /// This layer among the layers of the process, to key the threads' copies of `sites`.
    id: u64,
}

/// A map keyed by addresses: they need no SipHash, a multiply spreads them.
type ByAddress<V> = HashMap<(u64, usize), V, BuildHasherDefault<AddressHasher>>;

/// Hashes the words of a key by multiplication (Fibonacci hashing).
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

thread_local! {
    /// Each thread's copy of the sites its layers found: a span's site without the shared lock
    /// (a read of the shared map costs two atomic writes on one cache line every thread shares).
    static SITES: RefCell<ByAddress<Option<&'static SpanSite>>> =
        RefCell::new(HashMap::default());
}

impl fmt::Debug for MonitorLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sites = self.sites.read().map_or(0, |s| s.len());
        f.debug_struct("MonitorLayer")
            .field("sites", &sites)
            .field("category", &self.category)
            .finish()
    }
}

impl Default for MonitorLayer {
    fn default() -> Self {
        MonitorLayer::new()
    }
}

impl MonitorLayer {
    /// A layer bridging every span it sees.
    ///
    /// ```
    /// let layer = monitor_tracing::MonitorLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> MonitorLayer {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let id = NEXT_ID.fetch_add(1, Relaxed);
        MonitorLayer { sites: RwLock::new(HashMap::new()), category: None, id }
    }

    /// The category the spans' sites are shown under (`#[monitored(category = …)]`'s).
    ///
    /// ```
    /// let layer = monitor_tracing::MonitorLayer::new().category("http_server");
    /// # drop(layer);
    /// ```
    #[must_use]
    pub fn category(mut self, category: &'static str) -> MonitorLayer {
        self.category = Some(category);
        self
    }

    /// The site of a span callsite, made on its first span.
    fn site(&self, meta: &'static Metadata<'static>) -> Option<&'static SpanSite> {
        let key = std::ptr::from_ref(meta) as usize;
        if let Some(site) = SITES.with(|s| s.borrow().get(&(self.id, key)).copied()) {
            return site;
        }
        let site = self.shared_site(meta, key);
        SITES.with(|s| s.borrow_mut().insert((self.id, key), site));
        site
    }

    /// The site of a span callsite from the map every thread shares, made on its first span.
    fn shared_site(
        &self,
        meta: &'static Metadata<'static>,
        key: usize,
    ) -> Option<&'static SpanSite> {
        if let Some(site) = self.sites.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return *site;
        }
        let mut sites = self.sites.write().unwrap_or_else(PoisonError::into_inner);
        *sites.entry(key).or_insert_with(|| {
            // A `#[monitored]` call's own span (monitor-core's feature `tracing`): counted
            // already.
            if meta.fields().field(MONITORED_MARK).is_some() {
                return None;
            }
            let name = format!("{}::{}", meta.target(), meta.name());
            let site = registry().site_in(&SPAN_SITES, &name, self.category).ok()?;
            Some(SpanSite::of(site))
        })
    }
}

/// A bridged span callsite's site, and what the layer learned of its spans.
struct SpanSite {
    site: &'static CallSite,
    /// A span of it reported its return (`#[instrument(ret)]`'s event): from then on, one
    /// that closes without reporting one, or an error, was dropped unfinished.
    reports_returns: AtomicBool,
}

impl SpanSite {
    /// The one of `site`, for the life of the process (there are at most as many as sites).
    fn of(site: &'static CallSite) -> &'static SpanSite {
        static ALL: Mutex<Option<HashMap<usize, &'static SpanSite>>> = Mutex::new(None);
        let mut all = ALL.lock().unwrap_or_else(PoisonError::into_inner);
        let all = all.get_or_insert_with(HashMap::new);
        all.entry(std::ptr::from_ref(site) as usize).or_insert_with(|| {
            Box::leak(Box::new(SpanSite { site, reports_returns: AtomicBool::new(false) }))
        })
    }
}

/// What the layer keeps in a bridged span's extensions.
struct Bridged {
    call: Option<OpenCall>,
    /// The error kind, once the span recorded an error or saw an ERROR event.
    error: Option<&'static str>,
    /// A `kind` field of the span, naming its error should it fail.
    kind: Option<&'static str>,
    site: &'static SpanSite,
    /// It reported its return.
    returned: bool,
}

thread_local! {
    /// The bridged spans entered on this thread, innermost last, each with what restores the
    /// monitor's current span when it is exited.
    static ENTERED: RefCell<Vec<(u64, EnteredSpan)>> = const { RefCell::new(Vec::new()) };
}

impl<S> Layer<S> for MonitorLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if !attrs.metadata().is_span() {
            return;
        }
        let Some(site) = self.site(attrs.metadata()) else { return };
        let Some(span) = ctx.span(id) else { return };
        // An explicit parent is the parent; a contextual one is whatever runs now, tracing
        // span or monitored call: the monitor's current span is the innermost of both.
        let parent = if attrs.is_root() {
            Span::none()
        } else if attrs.is_contextual() {
            Span::current()
        } else {
            span.parent()
                .and_then(|p| {
                    p.extensions()
                        .get::<Bridged>()
                        .and_then(|b| b.call.as_ref())
                        .map(OpenCall::span)
                })
                .unwrap_or_else(Span::current)
        };
        let call = site.site.open_call(parent);
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        fields.annotate(call.span());
        let bridged = Bridged {
            call: Some(call),
            error: fields.error,
            kind: fields.kind,
            site,
            returned: false,
        };
        span.extensions_mut().insert(bridged);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        let Some(bridged) = ext.get_mut::<Bridged>() else { return };
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(kind) = fields.kind {
            bridged.kind = Some(kind);
        }
        if fields.error.is_some() {
            bridged.error = fields.error;
        }
        if let Some(call) = &bridged.call {
            fields.annotate(call.span());
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.event_span(event) else { return };
        let mut ext = span.extensions_mut();
        let Some(bridged) = ext.get_mut::<Bridged>() else { return };
        if event.metadata().fields().field(RETURN_FIELD).is_some() {
            bridged.returned = true;
            if !bridged.site.reports_returns.load(Relaxed) {
                bridged.site.reports_returns.store(true, Relaxed);
            }
        }
        let is_error = *event.metadata().level() == Level::ERROR;
        let recorded = bridged.call.as_ref().map(OpenCall::span).filter(Span::is_recorded);
        if !is_error && recorded.is_none() {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        if is_error && bridged.error.is_none() {
            bridged.error = Some(fields.kind.or(fields.error).unwrap_or(PLAIN_ERROR));
        }
        if let Some(recorded) = recorded {
            let name = fields.message.take().unwrap_or_else(|| event.metadata().name().to_string());
            recorded.event(name);
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let ext = span.extensions();
        let Some(call) = ext.get::<Bridged>().and_then(|b| b.call.as_ref()) else { return };
        let entered = call.span().enter();
        ENTERED.with(|e| e.borrow_mut().push((id.into_u64(), entered)));
    }

    fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
        let id = id.into_u64();
        let entered = ENTERED.with(|e| {
            let mut e = e.borrow_mut();
            let at = e.iter().rposition(|(i, _)| *i == id)?;
            Some(e.remove(at))
        });
        // Dropped outside the borrow: it restores the span that was current when it entered.
        drop(entered);
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(mut bridged) = span.extensions_mut().remove::<Bridged>() else { return };
        let Some(call) = bridged.call.take() else { return };
        let outcome = match bridged.error {
            Some(kind) => Outcome::Error(bridged.kind.unwrap_or(kind)),
            // Closed by a panic unwinding through it (a sync span's guard).
            None if std::thread::panicking() => Outcome::Panic,
            None if !bridged.returned && bridged.site.reports_returns.load(Relaxed) => {
                Outcome::Cancelled
            }
            None => Outcome::Success,
        };
        call.finish(outcome);
    }
}

/// What a span's or an event's fields tell the layer.
#[derive(Default)]
struct Fields {
    /// The kind of a recorded `error` field.
    error: Option<&'static str>,
    /// A `kind` field.
    kind: Option<&'static str>,
    /// An event's message.
    message: Option<String>,
    /// Every other field, as attributes for a recorded span.
    attributes: Vec<(&'static str, AttributeValue)>,
}

impl Fields {
    /// Gives the fields to `span` as its annotations, if its trace is recorded.
    fn annotate(&mut self, span: Span) {
        if span.is_recorded() {
            for (key, value) in self.attributes.drain(..) {
                span.annotate(key, value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => self.message = Some(format!("{value:?}")),
            "error" => self.error = Some(self.error.unwrap_or(PLAIN_ERROR)),
            "kind" => self.kind = Some(intern(&format!("{value:?}"))),
            name => self.attributes.push((name, AttributeValue::from(format!("{value:?}")))),
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message = Some(value.to_string()),
            "error" => self.error = Some(PLAIN_ERROR),
            "kind" => self.kind = Some(intern(value)),
            name => self.attributes.push((name, AttributeValue::from(value.to_string()))),
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if field.name() == "error" {
            let kind =
                value.downcast_ref::<std::io::Error>().map_or(PLAIN_ERROR, ErrorKind::error_kind);
            self.error = Some(kind);
        } else {
            self.record_debug(field, &format_args!("{value}"));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.attributes.push((field.name(), AttributeValue::from(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.attributes.push((field.name(), AttributeValue::from(value)));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.attributes.push((field.name(), AttributeValue::from(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "error" {
            if value {
                self.error = Some(PLAIN_ERROR);
            }
            return;
        }
        self.attributes.push((field.name(), AttributeValue::from(value)));
    }
}

/// The one `&'static str` of a kind name: at most [`MAX_KINDS`] are kept, each at most 64
/// bytes, for the life of the process; later ones are `other`.
fn intern(kind: &str) -> &'static str {
    static KINDS: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
    let kind = kind.trim_matches('"');
    if kind.is_empty() || kind.len() > 64 {
        return "other";
    }
    let mut kinds = KINDS.lock().unwrap_or_else(PoisonError::into_inner);
    let kinds = kinds.get_or_insert_with(HashMap::new);
    if let Some(k) = kinds.get(kind) {
        return k;
    }
    if kinds.len() >= MAX_KINDS {
        return "other";
    }
    let interned: &'static str = Box::leak(kind.to_string().into_boxed_str());
    kinds.insert(kind.to_string(), interned);
    interned
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_interned_and_bounded() {
        let a = intern("timeout");
        assert!(std::ptr::eq(a, intern("\"timeout\"")));
        assert_eq!(intern(""), "other");
        assert_eq!(intern(&"x".repeat(65)), "other");
        for i in 0..MAX_KINDS + 10 {
            let _ = intern(&format!("kind{i}"));
        }
        assert_eq!(intern("one more"), "other");
        assert!(std::ptr::eq(a, intern("timeout")), "kept kinds stay");
    }
}

/// The crate README's example, run as a doctest so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
