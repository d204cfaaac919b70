//! Gauges: callbacks read at snapshot time, on the gauges' own thread (see `crate::gauges`).

use std::sync::Arc;

use super::registry::{metrics, Entry, GaugeFn, Instrument};
use super::*;

impl Scope {
    /// Registers (or replaces) the gauge `name`: `read` is called at every snapshot and its
    /// value shown. A gauge that panics or returns NaN or infinity is shown as 0.
    ///
    /// ```
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::sync::Arc;
    ///
    /// let queue = Arc::new(AtomicUsize::new(3));
    /// let q = Arc::clone(&queue);
    /// let scope = monitor_core::Scope::new("gauge_doc");
    /// scope.gauge("queue_len", move || q.load(Ordering::Relaxed) as f64).unwrap();
    /// let snap = monitor_core::registry().snapshot();
    /// assert_eq!(snap.metric("gauge_doc", "queue_len").unwrap().value, monitor_core::MetricValue::Gauge(3.0));
    /// ```
    pub fn gauge(
        &self,
        name: &str,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricError> {
        self.gauge_described(name, None, read)
    }

    /// [`Scope::gauge`] with a description (shown as Prometheus `HELP`).
    ///
    /// ```
    /// let s = monitor_core::Scope::new("gauge_doc2");
    /// s.gauge_described("answer", Some("The answer."), || 42.0).unwrap();
    /// ```
    pub fn gauge_described(
        &self,
        name: &str,
        description: Option<&str>,
        read: impl Fn() -> f64 + Send + Sync + 'static,
    ) -> Result<(), MetricError> {
        if name.is_empty() {
            return Err(MetricError::EmptyName);
        }
        let read: GaugeFn = crate::gauges::GaugeCell::new(read);
        let key = (Arc::clone(&self.name), Arc::from(name), Arc::clone(&self.tags));
        let mut map = metrics();
        if super::scope::bounded(&map, key.clone()) != key {
            return Err(MetricError::TooManySeries);
        }
        match map.get_mut(&key) {
            Some(Entry { instrument: Instrument::Gauge(f), description: d }) => {
                *f = read;
                if let Some(desc) = description {
                    *d = Some(Arc::from(desc));
                }
                Ok(())
            }
            Some(other) => Err(MetricError::KindMismatch {
                existing: other.instrument.kind(),
                requested: MetricKind::Gauge,
            }),
            None => {
                map.insert(
                    key,
                    Entry {
                        description: description.map(Arc::from),
                        instrument: Instrument::Gauge(read),
                    },
                );
                Ok(())
            }
        }
    }
}
