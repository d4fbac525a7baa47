//! What the app's reading screens call: the front page by topic, search, an article with its
//! related coverage, stories, and the reader's own feed (SPEC §3 "Reading").
//!
//! Lists are newest first, paged by opaque signed cursors (`next_cursor`), and every answer
//! carries an `ETag` so a phone that already has it gets `304` and no body.

use crate::cache::{Caching, Rendered};
use crate::cursor::next_page;
use crate::error::Problem;
use crate::extract::Path;
use crate::{ApiError, AppState, CurrentUser};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use herald_store::StoreError;
use herald_store::articles::Article;
use herald_store::reading::{self, ArticleFilter, ListedArticle, SearchQuery, StoryKey};
use herald_store::stories::Story;
use herald_store::{articles, sources, subscriptions, topics};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Page size when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: u64 = 20;
/// Largest page.
pub(crate) const MAX_LIMIT: u64 = 100;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_articles))
        .routes(routes!(get_article))
        .routes(routes!(list_stories))
        .routes(routes!(get_story))
        .routes(routes!(my_feed))
}

/// An article's publisher.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SourceRef {
    id: Uuid,
    name: String,
}

/// An article as every list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticleBody {
    id: Uuid,
    /// Plain-text headline.
    title: String,
    /// The feed gave this entry no title: `title` was made by Herald from the summary's first
    /// sentence, else from the link (apps may show it differently).
    title_derived: bool,
    /// Plain text, at most 300 characters, cut at a word.
    summary: Option<String>,
    /// Canonical address (tracking parameters removed).
    url: Option<String>,
    image_url: Option<String>,
    author: Option<String>,
    source: SourceRef,
    /// Topic slugs.
    topics: Vec<String>,
    /// The story it belongs to (same event across publishers).
    story_id: Option<Uuid>,
    published_at: DateTime<Utc>,
    fetched_at: DateTime<Utc>,
}

impl ArticleBody {
    fn new(article: Article, source_name: String) -> Self {
        Self {
            id: article.id,
            title: article.title,
            title_derived: article.title_derived,
            summary: article.summary,
            url: article.canonical_url,
            image_url: article.image_url,
            author: article.author,
            source: SourceRef {
                id: article.source_id,
                name: source_name,
            },
            topics: article.topics,
            story_id: article.story_id,
            published_at: article.published_at,
            fetched_at: article.fetched_at,
        }
    }
}

impl From<ListedArticle> for ArticleBody {
    fn from(listed: ListedArticle) -> Self {
        Self::new(listed.article, listed.source_name)
    }
}

/// One page of articles.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticlePage {
    items: Vec<ArticleBody>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// An article with its sanitised body and its related coverage.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticleDetail {
    #[serde(flatten)]
    article: ArticleBody,
    /// Sanitised HTML body, when the feed carried one.
    content_html: Option<String>,
    /// Other articles of its story: other publishers first, newest first, at most 10.
    related: Vec<ArticleBody>,
}

/// A story: one event across publishers.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoryBody {
    id: Uuid,
    /// The first article's headline.
    headline: String,
    topics: Vec<String>,
    article_count: u32,
    /// Distinct publishers.
    source_count: u32,
    first_seen_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Whether it crossed a topic's breaking rule (or an editor alerted it).
    breaking: bool,
}

impl From<Story> for StoryBody {
    fn from(story: Story) -> Self {
        Self {
            id: story.id,
            headline: story.headline,
            topics: story.topics,
            article_count: story.article_count,
            source_count: story.source_count,
            first_seen_at: story.first_seen_at,
            updated_at: story.updated_at,
            breaking: story.breaking_at.is_some(),
        }
    }
}

/// One page of stories.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoryPage {
    items: Vec<StoryBody>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// A story with all its articles, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StoryDetail {
    #[serde(flatten)]
    story: StoryBody,
    articles: Vec<ArticleBody>,
}

/// Filters and paging of `GET /v1/articles`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ArticlesQuery {
    /// Topic slug (`GET /v1/topics`); unknown → 404.
    topic: Option<String>,
    /// Source id (`GET /v1/sources`); unknown → 404.
    source: Option<String>,
    /// Full-text search over headline and summary: whole words, all of them; headline
    /// matches rank first, then newest first.
    q: Option<String>,
    /// RFC 3339 time: only articles published at or after it.
    since: Option<String>,
    /// Page size, 1–100 (default 20).
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// Paging of the other lists.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Page size, 1–100 (default 20).
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// Filters and paging of `GET /v1/stories`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StoriesQuery {
    /// Topic slug; unknown → 404.
    topic: Option<String>,
    /// Page size, 1–100 (default 20).
    pub(crate) limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

