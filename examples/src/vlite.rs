//! A small proxy service with `#[monitored]` everywhere, in front of a simulated upstream.
//!
//! Requests go `Proxy::handle` → `Proxy::authorize`, `Cache::lookup`, `Upstream::fetch` →
//! `Upstream::connect`, then `render`. The upstream is slow now and then, fails in several
//! ways, and `render` panics on rare inputs, so every outcome shows up: successes, errors of
//! several kinds, panics and cancellations (clients give up after a timeout).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use monitor_core::{
    monitored, BoolVal, Counter, ErrorKind, IntVal, Meter, Metrics, Scope, UniqueUsers,
};

/// What a client asks for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The path, e.g. `/items/7`.
    pub path: String,
    /// The bearer token; requests without one are rejected.
    pub token: Option<String>,
}

/// What the proxy answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The body.
    pub body: String,
    /// Whether it came from the cache.
    pub cached: bool,
}

/// Why a request failed; `#[derive(ErrorKind)]` makes each variant an error kind.
#[derive(Debug, ErrorKind)]
pub enum ProxyError {
    /// No or a bad token.
    Unauthorized,
    /// The upstream has no such item.
    NotFound,
    /// The upstream failed.
    Upstream(#[allow(dead_code)] io::Error),
}

impl From<io::Error> for ProxyError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            ProxyError::NotFound
        } else {
            ProxyError::Upstream(e)
        }
    }
}

/// A deterministic pseudo-random source (xorshift), so runs are reproducible without a
/// dependency.
#[derive(Debug)]
pub struct Dice(AtomicU64);

impl Dice {
    /// A source seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Dice(AtomicU64::new(seed | 1))
    }

    /// A number in `0..n` (`n` > 0).
    pub fn roll(&self, n: u64) -> u64 {
        let mut x = self.0.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0.store(x, Ordering::Relaxed);
        x % n.max(1)
    }
}

/// The simulated upstream server.
#[derive(Debug)]
pub struct Upstream {
    dice: Dice,
}

#[monitored(category = "http_client")]
impl Upstream {
    /// Fetches an item: usually a few milliseconds, sometimes much slower, sometimes failing.
    pub async fn fetch(&self, path: &str) -> io::Result<String> {
        self.connect().await?;
        let roll = self.dice.roll(100);
        let wait = match roll {
            0..=79 => 1 + self.dice.roll(4),
            80..=96 => 5 + self.dice.roll(20),
            _ => 80 + self.dice.roll(120),
        };
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if path.ends_with("/missing") {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such item"));
        }
        if roll == 42 {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "upstream hung up"));
        }
        Ok(format!("item at {path}"))
    }

    /// Opens a connection; one in fifty is refused.
    #[monitored(category = "socket")]
    async fn connect(&self) -> io::Result<()> {
        tokio::time::sleep(Duration::from_micros(200)).await;
        if self.dice.roll(50) == 0 {
            return Err(io::Error::new(io::ErrorKind::ConnectionRefused, "refused"));
        }
        Ok(())
    }
}

/// A tiny cache of upstream answers.
#[derive(Debug, Default)]
pub struct Cache {
    items: Mutex<HashMap<String, String>>,
}

#[monitored(category = "cache")]
impl Cache {
    /// The cached body for `path`, if any.
    pub fn lookup(&self, path: &str) -> Option<String> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner).get(path).cloned()
    }

    /// Remembers `body` for `path`.
    pub fn store(&self, path: &str, body: &str) {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        if items.len() > 64 {
            items.clear();
        }
        items.insert(path.to_string(), body.to_string());
    }
}

/// What the proxy counts besides its functions' calls.
#[derive(Debug, Metrics)]
pub struct ProxyMetrics {
    /// Requests being handled now.
    pub in_flight: Counter,
    /// Whether a request was answered from the cache.
    pub cache_hit: BoolVal,
    /// Size of the bodies sent back, in bytes.
    pub response_bytes: IntVal,
    /// Bytes sent back.
    pub bytes_out: Meter,
}

/// The proxy: authorizes, answers from the cache or the upstream, renders.
#[derive(Debug)]
pub struct Proxy {
    upstream: Upstream,
    cache: Cache,
    metrics: ProxyMetrics,
    /// Distinct users (by token) in the last 5 minutes: `unique_users` of scope `vlite`.
    users: UniqueUsers,
}

