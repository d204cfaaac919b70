//! The web middleware with real servers and clients: two axum services in one process on
//! loopback, the shop calling payments through hyper-util's client (with `ClientLayer`) or
//! reqwest (with `ReqwestMiddleware`), both behind `ServerLayer`, the monitor's routes mounted
//! under `/monitor` of the shop.
//!
//! Ports: every service listens on a free loopback port.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use monitor_core::trace::{self, SpanObserver, SpanRecord, TraceParent};
use monitor_core::{monitored, registry, ErrorKind, SpanId, TraceId, UniqueUsers};
use monitor_http::export::ExportConfig;
use monitor_http::identity::UserIdentity;
use monitor_http::layer::{ClientLayer, ReqwestMiddleware, ServerLayer};
use tower_layer::Layer;
use tower_service::Service;

use common::{get_with, turn};

#[derive(Debug, ErrorKind)]
enum Declined {
    Card,
}

/// Payments: order 0 is declined.
#[monitored]
async fn charge(order: u32) -> Result<u32, Declined> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if order == 0 {
        Err(Declined::Card)
    } else {
        Ok(order * 100)
    }
}

async fn pay(Path(order): Path<u32>) -> (StatusCode, String) {
    match charge(order).await {
        Ok(cents) => (StatusCode::OK, cents.to_string()),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "declined".into()),
    }
}

type HyperClient = monitor_http::layer::ClientService<
    hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>,
>;

#[derive(Clone)]
struct Shop {
    payments: SocketAddr,
    hyper: HyperClient,
    reqwest: reqwest_middleware::ClientWithMiddleware,
}

/// The shop's handler: asks payments over hyper-util's client, answers with its status.
#[monitored]
async fn checkout(shop: Shop, order: u32) -> Result<String, StatusCode> {
    let uri = format!("http://{}/pay/{order}", shop.payments);
    let req = http::Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
    let mut client = shop.hyper.clone();
    let resp = client.call(req).await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let body = String::from_utf8_lossy(&body.to_bytes()).into_owned();
    if status.is_success() {
        Ok(body)
    } else {
        Err(status)
    }
}

/// The same over reqwest.
#[monitored]
async fn checkout_reqwest(shop: Shop, order: u32) -> Result<String, StatusCode> {
    let url = format!("http://user:secret@{}/pay/{order}", shop.payments);
    let resp = shop.reqwest.get(url).send().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    let status = resp.status();
    let body = resp.text().await.map_err(|_| StatusCode::BAD_GATEWAY)?;
    if status.is_success() {
        Ok(body)
    } else {
        Err(status)
    }
}

async fn shop_checkout(State(shop): State<Shop>, Path(order): Path<u32>) -> (StatusCode, String) {
    match checkout(shop, order).await {
        Ok(body) => (StatusCode::OK, body),
        Err(status) => (status, String::new()),
    }
}

async fn shop_checkout_reqwest(
    State(shop): State<Shop>,
    Path(order): Path<u32>,
) -> (StatusCode, String) {
    match checkout_reqwest(shop, order).await {
        Ok(body) => (StatusCode::OK, body),
        Err(status) => (status, String::new()),
    }
}

/// Held by `/slow` until released.
static SLOW: OnceLock<tokio::sync::Notify> = OnceLock::new();

async fn slow() -> &'static str {
    SLOW.get_or_init(tokio::sync::Notify::new).notified().await;
    "done"
}

struct Services {
    shop: SocketAddr,
    payments: SocketAddr,
    users: UniqueUsers,
    _rt: tokio::runtime::Runtime,
}

/// Both services on one runtime, each on its own port.
fn start() -> Services {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let rt = rt.unwrap();
    let users = UniqueUsers::new(Duration::from_secs(300));
    let (shop, payments) = rt.block_on(async {
        let payments_app = Router::new()
            .route("/pay/{order}", get(pay))
            .layer(ServerLayer::new().trace_id_header("x-trace-id").unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let payments = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, payments_app).await });

        let connector =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let reqwest = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(ReqwestMiddleware::new())
            .build();
        let shop = Shop { payments, hyper: ClientLayer::new().layer(connector), reqwest };
        let identity = UserIdentity::new().cookies(&["session"]);
        let shop_app = Router::new()
            .route("/checkout/{order}", get(shop_checkout))
            .route("/checkout-reqwest/{order}", get(shop_checkout_reqwest))
            .route("/slow", get(slow))
            .with_state(shop)
            .merge(monitor_http::axum_router("/monitor").unwrap())
            .layer(
                ServerLayer::new()
                    .trace_id_header("x-trace-id")
                    .unwrap()
                    .users(users.clone(), identity),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, shop_app.into_make_service_with_connect_info::<SocketAddr>())
                .await
        });
        (addr, payments)
    });
    Services { shop, payments, users, _rt: rt }
}

