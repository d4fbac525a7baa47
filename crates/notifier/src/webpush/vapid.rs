//! RFC 8292 VAPID: the application server's ES256 identity, with one cached JWT per push-service origin.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use aws_lc_rs::agreement::{self, ECDH_P256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::ece::{BASE64URL_LENIENT, P256_POINT_LEN};

/// How long a signed token is valid (RFC 8292 allows at most 24 hours).
pub const TOKEN_LIFETIME_SECS: i64 = 12 * 3600;
/// A cached token is replaced once it is this close to its expiry.
pub const REFRESH_BEFORE_EXPIRY_SECS: i64 = 3600;
/// The longest expiry a push service accepts (RFC 8292 §2).
pub const MAX_EXPIRY_SECS: i64 = 24 * 3600;

/// base64url of `{"typ":"JWT","alg":"ES256"}`.
const JWT_HEADER_B64: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJFUzI1NiJ9";
const ES256_SIGNATURE_LEN: usize = 64;
/// Bound on cached origins: stale tokens are dropped first, and if that is not enough, all of them.
const MAX_CACHED_ORIGINS: usize = 1024;

/// Why a VAPID key, token or header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VapidError {
    /// The private key could not be read or is not a P-256 key.
    #[error("invalid VAPID private key")]
    InvalidKey,
    /// The crypto library failed (key generation, serialization, signing).
    #[error("VAPID cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// The subject is not a `mailto:` or `https:` URI.
    #[error("VAPID subject must be a mailto: or https: URI")]
    InvalidSubject,
    /// The endpoint has no http(s) origin to use as the audience.
    #[error("push endpoint has no http(s) origin")]
    EndpointWithoutOrigin,
    /// The `Authorization` header is not `vapid t=<jwt>, k=<key>`.
    #[error("malformed VAPID authorization: {0}")]
    Malformed(&'static str),
    /// The JWT signature does not verify with the `k` key.
    #[error("VAPID JWT signature does not verify")]
    BadSignature,
    /// The token was issued for another push-service origin.
    #[error("VAPID audience is {actual:?}, expected {expected:?}")]
    WrongAudience {
        /// The endpoint's origin.
        expected: String,
        /// The token's `aud` claim.
        actual: String,
    },
    /// The token's `exp` is not in the future.
    #[error("VAPID token expired")]
    Expired,
    /// The token's `exp` is more than 24 hours ahead.
    #[error("VAPID token expiry is more than 24 hours ahead")]
    ExpiryTooFar,
}

/// The application server's P-256 signing key pair.
pub struct VapidKeys {
    key_pair: EcdsaKeyPair,
    public: [u8; P256_POINT_LEN],
}

impl VapidKeys {
    /// Generates a new random key pair.
    pub fn generate() -> Result<Self, VapidError> {
        let key_pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
            .map_err(|_| VapidError::Crypto("key generation"))?;
        Self::from_key_pair(key_pair)
    }

    /// Reads a PKCS#8 (v1 or v2) DER private key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, VapidError> {
        let key_pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|_| VapidError::InvalidKey)?;
        Self::from_key_pair(key_pair)
    }

    /// Reads a raw 32-byte big-endian private scalar (the form `web-push generate-vapid-keys` prints).
    pub fn from_raw_private_key(scalar: &[u8]) -> Result<Self, VapidError> {
        let public = agreement::PrivateKey::from_private_key(&ECDH_P256, scalar)
            .map_err(|_| VapidError::InvalidKey)?
            .compute_public_key()
            .map_err(|_| VapidError::InvalidKey)?;
        let key_pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            scalar,
            public.as_ref(),
        )
        .map_err(|_| VapidError::InvalidKey)?;
        Self::from_key_pair(key_pair)
    }

    /// Serializes the private key as PKCS#8 v1 DER, for storing in configuration.
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, VapidError> {
        self.key_pair
            .to_pkcs8v1()
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|_| VapidError::Crypto("PKCS#8 serialization"))
    }

    /// The uncompressed public point.
    pub fn public_key(&self) -> &[u8; P256_POINT_LEN] {
        &self.public
    }

    /// The public key as unpadded base64url: the browser's `applicationServerKey`.
    pub fn public_key_base64url(&self) -> String {
        BASE64_URL_SAFE_NO_PAD.encode(self.public)
    }

    fn from_key_pair(key_pair: EcdsaKeyPair) -> Result<Self, VapidError> {
        let public = key_pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| VapidError::InvalidKey)?;
        Ok(Self { key_pair, public })
    }
}

