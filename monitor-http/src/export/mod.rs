//! Span exporters: finished spans of sampled and kept failed traces, sent in batches to an
//! OpenTelemetry collector (OTLP over HTTP, protobuf or JSON) or to Zipkin (v2 JSON), from a
//! background thread, with retries and backoff. A collector that is down or slow never blocks
//! the program: the exporter's queue fills and further spans are dropped and counted.
//!
//! ```no_run
//! use monitor_http::export::ExportConfig;
//!
//! # #[cfg(feature = "otlp")] {
//! let exporter = ExportConfig::otlp("http://127.0.0.1:4318/v1/traces")
//!     .unwrap()
//!     .service_name("checkout")
//!     .start();
//! monitor_core::trace::set_sample_ratio(0.05).unwrap();
//! // ... at exit: send what is queued.
//! exporter.shutdown();
//! # }
//! ```

mod client;
#[cfg(feature = "otlp")]
mod otlp;
#[cfg(feature = "zipkin")]
mod zipkin;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use monitor_core::trace::{self, ObserverHandle, SpanObserver, SpanRecord};

pub use client::Endpoint;

/// Why an exporter could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The endpoint is not an `http://host:port/path` URL.
    #[error("endpoint `{0}` is not a URL like http://127.0.0.1:4318/v1/traces")]
    BadUrl(String),
    /// An `https://` endpoint: this exporter speaks plain HTTP.
    #[error("endpoint `{0}` uses https, which this exporter does not speak; send to a local collector (or a TLS-terminating proxy) over http://")]
    Https(String),
    /// A header name or value that cannot be sent.
    #[error("header `{0}` cannot be sent: names are tokens, values printable ASCII")]
    BadHeader(String),
}

/// The protocol spans are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP/HTTP with protobuf bodies (`application/x-protobuf`).
    #[cfg(feature = "otlp")]
    OtlpProtobuf,
    /// OTLP/HTTP with JSON bodies (`application/json`).
    #[cfg(feature = "otlp")]
    OtlpJson,
    /// Zipkin v2 JSON (`POST /api/v2/spans`).
    #[cfg(feature = "zipkin")]
    ZipkinJson,
}

impl Protocol {
    fn content_type(self) -> &'static str {
        match self {
            #[cfg(feature = "otlp")]
            Protocol::OtlpProtobuf => "application/x-protobuf",
            #[cfg(feature = "otlp")]
            Protocol::OtlpJson => "application/json",
            #[cfg(feature = "zipkin")]
            Protocol::ZipkinJson => "application/json",
        }
    }

    fn encode(self, service: &Service, spans: &[Arc<SpanRecord>], out: &mut Vec<u8>) {
        match self {
            #[cfg(feature = "otlp")]
            Protocol::OtlpProtobuf => otlp::encode_protobuf(service, spans, out),
            #[cfg(feature = "otlp")]
            Protocol::OtlpJson => otlp::encode_json(service, spans, out),
            #[cfg(feature = "zipkin")]
            Protocol::ZipkinJson => zipkin::encode(service, spans, out),
        }
    }
}

/// What the exported spans say about the process.
/// What a span allocated, as attributes (with the counting allocator installed; none without):
/// in all, and its own.
#[cfg_attr(not(any(feature = "otlp", feature = "zipkin")), allow(dead_code))]
fn allocation_attributes(s: &SpanRecord) -> Vec<(&'static str, u64)> {
    let Some(a) = &s.allocations else { return Vec::new() };
    vec![
        ("monitor.allocations", a.count),
        ("monitor.allocated_bytes", a.bytes),
        ("monitor.self_allocations", a.self_count),
        ("monitor.self_allocated_bytes", a.self_bytes),
    ]
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) name: String,
}

