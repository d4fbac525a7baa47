//! Sign in with Google and Apple: ID token verification against the providers' published keys.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::{Mutex, RwLock};

use crate::config::AuthConfig;
use crate::error::AuthError;

/// How long to wait for a provider's JWKS.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Cache lifetime when the provider sends no `Cache-Control: max-age`.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3600);
/// Bounds on the provider's `max-age`, so `max-age=0` cannot make every login fetch.
const MIN_MAX_AGE: Duration = Duration::from_secs(60);
const MAX_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// A token naming an unknown key refetches the JWKS at most this often, so random kids cannot make us hammer the provider.
const UNKNOWN_KID_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// After a failed fetch, wait this long before trying again.
const FAILED_FETCH_BACKOFF: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted (Google's and Apple's are about 1–2 KB).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Largest ID token accepted.
const MAX_ID_TOKEN_LEN: usize = 16 * 1024;
/// Clock skew tolerated when checking `exp`.
const LEEWAY_SECONDS: u64 = 30;
/// Longest nonce an app may send.
const MAX_NONCE_LEN: usize = 256;

/// An identity provider Herald accepts ID tokens from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Sign in with Google.
    Google,
    /// Sign in with Apple.
    Apple,
}

impl Provider {
    /// The lowercase name used in URLs and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Apple => "apple",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider name that is neither `google` nor `apple`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identity provider {0:?}")]
pub struct UnknownProvider(pub String);

impl FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "google" => Ok(Provider::Google),
            "apple" => Ok(Provider::Apple),
            other => Err(UnknownProvider(other.to_owned())),
        }
    }
}

/// Who an ID token says the user is, once it has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// Which provider vouched for the user.
    pub provider: Provider,
    /// The provider's stable user id (`sub`).
    pub subject: String,
    /// Email, trimmed and lowercased, if the token carried one.
    pub email: Option<String>,
    /// Whether the provider has verified that email.
    pub email_verified: bool,
}

/// The ID token claims Herald reads; `iss`, `aud` and `exp` are checked by the JWT validation.
#[derive(Deserialize)]
struct IdClaims {
    sub: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default, deserialize_with = "bool_or_string")]
    email_verified: bool,
    #[serde(default)]
    nonce: Option<String>,
}

/// Apple sends `email_verified` as the string "true"; Google as a boolean.
fn bool_or_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(deserializer)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    })
}

#[derive(Clone)]
struct ProviderKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, ProviderKey>,
    fresh_until: Option<Instant>,
}

impl KeyCache {
    fn is_fresh(&self, now: Instant) -> bool {
        self.fresh_until.is_some_and(|until| now < until)
    }

    /// Whether keys past their freshness may still verify while the provider cannot be
    /// reached: only for `max_stale` after they went stale. A provider that dropped a key
    /// (leaked, rotated out) during an outage stops being overruled when the bound runs out.
    fn is_usable_stale(&self, now: Instant, max_stale: Duration) -> bool {
        self.fresh_until
            .is_some_and(|until| now < until.checked_add(max_stale).unwrap_or(until))
    }
}

#[derive(Default)]
struct FetchState {
    last_unknown_kid_refetch: Option<Instant>,
    last_failure: Option<Instant>,
}

struct ProviderKeys {
    provider: Provider,
    jwks_url: String,
    issuers: Vec<String>,
    client_ids: Vec<String>,
    max_stale: Duration,
    cache: RwLock<KeyCache>,
    // Held across a fetch so concurrent logins wait for one request instead of each sending their own.
    fetch: Mutex<FetchState>,
}

impl ProviderKeys {
    fn new(
        provider: Provider,
        jwks_url: &str,
        issuers: Vec<String>,
        client_ids: &[String],
        max_stale: Duration,
    ) -> Self {
        Self {
            provider,
            jwks_url: jwks_url.to_owned(),
            issuers,
            client_ids: client_ids.to_vec(),
            max_stale,
            cache: RwLock::new(KeyCache::default()),
            fetch: Mutex::new(FetchState::default()),
        }
    }
}

/// Verifies Google and Apple ID tokens, caching each provider's signing keys.
pub struct IdTokenVerifier {
    http: reqwest::Client,
    google: ProviderKeys,
    apple: ProviderKeys,
}

impl fmt::Debug for IdTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdTokenVerifier")
            .field("google_jwks_url", &self.google.jwks_url)
            .field("apple_jwks_url", &self.apple.jwks_url)
            .finish_non_exhaustive()
    }
}

fn invalid(reason: &str) -> AuthError {
    AuthError::InvalidIdToken(reason.to_owned())
}

