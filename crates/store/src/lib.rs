//! Sea-orm entities and every query Herald makes; the only crate that knows SQL.
//!
//! Other crates call functions such as `store::keys::load_or_create(&db, ...)` and get
//! domain values or a [`StoreError`] back, never a query builder.

pub mod alerts;
pub mod analytics;
pub mod articles;
pub mod comments;
mod config;
mod connect;
pub mod devices;
mod entity;
mod error;
pub mod heartbeat;
pub mod keys;
pub mod migrate;
pub mod newsroom;
pub mod preferences;
pub mod queue;
pub mod reading;
pub mod retries;
mod secret;
pub mod sessions;
pub mod source_health;
pub mod sources;
pub mod stories;
pub mod subscriptions;
pub mod testing;
pub mod throttle;
pub mod topics;
pub mod users;
pub mod websub;

pub use config::{DatabaseConfig, DatabaseUrl};
pub(crate) use connect::begin_write;
pub use connect::{Backend, connect};
pub use error::StoreError;
pub use heartbeat::Heartbeat;
pub use sea_orm::DatabaseConnection as Db;
pub use secret::Secret;
