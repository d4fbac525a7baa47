#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reader web app in a real Chromium (tests/browser/reader.py): the demo's news, an article
//! with related coverage, follow and quiet hours, the manifest and service worker, and an
//! alert sent from the newsroom API that arrives as a notification and opens the article.
//!
//! No browser push service is involved: the page's `PushManager.subscribe` hands out a
//! subscription of the local Web Push receiver (whose keys this test holds), the notifier
//! really encrypts and sends the alert there, this test decrypts it, and the script hands that
//! exact payload to the service worker through the DevTools protocol.

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_notifier::fakes::{FakeSubscription, FakeWebPush};
use herald_tests::TestApp;
use herald_tests::browser;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn subscription_json(sub: &FakeSubscription) -> Value {
    json!({
        "id": sub.id,
        "endpoint": sub.subscription.endpoint.to_string(),
        "keys": {
            "p256dh": URL_SAFE_NO_PAD.encode(sub.subscription.keys.p256dh()),
            "auth": URL_SAFE_NO_PAD.encode(sub.subscription.keys.auth()),
        }
    })
}

/// `GET /received/{id}`: the decrypted payloads the local push service accepted for `id`, as
/// the strings that were encrypted, so the script can hand them to the service worker.
async fn received(
    State(push): State<Arc<FakeWebPush>>,
    Path(id): Path<String>,
) -> axum::Json<Value> {
    let payloads: Vec<String> = push
        .received_for(&id)
        .into_iter()
        .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
        .map(|r| String::from_utf8_lossy(&r.plaintext).into_owned())
        .collect();
    axum::Json(json!(payloads))
}

async fn serve_received(push: Arc<FakeWebPush>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/received/{id}", get(received))
        .with_state(push);
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}")
}

/// Waits until the demo feeds have been read: articles from every publisher and a story told
/// by more than one.
async fn demo_news(app: &TestApp) -> usize {
    let start = Instant::now();
    loop {
        let body: Value = app
            .get("/v1/articles?limit=100")
            .await
            .json()
            .await
            .unwrap();
        let items = body["items"].as_array().cloned().unwrap_or_default();
        let sources: std::collections::HashSet<&str> = items
            .iter()
            .filter_map(|a| a["source"]["name"].as_str())
            .collect();
        let stories: Value = app.get("/v1/stories?limit=100").await.json().await.unwrap();
        let shared = stories["items"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["source_count"].as_u64() >= Some(2)));
        if sources.len() >= 4 && shared {
            return items.len();
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the demo feeds were not read: {} articles from {sources:?}",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_reads_follows_turns_alerts_on_and_opens_an_alert() {
    browser::require_browser();
    let push = Arc::new(FakeWebPush::start().await.unwrap());
    let app = TestApp::spawn_with(|config| {
        config.push.webpush.timeout_seconds = 2;
    })
    .await;
    let db = app.db.connect().await;

    // The demo's publishers, served from this process.
    let feeds = herald::demo::start_feed_server().await.unwrap();
    herald_store::sources::sync(&db, &herald::demo::sources(feeds))
        .await
        .unwrap();
    let articles = demo_news(&app).await;
    println!("demo news read: {articles} articles");

    // An editor, to send the alert as the console would.
    let editor = herald_tests::newsroom::editor(&app).await.token;

    let first = push.new_subscription().unwrap();
    let renewed = push.new_subscription().unwrap();
    let received_url = serve_received(Arc::clone(&push)).await;
    let mut env = vec![
        ("HERALD_EDITOR_TOKEN", editor),
        (
            "HERALD_FAKE_SUBSCRIPTION",
            subscription_json(&first).to_string(),
        ),
        (
            "HERALD_RENEWED_SUBSCRIPTION",
            subscription_json(&renewed).to_string(),
        ),
        ("HERALD_PUSH_RECEIVED_URL", received_url),
    ];
    if let Ok(dir) = std::env::var("HERALD_SCREENSHOT_DIR") {
        env.push(("HERALD_SCREENSHOT_DIR", dir));
    }
    browser::run_script("reader.py", &app.url(""), &env).await;

    // What the browser did reached the server: the alert was opened once.
    assert_eq!(push.received_for(&first.id).len(), 1, "one alert, one push");
    drop(db);
    app.stop().await.unwrap();
}
