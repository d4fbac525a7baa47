#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The newsroom console in a real Chromium (tests/browser/console.py): sign in, the demo's
//! stories, a feed added from the console gets fetched and its story appears without a reload,
//! compose with the estimate and three previews, confirm, send to a local Web Push service
//! until `done`, opens on a chart, cancel while sending, history, sources, sign out — with no
//! console error, no request to another origin, and axe-core clean on every screen, on a
//! laptop and on a phone.
//!
//! The script steers this process through a small control server: how slowly the local push
//! service answers (so that an alert is still going out when the editor cancels it) and
//! readers opening an alert (so that the chart has something to draw).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use herald_notifier::fakes::FakeWebPush;
use herald_store::Db;
use herald_store::devices::{self, DeviceAddress, NewDevice};
use herald_store::preferences::{self, Preferences, QuietHours};
use herald_store::users::Role;
use herald_tests::TestApp;
use herald_tests::browser;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "a long and unusual passphrase 42";
/// Readers following `world` with a browser each.
const AUDIENCE: usize = 40;
/// Of them, readers whose quiet hours last all day.
const QUIET: usize = 5;

struct Control {
    push: Arc<FakeWebPush>,
    db: Db,
    readers: Vec<uuid::Uuid>,
    /// The extra feed's current body.
    feed: Mutex<String>,
}

/// `POST /latency/{ms}`: how long the local push service takes to answer.
async fn latency(State(c): State<Arc<Control>>, Path(ms): Path<u64>) -> &'static str {
    c.push.set_latency(Duration::from_millis(ms));
    "ok"
}

/// `POST /open/{alert}/{n}`: the first `n` readers tap the alert.
async fn open(
    State(c): State<Arc<Control>>,
    Path((alert, n)): Path<(uuid::Uuid, usize)>,
) -> String {
    let mut opened = 0;
    for reader in c.readers.iter().take(n) {
        if herald_store::alerts::mark_opened(&c.db, *reader, alert)
            .await
            .is_ok()
        {
            opened += 1;
        }
    }
    opened.to_string()
}

/// `GET /feed.xml`: the feed the script adds as a source.
async fn feed(State(c): State<Arc<Control>>) -> impl IntoResponse {
    let body = c.feed.lock().unwrap().clone();
    ([(header::CONTENT_TYPE, "application/rss+xml")], body)
}

async fn serve_control(control: Arc<Control>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/latency/{ms}", post(latency))
        .route("/open/{alert}/{n}", post(open))
        .route("/feed.xml", get(feed))
        .with_state(control);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// A feed with one item no demo feed carries, published a minute ago.
fn extra_feed() -> String {
    let published = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc2822();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Test Gazette</title><link>https://gazette.example/</link>
<description>A feed added from the console</description>
<item><title>Lighthouse keepers vote to keep the lamps lit through the winter storms</title>
<link>https://gazette.example/lighthouse</link><guid>https://gazette.example/lighthouse</guid>
<description>The keepers of the northern lighthouses agreed to stay on through the season.</description>
<pubDate>{published}</pubDate></item>
</channel></rss>"#
    )
}

/// Readers following `world`, each with a browser on the local push service; the first
/// `QUIET` have quiet hours all day. Their user ids.
async fn audience(db: &Db, push: &FakeWebPush) -> Vec<uuid::Uuid> {
    let mut readers = Vec::new();
    for i in 0..AUDIENCE {
        let user_id = herald_tests::newsroom::stored_follower(db, "world").await;
        let sub = push.new_subscription().unwrap();
        devices::register(
            db,
            NewDevice {
                user_id,
                address: DeviceAddress::WebPush {
                    endpoint: sub.subscription.endpoint.to_string(),
                    p256dh: sub.subscription.keys.p256dh().to_vec(),
                    auth: sub.subscription.keys.auth().to_vec(),
                },
                locale: None,
                timezone: Some("UTC".into()),
            },
            20,
        )
        .await
        .unwrap();
        if i < QUIET {
            let prefs = Preferences {
                timezone: "UTC".parse().unwrap(),
                quiet_hours: Some(QuietHours::parse("00:00", "23:59").unwrap()),
                max_alerts_per_day: 10,
            };
            preferences::put(db, user_id, &prefs).await.unwrap();
        }
        readers.push(user_id);
    }
    // Readers who were quiet are the last to open, so opens land on readers who were sent it.
    readers.rotate_left(QUIET);
    readers
}

