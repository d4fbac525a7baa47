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
}

impl Default for WebPushConfig {
    fn default() -> Self {
        Self {
            concurrency: 256,
            timeout_seconds: 10,
        }
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
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<PushConfig>(r#"{"fcm": {"enabld": true}}"#);
        assert!(err.is_err());
    }
}
