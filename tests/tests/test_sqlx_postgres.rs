//! sqlx through `MonitoredPool` against a real PostgreSQL server (Debian's `postgresql`,
//! installed by `.ci/install-tools`), started here in a temporary data directory on a free
//! loopback port: SQLSTATE error kinds, `$n` parameters folded, and connection waits and
//! statements in flight counted exactly while clients block on an advisory lock another
//! connection holds.
//!
//! Skipped outside CI where PostgreSQL is missing. Waits are bounded by deadlines, never speed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use monitor_core::{monitored, registry};
use monitor_sqlx::MonitoredPool;
use sqlx::postgres::PgPoolOptions;
use sqlx::Postgres;

/// A PostgreSQL server of this test's own; stopped and its directory removed on drop.
struct Server {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// The newest installed server's programs.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    dirs.sort_by_key(|d| {
        d.parent().and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok()).unwrap_or(0)
    });
    dirs.pop()
}

/// `program args…`, as the `postgres` user when this process is root (the server refuses to
/// run as root).
fn as_server_user(program: &Path) -> Command {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
        use std::os::unix::fs::MetadataExt;
        m.uid() == 0
    });
    if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Server {
    fn start() -> Option<Server> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "postgresql is not installed; .ci/install-tools installs it"
            );
            eprintln!(
                "skipping the PostgreSQL tests: not installed (.ci/install-tools installs it)"
            );
            return None;
        };
        let dir = std::env::temp_dir().join(format!("monitor-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            m.uid() == 0
        });
        if root {
            let ok = Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status();
            assert!(ok.is_ok_and(|s| s.success()), "chown of {}", dir.display());
        }
        let data = dir.join("data");
        let init = as_server_user(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "monitor", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb: {}", String::from_utf8_lossy(&init.stderr));
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = as_server_user(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=20"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "postgres did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    fn url(&self) -> String {
        format!("postgres://monitor@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[monitored]
async fn open_account(db: &MonitoredPool<Postgres>, id: i32) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO accounts (id, balance) VALUES ($1, $2)")
        .bind(id)
        .bind(100_i64)
        .execute(db)
        .await?;
    Ok(())
}

const INSERT: &str = "INSERT INTO accounts (id, balance) VALUES (?, ?)";
const WAIT: &str = "SELECT pg_advisory_xact_lock(?)";

#[test]
fn postgres_kinds_and_waits_are_exact() {
    let Some(server) = Server::start() else { return };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    rt.unwrap().block_on(async {
        // Three connections: one the test holds, two for the clients.
        let pool = PgPoolOptions::new()
            .max_connections(3)
            .acquire_timeout(Duration::from_secs(30))
            .connect(&server.url())
            .await
            .unwrap();
        let db = MonitoredPool::new(pool).namespace("postgres");
        assert_eq!(db.system(), "postgresql");
        sqlx::query("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL CHECK (balance >= 0))")
            .execute(&db)
            .await
            .unwrap();
        open_account(&db, 1).await.unwrap();
        open_account(&db, 2).await.unwrap();
        assert!(open_account(&db, 1).await.is_err());
        let overdrawn = sqlx::query("UPDATE accounts SET balance = balance - $1 WHERE id = $2")
            .bind(500_i64)
            .bind(2)
            .execute(&db)
            .await;
        assert!(overdrawn.is_err());
        let typo = sqlx::query("SELEC 1").execute(&db).await;
        assert!(typo.is_err());
        let missing = sqlx::query("SELECT balance FROM accounts WHERE id = $1").bind(9).fetch_one(&db).await;
        assert!(matches!(missing, Err(sqlx::Error::RowNotFound)));

        let snap = registry().snapshot();
        let insert = snap.function(INSERT).unwrap();
        assert_eq!((insert.success, insert.errors.clone()), (2, vec![("23505 unique_violation", 1)]));
        assert_eq!(insert.calls_from("test_sqlx_postgres::open_account"), 3);
        let update = snap.function("UPDATE accounts SET balance = balance - ? WHERE id = ?").unwrap();
        assert_eq!(update.errors, vec![("23514 check_violation", 1)]);
        assert_eq!(snap.function("SELEC ?").unwrap().errors, vec![("42601 syntax_error", 1)]);
        let select = snap.function("SELECT balance FROM accounts WHERE id = ?").unwrap();
        assert_eq!(select.errors, vec![("RowNotFound", 1)]);

        // The test's connection holds advisory lock 7; four clients ask for it. Two run their
        // statement and block in the server; two wait for a connection.
        let mut holder = db.acquire().await.unwrap();
        sqlx::query("SELECT pg_advisory_lock(7)").execute(&mut *holder).await.unwrap();
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(7_i64).execute(&db).await
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let snap = registry().snapshot();
            let running = snap.function(WAIT).map_or(0, |f| f.in_flight);
            let waiting = snap.function("sqlx::Pool::acquire").map_or(0, |f| f.in_flight);
            if (running, waiting) == (2, 2) {
                break;
            }
            assert!(Instant::now() < deadline, "running {running}, waiting {waiting}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sqlx::query("SELECT pg_advisory_unlock(7)").execute(&mut *holder).await.unwrap();
        for c in clients {
            c.await.unwrap().unwrap();
        }
        drop(holder);
        let snap = registry().snapshot();
        let wait = snap.function(WAIT).unwrap();
        assert_eq!((wait.in_flight, wait.success), (0, 4));
        assert_eq!(snap.function("sqlx::Pool::acquire").unwrap().in_flight, 0);
        db.pool().close().await;
    });
}
