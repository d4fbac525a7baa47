//! The Web Push, FCM and APNs senders against local fakes that speak the real protocols.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone as _, Utc};
use herald_notifier::config::{OriginPattern, PushConfig};
use herald_notifier::fakes::{FakeApns, FakeFcm, FakeWebPush, Scripted};
use herald_notifier::send::{
    AlertPayload, ApnsEnvironment, ApnsKey, ApnsSender, DeliveryOutcome, FcmSender,
    FcmServiceAccount, MessageOptions, WebPushSender,
};
use herald_notifier::webpush::{Urgency, VapidKeys, VapidSigner, topic_for_story};
use url::Url;
use uuid::Uuid;

const DEVICE: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn payload() -> AlertPayload {
    AlertPayload {
        alert_id: Uuid::new_v4(),
        title: "Breaking: ünïcode “quotes” & <tags>".to_owned(),
        body: "Line one\nline two 🚀".to_owned(),
        url: "https://herald.example/articles/42?utm=push".to_owned(),
        article_id: Some(Uuid::new_v4()),
        story_id: Some(Uuid::new_v4()),
        topic: "world".to_owned(),
        image_url: Some("https://img.herald.example/42.jpg".to_owned()),
        sent_at: Utc
            .with_ymd_and_hms(2026, 3, 1, 12, 30, 15)
            .single()
            .expect("valid time"),
        version: 1,
        silent: false,
        tag: String::new(),
        retracted: false,
    }
}

fn sparse_payload() -> AlertPayload {
    AlertPayload {
        article_id: None,
        story_id: None,
        image_url: None,
        ..payload()
    }
}

/// Points at local fakes, with a short timeout so a hanging service is noticed quickly.
fn test_config() -> PushConfig {
    let mut config = PushConfig {
        allow_insecure_endpoints: true,
        vapid_subject: "mailto:push@herald.example".to_owned(),
        ..PushConfig::default()
    };
    config.webpush.timeout_seconds = 1;
    config.fcm.timeout_seconds = 1;
    config.apns.timeout_seconds = 1;
    config
}

fn opts(p: &AlertPayload) -> MessageOptions {
    MessageOptions::for_alert(p, Urgency::High, 120)
}

fn webpush_sender(config: &PushConfig) -> WebPushSender {
    let signer = VapidSigner::new(
        VapidKeys::generate().expect("keys"),
        config.vapid_subject.clone(),
    )
    .expect("signer");
    WebPushSender::new(config, signer).expect("sender")
}

fn retry_after(outcome: &DeliveryOutcome) -> Option<Duration> {
    match outcome {
        DeliveryOutcome::Retry { after, .. } => *after,
        other => panic!("expected Retry, got {other:?}"),
    }
}

fn assert_retry(outcome: &DeliveryOutcome, reason_contains: &str) {
    match outcome {
        DeliveryOutcome::Retry { reason, .. } => assert!(
            reason.contains(reason_contains),
            "{reason:?} should mention {reason_contains:?}"
        ),
        other => panic!("expected Retry, got {other:?}"),
    }
}

fn assert_failed(outcome: &DeliveryOutcome, reason_contains: &str) {
    match outcome {
        DeliveryOutcome::Failed { reason } => assert!(
            reason.contains(reason_contains),
            "{reason:?} should mention {reason_contains:?}"
        ),
        other => panic!("expected Failed, got {other:?}"),
    }
}

// ---------------------------------------------------------------- Web Push

#[tokio::test]
async fn webpush_payload_and_headers_arrive_intact() {
    let fake = FakeWebPush::start().await.unwrap();
    let sub = fake.new_subscription().unwrap();
    let sender = webpush_sender(&test_config());
    let p = payload();

    let outcome = sender.send(&sub.subscription, &p, &opts(&p)).await;
    assert_eq!(outcome, DeliveryOutcome::Sent);

    let received = fake.received_for(&sub.id);
    assert_eq!(received.len(), 1);
    let push = &received[0];
    assert_eq!(push.payload::<AlertPayload>().unwrap(), p);
    let json: serde_json::Value = push.payload().unwrap();
    let mut keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "alert_id",
            "article_id",
            "body",
            "image_url",
            "sent_at",
            "silent",
            "story_id",
            "tag",
            "title",
            "topic",
            "url",
            "version"
        ]
    );
    assert_eq!(push.header("ttl"), Some("120"));
    assert_eq!(push.header("urgency"), Some("high"));
    let story = p.story_id.unwrap().to_string();
    assert_eq!(push.header("topic"), Some(topic_for_story(&story).as_str()));
    assert_eq!(push.header("content-encoding"), Some("aes128gcm"));
    assert_eq!(push.vapid.sub, "mailto:push@herald.example");
    assert_eq!(&push.vapid.public_key, sender.signer().keys().public_key());
}

