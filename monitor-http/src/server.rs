//! The HTTP server: a thin layer over [`Routes`], on its own thread and runtime.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::body::Body;
use crate::routes::Routes;

/// Why the server could not start.
///
/// ```
/// let err = monitor_http::serve("no-such-host.invalid:9000").unwrap_err();
/// assert!(matches!(err, monitor_http::ServeError::Resolve { .. }));
/// println!("{err}"); // says what to give instead
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The address did not resolve.
    #[error("cannot resolve `{addr}`: {source}; give an address such as 127.0.0.1:9000")]
    Resolve {
        /// The address as given.
        addr: String,
        /// What resolution said.
        source: io::Error,
    },
    /// Nothing could be bound.
    #[error("cannot listen on {addr}: {source}; is another process using the port? Port 0 picks a free one")]
    Bind {
        /// The address as given.
        addr: String,
        /// What binding said.
        source: io::Error,
    },
    /// The server's thread or runtime could not start.
    #[error("cannot start the monitor server's thread: {0}")]
    Start(io::Error),
}

/// How the server runs: address, limits and timeouts. `Config::default()` listens on
/// loopback, `127.0.0.1:9000`.
///
/// ```
/// use std::time::Duration;
/// let server = monitor_http::Config::default()
///     .addr("127.0.0.1:0")
///     .max_connections(16)
///     .header_timeout(Duration::from_secs(2))
///     .serve()
///     .unwrap();
/// println!("monitor at http://{}/", server.local_addr());
/// server.shutdown();
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    addr: String,
    routes: Routes,
    max_connections: usize,
    header_timeout: Duration,
    connection_timeout: Duration,
    max_header_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:9000".to_string(),
            routes: Routes::root(),
            max_connections: 64,
            header_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(150),
            max_header_bytes: 16 * 1024,
        }
    }
}

impl Config {
    /// The address to listen on (default `127.0.0.1:9000`; port 0 picks a free port).
    ///
    /// ```
    /// let c = monitor_http::Config::default().addr("[::1]:0");
    /// # drop(c);
    /// ```
    pub fn addr(mut self, addr: impl Into<String>) -> Self {
        self.addr = addr.into();
        self
    }

    /// The routes to serve (e.g. with other `/metrics` buckets, or under a prefix).
    ///
    /// ```
    /// let routes = monitor_http::Routes::new("/monitor").unwrap();
    /// let c = monitor_http::Config::default().routes(routes);
    /// # drop(c);
    /// ```
    pub fn routes(mut self, routes: Routes) -> Self {
        self.routes = routes;
        self
    }

    /// Connections served at once (default 64); more are answered 503 and closed.
    ///
    /// ```
    /// let c = monitor_http::Config::default().max_connections(8);
    /// # drop(c);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a client may take to send a request's headers (default 5 s); slower clients
    /// are disconnected.
    ///
    /// ```
    /// let c = monitor_http::Config::default().header_timeout(std::time::Duration::from_secs(1));
    /// # drop(c);
    /// ```
    pub fn header_timeout(mut self, t: Duration) -> Self {
        self.header_timeout = t;
        self
    }

    /// The longest a connection may stay open (default 150 s, above the 120 s a trace view may
    /// wait for a call).
    ///
    /// ```
    /// let c = monitor_http::Config::default().connection_timeout(std::time::Duration::from_secs(10));
    /// # drop(c);
    /// ```
    pub fn connection_timeout(mut self, t: Duration) -> Self {
        self.connection_timeout = t;
        self
    }

