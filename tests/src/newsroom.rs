//! Newsroom fixtures the end-to-end tests share: a signed-in editor, a story two publishers tell.

use crate::TestApp;
use herald_store::articles::{Article, NewArticle};
use herald_store::sources::{self, NewSource};
use herald_store::users::Role;
use serde_json::{Value, json};

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
