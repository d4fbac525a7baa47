//! Newsroom alerts: SPEC §3 "Newsroom" — send a breaking alert, watch its fan-out, cancel it.
//!
//! The alert carries its own title, body and link, so it does not depend on the article and
//! story tables: until those resolve ids, `title`, `url` and `topics` are required.

use crate::session::RequireEditor;
use crate::{ApiError, ApiJson, AppState, FieldError};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use herald_store::StoreError;
use herald_store::queue::{self, AlertCounters, NewQueuedAlert};
use herald_store::topics;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Shortest and longest alert lifetimes accepted, in seconds (one minute to four weeks).
const TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=2_419_200;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/admin/alerts", post(send_alert))
        .route(
            "/v1/admin/alerts/{id}",
            get(alert_status).delete(cancel_alert),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SendAlertRequest {
    article_id: Option<Uuid>,
    story_id: Option<Uuid>,
    topics: Option<Vec<String>>,
    title: Option<String>,
    body: Option<String>,
    url: Option<String>,
    image_url: Option<String>,
    urgency: Option<String>,
    ttl_seconds: Option<i64>,
}

#[derive(Serialize)]
struct CreatedBody {
    id: Uuid,
}

#[derive(Serialize)]
struct SkippedBody {
    quiet_hours: u64,
    daily_cap: u64,
    duplicate: u64,
}

#[derive(Serialize)]
struct StatusBody {
    id: Uuid,
    state: &'static str,
    targeted: u64,
    sent: u64,
    failed: u64,
    pruned: u64,
    skipped: SkippedBody,
    opened: u64,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<AlertCounters> for StatusBody {
    fn from(c: AlertCounters) -> Self {
        Self {
            id: c.id,
            state: c.state.as_str(),
            targeted: c.targeted,
            sent: c.sent,
            failed: c.failed,
            pruned: c.pruned,
            skipped: SkippedBody {
                quiet_hours: c.skipped_quiet_hours,
                daily_cap: c.skipped_daily_cap,
                duplicate: c.skipped_duplicate,
            },
            opened: c.opened,
            created_at: c.created_at,
            finished_at: c.finished_at,
        }
    }
}

fn http_url(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let parsed = url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
    match parsed {
        Some(url) if raw.len() <= 2048 => Some(url.to_string()),
        _ => {
            errors.push(FieldError::new(
                field,
                "must be an absolute http(s) URL of at most 2048 characters",
            ));
            None
        }
    }
}

/// Turns the request into an alert, naming every field that is missing or wrong.
fn parse_alert(
    req: SendAlertRequest,
    default_ttl: u32,
    editor: Uuid,
) -> Result<NewQueuedAlert, ApiError> {
    let mut errors = Vec::new();
    let missing = "is required (article and story lookup is not available yet)";
    let title = match req.title.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(FieldError::new("title", missing));
            None
        }
        Some(t) if t.chars().count() > 300 => {
            errors.push(FieldError::new("title", "must be at most 300 characters"));
            None
        }
        Some(t) => Some(t.to_string()),
    };
    let body = req.body.unwrap_or_default().trim().to_string();
    if body.chars().count() > 1000 {
        errors.push(FieldError::new("body", "must be at most 1000 characters"));
    }
    let url = match req.url.as_deref() {
        None | Some("") => {
            errors.push(FieldError::new("url", missing));
            None
        }
        Some(raw) => http_url("url", raw, &mut errors),
    };
    let image_url = req
        .image_url
        .as_deref()
        .and_then(|raw| http_url("image_url", raw, &mut errors));
    let mut topic_list = req.topics.unwrap_or_default();
    topic_list.sort();
    topic_list.dedup();
    if topic_list.is_empty() {
        errors.push(FieldError::new("topics", missing));
    } else if topic_list.len() > 20 {
        errors.push(FieldError::new("topics", "at most 20 topics"));
    }
    let urgency = req.urgency.unwrap_or_else(|| "normal".into());
    if !matches!(urgency.as_str(), "very-low" | "low" | "normal" | "high") {
        errors.push(FieldError::new(
            "urgency",
            "must be very-low, low, normal or high",
        ));
    }
    let ttl = req.ttl_seconds.unwrap_or(i64::from(default_ttl));
    if !TTL_RANGE.contains(&ttl) {
        errors.push(FieldError::new(
            "ttl_seconds",
            format!(
                "must be between {} and {}",
                TTL_RANGE.start(),
                TTL_RANGE.end()
            ),
        ));
    }
    match (title, url) {
        (Some(title), Some(url)) if errors.is_empty() => Ok(NewQueuedAlert {
            story_id: req.story_id,
            article_id: req.article_id,
            topics: topic_list,
            title,
            body,
            url,
            image_url,
            urgency,
            ttl_seconds: i32::try_from(ttl).unwrap_or(i32::MAX),
            trigger: "editor".into(),
            created_by: Some(editor),
        }),
        _ => Err(ApiError::Validation(errors)),
    }
}

/// Send a breaking alert now: 202 with its id; the notifier fans it out.
async fn send_alert(
    State(state): State<AppState>,
    RequireEditor(principal): RequireEditor,
    ApiJson(req): ApiJson<SendAlertRequest>,
) -> Result<(StatusCode, Json<CreatedBody>), ApiError> {
    let new = parse_alert(req, state.push.default_ttl_seconds, principal.user_id)?;
    let unknown = topics::unknown(&state.db, &new.topics).await?;
    if !unknown.is_empty() {
        return Err(ApiError::invalid(
            "topics",
            format!(
                "unknown topic(s): {}; see GET /v1/topics",
                unknown.join(", ")
            ),
        ));
    }
    let alert = queue::enqueue(&state.db, new).await?;
    tracing::info!(alert = %alert.id, editor = %principal.user_id, "alert queued");
    Ok((StatusCode::ACCEPTED, Json(CreatedBody { id: alert.id })))
}

/// How an alert's fan-out is going: state and counters.
async fn alert_status(
    State(state): State<AppState>,
    RequireEditor(_): RequireEditor,
    Path(id): Path<Uuid>,
) -> Result<Json<StatusBody>, ApiError> {
    match queue::counters(&state.db, id).await {
        Ok(counters) => Ok(Json(counters.into())),
        Err(StoreError::NotFound) => Err(ApiError::NotFound(format!("no alert {id}"))),
        Err(err) => Err(err.into()),
    }
}

/// Cancel what has not been sent yet; 409 when the alert already finished.
async fn cancel_alert(
    State(state): State<AppState>,
    RequireEditor(principal): RequireEditor,
    Path(id): Path<Uuid>,
) -> Result<Json<StatusBody>, ApiError> {
    match queue::cancel(&state.db, id).await {
        Ok(counters) => {
            tracing::info!(alert = %id, editor = %principal.user_id, "alert cancelled");
            Ok(Json(counters.into()))
        }
        Err(StoreError::NotFound) => Err(ApiError::NotFound(format!("no alert {id}"))),
        Err(StoreError::Conflict(why)) => Err(ApiError::Conflict(why)),
        Err(err) => Err(err.into()),
    }
}
