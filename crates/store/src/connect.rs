//! Opening the database from its URL alone.

use crate::{DatabaseConfig, StoreError};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use std::time::Duration;

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// The scale-out database.
    Postgres,
}

impl Backend {
    /// The backend of an open connection.
    pub fn of(db: &DatabaseConnection) -> Self {
        match db.get_database_backend() {
            DbBackend::Postgres => Self::Postgres,
            _ => Self::Sqlite,
        }
    }
}

/// Opens a pool to the configured database. For SQLite the file and its folder are created,
/// with WAL journaling, foreign keys enforced and a busy timeout.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(config.url.as_str());
    options
        .max_connections(config.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(config.connect_timeout_seconds))
        .acquire_timeout(Duration::from_secs(config.connect_timeout_seconds))
        .sqlx_logging(config.log_statements);

    let sqlite_dir = config
        .url
        .sqlite_path()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()));
    if let Some(dir) = sqlite_dir.filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(&dir).map_err(|e| {
            StoreError::Other(sea_orm::DbErr::Custom(format!(
                "cannot create the data folder {}: {e}",
                dir.display()
            )))
        })?;
    }
    if !config.url.is_postgres() {
        let busy = Duration::from_millis(config.busy_timeout_ms);
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(busy)
        });
    } else if let Some(schema) = &config.schema {
        options.set_schema_search_path(schema.clone());
    }

    Ok(Database::connect(options).await?)
}

/// Begins a transaction that will write. On SQLite it takes the write lock at `BEGIN`
/// (`BEGIN IMMEDIATE`), waiting up to the busy timeout for another writer: a deferred
/// transaction that reads first fails at once with "database is locked" when another
/// connection commits before its first write (WAL mode cannot upgrade a stale read). PostgreSQL
/// ignores the mode.
pub(crate) async fn begin_write(
    db: &sea_orm::DatabaseConnection,
) -> Result<sea_orm::DatabaseTransaction, sea_orm::DbErr> {
    use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait as _};
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}
