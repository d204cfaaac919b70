//! The registry of instruments: every one by scope, name and tags, the background sampling
//! of meters, and the snapshot of them all. Creating or finding an instrument takes its lock;
//! a handle you keep never does.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::*;
use crate::snapshot::{MetricStats, MetricValue};

pub(super) type Tags = Arc<[(String, String)]>;
pub(super) type GaugeFn = Arc<crate::gauges::GaugeCell>;

#[derive(Clone)]
pub(super) enum Instrument {
    Counter(Counter),
    Meter(Meter),
    Event(Event),
    IntVal(IntVal),
    FloatVal(FloatVal),
    BoolVal(BoolVal),
    DurationVal(DurationVal),
    Timer(Timer),
    Gauge(GaugeFn),
}

impl Instrument {
    pub(super) fn kind(&self) -> MetricKind {
        match self {
            Instrument::Counter(_) => MetricKind::Counter,
            Instrument::Meter(_) => MetricKind::Meter,
            Instrument::Event(_) => MetricKind::Event,
            Instrument::IntVal(_) => MetricKind::IntVal,
            Instrument::FloatVal(_) => MetricKind::FloatVal,
            Instrument::BoolVal(_) => MetricKind::BoolVal,
            Instrument::DurationVal(_) => MetricKind::DurationVal,
            Instrument::Timer(_) => MetricKind::Timer,
            Instrument::Gauge(_) => MetricKind::Gauge,
        }
    }
}

pub(super) struct Entry {
    pub(super) description: Option<Arc<str>>,
    pub(super) instrument: Instrument,
}

pub(super) type Key = (Arc<str>, Arc<str>, Tags);

static METRICS: Mutex<BTreeMap<Key, Entry>> = Mutex::new(BTreeMap::new());

pub(super) fn metrics() -> MutexGuard<'static, BTreeMap<Key, Entry>> {
    // A panic while the lock was held cannot leave the map half-changed (every change is one
    // insert), so a poisoned lock is safe to keep using.
    METRICS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Samples every meter's total (the collector calls this every few seconds).
pub(crate) fn sample_meters(now: Instant) {
    let meters: Vec<Meter> = metrics()
        .values()
        .filter_map(|e| match &e.instrument {
            Instrument::Meter(m) | Instrument::Event(Event(m)) => Some(m.clone()),
            _ => None,
        })
        .collect();
    for m in meters {
        m.sample_at(now);
    }
}

/// Copies every registered instrument's statistics. Gauges are read outside the lock, on the
/// gauges' own thread and within their time limit (see `gauges`); a gauge that panics reads
/// as 0, one that is too slow as its last value, marked stale.
pub(crate) fn snapshot() -> Vec<MetricStats> {
    let entries: Vec<(Key, Option<Arc<str>>, Instrument)> = metrics()
        .iter()
        .map(|(k, e)| (k.clone(), e.description.clone(), e.instrument.clone()))
        .collect();
    let cells: Vec<GaugeFn> = entries
        .iter()
        .filter_map(|(_, _, i)| match i {
            Instrument::Gauge(cell) => Some(Arc::clone(cell)),
            _ => None,
        })
        .collect();
    let mut readings = crate::gauges::read_all(&cells).into_iter();
    let now = Instant::now();
    let mut out: Vec<MetricStats> = entries
        .into_iter()
        .map(|((scope, name, tags), description, instrument)| {
            let mut stale = false;
            let value = match instrument {
                Instrument::Counter(c) => {
                    MetricValue::Counter { value: c.value(), high: c.high(), low: c.low() }
                }
                Instrument::Meter(m) => {
                    MetricValue::Meter { total: m.total(), rate: m.rate_at(now) }
                }
                Instrument::Event(Event(m)) => {
                    MetricValue::Event { total: m.total(), rate: m.rate_at(now) }
                }
                Instrument::IntVal(v) => MetricValue::IntVal(v.stats()),
                Instrument::FloatVal(v) => MetricValue::FloatVal(v.stats()),
                Instrument::BoolVal(b) => MetricValue::BoolVal {
                    trues: b.trues(),
                    falses: b.falses(),
                    recent: b.recent(),
                },
                Instrument::DurationVal(d) => MetricValue::DurationVal(d.stats()),
                Instrument::Timer(t) => MetricValue::Timer(t.stats()),
                Instrument::Gauge(_) => {
                    let r = readings
                        .next()
                        .unwrap_or(crate::gauges::Reading { value: 0.0, stale: true });
                    stale = r.stale;
                    MetricValue::Gauge(r.value)
                }
            };
            MetricStats {
                scope: scope.to_string(),
                name: name.to_string(),
                tags: tags.to_vec(),
                description: description.map(|d| d.to_string()),
                value,
                stale,
            }
        })
        .collect();
    // Shown once a gauge has missed its time limit, so that it is seen in every view.
    let missed = crate::gauges::stale_gauge_reads();
    if missed > 0 {
        out.push(MetricStats {
            scope: "monitor".into(),
            name: "late_callback_reads".into(),
            tags: Vec::new(),
            description: Some(
                "Gauge reads that missed the time limit and showed the gauge's last value.".into(),
            ),
            value: MetricValue::Counter {
                value: i64::try_from(missed).unwrap_or(i64::MAX),
                high: i64::try_from(missed).unwrap_or(i64::MAX),
                low: 0,
            },
            stale: false,
        });
    }
    out
}
