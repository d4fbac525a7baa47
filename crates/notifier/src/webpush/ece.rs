//! RFC 8291 message encryption for Web Push, using the RFC 8188 `aes128gcm` content coding.

use std::fmt;

use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::agreement::{self, ECDH_P256, EphemeralPrivateKey, PrivateKey, UnparsedPublicKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::rand::{self, SystemRandom};
use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Length of an uncompressed P-256 point (`0x04 || X || Y`).
pub const P256_POINT_LEN: usize = 65;
/// Length of the Web Push authentication secret.
pub const AUTH_SECRET_LEN: usize = 16;
/// Length of the RFC 8188 salt.
pub const SALT_LEN: usize = 16;
/// Record size written in the header; one record carries the whole message.
pub const RECORD_SIZE: u32 = 4096;
/// Bytes of the `aes128gcm` header: salt, record size, key id length, sender public key.
pub const HEADER_LEN: usize = SALT_LEN + 4 + 1 + P256_POINT_LEN;
/// Largest plaintext that keeps the body within the 4096 octets push services must accept (RFC 8291 §4).
pub const MAX_PLAINTEXT_LEN: usize = 4096 - HEADER_LEN - TAG_LEN - 1;

const TAG_LEN: usize = 16;
const LAST_RECORD_DELIMITER: u8 = 0x02;
const RECORD_DELIMITER: u8 = 0x01;
const KEY_INFO_PREFIX: &[u8] = b"WebPush: info\0";
const CEK_INFO: &[u8] = b"Content-Encoding: aes128gcm\0";
const NONCE_INFO: &[u8] = b"Content-Encoding: nonce\0";

/// Base64url that accepts input with or without `=` padding.
pub(crate) const BASE64URL_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why encrypting or decrypting a push message failed.
#[derive(Debug, thiserror::Error)]
pub enum PushCryptoError {
    /// The plaintext does not fit in one Web Push message.
    #[error("payload is {len} bytes, the limit is {max}")]
    PayloadTooLarge {
        /// Length of the rejected payload.
        len: usize,
        /// Largest accepted payload.
        max: usize,
    },
    /// The receiver's private key could not be read.
    #[error("invalid receiver private key")]
    InvalidPrivateKey,
    /// The body is not a well-formed `aes128gcm` message.
    #[error("malformed aes128gcm body: {0}")]
    Malformed(&'static str),
    /// Authentication failed: wrong keys or a tampered body.
    #[error("decryption failed (wrong key or tampered body)")]
    Decryption,
    /// The operating system or the crypto library failed (randomness, key generation, ECDH).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

/// What is wrong with one subscription key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyProblem {
    /// Not base64url (padded or unpadded).
    #[error("not base64url")]
    NotBase64Url,
    /// Decoded to the wrong number of bytes.
    #[error("wrong length: {actual} bytes, expected {expected}")]
    WrongLength {
        /// Bytes required.
        expected: usize,
        /// Bytes found.
        actual: usize,
    },
    /// A P-256 point that is not in the uncompressed `0x04 || X || Y` form.
    #[error("not an uncompressed P-256 point")]
    NotUncompressed,
    /// Coordinates that are not a point on P-256.
    #[error("not a point on the P-256 curve")]
    NotOnCurve,
}

/// A subscription key that failed validation, naming the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The `p256dh` key is invalid.
    #[error("invalid p256dh key: {0}")]
    P256dh(KeyProblem),
    /// The `auth` secret is invalid.
    #[error("invalid auth secret: {0}")]
    Auth(KeyProblem),
}

/// A browser subscription's validated `p256dh` public key and `auth` secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionKeys {
    p256dh: [u8; P256_POINT_LEN],
    auth: [u8; AUTH_SECRET_LEN],
}

impl SubscriptionKeys {
    /// Parses the base64url `keys.p256dh` and `keys.auth` of a browser `PushSubscription`.
    pub fn parse(p256dh_b64url: &str, auth_b64url: &str) -> Result<Self, KeyError> {
        let p256dh = BASE64URL_LENIENT
            .decode(p256dh_b64url.trim())
            .map_err(|_| KeyError::P256dh(KeyProblem::NotBase64Url))?;
        let auth = BASE64URL_LENIENT
            .decode(auth_b64url.trim())
            .map_err(|_| KeyError::Auth(KeyProblem::NotBase64Url))?;
        Self::from_bytes(&p256dh, &auth)
    }

    /// Validates raw key bytes: a 65-byte uncompressed P-256 point and a 16-byte secret.
    pub fn from_bytes(p256dh: &[u8], auth: &[u8]) -> Result<Self, KeyError> {
        let p256dh: [u8; P256_POINT_LEN] = p256dh.try_into().map_err(|_| {
            KeyError::P256dh(if p256dh.len() == 33 && matches!(p256dh[0], 0x02 | 0x03) {
                KeyProblem::NotUncompressed
            } else {
                KeyProblem::WrongLength {
                    expected: P256_POINT_LEN,
                    actual: p256dh.len(),
                }
            })
        })?;
        if p256dh[0] != 0x04 {
            return Err(KeyError::P256dh(KeyProblem::NotUncompressed));
        }
        agreement::ParsedPublicKey::try_from(&UnparsedPublicKey::new(&ECDH_P256, &p256dh))
            .map_err(|_| KeyError::P256dh(KeyProblem::NotOnCurve))?;
        let auth: [u8; AUTH_SECRET_LEN] = auth.try_into().map_err(|_| {
            KeyError::Auth(KeyProblem::WrongLength {
                expected: AUTH_SECRET_LEN,
                actual: auth.len(),
            })
        })?;
        Ok(Self { p256dh, auth })
    }

