//! Push configuration: where the senders connect, how hard they push, and the alert defaults.
//!
//! Key material is never held here, only paths to it, so `Debug` output is safe to log.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings for all push senders (`[push]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PushConfig {
    /// Allow `http` endpoints and loopback, private and link-local destinations (tests only).
    pub allow_insecure_endpoints: bool,
    /// VAPID contact URI (`mailto:` or `https:`); operators must set a reachable address.
    pub vapid_subject: String,
    /// Web Push sender settings.
    pub webpush: WebPushConfig,
    /// Firebase Cloud Messaging sender settings.
    pub fcm: FcmConfig,
    /// Apple Push Notification service sender settings.
    pub apns: ApnsConfig,
    /// Whether `high` urgency alerts are delivered during a device's quiet hours.
    pub high_urgency_bypasses_quiet_hours: bool,
    /// How long an undelivered alert stays worth delivering, in seconds.
    pub default_ttl_seconds: u32,
    /// Alerts a device receives per day unless its preferences say otherwise.
    pub default_max_alerts_per_day: u32,
    /// Device registrations (`POST /v1/devices`) allowed per client address per hour, whatever
    /// the account: accounts are free, so the per-account device limit alone bounds nothing.
    pub devices_per_address_per_hour: u32,
    /// How the notifier paces its fan-out (`[push.fanout]`).
    pub fanout: FanoutConfig,
    /// How alerts present on phones (`[push.presentation]`).
    pub presentation: PresentationConfig,
}

/// How an alert presents on the lock screen, per platform (`[push.presentation]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresentationConfig {
    /// iOS `interruption-level` per topic slug (`passive`, `active` or `time-sensitive`);
    /// topics not named get `time-sensitive` for `high` urgency and `active` otherwise.
    /// (`time-sensitive` needs the app's Time Sensitive Notifications capability.)
    pub interruption_level: std::collections::BTreeMap<String, String>,
    /// Android notification channel id per topic slug (the app creates the channels).
    pub android_channel: std::collections::BTreeMap<String, String>,
    /// Android channel for `high` urgency alerts whose topic has none of its own.
    pub android_channel_high: String,
    /// Android channel for every other alert.
    pub android_channel_default: String,
}

impl Default for PresentationConfig {
    fn default() -> Self {
        Self {
            interruption_level: std::collections::BTreeMap::new(),
            android_channel: std::collections::BTreeMap::new(),
            android_channel_high: "breaking".to_owned(),
            android_channel_default: "news".to_owned(),
        }
    }
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            allow_insecure_endpoints: false,
            // A placeholder: push services may contact this address about abuse, so set your own.
            vapid_subject: "mailto:admin@localhost".to_owned(),
            webpush: WebPushConfig::default(),
            fcm: FcmConfig::default(),
            apns: ApnsConfig::default(),
            high_urgency_bypasses_quiet_hours: true,
            default_ttl_seconds: 3600,
            default_max_alerts_per_day: 10,
            devices_per_address_per_hour: 60,
            fanout: FanoutConfig::default(),
            presentation: PresentationConfig::default(),
        }
    }
}

/// The fan-out's pacing (`[push.fanout]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FanoutConfig {
    /// Devices per leased batch: bigger batches mean fewer database round trips per device;
    /// a crashed notifier may resend at most one batch per worker (what it had sent but not yet
    /// recorded).
    pub batch_size: u64,
    /// Seconds a batch lease lasts unless renewed (renewed every third of it); a crashed
    /// notifier's batch is taken over this long after its last renewal.
    pub lease_seconds: u64,
    /// Milliseconds between polls of an empty queue.
    pub idle_poll_ms: u64,
    /// Deliveries of one batch in flight at once (each sender also has its own limit).
    pub concurrency: usize,
    /// First retry delay in milliseconds; doubled per attempt, with jitter.
    pub retry_base_ms: u64,
    /// Longest retry delay in seconds (a push service's `Retry-After` may ask for more).
    pub retry_max_seconds: u64,
    /// Outcomes written to the database per statement.
    pub record_chunk: usize,
    /// Batches one notifier process works on at once: while one batch's tail drains or its
    /// outcomes are written, another's deliveries are in flight.
    pub workers: usize,
    /// How long a batch waits for one delivery's first attempt, in milliseconds. A push service
    /// that has not answered by then (or answers 429/5xx) gets the device again from the retry
    /// queue, so a slow endpoint never holds its batch or the alerts after it.
    pub first_attempt_timeout_ms: u64,
    /// Consecutive transient failures (timeouts, 429, 5xx) from one push-service origin after
    /// which its circuit opens: its deliveries go straight to the retry queue for a while.
    pub breaker_failures: u32,
    /// How long an origin's circuit stays open the first time, in seconds; doubled each time
    /// it opens again in a row, up to `retry_max_seconds`.
    pub breaker_cooldown_seconds: u64,
}

