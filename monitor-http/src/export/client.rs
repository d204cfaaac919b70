//! A minimal blocking HTTP/1.1 client for the exporters' POSTs: one connection kept alive
//! between requests, a deadline on connecting, writing and reading, and the answer's status,
//! `Retry-After` and (small) body.

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
    /// `https://` (feature `tls`).
    tls: bool,
}

impl Endpoint {
    /// Parses an endpoint URL: `http`, or `https` with the feature `tls`; the port defaults
    /// to 80 (443), the path to `/`.
    ///
    /// ```
    /// use monitor_http::export::Endpoint;
    /// assert!(Endpoint::parse("http://[::1]:9411/api/v2/spans").is_ok());
    /// assert!(Endpoint::parse("ftp://x").is_err());
    /// ```
    pub fn parse(url: &str) -> Result<Endpoint, ExportError> {
        let bad = || ExportError::BadUrl(url.to_string());
        let (rest, tls) = match url.strip_prefix("https://") {
            Some(_) if !cfg!(feature = "tls") => return Err(ExportError::Https(url.to_string())),
            Some(rest) => (rest, true),
            None => (url.strip_prefix("http://").ok_or_else(bad)?, false),
        };
        let default_port = if tls { 443 } else { 80 };
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
                None if after.is_empty() => default_port,
                None => return Err(bad()),
            };
            (format!("[{h}]"), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad())?),
                None => (authority.to_string(), default_port),
            }
        };
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Endpoint { host, port, path: path.to_string(), tls })
    }
}

impl Endpoint {
    /// The host, as written (an IPv6 address in brackets).
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Whether it is an `https://` endpoint.
    #[cfg_attr(not(feature = "grpc"), allow(dead_code))]
    pub(crate) fn is_tls(&self) -> bool {
        self.tls
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
    }
}

/// What a collector answered.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// `Retry-After`, in seconds.
    pub(crate) retry_after: Option<Duration>,
    /// The body (at most [`MAX_BODY`] bytes; a longer one is cut).
    pub(crate) body: Vec<u8>,
}

/// The most of an answer's body that is read: a partial-success message is small.
const MAX_BODY: usize = 64 * 1024;
/// The most an answer's head may take.
const MAX_HEAD: usize = 16 * 1024;

/// One connection to an endpoint, kept open between requests (HTTP/1.1 keep-alive) and made
/// again when the collector closed it.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: Option<Stream>,
    /// Connections opened so far.
    pub(crate) opened: u64,
    /// How `https://` connections are made (feature `tls`).
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// A connection's stream: plain TCP, or TLS over it.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            #[cfg(feature = "tls")]
            Stream::Tls(s) => &s.sock,
        }
    }

    fn set_read_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(d)
    }

    fn set_write_timeout(&self, d: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(d)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Connection {
    /// A connection made on first use; `https://` ones with `tls` (feature `tls`).
    pub(crate) fn new(
        #[cfg(feature = "tls")] tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    ) -> Connection {
        Connection {
            stream: None,
            opened: 0,
            #[cfg(feature = "tls")]
            tls,
        }
    }

    /// A new stream to `endpoint`: TCP, and TLS over it for `https://`.
    fn open(&self, endpoint: &Endpoint, deadline: Instant) -> io::Result<Stream> {
        let tcp = connect(endpoint, deadline)?;
        #[cfg(feature = "tls")]
        if endpoint.tls {
            let config = self.tls.clone().ok_or_else(|| bad("no TLS configuration"))?;
            let name = super::tls::server_name(endpoint.host())?;
            let conn = rustls::ClientConnection::new(config, name).map_err(io::Error::other)?;
            return Ok(Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))));
        }
        Ok(Stream::Plain(tcp))
    }

    /// POSTs `body` of `content` (its type, and its encoding if compressed) within `timeout`.
    pub(crate) fn post(
        &mut self,
        endpoint: &Endpoint,
        content: (&str, Option<&str>),
        headers: &[(String, String)],
        body: &[u8],
        timeout: Duration,
    ) -> io::Result<Answer> {
        let deadline = Instant::now() + timeout;
        let request = request_head(endpoint, content, headers, body.len());
        // A kept connection the collector closed meanwhile fails at once, before an answer
        // began: then once more on a new one.
        if let Some(stream) = self.stream.take() {
            match exchange(stream, &request, body, deadline) {
                Ok((answer, keep)) => {
                    self.stream = keep;
                    return Ok(answer);
                }
                Err(Failure::BeforeAnswer(_)) => {}
                Err(Failure::During(e)) => return Err(e),
            }
        }
        let stream = self.open(endpoint, deadline)?;
        self.opened += 1;
        match exchange(stream, &request, body, deadline) {
            Ok((answer, keep)) => {
                self.stream = keep;
                Ok(answer)
            }
            Err(Failure::BeforeAnswer(e) | Failure::During(e)) => Err(e),
        }
    }
}

/// How an exchange failed: before any of the answer came (a closed kept connection looks like
/// this), or after.
enum Failure {
    BeforeAnswer(io::Error),
    During(io::Error),
}

fn left(deadline: Instant) -> io::Result<Duration> {
    let d = deadline.saturating_duration_since(Instant::now());
    if d.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "export request timed out"))
    } else {
        Ok(d)
    }
}

