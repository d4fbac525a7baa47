//! Web Push (RFC 8030) requests: `aes128gcm` payload encryption (RFC 8291) and VAPID (RFC 8292).

pub mod ece;
pub mod vapid;

use std::fmt;

use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use url::Url;

pub use ece::{KeyError, KeyProblem, PushCryptoError, SubscriptionKeys, decrypt, encrypt};
pub use vapid::{VapidClaims, VapidError, VapidKeys, VapidSigner, verify_vapid};

/// Longest `Topic` header value RFC 8030 §5.4 allows.
pub const MAX_TOPIC_LEN: usize = 32;

/// A browser push subscription: where to send, and the keys to encrypt for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebPushSubscription {
    /// The push service URL the browser handed out.
    pub endpoint: Url,
    /// The receiver's `p256dh` and `auth` keys.
    pub keys: SubscriptionKeys,
}

/// RFC 8030 §5.3 message urgency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Urgency {
    /// Deliver only on power and Wi-Fi.
    VeryLow,
    /// Deliver on power or Wi-Fi.
    Low,
    /// Deliver when the device is not in low-power mode.
    #[default]
    Normal,
    /// Deliver immediately, even on low battery.
    High,
}

impl Urgency {
    /// The `Urgency` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VeryLow => "very-low",
            Self::Low => "low",
            Self::Normal => "normal",
            Self::High => "high",
        }
    }
}

/// A ready-to-send push message: POST `body` with `headers` to `endpoint`.
#[derive(Clone)]
pub struct WebPushRequest {
    /// The subscription's push endpoint.
    pub endpoint: Url,
    /// Header names (lower-case, valid for `http::HeaderName::from_static`) and values.
    pub headers: Vec<(&'static str, String)>,
    /// The `aes128gcm`-encrypted payload.
    pub body: Vec<u8>,
}

impl fmt::Debug for WebPushRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| match *name {
                "authorization" => (*name, "[redacted]"),
                _ => (*name, value.as_str()),
            })
            .collect();
        f.debug_struct("WebPushRequest")
            .field("endpoint", &self.endpoint.as_str())
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Why a push request could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WebPushError {
    /// Encrypting the payload failed (including a payload over the size limit).
    #[error(transparent)]
    Crypto(#[from] PushCryptoError),
    /// Signing the VAPID token failed.
    #[error(transparent)]
    Vapid(#[from] VapidError),
    /// The topic is longer than 32 characters or not base64url.
    #[error("topic must be at most 32 base64url characters")]
    InvalidTopic,
}

/// Encrypts `payload` for `subscription` and assembles the signed RFC 8030 request.
pub fn build_request(
    subscription: &WebPushSubscription,
    payload: &[u8],
    signer: &VapidSigner,
    ttl_seconds: u32,
    urgency: Urgency,
    topic: Option<&str>,
    now: DateTime<Utc>,
) -> Result<WebPushRequest, WebPushError> {
    if topic.is_some_and(|t| !is_valid_topic(t)) {
        return Err(WebPushError::InvalidTopic);
    }
    let authorization = signer.authorization(&subscription.endpoint, now)?;
    let body = encrypt(&subscription.keys, payload)?;
    let mut headers = Vec::with_capacity(6);
    headers.push(("content-encoding", "aes128gcm".to_owned()));
    headers.push(("content-type", "application/octet-stream".to_owned()));
    headers.push(("ttl", ttl_seconds.to_string()));
    headers.push(("urgency", urgency.as_str().to_owned()));
    if let Some(topic) = topic {
        headers.push(("topic", topic.to_owned()));
    }
    headers.push(("authorization", authorization.to_string()));
    Ok(WebPushRequest {
        endpoint: subscription.endpoint.clone(),
        headers,
        body,
    })
}

/// A `Topic` for a story, so a newer alert replaces an undelivered older one: 32 base64url chars.
pub fn topic_for_story(story_id: &str) -> String {
    let digest = Sha256::digest(story_id.as_bytes());
    // 24 bytes encode to exactly 32 base64url characters.
    BASE64_URL_SAFE_NO_PAD.encode(&digest[..24])
}

/// Whether `topic` is a valid RFC 8030 `Topic`: 1 to 32 characters of the base64url alphabet.
pub fn is_valid_topic(topic: &str) -> bool {
    (1..=MAX_TOPIC_LEN).contains(&topic.len())
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