/// How to export: endpoint, protocol, service name, queue, retries. Made by
/// [`ExportConfig::otlp`] or [`ExportConfig::zipkin`]; [`ExportConfig::start`] starts it.
///
/// ```
/// # #[cfg(feature = "zipkin")] {
/// use std::time::Duration;
/// let config = monitor_http::export::ExportConfig::zipkin("http://127.0.0.1:9411/api/v2/spans")
///     .unwrap()
///     .service_name("checkout")
///     .queue(50_000)
///     .max_attempts(5)
///     .backoff(Duration::from_millis(100), Duration::from_secs(10));
/// # drop(config);
/// # }
/// ```
#[derive(Clone)]
pub struct ExportConfig {
    endpoint: Endpoint,
    protocol: Protocol,
    service: Service,
    headers: Vec<(String, String)>,
    queue: usize,
    max_attempts: u32,
    backoff: (Duration, Duration),
    timeout: Duration,
    shutdown_timeout: Duration,
}

impl fmt::Debug for ExportConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportConfig")
            .field("endpoint", &self.endpoint.to_string())
            .field("protocol", &self.protocol)
            .field("service", &self.service.name)
            .field("headers", &self.headers.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("queue", &self.queue)
            .field("max_attempts", &self.max_attempts)
            .finish()
    }
}

fn default_service_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "unknown_service".into())
}

impl ExportConfig {
    fn new(url: &str, protocol: Protocol) -> Result<ExportConfig, ExportError> {
        Ok(ExportConfig {
            endpoint: Endpoint::parse(url)?,
            protocol,
            service: Service { name: default_service_name() },
            headers: Vec::new(),
            queue: 10_000,
            max_attempts: 4,
            backoff: (Duration::from_millis(200), Duration::from_secs(5)),
            timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
        })
    }

    /// OTLP over HTTP with protobuf bodies to `url` (a collector's `…:4318/v1/traces`).
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// use monitor_http::export::{ExportConfig, ExportError};
    /// assert!(ExportConfig::otlp("http://localhost:4318/v1/traces").is_ok());
    /// assert!(matches!(ExportConfig::otlp("https://x/v1/traces"), Err(ExportError::Https(_))));
    /// # }
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp(url: &str) -> Result<ExportConfig, ExportError> {
        ExportConfig::new(url, Protocol::OtlpProtobuf)
    }

    /// Sends OTLP as JSON instead of protobuf.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// let c = monitor_http::export::ExportConfig::otlp("http://localhost:4318/v1/traces").unwrap().json();
    /// # drop(c);
    /// # }
    /// ```
    #[cfg(feature = "otlp")]
    pub fn json(mut self) -> ExportConfig {
        self.protocol = Protocol::OtlpJson;
        self
    }

    /// Zipkin v2 JSON to `url` (Zipkin's `…:9411/api/v2/spans`).
    ///
    /// ```
    /// # #[cfg(feature = "zipkin")] {
    /// assert!(monitor_http::export::ExportConfig::zipkin("localhost:9411").is_err());
    /// # }
    /// ```
    #[cfg(feature = "zipkin")]
    pub fn zipkin(url: &str) -> Result<ExportConfig, ExportError> {
        ExportConfig::new(url, Protocol::ZipkinJson)
    }

    /// The service name spans carry (default: the executable's name).
    pub fn service_name(mut self, name: impl Into<String>) -> ExportConfig {
        self.service.name = name.into();
        self
    }

    /// Adds a request header, e.g. an API key.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// use monitor_http::export::ExportConfig;
    /// let c = ExportConfig::otlp("http://localhost:4318/v1/traces").unwrap();
    /// assert!(c.clone().header("x-api-key", "k").is_ok());
    /// assert!(c.header("bad name", "v").is_err());
    /// # }
    /// ```
    pub fn header(mut self, name: &str, value: &str) -> Result<ExportConfig, ExportError> {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        if !token(name) || !value.bytes().all(|b| (0x20..0x7f).contains(&b) || b == b'\t') {
            return Err(ExportError::BadHeader(name.to_string()));
        }
        self.headers.push((name.to_string(), value.to_string()));
        Ok(self)
    }

