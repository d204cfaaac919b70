//! An axum service with the monitor's middleware and pages: two services (storefront and
//! inventory) with customers ordering, the monitor at /monitor/ of the storefront.
//!
//! ```text
//! cargo run -p monitor-examples --example axum_service                  # storefront on :3000
//! cargo run -p monitor-examples --example axum_service -- 127.0.0.1:0   # any free port
//! ```

use std::time::Duration;

use monitor_examples::shop;

fn main() {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".to_string());
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("axum_service: cannot start the async runtime: {e}");
            std::process::exit(1)
        }
    };
    runtime.block_on(async {
        let shop = match shop::start(&addr).await {
            Ok(shop) => shop,
            Err(e) => {
                eprintln!("axum_service: cannot listen on {addr}: {e}");
                std::process::exit(1)
            }
        };
        let base = format!("http://{}", shop.storefront);
        println!("storefront at {base}/orders/42 (inventory at {})", shop.inventory);
        println!("monitor at    {base}/monitor/   routes as functions, unique users, charts");
        println!("              {base}/monitor/trace/svg?regex=GET%20/orders   one order's trace");
        loop {
            let seen = shop::customers(shop, 200, 8, 40).await;
            println!(
                "200 orders: {} ok, {} out of stock, {} failed",
                seen.ok, seen.out_of_stock, seen.failed
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}
