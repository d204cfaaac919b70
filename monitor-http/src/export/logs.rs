//! OTLP logs (features `otlp` and `log`): `log` records as OTLP LogRecords, each with the trace
//! and span ids of the monitored call it was logged in, sent in batches from a thread of the
//! exporter's own. The logger never waits: a record that finds the queue full is dropped and
//! counted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use monitor_core::trace::AttributeValue;

use super::otlp::{fixed64_field, json_key_values, key_values, len_field, message, Attrs};
use super::{send, Counts, ExportConfig, Protocol, Service};
use crate::render::writer::Json;

/// The most records in one request, as the OpenTelemetry SDK's batch processor sends.
const BATCH: usize = 512;
/// The longest a record waits for its batch to fill.
const BATCH_WAIT: Duration = Duration::from_secs(1);

/// One record, as the logger took it.
pub(crate) struct Record {
    unix_ns: u64,
    level: log::Level,
    target: String,
    body: String,
    attributes: Vec<(String, AttributeValue)>,
    ids: Option<(u128, u64)>,
}

/// A `log` logger that sends every record it lets through to an OTLP collector, made by an
/// exporter of [`ExportConfig::otlp_logs`]; optionally it hands every record on to another
/// logger too (the one the program already prints with). Install it as the program's logger
/// with [`OtlpLogger::install`].
///
/// ```no_run
/// # #[cfg(all(feature = "otlp", feature = "log"))] {
/// use monitor_http::export::ExportConfig;
///
/// let logs = ExportConfig::otlp_logs("http://127.0.0.1:4318/v1/logs").unwrap().start();
/// logs.logger().unwrap().level(log::LevelFilter::Info).install().unwrap();
/// log::warn!(order = 7; "payment declined");
/// logs.shutdown();
/// # }
/// ```
#[derive(Clone)]
pub struct OtlpLogger {
    queue: SyncSender<Record>,
    dropped: Arc<AtomicU64>,
    /// Records queued and not yet taken by the exporter.
    pending: Arc<AtomicU64>,
    level: log::LevelFilter,
    next: Option<Arc<dyn log::Log>>,
}

impl fmt::Debug for OtlpLogger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpLogger")
            .field("level", &self.level)
            .field("dropped", &self.dropped.load(Relaxed))
            .field("forwards", &self.next.is_some())
            .finish()
    }
}

impl OtlpLogger {
    /// Sends records of `level` and more severe (default: `Info`).
    ///
    /// ```
    /// # #[cfg(all(feature = "otlp", feature = "log"))] {
    /// let e = monitor_http::export::ExportConfig::otlp_logs("http://127.0.0.1:9/v1/logs").unwrap().start();
    /// let logger = e.logger().unwrap().level(log::LevelFilter::Warn);
    /// # drop(logger);
    /// # }
    /// ```
    #[must_use]
    pub fn level(mut self, level: log::LevelFilter) -> OtlpLogger {
        self.level = level;
        self
    }

    /// Hands every record on to `next` as well (it filters by its own level).
    #[must_use]
    pub fn forward_to(mut self, next: impl log::Log + 'static) -> OtlpLogger {
        self.next = Some(Arc::new(next));
        self
    }

    /// Makes this the program's logger, and lets records of its level (or of the next
    /// logger's, if that is more) through `log`'s macros.
    ///
    /// # Errors
    ///
    /// [`log::SetLoggerError`] when the program has a logger already: make this one forward to
    /// it instead ([`OtlpLogger::forward_to`]).
    pub fn install(self) -> Result<(), log::SetLoggerError> {
        let max = self.level.max(log::max_level());
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(max);
        Ok(())
    }
}

impl log::Log for OtlpLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.level || self.next.as_ref().is_some_and(|n| n.enabled(metadata))
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.level() <= self.level {
            let taken = take(record);
            self.pending.fetch_add(1, Relaxed);
            match self.queue.try_send(taken) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.pending.fetch_sub(1, Relaxed);
                    self.dropped.fetch_add(1, Relaxed);
                }
            }
        }
        if let Some(next) = &self.next {
            next.log(record);
        }
    }

    fn flush(&self) {
        if let Some(next) = &self.next {
            next.flush();
        }
    }
}

