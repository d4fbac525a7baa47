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

/// The client address `hops` trusted proxies report: the `hops`-th entry from the right of
/// every `X-Forwarded-For` line taken together (each proxy appends the address it was reached
/// from, so entries further left were written by the client and prove nothing).
pub(crate) fn forwarded_client(headers: &axum::http::HeaderMap, hops: u8) -> Option<IpAddr> {
    if hops == 0 {
        return None;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let entry = entries.iter().rev().nth(usize::from(hops) - 1)?;
    entry.parse::<IpAddr>().ok().or_else(|| {
        // `1.2.3.4:5678` and `[2001:db8::1]:5678` carry a port.
        entry.parse::<SocketAddr>().ok().map(|a| a.ip())
    })
}

#[cfg(test)]
mod forwarded_tests {
    use super::*;

    fn headers(lines: &[&str]) -> axum::http::HeaderMap {
        let mut map = axum::http::HeaderMap::new();
        for line in lines {
            map.append("x-forwarded-for", line.parse().unwrap());
        }
        map
    }

    #[test]
    fn the_client_is_counted_from_the_right_over_every_header_line() {
        let spoofed = headers(&["6.6.6.6, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(forwarded_client(&spoofed, 0), None);
        assert_eq!(
            forwarded_client(&spoofed, 1),
            Some("10.0.0.2".parse().unwrap())
        );
        assert_eq!(
            forwarded_client(&spoofed, 2),
            Some("203.0.113.9".parse().unwrap())
        );
        assert_eq!(forwarded_client(&spoofed, 5), None);
        let ported = headers(&["[2001:db8::1]:443"]);
        assert_eq!(
            forwarded_client(&ported, 1),
            Some("2001:db8::1".parse().unwrap())
        );
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
        let forwarded = forwarded_client(&parts.headers, state.http.trust_forwarded_for);
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
