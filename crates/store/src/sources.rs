//! Publishers' feeds: the catalogue, the newsroom's edits, the scheduler's leases and health.

use crate::entity::source;
use crate::{Backend, StoreError};
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Statement,
};
use uuid::Uuid;

/// A publisher's feed with its polling state and health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Source id.
    pub id: Uuid,
    /// Publisher name, e.g. "Hindustan Times".
    pub name: String,
    /// The feed's URL.
    pub feed_url: String,
    /// The publisher's home page.
    pub site_url: Option<String>,
    /// Topic slugs every article of this feed gets.
    pub topics: Vec<String>,
    /// Default language tag of the feed.
    pub language: Option<String>,
    /// A new item from this feed is breaking news (SPEC §5 rule 2).
    pub breaking: bool,
    /// Fixed poll interval overriding the adaptive one.
    pub poll_interval_seconds: Option<u32>,
    /// `ETag` of the last 200, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// `Last-Modified` of the last 200, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
    /// When the feed is due next.
    pub next_fetch_at: DateTime<Utc>,
    /// The ingest worker holding the feed, if any.
    pub lease_owner: Option<String>,
    /// When that lease runs out.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the feed was last fetched (successfully or not).
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// HTTP status of the last fetch; `None` when no answer came.
    pub last_status: Option<u16>,
    /// Failed fetches in a row.
    pub error_count: u32,
    /// The last failure, cleared by a success.
    pub last_error: Option<String>,
    /// When the source was added.
    pub created_at: DateTime<Utc>,
    /// When the source was last changed.
    pub updated_at: DateTime<Utc>,
}

fn to_source(m: source::Model) -> Source {
    Source {
        id: m.id,
        name: m.name,
        feed_url: m.feed_url,
        site_url: m.site_url,
        topics: serde_json::from_value(m.topics).unwrap_or_default(),
        language: m.language,
        breaking: m.breaking,
        poll_interval_seconds: m.poll_interval_seconds.and_then(|s| u32::try_from(s).ok()),
        etag: m.etag,
        last_modified: m.last_modified,
        next_fetch_at: m.next_fetch_at,
        lease_owner: m.lease_owner,
        lease_expires_at: m.lease_expires_at,
        last_fetch_at: m.last_fetch_at,
        last_status: m.last_status.and_then(|s| u16::try_from(s).ok()),
        error_count: u32::try_from(m.error_count).unwrap_or(0),
        last_error: m.last_error,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

/// What adding a source (or syncing one from the catalogue) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSource {
    /// Publisher name.
    pub name: String,
    /// Feed URL (unique).
    pub feed_url: String,
    /// Publisher home page.
    pub site_url: Option<String>,
    /// Default topic slugs.
    pub topics: Vec<String>,
    /// Default language tag.
    pub language: Option<String>,
    /// Breaking-news source.
    pub breaking: bool,
    /// Fixed poll interval, if any.
    pub poll_interval_seconds: Option<u32>,
}

/// A partial change of a source; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourcePatch {
    /// New name.
    pub name: Option<String>,
    /// New feed URL (the feed is then fetched at once and its validators forgotten).
    pub feed_url: Option<String>,
    /// New home page (`Some(None)` clears it).
    pub site_url: Option<Option<String>>,
    /// New topics.
    pub topics: Option<Vec<String>>,
    /// New language (`Some(None)` clears it).
    pub language: Option<Option<String>>,
    /// New breaking flag.
    pub breaking: Option<bool>,
    /// New poll interval (`Some(None)` returns to the adaptive one).
    pub poll_interval_seconds: Option<Option<u32>>,
}

fn seconds(value: Option<u32>) -> Option<i32> {
    value.map(|s| i32::try_from(s).unwrap_or(i32::MAX))
}

/// Adds a source, due at once; `Conflict` when its feed URL is taken.
pub async fn create(db: &DatabaseConnection, new: NewSource) -> Result<Source, StoreError> {
    let now = Utc::now();
    let model = source::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(new.name),
        feed_url: Set(new.feed_url),
        site_url: Set(new.site_url),
        topics: Set(serde_json::json!(new.topics)),
        language: Set(new.language),
        breaking: Set(new.breaking),
        poll_interval_seconds: Set(seconds(new.poll_interval_seconds)),
        etag: Set(None),
        last_modified: Set(None),
        next_fetch_at: Set(now),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        last_fetch_at: Set(None),
        last_status: Set(None),
        error_count: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(to_source(model))
}

