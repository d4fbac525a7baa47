//! An article: headline, publisher, time, the text, a link to the original and "Related
//! coverage" from the other publishers of its story.

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
use herald_store::{StoreError, articles, reading, sources};
use uuid::Uuid;

#[derive(Template)]
#[template(path = "reader/article.html")]
pub struct ArticlePage {
    chrome: Chrome,
    meta: Meta,
    id: String,
    title: String,
    source: String,
    author: Option<String>,
    time: Shown,
    /// The body as paragraphs of text (or the summary when there is no body).
    paragraphs: Vec<String>,
    original: Option<String>,
    story: Option<String>,
    related: Vec<Headline>,
}

/// The article page.
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

async fn load(state: &WebState, id: Uuid) -> Result<ArticlePage, StoreError> {
    let article = articles::get(&state.db, id).await?;
    let source = sources::get(&state.db, article.source_id).await?;
    let related = reading::related(&state.db, &article).await?;
    let current = article.topics.first().map(String::as_str);
    let chrome = Chrome::load(state, "article", current).await?;
    let now = Utc::now();
    let summary = article.summary.clone().unwrap_or_default();
    let mut paragraphs = article
        .content_html
        .as_deref()
        .map(super::text::paragraphs)
        .unwrap_or_default();
    if paragraphs.is_empty() && !summary.is_empty() {
        paragraphs.push(summary.clone());
    }
    let site = &state.config.site_name;
    let mut meta = Meta::new(
        format!("{} — {} — {site}", article.title, source.name),
        if summary.is_empty() {
            format!("{} reports: {}", source.name, article.title)
        } else {
            summary
        },
        super::paths::article(article.id),
    );
    meta.og_type = "article";
    Ok(ArticlePage {
        chrome,
        meta,
        id: article.id.to_string(),
        title: article.title,
        source: source.name,
        author: article.author.filter(|a| !a.trim().is_empty()),
        time: shown(article.published_at, now),
        paragraphs,
        original: article.canonical_url.filter(|u| is_web_address(u)),
        story: article.story_id.map(super::paths::story),
        related: related.into_iter().map(|l| Headline::new(l, now)).collect(),
    })
}

/// Only http(s) links leave the site (never `javascript:` or `data:` from a feed).
pub fn is_web_address(url: &str) -> bool {
    let lower = url.trim_start().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}
