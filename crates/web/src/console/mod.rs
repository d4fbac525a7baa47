//! The newsroom console at `/console`: stories arriving, compose and send, progress, history
//! and sources, for editors and admins.

use crate::WebState;
use crate::assets::Asset;
use axum::Router;

/// The console's files under `assets/console/`.
pub(crate) const ASSETS: &[Asset] = &[];

pub(crate) fn router() -> Router<WebState> {
    Router::new()
}
