#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reader's router in process: status, CSP, cache headers, 304s, escaping and what the
//! pages say (publisher, related coverage, paging), on a fresh migrated database.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{Duration, Utc};
use herald_store::articles::NewArticle;
use herald_store::sources::{self, NewSource};
use herald_store::testing::TestDb;
use herald_store::topics::{self, Topic};
use herald_web::{Web, WebConfig, WebState, reader_router};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

struct Site {
    router: Router,
    story: Uuid,
    /// The newer article of the story (Harbour Times) and the older (Daily Meridian).
    newer: Uuid,
    older: Uuid,
    _db: TestDb,
}

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
    bytes: usize,
}

impl Page {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }
}

async fn source(db: &herald_store::Db, name: &str) -> Uuid {
    sources::create(
        db,
        NewSource {
            name: name.into(),
            feed_url: format!("https://{}.example/feed", Uuid::now_v7().simple()),
            site_url: None,
            topics: vec!["world".into()],
            language: None,
            breaking: false,
            poll_interval_seconds: None,
        },
    )
    .await
    .unwrap()
    .id
}

fn article(source_id: Uuid, title: &str, minutes_ago: i64) -> NewArticle {
    let tag = Uuid::now_v7().simple();
    NewArticle {
        id: Uuid::now_v7(),
        source_id,
        dedupe_key: format!("guid:{tag}"),
        canonical_url: Some(format!("https://news.example/{tag}")),
        title: title.into(),
        title_derived: false,
        summary: Some(format!("Summary of {title}")),
        content_html: Some(format!(
            "<p>Body of {title} &amp; more.</p><p>Second paragraph.</p>"
        )),
        image_url: None,
        author: None,
        language: None,
        topics: vec!["world".into()],
        published_at: Utc::now() - Duration::minutes(minutes_ago),
        fetched_at: Utc::now(),
    }
}

impl Site {
    async fn start(config: WebConfig) -> Self {
        let test_db = TestDb::new().await;
        let db = test_db.connect().await;
        topics::sync(
            &db,
            &[Topic {
                slug: "world".into(),
                name: "World".into(),
                description: "International news".into(),
                keywords: vec![],
                min_sources: 3,
                window_minutes: 120,
            }],
        )
        .await
        .unwrap();
        let meridian = source(&db, "The Daily Meridian").await;
        let harbour = source(&db, "Harbour Times").await;
        let story = Uuid::now_v7();
        let older = article(
            meridian,
            "Ceasefire talks resume <script>alert(1)</script>",
            540,
        );
        let newer = article(harbour, "Envoys welcome progress in peace talks", 10);
        let (older_id, newer_id) = (older.id, newer.id);
        herald_store::stories::add_article(&db, older, story, &[])
            .await
            .unwrap();
        herald_store::stories::add_article(&db, newer, story, &[])
            .await
            .unwrap();
        let state = WebState(Arc::new(Web {
            db,
            config,
            vapid_public_key: "BExampleKey".into(),
            cursor_key: herald_auth::CursorKey::from_secret(b"test cursor key"),
        }));
        Self {
            router: reader_router(state),
            story,
            newer: newer_id,
            older: older_id,
            _db: test_db,
        }
    }

