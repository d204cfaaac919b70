//! Exemplars: a latency bucket or an error count on `/metrics` leads to the trace of a call
//! in it, and that trace answers at once on `/trace/json`. Checked against a real Prometheus
//! with exemplar storage (skipped outside CI when Prometheus is missing).
//!
//! Ports and wall clock: the server and Prometheus listen on free loopback ports; the test polls
//! Prometheus's API under a deadline.

mod common;

use std::time::{Duration, Instant};

use monitor_core::{monitored, trace};

#[monitored]
fn lookup(key: &str) -> Result<u32, std::num::ParseIntError> {
    inner(key)
}

#[monitored]
fn inner(key: &str) -> Result<u32, std::num::ParseIntError> {
    if key.starts_with("slow") {
        std::thread::sleep(Duration::from_millis(3));
        return Ok(3);
    }
    key.parse()
}

const LOOKUP: &str = "test_exemplars::lookup";

/// Slow and fast successes and a failure, each its own trace.
fn calls() {
    for key in ["1", "2", "slow", "x", "3"] {
        let _ = lookup(key);
    }
}

#[test]
fn exemplars_lead_to_whole_traces_and_prometheus_stores_them() {
    let _turn = common::turn();
    trace::keep_failed_traces(16);
    calls();
    let snap = monitor_core::registry().snapshot();
    let f = snap.functions.iter().find(|f| f.name == LOOKUP).unwrap();
    // A fast and a slow success fall in different bands; the failure has its own.
    let failures: Vec<_> = f.exemplars.iter().filter(|e| e.outcome.is_failure()).collect();
    assert_eq!(failures.len(), 1, "{:?}", f.exemplars);
    assert!(f.exemplars.iter().any(|e| e.duration_ns >= 3_000_000), "{:?}", f.exemplars);
    assert!(f.exemplars.iter().any(|e| e.duration_ns < 3_000_000), "{:?}", f.exemplars);
    for e in &f.exemplars {
        let t = trace::exemplar_trace(e.trace_id).expect("an exemplar's trace is held");
        let span = t.spans.iter().find(|s| s.span_id == e.span_id).unwrap();
        assert_eq!((span.name, span.duration_ns), (LOOKUP, e.duration_ns));
        // The whole trace: the call inside it too.
        assert!(t.spans.iter().any(|s| s.name == "test_exemplars::inner"));
    }
    let (held, spans) = trace::exemplar_traces_held();
    assert!((1..=trace::MAX_PINNED_TRACES).contains(&held) && spans >= held);

    let server = monitor_http::serve("127.0.0.1:0").unwrap();
    let addr = server.local_addr();
    // OpenMetrics carries them; the Prometheus text format has no place for them.
    let open = common::get_with(addr, "/metrics", "Accept: application/openmetrics-text\r\n");
    let with_exemplar = |line: &&str| line.contains(LOOKUP) && line.contains(" # {trace_id=\"");
    let lines: Vec<&str> = open.body.lines().filter(with_exemplar).collect();
    assert!(lines.iter().any(|l| l.starts_with("function_times_seconds_bucket{")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.starts_with("function_errors_total{error_kind=\"ParseIntError\"")),
        "{lines:?}"
    );
    let plain = common::get(addr, "/metrics");
    assert!(!plain.body.contains("# {"), "no exemplars in the 0.0.4 text format");
    // A malformed id is a clear error, not a wait.
    let bad = common::get(addr, "/trace/json?trace_id=xyz");
    assert_eq!(bad.status, 400, "{}", bad.body);

    prometheus_stores_them(addr);
    server.shutdown();
    trace::keep_failed_traces(0);
}

