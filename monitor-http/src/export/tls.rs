//! TLS for `https://` endpoints (feature `tls`): rustls with the ring provider, the Mozilla
//! roots of webpki-roots, and the certificates the user trusts besides.

use std::io;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::ExportError;

/// The certificates of a PEM text (one or more `CERTIFICATE` blocks).
pub(crate) fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ExportError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ExportError::BadCertificate(e.to_string()))?;
    if certs.is_empty() {
        return Err(ExportError::BadCertificate("no CERTIFICATE block in the PEM text".into()));
    }
    // Each must be one a root store takes.
    let mut store = rustls::RootCertStore::empty();
    for c in &certs {
        store.add(c.clone()).map_err(|e| ExportError::BadCertificate(e.to_string()))?;
    }
    Ok(certs)
}

/// A client configuration trusting the Mozilla roots and `extra`, offering `alpn`.
pub(crate) fn client_config(
    extra: &[CertificateDer<'static>],
    alpn: &[&[u8]],
) -> Option<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for c in extra {
        roots.add(c.clone()).ok()?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Some(Arc::new(config))
}

/// The name a server's certificate must have: its host (an IP address too).
pub(crate) fn server_name(host: &str) -> io::Result<ServerName<'static>> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}
