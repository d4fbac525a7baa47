//! Stories (one event across publishers), their counts, and "story became breaking" events.

use crate::StoreError;
use crate::articles::NewArticle;
use crate::entity::{article, story, story_breaking_event, topic};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::BTreeSet;
use uuid::Uuid;

/// A story with its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Story {
    /// Story id (the clusterer's key).
    pub id: Uuid,
    /// Headline: the first article's title.
    pub headline: String,
    /// Union of its articles' topics.
    pub topics: Vec<String>,
    /// Number of articles.
    pub article_count: u32,
    /// Number of distinct publishers (sources).
    pub source_count: u32,
    /// When the first article was stored.
    pub first_seen_at: DateTime<Utc>,
    /// When an article was last added.
    pub updated_at: DateTime<Utc>,
    /// When it first became breaking, if it did.
    pub breaking_at: Option<DateTime<Utc>>,
}

pub(crate) fn to_story(m: story::Model) -> Story {
    Story {
        id: m.id,
        headline: m.headline,
        topics: serde_json::from_value(m.topics).unwrap_or_default(),
        article_count: u32::try_from(m.article_count).unwrap_or(0),
        source_count: u32::try_from(m.source_count).unwrap_or(0),
        first_seen_at: m.first_seen_at,
        updated_at: m.updated_at,
        breaking_at: m.breaking_at,
    }
}

/// A "story became breaking" event for one topic; the notifier consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakingEvent {
    /// Event id.
    pub id: Uuid,
    /// The story.
    pub story_id: Uuid,
    /// The topic whose rule it met.
    pub topic: String,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When the notifier took it, if it did.
    pub consumed_at: Option<DateTime<Utc>>,
}

fn to_event(m: story_breaking_event::Model) -> BreakingEvent {
    BreakingEvent {
        id: m.id,
        story_id: m.story_id,
        topic: m.topic,
        created_at: m.created_at,
        consumed_at: m.consumed_at,
    }
}

/// What adding a new article to a story did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Stored in the story, whose counts are updated.
    Stored(Story),
    /// Another feed stored the same canonical URL (or this key) first; nothing was written.
    Duplicate,
}

