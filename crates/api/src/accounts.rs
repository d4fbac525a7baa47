//! Accounts and sessions: SPEC §3 "Accounts and sessions".

use crate::session::{Client, CurrentUser};
use crate::{ApiError, ApiJson, AppState};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use herald_auth::{Provider, Tokens};
use herald_store::users::User;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/v1/auth/signup", post(signup))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/anonymous", post(anonymous))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/auth/oidc/{provider}", post(oidc))
        .route("/v1/me", get(me).patch(update_me).delete(delete_me))
        .route("/v1/me/link", post(link))
        .route("/v1/me/password", post(change_password))
        .route("/v1/me/sessions", get(list_sessions))
        .route("/v1/me/sessions/{id}", delete(revoke_session))
}

/// A user as the API shows it.
#[derive(Debug, Serialize)]
pub struct UserBody {
    id: Uuid,
    email: Option<String>,
    display_name: Option<String>,
    is_anonymous: bool,
    role: &'static str,
    created_at: DateTime<Utc>,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            email: user.email,
            display_name: user.display_name,
            is_anonymous: user.is_anonymous,
            role: user.role.as_str(),
            created_at: user.created_at,
        }
    }
}

/// What every sign-in answers.
#[derive(Debug, Serialize)]
pub struct TokenBody {
    access_token: String,
    refresh_token: String,
    token_type: &'static str,
    expires_in: u64,
    user: UserBody,
}

impl From<Tokens> for TokenBody {
    fn from(tokens: Tokens) -> Self {
        Self {
            access_token: tokens.access_token.expose().clone(),
            refresh_token: tokens.refresh_token.expose().clone(),
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            user: tokens.user.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignupRequest {
    email: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    refresh_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcRequest {
    id_token: String,
    nonce: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum LinkRequest {
    Password {
        email: String,
        password: String,
    },
    Provider {
        provider: String,
        id_token: String,
        nonce: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateMeRequest {
    display_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

#[derive(Debug, Serialize)]
struct SessionBody {
    id: Uuid,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    current: bool,
}

#[derive(Debug, Serialize)]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

fn provider(name: &str) -> Result<Provider, ApiError> {
    name.parse().map_err(|_| {
        ApiError::NotFound(format!(
            "unknown identity provider `{name}`; use google or apple"
        ))
    })
}

/// The public keys that verify Herald's access tokens (JWKS).
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.accounts.jwks()),
    )
}

/// Create a password account; answers tokens.
async fn signup(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    let tokens = state
        .accounts
        .signup(&req.email, &req.password, req.display_name, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(tokens.into())))
}

/// Log in with email and password.
async fn login(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<TokenBody>, ApiError> {
    Ok(Json(
        state
            .accounts
            .login(&req.email, &req.password, &client)
            .await?
            .into(),
    ))
}

/// Start as an anonymous reader (a fresh app install).
async fn anonymous(
    State(state): State<AppState>,
    Client(client): Client,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    let tokens = state.accounts.anonymous(&client).await?;
    Ok((StatusCode::CREATED, Json(tokens.into())))
}

/// Spend a refresh token for a new token pair.
async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenBody>, ApiError> {
    Ok(Json(
        state.accounts.refresh(&req.refresh_token).await?.into(),
    ))
}

/// End the current session.
async fn logout(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    // The body is optional: an app that lost its refresh token can still log out.
    let req: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        crate::extract::parse(&body)?
    };
    state
        .accounts
        .logout(&principal, req.refresh_token.as_deref())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sign in with an Apple or Google ID token.
async fn oidc(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Client(client): Client,
    ApiJson(req): ApiJson<OidcRequest>,
) -> Result<Json<TokenBody>, ApiError> {
    let provider = provider(&name)?;
    let tokens = state
        .accounts
        .sign_in_with(provider, &req.id_token, req.nonce.as_deref(), &client)
        .await?;
    Ok(Json(tokens.into()))
}

/// The caller's profile.
async fn me(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(state.accounts.me(&principal).await?.into()))
}

/// Change the caller's display name.
async fn update_me(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> Result<Json<UserBody>, ApiError> {
    if req
        .display_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 100)
    {
        return Err(ApiError::invalid(
            "display_name",
            "must be at most 100 characters",
        ));
    }
    Ok(Json(
        state
            .accounts
            .set_display_name(&principal, req.display_name)
            .await?
            .into(),
    ))
}

/// Delete the caller's account and everything that belongs to it.
async fn delete_me(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<StatusCode, ApiError> {
    state.accounts.delete_account(&principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turn an anonymous reader into a full account (email/password or Apple/Google), same id.
async fn link(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Client(client): Client,
    ApiJson(req): ApiJson<LinkRequest>,
) -> Result<Json<TokenBody>, ApiError> {
    let tokens = match req {
        LinkRequest::Password { email, password } => {
            state
                .accounts
                .link_password(&principal, &email, &password, &client)
                .await?
        }
        LinkRequest::Provider {
            provider: name,
            id_token,
            nonce,
        } => {
            let provider = provider(&name)
                .map_err(|_| ApiError::invalid("provider", "must be google or apple"))?;
            state
                .accounts
                .link_provider(&principal, provider, &id_token, nonce.as_deref(), &client)
                .await?
        }
    };
    Ok(Json(tokens.into()))
}

/// Change the password; every other session ends.
async fn change_password(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    ApiJson(req): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .change_password(&principal, &req.current_password, &req.new_password)
        .await
        .map_err(|e| match e {
            herald_auth::AuthError::InvalidCredentials => {
                ApiError::invalid("current_password", "does not match")
            }
            herald_auth::AuthError::WeakPassword(why) => {
                ApiError::invalid("new_password", why.to_string())
            }
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's live sessions (devices logged in).
async fn list_sessions(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<Page<SessionBody>>, ApiError> {
    let items = state
        .accounts
        .sessions(&principal)
        .await?
        .into_iter()
        .map(|s| SessionBody {
            current: s.id == principal.session_id,
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
        })
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Revoke one of the caller's sessions.
async fn revoke_session(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("no such session".into()))?;
    state.accounts.revoke_session(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
