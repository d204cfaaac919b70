//! `https://` collectors: a loopback TLS server with a self-signed certificate made here. An
//! exporter told to trust it delivers over TLS, from its code and from
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`; one that does not trust it refuses the server, gives the
//! batch up and says so, and never blocks.
//!
//! gRPC over TLS goes through a TLS front made here (h2 by ALPN) to `rotel-agent`, a real
//! collector, which decodes what arrives.
//!
//! The tests take turns: the sampler is the process's. Ports: free loopback ports; waits are bounded by deadlines, never speed.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use monitor_core::monitored;
use monitor_core::trace;
use monitor_http::export::{from_vars, ExportConfig};

use common::Posted;

/// A TLS receiver: its URL's port, the certificate's PEM, and what it was sent.
struct TlsReceiver {
    port: u16,
    pem: String,
    posted: Arc<Mutex<Vec<Posted>>>,
}

impl TlsReceiver {
    fn start() -> TlsReceiver {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let pem = cert.cert.pem();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let posted = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&posted);
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let (config, log) = (Arc::clone(&config), Arc::clone(&log));
                std::thread::spawn(move || {
                    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    while let Some(p) = common::read_request_from(&mut tls) {
                        log.lock().unwrap().push(p);
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
                        if tls.write_all(ok).and_then(|()| tls.flush()).is_err() {
                            return;
                        }
                    }
                });
            }
        });
        TlsReceiver { port, pem, posted }
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

#[monitored(name = "otlp_tls::sign")]
fn sign(n: u32) -> u32 {
    n
}

#[test]
fn exporters_speak_tls_to_collectors_they_trust() {
    let _turn = common::turn();
    let rx = TlsReceiver::start();
    let _ = trace::set_sample_ratio(1.0);
    let trusted = ExportConfig::otlp(&rx.url("/v1/traces"))
        .unwrap()
        .tls_root_certificates(rx.pem.as_bytes())
        .unwrap()
        .start();
    let untrusted = ExportConfig::otlp(&rx.url("/v1/traces")).unwrap().max_attempts(1).start();
    sign(1);
    let _ = trace::set_sample_ratio(0.0);
    let stats = trusted.shutdown();
    assert_eq!((stats.exported, stats.given_up), (1, 0), "{stats:?}");
    let stats = untrusted.shutdown();
    assert_eq!((stats.exported, stats.given_up), (0, 1), "an unknown issuer is refused: {stats:?}");
    let posted = rx.posted.lock().unwrap().drain(..).collect::<Vec<_>>();
    assert_eq!(posted.len(), 1, "only the trusting exporter got through");
    assert_eq!(posted[0].path, "/v1/traces");

    // From the environment: the certificate from a file.
    let dir = std::env::temp_dir().join(format!("monitor-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("collector.pem");
    std::fs::write(&file, &rx.pem).unwrap();
    let endpoint = format!("https://localhost:{}", rx.port);
    let vars = |name: &str| -> Option<String> {
        Some(match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => endpoint.clone(),
            "OTEL_EXPORTER_OTLP_CERTIFICATE" => file.to_string_lossy().into_owned(),
            "OTEL_TRACES_EXPORTER" | "OTEL_LOGS_EXPORTER" => "none".into(),
            _ => return None,
        })
    };
    let exporters = from_vars(vars).unwrap();
    for (_, stats) in exporters.shutdown() {
        assert!(stats.exported > 0 && stats.given_up == 0, "{stats:?}");
    }
    assert!(rx.posted.lock().unwrap().iter().any(|p| p.path == "/v1/metrics"));
    let bad = |name: &str| -> Option<String> {
        Some(match name {
            "OTEL_EXPORTER_OTLP_ENDPOINT" => "https://localhost:1".into(),
            "OTEL_EXPORTER_OTLP_CERTIFICATE" => "/no/such/file.pem".into(),
            _ => return None,
        })
    };
    let err = from_vars(bad).unwrap_err().to_string();
    assert!(
        err.starts_with("OTEL_EXPORTER_OTLP_CERTIFICATE=\"/no/such/file.pem\": cannot read"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A TLS front for a plain TCP port: offers h2 by ALPN, terminates TLS with a self-signed
/// certificate made here and relays the bytes both ways, as a TLS-terminating load balancer
/// in front of a collector does. Returns its port and the certificate's PEM.
fn tls_front(backend: u16) -> (u16, String) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = cert.cert.pem();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let config = Arc::new(config);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let config = Arc::clone(&config);
            std::thread::spawn(move || relay(tcp, config, backend));
        }
    });
    (port, pem)
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

/// One connection of [`tls_front`]: TLS records in, plain bytes to the backend and back.
fn relay(mut tcp: std::net::TcpStream, config: Arc<rustls::ServerConfig>, backend: u16) {
    use std::io::Read;
    let Ok(mut plain) = std::net::TcpStream::connect(("127.0.0.1", backend)) else { return };
    let mut conn = rustls::ServerConnection::new(config).unwrap();
    tcp.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    plain.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
    let idle_until = || std::time::Instant::now() + Duration::from_secs(30);
    let mut deadline = idle_until();
    let mut buf = vec![0u8; 64 * 1024];
    while std::time::Instant::now() < deadline {
        // From the client: TLS records, decrypted and passed on.
        match conn.read_tls(&mut tcp) {
            Ok(0) => return,
            Ok(_) => {
                if conn.process_new_packets().is_err() {
                    return;
                }
                deadline = idle_until();
            }
            Err(e) if would_block(&e) => {}
            Err(_) => return,
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if plain.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        // From the backend: encrypted and sent back.
        match plain.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if conn.writer().write_all(&buf[..n]).is_err() {
                    return;
                }
                deadline = idle_until();
            }
            Err(e) if would_block(&e) => {}
            Err(_) => return,
        }
        while conn.wants_write() {
            if conn.write_tls(&mut tcp).is_err() {
                return;
            }
        }
    }
}

#[monitored(name = "otlp_tls::seal")]
fn seal(n: u32) -> u32 {
    n
}

/// OTLP/gRPC over TLS into a real collector: h2 negotiated by ALPN through a TLS front that
/// the exporter trusts, `rotel-agent` behind it decoding the spans and the metrics.
#[test]
fn grpc_over_tls_reaches_a_real_collector() {
    let _turn = common::turn();
    let Some(collector) =
        common::Collector::start_with(&["--debug-log", "traces", "--debug-log", "metrics"])
    else {
        return;
    };
    let (port, pem) = tls_front(collector.grpc_port());
    let endpoint = format!("https://localhost:{port}");
    let spans = ExportConfig::otlp(&endpoint)
        .unwrap()
        .grpc()
        .service_name("sealer")
        .tls_root_certificates(pem.as_bytes())
        .unwrap()
        .start();
    let metrics = ExportConfig::otlp_metrics(&endpoint)
        .unwrap()
        .grpc()
        .tls_root_certificates(pem.as_bytes())
        .unwrap()
        .interval(Duration::from_secs(3600))
        .start();
    let _ = trace::set_sample_ratio(1.0);
    for i in 0..3 {
        seal(i);
    }
    let _ = trace::set_sample_ratio(0.0);
    for (signal, stats) in [("traces", spans.shutdown()), ("metrics", metrics.shutdown())] {
        assert!(stats.exported > 0, "{signal}: {stats:?}");
        assert_eq!(
            (stats.given_up, stats.rejected, stats.unsent),
            (0, 0, 0),
            "{signal}: {stats:?}"
        );
    }
    let text = collector.wait_for("otlp_tls::seal", Duration::from_secs(30));
    let text = if text.contains("monitor.function.calls") {
        text
    } else {
        collector.wait_for("monitor.function.calls", Duration::from_secs(30))
    };
    assert_eq!(text.matches("Name           : otlp_tls::seal\n").count(), 3, "{text}");
    assert!(text.contains("service.name: Str(sealer)"), "{text}");
}
