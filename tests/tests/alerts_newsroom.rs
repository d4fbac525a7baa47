#![allow(clippy::unwrap_used, clippy::expect_used)]
//! What newsrooms ask of alerts, end to end against the local push services: an update that
//! replaces the notification shown (same Web Push `Topic` and tag, FCM tag and collapse key,
//! APNs collapse id), a retraction, rich presentation, scheduled, local-time and test sends,
//! and the analytics an editor reads.

use herald_tests::newsroom::{Newsroom, Phones, alert, story_with_two_articles};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);
const APNS_TOKEN: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn finished(status: &Value) -> bool {
    !matches!(
        status["state"].as_str(),
        Some("scheduled" | "queued" | "sending")
    ) && status["replacing"] == 0
}

async fn story(room: &Newsroom) -> String {
    let db = room.app.db.connect().await;
    story_with_two_articles(&db, "Ceasefire agreed")
        .await
        .0
        .to_string()
}

async fn inbox(room: &Newsroom, reader: &str) -> Vec<Value> {
    let body: Value = room
        .call(Method::GET, "/v1/me/alerts", reader, None)
        .await
        .json()
        .await
        .unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_update_replaces_what_every_platform_shows_quietly_and_outside_the_cap() {
    let phones = Phones::start().await;
    let room = Newsroom::start_with(|config| phones.configure(config)).await;
    let web_reader = room.reader("world").await;
    let browser = room.browser(&web_reader).await;
    // One alert a day: the update must not count against it.
    let capped = room
        .call(
            Method::PUT,
            "/v1/me/preferences",
            &web_reader,
            Some(json!({"timezone": "UTC", "max_alerts_per_day": 1})),
        )
        .await;
    assert!(capped.status().is_success());
    let android = room.reader("world").await;
    room.android(&android, "fcm-token-1").await;
    let ios = room.reader("world").await;
    room.iphone(&ios, APNS_TOKEN).await;

    let mut request = alert("Earthquake strikes the coast");
    request["story_id"] = json!(story(&room).await);
    request["body"] = json!("At least 3 dead");
    let id = room.send(request).await;
    let status = room.until(&id, WAIT, finished).await;
    assert_eq!(status["sent"], 3, "{status}");

    let patched = room
        .update(&id, json!({"body": "Death toll rises to 12"}))
        .await;
    assert_eq!(patched["version"], 2);
    let status = room
        .until(&id, WAIT, |s| {
            finished(s) && s["versions"][1]["replaced"] == 3
        })
        .await;
    assert_eq!(
        status["sent"], 3,
        "an update is not a new delivery: {status}"
    );
    let versions = status["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0]["kind"], "original");
    assert_eq!(versions[0]["showing"], 0);
    assert_eq!(versions[1]["kind"], "update");
    assert_eq!(versions[1]["showing"], 3);
    assert_eq!(versions[1]["silent"], true);

    // Web Push: the same Topic and tag, the new text, silent.
    let pushes = room.push.received_for(&browser.id);
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0].header("topic"), pushes[1].header("topic"));
    let (first, second): (Value, Value) =
        (pushes[0].payload().unwrap(), pushes[1].payload().unwrap());
    assert_eq!(first["tag"], second["tag"]);
    assert_eq!(second["body"], "Death toll rises to 12");
    assert_eq!(
        (first["version"].clone(), second["version"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(
        (first["silent"].clone(), second["silent"].clone()),
        (json!(false), json!(true))
    );

    // FCM: the same tag and collapse key, low priority for the update.
    let messages = phones.fcm.messages();
    assert_eq!(messages.len(), 2);
    let (a, b) = (&messages[0].body["message"], &messages[1].body["message"]);
    assert_eq!(
        a["android"]["notification"]["tag"],
        b["android"]["notification"]["tag"]
    );
    assert_eq!(a["android"]["collapse_key"], b["android"]["collapse_key"]);
    assert!(a["android"]["notification"]["notification_priority"].is_null());
    assert_eq!(
        b["android"]["notification"]["notification_priority"],
        "PRIORITY_LOW"
    );
    assert_eq!(messages[1].data("version"), Some("2"));

    // APNs: the same collapse id, no sound, passive.
    let notes = phones.apns.received();
    assert_eq!(notes.len(), 2);
    assert_eq!(
        notes[0].header("apns-collapse-id"),
        notes[1].header("apns-collapse-id")
    );
    assert_eq!(notes[0].body["aps"]["sound"], "default");
    assert!(notes[1].body["aps"].get("sound").is_none());
    assert_eq!(notes[1].body["aps"]["interruption-level"], "passive");
    assert_eq!(
        notes[0].body["aps"]["thread-id"],
        notes[1].body["aps"]["thread-id"]
    );

    // The inbox shows the latest version; the capped reader's next alert is held by the cap.
    let items = inbox(&room, &web_reader).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["body"], "Death toll rises to 12");
    let next = room.send(alert("Another story")).await;
    let next = room.until(&next, WAIT, finished).await;
    assert_eq!(next["skipped"]["daily_cap"], 1, "{next}");
    assert_eq!(room.push.received_for(&browser.id).len(), 2);
}

#[tokio::test]
async fn a_retracted_alert_leaves_inboxes_and_the_notification_says_so() {
    let room = Newsroom::start().await;
    let reader = room.reader("world").await;
    let browser = room.browser(&reader).await;
    let id = room.send(alert("Minister resigns")).await;
    room.until(&id, WAIT, finished).await;
    assert_eq!(inbox(&room, &reader).await.len(), 1);

    let path = format!("/v1/admin/alerts/{id}");
    let retracted = room.call(Method::DELETE, &path, &room.editor, None).await;
    assert_eq!(retracted.status(), StatusCode::OK);
    let status = room
        .until(&id, WAIT, |s| {
            s["state"] == "retracted" && s["replacing"] == 0
        })
        .await;
    assert!(status["retracted_at"].is_string());
    assert_eq!(status["versions"][1]["kind"], "retraction");
    assert!(inbox(&room, &reader).await.is_empty());
    let pushes = room.push.received_for(&browser.id);
    assert_eq!(pushes.len(), 2);
    assert_eq!(pushes[0].header("topic"), pushes[1].header("topic"));
    let notice: Value = pushes[1].payload().unwrap();
    assert_eq!(notice["retracted"], true);
    assert_eq!(notice["silent"], true);
    assert_eq!(notice["title"], "This alert was withdrawn");

    for (method, body) in [
        (Method::DELETE, None),
        (Method::PATCH, Some(json!({"title": "Too late"}))),
    ] {
        let refused = room.call(method, &path, &room.editor, body).await;
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
    }
}

#[tokio::test]
async fn a_scheduled_alert_waits_can_be_edited_or_cancelled_and_goes_out_on_time() {
    let room = Newsroom::start().await;
    let reader = room.reader("world").await;
    let browser = room.browser(&reader).await;
    let mut request = alert("Polls close");
    request["send_at"] = json!((chrono::Utc::now() + chrono::Duration::seconds(3)).to_rfc3339());
    let answer = room
        .call(
            Method::POST,
            "/v1/admin/alerts",
            &room.editor,
            Some(request.clone()),
        )
        .await;
    assert_eq!(answer.status(), StatusCode::ACCEPTED);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(answer["state"], "scheduled");
    let id = answer["id"].as_str().unwrap().to_owned();
    let edited = room
        .update(&id, json!({"title": "Polls have closed"}))
        .await;
    assert_eq!(edited["state"], "scheduled");
    assert_eq!(edited["version"], 1, "edited in place before it is sent");
    assert!(room.push.received_for(&browser.id).is_empty());

    // A second one, cancelled while it waits, never goes out.
    let doomed = room.send(request).await;
    let cancelled = room
        .call(
            Method::DELETE,
            &format!("/v1/admin/alerts/{doomed}"),
            &room.editor,
            None,
        )
        .await;
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled["state"], "cancelled");

    let status = room.until(&id, WAIT, finished).await;
    assert_eq!(status["sent"], 1, "{status}");
    let pushes = room.push.received_for(&browser.id);
    assert_eq!(pushes.len(), 1, "the cancelled one never went out");
    let payload: Value = pushes[0].payload().unwrap();
    assert_eq!(payload["title"], "Polls have closed");
    let sent_at =
        chrono::DateTime::parse_from_rfc3339(payload["sent_at"].as_str().unwrap()).unwrap();
    let send_at =
        chrono::DateTime::parse_from_rfc3339(status["send_at"].as_str().unwrap()).unwrap();
    assert!(sent_at >= send_at, "sent {sent_at}, scheduled {send_at}");

    let past = room
        .call(
            Method::POST,
            "/v1/admin/alerts",
            &room.editor,
            Some(
                json!({"title": "x", "url": "https://herald.example/", "topics": ["world"],
                        "send_at": "2020-01-01T00:00:00Z", "deliver_in_local_time": "8am"}),
            ),
        )
        .await;
    assert_eq!(past.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let past: Value = past.json().await.unwrap();
    let fields: Vec<&str> = past["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["send_at", "deliver_in_local_time"]);
}

#[tokio::test]
async fn a_local_time_alert_waits_for_each_readers_own_clock() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let room = Newsroom::start().await;
    // Two readers an hour apart (fixed offsets, no daylight saving).
    let mut browsers = Vec::new();
    for zone in ["Etc/GMT-1", "Etc/GMT-2"] {
        let reader = room.reader("world").await;
        let browser = room.browser(&reader).await;
        let set = room
            .call(
                Method::PUT,
                "/v1/me/preferences",
                &reader,
                Some(json!({"timezone": zone})),
            )
            .await;
        assert!(set.status().is_success());
        browsers.push(browser);
    }
    // Their 07:00 is still ahead (or tomorrow): nothing may go out now.
    let mut request = alert("Your morning briefing");
    let local = (chrono::Utc::now() + chrono::Duration::hours(3))
        .format("%H:%M")
        .to_string();
    request["deliver_in_local_time"] = json!(local);
    let id = room.send(request).await;
    let status = room.until(&id, WAIT, |s| s["waiting"] == 2).await;
    assert_eq!(status["state"], "sending");
    assert_eq!(status["deliver_in_local_time"], local);
    assert!(
        browsers
            .iter()
            .all(|b| room.push.received_for(&b.id).is_empty())
    );

    // Each waits for its own local time: an hour apart.
    let db = room.app.db.connect().await;
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT due_at FROM delivery_retries WHERE kind = 'local' ORDER BY due_at",
        ))
        .await
        .unwrap();
    let due: Vec<chrono::DateTime<chrono::Utc>> = rows
        .iter()
        .map(|r| r.try_get("", "due_at").unwrap())
        .collect();
    assert_eq!(due.len(), 2);
    assert_eq!((due[1] - due[0]).num_minutes(), 60, "{due:?}");

    // When the hour comes (here: moved to now), the retry queue delivers both.
    let now = match backend {
        DbBackend::Postgres => "now()",
        _ => "strftime('%Y-%m-%d %H:%M:%f+00:00', 'now')",
    };
    db.execute_unprepared(&format!("UPDATE delivery_retries SET due_at = {now}"))
        .await
        .unwrap();
    let status = room.until(&id, WAIT, finished).await;
    assert_eq!(status["sent"], 2, "{status}");
}

