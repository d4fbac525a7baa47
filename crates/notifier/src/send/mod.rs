//! The Web Push, FCM and APNs senders: one alert to one device, classified into a [`DeliveryOutcome`].

pub mod apns;
pub mod fcm;
pub mod outcome;
pub mod webpush;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use url::{Host, Url};
use uuid::Uuid;

pub use apns::{ApnsEnvironment, ApnsKey, ApnsSender};
pub use fcm::{FcmSender, FcmServiceAccount};
pub use outcome::DeliveryOutcome;
pub use webpush::WebPushSender;

use crate::webpush::{Urgency, is_valid_topic, topic_for_story};

/// What every device receives for one alert (SPEC §4), field for field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertPayload {
    /// The alert being delivered.
    pub alert_id: Uuid,
    /// Notification title.
    pub title: String,
    /// Notification text.
    pub body: String,
    /// Where tapping the notification leads.
    pub url: String,
    /// The article the alert is about, if any.
    pub article_id: Option<Uuid>,
    /// The story the alert is about, if any.
    pub story_id: Option<Uuid>,
    /// The topic slug, e.g. `world`.
    pub topic: String,
    /// An image to show with the notification.
    pub image_url: Option<String>,
    /// When the alert was sent.
    pub sent_at: DateTime<Utc>,
    /// The alert's version: 1, then one more per update; a device shows the highest.
    #[serde(default = "first_version")]
    pub version: u32,
    /// Replace what is shown without sound or vibration (an update, a retraction).
    #[serde(default)]
    pub silent: bool,
    /// The notification's tag: one per story (the alert id when it has none), so a later
    /// version or alert about the story replaces the one shown.
    #[serde(default)]
    pub tag: String,
    /// This version withdraws the alert.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retracted: bool,
}

fn first_version() -> u32 {
    1
}

/// Web Push: the largest plaintext one 4,096-byte `aes128gcm` record carries (RFC 8291: 86
/// bytes of header, a 16-byte tag and the padding delimiter).
pub const WEBPUSH_MAX_PLAINTEXT: usize = 4096 - 86 - 16 - 1;
/// FCM: the most bytes of `notification` and `data` one message may carry.
pub const FCM_MAX_PAYLOAD: usize = 4000;
/// APNs: the largest alert payload.
pub const APNS_MAX_PAYLOAD: usize = 4096;

impl AlertPayload {
    /// The payload cut to fit `limit` bytes as `size` measures it: the body is shortened at a
    /// word (with an ellipsis), then the title, so a push service never refuses it for size.
    pub fn fitted(
        &self,
        limit: usize,
        size: impl Fn(&Self) -> usize,
    ) -> std::borrow::Cow<'_, Self> {
        if size(self) <= limit {
            return std::borrow::Cow::Borrowed(self);
        }
        let mut fitted = self.clone();
        for field in [Field::Body, Field::Title] {
            let full = match field {
                Field::Body => self.body.clone(),
                Field::Title => self.title.clone(),
            };
            // The most characters of the field that still fit: a binary search.
            let (mut lo, mut hi) = (0usize, full.chars().count());
            while lo < hi {
                let mid = (lo + hi).div_ceil(2);
                field.set(&mut fitted, crate::draft::cut_at_word(&full, mid));
                if size(&fitted) <= limit {
                    lo = mid;
                } else {
                    hi = mid - 1;
                }
            }
            field.set(&mut fitted, crate::draft::cut_at_word(&full, lo));
            if size(&fitted) <= limit {
                break;
            }
        }
        std::borrow::Cow::Owned(fitted)
    }
}

#[derive(Clone, Copy)]
enum Field {
    Body,
    Title,
}

impl Field {
    fn set(self, payload: &mut AlertPayload, text: String) {
        match self {
            Self::Body => payload.body = text,
            Self::Title => payload.title = text,
        }
    }
}

impl AlertPayload {
    /// The fields as strings (FCM `data`); absent optional fields are left out.
    pub fn to_string_map(&self) -> BTreeMap<&'static str, String> {
        let mut map = BTreeMap::new();
        map.insert("alert_id", self.alert_id.to_string());
        map.insert("title", self.title.clone());
        map.insert("body", self.body.clone());
        map.insert("url", self.url.clone());
        if let Some(id) = self.article_id {
            map.insert("article_id", id.to_string());
        }
        if let Some(id) = self.story_id {
            map.insert("story_id", id.to_string());
        }
        map.insert("topic", self.topic.clone());
        if let Some(image) = &self.image_url {
            map.insert("image_url", image.clone());
        }
        map.insert(
            "sent_at",
            self.sent_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        );
        map.insert("version", self.version.to_string());
        map.insert("silent", self.silent.to_string());
        map.insert("tag", self.tag.clone());
        if self.retracted {
            map.insert("retracted", "true".to_owned());
        }
        map
    }
}

