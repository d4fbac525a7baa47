//! Opening the database from its URL alone.

use crate::{DatabaseConfig, StoreError};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend};
use std::path::Path;
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
/// owner-only, with WAL journaling, foreign keys enforced and a busy timeout.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(config.url.as_str());
    options
        .max_connections(config.max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(config.connect_timeout_seconds))
        .acquire_timeout(Duration::from_secs(config.connect_timeout_seconds))
        .sqlx_logging(config.log_statements);

    if let Some(file) = config.url.sqlite_path() {
        create_private(&file).map_err(|e| {
            StoreError::Other(sea_orm::DbErr::Custom(format!(
                "cannot create the database file {}: {e}",
                file.display()
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

/// Creates the SQLite file's folders (0700) and the file itself (0600) when missing, so
/// accounts, sessions and keys are never readable by other users of the machine; SQLite gives
/// its `-wal` and `-shm` files the database file's mode. What exists is left as it is.
fn create_private(file: &Path) -> std::io::Result<()> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(file) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
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
