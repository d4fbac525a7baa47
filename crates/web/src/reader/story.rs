//! A story: one event told by every publisher that covered it.

use super::front::Headline;
use super::page::{self, Chrome, Meta};
use super::time::{Shown, shown};
use crate::WebState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
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
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return page::not_found(&state, &headers);
    };
    match load(&state, id).await {
        Ok(template) => page::render(&template, StatusCode::OK, &headers),
        Err(err) => page::error(&state, err, &headers),
    }
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
