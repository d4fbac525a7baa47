//! Settings for feed fetching and polling (`[ingest]` in the configuration file).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::guard::AddressPolicy;

/// The `User-Agent` Herald sends with every feed request.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "Herald/",
    env!("CARGO_PKG_VERSION"),
    " (+https://github.com/herald-news/herald)"
);

/// How feeds are fetched and how often they are polled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Allow feeds on loopback, private, link-local and other non-public addresses (tests only).
    pub allow_private_addresses: bool,
    /// Hosts, named exactly as in their feed URLs, that may be on non-public addresses (an
    /// intranet feed server, say); redirects from them to other hosts are still checked.
    pub private_hosts: Vec<String>,
    /// `User-Agent` header sent with every request.
    pub user_agent: String,
    /// Shortest time between two polls of one feed.
    pub min_interval_seconds: u64,
    /// Longest time between two polls of one feed, also the cap on error backoff.
    pub max_interval_seconds: u64,
    /// Poll interval when a feed gives nothing to adapt to.
    pub default_interval_seconds: u64,
    /// Time allowed to open a connection (DNS, TCP and TLS).
    pub connect_timeout_seconds: u64,
    /// Time allowed for a whole request, body included.
    pub timeout_seconds: u64,
    /// Redirects followed before a fetch fails.
    pub max_redirects: usize,
    /// Largest (decompressed) feed body accepted.
    pub max_body_bytes: u64,
    /// Concurrent fetches against one host.
    pub per_host_concurrency: usize,
    /// Concurrent fetches in one process.
    pub global_concurrency: usize,
    /// How long a claimed feed stays leased to one ingest worker.
    pub lease_seconds: u64,
    /// WebSub push ingest (`[ingest.websub]`).
    pub websub: WebSubConfig,
}

/// WebSub: subscribe to the hubs feeds advertise, so new items arrive in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebSubConfig {
    /// Subscribe to a feed's hub when it advertises one (and `http.public_url` is set).
    pub enabled: bool,
    /// The lease asked of hubs; a hub may grant another.
    pub lease_seconds: u64,
    /// Renew this long before the lease runs out (at most half of the granted lease).
    pub renew_before_seconds: u64,
    /// The safety-net poll interval of a feed whose hub delivers (a longer one than usual).
    pub poll_interval_seconds: u64,
    /// Wait this long before asking again a hub that refused, failed or never verified.
    pub retry_seconds: u64,
    /// The api role's public base URL, which the binary copies from `http.public_url`; not a
    /// key of its own. Unset, WebSub stays off.
    #[serde(skip)]
    pub public_url: Option<url::Url>,
}

impl Default for WebSubConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            lease_seconds: 10 * 86_400,
            renew_before_seconds: 86_400,
            poll_interval_seconds: 3_600,
            retry_seconds: 3_600,
            public_url: None,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            allow_private_addresses: false,
            private_hosts: Vec::new(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            min_interval_seconds: 60,
            max_interval_seconds: 86_400,
            default_interval_seconds: 900,
            connect_timeout_seconds: 5,
            timeout_seconds: 30,
            max_redirects: 5,
            max_body_bytes: 10 * 1024 * 1024,
            per_host_concurrency: 2,
            global_concurrency: 32,
            lease_seconds: 120,
            websub: WebSubConfig::default(),
        }
    }
}

impl IngestConfig {
    /// Which hosts may be on non-public addresses.
    pub fn address_policy(&self) -> AddressPolicy {
        if self.allow_private_addresses {
            AddressPolicy::allow_all()
        } else {
            AddressPolicy::with_private_hosts(&self.private_hosts)
        }
    }

    /// The shortest poll interval.
    pub fn min_interval(&self) -> Duration {
        Duration::from_secs(self.min_interval_seconds)
    }

    /// The longest poll interval (at least the shortest one).
    pub fn max_interval(&self) -> Duration {
        Duration::from_secs(self.max_interval_seconds.max(self.min_interval_seconds))
    }

    /// The interval used when nothing better is known.
    pub fn default_interval(&self) -> Duration {
        Duration::from_secs(self.default_interval_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_partial_overrides() {
        let config = IngestConfig::default();
        assert!(!config.allow_private_addresses);
        assert!(config.user_agent.starts_with("Herald/"));
        assert_eq!(config.max_body_bytes, 10 * 1024 * 1024);

        let parsed: IngestConfig =
            serde_json::from_str(r#"{"allow_private_addresses": true, "max_redirects": 2}"#)
                .expect("valid config");
        assert!(parsed.allow_private_addresses);
        assert_eq!(parsed.max_redirects, 2);
        assert_eq!(parsed.timeout_seconds, 30);

        let unknown = serde_json::from_str::<IngestConfig>(r#"{"max_redirect": 2}"#);
        assert!(unknown.is_err());
    }
}
