//! Publishers' feeds: the reader's `GET /v1/sources` and the newsroom's source management
//! with health (SPEC §3 "Reading" and "Newsroom"), and the newsroom's view of stories: how
//! close each is to its topic's breaking rule and whether it was alerted.

use crate::extract::Path;
use crate::openapi::{
    BadRequest, Conflict, Forbidden, NotFound, PayloadTooLarge, Unauthorized, UnsupportedMediaType,
    ValidationFailed,
};
use crate::session::RequireEditor;
use crate::{ApiError, ApiJson, AppState, FieldError};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use herald_store::sources::{self, NewSource, Source, SourcePatch};
use herald_store::{StoreError, newsroom, topics};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

/// Shortest fixed poll interval an editor may set.
const MIN_POLL_INTERVAL_SECONDS: u32 = 60;
/// Longest fixed poll interval an editor may set.
const MAX_POLL_INTERVAL_SECONDS: u32 = 86_400;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_publishers))
        .routes(routes!(list_sources, create_source))
        .routes(routes!(get_source, update_source, delete_source))
        .routes(routes!(newsroom_stories))
}

/// A publisher whose articles Herald shows.
#[derive(Serialize, ToSchema)]
#[schema(as = Publisher)]
struct PublisherBody {
    id: Uuid,
    name: String,
    /// The publisher's home page.
    site_url: Option<String>,
    /// Slugs of the topics it covers.
    topics: Vec<String>,
}

/// Publishers whose articles Herald shows.
#[utoipa::path(
    get,
    path = "/v1/sources",
    tag = "reading",
    responses((status = 200, description = "Every publisher", body = Vec<PublisherBody>))
)]
async fn list_publishers(
    State(state): State<AppState>,
) -> Result<Json<Vec<PublisherBody>>, ApiError> {
    let list = sources::list(&state.db).await?;
    Ok(Json(
        list.into_iter()
            .map(|s| PublisherBody {
                id: s.id,
                name: s.name,
                site_url: s.site_url,
                topics: s.topics,
            })
            .collect(),
    ))
}

/// How fetching a source's feed is going.
#[derive(Serialize, ToSchema)]
#[schema(as = SourceHealth)]
struct HealthBody {
    last_fetch_at: Option<DateTime<Utc>>,
    /// HTTP status of the last fetch.
    last_status: Option<u16>,
    /// Failed fetches in a row.
    error_count: u32,
    last_error: Option<String>,
    next_fetch_at: DateTime<Utc>,
    /// Paused by an editor: not fetched until resumed (`next_fetch_at` is then meaningless).
    paused: bool,
    /// Articles stored per day, averaged over the last week.
    items_per_day: f64,
    /// What became of the feed's entries, summed over every fetch and push.
    entries: EntriesBody,
    /// Why the last refused entry was refused, and which it was.
    last_refusal: Option<String>,
    /// Real-time delivery by WebSub: `off` (no `http.public_url`), `none` (no hub advertised),
    /// or the subscription's state, with what it means.
    websub: WebSubBody,
}

/// What became of a source's feed entries.
#[derive(Serialize, ToSchema, Default)]
#[schema(as = SourceEntries)]
struct EntriesBody {
    /// Entries in the feed bodies read.
    seen: u64,
    /// Stored as new articles.
    ingested: u64,
    /// Known articles whose text or image changed.
    updated: u64,
    /// Already known (this feed's or another feed's same link).
    duplicates: u64,
    /// Refused, by reason.
    refused: RefusedBody,
    /// Stored with a headline made from their summary or link (they had no title).
    derived_titles: u64,
    /// Feed bodies that came by WebSub push rather than by a poll.
    pushed: u64,
}

/// Entries refused, by reason.
#[derive(Serialize, ToSchema, Default)]
#[schema(as = SourceRefusals)]
struct RefusedBody {
    /// Neither a title (nor text to make one) nor a link.
    no_title_or_link: u64,
}

