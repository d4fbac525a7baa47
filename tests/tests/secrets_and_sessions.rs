#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Issue #19, "Secrets and sessions" and the text of comments and names: private keys sealed at
//! rest, owner-only data files, sessions that end when a role changes or an account goes, the
//! password asked again, the 12-character minimum and hash upgrades, security headers and the
//! metrics token. Storage tests run on SQLite, and on PostgreSQL with
//! `HERALD_TEST_DATABASE_URL`.

use herald::config::Config;
use herald_store::Secret;
use herald_store::testing::TestDb;
use herald_store::users::Role;
use herald_tests::TestApp;
use herald_tests::accounts::{field_refused, log_in, me_status, problem, refresh_status, sign_up};
use herald_tests::newsroom::{PASSWORD, story_with_two_articles};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

/// Two keys for sealing, base64 of 32 bytes each.
const KEY_A: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
const KEY_B: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";

// ---------------------------------------------------------------------------------------
// Text other readers see
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn comments_and_display_names_refuse_bidi_controls_and_invisible_characters() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let (_, article, _) = story_with_two_articles(&db, "Budget").await;
    let comments = format!("/v1/articles/{}/comments", article.id);
    let writer = sign_up(&app, "writer@example.com", PASSWORD).await;

    for hidden in ["\u{202E}", "\u{2066}", "\u{200B}", "\u{FEFF}", "\u{2060}"] {
        let body = format!("harmless{hidden}exe.png");
        let refused = app
            .call(
                Method::POST,
                &comments,
                &writer.access,
                Some(json!({"body": body})),
            )
            .await;
        field_refused(refused, "body").await;
        let refused = app
            .call(
                Method::PATCH,
                "/v1/me",
                &writer.access,
                Some(json!({"display_name": format!("ad{hidden}min")})),
            )
            .await;
        field_refused(refused, "display_name").await;
        let refused = app
            .post_json(
                "/v1/auth/signup",
                &json!({"email": "other@example.com", "password": PASSWORD,
                        "display_name": format!("{hidden}Editor")}),
            )
            .await;
        field_refused(refused, "display_name").await;
    }
    // Nothing was stored by the refusals.
    let listed: serde_json::Value = app.get(&comments).await.json().await.unwrap();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let me: serde_json::Value = app
        .call(Method::GET, "/v1/me", &writer.access, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["display_name"], serde_json::Value::Null, "{me}");

    // Emoji joined by U+200D and scripts that join with U+200C/U+200D are text, not hiding.
    let name = "Dev 👩\u{200D}💻";
    let renamed = app
        .call(
            Method::PATCH,
            "/v1/me",
            &writer.access,
            Some(json!({"display_name": name})),
        )
        .await;
    assert_eq!(renamed.status(), StatusCode::OK);
    let body = "Family 👨\u{200D}👩\u{200D}👧, می\u{200C}خواهم\nsecond line";
    let posted = app
        .call(
            Method::POST,
            &comments,
            &writer.access,
            Some(json!({"body": body})),
        )
        .await;
    assert_eq!(posted.status(), StatusCode::CREATED);
    let posted: serde_json::Value = posted.json().await.unwrap();
    assert_eq!(posted["body"], body);
}

// ---------------------------------------------------------------------------------------
// Private keys at rest
// ---------------------------------------------------------------------------------------

/// Every stored private part: (purpose, id, bytes).
async fn stored_keys(db: &herald_store::Db) -> Vec<(String, String, Vec<u8>)> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT purpose, id, private_der FROM key_material ORDER BY id",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get::<String>("", "purpose").unwrap(),
                row.try_get::<String>("", "id").unwrap(),
                row.try_get::<Vec<u8>>("", "private_der").unwrap(),
            )
        })
        .collect()
}

fn sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(b"hsk1")
}

/// The configuration `herald serve` would run with on `db`, sealing with `keys`.
fn sealing_with(db: &TestDb, keys: &str) -> Config {
    let mut config = Config {
        database: db.config(),
        ..Config::default()
    };
    config.secrets.key = Some(Secret::new(keys.to_string()));
    config
}