#[tokio::test]
async fn webpush_absent_fields_arrive_as_null_and_the_alert_is_its_own_topic() {
    let fake = FakeWebPush::start().await.unwrap();
    let sub = fake.new_subscription().unwrap();
    let sender = webpush_sender(&test_config());
    let p = sparse_payload();
    let o = MessageOptions::for_alert(&p, Urgency::Normal, 60);

    assert_eq!(
        sender.send(&sub.subscription, &p, &o).await,
        DeliveryOutcome::Sent
    );
    let push = &fake.received()[0];
    let json: serde_json::Value = push.payload().unwrap();
    assert!(json["image_url"].is_null() && json["story_id"].is_null());
    assert_eq!(push.payload::<AlertPayload>().unwrap(), p);
    assert_eq!(push.header("urgency"), Some("normal"));
    // No story: the alert collapses on its own id, so its later versions replace it.
    let own = topic_for_story(&p.alert_id.to_string());
    assert_eq!(push.header("topic"), Some(own.as_str()));
}

#[tokio::test]
async fn webpush_vapid_token_is_reused_for_one_origin() {
    let fake = FakeWebPush::start().await.unwrap();
    let subs = [
        fake.new_subscription().unwrap(),
        fake.new_subscription().unwrap(),
    ];
    let sender = webpush_sender(&test_config());
    let p = payload();
    for sub in subs.iter().chain(subs.iter()) {
        assert_eq!(
            sender.send(&sub.subscription, &p, &opts(&p)).await,
            DeliveryOutcome::Sent
        );
    }
    let tokens: Vec<String> = fake.received().into_iter().map(|r| r.vapid_token).collect();
    assert_eq!(tokens.len(), 4);
    assert!(!tokens[0].is_empty());
    assert!(tokens.iter().all(|t| *t == tokens[0]), "{tokens:?}");
}