    /// The receiver's uncompressed P-256 public key.
    pub fn p256dh(&self) -> &[u8; P256_POINT_LEN] {
        &self.p256dh
    }

    /// The receiver's authentication secret.
    pub fn auth(&self) -> &[u8; AUTH_SECRET_LEN] {
        &self.auth
    }
}

impl fmt::Debug for SubscriptionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriptionKeys")
            .field(
                "p256dh",
                &base64::prelude::BASE64_URL_SAFE_NO_PAD.encode(self.p256dh),
            )
            .field("auth", &"[redacted]")
            .finish()
    }
}

/// Encrypts `plaintext` for `subscription` with a fresh ephemeral key and random salt.
pub fn encrypt(
    subscription: &SubscriptionKeys,
    plaintext: &[u8],
) -> Result<Vec<u8>, PushCryptoError> {
    check_plaintext_len(plaintext)?;
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    rand::fill(&mut salt).map_err(|_| PushCryptoError::Crypto("random salt"))?;
    let ephemeral = EphemeralPrivateKey::generate(&ECDH_P256, &rng)
        .map_err(|_| PushCryptoError::Crypto("ephemeral key generation"))?;
    let as_public = ephemeral_public(ephemeral.compute_public_key())?;
    let peer = UnparsedPublicKey::new(&ECDH_P256, subscription.p256dh());
    agreement::agree_ephemeral(ephemeral, peer, PushCryptoError::Crypto("ECDH"), |secret| {
        seal(subscription, &as_public, secret, &salt, plaintext)
    })
}

/// Encrypts with a caller-chosen sender key and salt; only for reproducing test vectors.
#[doc(hidden)]
pub fn encrypt_with_key_and_salt(
    subscription: &SubscriptionKeys,
    as_private_raw: &[u8],
    salt: &[u8; SALT_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, PushCryptoError> {
    check_plaintext_len(plaintext)?;
    let key = PrivateKey::from_private_key(&ECDH_P256, as_private_raw)
        .map_err(|_| PushCryptoError::InvalidPrivateKey)?;
    let as_public = ephemeral_public(key.compute_public_key())?;
    let peer = UnparsedPublicKey::new(&ECDH_P256, subscription.p256dh());
    agreement::agree(&key, peer, PushCryptoError::Crypto("ECDH"), |secret| {
        seal(subscription, &as_public, secret, salt, plaintext)
    })
}

/// Decrypts an `aes128gcm` Web Push body as the receiving browser would.
///
/// `ua_private` is the receiver's P-256 private key: a raw 32-byte scalar, or PKCS#8 / RFC 5915 DER.
pub fn decrypt(
    ua_private: &[u8],
    auth_secret: &[u8],
    body: &[u8],
) -> Result<Vec<u8>, PushCryptoError> {
    let key = if ua_private.len() == 32 {
        PrivateKey::from_private_key(&ECDH_P256, ua_private)
    } else {
        PrivateKey::from_private_key_der(&ECDH_P256, ua_private)
    }
    .map_err(|_| PushCryptoError::InvalidPrivateKey)?;
    let ua_public = key
        .compute_public_key()
        .map_err(|_| PushCryptoError::InvalidPrivateKey)?;
    if auth_secret.len() != AUTH_SECRET_LEN {
        return Err(PushCryptoError::Malformed("auth secret must be 16 bytes"));
    }

    let (salt, rest) = body
        .split_first_chunk::<SALT_LEN>()
        .ok_or(PushCryptoError::Malformed("truncated header"))?;
    let (rs, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(PushCryptoError::Malformed("truncated header"))?;
    let (&idlen, rest) = rest
        .split_first()
        .ok_or(PushCryptoError::Malformed("truncated header"))?;
    let record_size = u32::from_be_bytes(*rs) as usize;
    if record_size <= TAG_LEN + 1 {
        return Err(PushCryptoError::Malformed("record size too small"));
    }
    if usize::from(idlen) != P256_POINT_LEN {
        return Err(PushCryptoError::Malformed(
            "key id is not a P-256 public key",
        ));
    }
    let (as_public, records) = rest
        .split_first_chunk::<P256_POINT_LEN>()
        .ok_or(PushCryptoError::Malformed("truncated header"))?;
    if records.is_empty() {
        return Err(PushCryptoError::Malformed("no records"));
    }

    let peer = UnparsedPublicKey::new(&ECDH_P256, as_public);
    let (cek, base_nonce) = agreement::agree(
        &key,
        peer,
        PushCryptoError::Malformed("sender key is not a P-256 point"),
        |secret| derive_keys(auth_secret, ua_public.as_ref(), as_public, secret, salt),
    )?;
    let aead = aead_key(&cek)?;

    let record_count = records.len().div_ceil(record_size);
    let mut plaintext = Vec::with_capacity(records.len());
    for (seq, record) in records.chunks(record_size).enumerate() {
        if record.len() <= TAG_LEN {
            return Err(PushCryptoError::Malformed("record shorter than its tag"));
        }
        let mut buf = record.to_vec();
        let opened = aead
            .open_in_place(record_nonce(&base_nonce, seq), Aad::empty(), &mut buf)
            .map_err(|_| PushCryptoError::Decryption)?;
        let end = opened
            .iter()
            .rposition(|&b| b != 0)
            .ok_or(PushCryptoError::Malformed(
                "record without padding delimiter",
            ))?;
        let is_last = seq + 1 == record_count;
        match (opened[end], is_last) {
            (LAST_RECORD_DELIMITER, true) | (RECORD_DELIMITER, false) => {}
            _ => return Err(PushCryptoError::Malformed("wrong padding delimiter")),
        }
        plaintext.extend_from_slice(&opened[..end]);
    }
    Ok(plaintext)
}

fn check_plaintext_len(plaintext: &[u8]) -> Result<(), PushCryptoError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(PushCryptoError::PayloadTooLarge {
            len: plaintext.len(),
            max: MAX_PLAINTEXT_LEN,
        });
    }
    Ok(())
}

fn ephemeral_public(
    public: Result<agreement::PublicKey, aws_lc_rs::error::Unspecified>,
) -> Result<[u8; P256_POINT_LEN], PushCryptoError> {
    let public = public.map_err(|_| PushCryptoError::Crypto("public key"))?;
    public
        .as_ref()
        .try_into()
        .map_err(|_| PushCryptoError::Crypto("public key is not an uncompressed P-256 point"))
}

/// Builds header || AES-128-GCM(plaintext || 0x02) || tag in one allocation.
fn seal(
    subscription: &SubscriptionKeys,
    as_public: &[u8; P256_POINT_LEN],
    ecdh_secret: &[u8],
    salt: &[u8; SALT_LEN],
    plaintext: &[u8],
) -> Result<Vec<u8>, PushCryptoError> {
    let (cek, nonce) = derive_keys(
        subscription.auth(),
        subscription.p256dh(),
        as_public,
        ecdh_secret,
        salt,
    )?;
    let mut body = Vec::with_capacity(HEADER_LEN + plaintext.len() + 1 + TAG_LEN);
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(P256_POINT_LEN as u8);
    body.extend_from_slice(as_public);
    body.extend_from_slice(plaintext);
    body.push(LAST_RECORD_DELIMITER);
    let tag = aead_key(&cek)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut body[HEADER_LEN..],
        )
        .map_err(|_| PushCryptoError::Crypto("AES-GCM seal"))?;
    body.extend_from_slice(tag.as_ref());
    Ok(body)
}

