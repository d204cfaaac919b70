//! OTLP metrics against real decoders: `opentelemetry-proto` decodes the protobuf and the JSON
//! bodies the metrics exporter POSTs to a loopback receiver, and `rotel-agent` — a real OTLP
//! collector, installed by `.ci/install-tools` — receives the protobuf over OTLP/HTTP and
//! prints what it decoded. The counts, histogram counts and sums must be exact.
//!
//! Ports and wall clock: the receiver and the collector listen on free loopback ports; the
//! tests wait for their deliveries under deadlines that bound the wait, not the speed. The
//! functions and instruments are this file's own, so the tests may run together.

mod common;

use std::time::{Duration, Instant};

use monitor_core::{monitored, Scope};
use monitor_http::export::ExportConfig;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use prost::Message;

use common::Receiver;

#[monitored(name = "otlp_metrics::fetch")]
fn fetch(i: u32) -> Result<u32, std::io::Error> {
    if i % 4 == 3 {
        Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such item"))
    } else {
        std::thread::sleep(Duration::from_micros(200));
        Ok(i)
    }
}

/// 20 calls of `fetch` (15 successes, 5 `NotFound`) and one of each kind of instrument, once
/// for every test of the file.
fn traffic() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(traffic_once);
}

fn traffic_once() {
    for i in 0..20 {
        let _ = fetch(i);
    }
    let scope = Scope::new("otlp_metrics_test");
    scope.counter("queue_depth").add(7);
    scope.meter("mails_sent").mark(5);
    let sizes = scope.int_val("batch_size");
    for v in 1..=10 {
        sizes.observe(v);
    }
    let ok = scope.bool_val("cache_hit");
    for v in [true, true, false] {
        ok.observe(v);
    }
    scope.duration_val("lock_wait").observe(Duration::from_millis(3));
    scope.gauge("temperature", || 21.5).unwrap();
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Any> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn is_str(attrs: &[KeyValue], key: &str, want: &str) -> bool {
    matches!(attr(attrs, key), Some(Any::StringValue(s)) if s == want)
}

/// The metric `name` of instrumentation scope `scope`.
fn metric<'a>(req: &'a ExportMetricsServiceRequest, scope: &str, name: &str) -> &'a Metric {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .filter(|s| s.scope.as_ref().is_some_and(|s| s.name == scope))
        .flat_map(|s| &s.metrics)
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{scope} {name} not exported"))
}