    /// Spans queued while the collector is slow or down (default 10,000); beyond, dropped and
    /// counted.
    pub fn queue(mut self, spans: usize) -> ExportConfig {
        self.queue = spans.max(1);
        self
    }

    /// Attempts per batch before it is given up (default 4, at least 1).
    pub fn max_attempts(mut self, n: u32) -> ExportConfig {
        self.max_attempts = n.max(1);
        self
    }

    /// The wait before the first retry, doubled each time up to `max` (default 200 ms, 5 s).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> ExportConfig {
        self.backoff = (initial, max.max(initial));
        self
    }

    /// The most one request may take, connecting included (default 10 s).
    pub fn timeout(mut self, t: Duration) -> ExportConfig {
        self.timeout = t;
        self
    }

    /// The most [`Exporter::shutdown`] takes, all of its sending included (default 5 s): from
    /// then on nothing is retried, each request gets what time is left, and what could not be
    /// sent by the deadline is counted as unsent.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// let config = monitor_http::export::ExportConfig::otlp("http://127.0.0.1:4318/v1/traces")
    ///     .unwrap()
    ///     .shutdown_timeout(std::time::Duration::from_secs(2));
    /// # drop(config);
    /// # }
    /// ```
    pub fn shutdown_timeout(mut self, t: Duration) -> ExportConfig {
        self.shutdown_timeout = t;
        self
    }

    /// Registers the exporter as a span observer and starts its thread.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// let e = monitor_http::export::ExportConfig::otlp("http://127.0.0.1:9/v1/traces").unwrap().start();
    /// e.shutdown();
    /// # }
    /// ```
    pub fn start(self) -> Exporter {
        let stats = Arc::new(Counts::default());
        let name = format!("{:?}:{}", self.protocol, self.endpoint);
        let (queue, shutdown_timeout) = (self.queue, self.shutdown_timeout);
        let worker = Worker { config: self, stats: Arc::clone(&stats), body: Vec::new() };
        let handle = trace::add_observer(name, worker, queue);
        Exporter { handle: Some(handle), stats, shutdown_timeout }
    }
}

#[derive(Default)]
struct Counts {
    exported: AtomicU64,
    given_up: AtomicU64,
    retries: AtomicU64,
    rejected: AtomicU64,
    /// Set by [`Exporter::shutdown`]: the deadline, in ns after [`epoch`], for all sending.
    closing_at: AtomicU64,
}

/// The instant that [`Counts::closing_at`] counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Counts {
    /// The shutdown's deadline, if it has begun.
    fn closing(&self) -> Option<Instant> {
        match self.closing_at.load(Relaxed) {
            0 => None,
            ns => Some(epoch() + Duration::from_nanos(ns)),
        }
    }
}

/// A running exporter. [`Exporter::shutdown`] sends what is queued and stops it; dropping it
/// stops it without waiting.
pub struct Exporter {
    handle: Option<ObserverHandle>,
    stats: Arc<Counts>,
    shutdown_timeout: Duration,
}

/// What an exporter has done so far.
///
/// ```
/// fn healthy(s: &monitor_http::export::ExportStats) -> bool { s.given_up == 0 && s.dropped == 0 }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans the collector accepted.
    pub exported: u64,
    /// Spans given up after every attempt failed.
    pub given_up: u64,
    /// Spans the collector refused outright (a 4xx other than 408/429: fix the configuration).
    pub rejected: u64,
    /// Spans dropped because the queue was full.
    pub dropped: u64,
    /// Retried requests.
    pub retries: u64,
    /// Spans still queued, or being sent, when [`Exporter::shutdown`]'s deadline passed.
    pub unsent: u64,
}

impl Exporter {
    /// Counts so far.
    pub fn stats(&self) -> ExportStats {
        let dropped = self.handle.as_ref().and_then(ObserverHandle::stats).map_or(0, |o| o.dropped);
        ExportStats {
            exported: self.stats.exported.load(Relaxed),
            given_up: self.stats.given_up.load(Relaxed),
            rejected: self.stats.rejected.load(Relaxed),
            retries: self.stats.retries.load(Relaxed),
            dropped,
            unsent: 0,
        }
    }

