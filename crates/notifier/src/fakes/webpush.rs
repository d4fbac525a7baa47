//! A Web Push service: decrypts RFC 8291 bodies and verifies RFC 8292 VAPID tokens.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

use aws_lc_rs::agreement::{ECDH_P256, PrivateKey};
use aws_lc_rs::encoding::{AsBigEndian as _, EcPrivateKeyBin};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use chrono::Utc;
use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::{Scripted, Scripts, ServerTask, lock};
use crate::webpush::{
    PushCryptoError, SubscriptionKeys, VapidClaims, VapidError, WebPushSubscription, decrypt,
    ece::AUTH_SECRET_LEN, verify_vapid,
};

/// A subscription the fake can decrypt for.
#[derive(Debug, Clone)]
pub struct FakeSubscription {
    /// The id in the endpoint path.
    pub id: String,
    /// The endpoint and public keys, as a browser would hand them out.
    pub subscription: WebPushSubscription,
}

impl FakeSubscription {
    /// The subscription as a browser's `PushSubscription.toJSON()` gives it, which is what
    /// `POST /v1/devices` takes under `subscription`.
    pub fn browser_json(&self) -> serde_json::Value {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        serde_json::json!({
            "endpoint": self.subscription.endpoint.to_string(),
            "keys": {
                "p256dh": URL_SAFE_NO_PAD.encode(self.subscription.keys.p256dh()),
                "auth": URL_SAFE_NO_PAD.encode(self.subscription.keys.auth()),
            }
        })
    }
}

struct Receiver {
    endpoint: Url,
    private_key: Vec<u8>,
    auth: [u8; AUTH_SECRET_LEN],
}

/// One request that passed VAPID and decryption checks.
#[derive(Debug, Clone)]
pub struct ReceivedPush {
    /// The subscription it was for.
    pub subscription_id: String,
    /// All request headers.
    pub headers: HeaderMap,
    /// The verified VAPID claims.
    pub vapid: VapidClaims,
    /// The JWT from the `Authorization` header.
    pub vapid_token: String,
    /// The decrypted payload.
    pub plaintext: Vec<u8>,
    /// The status the fake answered with (`None`: it hung).
    pub status: Option<u16>,
}

impl ReceivedPush {
    /// A request header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The decrypted payload parsed as JSON.
    pub fn payload<T: DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_slice(&self.plaintext)
    }
}

#[derive(Default)]
struct WebPushState {
    receivers: Mutex<HashMap<String, Receiver>>,
    received: Mutex<Vec<ReceivedPush>>,
    rejected: Mutex<Vec<(String, u16, String)>>,
    scripts: Scripts,
    /// How long each request waits before it is checked and answered, in milliseconds.
    latency_ms: std::sync::atomic::AtomicU64,
}

/// A local Web Push service at `http://127.0.0.1:<port>/push/{id}`.
pub struct FakeWebPush {
    base_url: Url,
    state: Arc<WebPushState>,
    _server: ServerTask,
}

impl FakeWebPush {
    /// Starts the service on an ephemeral port.
    pub async fn start() -> io::Result<Self> {
        let state = Arc::new(WebPushState::default());
        let router = Router::new()
            .route("/push/{id}", post(receive))
            .with_state(Arc::clone(&state));
        let (addr, server) = super::serve(router).await?;
        let base_url = Url::parse(&format!("http://{addr}/")).map_err(io::Error::other)?;
        Ok(Self {
            base_url,
            state,
            _server: server,
        })
    }

