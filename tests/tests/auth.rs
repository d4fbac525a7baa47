#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Accounts and sessions (SPEC §3): sign-up, login, anonymous readers, refresh rotation,
//! logout, Google and Apple sign-in, profile, linking, sessions, password change, and the
//! access tokens themselves.

use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine as _;
use herald_tests::TestApp;
use herald_tests::oidc::{
    APPLE_CLIENT_ID, FakeIdProvider, GOOGLE_CLIENT_ID, IMPOSTOR_KEY, PROVIDER_KEY, apple_claims,
    b64, google_claims, sha256_hex, unb64, unix_now,
};
use reqwest::{Method, Response, StatusCode};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};

/// A password that meets the policy.
const PASSWORD: &str = "correct horse battery staple";
/// Another one, for password changes.
const NEW_PASSWORD: &str = "violet tractor minimum orbit";
const PHONE: &str = "HeraldTest/1.0 (phone)";
const LAPTOP: &str = "HeraldTest/1.0 (laptop)";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// One signed-in session, as a token response describes it.
#[derive(Debug, Clone)]
struct Session {
    access: String,
    refresh: String,
    user: Value,
}

impl Session {
    fn user_id(&self) -> &str {
        self.user["id"].as_str().expect("user.id is a string")
    }
}

/// Checks the shape of a token response and takes the session out of it.
fn token_response(body: &Value) -> Session {
    let access = body["access_token"].as_str().unwrap_or_default();
    assert_eq!(
        access.split('.').count(),
        3,
        "access_token is a JWT: {body}"
    );
    let refresh = body["refresh_token"].as_str().unwrap_or_default();
    assert!(!refresh.is_empty(), "refresh_token: {body}");
    assert_eq!(body["token_type"], "Bearer", "{body}");
    assert!(
        body["expires_in"].as_u64().is_some_and(|n| n > 0),
        "expires_in: {body}"
    );
    let user = &body["user"];
    for key in ["id", "email", "display_name", "is_anonymous", "role"] {
        assert!(user.get(key).is_some(), "user.{key} missing: {body}");
    }
    uuid::Uuid::parse_str(user["id"].as_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("user.id is not a UUID ({e}): {body}"));
    Session {
        access: access.to_owned(),
        refresh: refresh.to_owned(),
        user: user.clone(),
    }
}

/// Asserts the status (showing the body when it differs) and returns the body as JSON (Null if empty).
async fn expect_status(response: Response, status: StatusCode) -> Value {
    let got = response.status();
    let text = response.text().await.expect("response body");
    assert_eq!(got, status, "body: {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// Asserts an RFC 9457 problem with `status` and returns it.
async fn expect_problem(response: Response, status: StatusCode) -> Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = expect_status(response, status).await;
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type {content_type:?}, body {body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{body}");
    for key in ["type", "title", "detail"] {
        assert!(body[key].is_string(), "problem.{key} missing: {body}");
    }
    body
}

/// Asserts a 422 whose `errors` name `field`.
async fn expect_invalid(response: Response, field: &str) -> Value {
    let body = expect_problem(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let errors = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("422 without errors: {body}"));
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == field && e["message"].is_string()),
        "no error names {field:?}: {body}"
    );
    body
}

/// Asserts a 429 with a `Retry-After` of some seconds, and returns them.
async fn expect_throttled(response: Response) -> u64 {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body = expect_problem(response, StatusCode::TOO_MANY_REQUESTS).await;
    let seconds: u64 = retry_after
        .as_deref()
        .unwrap_or_else(|| panic!("429 without Retry-After: {body}"))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("Retry-After {retry_after:?} is not seconds ({e})"));
    assert!(seconds > 0, "Retry-After: {seconds}");
    seconds
}

/// Sends a request with a user agent, an optional bearer token and an optional JSON body.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    access: Option<&str>,
    body: Option<&Value>,
) -> Response {
    send_as(app, PHONE, method, path, access, body).await
}