fn connect(endpoint: &Endpoint, deadline: Instant) -> io::Result<TcpStream> {
    let host = endpoint.host.trim_start_matches('[').trim_end_matches(']');
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the endpoint's host did not resolve");
    for addr in (host, endpoint.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, left(deadline)?) {
            Ok(s) => {
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn request_head(
    endpoint: &Endpoint,
    (content_type, encoding): (&str, Option<&str>),
    headers: &[(String, String)],
    len: usize,
) -> String {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nUser-Agent: monitor/{}\r\n",
        endpoint.path,
        endpoint.host,
        endpoint.port,
        env!("CARGO_PKG_VERSION")
    );
    if let Some(encoding) = encoding {
        head.push_str(&format!("Content-Encoding: {encoding}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Sends one request on `stream` and reads its answer; the stream back if it can carry the
/// next request.
fn exchange(
    mut stream: Stream,
    head: &str,
    body: &[u8],
    deadline: Instant,
) -> Result<(Answer, Option<Stream>), Failure> {
    let before = Failure::BeforeAnswer;
    stream.set_write_timeout(Some(left(deadline).map_err(before)?)).map_err(before)?;
    stream.write_all(head.as_bytes()).map_err(before)?;
    stream.write_all(body).map_err(before)?;
    stream.flush().map_err(before)?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(Failure::During(bad("an answer head of more than 16 KiB")));
        }
        stream
            .set_read_timeout(Some(left(deadline).map_err(Failure::During)?))
            .map_err(Failure::During)?;
        let n = stream.read(&mut chunk).map_err(|e| {
            if buf.is_empty() {
                before(e)
            } else {
                Failure::During(e)
            }
        })?;
        if n == 0 {
            let e =
                io::Error::new(io::ErrorKind::UnexpectedEof, "the collector closed the connection");
            return Err(if buf.is_empty() { before(e) } else { Failure::During(e) });
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.trim().parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| Failure::During(bad("no HTTP status line in the answer")))?;
    let mut answer = Answer { status, ..Answer::default() };
    let (mut length, mut chunked, mut close) = (None, false, false);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { continue };
        let v = v.trim();
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.parse::<usize>().ok(),
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            "connection" => close = v.eq_ignore_ascii_case("close"),
            "retry-after" => answer.retry_after = v.parse().ok().map(Duration::from_secs),
            _ => {}
        }
    }
    let mut rest = buf[head_end..].to_vec();
    let read_more = |stream: &mut Stream, rest: &mut Vec<u8>| read_more(stream, rest, deadline);
    let framed = if let Some(len) = length.filter(|_| !chunked) {
        if len > MAX_BODY {
            false
        } else {
            while rest.len() < len {
                if !read_more(&mut stream, &mut rest).map_err(Failure::During)? {
                    return Err(Failure::During(bad("the answer's body was cut short")));
                }
            }
            answer.body = rest[..len].to_vec();
            rest.len() == len
        }
    } else if chunked {
        match dechunk(&mut stream, &mut rest, &read_more) {
            Ok(Some(body)) => {
                answer.body = body;
                true
            }
            Ok(None) => false,
            Err(e) => return Err(Failure::During(e)),
        }
    } else {
        // No length: the body runs to the end of the connection; not worth reading.
        false
    };
    let keep = (framed && !close && status != 408).then_some(stream);
    Ok((answer, keep))
}

/// A chunked body read whole, if it fits in [`MAX_BODY`] (`None`: too long, not reusable).
fn dechunk(
    stream: &mut Stream,
    rest: &mut Vec<u8>,
    read_more: &dyn Fn(&mut Stream, &mut Vec<u8>) -> io::Result<bool>,
) -> io::Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = loop {
            if let Some(i) = rest[at..].windows(2).position(|w| w == b"\r\n") {
                break at + i;
            }
            if rest.len() - at > 64 {
                return Err(bad("a bad chunk size line"));
            }
            if !read_more(stream, rest)? {
                return Err(bad("the answer's body was cut short"));
            }
        };
        let size_text = String::from_utf8_lossy(&rest[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("a bad chunk size"))?;
        at = line_end + 2;
        if body.len() + size > MAX_BODY {
            return Ok(None);
        }
        // The chunk and its CRLF (after the last chunk: the CRLF that ends the trailers).
        while rest.len() < at + size + 2 {
            if !read_more(stream, rest)? {
                return Err(bad("the answer's body was cut short"));
            }
        }
        body.extend_from_slice(&rest[at..at + size]);
        at += size + 2;
        if size == 0 {
            return Ok(Some(body));
        }
    }
}

/// Reads what more `stream` has into `rest`; false at its end.
fn read_more(stream: &mut Stream, rest: &mut Vec<u8>, deadline: Instant) -> io::Result<bool> {
    let mut chunk = [0u8; 4096];
    stream.set_read_timeout(Some(left(deadline)?))?;
    let n = stream.read(&mut chunk)?;
    rest.extend_from_slice(&chunk[..n]);
    Ok(n > 0)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
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
        if cfg!(feature = "tls") {
            let e = Endpoint::parse("https://h/v1/traces").unwrap();
            assert_eq!(
                (e.port, e.tls, e.to_string().as_str()),
                (443, true, "https://h:443/v1/traces")
            );
        } else {
            assert!(matches!(Endpoint::parse("https://h/"), Err(ExportError::Https(_))));
        }
    }
}
