//! The HTTP API: axum router, extractors, handlers, problem+json errors and OpenAPI.
//!
//! [`router`] assembles every area's routes behind the layers every route inherits:
//! request id and tracing span, metrics, CORS, gzip, body limit and request timeout.

mod accounts;
mod alerts_admin;
mod audience;
mod config;
mod error;
mod extract;
mod health;
mod layers;
mod metrics;
mod newsroom;
mod session;
mod state;

pub use audience::MAX_DEVICES_PER_USER;
pub use config::HttpConfig;
pub use error::{ApiError, FieldError};
pub use extract::ApiJson;
pub use metrics::HttpMetrics;
pub use session::{Client, CurrentUser, RequireEditor};
pub use state::{App, AppState};

use axum::Router;

/// The whole HTTP surface of Herald, ready to serve.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(health::router())
        .merge(accounts::router())
        .merge(audience::router())
        .merge(alerts_admin::router())
        .merge(newsroom::router());
    layers::apply(routes, state)
}
