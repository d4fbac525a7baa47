//! Devices, subscriptions, preferences and the alert inbox: SPEC §3
//! "Devices, subscriptions, preferences". Inputs become domain types at the edge.

use crate::extract::Path;
use crate::openapi::{
    BadRequest, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType, ValidationFailed,
};
use crate::session::{Client, CurrentUser};
use crate::{ApiError, ApiJson, AppState, FieldError};
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_notifier::config::PushConfig;
use herald_notifier::send::is_forbidden;
use herald_notifier::webpush::{KeyError, SubscriptionKeys};
use herald_store::devices::{self, ApnsEnvironment, Device, DeviceAddress, NewDevice};
use herald_store::preferences::{self, Preferences, QuietHours};
use herald_store::{alerts, subscriptions, topics};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Devices one reader may register; registering more drops the oldest.
pub const MAX_DEVICES_PER_USER: u64 = 20;

/// The longest FCM registration token accepted (real ones are about 160 characters). Tokens
/// and endpoints share the `(platform, address)` unique index, whose rows PostgreSQL caps at
/// 2,704 bytes: anything longer would fail in the database instead of here.
const MAX_FCM_TOKEN_LEN: usize = 2048;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_topics))
        .routes(routes!(vapid_public_key))
        .routes(routes!(register_device, list_devices))
        .routes(routes!(delete_device))
        .routes(routes!(
            list_subscriptions,
            replace_subscriptions,
            add_subscription
        ))
        .routes(routes!(remove_subscription))
        .routes(routes!(get_preferences, put_preferences))
        .routes(routes!(inbox))
        .routes(routes!(opened))
}

/// A topic readers can follow.
#[derive(Serialize, ToSchema)]
#[schema(as = Topic)]
struct TopicBody {
    #[schema(example = "india")]
    slug: String,
    name: String,
    description: String,
}

/// Topics a reader can follow.
#[utoipa::path(
    get,
    path = "/v1/topics",
    tag = "reading",
    responses(
        (status = 200, description = "Every topic", body = Vec<TopicBody>),
    )
)]
async fn list_topics(State(state): State<AppState>) -> Result<Json<Vec<TopicBody>>, ApiError> {
    let list = topics::list(&state.db).await?;
    Ok(Json(
        list.into_iter()
            .map(|t| TopicBody {
                slug: t.slug,
                name: t.name,
                description: t.description,
            })
            .collect(),
    ))
}

/// The key browsers need to subscribe to Web Push.
#[derive(Serialize, ToSchema)]
#[schema(as = VapidPublicKey)]
struct VapidBody {
    /// Uncompressed P-256 point, base64url without padding.
    public_key: String,
}

/// The VAPID public key browsers pass to `PushManager.subscribe`.
#[utoipa::path(
    get,
    path = "/v1/push/vapid-public-key",
    tag = "devices",
    responses(
        (status = 200, description = "The VAPID public key", body = VapidBody),
    )
)]
async fn vapid_public_key(State(state): State<AppState>) -> Json<VapidBody> {
    Json(VapidBody {
        public_key: state.vapid_public_key.clone(),
    })
}

/// A device to send alerts to: a browser's Web Push subscription, or an FCM/APNs token.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = RegisterDevice)]
struct RegisterRequest {
    /// `web`, `android` or `ios`.
    #[schema(example = "web")]
    platform: String,
    /// For `web`: the browser's `PushSubscription.toJSON()`.
    subscription: Option<SubscriptionJson>,
    /// For `android` (FCM registration token) and `ios` (APNs device token, 64 hex digits).
    token: Option<String>,
    /// For `ios`: `production` (default) or `sandbox`.
    environment: Option<String>,
    /// BCP 47 language tag, e.g. `en-IN`.
    locale: Option<String>,
    /// IANA time zone, e.g. `Asia/Kolkata`.
    timezone: Option<String>,
}

