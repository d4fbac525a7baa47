//! Short-lived ES256 access tokens: issuing and verifying.

use std::collections::HashMap;
use std::fmt;

use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::AuthConfig;
use crate::error::AuthError;
use crate::keys::SigningKey;

/// Clock skew tolerated when checking `exp`.
const LEEWAY_SECONDS: u64 = 30;
/// RFC 9068 media type, so an access token cannot be mistaken for another kind of JWT.
const TOKEN_TYPE: &str = "at+jwt";
/// Anything longer than this is not one of our tokens; refuse before parsing.
const MAX_TOKEN_LEN: usize = 4096;

/// The claims inside a Herald access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer (`auth.issuer`).
    pub iss: String,
    /// Audience (`auth.audience`).
    pub aud: String,
    /// The user id.
    pub sub: Uuid,
    /// The session id.
    pub sid: Uuid,
    /// `reader`, `editor` or `admin`.
    pub role: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Unique token id.
    pub jti: Uuid,
}

/// A freshly signed access token and its lifetime in seconds.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedAccessToken {
    /// The compact JWT.
    pub token: String,
    /// Seconds until it expires (the `expires_in` of the token response).
    pub expires_in: u64,
}

impl fmt::Debug for IssuedAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedAccessToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Issues access tokens with the current key and verifies them against every published key.
pub struct AccessTokens {
    issuer: String,
    audience: String,
    ttl_seconds: u64,
    signing_kid: String,
    signing_key: EncodingKey,
    verification: HashMap<String, DecodingKey>,
}

impl fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.verification.keys().collect();
        kids.sort();
        f.debug_struct("AccessTokens")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_seconds", &self.ttl_seconds)
            .field("signing_kid", &self.signing_kid)
            .field("verification_kids", &kids)
            .finish_non_exhaustive()
    }
}

fn decoding_key(key: &SigningKey) -> Result<DecodingKey, AuthError> {
    DecodingKey::from_ec_components(&key.x_b64(), &key.y_b64())
        .map_err(|e| AuthError::Internal(format!("verification key {}: {e}", key.kid())))
}

impl AccessTokens {
    /// Signs with `current`; accepts tokens signed by `current` or any of `verification` (older keys still in rotation).
    pub fn new(
        config: &AuthConfig,
        current: &SigningKey,
        verification: &[SigningKey],
    ) -> Result<AccessTokens, AuthError> {
        let mut keys = HashMap::with_capacity(verification.len() + 1);
        for key in verification.iter().chain(std::iter::once(current)) {
            keys.insert(key.kid().to_owned(), decoding_key(key)?);
        }
        Ok(AccessTokens {
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl_seconds: config.access_token_ttl_seconds,
            signing_kid: current.kid().to_owned(),
            signing_key: EncodingKey::from_ec_der(current.pkcs8_der()),
            verification: keys,
        })
    }

