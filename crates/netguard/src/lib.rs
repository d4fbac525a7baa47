//! The one blocked-address table for every request Herald makes to the outside (feeds, WebSub
//! hubs, push services, identity providers' keys), and the pieces that enforce it on a
//! `reqwest` client.
//!
//! Host names are checked after DNS resolution by [`GuardedResolver`], so every connection
//! (each redirect hop included, and a name that resolves differently the second time) is
//! covered. IP-literal hosts never reach a resolver, so [`check_url`] must be called before a
//! request, and [`redirect_policy`] calls it for every redirect hop.
//!
//! The table follows the IANA IPv4 and IPv6 Special-Purpose Address Registries: every range
//! that is not globally reachable is refused, and so is every IPv6 form that carries an IPv4
//! address (mapped, translated, NAT64, 6to4) when the address it carries is refused. Teredo is
//! refused whole: its client address is obfuscated and would let a private address through.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// One refused IPv4 range.
struct V4Range {
    net: Ipv4Addr,
    prefix: u8,
    name: &'static str,
}

/// What an IPv6 range means for a connection.
#[derive(Clone, Copy)]
enum V6Rule {
    /// Refused whatever follows the prefix.
    Blocked,
    /// Carries an IPv4 address: refused when that address is.
    CarriesV4(fn(Ipv6Addr) -> Ipv4Addr),
}

/// One special-purpose IPv6 range.
struct V6Range {
    net: Ipv6Addr,
    prefix: u8,
    name: &'static str,
    rule: V6Rule,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, name: &'static str) -> V4Range {
    V4Range {
        net: Ipv4Addr::new(a, b, c, d),
        prefix,
        name,
    }
}

const fn v6(s: [u16; 8], prefix: u8, name: &'static str, rule: V6Rule) -> V6Range {
    V6Range {
        net: Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        prefix,
        name,
        rule,
    }
}

/// IPv4 ranges no outbound request may reach.
const BLOCKED_V4: &[V4Range] = &[
    v4(0, 0, 0, 0, 8, "this network (0/8)"),
    v4(10, 0, 0, 0, 8, "private (10/8)"),
    v4(
        100,
        64,
        0,
        0,
        10,
        "shared address space, carrier-grade NAT (100.64/10)",
    ),
    v4(127, 0, 0, 0, 8, "loopback (127/8)"),
    v4(169, 254, 0, 0, 16, "link-local (169.254/16)"),
    v4(172, 16, 0, 0, 12, "private (172.16/12)"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments (192.0.0/24)"),
    v4(192, 0, 2, 0, 24, "documentation (192.0.2/24)"),
    v4(
        192,
        88,
        99,
        0,
        24,
        "deprecated 6to4 relay anycast (192.88.99/24)",
    ),
    v4(192, 168, 0, 0, 16, "private (192.168/16)"),
    v4(198, 18, 0, 0, 15, "benchmarking (198.18/15)"),
    v4(198, 51, 100, 0, 24, "documentation (198.51.100/24)"),
    v4(203, 0, 113, 0, 24, "documentation (203.0.113/24)"),
    v4(224, 0, 0, 0, 4, "multicast (224/4)"),
    v4(240, 0, 0, 0, 4, "reserved and broadcast (240/4)"),
];

fn mapped_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let [.., a, b, c, d] = ip.octets();
    Ipv4Addr::new(a, b, c, d)
}

fn six_to_four_v4(ip: Ipv6Addr) -> Ipv4Addr {
    let [_, _, a, b, c, d, ..] = ip.octets();
    Ipv4Addr::new(a, b, c, d)
}

/// Special-purpose IPv6 ranges; the first that contains an address decides.
const SPECIAL_V6: &[V6Range] = &[
    v6([0; 8], 128, "unspecified (::)", V6Rule::Blocked),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 1],
        128,
        "loopback (::1)",
        V6Rule::Blocked,
    ),
    v6(
        [0, 0, 0, 0, 0, 0xffff, 0, 0],
        96,
        "IPv4-mapped (::ffff:0:0/96)",
        V6Rule::CarriesV4(mapped_v4),
    ),
    v6(
        [0, 0, 0, 0, 0xffff, 0, 0, 0],
        96,
        "IPv4-translated (::ffff:0:0:0/96)",
        V6Rule::CarriesV4(mapped_v4),
    ),
    v6(
        [0; 8],
        96,
        "deprecated IPv4-compatible (::/96)",
        V6Rule::Blocked,
    ),
    v6(
        [0x64, 0xff9b, 0, 0, 0, 0, 0, 0],
        96,
        "NAT64 (64:ff9b::/96)",
        V6Rule::CarriesV4(mapped_v4),
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use NAT64 (64:ff9b:1::/48)",
        V6Rule::Blocked,
    ),
    v6(
        [0x100, 0, 0, 0, 0, 0, 0, 0],
        64,
        "discard-only (100::/64)",
        V6Rule::Blocked,
    ),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        32,
        "Teredo (2001::/32)",
        V6Rule::Blocked,
    ),
    v6(
        [0x2001, 2, 0, 0, 0, 0, 0, 0],
        48,
        "benchmarking (2001:2::/48)",
        V6Rule::Blocked,
    ),
    v6(
        [0x2001, 0x10, 0, 0, 0, 0, 0, 0],
        28,
        "deprecated ORCHID (2001:10::/28)",
        V6Rule::Blocked,
    ),
    v6(
        [0x2001, 0x20, 0, 0, 0, 0, 0, 0],
        28,
        "ORCHIDv2 (2001:20::/28)",
        V6Rule::Blocked,
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (2001:db8::/32)",
        V6Rule::Blocked,
    ),
    v6(
        [0x2002, 0, 0, 0, 0, 0, 0, 0],
        16,
        "6to4 (2002::/16)",
        V6Rule::CarriesV4(six_to_four_v4),
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (3fff::/20)",
        V6Rule::Blocked,
    ),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "segment routing SIDs (5f00::/16)",
        V6Rule::Blocked,
    ),
    v6(
        [0xfc00, 0, 0, 0, 0, 0, 0, 0],
        7,
        "unique local (fc00::/7)",
        V6Rule::Blocked,
    ),
    v6(
        [0xfe80, 0, 0, 0, 0, 0, 0, 0],
        10,
        "link-local (fe80::/10)",
        V6Rule::Blocked,
    ),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "deprecated site-local (fec0::/10)",
        V6Rule::Blocked,
    ),
    v6(
        [0xff00, 0, 0, 0, 0, 0, 0, 0],
        8,
        "multicast (ff00::/8)",
        V6Rule::Blocked,
    ),
];

