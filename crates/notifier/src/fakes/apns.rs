//! An APNs provider API over cleartext HTTP/2 that checks ES256 provider tokens.

use std::io;
use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use chrono::Utc;
use http::{HeaderMap, StatusCode, Version};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::json;

use super::{Scripted, Scripts, ServerTask, lock};
use crate::config::PushConfig;
use crate::send::{ApnsKey, SetupError};

/// The fake team's id.
pub const TEAM_ID: &str = "HERALDTEAM";
/// The fake signing key's id.
pub const KEY_ID: &str = "HERALDKEY1";
/// The bundle id the fake expects as `apns-topic`.
pub const TOPIC: &str = "net.herald.reader";
/// Largest notification payload APNs accepts, in bytes.
const MAX_PAYLOAD: usize = 4096;

/// One notification the fake accepted.
#[derive(Debug, Clone)]
pub struct ReceivedApns {
    /// The device token from the path.
    pub device_token: String,
    /// The HTTP version it arrived over.
    pub version: Version,
    /// All request headers.
    pub headers: HeaderMap,
    /// The provider token (JWT) it carried.
    pub provider_token: String,
    /// The JSON payload.
    pub body: serde_json::Value,
    /// The status the fake answered with (`None`: it hung).
    pub status: Option<u16>,
}

impl ReceivedApns {
    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct ApnsState {
    decoding_key: DecodingKey,
    received: Mutex<Vec<ReceivedApns>>,
    scripts: Scripts,
}

/// A local APNs at `http://127.0.0.1:<port>/3/device/{token}` (h2c with prior knowledge).
pub struct FakeApns {
    base_url: String,
    p8_pem: String,
    state: Arc<ApnsState>,
    _server: ServerTask,
}

impl FakeApns {
    /// Starts the service on an ephemeral port with a fresh team signing key.
    pub async fn start() -> io::Result<Self> {
        let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| io::Error::other("P-256 key generation failed"))?;
        let pkcs8 = key
            .to_pkcs8v1()
            .map_err(|_| io::Error::other("PKCS#8 export failed"))?;
        let state = Arc::new(ApnsState {
            decoding_key: DecodingKey::from_ec_der(key.public_key().as_ref()),
            received: Mutex::new(Vec::new()),
            scripts: Scripts::default(),
        });
        let router = Router::new()
            .route("/3/device/{token}", post(receive))
            .with_state(Arc::clone(&state));
        let (addr, server) = super::serve(router).await?;
        Ok(Self {
            base_url: format!("http://{addr}"),
            p8_pem: super::pem("PRIVATE KEY", pkcs8.as_ref()),
            state,
            _server: server,
        })
    }

    /// The base URL (for both `apns.production_url` and `apns.sandbox_url`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The team's `.p8` signing key.
    pub fn p8_pem(&self) -> &str {
        &self.p8_pem
    }

    /// The signing key with the fake's key and team ids.
    pub fn key(&self) -> Result<ApnsKey, SetupError> {
        ApnsKey::from_p8_pem(&self.p8_pem, KEY_ID, TEAM_ID)
    }

    /// Points `config` at this fake (and allows its plain-http loopback address).
    pub fn configure(&self, config: &mut PushConfig) {
        config.allow_insecure_endpoints = true;
        config.apns.enabled = true;
        config.apns.production_url = self.base_url.clone();
        config.apns.sandbox_url = self.base_url.clone();
        config.apns.key_id = KEY_ID.to_owned();
        config.apns.team_id = TEAM_ID.to_owned();
        config.apns.topic = TOPIC.to_owned();
    }

    /// Every accepted notification, in arrival order.
    pub fn received(&self) -> Vec<ReceivedApns> {
        lock(&self.state.received).clone()
    }

    /// Queues answers for `device_token`; each notification takes the next one, then 200.
    pub fn script(&self, device_token: &str, answers: impl IntoIterator<Item = Scripted>) {
        self.state.scripts.push(device_token, answers);
    }