#[tokio::test]
async fn webpush_outcomes() {
    let fake = FakeWebPush::start().await.unwrap();
    let sender = webpush_sender(&test_config());
    let p = payload();
    let send = |script: Vec<Scripted>| {
        let sub = fake.new_subscription().unwrap();
        fake.script(&sub.id, script);
        sub
    };

    let ok = send(vec![Scripted::status(201)]);
    let gone = send(vec![Scripted::status(410)]);
    let not_found = send(vec![Scripted::status(404)]);
    let limited = send(vec![Scripted::retry_after(429, 2), Scripted::status(201)]);
    let flaky = send(vec![
        Scripted::status(500),
        Scripted::status(500),
        Scripted::status(500),
        Scripted::status(201),
    ]);
    let bad = send(vec![Scripted::Respond {
        status: 400,
        headers: vec![],
        body: "UnsupportedThing".to_owned(),
    }]);
    let hang = send(vec![Scripted::Hang]);

    let o = opts(&p);
    assert_eq!(
        sender.send(&ok.subscription, &p, &o).await,
        DeliveryOutcome::Sent
    );
    assert_eq!(
        sender.send(&gone.subscription, &p, &o).await,
        DeliveryOutcome::Gone
    );
    assert_eq!(
        sender.send(&not_found.subscription, &p, &o).await,
        DeliveryOutcome::Gone
    );

    let first = sender.send(&limited.subscription, &p, &o).await;
    assert_eq!(retry_after(&first), Some(Duration::from_secs(2)));
    assert_eq!(
        sender.send(&limited.subscription, &p, &o).await,
        DeliveryOutcome::Sent
    );

    for _ in 0..3 {
        let outcome = sender.send(&flaky.subscription, &p, &o).await;
        assert_retry(&outcome, "500");
        assert_eq!(retry_after(&outcome), None);
    }
    assert_eq!(
        sender.send(&flaky.subscription, &p, &o).await,
        DeliveryOutcome::Sent
    );

    assert_failed(
        &sender.send(&bad.subscription, &p, &o).await,
        "UnsupportedThing",
    );

    let started = std::time::Instant::now();
    assert_retry(&sender.send(&hang.subscription, &p, &o).await, "timed out");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn webpush_fake_rejects_bad_vapid_and_bad_keys() {
    let fake = FakeWebPush::start().await.unwrap();
    let sub = fake.new_subscription().unwrap();
    let other = fake.new_subscription().unwrap();
    let sender = webpush_sender(&test_config());
    let p = payload();

    // Encrypted for another browser's keys: the fake cannot decrypt it.
    let mut wrong_keys = sub.subscription.clone();
    wrong_keys.keys = other.subscription.keys.clone();
    assert_failed(&sender.send(&wrong_keys, &p, &opts(&p)).await, "400");

    // A VAPID token for a different origin.
    let signer = VapidSigner::new(
        VapidKeys::generate().unwrap(),
        "mailto:x@herald.example".into(),
    )
    .unwrap();
    let auth = signer
        .authorization(
            &Url::parse("https://elsewhere.example/").unwrap(),
            Utc::now(),
        )
        .unwrap();
    let body = herald_notifier::webpush::encrypt(&sub.subscription.keys, b"{}").unwrap();
    let response = reqwest::Client::new()
        .post(sub.subscription.endpoint.clone())
        .header("authorization", &*auth)
        .header("ttl", "60")
        .header("content-encoding", "aes128gcm")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let rejected = fake.rejected();
    assert_eq!(rejected.len(), 2);
    assert!(fake.received().is_empty());
}

#[tokio::test]
async fn webpush_insecure_endpoints_are_refused_by_default() {
    let fake = FakeWebPush::start().await.unwrap();
    let sub = fake.new_subscription().unwrap();
    let port = fake.base_url().port().unwrap();
    let mut config = PushConfig {
        allow_insecure_endpoints: false,
        ..test_config()
    };
    // Allowed origins, so what refuses below is the address guard, not the origin list.
    config.webpush.allowed_origins = [
        format!("https://127.0.0.1:{port}"),
        format!("https://[::1]:{port}"),
        "https://169.254.169.254".to_owned(),
        format!("https://localhost:{port}"),
    ]
    .iter()
    .map(|o| OriginPattern::parse(o).unwrap())
    .collect();
    let sender = webpush_sender(&config);
    let p = payload();

    assert_failed(
        &sender.send(&sub.subscription, &p, &opts(&p)).await,
        "https is required",
    );

    for endpoint in [
        format!("https://127.0.0.1:{port}/push/{}", sub.id),
        format!("https://[::1]:{port}/push/{}", sub.id),
        format!("https://169.254.169.254/push/{}", sub.id),
        format!("https://localhost:{port}/push/{}", sub.id),
    ] {
        let mut target = sub.subscription.clone();
        target.endpoint = Url::parse(&endpoint).unwrap();
        assert_failed(
            &sender.send(&target, &p, &opts(&p)).await,
            "non-public destination",
        );
    }
    assert!(fake.received().is_empty() && fake.rejected().is_empty());
}

// ---------------------------------------------------------------- FCM

async fn fcm() -> (FakeFcm, Arc<FcmSender>) {
    let fake = FakeFcm::start().await.expect("fake FCM");
    let mut config = test_config();
    fake.configure(&mut config);
    let account = fake.service_account().expect("service account");
    let sender = FcmSender::new(&config, account).expect("FCM sender");
    (fake, Arc::new(sender))
}

#[tokio::test]
async fn fcm_message_carries_every_field_and_one_token_serves_many_sends() {
    let (fake, sender) = fcm().await;
    let p = payload();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let (sender, p) = (Arc::clone(&sender), p.clone());
        tasks.spawn(async move {
            let token = format!("device-{i}");
            sender.send(&token, &p, &opts(&p)).await
        });
    }
    while let Some(outcome) = tasks.join_next().await {
        assert_eq!(outcome.unwrap(), DeliveryOutcome::Sent);
    }
    assert_eq!(fake.token_requests(), 1, "one OAuth token for all sends");
    let messages = fake.messages();
    assert_eq!(messages.len(), 20);
    assert!(
        messages
            .iter()
            .all(|m| m.access_token == messages[0].access_token)
    );

    let m = &messages[0];
    let message = &m.body["message"];
    assert!(m.device_token.starts_with("device-"));
    assert_eq!(message["notification"]["title"], p.title.as_str());
    assert_eq!(message["notification"]["body"], p.body.as_str());
    assert_eq!(
        message["notification"]["image"],
        p.image_url.as_deref().unwrap()
    );
    assert_eq!(message["android"]["priority"], "high");
    assert_eq!(message["android"]["ttl"], "120s");
    assert_eq!(
        message["android"]["collapse_key"],
        topic_for_story(&p.story_id.unwrap().to_string()).as_str()
    );
    let data: std::collections::BTreeMap<String, String> =
        serde_json::from_value(message["data"].clone()).unwrap();
    assert_eq!(data.len(), 12);
    // FCM data values are strings: the number and the flag travel as text.
    let mut fields = serde_json::to_value(&data).unwrap();
    assert_eq!(fields["version"], "1");
    assert_eq!(fields["silent"], "false");
    fields["version"] = 1.into();
    fields["silent"] = false.into();
    let round_trip: AlertPayload = serde_json::from_value(fields).unwrap();
    assert_eq!(round_trip, p);
    assert_eq!(message["android"]["notification"]["tag"], p.tag.as_str());
    assert_eq!(message["android"]["notification"]["channel_id"], "breaking");
    assert_eq!(data["sent_at"], "2026-03-01T12:30:15Z");

    for _ in 0..3 {
        assert_eq!(
            sender.send("device-x", &p, &opts(&p)).await,
            DeliveryOutcome::Sent
        );
    }
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test]
async fn fcm_sparse_payload_omits_absent_fields() {
    let (fake, sender) = fcm().await;
    let p = sparse_payload();
    let o = MessageOptions::for_alert(&p, Urgency::Normal, 30);
    assert_eq!(sender.send("dev", &p, &o).await, DeliveryOutcome::Sent);
    let m = &fake.messages()[0];
    let message = &m.body["message"];
    assert_eq!(message["android"]["priority"], "normal");
    assert_eq!(
        message["android"]["collapse_key"],
        topic_for_story(&p.alert_id.to_string()).as_str()
    );
    assert!(message["notification"].get("image").is_none());
    assert_eq!(m.data("story_id"), None);
    assert_eq!(m.data("topic"), Some("world"));
}