/// Collects every finished span of the traces it is told to keep.
#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Arc<SpanRecord>>>>);

impl SpanObserver for Collect {
    fn observe(&mut self, spans: &[Arc<SpanRecord>]) {
        self.0.lock().unwrap().extend(spans.iter().cloned());
    }
}

impl Collect {
    /// The spans of `trace`, once `count` of them arrived (10 s at most).
    fn trace(&self, trace: TraceId, count: usize) -> Vec<Arc<SpanRecord>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let spans: Vec<_> =
                self.0.lock().unwrap().iter().filter(|s| s.trace_id == trace).cloned().collect();
            if spans.len() >= count || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn named<'a>(spans: &'a [Arc<SpanRecord>], name: &str) -> &'a SpanRecord {
    let found: Vec<_> = spans.iter().filter(|s| s.name == name).collect();
    let names: Vec<_> = spans.iter().map(|s| s.name).collect();
    assert_eq!(found.len(), 1, "one span {name} in {names:?}");
    found[0]
}

fn annotation(span: &SpanRecord, key: &str) -> String {
    span.annotations
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| format!("{v:?}"))
        .unwrap_or_else(|| panic!("{} has no {key}: {:?}", span.name, span.annotations))
}

fn observer() -> &'static Collect {
    static COLLECT: OnceLock<Collect> = OnceLock::new();
    COLLECT.get_or_init(|| {
        let collect = Collect::default();
        // Lives for the whole test binary.
        std::mem::forget(trace::add_observer("middleware-test", collect.clone(), 100_000));
        trace::set_sample_ratio(1.0).unwrap();
        collect
    })
}

/// One request through both services is one trace, linked parent to child across them; sent
/// over OTLP, its spans have the kinds and HTTP attributes OpenTelemetry gives them.
fn one_trace_through(path: &str, handler: &str, trace_hex: &str) {
    let _turn = turn();
    let collect = observer();
    let receiver = common::Receiver::start(vec![]);
    let exporter = ExportConfig::otlp(&receiver.url("/v1/traces")).unwrap().start();
    let services = start();
    let tp: TraceParent = format!("00-{trace_hex}-00f067aa0ba902b7-01").parse().unwrap();
    let r = get_with(services.shop, path, &format!("traceparent: {tp}\r\n"));
    assert_eq!((r.status, r.body.as_str()), (200, "700"));
    assert_eq!(r.header("x-trace-id"), trace_hex);

    let spans = collect.trace(tp.trace_id, 5);
    assert_eq!(spans.len(), 5, "{:?}", spans.iter().map(|s| s.name).collect::<Vec<_>>());
    let shop = named(&spans, &format!("GET {}", path.replace("/7", "/{order}")));
    let handler = named(&spans, handler);
    let client_name = format!("GET 127.0.0.1:{}", payments_port(&spans));
    let client = named(&spans, &client_name);
    let payments = named(&spans, "GET /pay/{order}");
    let charge = named(&spans, "test_middleware::charge");

    assert_eq!(shop.parent_id, Some(tp.parent_id));
    assert!(shop.remote_parent);
    assert_eq!(shop.category, Some("http_server"));
    assert_eq!(handler.parent_id, Some(shop.span_id));
    assert_eq!(client.parent_id, Some(handler.span_id));
    assert_eq!(client.category, Some("http_client"));
    assert_eq!(payments.parent_id, Some(client.span_id));
    assert!(payments.remote_parent, "payments learnt its parent from traceparent");
    assert_eq!(charge.parent_id, Some(payments.span_id));
    assert!(spans.iter().all(|s| s.trace_id == tp.trace_id));

    exporter.shutdown();
    check_otlp_kinds(&receiver, tp.trace_id, [shop.span_id, client.span_id, payments.span_id]);

    assert_eq!(annotation(shop, "http.response.status_code"), "I64(200)");
    assert!(annotation(shop, "url.path").contains(path));
    assert!(annotation(client, "url.full").contains("/pay/7"));
    assert!(!annotation(client, "url.full").contains("secret"), "no credentials in spans");
    // Children start after and end before their parents, across both services.
    for (parent, child) in [(shop, handler), (handler, client), (client, payments)] {
        assert!(child.start_unix_ns >= parent.start_unix_ns, "{} {}", parent.name, child.name);
        assert!(
            child.start_unix_ns + child.duration_ns <= parent.start_unix_ns + parent.duration_ns,
            "{} ends after {}",
            child.name,
            parent.name
        );
    }
}

