//! Opaque, tamper-evident page cursors and the HMAC key that signs them.
//!
//! A cursor is `base64url(json) "." base64url(tag)`, where the tag is HMAC-SHA256 (first
//! 16 bytes) over the list's scope and the JSON. The scope names the list and its filters,
//! so a cursor from another list, another filter or another reader's feed is refused just
//! like an edited or made-up one: 400, nothing read.
//!
//! The JSON API and the reader's pages page the same article lists with the same cursors
//! ([`article_scope`], [`CursorKey::encode_article`]): a page's "older" link carries exactly
//! the `next_cursor` the API gives for that list.

use crate::sealing::{Keyring, SealingError};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use herald_store::keys::StoredKey;
use herald_store::reading::{ArticleKey, SearchQuery};
use herald_store::{Db, Secret, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Key purpose in the key store.
const PURPOSE: &str = "page-cursor";
/// Bytes of the tag kept in a cursor.
const TAG_BYTES: usize = 16;

/// Why the cursor key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CursorKeyError {
    /// The key store failed.
    #[error("cannot load the page-cursor key: {0}")]
    Store(#[from] StoreError),
    /// The key could not be created, sealed or opened.
    #[error("cannot load or create the page-cursor key: {0}")]
    Sealing(String),
}

/// A cursor that this key did not sign for this list, or that no longer parses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// Edited, made up, from another list or another key.
    #[error("the cursor is not one this list gave out; start again without `cursor`")]
    Foreign,
    /// Signed, but its position is out of range.
    #[error("the cursor is out of range")]
    OutOfRange,
}

/// Signs and checks page cursors; every API process loads the same key from the database.
#[derive(Clone)]
pub struct CursorKey(hmac::Key);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey([redacted])")
    }
}

impl CursorKey {
    /// A key from raw secret bytes.
    pub fn from_secret(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }

    /// The cluster's cursor key, created (32 random bytes) on first start and kept sealed by
    /// `keyring`.
    pub async fn load_or_create(db: &Db, keyring: &Keyring) -> Result<Self, CursorKeyError> {
        let stored = keyring
            .load_or_create(db, PURPOSE, || {
                let mut secret = vec![0u8; 32];
                aws_lc_rs::rand::fill(&mut secret).map_err(|_| "no randomness")?;
                Ok::<_, &str>(StoredKey {
                    id: format!("{PURPOSE}-{}", uuid::Uuid::now_v7()),
                    purpose: PURPOSE.into(),
                    algorithm: "HS256".into(),
                    private_der: Secret::new(secret),
                    public_key: Vec::new(),
                    created_at: chrono::Utc::now(),
                })
            })
            .await
            .map_err(|err| match err {
                SealingError::Store(err) => CursorKeyError::Store(err),
                other => CursorKeyError::Sealing(other.to_string()),
            })?;
        Ok(Self::from_secret(stored.private_der.expose()))
    }

    /// A cursor for `position` within the list named by `scope`.
    pub fn encode(&self, scope: &str, position: &impl Serialize) -> String {
        let json = serde_json::to_vec(position).unwrap_or_default();
        let tag = self.tag(scope, &json);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(&tag.as_ref()[..TAG_BYTES])
        )
    }

    /// The position in `cursor`, if this key signed it for `scope`.
    pub fn decode<T: DeserializeOwned>(&self, scope: &str, cursor: &str) -> Result<T, CursorError> {
        let bad = || CursorError::Foreign;
        let (body, tag) = cursor.split_once('.').ok_or_else(bad)?;
        let json = URL_SAFE_NO_PAD.decode(body).map_err(|_| bad())?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| bad())?;
        let expected = self.tag(scope, &json);
        if tag.len() != TAG_BYTES
            || aws_lc_rs::constant_time::verify_slices_are_equal(
                &expected.as_ref()[..TAG_BYTES],
                &tag,
            )
            .is_err()
        {
            return Err(bad());
        }
        serde_json::from_slice(&json).map_err(|_| bad())
    }

    /// A cursor for a list ordered by (time, id): the position of `at`, `id` in `scope`.
    pub fn encode_time(&self, scope: &str, at: DateTime<Utc>, id: Uuid) -> String {
        let position = TimePosition {
            s: at.timestamp(),
            n: at.timestamp_subsec_nanos(),
            i: id,
        };
        self.encode(scope, &position)
    }

    /// The (time, id) position in `cursor`, if given and this key signed it for `scope`.
    pub fn decode_time(
        &self,
        scope: &str,
        cursor: Option<&str>,
    ) -> Result<Option<(DateTime<Utc>, Uuid)>, CursorError> {
        let Some(cursor) = cursor else {
            return Ok(None);
        };
        let p: TimePosition = self.decode(scope, cursor)?;
        let at = DateTime::from_timestamp(p.s, p.n).ok_or(CursorError::OutOfRange)?;
        Ok(Some((at, p.i)))
    }

    /// A cursor for an article list (`scope` from [`article_scope`]) after `key`.
    pub fn encode_article(&self, scope: &str, key: ArticleKey) -> String {
        self.encode(scope, &ArticlePosition::from(key))
    }

    /// The article-list position in `cursor`, if this key signed it for `scope`.
    pub fn decode_article(&self, scope: &str, cursor: &str) -> Result<ArticleKey, CursorError> {
        let p: ArticlePosition = self.decode(scope, cursor)?;
        Ok(ArticleKey {
            rank: p.r,
            published_at: DateTime::from_timestamp(p.s, p.n).ok_or(CursorError::OutOfRange)?,
            id: p.i,
        })
    }

    fn tag(&self, scope: &str, json: &[u8]) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.0);
        context.update(scope.as_bytes());
        context.update(&[0]);
        context.update(json);
        context.sign()
    }
}