#[tokio::test]
async fn fcm_outcomes() {
    let (fake, sender) = fcm().await;
    let p = payload();
    let o = opts(&p);
    fake.script("gone", [FakeFcm::unregistered()]);
    fake.script("limited", [Scripted::retry_after(429, 2)]);
    fake.script(
        "down",
        [FakeFcm::error(
            503,
            "UNAVAILABLE",
            "UNAVAILABLE",
            "try later",
        )],
    );
    fake.script(
        "invalid",
        [FakeFcm::error(
            400,
            "INVALID_ARGUMENT",
            "INVALID_ARGUMENT",
            "bad collapse key",
        )],
    );
    fake.script("hang", [Scripted::Hang]);

    assert_eq!(sender.send("gone", &p, &o).await, DeliveryOutcome::Gone);
    assert_eq!(
        retry_after(&sender.send("limited", &p, &o).await),
        Some(Duration::from_secs(2))
    );
    assert_retry(&sender.send("down", &p, &o).await, "UNAVAILABLE");
    assert_failed(
        &sender.send("invalid", &p, &o).await,
        "INVALID_ARGUMENT: bad collapse key",
    );
    assert_retry(&sender.send("hang", &p, &o).await, "timed out");
    assert_eq!(sender.send("limited", &p, &o).await, DeliveryOutcome::Sent);
}

