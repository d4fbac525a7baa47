#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A story that ingestion marked breaking becomes exactly one queued alert for its topic.

use chrono::{Duration as ChronoDuration, Utc};
use herald_notifier::config::PushConfig;
use herald_notifier::triggers::alert_breaking_stories;
use herald_store::articles::NewArticle;
use herald_store::sources::{self, NewSource};
use herald_store::testing::TestDb;
use herald_store::topics::{self, Topic};
use herald_store::{queue, stories};
use std::time::Duration;
use uuid::Uuid;

#[tokio::test]
async fn a_breaking_story_is_queued_once_with_its_lead_article() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let topic = Topic {
        slug: "world".into(),
        name: "World".into(),
        description: String::new(),
        keywords: vec![],
        min_sources: 2,
        window_minutes: 60,
    };
    topics::sync(&db, &[topic]).await.unwrap();
    let story_id = Uuid::now_v7();
    let now = Utc::now();
    for (i, minutes_ago) in [(0, 30), (1, 5)] {
        let source = sources::create(
            &db,
            NewSource {
                name: format!("Publisher {i}"),
                feed_url: format!("https://publisher{i}.example/feed"),
                site_url: None,
                topics: vec!["world".into()],
                language: None,
                breaking: false,
                poll_interval_seconds: None,
            },
        )
        .await
        .unwrap();
        let article = NewArticle {
            id: Uuid::now_v7(),
            source_id: source.id,
            dedupe_key: format!("guid:{i}"),
            canonical_url: Some(format!("https://publisher{i}.example/ceasefire")),
            title: "Ceasefire agreed in Geneva after three days of talks".into(),
            title_derived: false,
            summary: Some(format!("Summary from publisher {i}")),
            content_html: None,
            image_url: None,
            author: None,
            language: None,
            topics: vec!["world".into()],
            published_at: now - ChronoDuration::minutes(minutes_ago),
            fetched_at: now,
        };
        stories::add_article(&db, article, story_id, &[])
            .await
            .unwrap();
    }
    stories::record_breaking(&db, story_id, "world", now)
        .await
        .unwrap();
    // Recording it again changes nothing: once per story and topic.
    stories::record_breaking(&db, story_id, "world", now)
        .await
        .unwrap();

    let config = PushConfig::default();
    assert_eq!(alert_breaking_stories(&db, &config).await.unwrap(), 1);
    assert_eq!(
        alert_breaking_stories(&db, &config).await.unwrap(),
        0,
        "consumed"
    );
    assert!(
        stories::pending_breaking_events(&db, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let lease = queue::lease(&db, "test", Duration::from_secs(30), 100)
        .await
        .unwrap()
        .expect("the alert's first batch is queued");
    let alert = lease.alert;
    assert_eq!(alert.story_id, Some(story_id));
    assert_eq!(alert.topics, vec!["world".to_string()]);
    assert_eq!(
        alert.url, "https://publisher1.example/ceasefire",
        "the newest article leads"
    );
    assert_eq!(alert.body, "Summary from publisher 1");
    assert!(alert.title.starts_with("Ceasefire agreed"));
}
