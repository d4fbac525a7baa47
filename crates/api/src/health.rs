//! Liveness, readiness and metrics: what an operator's probes and scrapers call.

use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::time::Duration;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// The process is up and serving HTTP.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and its schema is current; 503 otherwise.
async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let check = async {
        state
            .db
            .ping()
            .await
            .map_err(|e| format!("database unreachable: {e}"))?;
        let pending = herald_store::migrate::pending(&state.db)
            .await
            .map_err(|e| format!("cannot read the migration state: {e}"))?;
        if pending > 0 {
            return Err(format!(
                "{pending} migration(s) pending; run `herald migrate up`"
            ));
        }
        Ok(())
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(())) => Ok(Json(
            json!({ "status": "ready", "database": "ok", "migrations": "current" }),
        )),
        Ok(Err(reason)) => Err(ApiError::Unavailable(reason)),
        Err(_) => Err(ApiError::Unavailable(
            "database did not answer within 3 s".into(),
        )),
    }
}

/// Prometheus text exposition of every metric Herald keeps.
async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let mut body = String::new();
    prometheus_client::encoding::text::encode(&mut body, &state.registry)
        .map_err(ApiError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    ))
}
