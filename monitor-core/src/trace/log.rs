//! Log correlation for the `log` crate: every record emitted inside a monitored call carries
//! the call's `trace_id` and `span_id` as key-values (feature `log`).

use std::fmt;

use log::kv::{self, Key, Source, Value, VisitSource};
use log::{Log, Metadata, Record};

use crate::ids::{SpanId, TraceId};
use crate::span::Span;

/// A [`Log`] that adds `trace_id` and `span_id` (lower hex) to the key-values of each record
/// logged inside a monitored call, then hands it to the logger it wraps. Loggers that print
/// key-values (e.g. `env_logger` with its `kv` feature, `structured-logger`, JSON loggers)
/// show them; the record is otherwise unchanged.
///
/// ```
/// use monitor_core::trace::log::TraceIds;
///
/// struct Print;
/// impl log::Log for Print {
///     fn enabled(&self, _: &log::Metadata<'_>) -> bool { true }
///     fn log(&self, r: &log::Record<'_>) {
///         let trace = r.key_values().get(log::kv::Key::from("trace_id"));
///         println!("{} trace={:?}", r.args(), trace.map(|v| v.to_string()));
///     }
///     fn flush(&self) {}
/// }
///
/// TraceIds::new(Print).install(log::LevelFilter::Info).unwrap();
/// ```
#[derive(Debug)]
pub struct TraceIds<L> {
    inner: L,
}

impl<L: Log + 'static> TraceIds<L> {
    /// Wraps `inner`.
    pub fn new(inner: L) -> TraceIds<L> {
        TraceIds { inner }
    }

    /// Makes this the process's logger, with `max` as the level filter.
    ///
    /// # Errors
    ///
    /// When a logger is installed already (`log` allows one per process).
    pub fn install(self, max: log::LevelFilter) -> Result<(), log::SetLoggerError> {
        log::set_boxed_logger(Box::new(self))?;
        log::set_max_level(max);
        Ok(())
    }
}

struct WithIds<'a> {
    original: &'a dyn Source,
    trace_id: TraceId,
    span_id: SpanId,
}

impl Source for WithIds<'_> {
    fn visit<'kvs>(&'kvs self, visitor: &mut dyn VisitSource<'kvs>) -> Result<(), kv::Error> {
        self.original.visit(visitor)?;
        visitor.visit_pair(Key::from("trace_id"), Value::from_display(&self.trace_id))?;
        visitor.visit_pair(Key::from("span_id"), Value::from_display(&self.span_id))
    }
}

impl<L: Log> Log for TraceIds<L> {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        let span = Span::current();
        match (span.trace_id(), span.span_id()) {
            (Some(trace_id), Some(span_id)) => {
                let ids = WithIds { original: record.key_values(), trace_id, span_id };
                self.inner.log(&record.to_builder().key_values(&ids).build());
            }
            _ => self.inner.log(record),
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

impl fmt::Debug for WithIds<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithIds")
            .field("trace_id", &self.trace_id)
            .field("span_id", &self.span_id)
            .finish()
    }
}
