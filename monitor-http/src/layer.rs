//! `tower` middleware for web services: [`ServerLayer`] makes each request a monitored call
//! named by method and route, continuing the caller's trace; [`ClientLayer`] makes each
//! outgoing request a child call of category `http_client` that carries `traceparent` to the
//! next service. Both work with any `tower` stack over `http` types (axum, hyper, tonic,
//! hyper-util's client); with the `reqwest` feature, `ReqwestMiddleware` does the client's
//! part for `reqwest-middleware`.
//!
//! ```
//! use monitor_http::layer::ServerLayer;
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! // Any service from requests to responses; here a function that answers 503 to `/down`.
//! let app = tower_service_fn(|req: http::Request<()>| {
//!     let status = if req.uri().path() == "/down" { 503 } else { 200 };
//!     http::Response::builder().status(status).body(()).unwrap()
//! });
//! let mut svc = ServerLayer::new()
//!     .route(|parts| Some(parts.uri.path().into()))
//!     .trace_id_header("x-trace-id").unwrap()
//!     .layer(app);
//!
//! let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! let resp = rt.block_on(svc.call(http::Request::get("/down").body(()).unwrap())).unwrap();
//! assert_eq!(resp.status(), 503);
//! assert_eq!(resp.headers()["x-trace-id"].len(), 32);
//!
//! let snap = monitor_core::registry().snapshot();
//! let route = snap.function("GET /down").unwrap();
//! assert_eq!(route.errors, vec![("http_503", 1)]);
//! assert_eq!(route.category, Some("http_server"));
//! # #[derive(Clone)]
//! # struct Fn_<F>(F);
//! # fn tower_service_fn<F: Fn(http::Request<()>) -> http::Response<()> + Clone>(f: F) -> Fn_<F> { Fn_(f) }
//! # impl<F: Fn(http::Request<()>) -> http::Response<()> + Clone> Service<http::Request<()>> for Fn_<F> {
//! #     type Response = http::Response<()>;
//! #     type Error = std::convert::Infallible;
//! #     type Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, req: http::Request<()>) -> Self::Future { std::future::ready(Ok((self.0)(req))) }
//! # }
//! ```

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use http::header::{HeaderName, HOST};
use http::request::Parts;
use http::{Request, Response, StatusCode};
use monitor_core::{
    registry, CallSite, Instrumented, Objective, Outcome, SiteBudget, Span, UniqueUsers,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::identity::UserIdentity;
use crate::propagation::{extract, header_value, TRACEPARENT};

/// Category of the calls [`ServerLayer`] makes (one per request).
pub const HTTP_SERVER: &str = "http_server";
/// Category of the calls [`ClientLayer`] makes (one per outgoing request).
pub const HTTP_CLIENT: &str = "http_client";

/// Why a middleware setting was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerError {
    /// Not a valid HTTP header name.
    #[error("`{0}` is not a header name; give e.g. `x-trace-id`")]
    BadHeader(String),
    /// A route's objective was refused.
    #[error("route `{route}`: {source}")]
    Objective {
        /// The route's site name, such as `GET /orders/{id}`.
        route: String,
        /// Why.
        source: monitor_core::ObjectiveError,
    },
}

/// Names a request's route from its head (method aside): a template such as `/users/{id}`, so
/// that all requests of a route share one call site. `None`: fall back to the default.
pub type RouteFn = for<'a> fn(&'a Parts) -> Option<Cow<'a, str>>;

/// Makes each request a monitored call: a root span (or the child of the caller's, from a
/// valid `traceparent`) at the call site `METHOD route`, of category [`HTTP_SERVER`]. A
/// response with a 5xx status counts as an error of kind `http_5xx` (`http_503`, …), a service
/// error as `service_error`, a dropped request as cancelled. Optionally it counts unique users
/// and returns the trace id in a response header.
///
/// The route is, in order: what [`ServerLayer::route`] gives; with the `axum` feature, the
/// route axum matched (`MatchedPath`; requests that matched none are named `(no route)`);
/// else the path with id-like segments (numbers, UUIDs, long hex or long tokens) replaced by
/// `{id}`. Methods other than the standard ones are named `OTHER`. Route sites come from the
/// layers' own share of sites ([`SiteBudget::http_server`], 1,024 for all server layers);
/// past it, requests count at one `HTTP (other routes)` site, and the application's sites
/// are untouched.
///
/// ```
/// let layer = monitor_http::layer::ServerLayer::new();
/// # drop(layer);
/// ```
#[derive(Clone)]
pub struct ServerLayer {
    config: Arc<ServerConfig>,
}

#[derive(Clone)]
struct ServerConfig {
    route: Option<RouteFn>,
    trace_header: Option<HeaderName>,
    users: Option<(UniqueUsers, UserIdentity)>,
    overflow: Option<&'static CallSite>,
}

