//! Server-side request forgery protection: feeds are only fetched from public addresses.
//!
//! Host names are checked after DNS resolution by [`GuardedResolver`], so every connection
//! (each redirect hop included) is covered; IP-literal hosts never reach a resolver, so
//! [`check_url`] and [`check_redirect`] cover them before each request and redirect hop.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Whether `ip` is an address feeds must never be fetched from (non-public or special-purpose).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || a == 0 // 0.0.0.0/8 "this network"
        || ip.is_loopback() // 127.0.0.0/8
        || ip.is_private() // 10/8, 172.16/12, 192.168/16
        || ip.is_link_local() // 169.254/16
        || (a == 100 && (b & 0xc0) == 64) // 100.64/10 carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // 192.0.0/24 IETF protocol assignments
        || ip.is_documentation() // 192.0.2/24, 198.51.100/24, 203.0.113/24
        || (a == 198 && (b & 0xfe) == 18) // 198.18/15 benchmarking
        || ip.is_multicast() // 224/4
        || a >= 240 // 240/4 reserved, 255.255.255.255 broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_forbidden_v4(v4); // ::ffff:0:0/96
    }
    let s = ip.segments();
    let [.., a, b, c, d] = ip.octets();
    let last_32_bits = Ipv4Addr::new(a, b, c, d);
    let six_to_four = Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]));
    ip.is_unspecified()
        || ip.is_loopback()
        || s[..6] == [0; 6] // ::/96 deprecated IPv4-compatible
        || s[..4] == [0x100, 0, 0, 0] // 100::/64 discard-only
        || s[..3] == [0x64, 0xff9b, 1] // 64:ff9b:1::/48 local-use NAT64
        || (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_forbidden_v4(last_32_bits)) // NAT64
        || (s[0] == 0x2002 && is_forbidden_v4(six_to_four)) // 6to4
        || s[..2] == [0x2001, 0xdb8] // 2001:db8::/32 documentation
        || (s[0] & 0xfff0) == 0x3ff0 // 3fff::/20 documentation
        || ip.is_unique_local() // fc00::/7
        || ip.is_unicast_link_local() // fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // fec0::/10 deprecated site-local
        || ip.is_multicast() // ff00::/8
}

