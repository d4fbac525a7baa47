//! An alert's lifecycle after it is queued: batches completing, the alert finishing,
//! cancelled or expiring, and the counters editors watch.

use super::{
    ACTIVE_ALERT_STATES, AlertState, Lease, OPEN_BATCH_STATES, QueuedAlert, finish, to_queued,
};
use crate::StoreError;
use crate::entity::{alert, alert_batch, delivery};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// Marks the batch done; the alert is done when it was the last open one. Returns whether
/// the lease was still `owner`'s.
pub async fn complete(db: &DatabaseConnection, lease: &Lease) -> Result<bool, StoreError> {
    let now = Utc::now();
    let backend = db.get_database_backend();
    let txn = crate::begin_write(db).await?;
    let result = async {
        // The write comes first so SQLite takes its write lock before any read.
        let updated = alert_batch::Entity::update_many()
            .col_expr(alert_batch::Column::State, Expr::value("done"))
            .col_expr(alert_batch::Column::FinishedAt, Expr::value(now))
            .filter(alert_batch::Column::Id.eq(lease.batch_id))
            .filter(alert_batch::Column::State.eq("leased"))
            .filter(alert_batch::Column::LeaseOwner.eq(lease.owner.as_str()))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(false);
        }
        mark_done_if_idle(&txn, backend, lease.alert.id, now).await?;
        Ok(true)
    }
    .await;
    finish(txn, result).await
}

/// Marks the alert done if nothing of it is left: no open batch, no delivery waiting to be
/// retried (called after a retry resolves).
pub async fn finish_if_idle(db: &DatabaseConnection, alert_id: Uuid) -> Result<(), StoreError> {
    let backend = db.get_database_backend();
    let txn = crate::begin_write(db).await?;
    let result = mark_done_if_idle(&txn, backend, alert_id, Utc::now()).await;
    finish(txn, result).await
}

