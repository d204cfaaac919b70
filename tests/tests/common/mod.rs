//! Helpers shared by the end-to-end test files: a minimal HTTP/1.1 client over `TcpStream`
//! (so tests can also send what no client library would), and finding external programs.
#![allow(dead_code)] // Each test file uses its own subset.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A parsed HTTP response.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// How many chunks a `Transfer-Encoding: chunked` body came in (0 for any other body).
    pub chunks: usize,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| v.as_str())
    }
}

/// Sends raw bytes, reads until the server closes, parses what came back.
pub fn send(addr: SocketAddr, request: &[u8]) -> Reply {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse(&raw)
}

pub fn parse(raw: &[u8]) -> Reply {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(at) => (&raw[..at], &raw[at + 4..]),
        None => (raw, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut lines = head.lines();
    let status =
        lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    let (body, chunks) = if chunked { dechunk(body) } else { (body.to_vec(), 0) };
    Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned(), chunks }
}

/// The data of a `Transfer-Encoding: chunked` body: each chunk is its length in hex, CRLF, the
/// data, CRLF; a chunk of length 0 ends it. Panics on anything else. Returns the data and how
/// many chunks carried it.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut chunks = 0;
    loop {
        let eol = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
        let size = std::str::from_utf8(&raw[..eol]).expect("a chunk size in ASCII");
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or_else(|_| panic!("chunk size `{size}` is not hex"));
        raw = &raw[eol + 2..];
        if size == 0 {
            return (out, chunks);
        }
        chunks += 1;
        out.extend_from_slice(&raw[..size]);
        assert_eq!(&raw[size..size + 2], b"\r\n", "a chunk ends with CRLF");
        raw = &raw[size + 2..];
    }
}

/// `GET path` with extra header lines (each ending in `\r\n`).
pub fn get_with(addr: SocketAddr, path: &str, extra: &str) -> Reply {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}Connection: close\r\n\r\n");
    send(addr, req.as_bytes())
}

pub fn get(addr: SocketAddr, path: &str) -> Reply {
    get_with(addr, path, "")
}

/// The path of an external program the tests check our output with. Where it is missing the
/// test says so and passes, except under CI, whose script installs it (`.ci/install-tools`).
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).map(|dir| dir.join(name)).find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!("{name} is not installed; .ci/install-tools installs it")
        }
        None => {
            eprintln!("skipping the {name} check: not installed (.ci/install-tools installs it)");
            None
        }
    }
}

/// A loopback port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Feeds `input` to an external checker (`tool args…`), which must accept it; skipped where
/// the tool is missing, as [`tool`] says.
pub fn check_with(tool_name: &str, args: &[&str], input: &str) {
    let Some(path) = tool(tool_name) else { return };
    let mut child = Command::new(path)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{tool_name} rejected the output:\n{}\n{}\n--- input ---\n{input}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A name no other call in this process gets: tests run in parallel, and two Chromiums
/// sharing a profile directory (or one removing it under the other) abort.
fn unique(what: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::env::temp_dir().join(format!("monitor-{what}-{}-{n}", std::process::id()))
}

/// Runs headless Chromium on `url` with `args` (e.g. `--dump-dom`); `None` where it is missing
/// (see [`tool`]).
pub fn chromium(args: &[&str], url: &str) -> Option<std::process::Output> {
    let path = tool("chromium")?;
    let profile = unique("chromium");
    let out = Command::new(path)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&profile);
    Some(out)
}

/// A PNG of `url` as headless Chromium draws it in a `width`x`height` window; `None` where
/// Chromium is missing (see [`tool`]).
pub fn screenshot(url: &str, width: u32, height: u32) -> Option<Vec<u8>> {
    let shot = unique("shot").with_extension("png");
    let arg = format!("--screenshot={}", shot.display());
    let size = format!("--window-size={width},{height}");
    let out = chromium(&[&arg, &size], url)?;
    assert!(out.status.success(), "chromium failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(&shot).unwrap();
    let _ = std::fs::remove_file(&shot);
    Some(png)
}

/// Tests that change process-wide settings (sampling, failure keeping, watches, the
/// collector) take turns through this lock; each test binary has its own.
pub fn turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A `tower` service answering each request at once with what its function gives.
#[derive(Clone)]
pub struct ServiceFn<F>(pub F);

/// The service of a plain function (a nameable type: `ServiceFn<Answer>`).
pub type Answer = fn(http::Request<()>) -> http::Response<()>;

impl<F: Fn(http::Request<()>) -> http::Response<()>> tower_service::Service<http::Request<()>>
    for ServiceFn<F>
{
    type Response = http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: http::Request<()>) -> Self::Future {
        std::future::ready(Ok((self.0)(req)))
    }
}

