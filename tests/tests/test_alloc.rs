//! The counting allocator: process figures like Go's memstats, and allocations per call of
//! every monitored function (sync and async, nested calls included).

use std::hint::black_box;

use monitor_core::alloc::CountingAllocator;
use monitor_core::{monitored, registry};

mod common;
use common::{Answer, ServiceFn};

/// Answers at once, allocating nothing.
fn answer(_: http::Request<()>) -> http::Response<()> {
    http::Response::new(())
}

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::system();

#[monitored]
fn allocates_one_kib() -> usize {
    black_box(vec![0u8; 1024]).len()
}

#[monitored]
fn allocates_nothing(x: u64) -> u64 {
    black_box(x) * 2
}

#[monitored]
fn outer() -> usize {
    allocates_one_kib() + black_box(Box::new(7usize)).as_ref()
}

#[monitored]
async fn async_allocates() -> usize {
    let a = black_box(vec![1u8; 100]);
    tokio::task::yield_now().await;
    let b = black_box(vec![2u8; 200]);
    a.len() + b.len()
}

#[test]
fn allocations_are_attributed_per_call() {
    for _ in 0..10 {
        allocates_one_kib();
        allocates_nothing(3);
        outer();
    }
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for _ in 0..5 {
        assert_eq!(rt.block_on(async_allocates()), 300);
    }
    let snap = registry().snapshot();
    let f = |name: &str| snap.function(&format!("test_alloc::{name}")).unwrap().clone();
    let one = f("allocates_one_kib");
    assert_eq!(one.calls(), 20);
    assert_eq!(one.allocations_per_call(), (1.0, 1024.0));
    assert_eq!(f("allocates_nothing").allocations, 0);
    let o = f("outer");
    assert_eq!(o.allocations_per_call(), (2.0, 1024.0 + 8.0), "nested calls count in the caller");
    let a = f("async_allocates");
    assert_eq!(a.allocations_per_call(), (2.0, 300.0), "allocations across polls add up");

    let stats = snap.alloc.expect("the counting allocator is installed");
    assert!(stats.allocations >= 50 && stats.frees <= stats.allocations);
    assert!(stats.allocated_bytes >= 20 * 1024 + 5 * 300);
    assert!(stats.in_use_bytes() > 0 && stats.live_objects() > 0);

    let mut text = String::new();
    monitor_http::write_text(&snap, &mut text);
    assert!(text.contains("] test_alloc::allocates_one_kib\n"));
    assert!(text.contains("  allocates: 1.0 times, 1024 bytes per call\n"), "{text}");
    let mut vars = String::new();
    monitor_http::write_expvar(&snap, &mut vars);
    let v: serde_json::Value = serde_json::from_str(&vars).unwrap();
    assert_eq!(v["memstats"]["Mallocs"], stats.allocations);
    assert_eq!(v["memstats"]["TotalAlloc"], stats.allocated_bytes);
    assert_eq!(v["memstats"]["HeapObjects"], stats.live_objects());
    let mut prom = String::new();
    monitor_http::write_prometheus(&snap, &Default::default(), Default::default(), &mut prom);
    assert!(prom.contains(
        "function_allocated_bytes_total{name=\"test_alloc::allocates_one_kib\",scope=\"test_alloc\"} 20480\n"
    ));
}

/// Serves 100 requests through the server middleware (what it allocates is counted here).
#[monitored]
fn serve_100(svc: &mut monitor_http::layer::ServerService<ServiceFn<Answer>>) -> usize {
    use std::future::Future;
    use tower_service::Service;
    let mut ok = 0;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for i in 0..100 {
        let mut req = http::Request::new(());
        *req.uri_mut() = http::Uri::from_static(if i % 2 == 0 { "/users/42" } else { "/users/7" });
        let mut fut = std::pin::pin!(svc.call(req));
        if let std::task::Poll::Ready(Ok(resp)) = fut.as_mut().poll(&mut cx) {
            ok += usize::from(resp.status() == 200);
        }
    }
    ok
}

#[test]
fn a_request_through_the_server_middleware_allocates_nothing() {
    use tower_layer::Layer;
    let mut svc = monitor_http::layer::ServerLayer::new()
        .route(|parts| parts.uri.path().starts_with("/users/").then(|| "/users/{id}".into()))
        .layer(ServiceFn(answer as Answer));
    // The first requests make the route's site and its statistics.
    assert_eq!(serve_100(&mut svc), 100);
    let before = registry().snapshot().function("test_alloc::serve_100").unwrap().allocations;
    assert_eq!(serve_100(&mut svc), 100);
    let after = registry().snapshot().function("test_alloc::serve_100").unwrap().allocations;
    assert_eq!(after - before, 0, "allocations in 100 requests");
    assert_eq!(registry().snapshot().function("GET /users/{id}").unwrap().calls(), 200);
}

