//! Settings for passwords, tokens, rate limits and sign-in providers.

use serde::{Deserialize, Serialize};

/// The `[auth]` section of Herald's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `iss` claim of the access tokens Herald issues.
    pub issuer: String,
    /// `aud` claim of the access tokens Herald issues.
    pub audience: String,
    /// Lifetime of an access token, in seconds.
    pub access_token_ttl_seconds: u64,
    /// Lifetime of a refresh token, in days; each rotation restarts it (sliding).
    pub refresh_token_ttl_days: u64,
    /// Absolute lifetime of a session, in days, however often it is refreshed.
    pub session_max_days: u64,
    /// How long a just-spent refresh token may be presented again (lost response) without revoking the session.
    pub refresh_reuse_grace_seconds: u64,
    /// Failed logins allowed for one account from one address (an IPv4 address or an IPv6
    /// /64) within the login window: what a guesser gets, without locking the owner out.
    pub login_attempts_per_account_and_address: u32,
    /// Failed logins allowed for one account from all addresses within the login window: the
    /// ceiling against guessing spread over many addresses.
    pub login_attempts_per_account: u32,
    /// Failed logins allowed per client address within the login window.
    pub login_attempts_per_ip: u32,
    /// Length of the login rate-limit window, in seconds.
    pub login_window_seconds: u64,
    /// Accounts (anonymous ones included) created per client address per hour.
    pub signups_per_address_per_hour: u32,
    /// Password hashes (argon2id, 19 MiB each) computed at once; more wait in line.
    pub max_concurrent_hashes: usize,
    /// How long a password check waits for a hashing slot before the request is answered 503
    /// with `Retry-After`, in milliseconds.
    pub hash_queue_wait_ms: u64,
    /// How long Apple's or Google's signing keys may still verify ID tokens after their cache
    /// lifetime ran out, while the provider's key endpoint cannot be reached, in seconds; 0:
    /// never (an outage of the endpoint stops sign-ins with that provider at once).
    pub jwks_max_stale_seconds: u64,
    /// Sign in with Google.
    pub google: GoogleConfig,
    /// Sign in with Apple.
    pub apple: AppleConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "herald".to_owned(),
            audience: "herald-app".to_owned(),
            access_token_ttl_seconds: 900,
            refresh_token_ttl_days: 60,
            session_max_days: 365,
            refresh_reuse_grace_seconds: 10,
            login_attempts_per_account_and_address: 5,
            login_attempts_per_account: 50,
            login_attempts_per_ip: 20,
            login_window_seconds: 900,
            signups_per_address_per_hour: 30,
            max_concurrent_hashes: 4,
            hash_queue_wait_ms: 2000,
            jwks_max_stale_seconds: 6 * 3600,
            google: GoogleConfig::default(),
            apple: AppleConfig::default(),
        }
    }
}

/// Sign in with Google; disabled while `client_ids` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GoogleConfig {
    /// OAuth client ids (web, Android, iOS) accepted as the ID token's `aud`.
    pub client_ids: Vec<String>,
    /// Where Google publishes its signing keys.
    pub jwks_url: String,
    /// Accepted `iss` values.
    pub issuers: Vec<String>,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        Self {
            client_ids: Vec::new(),
            jwks_url: "https://www.googleapis.com/oauth2/v3/certs".to_owned(),
            issuers: vec![
                "https://accounts.google.com".to_owned(),
                "accounts.google.com".to_owned(),
            ],
        }
    }
}

/// Sign in with Apple; disabled while `client_ids` is empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppleConfig {
    /// App bundle ids and web service ids accepted as the ID token's `aud`.
    pub client_ids: Vec<String>,
    /// Where Apple publishes its signing keys.
    pub jwks_url: String,
    /// The only accepted `iss` value.
    pub issuer: String,
}

impl Default for AppleConfig {
    fn default() -> Self {
        Self {
            client_ids: Vec::new(),
            jwks_url: "https://appleid.apple.com/auth/keys".to_owned(),
            issuer: "https://appleid.apple.com".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_section_gives_defaults() -> Result<(), serde_json::Error> {
        let config: AuthConfig = serde_json::from_str("{}")?;
        assert_eq!(config, AuthConfig::default());
        assert_eq!(config.issuer, "herald");
        assert_eq!(config.access_token_ttl_seconds, 900);
        assert!(config.google.client_ids.is_empty());
        assert_eq!(config.apple.issuer, "https://appleid.apple.com");
        Ok(())
    }

    #[test]
    fn partial_sections_keep_other_defaults() -> Result<(), serde_json::Error> {
        let config: AuthConfig = serde_json::from_str(
            r#"{"session_max_days": 30, "google": {"client_ids": ["web.apps.googleusercontent.com"]}}"#,
        )?;
        assert_eq!(config.session_max_days, 30);
        assert_eq!(config.refresh_token_ttl_days, 60);
        assert_eq!(config.google.client_ids, ["web.apps.googleusercontent.com"]);
        assert_eq!(config.google.issuers.len(), 2);
        Ok(())
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<AuthConfig>(r#"{"isuer": "typo"}"#).is_err());
        assert!(serde_json::from_str::<AuthConfig>(r#"{"apple": {"client_id": "x"}}"#).is_err());
    }
}