    /// Signs an access token for a user's session.
    pub fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: &str,
    ) -> Result<IssuedAccessToken, AuthError> {
        self.issue_at(user_id, session_id, role, Utc::now().timestamp())
    }

    fn issue_at(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        role: &str,
        now: i64,
    ) -> Result<IssuedAccessToken, AuthError> {
        let ttl = i64::try_from(self.ttl_seconds)
            .map_err(|_| AuthError::Internal("access token ttl out of range".to_owned()))?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id,
            sid: session_id,
            role: role.to_owned(),
            iat: now,
            exp: now.saturating_add(ttl),
            jti: Uuid::new_v4(),
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.signing_kid.clone());
        header.typ = Some(TOKEN_TYPE.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .map_err(|e| AuthError::Internal(format!("signing access token: {e}")))?;
        Ok(IssuedAccessToken {
            token,
            expires_in: self.ttl_seconds,
        })
    }

    /// Checks an access token's signature (ES256 only), key id, type, issuer, audience and expiry.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::InvalidToken("malformed token"));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken("malformed token"))?;
        if header.alg != Algorithm::ES256 {
            return Err(AuthError::InvalidToken("unexpected algorithm"));
        }
        if header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(AuthError::InvalidToken("not an access token"));
        }
        let kid = header
            .kid
            .ok_or(AuthError::InvalidToken("missing key id"))?;
        let key = self
            .verification
            .get(&kid)
            .ok_or(AuthError::InvalidToken("unknown key id"))?;

        let mut validation = Validation::new(Algorithm::ES256);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

        jsonwebtoken::decode::<AccessClaims>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::TokenExpired,
                ErrorKind::InvalidSignature => AuthError::InvalidToken("bad signature"),
                ErrorKind::InvalidAudience => AuthError::InvalidToken("wrong audience"),
                ErrorKind::InvalidIssuer => AuthError::InvalidToken("wrong issuer"),
                ErrorKind::InvalidAlgorithm => AuthError::InvalidToken("unexpected algorithm"),
                _ => AuthError::InvalidToken("malformed token"),
            })
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::hmac;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    use super::*;

    struct Fixture {
        key: SigningKey,
        tokens: AccessTokens,
    }

    fn fixture() -> Result<Fixture, AuthError> {
        let key = SigningKey::generate()?;
        let tokens = AccessTokens::new(&AuthConfig::default(), &key, &[])?;
        Ok(Fixture { key, tokens })
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn b64_json(value: &Value) -> String {
        b64(value.to_string().as_bytes())
    }

    fn valid_claims() -> Value {
        let now = Utc::now().timestamp();
        json!({
            "iss": "herald", "aud": "herald-app",
            "sub": Uuid::new_v4(), "sid": Uuid::new_v4(), "role": "admin",
            "iat": now, "exp": now + 900, "jti": Uuid::new_v4(),
        })
    }

    fn assert_invalid(result: Result<AccessClaims, AuthError>) {
        match result {
            Err(AuthError::InvalidToken(_)) => {}
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    #[test]
    fn issued_token_verifies() -> Result<(), AuthError> {
        let f = fixture()?;
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let issued = f.tokens.issue(user, session, "editor")?;
        assert_eq!(issued.expires_in, 900);
        let claims = f.tokens.verify(&issued.token)?;
        assert_eq!(claims.sub, user);
        assert_eq!(claims.sid, session);
        assert_eq!(claims.role, "editor");
        assert_eq!(claims.iss, "herald");
        assert_eq!(claims.aud, "herald-app");
        assert_eq!(claims.exp - claims.iat, 900);
        let header = jsonwebtoken::decode_header(&issued.token)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        assert_eq!(header.kid.as_deref(), Some(f.key.kid()));
        assert_eq!(header.alg, Algorithm::ES256);
        Ok(())
    }

    #[test]
    fn jti_is_unique() -> Result<(), AuthError> {
        let f = fixture()?;
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let a = f
            .tokens
            .verify(&f.tokens.issue(user, session, "reader")?.token)?;
        let b = f
            .tokens
            .verify(&f.tokens.issue(user, session, "reader")?.token)?;
        assert_ne!(a.jti, b.jti);
        Ok(())
    }

    #[test]
    fn old_key_still_verifies_after_rotation() -> Result<(), AuthError> {
        let old = fixture()?;
        let issued = old.tokens.issue(Uuid::new_v4(), Uuid::new_v4(), "reader")?;
        let new_key = SigningKey::generate()?;
        let rotated = AccessTokens::new(
            &AuthConfig::default(),
            &new_key,
            std::slice::from_ref(&old.key),
        )?;
        rotated.verify(&issued.token)?;
        let retired = AccessTokens::new(&AuthConfig::default(), &new_key, &[])?;
        assert_invalid(retired.verify(&issued.token));
        Ok(())
    }

    #[test]
    fn alg_none_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        for alg in ["none", "None", "NONE"] {
            let header = json!({"alg": alg, "typ": "at+jwt", "kid": f.key.kid()});
            let token = format!("{}.{}.", b64_json(&header), b64_json(&valid_claims()));
            assert_invalid(f.tokens.verify(&token));
        }
        Ok(())
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": f.key.kid()});
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&valid_claims()));
        let jwk_text = f.key.public_jwk().to_string();
        for secret in [f.key.public_point(), jwk_text.as_bytes()] {
            let mac = hmac::sign(
                &hmac::Key::new(hmac::HMAC_SHA256, secret),
                signing_input.as_bytes(),
            );
            let token = format!("{signing_input}.{}", b64(mac.as_ref()));
            assert_invalid(f.tokens.verify(&token));
        }
        Ok(())
    }

    #[test]
    fn rs256_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": f.key.kid()});
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&valid_claims()));
        let mut signature = vec![0_u8; rsa.public_modulus_len()];
        rsa.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            signing_input.as_bytes(),
            &mut signature,
        )
        .map_err(|e| AuthError::Internal(e.to_string()))?;
        let token = format!("{signing_input}.{}", b64(&signature));
        assert_invalid(f.tokens.verify(&token));
        Ok(())
    }

    #[test]
    fn expired_token_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let long_ago = Utc::now().timestamp() - 900 - 31;
        let issued = f
            .tokens
            .issue_at(Uuid::new_v4(), Uuid::new_v4(), "reader", long_ago)?;
        assert!(matches!(
            f.tokens.verify(&issued.token),
            Err(AuthError::TokenExpired)
        ));
        Ok(())
    }

    #[test]
    fn just_expired_token_is_within_leeway() -> Result<(), AuthError> {
        let f = fixture()?;
        let recently = Utc::now().timestamp() - 900 - 5;
        let issued = f
            .tokens
            .issue_at(Uuid::new_v4(), Uuid::new_v4(), "reader", recently)?;
        f.tokens.verify(&issued.token)?;
        Ok(())
    }

    #[test]
    fn wrong_audience_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let other = AuthConfig {
            audience: "someone-else".to_owned(),
            ..AuthConfig::default()
        };
        let issued = AccessTokens::new(&other, &f.key, &[])?.issue(
            Uuid::new_v4(),
            Uuid::new_v4(),
            "reader",
        )?;
        assert_invalid(f.tokens.verify(&issued.token));
        Ok(())
    }

    #[test]
    fn wrong_issuer_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let other = AuthConfig {
            issuer: "not-herald".to_owned(),
            ..AuthConfig::default()
        };
        let issued = AccessTokens::new(&other, &f.key, &[])?.issue(
            Uuid::new_v4(),
            Uuid::new_v4(),
            "reader",
        )?;
        assert_invalid(f.tokens.verify(&issued.token));
        Ok(())
    }

    #[test]
    fn unknown_kid_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let stranger = fixture()?;
        let issued = stranger
            .tokens
            .issue(Uuid::new_v4(), Uuid::new_v4(), "reader")?;
        assert_invalid(f.tokens.verify(&issued.token));
        Ok(())
    }

    #[test]
    fn other_key_claiming_our_kid_is_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let impostor = SigningKey::generate()?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(f.key.kid().to_owned());
        header.typ = Some(TOKEN_TYPE.to_owned());
        let token = jsonwebtoken::encode(
            &header,
            &valid_claims(),
            &EncodingKey::from_ec_der(impostor.pkcs8_der()),
        )
        .map_err(|e| AuthError::Internal(e.to_string()))?;
        assert_invalid(f.tokens.verify(&token));
        Ok(())
    }

    #[test]
    fn tampered_claims_are_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let issued = f.tokens.issue(Uuid::new_v4(), Uuid::new_v4(), "reader")?;
        let parts: Vec<&str> = issued.token.split('.').collect();
        let mut claims = valid_claims();
        claims["role"] = json!("admin");
        let forged = format!("{}.{}.{}", parts[0], b64_json(&claims), parts[2]);
        assert_invalid(f.tokens.verify(&forged));
        Ok(())
    }

    #[test]
    fn missing_typ_or_kid_and_junk_are_refused() -> Result<(), AuthError> {
        let f = fixture()?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(f.key.kid().to_owned());
        header.typ = Some("JWT".to_owned());
        let key = EncodingKey::from_ec_der(f.key.pkcs8_der());
        let wrong_typ = jsonwebtoken::encode(&header, &valid_claims(), &key)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        assert_invalid(f.tokens.verify(&wrong_typ));
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = None;
        let no_kid = jsonwebtoken::encode(&header, &valid_claims(), &key)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        assert_invalid(f.tokens.verify(&no_kid));
        for junk in ["", "a.b.c", "not a token", &"A".repeat(10_000)] {
            assert_invalid(f.tokens.verify(junk));
        }
        Ok(())
    }

    #[test]
    fn debug_hides_the_token() -> Result<(), AuthError> {
        let f = fixture()?;
        let issued = f.tokens.issue(Uuid::new_v4(), Uuid::new_v4(), "reader")?;
        assert!(!format!("{issued:?}").contains(&issued.token));
        assert!(format!("{:?}", f.tokens).contains(f.key.kid()));
        Ok(())
    }
}
