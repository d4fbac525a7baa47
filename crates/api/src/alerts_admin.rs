//! Newsroom alerts: SPEC §3 "Newsroom" — send a breaking alert, watch its fan-out, update,
//! cancel or retract it, send a test to one's own devices, and read how it did.
//!
//! The alert carries its own title, body and link. Given only `article_id`, they come from
//! the article (title, summary as body, link, lead image, topics, story); given only
//! `story_id`, from the story's newest article, with the story's topics. Fields in the request
//! override what the lookup found; an unknown id is a 404 and nothing is queued. What a valid
//! alert is belongs to [`herald_notifier::draft`], which the command line and the breaking-story
//! trigger use too.
//!
//! For the newsroom console: an audience estimate before sending (the fan-out's own rules,
//! applied to the devices it would target now), the history of every alert, an alert's opens
//! over time and its analytics.

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
use herald_notifier::draft::{AlertDraft, AlertEdit, AlertRequest, DraftError, Origin};
use herald_store::StoreError;
use herald_store::queue::{self, AlertCounters, AlertState, AlertVersion};
use herald_store::topics;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// What a retracted alert's devices are shown instead.
const RETRACTED_TITLE: &str = "This alert was withdrawn";
const RETRACTED_BODY: &str = "The newsroom withdrew an earlier alert.";

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_alert, list_alerts))
        .routes(routes!(estimate_audience))
        .routes(routes!(test_alert))
        .routes(routes!(alert_status, update_alert, delete_alert))
        .routes(routes!(alert_opens))
        .routes(routes!(alert_analytics))
}

/// A new alert. Every field is optional where `article_id` or `story_id` can supply it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SendAlertRequest {
    /// The article it opens: title, summary, link, lead image, topics and story default from it.
    article_id: Option<Uuid>,
    /// The story it is about (each device gets a story once).
    story_id: Option<Uuid>,
    /// Topic slugs whose followers get it.
    topics: Option<Vec<String>>,
    /// At most 300 characters.
    title: Option<String>,
    /// At most 1,000 characters; cut at a word on platforms whose payload it would overflow.
    body: Option<String>,
    /// Where a tap leads (http or https).
    url: Option<String>,
    /// An https image on a public host, shown with the notification (Web Push `image`, FCM
    /// `notification.image`, APNs through the app's Notification Service Extension).
    image_url: Option<String>,
    /// `very-low`, `low`, `normal` (default) or `high`.
    urgency: Option<String>,
    /// Seconds delivery stays worth trying (60 to 2,419,200).
    ttl_seconds: Option<i64>,
    /// RFC 3339 time to send at, within 30 days: the alert waits as `scheduled` until then.
    send_at: Option<String>,
    /// `HH:MM`: each device gets it at this local time in its reader's time zone, within a day
    /// of the start (a morning briefing), quiet hours and caps applying then.
    deliver_in_local_time: Option<String>,
}

impl From<SendAlertRequest> for AlertRequest {
    fn from(r: SendAlertRequest) -> Self {
        Self {
            article_id: r.article_id,
            story_id: r.story_id,
            topics: r.topics,
            title: r.title,
            body: r.body,
            url: r.url,
            image_url: r.image_url,
            urgency: r.urgency,
            ttl_seconds: r.ttl_seconds,
            send_at: r.send_at,
            deliver_in_local_time: r.deliver_in_local_time,
        }
    }
}

impl From<DraftError> for ApiError {
    fn from(err: DraftError) -> Self {
        match err {
            DraftError::NotFound(what) => ApiError::NotFound(what),
            DraftError::Invalid(problems) => ApiError::Validation(
                problems
                    .into_iter()
                    .map(|p| FieldError::new(p.field, p.message))
                    .collect(),
            ),
            DraftError::Store(err) => err.into(),
        }
    }
}

#[derive(Serialize, ToSchema)]
struct CreatedBody {
    id: Uuid,
    /// `queued`, or `scheduled` when it has a `send_at` in the future.
    state: &'static str,
}

#[derive(Serialize, ToSchema)]
struct SkippedBody {
    quiet_hours: u64,
    daily_cap: u64,
    duplicate: u64,
}

