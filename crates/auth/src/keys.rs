//! ES256 signing keys for access tokens and the JWKS document that publishes them.

use std::fmt;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::error::AuthError;

/// Length of an uncompressed P-256 point: 0x04, then 32 bytes of x and 32 of y.
const UNCOMPRESSED_POINT_LEN: usize = 65;

/// A P-256 private key (PKCS#8 DER) and its key id; `Debug` never shows the private part.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey {
    kid: String,
    pkcs8_der: Vec<u8>,
    public_point: Vec<u8>,
}

impl SigningKey {
    /// Generates a fresh random P-256 key.
    pub fn generate() -> Result<SigningKey, AuthError> {
        let document =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| AuthError::Internal("could not generate a P-256 key".to_owned()))?;
        SigningKey::from_pkcs8_der(document.as_ref().to_vec())
    }

    /// Loads a stored key from its PKCS#8 DER bytes; the kid is derived, so it always matches.
    pub fn from_pkcs8_der(pkcs8_der: Vec<u8>) -> Result<SigningKey, AuthError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8_der)
            .map_err(|e| AuthError::Internal(format!("stored signing key rejected: {e}")))?;
        let public_point = pair.public_key().as_ref().to_vec();
        if public_point.len() != UNCOMPRESSED_POINT_LEN {
            return Err(AuthError::Internal(
                "signing key has an unexpected public key encoding".to_owned(),
            ));
        }
        let kid = hex::encode(Sha256::digest(&public_point))[..16].to_owned();
        Ok(SigningKey {
            kid,
            pkcs8_der,
            public_point,
        })
    }

    /// Key id: the first 16 hex characters of the SHA-256 of the public key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The private key as PKCS#8 DER, for storage.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8_der
    }

    /// The public key as an uncompressed SEC1 point (0x04 ‖ x ‖ y).
    pub fn public_point(&self) -> &[u8] {
        &self.public_point
    }

    /// The x coordinate, base64url without padding.
    pub(crate) fn x_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public_point[1..33])
    }

    /// The y coordinate, base64url without padding.
    pub(crate) fn y_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.public_point[33..])
    }

    /// The public key as a JWK (RFC 7517) for `/.well-known/jwks.json`.
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x_b64(),
            "y": self.y_b64(),
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("pkcs8_der", &"[redacted]")
            .finish()
    }
}

/// The JWKS document `{"keys": [...]}` listing the public halves of `keys`.
pub fn jwks_json(keys: &[SigningKey]) -> Value {
    json!({ "keys": keys.iter().map(SigningKey::public_jwk).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_key_reloads_with_the_same_kid() -> Result<(), AuthError> {
        let key = SigningKey::generate()?;
        assert_eq!(key.kid().len(), 16);
        assert!(key.kid().chars().all(|c| c.is_ascii_hexdigit()));
        let again = SigningKey::from_pkcs8_der(key.pkcs8_der().to_vec())?;
        assert_eq!(again, key);
        assert_ne!(SigningKey::generate()?.kid(), key.kid());
        Ok(())
    }

    #[test]
    fn junk_der_is_refused() {
        assert!(SigningKey::from_pkcs8_der(vec![0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
    }

    #[test]
    fn jwk_has_the_public_coordinates_only() -> Result<(), AuthError> {
        let key = SigningKey::generate()?;
        let jwk = key.public_jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], key.kid());
        assert!(jwk.get("d").is_none());
        let x = URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().unwrap_or_default())
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        assert_eq!(x.len(), 32);
        assert_eq!(&key.public_point()[1..33], x.as_slice());
        Ok(())
    }

    #[test]
    fn jwks_lists_every_key() -> Result<(), AuthError> {
        let keys = [SigningKey::generate()?, SigningKey::generate()?];
        let doc = jwks_json(&keys);
        let listed = doc["keys"].as_array().map(Vec::len);
        assert_eq!(listed, Some(2));
        assert_eq!(doc["keys"][1]["kid"], keys[1].kid());
        Ok(())
    }

    #[test]
    fn debug_hides_the_private_key() -> Result<(), AuthError> {
        let key = SigningKey::generate()?;
        let shown = format!("{key:?}");
        assert!(shown.contains("[redacted]"));
        assert!(shown.contains(key.kid()));
        assert!(!shown.contains(&format!("{:?}", key.pkcs8_der())));
        Ok(())
    }
}