    /// Stops taking spans, sends the queued ones and returns what it did, within the
    /// shutdown timeout ([`ExportConfig::shutdown_timeout`], 5 s by default) whatever the
    /// collector does: nothing is retried from now on, each request gets the time left, and
    /// what is not sent by the deadline is counted in [`ExportStats::unsent`]. It never holds
    /// the process: past the deadline the exporter's thread is left to end on its own.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// // Nothing listens on port 9: the shutdown still returns at once, nothing queued.
    /// let e = monitor_http::export::ExportConfig::otlp("http://127.0.0.1:9/v1/traces").unwrap().start();
    /// assert_eq!(e.shutdown().unsent, 0);
    /// # }
    /// ```
    pub fn shutdown(mut self) -> ExportStats {
        let mut stats = self.stats();
        let Some(handle) = self.handle.take() else { return stats };
        let deadline = Instant::now() + self.shutdown_timeout;
        let ns = deadline.saturating_duration_since(epoch()).as_nanos();
        self.stats.closing_at.store(u64::try_from(ns).unwrap_or(u64::MAX).max(1), Relaxed);
        let queued = handle.stats().map_or(0, |o| o.delivered);
        handle.shutdown_within(self.shutdown_timeout);
        let done = self.stats();
        stats = ExportStats { dropped: stats.dropped, ..done };
        let handled = done.exported + done.given_up + done.rejected;
        stats.unsent = queued.saturating_sub(handled);
        stats
    }
}

impl fmt::Debug for Exporter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.handle.as_ref().and_then(ObserverHandle::stats).map(|o| o.name);
        f.debug_struct("Exporter").field("name", &name).field("stats", &self.stats()).finish()
    }
}

struct Worker {
    config: ExportConfig,
    stats: Arc<Counts>,
    body: Vec<u8>,
}

impl SpanObserver for Worker {
    fn observe(&mut self, spans: &[Arc<SpanRecord>]) {
        let c = &self.config;
        let n = spans.len() as u64;
        let closing = self.stats.closing();
        if closing.is_some_and(|d| Instant::now() >= d) {
            // Past the shutdown's deadline: what is left is unsent, and counted so.
            return;
        }
        self.body.clear();
        c.protocol.encode(&c.service, spans, &mut self.body);
        let mut wait = c.backoff.0;
        for attempt in 1..=c.max_attempts {
            // Shutting down: one attempt, in the time left.
            let closing = self.stats.closing();
            let timeout = match closing {
                Some(d) => c.timeout.min(d.saturating_duration_since(Instant::now())),
                None => c.timeout,
            };
            if timeout.is_zero() {
                return;
            }
            match client::post(
                &c.endpoint,
                c.protocol.content_type(),
                &c.headers,
                &self.body,
                timeout,
            ) {
                Ok(status) if (200..300).contains(&status) => {
                    self.stats.exported.fetch_add(n, Relaxed);
                    return;
                }
                Ok(status) if status != 408 && status != 429 && (400..500).contains(&status) => {
                    self.stats.rejected.fetch_add(n, Relaxed);
                    return;
                }
                // 5xx, 408, 429 or no answer: the collector may come back, unless shutting down.
                _ if attempt < c.max_attempts && closing.is_none() => {
                    self.stats.retries.fetch_add(1, Relaxed);
                    self.pause(wait);
                    wait = (wait * 2).min(c.backoff.1);
                }
                _ => break,
            }
        }
        self.stats.given_up.fetch_add(n, Relaxed);
    }
}

impl Worker {
    /// Waits `wait` before a retry, cut short when a shutdown begins.
    fn pause(&self, wait: Duration) {
        let until = Instant::now() + wait;
        while self.stats.closing().is_none() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}