/// Checks what a decoded request says of `traffic()`; its exponential histograms and summaries
/// too where the decoder reads them (`opentelemetry-proto` has no JSON form of them).
fn check(req: &ExportMetricsServiceRequest, exponential: bool) {
    let resource = req.resource_metrics[0].resource.as_ref().unwrap();
    assert!(is_str(&resource.attributes, "service.name", "checkout"));
    assert!(
        matches!(attr(&resource.attributes, "process.pid"), Some(Any::IntValue(p)) if *p == i64::from(std::process::id()))
    );
    assert!(attr(&resource.attributes, "service.instance.id").is_some());
    assert!(is_str(&resource.attributes, "deployment.environment.name", "test"));

    let fetch = |a: &[KeyValue]| is_str(a, "code.function", "otlp_metrics::fetch");
    let Some(Data::Sum(calls)) = &metric(req, "monitor", "monitor.function.calls").data else {
        panic!("calls is not a sum")
    };
    assert!(calls.is_monotonic);
    assert_eq!(calls.aggregation_temporality, 2, "cumulative");
    let value = |outcome: &str, kind: Option<&str>| {
        calls
            .data_points
            .iter()
            .find(|p| {
                fetch(&p.attributes)
                    && is_str(&p.attributes, "outcome", outcome)
                    && kind.is_none_or(|k| is_str(&p.attributes, "error.type", k))
            })
            .and_then(|p| p.value)
    };
    assert_eq!(value("success", None), Some(Number::AsInt(15)));
    assert_eq!(value("error", Some("NotFound")), Some(Number::AsInt(5)));
    let point = calls.data_points.iter().find(|p| fetch(&p.attributes)).unwrap();
    assert!(point.start_time_unix_nano > 0 && point.start_time_unix_nano <= point.time_unix_nano);

    check_instruments(req, exponential);
    if !exponential {
        return;
    }
    let Some(Data::ExponentialHistogram(h)) =
        &metric(req, "monitor", "monitor.function.duration").data
    else {
        panic!("duration is not an exponential histogram")
    };
    let success = h
        .data_points
        .iter()
        .find(|p| fetch(&p.attributes) && is_str(&p.attributes, "outcome", "success"))
        .unwrap();
    assert_eq!(success.count, 15);
    assert_eq!(success.scale, 6);
    let buckets: u64 = success.positive.as_ref().map_or(0, |b| b.bucket_counts.iter().sum());
    assert_eq!(buckets + success.zero_count, 15, "every call in a bucket");
    let sum = success.sum.unwrap();
    assert!(sum >= 15.0 * 200e-6, "15 calls of 200 us or more: {sum}");
    assert!(success.min.unwrap() >= 200e-6 && success.max.unwrap() >= success.min.unwrap());
    // The snapshot's own sum, to the nanosecond.
    let snap = monitor_core::registry().snapshot();
    let f = snap.function("otlp_metrics::fetch").unwrap();
    assert!((sum - f.success_times.sum_ns as f64 / 1e9).abs() < 1e-9);
    let Some(Data::ExponentialHistogram(wait)) =
        &metric(req, "otlp_metrics_test", "lock_wait").data
    else {
        panic!()
    };
    assert_eq!(wait.data_points[0].count, 1);
    assert!((wait.data_points[0].sum.unwrap() - 0.003).abs() < 1e-12);
}

fn check_instruments(req: &ExportMetricsServiceRequest, summaries: bool) {
    let scope = "otlp_metrics_test";
    let Some(Data::Sum(queue)) = &metric(req, scope, "queue_depth").data else { panic!() };
    assert!(!queue.is_monotonic);
    assert_eq!(queue.data_points[0].value, Some(Number::AsInt(7)));
    let Some(Data::Sum(sent)) = &metric(req, scope, "mails_sent").data else { panic!() };
    assert!(sent.is_monotonic);
    assert_eq!(sent.data_points[0].value, Some(Number::AsInt(5)));
    if summaries {
        let Some(Data::Summary(sizes)) = &metric(req, scope, "batch_size").data else { panic!() };
        assert_eq!((sizes.data_points[0].count, sizes.data_points[0].sum), (10, 55.0));
        let quantiles = &sizes.data_points[0].quantile_values;
        assert_eq!((quantiles[0].quantile, quantiles[0].value), (0.0, 1.0));
        assert_eq!((quantiles[4].quantile, quantiles[4].value), (1.0, 10.0));
    }
    let Some(Data::Sum(hits)) = &metric(req, scope, "cache_hit").data else { panic!() };
    let hit = |v: &str| {
        hits.data_points.iter().find(|p| is_str(&p.attributes, "value", v)).and_then(|p| p.value)
    };
    assert_eq!((hit("true"), hit("false")), (Some(Number::AsInt(2)), Some(Number::AsInt(1))));
    let Some(Data::Gauge(t)) = &metric(req, scope, "temperature").data else { panic!() };
    assert_eq!(t.data_points[0].value, Some(Number::AsDouble(21.5)));
}

