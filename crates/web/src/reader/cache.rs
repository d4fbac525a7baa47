//! Public pages kept in memory for `web.page_cache_ms`, per address.
//!
//! The front page, topic tabs, search results, articles and stories are the same for every
//! reader (nothing personal is rendered on the server), so one database read and one render
//! serve everyone asking for the same address meanwhile. When an entry expires, the first
//! request to see it renders it again while the others still get the previous page (for at
//! most [`STALE_TTLS`] lifetimes), so an expiry never sends every waiting request to the
//! database at once. At most [`MAX_ENTRIES`] addresses are kept (search words and page
//! positions are unbounded).

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most addresses kept (a page is 10–40 KB, so at most about 20 MB).
pub const MAX_ENTRIES: usize = 512;
/// How many lifetimes an expired page may still be served while it is rendered again.
pub const STALE_TTLS: u32 = 5;

/// A rendered page: status, body and its `ETag`.
#[derive(Clone)]
pub struct Rendered {
    pub status: StatusCode,
    pub body: Bytes,
    pub etag: String,
}

impl Rendered {
    /// `body` with its `ETag`: a hash of the bytes, weak because the response may be
    /// compressed on the way out.
    pub fn new(status: StatusCode, body: String) -> Self {
        let etag = weak_etag(&body);
        Self {
            status,
            body: Bytes::from(body),
            etag,
        }
    }

    /// The response: `no-cache` with the `ETag`, 304 when the browser already has these bytes.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = self.status == StatusCode::OK && etag_matches(request, &self.etag);
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                self.status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                self.body.clone(),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if let Ok(value) = HeaderValue::from_str(&self.etag) {
            headers.insert(header::ETAG, value);
        }
        response
    }
}

/// A weak `ETag` over `body`.
pub fn weak_etag(body: &str) -> String {
    format!(
        "W/\"{}\"",
        hex::encode(&Sha256::digest(body.as_bytes())[..12])
    )
}

/// Whether `If-None-Match` names `etag` (weak comparison: `W/` ignored on both sides).
pub fn etag_matches(request: &HeaderMap, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag);
    request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == "*" || opaque(t) == ours))
}

struct Entry {
    page: Rendered,
    fresh_until: Instant,
    stale_until: Instant,
    refreshing: bool,
}

/// The reader's page cache; one per router.
#[derive(Clone, Default)]
pub struct PageCache {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

enum Lookup {
    Hit(Rendered),
    Render,
}

impl PageCache {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lookup(&self, key: &str, now: Instant) -> Lookup {
        let mut entries = self.lock();
        match entries.get_mut(key) {
            Some(entry) if now < entry.fresh_until => Lookup::Hit(entry.page.clone()),
            Some(entry) if now < entry.stale_until => {
                if entry.refreshing {
                    Lookup::Hit(entry.page.clone())
                } else {
                    entry.refreshing = true;
                    Lookup::Render
                }
            }
            _ => Lookup::Render,
        }
    }

    fn store(&self, key: String, page: &Rendered, ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.lock();
        if page.status != StatusCode::OK {
            entries.remove(&key);
            return;
        }
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.retain(|_, e| e.stale_until > now);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(
            key,
            Entry {
                page: page.clone(),
                fresh_until: now + ttl,
                stale_until: now + ttl * STALE_TTLS,
                refreshing: false,
            },
        );
    }

    /// The page at `key`: from memory while fresh, else rendered by `render` (and kept for
    /// `ttl` when it is a 200). A zero `ttl` renders every time.
    pub async fn page<F>(&self, key: String, ttl: Duration, render: F) -> Rendered
    where
        F: Future<Output = Rendered>,
    {
        if ttl.is_zero() {
            return render.await;
        }
        if let Lookup::Hit(page) = self.lookup(&key, Instant::now()) {
            return page;
        }
        let page = render.await;
        self.store(key, &page, ttl);
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Rendered {
        Rendered::new(StatusCode::OK, text.to_string())
    }

    #[tokio::test]
    async fn fresh_pages_come_from_memory_and_stale_ones_are_rendered_by_one_request() {
        let cache = PageCache::default();
        let ttl = Duration::from_millis(40);
        let first = cache.page("/".into(), ttl, async { page("one") }).await;
        assert_eq!(first.body, "one");
        let hit = cache.page("/".into(), ttl, async { page("two") }).await;
        assert_eq!(hit.body, "one", "fresh: not rendered again");
        tokio::time::sleep(ttl + Duration::from_millis(5)).await;
        // Expired: the first request renders; while it does, others get the old page.
        assert!(matches!(cache.lookup("/", Instant::now()), Lookup::Render));
        match cache.lookup("/", Instant::now()) {
            Lookup::Hit(p) => assert_eq!(p.body, "one"),
            Lookup::Render => panic!("a second request must not render too"),
        }
        cache.store("/".into(), &page("three"), ttl);
        let after = cache.page("/".into(), ttl, async { page("four") }).await;
        assert_eq!(after.body, "three");
        // Errors are never kept; a zero lifetime keeps nothing.
        let missing = Rendered::new(StatusCode::NOT_FOUND, "gone".into());
        cache.store("/x".into(), &missing, ttl);
        assert!(matches!(cache.lookup("/x", Instant::now()), Lookup::Render));
        let uncached = cache
            .page("/".into(), Duration::ZERO, async { page("five") })
            .await;
        assert_eq!(uncached.body, "five");
    }

    #[test]
    fn an_etag_match_is_a_304() {
        let rendered = page("body");
        let mut request = HeaderMap::new();
        request.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&rendered.etag).unwrap(),
        );
        assert_eq!(
            rendered.respond(&request).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(rendered.respond(&HeaderMap::new()).status(), StatusCode::OK);
        assert!(rendered.etag.starts_with("W/\""));
        let strong = rendered.etag.trim_start_matches("W/").to_string();
        request.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&strong).unwrap(),
        );
        assert_eq!(
            rendered.respond(&request).status(),
            StatusCode::NOT_MODIFIED
        );
    }
}
