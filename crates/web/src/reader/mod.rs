//! The reader's news site: front page, article and story pages, account, alerts, the web app
//! manifest and the service worker.
//!
//! Every page is rendered on the server and reads without JavaScript; `session.js` and `app.js`
//! only enhance it (an anonymous reader on first visit, follow, alerts, inbox, install).

mod account;
mod app;
mod article;
mod cache;
mod front;
mod page;
mod story;
mod text;
mod time;

use crate::WebState;
use crate::assets::Asset;
use axum::routing::get;
use axum::{Extension, Router};

/// The reader's page paths (the shared ones, `/`, `/sw.js` and the manifest, are in
/// [`crate::paths`]).
pub mod paths {
    /// One topic's headlines: `/topics/{slug}`.
    pub const TOPIC: &str = "/topics/{slug}";
    /// Search results: `/search?q=`.
    pub const SEARCH: &str = "/search";
    /// An article: `/articles/{id}`.
    pub const ARTICLE: &str = "/articles/{id}";
    /// A story across publishers: `/stories/{id}`.
    pub const STORY: &str = "/stories/{id}";
    /// Sign up, log in, link, log out.
    pub const ACCOUNT: &str = "/account";
    /// Followed topics, alert preferences and the "Turn on alerts" button.
    pub const FOLLOWING: &str = "/following";
    /// The alert inbox.
    pub const ALERTS: &str = "/alerts";
    /// The page the service worker shows when offline and the page is not cached.
    pub const OFFLINE: &str = "/offline";

    /// The address of the article `id`.
    pub fn article(id: uuid::Uuid) -> String {
        format!("/articles/{id}")
    }

    /// The address of the story `id`.
    pub fn story(id: uuid::Uuid) -> String {
        format!("/stories/{id}")
    }

    /// The address of the topic `slug`.
    pub fn topic(slug: &str) -> String {
        format!("/topics/{slug}")
    }
}

/// The reader's files under `assets/reader/`.
pub(crate) const ASSETS: &[Asset] = &[
    Asset {
        name: "reader/app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/reader/app.css"),
    },
    Asset {
        name: "reader/session.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/reader/session.js"),
    },
    Asset {
        name: "reader/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/reader/app.js"),
    },
    Asset {
        name: "reader/icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/reader/icon.svg"),
    },
    Asset {
        name: "reader/icon-192.png",
        content_type: "image/png",
        bytes: include_bytes!("../../assets/reader/icon-192.png"),
    },
    Asset {
        name: "reader/icon-512.png",
        content_type: "image/png",
        bytes: include_bytes!("../../assets/reader/icon-512.png"),
    },
    Asset {
        name: "reader/icon-maskable-512.png",
        content_type: "image/png",
        bytes: include_bytes!("../../assets/reader/icon-maskable-512.png"),
    },
    Asset {
        name: "reader/badge-72.png",
        content_type: "image/png",
        bytes: include_bytes!("../../assets/reader/badge-72.png"),
    },
];

pub(crate) fn router() -> Router<WebState> {
    Router::new()
        .route(crate::paths::HOME, get(front::home))
        .route(paths::TOPIC, get(front::topic))
        .route(paths::SEARCH, get(front::search))
        .route(paths::ARTICLE, get(article::show))
        .route(paths::STORY, get(story::show))
        .route(paths::ACCOUNT, get(account::account))
        .route(paths::FOLLOWING, get(account::following))
        .route(paths::ALERTS, get(account::alerts))
        .route(paths::OFFLINE, get(app::offline))
        .route(crate::paths::MANIFEST, get(app::manifest))
        .route(crate::paths::SERVICE_WORKER, get(app::service_worker))
        .layer(Extension(cache::PageCache::default()))
}