/// Waits for the first request the receiver got.
fn first_post(rx: &Receiver) -> common::Posted {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(p) = rx.take().into_iter().next() {
            return p;
        }
        assert!(Instant::now() < deadline, "nothing was posted");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exporter(url: &str) -> ExportConfig {
    ExportConfig::otlp_metrics(url)
        .unwrap()
        .service_name("checkout")
        .resource_attribute("deployment.environment.name", "test")
        .interval(Duration::from_millis(200))
}

#[test]
fn otlp_metrics_protobuf_is_accepted_by_the_decoder() {
    traffic();
    let rx = Receiver::start(vec![]);
    let e = exporter(&rx.url("/v1/metrics")).start();
    let posted = first_post(&rx);
    let stats = e.shutdown();
    assert_eq!(posted.path, "/v1/metrics");
    assert_eq!(posted.content_type, "application/x-protobuf");
    check(&ExportMetricsServiceRequest::decode(posted.body.as_slice()).unwrap(), true);
    assert!(stats.exported > 0 && stats.given_up == 0, "{stats:?}");
}

#[test]
fn otlp_metrics_json_is_accepted_by_the_decoder() {
    traffic();
    let rx = Receiver::start(vec![]);
    let e = exporter(&rx.url("/v1/metrics")).json().start();
    let posted = first_post(&rx);
    e.shutdown();
    assert_eq!(posted.content_type, "application/json");
    let text = String::from_utf8(posted.body).unwrap();
    let req: ExportMetricsServiceRequest = serde_json::from_str(&text).unwrap();
    check(&req, false);
    // The exponential histogram and the summary by the field names of the protobuf JSON
    // mapping.
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let named = |name: &str| {
        json["resourceMetrics"][0]["scopeMetrics"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["metrics"].as_array().unwrap())
            .find(|m| m["name"] == name)
            .cloned()
            .unwrap()
    };
    let sizes = &named("batch_size")["summary"]["dataPoints"][0];
    assert_eq!((sizes["count"].as_u64(), sizes["sum"].as_f64()), (Some(10), Some(55.0)));
    assert_eq!(sizes["quantileValues"][4]["value"], 10.0);
    let duration = named("monitor.function.duration");
    let h = &duration["exponentialHistogram"];
    assert_eq!(h["aggregationTemporality"], 2);
    let point = h["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            let attrs = p["attributes"].as_array().unwrap();
            let has = |k: &str, v: &str| {
                attrs.iter().any(|a| a["key"] == k && a["value"]["stringValue"] == v)
            };
            has("code.function", "otlp_metrics::fetch") && has("outcome", "success")
        })
        .unwrap();
    assert_eq!((point["count"].as_u64(), point["scale"].as_i64()), (Some(15), Some(6)));
    let buckets: u64 = point["positive"]["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(buckets + point["zeroCount"].as_u64().unwrap(), 15);
    assert!(point["positive"]["offset"].as_i64().is_some());
    assert!(point["startTimeUnixNano"].as_str().unwrap().parse::<u64>().unwrap() > 0);
}

#[test]
fn a_real_collector_decodes_the_exact_counts() {
    traffic();
    let Some(collector) = common::Collector::start("metrics") else { return };
    let url = collector.url("/v1/metrics");
    let e = exporter(&url).interval(Duration::from_secs(3600)).start();
    // The last snapshot, sent by the shutdown.
    let stats = e.shutdown();
    assert!(stats.exported > 0 && stats.given_up + stats.rejected + stats.unsent == 0, "{stats:?}");
    let text = collector.wait_for("lock_wait", Duration::from_secs(30));
    // One metric's block of the printout: from its name to the next metric's.
    let block = |name: &str| -> String {
        let at =
            text.find(&format!("-> Name: {name}\n")).unwrap_or_else(|| panic!("{name}:\n{text}"));
        let rest = &text[at..];
        let end = rest[1..].find("-> Name: ").map_or(rest.len(), |i| i + 1);
        rest[..end].to_string()
    };
    let calls = block("monitor.function.calls");
    assert!(calls.contains("DataType: Sum") && calls.contains("IsMonotonic: true"), "{calls}");
    // The success point of `fetch`: its attributes, then its value.
    let fetch_success = calls
        .split("NumberDataPoints #")
        .find(|p| p.contains("Str(otlp_metrics::fetch)") && p.contains("outcome: Str(success)"))
        .unwrap_or_else(|| panic!("{calls}"));
    assert!(fetch_success.contains("Value: 15\n"), "{fetch_success}");
    let fetch_error = calls
        .split("NumberDataPoints #")
        .find(|p| p.contains("Str(otlp_metrics::fetch)") && p.contains("error.type: Str(NotFound)"))
        .unwrap_or_else(|| panic!("{calls}"));
    assert!(fetch_error.contains("Value: 5\n"), "{fetch_error}");

    let duration = block("monitor.function.duration");
    assert!(duration.contains("DataType: ExponentialHistogram"), "{duration}");
    let success = duration
        .split("ExponentialHistogramDataPoints #")
        .find(|p| p.contains("Str(otlp_metrics::fetch)") && p.contains("outcome: Str(success)"))
        .unwrap_or_else(|| panic!("{duration}"));
    assert!(success.contains("Count: 15\n"), "{success}");
    let sizes = block("batch_size");
    assert!(sizes.contains("Count: 10\n") && sizes.contains("Sum: 55"), "{sizes}");
    let hits = block("cache_hit");
    assert!(hits.contains("Value: 2\n") && hits.contains("Value: 1\n"), "{hits}");
}

#[test]
fn a_silent_collector_never_holds_the_shutdown() {
    traffic();
    // Accepts connections, never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/metrics", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for s in listener.incoming().take(4) {
            open.push(s);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let e = exporter(&url)
        .interval(Duration::from_secs(3600))
        .shutdown_timeout(Duration::from_millis(300))
        .start();
    let began = Instant::now();
    let stats = e.shutdown();
    // A bound on the wait, far above the timeout: the shutdown did not wait for the collector.
    assert!(began.elapsed() < Duration::from_secs(10), "{:?}", began.elapsed());
    assert_eq!(stats.exported, 0);
    assert!(stats.given_up + stats.unsent > 0, "the last snapshot is counted: {stats:?}");
    drop(held);
}

#[monitored(name = "otlp_metrics::delta_step")]
fn delta_step() -> Result<(), std::io::Error> {
    Ok(())
}

/// A delta exporter: every export holds the change since the one before, back to back in time,
/// and the changes add up to the exact totals.
#[test]
fn delta_temporality_adds_up_to_the_totals() {
    for _ in 0..3 {
        delta_step().unwrap();
    }
    let rx = Receiver::start(vec![]);
    let e = exporter(&rx.url("/v1/metrics")).delta().start();
    let first = first_post(&rx);
    for _ in 0..4 {
        delta_step().unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    e.shutdown();
    let posts: Vec<_> = std::iter::once(first).chain(rx.take()).collect();
    assert!(posts.len() >= 2, "at least the first and the last export");
    let (mut calls, mut timed) = (0, 0);
    let mut last_end = None;
    for p in &posts {
        let req = ExportMetricsServiceRequest::decode(p.body.as_slice()).unwrap();
        let step = |a: &[KeyValue]| is_str(a, "code.function", "otlp_metrics::delta_step");
        let Some(Data::Sum(sum)) = &metric(&req, "monitor", "monitor.function.calls").data else {
            panic!()
        };
        assert_eq!(sum.aggregation_temporality, 1, "delta");
        let point = sum.data_points.iter().find(|p| step(&p.attributes)).unwrap();
        if let Some(end) = last_end {
            assert_eq!(point.start_time_unix_nano, end, "each delta starts where the last ended");
        }
        last_end = Some(point.time_unix_nano);
        let Some(Number::AsInt(n)) = point.value else { panic!() };
        calls += n;
        let Some(Data::ExponentialHistogram(h)) =
            &metric(&req, "monitor", "monitor.function.duration").data
        else {
            panic!()
        };
        assert_eq!(h.aggregation_temporality, 1);
        if let Some(d) = h.data_points.iter().find(|p| step(&p.attributes)) {
            let buckets: u64 = d.positive.as_ref().map_or(0, |b| b.bucket_counts.iter().sum());
            assert_eq!(buckets + d.zero_count, d.count);
            assert!(d.min.is_none() && d.max.is_none(), "a delta's extremes are unknown");
            timed += d.count;
        }
        // What goes up and down stays cumulative.
        let Some(Data::Sum(in_flight)) =
            &metric(&req, "monitor", "monitor.function.in_flight").data
        else {
            panic!()
        };
        assert_eq!(in_flight.aggregation_temporality, 2);
    }
    assert_eq!((calls, timed), (7, 7));
}