/// A query string that could not be read: 400.
pub(crate) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query.map(|Query(q)| q).map_err(|rejection| {
        ApiError::BadRequest(format!("query string: {}", rejection.body_text()))
    })
}

/// `limit` as given, 1–100, else 422.
pub(crate) fn page_limit(limit: Option<&str>) -> Result<u64, ApiError> {
    let Some(limit) = limit else {
        return Ok(DEFAULT_LIMIT);
    };
    match limit.trim().parse::<u64>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid(
            "limit",
            "must be a whole number from 1 to 100",
        )),
    }
}

/// Reads one page of `filter` and renders it with its next cursor.
async fn article_page(
    state: &AppState,
    caching: Caching,
    scope: &str,
    filter: &ArticleFilter,
    limit: u64,
    cursor: Option<&str>,
) -> Result<Rendered, ApiError> {
    let after = cursor
        .map(|c| state.cursor_key.decode_article(scope, c))
        .transpose()?;
    let mut items = reading::articles(&state.db, filter, after, limit + 1).await?;
    let next_cursor = next_page(&mut items, limit, |last| {
        state.cursor_key.encode_article(scope, last.key)
    });
    let page = ArticlePage {
        items: items.into_iter().map(ArticleBody::from).collect(),
        next_cursor,
    };
    Rendered::json(caching, &page)
}

/// The cached answer for this URI when fresh, else `produce`'s, kept for the next reader.
/// `produce` parses the query and reads the database only on a miss: a hit's URI is one
/// that was answered before.
async fn through_cache(
    state: &AppState,
    headers: &HeaderMap,
    uri: &Uri,
    produce: impl Future<Output = Result<Rendered, ApiError>>,
) -> Result<Response, ApiError> {
    let key = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if let Some(hit) = state.read_cache.get(key) {
        return Ok(hit.respond(headers));
    }
    match produce.await {
        Ok(rendered) => {
            state.read_cache.put(key, &rendered);
            Ok(rendered.respond(headers))
        }
        Err(err) => {
            state.read_cache.abandon(key);
            Err(err)
        }
    }
}

/// 404 unless `slug` is a topic.
pub(crate) async fn known_topic(state: &AppState, slug: &str) -> Result<(), ApiError> {
    if topics::unknown(&state.db, &[slug.to_string()])
        .await?
        .is_empty()
    {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "no topic `{slug}`; GET /v1/topics lists them"
        )))
    }
}