/// The exported spans of `trace`: the shop's and the payments' are SERVER spans with their
/// route, the shop's call to payments a CLIENT span with the server's address and port, the
/// rest INTERNAL.
fn check_otlp_kinds(
    receiver: &common::Receiver,
    trace: TraceId,
    [shop, client, payments]: [SpanId; 3],
) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
    use prost::Message;
    let spans: Vec<_> = receiver
        .take()
        .iter()
        .map(|p| ExportTraceServiceRequest::decode(p.body.as_slice()).unwrap())
        .flat_map(|r| r.resource_spans)
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .filter(|s| s.trace_id == trace.to_u128().to_be_bytes())
        .collect();
    assert_eq!(spans.len(), 5, "every span of the trace exported");
    let by_id = |id: SpanId| {
        spans.iter().find(|s| s.span_id == id.to_u64().to_be_bytes()).expect("the span exported")
    };
    let attr = |s: &opentelemetry_proto::tonic::trace::v1::Span, key: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.clone())
            .unwrap_or_else(|| panic!("{} has no {key}", s.name))
    };
    // The shop is asked with `Host: test`, payments by the client with its address.
    for (id, host) in [(shop, "test"), (payments, "127.0.0.1")] {
        let s = by_id(id);
        assert_eq!(s.kind, SpanKind::Server as i32, "{}", s.name);
        let route = s.name.split_once(' ').unwrap().1;
        assert_eq!(attr(s, "http.route"), Any::StringValue(route.to_string()));
        assert_eq!(attr(s, "server.address"), Any::StringValue(host.into()));
    }
    let c = by_id(client);
    assert_eq!(c.kind, SpanKind::Client as i32);
    assert_eq!(attr(c, "server.address"), Any::StringValue("127.0.0.1".into()));
    let port: i64 = c.name.rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(attr(c, "server.port"), Any::IntValue(port));
    let internal = spans.iter().filter(|s| s.kind == SpanKind::Internal as i32).count();
    assert_eq!(internal, 2, "the handler and charge");
}

/// The port of payments, from the client span's name.
fn payments_port(spans: &[Arc<SpanRecord>]) -> String {
    let client = spans.iter().find(|s| s.category == Some("http_client")).expect("a client span");
    client.name.rsplit(':').next().unwrap().to_string()
}

#[test]
fn a_request_through_two_services_is_one_trace_with_hyper_util() {
    one_trace_through(
        "/checkout/7",
        "test_middleware::checkout",
        "4bf92f3577b34da6a3ce929d0e0e4736",
    );
}

#[test]
fn a_request_through_two_services_is_one_trace_with_reqwest() {
    one_trace_through(
        "/checkout-reqwest/7",
        "test_middleware::checkout_reqwest",
        "5bf92f3577b34da6a3ce929d0e0e4737",
    );
}