/// Why a request or redirect hop was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The target is (or resolves only to) a forbidden address.
    Blocked(IpAddr),
    /// The URL scheme is not `http` or `https`.
    UnsupportedScheme(String),
    /// The redirect chain is longer than allowed.
    TooManyRedirects {
        /// The number of redirects allowed.
        max: usize,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blocked(ip) => write!(f, "refusing to fetch from non-public address {ip}"),
            Self::UnsupportedScheme(scheme) => write!(f, "refusing to fetch a `{scheme}` URL"),
            Self::TooManyRedirects { max } => write!(f, "more than {max} redirects"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Which hosts may be on non-public addresses: none (the default), every one
/// (`ingest.allow_private_addresses`), or the hosts an operator names
/// (`ingest.private_hosts`, say an intranet feed server). A host is named exactly as it appears
/// in a URL; a redirect from a named host to any other host is checked as usual.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_all: bool,
    hosts: std::sync::Arc<[String]>,
}

impl AddressPolicy {
    /// Only public addresses.
    pub fn public_only() -> Self {
        Self::default()
    }

    /// Any address (tests, the offline demo).
    pub fn allow_all() -> Self {
        Self {
            allow_all: true,
            hosts: std::sync::Arc::from([]),
        }
    }

    /// Public addresses, and any address for the named `hosts` (compared case-insensitively).
    pub fn with_private_hosts<I, S>(hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            allow_all: false,
            hosts: hosts
                .into_iter()
                .map(|h| h.as_ref().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether `host` (a name or an IP literal, IPv6 without brackets) may be non-public.
    pub fn allows_private(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.');
        self.allow_all || self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }
}

impl From<bool> for AddressPolicy {
    /// `true`: any address; `false`: public ones only.
    fn from(allow_private: bool) -> Self {
        if allow_private {
            Self::allow_all()
        } else {
            Self::public_only()
        }
    }
}

/// Checks a URL before a request: its scheme must be http(s) and an IP-literal host must be public.
pub fn check_url(url: &Url, policy: &AddressPolicy) -> Result<(), Refusal> {
    match url.scheme() {
        "http" | "https" => {}
        other => return Err(Refusal::UnsupportedScheme(other.to_owned())),
    }
    let host = match url.host() {
        Some(Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => String::new(),
    };
    if policy.allows_private(&host) {
        return Ok(());
    }
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(Host::Domain(_)) | None => None,
    };
    match literal {
        Some(ip) if is_forbidden(ip) => Err(Refusal::Blocked(ip)),
        _ => Ok(()),
    }
}

/// Decides one redirect hop: `previous` holds every URL requested so far, the first one included.
pub fn check_redirect(
    next: &Url,
    previous: &[Url],
    max_redirects: usize,
    policy: &AddressPolicy,
) -> Result<(), Refusal> {
    if previous.len() > max_redirects {
        return Err(Refusal::TooManyRedirects { max: max_redirects });
    }
    check_url(next, policy)
}

/// The redirect policy for the fetch client, built on [`check_redirect`].
pub fn redirect_policy(max_redirects: usize, policy: AddressPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        match check_redirect(attempt.url(), attempt.previous(), max_redirects, &policy) {
            Ok(()) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    })
}

/// A DNS resolver that drops forbidden addresses and fails when none is left.
#[derive(Debug, Clone, Default)]
pub struct GuardedResolver {
    /// Which hosts keep their forbidden addresses.
    pub policy: AddressPolicy,
}

impl GuardedResolver {
    /// Resolves `host` and keeps only the addresses Herald may connect to.
    pub async fn lookup(
        &self,
        host: &str,
    ) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        if self.policy.allows_private(host) {
            return Ok(resolved);
        }
        let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
            .into_iter()
            .partition(|addr| !is_forbidden(addr.ip()));
        if allowed.is_empty() {
            return match refused.first() {
                Some(addr) => Err(Box::new(Refusal::Blocked(addr.ip()))),
                None => Err(format!("no addresses found for {host}").into()),
            };
        }
        if !refused.is_empty() {
            tracing::debug!(
                host,
                refused = refused.len(),
                "dropped non-public addresses"
            );
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let resolver = self.clone();
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_private_hosts_and_only_they_may_be_private() {
        let url = |s: &str| Url::parse(s).expect("valid url");
        let policy = AddressPolicy::with_private_hosts(["Feeds.Corp.", "10.0.0.5", "::1"]);
        assert!(policy.allows_private("feeds.corp"));
        assert!(policy.allows_private("FEEDS.CORP."));
        assert!(!policy.allows_private("other.corp"));
        assert!(!policy.allows_private("feeds.corp.evil.example"));
        assert_eq!(check_url(&url("http://10.0.0.5/rss"), &policy), Ok(()));
        assert_eq!(check_url(&url("http://[::1]:8080/rss"), &policy), Ok(()));
        assert_eq!(
            check_url(&url("http://10.0.0.6/rss"), &policy),
            Err(Refusal::Blocked("10.0.0.6".parse().expect("ip")))
        );
        assert!(AddressPolicy::allow_all().allows_private("anything"));
        assert!(!AddressPolicy::public_only().allows_private("localhost"));
    }

    #[test]
    fn forbidden_address_table() {
        let table: &[(&str, bool)] = &[
            ("0.0.0.0", true),
            ("0.1.2.3", true),
            ("127.0.0.1", true),
            ("127.255.255.254", true),
            ("10.0.0.1", true),
            ("172.16.0.1", true),
            ("172.31.255.255", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("100.127.255.255", true),
            ("100.128.0.1", false),
            ("192.0.0.8", true),
            ("192.0.2.1", true),
            ("198.51.100.7", true),
            ("203.0.113.9", true),
            ("198.18.0.1", true),
            ("198.19.255.255", true),
            ("198.20.0.1", false),
            ("224.0.0.1", true),
            ("239.255.255.250", true),
            ("240.0.0.1", true),
            ("255.255.255.255", true),
            ("8.8.8.8", false),
            ("1.1.1.1", false),
            ("93.184.216.34", false),
            ("::", true),
            ("::1", true),
            ("::127.0.0.1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:10.1.2.3", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            ("64:ff9b::7f00:1", true),
            ("64:ff9b::808:808", false),
            ("64:ff9b:1::1", true),
            ("2002:7f00:1::", true),
            ("2002:808:808::", false),
            ("100::1", true),
            ("fc00::1", true),
            ("fd12:3456::1", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("2001:db8::1", true),
            ("3fff::1", true),
            ("2606:4700:4700::1111", false),
            ("2001:4860:4860::8888", false),
        ];
        for (text, forbidden) in table {
            let ip: IpAddr = text.parse().expect("valid address in table");
            assert_eq!(is_forbidden(ip), *forbidden, "{text}");
        }
    }

    #[test]
    fn ip_literal_urls_are_checked() {
        let url = |s: &str| Url::parse(s).expect("valid url");
        assert_eq!(
            check_url(&url("http://127.0.0.1:8080/feed"), &false.into()),
            Err(Refusal::Blocked("127.0.0.1".parse().expect("ip")))
        );
        assert!(matches!(
            check_url(&url("http://[::1]/"), &false.into()),
            Err(Refusal::Blocked(_))
        ));
        assert!(matches!(
            check_url(&url("http://[::ffff:7f00:1]/"), &false.into()),
            Err(Refusal::Blocked(_))
        ));
        // The URL parser normalises other spellings of IPv4 into a literal.
        assert!(matches!(
            check_url(&url("http://0x7f.1/"), &false.into()),
            Err(Refusal::Blocked(_))
        ));
        assert!(matches!(
            check_url(&url("http://2130706433/"), &false.into()),
            Err(Refusal::Blocked(_))
        ));
        assert_eq!(check_url(&url("https://8.8.8.8/"), &false.into()), Ok(()));
        assert_eq!(
            check_url(&url("https://example.com/feed"), &false.into()),
            Ok(())
        );
        assert_eq!(check_url(&url("http://127.0.0.1/"), &true.into()), Ok(()));
        assert_eq!(
            check_url(&url("file:///etc/passwd"), &true.into()),
            Err(Refusal::UnsupportedScheme("file".into()))
        );
    }
}