impl Default for ServerLayer {
    fn default() -> Self {
        ServerLayer::new()
    }
}

impl ServerLayer {
    /// The layer with the default route naming, no users counted, no response header.
    ///
    /// ```
    /// let layer = monitor_http::layer::ServerLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> ServerLayer {
        ServerLayer {
            config: Arc::new(ServerConfig {
                route: None,
                trace_header: None,
                users: None,
                overflow: registry()
                    .site_in(SiteBudget::http_server(), "HTTP (other routes)", Some(HTTP_SERVER))
                    .ok(),
            }),
        }
    }

    /// The settings, copied first if services already share them.
    fn config(&mut self) -> &mut ServerConfig {
        Arc::make_mut(&mut self.config)
    }

    /// Names routes with `route` (falling back to the default when it gives `None`).
    ///
    /// ```
    /// use monitor_http::layer::ServerLayer;
    /// // Everything under /static is one route.
    /// let layer = ServerLayer::new().route(|parts| {
    ///     parts.uri.path().starts_with("/static/").then(|| "/static/{file}".into())
    /// });
    /// # drop(layer);
    /// ```
    pub fn route(mut self, route: RouteFn) -> ServerLayer {
        self.config().route = Some(route);
        self
    }

    /// Returns each request's trace id (32 lower-case hex digits) in the response header `name`.
    ///
    /// # Errors
    ///
    /// [`LayerError::BadHeader`] if `name` is not a header name.
    ///
    /// ```
    /// let layer = monitor_http::layer::ServerLayer::new().trace_id_header("x-trace-id").unwrap();
    /// # drop(layer);
    /// assert!(monitor_http::layer::ServerLayer::new().trace_id_header("no spaces").is_err());
    /// ```
    pub fn trace_id_header(mut self, name: &str) -> Result<ServerLayer, LayerError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| LayerError::BadHeader(name.to_string()))?;
        self.config().trace_header = Some(name);
        Ok(self)
    }

    /// Counts each request's user (as `identity` tells them apart) in `users`. The peer address
    /// for the last rule comes from axum's `ConnectInfo<SocketAddr>` (with the `axum` feature)
    /// or a `SocketAddr` in the request's extensions.
    ///
    /// ```
    /// use std::time::Duration;
    /// use monitor_core::UniqueUsers;
    /// use monitor_http::{layer::ServerLayer, identity::UserIdentity};
    ///
    /// let users = UniqueUsers::new(Duration::from_secs(300));
    /// users.register("shop").unwrap();
    /// // A clone is another handle to the same window.
    /// let layer = ServerLayer::new().users(users.clone(), UserIdentity::new().cookies(&["session"]));
    /// # drop(layer);
    /// ```
    pub fn users(mut self, users: UniqueUsers, identity: UserIdentity) -> ServerLayer {
        self.config().users = Some((users, identity));
        self
    }

    /// Sets the objective of a route, named as its call site is: the method, a space and the
    /// route (`GET /orders/{id}`). Its rules and its budget exist before the first request
    /// makes the site (see [`monitor_core::declare_objective`]).
    ///
    /// # Errors
    ///
    /// [`LayerError::Objective`] when the objective is refused (no target, an empty route, or
    /// too many objectives).
    ///
    /// ```
    /// use std::time::Duration;
    /// use monitor_core::Objective;
    /// use monitor_http::layer::ServerLayer;
    ///
    /// let checkout = Objective::new().success(99.9)?.latency(Duration::from_millis(300), 99.0)?;
    /// let layer = ServerLayer::new().objective("POST /checkout", checkout).unwrap();
    /// assert!(monitor_core::objectives().iter().any(|o| o.name == "POST /checkout"));
    /// # drop(layer);
    /// # Ok::<(), monitor_core::ObjectiveError>(())
    /// ```
    pub fn objective(self, route: &str, objective: Objective) -> Result<ServerLayer, LayerError> {
        monitor_core::declare_objective(route, objective)
            .map_err(|source| LayerError::Objective { route: route.to_string(), source })?;
        Ok(self)
    }
}

impl fmt::Debug for ServerLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerLayer")
            .field("custom_route", &self.config.route.is_some())
            .field("trace_id_header", &self.config.trace_header)
            .field("users", &self.config.users.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl<S> Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService { inner, config: Arc::clone(&self.config) }
    }
}

/// The service [`ServerLayer`] wraps around an application.
///
/// ```
/// use tower_layer::Layer;
/// let svc: monitor_http::layer::ServerService<()> = monitor_http::layer::ServerLayer::new().layer(());
/// # drop(svc);
/// ```
#[derive(Clone)]
pub struct ServerService<S> {
    inner: S,
    config: Arc<ServerConfig>,
}

impl<S> fmt::Debug for ServerService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerService").finish_non_exhaustive()
    }
}

