//! sqlx statements and connection waits as monitored calls.
//!
//! Wrap the pool a service already opens in a [`MonitoredPool`] and run queries on `&pool` as
//! before (it is an [`sqlx::Executor`]). Then, with no annotation on any query:
//!
//! - every statement is a call of category `sql` at a site named by its normalized text
//!   (literals and parameter lists folded: `SELECT * FROM orders WHERE id = ?`), a child of the
//!   monitored call that ran it, with errors by the database's kind (`unique_violation`,
//!   `23505 unique_violation`, `RowNotFound`, `PoolTimedOut`, …);
//! - waiting for a connection is a call of category `db_connection`: in flight while it waits,
//!   its latency the wait, a pool timeout its error;
//! - when the trace is recorded, the statement's span carries `db.system`, `db.namespace` and
//!   `db.query.text` (the normalized text: never a parameter's value), and exporters send them.
//!
//! Statement sites come from a budget of their own ([`SQL_SITES`], 512): past it, statements
//! count at one `SQL (other statements)` site, so generated SQL cannot grow the sites without
//! bound.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sqlx::Error> {
//! let pool = sqlx::SqlitePool::connect("sqlite::memory:").await?;
//! let pool = monitor_sqlx::MonitoredPool::new(pool);
//! sqlx::query("CREATE TABLE stock (item TEXT PRIMARY KEY, count INTEGER)").execute(&pool).await?;
//! sqlx::query("INSERT INTO stock VALUES ('apple', 3)").execute(&pool).await?;
//! let again = sqlx::query("INSERT INTO stock VALUES ('apple', 4)").execute(&pool).await;
//! assert!(again.is_err());
//!
//! let snap = monitor_core::registry().snapshot();
//! let insert = snap.function("INSERT INTO stock VALUES (?, ?)").unwrap();
//! assert_eq!((insert.success, insert.errors[0]), (1, ("unique_violation", 1)));
//! assert_eq!(insert.category, Some("sql"));
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]

mod kinds;
mod normalize;

use std::fmt;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use futures_util::{FutureExt, TryStreamExt};
use monitor_core::{CallSite, Outcome, SiteBudget, Span};
use sqlx::pool::PoolConnection;
use sqlx::{Database, Describe, Either, Error, Execute, Executor, Pool};

pub use kinds::error_kind;
pub use normalize::{normalize, MAX_NAME};

/// The category of statement sites.
pub const SQL: &str = "sql";
/// The category of connection waits.
pub const DB_CONNECTION: &str = "db_connection";

/// The sites statements make: 512, apart from the application's own and the HTTP layers'.
pub static SQL_SITES: SiteBudget = SiteBudget::new("sql", 512);

/// A sqlx pool whose statements and connection waits are monitored calls. Cloning it clones
/// the pool handle (the same connections).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// let pool = monitor_sqlx::MonitoredPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?)
///     .namespace("inventory");
/// let (n,): (i64,) = sqlx::query_as("SELECT 1 + 1").fetch_one(&pool).await?;
/// assert_eq!(n, 2);
/// # Ok(())
/// # }
/// ```
pub struct MonitoredPool<DB: Database> {
    pool: Pool<DB>,
    system: &'static str,
    namespace: Option<std::sync::Arc<str>>,
}

impl<DB: Database> Clone for MonitoredPool<DB> {
    fn clone(&self) -> Self {
        MonitoredPool {
            pool: self.pool.clone(),
            system: self.system,
            namespace: self.namespace.clone(),
        }
    }
}

impl<DB: Database> fmt::Debug for MonitoredPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitoredPool")
            .field("pool", &self.pool)
            .field("system", &self.system)
            .field("namespace", &self.namespace)
            .finish()
    }
}

/// OpenTelemetry's `db.system` name for a sqlx database.
fn system_of(name: &str) -> &'static str {
    match name {
        "PostgreSQL" => "postgresql",
        "SQLite" => "sqlite",
        "MySQL" => "mysql",
        "MSSQL" => "mssql",
        _ => "other_sql",
    }
}

impl<DB: Database> MonitoredPool<DB> {
    /// Wraps `pool`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// let pool = monitor_sqlx::MonitoredPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?);
    /// assert_eq!(pool.system(), "sqlite");
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(pool: Pool<DB>) -> Self {
        MonitoredPool { pool, system: system_of(DB::NAME), namespace: None }
    }

    /// Names the database (`db.namespace` on recorded statement spans).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// let pool = monitor_sqlx::MonitoredPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .namespace("orders");
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn namespace(mut self, name: &str) -> Self {
        self.namespace = Some(std::sync::Arc::from(name));
        self
    }

    /// The database's `db.system` name (`postgresql`, `sqlite`, `mysql`).
    ///
    /// ```
    /// fn system(p: &monitor_sqlx::MonitoredPool<sqlx::Sqlite>) -> &'static str { p.system() }
    /// ```
    pub fn system(&self) -> &'static str {
        self.system
    }

    /// The pool itself, for what the wrapper does not cover (transactions, listeners).
    ///
    /// ```
    /// fn size(p: &monitor_sqlx::MonitoredPool<sqlx::Sqlite>) -> u32 { p.pool().size() }
    /// ```
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A connection from the pool, the wait a `db_connection` call of the current call. Its
    /// statements (on `&mut *conn`) are not monitored; run them on the pool to have them
    /// counted.
    ///
    /// # Errors
    ///
    /// What [`Pool::acquire`] gives: `PoolTimedOut` when no connection came in time,
    /// `PoolClosed` after [`Pool::close`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// let pool = monitor_sqlx::MonitoredPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?);
    /// let conn = pool.acquire().await?;
    /// drop(conn);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn acquire(&self) -> Result<PoolConnection<DB>, Error> {
        acquire(&self.pool, Span::current()).await
    }
}

