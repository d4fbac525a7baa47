//! Accounts and sessions: SPEC §3 "Accounts and sessions".

use crate::extract::Path;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized,
    Unavailable, UnsupportedMediaType, ValidationFailed,
};
use crate::session::{Client, CurrentUser};
use crate::{ApiError, ApiJson, AppState};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use herald_auth::{Provider, Tokens};
use herald_store::users::User;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(anonymous))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(oidc))
        .routes(routes!(me, update_me, delete_me))
        .routes(routes!(link))
        .routes(routes!(change_password))
        .routes(routes!(list_sessions))
        .routes(routes!(revoke_session))
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserBody {
    id: Uuid,
    /// Absent for anonymous readers and some Apple sign-ins.
    email: Option<String>,
    display_name: Option<String>,
    /// A reader who has not signed up yet (a fresh app install).
    is_anonymous: bool,
    /// `reader`, `editor` or `admin`.
    #[schema(example = "reader")]
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Tokens)]
pub struct TokenBody {
    /// A short-lived JWT for `Authorization: Bearer`.
    access_token: String,
    /// Opaque; spend it at `/v1/auth/refresh` for a new pair. It rotates on every use.
    refresh_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignupRequest {
    email: String,
    password: String,
    display_name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    refresh_token: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct OidcRequest {
    id_token: String,
    nonce: Option<String>,
}

/// Either a password or an Apple/Google ID token.
#[derive(Debug, Deserialize, ToSchema)]
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

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateMeRequest {
    display_name: Option<String>,
}

/// The password, asked again before an account with one is deleted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct DeleteMeRequest {
    password: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

/// A live session: one device or browser signed in.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
struct SessionBody {
    id: Uuid,
    user_agent: Option<String>,
    ip: Option<String>,
    created_at: DateTime<Utc>,
    last_used_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    /// The session of the token making this request.
    current: bool,
}

/// The caller's sessions, as one page.
#[derive(Debug, Serialize, ToSchema)]
struct SessionPage {
    items: Vec<SessionBody>,
    /// Always `null`: every session fits on one page.
    next_cursor: Option<String>,
}

/// A display name is shown to other readers beside comments: at most 100 characters, and
/// nothing that reorders or hides text ([`herald_auth::check_visible`]).
fn check_display_name(name: Option<&str>) -> Result<(), ApiError> {
    let Some(name) = name else {
        return Ok(());
    };
    if name.chars().count() > 100 {
        return Err(ApiError::invalid(
            "display_name",
            "must be at most 100 characters",
        ));
    }
    herald_auth::check_visible(name)
        .map_err(|why| ApiError::invalid("display_name", why.to_string()))
}

fn provider(name: &str) -> Result<Provider, ApiError> {
    name.parse().map_err(|_| {
        ApiError::NotFound(format!(
            "unknown identity provider `{name}`; use google or apple"
        ))
    })
}

/// The public keys that verify Herald's access tokens (JWKS).
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "accounts",
    responses((status = 200, description = "A JSON Web Key Set", body = Object))
)]
async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(axum::http::header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.accounts.jwks()),
    )
}

/// Create a password account; answers tokens.
#[utoipa::path(
    post,
    path = "/v1/auth/signup",
    tag = "accounts",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Signed up and signed in", body = TokenBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 409, response = Conflict),
        (status = 429, response = TooManyRequests),
    )
)]
async fn signup(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    check_display_name(req.display_name.as_deref())?;
    let tokens = state
        .accounts
        .signup(&req.email, &req.password, req.display_name, &client)
        .await?;
    Ok((StatusCode::CREATED, Json(tokens.into())))
}

