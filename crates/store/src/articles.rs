//! Articles: normalised feed items, deduplicated per source and across feeds by canonical URL.

use crate::StoreError;
use crate::entity::article;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// A stored article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// Article id (UUIDv7).
    pub id: Uuid,
    /// The feed it came from.
    pub source_id: Uuid,
    /// Identity of the item within its source.
    pub dedupe_key: String,
    /// Canonical URL, unique across feeds.
    pub canonical_url: Option<String>,
    /// Plain-text headline.
    pub title: String,
    /// The feed gave no title: the headline was made from the summary or the link.
    pub title_derived: bool,
    /// Plain-text summary.
    pub summary: Option<String>,
    /// Sanitised HTML body.
    pub content_html: Option<String>,
    /// Lead image.
    pub image_url: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Language tag.
    pub language: Option<String>,
    /// Topic slugs.
    pub topics: Vec<String>,
    /// The story it belongs to.
    pub story_id: Option<Uuid>,
    /// Publication time.
    pub published_at: DateTime<Utc>,
    /// First fetch.
    pub fetched_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

pub(crate) fn to_article(m: article::Model) -> Article {
    Article {
        id: m.id,
        source_id: m.source_id,
        dedupe_key: m.dedupe_key,
        canonical_url: m.canonical_url,
        title: m.title,
        title_derived: m.title_derived,
        summary: m.summary,
        content_html: m.content_html,
        image_url: m.image_url,
        author: m.author,
        language: m.language,
        topics: serde_json::from_value(m.topics).unwrap_or_default(),
        story_id: m.story_id,
        published_at: m.published_at,
        fetched_at: m.fetched_at,
        updated_at: m.updated_at,
    }
}

/// An article about to be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArticle {
    /// Id to give it (UUIDv7).
    pub id: Uuid,
    /// The feed it came from.
    pub source_id: Uuid,
    /// Identity of the item within its source.
    pub dedupe_key: String,
    /// Canonical URL.
    pub canonical_url: Option<String>,
    /// Plain-text headline.
    pub title: String,
    /// The feed gave no title: the headline was made from the summary or the link.
    pub title_derived: bool,
    /// Plain-text summary.
    pub summary: Option<String>,
    /// Sanitised HTML body.
    pub content_html: Option<String>,
    /// Lead image.
    pub image_url: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Language tag.
    pub language: Option<String>,
    /// Topic slugs.
    pub topics: Vec<String>,
    /// Publication time.
    pub published_at: DateTime<Utc>,
    /// Fetch time.
    pub fetched_at: DateTime<Utc>,
}

impl NewArticle {
    pub(crate) fn into_model(self, story_id: Uuid) -> article::ActiveModel {
        article::ActiveModel {
            id: Set(self.id),
            source_id: Set(self.source_id),
            dedupe_key: Set(self.dedupe_key),
            canonical_url: Set(self.canonical_url),
            title: Set(self.title),
            title_derived: Set(self.title_derived),
            summary: Set(self.summary),
            content_html: Set(self.content_html),
            image_url: Set(self.image_url),
            author: Set(self.author),
            language: Set(self.language),
            topics: Set(serde_json::json!(self.topics)),
            story_id: Set(Some(story_id)),
            published_at: Set(self.published_at),
            fetched_at: Set(self.fetched_at),
            updated_at: Set(self.fetched_at),
        }
    }
}

/// What storing a re-fetched item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refetched {
    /// Not stored yet: a new article (cluster it, then [`crate::stories::add_article`]).
    New,
    /// This source's article, unchanged.
    Unchanged(Uuid),
    /// This source's article, whose title, summary, body or image changed and were updated.
    Updated(Uuid),
    /// Another feed's article with the same canonical URL: one article, nothing to do.
    SameUrl(Uuid),
}

