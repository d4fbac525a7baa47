//! Newsroom alerts: SPEC §3 "Newsroom" — send a breaking alert, watch its fan-out, cancel it.
//!
//! The alert carries its own title, body and link. Given only `article_id`, they come from
//! the article (title, summary as body, link, image, topics, story); given only `story_id`,
//! from the story's newest article, with the story's topics. Fields in the request override
//! what the lookup found; an unknown id is a 404 and nothing is queued.
//!
//! For the newsroom console: an audience estimate before sending (the fan-out's own rules,
//! applied to the devices it would target now), the history of every alert, and an alert's
//! opens over time.

use crate::extract::Path;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::session::RequireEditor;
use crate::{ApiError, ApiJson, AppState, FieldError};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_store::StoreError;
use herald_store::alerts::{self, AlertSubject};
use herald_store::queue::{self, AlertCounters, NewQueuedAlert};
use herald_store::topics;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Shortest and longest alert lifetimes accepted, in seconds (one minute to four weeks).
const TTL_RANGE: std::ops::RangeInclusive<i64> = 60..=2_419_200;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_alert, list_alerts))
        .routes(routes!(estimate_audience))
        .routes(routes!(alert_status, cancel_alert))
        .routes(routes!(alert_opens))
}

#[derive(Debug, Deserialize, ToSchema)]
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

#[derive(Serialize, ToSchema)]
struct CreatedBody {
    id: Uuid,
}

#[derive(Serialize, ToSchema)]
struct SkippedBody {
    quiet_hours: u64,
    daily_cap: u64,
    duplicate: u64,
}

#[derive(Serialize, ToSchema)]
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

/// Longest body taken from an article's summary, in characters.
const SUMMARY_BODY_CHARS: usize = 200;

/// What the request's `article_id` (else `story_id`) refers to; 404 naming the id when unknown.
async fn subject(
    state: &AppState,
    req: &SendAlertRequest,
) -> Result<Option<AlertSubject>, ApiError> {
    fn not_found(what: &'static str, id: Uuid) -> impl Fn(StoreError) -> ApiError {
        move |err| match err {
            StoreError::NotFound => ApiError::NotFound(format!("no {what} {id}")),
            other => other.into(),
        }
    }
    if let Some(id) = req.story_id {
        // Checked even with an article: the alert must not name a story that does not exist.
        let story = alerts::story_subject(&state.db, id)
            .await
            .map_err(not_found("story", id))?;
        if req.article_id.is_none() {
            return Ok(Some(story));
        }
    }
    match req.article_id {
        Some(id) => Ok(Some(
            alerts::article_subject(&state.db, id)
                .await
                .map_err(not_found("article", id))?,
        )),
        None => Ok(None),
    }
}