/// Which JWKS hosts may be on non-public addresses: only those configured as an IP literal or
/// `localhost` (a local provider, as in tests). A named provider such as
/// `www.googleapis.com` is checked after every DNS answer and on every redirect hop.
fn key_fetch_policy(config: &AuthConfig) -> herald_netguard::AddressPolicy {
    let local_hosts = [&config.google.jwks_url, &config.apple.jwks_url]
        .into_iter()
        .filter_map(|url| reqwest::Url::parse(url).ok())
        .filter_map(|url| {
            let host = url.host_str()?.to_owned();
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok();
            (literal || host.eq_ignore_ascii_case("localhost")).then_some(host)
        })
        .collect::<Vec<_>>();
    herald_netguard::AddressPolicy::with_private_hosts(local_hosts)
}

/// The client that fetches providers' keys, guarded by the one blocked-address table every
/// outbound request shares (`herald-netguard`): public addresses only, at most 3 redirects,
/// each checked, no proxies.
fn key_fetch_client(config: &AuthConfig) -> reqwest::Client {
    herald_netguard::guard(reqwest::Client::builder(), &key_fetch_policy(config), 3)
        .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(FETCH_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
        .build()
        // Fails only when the TLS backend cannot start, where `reqwest::Client::new` panics too.
        .expect("the TLS backend initialises")
}

impl IdTokenVerifier {
    /// A verifier for the providers configured in `config`. Keys are fetched with a client of
    /// its own, guarded against non-public addresses; `_http` is no longer used for them.
    pub fn new(config: &AuthConfig, _http: reqwest::Client) -> IdTokenVerifier {
        let max_stale = Duration::from_secs(config.jwks_max_stale_seconds);
        IdTokenVerifier {
            http: key_fetch_client(config),
            google: ProviderKeys::new(
                Provider::Google,
                &config.google.jwks_url,
                config.google.issuers.clone(),
                &config.google.client_ids,
                max_stale,
            ),
            apple: ProviderKeys::new(
                Provider::Apple,
                &config.apple.jwks_url,
                vec![config.apple.issuer.clone()],
                &config.apple.client_ids,
                max_stale,
            ),
        }
    }

    /// Whether sign-in with `provider` is configured.
    pub fn is_enabled(&self, provider: Provider) -> bool {
        !self.keys_of(provider).client_ids.is_empty()
    }

    fn keys_of(&self, provider: Provider) -> &ProviderKeys {
        match provider {
            Provider::Google => &self.google,
            Provider::Apple => &self.apple,
        }
    }

    /// Verifies an ID token (signature, issuer, audience, expiry; nonce: raw for Google, hex SHA-256 for Apple) and returns who it names.
    pub async fn verify(
        &self,
        provider: Provider,
        id_token: &str,
        nonce: Option<&str>,
    ) -> Result<VerifiedIdentity, AuthError> {
        let keys = self.keys_of(provider);
        if keys.client_ids.is_empty() {
            return Err(AuthError::ProviderDisabled(provider));
        }
        if id_token.len() > MAX_ID_TOKEN_LEN {
            return Err(invalid("malformed token"));
        }
        let header =
            jsonwebtoken::decode_header(id_token).map_err(|_| invalid("malformed token"))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(invalid("unsupported algorithm"));
        }
        let kid = header.kid.ok_or_else(|| invalid("missing key id"))?;
        let key = self.key_for(keys, &kid).await?;
        if key.algorithm != header.alg {
            return Err(invalid("algorithm does not match the signing key"));
        }

        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.set_issuer(&keys.issuers);
        validation.set_audience(&keys.client_ids);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<IdClaims>(id_token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => invalid("expired"),
                ErrorKind::InvalidSignature => invalid("bad signature"),
                ErrorKind::InvalidAudience => invalid("issued for another client"),
                ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                ErrorKind::MissingRequiredClaim(claim) => {
                    AuthError::InvalidIdToken(format!("missing {claim} claim"))
                }
                _ => invalid("malformed claims"),
            })?
            .claims;

        check_nonce(provider, claims.nonce.as_deref(), nonce)?;
        if claims.sub.trim().is_empty() {
            return Err(invalid("missing sub claim"));
        }
        let email = claims
            .email
            .map(|e| e.trim().to_lowercase())
            .filter(|e| !e.is_empty());
        Ok(VerifiedIdentity {
            provider,
            subject: claims.sub,
            email_verified: email.is_some() && claims.email_verified,
            email,
        })
    }

    /// The key named `kid`, from cache when fresh, else from a (rate-limited) fetch.
    async fn key_for(&self, keys: &ProviderKeys, kid: &str) -> Result<ProviderKey, AuthError> {
        {
            let cache = keys.cache.read().await;
            if cache.is_fresh(Instant::now())
                && let Some(key) = cache.keys.get(kid)
            {
                return Ok(key.clone());
            }
        }

        let mut state = keys.fetch.lock().await;
        let now = Instant::now();
        // Another request may have refreshed the keys while this one waited for the lock.
        let (fresh, known, stale_ok) = {
            let cache = keys.cache.read().await;
            (
                cache.is_fresh(now),
                cache.keys.get(kid).cloned(),
                cache.is_usable_stale(now, keys.max_stale),
            )
        };
        // What an outage may fall back on: a key known from the last fetch, within the bound.
        let fallback = known.clone().filter(|_| fresh || stale_ok);
        if fresh && let Some(key) = &known {
            return Ok(key.clone());
        }
        let may_fetch = if fresh {
            state
                .last_unknown_kid_refetch
                .is_none_or(|at| now.duration_since(at) >= UNKNOWN_KID_REFETCH_INTERVAL)
        } else {
            state
                .last_failure
                .is_none_or(|at| now.duration_since(at) >= FAILED_FETCH_BACKOFF)
        };
        if !may_fetch {
            return match fallback {
                // Stale, but the provider is unreachable: an old key beats refusing every
                // login, for `auth.jwks_max_stale_seconds`.
                Some(key) => Ok(key),
                None if fresh => Err(invalid("unknown signing key")),
                None => Err(AuthError::JwksUnavailable(format!(
                    "{} keys could not be fetched recently",
                    keys.provider
                ))),
            };
        }
        if fresh {
            state.last_unknown_kid_refetch = Some(now);
        }
        match self.fetch(keys).await {
            Ok((fetched, max_age)) => {
                state.last_failure = None;
                let found = fetched.get(kid).cloned();
                *keys.cache.write().await = KeyCache {
                    keys: fetched,
                    fresh_until: Some(Instant::now() + max_age),
                };
                found.ok_or_else(|| invalid("unknown signing key"))
            }
            Err(e) => {
                state.last_failure = Some(now);
                tracing::warn!(provider = %keys.provider, error = %e, "JWKS fetch failed");
                if known.is_some() && fallback.is_none() {
                    tracing::warn!(provider = %keys.provider, "cached keys are past auth.jwks_max_stale_seconds; refusing sign-ins until the provider answers");
                }
                fallback.ok_or(e)
            }
        }
    }

    async fn fetch(
        &self,
        keys: &ProviderKeys,
    ) -> Result<(HashMap<String, ProviderKey>, Duration), AuthError> {
        let provider = keys.provider;
        let unavailable = |what: String| AuthError::JwksUnavailable(format!("{provider}: {what}"));
        let mut response = self
            .http
            .get(&keys.jwks_url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("HTTP {status}")));
        }
        let max_age = response
            .headers()
            .get_all(reqwest::header::CACHE_CONTROL)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(max_age)
            .unwrap_or(DEFAULT_MAX_AGE)
            .clamp(MIN_MAX_AGE, MAX_MAX_AGE);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| unavailable(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(unavailable("JWKS document too large".to_owned()));
            }
            body.extend_from_slice(&chunk);
        }
        let parsed = parse_jwks(&body).map_err(unavailable)?;
        tracing::debug!(%provider, keys = parsed.len(), ?max_age, "fetched JWKS");
        Ok((parsed, max_age))
    }
}

