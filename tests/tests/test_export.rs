//! Exporters against real decoders: a receiver on loopback takes what the OTLP (protobuf and
//! JSON) and Zipkin exporters POST; `opentelemetry-proto` decodes OTLP, and Zipkin's own
//! Swagger schema (`tests/specs/zipkin2-api.yaml`, from openzipkin/zipkin-api) validates the Zipkin
//! JSON. A collector that is down, slow or failing never blocks the calls.
//!
//! Ports and wall clock: the receivers listen on free loopback ports, and the tests wait for
//! their deliveries under deadlines that bound the wait, not the speed.

mod common;

use std::net::TcpListener;
use std::time::{Duration, Instant};

use monitor_core::trace::{self, TraceParent};
use monitor_core::{monitored, Span};
use monitor_http::export::ExportConfig;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span as OtlpSpan;
use prost::Message;
use serde_json::Value;

// Sampling is process-wide: the tests take turns (`common::turn`).
use common::{turn, Receiver};

#[derive(Debug)]
struct Declined;

#[monitored]
fn lookup(key: u32) -> Result<u32, Declined> {
    trace::annotate("key", key);
    trace::annotate("ratio", 0.5);
    trace::annotate("cached", key % 2 == 0);
    trace::checkpoint("looked up");
    if key == 3 {
        trace::set_status(trace::Status::error("key 3 is declined"));
        Err(Declined)
    } else {
        Ok(key)
    }
}

#[monitored]
fn request(n: u32) -> u32 {
    (0..n).map(|k| lookup(k).unwrap_or(0)).sum()
}

/// Runs 5 sampled requests (one continuing a remote trace); returns the remote parent.
fn traffic() -> TraceParent {
    trace::set_sample_ratio(1.0).unwrap();
    for _ in 0..4 {
        request(4);
    }
    let tp: TraceParent =
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse().unwrap();
    Span::from_remote(tp).in_scope(|| request(4));
    trace::set_sample_ratio(0.0).unwrap();
    tp
}

fn otlp_spans(req: &ExportTraceServiceRequest) -> Vec<OtlpSpan> {
    assert_eq!(req.resource_spans.len(), 1);
    let rs = &req.resource_spans[0];
    let service =
        rs.resource.as_ref().unwrap().attributes.iter().find(|a| a.key == "service.name").unwrap();
    assert_eq!(service.value.as_ref().unwrap().value, Some(Any::StringValue("checkout".into())));
    let ss = &rs.scope_spans[0];
    assert_eq!(ss.scope.as_ref().unwrap().name, "monitor");
    ss.spans.clone()
}

fn attr<'a>(s: &'a OtlpSpan, key: &str) -> Option<&'a Any> {
    s.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn check_otlp(spans: &[OtlpSpan], remote: TraceParent) {
    let mine: Vec<&OtlpSpan> =
        spans.iter().filter(|s| s.name.starts_with("test_export::")).collect();
    assert_eq!(mine.len(), 5 * 5, "5 requests of 1 + 4 lookups");
    for s in &mine {
        assert_eq!((s.trace_id.len(), s.span_id.len()), (16, 8));
        assert!(
            s.end_time_unix_nano >= s.start_time_unix_nano
                && s.start_time_unix_nano > 1_600_000_000_000_000_000
        );
        if s.name == "test_export::lookup" {
            let parent =
                mine.iter().find(|p| p.span_id == s.parent_span_id).expect("parent exported");
            assert_eq!(
                (parent.name.as_str(), &parent.trace_id),
                ("test_export::request", &s.trace_id)
            );
            let Some(Any::IntValue(key)) = attr(s, "key") else { panic!("key") };
            assert_eq!(attr(s, "ratio"), Some(&Any::DoubleValue(0.5)));
            assert_eq!(attr(s, "cached"), Some(&Any::BoolValue(key % 2 == 0)));
            assert_eq!(s.events[0].name, "looked up");
            assert!(s.events[0].time_unix_nano >= s.start_time_unix_nano);
            let status = s.status.as_ref();
            if *key == 3 {
                assert_eq!(attr(s, "error.type"), Some(&Any::StringValue("Declined".into())));
                assert_eq!(
                    status.map(|s| (s.code, s.message.as_str())),
                    Some((2, "key 3 is declined"))
                );
            } else {
                assert_eq!(status.map_or(0, |s| s.code), 0);
            }
            assert_eq!(s.kind, 1, "internal");
        }
    }
    let continued: Vec<&&OtlpSpan> =
        mine.iter().filter(|s| s.trace_id == remote.trace_id.to_u128().to_be_bytes()).collect();
    assert_eq!(continued.len(), 5);
    let root = continued.iter().find(|s| s.name == "test_export::request").unwrap();
    assert_eq!(root.parent_span_id, remote.parent_id.to_u64().to_be_bytes());
    assert_eq!((root.kind, root.flags & 0x301), (2, 0x301), "server span, remote parent, sampled");
}