/// How a message is delivered: urgency, lifetime, what it replaces, and how it presents.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageOptions {
    /// Delivery urgency; `High` maps to FCM `high` and APNs priority 10.
    pub urgency: Urgency,
    /// Seconds the push service keeps trying to deliver.
    pub ttl_seconds: u32,
    /// Messages with the same key replace each other (Web Push `Topic`, FCM `collapse_key` and
    /// `android.notification.tag`, APNs `apns-collapse-id`).
    pub collapse_key: Option<String>,
    /// Replace without sound: no APNs `sound`, FCM low notification priority.
    pub silent: bool,
    /// iOS `interruption-level`: `passive`, `active` or `time-sensitive`.
    pub interruption_level: String,
    /// iOS `relevance-score`, 0 to 1: how the summary ranks it.
    pub relevance_score: f32,
    /// Android notification channel.
    pub android_channel: String,
}

impl MessageOptions {
    /// Options for `payload`, collapsing on its story (the alert itself when it has none): a
    /// newer version or alert replaces an undelivered or shown older one.
    pub fn for_alert(payload: &AlertPayload, urgency: Urgency, ttl_seconds: u32) -> Self {
        let high = urgency == Urgency::High;
        let key = payload.story_id.unwrap_or(payload.alert_id);
        Self {
            urgency,
            ttl_seconds,
            collapse_key: Some(topic_for_story(&key.to_string())),
            silent: payload.silent,
            interruption_level: if payload.silent {
                "passive"
            } else if high {
                "time-sensitive"
            } else {
                "active"
            }
            .to_owned(),
            relevance_score: if high { 1.0 } else { 0.5 },
            android_channel: if high { "breaking" } else { "news" }.to_owned(),
        }
    }

    /// [`Self::for_alert`] with the operator's per-topic presentation (`[push.presentation]`).
    pub fn presented(
        payload: &AlertPayload,
        urgency: Urgency,
        ttl_seconds: u32,
        presentation: &crate::config::PresentationConfig,
    ) -> Self {
        let mut opts = Self::for_alert(payload, urgency, ttl_seconds);
        let high = urgency == Urgency::High;
        if let Some(level) = presentation.interruption_level.get(&payload.topic)
            && !payload.silent
        {
            opts.interruption_level = level.clone();
        }
        opts.android_channel = presentation
            .android_channel
            .get(&payload.topic)
            .cloned()
            .unwrap_or_else(|| {
                if high {
                    presentation.android_channel_high.clone()
                } else {
                    presentation.android_channel_default.clone()
                }
            });
        opts
    }

    /// The collapse key as an RFC 8030 `Topic` (hashed if it is not one already).
    pub(crate) fn webpush_topic(&self) -> Option<String> {
        self.collapse_key.as_deref().map(|key| {
            if is_valid_topic(key) {
                key.to_owned()
            } else {
                topic_for_story(key)
            }
        })
    }
}

