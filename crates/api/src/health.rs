//! Liveness, readiness and metrics: what an operator's probes and scrapers call.

use crate::openapi::{Unauthorized, Unavailable};
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
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

/// Prometheus text exposition of every metric Herald keeps. With `http.metrics_token` set,
/// only for `Authorization: Bearer <token>`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "OpenMetrics text",
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String),
        (status = 401, response = Unauthorized),
    )
)]
async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(token) = &state.http.metrics_token {
        scraper_allowed(&headers, token.expose())?;
    }
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

/// Whether the request carries `Authorization: Bearer <expected>`. The comparison takes the
/// same time wherever the first difference is, so the token cannot be guessed byte by byte.
fn scraper_allowed(headers: &HeaderMap, expected: &str) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Lengths compared first leak only the length; hashing both first hides even that.
    let digest =
        |text: &str| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    aws_lc_rs::constant_time::verify_slices_are_equal(
        digest(presented).as_ref(),
        digest(expected).as_ref(),
    )
    .map_err(|_| {
        ApiError::Unauthorized("/metrics needs the bearer token set as http.metrics_token".into())
    })
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

    #[test]
    fn the_metrics_token_must_match_exactly() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::AUTHORIZATION,
                value.parse().expect("a header value"),
            );
            headers
        };
        assert!(scraper_allowed(&with("Bearer s3cret-token"), "s3cret-token").is_ok());
        for wrong in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Basic s3cret-token",
            "s3cret-token",
        ] {
            assert!(
                scraper_allowed(&with(wrong), "s3cret-token").is_err(),
                "{wrong}"
            );
        }
        assert!(scraper_allowed(&HeaderMap::new(), "s3cret-token").is_err());
    }
}
