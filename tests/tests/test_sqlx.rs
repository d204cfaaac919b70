//! sqlx through `MonitoredPool` against a real SQLite database (a file in a temporary
//! directory): statements as `sql` calls named by their normalized text, children of the
//! monitored call that ran them, errors by the database's kind; connection waits as
//! `db_connection` calls whose in-flight count is exactly the clients waiting; recorded spans
//! with the database attributes and never a parameter's value.
//!
//! The tests take turns (the acquire site is shared); each uses tables and functions of its own.

mod common;

use std::time::Duration;

use monitor_core::{monitored, registry, trace};
use monitor_sqlx::MonitoredPool;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Sqlite;

async fn pool(
    name: &str,
    connections: u32,
    timeout: Duration,
) -> (MonitoredPool<Sqlite>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("monitor-sqlx-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("shop.db");
    let options = SqliteConnectOptions::new().filename(&file).create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(connections)
        .acquire_timeout(timeout)
        .connect_with(options)
        .await
        .unwrap();
    (MonitoredPool::new(pool).namespace("shop"), dir)
}

#[monitored]
async fn add_item(pool: &MonitoredPool<Sqlite>, item: &str, count: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO stock (item, count) VALUES ($1, $2)")
        .bind(item)
        .bind(count)
        .execute(pool)
        .await?;
    Ok(())
}

#[monitored]
async fn count_of(pool: &MonitoredPool<Sqlite>, item: &str) -> Result<i64, sqlx::Error> {
    use sqlx::Row;
    let row =
        sqlx::query("SELECT count FROM stock WHERE item = ?").bind(item).fetch_one(pool).await?;
    row.try_get(0)
}

/// Runs a test on a runtime of its own, taking its turn.
fn run(test: impl std::future::Future<Output = ()>) {
    let _turn = common::turn();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    rt.unwrap().block_on(test);
}

const INSERT: &str = "INSERT INTO stock (item, count) VALUES (?, ?)";
const SELECT: &str = "SELECT count FROM stock WHERE item = ?";

#[test]
fn statements_are_calls_with_the_database_s_error_kinds() {
    run(statements_are_calls_with_the_database_s_error_kinds_here());
}

async fn statements_are_calls_with_the_database_s_error_kinds_here() {
    let (pool, dir) = pool("kinds", 2, Duration::from_secs(10)).await;
    sqlx::query("CREATE TABLE stock (item TEXT PRIMARY KEY, count INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    for (item, n) in [("apple", 3), ("pear", 4), ("plum", 5)] {
        add_item(&pool, item, n).await.unwrap();
    }
    let again = add_item(&pool, "apple", 9).await;
    assert!(again.is_err());
    assert_eq!(count_of(&pool, "pear").await.unwrap(), 4);
    let missing = count_of(&pool, "kiwi").await;
    assert!(matches!(missing, Err(sqlx::Error::RowNotFound)), "{missing:?}");
    // A streamed query and a failing one.
    let rows = sqlx::query("SELECT item FROM stock ORDER BY item").fetch_all(&pool).await.unwrap();
    assert_eq!(rows.len(), 3);
    let bad = sqlx::query("SELECT nothing FROM nowhere").fetch_all(&pool).await;
    assert!(bad.is_err());

    let snap = registry().snapshot();
    let insert = snap.function(INSERT).unwrap_or_else(|| panic!("no {INSERT} site"));
    assert_eq!(insert.category, Some("sql"));
    assert_eq!((insert.success, insert.errors.clone()), (3, vec![("unique_violation", 1)]));
    assert_eq!(insert.calls_from("test_sqlx::add_item"), 4, "the statement is its caller's child");
    let select = snap.function(SELECT).unwrap();
    assert_eq!((select.success, select.errors.clone()), (1, vec![("RowNotFound", 1)]));
    assert_eq!(select.calls_from("test_sqlx::count_of"), 2);
    let listed = snap.function("SELECT item FROM stock ORDER BY item").unwrap();
    assert_eq!(listed.success, 1);
    let nowhere = snap.function("SELECT nothing FROM nowhere").unwrap();
    assert_eq!(nowhere.errors, vec![("SQLITE_ERROR", 1)]);
    // The callers counted their errors too, by the same kind.
    let add = snap.function("test_sqlx::add_item").unwrap();
    assert_eq!(add.errors.len(), 1, "{:?}", add.errors);
    let acquire = snap.function("sqlx::Pool::acquire").unwrap();
    assert_eq!(acquire.category, Some("db_connection"));
    assert!(acquire.success >= 9, "{}", acquire.success);
    pool.pool().close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn connection_waits_are_in_flight_exactly_and_time_out_as_a_kind() {
    run(connection_waits_are_in_flight_exactly_and_time_out_as_a_kind_here());
}

async fn connection_waits_are_in_flight_exactly_and_time_out_as_a_kind_here() {
    let (pool, dir) = pool("waits", 1, Duration::from_millis(300)).await;
    sqlx::query("CREATE TABLE waits (id INTEGER)").execute(&pool).await.unwrap();
    let before = registry()
        .snapshot()
        .function("sqlx::Pool::acquire")
        .map_or((0, 0), |f| (f.success, f.errors.iter().map(|e| e.1).sum::<u64>()));
    // The only connection, held: three clients wait for it.
    let held = pool.acquire().await.unwrap();
    let mut waiting = Vec::new();
    for i in 0..3 {
        let p = pool.clone();
        waiting.push(tokio::spawn(async move {
            sqlx::query("INSERT INTO waits VALUES (?)").bind(i).execute(&p).await
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let f = registry().snapshot().function("sqlx::Pool::acquire").cloned().unwrap();
        if f.in_flight == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "in flight {}", f.in_flight);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Nobody gets the connection in time: three pool timeouts, no statement ran.
    for w in waiting {
        let r = w.await.unwrap();
        assert!(matches!(r, Err(sqlx::Error::PoolTimedOut)), "{r:?}");
    }
    drop(held);
    let f = registry().snapshot().function("sqlx::Pool::acquire").cloned().unwrap();
    assert_eq!(f.in_flight, 0);
    assert_eq!(f.errors.iter().find(|e| e.0 == "PoolTimedOut").map(|e| e.1), Some(3 + before.1));
    assert!(registry()
        .snapshot()
        .function("INSERT INTO waits VALUES (?)")
        .is_none_or(|s| s.calls() == 0));
    // Released, the connection serves the next client.
    sqlx::query("INSERT INTO waits VALUES (?)").bind(7).execute(&pool).await.unwrap();
    let ran = registry().snapshot().function("INSERT INTO waits VALUES (?)").cloned().unwrap();
    assert_eq!(ran.success, 1);
    pool.pool().close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[monitored]
async fn restock(pool: &MonitoredPool<Sqlite>, item: &str) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("UPDATE shelf SET count = count + 10 WHERE item = ?")
        .bind(item)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

#[test]
fn recorded_statements_carry_the_database_attributes_and_no_values() {
    run(recorded_statements_carry_the_database_attributes_and_no_values_here());
}

async fn recorded_statements_carry_the_database_attributes_and_no_values_here() {
    let (pool, dir) = pool("spans", 2, Duration::from_secs(10)).await;
    sqlx::query("CREATE TABLE shelf (item TEXT, count INTEGER)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO shelf VALUES ('secret-sku-77', 1)").execute(&pool).await.unwrap();
    trace::record_all(true);
    let watch =
        trace::Watch::start(trace::WatchFilter::function(|s| s.name() == "test_sqlx::restock"))
            .unwrap();
    assert_eq!(restock(&pool, "secret-sku-77").await.unwrap(), 1);
    let t = tokio::task::spawn_blocking(move || watch.wait(Duration::from_secs(10)))
        .await
        .unwrap()
        .unwrap();
    trace::record_all(false);
    let root = t.spans.iter().find(|s| s.name == "test_sqlx::restock").unwrap();
    let statement =
        t.spans.iter().find(|s| s.category == Some("sql")).expect("the statement's span");
    assert_eq!(statement.parent_id, Some(root.span_id));
    assert_eq!(statement.name, "UPDATE shelf SET count = count + ? WHERE item = ?");
    let attr = |k: &str| {
        statement.annotations.iter().find(|(key, _)| key == k).map(|(_, v)| format!("{v:?}"))
    };
    assert!(attr("db.system").unwrap().contains("sqlite"));
    assert!(attr("db.namespace").unwrap().contains("shop"));
    assert!(attr("db.query.text").unwrap().contains("UPDATE shelf SET count"));
    let everything = format!("{:?}", t.spans);
    assert!(!everything.contains("secret-sku-77"), "a parameter's value leaked: {everything}");
    let wait =
        t.spans.iter().find(|s| s.category == Some("db_connection")).expect("the wait's span");
    assert_eq!(wait.parent_id, Some(root.span_id));
    pool.pool().close().await;
    let _ = std::fs::remove_dir_all(dir);
}
