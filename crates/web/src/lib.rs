//! Herald's web faces: the reader's news site at `/` (server-rendered, installable, with push)
//! and the newsroom console at `/console`.
//!
//! Pages read through `herald_store` and `herald_auth`, never through the JSON API crate; the
//! scripts that enhance them call documented `/v1` routes. Every response of these routers
//! carries the strict Content-Security-Policy of [`csp`], and every asset is compiled into the
//! binary and served under a name that carries its content hash ([`assets`]).

pub mod assets;
mod config;
pub mod csp;
pub mod paths;

mod console;
mod reader;

pub use config::WebConfig;

use axum::Router;
use herald_store::Db;
use std::ops::Deref;
use std::sync::Arc;

/// What the pages need: the database, the web settings and the VAPID public key.
pub struct Web {
    /// The database pool.
    pub db: Db,
    /// The `[web]` settings.
    pub config: WebConfig,
    /// The VAPID public key, base64url, for `PushManager.subscribe`.
    pub vapid_public_key: String,
    /// Signs page cursors: the pages' "older" links carry the JSON API's own cursors.
    pub cursor_key: herald_auth::CursorKey,
}

/// Cheap handle on [`Web`] for axum's `State`.
#[derive(Clone)]
pub struct WebState(pub Arc<Web>);

impl Deref for WebState {
    type Target = Web;

    fn deref(&self) -> &Web {
        &self.0
    }
}

/// The reader's pages, the service worker, the manifest and the shared assets.
///
/// Generic over the outer router's state so the binary can merge it beside the API's routes.
pub fn reader_router<S: Clone + Send + Sync + 'static>(state: WebState) -> Router<S> {
    csp::apply(reader::router().merge(assets::router()).with_state(state))
}

/// The newsroom console at `/console`.
pub fn console_router<S: Clone + Send + Sync + 'static>(state: WebState) -> Router<S> {
    csp::apply(console::router().with_state(state))
}