/// One request as the receiver got it.
pub struct Posted {
    pub path: String,
    pub content_type: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Posted {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A loopback HTTP receiver answering each POST with the next status of `script` (then 200).
pub struct Receiver {
    pub addr: SocketAddr,
    posted: std::sync::Arc<std::sync::Mutex<Vec<Posted>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// One answer of a keep-alive receiver's script: a status, more header lines (each ending in
/// `\r\n`) and a body.
pub struct Scripted {
    pub status: u16,
    pub headers: &'static str,
    pub body: Vec<u8>,
}

impl Receiver {
    pub fn start(script: Vec<u16>) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let posted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = std::sync::Arc::clone(&posted);
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(p) = read_request(&mut stream) else { continue };
                let status = script.next().unwrap_or(200);
                if status == 200 {
                    log.lock().unwrap().push(p);
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { addr, posted, connections: Default::default() }
    }

    /// A receiver that keeps connections open between requests (HTTP/1.1 keep-alive), answers
    /// with the next of `script` (then 200), keeps every request it got, and counts the
    /// connections it accepted.
    pub fn start_keep_alive(script: Vec<Scripted>) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let posted = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let script = std::sync::Arc::new(std::sync::Mutex::new(script.into_iter()));
        let (log, count) = (std::sync::Arc::clone(&posted), std::sync::Arc::clone(&connections));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (log, script) = (std::sync::Arc::clone(&log), std::sync::Arc::clone(&script));
                std::thread::spawn(move || {
                    while let Some(p) = read_request(&mut stream) {
                        log.lock().unwrap().push(p);
                        let next = script.lock().unwrap().next();
                        let a = next.unwrap_or(Scripted { status: 200, headers: "", body: vec![] });
                        let head = format!(
                            "HTTP/1.1 {} X\r\nContent-Length: {}\r\n{}\r\n",
                            a.status,
                            a.body.len(),
                            a.headers
                        );
                        if stream.write_all(head.as_bytes()).is_err()
                            || stream.write_all(&a.body).is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { addr, posted, connections }
    }

    /// Connections accepted so far (keep-alive receivers).
    pub fn connections(&self) -> usize {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn take(&self) -> Vec<Posted> {
        std::mem::take(&mut *self.posted.lock().unwrap())
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Posted> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    read_request_from(stream)
}

/// One HTTP/1.1 request read from `stream` (a TLS stream, say), its body whole.
pub fn read_request_from(stream: &mut impl Read) -> Option<Posted> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let len: usize = header("content-length")?.parse().ok()?;
    while raw.len() < head_end + len {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let path = head.split(' ').nth(1)?.to_string();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(Posted {
        path,
        headers,
        content_type: header("content-type")?,
        body: raw[head_end..head_end + len].to_vec(),
    })
}

/// A running `rotel-agent` (a real OTLP collector) printing what it decoded of one signal, and
/// what it printed so far; `None` where it is not installed (see [`tool`]).
pub struct Collector {
    child: std::process::Child,
    printed: std::sync::Arc<std::sync::Mutex<String>>,
    port: u16,
    grpc: u16,
}

impl Collector {
    /// Starts one on free loopback ports, printing `signal` (`traces`, `metrics`, `logs`).
    pub fn start(signal: &str) -> Option<Collector> {
        Collector::start_with(&["--debug-log", signal])
    }

    /// Starts one with these arguments of `rotel-agent start` besides its ports.
    pub fn start_with(args: &[&str]) -> Option<Collector> {
        let agent = tool("rotel-agent")?;
        let (http, grpc) = (free_port(), free_port());
        let mut child = Command::new(agent)
            .args(["start", "--exporter", "blackhole"])
            .args(args)
            .args(["--debug-log-verbosity", "detailed"])
            .args(["--otlp-http-endpoint", &format!("127.0.0.1:{http}")])
            .args(["--otlp-grpc-endpoint", &format!("127.0.0.1:{grpc}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let out: Vec<Box<dyn Read + Send>> =
            vec![Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for mut stream in out {
            let printed = std::sync::Arc::clone(&printed);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    printed.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", http)).is_err() {
            assert!(std::time::Instant::now() < deadline, "rotel-agent did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Collector { child, printed, port: http, grpc })
    }

    /// Its OTLP/gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc
    }

    /// The URL of its OTLP/HTTP receiver's `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Waits (at most `limit`) until the collector printed `want`; all it printed.
    pub fn wait_for(&self, want: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let text = self.printed.lock().unwrap().clone();
            if text.contains(want) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the collector never printed {want:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Prometheus server scraping one target every second, with its own data directory
/// (removed on drop); `None` where it is not installed (see [`tool`]).
pub struct Prometheus {
    child: std::process::Child,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Prometheus {
    /// Starts one on a free loopback port, scraping `target`, with `args` besides.
    pub fn start(target: SocketAddr, args: &[&str]) -> Option<Prometheus> {
        Prometheus::start_with_rules(target, None, args)
    }

    /// Like [`Prometheus::start`], also evaluating `rules` (a rule file's text) every second.
    pub fn start_with_rules(
        target: SocketAddr,
        rules: Option<&str>,
        args: &[&str],
    ) -> Option<Prometheus> {
        let prometheus = tool("prometheus")?;
        let port = free_port();
        let dir = unique("prometheus");
        std::fs::create_dir_all(&dir).unwrap();
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        if let Some(rules) = rules {
            let file = dir.join("rules.yaml");
            std::fs::write(&file, rules).unwrap();
            config.push_str(&format!("rule_files:\n  - '{}'\n", file.display()));
        }
        config.push_str(&format!(
            "scrape_configs:\n  - job_name: monitor\n    static_configs:\n      - targets: ['{target}']\n"
        ));
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let child = Command::new(prometheus)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Some(Prometheus { child, addr: SocketAddr::from(([127, 0, 0, 1], port)), dir })
    }

    /// `GET path` of its HTTP API as JSON; `None` while it is not up or the answer is no JSON.
    pub fn api(&self, path: &str) -> Option<serde_json::Value> {
        let addr = self.addr;
        let reply = std::panic::catch_unwind(|| get(addr, path)).ok()?;
        serde_json::from_str(&reply.body).ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A PromQL expression as a URL query component.
pub fn promql(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => char::from(b).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Calls `call(first)`, `call(first + 1)`, … every 2 ms on a thread of its own until dropped:
/// traffic for a page's live refresh to show.
pub struct Calling {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Calling {
    pub fn start(first: u64, call: impl Fn(u64) + Send + 'static) -> Calling {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = std::sync::Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut i = first;
                while !stop.load(Ordering::Relaxed) {
                    call(i);
                    i += 1;
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        Calling { stop, thread: Some(thread) }
    }
}

impl Drop for Calling {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
