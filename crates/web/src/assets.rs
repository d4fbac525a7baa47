//! Static files compiled into the binary and served under `/assets/{hash}/{name}`.
//!
//! The hash is the first 16 hex digits of the file's SHA-256, so a page always names the exact
//! bytes it was rendered against and the file can be cached for a year (`immutable`). Each face
//! lists its own files ([`crate::reader::ASSETS`], [`crate::console::ASSETS`]); this module
//! hashes them once, on first use.

use crate::WebState;
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::OnceLock;

/// One file compiled into the binary.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its name under `/assets/{hash}/`, e.g. `reader/app.js`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

/// An asset with the hash it is served under.
#[derive(Debug)]
pub struct Hashed {
    /// The file.
    pub asset: Asset,
    /// First 16 hex digits of its SHA-256.
    pub hash: String,
}

fn table() -> &'static HashMap<&'static str, Hashed> {
    static TABLE: OnceLock<HashMap<&'static str, Hashed>> = OnceLock::new();
    TABLE.get_or_init(|| {
        crate::reader::ASSETS
            .iter()
            .chain(crate::console::ASSETS)
            .map(|asset| {
                let digest = Sha256::digest(asset.bytes);
                let hash = hex::encode(&digest[..8]);
                (
                    asset.name,
                    Hashed {
                        asset: *asset,
                        hash,
                    },
                )
            })
            .collect()
    })
}

/// The asset called `name`, with its hash.
pub fn get_asset(name: &str) -> Option<&'static Hashed> {
    table().get(name)
}

/// Every asset, for tests and for the service worker's pre-cache list.
pub fn all() -> impl Iterator<Item = &'static Hashed> {
    table().values()
}

/// The URL a page links `name` under, `/assets/{hash}/{name}`.
///
/// An unknown name still gives a URL (which answers 404) rather than failing the page; the
/// crate's tests check that every name a template uses is in the table.
pub fn url(name: &str) -> String {
    match get_asset(name) {
        Some(hashed) => format!("{}/{}/{name}", crate::paths::ASSETS, hashed.hash),
        None => {
            tracing::error!(name, "a page links an asset that is not compiled in");
            format!("{}/missing/{name}", crate::paths::ASSETS)
        }
    }
}

pub(crate) fn router() -> Router<WebState> {
    Router::new().route("/assets/{hash}/{*name}", get(serve))
}

/// Serves an asset: a year and `immutable` under its own hash; under another hash (a page
/// rendered before an upgrade) the current bytes, revalidated every time.
async fn serve(Path((hash, name)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let Some(hashed) = get_asset(&name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{}\"", hashed.hash);
    let cache = if hash == hashed.hash {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, hashed.asset.content_type)],
            hashed.asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    response
}