async fn send_as(
    app: &TestApp,
    user_agent: &str,
    method: Method,
    path: &str,
    access: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut request = app
        .client
        .request(method, app.url(path))
        .header("user-agent", user_agent);
    if let Some(token) = access {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request")
}

async fn signup_response(app: &TestApp, email: &str, password: &str) -> Response {
    send(
        app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(&json!({"email": email, "password": password})),
    )
    .await
}

async fn signup(app: &TestApp, email: &str) -> Session {
    let body = expect_status(
        signup_response(app, email, PASSWORD).await,
        StatusCode::CREATED,
    )
    .await;
    token_response(&body)
}

async fn login_response(app: &TestApp, email: &str, password: &str) -> Response {
    login_as(app, PHONE, email, password).await
}

async fn login_as(app: &TestApp, user_agent: &str, email: &str, password: &str) -> Response {
    send_as(
        app,
        user_agent,
        Method::POST,
        "/v1/auth/login",
        None,
        Some(&json!({"email": email, "password": password})),
    )
    .await
}

async fn login(app: &TestApp, user_agent: &str, email: &str, password: &str) -> Session {
    let body = expect_status(
        login_as(app, user_agent, email, password).await,
        StatusCode::OK,
    )
    .await;
    token_response(&body)
}

async fn anonymous(app: &TestApp) -> Session {
    let response = send(
        app,
        Method::POST,
        "/v1/auth/anonymous",
        None,
        Some(&json!({})),
    )
    .await;
    token_response(&expect_status(response, StatusCode::CREATED).await)
}

async fn refresh_response(app: &TestApp, refresh_token: &str) -> Response {
    send(
        app,
        Method::POST,
        "/v1/auth/refresh",
        None,
        Some(&json!({"refresh_token": refresh_token})),
    )
    .await
}

async fn refresh(app: &TestApp, refresh_token: &str) -> Session {
    token_response(&expect_status(refresh_response(app, refresh_token).await, StatusCode::OK).await)
}

async fn me_response(app: &TestApp, access: &str) -> Response {
    send(app, Method::GET, "/v1/me", Some(access), None).await
}

async fn me(app: &TestApp, access: &str) -> Value {
    expect_status(me_response(app, access).await, StatusCode::OK).await
}

/// Asserts that an access token no longer opens `/v1/me`.
async fn assert_access_refused(app: &TestApp, access: &str) {
    expect_problem(me_response(app, access).await, StatusCode::UNAUTHORIZED).await;
}

/// Asserts that a refresh token no longer refreshes.
async fn assert_refresh_refused(app: &TestApp, refresh_token: &str) {
    expect_problem(
        refresh_response(app, refresh_token).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

async fn oidc_response(
    app: &TestApp,
    provider: &str,
    id_token: &str,
    nonce: Option<&str>,
) -> Response {
    let mut body = json!({"id_token": id_token});
    if let Some(nonce) = nonce {
        body["nonce"] = json!(nonce);
    }
    send(
        app,
        Method::POST,
        &format!("/v1/auth/oidc/{provider}"),
        None,
        Some(&body),
    )
    .await
}

async fn oidc(app: &TestApp, provider: &str, id_token: &str, nonce: Option<&str>) -> Session {
    let response = oidc_response(app, provider, id_token, nonce).await;
    token_response(&expect_status(response, StatusCode::OK).await)
}

/// An app with Google and Apple sign-in pointed at a local fake provider.
async fn spawn_with_providers() -> (TestApp, FakeIdProvider) {
    let provider = FakeIdProvider::start().await;
    let app = TestApp::spawn_with(|config| provider.configure(config)).await;
    (app, provider)
}

/// Proves the fake provider is wired up, so a later 401 is about the token under test.
async fn assert_google_sign_in_works(app: &TestApp) {
    let token = PROVIDER_KEY.id_token(&google_claims("control-subject", None));
    oidc(app, "google", &token, None).await;
}

async fn count_rows(db: &DatabaseConnection, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) AS n FROM {table}");
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap_or_else(|e| panic!("counting {table}: {e}"))
        .expect("a count row");
    row.try_get::<i64>("", "n").expect("count as i64")
}

/// Row counts of the account tables, in a fixed order.
async fn account_rows(db: &DatabaseConnection) -> [i64; 4] {
    [
        count_rows(db, "users").await,
        count_rows(db, "sessions").await,
        count_rows(db, "refresh_tokens").await,
        count_rows(db, "identities").await,
    ]
}

/// A JWT's header and claims, decoded without any check.
fn jwt_parts(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let mut next_json = || -> Value {
        serde_json::from_slice(&unb64(parts.next().expect("JWT segment"))).expect("JWT JSON")
    };
    let header = next_json();
    let claims = next_json();
    (header, claims)
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// An ES256 JWT signed by hand with a P-256 PKCS#8 key, so header and claims can be anything.
fn es256(pkcs8: &[u8], header: &Value, claims: &Value) -> String {
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).expect("P-256 key");
    let input = signing_input(header, claims);
    let signature = pair
        .sign(&SystemRandom::new(), input.as_bytes())
        .expect("ES256 signing");
    format!("{input}.{}", b64(signature.as_ref()))
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

async fn jwks(app: &TestApp) -> Value {
    expect_status(app.get("/.well-known/jwks.json").await, StatusCode::OK).await
}

/// The published JWK named `kid`.
async fn published_key(app: &TestApp, kid: &str) -> Value {
    let document = jwks(app).await;
    document["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid))
        .cloned()
        .unwrap_or_else(|| panic!("kid {kid} not in {document}"))
}

/// The uncompressed P-256 point (0x04 ‖ x ‖ y) of an EC JWK.
fn public_point(jwk: &Value) -> Vec<u8> {
    let mut point = vec![4_u8];
    point.extend(unb64(jwk["x"].as_str().expect("x")));
    point.extend(unb64(jwk["y"].as_str().expect("y")));
    point
}

/// Herald's own private signing key for `kid`, read from its key store (and opened with its
/// keyring: keys are sealed at rest), so tests can sign tokens that differ from real ones in
/// exactly one claim.
async fn server_signing_key(app: &TestApp, kid: &str) -> Vec<u8> {
    let point = public_point(&published_key(app, kid).await);
    let db = app.db.connect().await;
    let keyring = herald::open_keyring(&app.config, &db)
        .await
        .expect("the app's keyring");
    keyring
        .active(&db, "access-token")
        .await
        .expect("reading key_material")
        .into_iter()
        .find(|key| key.public_key == point)
        .map(|key| key.private_der.expose().clone())
        .unwrap_or_else(|| panic!("no key_material row holds the public key of kid {kid}"))
}

/// A real access token's header and claims, and Herald's key that signed it.
async fn access_token_material(app: &TestApp, access: &str) -> (Value, Value, Vec<u8>) {
    let (header, claims) = jwt_parts(access);
    let kid = header["kid"].as_str().expect("kid in access token header");
    let key = server_signing_key(app, kid).await;
    // The control: re-signing the same claims with fresh times must be accepted, so each
    // refusal below is about the one thing the test changed.
    let mut fresh = claims.clone();
    fresh["iat"] = json!(unix_now());
    fresh["exp"] = json!(unix_now() + 300);
    fresh["jti"] = json!(uuid::Uuid::new_v4().to_string());
    let control = es256(&key, &header, &fresh);
    expect_status(me_response(app, &control).await, StatusCode::OK).await;
    (header, fresh, key)
}

/// DER SubjectPublicKeyInfo prefix of an uncompressed P-256 key.
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";

fn spki_der(point: &[u8]) -> Vec<u8> {
    let mut der = hex_bytes(P256_SPKI_PREFIX);
    der.extend_from_slice(point);
    der
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

fn pem(der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

/// Finds a session of `list` by user agent.
fn session_with_agent<'a>(list: &'a Value, user_agent: &str) -> &'a Value {
    list["items"]
        .as_array()
        .and_then(|items| items.iter().find(|s| s["user_agent"] == user_agent))
        .unwrap_or_else(|| panic!("no session with user agent {user_agent}: {list}"))
}

async fn sessions(app: &TestApp, access: &str) -> Value {
    expect_status(
        send(app, Method::GET, "/v1/me/sessions", Some(access), None).await,
        StatusCode::OK,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// Sign-up
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn signup_returns_201_with_tokens_for_a_new_reader() {
    let app = TestApp::spawn().await;
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(&json!({"email": "ada@example.com", "password": PASSWORD, "display_name": "Ada"})),
    )
    .await;
    let session = token_response(&expect_status(response, StatusCode::CREATED).await);
    assert_eq!(session.user["email"], "ada@example.com");
    assert_eq!(session.user["display_name"], "Ada");
    assert_eq!(session.user["is_anonymous"], false);
    assert_eq!(session.user["role"], "reader");
    assert_eq!(me(&app, &session.access).await["id"], session.user["id"]);
}

#[tokio::test]
async fn signup_without_a_display_name_leaves_it_null() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "nameless@example.com").await;
    assert_eq!(session.user["display_name"], Value::Null);
}

#[tokio::test]
async fn signup_trims_and_lowercases_the_email() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "  Ada.Lovelace@Example.COM ").await;
    assert_eq!(session.user["email"], "ada.lovelace@example.com");
    assert_eq!(
        me(&app, &session.access).await["email"],
        "ada.lovelace@example.com"
    );
    let again = login(&app, PHONE, "ada.lovelace@example.com", PASSWORD).await;
    assert_eq!(again.user_id(), session.user_id());
}

#[tokio::test]
async fn signup_with_a_taken_email_is_409_whatever_its_case() {
    let app = TestApp::spawn().await;
    signup(&app, "taken@example.com").await;
    expect_problem(
        signup_response(&app, "taken@example.com", PASSWORD).await,
        StatusCode::CONFLICT,
    )
    .await;
    expect_problem(
        signup_response(&app, " TAKEN@Example.com", "another good passphrase").await,
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn signup_with_an_invalid_email_is_422_naming_email() {
    let app = TestApp::spawn().await;
    for email in ["not-an-email", "", "   ", "@example.com", "reader@"] {
        expect_invalid(signup_response(&app, email, PASSWORD).await, "email").await;
    }
}

#[tokio::test]
async fn signup_with_a_too_short_password_is_422_naming_password() {
    let app = TestApp::spawn().await;
    expect_invalid(
        signup_response(&app, "short@example.com", "Zx8#qLp2Mv4").await,
        "password",
    )
    .await;
}

#[tokio::test]
async fn signup_with_a_too_long_password_is_422_naming_password() {
    let app = TestApp::spawn().await;
    let long = "x7".repeat(128) + "q";
    assert_eq!(long.chars().count(), 257);
    expect_invalid(
        signup_response(&app, "long@example.com", &long).await,
        "password",
    )
    .await;
}

#[tokio::test]
async fn signup_with_a_common_password_is_422_naming_password() {
    let app = TestApp::spawn().await;
    expect_invalid(
        signup_response(&app, "common@example.com", "password123").await,
        "password",
    )
    .await;
}

#[tokio::test]
async fn passwords_of_exactly_12_and_256_characters_are_accepted() {
    let app = TestApp::spawn().await;
    let shortest = "Zx8#qLp2Mv4!";
    let longest = "x7".repeat(128);
    for (email, password) in [
        ("twelve@example.com", shortest.to_owned()),
        ("max@example.com", longest),
    ] {
        expect_status(
            signup_response(&app, email, &password).await,
            StatusCode::CREATED,
        )
        .await;
        expect_status(login_response(&app, email, &password).await, StatusCode::OK).await;
    }
}

#[tokio::test]
async fn signup_with_malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .post(app.url("/v1/auth/signup"))
        .header("content-type", "application/json")
        .body(r#"{"email": "broken@example.com", "password": "#)
        .send()
        .await
        .unwrap();
    expect_problem(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn signup_with_a_missing_field_is_422_naming_it() {
    let app = TestApp::spawn().await;
    let no_password = json!({"email": "missing@example.com"});
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(&no_password),
    )
    .await;
    expect_invalid(response, "password").await;
    let no_email = json!({"password": PASSWORD});
    let response = send(&app, Method::POST, "/v1/auth/signup", None, Some(&no_email)).await;
    expect_invalid(response, "email").await;
}

#[tokio::test]
async fn signup_with_a_wrong_type_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    let numeric_email = json!({"email": 42, "password": PASSWORD});
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(&numeric_email),
    )
    .await;
    expect_invalid(response, "email").await;
    let boolean_password = json!({"email": "types@example.com", "password": true});
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(&boolean_password),
    )
    .await;
    expect_invalid(response, "password").await;
}

#[tokio::test]
async fn signup_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let body = json!({
        "email": "big@example.com",
        "password": PASSWORD,
        "display_name": "n".repeat(70 * 1024),
    });
    let response = send(&app, Method::POST, "/v1/auth/signup", None, Some(&body)).await;
    expect_problem(response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn signups_beyond_the_hourly_limit_per_ip_are_429() {
    let app = TestApp::spawn_with(|config| config.auth.signups_per_address_per_hour = 3).await;
    for n in 0..3 {
        signup(&app, &format!("crowd{n}@example.com")).await;
    }
    expect_throttled(signup_response(&app, "crowd3@example.com", PASSWORD).await).await;
}

// ---------------------------------------------------------------------------------------
// Login
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn login_with_the_right_password_returns_200_and_a_new_session() {
    let app = TestApp::spawn().await;
    let signed_up = signup(&app, "grace@example.com").await;
    let session = login(&app, LAPTOP, "grace@example.com", PASSWORD).await;
    assert_eq!(session.user_id(), signed_up.user_id());
    assert_eq!(session.user["email"], "grace@example.com");
    assert_ne!(session.refresh, signed_up.refresh);
    assert_eq!(me(&app, &session.access).await["id"], signed_up.user["id"]);
}

#[tokio::test]
async fn login_normalises_the_email_like_signup() {
    let app = TestApp::spawn().await;
    let signed_up = signup(&app, "grace@example.com").await;
    let session = login(&app, PHONE, "  Grace@EXAMPLE.com ", PASSWORD).await;
    assert_eq!(session.user_id(), signed_up.user_id());
}

#[tokio::test]
async fn login_with_a_wrong_password_or_an_unknown_email_is_the_same_401() {
    let app = TestApp::spawn().await;
    signup(&app, "grace@example.com").await;
    let wrong_password = expect_problem(
        login_response(&app, "grace@example.com", "not the password at all").await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let unknown_email = expect_problem(
        login_response(&app, "nobody@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(wrong_password, unknown_email);
}

#[tokio::test]
async fn login_after_five_failures_is_429_even_with_the_right_password() {
    let app = TestApp::spawn().await;
    signup(&app, "target@example.com").await;
    for _ in 0..5 {
        expect_problem(
            login_response(&app, "target@example.com", "guess guess guess").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let retry_after =
        expect_throttled(login_response(&app, "target@example.com", PASSWORD).await).await;
    assert!(
        retry_after <= 900,
        "Retry-After {retry_after} beyond the window"
    );
}

#[tokio::test]
async fn login_throttle_lifts_when_the_window_has_passed() {
    let app = TestApp::spawn_with(|config| config.auth.login_window_seconds = 2).await;
    signup(&app, "patient@example.com").await;
    for _ in 0..5 {
        expect_problem(
            login_response(&app, "patient@example.com", "guess guess guess").await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    let retry_after =
        expect_throttled(login_response(&app, "patient@example.com", PASSWORD).await).await;
    assert!(
        retry_after <= 2,
        "Retry-After {retry_after} beyond a 2 s window"
    );
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    expect_status(
        login_response(&app, "patient@example.com", PASSWORD).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn login_throttle_of_one_account_leaves_other_accounts_alone() {
    let app = TestApp::spawn().await;
    signup(&app, "target@example.com").await;
    signup(&app, "bystander@example.com").await;
    for _ in 0..5 {
        login_response(&app, "target@example.com", "guess guess guess").await;
    }
    expect_throttled(login_response(&app, "target@example.com", PASSWORD).await).await;
    expect_status(
        login_response(&app, "bystander@example.com", PASSWORD).await,
        StatusCode::OK,
    )
    .await;
}

#[tokio::test]
async fn login_failures_from_one_ip_across_accounts_are_throttled() {
    let app = TestApp::spawn_with(|config| config.auth.login_attempts_per_ip = 3).await;
    for n in 0..3 {
        expect_problem(
            login_response(&app, &format!("sprayed{n}@example.com"), PASSWORD).await,
            StatusCode::UNAUTHORIZED,
        )
        .await;
    }
    expect_throttled(login_response(&app, "sprayed3@example.com", PASSWORD).await).await;
}

// ---------------------------------------------------------------------------------------
// Anonymous readers
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn anonymous_returns_201_with_an_anonymous_reader() {
    let app = TestApp::spawn().await;
    let session = anonymous(&app).await;
    assert_eq!(session.user["is_anonymous"], true);
    assert_eq!(session.user["email"], Value::Null);
    assert_eq!(session.user["role"], "reader");
    let profile = me(&app, &session.access).await;
    assert_eq!(profile["id"], session.user["id"]);
    assert_eq!(profile["is_anonymous"], true);
    assert_eq!(profile["email"], Value::Null);
}

#[tokio::test]
async fn each_anonymous_install_is_a_different_user() {
    let app = TestApp::spawn().await;
    let first = anonymous(&app).await;
    let second = anonymous(&app).await;
    assert_ne!(first.user_id(), second.user_id());
}

// ---------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_returns_a_new_pair_for_the_same_user() {
    let app = TestApp::spawn().await;
    let first = signup(&app, "rotate@example.com").await;
    let second = refresh(&app, &first.refresh).await;
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    assert_eq!(second.user_id(), first.user_id());
    assert_eq!(me(&app, &second.access).await["id"], first.user["id"]);
    // The new refresh token is good for another rotation.
    let third = refresh(&app, &second.refresh).await;
    assert_eq!(third.user_id(), first.user_id());
}

#[tokio::test]
async fn refresh_keeps_the_session() {
    let app = TestApp::spawn().await;
    let first = signup(&app, "same-session@example.com").await;
    let second = refresh(&app, &first.refresh).await;
    let (_, before) = jwt_parts(&first.access);
    let (_, after) = jwt_parts(&second.access);
    assert_eq!(after["sid"], before["sid"]);
    assert_eq!(
        sessions(&app, &second.access).await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_after_the_grace_window_revokes_the_session() {
    let app = TestApp::spawn_with(|config| config.auth.refresh_reuse_grace_seconds = 0).await;
    let first = signup(&app, "stolen@example.com").await;
    let second = refresh(&app, &first.refresh).await;
    assert_refresh_refused(&app, &first.refresh).await;
    // The whole session is gone: the successor and every access token of it.
    assert_refresh_refused(&app, &second.refresh).await;
    assert_access_refused(&app, &second.access).await;
    assert_access_refused(&app, &first.access).await;
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_leaves_the_users_other_sessions_alone() {
    let app = TestApp::spawn_with(|config| config.auth.refresh_reuse_grace_seconds = 0).await;
    let phone = signup(&app, "two-devices@example.com").await;
    let laptop = login(&app, LAPTOP, "two-devices@example.com", PASSWORD).await;
    refresh(&app, &phone.refresh).await;
    assert_refresh_refused(&app, &phone.refresh).await;
    me(&app, &laptop.access).await;
    refresh(&app, &laptop.refresh).await;
}

#[tokio::test]
async fn reusing_the_just_spent_refresh_token_within_the_grace_window_reissues() {
    let app = TestApp::spawn_with(|config| config.auth.refresh_reuse_grace_seconds = 10).await;
    let first = signup(&app, "lost-response@example.com").await;
    let lost = refresh(&app, &first.refresh).await;
    // The response carrying `lost` never arrived; the app retries with the same token.
    let retried = refresh(&app, &first.refresh).await;
    assert_eq!(retried.user_id(), first.user_id());
    assert_ne!(retried.refresh, lost.refresh);
    me(&app, &retried.access).await;
    let next = refresh(&app, &retried.refresh).await;
    me(&app, &next.access).await;
    // The successor issued before the retry is no longer valid.
    assert_refresh_refused(&app, &lost.refresh).await;
}

#[tokio::test]
async fn refresh_with_an_unknown_token_is_401() {
    let app = TestApp::spawn().await;
    let well_formed = b64(&[7_u8; 32]);
    for token in ["garbage", "", well_formed.as_str()] {
        assert_refresh_refused(&app, token).await;
    }
}

#[tokio::test]
async fn refresh_and_access_tokens_are_not_interchangeable() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "mixup@example.com").await;
    assert_access_refused(&app, &session.refresh).await;
    assert_refresh_refused(&app, &session.access).await;
    // Neither attempt harmed the session.
    refresh(&app, &session.refresh).await;
}

// ---------------------------------------------------------------------------------------
// Logout
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_ends_the_session() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "bye@example.com").await;
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/logout",
        Some(&session.access),
        Some(&json!({"refresh_token": session.refresh})),
    )
    .await;
    expect_status(response, StatusCode::NO_CONTENT).await;
    assert_access_refused(&app, &session.access).await;
    assert_refresh_refused(&app, &session.refresh).await;
}

#[tokio::test]
async fn logout_without_a_refresh_token_still_ends_the_session() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "bye@example.com").await;
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/logout",
        Some(&session.access),
        Some(&json!({})),
    )
    .await;
    expect_status(response, StatusCode::NO_CONTENT).await;
    assert_access_refused(&app, &session.access).await;
    assert_refresh_refused(&app, &session.refresh).await;
}

#[tokio::test]
async fn logout_leaves_the_users_other_sessions_alone() {
    let app = TestApp::spawn().await;
    let phone = signup(&app, "two@example.com").await;
    let laptop = login(&app, LAPTOP, "two@example.com", PASSWORD).await;
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/logout",
        Some(&phone.access),
        Some(&json!({"refresh_token": phone.refresh})),
    )
    .await;
    expect_status(response, StatusCode::NO_CONTENT).await;
    me(&app, &laptop.access).await;
    refresh(&app, &laptop.refresh).await;
}

// ---------------------------------------------------------------------------------------
// Sign in with Google and Apple
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn google_sign_in_creates_an_account_and_finds_it_again() {
    let (app, _provider) = spawn_with_providers().await;
    let claims = google_claims("110169484474386276334", Some("reader@gmail.com"));
    let first = oidc(&app, "google", &PROVIDER_KEY.id_token(&claims), None).await;
    assert_eq!(first.user["is_anonymous"], false);
    assert_eq!(first.user["role"], "reader");
    me(&app, &first.access).await;

    let claims = google_claims("110169484474386276334", Some("reader@gmail.com"));
    let second = oidc(&app, "google", &PROVIDER_KEY.id_token(&claims), None).await;
    assert_eq!(second.user_id(), first.user_id());
    assert_ne!(second.refresh, first.refresh);
}

#[tokio::test]
async fn google_sign_in_with_another_subject_is_another_user() {
    let (app, _provider) = spawn_with_providers().await;
    let one = PROVIDER_KEY.id_token(&google_claims("subject-one", None));
    let two = PROVIDER_KEY.id_token(&google_claims("subject-two", None));
    let first = oidc(&app, "google", &one, None).await;
    let second = oidc(&app, "google", &two, None).await;
    assert_ne!(first.user_id(), second.user_id());
}

#[tokio::test]
async fn google_sign_in_checks_the_nonce_as_sent() {
    let (app, _provider) = spawn_with_providers().await;
    let mut claims = google_claims("nonce-subject", None);
    claims["nonce"] = json!("n-0S6_WzA2Mj");
    let token = PROVIDER_KEY.id_token(&claims);
    expect_problem(
        oidc_response(&app, "google", &token, Some("n-0S6_WzA2Mk")).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    oidc(&app, "google", &token, Some("n-0S6_WzA2Mj")).await;
}

#[tokio::test]
async fn google_id_token_for_another_client_is_401() {
    let (app, _provider) = spawn_with_providers().await;
    assert_google_sign_in_works(&app).await;
    let mut claims = google_claims("aud-subject", None);
    claims["aud"] = json!("someone-elses-client.apps.googleusercontent.com");
    claims["azp"] = claims["aud"].clone();
    let response = oidc_response(&app, "google", &PROVIDER_KEY.id_token(&claims), None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn google_id_token_from_another_issuer_is_401() {
    let (app, _provider) = spawn_with_providers().await;
    assert_google_sign_in_works(&app).await;
    let mut claims = google_claims("iss-subject", None);
    claims["iss"] = json!("https://accounts.google.com.evil.example");
    let response = oidc_response(&app, "google", &PROVIDER_KEY.id_token(&claims), None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn expired_google_id_token_is_401() {
    let (app, _provider) = spawn_with_providers().await;
    assert_google_sign_in_works(&app).await;
    let mut claims = google_claims("expired-subject", None);
    claims["iat"] = json!(unix_now() - 7200);
    claims["exp"] = json!(unix_now() - 3600);
    let response = oidc_response(&app, "google", &PROVIDER_KEY.id_token(&claims), None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn google_id_token_signed_by_another_key_with_the_same_kid_is_401() {
    let (app, _provider) = spawn_with_providers().await;
    assert_google_sign_in_works(&app).await;
    assert_eq!(IMPOSTOR_KEY.kid(), PROVIDER_KEY.kid());
    let forged = IMPOSTOR_KEY.id_token(&google_claims("forged-subject", None));
    let response = oidc_response(&app, "google", &forged, None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn google_id_token_with_alg_none_or_hs256_is_401() {
    let (app, _provider) = spawn_with_providers().await;
    assert_google_sign_in_works(&app).await;
    let claims = google_claims("alg-subject", None);
    let none = format!(
        "{}.",
        signing_input(&json!({"alg": "none", "kid": PROVIDER_KEY.kid()}), &claims)
    );
    expect_problem(
        oidc_response(&app, "google", &none, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let hs = hs256(
        &PROVIDER_KEY.modulus(),
        &json!({"alg": "HS256", "typ": "JWT", "kid": PROVIDER_KEY.kid()}),
        &claims,
    );
    expect_problem(
        oidc_response(&app, "google", &hs, None).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn apple_sign_in_accepts_the_hash_of_the_raw_nonce() {
    let (app, _provider) = spawn_with_providers().await;
    let claims = apple_claims("001234.0a1b2c3d4e5f.1234", None, "raw-nonce-1");
    let first = oidc(
        &app,
        "apple",
        &PROVIDER_KEY.id_token(&claims),
        Some("raw-nonce-1"),
    )
    .await;
    assert_eq!(first.user["is_anonymous"], false);
    assert_eq!(first.user["role"], "reader");
    let claims = apple_claims("001234.0a1b2c3d4e5f.1234", None, "raw-nonce-2");
    let second = oidc(
        &app,
        "apple",
        &PROVIDER_KEY.id_token(&claims),
        Some("raw-nonce-2"),
    )
    .await;
    assert_eq!(second.user_id(), first.user_id());
}

#[tokio::test]
async fn apple_sign_in_with_the_wrong_nonce_is_401() {
    let (app, _provider) = spawn_with_providers().await;
    let token = PROVIDER_KEY.id_token(&apple_claims("apple-nonce-subject", None, "raw-nonce"));
    for sent in [
        Some("other-nonce"),
        Some(sha256_hex("raw-nonce").as_str()),
        None,
    ] {
        let response = oidc_response(&app, "apple", &token, sent).await;
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
    // The same token with the right raw nonce is fine, so the refusals were about the nonce.
    oidc(&app, "apple", &token, Some("raw-nonce")).await;
}

#[tokio::test]
async fn apple_id_token_for_another_client_is_401() {
    let (app, _provider) = spawn_with_providers().await;
    let mut claims = apple_claims("apple-aud-subject", None, "n");
    claims["aud"] = json!(GOOGLE_CLIENT_ID);
    let response = oidc_response(&app, "apple", &PROVIDER_KEY.id_token(&claims), Some("n")).await;
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
    claims["aud"] = json!(APPLE_CLIENT_ID);
    oidc(&app, "apple", &PROVIDER_KEY.id_token(&claims), Some("n")).await;
}

#[tokio::test]
async fn a_google_id_token_is_not_an_apple_id_token() {
    let (app, _provider) = spawn_with_providers().await;
    assert_google_sign_in_works(&app).await;
    let token = PROVIDER_KEY.id_token(&google_claims("cross-subject", None));
    let response = oidc_response(&app, "apple", &token, None).await;
    expect_problem(response, StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn oidc_sign_in_with_the_email_of_a_password_account_is_409_not_a_merge() {
    let (app, _provider) = spawn_with_providers().await;
    let db = app.db.connect().await;
    let existing = signup(&app, "ada@example.com").await;
    let before = account_rows(&db).await;
    let claims = google_claims("google-ada", Some("Ada@Example.com"));
    let response = oidc_response(&app, "google", &PROVIDER_KEY.id_token(&claims), None).await;
    expect_problem(response, StatusCode::CONFLICT).await;
    let claims = apple_claims("apple-ada", Some("ada@example.com"), "n");
    let response = oidc_response(&app, "apple", &PROVIDER_KEY.id_token(&claims), Some("n")).await;
    expect_problem(response, StatusCode::CONFLICT).await;
    // No identity was attached to the password account, and no second user was made.
    let after = account_rows(&db).await;
    assert_eq!(
        (after[0], after[3]),
        (before[0], before[3]),
        "users, identities"
    );
    let again = login(&app, PHONE, "ada@example.com", PASSWORD).await;
    assert_eq!(again.user_id(), existing.user_id());
}

// ---------------------------------------------------------------------------------------
// Profile
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn me_returns_the_profile() {
    let app = TestApp::spawn().await;
    let response = send(
        &app,
        Method::POST,
        "/v1/auth/signup",
        None,
        Some(&json!({"email": "profile@example.com", "password": PASSWORD, "display_name": "Pro"})),
    )
    .await;
    let session = token_response(&expect_status(response, StatusCode::CREATED).await);
    let profile = me(&app, &session.access).await;
    assert_eq!(profile["id"], session.user["id"]);
    assert_eq!(profile["email"], "profile@example.com");
    assert_eq!(profile["display_name"], "Pro");
    assert_eq!(profile["is_anonymous"], false);
    assert_eq!(profile["role"], "reader");
    let created_at = profile["created_at"].as_str().expect("created_at");
    let created_at = chrono::DateTime::parse_from_rfc3339(created_at)
        .unwrap_or_else(|e| panic!("created_at {created_at:?} is not RFC 3339: {e}"));
    let age = chrono::Utc::now().signed_duration_since(created_at);
    assert!(
        age.num_seconds().abs() < 120,
        "created_at {created_at} is not now"
    );
    let keys: Vec<&String> = profile.as_object().expect("object").keys().collect();
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("password") || k.contains("hash")),
        "profile leaks secrets: {profile}"
    );
}

#[tokio::test]
async fn me_without_a_valid_token_is_401() {
    let app = TestApp::spawn().await;
    expect_problem(app.get("/v1/me").await, StatusCode::UNAUTHORIZED).await;
    for authorization in [
        "Bearer garbage",
        "Bearer ",
        "Bearer a.b.c",
        "Basic dXNlcjpwYXNzd29yZA==",
    ] {
        let response = app
            .client
            .get(app.url("/v1/me"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        expect_problem(response, StatusCode::UNAUTHORIZED).await;
    }
}

#[tokio::test]
async fn patch_me_updates_the_display_name() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "rename@example.com").await;
    let response = send(
        &app,
        Method::PATCH,
        "/v1/me",
        Some(&session.access),
        Some(&json!({"display_name": "Grace Hopper"})),
    )
    .await;
    let updated = expect_status(response, StatusCode::OK).await;
    assert_eq!(updated["id"], session.user["id"]);
    assert_eq!(updated["display_name"], "Grace Hopper");
    assert_eq!(updated["email"], "rename@example.com");
    assert_eq!(
        me(&app, &session.access).await["display_name"],
        "Grace Hopper"
    );
}

#[tokio::test]
async fn delete_me_removes_the_user_their_sessions_and_tokens() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let before = account_rows(&db).await;
    let phone = signup(&app, "leaving@example.com").await;
    let laptop = login(&app, LAPTOP, "leaving@example.com", PASSWORD).await;
    refresh(&app, &laptop.refresh).await;
    let during = account_rows(&db).await;
    assert_eq!(during[0], before[0] + 1, "users while signed up");
    assert!(during[1] >= before[1] + 2, "sessions while signed up");
    assert!(during[2] >= before[2] + 2, "refresh tokens while signed up");

    let response = send(
        &app,
        Method::DELETE,
        "/v1/me",
        Some(&phone.access),
        Some(&json!({"password": PASSWORD})),
    )
    .await;
    expect_status(response, StatusCode::NO_CONTENT).await;

    assert_access_refused(&app, &phone.access).await;
    assert_access_refused(&app, &laptop.access).await;
    assert_refresh_refused(&app, &phone.refresh).await;
    expect_problem(
        login_response(&app, "leaving@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(
        account_rows(&db).await,
        before,
        "users, sessions, refresh_tokens, identities"
    );
}

#[tokio::test]
async fn delete_me_removes_the_users_sign_in_identities() {
    let (app, _provider) = spawn_with_providers().await;
    let db = app.db.connect().await;
    let before = account_rows(&db).await;
    let token = PROVIDER_KEY.id_token(&google_claims("deleted-subject", None));
    let session = oidc(&app, "google", &token, None).await;
    assert_eq!(count_rows(&db, "identities").await, before[3] + 1);

    let response = send(&app, Method::DELETE, "/v1/me", Some(&session.access), None).await;
    expect_status(response, StatusCode::NO_CONTENT).await;
    assert_access_refused(&app, &session.access).await;
    assert_eq!(
        account_rows(&db).await,
        before,
        "users, sessions, refresh_tokens, identities"
    );

    // Signing in again with the same Google account starts afresh.
    let token = PROVIDER_KEY.id_token(&google_claims("deleted-subject", None));
    let again = oidc(&app, "google", &token, None).await;
    assert_ne!(again.user_id(), session.user_id());
}

#[tokio::test]
async fn delete_me_leaves_other_users_alone() {
    let app = TestApp::spawn().await;
    let leaving = signup(&app, "leaving@example.com").await;
    let staying = signup(&app, "staying@example.com").await;
    let response = send(
        &app,
        Method::DELETE,
        "/v1/me",
        Some(&leaving.access),
        Some(&json!({"password": PASSWORD})),
    )
    .await;
    expect_status(response, StatusCode::NO_CONTENT).await;
    me(&app, &staying.access).await;
    refresh(&app, &staying.refresh).await;
    login(&app, PHONE, "staying@example.com", PASSWORD).await;
}

// ---------------------------------------------------------------------------------------
// Linking an anonymous reader to a full account
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn anonymous_reader_links_an_email_and_password_keeping_the_user_id() {
    let app = TestApp::spawn().await;
    let reader = anonymous(&app).await;
    let response = send(
        &app,
        Method::POST,
        "/v1/me/link",
        Some(&reader.access),
        Some(&json!({"email": " Linked@Example.com", "password": PASSWORD})),
    )
    .await;
    let linked = token_response(&expect_status(response, StatusCode::OK).await);
    assert_eq!(linked.user_id(), reader.user_id());
    assert_eq!(linked.user["is_anonymous"], false);
    assert_eq!(linked.user["email"], "linked@example.com");
    let profile = me(&app, &linked.access).await;
    assert_eq!(profile["is_anonymous"], false);
    let again = login(&app, LAPTOP, "linked@example.com", PASSWORD).await;
    assert_eq!(again.user_id(), reader.user_id());
}

#[tokio::test]
async fn anonymous_reader_links_google_keeping_the_user_id() {
    let (app, _provider) = spawn_with_providers().await;
    let reader = anonymous(&app).await;
    let token = PROVIDER_KEY.id_token(&google_claims("link-subject", None));
    let response = send(
        &app,
        Method::POST,
        "/v1/me/link",
        Some(&reader.access),
        Some(&json!({"provider": "google", "id_token": token})),
    )
    .await;
    let linked = token_response(&expect_status(response, StatusCode::OK).await);
    assert_eq!(linked.user_id(), reader.user_id());
    assert_eq!(linked.user["is_anonymous"], false);
    let token = PROVIDER_KEY.id_token(&google_claims("link-subject", None));
    let signed_in = oidc(&app, "google", &token, None).await;
    assert_eq!(signed_in.user_id(), reader.user_id());
}

#[tokio::test]
async fn anonymous_reader_links_apple_with_a_nonce_keeping_the_user_id() {
    let (app, _provider) = spawn_with_providers().await;
    let reader = anonymous(&app).await;
    let token = PROVIDER_KEY.id_token(&apple_claims("apple-link-subject", None, "link-nonce"));
    let response = send(
        &app,
        Method::POST,
        "/v1/me/link",
        Some(&reader.access),
        Some(&json!({"provider": "apple", "id_token": token, "nonce": "link-nonce"})),
    )
    .await;
    let linked = token_response(&expect_status(response, StatusCode::OK).await);
    assert_eq!(linked.user_id(), reader.user_id());
    assert_eq!(linked.user["is_anonymous"], false);
}

#[tokio::test]
async fn linking_an_already_full_account_is_409() {
    let (app, _provider) = spawn_with_providers().await;
    let full = signup(&app, "full@example.com").await;
    let response = send(
        &app,
        Method::POST,
        "/v1/me/link",
        Some(&full.access),
        Some(&json!({"email": "second@example.com", "password": PASSWORD})),
    )
    .await;
    expect_problem(response, StatusCode::CONFLICT).await;
    let token = PROVIDER_KEY.id_token(&google_claims("full-link-subject", None));
    let response = send(
        &app,
        Method::POST,
        "/v1/me/link",
        Some(&full.access),
        Some(&json!({"provider": "google", "id_token": token})),
    )
    .await;
    expect_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(me(&app, &full.access).await["email"], "full@example.com");
}

#[tokio::test]
async fn linking_an_email_that_is_taken_is_409() {
    let app = TestApp::spawn().await;
    signup(&app, "taken@example.com").await;
    let reader = anonymous(&app).await;
    let response = send(
        &app,
        Method::POST,
        "/v1/me/link",
        Some(&reader.access),
        Some(&json!({"email": "Taken@example.com", "password": PASSWORD})),
    )
    .await;
    expect_problem(response, StatusCode::CONFLICT).await;
    assert_eq!(me(&app, &reader.access).await["is_anonymous"], true);
}

// ---------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sessions_lists_each_device_and_marks_the_current_one() {
    let app = TestApp::spawn().await;
    let phone = signup(&app, "devices@example.com").await;
    let laptop = login(&app, LAPTOP, "devices@example.com", PASSWORD).await;
    let list = sessions(&app, &laptop.access).await;
    assert_eq!(list["next_cursor"], Value::Null, "{list}");
    let items = list["items"].as_array().expect("items");
    assert_eq!(items.len(), 2, "{list}");
    for item in items {
        for key in [
            "id",
            "user_agent",
            "ip",
            "created_at",
            "last_used_at",
            "current",
        ] {
            assert!(item.get(key).is_some(), "session.{key} missing: {list}");
        }
        assert_eq!(item["ip"], "127.0.0.1", "{list}");
    }
    let current = session_with_agent(&list, LAPTOP);
    assert_eq!(current["current"], true, "{list}");
    assert_eq!(current["id"], jwt_parts(&laptop.access).1["sid"], "{list}");
    assert_eq!(session_with_agent(&list, PHONE)["current"], false, "{list}");
    // Asked from the phone, the phone's session is the current one.
    let list = sessions(&app, &phone.access).await;
    assert_eq!(session_with_agent(&list, PHONE)["current"], true, "{list}");
}

#[tokio::test]
async fn sessions_of_other_users_are_not_listed() {
    let app = TestApp::spawn().await;
    let mine = signup(&app, "mine@example.com").await;
    signup(&app, "theirs@example.com").await;
    let list = sessions(&app, &mine.access).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn revoking_a_session_ends_it_and_only_it() {
    let app = TestApp::spawn().await;
    let phone = signup(&app, "revoke@example.com").await;
    let laptop = login(&app, LAPTOP, "revoke@example.com", PASSWORD).await;
    let list = sessions(&app, &phone.access).await;
    let laptop_id = session_with_agent(&list, LAPTOP)["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let response = send(
        &app,
        Method::DELETE,
        &format!("/v1/me/sessions/{laptop_id}"),
        Some(&phone.access),
        None,
    )
    .await;
    expect_status(response, StatusCode::NO_CONTENT).await;
    assert_access_refused(&app, &laptop.access).await;
    assert_refresh_refused(&app, &laptop.refresh).await;
    me(&app, &phone.access).await;
    let list = sessions(&app, &phone.access).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn revoking_an_unknown_session_is_404() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "unknown-session@example.com").await;
    let path = format!("/v1/me/sessions/{}", uuid::Uuid::new_v4());
    let response = send(&app, Method::DELETE, &path, Some(&session.access), None).await;
    expect_problem(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn revoking_another_users_session_is_404_and_leaves_it_alone() {
    let app = TestApp::spawn().await;
    let attacker = signup(&app, "attacker@example.com").await;
    let victim = signup(&app, "victim@example.com").await;
    let list = sessions(&app, &victim.access).await;
    let victim_session = list["items"][0]["id"]
        .as_str()
        .expect("session id")
        .to_owned();
    let response = send(
        &app,
        Method::DELETE,
        &format!("/v1/me/sessions/{victim_session}"),
        Some(&attacker.access),
        None,
    )
    .await;
    expect_problem(response, StatusCode::NOT_FOUND).await;
    me(&app, &victim.access).await;
    refresh(&app, &victim.refresh).await;
}

// ---------------------------------------------------------------------------------------
// Password change
// ---------------------------------------------------------------------------------------

async fn change_password(app: &TestApp, access: &str, current: &str, new: &str) -> Response {
    send(
        app,
        Method::POST,
        "/v1/me/password",
        Some(access),
        Some(&json!({"current_password": current, "new_password": new})),
    )
    .await
}

#[tokio::test]
async fn changing_the_password_ends_the_other_sessions_only() {
    let app = TestApp::spawn().await;
    let phone = signup(&app, "changer@example.com").await;
    let laptop = login(&app, LAPTOP, "changer@example.com", PASSWORD).await;
    expect_status(
        change_password(&app, &phone.access, PASSWORD, NEW_PASSWORD).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    assert_access_refused(&app, &laptop.access).await;
    assert_refresh_refused(&app, &laptop.refresh).await;
    me(&app, &phone.access).await;
    refresh(&app, &phone.refresh).await;
}

#[tokio::test]
async fn after_a_password_change_only_the_new_password_logs_in() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "changer@example.com").await;
    expect_status(
        change_password(&app, &session.access, PASSWORD, NEW_PASSWORD).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    expect_problem(
        login_response(&app, "changer@example.com", PASSWORD).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let again = login(&app, LAPTOP, "changer@example.com", NEW_PASSWORD).await;
    assert_eq!(again.user_id(), session.user_id());
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one() {
    let app = TestApp::spawn().await;
    let phone = signup(&app, "careful@example.com").await;
    let laptop = login(&app, LAPTOP, "careful@example.com", PASSWORD).await;
    let response = change_password(&app, &phone.access, "not my password", NEW_PASSWORD).await;
    let status = response.status();
    let body = response.text().await.unwrap();
    assert!(status.is_client_error(), "{status}: {body}");
    // Nothing changed: the old password works, the other session lives.
    login(&app, PHONE, "careful@example.com", PASSWORD).await;
    me(&app, &laptop.access).await;
}

#[tokio::test]
async fn a_new_password_must_meet_the_policy() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "weak@example.com").await;
    let response = change_password(&app, &session.access, PASSWORD, "password123").await;
    expect_invalid(response, "new_password").await;
    login(&app, PHONE, "weak@example.com", PASSWORD).await;
}

// ---------------------------------------------------------------------------------------
// Access tokens and the JWKS
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn jwks_publishes_the_key_that_verifies_access_tokens() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "verify@example.com").await;
    let document = jwks(&app).await;
    let keys = document["keys"].as_array().expect("keys");
    assert!(!keys.is_empty(), "{document}");
    for key in keys {
        assert_eq!(key["kty"], "EC", "{key}");
        assert_eq!(key["crv"], "P-256", "{key}");
        assert_eq!(key["alg"], "ES256", "{key}");
        assert_eq!(key["use"], "sig", "{key}");
        assert!(key["kid"].is_string() && key["x"].is_string() && key["y"].is_string());
        assert!(key.get("d").is_none(), "private key published: {key}");
    }
    let header = jsonwebtoken::decode_header(&session.access).unwrap();
    let kid = header.kid.expect("kid");
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(published_key(&app, &kid).await).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[&app.config.auth.audience]);
    validation.set_issuer(&[&app.config.auth.issuer]);
    let claims = jsonwebtoken::decode::<Value>(&session.access, &key, &validation)
        .unwrap()
        .claims;
    assert_eq!(claims["sub"], session.user["id"]);
    assert_eq!(claims["role"], "reader");
    uuid::Uuid::parse_str(claims["sid"].as_str().expect("sid")).expect("sid is a UUID");
}

#[tokio::test]
async fn expires_in_is_the_access_token_lifetime() {
    let app = TestApp::spawn_with(|config| config.auth.access_token_ttl_seconds = 120).await;
    let response = signup_response(&app, "ttl@example.com", PASSWORD).await;
    let body = expect_status(response, StatusCode::CREATED).await;
    assert_eq!(body["expires_in"], 120, "{body}");
    let (_, claims) = jwt_parts(body["access_token"].as_str().expect("access_token"));
    let lifetime = claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat");
    assert_eq!(lifetime, 120, "{claims}");
}

#[tokio::test]
async fn new_accounts_are_readers() {
    let (app, _provider) = spawn_with_providers().await;
    let token = PROVIDER_KEY.id_token(&google_claims("role-subject", None));
    let sessions = [
        signup(&app, "role@example.com").await,
        anonymous(&app).await,
        oidc(&app, "google", &token, None).await,
    ];
    for session in sessions {
        assert_eq!(session.user["role"], "reader");
        assert_eq!(me(&app, &session.access).await["role"], "reader");
        assert_eq!(jwt_parts(&session.access).1["role"], "reader");
    }
}

#[tokio::test]
async fn access_token_with_alg_none_is_401() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "none@example.com").await;
    let (header, claims, _) = access_token_material(&app, &session.access).await;
    for alg in ["none", "None", "NONE"] {
        let mut unsigned = header.clone();
        unsigned["alg"] = json!(alg);
        let token = format!("{}.", signing_input(&unsigned, &claims));
        assert_access_refused(&app, &token).await;
    }
}

#[tokio::test]
async fn hs256_access_token_keyed_with_the_public_key_is_401() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "confused@example.com").await;
    let (mut header, claims, _) = access_token_material(&app, &session.access).await;
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let jwk = published_key(&app, &kid).await;
    let point = public_point(&jwk);
    let spki = spki_der(&point);
    header["alg"] = json!("HS256");
    let secrets: [Vec<u8>; 5] = [
        point.clone(),
        point[1..].to_vec(),
        spki.clone(),
        pem(&spki).into_bytes(),
        jwk.to_string().into_bytes(),
    ];
    for secret in secrets {
        assert_access_refused(&app, &hs256(&secret, &header, &claims)).await;
    }
}

#[tokio::test]
async fn expired_access_token_is_401() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "expired@example.com").await;
    let (header, mut claims, key) = access_token_material(&app, &session.access).await;
    claims["iat"] = json!(unix_now() - 7200);
    claims["exp"] = json!(unix_now() - 3600);
    assert_access_refused(&app, &es256(&key, &header, &claims)).await;
}

#[tokio::test]
async fn access_token_signed_by_another_key_is_401() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "forged@example.com").await;
    let (header, claims, _) = access_token_material(&app, &session.access).await;
    let other =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("P-256 key");
    // Same kid, same claims, another key.
    assert_access_refused(&app, &es256(other.as_ref(), &header, &claims)).await;
    // And an expired one from that key too.
    let mut expired = claims.clone();
    expired["exp"] = json!(unix_now() - 3600);
    assert_access_refused(&app, &es256(other.as_ref(), &header, &expired)).await;
}

#[tokio::test]
async fn access_token_for_another_audience_is_401() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "audience@example.com").await;
    let (header, mut claims, key) = access_token_material(&app, &session.access).await;
    claims["aud"] = json!("someone-else");
    assert_access_refused(&app, &es256(&key, &header, &claims)).await;
}

#[tokio::test]
async fn access_token_from_another_issuer_is_401() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "issuer@example.com").await;
    let (header, mut claims, key) = access_token_material(&app, &session.access).await;
    claims["iss"] = json!("not-herald");
    assert_access_refused(&app, &es256(&key, &header, &claims)).await;
}

#[tokio::test]
async fn access_token_with_an_edited_payload_is_401() {
    let app = TestApp::spawn().await;
    let session = signup(&app, "escalate@example.com").await;
    let (header, mut claims) = jwt_parts(&session.access);
    claims["role"] = json!("admin");
    let signature = session.access.rsplit('.').next().expect("signature");
    let edited = format!("{}.{signature}", signing_input(&header, &claims));
    assert_access_refused(&app, &edited).await;
    me(&app, &session.access).await;
}
