//! Batch leasing: a notifier takes the oldest open batch (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL), plans it when it is the alert's unplanned frontier, keeps the lease alive and
//! gives it back when stopping.

use super::{AlertState, QueuedAlert, finish, insert_unplanned, to_queued};
use crate::StoreError;
use crate::devices::{self, Target};
use crate::entity::{alert, alert_batch};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, QueryFilter,
    QuerySelect, Statement,
};
use std::time::Duration;
use uuid::Uuid;

/// A batch leased to one notifier until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The batch.
    pub batch_id: Uuid,
    /// Who holds it.
    pub owner: String,
    /// Its alert.
    pub alert: QueuedAlert,
    /// Devices with ids after this one (exclusive)...
    pub after: Option<Uuid>,
    /// ...up to and including this one; `None` means the batch has no devices.
    pub until: Option<Uuid>,
    /// Devices targeted when the batch was planned.
    pub device_count: u32,
    /// How many times the batch has been leased (more than one: a takeover).
    pub attempts: u32,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

fn lease_sql(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Postgres => {
            "UPDATE alert_batches SET state = 'leased', lease_owner = $1, lease_expires_at = $2, \
             attempts = attempts + 1 WHERE id = (SELECT id FROM alert_batches WHERE state IN ('queued', 'leased') \
             AND (state = 'queued' OR lease_expires_at < $3) \
             ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *"
        }
        // SQLite serialises writers, so the conditional UPDATE alone is atomic.
        _ => {
            "UPDATE alert_batches SET state = 'leased', lease_owner = ?, lease_expires_at = ?, \
             attempts = attempts + 1 WHERE id = (SELECT id FROM alert_batches WHERE state IN ('queued', 'leased') \
             AND (state = 'queued' OR lease_expires_at < ?) \
             ORDER BY id LIMIT 1) RETURNING *"
        }
    }
}

/// Leases the oldest open batch (queued, or leased by someone whose lease lapsed) to `owner`
/// for `lease_for`, planning it first when it is the alert's unplanned frontier.
pub async fn lease(
    db: &DatabaseConnection,
    owner: &str,
    lease_for: Duration,
    batch_size: u64,
) -> Result<Option<Lease>, StoreError> {
    Ok(lease_batch(db, owner, lease_for, batch_size)
        .await?
        .map(|(lease, _)| lease))
}

/// [`lease`], and the batch's live targeted devices with their owners' preferences: read while
/// planning a new batch (one walk of the devices), or by its fixed range when taking one over.
pub async fn lease_batch(
    db: &DatabaseConnection,
    owner: &str,
    lease_for: Duration,
    batch_size: u64,
) -> Result<Option<(Lease, Vec<Target>)>, StoreError> {
    let Some((lease, planned)) = lease_and_plan(db, owner, lease_for, batch_size).await? else {
        return Ok(None);
    };
    let devices = match planned {
        Some(devices) => devices,
        None => range_devices(db, &lease).await?,
    };
    let targets = devices::with_preferences(db, devices).await?;
    Ok(Some((lease, targets)))
}

/// The lease, and the devices read while planning when this lease planned the batch.
type Leased = (Lease, Option<Vec<devices::Device>>);

async fn lease_and_plan(
    db: &DatabaseConnection,
    owner: &str,
    lease_for: Duration,
    batch_size: u64,
) -> Result<Option<Leased>, StoreError> {
    let now = Utc::now();
    let expires_at = now + ChronoDuration::from_std(lease_for).unwrap_or(ChronoDuration::MAX);
    let backend = db.get_database_backend();
    let txn = crate::begin_write(db).await?;
    let result = async {
        let statement = Statement::from_sql_and_values(
            backend,
            lease_sql(backend),
            [owner.into(), expires_at.into(), now.into()],
        );
        let Some(batch) = alert_batch::Entity::find()
            .from_raw_sql(statement)
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        let alert = alert::Entity::find_by_id(batch.alert_id)
            .one(&txn)
            .await?
            .map(to_queued)
            .ok_or(StoreError::NotFound)?;
        let (until, device_count, planned) = if batch.planned {
            (batch.until_device_id, batch.device_count, None)
        } else {
            let devices = plan(&txn, &batch, &alert, std::cmp::max(batch_size, 1), now).await?;
            let until = devices.last().map(|d| d.id);
            let count = i32::try_from(devices.len()).unwrap_or(i32::MAX);
            (until, count, Some(devices))
        };
        if alert.state == AlertState::Queued {
            alert::Entity::update_many()
                .col_expr(
                    alert::Column::State,
                    Expr::value(AlertState::Sending.as_str()),
                )
                .filter(alert::Column::Id.eq(alert.id))
                .filter(alert::Column::State.eq(AlertState::Queued.as_str()))
                .exec(&txn)
                .await?;
        }
        let lease = Lease {
            batch_id: batch.id,
            owner: owner.to_string(),
            alert,
            after: batch.after_device_id,
            until,
            device_count: u32::try_from(device_count).unwrap_or(0),
            attempts: u32::try_from(batch.attempts).unwrap_or(0),
            expires_at,
        };
        Ok(Some((lease, planned)))
    }
    .await;
    finish(txn, result).await
}

