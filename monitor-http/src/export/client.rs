//! A minimal blocking HTTP/1.1 client for the exporters' POSTs: one request per connection,
//! with a deadline on connecting, writing and reading.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use super::ExportError;

/// A parsed `http://host[:port]/path` endpoint.
///
/// ```
/// let e = monitor_http::export::Endpoint::parse("http://collector:4318/v1/traces").unwrap();
/// assert_eq!(e.to_string(), "http://collector:4318/v1/traces");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
    path: String,
}

impl Endpoint {
    /// Parses an endpoint URL (`http` only; the port defaults to 80, the path to `/`).
    ///
    /// ```
    /// use monitor_http::export::Endpoint;
    /// assert!(Endpoint::parse("http://[::1]:9411/api/v2/spans").is_ok());
    /// assert!(Endpoint::parse("ftp://x").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Endpoint, ExportError> {
        let bad = || ExportError::BadUrl(url.to_string());
        if url.starts_with("https://") {
            return Err(ExportError::Https(url.to_string()));
        }
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') || path.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => 80,
                None => return Err(bad()),
            };
            (format!("[{h}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Endpoint { host, port, path: path.to_string() })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

/// POSTs `body` of `content` (its type, and its encoding if compressed); returns the response
/// status.
pub(crate) fn post(
    endpoint: &Endpoint,
    (content_type, encoding): (&str, Option<&str>),
    headers: &[(String, String)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<u16> {
    let deadline = Instant::now() + timeout;
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        if d.is_zero() {
            Err(io::Error::new(io::ErrorKind::TimedOut, "export request timed out"))
        } else {
            Ok(d)
        }
    };
    let host = endpoint.host.trim_start_matches('[').trim_end_matches(']');
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the endpoint's host did not resolve");
    let mut stream = None;
    for addr in (host, endpoint.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, left()?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream.set_nodelay(true)?;
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: monitor/{}\r\n",
        endpoint.path,
        endpoint.host,
        endpoint.port,
        body.len(),
        env!("CARGO_PKG_VERSION")
    );
    if let Some(encoding) = encoding {
        head.push_str(&format!("Content-Encoding: {encoding}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.set_write_timeout(Some(left()?))?;
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    // The status line is all we need; read until it is complete.
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        stream.set_read_timeout(Some(left()?))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 || buf.len() > 8192 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    line.split(' ')
        .nth(1)
        .and_then(|s| s.trim().parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "no HTTP status line in the answer")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://localhost:4318/v1/traces").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.path.as_str()), ("localhost", 4318, "/v1/traces"));
        let e = Endpoint::parse("http://h").unwrap();
        assert_eq!((e.port, e.path.as_str()), (80, "/"));
        let e = Endpoint::parse("http://[::1]:9411/x").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("[::1]", 9411));
        for bad in [
            "",
            "http://",
            "http://:80/",
            "http://h:0/",
            "http://h:x/",
            "http://u@h/",
            "h:80",
            "http://[::1/",
            "http://h/a b",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(Endpoint::parse("https://h/"), Err(ExportError::Https(_))));
    }
}