#[test]
fn otlp_protobuf_is_accepted_by_the_decoder() {
    let _turn = turn();
    let rx = Receiver::start(vec![]);
    let exporter =
        ExportConfig::otlp(&rx.url("/v1/traces")).unwrap().service_name("checkout").start();
    let remote = traffic();
    exporter.shutdown();
    let posted = rx.take();
    assert!(!posted.is_empty());
    let mut spans = Vec::new();
    for p in &posted {
        assert_eq!(
            (p.path.as_str(), p.content_type.as_str()),
            ("/v1/traces", "application/x-protobuf")
        );
        let req = ExportTraceServiceRequest::decode(&p.body[..]).expect("valid protobuf");
        spans.extend(otlp_spans(&req));
    }
    check_otlp(&spans, remote);
}

#[test]
fn otlp_json_is_accepted_by_the_decoder() {
    let _turn = turn();
    let rx = Receiver::start(vec![]);
    let exporter =
        ExportConfig::otlp(&rx.url("/v1/traces")).unwrap().json().service_name("checkout").start();
    let remote = traffic();
    exporter.shutdown();
    let mut spans = Vec::new();
    let mut all = String::new();
    for p in rx.take() {
        assert_eq!(p.content_type, "application/json");
        let text = String::from_utf8(p.body).unwrap();
        let req: ExportTraceServiceRequest =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        spans.extend(otlp_spans(&req));
        all.push_str(&text);
    }
    // Ids are hex in OTLP/JSON, not base64.
    assert!(all.contains(&format!("\"traceId\":\"{}\"", remote.trace_id)));
    check_otlp(&spans, remote);
}

/// Zipkin's `ListOfSpans` schema, from the Swagger file, as a JSON Schema.
fn zipkin_schema() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/specs/zipkin2-api.yaml");
    let yaml = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let swagger: Value = serde_yaml::from_str(&yaml).unwrap();
    serde_json::json!({ "$ref": "#/definitions/ListOfSpans", "definitions": swagger["definitions"] })
}

