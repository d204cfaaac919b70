//! Exporters from OpenTelemetry's environment variables: one call starts traces, metrics and
//! logs with the endpoint, protocol, headers, compression, service name, resource attributes,
//! interval and sampler the variables give; a real collector (`rotel-agent`) takes gzip
//! bodies; bad values are errors that name their variable.
//!
//! One test function: the sampler and the logger are the process's. Ports: the receiver and
//! the collector listen on free loopback ports; waits are bounded by deadlines, never speed.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use monitor_core::monitored;
use monitor_http::export::from_vars;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::resource::v1::Resource;

use common::{Posted, Receiver};

#[monitored(name = "otlp_env::order")]
fn order(n: u32) -> u32 {
    log::info!(n; "ordered");
    n
}

fn gunzip(p: &Posted) -> Vec<u8> {
    assert_eq!(p.header("content-encoding"), Some("gzip"), "{}", p.path);
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(p.body.as_slice()).read_to_end(&mut out).unwrap();
    out
}

fn check_resource(r: &Resource) {
    let attr =
        |k: &str| r.attributes.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone()?.value);
    assert_eq!(attr("service.name"), Some(Any::StringValue("shop".into())));
    assert_eq!(attr("deployment.environment.name"), Some(Any::StringValue("ci test".into())));
}

/// The posts of each path, once every path has one (30 s at most).
fn posts(rx: &Receiver, paths: &[&str]) -> Vec<Posted> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut all: Vec<Posted> = Vec::new();
    loop {
        all.extend(rx.take());
        if paths.iter().all(|p| all.iter().any(|x| x.path == *p)) {
            return all;
        }
        assert!(Instant::now() < deadline, "not every signal arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn one_call_starts_every_exporter_the_environment_asks_for() {
    let rx = Receiver::start(vec![]);
    let endpoint = format!("http://{}", rx.addr);
    let vars = |name: &str| -> Option<String> {
        Some(match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => endpoint.clone(),
            "OTEL_EXPORTER_OTLP_HEADERS" => "x-api-key=abc%20123,x-team=shop".into(),
            "OTEL_EXPORTER_OTLP_COMPRESSION" => "gzip".into(),
            "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL" => "http/json".into(),
            "OTEL_SERVICE_NAME" => "shop".into(),
            "OTEL_RESOURCE_ATTRIBUTES" => "deployment.environment.name=ci%20test".into(),
            "OTEL_METRIC_EXPORT_INTERVAL" => "100".into(),
            "OTEL_TRACES_SAMPLER" => "parentbased_always_on".into(),
            _ => return None,
        })
    };
    let exporters = from_vars(vars).unwrap();
    assert_eq!(exporters.to_string(), "OTLP exporters of traces, metrics, logs");
    exporters.logs.as_ref().unwrap().logger().unwrap().install().unwrap();
    assert_eq!(order(3), 3);

    let all = posts(&rx, &["/v1/metrics"]);
    for (name, stats) in exporters.shutdown() {
        assert_eq!((stats.given_up, stats.rejected, stats.dropped), (0, 0, 0), "{name}");
    }
    let all: Vec<Posted> = all.into_iter().chain(rx.take()).collect();
    for p in &all {
        assert_eq!(p.header("x-api-key"), Some("abc 123"));
        assert_eq!(p.header("x-team"), Some("shop"));
    }
    let body = |path: &str| gunzip(all.iter().find(|p| p.path == path).unwrap());
    use prost::Message;
    let traces = ExportTraceServiceRequest::decode(body("/v1/traces").as_slice()).unwrap();
    check_resource(traces.resource_spans[0].resource.as_ref().unwrap());
    let span = &traces.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "otlp_env::order");
    let metrics = ExportMetricsServiceRequest::decode(body("/v1/metrics").as_slice()).unwrap();
    check_resource(metrics.resource_metrics[0].resource.as_ref().unwrap());
    let logs_post = all.iter().find(|p| p.path == "/v1/logs").unwrap();
    assert_eq!(logs_post.content_type, "application/json");
    let logs: ExportLogsServiceRequest = serde_json::from_slice(&gunzip(logs_post)).unwrap();
    let record = &logs.resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.trace_id, span.trace_id, "the log record is in the span's trace");

    // A real collector takes the gzip bodies.
    let Some(collector) = common::Collector::start("metrics") else { return };
    let url = collector.url("");
    let vars = |name: &str| -> Option<String> {
        Some(match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => url.clone(),
            "OTEL_EXPORTER_OTLP_COMPRESSION" => "gzip".into(),
            "OTEL_TRACES_EXPORTER" | "OTEL_LOGS_EXPORTER" => "none".into(),
            _ => return None,
        })
    };
    let exporters = from_vars(vars).unwrap();
    assert_eq!(exporters.to_string(), "OTLP exporters of metrics");
    for (_, stats) in exporters.shutdown() {
        assert!(stats.exported > 0 && stats.given_up + stats.rejected == 0, "{stats:?}");
    }
    let text = collector.wait_for("otlp_env::order", Duration::from_secs(30));
    assert!(text.contains("monitor.function.calls"), "{text}");
}