/// A source's WebSub status.
#[derive(Serialize, ToSchema)]
#[schema(as = SourceWebSub)]
struct WebSubBody {
    state: String,
    detail: String,
}

/// A publisher's feed as the newsroom manages it.
#[derive(Serialize, ToSchema)]
#[schema(as = Source)]
struct SourceBody {
    id: Uuid,
    name: String,
    /// The feed's URL (RSS or Atom).
    url: String,
    site_url: Option<String>,
    topics: Vec<String>,
    language: Option<String>,
    /// Whether its stories may become breaking alerts.
    breaking: bool,
    /// Fixed poll interval; `null`: adaptive.
    poll_interval_seconds: Option<u32>,
    health: HealthBody,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// What the health of every source is read with besides the source itself.
struct Activity {
    paused: std::collections::HashSet<Uuid>,
    items_per_day: std::collections::HashMap<Uuid, f64>,
    entries: std::collections::HashMap<Uuid, herald_store::source_health::SourceHealth>,
    subscriptions: std::collections::HashMap<Uuid, herald_store::websub::Subscription>,
    websub_on: bool,
}

impl Activity {
    async fn read(state: &AppState) -> Result<Self, ApiError> {
        Ok(Self {
            paused: newsroom::paused(&state.db).await?,
            items_per_day: newsroom::items_per_day(&state.db).await?,
            entries: herald_store::source_health::all(&state.db).await?,
            subscriptions: herald_store::websub::list(&state.db)
                .await?
                .into_iter()
                .map(|s| (s.source_id, s))
                .collect(),
            websub_on: state.http.public_url.is_some(),
        })
    }