/// Stores a new article in `story_id` (creating the story when new), first moving the
/// articles and breaking events of the `merged` stories into it and deleting them, then
/// recounting articles and distinct publishers. One transaction.
pub async fn add_article(
    db: &DatabaseConnection,
    new: NewArticle,
    story_id: Uuid,
    merged: &[Uuid],
) -> Result<Added, StoreError> {
    let now = Utc::now();
    let txn = crate::begin_write(db).await?;
    let result = async {
        // A write first: SQLite then takes the write lock at once (waiting its busy timeout)
        // instead of failing to upgrade a read lock when another writer got in between.
        story::Entity::insert(story::ActiveModel {
            id: Set(story_id),
            headline: Set(new.title.clone()),
            topics: Set(serde_json::json!(new.topics)),
            article_count: Set(0),
            source_count: Set(0),
            first_seen_at: Set(new.fetched_at),
            updated_at: Set(now),
            breaking_at: Set(None),
        })
        .on_conflict(
            OnConflict::column(story::Column::Id)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        let existing = story::Entity::find_by_id(story_id)
            .one(&txn)
            .await?
            .ok_or(StoreError::NotFound)?;
        let mut breaking_at = existing.breaking_at;
        let mut first_seen_at = existing.first_seen_at;
        for &other in merged.iter().filter(|&&m| m != story_id) {
            fold_story(&txn, other, story_id).await?;
            if let Some(found) = story::Entity::find_by_id(other).one(&txn).await? {
                first_seen_at = first_seen_at.min(found.first_seen_at);
                breaking_at = match (breaking_at, found.breaking_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                story::Entity::delete_by_id(other).exec(&txn).await?;
            }
        }
        let (source_id, new_topics) = (new.source_id, new.topics.clone());
        let folded = merged.iter().any(|&m| m != story_id);
        article::Entity::insert(new.into_model(story_id))
            .exec_without_returning(&txn)
            .await?;
        let mut topics: Vec<String> = serde_json::from_value(existing.topics).unwrap_or_default();
        let (article_count, source_count) = if folded {
            // Stories were folded in: count everything again (rare).
            let members: Vec<(Uuid, serde_json::Value)> = article::Entity::find()
                .select_only()
                .column(article::Column::SourceId)
                .column(article::Column::Topics)
                .filter(article::Column::StoryId.eq(story_id))
                .into_tuple()
                .all(&txn)
                .await?;
            let sources: BTreeSet<Uuid> = members.iter().map(|(s, _)| *s).collect();
            for (_, member_topics) in members.iter() {
                let member_topics: Vec<String> =
                    serde_json::from_value(member_topics.clone()).unwrap_or_default();
                merge_topics(&mut topics, member_topics);
            }
            (members.len(), sources.len())
        } else {
            // One more article: the cost stays the same however big the story grows.
            let from_source: Vec<Uuid> = article::Entity::find()
                .select_only()
                .column(article::Column::Id)
                .filter(article::Column::StoryId.eq(story_id))
                .filter(article::Column::SourceId.eq(source_id))
                .limit(2)
                .into_tuple()
                .all(&txn)
                .await?;
            merge_topics(&mut topics, new_topics);
            let count = |n: i32| usize::try_from(n).unwrap_or(0);
            let new_source = usize::from(from_source.len() == 1);
            (
                count(existing.article_count) + 1,
                count(existing.source_count) + new_source,
            )
        };
        let saved = story::ActiveModel {
            id: Set(story_id),
            topics: Set(serde_json::json!(topics)),
            article_count: Set(i32::try_from(article_count).unwrap_or(i32::MAX)),
            source_count: Set(i32::try_from(source_count).unwrap_or(i32::MAX)),
            first_seen_at: Set(first_seen_at),
            updated_at: Set(now),
            breaking_at: Set(breaking_at),
            ..Default::default()
        }
        .update(&txn)
        .await?;
        Ok::<_, StoreError>(to_story(saved))
    }
    .await;
    match result {
        Ok(story) => {
            txn.commit().await?;
            Ok(Added::Stored(story))
        }
        Err(StoreError::Conflict(_)) => {
            let _ = txn.rollback().await;
            Ok(Added::Duplicate)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Adds the topics of `more` that `topics` lacks, keeping the order.
fn merge_topics(topics: &mut Vec<String>, more: Vec<String>) {
    for topic in more {
        if !topics.contains(&topic) {
            topics.push(topic);
        }
    }
}

/// Moves `from`'s articles and the breaking events `into` lacks into `into`.
async fn fold_story(txn: &impl ConnectionTrait, from: Uuid, into: Uuid) -> Result<(), StoreError> {
    article::Entity::update_many()
        .col_expr(article::Column::StoryId, Expr::value(Some(into)))
        .filter(article::Column::StoryId.eq(from))
        .exec(txn)
        .await?;
    let held = Query::select()
        .column(story_breaking_event::Column::Topic)
        .from(story_breaking_event::Entity)
        .and_where(story_breaking_event::Column::StoryId.eq(into))
        .to_owned();
    story_breaking_event::Entity::update_many()
        .col_expr(story_breaking_event::Column::StoryId, Expr::value(into))
        .filter(story_breaking_event::Column::StoryId.eq(from))
        .filter(story_breaking_event::Column::Topic.not_in_subquery(held))
        .exec(txn)
        .await?;
    Ok(())
}

/// One story.
pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Story, StoreError> {
    story::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_story)
        .ok_or(StoreError::NotFound)
}

/// Records a breaking event for (story, topic) unless one exists; returns it when new, and
/// sets the story's `breaking_at` the first time.
pub async fn record_breaking(
    db: &DatabaseConnection,
    story_id: Uuid,
    topic: &str,
    now: DateTime<Utc>,
) -> Result<Option<BreakingEvent>, StoreError> {
    let id = Uuid::now_v7();
    let inserted = story_breaking_event::Entity::insert(story_breaking_event::ActiveModel {
        id: Set(id),
        story_id: Set(story_id),
        topic: Set(topic.to_string()),
        created_at: Set(now),
        consumed_at: Set(None),
    })
    .on_conflict(
        OnConflict::columns([
            story_breaking_event::Column::StoryId,
            story_breaking_event::Column::Topic,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if inserted == 0 {
        return Ok(None);
    }
    story::Entity::update_many()
        .col_expr(story::Column::BreakingAt, Expr::value(Some(now)))
        .filter(story::Column::Id.eq(story_id))
        .filter(story::Column::BreakingAt.is_null())
        .exec(db)
        .await?;
    Ok(Some(BreakingEvent {
        id,
        story_id,
        topic: topic.to_string(),
        created_at: now,
        consumed_at: None,
    }))
}

/// Applies each of the story's topics' rule (SPEC §5.3): when at least `min_sources` distinct
/// publishers carried it with articles published within the topic's window before `now`,
/// records the (story, topic) event, once. Returns the events recorded by this call.
pub async fn check_breaking(
    db: &DatabaseConnection,
    story_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<BreakingEvent>, StoreError> {
    let found = get(db, story_id).await?;
    if found.topics.is_empty() {
        return Ok(Vec::new());
    }
    let rules = topic::Entity::find()
        .filter(topic::Column::Slug.is_in(found.topics.iter().cloned()))
        .all(db)
        .await?;
    let held: Vec<String> = story_breaking_event::Entity::find()
        .filter(story_breaking_event::Column::StoryId.eq(story_id))
        .all(db)
        .await?
        .into_iter()
        .map(|e| e.topic)
        .collect();
    let mut recorded = Vec::new();
    // A story already breaking for a topic costs no more reads, however big it grows.
    for rule in rules.into_iter().filter(|r| !held.contains(&r.slug)) {
        let since = now - Duration::minutes(i64::from(rule.window_minutes.max(1)));
        let needed = u64::try_from(rule.min_sources.max(1)).unwrap_or(u64::MAX);
        if publishers_since(db, story_id, since, needed).await? >= needed
            && let Some(event) = record_breaking(db, story_id, &rule.slug, now).await?
        {
            recorded.push(event);
        }
    }
    Ok(recorded)
}

/// Distinct publishers of the story's articles published since `since`, counted up to `enough`.
async fn publishers_since(
    db: &DatabaseConnection,
    story_id: Uuid,
    since: DateTime<Utc>,
    enough: u64,
) -> Result<u64, StoreError> {
    let publishers: Vec<Uuid> = article::Entity::find()
        .select_only()
        .column(article::Column::SourceId)
        .distinct()
        .filter(article::Column::StoryId.eq(story_id))
        .filter(article::Column::PublishedAt.gte(since))
        .limit(enough)
        .into_tuple()
        .all(db)
        .await?;
    Ok(publishers.len() as u64)
}

/// A story's breaking events, oldest first.
pub async fn breaking_events(
    db: &DatabaseConnection,
    story_id: Uuid,
) -> Result<Vec<BreakingEvent>, StoreError> {
    Ok(story_breaking_event::Entity::find()
        .filter(story_breaking_event::Column::StoryId.eq(story_id))
        .order_by_asc(story_breaking_event::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(to_event)
        .collect())
}

/// Breaking events the notifier has not consumed yet, oldest first.
pub async fn pending_breaking_events(
    db: &DatabaseConnection,
    limit: u64,
) -> Result<Vec<BreakingEvent>, StoreError> {
    Ok(story_breaking_event::Entity::find()
        .filter(story_breaking_event::Column::ConsumedAt.is_null())
        .order_by_asc(story_breaking_event::Column::CreatedAt)
        .order_by_asc(story_breaking_event::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(to_event)
        .collect())
}

/// Marks an event consumed; false when it was consumed already (another notifier took it).
pub async fn consume_breaking_event(
    db: &DatabaseConnection,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let updated = story_breaking_event::Entity::update_many()
        .col_expr(
            story_breaking_event::Column::ConsumedAt,
            Expr::value(Some(now)),
        )
        .filter(story_breaking_event::Column::Id.eq(id))
        .filter(story_breaking_event::Column::ConsumedAt.is_null())
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}
