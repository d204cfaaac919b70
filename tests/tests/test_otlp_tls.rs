//! `https://` collectors: a loopback TLS server with a self-signed certificate made here. An
//! exporter told to trust it delivers over TLS, from its code and from
//! `OTEL_EXPORTER_OTLP_CERTIFICATE`; one that does not trust it refuses the server, gives the
//! batch up and says so, and never blocks.
//!
//! Ports: free loopback ports; waits are bounded by deadlines, never speed.

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