fn calls(name: &str) -> (u64, Vec<(&'static str, u64)>) {
    let snap = registry().snapshot();
    snap.function(name).map_or((0, Vec::new()), |f| (f.calls(), f.errors.clone()))
}

#[test]
fn statuses_routes_users_in_flight_and_the_monitor_routes() {
    let _turn = turn();
    let services = start();
    let (before, _) = calls("GET /checkout/{order}");
    let (pay_before, _) = calls("GET /pay/{order}");

    // Without traceparent: a new trace, whose id comes back in the header.
    let r = get_with(services.shop, "/checkout/3", "cookie: session=ann\r\n");
    assert_eq!((r.status, r.body.as_str()), (200, "300"));
    let id = r.header("x-trace-id");
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')), "{id}");
    assert_ne!(id, "0".repeat(32));

    // Payments declines order 0 with 503: an error of kind http_503 at each hop.
    for i in 0..20 {
        let r = get_with(services.shop, "/checkout/0", &format!("cookie: session=u{}\r\n", i % 7));
        assert_eq!(r.status, 503);
    }
    let (n, errors) = calls("GET /checkout/{order}");
    assert_eq!(n - before, 21);
    assert!(errors.contains(&("http_503", 20)), "{errors:?}");
    let (n, errors) = calls("GET /pay/{order}");
    assert_eq!(n - pay_before, 21);
    assert!(errors.contains(&("http_503", 20)), "{errors:?}");
    let (n, errors) = calls(&format!("GET {}", services.payments));
    assert_eq!(n, 21);
    assert_eq!(errors, vec![("http_503", 20)]);
    assert_eq!(calls("test_middleware::charge").1, vec![("Card", 20)]);

    // A path no route matches is one site, whatever the path.
    let (unmatched_before, _) = calls("GET (no route)");
    for path in ["/nope", "/nope/1", "/a/b/c"] {
        assert_eq!(get_with(services.shop, path, "").status, 404);
    }
    assert_eq!(calls("GET (no route)").0 - unmatched_before, 3);

    // Users: ann, u0..u6, and the peer address for requests without the cookie.
    assert_eq!(services.users.estimate(), 9);

    // In flight, by category, while /slow waits.
    let shop = services.shop;
    let pending = std::thread::spawn(move || get_with(shop, "/slow", ""));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snap = registry().snapshot();
        let active = snap.in_flight_by_category();
        let server = active.iter().find(|c| c.category == "http_server").map_or(0, |c| c.in_flight);
        if server >= 1 && snap.function("GET /slow").unwrap().in_flight == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "GET /slow never showed in flight");
        std::thread::sleep(Duration::from_millis(10));
    }
    let active = get_with(services.shop, "/monitor/active/json", "");
    assert_eq!(active.status, 200);
    let json: serde_json::Value = serde_json::from_str(&active.body).unwrap();
    let categories = json.as_array().unwrap_or_else(|| panic!("{json}"));
    let server = categories.iter().find(|c| c["category"] == "http_server").unwrap();
    // /slow, and this request itself.
    assert_eq!(server["current"].as_u64(), Some(2), "{json}");
    SLOW.get().unwrap().notify_waiters();
    assert_eq!(pending.join().unwrap().body, "done");

    // The monitor's own routes, mounted in the same app, list the routes.
    let funcs = get_with(services.shop, "/monitor/funcs/json", "");
    assert_eq!(funcs.status, 200, "{}", funcs.body);
    assert!(funcs.body.contains("\"GET /checkout/{order}\""), "{}", funcs.body);
    let bare = get_with(services.shop, "/monitor", "");
    assert_eq!((bare.status, bare.header("location")), (308, "/monitor/"));
    let index = get_with(services.shop, "/monitor/", "");
    assert_eq!(index.status, 200);
    assert!(index.body.contains("GET /pay/{order}"));
}

/// A service whose answer never comes.
#[derive(Clone)]
struct Never;

impl Service<http::Request<()>> for Never {
    type Response = http::Response<()>;
    type Error = std::convert::Infallible;
    type Future = std::future::Pending<Result<http::Response<()>, std::convert::Infallible>>;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, _: http::Request<()>) -> Self::Future {
        std::future::pending()
    }
}

#[test]
fn a_dropped_request_is_cancelled_and_routes_can_be_named() {
    let mut svc = ServerLayer::new()
        .route(|parts| parts.uri.path().starts_with("/files/").then(|| "/files/{path}".into()))
        .layer(Never);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for path in ["/files/a.txt", "/files/b/c.txt"] {
        let fut = svc.call(http::Request::put(path).body(()).unwrap());
        let waited =
            rt.block_on(async { tokio::time::timeout(Duration::from_millis(20), fut).await });
        assert!(waited.is_err(), "never answers");
    }
    let f = registry().snapshot().function("PUT /files/{path}").cloned().unwrap();
    assert_eq!((f.cancelled, f.in_flight, f.calls()), (2, 0, 2));
}
