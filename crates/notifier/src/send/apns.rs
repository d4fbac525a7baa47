//! APNs provider API sender: HTTP/2 with a shared ES256 provider token.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;
use url::Url;

use super::outcome::{DeliveryOutcome, apns_reason, classify_apns, classify_transport_error};
use super::{AlertPayload, ClientSettings, MessageOptions, ServiceResponse, SetupError};
use crate::config::PushConfig;
use crate::webpush::{Urgency, topic_for_story};

/// A provider token is re-signed after this long (Apple accepts 20 to 60 minutes).
pub const PROVIDER_TOKEN_REFRESH: Duration = Duration::from_secs(40 * 60);
/// Longest `apns-collapse-id` Apple accepts, in bytes.
pub const MAX_COLLAPSE_ID_LEN: usize = 64;
/// Longest device token accepted, in hex characters.
const MAX_DEVICE_TOKEN_LEN: usize = 200;

/// Which APNs environment a device token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ApnsEnvironment {
    /// App Store and TestFlight builds.
    #[default]
    Production,
    /// Development builds.
    Sandbox,
}

/// The team's token-signing key (`AuthKey_<key id>.p8`) with its key and team ids.
#[derive(Clone)]
pub struct ApnsKey {
    key_id: String,
    team_id: String,
    signing_key: EncodingKey,
}

impl ApnsKey {
    /// Reads a `.p8` key (PKCS#8 P-256 PEM).
    pub fn from_p8_pem(pem: &str, key_id: &str, team_id: &str) -> Result<Self, SetupError> {
        let signing_key = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| {
            SetupError::InvalidCredentials {
                what: "APNs key",
                reason: e.to_string(),
            }
        })?;
        if key_id.is_empty() || team_id.is_empty() {
            return Err(SetupError::InvalidCredentials {
                what: "APNs key",
                reason: "apns.key_id and apns.team_id must be set".to_owned(),
            });
        }
        Ok(Self {
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            signing_key,
        })
    }

    /// Reads a `.p8` key file.
    pub fn from_file(path: &Path, key_id: &str, team_id: &str) -> Result<Self, SetupError> {
        let pem = std::fs::read_to_string(path).map_err(|e| SetupError::InvalidCredentials {
            what: "APNs key",
            reason: format!("{}: {e}", path.display()),
        })?;
        Self::from_p8_pem(&pem, key_id, team_id)
    }

    /// The key id, sent as the provider token's `kid`.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The team id, sent as the provider token's `iss`.
    pub fn team_id(&self) -> &str {
        &self.team_id
    }
}

impl fmt::Debug for ApnsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsKey")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("signing_key", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize)]
struct ProviderClaims<'a> {
    iss: &'a str,
    iat: i64,
}

struct ProviderToken {
    value: Arc<str>,
    issued: Instant,
}

/// Sends alerts to iOS devices through the APNs provider API.
pub struct ApnsSender {
    client: reqwest::Client,
    production_url: Url,
    sandbox_url: Url,
    topic: String,
    key: ApnsKey,
    token: RwLock<Option<ProviderToken>>,
    in_flight: Semaphore,
}

