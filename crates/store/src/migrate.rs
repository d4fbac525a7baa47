//! Bringing the schema up to date and reporting where it stands.

use crate::{Backend, StoreError};
use herald_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};

/// Arbitrary but fixed key for the PostgreSQL advisory lock that serialises migrations
/// when several processes start at once.
const MIGRATION_LOCK_KEY: i64 = 0x4845_5241_4c44; // "HERALD"

/// One migration and whether it has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's file name.
    pub name: String,
    /// Applied to this database.
    pub applied: bool,
}

/// Applies every pending migration. On PostgreSQL, concurrent callers wait for each other.
pub async fn up(db: &DatabaseConnection) -> Result<(), StoreError> {
    match Backend::of(db) {
        Backend::Postgres => {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))
            .await?;
            Migrator::up(&txn, None).await?;
            txn.commit().await?;
        }
        Backend::Sqlite => Migrator::up(db, None).await?,
    }
    Ok(())
}

/// Every migration Herald knows with its state here; creates nothing.
pub async fn status(db: &DatabaseConnection) -> Result<Vec<MigrationState>, StoreError> {
    let all = Migrator::get_migration_with_status_read_only(db).await?;
    Ok(all
        .into_iter()
        .map(|m| MigrationState {
            name: m.name().to_string(),
            applied: m.status() == herald_migrations::MigrationStatus::Applied,
        })
        .collect())
}

/// How many migrations have not been applied yet; creates nothing.
pub async fn pending(db: &DatabaseConnection) -> Result<usize, StoreError> {
    Ok(Migrator::get_pending_migrations_read_only(db).await?.len())
}
