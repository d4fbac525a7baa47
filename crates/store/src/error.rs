//! What a store function can fail with.

use sea_orm::{DbErr, SqlErr};

/// A store failure the caller can act on: absent, conflicting, or anything else (logged, 5xx).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row asked for does not exist.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; carries the database's description of it.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Anything else the database said.
    #[error("database error: {0}")]
    Other(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(err: DbErr) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(what)) => Self::Conflict(what),
            _ => match err {
                DbErr::RecordNotFound(_) => Self::NotFound,
                other => Self::Other(other),
            },
        }
    }
}