/// Inserts the sources not known yet (by feed URL) and updates the settings of those that are;
/// polling state and health are kept. Returns how many were inserted.
pub async fn sync(db: &DatabaseConnection, sources: &[NewSource]) -> Result<usize, StoreError> {
    let mut inserted = 0;
    for new in sources {
        let existing = source::Entity::find()
            .filter(source::Column::FeedUrl.eq(new.feed_url.as_str()))
            .one(db)
            .await?;
        match existing {
            Some(found) => {
                source::ActiveModel {
                    id: Set(found.id),
                    name: Set(new.name.clone()),
                    site_url: Set(new.site_url.clone()),
                    topics: Set(serde_json::json!(new.topics)),
                    language: Set(new.language.clone()),
                    breaking: Set(new.breaking),
                    poll_interval_seconds: Set(seconds(new.poll_interval_seconds)),
                    updated_at: Set(Utc::now()),
                    ..Default::default()
                }
                .update(db)
                .await?;
            }
            None => match create(db, new.clone()).await {
                Ok(_) => inserted += 1,
                // Another process synced the same catalogue at the same moment.
                Err(StoreError::Conflict(_)) => {}
                Err(err) => return Err(err),
            },
        }
    }
    Ok(inserted)
}

/// Every source, by name.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<Source>, StoreError> {
    Ok(source::Entity::find()
        .order_by_asc(source::Column::Name)
        .order_by_asc(source::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_source)
        .collect())
}

/// One source.
pub async fn get(db: &DatabaseConnection, id: Uuid) -> Result<Source, StoreError> {
    source::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_source)
        .ok_or(StoreError::NotFound)
}

/// Applies `patch`; `NotFound` when absent, `Conflict` when the new feed URL is taken.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    patch: SourcePatch,
) -> Result<Source, StoreError> {
    let found = source::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    let now = Utc::now();
    let mut model = source::ActiveModel {
        id: Set(found.id),
        updated_at: Set(now),
        ..Default::default()
    };
    if let Some(name) = patch.name {
        model.name = Set(name);
    }
    if let Some(feed_url) = patch.feed_url.filter(|u| *u != found.feed_url) {
        model.feed_url = Set(feed_url);
        model.etag = Set(None);
        model.last_modified = Set(None);
        model.next_fetch_at = Set(now);
        model.error_count = Set(0);
        model.last_error = Set(None);
    }
    if let Some(site_url) = patch.site_url {
        model.site_url = Set(site_url);
    }
    if let Some(topics) = patch.topics {
        model.topics = Set(serde_json::json!(topics));
    }
    if let Some(language) = patch.language {
        model.language = Set(language);
    }
    if let Some(breaking) = patch.breaking {
        model.breaking = Set(breaking);
    }
    if let Some(interval) = patch.poll_interval_seconds {
        model.poll_interval_seconds = Set(seconds(interval));
    }
    Ok(to_source(model.update(db).await?))
}

/// Removes a source and its articles; `NotFound` when absent. In the same transaction, a WebSub
/// subscription whose hub may still deliver becomes an unsubscription owed to that hub
/// ([`crate::websub::departures_due`]), so the hub is told even if this process stops now.
pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), StoreError> {
    let txn = crate::begin_write(db).await?;
    crate::websub::owe_unsubscription(&txn, id, Utc::now()).await?;
    let deleted = source::Entity::delete_by_id(id).exec(&txn).await?;
    if deleted.rows_affected == 0 {
        txn.rollback().await?;
        return Err(StoreError::NotFound);
    }
    txn.commit().await?;
    Ok(())
}

