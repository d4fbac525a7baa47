#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The routes the newsroom console needs beyond SPEC §3's: the audience estimate (checked
//! against what the fan-out then really does), the alert history, opens over time, the
//! newsroom's stories with their breaking marks, and pausing a source.

use herald_notifier::fakes::FakeWebPush;
use herald_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

struct Room {
    app: TestApp,
    push: FakeWebPush,
    editor: String,
    editor_email: String,
}

impl Room {
    async fn start() -> Self {
        let push = FakeWebPush::start().await.unwrap();
        let app = TestApp::spawn_with(|config| {
            config.push.webpush.timeout_seconds = 2;
        })
        .await;
        let editor = herald_tests::newsroom::editor(&app).await;
        Self {
            app,
            push,
            editor: editor.token,
            editor_email: editor.email,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        self.app.call(method, path, token, body).await
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let response = self.call(method, path, &self.editor, body).await;
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// An anonymous reader following `topic` with one browser: their access token.
    async fn reader(&self, topic: &str) -> String {
        let token = self.app.reader_following(topic).await;
        let sub = self.push.new_subscription().unwrap();
        let device = json!({
            "platform": "web",
            "subscription": sub.browser_json(),
            "timezone": "UTC"
        });
        let registered = self
            .call(Method::POST, "/v1/devices", &token, Some(device))
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
        token
    }

    async fn preferences(&self, token: &str, prefs: Value) {
        let put = self
            .call(Method::PUT, "/v1/me/preferences", token, Some(prefs))
            .await;
        assert_eq!(
            put.status(),
            StatusCode::OK,
            "{}",
            put.text().await.unwrap()
        );
    }

    async fn send(&self, alert: Value) -> String {
        let body = self
            .json(Method::POST, "/v1/admin/alerts", Some(alert))
            .await;
        body["id"].as_str().unwrap().to_string()
    }

    async fn finished(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let status = self
                .json(Method::GET, &format!("/v1/admin/alerts/{id}"), None)
                .await;
            if !matches!(status["state"].as_str(), Some("queued" | "sending")) {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "alert still {status}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn estimate(&self, body: Value) -> Value {
        self.json(Method::POST, "/v1/admin/alerts/estimate", Some(body))
            .await
    }
}

/// A stored story in `world` told by two publishers: its id.
async fn story(db: &herald_store::Db, headline: &str) -> uuid::Uuid {
    herald_tests::newsroom::story_with_two_articles(db, headline)
        .await
        .0
}

fn counts(estimate: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |v: &Value| v.as_u64().unwrap();
    (
        n(&estimate["targeted"]),
        n(&estimate["would_send"]),
        n(&estimate["skipped"]["quiet_hours"]),
        n(&estimate["skipped"]["daily_cap"]),
        n(&estimate["skipped"]["duplicate"]),
    )
}

fn outcome(status: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |v: &Value| v.as_u64().unwrap();
    (
        n(&status["targeted"]),
        n(&status["sent"]),
        n(&status["skipped"]["quiet_hours"]),
        n(&status["skipped"]["daily_cap"]),
        n(&status["skipped"]["duplicate"]),
    )
}

#[tokio::test]
async fn the_estimate_is_what_the_fan_out_then_does() {
    let room = Room::start().await;
    let db = room.app.db.connect().await;
    let mut readers = Vec::new();
    for _ in 0..6 {
        readers.push(room.reader("world").await);
    }
    room.reader("business").await; // follows another topic: not in the audience
    let all_day = json!({"timezone": "UTC", "quiet_hours": {"start": "00:00", "end": "23:59"}, "max_alerts_per_day": 10});
    room.preferences(&readers[0], all_day.clone()).await;
    room.preferences(&readers[1], all_day).await;
    room.preferences(
        &readers[2],
        json!({"timezone": "Asia/Kolkata", "quiet_hours": null, "max_alerts_per_day": 0}),
    )
    .await;
    let story = story(&db, "Ceasefire agreed").await;

    let first = room.estimate(json!({"story_id": story})).await;
    assert_eq!(first["topics"], json!(["world"]), "topics from the story");
    assert_eq!(counts(&first), (6, 3, 2, 1, 0));
    // High urgency passes quiet hours (push.high_urgency_bypasses_quiet_hours), not the cap.
    let high = room
        .estimate(json!({"story_id": story, "urgency": "high"}))
        .await;
    assert_eq!(counts(&high), (6, 5, 0, 1, 0));

    let id = room.send(json!({"story_id": story})).await;
    let done = room.finished(&id).await;
    assert_eq!(done["state"], "done");
    assert_eq!(outcome(&done), counts(&first), "estimate {first} vs {done}");

    // The same story again: those who got it are duplicates now, and so it goes.
    let again = room.estimate(json!({"story_id": story})).await;
    assert_eq!(counts(&again), (6, 0, 2, 1, 3));
    let id = room.send(json!({"story_id": story})).await;
    let done = room.finished(&id).await;
    assert_eq!(outcome(&done), counts(&again), "estimate {again} vs {done}");

    // Topics given explicitly; nothing queued by estimating.
    let alerts = herald_store::alerts::count(&db).await.unwrap();
    let business = room.estimate(json!({"topics": ["business"]})).await;
    assert_eq!(counts(&business), (1, 1, 0, 0, 0));
    assert_eq!(herald_store::alerts::count(&db).await.unwrap(), alerts);

    // Refusals: no topics, unknown topic, unknown story, no token, a reader.
    let none = room
        .call(
            Method::POST,
            "/v1/admin/alerts/estimate",
            &room.editor,
            Some(json!({})),
        )
        .await;
    assert_eq!(none.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = room
        .call(
            Method::POST,
            "/v1/admin/alerts/estimate",
            &room.editor,
            Some(json!({"topics": ["nope"]})),
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let missing = room
        .call(
            Method::POST,
            "/v1/admin/alerts/estimate",
            &room.editor,
            Some(json!({"story_id": uuid::Uuid::now_v7()})),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let anonymous = room
        .app
        .post_json("/v1/admin/alerts/estimate", &json!({"topics": ["world"]}))
        .await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let reader = room
        .call(
            Method::POST,
            "/v1/admin/alerts/estimate",
            &readers[3],
            Some(json!({"topics": ["world"]})),
        )
        .await;
    assert_eq!(reader.status(), StatusCode::FORBIDDEN);
    drop(db);
    room.app.stop().await.unwrap();
}

#[tokio::test]
async fn history_lists_every_alert_newest_first_with_who_sent_it_in_pages() {
    let room = Room::start().await;
    let reader = room.reader("world").await;
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(
            room.send(json!({
                "title": format!("Alert {i}"),
                "url": format!("https://herald.example/{i}"),
                "topics": ["world"],
            }))
            .await,
        );
    }
    for id in &sent {
        room.finished(id).await;
    }
    let first = room
        .json(Method::GET, "/v1/admin/alerts?limit=2", None)
        .await;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], sent[2].as_str(), "newest first");
    assert_eq!(items[1]["id"], sent[1].as_str());
    assert_eq!(items[0]["title"], "Alert 2");
    assert_eq!(items[0]["sent_by"]["email"], room.editor_email.as_str());
    assert_eq!(items[0]["trigger"], "editor");
    assert_eq!(items[0]["state"], "done");
    assert_eq!(items[0]["targeted"], 1);
    assert_eq!(items[0]["sent"], 1);
    assert_eq!(items[0]["opened"], 0);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = room
        .json(
            Method::GET,
            &format!("/v1/admin/alerts?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    let items = second["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], sent[0].as_str());
    assert!(second["next_cursor"].is_null());

    let bad = room
        .call(
            Method::GET,
            "/v1/admin/alerts?cursor=forged",
            &room.editor,
            None,
        )
        .await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let zero = room
        .call(Method::GET, "/v1/admin/alerts?limit=0", &room.editor, None)
        .await;
    assert_eq!(zero.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let forbidden = room
        .call(Method::GET, "/v1/admin/alerts", &reader, None)
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    room.app.stop().await.unwrap();
}

#[tokio::test]
async fn opens_over_time_count_each_reader_once() {
    let room = Room::start().await;
    let mut readers = Vec::new();
    for _ in 0..3 {
        readers.push(room.reader("world").await);
    }
    let id = room
        .send(json!({"title": "Opened?", "url": "https://herald.example/o", "topics": ["world"]}))
        .await;
    assert_eq!(room.finished(&id).await["sent"], 3);
    for token in &readers[..2] {
        let opened = room
            .call(
                Method::POST,
                &format!("/v1/alerts/{id}/opened"),
                token,
                None,
            )
            .await;
        assert!(opened.status().is_success(), "{}", opened.status());
    }
    // Tapping twice is still one reader.
    room.call(
        Method::POST,
        &format!("/v1/alerts/{id}/opened"),
        &readers[0],
        None,
    )
    .await;
    let opens = room
        .json(Method::GET, &format!("/v1/admin/alerts/{id}/opens"), None)
        .await;
    assert_eq!(opens["sent"], 3);
    assert_eq!(opens["opened"], 2);
    let rate = opens["open_rate"].as_f64().unwrap();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    let points = opens["points"].as_array().unwrap();
    assert!(!points.is_empty() && points.len() <= 61, "{}", points.len());
    let series: Vec<u64> = points
        .iter()
        .map(|p| p["opened"].as_u64().unwrap())
        .collect();
    assert!(series.windows(2).all(|w| w[0] <= w[1]), "cumulative");
    assert_eq!(*series.last().unwrap(), 2);

    let unknown = room
        .call(
            Method::GET,
            &format!("/v1/admin/alerts/{}/opens", uuid::Uuid::now_v7()),
            &room.editor,
            None,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    room.app.stop().await.unwrap();
}

#[tokio::test]
async fn newsroom_stories_are_marked_near_breaking_and_alerted_and_answer_304() {
    let room = Room::start().await;
    let db = room.app.db.connect().await;
    let near = story(&db, "Summit talks resume").await;
    let list = room
        .call(Method::GET, "/v1/admin/stories", &room.editor, None)
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    let etag = list.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(list.headers()["cache-control"], "private, no-cache");
    let body: Value = list.json().await.unwrap();
    let item = &body["items"][0];
    assert_eq!(item["id"], near.to_string());
    assert_eq!(item["source_count"], 2);
    // The test catalogue's `world` breaks at three publishers: two is one short.
    assert_eq!(item["min_sources"], 3);
    assert_eq!(item["publishers_in_window"], 2);
    assert_eq!(item["window_minutes"], 120);
    assert_eq!(item["near_breaking"], true);
    assert_eq!(item["alerted"], false);
    assert_eq!(item["breaking"], false);

    let again = room
        .app
        .client
        .get(room.app.url("/v1/admin/stories"))
        .bearer_auth(&room.editor)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);

    let id = room.send(json!({"story_id": near})).await;
    room.finished(&id).await;
    let changed = room
        .app
        .client
        .get(room.app.url("/v1/admin/stories"))
        .bearer_auth(&room.editor)
        .header("If-None-Match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK, "alerted: a new ETag");
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["items"][0]["alerted"], true);

    let found = room
        .json(Method::GET, "/v1/admin/stories?q=SUMMIT", None)
        .await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    let none = room
        .json(Method::GET, "/v1/admin/stories?q=volcano", None)
        .await;
    assert!(none["items"].as_array().unwrap().is_empty());
    let other = room
        .json(Method::GET, "/v1/admin/stories?topic=business", None)
        .await;
    assert!(other["items"].as_array().unwrap().is_empty());
    let unknown = room
        .call(
            Method::GET,
            "/v1/admin/stories?topic=nope",
            &room.editor,
            None,
        )
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let anonymous = room.app.get("/v1/admin/stories").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    drop(db);
    room.app.stop().await.unwrap();
}

#[tokio::test]
async fn a_paused_source_is_not_fetched_until_resumed_and_items_per_day_are_counted() {
    let room = Room::start().await;
    let db = room.app.db.connect().await;
    story(&db, "Harbour reopens").await;
    let created = room
        .json(
            Method::POST,
            "/v1/admin/sources",
            Some(json!({"name": "Paused Post", "url": "https://paused.example/feed.xml", "topics": ["world"]})),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["health"]["paused"], false);

    let paused = room
        .json(
            Method::PATCH,
            &format!("/v1/admin/sources/{id}"),
            Some(json!({"paused": true})),
        )
        .await;
    assert_eq!(paused["health"]["paused"], true);
    // The scheduler never leases it, however late it is asked.
    let later = chrono::Utc::now() + chrono::Duration::days(365);
    let due = herald_store::sources::lease_due(&db, "probe", later, 1000, Duration::from_secs(1))
        .await
        .unwrap();
    assert!(due.iter().all(|s| s.id.to_string() != id), "paused but due");

    let resumed = room
        .json(
            Method::PATCH,
            &format!("/v1/admin/sources/{id}"),
            Some(json!({"paused": false, "topics": ["world", "business"]})),
        )
        .await;
    assert_eq!(resumed["health"]["paused"], false);
    assert_eq!(resumed["topics"], json!(["world", "business"]));
    let next =
        chrono::DateTime::parse_from_rfc3339(resumed["health"]["next_fetch_at"].as_str().unwrap())
            .unwrap();
    assert!(
        next <= chrono::Utc::now() + chrono::Duration::seconds(1),
        "due at once"
    );

    let list = room.json(Method::GET, "/v1/admin/sources", None).await;
    let per_day: Vec<f64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["health"]["items_per_day"].as_f64().unwrap())
        .collect();
    assert!(
        per_day.iter().filter(|n| **n > 0.0).count() >= 2,
        "{per_day:?}"
    );

    let missing = room
        .call(
            Method::PATCH,
            &format!("/v1/admin/sources/{}", uuid::Uuid::now_v7()),
            &room.editor,
            Some(json!({"paused": true})),
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    drop(db);
    room.app.stop().await.unwrap();
}

/// The estimate reads the audience a page (2,000 devices) at a time: over 5,000 devices every
/// page counts, once. It also prints how long each estimate took (`-- --nocapture`), the
/// figure docs/BENCHMARKS.md and the console's notes quote; the test does not judge it.
#[tokio::test]
async fn the_estimate_counts_an_audience_of_several_pages() {
    use herald_store::devices::{self, DeviceAddress, NewDevice};
    let room = Room::start().await;
    let db = room.app.db.connect().await;
    let n = 5_000;
    for i in 0..n {
        let user_id = herald_tests::newsroom::stored_follower(&db, "world").await;
        devices::register(
            &db,
            NewDevice {
                user_id,
                address: DeviceAddress::Fcm {
                    token: format!("token-{i}"),
                },
                locale: None,
                timezone: None,
            },
            20,
        )
        .await
        .unwrap();
    }
    let story = story(&db, "Measured").await;
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let estimate = room.estimate(json!({"story_id": story})).await;
        times.push(start.elapsed());
        assert_eq!(estimate["targeted"], n, "{estimate}");
        assert_eq!(estimate["would_send"], n, "{estimate}");
    }
    times.sort();
    println!(
        "estimate over {n} devices: median {:?}, min {:?}, max {:?}",
        times[2], times[0], times[4]
    );
    drop(db);
    room.app.stop().await.unwrap();
}