/// Turns the request into an alert, naming every field that is missing or wrong; missing
/// fields are taken from `subject`, the article or story the alert is about.
fn parse_alert(
    mut req: SendAlertRequest,
    subject: Option<AlertSubject>,
    default_ttl: u32,
    editor: Uuid,
) -> Result<NewQueuedAlert, ApiError> {
    let mut errors = Vec::new();
    let missing = "is required unless article_id or story_id gives it";
    if let Some(subject) = subject {
        req.title = req
            .title
            .or(Some(subject.title.chars().take(300).collect()));
        req.body = req.body.or_else(|| {
            subject
                .summary
                .map(|s| s.chars().take(SUMMARY_BODY_CHARS).collect())
        });
        req.url = req.url.or(subject.url);
        // A feed's image link that is not usable is left out rather than refused.
        let usable =
            |u: &String| url::Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
        req.image_url = req.image_url.or(subject.image_url.filter(usable));
        req.topics = req.topics.or(Some(subject.topics));
        req.story_id = req.story_id.or(subject.story_id);
        req.article_id = req.article_id.or(subject.article_id);
    }
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
#[utoipa::path(
    post,
    path = "/v1/admin/alerts",
    tag = "newsroom",
    security(("bearer" = [])),
    request_body = SendAlertRequest,
    responses(
        (status = 202, description = "Queued; the notifier fans it out", body = CreatedBody),
        (status = 404, response = NotFound),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
    )
)]
async fn send_alert(
    State(state): State<AppState>,
    RequireEditor(principal): RequireEditor,
    ApiJson(req): ApiJson<SendAlertRequest>,
) -> Result<(StatusCode, Json<CreatedBody>), ApiError> {
    let subject = subject(&state, &req).await?;
    let new = parse_alert(
        req,
        subject,
        state.push.default_ttl_seconds,
        principal.user_id,
    )?;
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
#[utoipa::path(
    get,
    path = "/v1/admin/alerts/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id")),
    responses(
        (status = 200, description = "The alert's state and counters", body = StatusBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn alert_status(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    Path(id): Path<Uuid>,
) -> Result<Json<StatusBody>, ApiError> {
    match queue::counters(&state.db, id).await {
        Ok(counters) => Ok(Json(counters.into())),
        Err(StoreError::NotFound) => Err(ApiError::NotFound(format!("no alert {id}"))),
        Err(err) => Err(err.into()),
    }
}

/// Cancel what has not been sent yet; 409 when the alert already finished.
#[utoipa::path(
    delete,
    path = "/v1/admin/alerts/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id")),
    responses(
        (status = 200, description = "Cancelled: the state and counters", body = StatusBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
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

/// How many devices an alert would reach if it were sent now, and how many the fan-out
/// would skip, by reason.
#[derive(Serialize, ToSchema)]
#[schema(as = AudienceEstimate)]
struct EstimateBody {
    /// The topics the estimate is for (from the request, else the article or story).
    topics: Vec<String>,
    /// Live devices whose owners follow any of the topics.
    targeted: u64,
    /// Of those, the devices that would be sent the alert now.
    would_send: u64,
    /// Of those, the devices that would be skipped now.
    skipped: SkippedBody,
    /// When the estimate was made.
    estimated_at: DateTime<Utc>,
}

/// Devices read per page while estimating: memory stays bounded however large the audience.
const ESTIMATE_PAGE: u64 = 2_000;

/// Audience estimate: the devices an alert would reach now and the ones skipped for quiet
/// hours, the daily cap or already having the story. Takes the same body as sending; nothing
/// is queued.
#[utoipa::path(
    post,
    path = "/v1/admin/alerts/estimate",
    tag = "newsroom",
    security(("bearer" = [])),
    request_body = SendAlertRequest,
    responses(
        (status = 200, description = "What sending it now would do", body = EstimateBody),
        (status = 404, response = NotFound),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
    )
)]
async fn estimate_audience(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    ApiJson(req): ApiJson<SendAlertRequest>,
) -> Result<Json<EstimateBody>, ApiError> {
    let subject = subject(&state, &req).await?;
    let story = req
        .story_id
        .or_else(|| subject.as_ref().and_then(|s| s.story_id));
    let mut topic_list = req
        .topics
        .clone()
        .or_else(|| subject.as_ref().map(|s| s.topics.clone()))
        .unwrap_or_default();
    topic_list.sort();
    topic_list.dedup();
    if topic_list.is_empty() {
        return Err(ApiError::invalid(
            "topics",
            "is required unless article_id or story_id gives it",
        ));
    }
    let unknown = topics::unknown(&state.db, &topic_list).await?;
    if !unknown.is_empty() {
        return Err(ApiError::invalid(
            "topics",
            format!(
                "unknown topic(s): {}; see GET /v1/topics",
                unknown.join(", ")
            ),
        ));
    }
    let urgency = req.urgency.as_deref().unwrap_or("normal");
    let rules = herald_notifier::rules::AlertRules::new(&state.push, urgency);
    let now = Utc::now();
    let mut estimate = EstimateBody {
        topics: topic_list,
        targeted: 0,
        would_send: 0,
        skipped: SkippedBody {
            quiet_hours: 0,
            daily_cap: 0,
            duplicate: 0,
        },
        estimated_at: now,
    };
    let mut after = None;
    loop {
        let page = herald_store::newsroom::audience_page(
            &state.db,
            &estimate.topics,
            story,
            now - chrono::Duration::hours(50),
            after,
            ESTIMATE_PAGE,
        )
        .await?;
        for target in &page.targets {
            use herald_notifier::rules::Hold;
            estimate.targeted += 1;
            let id = target.device.id;
            let sent = page.sent_times.get(&id).map_or(&[][..], Vec::as_slice);
            // The fan-out's rules in its order; once per story last, as the fan-out claims it.
            match rules.hold(target, sent, now) {
                Some(Hold::DailyCap) => estimate.skipped.daily_cap += 1,
                Some(Hold::QuietHours) => estimate.skipped.quiet_hours += 1,
                None if page.has_story.contains(&id) => estimate.skipped.duplicate += 1,
                None => estimate.would_send += 1,
            }
        }
        if (page.targets.len() as u64) < ESTIMATE_PAGE {
            break;
        }
        after = page.targets.last().map(|t| t.device.id);
    }
    Ok(Json(estimate))
}

/// One alert in the newsroom's history.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertHistoryItem)]
struct HistoryItem {
    #[serde(flatten)]
    status: StatusBody,
    title: String,
    body: String,
    topics: Vec<String>,
    story_id: Option<Uuid>,
    urgency: String,
    /// `editor`, `source` (a breaking source published) or `story` (a story crossed its
    /// topic's breaking rule).
    trigger: String,
    /// The editor who sent it; `null` for automatic alerts.
    sent_by: Option<SentBy>,
}

