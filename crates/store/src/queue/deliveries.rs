//! Per-device decisions and delivery records: what a batch reads to decide (followed topics,
//! recent sends, earlier outcomes), the once-per-story claims, and the outcomes it writes with
//! the batch's counters.

use super::{COUNTER_COLUMNS, DeliveryStatus, Lease, QueuedAlert, finish};
use crate::StoreError;
use crate::entity::{alert_batch, delivery, device, story_receipt, subscription};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};
use std::collections::HashMap;
use uuid::Uuid;

/// Of `device_ids`, those that already have a recorded outcome for the alert (a takeover
/// resumes where the crashed notifier stopped).
pub async fn already_recorded(
    db: &DatabaseConnection,
    alert_id: Uuid,
    device_ids: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    if device_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Option<Uuid>> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::DeviceId)
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::DeviceId.is_in(device_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().flatten().collect())
}

/// Claims the story for each device for this alert, before sending. Returns the devices the
/// alert may send to: newly claimed, or claimed by this same alert earlier (a delivery in
/// flight at a crash is resent once). Devices another alert claimed are duplicates.
///
/// One statement per chunk: an upsert whose update applies only to this alert's own claims,
/// returning exactly the rows it inserted or updated.
pub async fn claim_story(
    db: &DatabaseConnection,
    alert: &QueuedAlert,
    device_ids: &[Uuid],
) -> Result<Vec<Uuid>, StoreError> {
    let mut claimed = Vec::with_capacity(device_ids.len());
    let now = Utc::now();
    let story = alert.story_key();
    if db.get_database_backend() == DbBackend::Postgres {
        for chunk in device_ids.chunks(STATEMENT_ROWS) {
            let ids = serde_json::Value::from_iter(chunk.iter().map(|d| d.to_string()));
            let statement = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO story_receipts (story_id, device_id, alert_id, created_at) \
                 SELECT $1, d.device_id::uuid, $2, $3 FROM jsonb_array_elements_text($4) AS d(device_id) \
                 ON CONFLICT (story_id, device_id) DO UPDATE SET alert_id = excluded.alert_id \
                 WHERE story_receipts.alert_id = $2 \
                 RETURNING device_id",
                [story.into(), alert.id.into(), now.into(), ids.into()],
            );
            for row in db.query_all_raw(statement).await? {
                claimed.push(row.try_get::<Uuid>("", "device_id")?);
            }
        }
        return Ok(claimed);
    }
    for chunk in device_ids.chunks(STATEMENT_ROWS) {
        let mut insert = Query::insert();
        insert
            .into_table(story_receipt::Entity)
            .columns([
                story_receipt::Column::StoryId,
                story_receipt::Column::DeviceId,
                story_receipt::Column::AlertId,
                story_receipt::Column::CreatedAt,
            ])
            .on_conflict(
                OnConflict::columns([
                    story_receipt::Column::StoryId,
                    story_receipt::Column::DeviceId,
                ])
                .update_column(story_receipt::Column::AlertId)
                .action_and_where(
                    Expr::col((story_receipt::Entity, story_receipt::Column::AlertId)).eq(alert.id),
                )
                .to_owned(),
            )
            .returning_col(story_receipt::Column::DeviceId);
        for &device_id in chunk {
            insert
                .values([story.into(), device_id.into(), alert.id.into(), now.into()])
                .map_err(|e| StoreError::Other(DbErr::Custom(e.to_string())))?;
        }
        for row in db.query_all(&insert).await? {
            claimed.push(row.try_get::<Uuid>("", "device_id")?);
        }
    }
    Ok(claimed)
}

/// Rows per multi-row statement: well under SQLite's and PostgreSQL's bind-parameter limits.
const STATEMENT_ROWS: usize = 1000;

/// Which of `topics` each of `user_ids` follows now: `(user, topic)` pairs.
pub async fn followed(
    db: &DatabaseConnection,
    user_ids: &[Uuid],
    topics: &[String],
) -> Result<Vec<(Uuid, String)>, StoreError> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(subscription::Entity::find()
        .select_only()
        .column(subscription::Column::UserId)
        .column(subscription::Column::TopicSlug)
        .filter(subscription::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(subscription::Column::TopicSlug.is_in(topics.iter().cloned()))
        .into_tuple()
        .all(db)
        .await?)
}

