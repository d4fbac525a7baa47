//! A story: one event told by every publisher that covered it.

use super::cache::PageCache;
use super::front::Headline;
use super::page::{self, Chrome, Meta};
use super::time::{Shown, shown};
use crate::WebState;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::Utc;
use herald_store::{StoreError, reading};
use uuid::Uuid;

#[derive(Template)]
#[template(path = "reader/story.html")]
pub struct StoryPage {
    chrome: Chrome,
    meta: Meta,
    headline: String,
    article_count: u32,
    source_count: u32,
    updated: Shown,
    first_seen: Shown,
    breaking: bool,
    articles: Vec<Headline>,
}

/// The story page.
pub async fn show(
    State(state): State<WebState>,
    Extension(cache): Extension<PageCache>,
    uri: Uri,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    page::cached(&state, &cache, &uri, &headers, async {
        let Ok(id) = Uuid::parse_str(&id) else {
            return page::not_found_page(&state);
        };
        match load(&state, id).await {
            Ok(template) => page::rendered(&template, StatusCode::OK),
            Err(err) => page::error_page(&state, err),
        }
    })
    .await
}

async fn load(state: &WebState, id: Uuid) -> Result<StoryPage, StoreError> {
    let (story, articles) = reading::story_page(&state.db, id).await?;
    let current = story.topics.first().map(String::as_str);
    let chrome = Chrome::load(state, "story", current).await?;
    let now = Utc::now();
    let site = &state.config.site_name;
    let meta = Meta::new(
        format!("{} — full coverage — {site}", story.headline),
        format!(
            "{} articles from {} publishers on this story.",
            story.article_count, story.source_count
        ),
        super::paths::story(story.id),
    );
    Ok(StoryPage {
        chrome,
        meta,
        headline: story.headline,
        article_count: story.article_count,
        source_count: story.source_count,
        updated: shown(story.updated_at, now),
        first_seen: shown(story.first_seen_at, now),
        breaking: story.breaking_at.is_some(),
        articles: articles
            .into_iter()
            .map(|l| Headline::new(l, now))
            .collect(),
    })
}
