//! Who is calling: the bearer token's user, the roles a route requires, the client's address.

use crate::{ApiError, AppState};
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use herald_auth::{ClientInfo, Principal};
use herald_store::users::Role;
use std::net::{IpAddr, SocketAddr};

/// The authenticated caller; 401 without a valid bearer token of a live session.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUser(pub Principal);

impl<S> FromRequestParts<S> for CurrentUser
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(*user);
        }
        let state = AppState::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized("send `Authorization: Bearer <access token>`".into())
            })?;
        let principal = state.accounts.authenticate(token).await?;
        let user = CurrentUser(principal);
        parts.extensions.insert(user);
        Ok(user)
    }
}

/// The caller, required to be an editor or an admin; 403 otherwise.
#[derive(Debug, Clone, Copy)]
pub struct RequireEditor(pub Principal);

impl<S> FromRequestParts<S> for RequireEditor
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let CurrentUser(principal) = CurrentUser::from_request_parts(parts, state).await?;
        if principal.role >= Role::Editor {
            Ok(Self(principal))
        } else {
            Err(ApiError::Forbidden(
                "this needs the editor or admin role".into(),
            ))
        }
    }
}

/// The client's address and User-Agent, for sessions and throttling.
#[derive(Debug, Clone, Default)]
pub struct Client(pub ClientInfo);

impl<S> FromRequestParts<S> for Client
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let forwarded = state
            .http
            .trust_forwarded_for
            .then(|| parts.headers.get("x-forwarded-for"))
            .flatten()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|ip| ip.trim().parse::<IpAddr>().ok());
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect());
        Ok(Self(ClientInfo {
            ip: forwarded.or(peer),
            user_agent,
        }))
    }
}
