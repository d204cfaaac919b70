//! OTLP logs against real decoders: `log` records through the exporter's logger, one logged
//! inside a monitored call and one outside, decoded by `opentelemetry-proto` (protobuf and
//! JSON) from a loopback receiver, and by `rotel-agent`, a real OTLP collector, which prints
//! what it got. Records inside the call carry its trace and span ids.
//!
//! The first test installs the process's logger. Its records go to three exporters, each logger
//! forwarding to the next. Ports: the receivers and the collector listen on free loopback
//! ports; waits are bounded by deadlines, never speed.

mod common;

use std::time::Duration;

use monitor_core::{monitored, SpanId, TraceId};
use monitor_http::export::ExportConfig;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;

use common::Receiver;

#[derive(Debug)]
struct Declined;

/// Logs a warning inside the call; returns the call's ids.
#[monitored(name = "otlp_logs::charge")]
fn charge(order: u32) -> Result<(TraceId, SpanId), Declined> {
    log::warn!(order, retry = true; "payment declined for order {order}");
    let span = monitor_core::Span::current();
    span.trace_id().zip(span.span_id()).ok_or(Declined)
}

fn records(req: &ExportLogsServiceRequest) -> Vec<(&str, &LogRecord)> {
    req.resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .flat_map(|s| {
            let scope = s.scope.as_ref().map_or("", |s| s.name.as_str());
            s.log_records.iter().map(move |r| (scope, r))
        })
        .collect()
}

fn body(r: &LogRecord) -> &str {
    match r.body.as_ref().and_then(|b| b.value.as_ref()) {
        Some(Any::StringValue(s)) => s,
        _ => "",
    }
}

fn check(req: &ExportLogsServiceRequest, ids: (TraceId, SpanId)) {
    let resource = req.resource_logs[0].resource.as_ref().unwrap();
    assert!(resource.attributes.iter().any(|kv| kv.key == "service.name"));
    let all = records(req);
    let (scope, warn) = all.iter().find(|(_, r)| body(r).contains("declined")).unwrap();
    assert_eq!(*scope, "test_otlp_logs");
    assert_eq!(body(warn), "payment declined for order 7");
    assert_eq!((warn.severity_number, warn.severity_text.as_str()), (13, "WARN"));
    assert_eq!(warn.trace_id, ids.0.to_u128().to_be_bytes());
    assert_eq!(warn.span_id, ids.1.to_u64().to_be_bytes());
    let attr = |key: &str| {
        warn.attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.value)
    };
    assert_eq!(attr("order"), Some(Any::IntValue(7)));
    assert_eq!(attr("retry"), Some(Any::BoolValue(true)));
    assert!(
        matches!(attr("code.file.path"), Some(Any::StringValue(f)) if f.ends_with("test_otlp_logs.rs"))
    );
    assert!(warn.time_unix_nano > 0);
    let (_, info) = all.iter().find(|(_, r)| body(r) == "outside any call").unwrap();
    assert_eq!(info.severity_number, 9);
    assert!(info.trace_id.is_empty(), "no call, no trace id");
    assert!(!all.iter().any(|(_, r)| body(r) == "too detailed"), "below the level");
}

#[test]
fn log_records_reach_the_collector_with_their_trace_ids() {
    let protobuf = Receiver::start(vec![]);
    let json = Receiver::start(vec![]);
    let collector = common::Collector::start("logs");
    let exporters: Vec<_> = [Some(protobuf.url("/v1/logs")), Some(json.url("/v1/logs"))]
        .into_iter()
        .chain([collector.as_ref().map(|c| c.url("/v1/logs"))])
        .flatten()
        .enumerate()
        .map(|(i, url)| {
            let c = ExportConfig::otlp_logs(&url).unwrap().service_name("checkout");
            if i == 1 { c.json() } else { c }.start()
        })
        .collect();
    // The first exporter's logger forwards to the second's, which forwards to the third's.
    let mut logger = None;
    for e in exporters.iter().rev() {
        let l = e.logger().unwrap();
        logger = Some(match logger {
            None => l,
            Some(next) => l.forward_to(next),
        });
    }
    logger.unwrap().install().unwrap();

    let ids = charge(7).unwrap();
    log::info!("outside any call");
    log::debug!("too detailed");
    for e in exporters {
        let stats = e.shutdown();
        assert_eq!((stats.exported, stats.dropped, stats.unsent), (2, 0, 0), "{stats:?}");
    }

    let posted = protobuf.take();
    let req = ExportLogsServiceRequest::decode(posted[0].body.as_slice()).unwrap();
    check(&req, ids);
    let posted = json.take();
    assert_eq!(posted[0].content_type, "application/json");
    let req: ExportLogsServiceRequest = serde_json::from_slice(&posted[0].body).unwrap();
    check(&req, ids);

    let Some(collector) = collector else { return };
    let text = collector.wait_for("outside any call", Duration::from_secs(30));
    let at = text.find("payment declined for order 7").unwrap_or_else(|| panic!("{text}"));
    let record = &text[text[..at].rfind("LogRecord #").unwrap_or(0)..];
    let record = &record[..record[1..].find("LogRecord #").map_or(record.len(), |i| i + 1)];
    assert!(record.contains("SeverityNumber: SEVERITY_NUMBER_WARN(13)"), "{record}");
    assert!(record.contains(&format!("Trace ID       : {}", ids.0)), "{record}");
    assert!(record.contains(&format!("Span ID        : {}", ids.1)), "{record}");
    assert!(record.contains("order: Int(7)"), "{record}");
}

/// A collector that never answers: logging goes on at once, the queue's overflow is dropped
/// and counted, the shutdown keeps to its deadline, and every record is accounted for.
#[test]
fn a_silent_collector_never_holds_the_logger() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1/logs", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let open: Vec<_> = listener.incoming().take(8).collect();
        std::thread::sleep(Duration::from_secs(60));
        drop(open);
    });
    let e = ExportConfig::otlp_logs(&url)
        .unwrap()
        .queue(4)
        .shutdown_timeout(Duration::from_millis(300))
        .start();
    // Not installed: this test's records go to this logger alone.
    let logger = e.logger().unwrap();
    let began = std::time::Instant::now();
    for i in 0..2000 {
        let args = format_args!("record {i}");
        let record = log::Record::builder().args(args).level(log::Level::Info).target("t").build();
        log::Log::log(&logger, &record);
    }
    let logged = began.elapsed();
    let stats = e.shutdown();
    // Bounds far above the work, not speed: nothing waited for the collector.
    assert!(logged < Duration::from_secs(10) && began.elapsed() < Duration::from_secs(20));
    assert!(stats.dropped >= 1000, "{stats:?}");
    assert_eq!(stats.exported, 0);
    let accounted = stats.dropped + stats.given_up + stats.rejected + stats.unsent;
    assert_eq!(accounted, 2000, "{stats:?}");
}
