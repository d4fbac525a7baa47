//! What every handler can reach.

use crate::{CursorKey, HttpConfig, HttpMetrics, ReadCache};
use herald_auth::Accounts;
use herald_notifier::config::PushConfig;
use herald_store::Db;
use prometheus_client::registry::Registry;
use std::ops::Deref;
use std::sync::Arc;

/// The application's shared parts, built once at start-up.
pub struct App {
    /// The database pool.
    pub db: Db,
    /// HTTP settings.
    pub http: HttpConfig,
    /// Every metric Herald exports, for `/metrics`.
    pub registry: Registry,
    /// The HTTP request metrics, registered in `registry`.
    pub http_metrics: HttpMetrics,
    /// Accounts, sessions and tokens.
    pub accounts: Accounts,
    /// Push settings (endpoint safety, default daily cap).
    pub push: PushConfig,
    /// The VAPID public key, base64url, for `PushManager.subscribe`.
    pub vapid_public_key: String,
    /// Signs and checks the lists' page cursors.
    pub cursor_key: CursorKey,
    /// Public reads kept for `http.read_cache_ms`.
    pub read_cache: ReadCache,
    /// The background loops this process runs (ingest, notifier), checked by `/readyz`.
    pub loops: Vec<herald_store::Heartbeat>,
    /// The push senders, for editors' test sends (the notifier role has its own).
    pub senders: herald_notifier::fanout::Senders,
}

/// Cheap handle on [`App`] for axum's `State`.
#[derive(Clone)]
pub struct AppState(pub Arc<App>);

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
