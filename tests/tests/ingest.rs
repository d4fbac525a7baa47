#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Feed ingestion end to end: the real app's ingest role against a local feed server the test
//! runs, and the newsroom's source API (SPEC §3 "Newsroom", §5).

use axum::Router;
use axum::http::{HeaderMap, StatusCode as AxumStatus, Uri, header};
use axum::response::{IntoResponse, Response};
use herald::config::Config;
use herald::roles::{Role as HeraldRole, Roles};
use herald_store::sources::{self, NewSource, Source};
use herald_store::testing::TestDb;
use herald_store::users::Role;
use herald_store::{Db, articles, stories};
use herald_tests::TestApp;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

// ---------------------------------------------------------------- the local feed server

/// What the feed server answers on one path, one entry per request (the last one repeats).
#[derive(Clone)]
enum Reply {
    /// A feed with an `ETag` and `Last-Modified`; answers 304 to a matching `If-None-Match`.
    Feed { body: String, etag: &'static str },
    /// A bare status with headers.
    Status(u16, Vec<(&'static str, &'static str)>),
    /// A redirect to another path of this server.
    Redirect(u16, String),
}

/// One request the server saw.
#[derive(Debug, Clone)]
struct Hit {
    at: Instant,
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
}

#[derive(Default)]
struct ServerState {
    scripts: HashMap<String, Vec<Reply>>,
    hits: HashMap<String, Vec<Hit>>,
    /// Paths under `/many/` answer a one-item feed of their own.
    many: bool,
}

#[derive(Clone)]
struct FeedServer {
    addr: SocketAddr,
    state: Arc<Mutex<ServerState>>,
}

const LAST_MODIFIED: &str = "Wed, 25 Nov 2026 10:00:00 GMT";

impl FeedServer {
    async fn start() -> Self {
        let state = Arc::new(Mutex::new(ServerState::default()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = state.clone();
        let router = Router::new().fallback(move |uri: Uri, headers: HeaderMap| {
            let shared = shared.clone();
            async move { answer(&shared, &uri, &headers) }
        });
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, state }
    }

    fn script(&self, path: &str, replies: Vec<Reply>) {
        self.state
            .lock()
            .unwrap()
            .scripts
            .insert(path.to_string(), replies);
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    fn hits(&self, path: &str) -> Vec<Hit> {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

fn answer(state: &Mutex<ServerState>, uri: &Uri, headers: &HeaderMap) -> Response {
    let path = uri.path().to_string();
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut state = state.lock().unwrap();
    let hits = state.hits.entry(path.clone()).or_default();
    hits.push(Hit {
        at: Instant::now(),
        if_none_match: header(header::IF_NONE_MATCH),
        if_modified_since: header(header::IF_MODIFIED_SINCE),
    });
    let index = hits.len() - 1;
    if state.many && path.starts_with("/many/") {
        let item = item(
            &format!("Item of {path}"),
            &format!("https://many.example{path}"),
            None,
        );
        return (
            [(header::CONTENT_TYPE, "application/rss+xml")],
            rss(&[item]),
        )
            .into_response();
    }
    let Some(script) = state.scripts.get(&path) else {
        return AxumStatus::NOT_FOUND.into_response();
    };
    let reply = script[index.min(script.len() - 1)].clone();
    match reply {
        Reply::Feed { body, etag } => {
            if header(header::IF_NONE_MATCH).as_deref() == Some(etag) {
                return (AxumStatus::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
            }
            (
                [
                    (header::CONTENT_TYPE, "application/rss+xml; charset=utf-8"),
                    (header::ETAG, etag),
                    (header::LAST_MODIFIED, LAST_MODIFIED),
                ],
                body,
            )
                .into_response()
        }
        Reply::Status(code, extra) => {
            let mut response = AxumStatus::from_u16(code).unwrap().into_response();
            for (name, value) in extra {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
        Reply::Redirect(code, to) => {
            let mut response = AxumStatus::from_u16(code).unwrap().into_response();
            response
                .headers_mut()
                .insert(header::LOCATION, to.parse().unwrap());
            response
        }
    }
}

fn item(title: &str, link: &str, guid: Option<&str>) -> String {
    let guid = guid
        .map(|g| format!("<guid isPermaLink=\"false\">{g}</guid>"))
        .unwrap_or_default();
    format!(
        "<item><title>{title}</title><link>{link}</link>{guid}\
         <description>{title}. More on this as it develops.</description>\
         <pubDate>{}</pubDate></item>",
        chrono::Utc::now().to_rfc2822()
    )
}

fn rss(items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><rss version=\"2.0\"><channel>\
         <title>Test feed</title><link>https://publisher.example/</link>{}</channel></rss>",
        items.concat()
    )
}

fn feed(items: &[String], etag: &'static str) -> Reply {
    Reply::Feed {
        body: rss(items),
        etag,
    }
}

// ---------------------------------------------------------------- the app under test

const CATALOG: &str = r#"
[[topics]]
slug = "world"
name = "World"
description = "International news"
keywords = ["ceasefire", "summit"]
min_sources = 3
window_minutes = 120

[[topics]]
slug = "india"
name = "India"
keywords = ["india", "mumbai"]
min_sources = 3
window_minutes = 120
"#;

/// A file removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn catalog() -> Self {
        let path = std::env::temp_dir().join(format!("herald-ingest-{}.toml", Uuid::new_v4()));
        std::fs::write(&path, CATALOG).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The test catalogue (topics, no publishers) and fast polling.
fn ingest_config(config: &mut Config, catalog: &TempFile) {
    config.catalog.sources_file = Some(catalog.0.clone());
    config.ingest.min_interval_seconds = 1;
    config.ingest.default_interval_seconds = 1;
    config.ingest.max_interval_seconds = 30;
}

struct Harness {
    app: TestApp,
    db: Db,
    feeds: FeedServer,
    _catalog: TempFile,
}

async fn harness_with(adjust: impl FnOnce(&mut Config)) -> Harness {
    let catalog = TempFile::catalog();
    let feeds = FeedServer::start().await;
    let app = TestApp::spawn_with(|config| {
        ingest_config(config, &catalog);
        adjust(config);
    })
    .await;
    let db = app.db.connect().await;
    Harness {
        app,
        db,
        feeds,
        _catalog: catalog,
    }
}

async fn harness() -> Harness {
    harness_with(|_| {}).await
}

impl Harness {
    /// Adds a source polled every second (fixed interval) on `path` of the feed server.
    async fn source(&self, name: &str, path: &str, topics: &[&str]) -> Source {
        sources::create(
            &self.db,
            NewSource {
                name: name.into(),
                feed_url: self.feeds.url(path),
                site_url: None,
                topics: topics.iter().map(|t| t.to_string()).collect(),
                language: Some("en".into()),
                breaking: false,
                poll_interval_seconds: Some(1),
            },
        )
        .await
        .unwrap()
    }

    async fn reload(&self, source: &Source) -> Source {
        sources::get(&self.db, source.id).await.unwrap()
    }
}

/// Waits up to `seconds` for `check` to hold.
async fn eventually<F, Fut>(seconds: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

// ---------------------------------------------------------------- fetching and scheduling

#[tokio::test]
async fn first_poll_200_then_304_with_validators_sent() {
    let h = harness().await;
    let items = [
        item("Ceasefire holds", "https://p.example/1", Some("g1")),
        item("Summit opens", "https://p.example/2", Some("g2")),
    ];
    h.feeds.script("/feed", vec![feed(&items, "\"v1\"")]);
    let source = h.source("Publisher", "/feed", &["world"]).await;

    eventually(10, "a second poll", || async {
        h.feeds.hits("/feed").len() >= 2
    })
    .await;
    let hits = h.feeds.hits("/feed");
    assert_eq!(hits[0].if_none_match, None);
    assert_eq!(hits[1].if_none_match.as_deref(), Some("\"v1\""));
    assert_eq!(hits[1].if_modified_since.as_deref(), Some(LAST_MODIFIED));
    eventually(5, "the 304 recorded", || async {
        h.reload(&source).await.last_status == Some(304)
    })
    .await;
    let stored = h.reload(&source).await;
    assert_eq!(stored.etag.as_deref(), Some("\"v1\""));
    assert_eq!(stored.error_count, 0);
    assert_eq!(
        articles::by_source(&h.db, source.id).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn throttled_429_retry_after_is_respected() {
    let h = harness().await;
    let items = [item("Summit opens", "https://p.example/1", Some("g1"))];
    h.feeds.script(
        "/feed",
        vec![
            Reply::Status(429, vec![("retry-after", "3")]),
            feed(&items, "\"v1\""),
        ],
    );
    let source = h.source("Publisher", "/feed", &[]).await;
    eventually(5, "the 429 recorded", || async {
        h.reload(&source).await.last_status == Some(429)
    })
    .await;
    assert_eq!(h.reload(&source).await.error_count, 1);
    eventually(15, "a poll after Retry-After", || async {
        h.feeds.hits("/feed").len() >= 2
    })
    .await;
    let hits = h.feeds.hits("/feed");
    let gap = hits[1].at - hits[0].at;
    assert!(
        gap >= Duration::from_millis(2900),
        "polled again after {gap:?}"
    );
    eventually(5, "recovery", || async {
        let s = h.reload(&source).await;
        s.last_status == Some(200) && s.error_count == 0
    })
    .await;
}

#[tokio::test]
async fn server_errors_back_off_and_recover() {
    let h = harness().await;
    let items = [item("Summit opens", "https://p.example/1", Some("g1"))];
    h.feeds.script(
        "/feed",
        vec![
            Reply::Status(500, vec![]),
            Reply::Status(500, vec![]),
            feed(&items, "\"v1\""),
        ],
    );
    let source = h.source("Publisher", "/feed", &[]).await;
    eventually(5, "two errors recorded", || async {
        h.reload(&source).await.error_count == 2
    })
    .await;
    let failed = h.reload(&source).await;
    assert_eq!(failed.last_status, Some(500));
    assert_eq!(failed.last_error.as_deref(), Some("HTTP status 500"));
    eventually(15, "recovery", || async {
        let s = h.reload(&source).await;
        s.error_count == 0 && s.last_status == Some(200)
    })
    .await;
    let hits = h.feeds.hits("/feed");
    assert!(hits[1].at - hits[0].at >= Duration::from_millis(900));
    assert!(h.reload(&source).await.last_error.is_none());
    assert_eq!(
        articles::by_source(&h.db, source.id).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn redirect_chains_are_followed() {
    let h = harness().await;
    let items = [item("Summit opens", "https://p.example/1", Some("g1"))];
    h.feeds
        .script("/old", vec![Reply::Redirect(301, "/moved".into())]);
    h.feeds
        .script("/moved", vec![Reply::Redirect(302, h.feeds.url("/feed"))]);
    h.feeds.script("/feed", vec![feed(&items, "\"v1\"")]);
    let source = h.source("Publisher", "/old", &[]).await;
    eventually(10, "the article stored", || async {
        articles::by_source(&h.db, source.id).await.unwrap().len() == 1
    })
    .await;
    // The fetch is recorded just after its articles are stored.
    eventually(5, "the fetch recorded", || async {
        h.reload(&source).await.last_status == Some(200)
    })
    .await;
    assert!(!h.feeds.hits("/moved").is_empty());
}

#[tokio::test]
async fn loopback_feeds_are_refused_unless_private_addresses_are_allowed() {
    let h = harness_with(|config| config.ingest.allow_private_addresses = false).await;
    let items = [item("Summit opens", "https://p.example/1", Some("g1"))];
    h.feeds.script("/feed", vec![feed(&items, "\"v1\"")]);
    let source = h.source("Publisher", "/feed", &[]).await;
    eventually(10, "the refusal recorded", || async {
        h.reload(&source)
            .await
            .last_error
            .is_some_and(|e| e.contains("non-public address 127.0.0.1"))
    })
    .await;
    assert!(
        h.feeds.hits("/feed").is_empty(),
        "no request reached the feed"
    );
    assert_eq!(articles::count(&h.db).await.unwrap(), 0);
}

#[tokio::test]
async fn malformed_xml_is_an_error_on_the_source_only() {
    let h = harness().await;
    h.feeds.script(
        "/broken",
        vec![Reply::Feed {
            // Not a feed at all (a truncated feed is recovered, as feedparser does).
            body: "<html><body><p>Moved to our new site</p></body></html>".into(),
            etag: "\"b\"",
        }],
    );
    let good = [item("Summit opens", "https://p.example/1", Some("g1"))];
    h.feeds.script("/good", vec![feed(&good, "\"g\"")]);
    let broken = h.source("Broken", "/broken", &[]).await;
    let fine = h.source("Fine", "/good", &[]).await;
    eventually(10, "the error recorded", || async {
        h.reload(&broken)
            .await
            .last_error
            .is_some_and(|e| e.contains("malformed"))
    })
    .await;
    eventually(10, "the other feed ingested", || async {
        articles::by_source(&h.db, fine.id).await.unwrap().len() == 1
    })
    .await;
    // No validators are kept for a body that failed, so the next poll fetches it in full.
    assert_eq!(h.reload(&broken).await.etag, None);
    let health = h.app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
}

// ---------------------------------------------------------------- dedupe

#[tokio::test]
async fn items_without_guid_are_not_duplicated_across_polls() {
    let h = harness().await;
    let items = [
        item("Summit opens", "https://p.example/a?utm_source=rss", None),
        item("Ceasefire holds", "https://p.example/b", None),
    ];
    // A server without validators: every poll is a full 200.
    h.feeds.script(
        "/feed",
        vec![Reply::Feed {
            body: rss(&items),
            etag: "\"never-sent\"",
        }],
    );
    let source = h.source("Publisher", "/feed", &[]).await;
    eventually(15, "three polls", || async {
        h.feeds.hits("/feed").len() >= 3 && h.reload(&source).await.lease_owner.is_none()
    })
    .await;
    let stored = articles::by_source(&h.db, source.id).await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:#?}");
    assert!(
        stored
            .iter()
            .any(|a| a.canonical_url.as_deref() == Some("https://p.example/a"))
    );
}

#[tokio::test]
async fn a_title_edit_updates_the_article() {
    let h = harness().await;
    let before = [item(
        "Summit opnes in Geneva",
        "https://p.example/1",
        Some("g1"),
    )];
    let after = [item(
        "Summit opens in Geneva",
        "https://p.example/1",
        Some("g1"),
    )];
    h.feeds.script(
        "/feed",
        vec![feed(&before, "\"v1\""), feed(&after, "\"v2\"")],
    );
    let source = h.source("Publisher", "/feed", &[]).await;
    eventually(15, "the edit stored", || async {
        articles::by_source(&h.db, source.id)
            .await
            .unwrap()
            .iter()
            .any(|a| a.title == "Summit opens in Geneva")
    })
    .await;
    assert_eq!(
        articles::by_source(&h.db, source.id).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn the_same_url_from_two_feeds_is_one_article() {
    let h = harness().await;
    let one = [item(
        "Summit opens",
        "https://wire.example/story?utm_medium=feed",
        Some("a-1"),
    )];
    let two = [item(
        "Summit opens today",
        "https://wire.example/story#top",
        Some("b-9"),
    )];
    h.feeds.script("/one", vec![feed(&one, "\"1\"")]);
    h.feeds.script("/two", vec![feed(&two, "\"2\"")]);
    let first = h.source("One", "/one", &[]).await;
    let second = h.source("Two", "/two", &[]).await;
    eventually(10, "both feeds fetched", || async {
        h.reload(&first).await.last_status.is_some()
            && h.reload(&second).await.last_status.is_some()
    })
    .await;
    assert_eq!(articles::count(&h.db).await.unwrap(), 1);
}

// ---------------------------------------------------------------- stories and breaking

#[tokio::test]
async fn a_story_covered_by_min_sources_publishers_breaks_once() {
    let h = harness().await;
    let titles = [
        "Geneva ceasefire talks: envoys agree prisoner exchange framework",
        "Envoys agree prisoner exchange framework at Geneva ceasefire talks",
        "Geneva ceasefire talks reach prisoner exchange framework, envoys say",
    ];
    let mut created = Vec::new();
    for (n, title) in titles.iter().enumerate() {
        let path = format!("/p{n}");
        let items = [
            item(
                title,
                &format!("https://p{n}.example/geneva"),
                Some(&format!("p{n}-1")),
            ),
            item(
                &format!("Local bakery {n} wins a prize for its sourdough"),
                &format!("https://p{n}.example/bakery"),
                Some(&format!("p{n}-2")),
            ),
        ];
        h.feeds.script(&path, vec![feed(&items, "\"v\"")]);
        created.push(h.source(&format!("Publisher {n}"), &path, &[]).await);
    }
    // Several polls each, so a repeat would show.
    eventually(15, "every feed polled three times", || async {
        (0..3).all(|n| h.feeds.hits(&format!("/p{n}")).len() >= 3)
    })
    .await;

    let geneva = articles::by_source(&h.db, created[0].id)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.title.contains("Geneva"))
        .unwrap();
    assert!(
        geneva.topics.contains(&"world".to_string()),
        "keyword topic"
    );
    let story_id = geneva.story_id.unwrap();
    let story = stories::get(&h.db, story_id).await.unwrap();
    assert_eq!(
        (story.article_count, story.source_count),
        (3, 3),
        "{story:#?}"
    );
    assert!(story.breaking_at.is_some());
    let events = stories::breaking_events(&h.db, story_id).await.unwrap();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].topic, "world");
    // The notifier role turns the event into one alert for the topic's followers.
    eventually(15, "the notifier consumed the breaking event", || async {
        stories::pending_breaking_events(&h.db, 100)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let consumed = stories::breaking_events(&h.db, story_id).await.unwrap();
    assert_eq!(consumed.len(), 1);
    assert!(consumed[0].consumed_at.is_some());
}

// ---------------------------------------------------------------- several ingest workers

/// Runs `herald serve --roles ingest` on `config` until the returned token is cancelled.
fn ingest_worker(
    config: Config,
) -> (
    CancellationToken,
    tokio::task::JoinHandle<Result<(), String>>,
) {
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        // Every process listens for probes and metrics: each worker on a port of its own.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        herald::serve(
            config,
            Roles::only(&[HeraldRole::Ingest]),
            Some(listener),
            async move { stopped.cancelled().await },
        )
        .await
        .map_err(|e| format!("{e:#}"))
    });
    (stop, task)
}

#[tokio::test]
async fn two_ingest_workers_never_fetch_a_feed_twice_in_a_cycle() {
    const FEEDS: usize = 200;
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let feeds = FeedServer::start().await;
    feeds.state.lock().unwrap().many = true;
    for n in 0..FEEDS {
        sources::create(
            &db,
            NewSource {
                name: format!("Publisher {n}"),
                feed_url: feeds.url(&format!("/many/{n}")),
                site_url: None,
                topics: vec![],
                language: None,
                breaking: false,
                poll_interval_seconds: None,
            },
        )
        .await
        .unwrap();
    }
    let catalog = TempFile::catalog();
    let mut config = Config::default();
    config.database = test_db.config();
    config.ingest.allow_private_addresses = true;
    ingest_config(&mut config, &catalog);
    // One cycle: after a fetch a feed is not due again for an hour.
    config.ingest.min_interval_seconds = 3600;
    config.ingest.default_interval_seconds = 3600;
    config.ingest.max_interval_seconds = 7200;
    config.ingest.global_concurrency = 8;
    config.ingest.per_host_concurrency = 8;
    let workers = [ingest_worker(config.clone()), ingest_worker(config)];

    let all_fetched = || {
        let state = feeds.state.lock().unwrap();
        (0..FEEDS).all(|n| state.hits.contains_key(&format!("/many/{n}")))
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while !all_fetched() {
        assert!(Instant::now() < deadline, "not every feed was fetched");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while articles::count(&db).await.unwrap() < FEEDS as u64 {
        if Instant::now() > deadline {
            let errors: Vec<String> = sources::list(&db)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|s| s.last_error)
                .take(5)
                .collect();
            panic!("not every feed was stored: {errors:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (stop, task) in workers {
        stop.cancel();
        task.await.unwrap().unwrap();
    }
    let twice: Vec<String> = {
        let state = feeds.state.lock().unwrap();
        state
            .hits
            .iter()
            .filter(|(_, hits)| hits.len() > 1)
            .map(|(path, _)| path.clone())
            .collect()
    };
    assert!(twice.is_empty(), "fetched twice: {twice:?}");
    assert_eq!(articles::count(&db).await.unwrap(), FEEDS as u64);
    let released = sources::list(&db).await.unwrap();
    assert!(released.iter().all(|s| s.lease_owner.is_none()));
}

// ---------------------------------------------------------------- newsroom API

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

async fn editor_token(h: &Harness) -> String {
    let password = "correct horse battery staple 42";
    herald::create_user(&h.db, "editor@example.com", password, Role::Editor, None)
        .await
        .unwrap();
    let body: Value = h
        .app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "editor@example.com", "password": password}),
        )
        .await
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().unwrap().to_string()
}

fn fields(body: &Value) -> Vec<String> {
    let mut fields: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_string())
        .collect();
    fields.sort();
    fields
}

#[tokio::test]
async fn newsroom_manages_sources_and_readers_may_not() {
    use reqwest::Method;
    let h = harness().await;
    let items = [item("Summit opens", "https://p.example/1", Some("g1"))];
    h.feeds.script("/feed", vec![feed(&items, "\"v1\"")]);

    let reader: Value = h
        .app
        .post_json("/v1/auth/anonymous", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let reader = reader["access_token"].as_str().unwrap();
    let denied = call(&h.app, Method::GET, "/v1/admin/sources", reader, None).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let denied = call(
        &h.app,
        Method::POST,
        "/v1/admin/sources",
        reader,
        Some(json!({"name": "X", "url": h.feeds.url("/feed")})),
    )
    .await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let anonymous = h.app.get("/v1/admin/sources").await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    let editor = editor_token(&h).await;
    let invalid = call(
        &h.app,
        Method::POST,
        "/v1/admin/sources",
        &editor,
        Some(
            json!({"name": " ", "url": "ftp://feeds.example/rss", "topics": ["world", "mars"],
                    "poll_interval_seconds": 5}),
        ),
    )
    .await;
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = invalid.json().await.unwrap();
    assert_eq!(
        fields(&body),
        ["name", "poll_interval_seconds", "topics", "url"]
    );
    assert!(body.to_string().contains("mars"));

    let created = call(
        &h.app,
        Method::POST,
        "/v1/admin/sources",
        &editor,
        Some(json!({"name": "Local Times", "url": h.feeds.url("/feed"),
                    "site_url": "https://local.example/", "topics": ["world"], "language": "en-IN"})),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["language"], "en-in");
    assert_eq!(created["health"]["error_count"], 0);

    // Fetched at once: the health shows it.
    eventually(10, "the new source fetched", || async {
        let list: Value = call(&h.app, Method::GET, "/v1/admin/sources", &editor, None)
            .await
            .json()
            .await
            .unwrap();
        list[0]["health"]["last_status"] == 200
    })
    .await;
    let list: Value = call(&h.app, Method::GET, "/v1/admin/sources", &editor, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(list[0]["health"]["last_fetch_at"].is_string());
    assert!(list[0]["health"]["next_fetch_at"].is_string());
    assert!(list[0]["health"]["last_error"].is_null());

    let duplicate = call(
        &h.app,
        Method::POST,
        "/v1/admin/sources",
        &editor,
        Some(json!({"name": "Again", "url": h.feeds.url("/feed")})),
    )
    .await;
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);

    let patched = call(
        &h.app,
        Method::PATCH,
        &format!("/v1/admin/sources/{id}"),
        &editor,
        Some(json!({"name": "The Local Times", "site_url": null, "breaking": true})),
    )
    .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["name"], "The Local Times");
    assert!(patched["site_url"].is_null());
    assert_eq!(patched["breaking"], true);
    assert_eq!(patched["topics"], json!(["world"]));
    let bad_patch = call(
        &h.app,
        Method::PATCH,
        &format!("/v1/admin/sources/{id}"),
        &editor,
        Some(json!({"topics": ["mars"], "url": "not a url"})),
    )
    .await;
    assert_eq!(bad_patch.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = bad_patch.json().await.unwrap();
    assert_eq!(fields(&body), ["topics", "url"]);

    let publishers: Value = h.app.get("/v1/sources").await.json().await.unwrap();
    assert_eq!(
        publishers,
        json!([{"id": id, "name": "The Local Times", "site_url": null, "topics": ["world"]}])
    );

    let path = format!("/v1/admin/sources/{id}");
    let deleted = call(&h.app, Method::DELETE, &path, &editor, None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let gone = call(&h.app, Method::DELETE, &path, &editor, None).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    let missing = format!("/v1/admin/sources/{}", Uuid::now_v7());
    let missing = call(
        &h.app,
        Method::PATCH,
        &missing,
        &editor,
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        articles::count(&h.db).await.unwrap(),
        0,
        "articles go with their source"
    );
}
