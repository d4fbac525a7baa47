//! `herald serve --demo`: sample feeds from `config/demo/`, served by Herald itself on
//! 127.0.0.1, so a machine with no internet shows articles and stories.
//!
//! The demo names its own feed server's address in `ingest.private_hosts` (the feeds are on
//! loopback); every other feed, and any redirect away from the demo server, is still held to
//! public addresses.

use crate::config::Config;
use crate::roles::Roles;
use anyhow::Context;
use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{Duration, Utc};
use herald_store::sources::NewSource;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The port the demo feeds are served on when it is free (else any free port).
pub const DEMO_FEEDS_PORT: u16 = 18_573;

/// One shipped demo feed: file name, publisher, home page, topics, language.
struct DemoFeed {
    file: &'static str,
    body: &'static str,
    name: &'static str,
    site_url: &'static str,
    topics: &'static [&'static str],
    language: &'static str,
}

const FEEDS: &[DemoFeed] = &[
    DemoFeed {
        file: "daily-meridian.xml",
        body: include_str!("../../../config/demo/daily-meridian.xml"),
        name: "The Daily Meridian",
        site_url: "https://dailymeridian.example/",
        topics: &["world"],
        language: "en-gb",
    },
    DemoFeed {
        file: "harbour-times.xml",
        body: include_str!("../../../config/demo/harbour-times.xml"),
        name: "Harbour Times",
        site_url: "https://harbourtimes.example/",
        topics: &[],
        language: "en",
    },
    DemoFeed {
        file: "capital-wire.xml",
        body: include_str!("../../../config/demo/capital-wire.xml"),
        name: "Capital Wire",
        site_url: "https://capitalwire.example/",
        topics: &["business"],
        language: "en",
    },
    DemoFeed {
        file: "asia-ledger.xml",
        body: include_str!("../../../config/demo/asia-ledger.xml"),
        name: "Asia Ledger",
        site_url: "https://asialedger.example/india",
        topics: &["india"],
        language: "en-in",
    },
];

/// Fills the `{{rfc2822:-N}}` and `{{rfc3339:-N}}` placeholders with "N minutes ago".
pub fn render(template: &str) -> String {
    let now = Utc::now();
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            rest = &rest[start..];
            break;
        };
        let token = &rest[start + 2..start + end];
        let rendered = token.split_once(':').and_then(|(format, minutes)| {
            let at = now + Duration::minutes(minutes.trim().parse::<i64>().ok()?);
            match format {
                "rfc2822" => Some(at.to_rfc2822()),
                "rfc3339" => Some(at.to_rfc3339()),
                _ => None,
            }
        });
        out.push_str(rendered.as_deref().unwrap_or(&rest[start..start + end + 2]));
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Serves one demo feed, its times relative to now.
async fn feed(Path(file): Path<String>) -> impl IntoResponse {
    match FEEDS.iter().find(|f| f.file == file) {
        Some(found) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
            render(found.body),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Starts the demo feed server on 127.0.0.1 and returns its address; it runs until the
/// process ends.
pub async fn start_feed_server() -> anyhow::Result<SocketAddr> {
    let listener = match TcpListener::bind(("127.0.0.1", DEMO_FEEDS_PORT)).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(("127.0.0.1", 0))
            .await
            .context("cannot listen for the demo feeds")?,
    };
    let addr = listener.local_addr()?;
    let router = Router::new().route("/demo/{file}", get(feed));
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, "the demo feed server failed");
        }
    });
    Ok(addr)
}

/// The demo sources, pointing at the feed server at `addr`.
pub fn sources(addr: SocketAddr) -> Vec<NewSource> {
    FEEDS
        .iter()
        .map(|f| NewSource {
            name: f.name.to_string(),
            feed_url: format!("http://{addr}/demo/{}", f.file),
            site_url: Some(f.site_url.to_string()),
            topics: f.topics.iter().map(|t| t.to_string()).collect(),
            language: Some(f.language.to_string()),
            breaking: false,
            poll_interval_seconds: Some(300),
        })
        .collect()
}

/// `herald serve --demo`: starts the demo feeds, adds them as sources (next to the
/// catalogue's), allows ingestion to reach the demo feed server, then serves as [`crate::serve`].
pub async fn serve(
    mut config: Config,
    roles: Roles,
    listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = start_feed_server().await?;
    config.ingest.private_hosts.push(addr.ip().to_string());
    tracing::info!(%addr, "demo feeds at http://{addr}/demo/");
    let db = crate::open_database(&config).await?;
    let catalog = crate::catalog::Catalog::load(config.catalog.sources_file.as_deref())?;
    herald_store::topics::sync(&db, &catalog.topics())
        .await
        .context("cannot sync topics")?;
    herald_store::sources::sync(&db, &sources(addr))
        .await
        .context("cannot add the demo sources")?;
    let _ = db.close().await;
    crate::serve(config, roles, listener, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_times() {
        let out = render("<a>{{rfc2822:-5}}</a><b>{{rfc3339:0}}</b><c>{{other}}</c>");
        assert!(
            !out.contains("rfc2822") && !out.contains("rfc3339"),
            "{out}"
        );
        assert!(out.contains("{{other}}"));
        for feed in FEEDS {
            let body = render(feed.body);
            assert!(!body.contains("{{"), "{}", feed.file);
        }
    }
}
