#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Devices, subscriptions, preferences and the inbox, on SQLite and (with
//! HERALD_TEST_DATABASE_URL) PostgreSQL.

use chrono::{Duration, Utc};
use futures::TryStreamExt;
use herald_store::alerts;
use herald_store::devices::{self, ApnsEnvironment, DeviceAddress, NewDevice};
use herald_store::preferences::{self, Preferences, QuietHours};
use herald_store::queue::{self, DeliveryRecord, DeliveryStatus, NewQueuedAlert};
use herald_store::testing::TestDb;
use herald_store::topics::{self, Topic};
use herald_store::users::{self, NewUser, Role};
use herald_store::{Db, StoreError, subscriptions};
use uuid::Uuid;

async fn setup() -> (TestDb, Db) {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let topic = |slug: &str| Topic {
        slug: slug.into(),
        name: slug.into(),
        description: String::new(),
        keywords: vec![],
        min_sources: 3,
        window_minutes: 60,
    };
    topics::sync(&db, &[topic("world"), topic("india"), topic("business")])
        .await
        .unwrap();
    (test_db, db)
}

async fn user(db: &Db) -> Uuid {
    users::create(
        db,
        NewUser {
            email: None,
            display_name: None,
            password_hash: None,
            role: Role::Reader,
            is_anonymous: true,
        },
    )
    .await
    .unwrap()
    .id
}

fn web(endpoint: &str) -> DeviceAddress {
    DeviceAddress::WebPush {
        endpoint: endpoint.into(),
        p256dh: vec![4; 65],
        auth: vec![1; 16],
    }
}

fn new_device(user_id: Uuid, address: DeviceAddress) -> NewDevice {
    NewDevice {
        user_id,
        address,
        locale: Some("en-IN".into()),
        timezone: Some("Asia/Kolkata".into()),
    }
}

#[tokio::test]
async fn registration_is_idempotent_and_moves_the_device_to_the_caller() {
    let (_t, db) = setup().await;
    let (anon, reader) = (user(&db).await, user(&db).await);
    let first = devices::register(&db, new_device(anon, web("https://push.example/a")), 20)
        .await
        .unwrap();
    let again = devices::register(&db, new_device(anon, web("https://push.example/a")), 20)
        .await
        .unwrap();
    assert_eq!(first.id, again.id);
    assert_eq!(devices::list(&db, anon).await.unwrap().len(), 1);

    let moved = devices::register(&db, new_device(reader, web("https://push.example/a")), 20)
        .await
        .unwrap();
    assert_eq!(moved.id, first.id);
    assert!(devices::list(&db, anon).await.unwrap().is_empty());
    assert_eq!(devices::list(&db, reader).await.unwrap()[0].user_id, reader);

    // The same token on another platform is another device.
    let fcm = devices::register(
        &db,
        new_device(
            reader,
            DeviceAddress::Fcm {
                token: "tok".into(),
            },
        ),
        20,
    )
    .await
    .unwrap();
    let apns = devices::register(
        &db,
        new_device(
            reader,
            DeviceAddress::Apns {
                token: "ab".repeat(32),
                environment: ApnsEnvironment::Sandbox,
            },
        ),
        20,
    )
    .await
    .unwrap();
    assert_ne!(fcm.id, apns.id);
    assert_eq!(devices::list(&db, reader).await.unwrap().len(), 3);
}

