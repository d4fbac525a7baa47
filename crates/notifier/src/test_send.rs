//! Test sends: a composed alert to an editor's own devices, at once, through the real senders,
//! counted nowhere (no delivery records, no story claim, no daily cap, no analytics).

use chrono::Utc;
use herald_store::devices::{Device, DeviceAddress};
use uuid::Uuid;

use crate::config::PushConfig;
use crate::draft::AlertDraft;
use crate::fanout::Senders;
use crate::send::{AlertPayload, DeliveryOutcome, MessageOptions};

/// Seconds a test message stays worth delivering.
const TEST_TTL_SECONDS: u32 = 300;

/// What a test send came to on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestDelivery {
    /// The device.
    pub device_id: Uuid,
    /// `web`, `android` or `ios`.
    pub platform: &'static str,
    /// `sent`, `failed`, `gone` (the push service no longer knows the device) or `retry` (the
    /// push service asked to try later; a test is not retried).
    pub outcome: &'static str,
    /// Why, when it was not sent.
    pub reason: Option<String>,
}

/// Sends `draft` to each of `devices` once, concurrently, and reports each outcome.
pub async fn send_test(
    senders: &Senders,
    config: &PushConfig,
    draft: &AlertDraft,
    devices: &[Device],
) -> Vec<TestDelivery> {
    // A fresh id: the test is its own notification, never replacing a real alert.
    let alert_id = Uuid::now_v7();
    let payload = AlertPayload {
        alert_id,
        title: draft.title.clone(),
        body: draft.body.clone(),
        url: draft.url.to_string(),
        article_id: draft.article_id,
        story_id: draft.story_id,
        topic: draft.topics.first().cloned().unwrap_or_default(),
        image_url: draft.image.as_ref().map(ToString::to_string),
        sent_at: Utc::now(),
        version: 1,
        silent: false,
        tag: format!("test-{alert_id}"),
        retracted: false,
    };
    let mut opts = MessageOptions::presented(
        &payload,
        draft.urgency,
        TEST_TTL_SECONDS,
        &config.presentation,
    );
    opts.collapse_key = None;
    let sends = devices.iter().map(|device| {
        let (payload, opts) = (&payload, &opts);
        async move {
            let outcome = senders.send(&device.address, payload, opts).await;
            let (outcome, reason) = match outcome {
                DeliveryOutcome::Sent => ("sent", None),
                DeliveryOutcome::Gone => (
                    "gone",
                    Some("the push service no longer knows this device".to_owned()),
                ),
                DeliveryOutcome::Failed { reason } => ("failed", Some(reason)),
                DeliveryOutcome::Retry { reason, .. } => ("retry", Some(reason)),
            };
            TestDelivery {
                device_id: device.id,
                platform: platform(&device.address),
                outcome,
                reason,
            }
        }
    });
    futures::future::join_all(sends).await
}

fn platform(address: &DeviceAddress) -> &'static str {
    match address {
        DeviceAddress::WebPush { .. } => "web",
        DeviceAddress::Fcm { .. } => "android",
        DeviceAddress::Apns { .. } => "ios",
    }
}
