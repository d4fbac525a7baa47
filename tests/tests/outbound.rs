#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Where Herald's outbound requests may go (issue #19 item 5): Web Push endpoints only on the
//! known browser push services, at registration and again at send time; and app tokens the
//! database index cannot hold refused at the edge, on SQLite and PostgreSQL alike.

use herald_notifier::config::OriginPattern;
use herald_notifier::fakes::FakeWebPush;
use herald_store::devices::{self, DeviceAddress, NewDevice};
use herald_tests::TestApp;
use reqwest::Url;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

/// A strict app: the development switch off, as in production, and `extra_origins` allowed.
async fn strict_app(extra_origins: &[&str]) -> TestApp {
    let extra: Vec<OriginPattern> = extra_origins
        .iter()
        .map(|o| OriginPattern::parse(o).unwrap())
        .collect();
    TestApp::spawn_with(move |config| {
        config.push.allow_insecure_endpoints = false;
        config.push.webpush.allowed_origins.extend(extra);
    })
    .await
}

/// A browser subscription's JSON with its endpoint replaced by `endpoint`.
async fn subscription_at(endpoint: &str) -> Value {
    let push = FakeWebPush::start().await.unwrap();
    let mut json = push.new_subscription().unwrap().browser_json();
    json["endpoint"] = json!(endpoint);
    json
}

async fn register(app: &TestApp, token: &str, device: Value) -> reqwest::Response {
    app.call(Method::POST, "/v1/devices", token, Some(device))
        .await
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn device_count(app: &TestApp, token: &str) -> usize {
    let listed: Value = app
        .call(Method::GET, "/v1/devices", token, None)
        .await
        .json()
        .await
        .unwrap();
    listed
        .as_array()
        .or_else(|| listed["items"].as_array())
        .map(Vec::len)
        .unwrap_or_default()
}

#[tokio::test]
async fn web_push_endpoints_must_be_on_an_allowed_push_service() {
    let app = strict_app(&["https://push.herald.example"]).await;
    let reader = app.reader_following("world").await;

    for endpoint in [
        "https://attacker.example/collect",
        "https://fcm.googleapis.com.attacker.example/fcm/send/x",
        "https://push.herald.example:8443/x",
        "https://sub.push.herald.example/x",
    ] {
        let device = json!({"platform": "web", "subscription": subscription_at(endpoint).await});
        let refused = register(&app, &reader, device).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{endpoint}"
        );
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(fields(&body), ["subscription.endpoint"], "{body}");
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("allowed_origins"),
            "{body}"
        );
    }
    assert_eq!(
        device_count(&app, &reader).await,
        0,
        "a refused device was stored"
    );

    for endpoint in [
        "https://fcm.googleapis.com/fcm/send/dGVzdA:APA91bH",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAAABk",
        "https://web.push.apple.com/QGuQyavXutnMH",
        "https://wns2-par02p.notify.windows.com/w/?token=BQYAAAB",
        "https://push.herald.example/subscriptions/1",
    ] {
        let device = json!({"platform": "web", "subscription": subscription_at(endpoint).await});
        assert_eq!(
            register(&app, &reader, device).await.status(),
            StatusCode::CREATED,
            "{endpoint}"
        );
    }
    assert_eq!(device_count(&app, &reader).await, 5);
}

