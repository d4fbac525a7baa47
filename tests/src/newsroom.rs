//! Newsroom fixtures the end-to-end tests share: a signed-in editor, a story two publishers tell.

use crate::TestApp;
use herald::config::Config;
use herald_notifier::fakes::{FakeSubscription, FakeWebPush};
use herald_store::articles::{Article, NewArticle};
use herald_store::sources::{self, NewSource};
use herald_store::users::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The password of every account these fixtures create.
pub const PASSWORD: &str = "a long and unusual passphrase 42";

/// An editor account signed in through the API.
pub struct Editor {
    /// Its email (password [`PASSWORD`]).
    pub email: String,
    /// Its access token.
    pub token: String,
}

/// Creates an editor (as `herald user create` does) and signs it in with `POST /v1/auth/login`.
pub async fn editor(app: &TestApp) -> Editor {
    let db = app.db.connect().await;
    let email = format!("editor-{}@herald.example", uuid::Uuid::now_v7().simple());
    herald::create_user(&db, &email, PASSWORD, Role::Editor, None)
        .await
        .expect("create the editor");
    let login: Value = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": email, "password": PASSWORD}),
        )
        .await
        .json()
        .await
        .expect("login answer");
    let token = login["access_token"]
        .as_str()
        .expect("an access token")
        .to_string();
    Editor { email, token }
}

/// Two publishers' articles on one story in `world`, half an hour and five minutes old, titled
/// after `headline`: (story, older, newer).
pub async fn story_with_two_articles(
    db: &herald_store::Db,
    headline: &str,
) -> (uuid::Uuid, Article, Article) {
    let story = uuid::Uuid::now_v7();
    let now = chrono::Utc::now();
    let mut ids = Vec::new();
    for (i, minutes_ago) in [(0, 30), (1, 5)] {
        let tag = uuid::Uuid::now_v7().simple();
        let source = sources::create(
            db,
            NewSource {
                name: format!("Publisher {i} {tag}"),
                feed_url: format!("https://publisher{i}.example/feed/{tag}"),
                site_url: None,
                topics: vec!["world".into()],
                language: None,
                breaking: false,
                poll_interval_seconds: None,
            },
        )
        .await
        .expect("create a source");
        let article = NewArticle {
            id: uuid::Uuid::now_v7(),
            source_id: source.id,
            dedupe_key: format!("guid:{tag}"),
            canonical_url: Some(format!("https://publisher{i}.example/story/{tag}")),
            title: format!("{headline}, says publisher {i}"),
            title_derived: false,
            summary: Some(format!("Summary from publisher {i}")),
            content_html: None,
            image_url: Some(format!("https://publisher{i}.example/story/{tag}.jpg")),
            author: None,
            language: None,
            topics: vec!["world".into()],
            published_at: now - chrono::Duration::minutes(minutes_ago),
            fetched_at: now,
        };
        ids.push(article.id);
        herald_store::stories::add_article(db, article, story, &[])
            .await
            .expect("store the article");
    }
    let older = herald_store::articles::get(db, ids[0])
        .await
        .expect("older");
    let newer = herald_store::articles::get(db, ids[1])
        .await
        .expect("newer");
    (story, older, newer)
}

/// The `world` topic in a database no app has started on (the store-level fan-out tests).
pub async fn world_topic(db: &herald_store::Db) {
    herald_store::topics::sync(
        db,
        &[herald_store::topics::Topic {
            slug: "world".into(),
            name: "World".into(),
            description: String::new(),
            keywords: vec![],
            min_sources: 3,
            window_minutes: 60,
        }],
    )
    .await
    .expect("sync the world topic");
}

/// An anonymous reader following `topic`, made straight in the store (for audiences too large
/// to sign up over HTTP): their user id.
pub async fn stored_follower(db: &herald_store::Db, topic: &str) -> uuid::Uuid {
    let user = herald_store::users::create(
        db,
        herald_store::users::NewUser {
            email: None,
            display_name: None,
            password_hash: None,
            role: Role::Reader,
            is_anonymous: true,
        },
    )
    .await
    .expect("create a reader");
    herald_store::subscriptions::add(db, user.id, topic)
        .await
        .expect("follow the topic");
    user.id
}

/// A running Herald with an editor signed in and a local Web Push service for readers' browsers.
pub struct Newsroom {
    /// The app.
    pub app: TestApp,
    /// The browsers' push service.
    pub push: FakeWebPush,
    /// The editor's access token.
    pub editor: String,
}