/// The browser's `PushSubscription.toJSON()`, as is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PushSubscription)]
struct SubscriptionJson {
    /// The push service's URL for this browser (https).
    endpoint: String,
    #[allow(dead_code)]
    #[schema(value_type = Option<f64>)]
    expiration_time: Option<serde_json::Value>,
    keys: SubscriptionKeysJson,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = PushSubscriptionKeys)]
struct SubscriptionKeysJson {
    p256dh: String,
    auth: String,
}

/// A registered device.
#[derive(Serialize, ToSchema)]
#[schema(as = Device)]
struct DeviceBody {
    id: Uuid,
    /// `web`, `android` or `ios`.
    #[schema(example = "web")]
    platform: &'static str,
    /// Web Push: the push service's host; apps: the last characters of the token.
    label: String,
    /// APNs only: `production` or `sandbox`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    environment: Option<&'static str>,
    locale: Option<String>,
    timezone: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Device> for DeviceBody {
    fn from(device: Device) -> Self {
        let (label, environment) = match &device.address {
            DeviceAddress::WebPush { endpoint, .. } => (
                url::Url::parse(endpoint)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_string))
                    .unwrap_or_default(),
                None,
            ),
            DeviceAddress::Fcm { token } => (tail(token), None),
            DeviceAddress::Apns { token, environment } => (tail(token), Some(environment.as_str())),
        };
        Self {
            id: device.id,
            platform: device.address.platform(),
            label,
            environment,
            locale: device.locale,
            timezone: device.timezone,
            created_at: device.created_at,
            updated_at: device.updated_at,
        }
    }
}

fn tail(token: &str) -> String {
    let chars: Vec<char> = token.chars().collect();
    format!(
        "…{}",
        chars[chars.len().saturating_sub(6)..]
            .iter()
            .collect::<String>()
    )
}

/// Register a Web Push subscription, an FCM token or an APNs token (idempotent).
#[utoipa::path(
    post,
    path = "/v1/devices",
    tag = "devices",
    security(("bearer" = [])),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered (or refreshed, for a known endpoint or token)", body = DeviceBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
    )
)]
async fn register_device(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<DeviceBody>), ApiError> {
    if let Some(ip) = client.ip {
        let limit = herald_store::throttle::Limit {
            scope: format!("devices:address:{}", herald_auth::address_bucket(ip)),
            limit: state.push.devices_per_address_per_hour,
            window: chrono::Duration::hours(1),
        };
        herald_store::throttle::take(&state.db, &[limit], chrono::Utc::now())
            .await?
            .map_err(|retry_after_seconds| ApiError::TooManyRequests {
                retry_after_seconds,
            })?;
    }
    let mut errors = Vec::new();
    let address = parse_address(&req, &state.push, &mut errors);
    let timezone = req
        .timezone
        .as_deref()
        .and_then(|tz| match parse_timezone(tz) {
            Ok(tz) => Some(tz.name().to_string()),
            Err(e) => {
                errors.push(FieldError::new("timezone", e));
                None
            }
        });
    let locale = req.locale.as_deref().and_then(|l| match parse_locale(l) {
        Ok(l) => Some(l),
        Err(e) => {
            errors.push(FieldError::new("locale", e));
            None
        }
    });
    let address = match address {
        Some(address) if errors.is_empty() => address,
        _ => return Err(ApiError::Validation(errors)),
    };
    let device = devices::register(
        &state.db,
        NewDevice {
            user_id: principal.user_id,
            address,
            locale,
            timezone,
        },
        MAX_DEVICES_PER_USER,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(device.into())))
}

