//! OTLP/gRPC into a real collector: `rotel-agent`'s gRPC receiver takes traces, metrics and
//! logs over HTTP/2 from the exporters (set up from the `OTEL_*` variables with
//! `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`) and prints what it decoded; gzip too. A gRPC endpoint
//! where nothing listens is given up, and the shutdown keeps to its deadline.
//!
//! One test function: the sampler and the logger are the process's. Ports: free loopback
//! ports; waits are bounded by deadlines, never speed.

mod common;

use std::time::{Duration, Instant};

use monitor_core::monitored;
use monitor_http::export::{from_vars, ExportConfig};

#[monitored(name = "otlp_grpc::pack")]
fn pack(n: u32) -> Result<u32, std::io::Error> {
    log::warn!(n; "packing by hand");
    Ok(n)
}

#[test]
fn traces_metrics_and_logs_over_grpc() {
    let collector = common::Collector::start_with(&[
        "--debug-log",
        "traces",
        "--debug-log",
        "metrics",
        "--debug-log",
        "logs",
    ]);
    let Some(collector) = collector else { return };
    let endpoint = format!("http://127.0.0.1:{}", collector.grpc_port());
    let vars = |name: &str| -> Option<String> {
        Some(match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => endpoint.clone(),
            "OTEL_EXPORTER_OTLP_PROTOCOL" => "grpc".into(),
            "OTEL_EXPORTER_OTLP_COMPRESSION" => "gzip".into(),
            "OTEL_SERVICE_NAME" => "packer".into(),
            "OTEL_TRACES_SAMPLER" => "always_on".into(),
            _ => return None,
        })
    };
    let exporters = from_vars(vars).unwrap();
    exporters.logs.as_ref().unwrap().logger().unwrap().install().unwrap();
    for i in 0..3 {
        pack(i).unwrap();
    }
    for (signal, stats) in exporters.shutdown() {
        assert!(stats.exported > 0, "{signal}: {stats:?}");
        assert_eq!(
            (stats.given_up, stats.rejected, stats.unsent),
            (0, 0, 0),
            "{signal}: {stats:?}"
        );
    }
    let text = collector.wait_for("packing by hand", Duration::from_secs(30));
    let spans = text.matches("Name           : otlp_grpc::pack\n").count();
    assert_eq!(spans, 3, "{text}");
    assert!(text.contains("monitor.function.calls"), "{text}");
    assert!(text.contains("service.name: Str(packer)"), "{text}");

    // Nothing listens: given up within the shutdown's deadline.
    let port = common::free_port();
    let e = ExportConfig::otlp_metrics(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .grpc()
        .max_attempts(2)
        .backoff(Duration::from_millis(10), Duration::from_millis(10))
        .shutdown_timeout(Duration::from_secs(2))
        .start();
    let began = Instant::now();
    let stats = e.shutdown();
    assert!(began.elapsed() < Duration::from_secs(10));
    assert_eq!(stats.exported, 0);
    assert!(stats.given_up + stats.unsent > 0, "{stats:?}");
}