/// One version of an alert.
#[derive(Serialize, ToSchema)]
struct VersionBody {
    version: u32,
    /// `original`, `update` or `retraction`.
    kind: &'static str,
    title: String,
    body: String,
    url: String,
    image_url: Option<String>,
    silent: bool,
    created_at: DateTime<Utc>,
    /// Devices whose latest delivered version is this one.
    showing: u64,
    /// Replacements of an older version by this one that a push service accepted.
    replaced: u64,
    /// Replacements that failed.
    replace_failed: u64,
    /// Replacements held back by readers' quiet hours.
    held_quiet_hours: u64,
}

impl From<AlertVersion> for VersionBody {
    fn from(v: AlertVersion) -> Self {
        Self {
            version: v.version,
            kind: v.kind.as_str(),
            title: v.title,
            body: v.body,
            url: v.url,
            image_url: v.image_url,
            silent: v.silent,
            created_at: v.created_at,
            showing: v.showing,
            replaced: v.replaced,
            replace_failed: v.replace_failed,
            held_quiet_hours: v.held_quiet_hours,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct StatusBody {
    id: Uuid,
    /// `scheduled`, `queued`, `sending`, `done`, `cancelled`, `expired` or `retracted`.
    state: &'static str,
    targeted: u64,
    sent: u64,
    failed: u64,
    pruned: u64,
    skipped: SkippedBody,
    opened: u64,
    /// First deliveries waiting: retries, and devices waiting for their local time.
    waiting: u64,
    /// Devices still to be sent the current version in place of an older one.
    replacing: u64,
    /// The current version: 1 until the alert is updated.
    version: u32,
    created_at: DateTime<Utc>,
    send_at: Option<DateTime<Utc>>,
    deliver_in_local_time: Option<String>,
    finished_at: Option<DateTime<Utc>>,
    retracted_at: Option<DateTime<Utc>>,
    /// Every version with its counters (on a single alert's status, not in the history).
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionBody>>,
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
            waiting: c.waiting,
            replacing: c.replacing,
            version: c.version,
            created_at: c.created_at,
            send_at: c.send_at,
            deliver_in_local_time: c.local_time,
            finished_at: c.finished_at,
            retracted_at: c.retracted_at,
            versions: None,
        }
    }
}

fn alert_not_found(id: Uuid) -> impl Fn(StoreError) -> ApiError {
    move |err| match err {
        StoreError::NotFound => ApiError::NotFound(format!("no alert {id}")),
        StoreError::Conflict(why) => ApiError::Conflict(why),
        other => other.into(),
    }
}

/// The alert's status with its versions.
async fn full_status(state: &AppState, id: Uuid) -> Result<StatusBody, ApiError> {
    let counters = queue::counters(&state.db, id)
        .await
        .map_err(alert_not_found(id))?;
    let versions = queue::versions(&state.db, id)
        .await
        .map_err(alert_not_found(id))?;
    let mut body = StatusBody::from(counters);
    body.versions = Some(versions.into_iter().map(VersionBody::from).collect());
    Ok(body)
}

/// Send a breaking alert now (202 with its id; the notifier fans it out), or at `send_at`.
#[utoipa::path(
    post,
    path = "/v1/admin/alerts",
    tag = "newsroom",
    security(("bearer" = [])),
    request_body = SendAlertRequest,
    responses(
        (status = 202, description = "Queued (or scheduled); the notifier fans it out", body = CreatedBody),
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
    let draft = AlertDraft::compose(
        &state.db,
        &state.push,
        req.into(),
        Origin::Editor(principal.user_id),
    )
    .await?;
    let alert = draft.enqueue(&state.db).await?;
    tracing::info!(alert = %alert.id, editor = %principal.user_id, state = alert.state.as_str(), "alert queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(CreatedBody {
            id: alert.id,
            state: alert.state.as_str(),
        }),
    ))
}