    /// The most bytes of request line and headers accepted (default 16 KiB, at least 8 KiB);
    /// larger requests are refused with 431.
    ///
    /// ```
    /// let c = monitor_http::Config::default().max_header_bytes(32 * 1024);
    /// # drop(c);
    /// ```
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.max_header_bytes = n.max(8192);
        self
    }

    /// Starts the server on its own thread with its own small runtime, so a program without
    /// an async runtime gets it with one call. Returns once it is listening. Registers the
    /// process statistics too ([`monitor_core::process::register`]): the page shows them.
    ///
    /// ```
    /// let server = monitor_http::Config::default().addr("127.0.0.1:0").serve().unwrap();
    /// assert!(server.local_addr().ip().is_loopback());
    /// ```
    pub fn serve(self) -> Result<Server, ServeError> {
        let addrs: Vec<SocketAddr> = self
            .addr
            .to_socket_addrs()
            .map_err(|source| ServeError::Resolve { addr: self.addr.clone(), source })?
            .collect();
        let std_listener = std::net::TcpListener::bind(&addrs[..])
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|source| ServeError::Bind { addr: self.addr.clone(), source })?;
        let local_addr = std_listener.local_addr().map_err(ServeError::Start)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServeError::Start)?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("monitor-http".into())
            .spawn(move || runtime.block_on(run(self, std_listener, stop_rx)))
            .map_err(ServeError::Start)?;
        monitor_core::process::register();
        Ok(Server { local_addr, stop: Some(stop_tx), thread: Some(thread) })
    }
}

/// Serves the monitor on `addr` (e.g. `"127.0.0.1:9000"`, or port 0 for a free port) with the
/// default [`Config`].
///
/// ```
/// let server = monitor_http::serve("127.0.0.1:0").unwrap();
/// println!("open http://{}/", server.local_addr());
/// server.shutdown();
/// ```
pub fn serve(addr: impl Into<String>) -> Result<Server, ServeError> {
    Config::default().addr(addr).serve()
}

/// A running monitor server. Dropping it shuts it down too.
#[derive(Debug)]
pub struct Server {
    local_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// The address it listens on (with the port chosen, if 0 was asked).
    ///
    /// ```
    /// let server = monitor_http::serve("127.0.0.1:0").unwrap();
    /// assert_ne!(server.local_addr().port(), 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, gives open connections a moment to finish, and waits for the server's
    /// thread to end.
    ///
    /// ```
    /// let server = monitor_http::serve("127.0.0.1:0").unwrap();
    /// let addr = server.local_addr();
    /// server.shutdown();
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// ```
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Connections served past `max_connections`, one request each, while the others are asked to
/// close once idle: a fresh client (a Prometheus scrape above all) is still answered while idle
/// keep-alive connections or clients that never read hold every other.
const RESERVE: usize = 8;
/// How long a reserve connection may last.
const RESERVE_LIFETIME: Duration = Duration::from_secs(30);

/// The live connections, each with what asks it to close once idle.
#[derive(Default)]
struct Live {
    next: u64,
    all: std::collections::BTreeMap<u64, Arc<Notify>>,
}

impl Live {
    fn lock(live: &Mutex<Live>) -> std::sync::MutexGuard<'_, Live> {
        live.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn run(config: Config, std_listener: std::net::TcpListener, mut stop: oneshot::Receiver<()>) {
    let listener = match TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(_) => return,
    };
    let routes = Arc::new(config.routes.clone());
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let live = Arc::new(Mutex::new(Live::default()));
    let mut connections = JoinSet::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .max_headers(100);
    let mut one_shot = builder.clone();
    one_shot.keep_alive(false);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(stream);
        let service = {
            let routes = Arc::clone(&routes);
            service_fn(move |req: Request<hyper::body::Incoming>| {
                let routes = Arc::clone(&routes);
                async move {
                    let (method, uri, headers) = (req.method(), req.uri(), req.headers());
                    Ok::<_, Infallible>(
                        routes.handle(method, uri.path(), uri.query(), headers).await,
                    )
                }
            })
        };
        if let Ok(permit) = Arc::clone(&permits).try_acquire_owned() {
            let close = Arc::new(Notify::new());
            let id = {
                let mut l = Live::lock(&live);
                l.next += 1;
                let id = l.next;
                l.all.insert(id, Arc::clone(&close));
                id
            };
            let conn = builder.serve_connection(io, service);
            let (limit, live) = (config.connection_timeout, Arc::clone(&live));
            connections.spawn(async move {
                let _ = tokio::time::timeout(limit, async {
                    let mut conn = std::pin::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        () = close.notified() => {
                            // Idle: closes now; mid-request: after its answer.
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                })
                .await;
                Live::lock(&live).all.remove(&id);
                drop(permit);
            });
        } else if let Ok(permit) = Arc::clone(&reserve).try_acquire_owned() {
            // Full: make room by asking every connection to close once idle (a keep-alive
            // client reconnects at the cost of a handshake), and answer this client meanwhile,
            // once.
            for close in Live::lock(&live).all.values() {
                close.notify_one();
            }
            let conn = one_shot.serve_connection(io, service);
            connections.spawn(async move {
                let _ = tokio::time::timeout(RESERVE_LIFETIME, conn).await;
                drop(permit);
            });
        } else {
            connections.spawn(refuse(io));
        }
    }
    drop(listener);
    // Let requests being answered finish, briefly; then the runtime ends the rest.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    connections.abort_all();
}

async fn refuse(io: TokioIo<tokio::net::TcpStream>) {
    let conn = http1::Builder::new().keep_alive(false).serve_connection(
        io,
        service_fn(|_req: Request<hyper::body::Incoming>| {
            let mut resp = Response::new(Body::from(
                "the monitor is serving its maximum number of connections; retry shortly\n",
            ));
            *resp.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            std::future::ready(Ok::<_, Infallible>(resp))
        }),
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), conn).await;
}

