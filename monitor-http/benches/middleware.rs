//! What the web middleware adds to a request: a service that answers at once, bare and behind
//! `ServerLayer` (named by a route function, and by the path), and behind `ClientLayer`.
//! Polled in place with a no-op waker, so only the middleware's work is measured.
//!
//! `cargo bench -p monitor-http --bench middleware`

use std::convert::Infallible;
use std::future::{ready, Future, Ready};
use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use criterion::{criterion_group, criterion_main, Criterion};
use http::{Request, Response, Uri};
use monitor_http::layer::{ClientLayer, ServerLayer};
use tower_layer::Layer;
use tower_service::Service;

#[derive(Clone)]
struct Answer;

impl Service<Request<()>> for Answer {
    type Response = Response<()>;
    type Error = Infallible;
    type Future = Ready<Result<Response<()>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<()>) -> Self::Future {
        black_box(req);
        ready(Ok(Response::new(())))
    }
}

fn request(uri: &'static str) -> Request<()> {
    let mut req = Request::new(());
    *req.uri_mut() = Uri::from_static(uri);
    req
}

fn once<S>(svc: &mut S, uri: &'static str) -> bool
where
    S: Service<Request<()>, Response = Response<()>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    let mut fut = std::pin::pin!(svc.call(request(uri)));
    matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(_)))
}

fn middleware(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    let mut bare = Answer;
    g.bench_function("bare service", |b| b.iter(|| once(&mut bare, "/users/42")));
    let mut routed = ServerLayer::new()
        .route(|p| p.uri.path().starts_with("/users/").then(|| "/users/{id}".into()))
        .layer(Answer);
    g.bench_function("ServerLayer, route fn", |b| b.iter(|| once(&mut routed, "/users/42")));
    let mut by_path = ServerLayer::new().layer(Answer);
    g.bench_function("ServerLayer, default route", |b| b.iter(|| once(&mut by_path, "/users/42")));
    let mut client = ClientLayer::new().layer(Answer);
    g.bench_function("ClientLayer (sends traceparent)", |b| {
        b.iter(|| once(&mut client, "http://inventory.internal:8080/stock/7"))
    });
    g.finish();
}

criterion_group!(benches, middleware);
criterion_main!(benches);
