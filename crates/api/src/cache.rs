//! Conditional responses: every read answers with an `ETag` and a `Cache-Control` suited to
//! it, and `If-None-Match` with `304 Not Modified` and no body.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long clients and shared caches may keep a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caching {
    /// Lists anyone may read: shared caches keep them 30 s.
    PublicList,
    /// An article or a story: shared caches keep it 60 s.
    PublicItem,
    /// Lists that change as readers write (comments): always revalidate.
    PublicRevalidate,
    /// One reader's own data: never in shared caches, always revalidate.
    Private,
}

impl Caching {
    fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::PublicList => "public, max-age=30",
            Self::PublicItem => "public, max-age=60",
            Self::PublicRevalidate => "public, no-cache",
            Self::Private => "private, no-cache",
        })
    }
}

/// A response body ready to send, with its validator and caching rule: rendered once, then
/// answered any number of times from the cache without copying (`Bytes` and `HeaderValue`
/// are reference-counted).
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    body: Bytes,
    etag: HeaderValue,
    caching: Caching,
}

impl Rendered {
    /// `value` as JSON with a weak `ETag` over its bytes (weak: compression may change the
    /// bytes on the wire).
    pub(crate) fn json(caching: Caching, value: &impl Serialize) -> Result<Self, crate::ApiError> {
        let body = serde_json::to_vec(value).map_err(crate::ApiError::internal)?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        let etag = format!("W/\"{}\"", URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
        Ok(Self {
            body: Bytes::from(body),
            etag: HeaderValue::from_maybe_shared(Bytes::from(etag))
                .map_err(crate::ApiError::internal)?,
            caching,
        })
    }

    /// The answer to a request with these headers: `304` when its `If-None-Match` already
    /// names this body, else `200` with it.
    pub(crate) fn respond(&self, request: &HeaderMap) -> Response {
        let mut headers = HeaderMap::with_capacity(4);
        headers.insert(header::CACHE_CONTROL, self.caching.header());
        headers.insert(header::ETAG, self.etag.clone());
        if matches(request, &self.etag) {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        (StatusCode::OK, headers, self.body.clone()).into_response()
    }
}

/// `value` as JSON with its `ETag`, or `304` when `If-None-Match` already names it.
pub(crate) fn json(request: &HeaderMap, caching: Caching, value: &impl Serialize) -> Response {
    match Rendered::json(caching, value) {
        Ok(rendered) => rendered.respond(request),
        Err(err) => err.into_response(),
    }
}

/// Public reads kept in memory for a moment ("micro-caching"): at thousands of requests a
/// second most readers ask for the same front page, so one database read serves them all.
/// An entry is fresh for `http.read_cache_ms` (default 1 s) — well within the `max-age` the
/// same response already allows any shared cache — and `0` turns the cache off.
///
/// When an entry expires, the first request to see it reads the database again while the
/// others keep getting the previous answer for up to [`STALE_FACTOR`] times the TTL, so a
/// busy page never sends every waiting request to the database at once.
///
/// Hits take only the read lock (readers never wait for each other); who refreshes an
/// expired entry is settled by an atomic flag on the entry, so only writing a new answer
/// takes the write lock.
#[derive(Debug)]
pub struct ReadCache {
    ttl: Duration,
    entries: RwLock<HashMap<Box<str>, Entry>>,
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    rendered: Rendered,
    refreshing: AtomicBool,
}

/// Entries kept at most; past it, expired ones go, and if none had expired, all of them.
const MAX_ENTRIES: usize = 10_000;
/// How many TTLs an expired entry may still be served while one request refreshes it.
pub const STALE_FACTOR: u32 = 5;

impl ReadCache {
    /// A cache whose entries are fresh for `ttl`; zero keeps nothing.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The answer to serve for `key`, or `None` when the caller should read the database
    /// (and [`put`](Self::put) or [`abandon`](Self::abandon) afterwards).
    pub(crate) fn get(&self, key: &str) -> Option<Rendered> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read().ok()?;
        let entry = entries.get(key)?;
        let age = entry.at.elapsed();
        if age < self.ttl {
            return Some(entry.rendered.clone());
        }
        // Expired: the first request to get here refreshes it; the others keep the previous
        // answer meanwhile, up to the stale limit.
        let already_refreshing = entry.refreshing.swap(true, Ordering::AcqRel);
        if already_refreshing && age < self.ttl * STALE_FACTOR {
            return Some(entry.rendered.clone());
        }
        None
    }

    /// Keeps `rendered` for `key`.
    pub(crate) fn put(&self, key: &str, rendered: &Rendered) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.write() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let keep = self.ttl * STALE_FACTOR;
            entries.retain(|_, entry| entry.at.elapsed() < keep);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        let entry = Entry {
            at: Instant::now(),
            rendered: rendered.clone(),
            refreshing: AtomicBool::new(false),
        };
        entries.insert(key.into(), entry);
    }

