//! The two backends: opening a Postgres server or an SQLite file, and running the migrations
//! of the repository's `migrations/postgres` or `migrations/sqlite` folder (embedded at build
//! time) before the store is used.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

use crate::{redact, StoreError};

/// The Postgres backend.
pub struct PostgresStore {
    pub(crate) pool: sqlx::PgPool,
}

/// The SQLite backend.
pub struct SqliteStore {
    pub(crate) pool: sqlx::SqlitePool,
}

/// How long start-up waits for the database before saying it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn unreachable(url: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("cannot open the database at {}: {e}", redact(url)))
}

fn migration_error(e: sqlx::migrate::MigrateError) -> StoreError {
    StoreError::Database(format!("database migration failed: {e}"))
}

impl PostgresStore {
    /// Connects and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| unreachable(url, e))?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| unreachable(url, e))?;
        sqlx::migrate!("../migrations/postgres")
            .run(&pool)
            .await
            .map_err(migration_error)?;
        Ok(Self { pool })
    }
}

impl SqliteStore {
    /// Opens (creating the file and its directory when missing) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| unreachable(url, e))?
            .create_if_missing(true)
            // Readers keep reading while a vote is written.
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if let Some(dir) = options.get_filename().parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir).map_err(|e| unreachable(url, e))?;
            }
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| unreachable(url, e))?;
        sqlx::migrate!("../migrations/sqlite")
            .run(&pool)
            .await
            .map_err(migration_error)?;
        Ok(Self { pool })
    }
}
