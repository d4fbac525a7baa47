//! What every reader page shares: the layout's data ([`Chrome`]), the page's metadata
//! ([`Meta`]) and rendering with an `ETag` (a repeat visit gets a 304).

use super::cache::{PageCache, Rendered};
use crate::WebState;
use crate::assets;
use askama::Template;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use herald_store::StoreError;
use std::future::Future;
use std::time::Duration;

/// A topic tab in the navigation.
pub struct Tab {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub href: String,
    pub current: bool,
}

/// The layout's data: site name, asset URLs, topic tabs, store links.
pub struct Chrome {
    pub site_name: String,
    pub css: String,
    pub session_js: String,
    pub app_js: String,
    pub icon_svg: String,
    pub icon_192: String,
    pub tabs: Vec<Tab>,
    /// The search box's current text.
    pub query: String,
    pub ios_app_url: Option<String>,
    pub android_app_url: Option<String>,
    /// Which page this is, for `app.js` (`data-page`).
    pub page: &'static str,
    /// Which item of the top navigation is current.
    pub section: &'static str,
}

impl Chrome {
    /// The layout for `page`, with the topic tabs (`current` marked) read from the store.
    pub async fn load(
        state: &WebState,
        page: &'static str,
        current: Option<&str>,
    ) -> Result<Self, StoreError> {
        let topics = herald_store::topics::list(&state.db).await?;
        let tabs = topics
            .into_iter()
            .map(|t| Tab {
                href: super::paths::topic(&t.slug),
                current: current == Some(t.slug.as_str()),
                slug: t.slug,
                name: t.name,
                description: t.description,
            })
            .collect();
        Ok(Self::with_tabs(state, page, tabs))
    }

    /// The layout without reading the store (pages whose content is all client-side).
    pub fn with_tabs(state: &WebState, page: &'static str, tabs: Vec<Tab>) -> Self {
        Self {
            site_name: state.config.site_name.clone(),
            css: assets::url("reader/app.css"),
            session_js: assets::url("reader/session.js"),
            app_js: assets::url("reader/app.js"),
            icon_svg: assets::url("reader/icon.svg"),
            icon_192: assets::url("reader/icon-192.png"),
            tabs,
            query: String::new(),
            ios_app_url: state.config.ios_app_url.clone(),
            android_app_url: state.config.android_app_url.clone(),
            page,
            section: page,
        }
    }
}

/// Title, description and canonical path of a page (also its Open Graph tags).
pub struct Meta {
    pub title: String,
    pub description: String,
    /// Path and query of the canonical address (the page's own origin is implied).
    pub canonical: String,
    /// `website` or `article`.
    pub og_type: &'static str,
    /// `noindex` pages (account, search) are not worth crawling.
    pub robots: &'static str,
}

impl Meta {
    pub fn new(title: String, description: String, canonical: String) -> Self {
        Self {
            title,
            description: clip(&description, 200),
            canonical,
            og_type: "website",
            robots: "index, follow",
        }
    }
}

/// At most `max` characters of `text`, cut at a word with an ellipsis.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", cut.trim_end())
}

/// `template` rendered with `status` (a plain 500 when the template fails).
pub fn rendered(template: &impl Template, status: StatusCode) -> Rendered {
    match template.render() {
        Ok(body) => Rendered::new(status, body),
        Err(err) => {
            tracing::error!(error = %err, "a reader page failed to render");
            Rendered::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown.".into(),
            )
        }
    }
}

/// Renders `template` as a page: `no-cache` with an `ETag` over the bytes, so a reader
/// coming back gets a 304 while the page is unchanged.
pub fn render(template: &impl Template, status: StatusCode, request: &HeaderMap) -> Response {
    rendered(template, status).respond(request)
}

/// A public page through the page cache: the same for every reader, so kept per address for
/// `web.page_cache_ms`.
pub async fn cached(
    state: &WebState,
    cache: &PageCache,
    uri: &Uri,
    request: &HeaderMap,
    build: impl Future<Output = Rendered>,
) -> Response {
    let ttl = Duration::from_millis(state.config.page_cache_ms);
    let key = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
    cache.page(key, ttl, build).await.respond(request)
}

/// The "not found" and "something went wrong" pages.
#[derive(Template)]
#[template(path = "reader/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub meta: Meta,
    pub heading: &'static str,
    pub message: &'static str,
}

/// The page for a store error: 404 for `NotFound`, else 500 (the cause is logged, not shown).
pub fn error(state: &WebState, err: StoreError, request: &HeaderMap) -> Response {
    error_page(state, err).respond(request)
}

/// [`error`], rendered.
pub fn error_page(state: &WebState, err: StoreError) -> Rendered {
    match err {
        StoreError::NotFound => not_found_page(state),
        other => {
            tracing::error!(error = %other, "a reader page could not read the store");
            let page = ErrorPage {
                chrome: Chrome::with_tabs(state, "error", Vec::new()),
                meta: Meta::new(
                    "Something went wrong".into(),
                    String::new(),
                    crate::paths::HOME.into(),
                ),
                heading: "Something went wrong",
                message: "The news could not be loaded just now. Please try again in a moment.",
            };
            rendered(&page, StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}

/// The 404 page.
pub fn not_found_page(state: &WebState) -> Rendered {
    let page = ErrorPage {
        chrome: Chrome::with_tabs(state, "error", Vec::new()),
        meta: Meta::new("Not found".into(), String::new(), crate::paths::HOME.into()),
        heading: "Page not found",
        message: "There is no article or page at this address. It may have been removed.",
    };
    rendered(&page, StatusCode::NOT_FOUND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clipping_cuts_at_a_word() {
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("one two three four", 10), "one two…");
    }
}