#[tokio::test]
async fn at_most_the_limit_of_devices_per_user_oldest_dropped() {
    let (_t, db) = setup().await;
    let reader = user(&db).await;
    for i in 0..22 {
        devices::register(
            &db,
            new_device(reader, web(&format!("https://push.example/{i}"))),
            20,
        )
        .await
        .unwrap();
    }
    let kept = devices::list(&db, reader).await.unwrap();
    assert_eq!(kept.len(), 20);
    let endpoints: Vec<String> = kept
        .iter()
        .map(|d| match &d.address {
            DeviceAddress::WebPush { endpoint, .. } => endpoint.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(!endpoints.contains(&"https://push.example/0".to_string()));
    assert!(!endpoints.contains(&"https://push.example/1".to_string()));
    assert!(endpoints.contains(&"https://push.example/21".to_string()));
}

#[tokio::test]
async fn deleting_a_device_needs_its_owner() {
    let (_t, db) = setup().await;
    let (a, b) = (user(&db).await, user(&db).await);
    let device = devices::register(&db, new_device(a, web("https://push.example/x")), 20)
        .await
        .unwrap();
    assert!(matches!(
        devices::delete(&db, b, device.id).await,
        Err(StoreError::NotFound)
    ));
    devices::delete(&db, a, device.id).await.unwrap();
    assert!(devices::list(&db, a).await.unwrap().is_empty());
}

#[tokio::test]
async fn subscriptions_round_trip() {
    let (_t, db) = setup().await;
    let reader = user(&db).await;
    let list = subscriptions::replace(&db, reader, &["world".into(), "india".into()])
        .await
        .unwrap();
    assert_eq!(list, vec!["india".to_string(), "world".to_string()]);
    subscriptions::add(&db, reader, "business").await.unwrap();
    subscriptions::add(&db, reader, "business").await.unwrap();
    assert!(subscriptions::remove(&db, reader, "india").await.unwrap());
    assert!(!subscriptions::remove(&db, reader, "india").await.unwrap());
    assert_eq!(
        subscriptions::list(&db, reader).await.unwrap(),
        vec!["business".to_string(), "world".to_string()]
    );
    assert!(
        subscriptions::follows_any(&db, reader, &["world".into()])
            .await
            .unwrap()
    );
    assert!(
        !subscriptions::follows_any(&db, reader, &["india".into()])
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn the_targeted_stream_walks_followers_devices_in_pages_with_preferences() {
    let (_t, db) = setup().await;
    let mut expected = Vec::new();
    for i in 0..7 {
        let reader = user(&db).await;
        subscriptions::add(&db, reader, if i % 2 == 0 { "world" } else { "india" })
            .await
            .unwrap();
        for d in 0..2 {
            let device = devices::register(
                &db,
                new_device(reader, web(&format!("https://p.example/{i}/{d}"))),
                20,
            )
            .await
            .unwrap();
            if i % 2 == 0 {
                expected.push(device.id);
            }
        }
        if i == 0 {
            preferences::put(
                &db,
                reader,
                &Preferences {
                    timezone: "Asia/Kolkata".parse().unwrap(),
                    quiet_hours: Some(QuietHours::parse("22:00", "07:00").unwrap()),
                    max_alerts_per_day: 3,
                },
            )
            .await
            .unwrap();
        }
    }
    let dead = expected.pop().unwrap();
    devices::mark_dead(&db, dead, "410 Gone").await.unwrap();

    let pages: Vec<Vec<devices::Target>> = devices::targeted(&db, vec!["world".into()], 3)
        .try_collect()
        .await
        .unwrap();
    assert!(pages.iter().all(|p| p.len() <= 3));
    let seen: Vec<Uuid> = pages.iter().flatten().map(|t| t.device.id).collect();
    expected.sort();
    assert_eq!(
        seen, expected,
        "keyset order, no gaps, no repeats, dead skipped"
    );
    let with_prefs = pages
        .iter()
        .flatten()
        .filter(|t| t.preferences.is_some())
        .count();
    assert_eq!(with_prefs, 2, "both devices of the reader with preferences");
}

#[tokio::test]
async fn inbox_lists_sent_alerts_once_and_records_opens() {
    let (_t, db) = setup().await;
    let reader = user(&db).await;
    let other = user(&db).await;
    let phone = devices::register(&db, new_device(reader, web("https://p.example/phone")), 20)
        .await
        .unwrap();
    let laptop = devices::register(&db, new_device(reader, web("https://p.example/laptop")), 20)
        .await
        .unwrap();
    let alert = queue::enqueue(
        &db,
        NewQueuedAlert {
            story_id: Some(Uuid::now_v7()),
            article_id: None,
            topics: vec!["world".into()],
            title: "Breaking".into(),
            body: "Something happened".into(),
            url: "https://news.example/a".into(),
            image_url: None,
            urgency: "high".into(),
            ttl_seconds: 3600,
            trigger: "editor".into(),
            created_by: None,
            send_at: None,
            local_time: None,
        },
    )
    .await
    .unwrap();
    let now = Utc::now();
    let sent = |device_id| DeliveryRecord {
        user_id: reader,
        device_id,
        status: DeliveryStatus::Sent,
        reason: None,
        attempts: 1,
        at: now,
        version: 1,
        topic: None,
    };
    queue::record(&db, &alert, &[sent(phone.id), sent(laptop.id)])
        .await
        .unwrap();

    let inbox = alerts::inbox(&db, reader, None, 20).await.unwrap();
    assert_eq!(inbox.len(), 1);
    assert!(!inbox[0].opened);
    assert!(
        alerts::inbox(&db, other, None, 20)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(matches!(
        alerts::mark_opened(&db, other, alert.id).await,
        Err(StoreError::NotFound)
    ));
    alerts::mark_opened(&db, reader, alert.id).await.unwrap();
    alerts::mark_opened(&db, reader, alert.id).await.unwrap();
    assert!(alerts::inbox(&db, reader, None, 20).await.unwrap()[0].opened);

    let since = now - Duration::hours(1);
    assert_eq!(devices::sent_since(&db, phone.id, since).await.unwrap(), 1);
    assert_eq!(
        devices::sent_today(&db, laptop.id, "Asia/Kolkata".parse().unwrap(), now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        devices::sent_since(&db, phone.id, now + Duration::seconds(1))
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn deleting_a_user_removes_their_devices_subscriptions_preferences_and_deliveries() {
    let (_t, db) = setup().await;
    let reader = user(&db).await;
    let device = devices::register(&db, new_device(reader, web("https://p.example/1")), 20)
        .await
        .unwrap();
    subscriptions::add(&db, reader, "world").await.unwrap();
    preferences::put(
        &db,
        reader,
        &Preferences {
            timezone: chrono_tz::Tz::UTC,
            quiet_hours: None,
            max_alerts_per_day: 5,
        },
    )
    .await
    .unwrap();
    users::delete(&db, reader).await.unwrap();
    assert!(devices::list(&db, reader).await.unwrap().is_empty());
    assert!(subscriptions::list(&db, reader).await.unwrap().is_empty());
    assert!(preferences::get(&db, reader).await.unwrap().is_none());
    let page = devices::targeted_page(&db, &["world".into()], None, 10)
        .await
        .unwrap();
    assert!(page.iter().all(|t| t.device.id != device.id));
}
