//! OTLP/gRPC (feature `grpc`): unary `Export` calls over HTTP/2 on plain TCP, the collector's
//! default (port 4317). The exporter's thread drives one HTTP/2 connection, kept between
//! requests, on a runtime of its own; the program's runtime, if it has one, is not touched.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::client::{Answer, Endpoint};

/// One HTTP/2 connection to a collector, made again when it is lost.
pub(crate) struct GrpcConnection {
    runtime: Option<tokio::runtime::Runtime>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// How `https://` connections are made (feature `tls`), offering h2.
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for GrpcConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcConnection").field("open", &self.sender.is_some()).finish()
    }
}

/// gRPC status codes after which the OTLP specification retries: CANCELLED, DEADLINE_EXCEEDED,
/// RESOURCE_EXHAUSTED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS.
const RETRYABLE: [u32; 7] = [1, 4, 8, 10, 11, 14, 15];

fn err(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(what.to_string())
}

impl GrpcConnection {
    pub(crate) fn new(
        #[cfg(feature = "tls")] tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> GrpcConnection {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok();
        GrpcConnection {
            runtime,
            sender: None,
            #[cfg(feature = "tls")]
            tls,
        }
    }

    /// Calls `method` (e.g. `/opentelemetry.proto.collector.trace.v1.TraceService/Export`)
    /// with the protobuf `message` (gzip-compressed when `gzip`). The answer's status is the
    /// HTTP one the gRPC status means for a retry: 200 for OK, 503 for a status the OTLP
    /// specification retries, 400 for the others; its body is the response message.
    pub(crate) fn post(
        &mut self,
        endpoint: &Endpoint,
        method: &str,
        gzip: bool,
        headers: &[(String, String)],
        message: &[u8],
        timeout: Duration,
    ) -> io::Result<Answer> {
        let Some(runtime) = &self.runtime else {
            return Err(err("no runtime for the gRPC exporter"));
        };
        let mut frame = Vec::with_capacity(message.len() + 5);
        frame.push(u8::from(gzip));
        frame.extend_from_slice(&u32::try_from(message.len()).map_err(err)?.to_be_bytes());
        frame.extend_from_slice(message);
        let authority = format!("{}:{}", endpoint.host(), endpoint.port());
        let scheme = if endpoint.is_tls() { "https" } else { "http" };
        let mut request = http::Request::post(format!("{scheme}://{authority}{method}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .header("grpc-timeout", format!("{}m", timeout.as_millis().max(1)))
            .header("user-agent", concat!("monitor/", env!("CARGO_PKG_VERSION")));
        if gzip {
            request = request.header("grpc-encoding", "gzip");
        }
        for (k, v) in headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let request = request.body(Full::new(Bytes::from(frame))).map_err(err)?;
        let sender = &mut self.sender;
        let host = endpoint.host().trim_start_matches('[').trim_end_matches(']').to_string();
        let port = endpoint.port();
        #[cfg(feature = "tls")]
        let tls = match (endpoint.is_tls(), &self.tls) {
            (false, _) => None,
            (true, Some(config)) => Some(tokio_rustls::TlsConnector::from(config.clone())),
            (true, None) => return Err(err("no TLS configuration")),
        };
        let exchange = async {
            let kept = match sender.take() {
                Some(mut s) => s.ready().await.is_ok().then_some(s),
                None => None,
            };
            let mut s = match kept {
                Some(s) => s,
                None => {
                    let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                    tcp.set_nodelay(true)?;
                    #[cfg(feature = "tls")]
                    if let Some(connector) = &tls {
                        let name = super::tls::server_name(&host)?;
                        handshake(connector.connect(name, tcp).await?).await?
                    } else {
                        handshake(tcp).await?
                    }
                    #[cfg(not(feature = "tls"))]
                    handshake(tcp).await?
                }
            };
            let response = s.send_request(request).await.map_err(err)?;
            *sender = Some(s);
            let (parts, body) = response.into_parts();
            let collected = body.collect().await.map_err(err)?;
            let trailers = collected.trailers().cloned();
            let body = collected.to_bytes();
            let status = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status"))
                .or_else(|| parts.headers.get("grpc-status"))
                .and_then(|v| v.to_str().ok()?.parse::<u32>().ok());
            Ok::<_, io::Error>((parts.status, status, body))
        };
        let (http_status, grpc_status, body) = runtime
            .block_on(async { tokio::time::timeout(timeout, exchange).await })
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "export request timed out"))?
            .inspect_err(|_| self.sender = None)?;
        let status = match (http_status.as_u16(), grpc_status) {
            (200, Some(0)) => 200,
            (_, Some(code)) if RETRYABLE.contains(&code) => 503,
            (_, Some(_)) => 400,
            // No gRPC status: what the HTTP status says.
            (200, None) => 503,
            (status, None) => status,
        };
        // The response message, without its 5-byte frame prefix.
        let message = body.get(5..).map(<[u8]>::to_vec).unwrap_or_default();
        Ok(Answer { status, retry_after: None, body: message })
    }
}

/// An HTTP/2 connection over `io`, its driving task spawned.
async fn handshake<T>(io: T) -> io::Result<SendRequest<Full<Bytes>>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (s, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(err)?;
    tokio::spawn(conn);
    Ok(s)
}

/// The `Export` method of an OTLP signal's service.
pub(crate) fn method(signal: &str) -> &'static str {
    match signal {
        "metrics" => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        "logs" => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        _ => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    }
}
