#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The reading API over HTTP (SPEC §3 "Reading"): lists and their cursors, filters, search,
//! related coverage, stories, the reader's feed, ETags and comments.

use chrono::{DateTime, Duration, Utc};
use herald_store::Db;
use herald_store::articles::NewArticle;
use herald_store::sources::{self, NewSource};
use herald_store::stories;
use herald_store::users::Role;
use herald_tests::TestApp;
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::collections::HashSet;
use uuid::Uuid;

async fn source(db: &Db, name: &str) -> Uuid {
    sources::create(
        db,
        NewSource {
            name: name.into(),
            feed_url: format!("https://{}.example/rss", name.to_lowercase()),
            site_url: Some(format!("https://{}.example/", name.to_lowercase())),
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

async fn add(
    db: &Db,
    source: Uuid,
    title: &str,
    topics: &[&str],
    story: Uuid,
    published_at: DateTime<Utc>,
) -> Uuid {
    let id = Uuid::now_v7();
    let new = NewArticle {
        id,
        source_id: source,
        dedupe_key: id.to_string(),
        canonical_url: Some(format!("https://news.example/{id}")),
        title: title.into(),
        title_derived: false,
        summary: Some(format!("Summary of {title}.")),
        content_html: Some("<p>Body</p>".into()),
        image_url: None,
        author: Some("A. Writer".into()),
        language: Some("en".into()),
        topics: topics.iter().map(|t| t.to_string()).collect(),
        published_at,
        fetched_at: published_at,
    };
    stories::add_article(db, new, story, &[]).await.unwrap();
    id
}

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect()
}

async fn call(
    app: &TestApp,
    method: Method,
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

async fn token_of(response: reqwest::Response) -> String {
    let body = json_of(response).await;
    body["access_token"].as_str().unwrap().to_string()
}

async fn signup(app: &TestApp, email: &str, name: &str) -> String {
    let response = app
        .post_json(
            "/v1/auth/signup",
            &json!({"email": email, "password": "correct horse battery staple 42", "display_name": name}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    token_of(response).await
}

#[tokio::test]
async fn pages_walk_250_articles_without_gaps_or_repeats_while_new_ones_arrive() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let wire = source(&db, "Wire").await;
    let base = Utc::now() - Duration::days(2);
    let mut world = HashSet::new();
    for n in 0..250 {
        // Four articles a second: ties on the time are broken by id.
        let id = add(
            &db,
            wire,
            &format!("World {n}"),
            &["world"],
            Uuid::now_v7(),
            base + Duration::seconds(n / 4),
        )
        .await;
        world.insert(id.to_string());
        if n % 10 == 0 {
            add(
                &db,
                wire,
                &format!("Business {n}"),
                &["business"],
                Uuid::now_v7(),
                base,
            )
            .await;
        }
    }
    let mut seen = Vec::new();
    let mut path = "/v1/articles?topic=world&limit=40".to_string();
    loop {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CACHE_CONTROL],
            "public, max-age=30"
        );
        let page = json_of(response).await;
        seen.extend(ids(&page));
        add(
            &db,
            wire,
            "Breaking meanwhile",
            &["world"],
            Uuid::now_v7(),
            Utc::now(),
        )
        .await;
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/articles?topic=world&limit=40&cursor={cursor}"),
            None => break,
        }
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "an article was listed twice");
    assert_eq!(unique, world, "an article was skipped");

    // Shape of an article (SPEC §3).
    let first = json_of(app.get("/v1/articles?topic=world&limit=1").await).await;
    let article = &first["items"][0];
    assert_eq!(article["title"], "Breaking meanwhile");
    assert_eq!(article["source"]["name"], "Wire");
    assert_eq!(article["topics"], json!(["world"]));
    for field in [
        "id",
        "summary",
        "url",
        "image_url",
        "author",
        "story_id",
        "published_at",
        "fetched_at",
    ] {
        assert!(article.get(field).is_some(), "{field} missing");
    }
    assert!(
        article.get("content_html").is_none(),
        "lists leave the body out"
    );
}

#[tokio::test]
async fn filters_limits_and_cursors_are_checked() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let alpha = source(&db, "Alpha").await;
    let beta = source(&db, "Beta").await;
    let now = Utc::now();
    let old = add(
        &db,
        alpha,
        "Old news",
        &["world"],
        Uuid::now_v7(),
        now - Duration::days(3),
    )
    .await;
    let fresh = add(
        &db,
        alpha,
        "Fresh news",
        &["world"],
        Uuid::now_v7(),
        now - Duration::hours(1),
    )
    .await;
    let other = add(&db, beta, "Beta news", &["india"], Uuid::now_v7(), now).await;

    let page = json_of(app.get(&format!("/v1/articles?source={alpha}")).await).await;
    assert_eq!(ids(&page), vec![fresh.to_string(), old.to_string()]);
    let since = (now - Duration::days(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let page = json_of(app.get(&format!("/v1/articles?since={since}")).await).await;
    assert_eq!(ids(&page), vec![other.to_string(), fresh.to_string()]);
    let page = json_of(app.get("/v1/articles?topic=india").await).await;
    assert_eq!(ids(&page), vec![other.to_string()]);
    assert!(page["next_cursor"].is_null());

    let status = |path: String| {
        let app = &app;
        async move {
            let response = app.get(&path).await;
            let status = response.status();
            if status != StatusCode::OK {
                assert_eq!(
                    response.headers()[header::CONTENT_TYPE],
                    "application/problem+json"
                );
            }
            status
        }
    };
    assert_eq!(
        status("/v1/articles?topic=sport".into()).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(format!("/v1/articles?source={}", Uuid::now_v7())).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status("/v1/articles?source=nope".into()).await,
        StatusCode::NOT_FOUND
    );
    for limit in ["0", "101", "-1", "ten"] {
        assert_eq!(
            status(format!("/v1/articles?limit={limit}")).await,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    assert_eq!(
        status("/v1/articles?limit=100".into()).await,
        StatusCode::OK
    );
    assert_eq!(
        status("/v1/articles?since=yesterday".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status("/v1/articles?q=%20--%20".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status("/v1/stories?limit=0".into()).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        status("/v1/stories?topic=sport".into()).await,
        StatusCode::NOT_FOUND
    );

    // Cursors: made up, edited, or from another list → 400.
    let page = json_of(app.get("/v1/articles?topic=world&limit=1").await).await;
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    assert_eq!(
        status(format!("/v1/articles?topic=world&limit=1&cursor={cursor}")).await,
        StatusCode::OK
    );
    assert_eq!(
        status(format!("/v1/articles?topic=india&limit=1&cursor={cursor}")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(format!("/v1/articles?limit=1&cursor={cursor}")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status(format!("/v1/stories?cursor={cursor}")).await,
        StatusCode::BAD_REQUEST
    );
    let mut edited = cursor.clone().into_bytes();
    edited[3] = if edited[3] == b'A' { b'B' } else { b'A' };
    let edited = String::from_utf8(edited).unwrap();
    assert_eq!(
        status(format!("/v1/articles?topic=world&limit=1&cursor={edited}")).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status("/v1/articles?cursor=garbage".into()).await,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn search_ranks_headlines_first_and_etags_answer_304() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let wire = source(&db, "Wire").await;
    let now = Utc::now();
    let in_title_old = add(
        &db,
        wire,
        "Monsoon floods hit Kerala",
        &["india"],
        Uuid::now_v7(),
        now - Duration::hours(5),
    )
    .await;
    let in_title_new = add(
        &db,
        wire,
        "Kerala floods: rescue continues",
        &["india"],
        Uuid::now_v7(),
        now - Duration::hours(1),
    )
    .await;
    // Its summary is "Summary of <title>." — put the words only there.
    let id = Uuid::now_v7();
    stories::add_article(
        &db,
        NewArticle {
            id,
            source_id: wire,
            dedupe_key: id.to_string(),
            canonical_url: None,
            title: "Rain update".into(),
            title_derived: false,
            summary: Some("Floods across Kerala".into()),
            content_html: None,
            image_url: None,
            author: None,
            language: None,
            topics: vec!["india".into()],
            published_at: now,
            fetched_at: now,
        },
        Uuid::now_v7(),
        &[],
    )
    .await
    .unwrap();
    add(&db, wire, "Cricket", &["india"], Uuid::now_v7(), now).await;

    let response = app.get("/v1/articles?q=kerala+FLOODS").await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_string();
    let page = json_of(response).await;
    assert_eq!(
        ids(&page),
        vec![
            in_title_new.to_string(),
            in_title_old.to_string(),
            id.to_string()
        ]
    );
    let page = json_of(
        app.get("/v1/articles?q=kerala+floods&topic=india&limit=2")
            .await,
    )
    .await;
    assert_eq!(
        ids(&page),
        vec![in_title_new.to_string(), in_title_old.to_string()]
    );
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = json_of(
        app.get(&format!(
            "/v1/articles?q=kerala+floods&topic=india&limit=2&cursor={cursor}"
        ))
        .await,
    )
    .await;
    assert_eq!(ids(&rest), vec![id.to_string()]);

    // Same answer → 304 without a body; a change → 200 with a new tag.
    let again = app
        .client
        .get(app.url("/v1/articles?q=kerala+floods"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG].to_str().unwrap(), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    add(
        &db,
        wire,
        "Kerala floods ease",
        &["india"],
        Uuid::now_v7(),
        Utc::now(),
    )
    .await;
    let changed = app
        .client
        .get(app.url("/v1/articles?q=kerala+floods"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_ne!(changed.headers()[header::ETAG].to_str().unwrap(), etag);

    // Detail responses too.
    let detail = app.get(&format!("/v1/articles/{in_title_old}")).await;
    assert_eq!(
        detail.headers()[header::CACHE_CONTROL],
        "public, max-age=60"
    );
    let etag = detail.headers()[header::ETAG].to_str().unwrap().to_string();
    let again = app
        .client
        .get(app.url(&format!("/v1/articles/{in_title_old}")))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn article_related_and_story_pages() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let story = Uuid::now_v7();
    let now = Utc::now();
    let a = source(&db, "Alpha").await;
    let b = source(&db, "Beta").await;
    let c = source(&db, "Gamma").await;
    let own = add(
        &db,
        a,
        "Summit opens",
        &["world"],
        story,
        now - Duration::minutes(30),
    )
    .await;
    let own_later = add(
        &db,
        a,
        "Summit day two",
        &["world"],
        story,
        now - Duration::minutes(1),
    )
    .await;
    let beta_old = add(
        &db,
        b,
        "Leaders meet",
        &["world"],
        story,
        now - Duration::minutes(40),
    )
    .await;
    let beta_new = add(
        &db,
        b,
        "Leaders agree",
        &["world", "business"],
        story,
        now - Duration::minutes(5),
    )
    .await;
    let gamma = add(
        &db,
        c,
        "Summit talks",
        &["world"],
        story,
        now - Duration::minutes(20),
    )
    .await;
    add(&db, c, "Unrelated", &["world"], Uuid::now_v7(), now).await;

    let response = app.get(&format!("/v1/articles/{own}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let detail = json_of(response).await;
    assert_eq!(detail["title"], "Summit opens");
    assert_eq!(detail["content_html"], "<p>Body</p>");
    assert_eq!(detail["story_id"], story.to_string());
    let related: Vec<String> = detail["related"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // Other publishers' newest first, then the rest newest first; never itself.
    assert_eq!(
        related,
        vec![
            beta_new.to_string(),
            gamma.to_string(),
            own_later.to_string(),
            beta_old.to_string()
        ]
    );
    assert_eq!(detail["related"][0]["source"]["name"], "Beta");

    assert_eq!(
        app.get(&format!("/v1/articles/{}", Uuid::now_v7()))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v1/articles/not-an-id").await.status(),
        StatusCode::NOT_FOUND
    );

    let stories = json_of(app.get("/v1/stories?topic=business").await).await;
    assert_eq!(stories["items"].as_array().unwrap().len(), 1);
    let listed = &stories["items"][0];
    assert_eq!(listed["id"], story.to_string());
    assert_eq!(listed["headline"], "Summit opens");
    assert_eq!(listed["article_count"], 5);
    assert_eq!(listed["source_count"], 3);
    assert_eq!(listed["breaking"], false);
    assert_eq!(listed["topics"], json!(["world", "business"]));
    for field in ["first_seen_at", "updated_at"] {
        assert!(listed.get(field).is_some());
    }
    let all = json_of(app.get("/v1/stories?limit=1").await).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let cursor = all["next_cursor"].as_str().unwrap();
    let second = json_of(
        app.get(&format!("/v1/stories?limit=1&cursor={cursor}"))
            .await,
    )
    .await;
    assert_ne!(second["items"][0]["id"], all["items"][0]["id"]);

    let page = json_of(app.get(&format!("/v1/stories/{story}")).await).await;
    assert_eq!(page["article_count"], 5);
    let members: Vec<&str> = page["articles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(members.len(), 5);
    assert_eq!(members[0], own_later.to_string());
    assert_eq!(
        app.get(&format!("/v1/stories/{}", Uuid::now_v7()))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn my_feed_lists_followed_topics_only() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let wire = source(&db, "Wire").await;
    let now = Utc::now();
    let india = add(
        &db,
        wire,
        "Delhi",
        &["india"],
        Uuid::now_v7(),
        now - Duration::minutes(3),
    )
    .await;
    let both = add(
        &db,
        wire,
        "Rupee",
        &["india", "business"],
        Uuid::now_v7(),
        now - Duration::minutes(2),
    )
    .await;
    add(
        &db,
        wire,
        "Geneva",
        &["world"],
        Uuid::now_v7(),
        now - Duration::minutes(1),
    )
    .await;

    assert_eq!(
        app.get("/v1/me/feed").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let token = token_of(app.post_json("/v1/auth/anonymous", &json!({})).await).await;
    let empty = call(&app, Method::GET, "/v1/me/feed", &token, None).await;
    assert_eq!(empty.status(), StatusCode::OK);
    assert_eq!(empty.headers()[header::CACHE_CONTROL], "private, no-cache");
    assert!(json_of(empty).await["items"].as_array().unwrap().is_empty());

    let put = call(
        &app,
        Method::PUT,
        "/v1/me/subscriptions",
        &token,
        Some(json!({"topics": ["india", "business"]})),
    )
    .await;
    assert!(put.status().is_success());
    let feed = json_of(call(&app, Method::GET, "/v1/me/feed?limit=1", &token, None).await).await;
    assert_eq!(ids(&feed), vec![both.to_string()]);
    let cursor = feed["next_cursor"].as_str().unwrap().to_string();
    let rest = json_of(
        call(
            &app,
            Method::GET,
            &format!("/v1/me/feed?cursor={cursor}"),
            &token,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(ids(&rest), vec![india.to_string()]);

    // Another reader cannot continue this reader's feed.
    let other = token_of(app.post_json("/v1/auth/anonymous", &json!({})).await).await;
    let foreign = call(
        &app,
        Method::GET,
        &format!("/v1/me/feed?cursor={cursor}"),
        &other,
        None,
    )
    .await;
    assert_eq!(foreign.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn comments_need_an_account_and_only_authors_or_editors_delete() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    let wire = source(&db, "Wire").await;
    let article = add(
        &db,
        wire,
        "Budget",
        &["business"],
        Uuid::now_v7(),
        Utc::now(),
    )
    .await;
    let path = format!("/v1/articles/{article}/comments");

    let anonymous = token_of(app.post_json("/v1/auth/anonymous", &json!({})).await).await;
    let refused = call(
        &app,
        Method::POST,
        &path,
        &anonymous,
        Some(json!({"body": "hi"})),
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.post_json(&path, &json!({"body": "hi"})).await.status(),
        StatusCode::UNAUTHORIZED
    );

    let asha = signup(&app, "asha@example.com", "Asha").await;
    let typed = "<img src=x onerror=alert(1)> Budget & \"tax\"\nsecond line";
    let posted = call(
        &app,
        Method::POST,
        &path,
        &asha,
        Some(json!({"body": typed})),
    )
    .await;
    assert_eq!(posted.status(), StatusCode::CREATED);
    let posted = json_of(posted).await;
    assert_eq!(
        posted["body"], typed,
        "stored and returned exactly as typed"
    );
    assert_eq!(posted["author"]["display_name"], "Asha");
    assert_eq!(posted["article_id"], article.to_string());

    for bad in [
        json!({"body": ""}),
        json!({"body": "   \n"}),
        json!({"body": "x".repeat(2001)}),
        json!({"body": "a\u{0}b"}),
    ] {
        let response = call(&app, Method::POST, &path, &asha, Some(bad)).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(json_of(response).await["errors"][0]["field"], "body");
    }
    let longest = call(
        &app,
        Method::POST,
        &path,
        &asha,
        Some(json!({"body": "é".repeat(2000)})),
    )
    .await;
    assert_eq!(longest.status(), StatusCode::CREATED);
    let missing = call(
        &app,
        Method::POST,
        &format!("/v1/articles/{}/comments", Uuid::now_v7()),
        &asha,
        Some(json!({"body": "x"})),
    )
    .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    let list = app.get(&path).await;
    assert_eq!(list.status(), StatusCode::OK);
    let list = json_of(list).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["items"][0]["id"], posted["id"]);

    // Someone else may not delete it; its author may; an editor may delete anyone's.
    let ravi = signup(&app, "ravi@example.com", "Ravi").await;
    let comment = format!("/v1/comments/{}", posted["id"].as_str().unwrap());
    assert_eq!(
        call(&app, Method::DELETE, &comment, &ravi, None)
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(&app, Method::DELETE, &comment, &asha, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        call(&app, Method::DELETE, &comment, &asha, None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let by_ravi = json_of(
        call(
            &app,
            Method::POST,
            &path,
            &ravi,
            Some(json!({"body": "mine"})),
        )
        .await,
    )
    .await;
    herald::create_user(
        &db,
        "editor@example.com",
        "correct horse battery staple 42",
        Role::Editor,
        None,
    )
    .await
    .unwrap();
    let editor = token_of(
        app.post_json(
            "/v1/auth/login",
            &json!({"email": "editor@example.com", "password": "correct horse battery staple 42"}),
        )
        .await,
    )
    .await;
    let theirs = format!("/v1/comments/{}", by_ravi["id"].as_str().unwrap());
    assert_eq!(
        call(&app, Method::DELETE, &theirs, &editor, None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let list = json_of(app.get(&path).await).await;
    let left: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["body"].as_str().unwrap())
        .collect();
    assert_eq!(left, vec!["é".repeat(2000).as_str()]);

    // Posting fast is throttled per reader.
    let mut statuses = Vec::new();
    for n in 0..5 {
        statuses.push(
            call(
                &app,
                Method::POST,
                &path,
                &ravi,
                Some(json!({"body": format!("spam {n}")})),
            )
            .await
            .status(),
        );
    }
    assert!(
        statuses[..4].iter().all(|s| *s == StatusCode::CREATED),
        "{statuses:?}"
    );
    assert_eq!(statuses[4], StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn public_reads_are_micro_cached_for_the_configured_time() {
    let app = TestApp::spawn_with(|config| config.http.read_cache_ms = 500).await;
    let db = app.db.connect().await;
    let wire = source(&db, "Wire").await;
    let first = add(&db, wire, "First", &["world"], Uuid::now_v7(), Utc::now()).await;
    let before = json_of(app.get("/v1/articles?topic=world").await).await;
    assert_eq!(ids(&before), vec![first.to_string()]);
    let second = add(&db, wire, "Second", &["world"], Uuid::now_v7(), Utc::now()).await;
    // Within the cache time the same page comes back; another query is read afresh.
    let cached = json_of(app.get("/v1/articles?topic=world").await).await;
    assert_eq!(cached, before);
    let other = json_of(app.get("/v1/articles?topic=world&limit=5").await).await;
    assert_eq!(ids(&other), vec![second.to_string(), first.to_string()]);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let after = json_of(app.get("/v1/articles?topic=world").await).await;
    assert_eq!(ids(&after), vec![second.to_string(), first.to_string()]);
    // The reader's own data is never cached.
    let token = token_of(app.post_json("/v1/auth/anonymous", &json!({})).await).await;
    call(
        &app,
        Method::PUT,
        "/v1/me/subscriptions",
        &token,
        Some(json!({"topics": ["world"]})),
    )
    .await;
    let feed = json_of(call(&app, Method::GET, "/v1/me/feed", &token, None).await).await;
    assert_eq!(ids(&feed).len(), 2);
    let third = add(&db, wire, "Third", &["world"], Uuid::now_v7(), Utc::now()).await;
    let feed = json_of(call(&app, Method::GET, "/v1/me/feed", &token, None).await).await;
    assert_eq!(ids(&feed)[0], third.to_string());
}
