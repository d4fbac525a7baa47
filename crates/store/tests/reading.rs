#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Store-level reading: topic lists, keyset pages, search on both databases, related
//! coverage, stories and comments.

use chrono::{DateTime, Duration, Utc};
use herald_store::Db;
use herald_store::articles::{self, NewArticle};
use herald_store::comments;
use herald_store::reading::{self, ArticleFilter, SearchQuery};
use herald_store::sources::{self, NewSource};
use herald_store::stories;
use herald_store::testing::TestDb;
use herald_store::users::{self, NewUser};
use std::collections::HashSet;
use uuid::Uuid;

async fn source(db: &Db, name: &str) -> Uuid {
    sources::create(
        db,
        NewSource {
            name: name.into(),
            feed_url: format!("https://{}.example/rss", name.to_lowercase()),
            site_url: None,
            topics: vec![],
            language: None,
            breaking: false,
            poll_interval_seconds: None,
        },
    )
    .await
    .unwrap()
    .id
}

struct Item<'a> {
    source: Uuid,
    title: &'a str,
    summary: &'a str,
    topics: &'a [&'a str],
    story: Uuid,
    published_at: DateTime<Utc>,
}

async fn add(db: &Db, item: Item<'_>) -> Uuid {
    let id = Uuid::now_v7();
    let new = NewArticle {
        id,
        source_id: item.source,
        dedupe_key: id.to_string(),
        canonical_url: Some(format!("https://news.example/{id}")),
        title: item.title.into(),
        title_derived: false,
        summary: Some(item.summary.into()),
        content_html: None,
        image_url: None,
        author: None,
        language: None,
        topics: item.topics.iter().map(|t| t.to_string()).collect(),
        published_at: item.published_at,
        fetched_at: item.published_at,
    };
    stories::add_article(db, new, item.story, &[])
        .await
        .unwrap();
    id
}

fn ids(list: &[reading::ListedArticle]) -> Vec<Uuid> {
    list.iter().map(|l| l.article.id).collect()
}