/// Fixes an unplanned batch's range to the next `batch_size` targeted devices and queues the
/// next unplanned batch after them when the page was full. Returns the devices.
async fn plan(
    txn: &DatabaseTransaction,
    batch: &alert_batch::Model,
    alert: &QueuedAlert,
    batch_size: u64,
    now: DateTime<Utc>,
) -> Result<Vec<devices::Device>, StoreError> {
    let page = devices::targeted_devices(
        txn,
        &alert.topics,
        batch.after_device_id,
        None,
        Some(batch_size),
    )
    .await?;
    let until = page.last().map(|d| d.id);
    let count = i32::try_from(page.len()).unwrap_or(i32::MAX);
    alert_batch::Entity::update_many()
        .col_expr(alert_batch::Column::Planned, Expr::value(true))
        .col_expr(alert_batch::Column::UntilDeviceId, Expr::value(until))
        .col_expr(alert_batch::Column::DeviceCount, Expr::value(count))
        .filter(alert_batch::Column::Id.eq(batch.id))
        .exec(txn)
        .await?;
    if page.len() as u64 == batch_size {
        insert_unplanned(txn, alert.id, until, now).await?;
    }
    Ok(page)
}

/// The live targeted devices in a planned batch's range (some may have died since planning).
async fn range_devices(
    db: &DatabaseConnection,
    lease: &Lease,
) -> Result<Vec<devices::Device>, StoreError> {
    let Some(until) = lease.until else {
        return Ok(Vec::new());
    };
    devices::targeted_devices(db, &lease.alert.topics, lease.after, Some(until), None).await
}

/// The live targeted devices of a leased batch, with their owners' preferences.
pub async fn batch_targets(
    db: &DatabaseConnection,
    lease: &Lease,
) -> Result<Vec<Target>, StoreError> {
    let devices = range_devices(db, lease).await?;
    devices::with_preferences(db, devices).await
}

/// Extends `owner`'s lease; false when it is no longer theirs or the alert stopped
/// (cancelled or expired), so the holder should stop sending.
pub async fn renew(
    db: &DatabaseConnection,
    lease: &Lease,
    lease_for: Duration,
) -> Result<bool, StoreError> {
    let expires_at =
        Utc::now() + ChronoDuration::from_std(lease_for).unwrap_or(ChronoDuration::MAX);
    let updated = alert_batch::Entity::update_many()
        .col_expr(alert_batch::Column::LeaseExpiresAt, Expr::value(expires_at))
        .filter(alert_batch::Column::Id.eq(lease.batch_id))
        .filter(alert_batch::Column::State.eq("leased"))
        .filter(alert_batch::Column::LeaseOwner.eq(lease.owner.as_str()))
        .exec(db)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(false);
    }
    let state = alert::Entity::find_by_id(lease.alert.id)
        .select_only()
        .column(alert::Column::State)
        .into_tuple::<String>()
        .one(db)
        .await?;
    Ok(state.is_some_and(|s| AlertState::parse(&s).is_active()))
}

/// Gives a batch back (the holder is stopping): another notifier may lease it at once.
pub async fn release(db: &DatabaseConnection, lease: &Lease) -> Result<(), StoreError> {
    alert_batch::Entity::update_many()
        .col_expr(alert_batch::Column::State, Expr::value("queued"))
        .col_expr(
            alert_batch::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            alert_batch::Column::LeaseExpiresAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(alert_batch::Column::Id.eq(lease.batch_id))
        .filter(alert_batch::Column::State.eq("leased"))
        .filter(alert_batch::Column::LeaseOwner.eq(lease.owner.as_str()))
        .exec(db)
        .await?;
    Ok(())
}
