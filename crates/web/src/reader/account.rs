//! The reader's own pages: account, followed topics with alert preferences, and the alert
//! inbox. A reader is known by tokens the browser holds, so these pages are served the same to
//! everyone and `app.js` fills them in through the `/v1` API; without JavaScript they say so.

use super::page::{self, Chrome, Meta};
use crate::WebState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

#[derive(Template)]
#[template(path = "reader/account.html")]
pub struct AccountPage {
    chrome: Chrome,
    meta: Meta,
}

#[derive(Template)]
#[template(path = "reader/following.html")]
pub struct FollowingPage {
    chrome: Chrome,
    meta: Meta,
    /// Quiet-hours choices, "00:00" to "23:30".
    times: Vec<String>,
}

#[derive(Template)]
#[template(path = "reader/alerts.html")]
pub struct AlertsPage {
    chrome: Chrome,
    meta: Meta,
}

fn private_meta(state: &WebState, title: &str, path: &str) -> Meta {
    let mut meta = Meta::new(
        format!("{title} — {}", state.config.site_name),
        format!("{title} on {}.", state.config.site_name),
        path.to_string(),
    );
    meta.robots = "noindex, nofollow";
    meta
}

/// Sign up, log in, link the anonymous reader to an account, log out.
pub async fn account(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let chrome = match Chrome::load(&state, "account", None).await {
        Ok(chrome) => chrome,
        Err(err) => return page::error(&state, err, &headers),
    };
    let meta = private_meta(&state, "Your account", super::paths::ACCOUNT);
    page::render(&AccountPage { chrome, meta }, StatusCode::OK, &headers)
}

/// Topics to follow, alert preferences and "Turn on alerts".
pub async fn following(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let chrome = match Chrome::load(&state, "following", None).await {
        Ok(chrome) => chrome,
        Err(err) => return page::error(&state, err, &headers),
    };
    let meta = private_meta(&state, "Following and alerts", super::paths::FOLLOWING);
    let times = (0..48)
        .map(|half| format!("{:02}:{:02}", half / 2, (half % 2) * 30))
        .collect();
    let template = FollowingPage {
        chrome,
        meta,
        times,
    };
    page::render(&template, StatusCode::OK, &headers)
}

/// The alerts this reader was sent.
pub async fn alerts(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let chrome = match Chrome::load(&state, "alerts", None).await {
        Ok(chrome) => chrome,
        Err(err) => return page::error(&state, err, &headers),
    };
    let meta = private_meta(&state, "Your alerts", super::paths::ALERTS);
    page::render(&AlertsPage { chrome, meta }, StatusCode::OK, &headers)
}
