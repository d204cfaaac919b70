//! The axum shop under real HTTP traffic: the middleware's counts agree with what the customers
//! saw, across both services and the inventory's SQLite statements, and a capture of one order
//! holds both services' spans and its statements.
//!
//! Ports: both services and the monitor listen on free loopback ports.

use std::time::Duration;

use monitor_core::registry;
use monitor_examples::shop;

/// `GET path` on `addr`, body as text.
async fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let uri = format!("http://{addr}{path}");
    let resp = client.get(uri.parse().unwrap()).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

const INSERT: &str = "INSERT INTO reservations (order_id, sku) VALUES (?, ?)";
const UPDATE: &str =
    "UPDATE stock SET count = count - ? WHERE sku = ? AND count > ? RETURNING count";

#[test]
fn the_middleware_agrees_with_the_customers() {
    // Wall clock: gauges are read within a time limit; a loaded machine must not make this
    // test's gauges stale, so it gets a long one.
    monitor_core::set_gauge_time_limit(std::time::Duration::from_secs(30));
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let shop = shop::start("127.0.0.1:0").await.unwrap();
        let seen = shop::customers(shop, 300, 8, 25).await;
        assert_eq!(seen.ok + seen.out_of_stock, 300, "{seen:?}");
        // Orders 0..300 ask for sku id % 100; every 13th sku is out of stock.
        assert_eq!(seen.out_of_stock, (0..300u32).filter(|i| (i % 100) % 13 == 0).count() as u64);

        let snap = registry().snapshot();
        let f = |name: &str| snap.function(name).unwrap_or_else(|| panic!("no {name}")).clone();
        let orders = f("GET /orders/{id}");
        assert_eq!((orders.calls(), orders.errors_total()), (300, 0), "409 is not a server error");
        assert_eq!(orders.category, Some("http_server"));
        let place = f("shop::place_order");
        assert_eq!(place.calls_from("GET /orders/{id}"), 300);
        assert_eq!(place.errors, vec![("Unavailable", seen.out_of_stock)]);
        let client = f(&format!("GET {}", shop.inventory));
        assert_eq!(client.category, Some("http_client"));
        assert_eq!(client.calls_from("shop::place_order"), 300);
        assert_eq!(client.errors, vec![("http_503", seen.out_of_stock)]);
        let stock = f("GET /stock/{sku}");
        assert_eq!(stock.errors, vec![("http_503", seen.out_of_stock)]);
        assert_eq!(f("shop::reserve").errors, vec![("OutOfStock", seen.out_of_stock)]);
        // The reservations are SQL statements on the inventory's SQLite database, children of
        // `reserve`, each after a wait for the database's one connection.
        let insert = f(INSERT);
        assert_eq!(insert.category, Some("sql"));
        assert_eq!((insert.success, insert.calls_from("shop::reserve")), (300, 300));
        assert_eq!(f(UPDATE).calls_from("shop::reserve"), 300);
        let wait = f("sqlx::Pool::acquire");
        assert_eq!(wait.category, Some("db_connection"));
        assert!(wait.calls_from("shop::reserve") >= 600 + seen.out_of_stock);
        let users = snap.metrics.iter().find(|m| m.scope == "shop" && m.name == "unique_users");
        assert!(users.is_some_and(|m| !m.stale), "{users:?}");
        let users = users.map(|m| m.value.clone());
        assert_eq!(users, Some(monitor_core::MetricValue::Gauge(25.0)), "25 sessions");

        // One order captured through the monitor's pages: both services' spans, linked.
        let capture = tokio::spawn(get(
            shop.storefront,
            "/monitor/trace/json?regex=%5EGET%20/orders&timeout=20s",
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (customers, (status, body)) =
            tokio::join!(shop::customers(shop, 20, 2, 3), async { capture.await.unwrap() });
        assert_eq!(customers.ok + customers.out_of_stock, 20);
        // Orders 0..20 again: those reserved before (all but skus 0 and 13) are unique
        // violations of the reservations' key, and answered as reserved.
        let again = registry().snapshot().function(INSERT).unwrap().clone();
        assert_eq!(again.errors, vec![("unique_violation", 18)]);
        assert_eq!(customers.out_of_stock, 2);
        assert_eq!(status, 200, "{body}");
        let spans: serde_json::Value = serde_json::from_str(&body).unwrap();
        let spans = spans.as_array().unwrap();
        let names: Vec<&str> = spans.iter().map(|s| s["name"].as_str().unwrap()).collect();
        let client_name = format!("GET {}", shop.inventory);
        for want in [
            "GET /orders/{id}",
            "shop::place_order",
            &client_name,
            "GET /stock/{sku}",
            "shop::reserve",
            INSERT,
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        let id_of =
            |name: &str| spans.iter().find(|s| s["name"] == name).unwrap()["span_id"].clone();
        let stock = spans.iter().find(|s| s["name"] == "GET /stock/{sku}").unwrap();
        assert_eq!(stock["parent_id"], id_of(&client_name));
        assert_eq!(stock["remote_parent"], true);
    });
}
