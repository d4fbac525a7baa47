//! Errors returned by the auth crate, shaped so the HTTP layer can map each to a status.

use crate::oidc::Provider;

/// Why a password was refused at signup or password change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    /// Fewer than the minimum number of characters.
    #[error("must be at least {min} characters", min = crate::password::MIN_CHARS)]
    TooShort,
    /// More than the maximum number of characters.
    #[error("must be at most {max} characters", max = crate::password::MAX_CHARS)]
    TooLong,
    /// Appears in the list of commonly used (leaked) passwords.
    #[error("is too common; choose a password that is harder to guess")]
    Common,
}

/// Everything that can go wrong while authenticating someone.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Email or password did not match (never says which).
    #[error("invalid email or password")]
    InvalidCredentials,
    /// An access or refresh token is malformed, forged or otherwise unacceptable.
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    /// An access token was genuine but has expired.
    #[error("token expired")]
    TokenExpired,
    /// A Google or Apple ID token failed verification.
    #[error("invalid ID token: {0}")]
    InvalidIdToken(String),
    /// Sign-in with this provider is not configured (no client ids).
    #[error("sign in with {0} is not enabled")]
    ProviderDisabled(Provider),
    /// The provider's signing keys could not be fetched.
    #[error("identity provider keys unavailable: {0}")]
    JwksUnavailable(String),
    /// A new password was refused.
    #[error("password {0}")]
    WeakPassword(#[from] PasswordError),
    /// A bug or an environment failure; logged, never shown to users.
    #[error("internal auth error: {0}")]
    Internal(String),
    /// Every password-hashing slot stayed busy for the queue's wait: try again shortly.
    #[error("too many sign-ins at once; try again in {retry_after_seconds} s")]
    Busy {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// The email address is not one.
    #[error("{0}")]
    InvalidEmail(String),
    /// Another account has this email.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// A provider sign-in whose email belongs to a password account: never merged silently.
    #[error(
        "an account with this email already exists; log in with its password and link {0} from there"
    )]
    AccountExists(Provider),
    /// Only anonymous accounts can be linked.
    #[error("this account is already a full account")]
    NotAnonymous,
    /// The action asks for the account's password again and none was given.
    #[error("this account has a password; give it again to confirm")]
    PasswordRequired,
    /// The session was revoked, ended or expired.
    #[error("the session has ended; log in again")]
    SessionEnded,
    /// Too many attempts; retry after this many seconds.
    #[error("too many attempts; try again in {retry_after_seconds} s")]
    Throttled {
        /// Seconds until a slot frees.
        retry_after_seconds: u64,
    },
    /// The thing asked for does not exist (or is not the caller's).
    #[error("not found")]
    NotFound,
    /// The database failed.
    #[error("storage: {0}")]
    Store(herald_store::StoreError),
}

impl From<herald_store::StoreError> for AuthError {
    fn from(err: herald_store::StoreError) -> Self {
        match err {
            herald_store::StoreError::NotFound => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_errors_read_as_advice() {
        assert_eq!(
            PasswordError::TooShort.to_string(),
            "must be at least 12 characters"
        );
        assert_eq!(
            PasswordError::TooLong.to_string(),
            "must be at most 256 characters"
        );
        assert_eq!(
            AuthError::from(PasswordError::TooShort).to_string(),
            "password must be at least 12 characters"
        );
    }

    #[test]
    fn provider_disabled_names_the_provider() {
        assert_eq!(
            AuthError::ProviderDisabled(Provider::Apple).to_string(),
            "sign in with apple is not enabled"
        );
    }
}