/// How an alert's fan-out is going: state, counters and versions.
#[utoipa::path(
    get,
    path = "/v1/admin/alerts/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id")),
    responses(
        (status = 200, description = "The alert's state, counters and versions", body = StatusBody),
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
    Ok(Json(full_status(&state, id).await?))
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A change to an alert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateAlertRequest {
    title: Option<String>,
    body: Option<String>,
    url: Option<String>,
    /// A new image; `null` removes it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    image_url: Option<Option<String>>,
    /// Replace without sound or vibration where the platform allows (default `true`: a
    /// correction). `false` alerts again, as for news that changed materially.
    silent: Option<bool>,
    /// A new send time (scheduled alerts only).
    send_at: Option<String>,
}

/// Update an alert. While it is scheduled the change is made in place. Once it is queued,
/// sending or done, it becomes a new version: devices that already show it get the new
/// version as a replacement of the notification they show (same Web Push `Topic` and
/// notification tag, FCM `tag`/`collapse_key`, APNs `apns-collapse-id`), silently by default,
/// not counted against daily caps, held in quiet hours; devices not reached yet get only the
/// new version; inboxes show the latest.
#[utoipa::path(
    patch,
    path = "/v1/admin/alerts/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id")),
    request_body = UpdateAlertRequest,
    responses(
        (status = 200, description = "Updated: the state, counters and versions", body = StatusBody),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
    )
)]
async fn update_alert(
    State(state): State<AppState>,
    RequireEditor(principal): RequireEditor,
    Path(id): Path<Uuid>,
    ApiJson(req): ApiJson<UpdateAlertRequest>,
) -> Result<Json<StatusBody>, ApiError> {
    let change = AlertEdit {
        title: req.title,
        body: req.body,
        url: req.url,
        image_url: req.image_url,
        silent: req.silent,
        send_at: req.send_at,
    }
    .validate(&state.push, principal.user_id)?;
    let alert = queue::update(&state.db, id, change)
        .await
        .map_err(alert_not_found(id))?;
    tracing::info!(alert = %id, version = alert.version, editor = %principal.user_id, "alert updated");
    Ok(Json(full_status(&state, id).await?))
}

/// Cancel or retract. An alert not finished yet (scheduled, queued, sending) is cancelled:
/// nothing more is sent. A sent (done) alert is retracted: it leaves every reader's inbox and
/// each device that shows it gets a silent replacement saying it was withdrawn (see the
/// README for what each platform can do). 409 when it is already cancelled, expired or
/// retracted.
#[utoipa::path(
    delete,
    path = "/v1/admin/alerts/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id")),
    responses(
        (status = 200, description = "Cancelled or retracted: the state and counters", body = StatusBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
    )
)]
async fn delete_alert(
    State(state): State<AppState>,
    RequireEditor(principal): RequireEditor,
    Path(id): Path<Uuid>,
) -> Result<Json<StatusBody>, ApiError> {
    let current = queue::alert(&state.db, id)
        .await
        .map_err(alert_not_found(id))?;
    if current.state == AlertState::Done {
        queue::retract(
            &state.db,
            id,
            RETRACTED_TITLE,
            RETRACTED_BODY,
            Some(principal.user_id),
        )
        .await
        .map_err(alert_not_found(id))?;
        tracing::info!(alert = %id, editor = %principal.user_id, "alert retracted");
    } else {
        queue::cancel(&state.db, id)
            .await
            .map_err(alert_not_found(id))?;
        tracing::info!(alert = %id, editor = %principal.user_id, "alert cancelled");
    }
    Ok(Json(full_status(&state, id).await?))
}

/// What a test send came to on one of the editor's devices.
#[derive(Serialize, ToSchema)]
struct TestDeliveryBody {
    device_id: Uuid,
    /// `web`, `android` or `ios`.
    platform: &'static str,
    /// `sent`, `failed`, `gone` or `retry` (not retried: a test goes once).
    outcome: &'static str,
    reason: Option<String>,
}

/// The outcome of a test send.
#[derive(Serialize, ToSchema)]
struct TestBody {
    /// One entry per device of the calling editor.
    deliveries: Vec<TestDeliveryBody>,
}