    fn body(&self, source: Source) -> SourceBody {
        let mut body = SourceBody::from(source);
        let id = body.id;
        body.health.paused = self.paused.contains(&id);
        body.health.items_per_day = self.items_per_day.get(&id).copied().unwrap_or(0.0);
        if let Some(health) = self.entries.get(&id) {
            let c = &health.counts;
            body.health.entries = EntriesBody {
                seen: c.seen,
                ingested: c.ingested,
                updated: c.updated,
                duplicates: c.duplicates,
                refused: RefusedBody {
                    no_title_or_link: c.refused_no_title_or_link,
                },
                derived_titles: c.derived_titles,
                pushed: c.pushed,
            };
            body.health.last_refusal = health.last_refusal.clone();
        }
        let push =
            herald_store::websub::describe(self.websub_on, self.subscriptions.get(&id), Utc::now());
        body.health.websub = WebSubBody {
            state: push.state,
            detail: push.detail,
        };
        body
    }
}

impl From<Source> for SourceBody {
    fn from(s: Source) -> Self {
        Self {
            id: s.id,
            name: s.name,
            url: s.feed_url,
            site_url: s.site_url,
            topics: s.topics,
            language: s.language,
            breaking: s.breaking,
            poll_interval_seconds: s.poll_interval_seconds,
            health: HealthBody {
                last_fetch_at: s.last_fetch_at,
                last_status: s.last_status,
                error_count: s.error_count,
                last_error: s.last_error,
                next_fetch_at: s.next_fetch_at,
                paused: false,
                items_per_day: 0.0,
                entries: EntriesBody::default(),
                last_refusal: None,
                websub: WebSubBody {
                    state: "off".into(),
                    detail: String::new(),
                },
            },
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Every source with its health (editors).
#[utoipa::path(
    get,
    path = "/v1/admin/sources",
    tag = "newsroom",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every source with its health", body = Vec<SourceBody>),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
async fn list_sources(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
) -> Result<Json<Vec<SourceBody>>, ApiError> {
    let list = sources::list(&state.db).await?;
    let activity = Activity::read(&state).await?;
    Ok(Json(list.into_iter().map(|s| activity.body(s)).collect()))
}

/// One source with its health (editors).
#[utoipa::path(
    get,
    path = "/v1/admin/sources/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "A source id")),
    responses(
        (status = 200, description = "The source with its health", body = SourceBody),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
async fn get_source(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    Path(id): Path<String>,
) -> Result<Json<SourceBody>, ApiError> {
    let id = parse_id(&id)?;
    let found = sources::get(&state.db, id).await.map_err(not_found)?;
    Ok(Json(Activity::read(&state).await?.body(found)))
}

/// A new source.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateSource {
    /// 1–200 characters.
    name: String,
    /// The feed's absolute http(s) URL (`feed_url` is accepted too).
    #[serde(alias = "feed_url")]
    url: String,
    site_url: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    /// A language tag such as `en` or `en-in`.
    language: Option<String>,
    #[serde(default)]
    breaking: bool,
    /// 60–86400 seconds; absent: adaptive.
    #[schema(minimum = 60, maximum = 86400)]
    poll_interval_seconds: Option<u32>,
}

/// Add a source; it is fetched at once (editors).
#[utoipa::path(
    post,
    path = "/v1/admin/sources",
    tag = "newsroom",
    security(("bearer" = [])),
    request_body = CreateSource,
    responses(
        (status = 201, description = "Added; its first fetch is due now", body = SourceBody),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 409, response = Conflict),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
async fn create_source(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    ApiJson(req): ApiJson<CreateSource>,
) -> Result<(StatusCode, Json<SourceBody>), ApiError> {
    let mut errors = Vec::new();
    let name = check_name(&req.name, &mut errors);
    let feed_url = check_url("url", &req.url, &mut errors);
    let site_url = req
        .site_url
        .as_deref()
        .and_then(|u| check_url("site_url", u, &mut errors));
    let language = req
        .language
        .as_deref()
        .and_then(|l| check_language(l, &mut errors));
    check_interval(req.poll_interval_seconds, &mut errors);
    check_topics(&state, &req.topics, &mut errors).await?;
    let (Some(name), Some(feed_url)) = (name, feed_url) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let created = sources::create(
        &state.db,
        NewSource {
            name,
            feed_url,
            site_url,
            topics: dedup(req.topics),
            language,
            breaking: req.breaking,
            poll_interval_seconds: req.poll_interval_seconds,
        },
    )
    .await
    .map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::Conflict("a source with this url exists".into()),
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// `Some(None)` for an explicit `null`, `Some(Some(v))` for a value, `None` when absent.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Changes to a source: fields left out stay as they are; `null` clears a nullable one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateSource {
    name: Option<String>,
    #[serde(alias = "feed_url")]
    url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    site_url: Option<Option<String>>,
    topics: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    language: Option<Option<String>>,
    breaking: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, minimum = 60, maximum = 86400)]
    poll_interval_seconds: Option<Option<u32>>,
    /// `true` pauses fetching the feed; `false` resumes it (fetched at once).
    paused: Option<bool>,
}

/// Change a source; fields left out stay as they are (editors).
#[utoipa::path(
    patch,
    path = "/v1/admin/sources/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "A source id")),
    request_body = UpdateSource,
    responses(
        (status = 200, description = "The changed source", body = SourceBody),
        (status = 404, response = NotFound),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = ValidationFailed),
        (status = 409, response = Conflict),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
async fn update_source(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateSource>,
) -> Result<Json<SourceBody>, ApiError> {
    let id = parse_id(&id)?;
    let mut errors = Vec::new();
    let mut patch = SourcePatch::default();
    if let Some(name) = &req.name {
        patch.name = check_name(name, &mut errors);
    }
    if let Some(url) = &req.url {
        patch.feed_url = check_url("url", url, &mut errors);
    }
    if let Some(site_url) = &req.site_url {
        patch.site_url = Some(
            site_url
                .as_deref()
                .and_then(|u| check_url("site_url", u, &mut errors)),
        );
    }
    if let Some(language) = &req.language {
        patch.language = Some(
            language
                .as_deref()
                .and_then(|l| check_language(l, &mut errors)),
        );
    }
    if let Some(interval) = req.poll_interval_seconds {
        check_interval(interval, &mut errors);
        patch.poll_interval_seconds = Some(interval);
    }
    if let Some(topics) = &req.topics {
        check_topics(&state, topics, &mut errors).await?;
        patch.topics = Some(dedup(topics.clone()));
    }
    patch.breaking = req.breaking;
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let updated = sources::update(&state.db, id, patch)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("a source with this url exists".into()),
            other => not_found(other),
        })?;
    if let Some(paused) = req.paused {
        newsroom::set_paused(&state.db, id, paused)
            .await
            .map_err(not_found)?;
        tracing::info!(source = %id, paused, "source paused or resumed");
    }
    let updated = if req.paused.is_some() {
        sources::get(&state.db, id).await.map_err(not_found)?
    } else {
        updated
    };
    Ok(Json(Activity::read(&state).await?.body(updated)))
}

