#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Feeds as they really are, through the running app (issue #22 §2 and §3): what each
//! source's entries became is counted, refusals with their reason; an untitled entry's made
//! headline is marked on the reading API; lead images are served there only when they are
//! https on a public host.

use herald_store::source_health;
use herald_store::sources::{self, NewSource};
use herald_tests::TestApp;
use herald_tests::websub_hub::FakeHub;
use serde_json::Value;
use std::time::{Duration, Instant};

const FEED: &str = "real.rss";

fn feed() -> String {
    let now = chrono::Utc::now().to_rfc2822();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Real</title>
<link>https://real.example/</link>
<item><title>Harbour bridge reopens after repairs</title><link>https://real.example/bridge?id=1&ref=rss</link>
  <pubDate>{now}</pubDate><media:content url="https://img.real.example/bridge.jpg" medium="image" type="image/jpeg"/></item>
<item><title>Library extends opening hours</title><guid>https://real.example/library</guid><pubDate>{now}</pubDate>
  <enclosure url="http://img.real.example/library.jpg" type="image/jpeg" length="1"/>
  <description>&lt;p&gt;More hours. &lt;img src="https://img.real.example/library-body.png"&gt;&lt;/p&gt;</description></item>
<item><link>https://real.example/flood</link><pubDate>{now}</pubDate><description>The river rose overnight. More later.</description></item>
<item><description></description><guid isPermaLink="false">empty-1</guid></item>
<item><title>Council meets &amp; votes</title><link>https://real.example/council</link><pubDate>{now}</pubDate>
  <media:thumbnail url="https://127.0.0.1/private.jpg"/></item>
</channel>"#
    )
}

#[tokio::test]
async fn entries_are_counted_by_fate_and_lead_images_served() {
    let hub = FakeHub::start().await;
    hub.set_feed(FEED, &feed());
    let app = TestApp::spawn_with(|config| {
        config.ingest.min_interval_seconds = 1;
        config.ingest.default_interval_seconds = 1;
        config.ingest.max_interval_seconds = 2;
    })
    .await;
    let db = app.db.connect().await;
    let source = sources::create(
        &db,
        NewSource {
            name: "Real".into(),
            feed_url: hub.feed_url(FEED),
            site_url: None,
            topics: vec!["world".into()],
            language: None,
            breaking: false,
            poll_interval_seconds: Some(1),
        },
    )
    .await
    .unwrap();
    // Two polls: the second sees the same entries again.
    let start = Instant::now();
    let health = loop {
        let health = source_health::get(&db, source.id).await.unwrap();
        if health.counts.seen >= 10 {
            break health;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{health:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let c = &health.counts;
    assert_eq!(c.seen % 5, 0, "{health:?}");
    let polls = c.seen / 5;
    assert_eq!(c.ingested, 4, "{health:?}");
    assert_eq!(c.refused_no_title_or_link, polls, "{health:?}");
    assert_eq!(c.derived_titles, 1, "{health:?}");
    assert_eq!(c.duplicates, 4 * (polls - 1), "{health:?}");
    assert_eq!(c.pushed, 0);
    let refusal = health.last_refusal.unwrap();
    assert!(
        refusal.contains("empty-1") && refusal.contains("neither"),
        "{refusal}"
    );
    // The newsroom sees the same counts in the source's health.
    let editor = herald_tests::newsroom::editor(&app).await;
    let listed: Value = app
        .client
        .get(app.url(&format!("/v1/admin/sources/{}", source.id)))
        .bearer_auth(&editor.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = &listed["health"]["entries"];
    assert!(entries["seen"].as_u64().unwrap() >= c.seen, "{listed}");
    assert_eq!(entries["ingested"], 4, "{listed}");
    assert_eq!(entries["derived_titles"], 1, "{listed}");
    assert!(
        entries["refused"]["no_title_or_link"].as_u64().unwrap() >= 1,
        "{listed}"
    );
    assert!(
        listed["health"]["last_refusal"]
            .as_str()
            .is_some_and(|r| r.contains("empty-1")),
        "{listed}"
    );
    // No `http.public_url` in tests: WebSub is off, and the health says how to turn it on.
    assert_eq!(listed["health"]["websub"]["state"], "off", "{listed}");

    let list: Value = app
        .get(&format!("/v1/articles?source={}&limit=10", source.id))
        .await
        .json()
        .await
        .unwrap();
    let by_url = |fragment: &str| {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["url"].as_str().unwrap_or_default().contains(fragment))
            .cloned()
            .unwrap_or_else(|| panic!("no article at {fragment}: {list}"))
    };
    let bridge = by_url("bridge");
    assert_eq!(bridge["url"], "https://real.example/bridge?id=1&ref=rss");
    assert_eq!(bridge["image_url"], "https://img.real.example/bridge.jpg");
    // The http enclosure is passed over for the https image in the body.
    assert_eq!(
        by_url("library")["image_url"],
        "https://img.real.example/library-body.png"
    );
    // The untitled entry's headline is its summary's first sentence, and marked as made.
    let flood = by_url("flood");
    assert_eq!(flood["title"], "The river rose overnight.");
    assert_eq!(flood["title_derived"], true, "{flood}");
    // A thumbnail on a loopback address is no lead image.
    let council = by_url("council");
    assert_eq!(council["title"], "Council meets & votes");
    assert!(council["image_url"].is_null(), "{council}");
    for titled in ["bridge", "library", "council"] {
        assert_eq!(by_url(titled)["title_derived"], false, "{titled}: {list}");
    }
    let detail: Value = app
        .get(&format!("/v1/articles/{}", flood["id"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail["title"], "The river rose overnight.", "{detail}");
    assert_eq!(detail["title_derived"], true, "{detail}");

    // The publisher adds the title: the article takes it and is no longer marked.
    hub.set_feed(
        FEED,
        &feed().replace(
            "<item><link>https://real.example/flood</link>",
            "<item><title>River floods the lower town</title><link>https://real.example/flood</link>",
        ),
    );
    let start = Instant::now();
    let detail = loop {
        let detail: Value = app
            .get(&format!("/v1/articles/{}", flood["id"].as_str().unwrap()))
            .await
            .json()
            .await
            .unwrap();
        if detail["title"] == "River floods the lower town" {
            break detail;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{detail}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(detail["title_derived"], false, "{detail}");
}
