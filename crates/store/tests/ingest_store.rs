#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store-level ingestion: source leases, article dedupe, stories and breaking events.

use chrono::{Duration, Utc};
use herald_store::Db;
use herald_store::articles::{self, NewArticle, Refetched};
use herald_store::sources::{self, FetchRecord, NewSource};
use herald_store::stories::{self, Added};
use herald_store::testing::TestDb;
use herald_store::topics::{self, Topic};
use std::collections::HashSet;
use uuid::Uuid;

fn source(n: usize) -> NewSource {
    NewSource {
        name: format!("Publisher {n}"),
        feed_url: format!("https://feeds{n}.example/rss"),
        site_url: None,
        topics: vec!["world".into()],
        language: Some("en".into()),
        breaking: false,
        poll_interval_seconds: None,
    }
}

fn article(source_id: Uuid, key: &str, url: Option<&str>, title: &str) -> NewArticle {
    let now = Utc::now();
    NewArticle {
        id: Uuid::now_v7(),
        source_id,
        dedupe_key: key.into(),
        canonical_url: url.map(str::to_string),
        title: title.into(),
        title_derived: false,
        summary: Some("summary".into()),
        content_html: None,
        image_url: None,
        author: None,
        language: None,
        topics: vec!["world".into()],
        published_at: now,
        fetched_at: now,
    }
}

async fn world_topic(db: &Db, min_sources: u32) {
    topics::sync(
        db,
        &[Topic {
            slug: "world".into(),
            name: "World".into(),
            description: String::new(),
            keywords: vec![],
            min_sources,
            window_minutes: 120,
        }],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn leases_are_exclusive_until_recorded_or_expired() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    for n in 0..3 {
        sources::create(&db, source(n)).await.unwrap();
    }
    let now = Utc::now() + Duration::seconds(1);
    let lease = std::time::Duration::from_secs(60);
    let a = sources::lease_due(&db, "a", now, 2, lease).await.unwrap();
    let b = sources::lease_due(&db, "b", now, 5, lease).await.unwrap();
    let c = sources::lease_due(&db, "c", now, 5, lease).await.unwrap();
    assert_eq!((a.len(), b.len(), c.len()), (2, 1, 0));
    assert!(a.iter().all(|s| s.lease_owner.as_deref() == Some("a")));

    // Recording releases the lease and moves the next fetch.
    let next = now + Duration::minutes(10);
    sources::record_fetch(
        &db,
        a[0].id,
        "a",
        FetchRecord {
            status: Some(200),
            validators: Some((Some("\"v1\"".into()), None)),
            error: None,
            next_fetch_at: next,
            fetched_at: now,
        },
    )
    .await
    .unwrap();
    let recorded = sources::get(&db, a[0].id).await.unwrap();
    assert_eq!(recorded.lease_owner, None);
    assert_eq!(recorded.etag.as_deref(), Some("\"v1\""));
    assert_eq!(recorded.last_status, Some(200));
    assert!(
        sources::lease_due(&db, "c", now, 5, lease)
            .await
            .unwrap()
            .is_empty()
    );

    // An error counts up and is kept until a success.
    sources::record_fetch(
        &db,
        b[0].id,
        "b",
        FetchRecord {
            status: Some(500),
            validators: None,
            error: Some("HTTP status 500".into()),
            next_fetch_at: now,
            fetched_at: now,
        },
    )
    .await
    .unwrap();
    let failed = sources::get(&db, b[0].id).await.unwrap();
    assert_eq!(
        (failed.error_count, failed.last_error.as_deref()),
        (1, Some("HTTP status 500"))
    );

    // Expired leases are claimable again: a[1] (still leased to a) after its lease, and b's.
    let later = now + Duration::seconds(120);
    let again = sources::lease_due(&db, "c", later, 5, lease).await.unwrap();
    let ids: HashSet<Uuid> = again.iter().map(|s| s.id).collect();
    assert_eq!(ids, HashSet::from([a[1].id, b[0].id]));
    assert_eq!(sources::release_leases(&db, "c").await.unwrap(), 2);
}

#[tokio::test]
async fn concurrent_lease_claims_never_overlap() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    for n in 0..60 {
        sources::create(&db, source(n)).await.unwrap();
    }
    let now = Utc::now() + Duration::seconds(1);
    let mut workers = Vec::new();
    for w in 0..4 {
        let db = db.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let got = sources::lease_due(
                    &db,
                    &format!("w{w}"),
                    now,
                    7,
                    std::time::Duration::from_secs(60),
                )
                .await
                .unwrap();
                if got.is_empty() {
                    break;
                }
                mine.extend(got.into_iter().map(|s| s.id));
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    let distinct: HashSet<Uuid> = all.iter().copied().collect();
    assert_eq!(all.len(), 60, "every source claimed exactly once");
    assert_eq!(distinct.len(), 60);
}

#[tokio::test]
async fn sync_inserts_then_updates_by_feed_url() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    assert_eq!(
        sources::sync(&db, &[source(1), source(2)]).await.unwrap(),
        2
    );
    let mut renamed = source(1);
    renamed.name = "Renamed".into();
    assert_eq!(sources::sync(&db, &[renamed]).await.unwrap(), 0);
    let all = sources::list(&db).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all.iter().any(|s| s.name == "Renamed"));
}

