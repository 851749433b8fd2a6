//! zhilu-store: the live server's persistence, on SQLite (one file, the
//! default) or PostgreSQL, behind one [`Store`].
//!
//! The crate owns
//! - the **schema** and its **migrations** (`migrations/sqlite`,
//!   `migrations/postgres`: the same logical schema, embedded at build time
//!   and applied by [`Store::open`]);
//! - **batched writes**: raw readings go in one transaction per batch as
//!   multi-row `INSERT … VALUES`, each reading stored once (a natural key per
//!   kind is unique: a re-sent or replayed row is skipped and named; a
//!   retried batch is harmless); everything one closed tick produced goes in one
//!   transaction ([`Store::commit_tick`]);
//! - **retention**: raw detector and weather rows become 5-minute roll-ups,
//!   positions and camera rows are archived to CSV, in one transaction per
//!   kind ([`Store::apply_retention`]);
//! - integrity the database itself enforces: an append-only audit log,
//!   decisions on a proposal taken exactly once.
//!
//! It must not hold domain logic (what an event or a plan *is* belongs to
//! zhilu-core; rows arrive here already decided) nor know about HTTP,
//! sessions' tokens or passwords in clear (the server hashes them).
//!
//! Every query is checked at run time (no `DATABASE_URL` at build); the SQL
//! text is the same for both backends wherever the dialects allow (numbered
//! `$n` parameters work in both). Each operation is written once and compiled
//! for each backend by the `on_pool!` / `in_tx!` macros in `lib.rs`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::query_builder::Separated;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Database, Executor, IntoArguments, QueryBuilder, Transaction};

/// Runs `$body` with `$p` bound to the concrete pool (`&SqlitePool` or
/// `&PgPool`): the body is written once and type-checked per backend.
macro_rules! on_pool {
    ($store:expr, $p:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}

/// Appends one audit entry (`$audit`: an `AuditEntry`) inside a transaction
/// of [`in_tx!`] (`$tx`), in the same commit as what it records; an error
/// names the operation `$op`.
macro_rules! audit_in_tx {
    ($tx:ident, $audit:expr, $op:expr) => {
        sqlx::query(
            "INSERT INTO audit (wall_ms, actor, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind($audit.wall_ms)
        .bind($audit.actor.as_str())
        .bind($audit.action.as_str())
        .bind($audit.target.as_str())
        .bind($audit.detail.as_str())
        .execute(&mut *$tx)
        .await
        .map_err($crate::error::db($op, "audit"))?
    };
}

/// Runs `$body` inside one transaction bound to `$tx` and commits it when
/// the body completes; an early return (`?`) rolls it back.
///
/// - default (writes): SQLite `BEGIN IMMEDIATE` (takes the write lock up
///   front, so a transaction that reads before it writes cannot fail on a
///   stale snapshot), PostgreSQL plain `BEGIN`;
/// - `snapshot` (writes that must see one snapshot, e.g. read-then-delete):
///   as above, PostgreSQL `REPEATABLE READ`; on SQLite the write lock already
///   excludes other writers;
/// - `read` (several reads that must agree): SQLite deferred `BEGIN` (one WAL
///   snapshot, no lock on writers), PostgreSQL `REPEATABLE READ READ ONLY`.
macro_rules! in_tx {
    ($store:expr, $op:expr, $tx:ident => $body:expr) => {
        in_tx!(@go $store, $op, "BEGIN IMMEDIATE", "BEGIN", $tx => $body)
    };
    ($store:expr, $op:expr, snapshot, $tx:ident => $body:expr) => {
        in_tx!(@go $store, $op, "BEGIN IMMEDIATE", "BEGIN ISOLATION LEVEL REPEATABLE READ",
            $tx => $body)
    };
    ($store:expr, $op:expr, read, $tx:ident => $body:expr) => {
        in_tx!(@go $store, $op, "BEGIN", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            $tx => $body)
    };
    (@go $store:expr, $op:expr, $sqlite_begin:literal, $pg_begin:literal,
        $tx:ident => $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool
                    .begin_with($sqlite_begin)
                    .await
                    .map_err($crate::error::db($op, "begin"))?;
                let out = $body;
                $tx.commit().await.map_err($crate::error::db($op, "commit"))?;
                out
            }
            $crate::Pool::Postgres(pool) => {
                #[allow(unused_mut)]
                let mut $tx = pool
                    .begin_with($pg_begin)
                    .await
                    .map_err($crate::error::db($op, "begin"))?;
                let out = $body;
                $tx.commit().await.map_err($crate::error::db($op, "commit"))?;
                out
            }
        }
    };
}