/// What a record says, taken on the logging thread (its ids are that thread's current span's).
fn take(record: &log::Record<'_>) -> Record {
    struct Visit<'a>(&'a mut Vec<(String, AttributeValue)>);
    impl<'kvs> log::kv::VisitSource<'kvs> for Visit<'_> {
        fn visit_pair(
            &mut self,
            key: log::kv::Key<'kvs>,
            value: log::kv::Value<'kvs>,
        ) -> Result<(), log::kv::Error> {
            let v = if let Some(b) = value.to_bool() {
                AttributeValue::Bool(b)
            } else if let Some(i) = value.to_i64() {
                AttributeValue::I64(i)
            } else if let Some(f) = value.to_f64() {
                AttributeValue::F64(f)
            } else {
                AttributeValue::Str(value.to_string().into())
            };
            self.0.push((key.as_str().to_string(), v));
            Ok(())
        }
    }
    let mut attributes = Vec::new();
    let _ = record.key_values().visit(&mut Visit(&mut attributes));
    if let Some(file) = record.file() {
        attributes.push(("code.file.path".into(), AttributeValue::Str(file.to_string().into())));
    }
    if let Some(line) = record.line() {
        attributes.push(("code.line.number".into(), AttributeValue::I64(i64::from(line))));
    }
    let span = monitor_core::Span::current();
    let ids = span.trace_id().zip(span.span_id()).map(|(t, s)| (t.to_u128(), s.to_u64()));
    Record {
        unix_ns: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        level: record.level(),
        target: record.target().to_string(),
        body: record.args().to_string(),
        attributes,
        ids,
    }
}

/// What a logs exporter's thread needs: the queue's other end and the drop count.
pub(crate) struct LogsQueue {
    pub(crate) logger: OtlpLogger,
    receiver: Receiver<Record>,
}

pub(crate) fn queue(size: usize) -> LogsQueue {
    let (queue, receiver) = std::sync::mpsc::sync_channel(size);
    let logger = OtlpLogger {
        queue,
        dropped: Arc::default(),
        pending: Arc::default(),
        level: log::LevelFilter::Info,
        next: None,
    };
    LogsQueue { logger, receiver }
}

/// The counts a logs exporter reads: records dropped, and records queued.
pub(crate) type LogCounts = (Arc<AtomicU64>, Arc<AtomicU64>);

impl LogsQueue {
    pub(crate) fn counts(&self) -> LogCounts {
        (Arc::clone(&self.logger.dropped), Arc::clone(&self.logger.pending))
    }

    /// Runs the exporter's thread over this queue.
    pub(crate) fn run(self, config: &ExportConfig, stats: &Counts, stop: &dyn Fn() -> bool) {
        let pending = Arc::clone(&self.logger.pending);
        drop(self.logger);
        let taken = TakenCounter { receiver: self.receiver, pending };
        run(config, stats, &taken, stop);
    }
}

/// The queue's receiving end, counting down what it takes.
pub(crate) struct TakenCounter {
    receiver: Receiver<Record>,
    pending: Arc<AtomicU64>,
}

impl TakenCounter {
    fn recv_timeout(&self, wait: Duration) -> Result<Record, RecvTimeoutError> {
        let r = self.receiver.recv_timeout(wait)?;
        self.pending.fetch_sub(1, Relaxed);
        Ok(r)
    }

    fn try_recv(&self) -> Result<Record, std::sync::mpsc::TryRecvError> {
        let r = self.receiver.try_recv()?;
        self.pending.fetch_sub(1, Relaxed);
        Ok(r)
    }
}

/// The exporter's thread: batches of at most [`BATCH`] records, each sent within
/// [`BATCH_WAIT`] of its first record, until `stop` says so; then what is queued, in batches
/// at once, within the shutdown's deadline.
pub(crate) fn run(
    config: &ExportConfig,
    stats: &Counts,
    receiver: &TakenCounter,
    stop: &dyn Fn() -> bool,
) {
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    let mut body = Vec::new();
    let mut conn = super::Link::for_config(config);
    loop {
        // A first record, the stop flag looked at every 50 ms.
        let first = loop {
            match receiver.recv_timeout(Duration::from_millis(50)) {
                Ok(r) => break Some(r),
                Err(RecvTimeoutError::Timeout) if stop() => break receiver.try_recv().ok(),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break None,
            }
        };
        let Some(first) = first else { return };
        // Counted as being sent from when it is taken: a shutdown's count of what it could
        // not send includes the batch still filling.
        stats.sending.fetch_add(1, Relaxed);
        batch.push(first);
        let until = Instant::now() + BATCH_WAIT;
        let stopping = stop();
        while batch.len() < BATCH {
            let next = if stopping {
                receiver.try_recv().ok()
            } else {
                receiver.recv_timeout(until.saturating_duration_since(Instant::now())).ok()
            };
            match next {
                Some(r) => {
                    stats.sending.fetch_add(1, Relaxed);
                    batch.push(r);
                }
                None => break,
            }
        }
        body.clear();
        match config.protocol {
            Protocol::OtlpJson => encode_json(&config.service, &batch, &mut body),
            _ => encode_protobuf(&config.service, &batch, &mut body),
        }
        let n = batch.len() as u64;
        if send(config, &mut conn, stats, &body, n) == super::Sent::Late {
            stats.late.fetch_add(n, Relaxed);
        }
        stats.sending.store(0, Relaxed);
        batch.clear();
    }
}

