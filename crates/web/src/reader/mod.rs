//! The reader's news site: front page, article and story pages, account, alerts, the web app
//! manifest and the service worker.

use crate::WebState;
use crate::assets::Asset;
use axum::Router;

/// The reader's files under `assets/reader/`.
pub(crate) const ASSETS: &[Asset] = &[];

pub(crate) fn router() -> Router<WebState> {
    Router::new()
}