    /// The refresh of `key` failed: let the next request try.
    pub(crate) fn abandon(&self, key: &str) {
        if let Ok(entries) = self.entries.read()
            && let Some(entry) = entries.get(key)
        {
            entry.refreshing.store(false, Ordering::Release);
        }
    }
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`.
fn matches(request: &HeaderMap, etag: &HeaderValue) -> bool {
    fn opaque(tag: &str) -> &str {
        tag.trim().trim_start_matches("W/")
    }
    let mut given = request.get_all(header::IF_NONE_MATCH).iter().peekable();
    if given.peek().is_none() {
        return false;
    }
    let ours = opaque(etag.to_str().unwrap_or_default());
    given
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == ours)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn if_none_match(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn etags_match_weakly_and_in_lists() {
        let first = json(&HeaderMap::new(), Caching::PublicList, &[1, 2, 3]);
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_string();
        assert!(etag.starts_with("W/\""));
        assert_eq!(first.headers()[header::CACHE_CONTROL], "public, max-age=30");
        let strong = etag.trim_start_matches("W/");
        for header_value in [etag.as_str(), strong, &format!("\"x\", {etag}"), "*"] {
            let again = json(
                &if_none_match(header_value),
                Caching::PublicList,
                &[1, 2, 3],
            );
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{header_value}");
            assert_eq!(again.headers()[header::ETAG].to_str().unwrap(), etag);
        }
        let changed = json(&if_none_match(&etag), Caching::PublicList, &[1, 2, 4]);
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[test]
    fn the_read_cache_forgets_after_its_ttl_and_keeps_nothing_at_zero() {
        let rendered = Rendered::json(Caching::PublicList, &[1]).unwrap();
        let cache = ReadCache::new(Duration::from_millis(50));
        cache.put("/v1/articles", &rendered);
        assert!(cache.get("/v1/articles").is_some());
        assert!(cache.get("/v1/articles?topic=world").is_none());
        std::thread::sleep(Duration::from_millis(60));
        // Expired: the first caller refreshes, the others get the previous answer meanwhile.
        assert!(cache.get("/v1/articles").is_none());
        assert!(cache.get("/v1/articles").is_some());
        cache.abandon("/v1/articles");
        assert!(cache.get("/v1/articles").is_none());
        let newer = Rendered::json(Caching::PublicList, &[2]).unwrap();
        cache.put("/v1/articles", &newer);
        assert_eq!(cache.get("/v1/articles").unwrap().etag, newer.etag);
        // Past the stale limit nobody gets the old answer.
        std::thread::sleep(Duration::from_millis(260));
        assert!(cache.get("/v1/articles").is_none());
        assert!(cache.get("/v1/articles").is_none());
        let off = ReadCache::new(Duration::ZERO);
        off.put("/v1/articles", &rendered);
        assert!(off.get("/v1/articles").is_none());
    }
}