/// OpenTelemetry's `SeverityNumber` of a `log` level.
fn severity(level: log::Level) -> u64 {
    match level {
        log::Level::Error => 17,
        log::Level::Warn => 13,
        log::Level::Info => 9,
        log::Level::Debug => 5,
        log::Level::Trace => 1,
    }
}

fn attrs(r: &Record) -> Attrs<'_> {
    r.attributes.iter().map(|(k, v)| (k.as_str(), v.clone())).collect()
}

/// The records by target (each target an instrumentation scope), in their order.
fn by_target(records: &[Record]) -> Vec<(&str, Vec<&Record>)> {
    let mut out: Vec<(&str, Vec<&Record>)> = Vec::new();
    for r in records {
        match out.iter_mut().find(|(t, _)| *t == r.target) {
            Some((_, rs)) => rs.push(r),
            None => out.push((r.target.as_str(), vec![r])),
        }
    }
    out
}

/// `ExportLogsServiceRequest` (opentelemetry/proto/collector/logs/v1) as protobuf.
pub(crate) fn encode_protobuf(service: &Service, records: &[Record], out: &mut Vec<u8>) {
    message(1, out, |rl| {
        message(1, rl, |res| key_values(1, &super::otlp::resource_attributes(service), res));
        for (target, rs) in by_target(records) {
            message(2, rl, |sl| {
                message(1, sl, |scope| len_field(1, target.as_bytes(), scope));
                for r in rs {
                    message(2, sl, |lr| {
                        fixed64_field(1, r.unix_ns, lr);
                        super::otlp::varint_field(2, severity(r.level), lr);
                        len_field(3, r.level.as_str().as_bytes(), lr);
                        message(5, lr, |any| len_field(1, r.body.as_bytes(), any));
                        key_values(6, &attrs(r), lr);
                        if let Some((trace, span)) = r.ids {
                            super::otlp::tag(8, 5, lr);
                            lr.extend_from_slice(&1u32.to_le_bytes());
                            len_field(9, &trace.to_be_bytes(), lr);
                            len_field(10, &span.to_be_bytes(), lr);
                        }
                        fixed64_field(11, r.unix_ns, lr);
                    });
                }
            });
        }
    });
}

/// `ExportLogsServiceRequest` as OTLP/JSON (ids in hex).
pub(crate) fn encode_json(service: &Service, records: &[Record], out: &mut Vec<u8>) {
    let mut text = String::with_capacity(256 * records.len());
    let mut j = Json::new(&mut text);
    j.begin_object().key("resourceLogs").begin_array().begin_object();
    j.key("resource").begin_object().key("attributes");
    json_key_values(&super::otlp::resource_attributes(service), &mut j);
    j.end_object();
    j.key("scopeLogs").begin_array();
    for (target, rs) in by_target(records) {
        j.begin_object().key("scope").begin_object().key("name").str(target).end_object();
        j.key("logRecords").begin_array();
        for r in rs {
            let ns = r.unix_ns.to_string();
            j.begin_object();
            j.key("timeUnixNano").str(&ns).key("observedTimeUnixNano").str(&ns);
            j.key("severityNumber").u64(severity(r.level));
            j.key("severityText").str(r.level.as_str());
            j.key("body").begin_object().key("stringValue").str(&r.body).end_object();
            j.key("attributes");
            json_key_values(&attrs(r), &mut j);
            if let Some((trace, span)) = r.ids {
                j.key("flags").u64(1);
                j.key("traceId").str(&format!("{trace:032x}"));
                j.key("spanId").str(&format!("{span:016x}"));
            }
            j.end_object();
        }
        j.end_array().end_object();
    }
    j.end_array().end_object().end_array().end_object();
    out.extend_from_slice(text.as_bytes());
}