mod accounts;
mod error;
mod events;
mod history;
mod plans;
mod quarantine;
mod readings;
mod retention;
mod state;
mod terminals;
mod types;
mod workflow;

pub use accounts::AccountSummary;
pub use error::StoreError;
pub use history::StationBucket;
pub use retention::{Obs5MinRow, Weather5MinRow};
pub use terminals::TerminalRow;
pub use types::*;
pub use workflow::{HandoverRow, NoteRow, WorkflowRow};

/// The store's result type.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Connections kept by a file-backed SQLite store (one writer at a time
/// anyway; the others serve reads, which WAL lets run beside the writer).
const SQLITE_MAX_CONNECTIONS: u32 = 8;
/// Connections kept by a PostgreSQL store.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long a SQLite writer waits for the lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// The most bind parameters one statement may carry (SQLite's default limit).
const SQLITE_MAX_PARAMS: usize = 32_766;
/// The most bind parameters one statement may carry (the wire protocol's limit).
const POSTGRES_MAX_PARAMS: usize = 65_535;
/// Rows per multi-row INSERT, at most: big enough that per-statement costs
/// vanish, small enough to keep statements cached and memory flat.
const MAX_ROWS_PER_INSERT: usize = 1000;
/// The row limit used when a caller passes 0.
pub const DEFAULT_LIMIT: u32 = 1000;

/// A handle on the database; cheap to clone (clones share the pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// The SQLite file, when there is one.
    path: Option<std::path::PathBuf>,
    /// A page limit for every SQLite connection (0 = none): an operator's
    /// cap on the file, and how tests make a "full disk" without root.
    page_limit: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// How a store is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// SQLite `synchronous=FULL` (a commit acknowledged survives a power
    /// cut) instead of `NORMAL` (a power cut may lose the last commits).
    pub sync_full: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions { sync_full: true }
    }
}

/// A database URL fit to print: any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    error::redact(url)
}

/// SQLite's own ceiling on `max_page_count`, i.e. no limit.
const SQLITE_NO_PAGE_LIMIT: u64 = 4_294_967_294;