/// Remove a source and its articles (editors).
#[utoipa::path(
    delete,
    path = "/v1/admin/sources/{id}",
    tag = "newsroom",
    security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "A source id")),
    responses(
        (status = 204, description = "Removed with its articles"),
        (status = 404, response = NotFound),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
async fn delete_source(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    sources::delete(&state.db, id).await.map_err(not_found)?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::NotFound("no such source".into()))
}

fn not_found(err: StoreError) -> ApiError {
    match err {
        StoreError::NotFound => ApiError::NotFound("no such source".into()),
        other => other.into(),
    }
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1–200 characters"));
        return None;
    }
    Some(name.to_string())
}

fn check_url(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let parsed = url::Url::parse(raw.trim()).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    });
    match parsed {
        Some(url) if url.as_str().len() <= 2048 => Some(url.to_string()),
        _ => {
            errors.push(FieldError::new(
                field,
                "must be an absolute http or https URL of at most 2048 characters",
            ));
            None
        }
    }
}

fn check_language(raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let tag = raw.trim().to_lowercase();
    let ok = !tag.is_empty()
        && tag.len() <= 35
        && tag
            .split('-')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric()));
    if !ok {
        errors.push(FieldError::new(
            "language",
            "must be a language tag such as en or en-in",
        ));
        return None;
    }
    Some(tag)
}

fn check_interval(seconds: Option<u32>, errors: &mut Vec<FieldError>) {
    if let Some(seconds) = seconds
        && !(MIN_POLL_INTERVAL_SECONDS..=MAX_POLL_INTERVAL_SECONDS).contains(&seconds)
    {
        errors.push(FieldError::new(
            "poll_interval_seconds",
            format!("must be between {MIN_POLL_INTERVAL_SECONDS} and {MAX_POLL_INTERVAL_SECONDS}"),
        ));
    }
}

async fn check_topics(
    state: &AppState,
    slugs: &[String],
    errors: &mut Vec<FieldError>,
) -> Result<(), ApiError> {
    let unknown = topics::unknown(&state.db, slugs).await?;
    if !unknown.is_empty() {
        errors.push(FieldError::new(
            "topics",
            format!("unknown topic slugs: {}", unknown.join(", ")),
        ));
    }
    Ok(())
}

fn dedup(mut slugs: Vec<String>) -> Vec<String> {
    let mut seen = Vec::with_capacity(slugs.len());
    slugs.retain(|s| {
        if seen.contains(s) {
            false
        } else {
            seen.push(s.clone());
            true
        }
    });
    slugs
}

