//! The store's one error type: every failure names the operation and the
//! table (or file) it was working on.

use std::path::PathBuf;

/// A failed store operation, with its context.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one the store can open.
    #[error("store: cannot open `{url}`: {reason}")]
    BadUrl {
        /// The URL with any password removed.
        url: String,
        /// Why.
        reason: String,
    },
    /// Connecting to the database failed.
    #[error("store: connecting to {backend} at `{url}`: {source}")]
    Connect {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The URL with any password removed.
        url: String,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Bringing the schema up to date failed.
    #[error("store: migrating the {backend} schema: {source}")]
    Migrate {
        /// `sqlite` or `postgres`.
        backend: &'static str,
        /// The migrator's error.
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("store: {op} ({table}): {source}")]
    Db {
        /// The store method (`append_readings`, `commit_tick`, …).
        op: &'static str,
        /// The table (or step: `begin`, `commit`) it failed on.
        table: &'static str,
        /// The driver's error.
        source: sqlx::Error,
    },
    /// A row with the same key already exists.
    #[error("store: {op}: {what} already exists")]
    Conflict {
        /// The store method.
        op: &'static str,
        /// What collided, e.g. `user "ops1"`.
        what: String,
    },
    /// The row to change does not exist.
    #[error("store: {op}: no {what}")]
    NotFound {
        /// The store method.
        op: &'static str,
        /// What was missing, e.g. `user "ops1"`.
        what: String,
    },
    /// A stored value could not be read back.
    #[error("store: {op} ({table}): bad stored value: {detail}")]
    Corrupt {
        /// The store method.
        op: &'static str,
        /// The table.
        table: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// Writing an archive file failed (the pass was rolled back).
    #[error("store: {op}: archive file {}: {source}", path.display())]
    Archive {
        /// The store method.
        op: &'static str,
        /// The file (or directory).
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether this is a [`StoreError::Conflict`].
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// Maps a driver error to [`StoreError::Db`] with its context:
/// `.map_err(db("commit_tick", "events"))`.
pub(crate) fn db(op: &'static str, table: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { op, table, source }
}

/// Whether a driver error is a unique-key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// The URL without its password, for error messages and logs.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{userinfo}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/zhilu?sslmode=require"),
            "postgres://app:***@db:5432/zhilu?sslmode=require"
        );
        assert_eq!(
            redact("postgres://postgres@127.0.0.1:55432/postgres"),
            "postgres://postgres@127.0.0.1:55432/postgres"
        );
        assert_eq!(redact("sqlite://data/zhilu.db"), "sqlite://data/zhilu.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
    }
}
