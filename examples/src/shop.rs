//! A web shop of two axum services in one process, instrumented the way a service team would:
//! the storefront and the inventory each behind `ServerLayer`, the storefront calling the
//! inventory through hyper-util's client behind `ClientLayer`, the monitor's pages mounted at
//! `/monitor` of the storefront.
//!
//! `GET /orders/{id}` → `place_order` → `GET /stock/{sku}` on the inventory → `reserve`. Every
//! 13th sku is out of stock (the inventory answers 503, the storefront 502), and the user of
//! each request is its `session` cookie, counted as `unique_users` of scope `shop`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use monitor_core::{monitored, ErrorKind, UniqueUsers};
use monitor_http::identity::UserIdentity;
use monitor_http::layer::{ClientLayer, ClientService, ServerLayer};
use tower_layer::Layer;
use tower_service::Service;

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

/// Why the inventory could not reserve an item.
#[derive(Debug, ErrorKind)]
pub enum StockError {
    /// None left.
    OutOfStock,
}

/// Reserves one item of `sku` (every 13th is out of stock).
#[monitored(name = "shop::reserve", category = "db_connection")]
async fn reserve(sku: u32) -> Result<u32, StockError> {
    tokio::time::sleep(Duration::from_millis(1 + u64::from(sku % 4))).await;
    if sku % 13 == 0 {
        Err(StockError::OutOfStock)
    } else {
        Ok(sku % 50)
    }
}

async fn stock(Path(sku): Path<u32>) -> (StatusCode, String) {
    match reserve(sku).await {
        Ok(left) => (StatusCode::OK, left.to_string()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:?}")),
    }
}

/// Why an order failed.
#[derive(Debug, ErrorKind)]
pub enum OrderError {
    /// The inventory said no.
    Unavailable,
    /// The inventory could not be reached.
    Inventory,
}

#[derive(Clone)]
struct Storefront {
    inventory: SocketAddr,
    client: ClientService<HttpClient>,
}

/// Places order `id`: asks the inventory for its sku.
#[monitored(name = "shop::place_order")]
async fn place_order(shop: Storefront, id: u32) -> Result<String, OrderError> {
    let sku = id % 100;
    let uri = format!("http://{}/stock/{sku}", shop.inventory);
    let req = http::Request::get(uri).body(Empty::new()).map_err(|_| OrderError::Inventory)?;
    let mut client = shop.client.clone();
    let resp = client.call(req).await.map_err(|_| OrderError::Inventory)?;
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
        return Err(OrderError::Unavailable);
    }
    let body = resp.into_body().collect().await.map_err(|_| OrderError::Inventory)?;
    Ok(format!("order {id}: sku {sku}, {} left\n", String::from_utf8_lossy(&body.to_bytes())))
}

async fn order(State(shop): State<Storefront>, Path(id): Path<u32>) -> (StatusCode, String) {
    match place_order(shop, id).await {
        Ok(body) => (StatusCode::OK, body),
        Err(OrderError::Unavailable) => (StatusCode::CONFLICT, "out of stock\n".into()),
        Err(OrderError::Inventory) => (StatusCode::BAD_GATEWAY, "inventory down\n".into()),
    }
}

async fn home() -> &'static str {
    "shop: GET /orders/{id}; the monitor is at /monitor/\n"
}

/// The running shop.
#[derive(Debug, Clone, Copy)]
pub struct Shop {
    /// The storefront (and `/monitor/`).
    pub storefront: SocketAddr,
    /// The inventory service.
    pub inventory: SocketAddr,
}

/// Starts both services on the current tokio runtime: the storefront on `addr`, the inventory
/// on any free loopback port.
pub async fn start(addr: &str) -> std::io::Result<Shop> {
    let inventory_app = Router::new().route("/stock/{sku}", get(stock)).layer(ServerLayer::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let inventory = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, inventory_app).await });

    let users = UniqueUsers::new(Duration::from_secs(300));
    // Already registered (the shop started twice in one process): the first one counts.
    let _ = users.register("shop");
    let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let storefront_state = Storefront { inventory, client: ClientLayer::new().layer(http) };
    let monitor = monitor_http::axum_router("/monitor")
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let layer = ServerLayer::new()
        .users(users, UserIdentity::new().cookies(&["session"]))
        .trace_id_header("x-trace-id")
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let app = Router::new()
        .route("/", get(home))
        .route("/orders/{id}", get(order))
        .with_state(storefront_state)
        .merge(monitor)
        .layer(layer);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let storefront = listener.local_addr()?;
    tokio::spawn(async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await
    });
    Ok(Shop { storefront, inventory })
}

/// What the shop's customers saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Orders {
    /// 200 answers.
    pub ok: u64,
    /// 409 answers (out of stock).
    pub out_of_stock: u64,
    /// Anything else, or no answer.
    pub failed: u64,
}

/// Sends `n` orders to the storefront, `concurrency` at a time, from `users` distinct sessions.
pub async fn customers(shop: Shop, n: u32, concurrency: usize, users: u32) -> Orders {
    let client: HttpClient =
        hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let tasks: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (client, next) = (client.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut seen = Orders::default();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return seen;
                    }
                    let req = http::Request::get(format!("http://{}/orders/{i}", shop.storefront))
                        .header("cookie", format!("theme=dark; session=s{}", i % users.max(1)))
                        .body(Empty::new());
                    let status = match req {
                        Ok(req) => client.request(req).await.map(|r| r.status()).ok(),
                        Err(_) => None,
                    };
                    match status {
                        Some(StatusCode::OK) => seen.ok += 1,
                        Some(StatusCode::CONFLICT) => seen.out_of_stock += 1,
                        _ => seen.failed += 1,
                    }
                }
            })
        })
        .collect();
    let mut total = Orders::default();
    for t in tasks {
        if let Ok(o) = t.await {
            total.ok += o.ok;
            total.out_of_stock += o.out_of_stock;
            total.failed += o.failed;
        }
    }
    total
}