/// Claims up to `limit` due sources for `owner` until `now + lease`, atomically: a source is
/// due when `next_fetch_at <= now` and no unexpired lease holds it. Several ingest processes
/// can call this at once; each source goes to one of them (PostgreSQL: `FOR UPDATE SKIP
/// LOCKED`; SQLite: one writer at a time, the UPDATE re-checks the lease).
pub async fn lease_due(
    db: &DatabaseConnection,
    owner: &str,
    now: DateTime<Utc>,
    limit: u64,
    lease: std::time::Duration,
) -> Result<Vec<Source>, StoreError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let expires = now + Duration::from_std(lease).unwrap_or(Duration::minutes(2));
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let backend = db.get_database_backend();
    let sql = match Backend::of(db) {
        Backend::Postgres => {
            "UPDATE sources SET lease_owner = $1, lease_expires_at = $2 \
             WHERE id IN (SELECT id FROM sources \
               WHERE next_fetch_at <= $3 AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
               ORDER BY next_fetch_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING *"
        }
        Backend::Sqlite => {
            "UPDATE sources SET lease_owner = ?1, lease_expires_at = ?2 \
             WHERE id IN (SELECT id FROM sources \
               WHERE next_fetch_at <= ?3 AND (lease_expires_at IS NULL OR lease_expires_at < ?3) \
               ORDER BY next_fetch_at LIMIT ?4) \
             AND next_fetch_at <= ?3 AND (lease_expires_at IS NULL OR lease_expires_at < ?3) \
             RETURNING *"
        }
    };
    let statement = Statement::from_sql_and_values(
        backend,
        sql,
        [owner.into(), expires.into(), now.into(), limit.into()],
    );
    let txn = crate::begin_write(db).await?;
    let claimed = source::Entity::find()
        .from_raw_sql(statement)
        .all(&txn)
        .await;
    match claimed {
        Ok(claimed) => {
            txn.commit().await?;
            let mut claimed: Vec<Source> = claimed.into_iter().map(to_source).collect();
            claimed.sort_by_key(|s| s.next_fetch_at);
            Ok(claimed)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err.into())
        }
    }
}

/// How one fetch of a leased source ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRecord {
    /// HTTP status, if the server answered.
    pub status: Option<u16>,
    /// `Some` after a 200: the validators to send next time (`None` inside forgets one).
    pub validators: Option<(Option<String>, Option<String>)>,
    /// `None` on success (the error count resets), else what went wrong (the count grows).
    pub error: Option<String>,
    /// When the source is due next.
    pub next_fetch_at: DateTime<Utc>,
    /// When the fetch happened.
    pub fetched_at: DateTime<Utc>,
}

/// Records a fetch of a source leased by `owner` and releases the lease.
pub async fn record_fetch(
    db: &DatabaseConnection,
    id: Uuid,
    owner: &str,
    record: FetchRecord,
) -> Result<(), StoreError> {
    let mut update = source::Entity::update_many()
        .col_expr(source::Column::LastFetchAt, Expr::value(record.fetched_at))
        .col_expr(
            source::Column::LastStatus,
            Expr::value(record.status.map(i32::from)),
        )
        .col_expr(
            source::Column::NextFetchAt,
            Expr::value(record.next_fetch_at),
        )
        .col_expr(
            source::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            source::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    update = match &record.error {
        None => update
            .col_expr(source::Column::ErrorCount, Expr::value(0))
            .col_expr(
                source::Column::LastError,
                Expr::value(Option::<String>::None),
            ),
        Some(error) => update
            .col_expr(
                source::Column::ErrorCount,
                Expr::col(source::Column::ErrorCount).add(1),
            )
            .col_expr(
                source::Column::LastError,
                Expr::value(truncate(error, 2000)),
            ),
    };
    if let Some((etag, last_modified)) = record.validators {
        update = update
            .col_expr(source::Column::Etag, Expr::value(etag))
            .col_expr(source::Column::LastModified, Expr::value(last_modified));
    }
    update
        .filter(source::Column::Id.eq(id))
        .filter(source::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Gives back every lease `owner` holds, without recording anything (a worker stopping).
pub async fn release_leases(db: &DatabaseConnection, owner: &str) -> Result<u64, StoreError> {
    let released = source::Entity::update_many()
        .col_expr(
            source::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            source::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(source::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(released.rows_affected)
}

/// Makes a source due now (the newsroom asked for a refresh).
pub async fn fetch_now(db: &DatabaseConnection, id: Uuid) -> Result<(), StoreError> {
    let updated = source::Entity::update_many()
        .col_expr(source::Column::NextFetchAt, Expr::value(Utc::now()))
        .filter(source::Column::Id.eq(id))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}
