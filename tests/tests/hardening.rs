#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Abuse one reader could do to everybody, tried against the real account service and the
//! real API: parallel login floods, lockouts by strangers, account and device floods.

use herald_auth::{AuthConfig, AuthError};
use herald_tests::TestApp;
use serde_json::json;

use herald_tests::accounts::{client_at as from, with_one_reader as accounts};
use herald_tests::newsroom::PASSWORD;

#[tokio::test]
async fn a_stranger_guessing_cannot_lock_the_owner_out() {
    let config = AuthConfig {
        login_attempts_per_account_and_address: 5,
        login_attempts_per_account: 50,
        ..AuthConfig::default()
    };
    let (_db, accounts, email) = accounts(config).await;
    for _ in 0..5 {
        let err = accounts
            .login(&email, "guess", &from("203.0.113.66"))
            .await
            .unwrap_err();
        assert!(matches!(err, AuthError::InvalidCredentials), "{err:?}");
    }
    let err = accounts
        .login(&email, "guess", &from("203.0.113.66"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Throttled { .. }), "{err:?}");
    // Hopping inside the attacker's IPv6 /64 buys nothing either.
    for n in 0..5 {
        let _ = accounts
            .login(&email, "guess", &from(&format!("2001:db8:7:7::{n}")))
            .await;
    }
    let err = accounts
        .login(&email, "guess", &from("2001:db8:7:7::ffff"))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Throttled { .. }), "{err:?}");
    // The owner, from home, signs in.
    accounts
        .login(&email, PASSWORD, &from("192.0.2.10"))
        .await
        .expect("the owner is not locked out");
}

#[tokio::test]
async fn anonymous_accounts_and_devices_are_limited_per_address() {
    let app = TestApp::spawn_with(|config| {
        config.auth.signups_per_address_per_hour = 3;
        config.push.devices_per_address_per_hour = 2;
    })
    .await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let response = app.post_json("/v1/auth/anonymous", &json!({})).await;
        assert_eq!(response.status(), 201);
        let body: serde_json::Value = response.json().await.unwrap();
        tokens.push(body["access_token"].as_str().unwrap().to_string());
    }
    let flood = app.post_json("/v1/auth/anonymous", &json!({})).await;
    assert_eq!(flood.status(), 429);
    assert!(flood.headers().get("retry-after").is_some());
    assert_eq!(flood.headers()["content-type"], "application/problem+json");
    let register = |token: String, n: usize| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/v1/devices"))
                .bearer_auth(token)
                .json(&json!({"platform": "android", "token": format!("fcm-token-{n:0>32}")}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(register(tokens[0].clone(), 1).await, 201);
    assert_eq!(register(tokens[1].clone(), 2).await, 201);
    assert_eq!(register(tokens[2].clone(), 3).await, 429);
}
