//! Deliveries to retry later, outside their batch.
//!
//! A push service that answers 429/5xx, or does not answer within the first attempt's deadline,
//! gets the device again from this queue: the batch records what it could, parks the rest here
//! and completes, so one slow or failing endpoint never holds a batch, a worker or the alerts
//! queued after it. Every notifier process drains the queue beside its batch workers; rows are
//! leased like batches (`FOR UPDATE SKIP LOCKED` on PostgreSQL), and an alert is done only when
//! its batches are done and none of its deliveries waits here.

use crate::StoreError;
use crate::devices::{self, Device};
use crate::entity::{delivery_retry, device};
use crate::queue::{self, DeliveryRecord, QueuedAlert};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    Statement,
};
use std::time::Duration;
use uuid::Uuid;

/// Why a delivery waits on the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// Its first attempt failed transiently or took too long.
    Retry,
    /// It waits for the reader's local delivery time.
    Local,
    /// The device shows an older version of the alert, to be replaced.
    Replace,
}

impl RetryKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retry => "retry",
            Self::Local => "local",
            Self::Replace => "replace",
        }
    }

    /// From the stored text.
    pub fn parse(text: &str) -> Self {
        match text {
            "local" => Self::Local,
            "replace" => Self::Replace,
            _ => Self::Retry,
        }
    }
}

/// A delivery to try again at `due_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRetry {
    /// The device.
    pub device_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// The followed topic the alert is sent for.
    pub topic: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// When to try again.
    pub due_at: DateTime<Utc>,
    /// What the last attempt came to.
    pub reason: String,
    /// Why it waits.
    pub kind: RetryKind,
}

/// A retry leased to one notifier, with the device to send to (`None`: the device was deleted
/// or pruned since, so there is nothing to send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRetry {
    /// The alert.
    pub alert_id: Uuid,
    /// The device's id.
    pub device_id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// The followed topic the alert is sent for.
    pub topic: String,
    /// Attempts made so far.
    pub attempts: u32,
    /// The device, if it is still live.
    pub device: Option<Device>,
    /// Why it waited.
    pub kind: RetryKind,
}

/// Parks deliveries of `alert_id` for later; a device already parked keeps its first entry.
pub async fn defer(
    db: &DatabaseConnection,
    alert_id: Uuid,
    retries: &[NewRetry],
) -> Result<(), StoreError> {
    if retries.is_empty() {
        return Ok(());
    }
    let now = Utc::now();
    let rows = retries.iter().map(|r| delivery_retry::ActiveModel {
        alert_id: sea_orm::Set(alert_id),
        device_id: sea_orm::Set(r.device_id),
        user_id: sea_orm::Set(r.user_id),
        topic: sea_orm::Set(r.topic.chars().take(64).collect()),
        attempts: sea_orm::Set(i32::try_from(r.attempts).unwrap_or(i32::MAX)),
        due_at: sea_orm::Set(r.due_at),
        reason: sea_orm::Set(Some(r.reason.chars().take(300).collect())),
        lease_owner: sea_orm::Set(None),
        lease_expires_at: sea_orm::Set(None),
        created_at: sea_orm::Set(now),
        kind: sea_orm::Set(r.kind.as_str().into()),
    });
    delivery_retry::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([
                delivery_retry::Column::AlertId,
                delivery_retry::Column::DeviceId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

fn lease_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "UPDATE delivery_retries SET lease_owner = $1, lease_expires_at = $2 \
             WHERE (alert_id, device_id) IN (SELECT alert_id, device_id FROM delivery_retries \
               WHERE due_at <= $3 AND (lease_owner IS NULL OR lease_expires_at < $3) \
               ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) RETURNING *"
        }
        // SQLite serialises writers, so the conditional UPDATE alone is atomic.
        _ => {
            "UPDATE delivery_retries SET lease_owner = ?, lease_expires_at = ? \
             WHERE (alert_id, device_id) IN (SELECT alert_id, device_id FROM delivery_retries \
               WHERE due_at <= ? AND (lease_owner IS NULL OR lease_expires_at < ?) \
               ORDER BY due_at LIMIT ?) RETURNING *"
        }
    }
}