/// Waits until the demo feeds are read and the alerts their breaking stories raised are done.
async fn demo_news(app: &TestApp, db: &Db) {
    let start = Instant::now();
    loop {
        let stories: Value = app.get("/v1/stories?limit=100").await.json().await.unwrap();
        let shared = stories["items"].as_array().is_some_and(|s| {
            s.iter()
                .filter(|s| s["source_count"].as_u64() >= Some(2))
                .count()
                >= 2
        });
        let idle = herald_store::queue::depth(db).await.unwrap() == 0;
        if shared && idle {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the demo feeds were not read: {stories}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_signs_in_watches_stories_sends_measures_and_cancels_an_alert() {
    browser::require_browser();
    let push = Arc::new(FakeWebPush::start().await.unwrap());
    let app = TestApp::spawn_with(|config| {
        config.push.webpush.timeout_seconds = 5;
        // Small batches sent one at a time: a slowed push service keeps an alert going out
        // long enough to be cancelled.
        config.push.fanout.batch_size = 5;
        config.push.fanout.concurrency = 1;
        // A cancel reaches batches already leased when their lease is next renewed (every
        // third of it): short leases stop them within a fraction of a second.
        config.push.fanout.lease_seconds = 1;
        // Access tokens that expire during the run: the console must renew its session itself.
        config.auth.access_token_ttl_seconds = 15;
    })
    .await;
    let db = app.db.connect().await;

    let feeds = herald::demo::start_feed_server().await.unwrap();
    herald_store::sources::sync(&db, &herald::demo::sources(feeds))
        .await
        .unwrap();
    demo_news(&app, &db).await;
    let readers = audience(&db, &push).await;

    let email = format!("editor-{}@herald.example", uuid::Uuid::now_v7().simple());
    herald::create_user(&db, &email, PASSWORD, Role::Editor, None)
        .await
        .unwrap();

    let control = Arc::new(Control {
        push: Arc::clone(&push),
        db: db.clone(),
        readers,
        feed: Mutex::new(extra_feed()),
    });
    let control_url = serve_control(Arc::clone(&control)).await;
    let mut env = vec![
        ("HERALD_EDITOR_EMAIL", email.clone()),
        ("HERALD_EDITOR_PASSWORD", PASSWORD.to_string()),
        ("HERALD_CONTROL_URL", control_url.clone()),
        ("HERALD_EXTRA_FEED_URL", format!("{control_url}/feed.xml")),
        ("HERALD_AUDIENCE", AUDIENCE.to_string()),
        ("HERALD_QUIET", QUIET.to_string()),
    ];
    if let Ok(dir) = std::env::var("HERALD_SCREENSHOT_DIR") {
        env.push(("HERALD_SCREENSHOT_DIR", dir));
    }
    browser::run_script("console.py", &app.url(""), &env).await;

    // What the browser did, seen from the server.
    let history = herald_store::newsroom::history(&db, None, 10)
        .await
        .unwrap();
    let mine: Vec<_> = history
        .iter()
        .filter(|a| a.created_by_email.as_deref() == Some(email.as_str()))
        .collect();
    assert_eq!(mine.len(), 2, "two alerts sent from the console");
    let (cancelled, sent) = (&mine[0].counters, &mine[1].counters);
    assert_eq!(sent.state.as_str(), "done");
    assert_eq!(sent.sent, (AUDIENCE - QUIET) as u64);
    assert_eq!(sent.skipped_quiet_hours, QUIET as u64);
    assert_eq!(cancelled.state.as_str(), "cancelled");
    assert!(cancelled.sent < (AUDIENCE - QUIET) as u64, "{cancelled:?}");
    let sources = herald_store::sources::list(&db).await.unwrap();
    let added = sources
        .iter()
        .find(|s| s.name == "Test Gazette")
        .expect("the feed added from the console");
    assert_eq!(added.last_status, Some(200), "fetched");
    drop(db);
    app.stop().await.unwrap();
}