/// When each of `device_ids` was sent an alert since `since`: `(device, sent_at)` pairs, for
/// the daily cap counted in each device's local day.
pub async fn sent_times(
    db: &DatabaseConnection,
    device_ids: &[Uuid],
    since: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
    if device_ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(Option<Uuid>, Option<DateTime<Utc>>)> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::DeviceId)
        .column(delivery::Column::SentAt)
        .filter(delivery::Column::DeviceId.is_in(device_ids.iter().copied()))
        .filter(delivery::Column::Status.eq(DeliveryStatus::Sent.as_str()))
        .filter(delivery::Column::SentAt.gte(since))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(d, at)| Some((d?, at?)))
        .collect())
}

/// True while the device exists, is alive, and its owner follows any of `topics`.
pub async fn still_targeted(
    db: &DatabaseConnection,
    device_id: Uuid,
    topics: &[String],
) -> Result<bool, StoreError> {
    let followers = Query::select()
        .column(subscription::Column::UserId)
        .from(subscription::Entity)
        .and_where(Expr::col(subscription::Column::TopicSlug).is_in(topics.iter().cloned()))
        .to_owned();
    Ok(device::Entity::find()
        .filter(device::Column::Id.eq(device_id))
        .filter(device::Column::DeadAt.is_null())
        .filter(device::Column::UserId.in_subquery(followers))
        .count(db)
        .await?
        > 0)
}

/// One device's outcome for one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The device's owner.
    pub user_id: Uuid,
    /// The device.
    pub device_id: Uuid,
    /// What happened.
    pub status: DeliveryStatus,
    /// Why, for failures.
    pub reason: Option<String>,
    /// Send attempts made.
    pub attempts: u32,
    /// When the outcome was known.
    pub at: DateTime<Utc>,
    /// The alert version sent (the version the alert had when the batch read it).
    pub version: u32,
    /// The followed topic it was sent for.
    pub topic: Option<String>,
}

/// The rows' insert, skipping (alert, device) pairs already recorded, returning the statuses
/// it did record.
fn delivery_insert(
    alert: &QueuedAlert,
    records: &[DeliveryRecord],
) -> Result<InsertStatement, StoreError> {
    let mut insert = Query::insert();
    insert
        .into_table(delivery::Entity)
        .columns([
            delivery::Column::Id,
            delivery::Column::AlertId,
            delivery::Column::UserId,
            delivery::Column::DeviceId,
            delivery::Column::StoryId,
            delivery::Column::Status,
            delivery::Column::Reason,
            delivery::Column::Attempts,
            delivery::Column::CreatedAt,
            delivery::Column::SentAt,
            delivery::Column::Version,
            delivery::Column::Topic,
        ])
        .on_conflict(
            OnConflict::columns([delivery::Column::AlertId, delivery::Column::DeviceId])
                .do_nothing()
                .to_owned(),
        )
        .returning_col(delivery::Column::Status);
    for r in records {
        let reason: Option<String> = r.reason.as_ref().map(|s| s.chars().take(300).collect());
        let sent_at = (r.status == DeliveryStatus::Sent).then_some(r.at);
        insert
            .values([
                Uuid::now_v7().into(),
                alert.id.into(),
                r.user_id.into(),
                r.device_id.into(),
                alert.story_id.into(),
                r.status.as_str().into(),
                reason.into(),
                i32::try_from(r.attempts).unwrap_or(i32::MAX).into(),
                r.at.into(),
                sent_at.into(),
                i32::try_from(r.version).unwrap_or(i32::MAX).into(),
                r.topic.clone().into(),
            ])
            .map_err(|e| StoreError::Other(DbErr::Custom(e.to_string())))?;
    }
    Ok(insert)
}

/// Records one chunk and adds what it newly recorded to the batch's counters, atomically: one
/// statement on PostgreSQL, one transaction on SQLite.
async fn record_chunk(
    db: &DatabaseConnection,
    alert: &QueuedAlert,
    batch_id: Uuid,
    records: &[DeliveryRecord],
) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        return record_chunk_postgres(db, alert, batch_id, records).await;
    }
    let insert = delivery_insert(alert, records)?;
    let txn = crate::begin_write(db).await?;
    let result = async {
        let mut counts: HashMap<String, i64> = HashMap::new();
        for row in txn.query_all(&insert).await? {
            *counts
                .entry(row.try_get::<String>("", "status")?)
                .or_default() += 1;
        }
        if counts.is_empty() {
            return Ok(());
        }
        let sets = COUNTER_COLUMNS.map(|c| format!("{c} = {c} + ?")).join(", ");
        let mut values: Vec<sea_orm::Value> = COUNTER_COLUMNS
            .iter()
            .map(|c| counts.get(*c).copied().unwrap_or(0).into())
            .collect();
        values.push(batch_id.into());
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            format!("UPDATE alert_batches SET {sets} WHERE id = ?"),
            values,
        ))
        .await?;
        Ok(())
    }
    .await;
    finish(txn, result).await
}

