//! FCM HTTP v1 sender: a service-account OAuth token, cached and shared, and `messages:send`.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Mutex, Semaphore};
use url::Url;

use super::outcome::{DeliveryOutcome, classify_fcm, classify_transport_error, error_chain};
use super::{
    AlertPayload, ClientSettings, FCM_MAX_PAYLOAD, MessageOptions, ServiceResponse, SetupError,
};
use crate::config::PushConfig;
use crate::webpush::Urgency;

/// OAuth scope for sending FCM messages.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// The OAuth grant type of a signed JWT assertion (RFC 7523).
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Lifetime requested for the JWT assertion (Google allows at most one hour).
const ASSERTION_LIFETIME_SECS: i64 = 3600;
/// A cached access token is replaced this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// The parts of a Google service-account key file the sender needs.
#[derive(Clone, Deserialize)]
pub struct FcmServiceAccount {
    /// The Firebase project messages are sent through.
    pub project_id: String,
    /// The service account's e-mail address, the JWT issuer.
    pub client_email: String,
    /// The token endpoint named in the key file (the configured `token_url` takes precedence).
    #[serde(default)]
    pub token_uri: Option<String>,
    /// The key's id, sent as the JWT `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
    private_key: String,
}

impl FcmServiceAccount {
    /// Parses a service-account JSON key file's contents.
    pub fn from_json(json: &str) -> Result<Self, SetupError> {
        serde_json::from_str(json).map_err(|e| SetupError::InvalidCredentials {
            what: "FCM service account",
            reason: e.to_string(),
        })
    }

    /// Reads and parses a service-account JSON key file.
    pub fn from_file(path: &Path) -> Result<Self, SetupError> {
        let json = std::fs::read_to_string(path).map_err(|e| SetupError::InvalidCredentials {
            what: "FCM service account",
            reason: format!("{}: {e}", path.display()),
        })?;
        Self::from_json(&json)
    }
}

impl fmt::Debug for FcmServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("private_key_id", &self.private_key_id)
            .field("private_key", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

struct AccessToken {
    value: Arc<str>,
    refresh_at: Instant,
}

/// Sends alerts to Android devices through FCM HTTP v1.
pub struct FcmSender {
    client: reqwest::Client,
    send_url: Url,
    token_url: Url,
    client_email: String,
    private_key_id: Option<String>,
    signing_key: EncodingKey,
    token: RwLock<Option<AccessToken>>,
    refresh: Mutex<()>,
    in_flight: Semaphore,
}

impl fmt::Debug for FcmSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmSender")
            .field("send_url", &self.send_url.as_str())
            .field("token_url", &self.token_url.as_str())
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl FcmSender {
    /// Builds the sender from the service account named in `config.fcm`, or `None` if FCM is disabled.
    pub fn from_config(config: &PushConfig) -> Result<Option<Self>, SetupError> {
        if !config.fcm.enabled {
            return Ok(None);
        }
        let path =
            config
                .fcm
                .service_account_file
                .as_deref()
                .ok_or(SetupError::InvalidCredentials {
                    what: "FCM service account",
                    reason: "fcm.service_account_file is not set".to_owned(),
                })?;
        Self::new(config, FcmServiceAccount::from_file(path)?).map(Some)
    }

    /// Builds the sender for `account`, with the URLs and limits of `config.fcm`.
    pub fn new(config: &PushConfig, account: FcmServiceAccount) -> Result<Self, SetupError> {
        let insecure = config.allow_insecure_endpoints;
        let base = super::parse_service_url("fcm.base_url", &config.fcm.base_url, insecure)?;
        let token_url = super::parse_service_url("fcm.token_url", &config.fcm.token_url, insecure)?;
        let send_url = Url::parse(&format!(
            "{}/v1/projects/{}/messages:send",
            base.as_str().trim_end_matches('/'),
            url_segment(&account.project_id)
        ))
        .map_err(|e| SetupError::InvalidUrl {
            what: "fcm.base_url",
            url: config.fcm.base_url.clone(),
            reason: e.to_string(),
        })?;
        let signing_key =
            EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|e| {
                SetupError::InvalidCredentials {
                    what: "FCM service account private_key",
                    reason: e.to_string(),
                }
            })?;
        let client = super::build_client(&ClientSettings {
            allow_insecure: insecure,
            timeout: config.fcm.timeout(),
            http2_only: false,
        })?;
        Ok(Self {
            client,
            send_url,
            token_url,
            client_email: account.client_email,
            private_key_id: account.private_key_id,
            signing_key,
            token: RwLock::new(None),
            refresh: Mutex::new(()),
            in_flight: Semaphore::new(config.fcm.concurrency.max(1)),
        })
    }

    /// Sends `payload` to the FCM registration `token` and classifies the answer.
    pub async fn send(
        &self,
        token: &str,
        payload: &AlertPayload,
        opts: &MessageOptions,
    ) -> DeliveryOutcome {
        if token.is_empty() {
            return DeliveryOutcome::Gone;
        }
        let message = fcm_message(token, payload, opts);
        let Ok(_permit) = self.in_flight.acquire().await else {
            return DeliveryOutcome::retry("sender is shutting down");
        };
        // One retry with a fresh token if FCM says ours is no longer valid.
        for attempt in 0..2 {
            let access_token = match self.access_token().await {
                Ok(t) => t,
                Err(outcome) => return outcome,
            };
            let response = match self
                .client
                .post(self.send_url.clone())
                .bearer_auth(&access_token)
                .json(&message)
                .send()
                .await
            {
                Ok(response) => response,
                Err(e) => return classify_transport_error(&e),
            };
            let r = ServiceResponse::read(response).await;
            if r.status == http::StatusCode::UNAUTHORIZED && attempt == 0 {
                self.forget_token(&access_token);
                continue;
            }
            return classify_fcm(
                r.status,
                r.retry_after.as_deref(),
                &r.body,
                SystemTime::now(),
            );
        }
        DeliveryOutcome::failed("FCM rejected a freshly issued access token")
    }

    /// A valid access token: the cached one, or one fetched by a single refresher while others wait.
    async fn access_token(&self) -> Result<Arc<str>, DeliveryOutcome> {
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let _refreshing = self.refresh.lock().await;
        if let Some(token) = self.cached_token() {
            return Ok(token);
        }
        let fetched = self.fetch_token().await?;
        let value: Arc<str> = fetched.access_token.into();
        let lifetime = Duration::from_secs(fetched.expires_in);
        *self.token.write().unwrap_or_else(PoisonError::into_inner) = Some(AccessToken {
            value: Arc::clone(&value),
            refresh_at: Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN),
        });
        Ok(value)
    }

    fn cached_token(&self) -> Option<Arc<str>> {
        // A poisoned lock still holds a whole token: it is only ever replaced by one assignment.
        self.token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
            .map(|t| Arc::clone(&t.value))
    }

    fn forget_token(&self, rejected: &str) {
        let mut token = self.token.write().unwrap_or_else(PoisonError::into_inner);
        if token.as_ref().is_some_and(|t| &*t.value == rejected) {
            *token = None;
        }
    }

    async fn fetch_token(&self) -> Result<TokenResponse, DeliveryOutcome> {
        let assertion = self
            .assertion()
            .map_err(|e| DeliveryOutcome::failed(format!("FCM assertion: {e}")))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER_GRANT)
            .append_pair("assertion", &assertion)
            .finish();
        let response = self
            .client
            .post(self.token_url.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .await
            .map_err(|e| match classify_transport_error(&e) {
                DeliveryOutcome::Retry { after, .. } => DeliveryOutcome::Retry {
                    after,
                    reason: format!("FCM token: {}", error_chain(&e)),
                },
                other => other,
            })?;
        let r = ServiceResponse::read(response).await;
        if r.status.is_success() {
            return serde_json::from_str(&r.body)
                .map_err(|e| DeliveryOutcome::retry(format!("FCM token response: {e}")));
        }
        // The token endpoint's errors are about our credentials, never about the device.
        Err(
            match classify_fcm(
                r.status,
                r.retry_after.as_deref(),
                &r.body,
                SystemTime::now(),
            ) {
                DeliveryOutcome::Retry { after, reason } => DeliveryOutcome::Retry {
                    after,
                    reason: format!("FCM token: {reason}"),
                },
                _ => DeliveryOutcome::failed(format!("FCM token: {} {}", r.status, r.body.trim())),
            },
        )
    }

    fn assertion(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = Utc::now().timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.private_key_id.clone();
        let claims = AssertionClaims {
            iss: &self.client_email,
            scope: FCM_SCOPE,
            aud: self.token_url.as_str(),
            iat,
            exp: iat + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.signing_key)
    }
}