async fn mark_done_if_idle(
    txn: &DatabaseTransaction,
    backend: DbBackend,
    alert_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    // Two notifiers finishing an alert's last work at once: the alert row serialises them.
    let mut alert_query = alert::Entity::find_by_id(alert_id);
    if backend == DbBackend::Postgres {
        alert_query = alert_query.lock_exclusive();
    }
    alert_query.one(txn).await?;
    // Reads only the alert's open batches (a partial index), however many are done.
    let open = alert_batch::Entity::find()
        .select_only()
        .column(alert_batch::Column::Id)
        .filter(alert_batch::Column::AlertId.eq(alert_id))
        .filter(alert_batch::Column::State.is_in(OPEN_BATCH_STATES))
        .into_tuple::<Uuid>()
        .one(txn)
        .await?;
    if open.is_none() && crate::retries::pending(txn, alert_id).await? == 0 {
        alert::Entity::update_many()
            .col_expr(alert::Column::State, Expr::value(AlertState::Done.as_str()))
            .col_expr(alert::Column::FinishedAt, Expr::value(now))
            .filter(alert::Column::Id.eq(alert_id))
            .filter(alert::Column::State.is_in(ACTIVE_ALERT_STATES))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// States an editor can cancel from: everything not yet finished.
const CANCELLABLE_STATES: [&str; 3] = ["scheduled", "queued", "sending"];

async fn stop_alert(
    db: &DatabaseConnection,
    alert_id: Uuid,
    state: AlertState,
    from: &[&str],
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let txn = crate::begin_write(db).await?;
    let result = async {
        let updated = alert::Entity::update_many()
            .col_expr(alert::Column::State, Expr::value(state.as_str()))
            .col_expr(alert::Column::FinishedAt, Expr::value(now))
            .filter(alert::Column::Id.eq(alert_id))
            .filter(alert::Column::State.is_in(from.iter().copied()))
            .exec(&txn)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(false);
        }
        alert_batch::Entity::update_many()
            .col_expr(alert_batch::Column::State, Expr::value("cancelled"))
            .col_expr(alert_batch::Column::FinishedAt, Expr::value(now))
            .filter(alert_batch::Column::AlertId.eq(alert_id))
            .filter(alert_batch::Column::State.is_in(OPEN_BATCH_STATES))
            .exec(&txn)
            .await?;
        crate::retries::drop_for_alert(&txn, alert_id).await?;
        Ok(true)
    }
    .await;
    finish(txn, result).await
}

/// Cancels what has not been sent yet (a scheduled alert is never sent). `NotFound` when
/// there is no such alert, `Conflict` when it already finished.
pub async fn cancel(db: &DatabaseConnection, alert_id: Uuid) -> Result<AlertCounters, StoreError> {
    let now = Utc::now();
    if !stop_alert(
        db,
        alert_id,
        AlertState::Cancelled,
        &CANCELLABLE_STATES,
        now,
    )
    .await?
    {
        let current = alert::Entity::find_by_id(alert_id)
            .one(db)
            .await?
            .ok_or(StoreError::NotFound)?;
        return Err(StoreError::Conflict(format!(
            "the alert is already {}",
            current.state
        )));
    }
    counters(db, alert_id).await
}

/// Expires the active alerts whose TTL has run out; returns how many.
pub async fn expire_due(db: &DatabaseConnection, now: DateTime<Utc>) -> Result<u64, StoreError> {
    let active: Vec<QueuedAlert> = alert::Entity::find()
        .filter(alert::Column::State.is_in(ACTIVE_ALERT_STATES))
        .all(db)
        .await?
        .into_iter()
        .map(to_queued)
        .collect();
    let mut expired = 0;
    for alert in active.into_iter().filter(|a| a.expires_at() <= now) {
        if stop_alert(db, alert.id, AlertState::Expired, &ACTIVE_ALERT_STATES, now).await? {
            expired += 1;
        }
    }
    Ok(expired)
}

/// Starts the scheduled alerts whose time has come: each becomes queued with its first batch,
/// in one transaction, and only once however many notifiers ask at the same moment (the
/// state change is conditional). Returns the alerts started.
pub async fn release_scheduled(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, StoreError> {
    let due: Vec<Uuid> = alert::Entity::find()
        .select_only()
        .column(alert::Column::Id)
        .filter(alert::Column::State.eq(AlertState::Scheduled.as_str()))
        .filter(alert::Column::SendAt.lte(now))
        .order_by_asc(alert::Column::SendAt)
        .limit(100)
        .into_tuple()
        .all(db)
        .await?;
    let mut started = Vec::new();
    for id in due {
        let txn = crate::begin_write(db).await?;
        let result = async {
            let updated = alert::Entity::update_many()
                .col_expr(
                    alert::Column::State,
                    Expr::value(AlertState::Queued.as_str()),
                )
                .filter(alert::Column::Id.eq(id))
                .filter(alert::Column::State.eq(AlertState::Scheduled.as_str()))
                .exec(&txn)
                .await?;
            if updated.rows_affected == 0 {
                return Ok(false);
            }
            super::insert_unplanned(&txn, id, None, now).await?;
            Ok(true)
        }
        .await;
        if finish(txn, result).await? {
            started.push(id);
        }
    }
    Ok(started)
}

/// Batches waiting or in progress, over all alerts (the queue depth).
pub async fn depth(db: &DatabaseConnection) -> Result<u64, StoreError> {
    Ok(alert_batch::Entity::find()
        .filter(alert_batch::Column::State.is_in(OPEN_BATCH_STATES))
        .count(db)
        .await?)
}

/// How an alert's fan-out is going (SPEC §3 `GET /v1/admin/alerts/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertCounters {
    /// Alert id.
    pub id: Uuid,
    /// Lifecycle state.
    pub state: AlertState,
    /// Devices targeted so far (final once every batch is planned).
    pub targeted: u64,
    /// Accepted by a push service.
    pub sent: u64,
    /// Refused or retried until the TTL ran out.
    pub failed: u64,
    /// Devices found gone.
    pub pruned: u64,
    /// Skipped in quiet hours.
    pub skipped_quiet_hours: u64,
    /// Skipped at the daily cap.
    pub skipped_daily_cap: u64,
    /// Skipped as already sent this story.
    pub skipped_duplicate: u64,
    /// Skipped because the owner stopped following the alert's topics.
    pub skipped_unfollowed: u64,
    /// Readers who opened it.
    pub opened: u64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When it reached `done`, `cancelled` or `expired`.
    pub finished_at: Option<DateTime<Utc>>,
    /// The current version (1 until it is updated).
    pub version: u32,
    /// When it is (or was) scheduled to start.
    pub send_at: Option<DateTime<Utc>>,
    /// Local delivery time, if it has one.
    pub local_time: Option<String>,
    /// When it was retracted.
    pub retracted_at: Option<DateTime<Utc>>,
    /// First deliveries waiting on the retry queue (a retry, or the reader's local time).
    pub waiting: u64,
    /// Replacements of an older version waiting to go out.
    pub replacing: u64,
}

/// The alert's counters: sums of its batches' outcome counters (kept as outcomes are recorded),
/// so reading them costs the same at the first delivery and the millionth.
pub async fn counters(
    db: &DatabaseConnection,
    alert_id: Uuid,
) -> Result<AlertCounters, StoreError> {
    let alert = alert::Entity::find_by_id(alert_id)
        .one(db)
        .await?
        .ok_or(StoreError::NotFound)?;
    let mut select = alert_batch::Entity::find()
        .select_only()
        .filter(alert_batch::Column::AlertId.eq(alert_id));
    for column in ["device_count"].into_iter().chain(COUNTER_COLUMNS) {
        select = select.column_as(
            Expr::cust(format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)")),
            column,
        );
    }
    let sums = select
        .into_model::<BatchSums>()
        .one(db)
        .await?
        .unwrap_or_default();
    // A tap marks all of the reader's deliveries of the alert, so opens count readers.
    let opened: Option<i64> = delivery::Entity::find()
        .select_only()
        .column_as(
            Expr::col(delivery::Column::UserId).count_distinct(),
            "opened",
        )
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::OpenedAt.is_not_null())
        .into_tuple()
        .one(db)
        .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    let (waiting, replacing) = crate::retries::pending_by_kind(db, alert_id).await?;
    Ok(AlertCounters {
        id: alert.id,
        state: AlertState::parse(&alert.state),
        targeted: n(sums.device_count),
        sent: n(sums.sent),
        failed: n(sums.failed),
        pruned: n(sums.pruned),
        skipped_quiet_hours: n(sums.quiet_hours),
        skipped_daily_cap: n(sums.daily_cap),
        skipped_duplicate: n(sums.duplicate),
        skipped_unfollowed: n(sums.unfollowed),
        opened: opened.map_or(0, n),
        created_at: alert.created_at,
        finished_at: alert.finished_at,
        version: u32::try_from(alert.version).unwrap_or(1),
        send_at: alert.send_at,
        local_time: alert.local_time,
        retracted_at: alert.retracted_at,
        waiting,
        replacing,
    })
}

/// The batch columns that count outcomes, named as [`DeliveryStatus::as_str`].
pub(super) const COUNTER_COLUMNS: [&str; 7] = [
    "sent",
    "failed",
    "pruned",
    "quiet_hours",
    "daily_cap",
    "duplicate",
    "unfollowed",
];

#[derive(Debug, Default, FromQueryResult)]
struct BatchSums {
    device_count: i64,
    sent: i64,
    failed: i64,
    pruned: i64,
    quiet_hours: i64,
    daily_cap: i64,
    duplicate: i64,
    unfollowed: i64,
}