#[tokio::test]
async fn a_device_stored_before_the_origins_changed_is_never_sent_to() {
    let app = strict_app(&[]).await;
    let db = app.db.connect().await;
    // Registered while its origin was allowed (or written before the list existed): stored as
    // it is. The host is under `.invalid`, so a POST could never succeed either: without the
    // send-time check the notifier would keep retrying the failed lookup until the TTL.
    let push = FakeWebPush::start().await.unwrap();
    let sub = push.new_subscription().unwrap();
    let follower = herald_tests::newsroom::stored_follower(&db, "world").await;
    devices::register(
        &db,
        NewDevice {
            user_id: follower,
            address: DeviceAddress::WebPush {
                endpoint: "https://push.herald.invalid/subscriptions/1".into(),
                p256dh: sub.subscription.keys.p256dh().to_vec(),
                auth: sub.subscription.keys.auth().to_vec(),
            },
            locale: None,
            timezone: None,
        },
        20,
    )
    .await
    .unwrap();

    let editor = herald_tests::newsroom::editor(&app).await.token;
    let sent = app
        .call(
            Method::POST,
            "/v1/admin/alerts",
            &editor,
            Some(json!({
                "title": "Ceasefire agreed",
                "body": "Details to follow",
                "url": "https://herald.example/articles/1",
                "topics": ["world"],
                "ttl_seconds": 3600,
            })),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let id = sent.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let status = app
        .finished_alert(&id, &editor, Duration::from_secs(60))
        .await;
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["targeted"], 1, "{status}");
    assert_eq!(status["failed"], 1, "{status}");
    assert_eq!(status["sent"], 0, "{status}");
    assert!(push.received().is_empty());
}

/// A token of `len` printable characters that does not compress (as real tokens do not).
fn token_of(len: usize) -> String {
    let mut token = String::new();
    while token.len() < len {
        token.push_str(&uuid::Uuid::new_v4().simple().to_string());
        token.push(':');
    }
    token.truncate(len);
    token
}

#[tokio::test]
async fn an_app_token_longer_than_the_index_holds_is_refused_not_a_500() {
    let app = TestApp::spawn().await;
    let reader = app.reader_following("world").await;
    for len in [2049, 2705, 4096, 10_000] {
        let refused = register(
            &app,
            &reader,
            json!({"platform": "android", "token": token_of(len)}),
        )
        .await;
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{len}");
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(fields(&body), ["token"], "{body}");
    }
    let ios = register(
        &app,
        &reader,
        json!({"platform": "ios", "token": "ab".repeat(1500)}),
    )
    .await;
    assert_eq!(ios.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(device_count(&app, &reader).await, 0);

    // The longest token accepted fits the index on either database, and registers once.
    let longest = token_of(2048);
    for _ in 0..2 {
        let stored = register(
            &app,
            &reader,
            json!({"platform": "android", "token": longest}),
        )
        .await;
        assert_eq!(stored.status(), StatusCode::CREATED);
    }
    assert_eq!(device_count(&app, &reader).await, 1);
}

/// A server on 127.0.0.1 that redirects `/to-literal` to `literal` and `/to-name` to `name`.
async fn redirector(literal: String, name: String) -> std::net::SocketAddr {
    use axum::response::Redirect;
    let app = axum::Router::new()
        .route(
            "/to-literal",
            axum::routing::get(move || async move { Redirect::temporary(&literal) }),
        )
        .route(
            "/to-name",
            axum::routing::get(move || async move { Redirect::temporary(&name) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn identity_provider_keys_are_fetched_from_no_inside_address_but_the_configured_one() {
    use herald_tests::oidc::{FakeIdProvider, PROVIDER_KEY, google_claims};
    let provider = FakeIdProvider::start().await;
    let keys = Url::parse(provider.jwks_url()).unwrap();
    let port = keys.port().unwrap();
    // The operator configured a literal loopback address (a local provider): that address is
    // allowed, redirects included. A hop to a name that resolves inside is not.
    let hops = redirector(
        format!("http://127.0.0.1:{port}/keys"),
        format!("http://localhost:{port}/keys"),
    )
    .await;
    let sign_in = |path: &'static str| {
        let provider = &provider;
        async move {
            let app = TestApp::spawn_with(|config| {
                provider.configure(config);
                config.auth.google.jwks_url = format!("http://{hops}{path}");
            })
            .await;
            let token = PROVIDER_KEY.id_token(&google_claims("subject-1", None));
            app.post_json("/v1/auth/oidc/google", &json!({"id_token": token}))
                .await
                .status()
        }
    };
    assert_eq!(sign_in("/to-literal").await, StatusCode::OK);
    assert_eq!(
        sign_in("/to-name").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "the key fetch followed a redirect to localhost"
    );
}