/// Log in with email and password.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "accounts",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
        (status = 429, response = TooManyRequests),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/auth/anonymous",
    tag = "accounts",
    responses(
        (status = 201, description = "An anonymous reader, signed in", body = TokenBody),
    )
)]
async fn anonymous(
    State(state): State<AppState>,
    Client(client): Client,
) -> Result<(StatusCode, Json<TokenBody>), ApiError> {
    let tokens = state.accounts.anonymous(&client).await?;
    Ok((StatusCode::CREATED, Json(tokens.into())))
}

/// Spend a refresh token for a new token pair.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "accounts",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new token pair; the old refresh token is spent", body = TokenBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
    )
)]
async fn refresh(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<TokenBody>, ApiError> {
    Ok(Json(
        state.accounts.refresh(&req.refresh_token).await?.into(),
    ))
}

/// End the current session.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "accounts",
    security(("bearer" = [])),
    request_body(content = Option<LogoutRequest>, description = "Optional: an app that lost its refresh token can still log out"),
    responses(
        (status = 204, description = "The session has ended"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/auth/oidc/{provider}",
    tag = "accounts",
    params(("provider" = String, Path, description = "`google` or `apple`", example = "google")),
    request_body = OidcRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller", body = UserBody),
        (status = 401, response = Unauthorized),
    )
)]
async fn me(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<UserBody>, ApiError> {
    Ok(Json(state.accounts.me(&principal).await?.into()))
}

/// Change the caller's display name.
#[utoipa::path(
    patch,
    path = "/v1/me",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The changed profile", body = UserBody),
        (status = 401, response = Unauthorized),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
    )
)]
async fn update_me(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    ApiJson(req): ApiJson<UpdateMeRequest>,
) -> Result<Json<UserBody>, ApiError> {
    check_display_name(req.display_name.as_deref())?;
    Ok(Json(
        state
            .accounts
            .set_display_name(&principal, req.display_name)
            .await?
            .into(),
    ))
}

/// Delete the caller's account and everything that belongs to it.
#[utoipa::path(
    delete,
    path = "/v1/me",
    tag = "accounts",
    security(("bearer" = [])),
    request_body(content = Option<DeleteMeRequest>, description = "The password, again, for an account that has one; anonymous and Apple/Google-only accounts send no body"),
    responses(
        (status = 204, description = "The account and all its data are gone; every session of it has ended"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
async fn delete_me(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    body: axum::body::Bytes,
) -> Result<StatusCode, ApiError> {
    // Optional, as for logout: an anonymous reader has no password to send.
    let req: DeleteMeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteMeRequest::default()
    } else {
        crate::extract::parse(&body)?
    };
    state
        .accounts
        .delete_account(&principal, req.password.as_deref())
        .await
        .map_err(|e| match e {
            // Not 401: the token is good, and an app that took a 401 for an ended session
            // would sign the reader out.
            herald_auth::AuthError::InvalidCredentials => ApiError::Forbidden(
                "the password does not match; the account was not deleted".into(),
            ),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turn an anonymous reader into a full account (email/password or Apple/Google), same id.
#[utoipa::path(
    post,
    path = "/v1/me/link",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = LinkRequest,
    responses(
        (status = 200, description = "A full account with the same id", body = TokenBody),
        (status = 401, response = Unauthorized),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 409, response = Conflict),
        (status = 503, response = Unavailable),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/me/password",
    tag = "accounts",
    security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; other sessions have ended"),
        (status = 401, response = Unauthorized),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 429, response = TooManyRequests),
        (status = 503, response = Unavailable),
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/me/sessions",
    tag = "accounts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's live sessions", body = SessionPage),
        (status = 401, response = Unauthorized),
    )
)]
async fn list_sessions(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<SessionPage>, ApiError> {
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
    Ok(Json(SessionPage {
        items,
        next_cursor: None,
    }))
}

/// Revoke one of the caller's sessions.
#[utoipa::path(
    delete,
    path = "/v1/me/sessions/{id}",
    tag = "accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "A session id from `GET /v1/me/sessions`")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
async fn revoke_session(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("no such session".into()))?;
    state.accounts.revoke_session(&principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
