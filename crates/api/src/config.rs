//! The `[http]` section of Herald's configuration.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// How the API listens and what every request is allowed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address the `api` role listens on.
    pub listen: SocketAddr,
    /// A request that takes longer is answered 503.
    pub request_timeout_seconds: u64,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Origins allowed by CORS; `["*"]` allows any. Empty: no CORS headers.
    pub cors_allowed_origins: Vec<String>,
    /// On shutdown, how long in-flight requests may take to finish.
    pub shutdown_grace_seconds: u64,
    /// How many proxies in front of Herald append to `X-Forwarded-For` and are trusted: the
    /// client address is that many entries from the right (0: the peer address, the header
    /// ignored). `true` means 1 and `false` 0, as in earlier versions.
    #[serde(deserialize_with = "hops")]
    pub trust_forwarded_for: u8,
    /// How long public reads (article and story lists and pages) are kept in memory, in
    /// milliseconds; 0 turns this off. See [`crate::ReadCache`].
    pub read_cache_ms: u64,
    /// `/readyz` of a process with a background role (ingest, notifier) fails when that
    /// role's loop has not reached the database for this many seconds.
    pub ready_stall_seconds: u64,
    /// The address the api role is reached at from outside (e.g. `https://news.example.com`),
    /// used for WebSub callback URLs; unset, WebSub stays off and each source's health says so.
    pub public_url: Option<url::Url>,
    /// Largest feed body a WebSub hub may push, in bytes; larger ones get 413.
    pub websub_max_body_bytes: usize,
    /// Accept WebSub deliveries signed with HMAC-SHA1 (sha256 or stronger are always accepted).
    pub websub_accept_sha1: bool,
    /// Pushed bodies one source may have waiting for ingestion; more get 429 (the hub retries).
    pub websub_max_backlog: u64,
    /// `Strict-Transport-Security: max-age=…` on every response, in seconds; 0 sends none.
    /// Unset: one year when `public_url` is `https`, none otherwise (a plain-http deployment
    /// must not pin browsers to TLS it does not have).
    pub hsts_max_age_seconds: Option<u64>,
    /// When set, `/metrics` answers only requests with `Authorization: Bearer <this>` (401
    /// otherwise); unset, it is open to whoever reaches the listen address.
    pub metrics_token: Option<herald_store::Secret<String>>,
}

impl HttpConfig {
    /// The HSTS max-age to send, if any: `hsts_max_age_seconds`, else a year behind https.
    pub fn hsts_seconds(&self) -> Option<u64> {
        match self.hsts_max_age_seconds {
            Some(0) => None,
            Some(seconds) => Some(seconds),
            None => self
                .public_url
                .as_ref()
                .filter(|url| url.scheme() == "https")
                .map(|_| 365 * 24 * 3600),
        }
    }
}

/// `trust_forwarded_for` as a count of trusted proxies, or as the boolean it used to be.
fn hops<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u8, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Hops {
        Flag(bool),
        Count(u8),
    }
    Ok(match Hops::deserialize(deserializer)? {
        Hops::Flag(trusted) => u8::from(trusted),
        Hops::Count(count) => count,
    })
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            request_timeout_seconds: 30,
            body_limit_bytes: 64 * 1024,
            cors_allowed_origins: Vec::new(),
            shutdown_grace_seconds: 8,
            trust_forwarded_for: 0,
            read_cache_ms: 1000,
            ready_stall_seconds: 30,
            public_url: None,
            websub_max_body_bytes: 4 * 1024 * 1024,
            websub_accept_sha1: false,
            websub_max_backlog: 100,
            hsts_max_age_seconds: None,
            metrics_token: None,
        }
    }
}