/// The scope of the public article list with these filters (`GET /v1/articles` and the
/// reader's front, topic and search pages), so their cursors are one and the same.
pub fn article_scope(
    topic: Option<&str>,
    source: Option<Uuid>,
    since: Option<DateTime<Utc>>,
    search: Option<&SearchQuery>,
) -> String {
    format!(
        "articles\x1f{}\x1f{}\x1f{}\x1f{}",
        topic.unwrap_or_default(),
        source.map(|s| s.to_string()).unwrap_or_default(),
        since.map(|s| s.to_rfc3339()).unwrap_or_default(),
        search.map(|s| s.terms().join(" ")).unwrap_or_default(),
    )
}

/// Where an article list stopped, as signed into its cursor: rank, seconds, nanoseconds, id.
#[derive(Debug, Serialize, Deserialize)]
struct ArticlePosition {
    r: i32,
    s: i64,
    n: u32,
    i: Uuid,
}

impl From<ArticleKey> for ArticlePosition {
    fn from(key: ArticleKey) -> Self {
        Self {
            r: key.rank,
            s: key.published_at.timestamp(),
            n: key.published_at.timestamp_subsec_nanos(),
            i: key.id,
        }
    }
}

/// Where a list ordered by (time, id) stopped: seconds, nanoseconds, id.
#[derive(Debug, Serialize, Deserialize)]
struct TimePosition {
    s: i64,
    n: u32,
    i: Uuid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn article_cursors_round_trip_in_their_list_only() {
        let key = CursorKey::from_secret(b"test secret");
        let at = ArticleKey {
            rank: 1,
            published_at: DateTime::from_timestamp_micros(1_765_000_000_123_456).unwrap(),
            id: Uuid::now_v7(),
        };
        let world = article_scope(Some("world"), None, None, None);
        let cursor = key.encode_article(&world, at);
        assert_eq!(key.decode_article(&world, &cursor), Ok(at));
        let india = article_scope(Some("india"), None, None, None);
        assert_eq!(
            key.decode_article(&india, &cursor),
            Err(CursorError::Foreign)
        );
    }

    #[test]
    fn cursors_round_trip_only_in_their_own_scope() {
        let key = CursorKey::from_secret(b"test secret");
        let cursor = key.encode("articles?topic=world", &(7_i64, "x".to_string()));
        let back: (i64, String) = key.decode("articles?topic=world", &cursor).unwrap();
        assert_eq!(back, (7, "x".to_string()));
        // Another list's, another key's, an edited or a made-up cursor: refused.
        assert!(
            key.decode::<(i64, String)>("articles?topic=india", &cursor)
                .is_err()
        );
        let other = CursorKey::from_secret(b"other secret");
        assert!(
            other
                .decode::<(i64, String)>("articles?topic=world", &cursor)
                .is_err()
        );
        let (body, tag) = cursor.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(b"[8,\"x\"]");
        assert!(
            key.decode::<(i64, String)>("articles?topic=world", &format!("{forged}.{tag}"))
                .is_err()
        );
        assert!(
            key.decode::<(i64, String)>("articles?topic=world", body)
                .is_err()
        );
        assert!(
            key.decode::<(i64, String)>("articles?topic=world", "%%%.!!")
                .is_err()
        );
    }
}
