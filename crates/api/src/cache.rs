//! Conditional responses: every read answers with an `ETag` and a `Cache-Control` suited to
//! it, and `If-None-Match` with `304 Not Modified` and no body.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

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

/// `value` as JSON with a weak `ETag` over its bytes (weak: compression may change the
/// bytes on the wire), or `304` when the request's `If-None-Match` already names it.
pub(crate) fn json(request: &HeaderMap, caching: Caching, value: &impl Serialize) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(err) => return crate::ApiError::internal(err).into_response(),
    };
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
    let etag = format!("W/\"{}\"", URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, caching.header());
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if matches(request, &etag) {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (StatusCode::OK, headers, body).into_response()
}

/// Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`.
fn matches(request: &HeaderMap, etag: &str) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
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
}
