#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The notifier's durable queue: planning, leasing, lease takeover, completion, cancel,
//! counters, and the once-per-story claim, on SQLite and (with HERALD_TEST_DATABASE_URL)
//! PostgreSQL.

use chrono::Utc;
use herald_store::alerts;
use herald_store::devices::{self, DeviceAddress, NewDevice};
use herald_store::queue::{self, AlertState, DeliveryRecord, DeliveryStatus, NewQueuedAlert};
use herald_store::testing::TestDb;
use herald_store::topics::{self, Topic};
use herald_store::users::{self, NewUser, Role};
use herald_store::{Db, StoreError, subscriptions};
use std::collections::HashSet;
use std::time::Duration;
use uuid::Uuid;

async fn setup() -> (TestDb, Db) {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let topic = Topic {
        slug: "world".into(),
        name: "World".into(),
        description: String::new(),
        keywords: vec![],
        min_sources: 3,
        window_minutes: 60,
    };
    topics::sync(&db, &[topic]).await.unwrap();
    (test_db, db)
}

/// `n` readers following `world`, one Web Push device each; returns the device ids in order.
async fn audience(db: &Db, n: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for i in 0..n {
        let user = users::create(
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
        .unwrap();
        subscriptions::add(db, user.id, "world").await.unwrap();
        let device = devices::register(
            db,
            NewDevice {
                user_id: user.id,
                address: DeviceAddress::WebPush {
                    endpoint: format!("https://push.example/{i}"),
                    p256dh: vec![4; 65],
                    auth: vec![1; 16],
                },
                locale: None,
                timezone: None,
            },
            20,
        )
        .await
        .unwrap();
        ids.push(device.id);
    }
    ids.sort();
    ids
}

fn new_alert(story: Option<Uuid>) -> NewQueuedAlert {
    NewQueuedAlert {
        story_id: story,
        article_id: None,
        topics: vec!["world".into()],
        title: "Breaking".into(),
        body: "Something happened".into(),
        url: "https://herald.example/a".into(),
        image_url: None,
        urgency: "normal".into(),
        ttl_seconds: 3600,
        trigger: "editor".into(),
        created_by: None,
        send_at: None,
        local_time: None,
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_alert_is_planned_in_keyset_batches_and_finishes_when_all_are_done() {
    let (_t, db) = setup().await;
    let devices = audience(&db, 7).await;
    let alert = queue::enqueue(&db, new_alert(None)).await.unwrap();
    assert_eq!(alert.state, AlertState::Queued);

    let mut seen = Vec::new();
    let mut leases = Vec::new();
    while let Some(lease) = queue::lease(&db, "a", LEASE, 3).await.unwrap() {
        let targets = queue::batch_targets(&db, &lease).await.unwrap();
        assert!(targets.len() <= 3);
        seen.extend(targets.iter().map(|t| t.device.id));
        leases.push(lease);
    }
    // 3 + 3 + 1: the last page is short, so no further batch is queued.
    assert_eq!(leases.len(), 3);
    assert_eq!(seen, devices, "every device once, in keyset order");
    let counters = queue::counters(&db, alert.id).await.unwrap();
    assert_eq!(counters.targeted, 7);
    assert_eq!(counters.state, AlertState::Sending);
    assert_eq!(queue::depth(&db).await.unwrap(), 3);

    for lease in &leases[..2] {
        assert!(queue::complete(&db, lease).await.unwrap());
    }
    assert_eq!(
        queue::counters(&db, alert.id).await.unwrap().state,
        AlertState::Sending
    );
    assert!(queue::complete(&db, &leases[2]).await.unwrap());
    let done = queue::counters(&db, alert.id).await.unwrap();
    assert_eq!(done.state, AlertState::Done);
    assert!(done.finished_at.is_some());
    assert_eq!(queue::depth(&db).await.unwrap(), 0);
    // Completing twice is refused: the lease is no longer held.
    assert!(!queue::complete(&db, &leases[0]).await.unwrap());
}

#[tokio::test]
async fn an_exact_multiple_ends_with_an_empty_batch() {
    let (_t, db) = setup().await;
    audience(&db, 4).await;
    let alert = queue::enqueue(&db, new_alert(None)).await.unwrap();
    let mut leases = Vec::new();
    while let Some(lease) = queue::lease(&db, "a", LEASE, 2).await.unwrap() {
        leases.push(lease);
    }
    assert_eq!(leases.len(), 3);
    let last = &leases[2];
    assert_eq!(last.until, None);
    assert!(queue::batch_targets(&db, last).await.unwrap().is_empty());
    for lease in &leases {
        queue::complete(&db, lease).await.unwrap();
    }
    let c = queue::counters(&db, alert.id).await.unwrap();
    assert_eq!((c.state, c.targeted), (AlertState::Done, 4));
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_the_old_holder_loses_it() {
    let (_t, db) = setup().await;
    audience(&db, 2).await;
    queue::enqueue(&db, new_alert(None)).await.unwrap();
    let first = queue::lease(&db, "crashed", Duration::from_millis(200), 10)
        .await
        .unwrap()
        .unwrap();
    assert!(queue::lease(&db, "b", LEASE, 10).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = queue::lease(&db, "b", LEASE, 10).await.unwrap().unwrap();
    assert_eq!(taken.batch_id, first.batch_id);
    assert_eq!(taken.attempts, 2);
    assert_eq!(taken.until, first.until, "the plan survives the takeover");
    assert!(!queue::renew(&db, &first, LEASE).await.unwrap());
    assert!(!queue::complete(&db, &first).await.unwrap());
    assert!(queue::renew(&db, &taken, LEASE).await.unwrap());
    assert!(queue::complete(&db, &taken).await.unwrap());
}

#[tokio::test]
async fn a_released_batch_can_be_leased_at_once() {
    let (_t, db) = setup().await;
    audience(&db, 2).await;
    queue::enqueue(&db, new_alert(None)).await.unwrap();
    let lease = queue::lease(&db, "a", LEASE, 10).await.unwrap().unwrap();
    queue::release(&db, &lease).await.unwrap();
    let again = queue::lease(&db, "b", LEASE, 10).await.unwrap().unwrap();
    assert_eq!(again.batch_id, lease.batch_id);
}

#[tokio::test]
async fn cancel_stops_queued_and_leased_batches() {
    let (_t, db) = setup().await;
    audience(&db, 5).await;
    let alert = queue::enqueue(&db, new_alert(None)).await.unwrap();
    let lease = queue::lease(&db, "a", LEASE, 2).await.unwrap().unwrap();
    let counters = queue::cancel(&db, alert.id).await.unwrap();
    assert_eq!(counters.state, AlertState::Cancelled);
    assert!(queue::lease(&db, "b", LEASE, 2).await.unwrap().is_none());
    assert!(!queue::renew(&db, &lease, LEASE).await.unwrap());
    assert!(matches!(
        queue::cancel(&db, alert.id).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        queue::cancel(&db, Uuid::now_v7()).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn alerts_past_their_ttl_expire() {
    let (_t, db) = setup().await;
    audience(&db, 1).await;
    let alert = queue::enqueue(
        &db,
        NewQueuedAlert {
            ttl_seconds: 60,
            ..new_alert(None)
        },
    )
    .await
    .unwrap();
    assert_eq!(queue::expire_due(&db, Utc::now()).await.unwrap(), 0);
    let later = Utc::now() + chrono::Duration::seconds(61);
    assert_eq!(queue::expire_due(&db, later).await.unwrap(), 1);
    let c = queue::counters(&db, alert.id).await.unwrap();
    assert_eq!(c.state, AlertState::Expired);
    assert!(queue::lease(&db, "a", LEASE, 10).await.unwrap().is_none());
}

#[tokio::test]
async fn a_story_is_claimed_once_per_device_and_outcomes_count() {
    let (_t, db) = setup().await;
    let devices = audience(&db, 3).await;
    let story = Uuid::now_v7();
    let first = queue::enqueue(&db, new_alert(Some(story))).await.unwrap();
    let second = queue::enqueue(&db, new_alert(Some(story))).await.unwrap();
    let claimed = queue::claim_story(&db, &first, &devices[..2])
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    // The same alert claiming again (a takeover) keeps its claims.
    let again = queue::claim_story(&db, &first, &devices).await.unwrap();
    assert_eq!(again.len(), 3);
    assert!(
        queue::claim_story(&db, &second, &devices)
            .await
            .unwrap()
            .is_empty()
    );

    let targets = {
        let lease = queue::lease(&db, "a", LEASE, 10).await.unwrap().unwrap();
        queue::batch_targets(&db, &lease).await.unwrap()
    };
    let now = Utc::now();
    let records: Vec<DeliveryRecord> = targets
        .iter()
        .zip([
            DeliveryStatus::Sent,
            DeliveryStatus::Pruned,
            DeliveryStatus::QuietHours,
        ])
        .map(|(t, status)| DeliveryRecord {
            user_id: t.device.user_id,
            device_id: t.device.id,
            status,
            reason: None,
            attempts: 1,
            at: now,
            version: 1,
            topic: None,
        })
        .collect();
    queue::record(&db, &first, &records).await.unwrap();
    // Recording again is a no-op: one outcome per alert and device.
    queue::record(&db, &first, &records).await.unwrap();
    let c = queue::counters(&db, first.id).await.unwrap();
    assert_eq!((c.sent, c.pruned, c.skipped_quiet_hours), (1, 1, 1));
    let recorded: HashSet<Uuid> = queue::already_recorded(&db, first.id, &devices)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(recorded.len(), 3);
    let sent = queue::sent_times(&db, &devices, now - chrono::Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(sent.len(), 1);
}

#[tokio::test]
async fn concurrent_lessees_never_get_the_same_batch() {
    let (_t, db) = setup().await;
    audience(&db, 40).await;
    for _ in 0..3 {
        queue::enqueue(&db, new_alert(None)).await.unwrap();
    }
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            let owner = format!("w{worker}");
            loop {
                match queue::lease(&db, &owner, LEASE, 5).await {
                    Ok(Some(lease)) => {
                        let targets = queue::batch_targets(&db, &lease).await.unwrap();
                        got.push((
                            lease.batch_id,
                            lease.alert.id,
                            targets.iter().map(|t| t.device.id).collect::<Vec<_>>(),
                        ));
                        assert!(queue::complete(&db, &lease).await.unwrap());
                    }
                    Ok(None) => break,
                    // SQLite may report a busy database under contention; try again.
                    Err(StoreError::Other(_)) => tokio::task::yield_now().await,
                    Err(e) => panic!("{e}"),
                }
            }
            got
        }));
    }
    let mut batches = HashSet::new();
    let mut deliveries = HashSet::new();
    for task in tasks {
        for (batch, alert, devices) in task.await.unwrap() {
            assert!(batches.insert(batch), "batch {batch} leased twice");
            for device in devices {
                assert!(deliveries.insert((alert, device)), "device twice");
            }
        }
    }
    assert_eq!(deliveries.len(), 3 * 40);
}

/// `n` readers, one alert to them, and its first batch leased: the alert and the batch's targets.
async fn one_alert_leased(db: &Db, n: usize) -> (queue::QueuedAlert, Vec<devices::Target>) {
    audience(db, n).await;
    let alert = queue::enqueue(db, new_alert(Some(Uuid::now_v7())))
        .await
        .unwrap();
    let lease = queue::lease(db, "a", LEASE, 10).await.unwrap().unwrap();
    let targets = queue::batch_targets(db, &lease).await.unwrap();
    (alert, targets)
}

/// A sent outcome for `device_id` of `user_id`, now.
fn sent(user_id: Uuid, device_id: Uuid) -> DeliveryRecord {
    DeliveryRecord {
        user_id,
        device_id,
        status: DeliveryStatus::Sent,
        reason: None,
        attempts: 1,
        at: Utc::now(),
        version: 1,
        topic: None,
    }
}

#[tokio::test]
async fn deleting_a_user_or_device_reaches_their_deliveries() {
    let (_t, db) = setup().await;
    let (first, targets) = one_alert_leased(&db, 3).await;
    let [gone_user, gone_device, kept] =
        [&targets[0], &targets[1], &targets[2]].map(|t| (t.device.user_id, t.device.id));

    // Deleted while the fan-out had them in hand: their outcomes have nothing to refer to.
    users::delete(&db, gone_user.0).await.unwrap();
    devices::delete(&db, gone_device.0, gone_device.1)
        .await
        .unwrap();
    let records = [gone_user, gone_device, kept].map(|(user, device)| sent(user, device));
    queue::record(&db, &first, &records).await.unwrap();
    let c = queue::counters(&db, first.id).await.unwrap();
    assert_eq!(c.sent, 1, "{c:?}");
    let all = [gone_user.1, gone_device.1, kept.1];
    assert_eq!(
        queue::already_recorded(&db, first.id, &all).await.unwrap(),
        vec![kept.1]
    );
    assert!(
        alerts::inbox(&db, gone_user.0, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A device removed later: the reader keeps the alert in their inbox, the record loses
    // the device.
    devices::delete(&db, kept.0, kept.1).await.unwrap();
    assert_eq!(alerts::inbox(&db, kept.0, None, 10).await.unwrap().len(), 1);
    assert!(
        queue::sent_times(&db, &[kept.1], Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap()
            .is_empty()
    );
    // An account deleted later: its deliveries go with it.
    users::delete(&db, kept.0).await.unwrap();
    assert!(
        alerts::inbox(&db, kept.0, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_fanout_write_migration_goes_down_and_up_again_with_deliveries_in_place() {
    use herald_migrations::{Migrator, MigratorTrait};
    let (_t, db) = setup().await;
    let (alert, targets) = one_alert_leased(&db, 2).await;
    queue::claim_story(&db, &alert, &[targets[0].device.id])
        .await
        .unwrap();
    let record = sent(targets[0].device.user_id, targets[0].device.id);
    queue::record(&db, &alert, &[record]).await.unwrap();

    // Back to before the fan-out write migration (foreign keys again on PostgreSQL; SQLite
    // never dropped them), through every later one's down, and forward again.
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let at = names
        .iter()
        .position(|n| n == "m20261127_000040_fanout_writes_without_row_locks")
        .expect("the fan-out write migration");
    let steps = u32::try_from(names.len() - at).unwrap();
    Migrator::down(&db, Some(steps)).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    assert_eq!(queue::counters(&db, alert.id).await.unwrap().sent, 1);
    assert_eq!(
        alerts::inbox(&db, targets[0].device.user_id, None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    users::delete(&db, targets[0].device.user_id).await.unwrap();
    assert!(
        queue::already_recorded(&db, alert.id, &[targets[0].device.id])
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_scheduled_alert_starts_once_however_many_notifiers_ask() {
    let (_t, db) = setup().await;
    audience(&db, 1).await;
    let send_at = Utc::now() + chrono::Duration::milliseconds(200);
    let alert = queue::enqueue(
        &db,
        NewQueuedAlert {
            send_at: Some(send_at),
            ..new_alert(None)
        },
    )
    .await
    .unwrap();
    assert_eq!(alert.state, AlertState::Scheduled);
    assert!(
        queue::release_scheduled(&db, Utc::now())
            .await
            .unwrap()
            .is_empty(),
        "not before its time"
    );
    assert_eq!(
        queue::depth(&db).await.unwrap(),
        0,
        "no batch while it waits"
    );
    let later = send_at + chrono::Duration::seconds(1);
    let racing: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { queue::release_scheduled(&db, later).await })
        })
        .collect();
    let mut started = Vec::new();
    for race in racing {
        started.extend(race.await.unwrap().unwrap());
    }
    assert_eq!(started, vec![alert.id], "started exactly once");
    assert_eq!(queue::depth(&db).await.unwrap(), 1, "one first batch");
    assert_eq!(
        queue::alert(&db, alert.id).await.unwrap().state,
        AlertState::Queued
    );
}