/// The bytes FCM counts against its payload limit: `notification` and `data`.
fn fcm_payload_size(payload: &AlertPayload) -> usize {
    let data = serde_json::to_vec(&payload.to_string_map()).map_or(usize::MAX, |v| v.len());
    data + payload.title.len()
        + payload.body.len()
        + payload.image_url.as_ref().map_or(0, String::len)
}

/// The `messages:send` request body for one device: cut to FCM's size limit, tagged with the
/// story so a later version replaces the one shown (`android.notification.tag`, and
/// `apns-collapse-id` for iOS apps on FCM), on the topic's channel, quietly for an update.
fn fcm_message(token: &str, payload: &AlertPayload, opts: &MessageOptions) -> serde_json::Value {
    // Measured exactly only when a generous bound (every text byte escaped, counted twice)
    // says it might not fit: the usual alert is far below FCM's limit.
    let bound = 4 * (payload.title.len() + payload.body.len())
        + 2 * (payload.url.len() + payload.image_url.as_ref().map_or(0, String::len))
        + 512;
    let payload = if bound <= FCM_MAX_PAYLOAD {
        std::borrow::Cow::Borrowed(payload)
    } else {
        payload.fitted(FCM_MAX_PAYLOAD, fcm_payload_size)
    };
    let mut notification = json!({"title": payload.title, "body": payload.body});
    if let Some(image) = &payload.image_url {
        notification["image"] = json!(image);
    }
    let mut android_notification = json!({
        "channel_id": opts.android_channel,
        "tag": payload.tag,
    });
    if opts.silent {
        android_notification["notification_priority"] = json!("PRIORITY_LOW");
        android_notification["default_sound"] = json!(false);
        android_notification["default_vibrate_timings"] = json!(false);
    }
    if let Some(image) = &payload.image_url {
        android_notification["image"] = json!(image);
    }
    let mut android = json!({
        "priority": if opts.urgency == Urgency::High { "high" } else { "normal" },
        "ttl": format!("{}s", opts.ttl_seconds),
        "notification": android_notification,
    });
    let mut message = json!({
        "token": token,
        "notification": notification,
        "data": payload.to_string_map(),
    });
    if let Some(key) = &opts.collapse_key {
        android["collapse_key"] = json!(key);
        message["apns"] = json!({"headers": {"apns-collapse-id": key}});
    }
    message["android"] = android;
    json!({ "message": message })
}

/// Percent-encodes a path segment.
fn url_segment(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