/// A real Prometheus scrapes the exemplars, and each one it returns answers on `/trace/json`
/// at once.
fn prometheus_stores_them(addr: std::net::SocketAddr) {
    let Some(prom) = common::Prometheus::start(addr, &["--enable-feature=exemplar-storage"]) else {
        return;
    };
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    let start = now().as_secs() - 3600;
    let query = |series: &str| {
        let q = common::promql(&format!("{series}{{name=\"{LOOKUP}\"}}"));
        let end = now().as_secs() + 60;
        prom.api(&format!("/api/v1/query_exemplars?query={q}&start={start}&end={end}"))
    };
    // Waits (boundedly) for Prometheus to start, scrape and store both kinds.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (buckets, errors) = loop {
        let ids = |v: Option<serde_json::Value>| -> Vec<(String, String)> {
            let Some(v) = v else { return Vec::new() };
            let mut ids = Vec::new();
            for series in v["data"].as_array().into_iter().flatten() {
                for e in series["exemplars"].as_array().into_iter().flatten() {
                    let l = &e["labels"];
                    if let (Some(t), Some(s)) = (l["trace_id"].as_str(), l["span_id"].as_str()) {
                        ids.push((t.to_string(), s.to_string()));
                    }
                }
            }
            ids
        };
        let buckets = ids(query("function_times_seconds_bucket"));
        let errors = ids(query("function_errors_total"));
        if !buckets.is_empty() && !errors.is_empty() {
            break (buckets, errors);
        }
        if Instant::now() > deadline {
            let targets = prom.api("/api/v1/targets");
            panic!("Prometheus stored no exemplars: {buckets:?} {errors:?}; targets: {targets:?}");
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    for (trace_id, span_id) in buckets.iter().chain(&errors) {
        // Held, so answered at once: a capture waiting for it would time out unanswered.
        let reply = common::get(addr, &format!("/trace/json?trace_id={trace_id}&timeout=1s"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert!(reply.body.contains(span_id.as_str()), "{}", reply.body);
        assert!(reply.body.contains(LOOKUP), "{}", reply.body);
    }
}

#[monitored]
fn exported(i: u32) -> Result<u32, std::io::Error> {
    if i == 2 {
        return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
    }
    Ok(i)
}

const EXPORTED: &str = "test_exemplars::exported";

fn is_exported(attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> bool {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    attrs.iter().any(|a| {
        a.key == "code.function"
            && matches!(&a.value.as_ref().and_then(|v| v.value.as_ref()), Some(Value::StringValue(s)) if s == EXPORTED)
    })
}

/// OTLP metrics carry the same exemplars: a real decoder reads them off the duration
/// histogram and the error count, each trace id answers from what is held, and a real
/// collector decodes them.
#[test]
fn otlp_metrics_carry_exemplars_of_held_traces() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use prost::Message;

    let _turn = common::turn();
    trace::keep_failed_traces(16);
    for i in 0..4 {
        let _ = exported(i);
    }
    let rx = common::Receiver::start(vec![]);
    let config = monitor_http::export::ExportConfig::otlp_metrics(&rx.url("/v1/metrics")).unwrap();
    let e = config.interval(Duration::from_secs(3600)).start();
    let stats = e.shutdown();
    assert!(stats.exported > 0, "{stats:?}");
    let posted = rx.take().into_iter().next().expect("the shutdown sends the last snapshot");
    let req = ExportMetricsServiceRequest::decode(posted.body.as_slice()).unwrap();
    let metrics: Vec<_> = req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .collect();
    let mut ids = Vec::new();
    for m in &metrics {
        match (m.name.as_str(), &m.data) {
            ("monitor.function.duration", Some(Data::ExponentialHistogram(h))) => {
                for p in h.data_points.iter().filter(|p| is_exported(&p.attributes)) {
                    assert!(!p.exemplars.is_empty(), "{p:?}");
                    ids.extend(p.exemplars.iter().map(|x| (x.trace_id.clone(), x.span_id.clone())));
                }
            }
            ("monitor.function.calls", Some(Data::Sum(s))) => {
                let errors: Vec<_> = s
                    .data_points
                    .iter()
                    .filter(|p| is_exported(&p.attributes) && !p.exemplars.is_empty())
                    .collect();
                assert_eq!(errors.len(), 1, "only the NotFound count: {errors:?}");
                ids.extend(
                    errors[0].exemplars.iter().map(|x| (x.trace_id.clone(), x.span_id.clone())),
                );
            }
            _ => {}
        }
    }
    assert!(ids.len() >= 3, "a success, a failure and an error count: {ids:?}");
    for (t, s) in &ids {
        let t = u128::from_be_bytes(t.as_slice().try_into().unwrap());
        let s = u64::from_be_bytes(s.as_slice().try_into().unwrap());
        let held = trace::exemplar_trace(monitor_core::TraceId::from_u128(t)).unwrap();
        assert!(held.spans.iter().any(|x| x.span_id.to_u64() == s && x.name == EXPORTED));
    }

    if let Some(collector) = common::Collector::start("metrics") {
        let url = collector.url("/v1/metrics");
        let config = monitor_http::export::ExportConfig::otlp_metrics(&url).unwrap();
        let stats = config.interval(Duration::from_secs(3600)).start().shutdown();
        assert!(stats.exported > 0 && stats.rejected + stats.given_up == 0, "{stats:?}");
        let text = collector.wait_for("Exemplar", Duration::from_secs(30));
        let (t, _) = &ids[0];
        let hex: String = t.iter().map(|b| format!("{b:02x}")).collect();
        assert!(text.contains(&hex), "the collector decoded the exemplar's trace id:\n{text}");
    }
    trace::keep_failed_traces(0);
}
