//! A fake Google and Apple: a local JWKS endpoint and RS256 ID tokens signed with its key.
//!
//! [`FakeIdProvider::start`] serves the provider key; [`FakeIdProvider::configure`] points
//! Herald's `[auth.google]` and `[auth.apple]` at it. Claims are plain JSON, so a test can
//! break any one of them.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald::config::Config;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The Google OAuth client id Herald is configured to accept.
pub const GOOGLE_CLIENT_ID: &str = "1234-web.apps.googleusercontent.com";
/// Google's issuer.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// The Apple bundle id Herald is configured to accept.
pub const APPLE_CLIENT_ID: &str = "app.herald.ios";
/// Apple's issuer.
pub const APPLE_ISSUER: &str = "https://appleid.apple.com";
/// The key id the fake provider publishes.
pub const PROVIDER_KID: &str = "fake-provider-key-1";

/// An RSA key that signs compact RS256 JWTs by hand, so the header can say anything.
pub struct RsaSigner {
    kid: &'static str,
    pair: RsaKeyPair,
}

impl RsaSigner {
    fn generate(kid: &'static str) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
        Self { kid, pair }
    }

    /// The key id this key signs with.
    pub fn kid(&self) -> &str {
        self.kid
    }

    /// The public key as an RS256 signature JWK.
    pub fn jwk(&self) -> Value {
        let public = self.pair.public_key();
        json!({
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        })
    }

    /// The RSA modulus, big-endian (what an HS256 confusion attack would use as the secret).
    pub fn modulus(&self) -> Vec<u8> {
        self.pair
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec()
    }

    /// A compact JWT of `header` and `claims`, with an RS256 signature by this key.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0_u8; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing");
        format!("{input}.{}", b64(&signature))
    }

    /// An ID token: `claims` under a normal RS256 header naming this key.
    pub fn id_token(&self, claims: &Value) -> String {
        self.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
            claims,
        )
    }
}

// RSA key generation is slow; every test in a binary shares these.
/// The key the fake provider publishes.
pub static PROVIDER_KEY: LazyLock<RsaSigner> = LazyLock::new(|| RsaSigner::generate(PROVIDER_KID));
/// A key the provider never published, that claims the provider's kid (a forger).
pub static IMPOSTOR_KEY: LazyLock<RsaSigner> = LazyLock::new(|| RsaSigner::generate(PROVIDER_KID));

/// A local JWKS endpoint that publishes [`PROVIDER_KEY`], standing in for Google and Apple.
pub struct FakeIdProvider {
    jwks_url: String,
    server: JoinHandle<()>,
}

impl FakeIdProvider {
    /// Serves the provider's JWKS on 127.0.0.1 at a random port.
    pub async fn start() -> Self {
        let document = json!({ "keys": [PROVIDER_KEY.jwk()] });
        let app = axum::Router::new().route(
            "/keys",
            get(move || {
                let document = document.clone();
                async move {
                    (
                        [(header::CACHE_CONTROL, "public, max-age=21600")],
                        axum::Json(document),
                    )
                        .into_response()
                }
            }),
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            jwks_url: format!("http://{addr}/keys"),
            server,
        }
    }

    /// Where the JWKS is served.
    pub fn jwks_url(&self) -> &str {
        &self.jwks_url
    }

    /// Enables Google and Apple sign-in in `config`, with this server as both providers' key source.
    pub fn configure(&self, config: &mut Config) {
        config.auth.google.client_ids = vec![GOOGLE_CLIENT_ID.to_owned()];
        config.auth.google.jwks_url = self.jwks_url.clone();
        config.auth.google.issuers =
            vec![GOOGLE_ISSUER.to_owned(), "accounts.google.com".to_owned()];
        config.auth.apple.client_ids = vec![APPLE_CLIENT_ID.to_owned()];
        config.auth.apple.jwks_url = self.jwks_url.clone();
        config.auth.apple.issuer = APPLE_ISSUER.to_owned();
    }
}

impl Drop for FakeIdProvider {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_secs()).expect("time fits i64")
}

/// Claims of a valid Google ID token for `sub`, with `email` when given.
pub fn google_claims(sub: &str, email: Option<&str>) -> Value {
    let now = unix_now();
    let mut claims = json!({
        "iss": GOOGLE_ISSUER,
        "aud": GOOGLE_CLIENT_ID,
        "azp": GOOGLE_CLIENT_ID,
        "sub": sub,
        "iat": now,
        "exp": now + 3600,
    });
    if let Some(email) = email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!(true);
    }
    claims
}

/// Claims of a valid Apple ID token for `sub`, carrying the hash of `raw_nonce` as Apple does.
pub fn apple_claims(sub: &str, email: Option<&str>, raw_nonce: &str) -> Value {
    let now = unix_now();
    let mut claims = json!({
        "iss": APPLE_ISSUER,
        "aud": APPLE_CLIENT_ID,
        "sub": sub,
        "nonce": sha256_hex(raw_nonce),
        "nonce_supported": true,
        "iat": now,
        "exp": now + 600,
    });
    if let Some(email) = email {
        claims["email"] = json!(email);
        claims["email_verified"] = json!("true");
        claims["is_private_email"] = json!("false");
    }
    claims
}

/// Lowercase hex SHA-256, as Apple puts the app's nonce in the token.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// base64url without padding, as JWTs use.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding.
pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("base64url")
}