#[tokio::test]
async fn fcm_refreshes_a_rejected_or_expiring_token() {
    let (fake, sender) = fcm().await;
    let p = payload();
    assert_eq!(sender.send("d", &p, &opts(&p)).await, DeliveryOutcome::Sent);
    fake.revoke_tokens();
    assert_eq!(sender.send("d", &p, &opts(&p)).await, DeliveryOutcome::Sent);
    assert_eq!(fake.token_requests(), 2);
    let messages = fake.messages();
    assert_eq!(messages.len(), 2, "the rejected attempt is not recorded");
    assert_ne!(messages[0].access_token, messages[1].access_token);

    // Tokens within five minutes of expiry are not reused: each send fetches a new one.
    fake.set_token_lifetime(Duration::from_secs(240));
    fake.revoke_tokens();
    for _ in 0..2 {
        assert_eq!(sender.send("d", &p, &opts(&p)).await, DeliveryOutcome::Sent);
    }
    assert_eq!(fake.token_requests(), 4);
}

#[tokio::test]
async fn fcm_sender_from_config_reads_the_key_file_and_redacts_it() {
    let fake = FakeFcm::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service-account.json");
    std::fs::write(&path, fake.service_account_json()).unwrap();
    let mut config = test_config();
    assert!(FcmSender::from_config(&config).unwrap().is_none());
    fake.configure(&mut config);
    config.fcm.service_account_file = Some(path);
    let sender = FcmSender::from_config(&config).unwrap().unwrap();
    let p = payload();
    assert_eq!(sender.send("d", &p, &opts(&p)).await, DeliveryOutcome::Sent);

    let account = FcmServiceAccount::from_json(fake.service_account_json()).unwrap();
    let debug = format!("{account:?} {sender:?}");
    assert!(!debug.contains("PRIVATE KEY"), "{debug}");
    assert!(debug.contains("[redacted]"));
}

#[tokio::test]
async fn fcm_refuses_insecure_urls_by_default() {
    let fake = FakeFcm::start().await.unwrap();
    let mut config = test_config();
    fake.configure(&mut config);
    config.allow_insecure_endpoints = false;
    let err = FcmSender::new(&config, fake.service_account().unwrap()).unwrap_err();
    assert!(err.to_string().contains("https is required"), "{err}");
}

// ---------------------------------------------------------------- APNs

async fn apns() -> (FakeApns, ApnsSender) {
    let fake = FakeApns::start().await.expect("fake APNs");
    let mut config = test_config();
    fake.configure(&mut config);
    let sender = ApnsSender::new(&config, fake.key().expect("APNs key")).expect("APNs sender");
    (fake, sender)
}

#[tokio::test]
async fn apns_notification_carries_every_field_over_http2() {
    let (fake, sender) = apns().await;
    let p = payload();
    let before = Utc::now().timestamp();
    assert_eq!(
        sender
            .send(DEVICE, ApnsEnvironment::Production, &p, &opts(&p))
            .await,
        DeliveryOutcome::Sent
    );
    let received = fake.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.version, http::Version::HTTP_2);
    assert_eq!(r.device_token, DEVICE);
    assert_eq!(r.header("apns-topic"), Some("net.herald.reader"));
    assert_eq!(r.header("apns-push-type"), Some("alert"));
    assert_eq!(r.header("apns-priority"), Some("10"));
    let expiration: i64 = r.header("apns-expiration").unwrap().parse().unwrap();
    assert!((before + 120..=Utc::now().timestamp() + 120).contains(&expiration));
    let story = p.story_id.unwrap().to_string();
    assert_eq!(
        r.header("apns-collapse-id"),
        Some(topic_for_story(&story).as_str())
    );

    let aps = &r.body["aps"];
    assert_eq!(aps["alert"]["title"], p.title.as_str());
    assert_eq!(aps["alert"]["body"], p.body.as_str());
    assert_eq!(aps["sound"], "default");
    assert_eq!(aps["mutable-content"], 1);
    let custom: AlertPayload = serde_json::from_value(r.body.clone()).unwrap();
    assert_eq!(custom, p);
}