    /// The service's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// Registers a new browser: a fresh P-256 key pair and auth secret, and its endpoint.
    pub fn new_subscription(&self) -> Result<FakeSubscription, PushCryptoError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let key = PrivateKey::generate(&ECDH_P256)
            .map_err(|_| PushCryptoError::Crypto("key generation"))?;
        let public = key
            .compute_public_key()
            .map_err(|_| PushCryptoError::Crypto("public key"))?;
        let private: EcPrivateKeyBin<'static> = key
            .as_be_bytes()
            .map_err(|_| PushCryptoError::Crypto("private key export"))?;
        let mut auth = [0u8; AUTH_SECRET_LEN];
        aws_lc_rs::rand::fill(&mut auth).map_err(|_| PushCryptoError::Crypto("random auth"))?;
        let keys = SubscriptionKeys::from_bytes(public.as_ref(), &auth)
            .map_err(|_| PushCryptoError::Crypto("subscription keys"))?;
        let endpoint = self
            .base_url
            .join(&format!("push/{id}"))
            .map_err(|_| PushCryptoError::Crypto("endpoint URL"))?;
        lock(&self.state.receivers).insert(
            id.clone(),
            Receiver {
                endpoint: endpoint.clone(),
                private_key: private.as_ref().to_vec(),
                auth,
            },
        );
        Ok(FakeSubscription {
            id,
            subscription: WebPushSubscription { endpoint, keys },
        })
    }

    /// Queues answers for the subscription `id`; each request takes the next one, then 201.
    pub fn script(&self, id: &str, answers: impl IntoIterator<Item = Scripted>) {
        self.state.scripts.push(id, answers);
    }

    /// Makes every later request wait `latency` before it is checked and answered, like a
    /// push service across a network (a fan-out then takes long enough to interrupt).
    pub fn set_latency(&self, latency: std::time::Duration) {
        let millis = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self.state
            .latency_ms
            .store(millis, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many requests were accepted so far (cheaper than [`FakeWebPush::received`]).
    pub fn received_count(&self) -> usize {
        lock(&self.state.received).len()
    }

    /// Every accepted request, in arrival order.
    pub fn received(&self) -> Vec<ReceivedPush> {
        lock(&self.state.received).clone()
    }

    /// The accepted requests for one subscription.
    pub fn received_for(&self, id: &str) -> Vec<ReceivedPush> {
        lock(&self.state.received)
            .iter()
            .filter(|r| r.subscription_id == id)
            .cloned()
            .collect()
    }

    /// Rejected requests as `(subscription id, status, reason)`.
    pub fn rejected(&self) -> Vec<(String, u16, String)> {
        lock(&self.state.rejected).clone()
    }
}

async fn receive(
    State(state): State<Arc<WebPushState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let latency = state.latency_ms.load(std::sync::atomic::Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    let checked = {
        let receivers = lock(&state.receivers);
        match receivers.get(&id) {
            None => Err((StatusCode::NOT_FOUND, "no such subscription".to_owned())),
            Some(receiver) => check(receiver, &headers, &body),
        }
    };
    let (vapid, vapid_token, plaintext) = match checked {
        Ok(accepted) => accepted,
        Err((status, reason)) => {
            lock(&state.rejected).push((id, status.as_u16(), reason.clone()));
            return (status, reason).into_response();
        }
    };
    let scripted = state.scripts.next(&id);
    lock(&state.received).push(ReceivedPush {
        subscription_id: id.clone(),
        headers,
        vapid,
        vapid_token,
        plaintext,
        status: scripted.as_ref().map_or(Some(201), Scripted::status_code),
    });
    match scripted {
        Some(answer) => answer.into_response().await,
        None => (
            StatusCode::CREATED,
            [(http::header::LOCATION, format!("/message/{id}"))],
        )
            .into_response(),
    }
}

/// RFC 8030/8291/8292 checks: TTL present, VAPID valid for this origin, body decrypts.
fn check(
    receiver: &Receiver,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(VapidClaims, String, Vec<u8>), (StatusCode, String)> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization")
        .ok_or((StatusCode::UNAUTHORIZED, "missing Authorization".to_owned()))?;
    let vapid = verify_vapid(authorization, &receiver.endpoint, Utc::now()).map_err(|e| {
        let status = match e {
            VapidError::Malformed(_) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        };
        (status, e.to_string())
    })?;
    let token = authorization
        .split(',')
        .filter_map(|p| {
            p.trim()
                .trim_start_matches("vapid")
                .trim()
                .strip_prefix("t=")
        })
        .next()
        .unwrap_or_default()
        .to_owned();
    if header("ttl").and_then(|t| t.parse::<u64>().ok()).is_none() {
        return Err((StatusCode::BAD_REQUEST, "missing or invalid TTL".to_owned()));
    }
    // RFC 8030 §5.4: at most 32 characters of the URL-safe base64 alphabet.
    if let Some(topic) = header("topic") {
        let valid = topic.len() <= 32
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err((StatusCode::BAD_REQUEST, "invalid Topic".to_owned()));
        }
    }
    // Push services accept at most 4,096 bytes of message (RFC 8030 §7.2).
    if body.len() > 4096 {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload larger than 4096 bytes".to_owned(),
        ));
    }
    if header("content-encoding") != Some("aes128gcm") {
        return Err((
            StatusCode::BAD_REQUEST,
            "Content-Encoding must be aes128gcm".to_owned(),
        ));
    }
    let plaintext = decrypt(&receiver.private_key, &receiver.auth, body)
        .map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((vapid, token, plaintext))
}