impl Default for FanoutConfig {
    fn default() -> Self {
        Self {
            batch_size: 2000,
            lease_seconds: 30,
            idle_poll_ms: 200,
            concurrency: 256,
            retry_base_ms: 500,
            retry_max_seconds: 60,
            record_chunk: 500,
            workers: 4,
            first_attempt_timeout_ms: 3000,
            breaker_failures: 8,
            breaker_cooldown_seconds: 5,
        }
    }
}

/// Web Push sender settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebPushConfig {
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Whole-request timeout in seconds.
    pub timeout_seconds: u64,
    /// The push services browsers' subscriptions may point at, as origins (`https://host`,
    /// `https://*.host` for any subdomain, a port when not 443). Checked when a device
    /// registers and again before every send; lifted by `push.allow_insecure_endpoints`.
    pub allowed_origins: Vec<OriginPattern>,
}

/// The browsers' push services: Chrome and other Chromium builds (FCM), Firefox (Mozilla
/// autopush), Safari (Apple) and Edge (Windows Push Notification Services).
pub const BROWSER_PUSH_SERVICES: &[&str] = &[
    "https://fcm.googleapis.com",
    "https://updates.push.services.mozilla.com",
    "https://*.push.services.mozilla.com",
    "https://web.push.apple.com",
    "https://*.push.apple.com",
    "https://*.notify.windows.com",
];

impl Default for WebPushConfig {
    fn default() -> Self {
        Self {
            concurrency: 256,
            timeout_seconds: 10,
            allowed_origins: BROWSER_PUSH_SERVICES
                .iter()
                .filter_map(|origin| OriginPattern::parse(origin).ok())
                .collect(),
        }
    }
}

/// One allowed push-service origin: a scheme, a host or every subdomain of one, and a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OriginPattern {
    https: bool,
    host: String,
    any_subdomain: bool,
    port: u16,
}

impl OriginPattern {
    /// Parses `https://host`, `https://*.host` or either with `:port` (a trailing `/` is
    /// allowed; no path, query, credentials or other wildcard).
    pub fn parse(text: &str) -> Result<Self, String> {
        let invalid = |why: &str| format!("invalid push origin {text:?}: {why}");
        let (any_subdomain, url_text) = match text.split_once("://*.") {
            Some((scheme, rest)) => (true, format!("{scheme}://{rest}")),
            None => (false, text.to_owned()),
        };
        let url = url::Url::parse(&url_text).map_err(|e| invalid(&e.to_string()))?;
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            _ => return Err(invalid("the scheme must be https or http")),
        };
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(invalid("an origin has no path, query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("an origin has no credentials"));
        }
        let host = url
            .host_str()
            .filter(|h| !h.is_empty() && !h.contains('*'))
            .ok_or_else(|| invalid("name a host, or `*.` and a domain"))?
            .trim_end_matches('.')
            .to_owned();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| invalid("no port"))?;
        Ok(Self {
            https,
            host,
            any_subdomain,
            port,
        })
    }

    /// Whether `url` is on this origin (for `*.`, on any subdomain of the domain).
    pub fn matches(&self, url: &url::Url) -> bool {
        let scheme_ok = if self.https {
            url.scheme() == "https"
        } else {
            url.scheme() == "http"
        };
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.trim_end_matches('.');
        let host_ok = if self.any_subdomain {
            host.len() > self.host.len() + 1
                && host.ends_with(self.host.as_str())
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        };
        scheme_ok && host_ok && url.port_or_known_default() == Some(self.port)
    }
}

impl TryFrom<String> for OriginPattern {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        Self::parse(&text)
    }
}

impl From<OriginPattern> for String {
    fn from(origin: OriginPattern) -> String {
        origin.to_string()
    }
}

impl std::fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (scheme, default_port) = if self.https {
            ("https", 443)
        } else {
            ("http", 80)
        };
        let wildcard = if self.any_subdomain { "*." } else { "" };
        write!(f, "{scheme}://{wildcard}{}", self.host)?;
        if self.port != default_port {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

impl PushConfig {
    /// Whether Web Push may send to `endpoint`: its origin is in
    /// `push.webpush.allowed_origins`, or `push.allow_insecure_endpoints` lifts the list.
    pub fn allows_webpush_endpoint(&self, endpoint: &url::Url) -> bool {
        self.allow_insecure_endpoints
            || self
                .webpush
                .allowed_origins
                .iter()
                .any(|origin| origin.matches(endpoint))
    }
}

impl WebPushConfig {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }
}

/// FCM HTTP v1 sender settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FcmConfig {
    /// Whether Android devices are sent to.
    pub enabled: bool,
    /// FCM API base URL (`/v1/projects/{id}/messages:send` is appended).
    pub base_url: String,
    /// OAuth 2.0 token endpoint; also the JWT audience. Overrides the service account's `token_uri`.
    pub token_url: String,
    /// Path to the Google service-account JSON key file.
    pub service_account_file: Option<PathBuf>,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Whole-request timeout in seconds.
    pub timeout_seconds: u64,
}

