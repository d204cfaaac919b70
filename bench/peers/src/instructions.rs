//! Instructions per call, counted instead of timed: `bench/peers/instructions` runs this
//! binary under valgrind's callgrind once per workload and divides what `counted` executed by
//! its number of calls. A count does not move with the machine's load as times do on a shared
//! machine, so it shows a change of a few instructions that a timing run cannot tell from
//! noise; it does not see what a locked instruction, a cache miss or a clock read costs in
//! time, so it goes beside the timed tables, not in place of them.
//!
//! Each workload runs 1,000 calls first (a site's first call, thread-locals, buffers), then
//! `n` inside `counted`, the only function callgrind counts in.

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::Empty;
use monitor_http::layer::{ClientLayer, ServerLayer};
use tower_layer::Layer;
use tower_service::Service;

use crate::{dispatch, Subscriber, VARIANTS};

/// A service that answers at once. Requests and responses have empty bodies of a body type,
/// which tower-http's layer needs (and `()` is not).
#[derive(Clone)]
struct Answer;

impl Service<Request<Empty<Bytes>>> for Answer {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Response<Empty<Bytes>>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<Empty<Bytes>>) -> Self::Future {
        black_box(req);
        ready(Ok(Response::new(Empty::new())))
    }
}

/// One request made and answered through `svc`, polled once with a no-op waker.
fn request<S, B>(svc: &mut S, uri: &'static str) -> bool
where
    S: Service<Request<Empty<Bytes>>, Response = Response<B>>,
{
    let mut req = Request::new(Empty::new());
    *req.uri_mut() = Uri::from_static(uri);
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = std::pin::pin!(svc.call(req));
    matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(_)))
}

#[monitor_core::monitored]
#[inline(never)]
async fn monitored_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(3)
}

#[inline(never)]
async fn plain_async(x: u64) -> u64 {
    black_box(x).wrapping_mul(3)
}

fn poll_once<F: Future<Output = u64>>(fut: F) -> u64 {
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => 0,
    }
}

/// The workloads besides the peer variants (named by their position there): an async call,
/// and requests through the HTTP layers.
pub const WORKLOADS: [&str; 7] = [
    "async fn, no instrumentation",
    "async fn, #[monitored]",
    "request, bare service",
    "request, ServerLayer with a route fn",
    "request, ServerLayer, default route",
    "request, ClientLayer (sends traceparent)",
    "request, tower-http TraceLayer (tracing registry)",
];

/// Runs `body` 1,000 times, then `n` times inside [`counted`].
fn run(n: u64, mut body: impl FnMut(u64) -> u64) {
    for i in 0..1_000 {
        black_box(body(i));
    }
    black_box(counted(n, &mut body));
}

/// The calls callgrind counts (`--toggle-collect`).
#[inline(never)]
fn counted(n: u64, body: &mut dyn FnMut(u64) -> u64) -> u64 {
    (0..n).fold(0u64, |acc, i| acc.wrapping_add(body(i)))
}

/// Runs workload `which` (a peer variant's name or one of [`WORKLOADS`]) `n` times; `false`
/// if there is no such workload.
pub fn count(which: &str, n: u64) -> bool {
    if let Some((_, f, subscriber)) = VARIANTS.iter().find(|(name, ..)| *name == which) {
        let _default = dispatch(*subscriber).map(|d| tracing::dispatcher::set_default(&d));
        run(n, |i| f(i).unwrap_or(0));
        return true;
    }
    let routed = |p: &http::request::Parts| {
        p.uri.path().starts_with("/users/").then(|| "/users/{id}".into())
    };
    let client_uri = "http://inventory.internal:8080/stock/7";
    match WORKLOADS.iter().position(|w| *w == which) {
        Some(0) => run(n, |i| poll_once(plain_async(i))),
        Some(1) => run(n, |i| poll_once(monitored_async(i))),
        Some(2) => run(n, |_| u64::from(request(&mut Answer, "/users/42"))),
        Some(3) => {
            let mut svc = ServerLayer::new().route(routed).layer(Answer);
            run(n, |_| u64::from(request(&mut svc, "/users/42")));
        }
        Some(4) => {
            let mut svc = ServerLayer::new().layer(Answer);
            run(n, |_| u64::from(request(&mut svc, "/users/42")));
        }
        Some(5) => {
            let mut svc = ClientLayer::new().layer(Answer);
            run(n, |_| u64::from(request(&mut svc, client_uri)));
        }
        Some(6) => {
            // What a tracing user puts in front of a service: a span per request, at INFO so
            // that the registry's filter lets it through (its events stay at DEBUG, filtered
            // out), under the same registry as the tracing rows.
            let _default =
                dispatch(Subscriber::Registry).map(|d| tracing::dispatcher::set_default(&d));
            let spans = tower_http::trace::DefaultMakeSpan::new().level(tracing::Level::INFO);
            let layer = tower_http::trace::TraceLayer::new_for_http().make_span_with(spans);
            let mut svc = layer.layer(Answer);
            run(n, |_| u64::from(request(&mut svc, "/users/42")));
        }
        _ => return false,
    }
    true
}
