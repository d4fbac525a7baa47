//! Liveness, readiness and metrics: what an operator's probes and scrapers call.

use crate::openapi::Unavailable;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;
use std::time::Duration;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

/// The process is up and serving HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Object, example = json!({"status": "ok"})))
)]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers, its schema is current and this process's background loops (ingest,
/// notifier) reached the database within `http.ready_stall_seconds`; 503 otherwise.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Object,
            example = json!({"status": "ready", "database": "ok", "migrations": "current"})),
        (status = 503, response = Unavailable),
    )
)]
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
        stalled_loop(
            &state.loops,
            Duration::from_secs(state.http.ready_stall_seconds),
        )
        .map_or(Ok(()), Err)
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

/// Why a background loop makes this process not ready: it has not reached the database
/// within `stall`, or never has yet.
fn stalled_loop(loops: &[herald_store::Heartbeat], stall: Duration) -> Option<String> {
    loops.iter().find_map(|beat| match beat.since_last() {
        None => Some(format!("the {} loop has not started yet", beat.name())),
        Some(since) if since > stall => Some(format!(
            "the {} loop has made no progress for {} s (limit {} s); see this process's log",
            beat.name(),
            since.as_secs(),
            stall.as_secs()
        )),
        Some(_) => None,
    })
}

/// Prometheus text exposition of every metric Herald keeps.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text",
        content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String))
)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_that_never_beat_or_stalled_makes_the_process_not_ready() {
        let notifier = herald_store::Heartbeat::new("notifier");
        let stall = Duration::from_millis(50);
        let reason = stalled_loop(std::slice::from_ref(&notifier), stall).expect("not started");
        assert!(reason.contains("notifier loop has not started"), "{reason}");
        notifier.beat();
        assert_eq!(stalled_loop(std::slice::from_ref(&notifier), stall), None);
        std::thread::sleep(Duration::from_millis(120));
        let reason = stalled_loop(&[notifier], stall).expect("stalled");
        assert!(reason.contains("no progress"), "{reason}");
        assert_eq!(stalled_loop(&[], stall), None);
    }
}