impl Newsroom {
    /// Starts Herald with an editor and a Web Push service.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// [`Self::start`] after `adjust` changed the configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let push = FakeWebPush::start().await.expect("as the test expects");
        let app = TestApp::spawn_with(|config| {
            // A hanging receiver must time out quickly.
            config.push.webpush.timeout_seconds = 1;
            adjust(config);
        })
        .await;
        let editor = editor(&app).await.token;
        Self { app, push, editor }
    }

    /// `method` on `path` as `token`, with `body` as JSON.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        self.app.call(method, path, token, body).await
    }

    /// An anonymous reader following `topic`: their access token.
    pub async fn reader(&self, topic: &str) -> String {
        self.app.reader_following(topic).await
    }

    /// Registers a fresh browser subscription for the reader.
    pub async fn browser(&self, token: &str) -> FakeSubscription {
        let sub = self.push.new_subscription().expect("as the test expects");
        let device = json!({
            "platform": "web",
            "subscription": sub.browser_json(),
            "timezone": "UTC"
        });
        let registered = self
            .call(Method::POST, "/v1/devices", token, Some(device))
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
        sub
    }

    /// A stored story with two publishers' articles: (story id, its newest article's id).
    pub async fn story(&self) -> (String, String) {
        let db = self.app.db.connect().await;
        let (story, _, newer) = story_with_two_articles(&db, "Ceasefire agreed").await;
        (story.to_string(), newer.id.to_string())
    }

    /// Sends an alert as the editor; its id.
    pub async fn send(&self, alert: Value) -> String {
        let response = self
            .call(Method::POST, "/v1/admin/alerts", &self.editor, Some(alert))
            .await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let body: Value = response.json().await.expect("as the test expects");
        body["id"]
            .as_str()
            .expect("as the test expects")
            .to_string()
    }

    /// The alert's status as the editor sees it.
    pub async fn status(&self, id: &str) -> Value {
        let response = self
            .call(
                Method::GET,
                &format!("/v1/admin/alerts/{id}"),
                &self.editor,
                None,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("as the test expects")
    }

    /// Polls the alert until it leaves `queued`/`sending`.
    pub async fn finished(&self, id: &str, within: Duration) -> Value {
        let start = Instant::now();
        loop {
            let status = self.status(id).await;
            if !matches!(status["state"].as_str(), Some("queued" | "sending")) {
                return status;
            }
            assert!(start.elapsed() < within, "alert still {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Successful deliveries to `sub`.
    pub fn delivered(&self, sub: &FakeSubscription) -> Vec<Value> {
        self.push
            .received_for(&sub.id)
            .into_iter()
            .filter(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
            .map(|r| r.payload::<Value>().expect("as the test expects"))
            .collect()
    }

    /// Waits until `sub` got something; how long it took.
    pub async fn until_delivered(&self, sub: &FakeSubscription, within: Duration) -> Duration {
        let start = Instant::now();
        while self.delivered(sub).is_empty() {
            assert!(start.elapsed() < within, "nothing delivered to {}", sub.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }
}

/// A valid alert to `world` with `title`.
pub fn alert(title: &str) -> Value {
    json!({
        "title": title,
        "body": "Details to follow",
        "url": "https://herald.example/articles/1",
        "topics": ["world"],
    })
}

/// Local FCM and APNs services with the credential files Herald reads for them.
pub struct Phones {
    /// Android's push service.
    pub fcm: herald_notifier::fakes::FakeFcm,
    /// Apple's.
    pub apns: herald_notifier::fakes::FakeApns,
    keys: tempfile::TempDir,
}

impl Phones {
    /// Starts both services and writes their credentials to a temporary directory.
    pub async fn start() -> Self {
        let fcm = herald_notifier::fakes::FakeFcm::start()
            .await
            .expect("start the FCM service");
        let apns = herald_notifier::fakes::FakeApns::start()
            .await
            .expect("start the APNs service");
        let keys = tempfile::tempdir().expect("a key directory");
        std::fs::write(
            keys.path().join("service-account.json"),
            fcm.service_account_json(),
        )
        .expect("write the FCM service account");
        std::fs::write(keys.path().join("AuthKey.p8"), apns.p8_pem()).expect("write the APNs key");
        Self { fcm, apns, keys }
    }

    /// Points Herald's FCM and APNs senders at the services.
    pub fn configure(&self, config: &mut Config) {
        self.fcm.configure(&mut config.push);
        self.apns.configure(&mut config.push);
        config.push.fcm.service_account_file = Some(self.keys.path().join("service-account.json"));
        config.push.apns.key_file = Some(self.keys.path().join("AuthKey.p8"));
    }
}

impl Newsroom {
    /// Registers an Android device with FCM `token` for the reader.
    pub async fn android(&self, reader: &str, token: &str) {
        let registered = self
            .call(
                Method::POST,
                "/v1/devices",
                reader,
                Some(json!({"platform": "android", "token": token, "timezone": "UTC"})),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
    }

    /// Registers an iPhone with APNs `token` (sandbox) for the reader.
    pub async fn iphone(&self, reader: &str, token: &str) {
        let registered = self
            .call(
                Method::POST,
                "/v1/devices",
                reader,
                Some(json!({"platform": "ios", "token": token, "environment": "sandbox", "timezone": "UTC"})),
            )
            .await;
        assert_eq!(registered.status(), StatusCode::CREATED);
    }

    /// `PATCH /v1/admin/alerts/{id}` with `change` as the editor; the answer, which must be 200.
    pub async fn update(&self, id: &str, change: Value) -> Value {
        let answer = self
            .call(
                Method::PATCH,
                &format!("/v1/admin/alerts/{id}"),
                &self.editor,
                Some(change),
            )
            .await;
        assert_eq!(answer.status(), StatusCode::OK);
        answer.json().await.expect("the updated alert's status")
    }

    /// Polls the alert's status until `done` says so.
    pub async fn until(&self, id: &str, within: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let status = self.status(id).await;
            if done(&status) {
                return status;
            }
            assert!(start.elapsed() < within, "still {status}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
