//! The HTTP API: axum router, extractors, handlers, problem+json errors and OpenAPI.
//!
//! [`router`] assembles every area's routes behind the layers every route inherits:
//! request id and tracing span, metrics, CORS, gzip, body limit and request timeout.
//! Routes are registered only through `utoipa_axum::routes!`, so each one is described in
//! `/openapi.json` by its handler's own `#[utoipa::path]` annotation.

mod accounts;
mod alerts_admin;
mod audience;
mod cache;
mod comments;
mod config;
mod cursor;
mod error;
mod extract;
mod health;
mod layers;
mod metrics;
mod newsroom;
mod openapi;
mod reading;
mod session;
mod state;
mod websub;

pub use audience::MAX_DEVICES_PER_USER;
pub use cache::ReadCache;
pub use config::HttpConfig;
pub use error::{ApiError, FieldError};
pub use extract::ApiJson;
pub use herald_auth::cursor::{CursorKey, CursorKeyError};
pub use metrics::HttpMetrics;
pub use session::{Client, CurrentUser, RequireEditor};
pub use state::{App, AppState};

use axum::{Extension, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The whole HTTP API of Herald, ready to serve.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::default())
}

/// The whole HTTP API with `pages` (routes served beside it, e.g. the web faces) behind the
/// same layers: request ids, tracing, metrics, timeout, compression.
pub fn router_with(state: AppState, pages: Router<AppState>) -> Router {
    let (routes, document) = routes().split_for_parts();
    let routes = routes
        .layer(Extension(openapi::Spec::new(document)))
        .merge(pages);
    layers::apply(routes, state)
}

/// What a process without the api role serves: `/healthz`, `/readyz` and `/metrics` only,
/// behind the same layers as the API.
pub fn probes_router(state: AppState) -> Router {
    let (routes, _) = OpenApiRouter::new()
        .merge(health::router())
        .split_for_parts();
    layers::apply(routes, state)
}

/// Every route with its description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(openapi::docs))
        .routes(routes!(openapi::redoc_js))
        .merge(health::router())
        .merge(accounts::router())
        .merge(audience::router())
        .merge(alerts_admin::router())
        .merge(newsroom::router())
        .merge(reading::router())
        .merge(comments::router())
        .merge(websub::router())
}