thread_local! {
    /// Where a call site's name is put together, so naming a request allocates nothing.
    static NAME: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The call site whose name `write` puts together (in a reused buffer: naming a request
/// allocates nothing once its site exists), made on first use in the budget of its category:
/// what clients send can use up the layer's own share of sites, never another's.
fn site_named(
    category: &'static str,
    write: impl FnOnce(&mut String),
) -> Option<&'static CallSite> {
    let budget =
        if category == HTTP_SERVER { SiteBudget::http_server() } else { SiteBudget::http_client() };
    NAME.with(|buf| {
        let mut buf = buf.try_borrow_mut().ok()?;
        buf.clear();
        write(&mut buf);
        registry().site_in(budget, &buf, Some(category)).ok()
    })
}

/// The methods of RFC 9110 and PATCH, named by themselves; any other method a client makes up
/// is `OTHER`, so methods cannot mint call sites.
fn method_name(method: &http::Method) -> &'static str {
    const STANDARD: [&str; 9] =
        ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"];
    STANDARD.iter().find(|m| **m == method.as_str()).copied().unwrap_or("OTHER")
}

/// The server site `METHOD route`.
fn route_site(method: &str, route: &str) -> Option<&'static CallSite> {
    site_named(HTTP_SERVER, |buf| {
        buf.push_str(method);
        buf.push(' ');
        buf.push_str(route);
    })
}

impl ServerConfig {
    fn count_user<B>(&self, req: &Request<B>) {
        if let Some((users, identity)) = &self.users {
            identity.identify_with(req.headers(), peer(req.extensions()), |id| users.observe(id));
        }
    }
}

#[cfg(feature = "axum")]
fn default_site(
    method: &str,
    _: &http::Uri,
    extensions: &http::Extensions,
) -> Option<&'static CallSite> {
    match extensions.get::<axum::extract::MatchedPath>() {
        Some(matched) => route_site(method, matched.as_str()),
        None => route_site(method, "(no route)"),
    }
}

#[cfg(not(feature = "axum"))]
fn default_site(method: &str, uri: &http::Uri, _: &http::Extensions) -> Option<&'static CallSite> {
    site_named(HTTP_SERVER, |buf| {
        buf.push_str(method);
        buf.push(' ');
        push_route(uri.path(), buf);
    })
}

/// Appends `path` with its id-like segments replaced by `{id}`. (Split by hand, a byte search
/// per segment: `str::split`'s searcher cost more than the rest of naming a request.)
#[cfg_attr(feature = "axum", allow(dead_code))]
fn push_route(path: &str, out: &mut String) {
    if path.is_empty() {
        out.push('/');
        return;
    }
    let mut rest = path;
    loop {
        let end = rest.bytes().position(|b| b == b'/').unwrap_or(rest.len());
        let (segment, tail) = rest.split_at(end);
        out.push_str(if looks_like_id(segment) { "{id}" } else { segment });
        match tail.strip_prefix('/') {
            Some(tail) => {
                out.push('/');
                rest = tail;
            }
            None => return,
        }
    }
}

/// Numbers, UUIDs, hex of 12 digits or more, and anything past 32 bytes.
fn looks_like_id(s: &str) -> bool {
    if s.len() > 32 {
        return true;
    }
    let (mut digits, mut hexish) = (0, 0);
    for b in s.bytes() {
        digits += usize::from(b.is_ascii_digit());
        hexish += usize::from(b.is_ascii_hexdigit() || b == b'-');
    }
    !s.is_empty() && (digits == s.len() || (s.len() >= 12 && hexish == s.len() && digits > 0))
}

fn peer(extensions: &http::Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// Error kinds of 5xx statuses, made once: `http_500` … `http_599`.
fn status_kind(status: StatusCode) -> Option<&'static str> {
    static KINDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    let code = status.as_u16();
    if code < 500 {
        return None;
    }
    let kinds = KINDS.get_or_init(|| {
        (500..600).map(|c| &*Box::leak(format!("http_{c}").into_boxed_str())).collect()
    });
    Some(kinds.get(usize::from(code - 500)).copied().unwrap_or("http_5xx"))
}

fn server_outcome<B, E>(result: &Result<Response<B>, E>) -> Outcome {
    outcome_of(result.as_ref().ok().map(Response::status), "service_error")
}

fn client_outcome<B, E>(result: &Result<Response<B>, E>) -> Outcome {
    client_outcome_of(result.as_ref().ok().map(Response::status))
}

/// A client call's outcome from the status it got (`None`: the request failed).
fn client_outcome_of(status: Option<StatusCode>) -> Outcome {
    outcome_of(status, "transport_error")
}

/// A 5xx status is an error of its own kind; no status at all, of kind `failed`.
fn outcome_of(status: Option<StatusCode>, failed: &'static str) -> Outcome {
    match status {
        Some(status) => status_kind(status).map_or(Outcome::Success, Outcome::Error),
        None => Outcome::Error(failed),
    }
}