#[test]
fn zipkin_json_satisfies_the_zipkin_v2_schema() {
    let _turn = turn();
    let rx = Receiver::start(vec![]);
    let exporter =
        ExportConfig::zipkin(&rx.url("/api/v2/spans")).unwrap().service_name("Checkout").start();
    let remote = traffic();
    exporter.shutdown();
    let validator = jsonschema::draft4::new(&zipkin_schema()).unwrap();
    // The schema is live: it refuses what Zipkin would.
    let broken =
        serde_json::json!([{ "traceId": "abc", "id": "0000000000000001", "timestamp": "now" }]);
    assert!(!validator.is_valid(&broken));
    let mut spans = Vec::new();
    for p in rx.take() {
        assert_eq!(
            (p.path.as_str(), p.content_type.as_str()),
            ("/api/v2/spans", "application/json")
        );
        let doc: Value = serde_json::from_slice(&p.body).unwrap();
        let errors: Vec<String> =
            validator.iter_errors(&doc).map(|e| format!("{e} at {}", e.instance_path)).collect();
        assert!(errors.is_empty(), "{errors:#?}");
        spans.extend(doc.as_array().unwrap().iter().cloned());
    }
    let hex = |v: &Value, n: usize| {
        v.as_str().is_some_and(|s| {
            s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
    };
    let mine: Vec<&Value> =
        spans.iter().filter(|s| s["name"].as_str().unwrap().starts_with("test_export::")).collect();
    assert_eq!(mine.len(), 25);
    for s in &mine {
        // What the schema's unanchored patterns do not say, Zipkin requires.
        assert!(hex(&s["traceId"], 32) && hex(&s["id"], 16), "{s}");
        assert!(s["parentId"].is_null() || hex(&s["parentId"], 16), "{s}");
        assert!(s["duration"].as_u64().unwrap() >= 1);
        assert_eq!(s["localEndpoint"]["serviceName"], "checkout");
        if s["tags"]["key"] == "3" {
            assert_eq!(s["tags"]["error"], "key 3 is declined");
        }
    }
    let root = mine
        .iter()
        .find(|s| {
            s["traceId"] == remote.trace_id.to_string() && s["name"] == "test_export::request"
        })
        .unwrap();
    assert_eq!(
        (root["parentId"].as_str(), root["kind"].as_str()),
        (Some("b7ad6b7169203331"), Some("SERVER"))
    );
}

/// Spans that end apart in time go out together, as the OpenTelemetry SDK batches them: one
/// request for many small traces, not one per trace.
#[test]
fn spans_are_batched_like_the_sdk_does() {
    let _turn = turn();
    let rx = Receiver::start(vec![]);
    let exporter = ExportConfig::otlp(&rx.url("/v1/traces")).unwrap().start();
    trace::set_sample_ratio(1.0).unwrap();
    for i in 0..6 {
        request(i);
        std::thread::sleep(Duration::from_millis(20));
    }
    trace::set_sample_ratio(0.0).unwrap();
    // The batch is still waiting to fill; the shutdown sends it.
    let stats = exporter.shutdown();
    let posted = rx.take();
    let spans: usize = posted
        .iter()
        .map(|p| otlp_spans_any(&ExportTraceServiceRequest::decode(&p.body[..]).unwrap()))
        .sum();
    assert_eq!(spans as u64, stats.exported);
    assert!(spans >= 12, "two spans or more per request() call: {spans}");
    assert_eq!(posted.len(), 1, "{spans} spans in one request");
}

#[test]
fn failing_collectors_are_retried_and_never_block_calls() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    let _turn = turn();
    // Two failures, then success: the batch arrives once.
    let rx = Receiver::start(vec![503, 503]);
    let exporter = ExportConfig::otlp(&rx.url("/v1/traces"))
        .unwrap()
        .backoff(Duration::from_millis(10), Duration::from_millis(40))
        // Each batch at once: this is about retries.
        .batch(512, Duration::ZERO)
        .start();
    trace::set_sample_ratio(1.0).unwrap();
    request(2);
    trace::set_sample_ratio(0.0).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stats = exporter.stats();
    exporter.shutdown();
    assert_eq!((stats.retries, stats.given_up), (2, 0), "{stats:?}");
    let spans: usize = rx
        .take()
        .iter()
        .map(|p| otlp_spans_any(&ExportTraceServiceRequest::decode(&p.body[..]).unwrap()))
        .sum();
    assert_eq!(spans, 3);

    // A collector that accepts connections and never answers, with a small queue: calls go on,
    // spans are dropped and counted.
    let stalled = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/traces", stalled.local_addr().unwrap());
    let exporter = ExportConfig::otlp(&url)
        .unwrap()
        .queue(8)
        .max_attempts(2)
        .timeout(Duration::from_secs(20))
        .start();
    trace::set_sample_ratio(1.0).unwrap();
    let t = Instant::now();
    for _ in 0..200 {
        request(4);
    }
    let busy = t.elapsed();
    trace::set_sample_ratio(0.0).unwrap();
    let stats = exporter.stats();
    // Dropping (not shutting down) leaves the stuck request to finish in the background.
    drop(exporter);
    assert!(trace::observers().iter().all(|o| !o.name.contains("OtlpProtobuf")), "unregistered");
    assert!(stats.dropped >= 1000 - 8 - 512, "{stats:?}");
    // Every view shows the drops: a gauge of the `trace` scope tagged with the observer.
    let snap = monitor_core::registry().snapshot();
    let shown = snap
        .metrics
        .iter()
        .find(|m| {
            m.name == "observer_dropped"
                && m.tags.iter().any(|(k, v)| k == "observer" && v.ends_with(&url))
        })
        .map(|m| m.value.clone());
    assert_eq!(shown, Some(monitor_core::MetricValue::Gauge(stats.dropped as f64)));
    assert_eq!((stats.exported, stats.given_up), (0, 0), "still waiting for the collector");
    // The calls did not wait for the collector: its first answer could come after 20 s.
    assert!(busy < Duration::from_secs(10), "{busy:?}");
    drop(stalled);
}

fn otlp_spans_any(req: &ExportTraceServiceRequest) -> usize {
    req.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum()
}

/// Issue 14 (2): a shutdown takes at most its timeout, whatever the collector does, and says
/// what it could not send.
#[test]
fn shutdown_is_bounded_against_any_collector() {
    let _turn = turn();
    // Wall clock: each exporter is given 1 s to shut down, against defaults (4 attempts of up to
    // 10 s each, backoff up to 5 s) that would take minutes; the bound checked leaves 3 s more
    // for a loaded machine.
    let limit = Duration::from_secs(1);
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        format!("http://{addr}/v1/traces")
    };
    let failing = Receiver::start(vec![500; 1000]);
    let stalled = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = format!("http://{}/v1/traces", stalled.local_addr().unwrap());
    for (what, url) in [
        ("a closed port", closed),
        ("a collector answering 500", failing.url("/v1/traces")),
        ("a collector that never answers", silent),
    ] {
        let exporter = ExportConfig::otlp(&url).unwrap().shutdown_timeout(limit).start();
        trace::set_sample_ratio(1.0).unwrap();
        for _ in 0..600 {
            request(4);
        }
        trace::set_sample_ratio(0.0).unwrap();
        // Let the first batch be under way, so the shutdown meets a request in flight.
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        let stats = exporter.shutdown();
        let took = t.elapsed();
        assert!(took < limit + Duration::from_secs(3), "{what}: shutdown took {took:?}");
        assert_eq!(stats.exported, 0, "{what}: {stats:?}");
        // Every span was queued, dropped, given up or is reported unsent: none is lost silently.
        let queued = 600 * 5 - stats.dropped;
        assert_eq!(stats.given_up + stats.rejected + stats.unsent, queued, "{what}: {stats:?}");
    }
    drop(stalled);
}