/// Articles, newest first: the front page (`topic`), a publisher (`source`), or a search (`q`).
#[utoipa::path(
    get,
    path = "/v1/articles",
    tag = "reading",
    params(ArticlesQuery),
    responses(
        (status = 200, description = "A page of articles", body = ArticlePage,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` named the current ETag"),
        (status = 400, description = "Unreadable query string or a cursor this list did not give out",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown topic or source", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`limit`, `since` or `q` out of range", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn list_articles(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (headers, uri) = (request.headers(), request.uri());
    through_cache(&state, headers, uri, articles_page(&state, uri)).await
}

async fn articles_page(state: &AppState, uri: &Uri) -> Result<Rendered, ApiError> {
    let params = query(Query::<ArticlesQuery>::try_from_uri(uri))?;
    let limit = page_limit(params.limit.as_deref())?;
    let since = params
        .since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    ApiError::invalid(
                        "since",
                        "must be an RFC 3339 time, e.g. 2026-11-27T08:00:00Z",
                    )
                })
        })
        .transpose()?;
    let search = match params.q.as_deref() {
        None => None,
        Some(q) => Some(SearchQuery::parse(q).ok_or_else(|| {
            ApiError::invalid("q", "must hold at least one word (letters or digits)")
        })?),
    };
    let topic = params
        .topic
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(topic) = topic {
        known_topic(state, topic).await?;
    }
    let source_id = match params.source.as_deref() {
        None => None,
        Some(raw) => {
            let unknown =
                || ApiError::NotFound(format!("no source `{raw}`; GET /v1/sources lists them"));
            let id = Uuid::parse_str(raw.trim()).map_err(|_| unknown())?;
            match sources::get(&state.db, id).await {
                Ok(_) => Some(id),
                Err(StoreError::NotFound) => return Err(unknown()),
                Err(err) => return Err(err.into()),
            }
        }
    };
    let scope = herald_auth::cursor::article_scope(topic, source_id, since, search.as_ref());
    let filter = ArticleFilter {
        topics: topic.map(|t| vec![t.to_string()]).unwrap_or_default(),
        only_followed: false,
        source_id,
        since,
        search,
    };
    article_page(
        state,
        Caching::PublicList,
        &scope,
        &filter,
        limit,
        params.cursor.as_deref(),
    )
    .await
}

/// One article with `related`: other publishers' coverage of the same story.
#[utoipa::path(
    get,
    path = "/v1/articles/{id}",
    tag = "reading",
    params(("id" = Uuid, Path, description = "Article id")),
    responses(
        (status = 200, description = "The article", body = ArticleDetail,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` named the current ETag"),
        (status = 404, description = "No such article", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn get_article(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (headers, uri) = (request.headers(), request.uri());
    through_cache(&state, headers, uri, article_detail(&state, &id)).await
}

async fn article_detail(state: &AppState, id: &str) -> Result<Rendered, ApiError> {
    let not_found = ApiError::missing("no such article");
    let id = Uuid::parse_str(id).map_err(|_| not_found(StoreError::NotFound))?;
    let article = articles::get(&state.db, id).await.map_err(not_found)?;
    let source_name = sources::get(&state.db, article.source_id).await?.name;
    let related = reading::related(&state.db, &article).await?;
    let content_html = article.content_html.clone();
    let detail = ArticleDetail {
        article: ArticleBody::new(article, source_name),
        content_html,
        related: related.into_iter().map(ArticleBody::from).collect(),
    };
    Rendered::json(Caching::PublicItem, &detail)
}

/// Stories, most recently updated first.
#[utoipa::path(
    get,
    path = "/v1/stories",
    tag = "reading",
    params(StoriesQuery),
    responses(
        (status = 200, description = "A page of stories", body = StoryPage,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` named the current ETag"),
        (status = 400, description = "Unreadable query string or a foreign cursor", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown topic", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn list_stories(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (headers, uri) = (request.headers(), request.uri());
    through_cache(&state, headers, uri, stories_page(&state, uri)).await
}

async fn stories_page(state: &AppState, uri: &Uri) -> Result<Rendered, ApiError> {
    let params = query(Query::<StoriesQuery>::try_from_uri(uri))?;
    let limit = page_limit(params.limit.as_deref())?;
    let topic = params
        .topic
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(topic) = topic {
        known_topic(state, topic).await?;
    }
    let scope = format!("stories\x1f{}", topic.unwrap_or_default());
    let after = state
        .cursor_key
        .decode_time(&scope, params.cursor.as_deref())?
        .map(|(updated_at, id)| StoryKey { updated_at, id });
    let mut items = reading::stories(&state.db, topic, after, limit + 1).await?;
    let next_cursor = next_page(&mut items, limit, |last| {
        state
            .cursor_key
            .encode_time(&scope, last.updated_at, last.id)
    });
    let page = StoryPage {
        items: items.into_iter().map(StoryBody::from).collect(),
        next_cursor,
    };
    Rendered::json(Caching::PublicList, &page)
}

/// A story with all its articles, newest first.
#[utoipa::path(
    get,
    path = "/v1/stories/{id}",
    tag = "reading",
    params(("id" = Uuid, Path, description = "Story id")),
    responses(
        (status = 200, description = "The story", body = StoryDetail,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` named the current ETag"),
        (status = 404, description = "No such story", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn get_story(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (headers, uri) = (request.headers(), request.uri());
    through_cache(&state, headers, uri, story_detail(&state, &id)).await
}

async fn story_detail(state: &AppState, id: &str) -> Result<Rendered, ApiError> {
    let not_found = ApiError::missing("no such story");
    let id = Uuid::parse_str(id).map_err(|_| not_found(StoreError::NotFound))?;
    let (story, members) = reading::story_page(&state.db, id)
        .await
        .map_err(not_found)?;
    let detail = StoryDetail {
        story: story.into(),
        articles: members.into_iter().map(ArticleBody::from).collect(),
    };
    Rendered::json(Caching::PublicItem, &detail)
}

/// Articles of the topics the caller follows, newest first (empty when they follow none).
#[utoipa::path(
    get,
    path = "/v1/me/feed",
    tag = "reading",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the reader's feed", body = ArticlePage,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` named the current ETag"),
        (status = 400, description = "Unreadable query string or a foreign cursor", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "No valid access token", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "`limit` out of range", body = Problem,
            content_type = "application/problem+json"),
    )
)]
async fn my_feed(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    headers: HeaderMap,
    params: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let limit = page_limit(params.limit.as_deref())?;
    let followed = subscriptions::list(&state.db, principal.user_id).await?;
    // The cursor is the reader's own: it also names what they followed when it was made,
    // so a page after a change of topics starts again instead of mixing two lists.
    let scope = format!("feed\x1f{}\x1f{}", principal.user_id, followed.join(","));
    let filter = ArticleFilter {
        topics: followed,
        only_followed: true,
        ..Default::default()
    };
    let rendered = article_page(
        &state,
        Caching::Private,
        &scope,
        &filter,
        limit,
        params.cursor.as_deref(),
    )
    .await?;
    Ok(rendered.respond(&headers))
}
