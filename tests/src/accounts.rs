//! Accounts in tests: the account service on its own (for tests that call it directly), and
//! signing in and reading answers over HTTP.

use crate::TestApp;
use crate::newsroom::PASSWORD;
use herald_auth::{Accounts, AuthConfig, ClientInfo};
use herald_store::testing::TestDb;
use herald_store::users::Role;
use std::net::IpAddr;
use std::sync::Arc;

/// The key that seals private keys at rest in tests that start the account service directly.
pub const TEST_SEALING_KEY: &str = "dGVzdCBrZXkgZm9yIHNlYWxpbmcgcHJpdmF0ZSBrZXk=";

/// A client at the address `ip`.
pub fn client_at(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.parse::<IpAddr>().expect("an IP address")),
        user_agent: None,
    }
}

/// A fresh database with one reader whose password is [`PASSWORD`], and the account service
/// on it: (database, accounts, the reader's email).
pub async fn with_one_reader(config: AuthConfig) -> (TestDb, Arc<Accounts>, String) {
    let test = TestDb::new().await;
    let db = test.connect().await;
    let email = format!("owner-{}@herald.example", uuid::Uuid::now_v7().simple());
    herald::create_user(&db, &email, PASSWORD, Role::Reader, None)
        .await
        .expect("create the reader");
    let keyring =
        herald_auth::Keyring::parse(TEST_SEALING_KEY, "the test key").expect("the test key parses");
    let accounts = Accounts::start(db, config, reqwest::Client::new(), &keyring)
        .await
        .expect("start the account service");
    (test, Arc::new(accounts), email)
}

/// One signed-in session, from a token response over HTTP.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// The user's id.
    pub user_id: String,
    /// The user's role.
    pub role: String,
}

/// The session in a 200/201 token response; panics (showing the body) on any other answer.
pub async fn signed_in(response: reqwest::Response) -> SignedIn {
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert!(status.is_success(), "{status}: {body}");
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    SignedIn {
        access: text(&body["access_token"]),
        refresh: text(&body["refresh_token"]),
        user_id: text(&body["user"]["id"]),
        role: text(&body["user"]["role"]),
    }
}

/// `POST /v1/auth/signup` answered.
pub async fn sign_up(app: &TestApp, email: &str, password: &str) -> SignedIn {
    signed_in(
        app.post_json(
            "/v1/auth/signup",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await,
    )
    .await
}

/// `POST /v1/auth/login` answered.
pub async fn log_in(app: &TestApp, email: &str, password: &str) -> SignedIn {
    signed_in(
        app.post_json(
            "/v1/auth/login",
            &serde_json::json!({"email": email, "password": password}),
        )
        .await,
    )
    .await
}

/// The status `GET /v1/me` answers `access` with.
pub async fn me_status(app: &TestApp, access: &str) -> reqwest::StatusCode {
    app.call(reqwest::Method::GET, "/v1/me", access, None)
        .await
        .status()
}

/// The status `POST /v1/auth/refresh` answers `refresh` with.
pub async fn refresh_status(app: &TestApp, refresh: &str) -> reqwest::StatusCode {
    app.post_json(
        "/v1/auth/refresh",
        &serde_json::json!({"refresh_token": refresh}),
    )
    .await
    .status()
}

/// Asserts an RFC 9457 problem with `status` and returns its body.
pub async fn problem(
    response: reqwest::Response,
    status: reqwest::StatusCode,
) -> serde_json::Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let got = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    assert_eq!(got, status, "{body}");
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    body
}

/// Asserts a 422 problem whose `errors` name `field`, and returns its body.
pub async fn field_refused(response: reqwest::Response, field: &str) -> serde_json::Value {
    let body = problem(response, reqwest::StatusCode::UNPROCESSABLE_ENTITY).await;
    let named = body["errors"]
        .as_array()
        .is_some_and(|errors| errors.iter().any(|e| e["field"] == field));
    assert!(named, "no error names {field}: {body}");
    body
}