/// Test an alert on one's own devices: composed exactly as `POST /v1/admin/alerts` would
/// (same body; `send_at` and `deliver_in_local_time` are refused: a test goes now), sent at
/// once to the calling editor's registered devices only, and counted nowhere (no history, no
/// caps, no story claim, no analytics). 409 when the editor has no registered device.
#[utoipa::path(
    post,
    path = "/v1/admin/alerts/test",
    tag = "newsroom",
    security(("bearer" = [])),
    request_body = SendAlertRequest,
    responses(
        (status = 200, description = "Sent; the outcome per device", body = TestBody),
        (status = 404, response = NotFound),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 409, response = Conflict),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
    )
)]
async fn test_alert(
    State(state): State<AppState>,
    RequireEditor(principal): RequireEditor,
    ApiJson(req): ApiJson<SendAlertRequest>,
) -> Result<Json<TestBody>, ApiError> {
    let mut refused = Vec::new();
    if req.send_at.is_some() {
        refused.push(FieldError::new("send_at", "a test goes now"));
    }
    if req.deliver_in_local_time.is_some() {
        refused.push(FieldError::new("deliver_in_local_time", "a test goes now"));
    }
    if !refused.is_empty() {
        return Err(ApiError::Validation(refused));
    }
    let draft = AlertDraft::compose(
        &state.db,
        &state.push,
        req.into(),
        Origin::Editor(principal.user_id),
    )
    .await?;
    let devices = herald_store::devices::list(&state.db, principal.user_id).await?;
    if devices.is_empty() {
        return Err(ApiError::Conflict(
            "you have no registered device: allow notifications on the news site or in the app \
             with this account, then try again"
                .into(),
        ));
    }
    let results =
        herald_notifier::test_send::send_test(&state.senders, &state.push, &draft, &devices).await;
    for gone in results.iter().filter(|r| r.outcome == "gone") {
        herald_store::devices::mark_dead(&state.db, gone.device_id, "gone (test send)").await?;
    }
    tracing::info!(editor = %principal.user_id, devices = results.len(), "test alert sent");
    Ok(Json(TestBody {
        deliveries: results
            .into_iter()
            .map(|r| TestDeliveryBody {
                device_id: r.device_id,
                platform: r.platform,
                outcome: r.outcome,
                reason: r.reason,
            })
            .collect(),
    }))
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
    let request = AlertRequest::from(req);
    let subject = herald_notifier::draft::lookup(&state.db, &request).await?;
    let req = request;
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

/// Deliveries and opens of one slice of an alert's audience.
#[derive(Serialize, ToSchema)]
struct SliceBody {
    /// A platform (`web`, `android`, `ios`) or a topic slug.
    key: String,
    delivered: u64,
    opened: u64,
    /// `opened / delivered` (0 when nothing was delivered).
    open_rate: f64,
}

/// What an editor reads about an alert: counts only, never a reader.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertAnalytics)]
struct AnalyticsBody {
    id: Uuid,
    /// When sending started (the scheduled time, else creation).
    started_at: DateTime<Utc>,
    delivered: u64,
    opened: u64,
    open_rate: f64,
    by_platform: Vec<SliceBody>,
    /// By the followed topic each device was sent it for.
    by_topic: Vec<SliceBody>,
    /// Seconds from the start until half of the deliveries were made (`null`: none yet).
    seconds_to_50_percent: Option<f64>,
    /// Seconds from the start until nine tenths of the deliveries were made.
    seconds_to_90_percent: Option<f64>,
    /// Seconds per interval of `opens_first_hour`.
    bucket_seconds: u32,
    /// Opens in each interval of the first hour after the start, for a chart.
    opens_first_hour: Vec<u64>,
}

fn rate(opened: u64, delivered: u64) -> f64 {
    if delivered == 0 {
        0.0
    } else {
        opened as f64 / delivered as f64
    }
}

/// An alert's analytics: delivered, opened and open rate per platform and per topic, time to
/// 50 % and 90 % delivered, and opens over the first hour in five-minute buckets.
#[utoipa::path(
    get,
    path = "/v1/admin/alerts/{id}/analytics",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id")),
    responses(
        (status = 200, description = "The alert's analytics", body = AnalyticsBody),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
    )
)]
async fn alert_analytics(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    Path(id): Path<Uuid>,
) -> Result<Json<AnalyticsBody>, ApiError> {
    let a = herald_store::analytics::alert_analytics(&state.db, id)
        .await
        .map_err(alert_not_found(id))?;
    let slices = |slices: Vec<herald_store::analytics::Slice>| {
        slices
            .into_iter()
            .map(|s| SliceBody {
                open_rate: rate(s.opened, s.delivered),
                key: s.key,
                delivered: s.delivered,
                opened: s.opened,
            })
            .collect()
    };
    Ok(Json(AnalyticsBody {
        id,
        started_at: a.started_at,
        delivered: a.delivered,
        opened: a.opened,
        open_rate: rate(a.opened, a.delivered),
        by_platform: slices(a.by_platform),
        by_topic: slices(a.by_topic),
        seconds_to_50_percent: a.seconds_to_50,
        seconds_to_90_percent: a.seconds_to_90,
        bucket_seconds: a.bucket_seconds,
        opens_first_hour: a.opens_first_hour,
    }))
}