#[tokio::test]
async fn articles_dedupe_by_key_and_canonical_url() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    world_topic(&db, 5).await;
    let one = sources::create(&db, source(1)).await.unwrap();
    let two = sources::create(&db, source(2)).await.unwrap();
    let story = Uuid::now_v7();

    let first = article(one.id, "guid:1", Some("https://news.example/a"), "Title");
    assert_eq!(
        articles::upsert_existing(&db, &first).await.unwrap(),
        Refetched::New
    );
    let Added::Stored(stored) = stories::add_article(&db, first.clone(), story, &[])
        .await
        .unwrap()
    else {
        panic!("not stored");
    };
    assert_eq!((stored.article_count, stored.source_count), (1, 1));

    // The same item again: unchanged; with an edited title: updated, not duplicated.
    let again = article(one.id, "guid:1", Some("https://news.example/a"), "Title");
    assert_eq!(
        articles::upsert_existing(&db, &again).await.unwrap(),
        Refetched::Unchanged(first.id)
    );
    let edited = article(
        one.id,
        "guid:1",
        Some("https://news.example/a"),
        "Title, edited",
    );
    assert_eq!(
        articles::upsert_existing(&db, &edited).await.unwrap(),
        Refetched::Updated(first.id)
    );
    assert_eq!(
        articles::get(&db, first.id).await.unwrap().title,
        "Title, edited"
    );

    // Another feed with the same canonical URL: the same article.
    let other = article(two.id, "guid:x", Some("https://news.example/a"), "Title");
    assert_eq!(
        articles::upsert_existing(&db, &other).await.unwrap(),
        Refetched::SameUrl(first.id)
    );
    // Racing past the lookup, the unique index still keeps one article.
    assert_eq!(
        stories::add_article(&db, other, story, &[]).await.unwrap(),
        Added::Duplicate
    );
    assert_eq!(articles::count(&db).await.unwrap(), 1);
}

#[tokio::test]
async fn stories_count_publishers_merge_and_break_once() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    world_topic(&db, 2).await;
    let one = sources::create(&db, source(1)).await.unwrap();
    let two = sources::create(&db, source(2)).await.unwrap();
    let (story_a, story_b) = (Uuid::now_v7(), Uuid::now_v7());

    stories::add_article(
        &db,
        article(one.id, "k1", Some("https://a.example/1"), "A"),
        story_a,
        &[],
    )
    .await
    .unwrap();
    stories::add_article(
        &db,
        article(one.id, "k2", Some("https://a.example/2"), "A2"),
        story_a,
        &[],
    )
    .await
    .unwrap();
    let a = stories::get(&db, story_a).await.unwrap();
    assert_eq!((a.article_count, a.source_count), (2, 1));
    assert!(
        stories::check_breaking(&db, story_a, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );

    // A second publisher's article starts story B, which then absorbs A.
    stories::add_article(
        &db,
        article(two.id, "k3", Some("https://b.example/3"), "B"),
        story_b,
        &[],
    )
    .await
    .unwrap();
    let Added::Stored(b) = stories::add_article(
        &db,
        article(two.id, "k4", Some("https://b.example/4"), "B2"),
        story_b,
        &[story_a],
    )
    .await
    .unwrap() else {
        panic!("not stored")
    };
    assert_eq!((b.article_count, b.source_count), (4, 2));
    assert!(matches!(
        stories::get(&db, story_a).await,
        Err(herald_store::StoreError::NotFound)
    ));
    assert_eq!(articles::by_story(&db, story_b).await.unwrap().len(), 4);

    let events = stories::check_breaking(&db, story_b, Utc::now())
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].topic, "world");
    assert!(
        stories::check_breaking(&db, story_b, Utc::now())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        stories::get(&db, story_b)
            .await
            .unwrap()
            .breaking_at
            .is_some()
    );
    assert_eq!(
        stories::breaking_events(&db, story_b).await.unwrap().len(),
        1
    );

    let pending = stories::pending_breaking_events(&db, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert!(
        stories::consume_breaking_event(&db, pending[0].id, Utc::now())
            .await
            .unwrap()
    );
    assert!(
        !stories::consume_breaking_event(&db, pending[0].id, Utc::now())
            .await
            .unwrap()
    );
}
