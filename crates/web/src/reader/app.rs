//! What makes the site an installable app: the web app manifest, the service worker at
//! `/sw.js` and the offline page it falls back to.

use super::page::{self, Chrome, Meta};
use crate::WebState;
use crate::assets;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// The app's colour: the address bar, the splash screen and the masthead.
pub const THEME_COLOR: &str = "#12355b";
const BACKGROUND_COLOR: &str = "#ffffff";

/// The service worker's source; `/*HERALD_CONFIG*/` is replaced by its settings.
const SERVICE_WORKER: &str = include_str!("../../assets/reader/sw.js");

/// The web app manifest.
pub async fn manifest(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let name = &state.config.site_name;
    let icon = |name: &str, size: &str, purpose: &str, kind: &str| json!({"src": assets::url(name), "sizes": size, "type": kind, "purpose": purpose});
    let mut related = Vec::new();
    if let Some(url) = &state.config.android_app_url {
        related.push(json!({"platform": "play", "url": url}));
    }
    if let Some(url) = &state.config.ios_app_url {
        related.push(json!({"platform": "itunes", "url": url}));
    }
    let body = json!({
        "id": "/",
        "name": name,
        "short_name": name,
        "description": format!("The latest news from every publisher, with breaking alerts — {name}"),
        "lang": "en",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "theme_color": THEME_COLOR,
        "background_color": BACKGROUND_COLOR,
        "categories": ["news"],
        "icons": [
            icon("reader/icon-192.png", "192x192", "any", "image/png"),
            icon("reader/icon-512.png", "512x512", "any", "image/png"),
            icon("reader/icon-maskable-512.png", "512x512", "maskable", "image/png"),
            icon("reader/icon.svg", "any", "any", "image/svg+xml"),
        ],
        "related_applications": related,
        "prefer_related_applications": false,
    });
    revalidated(body.to_string(), "application/manifest+json", &headers)
}

/// The service worker, with its pre-cache list and version filled in. Never hashed and
/// `no-cache`, so its scope is `/` and a new release reaches readers on their next visit.
pub async fn service_worker(headers: HeaderMap) -> Response {
    revalidated(
        service_worker_source().to_string(),
        "text/javascript; charset=utf-8",
        &headers,
    )
}

fn service_worker_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let mut precache: Vec<String> = assets::all()
            .filter(|a| a.asset.name.starts_with("reader/"))
            .map(|a| assets::url(a.asset.name))
            .collect();
        precache.sort();
        precache.push(super::paths::OFFLINE.to_string());
        precache.push(crate::paths::MANIFEST.to_string());
        let mut version = Sha256::new();
        version.update(SERVICE_WORKER.as_bytes());
        for url in &precache {
            version.update(url.as_bytes());
        }
        let config = json!({
            "version": hex::encode(&version.finalize()[..8]),
            "precache": precache,
            "offline": super::paths::OFFLINE,
            "session": assets::url("reader/session.js"),
            "icon": assets::url("reader/icon-192.png"),
            "badge": assets::url("reader/badge-72.png"),
        });
        SERVICE_WORKER.replace("/*HERALD_CONFIG*/{}", &config.to_string())
    })
}

/// `body` with `no-cache` and an `ETag`, 304 when the browser has it.
fn revalidated(body: String, content_type: &'static str, request: &HeaderMap) -> Response {
    let etag = super::cache::weak_etag(&body);
    let fresh = super::cache::etag_matches(request, &etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}

#[derive(Template)]
#[template(path = "reader/offline.html")]
pub struct OfflinePage {
    chrome: Chrome,
    meta: Meta,
}

/// The page the service worker shows for an address it has not cached, when offline.
pub async fn offline(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let chrome = Chrome::with_tabs(&state, "offline", Vec::new());
    let mut meta = Meta::new(
        format!("Offline — {}", state.config.site_name),
        "You are offline.".into(),
        super::paths::OFFLINE.into(),
    );
    meta.robots = "noindex, nofollow";
    page::render(&OfflinePage { chrome, meta }, StatusCode::OK, &headers)
}