fn parse_address(
    req: &RegisterRequest,
    push: &PushConfig,
    errors: &mut Vec<FieldError>,
) -> Option<DeviceAddress> {
    match req.platform.as_str() {
        "web" => {
            let Some(sub) = &req.subscription else {
                errors.push(FieldError::new(
                    "subscription",
                    "is required for platform web",
                ));
                return None;
            };
            let endpoint = parse_endpoint(&sub.endpoint, push)
                .map_err(|e| errors.push(FieldError::new("subscription.endpoint", e)))
                .ok();
            let keys = SubscriptionKeys::parse(&sub.keys.p256dh, &sub.keys.auth)
                .map_err(|e| match e {
                    KeyError::P256dh(why) => {
                        errors.push(FieldError::new("subscription.keys.p256dh", why.to_string()))
                    }
                    KeyError::Auth(why) => {
                        errors.push(FieldError::new("subscription.keys.auth", why.to_string()))
                    }
                })
                .ok();
            Some(DeviceAddress::WebPush {
                endpoint: endpoint?,
                p256dh: keys.as_ref()?.p256dh().to_vec(),
                auth: keys?.auth().to_vec(),
            })
        }
        "android" => {
            let token = req.token.as_deref().unwrap_or_default();
            if token.is_empty()
                || token.len() > MAX_FCM_TOKEN_LEN
                || !token.chars().all(|c| c.is_ascii_graphic())
            {
                errors.push(FieldError::new(
                    "token",
                    format!("must be 1–{MAX_FCM_TOKEN_LEN} printable characters"),
                ));
                return None;
            }
            Some(DeviceAddress::Fcm {
                token: token.to_string(),
            })
        }
        "ios" => {
            let token = req.token.as_deref().unwrap_or_default();
            let environment = match req.environment.as_deref() {
                None | Some("production") => Some(ApnsEnvironment::Production),
                Some("sandbox") => Some(ApnsEnvironment::Sandbox),
                Some(_) => {
                    errors.push(FieldError::new(
                        "environment",
                        "must be production or sandbox",
                    ));
                    None
                }
            };
            if token.len() != 64 || !token.chars().all(|c| c.is_ascii_hexdigit()) {
                errors.push(FieldError::new(
                    "token",
                    "must be 64 hexadecimal characters",
                ));
                return None;
            }
            Some(DeviceAddress::Apns {
                token: token.to_ascii_lowercase(),
                environment: environment?,
            })
        }
        _ => {
            errors.push(FieldError::new("platform", "must be web, android or ios"));
            None
        }
    }
}

/// A Web Push endpoint: https, a real host, not a private address, and on one of
/// `push.webpush.allowed_origins` — unless `push.allow_insecure_endpoints` lifts all three.
fn parse_endpoint(raw: &str, push: &PushConfig) -> Result<String, String> {
    let allow_insecure = push.allow_insecure_endpoints;
    if raw.len() > 2048 {
        return Err("must be at most 2048 characters".into());
    }
    let url = url::Url::parse(raw).map_err(|_| "must be an absolute URL".to_string())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        _ => return Err("must be an https URL".into()),
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("must name a host")?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    if !allow_insecure {
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        let private = match literal.parse::<IpAddr>() {
            Ok(ip) => is_forbidden(ip),
            Err(_) => {
                host == "localhost" || host.ends_with(".localhost") || host.ends_with(".local")
            }
        };
        if private {
            return Err("must not point at a private or loopback address".into());
        }
    }
    if !push.allows_webpush_endpoint(&url) {
        return Err(format!(
            "must be on a known push service (push.webpush.allowed_origins); {} is not one",
            url.origin().ascii_serialization()
        ));
    }
    Ok(url.to_string())
}

fn parse_timezone(raw: &str) -> Result<Tz, String> {
    raw.parse::<Tz>()
        .map_err(|_| format!("`{raw}` is not an IANA time zone such as Asia/Kolkata"))
}

/// A BCP 47 language tag: language (2–3 or 5–8 letters), then 1–8 alphanumeric subtags.
fn parse_locale(raw: &str) -> Result<String, String> {
    let error = || format!("`{raw}` is not a BCP 47 language tag such as en-IN");
    if raw.len() > 35 {
        return Err(error());
    }
    let mut parts = raw.split('-');
    let language = parts.next().unwrap_or_default();
    let language_ok = matches!(language.len(), 2 | 3 | 5..=8)
        && language.chars().all(|c| c.is_ascii_alphabetic());
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if language_ok && rest_ok {
        Ok(raw.to_string())
    } else {
        Err(error())
    }
}