impl fmt::Debug for VapidKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidKeys")
            .field("public", &self.public_key_base64url())
            .field("private", &"[redacted]")
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct JwtClaims {
    aud: String,
    exp: i64,
    sub: String,
}

#[derive(Deserialize)]
struct JwtHeader {
    alg: String,
    typ: Option<String>,
}

struct CachedToken {
    header: Arc<str>,
    exp: i64,
}

impl CachedToken {
    /// Usable if not near expiry, and not issued for a clock that has since gone backwards.
    fn is_fresh(&self, now: i64) -> bool {
        now < self.exp - REFRESH_BEFORE_EXPIRY_SECS && self.exp - now <= MAX_EXPIRY_SECS
    }
}

/// Signs VAPID `Authorization` headers, reusing one token per push-service origin.
pub struct VapidSigner {
    keys: VapidKeys,
    subject: String,
    public_b64: String,
    rng: SystemRandom,
    cache: RwLock<HashMap<String, CachedToken>>,
}

impl VapidSigner {
    /// Creates a signer; `subject` must be a `mailto:` or `https:` URI identifying the sender.
    pub fn new(keys: VapidKeys, subject: String) -> Result<Self, VapidError> {
        if !is_valid_subject(&subject) {
            return Err(VapidError::InvalidSubject);
        }
        Ok(Self {
            public_b64: keys.public_key_base64url(),
            keys,
            subject,
            rng: SystemRandom::new(),
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// The signing keys.
    pub fn keys(&self) -> &VapidKeys {
        &self.keys
    }

    /// The `Authorization` value (`vapid t=<jwt>, k=<key>`) for `endpoint`, from cache while fresh.
    pub fn authorization(
        &self,
        endpoint: &Url,
        now: DateTime<Utc>,
    ) -> Result<Arc<str>, VapidError> {
        let origin = origin_of(endpoint)?;
        let now = now.timestamp();
        // The map is only ever updated by single inserts, so a poisoned lock still holds valid data.
        if let Some(token) = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&origin)
            .filter(|token| token.is_fresh(now))
        {
            return Ok(Arc::clone(&token.header));
        }

        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(token) = cache.get(&origin).filter(|token| token.is_fresh(now)) {
            return Ok(Arc::clone(&token.header));
        }
        let exp = now + TOKEN_LIFETIME_SECS;
        let jwt = self.sign_jwt(&origin, exp)?;
        let header: Arc<str> = format!("vapid t={jwt}, k={}", self.public_b64).into();
        if cache.len() >= MAX_CACHED_ORIGINS {
            cache.retain(|_, token| token.is_fresh(now));
            if cache.len() >= MAX_CACHED_ORIGINS {
                cache.clear();
            }
        }
        cache.insert(
            origin,
            CachedToken {
                header: Arc::clone(&header),
                exp,
            },
        );
        Ok(header)
    }

    fn sign_jwt(&self, audience: &str, exp: i64) -> Result<String, VapidError> {
        let claims = serde_json::to_vec(&JwtClaims {
            aud: audience.to_owned(),
            exp,
            sub: self.subject.clone(),
        })
        .map_err(|_| VapidError::Crypto("claims serialization"))?;
        let mut jwt = String::with_capacity(256);
        jwt.push_str(JWT_HEADER_B64);
        jwt.push('.');
        BASE64_URL_SAFE_NO_PAD.encode_string(claims, &mut jwt);
        let signature = self
            .keys
            .key_pair
            .sign(&self.rng, jwt.as_bytes())
            .map_err(|_| VapidError::Crypto("ES256 signing"))?;
        jwt.push('.');
        BASE64_URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jwt);
        Ok(jwt)
    }
}

impl fmt::Debug for VapidSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VapidSigner")
            .field("keys", &self.keys)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The verified claims of a VAPID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VapidClaims {
    /// The push-service origin the token was issued for.
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
    /// The sender's contact URI.
    pub sub: String,
    /// The sender's uncompressed public key (the `k` parameter).
    pub public_key: [u8; P256_POINT_LEN],
}

/// Verifies a `vapid t=<jwt>, k=<key>` header for `endpoint` as a push service would.
pub fn verify_vapid(
    header_value: &str,
    endpoint: &Url,
    now: DateTime<Utc>,
) -> Result<VapidClaims, VapidError> {
    let (scheme, params) = header_value
        .trim()
        .split_once(char::is_whitespace)
        .ok_or(VapidError::Malformed("missing parameters"))?;
    if !scheme.eq_ignore_ascii_case("vapid") {
        return Err(VapidError::Malformed("scheme is not vapid"));
    }
    let (mut token, mut key) = (None, None);
    for param in params.split(',') {
        let (name, value) = param
            .split_once('=')
            .ok_or(VapidError::Malformed("parameter without a value"))?;
        let value = value.trim().trim_matches('"');
        match name.trim() {
            n if n.eq_ignore_ascii_case("t") => token = Some(value),
            n if n.eq_ignore_ascii_case("k") => key = Some(value),
            _ => {}
        }
    }
    let token = token.ok_or(VapidError::Malformed("missing t"))?;
    let key = key.ok_or(VapidError::Malformed("missing k"))?;

    let public_key: [u8; P256_POINT_LEN] = BASE64URL_LENIENT
        .decode(key)
        .ok()
        .and_then(|k| k.try_into().ok())
        .filter(|k: &[u8; P256_POINT_LEN]| k[0] == 0x04)
        .ok_or(VapidError::Malformed("k is not an uncompressed P-256 key"))?;

    let (signing_input, signature) = token
        .rsplit_once('.')
        .ok_or(VapidError::Malformed("JWT is not three parts"))?;
    let (header_b64, claims_b64) = signing_input
        .split_once('.')
        .ok_or(VapidError::Malformed("JWT is not three parts"))?;
    let header: JwtHeader = decode_json(header_b64, "JWT header")?;
    if header.alg != "ES256" || header.typ.is_some_and(|t| !t.eq_ignore_ascii_case("JWT")) {
        return Err(VapidError::Malformed("JWT is not ES256"));
    }
    let signature = BASE64_URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| VapidError::Malformed("JWT signature is not base64url"))?;
    if signature.len() != ES256_SIGNATURE_LEN {
        return Err(VapidError::Malformed("JWT signature is not 64 bytes"));
    }
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public_key)
        .verify(signing_input.as_bytes(), &signature)
        .map_err(|_| VapidError::BadSignature)?;

    let claims: JwtClaims = decode_json(claims_b64, "JWT claims")?;
    let expected = origin_of(endpoint)?;
    if claims.aud != expected {
        return Err(VapidError::WrongAudience {
            expected,
            actual: claims.aud,
        });
    }
    let now = now.timestamp();
    if claims.exp <= now {
        return Err(VapidError::Expired);
    }
    if claims.exp - now > MAX_EXPIRY_SECS {
        return Err(VapidError::ExpiryTooFar);
    }
    if !is_valid_subject(&claims.sub) {
        return Err(VapidError::InvalidSubject);
    }
    Ok(VapidClaims {
        aud: claims.aud,
        exp: claims.exp,
        sub: claims.sub,
        public_key,
    })
}

/// `scheme://host[:port]`, the JWT audience for a push endpoint.
fn origin_of(endpoint: &Url) -> Result<String, VapidError> {
    match endpoint.scheme() {
        "https" | "http" => Ok(endpoint.origin().ascii_serialization()),
        _ => Err(VapidError::EndpointWithoutOrigin),
    }
}

fn is_valid_subject(subject: &str) -> bool {
    ["mailto:", "https:"].iter().any(|prefix| {
        subject.len() > prefix.len()
            && subject
                .get(..prefix.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
    })
}

fn decode_json<T: serde::de::DeserializeOwned>(
    b64: &str,
    what: &'static str,
) -> Result<T, VapidError> {
    let bytes = BASE64_URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| VapidError::Malformed(what))?;
    serde_json::from_slice(&bytes).map_err(|_| VapidError::Malformed(what))
}