    /// An APNs error answer: `status` with `{"reason": reason}`.
    pub fn reason(status: u16, reason: &str) -> Scripted {
        let mut body = json!({"reason": reason});
        if status == 410 {
            body["timestamp"] = json!(Utc::now().timestamp_millis());
        }
        Scripted::json(status, &body)
    }
}

#[derive(Deserialize)]
struct ProviderClaims {
    iat: i64,
}

fn reject(status: StatusCode, reason: &str) -> Response {
    (status, axum::Json(json!({"reason": reason}))).into_response()
}

async fn receive(
    State(state): State<Arc<ApnsState>>,
    Path(device_token): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if parts.version != Version::HTTP_2 {
        return reject(StatusCode::HTTP_VERSION_NOT_SUPPORTED, "HTTP2Required");
    }
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(provider_token) = header("authorization")
        .and_then(|v| v.strip_prefix("bearer "))
        .map(str::to_owned)
    else {
        return reject(StatusCode::FORBIDDEN, "MissingProviderToken");
    };
    match verify_provider_token(&state.decoding_key, &provider_token) {
        Ok(()) => {}
        Err(reason) => return reject(StatusCode::FORBIDDEN, reason),
    }
    if header("apns-topic") != Some(TOPIC) {
        return reject(StatusCode::BAD_REQUEST, "BadTopic");
    }
    if !matches!(
        header("apns-push-type"),
        Some("alert" | "background" | "voip")
    ) {
        return reject(StatusCode::BAD_REQUEST, "InvalidPushType");
    }
    if !matches!(header("apns-priority"), None | Some("5" | "10" | "1")) {
        return reject(StatusCode::BAD_REQUEST, "BadPriority");
    }
    if header("apns-expiration").is_some_and(|v| v.parse::<i64>().is_err()) {
        return reject(StatusCode::BAD_REQUEST, "BadExpirationDate");
    }
    if header("apns-collapse-id").is_some_and(|v| v.len() > 64) {
        return reject(StatusCode::BAD_REQUEST, "BadCollapseId");
    }
    if device_token.is_empty() || !device_token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return reject(StatusCode::BAD_REQUEST, "BadDeviceToken");
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAYLOAD * 4).await else {
        return reject(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    };
    if bytes.len() > MAX_PAYLOAD {
        return reject(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    }
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return reject(StatusCode::BAD_REQUEST, "BadPayload");
    };
    if !payload["aps"].is_object() {
        return reject(StatusCode::BAD_REQUEST, "PayloadEmpty");
    }
    let scripted = state.scripts.next(&device_token);
    lock(&state.received).push(ReceivedApns {
        device_token,
        version: parts.version,
        headers: parts.headers.clone(),
        provider_token,
        body: payload,
        status: scripted.as_ref().map_or(Some(200), Scripted::status_code),
    });
    match scripted {
        Some(answer) => answer.into_response().await,
        None => (
            StatusCode::OK,
            [("apns-id", uuid::Uuid::new_v4().hyphenated().to_string())],
        )
            .into_response(),
    }
}

/// ES256, `kid` = the key id, `iss` = the team id, `iat` within the last hour.
fn verify_provider_token(key: &DecodingKey, token: &str) -> Result<(), &'static str> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| "InvalidProviderToken")?;
    if header.alg != Algorithm::ES256 || header.kid.as_deref() != Some(KEY_ID) {
        return Err("InvalidProviderToken");
    }
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss"]);
    validation.set_issuer(&[TEAM_ID]);
    let claims = jsonwebtoken::decode::<ProviderClaims>(token, key, &validation)
        .map_err(|_| "InvalidProviderToken")?
        .claims;
    let age = Utc::now().timestamp() - claims.iat;
    if age > 3600 {
        return Err("ExpiredProviderToken");
    }
    if age < -60 {
        return Err("InvalidProviderToken");
    }
    Ok(())
}
