//! The accounts service: sign-up, login, anonymous readers, refresh rotation, sessions,
//! Sign in with Apple/Google, linking, and account deletion, on top of the store.

use crate::email::Email;
use crate::keys::{SigningKey, jwks_json};
use crate::oidc::{IdTokenVerifier, Provider, VerifiedIdentity};
use crate::password::{self, Password};
use crate::refresh::{RefreshToken, session_expires_at};
use crate::sealing::{Keyring, SealingError};
use crate::{AccessTokens, AuthConfig, AuthError};
use chrono::{DateTime, Duration, Utc};
use herald_store::keys::StoredKey;
use herald_store::sessions::{self, NewSession, RotateRequest, Rotation, Session};
use herald_store::users::{self, NewUser, Role, User};
use herald_store::{Db, Secret, StoreError, throttle};
use std::net::IpAddr;
use uuid::Uuid;

/// Key purpose under which access-token signing keys are stored.
const ACCESS_TOKEN_KEY: &str = "access-token";

/// Who is calling, as far as the network tells.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// The client's User-Agent header.
    pub user_agent: Option<String>,
}

/// An authenticated caller: a verified access token whose session is live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    /// The user.
    pub user_id: Uuid,
    /// The session the token belongs to.
    pub session_id: Uuid,
    /// The role the token was issued with.
    pub role: Role,
}

/// What a successful sign-in returns.
#[derive(Debug)]
pub struct Tokens {
    /// Short-lived JWT.
    pub access_token: Secret<String>,
    /// Opaque, single-use refresh token.
    pub refresh_token: Secret<String>,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// The user signed in.
    pub user: User,
}

/// The accounts service, shared by every request.
pub struct Accounts {
    db: Db,
    config: AuthConfig,
    tokens: AccessTokens,
    keys: Vec<SigningKey>,
    oidc: IdTokenVerifier,
    hashing: std::sync::Arc<password::HashGate>,
}

impl Accounts {
    /// Loads (or creates on first start) the signing keys, kept sealed by `keyring`, and
    /// prepares the verifiers.
    pub async fn start(
        db: Db,
        config: AuthConfig,
        http: reqwest::Client,
        keyring: &Keyring,
    ) -> Result<Self, AuthError> {
        let sealed = |e: SealingError| match e {
            SealingError::Store(e) => AuthError::from(e),
            other => AuthError::Internal(other.to_string()),
        };
        let current = keyring
            .load_or_create(&db, ACCESS_TOKEN_KEY, || {
                let key = SigningKey::generate()?;
                Ok::<_, AuthError>(StoredKey {
                    id: key.kid().to_string(),
                    purpose: ACCESS_TOKEN_KEY.into(),
                    algorithm: "ES256".into(),
                    private_der: Secret::new(key.pkcs8_der().to_vec()),
                    public_key: key.public_point().to_vec(),
                    created_at: Utc::now(),
                })
            })
            .await
            .map_err(sealed)?;
        let mut keys = Vec::new();
        for stored in keyring
            .active(&db, ACCESS_TOKEN_KEY)
            .await
            .map_err(sealed)?
        {
            keys.push(SigningKey::from_pkcs8_der(
                stored.private_der.expose().clone(),
            )?);
        }
        let signing = SigningKey::from_pkcs8_der(current.private_der.expose().clone())?;
        let tokens = AccessTokens::new(&config, &signing, &keys)?;
        let oidc = IdTokenVerifier::new(&config, http);
        password::warm_up().await;
        let hashing = std::sync::Arc::new(password::HashGate::new(
            config.max_concurrent_hashes,
            std::time::Duration::from_millis(config.hash_queue_wait_ms),
        ));
        Ok(Self {
            db,
            config,
            tokens,
            keys,
            oidc,
            hashing,
        })
    }

    /// The most password hashes that ever ran at once in this process (for tests and metrics).
    pub fn peak_concurrent_hashes(&self) -> usize {
        self.hashing.peak()
    }

