//! What a statement costs through `MonitoredPool`, beside the same statement on the bare pool:
//! `SELECT ?` on an in-memory SQLite database with one connection, one at a time.
//!
//! `cargo bench -p monitor-sqlx`

use criterion::{criterion_group, criterion_main, Criterion};
use sqlx::sqlite::SqlitePoolOptions;

fn statement(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pool = rt.block_on(async {
        SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap()
    });
    let monitored = monitor_sqlx::MonitoredPool::new(pool.clone());
    let mut g = c.benchmark_group("statement");
    g.bench_function("baseline/bare_pool", |b| {
        b.iter(|| rt.block_on(sqlx::query("SELECT ?").bind(7_i64).fetch_one(&pool)).unwrap());
    });
    g.bench_function("monitored/pool", |b| {
        b.iter(|| rt.block_on(sqlx::query("SELECT ?").bind(7_i64).fetch_one(&monitored)).unwrap());
    });
    g.bench_function("monitored/normalize", |b| {
        b.iter(|| {
            monitor_sqlx::normalize(std::hint::black_box(
                "SELECT count FROM stock WHERE sku = ? AND count > 0",
            ))
        });
    });
    g.finish();
}

criterion_group!(benches, statement);
criterion_main!(benches);