/// The caller's devices.
#[utoipa::path(
    get,
    path = "/v1/devices",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's devices", body = Vec<DeviceBody>),
        (status = 401, response = Unauthorized),
    )
)]
async fn list_devices(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<Vec<DeviceBody>>, ApiError> {
    let list = devices::list(&state.db, principal.user_id).await?;
    Ok(Json(list.into_iter().map(DeviceBody::from).collect()))
}

/// Remove one of the caller's devices.
#[utoipa::path(
    delete,
    path = "/v1/devices/{id}",
    tag = "devices",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "A device id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
    )
)]
async fn delete_device(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("no such device".into()))?;
    devices::delete(&state.db, principal.user_id, id)
        .await
        .map_err(|_| ApiError::NotFound("no such device".into()))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The topics a reader follows.
#[derive(Serialize, ToSchema)]
#[schema(as = Subscriptions)]
struct SubscriptionsBody {
    /// Topic slugs.
    topics: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplaceSubscriptions {
    /// Every topic to follow (at most 100); the rest are unfollowed.
    topics: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AddSubscription {
    /// A topic slug from `GET /v1/topics`.
    topic: String,
}

/// The topics the caller follows.
#[utoipa::path(
    get,
    path = "/v1/me/subscriptions",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The followed topics", body = SubscriptionsBody),
        (status = 401, response = Unauthorized),
    )
)]
async fn list_subscriptions(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<SubscriptionsBody>, ApiError> {
    Ok(Json(SubscriptionsBody {
        topics: subscriptions::list(&state.db, principal.user_id).await?,
    }))
}

async fn known_topics(state: &AppState, field: &str, slugs: &[String]) -> Result<(), ApiError> {
    let unknown = topics::unknown(&state.db, slugs).await?;
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            field,
            format!(
                "unknown topic(s): {}; see GET /v1/topics",
                unknown.join(", ")
            ),
        ))
    }
}

/// Replace the followed topics.
#[utoipa::path(
    put,
    path = "/v1/me/subscriptions",
    tag = "devices",
    security(("bearer" = [])),
    request_body = ReplaceSubscriptions,
    responses(
        (status = 200, description = "The followed topics now", body = SubscriptionsBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
    )
)]
async fn replace_subscriptions(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    ApiJson(req): ApiJson<ReplaceSubscriptions>,
) -> Result<Json<SubscriptionsBody>, ApiError> {
    let mut slugs = req.topics;
    slugs.sort();
    slugs.dedup();
    if slugs.len() > 100 {
        return Err(ApiError::invalid("topics", "at most 100 topics"));
    }
    known_topics(&state, "topics", &slugs).await?;
    let topics = subscriptions::replace(&state.db, principal.user_id, &slugs).await?;
    Ok(Json(SubscriptionsBody { topics }))
}

/// Follow one more topic.
#[utoipa::path(
    post,
    path = "/v1/me/subscriptions",
    tag = "devices",
    security(("bearer" = [])),
    request_body = AddSubscription,
    responses(
        (status = 200, description = "The followed topics now", body = SubscriptionsBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
    )
)]
async fn add_subscription(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    ApiJson(req): ApiJson<AddSubscription>,
) -> Result<Json<SubscriptionsBody>, ApiError> {
    known_topics(&state, "topic", std::slice::from_ref(&req.topic)).await?;
    subscriptions::add(&state.db, principal.user_id, &req.topic).await?;
    Ok(Json(SubscriptionsBody {
        topics: subscriptions::list(&state.db, principal.user_id).await?,
    }))
}