type Classify<T> = fn(&T) -> Outcome;

pin_project_lite::pin_project! {
    /// The response future of [`ServerService`] and [`ClientService`]: the inner service's, run as a monitored
    /// call (or passed through when the call site could not be made).
    pub struct CallFuture<F: Future> {
        #[pin]
        state: State<F>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F: Future> {
        Monitored { #[pin] fut: Instrumented<Annotated<F>, Classify<F::Output>> },
        Plain { #[pin] fut: F },
    }
}

impl<F: Future> CallFuture<F> {
    fn monitored(fut: Instrumented<Annotated<F>, Classify<F::Output>>) -> Self {
        CallFuture { state: State::Monitored { fut } }
    }

    fn plain(fut: F) -> Self {
        CallFuture { state: State::Plain { fut } }
    }
}

impl<F, B, E> Future for CallFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project().state.project() {
            StateProj::Monitored { fut } => fut.poll(cx),
            StateProj::Plain { fut } => fut.poll(cx),
        }
    }
}

impl<F: Future> fmt::Debug for CallFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.state {
            State::Monitored { .. } => "CallFuture::Monitored",
            State::Plain { .. } => "CallFuture::Plain",
        })
    }
}

pin_project_lite::pin_project! {
    /// The inner future, annotating the span with the response status and (for the server)
    /// adding the trace id header.
    #[doc(hidden)]
    pub struct Annotated<F> {
        #[pin]
        inner: F,
        trace_header: Option<HeaderName>,
    }
}

impl<F, B, E> Future for Annotated<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut out = std::task::ready!(this.inner.poll(cx));
        // Polled inside the call: the current span is the request's.
        let span = Span::current();
        if let Ok(resp) = &mut out {
            span.annotate("http.response.status_code", i64::from(resp.status().as_u16()));
            if let (Some(name), Some(id)) = (this.trace_header.take(), span.trace_id()) {
                if let Some(value) = header_value(&id.to_hex()) {
                    resp.headers_mut().insert(name, value);
                }
            }
        }
        Poll::Ready(out)
    }
}

impl<S, B, ResB> Service<Request<B>> for ServerService<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let config = &*self.config;
        config.count_user(&req);
        let method = method_name(req.method());
        // Split into its parts only for a route function, which reads them: moving a request
        // costs more than the rest of naming it.
        let site = match config.route {
            Some(route) => {
                let (parts, body) = req.into_parts();
                let site = match route(&parts) {
                    Some(route) => route_site(method, &route),
                    None => default_site(method, &parts.uri, &parts.extensions),
                };
                req = Request::from_parts(parts, body);
                site
            }
            None => default_site(method, req.uri(), req.extensions()),
        };
        let Some(site) = site.or(config.overflow) else {
            return CallFuture::plain(self.inner.call(req));
        };
        // A root span, or the caller's child: never a child of whatever runs the server.
        let parent = extract(req.headers()).map_or(Span::none(), |remote| remote.span());
        let start = site.start_body(parent);
        let span = start.span();
        if span.is_recorded() {
            let uri = req.uri();
            span.annotate("http.request.method", method);
            span.annotate("url.path", uri.path().to_string());
            if let Some(q) = uri.query() {
                span.annotate("url.query", q.to_string());
            }
            // The site is `METHOD route` (not the overflow site, which has no route).
            if let Some((_, route)) = site.name().split_once(' ') {
                span.annotate("http.route", route.to_string());
            }
            if let Some(host) = uri.host().or_else(|| host_header(req.headers())) {
                span.annotate("server.address", host.to_string());
            }
        }
        // The inner service is called under the request's span; its future moves once more,
        // into the call's (a closure carrying the request moved both several times).
        let trace_header = config.trace_header.clone();
        let fut = Annotated { inner: self.inner.call(req), trace_header };
        CallFuture::monitored(start.body(fut, server_outcome as Classify<_>))
    }
}