/// The `max-age` of one `Cache-Control` header value, if it has one.
fn max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|directive| {
        let (name, value) = directive.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("max-age") {
            value
                .trim()
                .trim_matches('"')
                .parse()
                .ok()
                .map(Duration::from_secs)
        } else {
            None
        }
    })
}

/// The signature keys of a JWKS document, by kid; keys Herald cannot use are skipped.
fn parse_jwks(body: &[u8]) -> Result<HashMap<String, ProviderKey>, String> {
    #[derive(Deserialize)]
    struct Document {
        keys: Vec<serde_json::Value>,
    }
    let document: Document =
        serde_json::from_slice(body).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
    let mut keys = HashMap::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else {
            continue;
        };
        if let Some((kid, key)) = usable_key(&jwk) {
            keys.insert(kid, key);
        }
    }
    if keys.is_empty() {
        return Err("JWKS has no usable RS256 or ES256 keys".to_owned());
    }
    Ok(keys)
}

fn usable_key(jwk: &Jwk) -> Option<(String, ProviderKey)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return None;
    }
    let (algorithm, declared_ok) = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => (
            Algorithm::RS256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)),
        ),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => (
            Algorithm::ES256,
            matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::ES256)),
        ),
        _ => return None,
    };
    if !declared_ok {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, ProviderKey { algorithm, key }))
}