/// Leases up to `limit` retries that are due (or whose previous holder's lease lapsed) to
/// `owner` for `lease_for`, with their devices.
pub async fn lease_due(
    db: &DatabaseConnection,
    owner: &str,
    lease_for: Duration,
    limit: u64,
) -> Result<Vec<DueRetry>, StoreError> {
    let now = Utc::now();
    let until = now + chrono::Duration::from_std(lease_for).unwrap_or(chrono::Duration::MAX);
    let backend = db.get_database_backend();
    let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    let values: Vec<sea_orm::Value> = match backend {
        DbBackend::Postgres => vec![owner.into(), until.into(), now.into(), limit.into()],
        _ => vec![
            owner.into(),
            until.into(),
            now.into(),
            now.into(),
            limit.into(),
        ],
    };
    let leased = delivery_retry::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            backend,
            lease_sql(backend),
            values,
        ))
        .all(db)
        .await?;
    if leased.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = leased.iter().map(|r| r.device_id).collect();
    let live: std::collections::HashMap<Uuid, Device> = device::Entity::find()
        .filter(device::Column::Id.is_in(ids))
        .filter(device::Column::DeadAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(devices::to_device)
        .map(|d| (d.id, d))
        .collect();
    Ok(leased
        .into_iter()
        .map(|r| DueRetry {
            alert_id: r.alert_id,
            device_id: r.device_id,
            user_id: r.user_id,
            topic: r.topic,
            attempts: u32::try_from(r.attempts).unwrap_or(0),
            device: live.get(&r.device_id).cloned(),
            kind: RetryKind::parse(&r.kind),
        })
        .collect())
}

/// Puts a leased retry back for `due_at` after another transient failure.
pub async fn reschedule(
    db: &DatabaseConnection,
    retry: &DueRetry,
    owner: &str,
    attempts: u32,
    due_at: DateTime<Utc>,
    reason: &str,
) -> Result<(), StoreError> {
    delivery_retry::Entity::update_many()
        .col_expr(
            delivery_retry::Column::Attempts,
            sea_orm::sea_query::Expr::value(i32::try_from(attempts).unwrap_or(i32::MAX)),
        )
        .col_expr(
            delivery_retry::Column::DueAt,
            sea_orm::sea_query::Expr::value(due_at),
        )
        .col_expr(
            delivery_retry::Column::Reason,
            sea_orm::sea_query::Expr::value(reason.chars().take(300).collect::<String>()),
        )
        .col_expr(
            delivery_retry::Column::Kind,
            // A local-time delivery that failed is an ordinary retry from now on.
            sea_orm::sea_query::Expr::value(match retry.kind {
                RetryKind::Local => RetryKind::Retry.as_str(),
                kind => kind.as_str(),
            }),
        )
        .col_expr(
            delivery_retry::Column::LeaseOwner,
            sea_orm::sea_query::Expr::value(Option::<String>::None),
        )
        .col_expr(
            delivery_retry::Column::LeaseExpiresAt,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(delivery_retry::Column::AlertId.eq(retry.alert_id))
        .filter(delivery_retry::Column::DeviceId.eq(retry.device_id))
        .filter(delivery_retry::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
}

/// Ends a leased retry: records its outcome (if any) on the alert, removes it from the queue,
/// and marks the alert done when this was the last thing it waited for.
pub async fn resolve(
    db: &DatabaseConnection,
    alert: &QueuedAlert,
    retry: &DueRetry,
    owner: &str,
    outcome: Option<DeliveryRecord>,
) -> Result<(), StoreError> {
    if let Some(record) = outcome {
        queue::record(db, alert, std::slice::from_ref(&record)).await?;
    }
    delivery_retry::Entity::delete_many()
        .filter(delivery_retry::Column::AlertId.eq(retry.alert_id))
        .filter(delivery_retry::Column::DeviceId.eq(retry.device_id))
        .filter(delivery_retry::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    queue::finish_if_idle(db, alert.id).await
}

/// How many deliveries of `alert_id` wait to be retried.
pub async fn pending(db: &impl ConnectionTrait, alert_id: Uuid) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(delivery_retry::Entity::find()
        .filter(delivery_retry::Column::AlertId.eq(alert_id))
        .count(db)
        .await?)
}

/// How many of the alert's queued entries are first deliveries (retries, or waits for a
/// reader's local time) and how many are replacements of an older version.
pub async fn pending_by_kind(
    db: &impl ConnectionTrait,
    alert_id: Uuid,
) -> Result<(u64, u64), StoreError> {
    use sea_orm::QuerySelect;
    use sea_orm::sea_query::ExprTrait;
    let rows: Vec<(String, i64)> = delivery_retry::Entity::find()
        .select_only()
        .column(delivery_retry::Column::Kind)
        .column_as(
            sea_orm::sea_query::Expr::col(delivery_retry::Column::DeviceId).count(),
            "n",
        )
        .filter(delivery_retry::Column::AlertId.eq(alert_id))
        .group_by(delivery_retry::Column::Kind)
        .into_tuple()
        .all(db)
        .await?;
    let mut first = 0;
    let mut replacing = 0;
    for (kind, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        match RetryKind::parse(&kind) {
            RetryKind::Replace => replacing += n,
            _ => first += n,
        }
    }
    Ok((first, replacing))
}

/// Drops every retry of an alert that was cancelled or expired.
pub(crate) async fn drop_for_alert(
    db: &impl ConnectionTrait,
    alert_id: Uuid,
) -> Result<(), StoreError> {
    delivery_retry::Entity::delete_many()
        .filter(delivery_retry::Column::AlertId.eq(alert_id))
        .exec(db)
        .await?;
    Ok(())
}
