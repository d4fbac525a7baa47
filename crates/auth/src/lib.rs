//! Passwords, access and refresh tokens, and Apple/Google ID token verification for Herald.

pub mod access;
pub mod config;
pub mod cursor;
pub mod email;
pub mod error;
pub mod keys;
pub mod oidc;
pub mod password;
pub mod refresh;
pub mod sealing;
pub mod service;
pub mod text;

pub use access::{AccessClaims, AccessTokens, IssuedAccessToken};
pub use config::{AppleConfig, AuthConfig, GoogleConfig};
pub use cursor::{CursorError, CursorKey, CursorKeyError};
pub use email::Email;
pub use error::{AuthError, PasswordError};
pub use keys::{SigningKey, jwks_json};
pub use oidc::{IdTokenVerifier, Provider, UnknownProvider, VerifiedIdentity};
pub use password::{
    Password, hash as hash_password, needs_rehash, verify as verify_password,
    warm_up as warm_up_password_check,
};
pub use refresh::{RefreshToken, refresh_expires_at, session_expires_at, within_reuse_grace};
pub use sealing::{Keyring, SealingConfig, SealingError};
pub use service::{Accounts, ClientInfo, Principal, Tokens, address_bucket};
pub use text::{HiddenText, check_visible};