/// Replay protection: the token must carry exactly the nonce the app says it used (Apple: its
/// SHA-256). An app that sends a nonce gets no sign-in from a token without one (a token
/// captured from a flow without a nonce cannot be replayed into one with), and a token with a
/// nonce needs the app to send it.
fn check_nonce(
    provider: Provider,
    in_token: Option<&str>,
    from_app: Option<&str>,
) -> Result<(), AuthError> {
    if from_app.is_some_and(|n| n.is_empty() || n.len() > MAX_NONCE_LEN) {
        return Err(invalid("the nonce must be 1 to 256 characters"));
    }
    match (in_token, from_app) {
        (None, None) => Ok(()),
        (Some(_), None) => Err(invalid("token has a nonce but none was given")),
        (None, Some(_)) => Err(invalid("token has no nonce")),
        (Some(in_token), Some(raw)) => {
            let expected = match provider {
                Provider::Google => raw.to_owned(),
                Provider::Apple => hex::encode(Sha256::digest(raw.as_bytes())),
            };
            if in_token == expected {
                Ok(())
            } else {
                Err(invalid("nonce mismatch"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, LazyLock, Mutex as StdMutex};

    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
    use axum::extract::State;
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::Utc;
    use serde_json::{Value, json};

    use super::*;
    use crate::keys::SigningKey;

    const GOOGLE_CLIENT: &str = "1234-web.apps.googleusercontent.com";
    const APPLE_CLIENT: &str = "app.herald.ios";

    struct TestKey {
        kid: &'static str,
        pair: RsaKeyPair,
    }

    impl TestKey {
        fn new(kid: &'static str) -> Self {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
            Self { kid, pair }
        }

        fn jwk(&self) -> Value {
            let public = self.pair.public_key();
            json!({
                "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                "n": b64(public.modulus().big_endian_without_leading_zero()),
                "e": b64(public.exponent().big_endian_without_leading_zero()),
            })
        }

        /// A compact RS256 JWT, signed by hand so the header can say anything.
        fn sign(&self, header: &Value, claims: &Value) -> String {
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

        fn token(&self, claims: &Value) -> String {
            self.sign(
                &json!({"alg": "RS256", "typ": "JWT", "kid": self.kid}),
                claims,
            )
        }
    }

    // RSA key generation is slow; share the keys between tests.
    static KEY_A: LazyLock<TestKey> = LazyLock::new(|| TestKey::new("key-a"));
    static KEY_B: LazyLock<TestKey> = LazyLock::new(|| TestKey::new("key-b"));

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn sha256_hex(s: &str) -> String {
        hex::encode(Sha256::digest(s.as_bytes()))
    }

    type ServerState = (Arc<AtomicUsize>, Arc<StdMutex<Value>>);

    /// A fake provider key endpoint that counts its requests and can rotate keys mid-test.
    struct JwksServer {
        url: String,
        hits: Arc<AtomicUsize>,
        document: Arc<StdMutex<Value>>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl JwksServer {
        async fn start(keys: Vec<Value>) -> Self {
            let hits = Arc::new(AtomicUsize::new(0));
            let document = Arc::new(StdMutex::new(json!({ "keys": keys })));
            let app = axum::Router::new()
                .route("/keys", get(serve_jwks))
                .with_state((hits.clone(), document.clone()));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let task = tokio::spawn(async move { axum::serve(listener, app).await });
            Self {
                url: format!("http://{addr}/keys"),
                hits,
                document,
                task,
            }
        }

        /// Stops listening: new connections are refused.
        async fn go_away(self) {
            self.task.abort();
            let _ = self.task.await;
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        fn publish(&self, keys: Vec<Value>) {
            *self.document.lock().unwrap() = json!({ "keys": keys });
        }
    }

    async fn serve_jwks(State((hits, document)): State<ServerState>) -> impl IntoResponse {
        hits.fetch_add(1, Ordering::SeqCst);
        let body = document.lock().unwrap().clone();
        (
            [(
                header::CACHE_CONTROL,
                "public, max-age=21600, must-revalidate",
            )],
            axum::Json(body),
        )
    }

    fn config_for(url: &str) -> AuthConfig {
        let mut config = AuthConfig::default();
        config.google.client_ids = vec!["other-client".to_owned(), GOOGLE_CLIENT.to_owned()];
        config.google.jwks_url = url.to_owned();
        config.apple.client_ids = vec![APPLE_CLIENT.to_owned()];
        config.apple.jwks_url = url.to_owned();
        config
    }

    async fn setup() -> (JwksServer, IdTokenVerifier) {
        let server = JwksServer::start(vec![KEY_A.jwk()]).await;
        let verifier = IdTokenVerifier::new(&config_for(&server.url), reqwest::Client::new());
        (server, verifier)
    }

    fn google_claims() -> Value {
        let now = Utc::now().timestamp();
        json!({
            "iss": "https://accounts.google.com",
            "aud": GOOGLE_CLIENT,
            "azp": GOOGLE_CLIENT,
            "sub": "110169484474386276334",
            "email": "  Reader@Example.COM ",
            "email_verified": true,
            "iat": now,
            "exp": now + 3600,
        })
    }

    fn apple_claims(raw_nonce: &str) -> Value {
        let now = Utc::now().timestamp();
        json!({
            "iss": "https://appleid.apple.com",
            "aud": APPLE_CLIENT,
            "sub": "001234.0a1b2c3d4e5f.1234",
            "email": "abc123@privaterelay.appleid.com",
            "email_verified": "true",
            "is_private_email": "true",
            "nonce": sha256_hex(raw_nonce),
            "nonce_supported": true,
            "iat": now,
            "exp": now + 600,
        })
    }

    fn refusal(result: Result<VerifiedIdentity, AuthError>) -> String {
        match result {
            Err(AuthError::InvalidIdToken(reason)) => reason,
            other => panic!("expected InvalidIdToken, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn valid_google_token_is_accepted() {
        let (server, verifier) = setup().await;
        let identity = verifier
            .verify(Provider::Google, &KEY_A.token(&google_claims()), None)
            .await
            .unwrap();
        assert_eq!(
            identity,
            VerifiedIdentity {
                provider: Provider::Google,
                subject: "110169484474386276334".to_owned(),
                email: Some("reader@example.com".to_owned()),
                email_verified: true,
            }
        );
        let mut short_issuer = google_claims();
        short_issuer["iss"] = json!("accounts.google.com");
        verifier
            .verify(Provider::Google, &KEY_A.token(&short_issuer), None)
            .await
            .unwrap();
        assert_eq!(server.hits(), 1, "keys are cached between tokens");
    }

    #[tokio::test]
    async fn google_nonce_must_match_exactly() {
        let (_server, verifier) = setup().await;
        let mut claims = google_claims();
        claims["nonce"] = json!("n-0S6_WzA2Mj");
        let token = KEY_A.token(&claims);
        verifier
            .verify(Provider::Google, &token, Some("n-0S6_WzA2Mj"))
            .await
            .unwrap();
        assert_eq!(
            refusal(
                verifier
                    .verify(Provider::Google, &token, Some("another"))
                    .await
            ),
            "nonce mismatch"
        );
        // Google's nonce is compared as is, not hashed the way Apple's is.
        let hashed = sha256_hex("n-0S6_WzA2Mj");
        refusal(
            verifier
                .verify(Provider::Google, &token, Some(&hashed))
                .await,
        );
    }

    #[tokio::test]
    async fn valid_apple_token_with_hashed_nonce_is_accepted() {
        let (_server, verifier) = setup().await;
        let token = KEY_A.token(&apple_claims("raw-nonce-from-the-app"));
        let identity = verifier
            .verify(Provider::Apple, &token, Some("raw-nonce-from-the-app"))
            .await
            .unwrap();
        assert_eq!(identity.provider, Provider::Apple);
        assert_eq!(identity.subject, "001234.0a1b2c3d4e5f.1234");
        assert_eq!(
            identity.email.as_deref(),
            Some("abc123@privaterelay.appleid.com")
        );
        assert!(identity.email_verified);
    }

    #[tokio::test]
    async fn apple_nonce_must_be_the_hash_of_the_raw_nonce() {
        let (_server, verifier) = setup().await;
        let token = KEY_A.token(&apple_claims("raw-nonce"));
        refusal(
            verifier
                .verify(Provider::Apple, &token, Some("other-nonce"))
                .await,
        );
        // The hash itself is not the raw nonce.
        let hashed = sha256_hex("raw-nonce");
        refusal(
            verifier
                .verify(Provider::Apple, &token, Some(&hashed))
                .await,
        );
    }

    #[tokio::test]
    async fn nonce_in_token_but_not_given_is_refused() {
        let (_server, verifier) = setup().await;
        let token = KEY_A.token(&apple_claims("raw-nonce"));
        refusal(verifier.verify(Provider::Apple, &token, None).await);
    }

    #[tokio::test]
    async fn nonce_given_but_not_in_token_is_refused() {
        let (_server, verifier) = setup().await;
        let token = KEY_A.token(&google_claims());
        refusal(
            verifier
                .verify(Provider::Google, &token, Some("expected"))
                .await,
        );
    }

    #[tokio::test]
    async fn wrong_audience_is_refused() {
        let (_server, verifier) = setup().await;
        let mut claims = google_claims();
        claims["aud"] = json!("someone-elses-client.apps.googleusercontent.com");
        let reason = refusal(
            verifier
                .verify(Provider::Google, &KEY_A.token(&claims), None)
                .await,
        );
        assert_eq!(reason, "issued for another client");
        // An Apple token for our Google client is not an Apple token for us either.
        let mut claims = apple_claims("n");
        claims["aud"] = json!(GOOGLE_CLIENT);
        refusal(
            verifier
                .verify(Provider::Apple, &KEY_A.token(&claims), Some("n"))
                .await,
        );
    }

    #[tokio::test]
    async fn wrong_issuer_is_refused() {
        let (_server, verifier) = setup().await;
        let mut claims = google_claims();
        claims["iss"] = json!("https://accounts.google.com.evil.example");
        assert_eq!(
            refusal(
                verifier
                    .verify(Provider::Google, &KEY_A.token(&claims), None)
                    .await
            ),
            "wrong issuer"
        );
        // Apple accepts exactly its one issuer, not Google's.
        let mut claims = apple_claims("n");
        claims["iss"] = json!("https://accounts.google.com");
        assert_eq!(
            refusal(
                verifier
                    .verify(Provider::Apple, &KEY_A.token(&claims), Some("n"))
                    .await
            ),
            "wrong issuer"
        );
        let mut claims = google_claims();
        claims.as_object_mut().unwrap().remove("iss");
        refusal(
            verifier
                .verify(Provider::Google, &KEY_A.token(&claims), None)
                .await,
        );
    }

    #[tokio::test]
    async fn expired_token_is_refused() {
        let (_server, verifier) = setup().await;
        let now = Utc::now().timestamp();
        let mut claims = google_claims();
        claims["iat"] = json!(now - 7200);
        claims["exp"] = json!(now - 3600);
        assert_eq!(
            refusal(
                verifier
                    .verify(Provider::Google, &KEY_A.token(&claims), None)
                    .await
            ),
            "expired"
        );
    }

    #[tokio::test]
    async fn other_key_with_the_same_kid_is_refused() {
        let (_server, verifier) = setup().await;
        let forged = KEY_B.sign(
            &json!({"alg": "RS256", "typ": "JWT", "kid": KEY_A.kid}),
            &google_claims(),
        );
        assert_eq!(
            refusal(verifier.verify(Provider::Google, &forged, None).await),
            "bad signature"
        );
    }

    #[tokio::test]
    async fn tokens_not_signed_with_rs256_or_es256_are_refused() {
        let (_server, verifier) = setup().await;
        let payload = b64(google_claims().to_string().as_bytes());
        let none = format!(
            "{}.{payload}.",
            b64(json!({"alg": "none", "kid": KEY_A.kid})
                .to_string()
                .as_bytes())
        );
        refusal(verifier.verify(Provider::Google, &none, None).await);
        let input = format!(
            "{}.{payload}",
            b64(json!({"alg": "HS256", "kid": KEY_A.kid})
                .to_string()
                .as_bytes())
        );
        let modulus = KEY_A
            .pair
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec();
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &modulus),
            input.as_bytes(),
        );
        let hs256 = format!("{input}.{}", b64(mac.as_ref()));
        refusal(verifier.verify(Provider::Google, &hs256, None).await);
        // An RSA key cannot verify a token whose header claims ES256.
        let es256_header = KEY_A.sign(&json!({"alg": "ES256", "kid": KEY_A.kid}), &google_claims());
        refusal(verifier.verify(Provider::Google, &es256_header, None).await);
        for junk in ["", "a.b.c", "not-a-jwt"] {
            refusal(verifier.verify(Provider::Google, junk, None).await);
        }
    }

    #[tokio::test]
    async fn es256_provider_keys_are_supported() {
        let ec = SigningKey::generate().unwrap();
        let server = JwksServer::start(vec![KEY_A.jwk(), ec.public_jwk()]).await;
        let verifier = IdTokenVerifier::new(&config_for(&server.url), reqwest::Client::new());
        let mut header = jsonwebtoken::Header::new(Algorithm::ES256);
        header.kid = Some(ec.kid().to_owned());
        let token = jsonwebtoken::encode(
            &header,
            &google_claims(),
            &jsonwebtoken::EncodingKey::from_ec_der(ec.pkcs8_der()),
        )
        .unwrap();
        let identity = verifier
            .verify(Provider::Google, &token, None)
            .await
            .unwrap();
        assert_eq!(identity.subject, "110169484474386276334");
    }

    #[tokio::test]
    async fn unknown_kid_refetches_at_most_once_a_minute() {
        let (server, verifier) = setup().await;
        verifier
            .verify(Provider::Google, &KEY_A.token(&google_claims()), None)
            .await
            .unwrap();
        assert_eq!(server.hits(), 1);

        // The provider rotates in a new key; a token signed with it triggers one refetch.
        server.publish(vec![KEY_A.jwk(), KEY_B.jwk()]);
        verifier
            .verify(Provider::Google, &KEY_B.token(&google_claims()), None)
            .await
            .unwrap();
        assert_eq!(server.hits(), 2);

        // Another unknown kid within the minute is refused without asking the provider.
        for kid in ["key-c", "key-d"] {
            let token = KEY_A.sign(&json!({"alg": "RS256", "kid": kid}), &google_claims());
            assert_eq!(
                refusal(verifier.verify(Provider::Google, &token, None).await),
                "unknown signing key"
            );
        }
        assert_eq!(server.hits(), 2);
        // Known keys keep working from the cache.
        verifier
            .verify(Provider::Google, &KEY_B.token(&google_claims()), None)
            .await
            .unwrap();
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn unknown_kid_after_first_fetch_refetches_once() {
        let (server, verifier) = setup().await;
        verifier
            .verify(Provider::Google, &KEY_A.token(&google_claims()), None)
            .await
            .unwrap();
        for (kid, expected_hits) in [("nope-1", 2), ("nope-2", 2)] {
            let token = KEY_A.sign(&json!({"alg": "RS256", "kid": kid}), &google_claims());
            refusal(verifier.verify(Provider::Google, &token, None).await);
            assert_eq!(server.hits(), expected_hits, "after {kid}");
        }
    }

    #[tokio::test]
    async fn concurrent_first_logins_share_one_fetch() {
        let (server, verifier) = setup().await;
        let verifier = Arc::new(verifier);
        let token = KEY_A.token(&google_claims());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (verifier, token) = (verifier.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                verifier.verify(Provider::Google, &token, None).await
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn provider_without_client_ids_is_disabled() {
        let server = JwksServer::start(vec![KEY_A.jwk()]).await;
        let mut config = config_for(&server.url);
        config.apple.client_ids.clear();
        let verifier = IdTokenVerifier::new(&config, reqwest::Client::new());
        assert!(!verifier.is_enabled(Provider::Apple));
        assert!(verifier.is_enabled(Provider::Google));
        let token = KEY_A.token(&apple_claims("n"));
        assert!(matches!(
            verifier.verify(Provider::Apple, &token, Some("n")).await,
            Err(AuthError::ProviderDisabled(Provider::Apple))
        ));
        assert_eq!(server.hits(), 0);
    }

    #[tokio::test]
    async fn unreachable_provider_is_reported_as_unavailable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let verifier = IdTokenVerifier::new(
            &config_for(&format!("http://{addr}/keys")),
            reqwest::Client::new(),
        );
        let token = KEY_A.token(&google_claims());
        assert!(matches!(
            verifier.verify(Provider::Google, &token, None).await,
            Err(AuthError::JwksUnavailable(_))
        ));
        // Within the backoff the provider is not asked again, and the answer is the same.
        assert!(matches!(
            verifier.verify(Provider::Google, &token, None).await,
            Err(AuthError::JwksUnavailable(_))
        ));
    }

    impl IdTokenVerifier {
        /// Moves the cached keys' freshness `by` into the past, as if that much time had gone.
        async fn age_keys(&self, provider: Provider, by: Duration) {
            let mut cache = self.keys_of(provider).cache.write().await;
            cache.fresh_until = cache.fresh_until.and_then(|until| until.checked_sub(by));
        }
    }

    #[tokio::test]
    async fn stale_keys_verify_only_for_the_configured_time_while_the_provider_is_away() {
        let server = JwksServer::start(vec![KEY_A.jwk()]).await;
        let mut config = config_for(&server.url);
        config.jwks_max_stale_seconds = 600;
        // A new connection per fetch, so the server going away is seen at once.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let verifier = IdTokenVerifier::new(&config, http);
        let token = KEY_A.token(&google_claims());
        verifier
            .verify(Provider::Google, &token, None)
            .await
            .unwrap();
        assert_eq!(server.hits(), 1);
        server.go_away().await;

        // The served max-age (6 h) has run out and 5 of the 10 stale minutes have gone: the
        // fetch fails, the old key still verifies, and so it does within the retry backoff.
        verifier
            .age_keys(Provider::Google, Duration::from_secs(21_600 + 300))
            .await;
        for _ in 0..2 {
            verifier
                .verify(Provider::Google, &token, None)
                .await
                .unwrap();
        }
        // Past the bound: refused as unavailable, fetching or not.
        verifier
            .age_keys(Provider::Google, Duration::from_secs(301))
            .await;
        for _ in 0..2 {
            assert!(matches!(
                verifier.verify(Provider::Google, &token, None).await,
                Err(AuthError::JwksUnavailable(_))
            ));
        }
    }

    #[tokio::test]
    async fn without_stale_time_an_unreachable_provider_stops_sign_ins_once_keys_expire() {
        let server = JwksServer::start(vec![KEY_A.jwk()]).await;
        let mut config = config_for(&server.url);
        config.jwks_max_stale_seconds = 0;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let verifier = IdTokenVerifier::new(&config, http);
        let token = KEY_A.token(&google_claims());
        verifier
            .verify(Provider::Google, &token, None)
            .await
            .unwrap();
        server.go_away().await;
        verifier
            .age_keys(Provider::Google, Duration::from_secs(21_601))
            .await;
        assert!(matches!(
            verifier.verify(Provider::Google, &token, None).await,
            Err(AuthError::JwksUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn a_nonce_the_app_sent_must_be_in_the_token() {
        let (_server, verifier) = setup().await;
        let plain = KEY_A.token(&google_claims());
        for sent in ["n-0S6_WzA2Mj", ""] {
            assert!(
                matches!(
                    verifier.verify(Provider::Google, &plain, Some(sent)).await,
                    Err(AuthError::InvalidIdToken(_))
                ),
                "{sent:?}"
            );
        }
        let mut claims = google_claims();
        claims["nonce"] = json!("");
        let empty = KEY_A.token(&claims);
        assert!(
            verifier
                .verify(Provider::Google, &empty, Some(""))
                .await
                .is_err()
        );
        let long = "n".repeat(MAX_NONCE_LEN + 1);
        claims["nonce"] = json!(long);
        let overlong = KEY_A.token(&claims);
        assert!(
            verifier
                .verify(Provider::Google, &overlong, Some(&long))
                .await
                .is_err()
        );
        verifier
            .verify(Provider::Google, &plain, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn apple_email_verified_may_be_a_string() {
        let (_server, verifier) = setup().await;
        let mut claims = apple_claims("n");
        claims["email_verified"] = json!("false");
        let identity = verifier
            .verify(Provider::Apple, &KEY_A.token(&claims), Some("n"))
            .await
            .unwrap();
        assert!(!identity.email_verified);
        claims.as_object_mut().unwrap().remove("email");
        claims["email_verified"] = json!(true);
        let identity = verifier
            .verify(Provider::Apple, &KEY_A.token(&claims), Some("n"))
            .await
            .unwrap();
        assert_eq!(identity.email, None);
        assert!(!identity.email_verified, "no email, nothing verified");
    }

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=19204, must-revalidate, no-transform"),
            Some(Duration::from_secs(19204))
        );
        assert_eq!(max_age("Max-Age = 60"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn jwks_parsing_keeps_only_usable_signature_keys() {
        let mut encryption = KEY_A.jwk();
        encryption["use"] = json!("enc");
        encryption["kid"] = json!("enc-key");
        let mut rs512 = KEY_A.jwk();
        rs512["alg"] = json!("RS512");
        rs512["kid"] = json!("rs512-key");
        let mut no_kid = KEY_A.jwk();
        no_kid.as_object_mut().unwrap().remove("kid");
        let document = json!({"keys": [
            KEY_A.jwk(), encryption, rs512, no_kid,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac-key"},
            {"kty": "weird", "kid": "future-key"},
        ]});
        let keys = parse_jwks(document.to_string().as_bytes()).unwrap();
        assert_eq!(keys.keys().collect::<Vec<_>>(), ["key-a"]);
        assert!(parse_jwks(br#"{"keys": []}"#).is_err());
        assert!(parse_jwks(b"<html>").is_err());
    }

    #[test]
    fn provider_names_round_trip() {
        for provider in [Provider::Google, Provider::Apple] {
            assert_eq!(provider.as_str().parse::<Provider>(), Ok(provider));
            let json = serde_json::to_string(&provider).unwrap();
            assert_eq!(json, format!("\"{provider}\""));
            assert_eq!(serde_json::from_str::<Provider>(&json).unwrap(), provider);
        }
        assert!("Google".parse::<Provider>().is_err());
        assert!("facebook".parse::<Provider>().is_err());
    }
}
