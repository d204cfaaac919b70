//! Log correlation: records logged inside a monitored call carry its trace and span ids.

use std::sync::{Arc, Mutex};

use log::kv::{Key, VisitSource};
use monitor_core::trace::log::TraceIds;
use monitor_core::{monitored, Span};

type Lines = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

struct Capture(Lines);

struct Collect<'a>(&'a mut Vec<(String, String)>);

impl<'kvs> VisitSource<'kvs> for Collect<'_> {
    fn visit_pair(&mut self, k: Key<'kvs>, v: log::kv::Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push((k.to_string(), v.to_string()));
        Ok(())
    }
}

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        let mut kvs = Vec::new();
        r.key_values().visit(&mut Collect(&mut kvs)).unwrap();
        self.0.lock().unwrap().push((r.args().to_string(), kvs));
    }
    fn flush(&self) {}
}

#[monitored]
fn charge(cents: u64) -> (String, String) {
    log::info!(cents; "charging");
    let s = Span::current();
    (s.trace_id().unwrap().to_string(), s.span_id().unwrap().to_string())
}

#[test]
fn records_inside_monitored_calls_carry_the_ids() {
    let lines: Lines = Arc::default();
    TraceIds::new(Capture(Arc::clone(&lines))).install(log::LevelFilter::Info).unwrap();
    log::info!("outside");
    let (trace, span) = charge(250);
    assert_eq!(monitor_core::trace::current_trace_id(), None);
    let lines = lines.lock().unwrap();
    assert_eq!(lines[0], ("outside".to_string(), vec![]));
    assert_eq!(lines[1].0, "charging");
    assert_eq!(
        lines[1].1,
        vec![
            ("cents".to_string(), "250".to_string()),
            ("trace_id".to_string(), trace),
            ("span_id".to_string(), span)
        ]
    );
}