    /// Takes a slot of every limit, or answers 429 with the wait.
    async fn take(
        &self,
        limits: &[throttle::Limit],
        now: DateTime<Utc>,
    ) -> Result<throttle::Taken, AuthError> {
        throttle::take(&self.db, limits, now)
            .await?
            .map_err(|retry_after_seconds| AuthError::Throttled {
                retry_after_seconds,
            })
    }

    /// The per-address limit on creating accounts (password, anonymous, provider).
    fn signup_limit(&self, client: &ClientInfo) -> Vec<throttle::Limit> {
        client
            .ip
            .map(|ip| throttle::Limit {
                scope: format!("signup:address:{}", address_bucket(ip)),
                limit: self.config.signups_per_address_per_hour,
                window: Duration::hours(1),
            })
            .into_iter()
            .collect()
    }

    /// The public keys that verify access tokens, as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        jwks_json(&self.keys)
    }

    /// Creates a password account and signs it in.
    pub async fn signup(
        &self,
        email: &str,
        password: &str,
        display_name: Option<String>,
        client: &ClientInfo,
    ) -> Result<Tokens, AuthError> {
        let email = Email::parse(email).map_err(AuthError::InvalidEmail)?;
        let password = Password::parse(password)?;
        self.take(&self.signup_limit(client), Utc::now()).await?;
        let hash = self.hashing.run(password::hash(password)).await??;
        let user = users::create(
            &self.db,
            NewUser {
                email: Some(email.into_string()),
                display_name: clean_name(display_name),
                password_hash: Some(hash),
                role: Role::Reader,
                is_anonymous: false,
            },
        )
        .await
        .map_err(taken)?;
        self.start_session(user, client).await
    }

    /// Signs in with email and password. Unknown emails cost the same as wrong passwords.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Tokens, AuthError> {
        let email = Email::parse(email).map_err(AuthError::InvalidEmail)?;
        let window = Duration::seconds(self.config.login_window_seconds as i64);
        // Every attempt takes its slots before the password is checked, atomically, so a
        // burst of parallel guesses cannot all pass a count none of them is in yet; a
        // successful login gives its slots back. The tight limit is per account *and*
        // address, so a stranger's guesses do not lock the owner out from elsewhere.
        let limit = |scope: String, limit: u32| throttle::Limit {
            scope,
            limit,
            window,
        };
        let mut limits = vec![limit(
            format!("login:account:{email}"),
            self.config.login_attempts_per_account,
        )];
        if let Some(ip) = client.ip {
            let bucket = address_bucket(ip);
            limits.push(limit(
                format!("login:pair:{email}:{bucket}"),
                self.config.login_attempts_per_account_and_address,
            ));
            limits.push(limit(
                format!("login:address:{bucket}"),
                self.config.login_attempts_per_ip,
            ));
        }
        let taken = self.take(&limits, Utc::now()).await?;
        let found = users::credentials_by_email(&self.db, email.as_str()).await?;
        let stored = found
            .as_ref()
            .and_then(|c| c.password_hash.as_ref())
            .map(|h| h.expose().clone());
        let outdated = stored.clone().filter(|h| password::needs_rehash(h));
        let matches = match self
            .hashing
            .run(password::verify(password.to_string(), stored))
            .await
        {
            Ok(matches) => matches,
            Err(busy) => {
                // Not checked, so not counted.
                throttle::refund(&self.db, taken).await?;
                return Err(busy);
            }
        };
        match found {
            Some(credentials) if matches => {
                throttle::refund(&self.db, taken).await?;
                if let Some(old) = outdated {
                    self.upgrade_hash(credentials.user.id, &old, password).await;
                }
                self.start_session(credentials.user, client).await
            }
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    /// Replaces a hash made with other parameters than today's by one of the password that
    /// just matched it. A failure (a busy gate, a password changed meanwhile) leaves the old
    /// hash, which still works, for the next login to upgrade.
    async fn upgrade_hash(&self, user_id: Uuid, old: &str, password: &str) {
        let upgraded = match self
            .hashing
            .run(password::rehash(password.to_string()))
            .await
        {
            Ok(Ok(new)) => users::upgrade_password_hash(&self.db, user_id, old, new)
                .await
                .map_err(AuthError::from),
            Ok(Err(e)) | Err(e) => Err(e),
        };
        match upgraded {
            Ok(true) => tracing::info!(%user_id, "password hash upgraded to current parameters"),
            Ok(false) => {}
            Err(e) => tracing::warn!(%user_id, error = %e, "password hash not upgraded"),
        }
    }

    /// Creates an anonymous reader (a fresh app install) and signs it in.
    pub async fn anonymous(&self, client: &ClientInfo) -> Result<Tokens, AuthError> {
        self.take(&self.signup_limit(client), Utc::now()).await?;
        let user = users::create(
            &self.db,
            NewUser {
                email: None,
                display_name: None,
                password_hash: None,
                role: Role::Reader,
                is_anonymous: true,
            },
        )
        .await?;
        self.start_session(user, client).await
    }

    /// Spends a refresh token for a new pair. Reuse of a spent one revokes the session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens, AuthError> {
        let presented = RefreshToken::parse(refresh_token)?;
        let (plain, successor_hash) = RefreshToken::generate();
        let now = Utc::now();
        let rotation = sessions::rotate(
            &self.db,
            RotateRequest {
                presented_hash: presented.to_hash(),
                successor_hash,
                now,
                grace_seconds: self.config.refresh_reuse_grace_seconds as i64,
                expires_at: now + Duration::days(self.config.refresh_token_ttl_days as i64),
            },
        )
        .await?;
        match rotation {
            Rotation::Rotated(session) => {
                let user = users::by_id(&self.db, session.user_id).await?;
                self.issue(user, session.id, plain)
            }
            Rotation::ReuseDetected => {
                tracing::warn!("refresh token reuse detected; session revoked");
                Err(AuthError::SessionEnded)
            }
            Rotation::Invalid => Err(AuthError::InvalidToken("unknown or spent refresh token")),
        }
    }

    /// Verifies a bearer access token and that its session is still live.
    pub async fn authenticate(&self, bearer: &str) -> Result<Principal, AuthError> {
        let claims = self.tokens.verify(bearer)?;
        if sessions::live(&self.db, claims.sid, Utc::now())
            .await?
            .is_none()
        {
            return Err(AuthError::SessionEnded);
        }
        let role = claims
            .role
            .parse()
            .map_err(|_| AuthError::InvalidToken("unknown role"))?;
        Ok(Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            role,
        })
    }

    /// Ends the caller's session (and the one a given refresh token belongs to, if theirs).
    pub async fn logout(
        &self,
        principal: &Principal,
        refresh_token: Option<&str>,
    ) -> Result<(), AuthError> {
        // A refresh token of another of the caller's sessions ends that one too.
        let other = match refresh_token.and_then(|t| RefreshToken::parse(t).ok()) {
            Some(token) => sessions::of_refresh_token(&self.db, &token.to_hash()).await?,
            None => None,
        };
        if let Some(session_id) = other.filter(|id| *id != principal.session_id) {
            ignore_missing(
                sessions::revoke(&self.db, principal.user_id, session_id, "logout").await,
            )?;
        }
        ignore_missing(
            sessions::revoke(&self.db, principal.user_id, principal.session_id, "logout").await,
        )
    }

    /// Signs in with an Apple or Google ID token: a new subject creates an account.
    pub async fn sign_in_with(
        &self,
        provider: Provider,
        id_token: &str,
        nonce: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Tokens, AuthError> {
        let identity = self.oidc.verify(provider, id_token, nonce).await?;
        if let Some(user) =
            users::by_identity(&self.db, provider.as_str(), &identity.subject).await?
        {
            return self.start_session(user, client).await;
        }
        let email = self.unclaimed_email(&identity).await?;
        let user = users::create_with_identity(
            &self.db,
            NewUser {
                email,
                display_name: None,
                password_hash: None,
                role: Role::Reader,
                is_anonymous: false,
            },
            provider.as_str(),
            &identity.subject,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AuthError::AccountExists(provider),
            other => other.into(),
        })?;
        self.start_session(user, client).await
    }

    /// Makes an anonymous reader a full account with email and password, keeping its id.
    /// The anonymous session ends; the returned tokens belong to a new one.
    pub async fn link_password(
        &self,
        principal: &Principal,
        email: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<Tokens, AuthError> {
        let email = Email::parse(email).map_err(AuthError::InvalidEmail)?;
        let password = Password::parse(password)?;
        self.require_anonymous(principal).await?;
        let hash = self.hashing.run(password::hash(password)).await??;
        let user =
            users::upgrade_with_password(&self.db, principal.user_id, email.into_string(), hash)
                .await
                .map_err(taken)?;
        self.relink(principal, user, client).await
    }

    /// Makes an anonymous reader a full account signed in with Apple or Google, keeping its id.
    pub async fn link_provider(
        &self,
        principal: &Principal,
        provider: Provider,
        id_token: &str,
        nonce: Option<&str>,
        client: &ClientInfo,
    ) -> Result<Tokens, AuthError> {
        self.require_anonymous(principal).await?;
        let identity = self.oidc.verify(provider, id_token, nonce).await?;
        if users::by_identity(&self.db, provider.as_str(), &identity.subject)
            .await?
            .is_some()
        {
            return Err(AuthError::AccountExists(provider));
        }
        let email = self.unclaimed_email(&identity).await?;
        let user = users::upgrade_with_identity(
            &self.db,
            principal.user_id,
            provider.as_str(),
            &identity.subject,
            email,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AuthError::AccountExists(provider),
            other => other.into(),
        })?;
        self.relink(principal, user, client).await
    }

    /// The caller's profile.
    pub async fn me(&self, principal: &Principal) -> Result<User, AuthError> {
        Ok(users::by_id(&self.db, principal.user_id).await?)
    }

    /// Changes the caller's display name.
    pub async fn set_display_name(
        &self,
        principal: &Principal,
        name: Option<String>,
    ) -> Result<User, AuthError> {
        Ok(users::set_display_name(&self.db, principal.user_id, clean_name(name)).await?)
    }

    /// Changes the password after checking the current one; every other session ends.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new: &str,
    ) -> Result<(), AuthError> {
        let new = Password::parse(new)?;
        let credentials = users::credentials_by_id(&self.db, principal.user_id).await?;
        let stored = credentials.password_hash.map(|h| h.expose().clone());
        self.confirm_password(principal, current, stored).await?;
        let hash = self.hashing.run(password::hash(new)).await??;
        users::set_password_hash(&self.db, principal.user_id, hash).await?;
        sessions::revoke_all_except(
            &self.db,
            principal.user_id,
            Some(principal.session_id),
            "password_changed",
        )
        .await?;
        Ok(())
    }

    /// Checks the caller's password again before a change that a stolen token must not be
    /// able to make. Attempts are limited per account (one budget for every route asking), and
    /// each takes its slot before the check so parallel guesses cannot overrun it; a match
    /// gives the slot back.
    async fn confirm_password(
        &self,
        principal: &Principal,
        candidate: &str,
        stored: Option<String>,
    ) -> Result<(), AuthError> {
        let window = Duration::seconds(self.config.login_window_seconds as i64);
        let taken = self
            .take(
                &[throttle::Limit {
                    scope: format!("password:user:{}", principal.user_id),
                    limit: self.config.login_attempts_per_account_and_address,
                    window,
                }],
                Utc::now(),
            )
            .await?;
        let verify = password::verify(candidate.to_string(), stored);
        let matches = match self.hashing.run(verify).await {
            Ok(matches) => matches,
            Err(busy) => {
                throttle::refund(&self.db, taken).await?;
                return Err(busy);
            }
        };
        if !matches {
            return Err(AuthError::InvalidCredentials);
        }
        throttle::refund(&self.db, taken).await?;
        Ok(())
    }

    /// The caller's live sessions, most recently used first.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<Session>, AuthError> {
        Ok(sessions::list_live(&self.db, principal.user_id, Utc::now()).await?)
    }

    /// Ends one of the caller's sessions.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: Uuid,
    ) -> Result<(), AuthError> {
        Ok(sessions::revoke(&self.db, principal.user_id, session_id, "revoked").await?)
    }

    /// Deletes the caller's account and everything that belongs to it; its sessions go with
    /// it, so every access and refresh token of it stops working at once. An account with a
    /// password must give it again ([`AuthError::PasswordRequired`] without it,
    /// [`AuthError::InvalidCredentials`] when wrong): a stolen access token alone cannot
    /// destroy an account. Anonymous and Apple/Google-only accounts have none to give.
    pub async fn delete_account(
        &self,
        principal: &Principal,
        password: Option<&str>,
    ) -> Result<(), AuthError> {
        let credentials = users::credentials_by_id(&self.db, principal.user_id).await?;
        if let Some(stored) = credentials.password_hash {
            let candidate = password.ok_or(AuthError::PasswordRequired)?;
            self.confirm_password(principal, candidate, Some(stored.expose().clone()))
                .await?;
        }
        Ok(users::delete(&self.db, principal.user_id).await?)
    }

    async fn require_anonymous(&self, principal: &Principal) -> Result<(), AuthError> {
        if users::by_id(&self.db, principal.user_id)
            .await?
            .is_anonymous
        {
            Ok(())
        } else {
            Err(AuthError::NotAnonymous)
        }
    }

    async fn relink(
        &self,
        principal: &Principal,
        user: User,
        client: &ClientInfo,
    ) -> Result<Tokens, AuthError> {
        ignore_missing(
            sessions::revoke(&self.db, principal.user_id, principal.session_id, "linked").await,
        )?;
        self.start_session(user, client).await
    }

    // An email from a provider is kept only if no other account has it: an existing password
    // account is never merged silently (the reader logs in and links from there).
    async fn unclaimed_email(
        &self,
        identity: &VerifiedIdentity,
    ) -> Result<Option<String>, AuthError> {
        let Some(email) = identity
            .email
            .as_deref()
            .filter(|_| identity.email_verified)
        else {
            return Ok(None);
        };
        let email = Email::parse(email).map_err(AuthError::InvalidIdToken)?;
        if users::credentials_by_email(&self.db, email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::AccountExists(identity.provider));
        }
        Ok(Some(email.into_string()))
    }

    async fn start_session(&self, user: User, client: &ClientInfo) -> Result<Tokens, AuthError> {
        let (plain, hash) = RefreshToken::generate();
        let now = Utc::now();
        let absolute = session_expires_at(&self.config, now);
        let session = sessions::start(
            &self.db,
            NewSession {
                user_id: user.id,
                user_agent: client.user_agent.clone(),
                ip: client.ip.map(|ip| ip.to_string()),
                refresh_hash: hash,
                expires_at: (now + Duration::days(self.config.refresh_token_ttl_days as i64))
                    .min(absolute),
                absolute_expires_at: absolute,
            },
        )
        .await?;
        self.issue(user, session.id, plain)
    }

    fn issue(&self, user: User, session_id: Uuid, refresh: String) -> Result<Tokens, AuthError> {
        let access = self.tokens.issue(user.id, session_id, user.role.as_str())?;
        Ok(Tokens {
            access_token: Secret::new(access.token),
            refresh_token: Secret::new(refresh),
            expires_in: access.expires_in,
            user,
        })
    }
}

fn taken(err: StoreError) -> AuthError {
    match err {
        StoreError::Conflict(what) if what.contains("anonymous") => AuthError::NotAnonymous,
        StoreError::Conflict(_) => AuthError::EmailTaken,
        other => other.into(),
    }
}

fn ignore_missing(result: Result<(), StoreError>) -> Result<(), AuthError> {
    match result {
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(other) => Err(other.into()),
    }
}

fn clean_name(name: Option<String>) -> Option<String> {
    name.map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(100).collect())
}

/// The bucket an address is throttled under: an IPv4 address itself, an IPv6 address's /64
/// (one subscriber's prefix: hopping addresses inside it buys nothing).
pub fn address_bucket(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod address_tests {
    use super::*;

    #[test]
    fn ipv6_addresses_share_their_64_and_ipv4_stands_alone() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_bucket(a), address_bucket(b));
        assert_ne!(address_bucket(a), address_bucket(c));
        assert_eq!(
            address_bucket("203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
        assert_eq!(
            address_bucket("::ffff:203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
    }
}