impl Default for FcmConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            base_url: "https://fcm.googleapis.com".to_owned(),
            token_url: "https://oauth2.googleapis.com/token".to_owned(),
            service_account_file: None,
            concurrency: 256,
            timeout_seconds: 10,
        }
    }
}

impl FcmConfig {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }
}

/// APNs provider API sender settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApnsConfig {
    /// Whether iOS devices are sent to.
    pub enabled: bool,
    /// Base URL for production devices.
    pub production_url: String,
    /// Base URL for development (sandbox) devices.
    pub sandbox_url: String,
    /// Path to the `.p8` token-signing key (PKCS#8 EC PEM).
    pub key_file: Option<PathBuf>,
    /// The signing key's 10-character key id.
    pub key_id: String,
    /// The Apple developer team id.
    pub team_id: String,
    /// The app's bundle id, sent as `apns-topic`.
    pub topic: String,
    /// Most requests in flight at once.
    pub concurrency: usize,
    /// Whole-request timeout in seconds.
    pub timeout_seconds: u64,
}

impl Default for ApnsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            production_url: "https://api.push.apple.com".to_owned(),
            sandbox_url: "https://api.sandbox.push.apple.com".to_owned(),
            key_file: None,
            key_id: String::new(),
            team_id: String::new(),
            topic: String::new(),
            concurrency: 256,
            timeout_seconds: 10,
        }
    }
}

impl ApnsConfig {
    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_gives_defaults() {
        let config: PushConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, PushConfig::default());
        assert_eq!(config.webpush.concurrency, 256);
        assert_eq!(config.fcm.base_url, "https://fcm.googleapis.com");
        assert_eq!(
            config.apns.sandbox_url,
            "https://api.sandbox.push.apple.com"
        );
        assert!(config.high_urgency_bypasses_quiet_hours);
    }

    #[test]
    fn the_browser_push_services_are_allowed_and_nothing_else() {
        let config = PushConfig::default();
        assert_eq!(
            config.webpush.allowed_origins.len(),
            BROWSER_PUSH_SERVICES.len()
        );
        let table: &[(&str, bool)] = &[
            ("https://fcm.googleapis.com/fcm/send/dGVzdA:APA91b", true),
            ("https://FCM.googleapis.com./fcm/send/x", true),
            ("https://fcm.googleapis.com:443/fcm/send/x", true),
            (
                "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
                true,
            ),
            ("https://push.services.mozilla.com/wpush/v2/x", false),
            ("https://web.push.apple.com/QGuQyavXutnMH", true),
            ("https://api.push.apple.com/3/device/x", true),
            (
                "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
                true,
            ),
            ("https://notify.windows.com/w/", false),
            ("http://fcm.googleapis.com/fcm/send/x", false),
            ("https://fcm.googleapis.com:8443/fcm/send/x", false),
            ("https://fcm.googleapis.com.evil.example/fcm/send/x", false),
            ("https://evilnotify.windows.com/w/", false),
            ("https://xnotify.windows.com/w/", false),
            ("https://push.example.com/x", false),
            ("https://127.0.0.1/x", false),
        ];
        for (endpoint, allowed) in table {
            let url = url::Url::parse(endpoint).unwrap();
            assert_eq!(config.allows_webpush_endpoint(&url), *allowed, "{endpoint}");
        }
        let lifted = PushConfig {
            allow_insecure_endpoints: true,
            ..PushConfig::default()
        };
        assert!(lifted.allows_webpush_endpoint(&url::Url::parse("http://127.0.0.1:9/x").unwrap()));
    }

    #[test]
    fn origin_patterns_parse_and_print_back() {
        for text in [
            "https://fcm.googleapis.com",
            "https://*.notify.windows.com",
            "https://push.example.com:8443",
            "http://127.0.0.1:9000",
        ] {
            assert_eq!(OriginPattern::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            OriginPattern::parse("https://Push.Example.com/")
                .unwrap()
                .to_string(),
            "https://push.example.com"
        );
        for bad in [
            "fcm.googleapis.com",
            "ftp://push.example.com",
            "https://push.example.com/path",
            "https://push.example.com/?q",
            "https://user@push.example.com",
            "https://*",
            "https://*.*.example.com",
            "https://push.*.example.com",
        ] {
            assert!(OriginPattern::parse(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<PushConfig>(
            r#"{"webpush": {"allowed_origins": ["https://push.example.com/path"]}}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("invalid push origin"), "{err}");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<PushConfig>(r#"{"fcm": {"enabld": true}}"#);
        assert!(err.is_err());
    }
}
