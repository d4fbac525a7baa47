//! Shared helpers for Herald's benchmark binaries.

/// Peak resident set size of this process so far, in KiB (Linux `VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Current resident set size in KiB (Linux `VmRSS`), if known.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The Web Push workload every sender of the suite reads (`push_receiver gen` writes it).
pub mod push_workload {
    use serde::{Deserialize, Serialize};

    /// The application server's VAPID identity, shared by all senders.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Vapid {
        /// Uncompressed P-256 public point, base64url.
        pub public_key: String,
        /// Raw 32-byte private scalar, base64url (the form `web-push generate-vapid-keys` prints).
        pub private_key: String,
        /// The `sub` claim.
        pub subject: String,
    }

    /// The browser-side keys of one subscription.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Keys {
        /// Receiver's public P-256 point, base64url.
        pub p256dh: String,
        /// 16-byte auth secret, base64url.
        pub auth: String,
    }

    /// One subscription, as `PushManager.subscribe` hands it out, plus its private key.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Subscription {
        /// Where to POST.
        pub endpoint: String,
        /// Keys to encrypt for.
        pub keys: Keys,
        /// The receiver's private scalar, base64url (only the receiver reads it).
        pub private_key: String,
    }

    /// Everything a sender needs: identity, message, headers and audience.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    pub struct Workload {
        /// VAPID keys and subject.
        pub vapid: Vapid,
        /// The alert JSON (SPEC §4), sent as is.
        pub payload: String,
        /// `TTL` header.
        pub ttl: u32,
        /// `Urgency` header.
        pub urgency: String,
        /// `Topic` header.
        pub topic: String,
        /// The subscriptions.
        pub subscriptions: Vec<Subscription>,
    }
}

/// The generated feed corpus of the ingestion benchmarks.
pub mod corpus;
