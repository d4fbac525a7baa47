//! The front page (`/`), a topic's tab (`/topics/{slug}`) and search (`/search?q=`): the
//! latest headlines, newest first, a page at a time.

use super::cache::{PageCache, Rendered};
use super::page::{self, Chrome, Meta};
use super::time::{Shown, shown};
use crate::WebState;
use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use herald_store::reading::{self, ArticleFilter, ListedArticle, SearchQuery};
use serde::Deserialize;

/// Headlines on one page.
const PAGE_SIZE: u64 = 20;

/// `?cursor=` (where the previous page ended: the JSON API's own cursor for the same list)
/// and `?q=`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    cursor: Option<String>,
    q: Option<String>,
}

/// A headline in a list.
pub struct Headline {
    pub href: String,
    pub title: String,
    pub source: String,
    pub summary: String,
    pub time: Shown,
}

impl Headline {
    pub fn new(listed: ListedArticle, now: DateTime<Utc>) -> Self {
        Self {
            href: super::paths::article(listed.article.id),
            summary: page::clip(listed.article.summary.as_deref().unwrap_or(""), 280),
            title: listed.article.title,
            source: listed.source_name,
            time: shown(listed.article.published_at, now),
        }
    }
}

#[derive(Template)]
#[template(path = "reader/front.html")]
pub struct FrontPage {
    chrome: Chrome,
    meta: Meta,
    heading: String,
    /// The topic of this tab, for the "Follow" button.
    topic: Option<String>,
    topic_description: String,
    /// The search words, on the search page.
    searched: Option<String>,
    headlines: Vec<Headline>,
    /// The next page's address, when there is one.
    older: Option<String>,
    /// Whether this is a later page (a link back to the first).
    later: bool,
    first: String,
}

/// Everything a list page needs besides its filter.
struct Listing {
    page: &'static str,
    topic: Option<String>,
    searched: Option<String>,
    base: String,
}

async fn list(
    state: &WebState,
    query: ListQuery,
    filter: ArticleFilter,
    listing: Listing,
) -> Rendered {
    // The same list, the same scope and the same cursors as `GET /v1/articles`.
    let scope = herald_auth::cursor::article_scope(
        listing.topic.as_deref(),
        None,
        None,
        filter.search.as_ref(),
    );
    let after = match query.cursor.as_deref() {
        Some(cursor) => match state.cursor_key.decode_article(&scope, cursor) {
            Ok(key) => Some(key),
            Err(_) => return page::not_found_page(state),
        },
        None => None,
    };
    let mut chrome = match Chrome::load(state, listing.page, listing.topic.as_deref()).await {
        Ok(chrome) => chrome,
        Err(err) => return page::error_page(state, err),
    };
    let topic = match &listing.topic {
        Some(slug) => match chrome.tabs.iter().find(|t| &t.slug == slug) {
            Some(tab) => Some((tab.slug.clone(), tab.name.clone(), tab.description.clone())),
            None => return page::not_found_page(state),
        },
        None => None,
    };
    let mut found = match reading::articles(&state.db, &filter, after, PAGE_SIZE + 1).await {
        Ok(found) => found,
        Err(err) => return page::error_page(state, err),
    };
    let more = found.len() as u64 > PAGE_SIZE;
    found.truncate(PAGE_SIZE as usize);
    let separator = if listing.base.contains('?') { '&' } else { '?' };
    let older = more.then(|| found.last()).flatten().map(|last| {
        let cursor = state.cursor_key.encode_article(&scope, last.key);
        format!("{}{separator}cursor={cursor}", listing.base)
    });
    let now = Utc::now();
    let headlines: Vec<Headline> = found.into_iter().map(|l| Headline::new(l, now)).collect();
    let site = state.config.site_name.clone();
    let (heading, meta) = match (&topic, &listing.searched) {
        (Some((_, name, _)), _) => (
            name.clone(),
            Meta::new(
                format!("{name} news — {site}"),
                format!("The latest {name} headlines from every publisher, on {site}."),
                listing.base.clone(),
            ),
        ),
        (None, Some(q)) => {
            let mut meta = Meta::new(
                format!("“{q}” — search — {site}"),
                format!("Articles matching “{q}” on {site}."),
                listing.base.clone(),
            );
            meta.robots = "noindex, follow";
            (format!("Results for “{q}”"), meta)
        }
        (None, None) => (
            "Top stories".to_string(),
            Meta::new(
                format!("{site} — the latest news from every publisher"),
                headlines.first().map_or_else(
                    || format!("The latest headlines from every publisher, on {site}."),
                    |h| {
                        format!(
                            "Latest: {}. The news from every publisher, on {site}.",
                            h.title
                        )
                    },
                ),
                crate::paths::HOME.to_string(),
            ),
        ),
    };
    chrome.query = listing.searched.clone().unwrap_or_default();
    let template = FrontPage {
        chrome,
        meta,
        heading,
        topic_description: topic.as_ref().map(|t| t.2.clone()).unwrap_or_default(),
        topic: topic.map(|(slug, _, _)| slug),
        searched: listing.searched,
        headlines,
        older,
        later: after.is_some(),
        first: listing.base,
    };
    page::rendered(&template, StatusCode::OK)
}

