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
mod env;
#[cfg(feature = "grpc")]
mod grpc;
#[cfg(all(feature = "otlp", feature = "log"))]
mod logs;
#[cfg(feature = "otlp")]
mod metrics;
#[cfg(feature = "otlp")]
mod otlp;
mod partial;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "zipkin")]
mod zipkin;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use monitor_core::trace::{self, AttributeValue, ObserverHandle, SpanObserver, SpanRecord};

pub use client::Endpoint;
#[cfg(feature = "otlp")]
pub use env::{from_env, from_vars, EnvError, Exporters};
#[cfg(all(feature = "otlp", feature = "log"))]
pub use logs::OtlpLogger;

/// Why an exporter could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The endpoint is not an `http://host:port/path` URL.
    #[error("endpoint `{0}` is not a URL like http://127.0.0.1:4318/v1/traces")]
    BadUrl(String),
    /// An `https://` endpoint without the feature `tls`.
    #[error("endpoint `{0}` uses https, which needs monitor-http's feature `tls`; enable it, or send to a local collector over http://")]
    Https(String),
    /// A PEM text of certificates to trust that cannot be used.
    #[error(
        "the certificates to trust cannot be used: {0}; give PEM text with CERTIFICATE blocks"
    )]
    BadCertificate(String),
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
    /// OTLP/gRPC: unary `Export` calls over HTTP/2 (feature `grpc`).
    #[cfg(feature = "grpc")]
    OtlpGrpc,
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
            #[cfg(feature = "grpc")]
            Protocol::OtlpGrpc => "application/grpc",
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
            #[cfg(feature = "grpc")]
            Protocol::OtlpGrpc => otlp::encode_protobuf(service, spans, out),
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

/// What a span is to OpenTelemetry and Zipkin: the server side of a request (a
/// `ServerLayer` call, or any call with a remote parent), its client side (`ClientLayer`,
/// `ReqwestMiddleware`), or internal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(any(feature = "otlp", feature = "zipkin")), allow(dead_code))]
pub(crate) enum SpanKind {
    Internal,
    Server,
    Client,
}

#[cfg_attr(not(any(feature = "otlp", feature = "zipkin")), allow(dead_code))]
pub(crate) fn span_kind(s: &SpanRecord) -> SpanKind {
    match s.category {
        Some(crate::layer::HTTP_CLIENT) => SpanKind::Client,
        Some(crate::layer::HTTP_SERVER) => SpanKind::Server,
        _ if s.remote_parent => SpanKind::Server,
        _ => SpanKind::Internal,
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub(crate) name: String,
    /// Resource attributes the user added.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) attributes: Vec<(String, AttributeValue)>,
}

/// This process's `service.instance.id`: random, the same for every exporter of the process.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
fn instance_id() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let word = |salt: u64| {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(salt);
            h.write_u32(std::process::id());
            h.write_u128(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos()),
            );
            h.finish()
        };
        format!("{:016x}{:016x}", word(1), word(2))
    })
    .clone()
}

/// The machine's name, for `host.name`.
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_string())
}

/// What an exporter sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signal {
    /// Finished spans, as they come.
    Traces,
    /// A snapshot's metrics, at this interval.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    Metrics(Duration),
    /// `log` records, through the exporter's logger.
    #[cfg(all(feature = "otlp", feature = "log"))]
    Logs,
}

