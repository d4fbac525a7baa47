//! The newsroom console at `/console`: stories arriving, compose and send, progress, history
//! and sources, for editors and admins.
//!
//! The server renders one page: the sign-in form and the empty screens the script fills.
//! Everything the editor sees after signing in comes from documented `/v1` routes, called by
//! `assets/console/app.js` with the access token it keeps in memory. Settings the script
//! needs ride in `data-*` attributes of `<body>`, never in inline script.

use crate::WebState;
use crate::assets::{self, Asset};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The console's files under `assets/console/`.
pub(crate) const ASSETS: &[Asset] = &[
    Asset {
        name: "console/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/console/app.js"),
    },
    Asset {
        name: "console/app.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/console/app.css"),
    },
    Asset {
        name: "console/icon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/console/icon.svg"),
    },
];

/// How often the stories list asks for news, in milliseconds: a conditional GET that
/// answers 304 with no body when nothing changed.
pub const STORIES_POLL_MS: u32 = 3_000;
/// How often an alert's progress is read while it is being sent, in milliseconds.
pub const PROGRESS_POLL_MS: u32 = 500;

pub(crate) fn router() -> Router<WebState> {
    Router::new().route(crate::paths::CONSOLE, get(page))
}

/// The console's single page.
#[derive(Template)]
#[template(path = "console/index.html")]
pub struct ConsolePage {
    site_name: String,
    css: String,
    js: String,
    icon: String,
    stories_poll_ms: u32,
    progress_poll_ms: u32,
}

/// `GET /console`: the page, revalidated on every visit (it names the current assets).
async fn page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let page = ConsolePage {
        site_name: state.config.site_name.clone(),
        css: assets::url("console/app.css"),
        js: assets::url("console/app.js"),
        icon: assets::url("console/icon.svg"),
        stories_poll_ms: STORIES_POLL_MS,
        progress_poll_ms: PROGRESS_POLL_MS,
    };
    let body = match page.render() {
        Ok(body) => body,
        Err(err) => {
            tracing::error!(error = %err, "the console page could not be rendered");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the console is unavailable",
            )
                .into_response();
        }
    };
    let etag = format!(
        "W/\"{}\"",
        &hex::encode(sha2::Sha256::digest(body.as_bytes()))[..32]
    );
    // Compared weakly (RFC 9110 §13.1.2): a proxy or the compression layer may mark it weak.
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == "*" || opaque(t) == opaque(&etag))
        });
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
    };
    let out = response.headers_mut();
    // The page holds no data, but no shared cache needs to keep an editor's tool.
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    response
}

use sha2::Digest as _;