/// Makes each outgoing request a call of category [`HTTP_CLIENT`] named `METHOD host[:port]`
/// (the caller's child when made inside a monitored call), and sends its `traceparent` so the
/// next service continues the trace. A 5xx answer counts as an error of kind `http_5xx`, a
/// failed request as `transport_error`. Credentials in the URI never reach the name.
///
/// For hyper-util's client: `ServiceBuilder::new().layer(ClientLayer::new()).service(client)`.
///
/// ```
/// use monitor_http::layer::ClientLayer;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// #[monitor_core::monitored(name = "client_doc::checkout")]
/// async fn checkout(svc: &mut impl Service<http::Request<()>, Response = http::Response<String>>) -> String {
///     let req = http::Request::post("http://payments.internal:8080/pay").body(()).unwrap();
///     svc.call(req).await.ok().unwrap().into_body()
/// }
///
/// // Stands in for a real client: answers with the traceparent it was sent.
/// let echo = tower_service_fn(|req: http::Request<()>| {
///     http::Response::new(req.headers()["traceparent"].to_str().unwrap().to_string())
/// });
/// let mut client = ClientLayer::new().layer(echo);
/// let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let sent = rt.block_on(checkout(&mut client));
/// assert!(sent.starts_with("00-"));
///
/// let snap = monitor_core::registry().snapshot();
/// let call = snap.function("POST payments.internal:8080").unwrap();
/// assert_eq!(call.category, Some("http_client"));
/// assert_eq!(call.calls_from("client_doc::checkout"), 1);
/// # #[derive(Clone)]
/// # struct Fn_<F>(F);
/// # fn tower_service_fn<F: Fn(http::Request<()>) -> http::Response<String> + Clone>(f: F) -> Fn_<F> { Fn_(f) }
/// # impl<F: Fn(http::Request<()>) -> http::Response<String> + Clone> Service<http::Request<()>> for Fn_<F> {
/// #     type Response = http::Response<String>;
/// #     type Error = std::convert::Infallible;
/// #     type Future = std::future::Ready<Result<http::Response<String>, std::convert::Infallible>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
/// #     fn call(&mut self, req: http::Request<()>) -> Self::Future { std::future::ready(Ok((self.0)(req))) }
/// # }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ClientLayer {
    sites: ClientSites,
}

impl Default for ClientLayer {
    fn default() -> Self {
        ClientLayer::new()
    }
}

impl ClientLayer {
    /// The client layer.
    ///
    /// ```
    /// let layer = monitor_http::layer::ClientLayer::new();
    /// # drop(layer);
    /// ```
    pub fn new() -> ClientLayer {
        ClientLayer { sites: ClientSites::new() }
    }
}

impl<S> Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService { inner, sites: self.sites, last: None }
    }
}

/// The service [`ClientLayer`] wraps around an HTTP client.
///
/// ```
/// use tower_layer::Layer;
/// let svc: monitor_http::layer::ClientService<()> = monitor_http::layer::ClientLayer::new().layer(());
/// # drop(svc);
/// ```
#[derive(Debug, Clone)]
pub struct ClientService<S> {
    inner: S,
    sites: ClientSites,
    /// The site of the last request: a client mostly talks to the same few servers, and
    /// checking that the next request is named so costs less than looking its name up.
    last: Option<&'static CallSite>,
}

/// The call sites of outgoing requests: `METHOD host[:port]`, and past the limit one
/// `HTTP (other hosts)` site, made with the layer (when no other site can be made any more,
/// it could not be).
#[derive(Debug, Clone, Copy)]
struct ClientSites {
    overflow: Option<&'static CallSite>,
}

/// The host part of a client site's name for a request whose URI has no host.
const NO_HOST: &str = "(no host)";

impl ClientSites {
    fn new() -> Self {
        ClientSites {
            overflow: registry()
                .site_in(SiteBudget::http_client(), "HTTP (other hosts)", Some(HTTP_CLIENT))
                .ok(),
        }
    }

    fn site(
        &self,
        method: &str,
        host: Option<&str>,
        port: Option<u16>,
    ) -> Option<&'static CallSite> {
        let site = site_named(HTTP_CLIENT, |buf| push_client_name(method, host, port, buf));
        site.or(self.overflow)
    }
}

/// Appends a client site's name: `METHOD host[:port]`.
fn push_client_name(method: &str, host: Option<&str>, port: Option<u16>, buf: &mut String) {
    buf.push_str(method);
    buf.push(' ');
    buf.push_str(host.unwrap_or(NO_HOST));
    if let Some(port) = port {
        buf.push(':');
        crate::render::util::push_u64(u64::from(port), buf);
    }
}

/// The `host[:port]` of a client site's name, if the name is of a request with `method`.
fn server_of<'n>(name: &'n str, method: &str) -> Option<&'n str> {
    name.strip_prefix(method)?.strip_prefix(' ')
}

/// Whether `name` is the client site [`ClientSites::site`] names so.
fn is_client_site(name: &str, method: &str, host: Option<&str>, port: Option<u16>) -> bool {
    let rest = server_of(name, method).and_then(|r| r.strip_prefix(host.unwrap_or(NO_HOST)));
    match (rest, port) {
        (Some(rest), None) => rest.is_empty(),
        (Some(rest), Some(port)) => {
            rest.strip_prefix(':') == Some(itoa::Buffer::new().format(port))
        }
        (None, _) => false,
    }
}

/// Whether `name` is `METHOD authority`: then it is the client site of a request to
/// `authority`, as [`ClientSites::site`] names it from the host and port read out of it (a
/// name never holds the `@` of credentials, and spells a port as the number it is).
fn names_authority(name: &str, method: &str, authority: &str) -> bool {
    server_of(name, method) == Some(authority)
}

