//! Opaque refresh tokens: generated here, stored only as SHA-256 hashes.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};

use crate::config::AuthConfig;
use crate::error::AuthError;

/// Random bytes in a refresh token.
const TOKEN_BYTES: usize = 32;
/// Length of 32 bytes in unpadded base64url.
const TOKEN_CHARS: usize = 43;

/// A refresh token presented by a client, known to be well formed; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// A new token: (plain, for the client once; hash, hex SHA-256, for the database).
    pub fn generate() -> (String, String) {
        let mut bytes = [0_u8; TOKEN_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let plain = URL_SAFE_NO_PAD.encode(bytes);
        let hash = RefreshToken::hash(&plain);
        (plain, hash)
    }

    /// The hex SHA-256 of a plain token, as stored.
    pub fn hash(plain: &str) -> String {
        hex::encode(Sha256::digest(plain.as_bytes()))
    }

    /// Accepts only strings shaped like a token from [`RefreshToken::generate`], so junk never reaches the database.
    pub fn parse(input: &str) -> Result<RefreshToken, AuthError> {
        let malformed = AuthError::InvalidToken("malformed refresh token");
        if input.len() != TOKEN_CHARS {
            return Err(malformed);
        }
        // Strict decoding also refuses non-canonical trailing bits.
        match URL_SAFE_NO_PAD.decode(input) {
            Ok(bytes) if bytes.len() == TOKEN_BYTES => Ok(RefreshToken(input.to_owned())),
            _ => Err(malformed),
        }
    }

    /// The hex SHA-256 of this token, to look it up.
    pub fn to_hash(&self) -> String {
        RefreshToken::hash(&self.0)
    }

    /// The plain token.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

/// When a refresh token issued `now` expires: `refresh_token_ttl_days` from now, but never after the session's absolute end.
pub fn refresh_expires_at(
    config: &AuthConfig,
    session_started_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let sliding = now + days(config.refresh_token_ttl_days);
    sliding.min(session_expires_at(config, session_started_at))
}

/// The absolute end of a session started at `session_started_at`.
pub fn session_expires_at(config: &AuthConfig, session_started_at: DateTime<Utc>) -> DateTime<Utc> {
    session_started_at + days(config.session_max_days)
}

/// True if a refresh token spent at `spent_at` and presented again at `now` is a retry (lost response), not theft.
pub fn within_reuse_grace(
    config: &AuthConfig,
    spent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let grace = Duration::seconds(i64::try_from(config.refresh_reuse_grace_seconds).unwrap_or(0));
    now >= spent_at && now - spent_at <= grace
}

fn days(n: u64) -> Duration {
    // Clamp absurd configuration instead of overflowing: 100 years is "forever" here.
    Duration::days(i64::try_from(n).unwrap_or(i64::MAX).min(36_500))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_consistently() -> Result<(), AuthError> {
        let (plain, hash) = RefreshToken::generate();
        assert_eq!(plain.len(), TOKEN_CHARS);
        assert_eq!(hash.len(), 64);
        assert!(
            hash.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(RefreshToken::hash(&plain), hash);
        let parsed = RefreshToken::parse(&plain)?;
        assert_eq!(parsed.to_hash(), hash);
        assert_eq!(parsed.expose(), plain);
        Ok(())
    }

    #[test]
    fn tokens_are_unique() {
        let (a, _) = RefreshToken::generate();
        let (b, _) = RefreshToken::generate();
        assert_ne!(a, b);
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            RefreshToken::hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn junk_is_refused() {
        let (plain, _) = RefreshToken::generate();
        let too_long = format!("{plain}A");
        let padded = format!("{}=", &plain[..42]);
        let with_plus = format!("+{}", &plain[1..]);
        let with_slash = format!("/{}", &plain[1..]);
        let with_space = format!(" {}", &plain[1..]);
        // 'B' as the last character sets bits that 32 bytes cannot carry.
        let non_canonical = format!("{}B", &"A".repeat(42));
        for junk in [
            "",
            "short",
            &plain[..42],
            &too_long,
            &padded,
            &with_plus,
            &with_slash,
            &with_space,
            &non_canonical,
            "ééééééééééééééééééééé",
        ] {
            assert!(RefreshToken::parse(junk).is_err(), "{junk:?} accepted");
        }
    }

    #[test]
    fn debug_hides_the_token() -> Result<(), AuthError> {
        let (plain, _) = RefreshToken::generate();
        let parsed = RefreshToken::parse(&plain)?;
        assert_eq!(format!("{parsed:?}"), "RefreshToken([redacted])");
        Ok(())
    }

    #[test]
    fn expiry_slides_but_stops_at_the_session_limit() {
        let config = AuthConfig::default();
        let start = Utc::now();
        assert_eq!(
            refresh_expires_at(&config, start, start),
            start + Duration::days(60)
        );
        let late = start + Duration::days(340);
        assert_eq!(
            refresh_expires_at(&config, start, late),
            start + Duration::days(365)
        );
        assert_eq!(
            session_expires_at(&config, start),
            start + Duration::days(365)
        );
    }

    #[test]
    fn reuse_grace_is_short() {
        let config = AuthConfig::default();
        let spent = Utc::now();
        assert!(within_reuse_grace(
            &config,
            spent,
            spent + Duration::seconds(3)
        ));
        assert!(within_reuse_grace(
            &config,
            spent,
            spent + Duration::seconds(10)
        ));
        assert!(!within_reuse_grace(
            &config,
            spent,
            spent + Duration::seconds(11)
        ));
        assert!(!within_reuse_grace(
            &config,
            spent,
            spent - Duration::seconds(1)
        ));
    }
}