/// RFC 8291 §3.3–3.4 and RFC 8188 §2.2–2.3: content-encryption key and base nonce.
fn derive_keys(
    auth_secret: &[u8],
    ua_public: &[u8],
    as_public: &[u8],
    ecdh_secret: &[u8],
    salt: &[u8],
) -> Result<([u8; 16], [u8; NONCE_LEN]), PushCryptoError> {
    let mut ikm = [0u8; 32];
    Salt::new(HKDF_SHA256, auth_secret)
        .extract(ecdh_secret)
        .expand(&[KEY_INFO_PREFIX, ua_public, as_public], OutLen(ikm.len()))
        .and_then(|okm| okm.fill(&mut ikm))
        .map_err(|_| PushCryptoError::Crypto("HKDF"))?;
    let prk = Salt::new(HKDF_SHA256, salt).extract(&ikm);
    let mut cek = [0u8; 16];
    let mut nonce = [0u8; NONCE_LEN];
    prk.expand(&[CEK_INFO], OutLen(cek.len()))
        .and_then(|okm| okm.fill(&mut cek))
        .and_then(|()| prk.expand(&[NONCE_INFO], OutLen(nonce.len())))
        .and_then(|okm| okm.fill(&mut nonce))
        .map_err(|_| PushCryptoError::Crypto("HKDF"))?;
    Ok((cek, nonce))
}

fn aead_key(cek: &[u8; 16]) -> Result<LessSafeKey, PushCryptoError> {
    UnboundKey::new(&AES_128_GCM, cek)
        .map(LessSafeKey::new)
        .map_err(|_| PushCryptoError::Crypto("AES key"))
}

/// RFC 8188 §2.3: the record sequence number XORed into the low bytes of the base nonce.
fn record_nonce(base: &[u8; NONCE_LEN], seq: usize) -> Nonce {
    let mut nonce = *base;
    let seq = (seq as u64).to_be_bytes();
    for (n, s) in nonce[NONCE_LEN - seq.len()..].iter_mut().zip(seq) {
        *n ^= s;
    }
    Nonce::assume_unique_for_key(nonce)
}

struct OutLen(usize);

impl KeyType for OutLen {
    fn len(&self) -> usize {
        self.0
    }
}