/// The host and port of an authority (`user@host:port`), as `Uri::host` and `Uri::port_u16`
/// read them, in one pass over its bytes instead of a search or two each.
fn host_and_port(authority: &str) -> (&str, Option<u16>) {
    // The last `@` and `:`; the first `:` and `]` after that `@`.
    let (mut at, mut last_colon, mut first_colon, mut bracket) = (None, None, None, None);
    for (i, b) in authority.bytes().enumerate() {
        match b {
            b'@' => (at, first_colon, bracket) = (Some(i), None, None),
            b':' => {
                last_colon = Some(i);
                first_colon = first_colon.or(Some(i));
            }
            b']' => bracket = bracket.or(Some(i)),
            _ => {}
        }
    }
    let start = at.map_or(0, |i| i + 1);
    let end = if authority[start..].starts_with('[') {
        bracket.map_or(authority.len(), |i| i + 1)
    } else {
        first_colon.unwrap_or(authority.len())
    };
    let port = last_colon.and_then(|i| authority.get(i + 1..)?.parse().ok());
    (&authority[start..end], port)
}

/// The host of a `Host` header (for requests whose URI has none).
fn host_header(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(HOST)?.to_str().ok()?;
    Some(value.rsplit_once(':').map_or(value, |(host, _port)| host))
}

/// Sets `traceparent` for `span` (leaving any `tracestate` the caller set).
fn send_traceparent(span: &Span, headers: &mut http::HeaderMap) {
    if let Some(v) = span.traceparent().and_then(|tp| header_value(&tp.to_bytes())) {
        headers.insert(TRACEPARENT, v);
    }
}

/// Annotates a recorded client span with the request's method, URL and server (OpenTelemetry's
/// HTTP client attributes).
fn annotate_client(
    span: &Span,
    method: &str,
    server: (Option<&str>, Option<u16>),
    url: impl FnOnce() -> String,
) {
    if span.is_recorded() {
        span.annotate("http.request.method", method.to_string());
        span.annotate("url.full", url());
        if let Some(host) = server.0 {
            span.annotate("server.address", host.to_string());
        }
        if let Some(port) = server.1 {
            span.annotate("server.port", i64::from(port));
        }
    }
}

/// The port a URL scheme implies.
fn default_port(scheme: Option<&str>) -> Option<u16> {
    match scheme? {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// `scheme://host:port/path` of `uri`: no credentials, no query.
fn uri_without_secrets(uri: &http::Uri) -> String {
    let mut url = String::new();
    if let Some(scheme) = uri.scheme_str() {
        url.push_str(scheme);
        url.push_str("://");
    }
    url.push_str(uri.host().unwrap_or(""));
    if let Some(port) = uri.port() {
        url.push(':');
        url.push_str(port.as_str());
    }
    url.push_str(uri.path());
    url
}

impl<S, B, ResB> Service<Request<B>> for ClientService<S>
where
    S: Service<Request<B>, Response = Response<ResB>>,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = CallFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let inner = &mut self.inner;
        let method = method_name(req.method());
        let authority = req.uri().authority().map(http::uri::Authority::as_str);
        // The last site, if this request is named so: its name ends in the authority itself
        // when that is `host[:port]` as the name spells it (no credentials, a plain port).
        let same = |s: &&CallSite| authority.is_some_and(|a| names_authority(s.name(), method, a));
        let site = match self.last.filter(same) {
            Some(last) => Some(last),
            None => {
                let (host, port) = match authority {
                    Some(authority) => {
                        let (host, port) = host_and_port(authority);
                        (Some(host), port)
                    }
                    None => (host_header(req.headers()), None),
                };
                let last = self.last.filter(|s| is_client_site(s.name(), method, host, port));
                last.or_else(|| self.sites.site(method, host, port))
            }
        };
        self.last = site;
        let Some(site) = site else {
            send_traceparent(&Span::current(), req.headers_mut());
            return CallFuture::plain(inner.call(req));
        };
        // The caller's child (the span current now); the inner service is called under it.
        let start = site.start_body(Span::current());
        let span = start.span();
        send_traceparent(&span, req.headers_mut());
        if span.is_recorded() {
            let uri = req.uri();
            let host = uri.host().or_else(|| host_header(req.headers()));
            let port = uri.port_u16().or_else(|| default_port(uri.scheme_str()));
            annotate_client(&span, method, (host, port), || uri_without_secrets(uri));
        }
        let fut = Annotated { inner: inner.call(req), trace_header: None };
        CallFuture::monitored(start.body(fut, client_outcome as Classify<_>))
    }
}

#[cfg(feature = "reqwest")]
pub use self::reqwest_middleware_support::ReqwestMiddleware;