/// Answers with responses made beforehand, so the service allocates nothing of its own.
struct Prebuilt(Vec<http::Response<()>>);

impl tower_service::Service<http::Request<()>> for Prebuilt {
    type Response = http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<http::Response<()>, std::convert::Infallible>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::ready(Ok(self.0.pop().unwrap_or_default()))
    }
}

/// Serves the requests through the server middleware, counting its users and answering with
/// the trace id (what it allocates is counted here).
#[monitored]
fn serve_all(
    svc: &mut monitor_http::layer::ServerService<Prebuilt>,
    requests: Vec<http::Request<()>>,
) -> usize {
    poll_each(svc, requests, |resp| resp.headers().contains_key("x-trace-id"))
}

/// Polls each request's future once through `svc` (services here answer at once); how many
/// answers `good` accepts.
fn poll_each<S>(
    svc: &mut S,
    requests: Vec<http::Request<()>>,
    good: impl Fn(&http::Response<()>) -> bool,
) -> usize
where
    S: tower_service::Service<http::Request<()>, Response = http::Response<()>>,
{
    use std::future::Future;
    let mut ok = 0;
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for req in requests {
        let mut fut = std::pin::pin!(svc.call(req));
        if let std::task::Poll::Ready(Ok(resp)) = fut.as_mut().poll(&mut cx) {
            ok += usize::from(good(&resp));
        }
    }
    ok
}

#[test]
fn users_and_the_trace_id_header_cost_no_allocation() {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    use std::time::Duration;
    use tower_layer::Layer;
    let users = monitor_core::UniqueUsers::new(Duration::from_secs(300));
    let identity = monitor_http::identity::UserIdentity::new()
        .trusted_forwarded_for("x-forwarded-for")
        .unwrap();
    let layer = monitor_http::layer::ServerLayer::new()
        .route(|_| Some("/cart".into()))
        .users(users.clone(), identity)
        .trace_id_header("x-trace-id")
        .unwrap();
    // Half the users by the peer address (v4 and v6), half by the header.
    let requests = |n: usize| -> Vec<http::Request<()>> {
        (0..n)
            .map(|i| {
                let mut req = http::Request::new(());
                *req.uri_mut() = http::Uri::from_static("/cart");
                let peer = match i % 3 {
                    0 => SocketAddr::from((Ipv4Addr::new(10, 0, 0, (i % 7) as u8), 40000)),
                    _ => {
                        SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16), 1))
                    }
                };
                req.extensions_mut().insert(peer);
                if i % 2 == 0 {
                    let forwarded =
                        http::HeaderValue::from_str(&format!("192.0.2.{}", i % 9)).unwrap();
                    req.headers_mut().insert("x-forwarded-for", forwarded);
                }
                req
            })
            .collect()
    };
    let responses = |n: usize| {
        let mut v: Vec<http::Response<()>> = (0..n).map(|_| http::Response::new(())).collect();
        v.iter_mut().for_each(|r| r.headers_mut().reserve(1));
        Prebuilt(v)
    };
    let mut svc = layer.clone().layer(responses(100));
    assert_eq!(serve_all(&mut svc, requests(100)), 100);
    let mut svc = layer.layer(responses(100));
    let before = registry().snapshot().function("test_alloc::serve_all").unwrap().allocations;
    assert_eq!(serve_all(&mut svc, requests(100)), 100);
    let after = registry().snapshot().function("test_alloc::serve_all").unwrap().allocations;
    assert_eq!(after - before, 0, "allocations in 100 requests");
    assert_eq!(registry().snapshot().function("GET /cart").unwrap().calls(), 200);
    assert!(users.estimate() > 20, "the users were counted: {}", users.estimate());
}

/// Sends the requests through the client middleware (what it allocates is counted here).
#[monitored]
fn send_all(
    svc: &mut monitor_http::layer::ClientService<ServiceFn<Answer>>,
    requests: Vec<http::Request<()>>,
) -> usize {
    poll_each(svc, requests, |resp| resp.status() == 200)
}

/// Requests whose header maps have room for one more header, as a client's usually do once it
/// has set its own: inserting `traceparent` then needs no allocation of the map's, and the
/// value's bytes come from a chunk shared by about 290 of them (the first request's).
fn outgoing(n: usize) -> Vec<http::Request<()>> {
    (0..n)
        .map(|i| {
            let mut req = http::Request::new(());
            *req.uri_mut() = http::Uri::from_static(if i % 2 == 0 {
                "http://inventory.internal:8080/stock/7"
            } else {
                "https://payments.internal/pay"
            });
            req.headers_mut().reserve(1);
            req
        })
        .collect()
}