#[tokio::test]
async fn apns_normal_priority_and_sandbox() {
    let (fake, sender) = apns().await;
    let p = sparse_payload();
    let o = MessageOptions::for_alert(&p, Urgency::Normal, 60);
    assert_eq!(
        sender.send(DEVICE, ApnsEnvironment::Sandbox, &p, &o).await,
        DeliveryOutcome::Sent
    );
    let r = &fake.received()[0];
    assert_eq!(r.header("apns-priority"), Some("5"));
    assert_eq!(
        r.header("apns-collapse-id"),
        Some(topic_for_story(&p.alert_id.to_string()).as_str())
    );
    assert!(r.body["image_url"].is_null());
    assert_eq!(
        serde_json::from_value::<AlertPayload>(r.body.clone()).unwrap(),
        p
    );
}

#[tokio::test]
async fn apns_provider_token_is_reused() {
    let (fake, sender) = apns().await;
    let p = payload();
    for _ in 0..5 {
        assert_eq!(
            sender
                .send(DEVICE, ApnsEnvironment::Production, &p, &opts(&p))
                .await,
            DeliveryOutcome::Sent
        );
    }
    let tokens: Vec<String> = fake
        .received()
        .into_iter()
        .map(|r| r.provider_token)
        .collect();
    assert_eq!(tokens.len(), 5);
    assert!(tokens.iter().all(|t| *t == tokens[0]));
}

#[tokio::test]
async fn apns_outcomes() {
    let (fake, sender) = apns().await;
    let p = payload();
    let o = opts(&p);
    let device = |n: u8| format!("{DEVICE}{n:02x}");
    fake.script(&device(1), [FakeApns::reason(410, "Unregistered")]);
    fake.script(&device(2), [FakeApns::reason(400, "BadDeviceToken")]);
    fake.script(&device(3), [Scripted::retry_after(429, 2)]);
    fake.script(&device(4), [FakeApns::reason(500, "InternalServerError")]);
    fake.script(
        &device(5),
        [FakeApns::reason(400, "DeviceTokenNotForTopic")],
    );
    fake.script(&device(6), [Scripted::Hang]);
    fake.script(&device(7), [FakeApns::reason(403, "ExpiredProviderToken")]);
    let send = |n: u8| {
        let token = device(n);
        let (sender, p, o) = (&sender, &p, &o);
        async move { sender.send(&token, ApnsEnvironment::Production, p, o).await }
    };

    assert_eq!(send(1).await, DeliveryOutcome::Gone);
    assert_eq!(send(2).await, DeliveryOutcome::Gone);
    assert_eq!(retry_after(&send(3).await), Some(Duration::from_secs(2)));
    assert_retry(&send(4).await, "InternalServerError");
    assert_failed(&send(5).await, "DeviceTokenNotForTopic");
    assert_retry(&send(6).await, "timed out");

    // An expired provider token is re-signed once and the notification goes through.
    assert_eq!(send(7).await, DeliveryOutcome::Sent);
    let for_7: Vec<_> = fake
        .received()
        .into_iter()
        .filter(|r| r.device_token == device(7))
        .collect();
    assert_eq!(for_7.len(), 2);
    assert_ne!(for_7[0].provider_token, for_7[1].provider_token);

    // Not a hex token: APNs would say BadDeviceToken, so it is not even sent.
    let before = fake.received().len();
    assert_eq!(
        sender
            .send("not/a/token", ApnsEnvironment::Production, &p, &o)
            .await,
        DeliveryOutcome::Gone
    );
    assert_eq!(fake.received().len(), before);
}

#[tokio::test]
async fn apns_sender_from_config_and_redaction() {
    let fake = FakeApns::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("AuthKey.p8");
    std::fs::write(&path, fake.p8_pem()).unwrap();
    let mut config = test_config();
    assert!(ApnsSender::from_config(&config).unwrap().is_none());
    fake.configure(&mut config);
    config.apns.key_file = Some(path);
    let sender = ApnsSender::from_config(&config).unwrap().unwrap();
    let p = payload();
    assert_eq!(
        sender
            .send(DEVICE, ApnsEnvironment::Production, &p, &opts(&p))
            .await,
        DeliveryOutcome::Sent
    );
    let key = ApnsKey::from_p8_pem(fake.p8_pem(), "K", "T").unwrap();
    let debug = format!("{key:?} {sender:?}");
    assert!(!debug.contains("PRIVATE KEY") && debug.contains("[redacted]"));
}