/// A story as the newsroom sees it.
#[derive(Serialize, ToSchema)]
#[schema(as = NewsroomStory)]
struct NewsroomStoryBody {
    id: Uuid,
    headline: String,
    topics: Vec<String>,
    article_count: u32,
    /// Distinct publishers.
    source_count: u32,
    first_seen_at: DateTime<Utc>,
    /// When an article was last added.
    updated_at: DateTime<Utc>,
    /// It crossed a topic's breaking rule (or an editor alerted it).
    breaking: bool,
    /// Some alert was made about it.
    alerted: bool,
    /// Not breaking yet and one publisher short of a topic's breaking rule (distinct
    /// publishers with an article published within the rule's window, as the ingest counts).
    near_breaking: bool,
    /// The rule nearest to firing among its topics': publishers it needs...
    min_sources: Option<u32>,
    /// ...publishers with an article in its window now...
    publishers_in_window: u32,
    /// ...and its window in minutes.
    window_minutes: Option<u32>,
}

/// One page of the newsroom's stories.
#[derive(Serialize, ToSchema)]
#[schema(as = NewsroomStoryPage)]
struct NewsroomStoryPage {
    items: Vec<NewsroomStoryBody>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    next_cursor: Option<String>,
}

/// Filters and paging of the newsroom's stories.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct NewsroomStoriesQuery {
    /// Topic slug; unknown → 404.
    topic: Option<String>,
    /// Words the headline contains (case-insensitive).
    q: Option<String>,
    /// Page size, 1–100 (default 20).
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Stories, most recently updated first, marked when near their topic's breaking rule or
/// already alerted (editors). Carries an `ETag`: poll with `If-None-Match` for new ones.
#[utoipa::path(
    get,
    path = "/v1/admin/stories",
    tag = "newsroom",
    security(("bearer" = [])),
    params(NewsroomStoriesQuery),
    responses(
        (status = 200, description = "A page of stories", body = NewsroomStoryPage,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "`If-None-Match` named the current ETag"),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 422, response = ValidationFailed),
    )
)]
async fn newsroom_stories(
    State(state): State<AppState>,
    RequireEditor(_editor): RequireEditor,
    headers: axum::http::HeaderMap,
    params: Result<
        axum::extract::Query<NewsroomStoriesQuery>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Result<axum::response::Response, ApiError> {
    let params = crate::reading::query(params)?;
    let limit = crate::reading::page_limit(params.limit.as_deref())?;
    let topic = params
        .topic
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(topic) = topic {
        crate::reading::known_topic(&state, topic).await?;
    }
    let search = params.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if search.is_some_and(|q| q.chars().count() > 200) {
        return Err(ApiError::invalid("q", "must be at most 200 characters"));
    }
    let scope = format!(
        "admin-stories\x1f{}\x1f{}",
        topic.unwrap_or_default(),
        search.unwrap_or_default()
    );
    let after = state
        .cursor_key
        .decode_time(&scope, params.cursor.as_deref())?
        .map(|(updated_at, id)| newsroom::StoryKey { updated_at, id });
    let mut items = newsroom::stories(&state.db, topic, search, after, limit + 1).await?;
    let next_cursor = crate::cursor::next_page(&mut items, limit, |last| {
        state
            .cursor_key
            .encode_time(&scope, last.story.updated_at, last.story.id)
    });
    let page = NewsroomStoryPage {
        items: items
            .into_iter()
            .map(|s| NewsroomStoryBody {
                id: s.story.id,
                headline: s.story.headline,
                topics: s.story.topics,
                article_count: s.story.article_count,
                source_count: s.story.source_count,
                first_seen_at: s.story.first_seen_at,
                updated_at: s.story.updated_at,
                breaking: s.story.breaking_at.is_some(),
                alerted: s.alerted,
                near_breaking: s.near_breaking,
                min_sources: s.min_sources,
                publishers_in_window: s.publishers_in_window,
                window_minutes: s.window_minutes,
            })
            .collect(),
        next_cursor,
    };
    Ok(crate::cache::json(
        &headers,
        crate::cache::Caching::Private,
        &page,
    ))
}
