//! One error type at the HTTP edge, answered as `application/problem+json` (RFC 9457).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_auth::AuthError;
use herald_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The `detail` of the router's fallback 404, which no handler uses.
pub(crate) const NO_SUCH_ROUTE: &str = "no such route; see /openapi.json";

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the request, e.g. `email` or `subscription.keys.auth`.
    pub field: String,
    /// What is wrong with it, in words a developer can act on.
    pub message: String,
}

impl FieldError {
    /// A failure of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything a handler can answer besides success. Internal causes are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, bad cursor).
    #[error("{0}")]
    BadRequest(String),
    /// 422: the request was read but its values are not acceptable.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 401: no credentials, or bad ones.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing there.
    #[error("{0}")]
    NotFound(String),
    /// 404 from the router's fallback: no route has this path. Same `type` as any 404; its
    /// fixed `detail` ([`NO_SUCH_ROUTE`]) tells it apart from a handler's 404.
    #[error("{NO_SUCH_ROUTE}")]
    NoSuchRoute,
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
    /// 413: body larger than the limit.
    #[error("request body is larger than the limit")]
    PayloadTooLarge,
    /// 415: not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: throttled; retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a retry can succeed.
        retry_after_seconds: u64,
    },
    /// 503: the request took too long or a dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// 503 with `Retry-After`: the server is at capacity for this kind of work right now.
    #[error("busy; try again in {retry_after_seconds} s")]
    Busy {
        /// Seconds to wait.
        retry_after_seconds: u64,
    },
    /// 500: a bug or an outage; the cause is logged.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// A store error, with "nothing there" told as `what` ("no such article"): for
    /// `.map_err(ApiError::missing("…"))` on a lookup by id.
    pub(crate) fn missing(what: &'static str) -> impl Fn(StoreError) -> Self {
        move |err| match err {
            StoreError::NotFound => Self::NotFound(what.into()),
            other => other.into(),
        }
    }

    /// A 500 carrying an internal cause for the log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) | Self::NoSuchRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            Self::BadRequest(_) => ("bad-request", "Bad request"),
            Self::Validation(_) => ("validation", "Validation failed"),
            Self::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NotFound(_) | Self::NoSuchRoute => ("not-found", "Not found"),
            Self::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::PayloadTooLarge => ("payload-too-large", "Payload too large"),
            Self::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            Self::TooManyRequests { .. } => ("too-many-requests", "Too many requests"),
            Self::Unavailable(_) | Self::Busy { .. } => ("unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal", "Internal server error"),
        }
    }
}

/// An error as `application/problem+json` (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Problem)]
pub(crate) struct Problem {
    /// What kind of problem: `urn:herald:problem:` and a slug such as `validation`.
    #[serde(rename = "type")]
    #[schema(example = "urn:herald:problem:validation")]
    kind: String,
    /// A short, fixed summary of the kind.
    #[schema(example = "Validation failed")]
    title: &'static str,
    /// The HTTP status code.
    #[schema(example = 422)]
    status: u16,
    /// What went wrong this time, in words a developer can act on.
    detail: String,
    /// For validation failures (422): every field that failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<Vec<FieldError>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (slug, title) = self.kind();
        let detail = match &self {
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "something went wrong on our side; it has been logged".to_string()
            }
            Self::Validation(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            Self::TooManyRequests {
                retry_after_seconds,
            } => {
                format!("slow down; try again in {retry_after_seconds} s")
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("urn:herald:problem:{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors: match &self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            Self::TooManyRequests {
                retry_after_seconds,
            }
            | Self::Busy {
                retry_after_seconds,
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::NotFound("not found".into()),
            StoreError::Conflict(_) => Self::Conflict("that already exists".into()),
            StoreError::Other(cause) => Self::internal(cause),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::InvalidCredentials => Self::Unauthorized("invalid email or password".into()),
            AuthError::InvalidToken(why) => Self::Unauthorized(format!("invalid token: {why}")),
            AuthError::TokenExpired => {
                Self::Unauthorized("the access token has expired; refresh it".into())
            }
            AuthError::SessionEnded => Self::Unauthorized(err.to_string()),
            AuthError::InvalidIdToken(why) => {
                Self::Unauthorized(format!("invalid ID token: {why}"))
            }
            AuthError::ProviderDisabled(_) => Self::NotFound(err.to_string()),
            AuthError::JwksUnavailable(why) => {
                tracing::warn!(%why, "identity provider keys unavailable");
                Self::Unavailable("the identity provider cannot be reached; try again".into())
            }
            AuthError::WeakPassword(why) => Self::invalid("password", why.to_string()),
            AuthError::PasswordRequired => Self::invalid("password", err.to_string()),
            AuthError::InvalidEmail(why) => Self::invalid("email", why),
            AuthError::EmailTaken | AuthError::AccountExists(_) | AuthError::NotAnonymous => {
                Self::Conflict(err.to_string())
            }
            AuthError::Throttled {
                retry_after_seconds,
            } => Self::TooManyRequests {
                retry_after_seconds,
            },
            AuthError::Busy {
                retry_after_seconds,
            } => Self::Busy {
                retry_after_seconds,
            },
            AuthError::NotFound => Self::NotFound("not found".into()),
            AuthError::Store(store) => store.into(),
            AuthError::Internal(cause) => Self::internal(cause),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn validation_errors_name_the_field() {
        let response = ApiError::invalid("email", "is not an email address").into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = body_json(response).await;
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["field"], "email");
    }

    #[tokio::test]
    async fn internal_errors_do_not_leak() {
        let response = ApiError::internal("password=hunter2 at db.rs:10").into_response();
        let body = body_json(response).await;
        assert!(!body.to_string().contains("hunter2"));
        assert_eq!(body["status"], 500);
    }

    #[tokio::test]
    async fn throttling_says_when_to_retry() {
        let response = ApiError::TooManyRequests {
            retry_after_seconds: 42,
        }
        .into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "42");
    }
}