#[monitored]
impl Proxy {
    /// A proxy whose upstream draws its behaviour from `seed`.
    #[monitored(skip)]
    pub fn new(seed: u64) -> Self {
        Proxy {
            upstream: Upstream { dice: Dice::new(seed) },
            cache: Cache::default(),
            metrics: ProxyMetrics::register(&Scope::new("vlite")),
            users: {
                let users = UniqueUsers::new(Duration::from_secs(300));
                // Registered once per process; a second proxy shares the name, the last one wins.
                let _ = users.register("vlite");
                users
            },
        }
    }

    /// Handles one request. Its objective: 99.5% of requests succeed, 99% within 50 ms; the
    /// demo's traffic (a sixth refused or failing) breaks it, so that it pages.
    #[monitored(objective(success = 99.5, latency = "50ms", latency_target = 99.0))]
    pub async fn handle(&self, req: Request) -> Result<Response, ProxyError> {
        let m = &self.metrics;
        if let Some(token) = &req.token {
            self.users.observe(token);
        }
        m.in_flight.inc();
        let _done = Defer(|| m.in_flight.dec());
        self.authorize(&req)?;
        let cached = self.cache.lookup(&req.path);
        m.cache_hit.observe(cached.is_some());
        let (body, cached) = match cached {
            Some(body) => (body, true),
            None => {
                let body = match self.upstream.fetch(&req.path).await {
                    Ok(body) => body,
                    Err(e) => {
                        // With the demo's logs exporter on, this reaches the collector with
                        // the request's trace id.
                        log::warn!(path = req.path.as_str(); "upstream fetch failed: {e}");
                        return Err(e.into());
                    }
                };
                self.cache.store(&req.path, &body);
                (body, false)
            }
        };
        let body = render(&body);
        m.response_bytes.observe(body.len() as i64);
        m.bytes_out.mark(body.len() as u64);
        Ok(Response { body, cached })
    }

    fn authorize(&self, req: &Request) -> Result<(), ProxyError> {
        match req.token.as_deref() {
            Some(t) if t.starts_with("ok-") => Ok(()),
            _ => Err(ProxyError::Unauthorized),
        }
    }
}

/// Runs a closure when dropped: the in-flight count goes down however `handle` ends (error,
/// panic, or the client giving up).
struct Defer<F: FnMut()>(F);

impl<F: FnMut()> Drop for Defer<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// Renders a body; panics on the item that trips a (simulated) bug.
#[monitored]
pub fn render(body: &str) -> String {
    if body.ends_with("/items/13") {
        panic!("render bug on item 13");
    }
    body.to_uppercase()
}

/// What [`traffic`] saw, from the clients' side.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Requests answered.
    pub ok: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Requests whose handler panicked.
    pub panics: u64,
    /// Requests the client gave up on.
    pub timeouts: u64,
}

/// Sends `requests` requests to `proxy`, `concurrency` at a time, each abandoned after
/// `timeout`: the mix of paths and tokens exercises every outcome.
pub async fn traffic(
    proxy: Arc<Proxy>,
    requests: u64,
    concurrency: usize,
    timeout: Duration,
    seed: u64,
) -> Tally {
    let dice = Dice::new(seed);
    let mut tally = Tally::default();
    let mut sent = 0;
    while sent < requests {
        let batch = (requests - sent).min(concurrency as u64);
        let mut tasks = Vec::new();
        for _ in 0..batch {
            let req = request(&dice);
            let proxy = Arc::clone(&proxy);
            tasks.push(tokio::spawn(async move {
                tokio::time::timeout(timeout, proxy.handle(req)).await
            }));
        }
        for task in tasks {
            match task.await {
                Ok(Ok(Ok(_))) => tally.ok += 1,
                Ok(Ok(Err(_))) => tally.errors += 1,
                Ok(Err(_elapsed)) => tally.timeouts += 1,
                Err(_panicked) => tally.panics += 1,
            }
        }
        sent += batch;
    }
    tally
}

fn request(dice: &Dice) -> Request {
    let path = match dice.roll(100) {
        0..=4 => "/items/missing".to_string(),
        5 => "/items/13".to_string(),
        _ => format!("/items/{}", 100 + dice.roll(400)),
    };
    let token = match dice.roll(25) {
        0 => None,
        1 => Some("expired".to_string()),
        _ => Some(format!("ok-{}", dice.roll(1000))),
    };
    Request { path, token }
}
