//! Comments on articles: plain text as typed (clients escape it; it is never rendered as
//! HTML), posted by readers with an account, at most [`PER_MINUTE`] a minute and
//! [`PER_DAY`] a day each; authors delete their own, editors any.

use crate::cache::{self, Caching};
use crate::cursor::next_page;
use crate::error::Problem;
use crate::extract::Path;
use crate::reading::{PageQuery, page_limit, query};
use crate::{ApiError, ApiJson, AppState, CurrentUser};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use herald_store::comments::{self, Comment, CommentKey};
use herald_store::users::{self, Role};
use herald_store::{StoreError, throttle};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// Comments one reader may post in a minute.
pub const PER_MINUTE: u64 = 5;
/// Comments one reader may post in a day.
pub const PER_DAY: u64 = 200;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_comments, post_comment))
        .routes(routes!(delete_comment))
}

/// A comment's author as others see them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuthorBody {
    id: Uuid,
    /// Their chosen name, or `null`.
    display_name: Option<String>,
}

/// A comment.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommentBody {
    id: Uuid,
    article_id: Uuid,
    author: AuthorBody,
    /// Plain text exactly as typed: escape it when showing it.
    body: String,
    created_at: DateTime<Utc>,
}

impl From<Comment> for CommentBody {
    fn from(c: Comment) -> Self {
        Self {
            id: c.id,
            article_id: c.article_id,
            author: AuthorBody {
                id: c.user_id,
                display_name: c.author_name,
            },
            body: c.body,
            created_at: c.created_at,
        }
    }
}

/// One page of comments, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CommentPage {
    items: Vec<CommentBody>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A new comment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewComment {
    /// Plain text, 1–2,000 characters; not only whitespace.
    body: String,
}

fn article_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("no such article".into()))
}

fn article_missing(err: StoreError) -> ApiError {
    ApiError::missing("no such article")(err)
}

/// An article's comments, oldest first.
#[utoipa::path(
    get,
    path = "/v1/articles/{id}/comments",
    tag = "comments",
    params(("id" = Uuid, Path, description = "Article id"), PageQuery),
    responses(
        (status = 200, description = "A page of comments", body = CommentPage,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` named the current ETag"),
        (status = 400, description = "Unreadable query string or a foreign cursor", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such article", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn list_comments(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = article_id(&id)?;
    let params = query(params)?;
    let limit = page_limit(params.limit.as_deref())?;
    herald_store::articles::get(&state.db, id)
        .await
        .map_err(article_missing)?;
    let scope = format!("comments\x1f{id}");
    let after = state
        .cursor_key
        .decode_time(&scope, params.cursor.as_deref())?
        .map(|(created_at, id)| CommentKey { created_at, id });
    let mut items = comments::list(&state.db, id, after, limit + 1).await?;
    let next_cursor = next_page(&mut items, limit, |last| {
        state
            .cursor_key
            .encode_time(&scope, last.created_at, last.id)
    });
    let page = CommentPage {
        items: items.into_iter().map(CommentBody::from).collect(),
        next_cursor,
    };
    Ok(cache::json(&headers, Caching::PublicRevalidate, &page))
}

/// What is wrong with a comment's text, if anything.
fn check_body(body: &str) -> Result<(), ApiError> {
    let chars = body.chars().count();
    if body.trim().is_empty() {
        return Err(ApiError::invalid(
            "body",
            "must not be empty or only whitespace",
        ));
    }
    if chars > MAX_COMMENT_CHARS {
        return Err(ApiError::invalid(
            "body",
            format!("must be at most {MAX_COMMENT_CHARS} characters (this is {chars})"),
        ));
    }
    herald_auth::check_visible(body).map_err(|why| ApiError::invalid("body", why.to_string()))
}

/// 429 when `scope` already posted `limit` comments within `window`.
async fn throttled(
    state: &AppState,
    scope: &str,
    limit: u64,
    window: Duration,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let count = throttle::count(&state.db, scope, window, now).await?;
    if count.count < limit {
        return Ok(());
    }
    let frees_at = count.oldest.unwrap_or(now) + window;
    Err(ApiError::TooManyRequests {
        retry_after_seconds: (frees_at - now).num_seconds().max(1).unsigned_abs(),
    })
}

/// Posts a comment (readers with an account; anonymous readers get 403).
#[utoipa::path(
    post,
    path = "/v1/articles/{id}/comments",
    tag = "comments",
    params(("id" = Uuid, Path, description = "Article id")),
    request_body = NewComment,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Posted", body = CommentBody),
        (status = 400, description = "Malformed JSON", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "No valid access token", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Anonymous readers cannot post; make an account first",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such article", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Body over the limit", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Empty, too long, or not plain text (control, bidirectional or invisible characters)", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Posting too fast; see Retry-After", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn post_comment(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<String>,
    ApiJson(new): ApiJson<NewComment>,
) -> Result<Response, ApiError> {
    let id = article_id(&id)?;
    let author = users::by_id(&state.db, principal.user_id).await?;
    if author.is_anonymous {
        return Err(ApiError::Forbidden(
            "anonymous readers cannot comment; sign up (POST /v1/auth/signup) first".into(),
        ));
    }
    check_body(&new.body)?;
    let now = Utc::now();
    let scope = format!("comment:{}", principal.user_id);
    throttled(&state, &scope, PER_MINUTE, Duration::minutes(1), now).await?;
    throttled(&state, &scope, PER_DAY, Duration::days(1), now).await?;
    let posted = comments::create(&state.db, id, principal.user_id, &new.body, now)
        .await
        .map_err(article_missing)?;
    throttle::record(&state.db, &scope, now, Duration::days(1)).await?;
    Ok((StatusCode::CREATED, axum::Json(CommentBody::from(posted))).into_response())
}

/// Deletes a comment: its author, or an editor or admin.
#[utoipa::path(
    delete,
    path = "/v1/comments/{id}",
    tag = "comments",
    params(("id" = Uuid, Path, description = "Comment id")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted; it no longer appears in lists"),
        (status = 401, description = "No valid access token", body = Problem,
            content_type = "application/problem+json"),
        (status = 403, description = "Someone else's comment", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such comment", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn delete_comment(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let missing = ApiError::missing("no such comment");
    let id = Uuid::parse_str(&id).map_err(|_| missing(StoreError::NotFound))?;
    let found = comments::get(&state.db, id).await.map_err(&missing)?;
    if found.user_id != principal.user_id && principal.role < Role::Editor {
        return Err(ApiError::Forbidden(
            "only its author or an editor can delete a comment".into(),
        ));
    }
    match comments::delete(&state.db, id).await {
        Ok(()) | Err(StoreError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comment_text_is_checked_not_changed() {
        assert!(check_body("<script>alert(1)</script> & fine").is_ok());
        assert!(check_body("line one\nline two\ttab").is_ok());
        assert!(check_body(&"é".repeat(MAX_COMMENT_CHARS)).is_ok());
        assert!(check_body(&"é".repeat(MAX_COMMENT_CHARS + 1)).is_err());
        assert!(check_body(" \n\t ").is_err());
        assert!(check_body("nul\0byte").is_err());
    }
}
