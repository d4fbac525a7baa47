#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Devices, subscriptions, preferences and the alert inbox over HTTP (SPEC §3).

use aws_lc_rs::agreement::{ECDH_P256, EphemeralPrivateKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A signed-in reader: (access token, user id).
async fn anonymous(app: &TestApp) -> (String, String) {
    let body: Value = app
        .post_json("/v1/auth/anonymous", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["user"]["id"].as_str().unwrap().to_string(),
    )
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Real subscription keys, as a browser would make them.
fn browser_keys() -> (String, String) {
    let private = EphemeralPrivateKey::generate(&ECDH_P256, &SystemRandom::new()).unwrap();
    let public = private.compute_public_key().unwrap();
    let mut auth = [0u8; 16];
    SystemRandom::new().fill(&mut auth).unwrap();
    (
        URL_SAFE_NO_PAD.encode(public.as_ref()),
        URL_SAFE_NO_PAD.encode(auth),
    )
}

fn web_device(endpoint: &str) -> Value {
    let (p256dh, auth) = browser_keys();
    json!({
        "platform": "web",
        "subscription": {"endpoint": endpoint, "expirationTime": null, "keys": {"p256dh": p256dh, "auth": auth}},
        "locale": "en-IN",
        "timezone": "Asia/Kolkata"
    })
}

fn fields(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_vapid_public_key_is_an_uncompressed_p256_point_and_stays_the_same() {
    let app = TestApp::spawn().await;
    let first: Value = app
        .get("/v1/push/vapid-public-key")
        .await
        .json()
        .await
        .unwrap();
    let key = URL_SAFE_NO_PAD
        .decode(first["public_key"].as_str().unwrap())
        .unwrap();
    assert_eq!(key.len(), 65);
    assert_eq!(key[0], 0x04);
    let again: Value = app
        .get("/v1/push/vapid-public-key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first, again);
}

#[tokio::test]
async fn each_platform_registers_and_registration_is_idempotent() {
    let app = TestApp::spawn().await;
    let (token, _) = anonymous(&app).await;
    let web = web_device("http://127.0.0.1:9/push/abc");
    let first = call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        &token,
        Some(web.clone()),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["platform"], "web");
    let again: Value = call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        &token,
        Some(web),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(first["id"], again["id"]);

    let android = json!({"platform": "android", "token": "fcm:APA91bH-token_value"});
    let ios = json!({"platform": "ios", "token": "A1".repeat(32), "environment": "sandbox"});
    for body in [android, ios] {
        let response = call(
            &app,
            reqwest::Method::POST,
            "/v1/devices",
            &token,
            Some(body),
        )
        .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let list: Value = call(&app, reqwest::Method::GET, "/v1/devices", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let platforms: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["platform"].as_str().unwrap())
        .collect();
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    assert!(
        platforms.contains(&"web") && platforms.contains(&"android") && platforms.contains(&"ios")
    );
    assert!(
        !list.to_string().contains("auth\""),
        "secrets are not echoed: {list}"
    );
}

#[tokio::test]
async fn a_device_moves_from_the_anonymous_user_to_the_one_who_logs_in() {
    let app = TestApp::spawn().await;
    let (anon, _) = anonymous(&app).await;
    let device = json!({"platform": "android", "token": "shared-phone-token"});
    call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        &anon,
        Some(device.clone()),
    )
    .await;
    let signed_up: Value = app
        .post_json(
            "/v1/auth/signup",
            &json!({"email": "mover@example.com", "password": "a long enough secret"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let reader = signed_up["access_token"].as_str().unwrap();
    call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        reader,
        Some(device),
    )
    .await;
    let anon_list: Value = call(&app, reqwest::Method::GET, "/v1/devices", &anon, None)
        .await
        .json()
        .await
        .unwrap();
    let reader_list: Value = call(&app, reqwest::Method::GET, "/v1/devices", reader, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(anon_list.as_array().unwrap().len(), 0);
    assert_eq!(reader_list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_validation_failure_names_its_field() {
    let app = TestApp::spawn_with(|c| c.push.allow_insecure_endpoints = false).await;
    let (token, _) = anonymous(&app).await;
    let (p256dh, auth) = browser_keys();
    let off_curve = URL_SAFE_NO_PAD.encode([&[4u8][..], &[7u8; 64][..]].concat());
    let cases = [
        (json!({"platform": "fax"}), "platform"),
        (json!({"platform": "web"}), "subscription"),
        (
            json!({"platform": "web", "subscription": {"endpoint": "http://push.example.com/x", "keys": {"p256dh": p256dh, "auth": auth}}}),
            "subscription.endpoint",
        ),
        (
            json!({"platform": "web", "subscription": {"endpoint": "https://127.0.0.1/x", "keys": {"p256dh": p256dh, "auth": auth}}}),
            "subscription.endpoint",
        ),
        (
            json!({"platform": "web", "subscription": {"endpoint": "https://push.example.com/x", "keys": {"p256dh": off_curve, "auth": auth}}}),
            "subscription.keys.p256dh",
        ),
        (
            json!({"platform": "web", "subscription": {"endpoint": "https://push.example.com/x", "keys": {"p256dh": "short", "auth": auth}}}),
            "subscription.keys.p256dh",
        ),
        (
            json!({"platform": "web", "subscription": {"endpoint": "https://push.example.com/x", "keys": {"p256dh": p256dh, "auth": URL_SAFE_NO_PAD.encode([1u8; 15])}}}),
            "subscription.keys.auth",
        ),
        (json!({"platform": "android", "token": ""}), "token"),
        (
            json!({"platform": "android", "token": "x".repeat(4097)}),
            "token",
        ),
        (
            json!({"platform": "android", "token": "has space"}),
            "token",
        ),
        (
            json!({"platform": "ios", "token": "zz".repeat(32)}),
            "token",
        ),
        (
            json!({"platform": "ios", "token": "ab".repeat(31)}),
            "token",
        ),
        (
            json!({"platform": "ios", "token": "ab".repeat(32), "environment": "staging"}),
            "environment",
        ),
        (
            json!({"platform": "android", "token": "ok", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            json!({"platform": "android", "token": "ok", "locale": "english_US"}),
            "locale",
        ),
    ];
    for (body, field) in cases {
        let response = call(
            &app,
            reqwest::Method::POST,
            "/v1/devices",
            &token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let problem: Value = response.json().await.unwrap();
        assert!(
            fields(&problem).contains(&field.to_string()),
            "{body} → {problem}"
        );
    }
    let list: Value = call(&app, reqwest::Method::GET, "/v1/devices", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing was registered");
    let missing_type = call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        &token,
        Some(json!({"platform": 7})),
    )
    .await;
    assert_eq!(missing_type.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn at_most_twenty_devices_per_reader() {
    let app = TestApp::spawn().await;
    let (token, _) = anonymous(&app).await;
    for i in 0..22 {
        let body = json!({"platform": "android", "token": format!("token-{i:02}")});
        assert_eq!(
            call(
                &app,
                reqwest::Method::POST,
                "/v1/devices",
                &token,
                Some(body)
            )
            .await
            .status(),
            StatusCode::CREATED
        );
    }
    let list: Value = call(&app, reqwest::Method::GET, "/v1/devices", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 20);
    let labels: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["label"].as_str().unwrap())
        .collect();
    assert!(
        !labels.contains(&"…ken-00") && labels.contains(&"…ken-21"),
        "{labels:?}"
    );
}

#[tokio::test]
async fn devices_are_deleted_by_their_owner_only() {
    let app = TestApp::spawn().await;
    let (owner, _) = anonymous(&app).await;
    let (stranger, _) = anonymous(&app).await;
    let device: Value = call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        &owner,
        Some(json!({"platform": "android", "token": "t1"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let path = format!("/v1/devices/{}", device["id"].as_str().unwrap());
    assert_eq!(
        call(&app, reqwest::Method::DELETE, &path, &stranger, None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, reqwest::Method::DELETE, &path, &owner, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, reqwest::Method::DELETE, &path, &owner, None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&app, reqwest::Method::GET, "/v1/devices", "garbage", None)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn subscriptions_round_trip_and_unknown_topics_are_refused() {
    let app = TestApp::spawn().await;
    let (token, _) = anonymous(&app).await;
    let topics: Value = app.get("/v1/topics").await.json().await.unwrap();
    assert!(
        topics
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["slug"] == "india")
    );

    let put = call(
        &app,
        reqwest::Method::PUT,
        "/v1/me/subscriptions",
        &token,
        Some(json!({"topics": ["world", "india", "world"]})),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["topics"], json!(["india", "world"]));
    let added: Value = call(
        &app,
        reqwest::Method::POST,
        "/v1/me/subscriptions",
        &token,
        Some(json!({"topic": "business"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(added["topics"], json!(["business", "india", "world"]));
    assert_eq!(
        call(
            &app,
            reqwest::Method::DELETE,
            "/v1/me/subscriptions/india",
            &token,
            None
        )
        .await
        .status(),
        StatusCode::NO_CONTENT
    );
    let now: Value = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/subscriptions",
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(now["topics"], json!(["business", "world"]));

    let unknown = call(
        &app,
        reqwest::Method::PUT,
        "/v1/me/subscriptions",
        &token,
        Some(json!({"topics": ["world", "astrology"]})),
    )
    .await;
    assert_eq!(unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = unknown.json().await.unwrap();
    assert_eq!(fields(&problem), vec!["topics"]);
    assert!(problem["detail"].as_str().unwrap().contains("astrology"));
    let unchanged: Value = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/subscriptions",
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        unchanged["topics"],
        json!(["business", "world"]),
        "a refused PUT changes nothing"
    );
    let post_unknown = call(
        &app,
        reqwest::Method::POST,
        "/v1/me/subscriptions",
        &token,
        Some(json!({"topic": "astrology"})),
    )
    .await;
    assert_eq!(post_unknown.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        call(
            &app,
            reqwest::Method::DELETE,
            "/v1/me/subscriptions/astrology",
            &token,
            None
        )
        .await
        .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn preferences_default_then_round_trip_and_refuse_bad_values() {
    let app = TestApp::spawn().await;
    let (token, _) = anonymous(&app).await;
    let defaults: Value = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/preferences",
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(defaults["timezone"], "UTC");
    assert_eq!(defaults["quiet_hours"], Value::Null);
    assert_eq!(
        defaults["max_alerts_per_day"],
        app.config.push.default_max_alerts_per_day
    );

    let wanted = json!({"timezone": "America/New_York", "quiet_hours": {"start": "22:00", "end": "07:00"}, "max_alerts_per_day": 5});
    let put = call(
        &app,
        reqwest::Method::PUT,
        "/v1/me/preferences",
        &token,
        Some(wanted.clone()),
    )
    .await;
    assert_eq!(put.status(), StatusCode::OK);
    let got: Value = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/preferences",
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(got, wanted);

    for (body, field) in [
        (json!({"timezone": "Nowhere/Land"}), "timezone"),
        (
            json!({"timezone": "UTC", "quiet_hours": {"start": "25:00", "end": "07:00"}}),
            "quiet_hours",
        ),
        (
            json!({"timezone": "UTC", "max_alerts_per_day": 51}),
            "max_alerts_per_day",
        ),
        (
            json!({"timezone": "UTC", "max_alerts_per_day": -1}),
            "max_alerts_per_day",
        ),
    ] {
        let response = call(
            &app,
            reqwest::Method::PUT,
            "/v1/me/preferences",
            &token,
            Some(body.clone()),
        )
        .await;
        assert_eq!(
            response.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}"
        );
        let problem: Value = response.json().await.unwrap();
        assert!(
            fields(&problem).contains(&field.to_string()),
            "{body} → {problem}"
        );
    }
    let still: Value = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/preferences",
        &token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(still, wanted, "refused updates change nothing");
}

#[tokio::test]
async fn the_inbox_is_empty_until_alerts_are_sent_and_unknown_opens_are_404() {
    let app = TestApp::spawn().await;
    let (token, _) = anonymous(&app).await;
    let inbox: Value = call(&app, reqwest::Method::GET, "/v1/me/alerts", &token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(inbox, json!({"items": [], "next_cursor": null}));
    let opened = call(
        &app,
        reqwest::Method::POST,
        &format!("/v1/alerts/{}/opened", uuid::Uuid::now_v7()),
        &token,
        None,
    )
    .await;
    assert_eq!(opened.status(), StatusCode::NOT_FOUND);
    let bad_cursor = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/alerts?cursor=%%%",
        &token,
        None,
    )
    .await;
    assert_eq!(bad_cursor.status(), StatusCode::BAD_REQUEST);
    let bad_limit = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/alerts?limit=0",
        &token,
        None,
    )
    .await;
    assert_eq!(bad_limit.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn deleting_the_account_removes_its_devices() {
    let app = TestApp::spawn().await;
    let (token, _) = anonymous(&app).await;
    call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        &token,
        Some(json!({"platform": "android", "token": "gone-soon"})),
    )
    .await;
    call(
        &app,
        reqwest::Method::PUT,
        "/v1/me/subscriptions",
        &token,
        Some(json!({"topics": ["world"]})),
    )
    .await;
    assert_eq!(
        call(&app, reqwest::Method::DELETE, "/v1/me", &token, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let db = app.db.connect().await;
    use sea_orm::{ConnectionTrait, Statement};
    for table in ["devices", "subscriptions", "users", "sessions"] {
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = row.try_get("", "n").unwrap();
        assert_eq!(n, 0, "{table} still has rows");
    }
}

#[tokio::test]
async fn linking_an_anonymous_reader_keeps_id_subscriptions_and_devices() {
    let app = TestApp::spawn().await;
    let (anon, id) = anonymous(&app).await;
    call(
        &app,
        reqwest::Method::PUT,
        "/v1/me/subscriptions",
        &anon,
        Some(json!({"topics": ["world", "india"]})),
    )
    .await;
    call(
        &app,
        reqwest::Method::POST,
        "/v1/devices",
        &anon,
        Some(json!({"platform": "android", "token": "install-1"})),
    )
    .await;
    let linked = call(
        &app,
        reqwest::Method::POST,
        "/v1/me/link",
        &anon,
        Some(json!({"email": "keeper@example.com", "password": "a long enough secret"})),
    )
    .await;
    assert_eq!(linked.status(), StatusCode::OK);
    let linked: Value = linked.json().await.unwrap();
    assert_eq!(linked["user"]["id"], id.as_str());
    assert_eq!(linked["user"]["is_anonymous"], false);
    let token = linked["access_token"].as_str().unwrap();
    let subs: Value = call(
        &app,
        reqwest::Method::GET,
        "/v1/me/subscriptions",
        token,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(subs["topics"], json!(["india", "world"]));
    let devices: Value = call(&app, reqwest::Method::GET, "/v1/devices", token, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(devices.as_array().unwrap().len(), 1);
}