#[cfg(feature = "reqwest")]
mod reqwest_middleware_support {
    use super::{
        annotate_client, client_outcome_of, method_name, send_traceparent, ClientSites, Span,
    };

    /// What [`ClientLayer`](super::ClientLayer) does, for `reqwest` through
    /// `reqwest-middleware` (feature `reqwest`): each request a call of category `http_client`
    /// named `METHOD host[:port]`, carrying `traceparent`.
    ///
    /// ```
    /// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
    ///     .with(monitor_http::layer::ReqwestMiddleware::new())
    ///     .build();
    /// # drop(client);
    /// ```
    #[derive(Debug, Clone, Copy)]
    pub struct ReqwestMiddleware {
        sites: ClientSites,
    }

    impl Default for ReqwestMiddleware {
        fn default() -> Self {
            ReqwestMiddleware::new()
        }
    }

    impl ReqwestMiddleware {
        /// The middleware.
        ///
        /// ```
        /// let m = monitor_http::layer::ReqwestMiddleware::new();
        /// # drop(m);
        /// ```
        pub fn new() -> Self {
            ReqwestMiddleware { sites: ClientSites::new() }
        }
    }

    fn url_without_secrets(url: &reqwest::Url) -> String {
        let mut url = url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.set_query(None);
        url.set_fragment(None);
        url.to_string()
    }

    #[async_trait::async_trait]
    impl reqwest_middleware::Middleware for ReqwestMiddleware {
        async fn handle(
            &self,
            mut req: reqwest::Request,
            extensions: &mut http::Extensions,
            next: reqwest_middleware::Next<'_>,
        ) -> reqwest_middleware::Result<reqwest::Response> {
            let method = req.method().clone();
            let site =
                self.sites.site(method_name(&method), req.url().host_str(), req.url().port());
            let Some(site) = site else {
                send_traceparent(&Span::current(), req.headers_mut());
                return next.run(req, extensions).await;
            };
            let make = |span: Span| {
                send_traceparent(&span, req.headers_mut());
                let server = (req.url().host_str(), req.url().port_or_known_default());
                annotate_client(&span, method_name(&method), server, || {
                    url_without_secrets(req.url())
                });
                next.run(req, extensions)
            };
            let classify = |r: &reqwest_middleware::Result<reqwest::Response>| {
                client_outcome_of(r.as_ref().ok().map(reqwest::Response::status))
            };
            site.instrument_with(make, classify).await
        }
    }
}

#[cfg(test)]
mod fuzz_tests {
    use super::*;