fn in_v4(ip: Ipv4Addr, range: &V4Range) -> bool {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(range.prefix))
        .unwrap_or(0);
    u32::from(ip) & mask == u32::from(range.net) & mask
}

fn in_v6(ip: Ipv6Addr, range: &V6Range) -> bool {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(range.prefix))
        .unwrap_or(0);
    u128::from(ip) & mask == u128::from(range.net) & mask
}

/// The refused range `ip` falls in, named for logs; `None` for a public address.
pub fn blocked_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => blocked_range_v4(ip),
        IpAddr::V6(ip) => {
            let range = SPECIAL_V6.iter().find(|range| in_v6(ip, range))?;
            match range.rule {
                V6Rule::Blocked => Some(range.name),
                // Named after the wrapper: "NAT64 (...)" says more than the inner range.
                V6Rule::CarriesV4(inner) => blocked_range_v4(inner(ip)).map(|_| range.name),
            }
        }
    }
}

fn blocked_range_v4(ip: Ipv4Addr) -> Option<&'static str> {
    BLOCKED_V4
        .iter()
        .find(|range| in_v4(ip, range))
        .map(|range| range.name)
}

/// Whether no outbound request may reach `ip` (not globally reachable, or special-purpose).
pub fn is_forbidden(ip: IpAddr) -> bool {
    blocked_range(ip).is_some()
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
            Self::Blocked(ip) => write!(
                f,
                "refusing non-public destination {ip} ({})",
                blocked_range(*ip).unwrap_or("allowed by configuration")
            ),
            Self::UnsupportedScheme(scheme) => write!(f, "refusing a `{scheme}` URL"),
            Self::TooManyRedirects { max } => write!(f, "more than {max} redirects"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Which hosts may be on non-public addresses: none (the default), every one (a development
/// switch such as `ingest.allow_private_addresses` or `push.allow_insecure_endpoints`), or the
/// hosts an operator names (say an intranet feed server). A host is named exactly as it appears
/// in a URL; a redirect from a named host to any other host is checked as usual.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allow_all: bool,
    hosts: Arc<[String]>,
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
            hosts: Arc::from([]),
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
                .map(|h| {
                    let h = h.as_ref().trim_end_matches('.');
                    // `[::1]` as in a URL, or `::1` as `Url::host` gives it: one spelling.
                    h.trim_start_matches('[')
                        .trim_end_matches(']')
                        .to_ascii_lowercase()
                })
                .collect(),
        }
    }

    /// Whether `host` (a name or an IP literal, IPv6 with or without brackets) may be non-public.
    pub fn allows_private(&self, host: &str) -> bool {
        let host = host
            .trim_end_matches('.')
            .trim_start_matches('[')
            .trim_end_matches(']');
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
    let literal = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(Host::Domain(_)) | None => return Ok(()),
    };
    if is_forbidden(literal) && !policy.allows_private(&literal.to_string()) {
        return Err(Refusal::Blocked(literal));
    }
    Ok(())
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

/// A redirect policy built on [`check_redirect`]: every hop is checked like the first request.
pub fn redirect_policy(max_redirects: usize, policy: AddressPolicy) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        match check_redirect(attempt.url(), attempt.previous(), max_redirects, &policy) {
            Ok(()) => attempt.follow(),
            Err(refusal) => attempt.error(refusal),
        }
    })
}

/// Guards a client under construction: DNS answers pass through [`GuardedResolver`], proxies
/// are bypassed (a proxy would resolve and connect on our behalf, past the guard), and
/// redirects are followed up to `max_redirects` hops, each checked; one more is an error.
/// A client that must see redirects unfollowed sets `reqwest::redirect::Policy::none()` after.
///
/// IP-literal URLs never reach the resolver: call [`check_url`] before each request.
pub fn guard(
    builder: reqwest::ClientBuilder,
    policy: &AddressPolicy,
    max_redirects: usize,
) -> reqwest::ClientBuilder {
    builder
        .dns_resolver(Arc::new(GuardedResolver {
            policy: policy.clone(),
        }))
        .no_proxy()
        .redirect(redirect_policy(max_redirects, policy.clone()))
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
mod tests;