/// Stop following a topic.
#[utoipa::path(
    delete,
    path = "/v1/me/subscriptions/{slug}",
    tag = "devices",
    security(("bearer" = [])),
    params(("slug" = String, Path, description = "A topic slug", example = "india")),
    responses(
        (status = 204, description = "No longer followed"),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
    )
)]
async fn remove_subscription(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !topics::unknown(&state.db, std::slice::from_ref(&slug))
        .await?
        .is_empty()
    {
        return Err(ApiError::NotFound(format!("no topic `{slug}`")));
    }
    subscriptions::remove(&state.db, principal.user_id, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Local times (`HH:MM`, the reader's time zone) between which no alert is sent.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = QuietHours)]
struct QuietHoursJson {
    #[schema(example = "22:00")]
    start: String,
    #[schema(example = "07:00")]
    end: String,
}

/// When and how often a reader may be alerted.
#[derive(Serialize, ToSchema)]
#[schema(as = Preferences)]
struct PreferencesBody {
    /// IANA time zone.
    #[schema(example = "Asia/Kolkata")]
    timezone: String,
    quiet_hours: Option<QuietHoursJson>,
    max_alerts_per_day: u16,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PutPreferences {
    /// IANA time zone.
    #[schema(example = "Asia/Kolkata")]
    timezone: String,
    /// `null` or absent: no quiet hours.
    #[serde(default)]
    quiet_hours: Option<QuietHoursJson>,
    /// 0–50; absent: the server's default.
    #[schema(minimum = 0, maximum = 50)]
    max_alerts_per_day: Option<i64>,
}

fn preferences_body(prefs: Preferences) -> PreferencesBody {
    PreferencesBody {
        timezone: prefs.timezone.name().to_string(),
        quiet_hours: prefs.quiet_hours.map(|q| QuietHoursJson {
            start: q.start(),
            end: q.end(),
        }),
        max_alerts_per_day: prefs.max_alerts_per_day,
    }
}

fn default_preferences(state: &AppState) -> Preferences {
    Preferences {
        timezone: Tz::UTC,
        quiet_hours: None,
        max_alerts_per_day: u16::try_from(state.push.default_max_alerts_per_day).unwrap_or(10),
    }
}

/// The caller's alert preferences (defaults until set).
#[utoipa::path(
    get,
    path = "/v1/me/preferences",
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The preferences (defaults until set)", body = PreferencesBody),
        (status = 401, response = Unauthorized),
    )
)]
async fn get_preferences(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<PreferencesBody>, ApiError> {
    let prefs = preferences::get(&state.db, principal.user_id)
        .await?
        .unwrap_or_else(|| default_preferences(&state));
    Ok(Json(preferences_body(prefs)))
}

/// Set time zone, quiet hours and daily cap.
#[utoipa::path(
    put,
    path = "/v1/me/preferences",
    tag = "devices",
    security(("bearer" = [])),
    request_body = PutPreferences,
    responses(
        (status = 200, description = "The preferences now", body = PreferencesBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
    )
)]
async fn put_preferences(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    ApiJson(req): ApiJson<PutPreferences>,
) -> Result<Json<PreferencesBody>, ApiError> {
    let mut errors = Vec::new();
    let timezone = parse_timezone(&req.timezone)
        .map_err(|e| errors.push(FieldError::new("timezone", e)))
        .ok();
    let quiet_hours = match &req.quiet_hours {
        None => Some(None),
        Some(q) => QuietHours::parse(&q.start, &q.end)
            .map(Some)
            .map_err(|e| errors.push(FieldError::new("quiet_hours", e)))
            .ok(),
    };
    let cap = match req.max_alerts_per_day {
        None => Some(default_preferences(&state).max_alerts_per_day),
        Some(n @ 0..=50) => Some(n as u16),
        Some(_) => {
            errors.push(FieldError::new(
                "max_alerts_per_day",
                "must be between 0 and 50",
            ));
            None
        }
    };
    let (Some(timezone), Some(quiet_hours), Some(max_alerts_per_day)) =
        (timezone, quiet_hours, cap)
    else {
        return Err(ApiError::Validation(errors));
    };
    let prefs = Preferences {
        timezone,
        quiet_hours,
        max_alerts_per_day,
    };
    preferences::put(&state.db, principal.user_id, &prefs).await?;
    Ok(Json(preferences_body(prefs)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct PageQuery {
    /// Page size, 1–100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// One page of the alert inbox, newest first.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertInboxPage)]
struct InboxBody {
    items: Vec<InboxItemBody>,
    next_cursor: Option<String>,
}

/// An alert as the reader was sent it.
#[derive(Serialize, ToSchema)]
#[schema(as = AlertInboxItem)]
struct InboxItemBody {
    id: Uuid,
    title: String,
    body: String,
    url: String,
    article_id: Option<Uuid>,
    story_id: Option<Uuid>,
    topics: Vec<String>,
    image_url: Option<String>,
    sent_at: DateTime<Utc>,
    opened: bool,
}

fn inbox_scope(user_id: Uuid) -> String {
    format!("inbox\x1f{user_id}")
}

/// The alerts the caller was sent (the app's inbox), newest first.
#[utoipa::path(
    get,
    path = "/v1/me/alerts",
    tag = "devices",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "A page of alerts, newest first", body = InboxBody),
        (status = 400, response = BadRequest),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
    )
)]
async fn inbox(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Query(page): Query<PageQuery>,
) -> Result<Json<InboxBody>, ApiError> {
    let limit = page.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 100"));
    }
    let scope = inbox_scope(principal.user_id);
    let before = state
        .cursor_key
        .decode_time(&scope, page.cursor.as_deref())?;
    let items = alerts::inbox(&state.db, principal.user_id, before, limit as u64).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| {
            items.last().map(|i| {
                state
                    .cursor_key
                    .encode_time(&scope, i.alert.created_at, i.alert.id)
            })
        })
        .flatten();
    let items = items
        .into_iter()
        .map(|i| InboxItemBody {
            id: i.alert.id,
            title: i.alert.title,
            body: i.alert.body,
            url: i.alert.url,
            article_id: i.alert.article_id,
            story_id: i.alert.story_id,
            topics: i.alert.topics,
            image_url: i.alert.image_url,
            sent_at: i.alert.created_at,
            opened: i.opened,
        })
        .collect();
    Ok(Json(InboxBody { items, next_cursor }))
}