/// The backend behind a [`Store`].
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Store {
    /// Opens (creating if needed) the database at `url` and brings its schema
    /// up to date.
    ///
    /// - `sqlite://PATH` — a file, created (mode 0600, with its directory)
    ///   if missing, tightened to 0600 if it was readable by others; WAL
    ///   journal, `synchronous=FULL` (a committed transaction survives a
    ///   power cut; [`OpenOptions::sync_full`] = false for `NORMAL`), 5 s
    ///   busy timeout, foreign keys on.
    /// - `sqlite::memory:` — a private in-memory database (one connection).
    /// - `postgres://…` / `postgresql://…` — an existing database.
    ///
    /// A connection whose transaction could not be ended cleanly (a commit
    /// that failed on a full disk, say) is closed when it is given back
    /// rather than reused, so storage errors heal once the cause is gone.
    pub async fn open(url: &str) -> Result<Store> {
        Self::open_with(url, OpenOptions::default()).await
    }

    /// [`Store::open`] for a database that must exist already: a SQLite
    /// file that is not there is [`StoreError::BadUrl`] ("no such database
    /// file"), nothing is created. For commands that read or change what
    /// a server wrote (`zhilu user list`): a mistyped path must not look
    /// like an empty database.
    pub async fn open_existing(url: &str) -> Result<Store> {
        if url.starts_with("sqlite:") && !url.starts_with("sqlite::memory:") {
            let shown = error::redact(url);
            let opts = SqliteConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
            let file = opts.get_filename();
            if file != std::path::Path::new(":memory:") && !file.is_file() {
                return Err(StoreError::BadUrl {
                    url: shown,
                    reason: "no such database file".into(),
                });
            }
        }
        Self::open(url).await
    }

    /// [`Store::open`] with options.
    pub async fn open_with(url: &str, o: OpenOptions) -> Result<Store> {
        let shown = error::redact(url);
        if url.starts_with("sqlite:") {
            Self::open_sqlite(url, shown, o).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::open_postgres(url, shown).await
        } else {
            Err(StoreError::BadUrl {
                url: shown,
                reason: "expected sqlite://PATH, sqlite::memory: or postgres://…".into(),
            })
        }
    }

    async fn open_sqlite(url: &str, shown: String, o: OpenOptions) -> Result<Store> {
        let bad = |reason: String| StoreError::BadUrl {
            url: shown.clone(),
            reason,
        };
        let base = SqliteConnectOptions::from_str(url).map_err(|e| bad(e.to_string()))?;
        let in_memory = url.starts_with("sqlite::memory:") || base.get_filename() == ":memory:";
        let opts = base
            .create_if_missing(true)
            .synchronous(if o.sync_full {
                SqliteSynchronous::Full
            } else {
                SqliteSynchronous::Normal
            })
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true);
        let page_limit = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (limit, limit2) = (page_limit.clone(), page_limit.clone());
        let pool_opts = SqlitePoolOptions::new()
            .after_connect(move |conn, _| {
                let limit = limit2.load(std::sync::atomic::Ordering::Acquire);
                Box::pin(async move { apply_page_limit(conn, limit).await })
            })
            .before_acquire(move |conn, _| {
                let limit = limit.load(std::sync::atomic::Ordering::Acquire);
                Box::pin(async move { apply_page_limit(conn, limit).await.map(|()| true) })
            })
            .after_release(|conn, _| {
                Box::pin(async move {
                    // Runs after any rollback queued by a dropped
                    // transaction; a connection still inside one (its
                    // COMMIT or ROLLBACK failed) is closed, never reused.
                    sqlx::Connection::ping(&mut *conn).await?;
                    Ok(!sqlx::Connection::is_in_transaction(&*conn))
                })
            });
        let mut path = None;
        let (opts, pool_opts) = if in_memory {
            // Every connection to :memory: is its own database: keep exactly one, forever.
            let pool_opts = pool_opts
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (opts, pool_opts)
        } else {
            if let Some(dir) = opts.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| bad(format!("creating directory {}: {e}", dir.display())))?;
            }
            let file = opts.get_filename().to_path_buf();
            private_file(&file).map_err(|e| bad(format!("{}: {e}", file.display())))?;
            path = Some(file);
            let opts = opts.journal_mode(SqliteJournalMode::Wal);
            (opts, pool_opts.max_connections(SQLITE_MAX_CONNECTIONS))
        };
        let pool = pool_opts
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Connect {
                backend: "sqlite",
                url: shown.clone(),
                source,
            })?;
        SQLITE_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: "sqlite",
                source,
            })?;
        tracing::debug!(url = %shown, "store: sqlite open");
        Ok(Store {
            pool: Pool::Sqlite(pool),
            path,
            page_limit,
        })
    }

    async fn open_postgres(url: &str, shown: String) -> Result<Store> {
        let opts = PgConnectOptions::from_str(url).map_err(|e| StoreError::BadUrl {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(POSTGRES_MAX_CONNECTIONS)
            .connect_with(opts)
            .await
            .map_err(|source| StoreError::Connect {
                backend: "postgres",
                url: shown.clone(),
                source,
            })?;
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                backend: "postgres",
                source,
            })?;
        tracing::debug!(url = %shown, "store: postgres open");
        Ok(Store {
            pool: Pool::Postgres(pool),
            path: None,
            page_limit: Default::default(),
        })
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// The SQLite file (for free-space checks), if the store is one.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }

    /// SQLite: caps the file at `pages` pages (`None` lifts the cap) on
    /// every connection from its next use. Past the cap writes fail as on
    /// a full disk, which is how the tests make one without root.
    pub fn set_page_limit(&self, pages: Option<u64>) {
        self.page_limit.store(
            pages.unwrap_or(u64::MAX).max(1),
            std::sync::atomic::Ordering::Release,
        );
    }

    /// SQLite: pages in use now (0 for PostgreSQL).
    pub async fn page_count(&self) -> Result<u64> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::query_scalar::<_, i64>("PRAGMA page_count")
                .fetch_one(p)
                .await
                .map(|n| n.max(0) as u64)
                .map_err(error::db("page_count", "pragma")),
            Pool::Postgres(_) => Ok(0),
        }
    }

    /// SQLite: `"full"` or `"normal"` (the `synchronous` setting of the
    /// store's connections); `None` for PostgreSQL (always durable).
    pub async fn durability(&self) -> Result<Option<&'static str>> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let n: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(p)
                    .await
                    .map_err(error::db("durability", "pragma"))?;
                Ok(Some(match n {
                    2 | 3 => "full",
                    1 => "normal",
                    _ => "off",
                }))
            }
            Pool::Postgres(_) => Ok(None),
        }
    }

    /// SQLite: copies the write-ahead log into the database file and
    /// empties it (`wal_checkpoint(TRUNCATE)`), e.g. before a file copy;
    /// afterwards every write needs new room on the disk. PostgreSQL:
    /// nothing to do.
    pub async fn truncate_log(&self) -> Result<()> {
        if let Pool::Sqlite(p) = &self.pool {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await
                .map_err(error::db("truncate_log", "wal"))?;
        }
        Ok(())
    }

    /// Closes every connection (waits for the ones in use to be returned).
    /// Clones of this store can no longer be used afterwards.
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// Sets `max_page_count` on a connection (0 = never set: nothing to do).
async fn apply_page_limit(conn: &mut sqlx::SqliteConnection, limit: u64) -> sqlx::Result<()> {
    if limit != 0 {
        let n = if limit == u64::MAX {
            SQLITE_NO_PAGE_LIMIT
        } else {
            limit
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("PRAGMA max_page_count = {n}")))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Creates the database file readable by its owner only (it holds password
/// and session hashes), or tightens an existing one and its WAL files.
fn private_file(file: &std::path::Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if !file.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(file)
                .map(|_| ())
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let mut name = file.as_os_str().to_owned();
            name.push(suffix);
            let f = std::path::PathBuf::from(name);
            if let Ok(m) = std::fs::metadata(&f)
                && m.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Database-specific limits, so the shared code can size its statements.
pub(crate) trait Backend: Database {
    /// The most bind parameters one statement may carry.
    const MAX_PARAMS: usize;
}

impl Backend for sqlx::Sqlite {
    const MAX_PARAMS: usize = SQLITE_MAX_PARAMS;
}

impl Backend for sqlx::Postgres {
    const MAX_PARAMS: usize = POSTGRES_MAX_PARAMS;
}

/// Inserts `rows` as multi-row `head VALUES (…), (…) tail` statements of as
/// many rows as the backend's bind-parameter limit (and
/// [`MAX_ROWS_PER_INSERT`]) allow, inside the caller's transaction. `push`
/// binds the `cols` values of one row.
pub(crate) async fn insert_values<'r, DB, T, I>(
    tx: &mut Transaction<'_, DB>,
    head: &str,
    tail: &str,
    cols: usize,
    rows: I,
    mut push: impl FnMut(Separated<'_, DB, &'static str>, &'r T),
) -> Result<(), sqlx::Error>
where
    DB: Backend + sqlx::database::HasStatementCache,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    T: 'r,
    I: IntoIterator<Item = &'r T>,
    I::IntoIter: ExactSizeIterator,
{
    let per_stmt = (DB::MAX_PARAMS / cols.max(1)).clamp(1, MAX_ROWS_PER_INSERT);
    let mut rows = rows.into_iter().peekable();
    let mut qb = QueryBuilder::<DB>::new(head);
    while rows.peek().is_some() {
        let n = rows.len().min(per_stmt);
        qb.reset();
        qb.push_values(rows.by_ref().take(n), &mut push);
        qb.push(tail);
        // Full statements share one SQL text and stay prepared; a short
        // last chunk is one-off and is not cached.
        qb.build()
            .persistent(n == per_stmt)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// [`insert_values`] whose statements end in `tail` (an `ON CONFLICT DO
/// NOTHING`): the ranges of `rows` (by position) whose statement inserted
/// fewer rows than it carried, i.e. where some were skipped (usually none).
pub(crate) async fn insert_skipping<'r, DB, T, I>(
    tx: &mut Transaction<'_, DB>,
    head: &str,
    tail: &str,
    cols: usize,
    rows: I,
    mut push: impl FnMut(Separated<'_, DB, &'static str>, &'r T),
) -> Result<Vec<std::ops::Range<usize>>, sqlx::Error>
where
    DB: Backend + sqlx::database::HasStatementCache,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::QueryResult: RowsAffected,
    T: 'r,
    I: IntoIterator<Item = &'r T>,
    I::IntoIter: ExactSizeIterator,
{
    let per_stmt = (DB::MAX_PARAMS / cols.max(1)).clamp(1, MAX_ROWS_PER_INSERT);
    let mut rows = rows.into_iter().peekable();
    let mut qb = QueryBuilder::<DB>::new(head);
    let mut at = 0;
    let mut short = Vec::new();
    while rows.peek().is_some() {
        let n = rows.len().min(per_stmt);
        qb.reset();
        qb.push_values(rows.by_ref().take(n), &mut push);
        qb.push(tail);
        let done = qb
            .build()
            .persistent(n == per_stmt)
            .execute(&mut **tx)
            .await?;
        if done.affected() < n as u64 {
            short.push(at..at + n);
        }
        at += n;
    }
    Ok(short)
}

/// Rows a statement changed, whatever the backend.
pub(crate) trait RowsAffected {
    /// Rows changed.
    fn affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// Which of `seqs` are stored in `table` (inside the caller's transaction).
pub(crate) async fn stored_seqs<DB>(
    tx: &mut Transaction<'_, DB>,
    table: &str,
    seqs: &[i64],
) -> Result<Vec<i64>, sqlx::Error>
where
    DB: Backend + sqlx::database::HasStatementCache,
    DB::Arguments: IntoArguments<DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    (i64,): for<'row> sqlx::FromRow<'row, DB::Row>,
    i64: for<'q> sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut out = Vec::new();
    for chunk in seqs.chunks(MAX_ROWS_PER_INSERT) {
        let mut qb = QueryBuilder::<DB>::new(format!("SELECT seq FROM {table} WHERE seq IN ("));
        let mut sep = qb.separated(", ");
        for s in chunk {
            sep.push_bind(*s);
        }
        qb.push(")");
        let got: Vec<i64> = qb
            .build_query_scalar()
            .persistent(false)
            .fetch_all(&mut **tx)
            .await?;
        out.extend(got);
    }
    Ok(out)
}

/// `limit`, or [`DEFAULT_LIMIT`] when it is 0, as SQL wants it.
pub(crate) fn limit_or_default(limit: u32) -> i64 {
    i64::from(if limit == 0 { DEFAULT_LIMIT } else { limit })
}