/// What `herald serve` does with keys at start: open the keyring (re-sealing what needs it),
/// load the signing, VAPID and cursor keys. Answers the published JWKS key ids.
async fn start_keys(config: &Config, db: &herald_store::Db) -> Result<Vec<String>, String> {
    let keyring = herald::open_keyring(config, db)
        .await
        .map_err(|e| format!("{e:#}"))?;
    herald::vapid_keys(db, &keyring)
        .await
        .map_err(|e| format!("{e:#}"))?;
    herald_auth::CursorKey::load_or_create(db, &keyring)
        .await
        .map_err(|e| e.to_string())?;
    let accounts = herald_auth::Accounts::start(
        db.clone(),
        config.auth.clone(),
        reqwest::Client::new(),
        &keyring,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(accounts.jwks()["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect())
}

#[tokio::test]
async fn a_running_herald_keeps_every_private_key_sealed() {
    let app = TestApp::spawn_with(|config| {
        config.secrets.key = Some(Secret::new(KEY_A.to_string()));
    })
    .await;
    let db = app.db.connect().await;
    let stored = stored_keys(&db).await;
    let purposes: Vec<&str> = stored.iter().map(|(p, _, _)| p.as_str()).collect();
    for purpose in ["access-token", "vapid", "page-cursor"] {
        assert!(purposes.contains(&purpose), "{purposes:?}");
    }
    for (purpose, id, bytes) in &stored {
        assert!(sealed(bytes), "{purpose} {id} is stored in the clear");
    }
    // And they work: a sign-in is signed, a push key is served.
    sign_up(&app, "sealed@example.com", PASSWORD).await;
    assert_eq!(
        app.get("/v1/push/vapid-public-key").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn plaintext_keys_are_sealed_at_start_and_rotation_accepts_old_and_new_keys() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    // A database from before sealing: keys in the clear.
    let plain = Config {
        database: test_db.config(),
        ..Config::default()
    };
    let plain_keyring = herald_auth::Keyring::open(&plain.secrets, None).unwrap();
    assert!(!plain_keyring.encrypts());
    let signing = herald_auth::SigningKey::generate().unwrap();
    herald_store::keys::insert(
        &db,
        &herald_store::keys::StoredKey {
            id: signing.kid().to_string(),
            purpose: "access-token".into(),
            algorithm: "ES256".into(),
            private_der: Secret::new(signing.pkcs8_der().to_vec()),
            public_key: signing.public_point().to_vec(),
            created_at: chrono::Utc::now(),
        },
    )
    .await
    .unwrap();
    herald::vapid_keys(&db, &plain_keyring).await.unwrap();
    assert!(stored_keys(&db).await.iter().all(|(_, _, b)| !sealed(b)));

    // A key is configured: the same keys, now sealed.
    let kids = start_keys(&sealing_with(&test_db, KEY_A), &db)
        .await
        .unwrap();
    assert_eq!(kids, [signing.kid().to_string()]);
    let under_a = stored_keys(&db).await;
    assert!(under_a.iter().all(|(_, _, b)| sealed(b)), "{under_a:?}");
    assert_eq!(under_a.len(), 3, "access-token, vapid, page-cursor");

    // Rotation, step 1: new key first, old key after; everything is re-sealed under the new.
    let kids = start_keys(&sealing_with(&test_db, &format!("{KEY_B},{KEY_A}")), &db)
        .await
        .unwrap();
    assert_eq!(kids, [signing.kid().to_string()]);
    let under_b = stored_keys(&db).await;
    for ((_, id, old), (_, _, new)) in under_a.iter().zip(&under_b) {
        assert!(sealed(new) && new != old, "{id} was not re-sealed");
    }
    // Step 2: the old key is dropped; the new one alone opens everything.
    let kids = start_keys(&sealing_with(&test_db, KEY_B), &db)
        .await
        .unwrap();
    assert_eq!(kids, [signing.kid().to_string()]);
    // The old key alone, or none at all, no longer opens them, and start-up says why.
    let err = start_keys(&sealing_with(&test_db, KEY_A), &db)
        .await
        .unwrap_err();
    assert!(err.contains("not configured"), "{err}");
    let err = start_keys(&plain, &db).await.unwrap_err();
    assert!(err.contains("not configured"), "{err}");
    assert_eq!(
        stored_keys(&db).await,
        under_b,
        "a failed start changed no key"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn on_sqlite_without_a_key_one_is_made_owner_only_beside_the_database() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").join("herald");
    let mut config = Config::default();
    config.database.url = herald_store::DatabaseUrl::sqlite_file(data.join("herald.db"));
    let db = herald::open_database(&config).await.unwrap();
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "the data folder");
    assert_eq!(mode(&data.join("herald.db")), 0o600, "the database file");

    start_keys(&config, &db).await.unwrap();
    let key_file = data.join(herald_auth::sealing::DEFAULT_KEY_FILE);
    assert_eq!(mode(&key_file), 0o600, "the key file");
    let stored = stored_keys(&db).await;
    assert!(!stored.is_empty() && stored.iter().all(|(_, _, b)| sealed(b)));
    // The next start finds the same key file and opens what the first sealed.
    let kids = start_keys(&config, &db).await.unwrap();
    assert_eq!(kids.len(), 1);
    db.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Sessions that end
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn set_role_ends_every_session_of_that_account_at_once() {
    let app = TestApp::spawn().await;
    let phone = sign_up(&app, "promoted@example.com", PASSWORD).await;
    let laptop = log_in(&app, "promoted@example.com", PASSWORD).await;
    let bystander = sign_up(&app, "bystander@example.com", PASSWORD).await;
    assert_eq!(phone.role, "reader");
    let db = app.db.connect().await;

    let user = herald::set_role(&db, "Promoted@Example.com", Role::Editor)
        .await
        .unwrap();
    assert_eq!(user.role, Role::Editor);
    for session in [&phone, &laptop] {
        assert_eq!(
            me_status(&app, &session.access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            refresh_status(&app, &session.refresh).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(me_status(&app, &bystander.access).await, StatusCode::OK);
    let again = log_in(&app, "promoted@example.com", PASSWORD).await;
    assert_eq!(again.role, "editor");
    assert!(
        herald::set_role(&db, "nobody@example.com", Role::Admin)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn deleting_an_account_with_a_password_asks_for_it_again() {
    let app = TestApp::spawn().await;
    let phone = sign_up(&app, "leaving@example.com", PASSWORD).await;
    let laptop = log_in(&app, "leaving@example.com", PASSWORD).await;

    let no_body = app
        .call(Method::DELETE, "/v1/me", &phone.access, None)
        .await;
    field_refused(no_body, "password").await;
    let wrong = app
        .call(
            Method::DELETE,
            "/v1/me",
            &phone.access,
            Some(json!({"password": "not the password at all"})),
        )
        .await;
    problem(wrong, StatusCode::FORBIDDEN).await;
    let unknown_field = app
        .call(
            Method::DELETE,
            "/v1/me",
            &phone.access,
            Some(json!({"pasword": PASSWORD})),
        )
        .await;
    assert!(unknown_field.status().is_client_error());
    assert_eq!(
        me_status(&app, &phone.access).await,
        StatusCode::OK,
        "still there"
    );

    let deleted = app
        .call(
            Method::DELETE,
            "/v1/me",
            &phone.access,
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    for session in [&phone, &laptop] {
        assert_eq!(
            me_status(&app, &session.access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            refresh_status(&app, &session.refresh).await,
            StatusCode::UNAUTHORIZED
        );
    }

    // An anonymous reader has no password to give.
    let anonymous =
        herald_tests::accounts::signed_in(app.post_json("/v1/auth/anonymous", &json!({})).await)
            .await;
    let gone = app
        .call(Method::DELETE, "/v1/me", &anonymous.access, None)
        .await;
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me_status(&app, &anonymous.access).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn password_guesses_through_change_and_delete_share_one_limit() {
    let app =
        TestApp::spawn_with(|config| config.auth.login_attempts_per_account_and_address = 3).await;
    let owner = sign_up(&app, "guessed@example.com", PASSWORD).await;
    let change = |current: &'static str| {
        app.call(
            Method::POST,
            "/v1/me/password",
            &owner.access,
            Some(json!({"current_password": current, "new_password": "a brand new passphrase"})),
        )
    };
    let delete = |password: &'static str| {
        app.call(
            Method::DELETE,
            "/v1/me",
            &owner.access,
            Some(json!({"password": password})),
        )
    };
    field_refused(change("wrong guess number 1").await, "current_password").await;
    problem(delete("wrong guess number 2").await, StatusCode::FORBIDDEN).await;
    field_refused(change("wrong guess number 3").await, "current_password").await;
    // The limit is spent: even the right password waits, on either route.
    let throttled = change(PASSWORD).await;
    assert!(throttled.headers().contains_key("retry-after"));
    problem(throttled, StatusCode::TOO_MANY_REQUESTS).await;
    problem(delete(PASSWORD).await, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(me_status(&app, &owner.access).await, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------
// Passwords
// ---------------------------------------------------------------------------------------

/// argon2id with older parameters (4 MiB, t=3) of [`OLD_PASSWORD`].
const OLD_HASH: &str = "$argon2id$v=19$m=4096,t=3,p=1$1Gy2YGXZqoaKePIHfu1paw$cqHRDE4dNIXZSd2ku16StQa58Ddfbr5HkkbcykeOQ0w";
/// 11 characters: chosen under the old 8-character minimum.
const OLD_PASSWORD: &str = "tr0ub4dor&3";

#[tokio::test]
async fn new_passwords_need_12_characters_and_old_ones_log_in_and_are_rehashed() {
    let app = TestApp::spawn().await;
    for (path, body) in [
        (
            "/v1/auth/signup",
            json!({"email": "short@example.com", "password": "elevenchars"}),
        ),
        (
            "/v1/auth/signup",
            json!({"email": "short@example.com", "password": OLD_PASSWORD}),
        ),
    ] {
        let body = field_refused(app.post_json(path, &body).await, "password").await;
        assert!(body.to_string().contains("at least 12"), "{body}");
    }
    let anonymous =
        herald_tests::accounts::signed_in(app.post_json("/v1/auth/anonymous", &json!({})).await)
            .await;
    let link = app
        .call(
            Method::POST,
            "/v1/me/link",
            &anonymous.access,
            Some(json!({"email": "linker@example.com", "password": OLD_PASSWORD})),
        )
        .await;
    field_refused(link, "password").await;
    let db = app.db.connect().await;
    let err = herald::create_user(&db, "cli@example.com", OLD_PASSWORD, Role::Editor, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("at least 12"), "{err}");

    // An account from before: a short password under weaker argon2 parameters.
    herald_store::users::create(
        &db,
        herald_store::users::NewUser {
            email: Some("veteran@example.com".into()),
            display_name: None,
            password_hash: Some(OLD_HASH.into()),
            role: Role::Reader,
            is_anonymous: false,
        },
    )
    .await
    .unwrap();
    let stored_hash = || async {
        herald_store::users::credentials_by_email(&db, "veteran@example.com")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap()
            .expose()
            .clone()
    };
    let wrong = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "veteran@example.com", "password": "tr0ub4dor&4"}),
        )
        .await;
    problem(wrong, StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        stored_hash().await,
        OLD_HASH,
        "a failed login changes nothing"
    );

    log_in(&app, "veteran@example.com", OLD_PASSWORD).await;
    let upgraded = stored_hash().await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    assert!(!herald_auth::needs_rehash(&upgraded));
    // The same password still logs in, now against the new hash, which stays.
    log_in(&app, "veteran@example.com", OLD_PASSWORD).await;
    assert_eq!(stored_hash().await, upgraded);
}

// ---------------------------------------------------------------------------------------
// Headers and /metrics
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/healthz",
        "/v1/topics",
        "/no/such/route",
        "/openapi.json",
        "/docs",
        "/",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(
            headers["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{path}: {csp}");
        assert!(!headers.contains_key("strict-transport-security"), "{path}");
    }
    // A page keeps its own policy (scripts from this server), not the blanket one.
    let docs = app.get("/docs").await;
    let csp = docs.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src"), "{csp}");
}

#[tokio::test]
async fn hsts_is_sent_behind_https_or_as_configured() {
    let app = TestApp::spawn_with(|config| {
        config.http.public_url = Some("https://news.example.com".parse().unwrap());
    })
    .await;
    for path in ["/healthz", "/v1/topics", "/"] {
        let response = app.get(path).await;
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
    let app = TestApp::spawn_with(|config| {
        config.http.public_url = Some("https://news.example.com".parse().unwrap());
        config.http.hsts_max_age_seconds = Some(0);
    })
    .await;
    assert!(
        !app.get("/healthz")
            .await
            .headers()
            .contains_key("strict-transport-security")
    );
    let app = TestApp::spawn_with(|config| config.http.hsts_max_age_seconds = Some(600)).await;
    assert_eq!(
        app.get("/healthz").await.headers()["strict-transport-security"],
        "max-age=600"
    );
}

#[tokio::test]
async fn metrics_need_the_bearer_token_when_one_is_configured() {
    let token = "a-long-random-scrape-token";
    let app = TestApp::spawn_with(|config| {
        config.http.metrics_token = Some(Secret::new(token.to_string()));
    })
    .await;
    let scrape = |auth: Option<String>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    problem(scrape(None).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    for wrong in [
        "Bearer a-long-random-scrape-toke".to_string(),
        format!("Bearer {token}x"),
        format!("Basic {token}"),
        token.to_string(),
    ] {
        problem(scrape(Some(wrong)).await.unwrap(), StatusCode::UNAUTHORIZED).await;
    }
    let allowed = scrape(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    assert!(allowed.text().await.unwrap().contains("herald_"));
    // Probes stay open: `herald probe` and orchestrators call /readyz without a token.
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);

    // Without a token configured, /metrics is open as before.
    let open = TestApp::spawn().await;
    assert_eq!(open.get("/metrics").await.status(), StatusCode::OK);
}