/// How to export: endpoint, protocol, service name, queue, retries. Made by `otlp`,
/// `otlp_metrics` (feature `otlp`), `otlp_logs` (features `otlp` and `log`) or `zipkin`
/// (feature `zipkin`); [`ExportConfig::start`] starts it.
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
    signal: Signal,
    service: Service,
    headers: Vec<(String, String)>,
    gzip: bool,
    /// Metrics as their change since the last export, not since the start.
    delta: bool,
    /// Certificates trusted besides the Mozilla roots (feature `tls`).
    #[cfg(feature = "tls")]
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
    queue: usize,
    /// Spans per request, and the longest a span waits for its batch to fill.
    batch: (usize, Duration),
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
            .field("signal", &self.signal)
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
    /// The signal's name: `traces`, `metrics` or `logs`.
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    fn signal_name(&self) -> &'static str {
        match self.signal {
            Signal::Traces => "traces",
            Signal::Metrics(_) => "metrics",
            #[cfg(all(feature = "otlp", feature = "log"))]
            Signal::Logs => "logs",
        }
    }

    fn new(url: &str, protocol: Protocol) -> Result<ExportConfig, ExportError> {
        Ok(ExportConfig {
            endpoint: Endpoint::parse(url)?,
            protocol,
            signal: Signal::Traces,
            service: Service { name: default_service_name(), attributes: Vec::new() },
            headers: Vec::new(),
            gzip: false,
            delta: false,
            #[cfg(feature = "tls")]
            roots: Vec::new(),
            queue: 10_000,
            batch: (512, Duration::from_secs(5)),
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
    /// assert!(matches!(ExportConfig::otlp("ftp://x/v1/traces"), Err(ExportError::BadUrl(_))));
    /// # }
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp(url: &str) -> Result<ExportConfig, ExportError> {
        ExportConfig::new(url, Protocol::OtlpProtobuf)
    }

    /// OTLP metrics over HTTP with protobuf bodies to `url` (a collector's `…:4318/v1/metrics`):
    /// every function's statistics and every instrument, from a snapshot taken every interval
    /// ([`ExportConfig::interval`], 60 s by default), cumulative since the process started, on
    /// a thread of the exporter's own. [`Exporter::shutdown`] sends a last snapshot.
    ///
    /// Functions go out in the instrumentation scope `monitor`, with `code.function` and
    /// `code.namespace` attributes: `monitor.function.calls` (a monotonic Sum by `outcome`,
    /// errors by `error.type`), `monitor.function.in_flight` (a non-monotonic Sum),
    /// `monitor.function.highwater` (a Gauge), `monitor.function.duration` (an
    /// ExponentialHistogram in seconds by `outcome`, at scale 6: within 0.55% of every value),
    /// and allocations and polls where they are counted. Instruments go out in a scope named
    /// as theirs, tags as attributes: counters as non-monotonic Sums, meters and events as
    /// monotonic Sums, number distributions as Summaries, durations and timers as
    /// ExponentialHistograms, boolean tallies as a Sum by `value`, gauges as Gauges.
    ///
    /// ```no_run
    /// # #[cfg(feature = "otlp")] {
    /// use std::time::Duration;
    /// let metrics = monitor_http::export::ExportConfig::otlp_metrics("http://127.0.0.1:4318/v1/metrics")
    ///     .unwrap()
    ///     .service_name("checkout")
    ///     .interval(Duration::from_secs(15))
    ///     .start();
    /// // ... at exit: one last snapshot.
    /// metrics.shutdown();
    /// # }
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otlp_metrics(url: &str) -> Result<ExportConfig, ExportError> {
        let mut config = ExportConfig::new(url, Protocol::OtlpProtobuf)?;
        config.signal = Signal::Metrics(Duration::from_secs(60));
        Ok(config)
    }

    /// OTLP logs over HTTP with protobuf bodies to `url` (a collector's `…:4318/v1/logs`):
    /// the records of `log`'s macros, through the exporter's [`Exporter::logger`] once it is
    /// installed, each with its severity, its message as the body, its key-values (and file
    /// and line) as attributes, its target as the instrumentation scope, and the trace and
    /// span ids of the monitored call it was logged in. Batches of up to 512 records, sent
    /// within a second of their first; a record that finds the queue
    /// ([`ExportConfig::queue`]) full is dropped and counted in [`ExportStats::dropped`]: the
    /// logging thread never waits (features `otlp` and `log`).
    ///
    /// ```no_run
    /// # #[cfg(all(feature = "otlp", feature = "log"))] {
    /// let logs = monitor_http::export::ExportConfig::otlp_logs("http://127.0.0.1:4318/v1/logs")
    ///     .unwrap()
    ///     .service_name("checkout")
    ///     .start();
    /// logs.logger().unwrap().install().unwrap();
    /// log::info!("started");
    /// logs.shutdown();
    /// # }
    /// ```
    #[cfg(all(feature = "otlp", feature = "log"))]
    pub fn otlp_logs(url: &str) -> Result<ExportConfig, ExportError> {
        let mut config = ExportConfig::new(url, Protocol::OtlpProtobuf)?;
        config.signal = Signal::Logs;
        Ok(config)
    }

    /// How often a metrics exporter sends a snapshot (default 60 s, at least 100 ms). Spans
    /// go out as they come; for a span exporter this does nothing.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// let c = monitor_http::export::ExportConfig::otlp_metrics("http://localhost:4318/v1/metrics")
    ///     .unwrap()
    ///     .interval(std::time::Duration::from_secs(10));
    /// # drop(c);
    /// # }
    /// ```
    pub fn interval(mut self, every: Duration) -> ExportConfig {
        if let Signal::Metrics(_) = self.signal {
            self.signal = Signal::Metrics(every.max(Duration::from_millis(100)));
        }
        self
    }

    /// Sends a metrics exporter's counts as their change since its last export (delta
    /// temporality, as backends such as Datadog's and Dynatrace's want) instead of their
    /// totals since the process started: monotonic sums and histograms become deltas, while
    /// in-flight counts, counters that go down, gauges and summaries stay as they are (what
    /// OpenTelemetry's `delta` preference does). `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`
    /// sets it from the environment.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// let c = monitor_http::export::ExportConfig::otlp_metrics("http://localhost:4318/v1/metrics")
    ///     .unwrap()
    ///     .delta();
    /// # drop(c);
    /// # }
    /// ```
    pub fn delta(mut self) -> ExportConfig {
        self.delta = true;
        self
    }

    /// Adds a resource attribute (OTLP), e.g. `deployment.environment.name`; it replaces one
    /// the monitor sets (`service.instance.id`, `host.name`…) of the same key.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// let c = monitor_http::export::ExportConfig::otlp("http://localhost:4318/v1/traces")
    ///     .unwrap()
    ///     .resource_attribute("deployment.environment.name", "staging");
    /// # drop(c);
    /// # }
    /// ```
    pub fn resource_attribute(
        mut self,
        key: &str,
        value: impl Into<AttributeValue>,
    ) -> ExportConfig {
        self.service.attributes.retain(|(k, _)| k != key);
        self.service.attributes.push((key.to_string(), value.into()));
        self
    }

    /// Sends OTLP over gRPC (HTTP/2, plain TCP) instead of HTTP/1.1: give the collector's
    /// gRPC address, e.g. `http://127.0.0.1:4317`, as the URL; the path is the signal's
    /// service (feature `grpc`).
    ///
    /// ```
    /// # #[cfg(feature = "grpc")] {
    /// let c = monitor_http::export::ExportConfig::otlp("http://localhost:4317").unwrap().grpc();
    /// # drop(c);
    /// # }
    /// ```
    #[cfg(feature = "grpc")]
    pub fn grpc(mut self) -> ExportConfig {
        self.protocol = Protocol::OtlpGrpc;
        self
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

    /// Compresses request bodies with gzip (`Content-Encoding: gzip`), as collectors accept:
    /// about a fifth of the bytes on the wire for a little CPU on the exporter's thread.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// let c = monitor_http::export::ExportConfig::otlp("http://localhost:4318/v1/traces").unwrap().gzip();
    /// # drop(c);
    /// # }
    /// ```
    #[cfg(any(feature = "otlp", feature = "zipkin"))]
    pub fn gzip(mut self) -> ExportConfig {
        self.gzip = true;
        self
    }

    /// Trusts the certificates of `pem` (one or more `CERTIFICATE` blocks) for `https://`
    /// endpoints, besides the Mozilla roots: a private CA, or a collector's self-signed
    /// certificate (feature `tls`).
    ///
    /// # Errors
    ///
    /// [`ExportError::BadCertificate`] when `pem` holds no certificate, or one that cannot be
    /// trusted.
    ///
    /// ```
    /// # #[cfg(feature = "tls")] {
    /// use monitor_http::export::{ExportConfig, ExportError};
    /// let c = ExportConfig::otlp("https://collector.internal:4318/v1/traces").unwrap();
    /// assert!(matches!(c.tls_root_certificates(b"not pem"), Err(ExportError::BadCertificate(_))));
    /// # }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_root_certificates(mut self, pem: &[u8]) -> Result<ExportConfig, ExportError> {
        self.roots.extend(tls::parse_pem(pem)?);
        Ok(self)
    }

    /// Spans queued while the collector is slow or down (default 10,000); beyond, dropped and
    /// counted.
    pub fn queue(mut self, spans: usize) -> ExportConfig {
        self.queue = spans.max(1);
        self
    }

    /// Spans per request (default 512, at least 1), and how long after a batch's first span
    /// it waits for more before it goes (default 5 s): the OpenTelemetry SDK's batch
    /// processor's defaults, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` and `OTEL_BSP_SCHEDULE_DELAY`.
    /// A shutdown sends at once what waits.
    ///
    /// ```
    /// # #[cfg(feature = "otlp")] {
    /// use std::time::Duration;
    /// let c = monitor_http::export::ExportConfig::otlp("http://localhost:4318/v1/traces")
    ///     .unwrap()
    ///     .batch(1024, Duration::from_secs(1));
    /// # drop(c);
    /// # }
    /// ```
    pub fn batch(mut self, spans: usize, linger: Duration) -> ExportConfig {
        self.batch = (spans.max(1), linger);
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
        let (queue, shutdown_timeout, (batch, linger)) =
            (self.queue, self.shutdown_timeout, self.batch);
        let running = match self.signal {
            Signal::Traces => {
                let conn = Link::for_config(&self);
                let worker =
                    Worker { config: self, stats: Arc::clone(&stats), body: Vec::new(), conn };
                Running::Spans(trace::add_batching_observer(name, worker, queue, batch, linger))
            }
            Signal::Metrics(every) => Running::Metrics(MetricsThread::start(self, every, &stats)),
            #[cfg(all(feature = "otlp", feature = "log"))]
            Signal::Logs => Running::Logs(LogsThread::start(self, &stats)),
        };
        Exporter { running: Some(running), stats, shutdown_timeout }
    }
}

#[derive(Default)]
struct Counts {
    exported: AtomicU64,
    given_up: AtomicU64,
    retries: AtomicU64,
    rejected: AtomicU64,
    /// Metrics data points of a last snapshot the shutdown's deadline did not leave time for.
    late: AtomicU64,
    /// Metrics data points being sent now.
    sending: AtomicU64,
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
    running: Option<Running>,
    stats: Arc<Counts>,
    shutdown_timeout: Duration,
}

/// What an exporter runs: a span observer, or the thread that sends snapshots.
enum Running {
    Spans(ObserverHandle),
    Metrics(MetricsThread),
    #[cfg(all(feature = "otlp", feature = "log"))]
    Logs(LogsThread),
}

/// The thread of a logs exporter, and the logger that feeds it.
#[cfg(all(feature = "otlp", feature = "log"))]
struct LogsThread {
    logger: logs::OtlpLogger,
    counts: logs::LogCounts,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[cfg(all(feature = "otlp", feature = "log"))]
impl LogsThread {
    fn start(config: ExportConfig, stats: &Arc<Counts>) -> LogsThread {
        let queue = logs::queue(config.queue);
        let (logger, counts) = (queue.logger.clone(), queue.counts());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (stop2, stats) = (Arc::clone(&stop), Arc::clone(stats));
        let thread = std::thread::Builder::new()
            .name("monitor-logs-export".into())
            .spawn(move || queue.run(&config, &stats, &|| stop2.load(Relaxed)))
            .ok();
        LogsThread { logger, counts, stop, thread }
    }

    /// Sends what is queued and waits for it until `deadline`, no longer; the records not
    /// sent by then.
    fn stop(mut self, deadline: Instant, stats: &Counts) -> u64 {
        self.stop.store(true, Relaxed);
        let Some(thread) = self.thread.take() else { return 0 };
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        if thread.is_finished() {
            let _ = thread.join();
            return 0;
        }
        self.counts.1.load(Relaxed) + stats.sending.load(Relaxed)
    }
}

#[cfg(all(feature = "otlp", feature = "log"))]
impl Drop for LogsThread {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// What an exporter has done so far.
///
/// ```
/// fn healthy(s: &monitor_http::export::ExportStats) -> bool { s.given_up == 0 && s.dropped == 0 }
/// ```
/// A metrics exporter counts data points, and a logs exporter log records, where a span
/// exporter counts spans.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans (data points) the collector accepted.
    pub exported: u64,
    /// Spans (data points) given up after every attempt failed.
    pub given_up: u64,
    /// Spans (data points) the collector refused outright (a 4xx other than 408/429: fix the
    /// configuration).
    pub rejected: u64,
    /// Spans (log records) dropped because the queue was full. A metrics exporter drops
    /// none: it sends a snapshot, and the next one holds all the last did.
    pub dropped: u64,
    /// Retried requests.
    pub retries: u64,
    /// Spans (data points) still queued, or being sent, when [`Exporter::shutdown`]'s deadline
    /// passed.
    pub unsent: u64,
}

impl Exporter {
    /// The logger of a logs exporter ([`ExportConfig::otlp_logs`]); `None` for others.
    ///
    /// ```
    /// # #[cfg(all(feature = "otlp", feature = "log"))] {
    /// let e = monitor_http::export::ExportConfig::otlp_logs("http://127.0.0.1:9/v1/logs").unwrap().start();
    /// assert!(e.logger().is_some());
    /// # }
    /// ```
    #[cfg(all(feature = "otlp", feature = "log"))]
    pub fn logger(&self) -> Option<OtlpLogger> {
        match &self.running {
            Some(Running::Logs(l)) => Some(l.logger.clone()),
            _ => None,
        }
    }

    /// Counts so far.
    pub fn stats(&self) -> ExportStats {
        let dropped = match &self.running {
            Some(Running::Spans(h)) => h.stats().map_or(0, |o| o.dropped),
            #[cfg(all(feature = "otlp", feature = "log"))]
            Some(Running::Logs(l)) => l.counts.0.load(Relaxed),
            _ => 0,
        };
        ExportStats {
            exported: self.stats.exported.load(Relaxed),
            given_up: self.stats.given_up.load(Relaxed),
            rejected: self.stats.rejected.load(Relaxed),
            retries: self.stats.retries.load(Relaxed),
            dropped,
            unsent: self.stats.late.load(Relaxed),
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
        let Some(running) = self.running.take() else { return stats };
        let deadline = Instant::now() + self.shutdown_timeout;
        let ns = deadline.saturating_duration_since(epoch()).as_nanos();
        self.stats.closing_at.store(u64::try_from(ns).unwrap_or(u64::MAX).max(1), Relaxed);
        let handle = match running {
            Running::Spans(handle) => handle,
            #[cfg(all(feature = "otlp", feature = "log"))]
            Running::Logs(thread) => {
                let dropped = thread.counts.0.load(Relaxed);
                let unsent = thread.stop(deadline, &self.stats);
                let mut stats = self.stats();
                stats.dropped = dropped;
                stats.unsent += unsent;
                return stats;
            }
            Running::Metrics(thread) => {
                let finished = thread.stop(deadline);
                let mut stats = self.stats();
                if !finished {
                    // Still sending at the deadline: that snapshot did not go out in time.
                    stats.unsent += self.stats.sending.load(Relaxed);
                }
                return stats;
            }
        };
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
        let name = match &self.running {
            Some(Running::Spans(h)) => h.stats().map(|o| o.name),
            Some(Running::Metrics(_)) => Some("metrics".to_string()),
            #[cfg(all(feature = "otlp", feature = "log"))]
            Some(Running::Logs(_)) => Some("logs".to_string()),
            None => None,
        };
        f.debug_struct("Exporter").field("name", &name).field("stats", &self.stats()).finish()
    }
}

struct Worker {
    config: ExportConfig,
    stats: Arc<Counts>,
    body: Vec<u8>,
    conn: Link,
}

impl SpanObserver for Worker {
    fn observe(&mut self, spans: &[Arc<SpanRecord>]) {
        let c = &self.config;
        let closing = self.stats.closing();
        if closing.is_some_and(|d| Instant::now() >= d) {
            // Past the shutdown's deadline: what is left is unsent, and counted so.
            return;
        }
        self.body.clear();
        c.protocol.encode(&c.service, spans, &mut self.body);
        send(c, &mut self.conn, &self.stats, &self.body, spans.len() as u64);
    }
}

/// How an exporter reaches its collector: one kept HTTP/1.1 connection, or one HTTP/2
/// connection for gRPC.
#[derive(Debug)]
enum Link {
    Http(client::Connection),
    #[cfg(feature = "grpc")]
    Grpc(grpc::GrpcConnection),
}

impl Link {
    fn for_config(c: &ExportConfig) -> Link {
        match c.protocol {
            #[cfg(feature = "grpc")]
            Protocol::OtlpGrpc => {
                #[cfg(feature = "tls")]
                let tls = tls::client_config(&c.roots, &[b"h2"]);
                Link::Grpc(grpc::GrpcConnection::new(
                    #[cfg(feature = "tls")]
                    tls,
                ))
            }
            #[allow(unreachable_patterns)]
            _ => Link::Http(client::Connection::new(
                #[cfg(feature = "tls")]
                tls::client_config(&c.roots, &[b"http/1.1"]),
            )),
        }
    }
}

/// What became of a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Accepted,
    Rejected,
    GivenUp,
    /// The shutdown's deadline passed before it could be sent.
    Late,
}

/// Sends `body` (holding `n` spans or data points) with `c`'s retries and timeouts, and counts
/// the outcome in `stats`.
fn send(c: &ExportConfig, conn: &mut Link, stats: &Counts, body: &[u8], n: u64) -> Sent {
    let compressed;
    let (body, encoding) = if c.gzip {
        compressed = gzip(body);
        (compressed.as_slice(), Some("gzip"))
    } else {
        (body, None)
    };
    let mut wait = c.backoff.0;
    for attempt in 1..=c.max_attempts {
        // Shutting down: one attempt, in the time left.
        let closing = stats.closing();
        let timeout = match closing {
            Some(d) => c.timeout.min(d.saturating_duration_since(Instant::now())),
            None => c.timeout,
        };
        if timeout.is_zero() {
            return Sent::Late;
        }
        let answer = match conn {
            Link::Http(conn) => {
                let content = (c.protocol.content_type(), encoding);
                conn.post(&c.endpoint, content, &c.headers, body, timeout)
            }
            #[cfg(feature = "grpc")]
            Link::Grpc(g) => {
                let method = grpc::method(c.signal_name());
                g.post(&c.endpoint, method, encoding.is_some(), &c.headers, body, timeout)
            }
        };
        let retry_after = answer.as_ref().ok().and_then(|a| a.retry_after);
        match answer.map(|a| (a.status, a.body)) {
            Ok((status, answer)) if (200..300).contains(&status) => {
                // A partial success names what the collector refused of the batch.
                let refused = partial::refused(c.protocol, &answer).min(n);
                stats.exported.fetch_add(n - refused, Relaxed);
                stats.rejected.fetch_add(refused, Relaxed);
                return Sent::Accepted;
            }
            Ok((status, _)) if status != 408 && status != 429 && (400..500).contains(&status) => {
                stats.rejected.fetch_add(n, Relaxed);
                return Sent::Rejected;
            }
            // 5xx, 408, 429 or no answer: the collector may come back, unless shutting down.
            // It may say when (`Retry-After`); at most a minute is waited.
            _ if attempt < c.max_attempts && closing.is_none() => {
                stats.retries.fetch_add(1, Relaxed);
                let asked = retry_after.map_or(Duration::ZERO, |d| d.min(Duration::from_secs(60)));
                pause(stats, wait.max(asked));
                wait = (wait * 2).min(c.backoff.1);
            }
            _ => break,
        }
    }
    stats.given_up.fetch_add(n, Relaxed);
    Sent::GivenUp
}

/// `body` compressed with gzip.
#[cfg(any(feature = "otlp", feature = "zipkin"))]
fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
}

#[cfg(not(any(feature = "otlp", feature = "zipkin")))]
fn gzip(body: &[u8]) -> Vec<u8> {
    body.to_vec()
}

/// Waits `wait` before a retry, cut short when a shutdown begins.
fn pause(stats: &Counts, wait: Duration) {
    let until = Instant::now() + wait;
    while stats.closing().is_none() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The thread of a metrics exporter: a snapshot every interval, and a last one at shutdown.
/// Dropped without [`MetricsThread::stop`], it ends without sending.
struct MetricsThread {
    stop: Arc<(Mutex<Stop>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the metrics thread is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    /// Send a last snapshot, then end.
    AfterLast,
    /// End now.
    Now,
}

impl MetricsThread {
    fn start(config: ExportConfig, every: Duration, stats: &Arc<Counts>) -> MetricsThread {
        let stop = Arc::new((Mutex::new(Stop::Running), Condvar::new()));
        let (stop2, stats) = (Arc::clone(&stop), Arc::clone(stats));
        let thread = std::thread::Builder::new()
            .name("monitor-metrics-export".into())
            .spawn(move || metrics_loop(&config, every, &stats, &stop2))
            .ok();
        MetricsThread { stop, thread }
    }

    fn ask(&self, what: Stop) {
        let (lock, wake) = &*self.stop;
        let mut state = lock.lock().unwrap_or_else(PoisonError::into_inner);
        if *state != Stop::Now {
            *state = what;
        }
        wake.notify_all();
    }

    /// Asks for the last snapshot and waits for it until `deadline`, no longer; whether the
    /// thread is done.
    fn stop(mut self, deadline: Instant) -> bool {
        self.ask(Stop::AfterLast);
        let Some(thread) = self.thread.take() else { return true };
        while !thread.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let finished = thread.is_finished();
        if finished {
            let _ = thread.join();
        }
        finished
    }
}

impl Drop for MetricsThread {
    fn drop(&mut self) {
        self.ask(Stop::Now);
    }
}

#[cfg_attr(not(feature = "otlp"), allow(unused_variables, unused_mut))]
fn metrics_loop(
    config: &ExportConfig,
    every: Duration,
    stats: &Counts,
    stop: &(Mutex<Stop>, Condvar),
) {
    let start = monitor_core::process::started_at();
    let mut body: Vec<u8> = Vec::new();
    let mut conn = Link::for_config(config);
    #[cfg(feature = "otlp")]
    let mut previous = metrics::Previous::default();
    loop {
        let asked = {
            let (lock, wake) = stop;
            let guard = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let (guard, _) = wake
                .wait_timeout_while(guard, every, |s| *s == Stop::Running)
                .unwrap_or_else(PoisonError::into_inner);
            *guard
        };
        if asked == Stop::Now {
            return;
        }
        #[cfg(feature = "otlp")]
        {
            let mut batch = metrics::batch(&monitor_core::registry().snapshot(), start);
            if config.delta {
                batch = batch.into_delta(&mut previous);
            }
            body.clear();
            match config.protocol {
                Protocol::OtlpJson => metrics::encode_json(&config.service, &batch, &mut body),
                _ => metrics::encode_protobuf(&config.service, &batch, &mut body),
            }
            let points = batch.points();
            stats.sending.store(points, Relaxed);
            if send(config, &mut conn, stats, &body, points) == Sent::Late {
                stats.late.fetch_add(points, Relaxed);
            }
            stats.sending.store(0, Relaxed);
        }
        if asked == Stop::AfterLast {
            return;
        }
    }
}