    /// Generated methods and paths: names come from a bounded set of methods, and route
    /// naming never panics.
    #[test]
    fn methods_and_paths_name_few_sites() {
        let mut gen = crate::fuzz::Inputs(0xdead_beef_cafe_f00d);
        let mut methods = std::collections::HashSet::new();
        for _ in 0..20_000 {
            let raw = gen.string(4);
            if let Ok(m) = http::Method::from_bytes(raw.as_bytes()) {
                methods.insert(method_name(&m));
            }
            let mut route = String::new();
            push_route(&gen.string(10), &mut route);
            assert!(!route.is_empty());
        }
        assert!(methods.len() <= 10, "{methods:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(path: &str) -> String {
        let mut out = String::new();
        push_route(path, &mut out);
        out
    }

    #[test]
    fn id_like_segments_become_one_route() {
        assert_eq!(route("/users/42/orders"), "/users/{id}/orders");
        assert_eq!(route("/o/3fa85f64-5717-4562-b3fc-2c963f66afa6"), "/o/{id}");
        assert_eq!(route("/blob/9f86d081884c7d65"), "/blob/{id}");
        assert_eq!(route(&format!("/t/{}", "x".repeat(40))), "/t/{id}");
        assert_eq!(route("/static/app.css"), "/static/app.css");
        assert_eq!(route("/deadbeefcafe"), "/deadbeefcafe", "hex words without digits stay");
        assert_eq!(route("/v2/health"), "/v2/health");
        assert_eq!(route("/"), "/");
        assert_eq!(route(""), "/");
        assert_eq!(route("/a//b/"), "/a//b/", "empty segments kept");
        assert_eq!(route("users/7"), "users/{id}");
        assert_eq!(route("/é/12/ü"), "/é/{id}/ü");
        assert_eq!(route("/x/-"), "/x/-", "no digit, no id");
    }

    #[test]
    fn server_errors_are_named_by_status() {
        assert_eq!(status_kind(StatusCode::OK), None);
        assert_eq!(status_kind(StatusCode::NOT_FOUND), None);
        assert_eq!(status_kind(StatusCode::SERVICE_UNAVAILABLE), Some("http_503"));
        assert_eq!(status_kind(StatusCode::from_u16(599).unwrap()), Some("http_599"));
        assert_eq!(status_kind(StatusCode::from_u16(700).unwrap()), Some("http_5xx"));
    }

    #[test]
    fn client_sites_never_carry_credentials() {
        let site = ClientSites::new().site("GET", Some("api.example.com"), Some(8443)).unwrap();
        assert_eq!(site.name(), "GET api.example.com:8443");
        assert_eq!(site.category(), Some(HTTP_CLIENT));
        let uri: http::Uri = "https://user:pw@api.example.com:8443/a?token=1".parse().unwrap();
        assert_eq!(uri_without_secrets(&uri), "https://api.example.com:8443/a");
        let mut h = http::HeaderMap::new();
        h.insert(HOST, http::HeaderValue::from_static("svc.local:81"));
        assert_eq!(host_header(&h), Some("svc.local"));
    }

    #[test]
    fn host_and_port_read_authorities_as_http_does() {
        for uri in [
            "http://a.example/x",
            "http://a.example:8080/x",
            "https://user:pw@a.example:8443/",
            "https://user@a.example/",
            "http://user:pw@a.example/",
            "http://[::1]:9000/",
            "http://[::1]/",
            "http://user@[fe80::1]:81/",
            "http://a.example:/x",
            "http://127.0.0.1:65535",
            "a.example:443",
        ] {
            let uri: http::Uri = uri.parse().unwrap();
            let authority = uri.authority().unwrap().as_str();
            assert_eq!(host_and_port(authority), (uri.host().unwrap(), uri.port_u16()), "{uri}");
        }
    }

    #[test]
    fn the_last_site_is_kept_only_for_requests_named_like_it() {
        assert!(is_client_site("GET a.example:8080", "GET", Some("a.example"), Some(8080)));
        assert!(is_client_site("GET a.example", "GET", Some("a.example"), None));
        assert!(is_client_site("GET (no host)", "GET", None, None));
        for (method, host, port) in [
            ("POST", Some("a.example"), Some(8080)),
            ("GET", Some("a.example"), Some(808)),
            ("GET", Some("a.example"), Some(80800)),
            ("GET", Some("a.exampl"), Some(8080)),
            ("GET", Some("a.example"), None),
            ("GET", None, Some(8080)),
        ] {
            let port = port.and_then(|p: u32| u16::try_from(p).ok());
            assert!(!is_client_site("GET a.example:8080", method, host, port), "{host:?} {port:?}");
        }
    }

    #[test]
    fn a_site_named_by_an_authority_is_that_authoritys_site() {
        // Every pair: when a request's authority matches the name of another's site, both
        // are named alike by host and port (so the last site may be kept without parsing).
        let authorities = [
            "a.example",
            "a.example:8080",
            "a.example:08080",
            "a.example:",
            "a.example:99999",
            "u:p@a.example:8080",
            "u@a.example",
            "[::1]",
            "[::1]:80",
            "[::1]:080",
            "u@[fe80::1]:81",
            "127.0.0.1:65535",
        ];
        let name = |a: &str| {
            let (host, port) = host_and_port(a);
            let mut buf = String::new();
            push_client_name("GET", Some(host), port, &mut buf);
            buf
        };
        let mut matched = 0;
        for earlier in authorities {
            for now in authorities {
                let _ = now.parse::<http::uri::Authority>().unwrap();
                if names_authority(&name(earlier), "GET", now) {
                    assert_eq!(name(now), name(earlier), "{earlier} then {now}");
                    matched += 1;
                }
            }
        }
        // Authorities spelled as names spell them (5 of them) match each authority named so:
        // `a.example` four, `a.example:8080` three, `[::1]:80` two, the others one.
        assert_eq!(matched, 11);
        assert!(!names_authority("POST a.example", "GET", "a.example"));
    }

    /// Requests to two servers in turn through one service: each counted at its own site.
    #[test]
    fn alternating_servers_count_at_their_own_sites() {
        #[derive(Clone)]
        struct Ok200;
        impl Service<Request<()>> for Ok200 {
            type Response = Response<()>;
            type Error = std::convert::Infallible;
            type Future = std::future::Ready<Result<Response<()>, Self::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<()>) -> Self::Future {
                std::future::ready(Ok(Response::new(())))
            }
        }
        let mut svc = ClientLayer::new().layer(Ok200);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let uris =
            ["http://turn-a.internal/x", "http://turn-b.internal:81/y", "http://turn-a.internal/z"];
        for uri in uris.iter().cycle().take(30) {
            let req = http::Request::get(*uri).body(()).unwrap();
            rt.block_on(svc.call(req)).unwrap();
        }
        let snap = registry().snapshot();
        assert_eq!(snap.function("GET turn-a.internal").unwrap().success, 20);
        assert_eq!(snap.function("GET turn-b.internal:81").unwrap().success, 10);
    }
}