/// One connection carries every request; `Retry-After` is waited; a partial success counts
/// the refused spans as rejected, the rest as exported.
#[test]
fn one_kept_connection_retry_after_and_partial_success() {
    use common::Scripted;
    let _turn = turn();
    // partial_success { rejected_spans: 2, error_message: "x" }
    let partial = vec![0x0a, 0x05, 0x08, 0x02, 0x12, 0x01, b'x'];
    let rx = Receiver::start_keep_alive(vec![
        Scripted { status: 200, headers: "", body: vec![] },
        Scripted { status: 503, headers: "Retry-After: 1\r\n", body: vec![] },
        Scripted { status: 200, headers: "", body: partial },
    ]);
    let exporter = ExportConfig::otlp(&rx.url("/v1/traces"))
        .unwrap()
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
        // The three spans of a request in one batch.
        .batch(512, Duration::from_millis(200))
        .start();
    trace::set_sample_ratio(1.0).unwrap();
    request(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while exporter.stats().exported < 1 {
        assert!(Instant::now() < deadline, "the first batch never went");
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = Instant::now();
    request(2);
    trace::set_sample_ratio(0.0).unwrap();
    while exporter.stats().exported + exporter.stats().rejected < 4 {
        assert!(Instant::now() < deadline, "{:?}", exporter.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    // The retry waited the second the collector asked for (the backoff alone is 1 ms).
    assert!(second.elapsed() >= Duration::from_secs(1));
    let stats = exporter.shutdown();
    assert_eq!((stats.exported, stats.rejected, stats.retries), (2, 2, 1), "{stats:?}");
    let posted = rx.take();
    assert_eq!(posted.len(), 3);
    assert_eq!(rx.connections(), 1, "one connection for every request");
}