    async fn get_with(&self, path: &str, headers: &[(header::HeaderName, &str)]) -> Page {
        let mut request = Request::get(path);
        for (name, value) in headers {
            request = request.header(name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Page {
            status,
            headers,
            bytes: bytes.len(),
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    async fn get(&self, path: &str) -> Page {
        self.get_with(path, &[]).await
    }
}

fn asset_links(html: &str) -> Vec<String> {
    html.match_indices("/assets/")
        .map(|(at, _)| {
            let rest = &html[at..];
            let end = rest.find(['"', '\'', ' ', ')']).unwrap();
            rest[..end].to_string()
        })
        .filter(|link| link.len() > "/assets/".len() + 17)
        .collect()
}

#[tokio::test]
async fn the_front_page_lists_headlines_with_publisher_and_time_under_a_strict_policy() {
    let site = Site::start(WebConfig::default()).await;
    let page = site.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header(header::CONTENT_TYPE).starts_with("text/html"));
    let csp = page.header(header::CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header(header::CACHE_CONTROL), "no-cache");
    assert!(page.body.contains("Envoys welcome progress in peace talks"));
    assert!(page.body.contains("Harbour Times"));
    assert!(page.body.contains("10 minutes ago"));
    assert!(page.body.contains("<time datetime=\""));
    assert!(
        page.body
            .contains(&format!("href=\"/articles/{}\"", site.newer))
    );
    // Landmarks, a canonical link, Open Graph, the manifest; no inline script.
    for needle in [
        "<main id=\"main\"",
        "<header class=\"masthead\"",
        "<nav class=\"tabs\" aria-label=\"Topics\"",
        "<link rel=\"canonical\" href=\"/\">",
        "<meta property=\"og:title\"",
        "<link rel=\"manifest\" href=\"/manifest.webmanifest\">",
        "href=\"/topics/world\"",
    ] {
        assert!(page.body.contains(needle), "missing {needle}");
    }
    assert!(!page.body.contains("<script>"), "no inline script");
    // Feed text is text.
    assert!(
        page.body
            .contains("Ceasefire talks resume &#60;script&#62;alert(1)&#60;/script&#62;")
            || page
                .body
                .contains("Ceasefire talks resume &lt;script&gt;alert(1)&lt;/script&gt;")
    );

    let etag = page.header(header::ETAG).to_string();
    assert!(!etag.is_empty());
    let again = site
        .get_with("/", &[(header::IF_NONE_MATCH, etag.as_str())])
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
}

#[tokio::test]
async fn an_article_names_its_publisher_and_shows_related_coverage_from_another() {
    let site = Site::start(WebConfig::default()).await;
    let page = site.get(&format!("/articles/{}", site.older)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.body
            .contains("<span class=\"source\">The Daily Meridian</span>")
    );
    assert!(page.body.contains("9 hours ago"));
    assert!(page.body.contains("Body of Ceasefire talks resume"));
    assert!(page.body.contains("Second paragraph."));
    assert!(!page.body.contains("<script>alert"), "the title is escaped");
    let related = &page.body[page.body.find("Related coverage").unwrap()..];
    assert!(related.contains("Envoys welcome progress in peace talks"));
    assert!(related.contains("Harbour Times"));
    assert!(
        page.body
            .contains(&format!("href=\"/stories/{}\"", site.story))
    );
    assert!(page.body.contains("rel=\"noopener\""));
    assert!(
        page.body
            .contains("<meta property=\"og:type\" content=\"article\">")
    );
    assert!(page.body.contains(&format!(
        "<link rel=\"canonical\" href=\"/articles/{}\">",
        site.older
    )));

    let story = site.get(&format!("/stories/{}", site.story)).await;
    assert_eq!(story.status, StatusCode::OK);
    assert!(story.body.contains("2 articles from 2 publishers"));
    assert!(story.body.contains("The Daily Meridian") && story.body.contains("Harbour Times"));

    for missing in [
        format!("/articles/{}", Uuid::now_v7()),
        "/articles/not-a-uuid".to_string(),
        format!("/stories/{}", Uuid::now_v7()),
        "/topics/nonsense".to_string(),
        "/?cursor=junk".to_string(),
    ] {
        let page = site.get(&missing).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{missing}");
        assert!(page.body.contains("Page not found"), "{missing}");
    }
}

#[tokio::test]
async fn topics_search_and_paging() {
    let site = Site::start(WebConfig::default()).await;
    let topic = site.get("/topics/world").await;
    assert_eq!(topic.status, StatusCode::OK);
    assert!(topic.body.contains("data-follow=\"world\""));
    assert!(topic.body.contains("aria-current=\"page\">World</a>"));

    let found = site.get("/search?q=envoys").await;
    assert_eq!(found.status, StatusCode::OK);
    assert!(found.body.contains("Envoys welcome progress"));
    assert!(!found.body.contains("Ceasefire talks resume"));
    assert!(found.body.contains("noindex"));
    let empty = site.get("/search").await;
    assert_eq!(empty.status, StatusCode::OK);

    // Two headlines fit on one page: no link to older ones.
    let page = site.get("/").await;
    assert!(!page.body.contains("Older headlines"));
}

#[tokio::test]
async fn a_long_list_pages_by_position() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let publisher = source(&db, "Capital Wire").await;
    for i in 0..25 {
        let item = article(publisher, &format!("Market report number {i:02}"), i);
        herald_store::stories::add_article(&db, item, Uuid::now_v7(), &[])
            .await
            .unwrap();
    }
    let state = WebState(Arc::new(Web {
        db,
        config: WebConfig::default(),
        vapid_public_key: String::new(),
        cursor_key: herald_auth::CursorKey::from_secret(b"test cursor key"),
    }));
    let site = Site {
        router: reader_router(state),
        story: Uuid::nil(),
        newer: Uuid::nil(),
        older: Uuid::nil(),
        _db: test_db,
    };
    let first = site.get("/").await;
    assert_eq!(first.body.matches("class=\"headline\"").count(), 20);
    assert!(first.body.contains("Market report number 00"));
    let start = first.body.find("href=\"/?cursor=").unwrap() + "href=\"".len();
    let end = start + first.body[start..].find('"').unwrap();
    let next = first.body[start..end]
        .replace("&#38;", "&")
        .replace("&amp;", "&");
    // The link carries the JSON API's own cursor for the same list: `GET /v1/articles` takes it.
    let cursor = next.trim_start_matches("/?cursor=");
    herald_auth::CursorKey::from_secret(b"test cursor key")
        .decode_article(
            &herald_auth::cursor::article_scope(None, None, None, None),
            cursor,
        )
        .expect("the API's cursor for /v1/articles");
    let second = site.get(&next).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.body.matches("class=\"headline\"").count(), 5);
    assert!(second.body.contains("Market report number 24"));
    assert!(!second.body.contains("Market report number 19"));
    assert!(!second.body.contains("rel=\"next\""));
}

#[tokio::test]
async fn assets_manifest_and_service_worker() {
    let config = WebConfig {
        site_name: "Herald".into(),
        ios_app_url: Some("https://apps.apple.com/app/herald/id1".into()),
        android_app_url: Some(
            "https://play.google.com/store/apps/details?id=example.herald".into(),
        ),
        ..WebConfig::default()
    };
    let site = Site::start(config).await;
    let page = site.get("/").await;
    assert!(page.body.contains("App Store") && page.body.contains("Google Play"));
    let links = asset_links(&page.body);
    assert!(links.len() >= 4, "{links:?}");
    let mut total = page.bytes;
    for link in &links {
        let asset = site.get(link).await;
        assert_eq!(asset.status, StatusCode::OK, "{link}");
        assert_eq!(
            asset.header(header::CACHE_CONTROL),
            "public, max-age=31536000, immutable"
        );
        let etag = asset.header(header::ETAG).to_string();
        let again = site
            .get_with(link, &[(header::IF_NONE_MATCH, etag.as_str())])
            .await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{link}");
        total += asset.bytes;
    }
    // The budgets: HTML ≤ 60 KB, page and assets ≤ 150 KB.
    assert!(
        page.bytes <= 60 * 1024,
        "front page HTML is {} bytes",
        page.bytes
    );
    assert!(
        total <= 150 * 1024,
        "front page with assets is {total} bytes"
    );

    let manifest = site.get("/manifest.webmanifest").await;
    assert_eq!(manifest.status, StatusCode::OK);
    assert_eq!(
        manifest.header(header::CONTENT_TYPE),
        "application/manifest+json"
    );
    let json: serde_json::Value = serde_json::from_str(&manifest.body).unwrap();
    assert_eq!(json["display"], "standalone");
    assert_eq!(json["start_url"], "/");
    assert!(json["theme_color"].as_str().unwrap().starts_with('#'));
    let icons = json["icons"].as_array().unwrap();
    for size in ["192x192", "512x512"] {
        let icon = icons.iter().find(|i| i["sizes"] == size).unwrap();
        let png = site.get(icon["src"].as_str().unwrap()).await;
        assert_eq!(png.status, StatusCode::OK);
        assert_eq!(png.header(header::CONTENT_TYPE), "image/png");
    }
    assert!(icons.iter().any(|i| i["purpose"] == "maskable"));
    assert_eq!(json["related_applications"].as_array().unwrap().len(), 2);

    let sw = site.get("/sw.js").await;
    assert_eq!(sw.status, StatusCode::OK);
    assert!(
        sw.header(header::CONTENT_TYPE)
            .starts_with("text/javascript")
    );
    assert_eq!(sw.header(header::CACHE_CONTROL), "no-cache");
    assert!(
        !sw.body.contains("HERALD_CONFIG"),
        "the settings are filled in"
    );
    assert!(sw.body.contains("\"/offline\""));
    for link in asset_links(&sw.body) {
        assert_eq!(site.get(&link).await.status, StatusCode::OK, "{link}");
    }
    let etag = sw.header(header::ETAG).to_string();
    let again = site
        .get_with("/sw.js", &[(header::IF_NONE_MATCH, etag.as_str())])
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);

    for path in ["/offline", "/account", "/following", "/alerts"] {
        let page = site.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains("<main id=\"main\""), "{path}");
        assert!(
            page.header(header::CONTENT_SECURITY_POLICY)
                .contains("default-src 'none'")
        );
    }
    let following = site.get("/following").await;
    assert!(following.body.contains("data-push-toggle"));
    assert!(following.body.contains("<label for=\"topic-world\">World"));
}