/// Why a sender could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A configured URL is not usable.
    #[error("invalid {what} URL {url:?}: {reason}")]
    InvalidUrl {
        /// Which setting.
        what: &'static str,
        /// The configured value.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key or credentials file could not be read or parsed.
    #[error("invalid {what}: {reason}")]
    InvalidCredentials {
        /// Which credential.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// Whether outbound push requests must never reach `ip`: the one table every outbound request
/// shares (`herald-netguard`).
pub use herald_netguard::is_forbidden;

/// How a sender's HTTP client talks to its push service.
pub(crate) struct ClientSettings {
    pub(crate) allow_insecure: bool,
    pub(crate) timeout: Duration,
    pub(crate) http2_only: bool,
}

/// One pooled client per sender: no redirects, no proxies, no compression, and only public
/// destinations unless allowed.
pub(crate) fn build_client(settings: &ClientSettings) -> Result<reqwest::Client, SetupError> {
    // Proxies are bypassed so the address check sees the real destination.
    let mut builder = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        // Push services answer with a status and a few bytes: no decompression layer.
        .no_gzip()
        .no_brotli()
        .user_agent(concat!("herald-notifier/", env!("CARGO_PKG_VERSION")));
    if !settings.allow_insecure {
        builder = builder
            .https_only(true)
            .dns_resolver(Arc::new(herald_netguard::GuardedResolver::default()));
    }
    if settings.http2_only {
        builder = builder.http2_prior_knowledge();
    }
    Ok(builder.build()?)
}

/// Checks a destination before connecting: `https` (unless allowed) and no literal non-public address.
pub(crate) fn check_destination(url: &Url, allow_insecure: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        scheme => return Err(format!("refusing {scheme}: endpoint, https is required")),
    }
    let addr = match url.host() {
        None => return Err("endpoint has no host".to_owned()),
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    // Literal addresses never reach the resolver, so they are checked here.
    if !allow_insecure && is_forbidden(addr) {
        return Err(herald_netguard::Refusal::Blocked(addr).to_string());
    }
    Ok(())
}

/// Parses a configured base URL and checks it like a push endpoint.
pub(crate) fn parse_service_url(
    what: &'static str,
    value: &str,
    allow_insecure: bool,
) -> Result<Url, SetupError> {
    let invalid = |reason: String| SetupError::InvalidUrl {
        what,
        url: value.to_owned(),
        reason,
    };
    let url = Url::parse(value).map_err(|e| invalid(e.to_string()))?;
    check_destination(&url, allow_insecure).map_err(invalid)?;
    Ok(url)
}

/// Most bytes of a response body kept for error reasons.
const MAX_RESPONSE_BODY: usize = 16 * 1024;

/// A response's status, `Retry-After` and (truncated) body.
pub(crate) struct ServiceResponse {
    pub(crate) status: http::StatusCode,
    pub(crate) retry_after: Option<String>,
    pub(crate) body: String,
}

impl ServiceResponse {
    /// Reads at most [`MAX_RESPONSE_BODY`] bytes, so a hostile endpoint cannot exhaust memory.
    ///
    /// The status is the answer; a body cut short only shortens the recorded reason.
    pub(crate) async fn read(mut response: reqwest::Response) -> Self {
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = MAX_RESPONSE_BODY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_RESPONSE_BODY {
                break;
            }
        }
        Self {
            status,
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_checks() {
        let check = |u: &str, insecure| check_destination(&Url::parse(u).unwrap(), insecure);
        assert!(check("https://push.example.com/x", false).is_ok());
        assert!(check("http://push.example.com/x", false).is_err());
        assert!(check("http://push.example.com/x", true).is_ok());
        assert!(check("https://127.0.0.1/x", false).is_err());
        assert!(check("https://[::1]:8443/x", false).is_err());
        assert!(check("https://169.254.169.254/", false).is_err());
        assert!(check("http://127.0.0.1:1/x", true).is_ok());
        assert!(check("ftp://push.example.com/x", true).is_err());
        assert!(check("https://8.8.8.8/x", false).is_ok());
    }

    #[test]
    fn collapse_key_follows_the_story() {
        let story = Uuid::new_v4();
        let payload = AlertPayload {
            alert_id: Uuid::new_v4(),
            title: "t".into(),
            body: "b".into(),
            url: "https://herald.example/a".into(),
            article_id: None,
            story_id: Some(story),
            topic: "world".into(),
            image_url: None,
            sent_at: Utc::now(),
            version: 1,
            silent: false,
            tag: story.to_string(),
            retracted: false,
        };
        let opts = MessageOptions::for_alert(&payload, Urgency::High, 60);
        assert_eq!(opts.collapse_key, Some(topic_for_story(&story.to_string())));
        assert_eq!(opts.webpush_topic(), opts.collapse_key);
        let map = payload.to_string_map();
        assert!(!map.contains_key("article_id"));
        assert_eq!(map["story_id"], story.to_string());
        // Without a story, the alert collapses on itself: its own later versions replace it.
        let alone = AlertPayload {
            story_id: None,
            ..payload
        };
        let none = MessageOptions::for_alert(&alone, Urgency::Normal, 60);
        assert_eq!(
            none.collapse_key,
            Some(topic_for_story(&alone.alert_id.to_string()))
        );
        assert_eq!(none.interruption_level, "active");
        assert_eq!(opts.interruption_level, "time-sensitive");
    }

    #[test]
    fn a_long_body_is_cut_to_fit_never_refused() {
        let payload = AlertPayload {
            alert_id: Uuid::new_v4(),
            title: "Ceasefire".into(),
            body: "word ".repeat(2000),
            url: "https://herald.example/a".into(),
            article_id: None,
            story_id: None,
            topic: "world".into(),
            image_url: None,
            sent_at: Utc::now(),
            version: 1,
            silent: false,
            tag: String::new(),
            retracted: false,
        };
        let size = |p: &AlertPayload| serde_json::to_vec(p).unwrap().len();
        let fitted = payload.fitted(WEBPUSH_MAX_PLAINTEXT, size);
        assert!(size(&fitted) <= WEBPUSH_MAX_PLAINTEXT);
        assert!(
            size(&fitted) > WEBPUSH_MAX_PLAINTEXT - 16,
            "cut no more than needed"
        );
        assert!(
            fitted.body.ends_with("word…"),
            "{}",
            &fitted.body[fitted.body.len() - 20..]
        );
        assert_eq!(fitted.title, "Ceasefire");
        let short = AlertPayload {
            body: "short".into(),
            ..payload
        };
        assert!(matches!(
            short.fitted(WEBPUSH_MAX_PLAINTEXT, size),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
