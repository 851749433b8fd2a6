//! Test harness: every behaviour test is one `async fn(&TestDb)` run against
//! SQLite (a file in a fresh temp dir) and, when `ZHILU_TEST_PG_URL` is set,
//! PostgreSQL (a fresh database per test, dropped afterwards), so tests run
//! in parallel. `both!(a, b, …)` makes the `sqlite::a` / `postgres::a` tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{AssertSqlSafe, Connection};
use zhilu_store::Store;

/// A store under test and what is needed to reach its database directly.
pub struct TestDb {
    /// The store under test.
    pub store: Store,
    /// The URL it was opened with.
    pub url: String,
    /// A scratch directory (the SQLite file lives here; archives go here).
    pub dir: tempfile::TempDir,
    /// PostgreSQL only: (admin URL, database name) to drop at the end.
    pg: Option<(String, String)>,
}

impl TestDb {
    /// Executes raw SQL on a separate connection (outside the store).
    pub async fn raw(&self, sql: &str) -> Result<u64, sqlx::Error> {
        if self.pg.is_some() {
            let mut c = sqlx::PgConnection::connect(&self.url).await?;
            let r = sqlx::query(AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await;
            c.close().await?;
            Ok(r?.rows_affected())
        } else {
            let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
            let r = sqlx::query(AssertSqlSafe(sql.to_string()))
                .execute(&mut c)
                .await;
            c.close().await?;
            Ok(r?.rows_affected())
        }
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Closes the store and drops a PostgreSQL test database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Some((admin, name)) = self.pg {
            let mut c = sqlx::PgConnection::connect(&admin)
                .await
                .expect("admin connect");
            sqlx::query(AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut c)
            .await
            .expect("drop test database");
        }
    }
}

/// A store on a new SQLite file.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("zhilu.db").display());
    let store = Store::open(&url).await.expect("open sqlite store");
    assert_eq!(store.backend(), "sqlite");
    TestDb {
        store,
        url,
        dir,
        pg: None,
    }
}

/// A store on a new PostgreSQL database, or `None` (skipped) without
/// `ZHILU_TEST_PG_URL`; with `ZHILU_REQUIRE_SERVICES=1` a missing URL fails.
pub async fn postgres() -> Option<TestDb> {
    let Some(admin) = std::env::var("ZHILU_TEST_PG_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        if std::env::var("ZHILU_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!(
                "ZHILU_REQUIRE_SERVICES=1 but ZHILU_TEST_PG_URL is not set (scripts/pg-start.sh prints it)"
            );
        }
        println!(
            "skipped: set ZHILU_TEST_PG_URL to run the PostgreSQL tests (scripts/pg-start.sh)"
        );
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "zhilu_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        fastrand::u32(..)
    );
    let mut c = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("connect to ZHILU_TEST_PG_URL: {e}"));
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .expect("create test database");
    c.close().await.expect("close admin connection");
    let url = with_database(&admin, &name);
    let store = Store::open(&url).await.expect("open postgres store");
    assert_eq!(store.backend(), "postgres");
    Some(TestDb {
        store,
        url,
        dir: tempfile::tempdir().expect("temp dir"),
        pg: Some((admin, name)),
    })
}

/// `postgres://u@h:p/db?x` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// Makes `mod sqlite` and `mod postgres`, each with one `#[tokio::test]` per
/// named `async fn(&TestDb)` in the calling file.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::common::sqlite().await;
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(db) = $crate::common::postgres().await else { return };
                    super::$name(&db).await;
                    db.finish().await;
                }
            )*
        }
    };
}

#[test]
fn database_is_swapped_in_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:55432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:55432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@h/db?sslmode=disable", "t2"),
        "postgres://u:p@h/t2?sslmode=disable"
    );
    assert_eq!(
        with_database("postgres://h:5432", "t3"),
        "postgres://h:5432/t3"
    );
}
