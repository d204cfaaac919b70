//! Named instruments in scopes: counters, meters, value distributions, booleans, timers and
//! gauges, one file per family. Creating or finding one takes a lock; using a handle you keep
//! never does.

use std::fmt;

mod counter;
mod derive;
mod gauge;
mod meter;
mod registry;
mod scope;
mod timer;
mod values;

pub use counter::Counter;
pub use derive::{MetricField, Metrics};
pub use meter::{Event, Meter, RATE_WINDOW};
pub(crate) use registry::snapshot;
pub use scope::{Scope, MAX_SERIES_PER_INSTRUMENT};
pub use timer::{Timer, TimerGuard};
pub use values::{BoolVal, DurationVal, FloatVal, IntVal};

/// The kind of an instrument.
///
/// ```
/// assert_eq!(monitor_core::MetricKind::Counter.to_string(), "counter");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricKind {
    /// [`Counter`].
    Counter,
    /// [`Meter`].
    Meter,
    /// [`Event`].
    Event,
    /// [`IntVal`].
    IntVal,
    /// [`FloatVal`].
    FloatVal,
    /// [`BoolVal`].
    BoolVal,
    /// [`DurationVal`].
    DurationVal,
    /// [`Timer`].
    Timer,
    /// A gauge: a callback read at snapshot time ([`Scope::gauge`]).
    Gauge,
}

impl fmt::Display for MetricKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricKind::Counter => "counter",
            MetricKind::Meter => "meter",
            MetricKind::Event => "event",
            MetricKind::IntVal => "int value",
            MetricKind::FloatVal => "float value",
            MetricKind::BoolVal => "bool value",
            MetricKind::DurationVal => "duration value",
            MetricKind::Timer => "timer",
            MetricKind::Gauge => "gauge",
        })
    }
}

/// Why an instrument could not be created.
///
/// ```
/// use monitor_core::{MetricError, MetricKind, Scope};
/// let scope = Scope::new("metric_error_doc");
/// let _requests = scope.counter("requests");
/// assert_eq!(
///     scope.try_meter("requests").unwrap_err(),
///     MetricError::KindMismatch { existing: MetricKind::Counter, requested: MetricKind::Meter }
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricError {
    /// The name is empty.
    EmptyName,
    /// The scope already has an instrument of another kind under this name (and tags).
    KindMismatch {
        /// The kind registered first.
        existing: MetricKind,
        /// The kind asked for now.
        requested: MetricKind,
    },
    /// A gauge would be one more series of its name than [`MAX_SERIES_PER_INSTRUMENT`]
    /// (other instruments past the limit share the overflow series instead).
    TooManySeries,
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricError::EmptyName => f.write_str("a metric needs a non-empty name"),
            MetricError::KindMismatch { existing, requested } => write!(
                f,
                "this name is already a {existing} in this scope; a {requested} needs another name"
            ),
            MetricError::TooManySeries => write!(
                f,
                "this gauge name has {MAX_SERIES_PER_INSTRUMENT} tag sets already; tag it with \
                 fewer distinct values (an id or a path is too many)"
            ),
        }
    }
}

impl std::error::Error for MetricError {}