/// Looks `new` up by (source, dedupe key), then by canonical URL, and updates this source's
/// article when its title (or whether it was derived), summary, body or image changed. Nothing is inserted here.
pub async fn upsert_existing(
    db: &DatabaseConnection,
    new: &NewArticle,
) -> Result<Refetched, StoreError> {
    let own = article::Entity::find()
        .filter(article::Column::SourceId.eq(new.source_id))
        .filter(article::Column::DedupeKey.eq(new.dedupe_key.as_str()))
        .one(db)
        .await?;
    let found = match own {
        Some(found) => found,
        None => {
            let Some(url) = &new.canonical_url else {
                return Ok(Refetched::New);
            };
            let same_url = article::Entity::find()
                .filter(article::Column::CanonicalUrl.eq(url.as_str()))
                .one(db)
                .await?;
            return Ok(match same_url {
                Some(other) if other.source_id == new.source_id => {
                    // This source's own article under another key (e.g. a GUID added later).
                    update_if_changed(db, other, new).await?
                }
                Some(other) => Refetched::SameUrl(other.id),
                None => Refetched::New,
            });
        }
    };
    update_if_changed(db, found, new).await
}

async fn update_if_changed(
    db: &DatabaseConnection,
    found: article::Model,
    new: &NewArticle,
) -> Result<Refetched, StoreError> {
    let changed = found.title != new.title
        || found.title_derived != new.title_derived
        || found.summary != new.summary
        || found.content_html != new.content_html
        || (new.image_url.is_some() && found.image_url != new.image_url);
    if !changed {
        return Ok(Refetched::Unchanged(found.id));
    }
    let id = found.id;
    article::ActiveModel {
        id: Set(id),
        title: Set(new.title.clone()),
        title_derived: Set(new.title_derived),
        summary: Set(new.summary.clone()),
        content_html: Set(new.content_html.clone()),
        image_url: Set(new.image_url.clone().or(found.image_url)),
        updated_at: Set(new.fetched_at),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(Refetched::Updated(id))
}

/// One article.
pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Article, StoreError> {
    article::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_article)
        .ok_or(StoreError::NotFound)
}

/// A source's articles, newest first.
pub async fn by_source(
    db: &DatabaseConnection,
    source_id: Uuid,
) -> Result<Vec<Article>, StoreError> {
    Ok(article::Entity::find()
        .filter(article::Column::SourceId.eq(source_id))
        .order_by_desc(article::Column::PublishedAt)
        .order_by_desc(article::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_article)
        .collect())
}

/// A story's articles, oldest first.
pub async fn by_story(db: &DatabaseConnection, story_id: Uuid) -> Result<Vec<Article>, StoreError> {
    Ok(article::Entity::find()
        .filter(article::Column::StoryId.eq(story_id))
        .order_by_asc(article::Column::PublishedAt)
        .order_by_asc(article::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_article)
        .collect())
}

/// Number of stored articles.
pub async fn count(db: &DatabaseConnection) -> Result<u64, StoreError> {
    Ok(article::Entity::find().count(db).await?)
}

/// Articles published at or after `since`, oldest first: what the clusterer is rebuilt from.
pub async fn published_since(
    db: &DatabaseConnection,
    since: DateTime<Utc>,
) -> Result<Vec<Article>, StoreError> {
    Ok(article::Entity::find()
        .filter(article::Column::PublishedAt.gte(since))
        .filter(article::Column::StoryId.is_not_null())
        .order_by_asc(article::Column::PublishedAt)
        .order_by_asc(article::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_article)
        .collect())
}

/// Publication times of a source's newest `limit` articles, newest first (the feed's rate).
pub async fn recent_times(
    db: &DatabaseConnection,
    source_id: Uuid,
    limit: u64,
) -> Result<Vec<DateTime<Utc>>, StoreError> {
    Ok(article::Entity::find()
        .select_only()
        .column(article::Column::PublishedAt)
        .filter(article::Column::SourceId.eq(source_id))
        .order_by_desc(article::Column::PublishedAt)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}