/// The monitor's routes as a `tower` service, to mount in an axum, hyper or tonic server. It
/// expects the whole path, prefix included (axum's `nest_service` strips it: with axum, merge
/// `axum_router` instead, feature `axum`). Rendering runs on the calling task; it reads the
/// statistics' atomics and never blocks the instrumented program.
///
/// ```
/// use monitor_http::{MonitorService, Routes};
/// use tower_service::Service;
///
/// let mut svc = MonitorService::new(Routes::new("/monitor").unwrap());
/// let req = http::Request::get("/monitor/stats").body(()).unwrap();
/// let resp = futures_lite_block_on(svc.call(req)).unwrap();
/// assert_eq!(resp.status(), 200);
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MonitorService {
    routes: Arc<Routes>,
}

impl MonitorService {
    /// A service answering with `routes`. Registers the process statistics too
    /// ([`monitor_core::process::register`]), as [`Config::serve`] does.
    ///
    /// ```
    /// let svc = monitor_http::MonitorService::new(monitor_http::Routes::new("").unwrap());
    /// # drop(svc);
    /// ```
    pub fn new(routes: Routes) -> Self {
        monitor_core::process::register();
        MonitorService { routes: Arc::new(routes) }
    }
}

impl<B> tower_service::Service<Request<B>> for MonitorService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let routes = Arc::clone(&self.routes);
        let (parts, _body) = req.into_parts();
        Box::pin(async move {
            Ok(routes
                .handle(&parts.method, parts.uri.path(), parts.uri.query(), &parts.headers)
                .await)
        })
    }
}

/// The monitor's pages as an axum router serving `prefix` and everything under it (feature
/// `axum`), to merge into an application:
/// `app.merge(monitor_http::axum_router("/monitor")?)`. Under
/// [`ServerLayer`](crate::layer::ServerLayer), its requests count as the route
/// `GET /monitor/{*view}`.
///
/// # Errors
///
/// [`PrefixError`](crate::PrefixError) for a prefix that is not a path.
///
/// ```
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "shop" }))
///     .merge(monitor_http::axum_router("/monitor").unwrap());
/// # drop(app);
/// assert!(monitor_http::axum_router::<()>("monitor").is_err());
/// ```
#[cfg(feature = "axum")]
pub fn axum_router<S>(prefix: &str) -> Result<axum::Router<S>, crate::PrefixError>
where
    S: Clone + Send + Sync + 'static,
{
    let routes = Routes::new(prefix)?;
    let base = routes.prefix().to_string();
    let service = MonitorService::new(routes);
    // A wildcard matches one character or more: the index (`{base}/`) needs its own route.
    let router = axum::Router::new()
        .route_service(&format!("{base}/{{*view}}"), service.clone())
        .route_service(&format!("{base}/"), service.clone());
    Ok(if base.is_empty() { router } else { router.route_service(&base, service) })
}