/// The app reports a tap on an alert.
#[utoipa::path(
    post,
    path = "/v1/alerts/{id}/opened",
    tag = "devices",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "An alert id from the inbox or the push payload")),
    responses(
        (status = 204, description = "Counted"),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
    )
)]
async fn opened(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("no such alert".into()))?;
    alerts::mark_opened(&state.db, principal.user_id, id)
        .await
        .map_err(|_| ApiError::NotFound("no such alert was sent to you".into()))?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_must_be_public_https_on_a_known_push_service_unless_allowed() {
        let strict = PushConfig::default();
        let lifted = PushConfig {
            allow_insecure_endpoints: true,
            ..PushConfig::default()
        };
        assert!(parse_endpoint("https://fcm.googleapis.com/fcm/send/abc", &strict).is_ok());
        assert!(parse_endpoint("https://web.push.apple.com/QGuQyavX", &strict).is_ok());
        assert!(parse_endpoint("http://fcm.googleapis.com/fcm/send/abc", &strict).is_err());
        assert!(parse_endpoint("https://127.0.0.1/push", &strict).is_err());
        assert!(parse_endpoint("https://[::1]/push", &strict).is_err());
        assert!(parse_endpoint("https://10.1.2.3/push", &strict).is_err());
        assert!(parse_endpoint("https://localhost/push", &strict).is_err());
        assert!(parse_endpoint("https://user:pw@push.example.com/", &strict).is_err());
        let elsewhere = parse_endpoint("https://push.example.com/abc", &strict).unwrap_err();
        assert!(elsewhere.contains("allowed_origins"), "{elsewhere}");
        assert!(parse_endpoint("https://push.example.com/abc", &lifted).is_ok());
        assert!(parse_endpoint("http://127.0.0.1:9000/push", &lifted).is_ok());
        assert!(parse_endpoint("ftp://push.example.com/", &lifted).is_err());
    }

    #[test]
    fn locales_are_bcp47_tags() {
        for good in ["en", "en-IN", "hi-Deva-IN", "zh-Hant-TW", "es-419"] {
            assert!(parse_locale(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "e",
            "english_US",
            "en--IN",
            "en-IN-toolongsubtag",
            "12-IN",
        ] {
            assert!(parse_locale(bad).is_err(), "{bad}");
        }
    }
}