/// The site of connection waits.
fn acquire_site() -> Option<&'static CallSite> {
    static SITE: std::sync::OnceLock<Option<&'static CallSite>> = std::sync::OnceLock::new();
    *SITE.get_or_init(|| {
        monitor_core::registry()
            .site_in(&SQL_SITES, "sqlx::Pool::acquire", Some(DB_CONNECTION))
            .ok()
    })
}

/// Waits for a connection of `pool` as a `db_connection` call under `parent`.
async fn acquire<DB: Database>(pool: &Pool<DB>, parent: Span) -> Result<PoolConnection<DB>, Error> {
    let Some(site) = acquire_site() else { return pool.acquire().await };
    let call = site.open_call(parent);
    let got = pool.acquire().await;
    call.finish(match &got {
        Ok(_) => Outcome::Success,
        Err(e) => Outcome::Error(error_kind(e)),
    });
    got
}

/// The site of a statement: by its normalized text, from [`SQL_SITES`]; past the budget, the
/// one site of other statements.
fn statement_site(sql: &str) -> Option<&'static CallSite> {
    let registry = monitor_core::registry();
    let name = normalize(sql);
    registry
        .site_in(&SQL_SITES, &name, Some(SQL))
        .or_else(|_| registry.site_in(&SQL_SITES, "SQL (other statements)", Some(SQL)))
        .or_else(|_| registry.site("SQL (other statements)", Some(SQL)))
        .ok()
}

/// A statement's call: started when its query starts running, annotated while recorded.
struct Statement {
    call: Option<monitor_core::OpenCall>,
}

impl Statement {
    fn start(
        site: Option<&'static CallSite>,
        parent: Span,
        system: &'static str,
        ns: Option<&str>,
    ) -> Statement {
        let call = site.map(|s| s.open_call(parent));
        if let Some(c) = &call {
            let span = c.span();
            if span.is_recorded() {
                span.annotate("db.system", system);
                if let Some(ns) = ns {
                    span.annotate("db.namespace", ns.to_string());
                }
                if let Some(site) = site {
                    span.annotate("db.query.text", site.name());
                }
            }
        }
        Statement { call }
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(c) = self.call.take() {
            c.finish(outcome);
        }
    }

    fn failed(&mut self, e: &Error) {
        self.finish(Outcome::Error(error_kind(e)));
    }
}

/// A statement of one row or none; with `required`, none is the statement's `RowNotFound`.
fn one_row<'e, 'q: 'e, DB, E>(
    pool: &MonitoredPool<DB>,
    query: E,
    required: bool,
) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    E: 'q + Execute<'q, DB>,
{
    let parent = Span::current();
    let site = statement_site(query.sql());
    let this = pool.clone();
    async move {
        let mut conn = acquire(&this.pool, parent).await?;
        let mut statement = Statement::start(site, parent, this.system, this.namespace.as_deref());
        let got = (&mut *conn).fetch_optional(query).await;
        match &got {
            Ok(None) if required => statement.failed(&Error::RowNotFound),
            Ok(_) => statement.finish(Outcome::Success),
            Err(e) => statement.failed(e),
        }
        got
    }
    .boxed()
}

impl<'p, DB: Database> Executor<'p> for &'_ MonitoredPool<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<DB::QueryResult, DB::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        let parent = Span::current();
        let site = statement_site(query.sql());
        let this = self.clone();
        Box::pin(async_stream::try_stream! {
            let mut conn = acquire(&this.pool, parent).await?;
            let mut statement = Statement::start(site, parent, this.system, this.namespace.as_deref());
            let mut rows = (&mut *conn).fetch_many(query);
            loop {
                match rows.try_next().await {
                    Ok(Some(v)) => yield v,
                    Ok(None) => break,
                    Err(e) => {
                        statement.failed(&e);
                        Err(e)?;
                    }
                }
            }
            statement.finish(Outcome::Success);
        })
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        one_row(self, query, false)
    }

    /// As sqlx's, but the statement's call sees the missing row: `RowNotFound` is its error.
    /// (`query_as` and `query_scalar` ask for an optional row and make the error themselves:
    /// there the statement succeeded, and the caller's call counts `RowNotFound`.)
    fn fetch_one<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<DB::Row, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, DB>,
    {
        one_row(self, query, true).map(|got| got?.ok_or(Error::RowNotFound)).boxed()
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement<'q>, Error>>
    where
        'p: 'e,
    {
        let pool = self.pool.clone();
        async move { pool.prepare_with(sql, parameters).await }.boxed()
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, Result<Describe<DB>, Error>>
    where
        'p: 'e,
    {
        let pool = self.pool.clone();
        async move { (&pool).describe(sql).await }.boxed()
    }
}