/// The front page: the latest headlines of every topic.
pub async fn home(
    State(state): State<WebState>,
    Extension(cache): Extension<PageCache>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let listing = Listing {
        page: "front",
        topic: None,
        searched: None,
        base: crate::paths::HOME.to_string(),
    };
    let page = list(&state, query, ArticleFilter::default(), listing);
    page::cached(&state, &cache, &uri, &headers, page).await
}

/// One topic's tab.
pub async fn topic(
    State(state): State<WebState>,
    Extension(cache): Extension<PageCache>,
    uri: Uri,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(query): Query<ListQuery>,
) -> Response {
    let filter = ArticleFilter {
        topics: vec![slug.clone()],
        ..ArticleFilter::default()
    };
    let listing = Listing {
        page: "topic",
        base: super::paths::topic(&slug),
        topic: Some(slug),
        searched: None,
    };
    let page = list(&state, query, filter, listing);
    page::cached(&state, &cache, &uri, &headers, page).await
}

/// Search results; an empty search shows the search form alone.
pub async fn search(
    State(state): State<WebState>,
    Extension(cache): Extension<PageCache>,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<ListQuery>,
) -> Response {
    let page = search_page(&state, query);
    page::cached(&state, &cache, &uri, &headers, page).await
}

async fn search_page(state: &WebState, query: ListQuery) -> Rendered {
    let q = query.q.clone().unwrap_or_default().trim().to_string();
    let search = SearchQuery::parse(&q);
    let Some(search) = search else {
        let mut chrome = match Chrome::load(state, "search", None).await {
            Ok(chrome) => chrome,
            Err(err) => return page::error_page(state, err),
        };
        chrome.query = q;
        let site = state.config.site_name.clone();
        let mut meta = Meta::new(
            format!("Search — {site}"),
            format!("Search the news on {site}."),
            super::paths::SEARCH.to_string(),
        );
        meta.robots = "noindex, follow";
        let template = FrontPage {
            chrome,
            meta,
            heading: "Search".into(),
            topic: None,
            topic_description: String::new(),
            searched: Some(String::new()),
            headlines: Vec::new(),
            older: None,
            later: false,
            first: super::paths::SEARCH.to_string(),
        };
        return page::rendered(&template, StatusCode::OK);
    };
    let filter = ArticleFilter {
        search: Some(search),
        ..ArticleFilter::default()
    };
    let listing = Listing {
        page: "search",
        topic: None,
        base: format!("{}?q={}", super::paths::SEARCH, query_escape(&q)),
        searched: Some(q),
    };
    list(state, query, filter, listing).await
}

/// `text` for a query string (RFC 3986 unreserved characters kept, the rest %-encoded).
fn query_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_escaped_for_a_query_string() {
        assert_eq!(query_escape("a b&c/é"), "a+b%26c%2F%C3%A9");
    }
}