#[tokio::test]
async fn a_test_send_reaches_only_the_editors_devices_and_counts_nowhere() {
    let room = Newsroom::start().await;
    let reader = room.reader("world").await;
    let readers_browser = room.browser(&reader).await;
    let none = room
        .call(
            Method::POST,
            "/v1/admin/alerts/test",
            &room.editor,
            Some(alert("Try me")),
        )
        .await;
    assert_eq!(none.status(), StatusCode::CONFLICT, "no device yet");

    let own = room.browser(&room.editor).await;
    let tested = room
        .call(
            Method::POST,
            "/v1/admin/alerts/test",
            &room.editor,
            Some(alert("Try me")),
        )
        .await;
    assert_eq!(tested.status(), StatusCode::OK);
    let tested: Value = tested.json().await.unwrap();
    assert_eq!(tested["deliveries"][0]["outcome"], "sent", "{tested}");
    assert_eq!(tested["deliveries"][0]["platform"], "web");
    let pushes = room.push.received_for(&own.id);
    assert_eq!(pushes.len(), 1, "sent at once");
    assert_eq!(pushes[0].payload::<Value>().unwrap()["title"], "Try me");
    assert!(room.push.received_for(&readers_browser.id).is_empty());
    let history: Value = room
        .call(Method::GET, "/v1/admin/alerts", &room.editor, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(history["items"].as_array().unwrap().is_empty(), "{history}");

    let mut scheduled = alert("Try me later");
    scheduled["send_at"] = json!("2030-01-01T00:00:00Z");
    let refused = room
        .call(
            Method::POST,
            "/v1/admin/alerts/test",
            &room.editor,
            Some(scheduled),
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn rich_alerts_carry_the_lead_image_and_each_platforms_presentation() {
    let phones = Phones::start().await;
    let room = Newsroom::start_with(|config| {
        phones.configure(config);
        config
            .push
            .presentation
            .android_channel
            .insert("world".into(), "world-news".into());
    })
    .await;
    let android = room.reader("world").await;
    room.android(&android, "fcm-token-2").await;
    let ios = room.reader("world").await;
    room.iphone(&ios, APNS_TOKEN).await;
    let web = room.reader("world").await;
    let browser = room.browser(&web).await;

    // Only a story: the title, link and lead image come from its newest article.
    let story = story(&room).await;
    let id = room
        .send(json!({"story_id": story, "urgency": "high", "body": "🌊".repeat(1000)}))
        .await;
    let status = room.until(&id, WAIT, finished).await;
    assert_eq!(status["sent"], 3, "{status}");

    let m = &phones.fcm.messages()[0].body["message"];
    let image = m["notification"]["image"].as_str().unwrap();
    assert!(
        image.starts_with("https://publisher1.example/story/"),
        "{image}"
    );
    assert_eq!(m["android"]["notification"]["channel_id"], "world-news");
    assert_eq!(m["android"]["notification"]["tag"], story);
    let aps = &phones.apns.received()[0].body["aps"];
    assert_eq!(aps["interruption-level"], "time-sensitive");
    assert_eq!(aps["mutable-content"], 1);
    assert_eq!(aps["thread-id"], story);
    assert_eq!(aps["relevance-score"], 1.0);
    // 4,000 bytes of body: cut at the limit, never refused by the push service.
    let payload: Value = room.push.received_for(&browser.id)[0].payload().unwrap();
    let body = payload["body"].as_str().unwrap();
    assert!(
        body.ends_with('…') && body.len() < 4000,
        "{} bytes",
        body.len()
    );
    let apns_body = phones.apns.received()[0].body["aps"]["alert"]["body"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(apns_body.ends_with('…'));

    let bad = room
        .call(
            Method::POST,
            "/v1/admin/alerts",
            &room.editor,
            Some(json!({"story_id": story, "image_url": "not a link"})),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn analytics_count_deliveries_and_opens_by_platform_topic_and_time() {
    let phones = Phones::start().await;
    let room = Newsroom::start_with(|config| phones.configure(config)).await;
    let web = room.reader("world").await;
    room.browser(&web).await;
    let android = room.reader("india").await;
    room.android(&android, "fcm-token-3").await;
    let mut request = alert("Markets fall");
    request["topics"] = json!(["world", "india"]);
    let id = room.send(request).await;
    room.until(&id, WAIT, finished).await;
    let opened = room
        .call(Method::POST, &format!("/v1/alerts/{id}/opened"), &web, None)
        .await;
    assert!(opened.status().is_success());

    let analytics: Value = room
        .call(
            Method::GET,
            &format!("/v1/admin/alerts/{id}/analytics"),
            &room.editor,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(analytics["delivered"], 2, "{analytics}");
    assert_eq!(analytics["opened"], 1);
    assert_eq!(analytics["open_rate"], 0.5);
    let slice = |list: &str, key: &str| {
        analytics[list]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {list}: {analytics}"))
    };
    assert_eq!(slice("by_platform", "web")["opened"], 1);
    assert_eq!(slice("by_platform", "android")["delivered"], 1);
    assert_eq!(slice("by_topic", "world")["open_rate"], 1.0);
    assert_eq!(slice("by_topic", "india")["opened"], 0);
    assert!(analytics["seconds_to_50_percent"].as_f64().unwrap() >= 0.0);
    assert!(analytics["seconds_to_90_percent"].as_f64().unwrap() >= 0.0);
    let buckets = analytics["opens_first_hour"].as_array().unwrap();
    assert_eq!(buckets.len(), 12);
    assert_eq!(buckets[0], 1);
    assert_eq!(analytics["bucket_seconds"], 300);
}

#[tokio::test]
async fn an_update_during_the_fan_out_reaches_everyone_once_in_its_latest_version() {
    let room = Newsroom::start_with(|config| {
        // One device a batch, and a slow push service: the update lands mid-fan-out.
        config.push.fanout.batch_size = 1;
        config.push.fanout.workers = 1;
    })
    .await;
    room.push.set_latency(Duration::from_millis(250));
    let mut browsers = Vec::new();
    for _ in 0..6 {
        let reader = room.reader("world").await;
        browsers.push(room.browser(&reader).await);
    }
    let id = room.send(alert("Storm makes landfall")).await;
    let start = std::time::Instant::now();
    while room.push.received_count() == 0 {
        assert!(start.elapsed() < WAIT, "nothing delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let patched = room
        .update(
            &id,
            json!({"title": "Storm makes landfall near the capital"}),
        )
        .await;
    assert_eq!(patched["version"], 2, "a new version once it is sending");
    let status = room
        .until(&id, WAIT, |s| {
            finished(s) && s["versions"][1]["showing"] == 6
        })
        .await;
    assert_eq!(status["sent"], 6, "{status}");
    let mut only_latest = 0;
    for browser in &browsers {
        let versions: Vec<u64> = room
            .push
            .received_for(&browser.id)
            .iter()
            .map(|p| p.payload::<Value>().unwrap()["version"].as_u64().unwrap())
            .collect();
        match versions.as_slice() {
            [2] => only_latest += 1,
            [1, 2] => {}
            other => panic!("a device got versions {other:?}"),
        }
    }
    assert!(
        only_latest > 0,
        "devices not reached yet get only the new version"
    );
}