/// The editor who sent an alert.
#[derive(Serialize, ToSchema)]
struct SentBy {
    id: Uuid,
    /// `null` when the account was deleted or has no email.
    email: Option<String>,
}

/// One page of alert history.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertHistoryPage)]
struct HistoryPage {
    items: Vec<HistoryItem>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Paging of the alert history.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Page size, 1–100 (default 20).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Every alert, newest first, with who sent it, its audience, deliveries and opens.
#[utoipa::path(
    get,
    path = "/v1/admin/alerts",
    tag = "newsroom",
    security(("bearer" = [])),
    params(HistoryQuery),
    responses(
        (status = 200, description = "A page of alerts", body = HistoryPage),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 422, response = ValidationFailed),
    )
)]
async fn list_alerts(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    params: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    let params = crate::reading::query(params)?;
    let limit = crate::reading::page_limit(params.limit.as_deref())?;
    let scope = "admin-alerts";
    let before = state
        .cursor_key
        .decode_time(scope, params.cursor.as_deref())?;
    let mut items = herald_store::newsroom::history(&state.db, before, limit + 1).await?;
    let next_cursor = crate::cursor::next_page(&mut items, limit, |last| {
        state
            .cursor_key
            .encode_time(scope, last.counters.created_at, last.counters.id)
    });
    let items = items
        .into_iter()
        .map(|a| HistoryItem {
            sent_by: a.created_by.map(|id| SentBy {
                id,
                email: a.created_by_email,
            }),
            status: a.counters.into(),
            title: a.title,
            body: a.body,
            topics: a.topics,
            story_id: a.story_id,
            urgency: a.urgency,
            trigger: a.trigger,
        })
        .collect();
    Ok(Json(HistoryPage { items, next_cursor }))
}

/// Opens counted at the end of one interval since the alert was created.
#[derive(Serialize, ToSchema)]
struct OpensPoint {
    /// End of the interval.
    at: DateTime<Utc>,
    /// Readers who had opened it by then.
    opened: u64,
    /// `opened` over the devices sent to so far (0 before any was sent).
    open_rate: f64,
}

/// An alert's opens over time.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertOpens)]
struct OpensBody {
    id: Uuid,
    /// Devices the alert was sent to.
    sent: u64,
    /// Readers who opened it.
    opened: u64,
    /// `opened / sent` (0 when nothing was sent).
    open_rate: f64,
    /// Seconds per interval.
    interval_seconds: u64,
    /// Cumulative opens at the end of each interval, from the alert's creation to now (at most
    /// 60 intervals).
    points: Vec<OpensPoint>,
}

/// Most intervals in an opens chart.
const OPENS_POINTS: i64 = 60;

/// An alert's opens and open rate over time, for the console's chart.
#[utoipa::path(
    get,
    path = "/v1/admin/alerts/{id}/opens",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id")),
    responses(
        (status = 200, description = "Opens over time", body = OpensBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn alert_opens(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    Path(id): Path<Uuid>,
) -> Result<Json<OpensBody>, ApiError> {
    let not_found = |err| match err {
        StoreError::NotFound => ApiError::NotFound(format!("no alert {id}")),
        other => other.into(),
    };
    let counters = queue::counters(&state.db, id).await.map_err(not_found)?;
    let times = herald_store::newsroom::open_times(&state.db, id)
        .await
        .map_err(not_found)?;
    let start = counters.created_at;
    let end = std::cmp::max(
        Utc::now(),
        times.last().copied().unwrap_or(start) + chrono::Duration::seconds(1),
    );
    let span = std::cmp::max((end - start).num_seconds(), 60);
    // Whole minutes per interval once the span is over an hour, else whole seconds.
    let mut interval = (span + OPENS_POINTS - 1) / OPENS_POINTS;
    if interval > 60 {
        interval = (interval + 59) / 60 * 60;
    }
    let rate = |opened: u64| {
        if counters.sent == 0 {
            0.0
        } else {
            opened as f64 / counters.sent as f64
        }
    };
    let mut points = Vec::new();
    let mut at = start;
    let mut seen = 0usize;
    while at < end {
        at += chrono::Duration::seconds(interval);
        while seen < times.len() && times[seen] <= at {
            seen += 1;
        }
        let opened = seen as u64;
        points.push(OpensPoint {
            at,
            opened,
            open_rate: rate(opened),
        });
    }
    Ok(Json(OpensBody {
        id,
        sent: counters.sent,
        opened: counters.opened,
        open_rate: rate(counters.opened),
        interval_seconds: u64::try_from(interval).unwrap_or(60),
        points,
    }))
}