/// PostgreSQL: the chunk travels as one JSON array unpacked by `jsonb_to_recordset` (one bind
/// parameter instead of ten a row, so parsing and planning cost nothing per row), and the
/// batch's counters move in the same statement. `deliveries` has no foreign keys here
/// (migration `m20261127_000040`), so rows whose device is gone (deleted, or with its user)
/// are left out by the statement itself, as SQLite's foreign keys leave them out: one primary
/// key probe a row, written as a scalar subquery so that it stays one (as `EXISTS` over
/// `users` and `devices` the planner hashed whole tables, and the insert took twice as long).
async fn record_chunk_postgres(
    db: &DatabaseConnection,
    alert: &QueuedAlert,
    batch_id: Uuid,
    records: &[DeliveryRecord],
) -> Result<(), StoreError> {
    let rows = serde_json::Value::from_iter(records.iter().map(|r| {
        serde_json::json!({
            "id": Uuid::now_v7(),
            "user_id": r.user_id,
            "device_id": r.device_id,
            "status": r.status.as_str(),
            "reason": r.reason.as_ref().map(|s| s.chars().take(300).collect::<String>()),
            "attempts": i32::try_from(r.attempts).unwrap_or(i32::MAX),
            "at": r.at.to_rfc3339(),
            "version": i32::try_from(r.version).unwrap_or(i32::MAX),
            "topic": r.topic,
        })
    }));
    let sets = COUNTER_COLUMNS
        .map(|c| format!("{c} = {c} + (SELECT COUNT(*) FROM recorded WHERE status = '{c}')"))
        .join(", ");
    let sql = format!(
        "WITH recorded AS (\
           INSERT INTO deliveries \
             (id, alert_id, user_id, device_id, story_id, status, reason, attempts, created_at, sent_at, \
              version, topic) \
           SELECT r.id, $1, r.user_id, r.device_id, $2, r.status, r.reason, r.attempts, r.at, \
                  CASE WHEN r.status = 'sent' THEN r.at END, r.version, r.topic \
           FROM jsonb_to_recordset($3) AS r(id uuid, user_id uuid, device_id uuid, status text, \
                                             reason text, attempts integer, at timestamptz, \
                                             version integer, topic text) \
           WHERE (SELECT true FROM devices d WHERE d.id = r.device_id) \
           ON CONFLICT (alert_id, device_id) DO NOTHING \
           RETURNING status) \
         UPDATE alert_batches SET {sets} WHERE id = $4"
    );
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [
            alert.id.into(),
            alert.story_id.into(),
            rows.into(),
            batch_id.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Records a leased batch's outcomes, once per alert and device (a resent delivery keeps its
/// first record), counting the newly recorded ones on the batch. A device or user deleted
/// meanwhile has nothing to record against; its row is dropped.
pub async fn record_batch(
    db: &DatabaseConnection,
    lease: &Lease,
    records: &[DeliveryRecord],
) -> Result<(), StoreError> {
    record_on(db, &lease.alert, lease.batch_id, records).await
}

/// [`record_batch`] for outcomes made outside a lease: they count on the alert's first batch.
pub async fn record(
    db: &DatabaseConnection,
    alert: &QueuedAlert,
    records: &[DeliveryRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let first: Option<Uuid> = alert_batch::Entity::find()
        .select_only()
        .column(alert_batch::Column::Id)
        .filter(alert_batch::Column::AlertId.eq(alert.id))
        .order_by_asc(alert_batch::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    record_on(db, alert, first.ok_or(StoreError::NotFound)?, records).await
}

async fn record_on(
    db: &DatabaseConnection,
    alert: &QueuedAlert,
    batch_id: Uuid,
    records: &[DeliveryRecord],
) -> Result<(), StoreError> {
    for chunk in records.chunks(STATEMENT_ROWS) {
        if record_chunk(db, alert, batch_id, chunk).await.is_ok() {
            continue;
        }
        // One row refers to something deleted meanwhile: record the others one by one.
        for r in chunk {
            if let Err(err) = record_chunk(db, alert, batch_id, std::slice::from_ref(r)).await {
                let alive = device::Entity::find_by_id(r.device_id).count(db).await? > 0;
                if alive {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}