impl fmt::Debug for ApnsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsSender")
            .field("production_url", &self.production_url.as_str())
            .field("sandbox_url", &self.sandbox_url.as_str())
            .field("topic", &self.topic)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl ApnsSender {
    /// Builds the sender from the key named in `config.apns`, or `None` if APNs is disabled.
    pub fn from_config(config: &PushConfig) -> Result<Option<Self>, SetupError> {
        if !config.apns.enabled {
            return Ok(None);
        }
        let path = config
            .apns
            .key_file
            .as_deref()
            .ok_or(SetupError::InvalidCredentials {
                what: "APNs key",
                reason: "apns.key_file is not set".to_owned(),
            })?;
        let key = ApnsKey::from_file(path, &config.apns.key_id, &config.apns.team_id)?;
        Self::new(config, key).map(Some)
    }

    /// Builds the sender for `key`, with the URLs, topic and limits of `config.apns`.
    pub fn new(config: &PushConfig, key: ApnsKey) -> Result<Self, SetupError> {
        let insecure = config.allow_insecure_endpoints;
        let production_url =
            super::parse_service_url("apns.production_url", &config.apns.production_url, insecure)?;
        let sandbox_url =
            super::parse_service_url("apns.sandbox_url", &config.apns.sandbox_url, insecure)?;
        if config.apns.topic.is_empty() {
            return Err(SetupError::InvalidCredentials {
                what: "APNs topic",
                reason: "apns.topic (the app's bundle id) must be set".to_owned(),
            });
        }
        // APNs speaks only HTTP/2: over TLS this offers only h2, over plain http (tests) it is h2c.
        let client = super::build_client(&ClientSettings {
            allow_insecure: insecure,
            timeout: config.apns.timeout(),
            http2_only: true,
        })?;
        Ok(Self {
            client,
            production_url,
            sandbox_url,
            topic: config.apns.topic.clone(),
            key,
            token: RwLock::new(None),
            in_flight: Semaphore::new(config.apns.concurrency.max(1)),
        })
    }

    /// Sends `payload` to the hex `device_token` in `environment` and classifies the answer.
    pub async fn send(
        &self,
        device_token: &str,
        environment: ApnsEnvironment,
        payload: &AlertPayload,
        opts: &MessageOptions,
    ) -> DeliveryOutcome {
        // APNs would answer BadDeviceToken; checking also keeps the token a plain path segment.
        if device_token.is_empty()
            || device_token.len() > MAX_DEVICE_TOKEN_LEN
            || !device_token.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return DeliveryOutcome::Gone;
        }
        let base = match environment {
            ApnsEnvironment::Production => &self.production_url,
            ApnsEnvironment::Sandbox => &self.sandbox_url,
        };
        let url = format!(
            "{}/3/device/{device_token}",
            base.as_str().trim_end_matches('/')
        );
        let body = match apns_body(payload, opts) {
            Ok(body) => body,
            Err(e) => return DeliveryOutcome::failed(format!("payload serialization: {e}")),
        };
        let expiration = Utc::now().timestamp() + i64::from(opts.ttl_seconds);
        let priority = if opts.urgency == Urgency::High {
            "10"
        } else {
            "5"
        };
        let collapse_id = opts.collapse_key.as_deref().map(|key| {
            if key.len() <= MAX_COLLAPSE_ID_LEN {
                key.to_owned()
            } else {
                topic_for_story(key)
            }
        });

        let Ok(_permit) = self.in_flight.acquire().await else {
            return DeliveryOutcome::retry("sender is shutting down");
        };
        // One retry with a fresh token if APNs says ours has expired.
        for attempt in 0..2 {
            let token = match self.provider_token() {
                Ok(token) => token,
                Err(e) => return DeliveryOutcome::failed(format!("APNs provider token: {e}")),
            };
            let mut request = self
                .client
                .post(&url)
                .header(http::header::AUTHORIZATION, format!("bearer {token}"))
                .header("apns-topic", &self.topic)
                .header("apns-push-type", "alert")
                .header("apns-priority", priority)
                .header("apns-expiration", expiration.to_string())
                .header(http::header::CONTENT_TYPE, "application/json");
            if let Some(id) = &collapse_id {
                request = request.header("apns-collapse-id", id);
            }
            let response = match request.body(body.clone()).send().await {
                Ok(response) => response,
                Err(e) => return classify_transport_error(&e),
            };
            let r = ServiceResponse::read(response).await;
            if r.status == http::StatusCode::FORBIDDEN
                && attempt == 0
                && apns_reason(&r.body).as_deref() == Some("ExpiredProviderToken")
            {
                self.forget_token(&token);
                continue;
            }
            return classify_apns(
                r.status,
                r.retry_after.as_deref(),
                &r.body,
                SystemTime::now(),
            );
        }
        DeliveryOutcome::failed("APNs rejected a freshly signed provider token")
    }

    /// The shared provider token, re-signed every [`PROVIDER_TOKEN_REFRESH`].
    fn provider_token(&self) -> Result<Arc<str>, jsonwebtoken::errors::Error> {
        let fresh = |t: &ProviderToken| t.issued.elapsed() < PROVIDER_TOKEN_REFRESH;
        // A poisoned lock still holds a whole token: it is only ever replaced by one assignment.
        if let Some(t) = self
            .token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|t| fresh(t))
        {
            return Ok(Arc::clone(&t.value));
        }
        let mut slot = self.token.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = slot.as_ref().filter(|t| fresh(t)) {
            return Ok(Arc::clone(&t.value));
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key.key_id.clone());
        let claims = ProviderClaims {
            iss: &self.key.team_id,
            iat: Utc::now().timestamp(),
        };
        let value: Arc<str> = jsonwebtoken::encode(&header, &claims, &self.key.signing_key)?.into();
        *slot = Some(ProviderToken {
            value: Arc::clone(&value),
            issued: Instant::now(),
        });
        Ok(value)
    }

    fn forget_token(&self, rejected: &str) {
        let mut token = self.token.write().unwrap_or_else(PoisonError::into_inner);
        if token.as_ref().is_some_and(|t| &*t.value == rejected) {
            *token = None;
        }
    }
}

/// `{"aps": {...}, ...SPEC §4 fields}`, cut to APNs' 4 KB: `mutable-content` so the app's
/// Notification Service Extension can fetch `image_url`, the story as `thread-id`, the
/// interruption level and relevance, and no `sound` for a silent update.
fn apns_body(payload: &AlertPayload, opts: &MessageOptions) -> Result<Vec<u8>, serde_json::Error> {
    let build = |payload: &AlertPayload| -> Result<Vec<u8>, serde_json::Error> {
        let mut body = serde_json::to_value(payload)?;
        let mut aps = json!({
            "alert": {"title": payload.title, "body": payload.body},
            "mutable-content": 1,
            "thread-id": payload.tag,
            "interruption-level": opts.interruption_level,
            "relevance-score": opts.relevance_score,
        });
        if !opts.silent {
            aps["sound"] = json!("default");
        }
        body["aps"] = aps;
        serde_json::to_vec(&body)
    };
    let body = build(payload)?;
    if body.len() <= super::APNS_MAX_PAYLOAD {
        return Ok(body);
    }
    let size = |p: &AlertPayload| build(p).map_or(usize::MAX, |v| v.len());
    build(&payload.fitted(super::APNS_MAX_PAYLOAD, size))
}
