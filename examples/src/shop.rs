//! A web shop of two axum services in one process, instrumented the way a service team would:
//! the storefront and the inventory each behind `ServerLayer`, the storefront calling the
//! inventory through hyper-util's client behind `ClientLayer`, the monitor's pages mounted at
//! `/monitor` of the storefront.
//!
//! `GET /orders/{id}` → `place_order` → `GET /stock/{sku}` on the inventory → `reserve`, whose
//! statements run on an in-memory SQLite database through `monitor_sqlx::MonitoredPool` (one
//! connection: concurrent reservations wait for it, as `db_connection` calls). Every 13th sku
//! is out of stock (the inventory answers 503, the storefront 409); an order placed again is
//! already reserved (its insert is a `unique_violation`, the answer a 200). The user of each
//! request is its `session` cookie, counted as `unique_users` of scope `shop`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use monitor_core::{monitored, ErrorKind, Objective, UniqueUsers};
use monitor_http::identity::UserIdentity;
use monitor_http::layer::{ClientLayer, ClientService, ServerLayer};
use monitor_sqlx::MonitoredPool;
use sqlx::sqlite::SqlitePoolOptions;
use sqlx::{Row, Sqlite};
use tower_layer::Layer;
use tower_service::Service;

type HttpClient = hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>;

/// Why the inventory could not reserve an item.
#[derive(Debug, ErrorKind)]
pub enum StockError {
    /// None left.
    OutOfStock,
    /// The database failed.
    Database,
}

type Db = MonitoredPool<Sqlite>;

/// The inventory's database: 100 skus, every 13th with none left, and the reservations made.
async fn inventory_db() -> Result<Db, sqlx::Error> {
    // One connection, kept for the process's life: an in-memory database lives as long as its
    // connection does.
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect("sqlite::memory:")
        .await?;
    let db = MonitoredPool::new(pool).namespace("inventory");
    sqlx::query("CREATE TABLE stock (sku INTEGER PRIMARY KEY, count INTEGER NOT NULL)")
        .execute(&db)
        .await?;
    sqlx::query("CREATE TABLE reservations (order_id INTEGER PRIMARY KEY, sku INTEGER NOT NULL)")
        .execute(&db)
        .await?;
    for sku in 0..100u32 {
        let count = if sku % 13 == 0 { 0 } else { 1_000_000 };
        sqlx::query("INSERT INTO stock (sku, count) VALUES (?, ?)")
            .bind(sku)
            .bind(count)
            .execute(&db)
            .await?;
    }
    Ok(db)
}

/// Reserves one item of `sku` for order `order` and says how many are left; an order reserved
/// before keeps its reservation.
#[monitored(name = "shop::reserve")]
async fn reserve(db: &Db, order: u32, sku: u32) -> Result<i64, StockError> {
    let reserved = sqlx::query("INSERT INTO reservations (order_id, sku) VALUES (?, ?)")
        .bind(order)
        .bind(sku)
        .execute(db)
        .await;
    let left = match reserved {
        Ok(_) => {
            let taken = sqlx::query(
                "UPDATE stock SET count = count - 1 WHERE sku = ? AND count > 0 RETURNING count",
            )
            .bind(sku)
            .fetch_optional(db)
            .await
            .map_err(|_| StockError::Database)?;
            if taken.is_none() {
                // Nothing to reserve: the order may try again.
                sqlx::query("DELETE FROM reservations WHERE order_id = ?")
                    .bind(order)
                    .execute(db)
                    .await
                    .map_err(|_| StockError::Database)?;
            }
            taken
        }
        // Placed again: already reserved.
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            sqlx::query("SELECT count FROM stock WHERE sku = ?")
                .bind(sku)
                .fetch_optional(db)
                .await
                .map_err(|_| StockError::Database)?
        }
        Err(_) => return Err(StockError::Database),
    };
    let left = left.ok_or(StockError::OutOfStock)?;
    left.try_get(0).map_err(|_| StockError::Database)
}

async fn stock(
    State(db): State<Db>,
    Path(sku): Path<u32>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let order = headers.get("x-order-id").and_then(|v| v.to_str().ok()?.parse().ok());
    let Some(order) = order else {
        return (StatusCode::BAD_REQUEST, "x-order-id: give the order's number\n".into());
    };
    match reserve(&db, order, sku).await {
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
#[monitored(
    name = "shop::place_order",
    // Out of stock is an error of its own kind, about one order in twelve: within a 90% target.
    objective(success = 90.0, latency = "250ms", latency_target = 99.0)
)]
async fn place_order(shop: Storefront, id: u32) -> Result<String, OrderError> {
    let sku = id % 100;
    let uri = format!("http://{}/stock/{sku}", shop.inventory);
    let req = http::Request::get(uri)
        .header("x-order-id", id)
        .body(Empty::new())
        .map_err(|_| OrderError::Inventory)?;
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
    let db = inventory_db().await.map_err(std::io::Error::other)?;
    let inventory_app =
        Router::new().route("/stock/{sku}", get(stock)).with_state(db).layer(ServerLayer::new());
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
    let orders = Objective::new()
        .success(99.9)
        .and_then(|o| o.latency(Duration::from_millis(100), 99.0))
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let layer = ServerLayer::new()
        .users(users, UserIdentity::new().cookies(&["session"]))
        .objective("GET /orders/{id}", orders)
        .and_then(|l| l.trace_id_header("x-trace-id"))
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