#[test]
fn a_request_through_the_client_middleware_allocates_nothing() {
    use tower_layer::Layer;
    let mut svc = monitor_http::layer::ClientLayer::new().layer(ServiceFn(answer as Answer));
    // The first requests make the hosts' sites and their statistics.
    assert_eq!(send_all(&mut svc, outgoing(100)), 100);
    let before = registry().snapshot().function("test_alloc::send_all").unwrap().allocations;
    assert_eq!(send_all(&mut svc, outgoing(100)), 100);
    let after = registry().snapshot().function("test_alloc::send_all").unwrap().allocations;
    assert_eq!(after - before, 0, "allocations in 100 requests");
    let snap = registry().snapshot();
    assert_eq!(snap.function("GET inventory.internal:8080").unwrap().calls(), 100);
    assert_eq!(snap.function("GET payments.internal").unwrap().calls(), 100);
}

#[monitored]
fn traced_leaf() -> usize {
    // Three allocations: 10 + 20 + 30 bytes.
    let v = (black_box(vec![0u8; 10]), black_box(vec![0u8; 20]), black_box(vec![0u8; 30]));
    monitor_core::trace::annotate("leaf", true);
    v.0.len() + v.1.len() + v.2.len()
}

#[monitored]
fn traced_root() -> usize {
    // Two of its own (8 + 16 bytes), then its child's three.
    let mine = (black_box(Box::new(1u64)), black_box(vec![0u8; 16]));
    monitor_core::trace::checkpoint("before the leaf");
    *mine.0 as usize + mine.1.len() + traced_leaf()
}

#[monitored]
async fn traced_async_root() -> usize {
    let a = black_box(vec![0u8; 40]);
    tokio::task::yield_now().await;
    // A task of its own, carried by the span: counted in its own span, not in this one.
    let spawned = tokio::spawn(monitor_core::FutureExt::with_current_span(async {
        black_box(vec![0u8; 50]).len()
    }));
    a.len() + spawned.await.unwrap_or(0) + traced_leaf()
}

#[test]
fn recorded_spans_carry_their_allocations() {
    use monitor_core::trace::{SpanAllocations, Watch, WatchFilter};
    let watch =
        Watch::start(WatchFilter::function(|s| s.name() == "test_alloc::traced_root")).unwrap();
    traced_root();
    let trace = watch.wait(std::time::Duration::from_secs(10)).unwrap();
    let span = |name: &str| {
        trace.spans.iter().find(|s| s.name == name).and_then(|s| s.allocations).unwrap()
    };
    // The monitor's own bookkeeping (records, annotations, checkpoints) counts in no span.
    let leaf = SpanAllocations { count: 3, bytes: 60, self_count: 3, self_bytes: 60 };
    assert_eq!(span("test_alloc::traced_leaf"), leaf);
    let root = SpanAllocations { count: 5, bytes: 84, self_count: 2, self_bytes: 24 };
    assert_eq!(span("test_alloc::traced_root"), root);

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let watch =
        Watch::start(WatchFilter::function(|s| s.name() == "test_alloc::traced_async_root"))
            .unwrap();
    assert_eq!(rt.block_on(traced_async_root()), 150);
    let trace = watch.wait(std::time::Duration::from_secs(10)).unwrap();
    let root = trace
        .spans
        .iter()
        .find(|s| s.name == "test_alloc::traced_async_root")
        .and_then(|s| s.allocations)
        .unwrap();
    // Its own vector and its awaited leaf's three; the spawned task's is elsewhere. (The
    // spawn itself allocates the task, in the root's own stretch.)
    assert_eq!((root.count - root.self_count, root.bytes - root.self_bytes), (3, 60));
    assert!(root.self_count >= 1 && root.self_bytes >= 40, "{root:?}");

    // In every trace view, and in the text form.
    let mut out = String::new();
    monitor_http::write_trace_json(&trace, &mut out);
    assert!(out.contains("\"allocations\":{\"count\":"), "{out}");
    out.clear();
    monitor_http::write_trace_text(&trace, &mut out);
    assert!(out.contains("call test_alloc::traced_leaf ["), "{out}");
    assert!(out.contains("allocates 3 (60 B), own 3 (60 B)"), "{out}");
    out.clear();
    monitor_http::write_trace_svg(&trace, &mut out);
    assert!(out.contains("allocates 3 (60 B), own 3 (60 B)"), "{out}");
}