#[tokio::test]
async fn topic_pages_cover_every_article_once_while_new_ones_arrive() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let src = source(&db, "Wire").await;
    let base = Utc::now() - Duration::days(1);
    let mut world = HashSet::new();
    for n in 0..120 {
        let topics: &[&str] = if n % 3 == 0 {
            &["business"]
        } else {
            &["world"]
        };
        // Several articles share a publication second: the id breaks the tie.
        let id = add(
            &db,
            Item {
                source: src,
                title: &format!("Headline {n}"),
                summary: "text",
                topics,
                story: Uuid::now_v7(),
                published_at: base + Duration::seconds(n / 4),
            },
        )
        .await;
        if n % 3 != 0 {
            world.insert(id);
        }
    }
    let filter = ArticleFilter {
        topics: vec!["world".into()],
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut after = None;
    let mut late = 0;
    loop {
        let page = reading::articles(&db, &filter, after, 7).await.unwrap();
        // Newer articles arriving mid-walk land before the first page, never inside it.
        add(
            &db,
            Item {
                source: src,
                title: "Late arrival",
                summary: "text",
                topics: &["world"],
                story: Uuid::now_v7(),
                published_at: Utc::now(),
            },
        )
        .await;
        late += 1;
        let Some(last) = page.last() else { break };
        after = Some(last.key);
        for pair in page.windows(2) {
            let (a, b) = (&pair[0].key, &pair[1].key);
            assert!((a.published_at, a.id) > (b.published_at, b.id));
        }
        seen.extend(ids(&page));
    }
    let unique: HashSet<Uuid> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "an article was listed twice");
    assert_eq!(unique, world);

    // Several topics (a reader's feed) list an article in two of them once.
    let feed = ArticleFilter {
        topics: vec!["world".into(), "business".into()],
        only_followed: true,
        ..Default::default()
    };
    let all = reading::articles(&db, &feed, None, 1000).await.unwrap();
    assert_eq!(all.len(), 120 + late);
    let none = ArticleFilter {
        only_followed: true,
        ..Default::default()
    };
    assert!(
        reading::articles(&db, &none, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn search_ranks_headline_matches_first_then_newest() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let src = source(&db, "Daily").await;
    let now = Utc::now();
    let item = |title, summary, minutes| Item {
        source: src,
        title,
        summary,
        topics: &["world"],
        story: Uuid::now_v7(),
        published_at: now - Duration::minutes(minutes),
    };
    let old_title = add(
        &db,
        item("Ceasefire talks resume in Geneva", "Diplomats met.", 50),
    )
    .await;
    let new_summary = add(
        &db,
        item(
            "Markets rally",
            "Stocks rose as ceasefire TALKS resumed.",
            1,
        ),
    )
    .await;
    let new_title = add(&db, item("Geneva: ceasefire talks, day two", "More.", 10)).await;
    let only_one_word = add(&db, item("Ceasefire holds", "Quiet night.", 2)).await;
    add(&db, item("Weather", "Rain.", 3)).await;

    let search = |q: &str| ArticleFilter {
        search: Some(SearchQuery::parse(q).unwrap()),
        ..Default::default()
    };
    let found = reading::articles(&db, &search("ceasefire talks"), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&found), vec![new_title, old_title, new_summary]);
    assert_eq!(
        found.iter().map(|f| f.key.rank).collect::<Vec<_>>(),
        vec![1, 1, 0]
    );

    // Pages of a search continue across the rank boundary.
    let first = reading::articles(&db, &search("Talks, CEASEFIRE!"), None, 2)
        .await
        .unwrap();
    let rest = reading::articles(&db, &search("talks ceasefire"), Some(first[1].key), 2)
        .await
        .unwrap();
    assert_eq!(ids(&first), vec![new_title, old_title]);
    assert_eq!(ids(&rest), vec![new_summary]);

    let one = reading::articles(&db, &search("ceasefire"), None, 10)
        .await
        .unwrap();
    assert_eq!(
        ids(&one),
        vec![only_one_word, new_title, old_title, new_summary]
    );

    // An edited headline is searchable by its new words only.
    let edited = articles::get(&db, only_one_word).await.unwrap();
    let mut change = NewArticle {
        id: edited.id,
        source_id: edited.source_id,
        dedupe_key: edited.dedupe_key.clone(),
        canonical_url: edited.canonical_url.clone(),
        title: "Truce holds overnight".into(),
        title_derived: false,
        summary: edited.summary.clone(),
        content_html: None,
        image_url: None,
        author: None,
        language: None,
        topics: edited.topics.clone(),
        published_at: edited.published_at,
        fetched_at: Utc::now(),
    };
    articles::upsert_existing(&db, &change).await.unwrap();
    let one = reading::articles(&db, &search("ceasefire"), None, 10)
        .await
        .unwrap();
    assert!(!ids(&one).contains(&only_one_word));
    let truce = reading::articles(&db, &search("truce"), None, 10)
        .await
        .unwrap();
    assert_eq!(ids(&truce), vec![only_one_word]);
    change.title = "x".into();

    assert!(
        reading::articles(&db, &search("zyzzyva"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Query syntax of either engine is just text here.
    let odd = reading::articles(&db, &search("\"talks\" OR NEAR(x) ' & | !"), None, 10)
        .await
        .unwrap();
    assert!(odd.is_empty());
}

#[tokio::test]
async fn related_puts_other_publishers_first_newest_first_at_most_ten() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let story = Uuid::now_v7();
    let now = Utc::now();
    let a = source(&db, "Alpha").await;
    let b = source(&db, "Beta").await;
    let c = source(&db, "Gamma").await;
    let item = |source, minutes| Item {
        source,
        title: "Summit",
        summary: "s",
        topics: &["world"],
        story,
        published_at: now - Duration::minutes(minutes),
    };
    let own = add(&db, item(a, 30)).await;
    let own_later = add(&db, item(a, 1)).await;
    let beta_old = add(&db, item(b, 40)).await;
    let beta_new = add(&db, item(b, 5)).await;
    let gamma = add(&db, item(c, 20)).await;
    let mut extra = Vec::new();
    for n in 0..10 {
        extra.push(add(&db, item(c, 100 + n)).await);
    }
    let article = articles::get(&db, own).await.unwrap();
    let related = reading::related(&db, &article).await.unwrap();
    let got = ids(&related);
    assert_eq!(got.len(), 10);
    assert_eq!(&got[..2], &[beta_new, gamma]);
    assert_eq!(&got[2..5], &[own_later, beta_old, extra[0]]);
    assert!(!got.contains(&own));
    assert_eq!(related[0].source_name, "Beta");

    let (story_row, members) = reading::story_page(&db, story).await.unwrap();
    assert_eq!(story_row.article_count, 15);
    assert_eq!(story_row.source_count, 3);
    assert_eq!(members[0].article.id, own_later);
}

#[tokio::test]
async fn stories_by_topic_newest_update_first() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let src = source(&db, "Wire").await;
    let mut world = Vec::new();
    for n in 0..5 {
        let story = Uuid::now_v7();
        let topics: &[&str] = if n == 2 { &["sport"] } else { &["world"] };
        add(
            &db,
            Item {
                source: src,
                title: "t",
                summary: "s",
                topics,
                story,
                published_at: Utc::now(),
            },
        )
        .await;
        if n != 2 {
            world.push(story);
        }
    }
    world.reverse();
    let first = reading::stories(&db, Some("world"), None, 3).await.unwrap();
    let key = reading::StoryKey {
        updated_at: first[2].updated_at,
        id: first[2].id,
    };
    let rest = reading::stories(&db, Some("world"), Some(key), 3)
        .await
        .unwrap();
    let got: Vec<Uuid> = first.iter().chain(&rest).map(|s| s.id).collect();
    assert_eq!(got, world);
    assert_eq!(
        reading::stories(&db, None, None, 10).await.unwrap().len(),
        5
    );
}

#[tokio::test]
async fn comments_list_oldest_first_and_vanish_when_deleted() {
    let test_db = TestDb::new().await;
    let db = test_db.connect().await;
    let src = source(&db, "Wire").await;
    let article = add(
        &db,
        Item {
            source: src,
            title: "t",
            summary: "s",
            topics: &["world"],
            story: Uuid::now_v7(),
            published_at: Utc::now(),
        },
    )
    .await;
    let user = users::create(
        &db,
        NewUser {
            email: Some("reader@example.com".into()),
            display_name: Some("Reader".into()),
            password_hash: None,
            role: users::Role::Reader,
            is_anonymous: false,
        },
    )
    .await
    .unwrap();
    let now = Utc::now();
    let mut posted = Vec::new();
    for n in 0..5 {
        let body = format!("<b>comment {n}</b> & more");
        posted.push(
            comments::create(&db, article, user.id, &body, now)
                .await
                .unwrap(),
        );
    }
    assert_eq!(posted[0].body, "<b>comment 0</b> & more");
    assert_eq!(posted[0].author_name.as_deref(), Some("Reader"));
    let first = comments::list(&db, article, None, 3).await.unwrap();
    let rest = comments::list(&db, article, Some(first[2].key()), 3)
        .await
        .unwrap();
    let got: Vec<Uuid> = first.iter().chain(&rest).map(|c| c.id).collect();
    assert_eq!(got, posted.iter().map(|c| c.id).collect::<Vec<_>>());

    comments::delete(&db, posted[1].id).await.unwrap();
    let after = comments::list(&db, article, None, 10).await.unwrap();
    assert_eq!(after.len(), 4);
    assert!(after.iter().all(|c| c.id != posted[1].id));
    assert!(matches!(
        comments::delete(&db, posted[1].id).await,
        Err(herald_store::StoreError::NotFound)
    ));
    assert!(matches!(
        comments::create(&db, Uuid::now_v7(), user.id, "x", now).await,
        Err(herald_store::StoreError::NotFound)
    ));
}
