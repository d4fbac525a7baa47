//! The notifier's durable queue: alerts cut into keyset batches of devices that notifier
//! processes lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), deliver and complete, plus the
//! per-device facts the fan-out decides with and the counters editors watch.
//!
//! An alert starts with one unplanned batch covering every device after nothing. Leasing an
//! unplanned batch plans it in the same transaction: it takes the next `batch_size` targeted
//! device ids, fixes its upper bound, and queues a new unplanned batch after it. The audience
//! is walked one page at a time, however large, and a crash loses nothing.

use crate::StoreError;
use crate::devices::{self, Target};
use crate::entity::{alert, alert_batch, delivery, device, story_receipt, subscription};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, FromQueryResult, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// An alert's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Created, nothing leased yet.
    Queued,
    /// Some batch has been leased.
    Sending,
    /// Every batch is finished.
    Done,
    /// An editor cancelled it.
    Cancelled,
    /// Its TTL ran out before every batch was finished.
    Expired,
}

impl AlertState {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// From the stored text; unknown values read as `Done` (nothing more is sent).
    pub fn parse(text: &str) -> Self {
        match text {
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "cancelled" => Self::Cancelled,
            "expired" => Self::Expired,
            _ => Self::Done,
        }
    }

    /// True while deliveries may still be made.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Queued | Self::Sending)
    }
}

const ACTIVE_ALERT_STATES: [&str; 2] = ["queued", "sending"];
const OPEN_BATCH_STATES: [&str; 2] = ["queued", "leased"];

/// What happened to one device for one alert, as recorded in `deliveries.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// The push service accepted it.
    Sent,
    /// Permanently refused, or retried until the TTL ran out.
    Failed,
    /// The push service said the device is gone; it was marked dead.
    Pruned,
    /// Inside the device's quiet hours.
    QuietHours,
    /// The device reached its daily cap.
    DailyCap,
    /// The device already got (or is getting) this story.
    Duplicate,
    /// The owner no longer follows any of the alert's topics (or the device was removed).
    Unfollowed,
}

impl DeliveryStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Pruned => "pruned",
            Self::QuietHours => "quiet_hours",
            Self::DailyCap => "daily_cap",
            Self::Duplicate => "duplicate",
            Self::Unfollowed => "unfollowed",
        }
    }
}

/// What enqueuing an alert needs.
#[derive(Debug, Clone)]
pub struct NewQueuedAlert {
    /// The story it is about (the once-per-story key).
    pub story_id: Option<Uuid>,
    /// The article it opens.
    pub article_id: Option<Uuid>,
    /// Topics whose followers get it.
    pub topics: Vec<String>,
    /// Lock-screen title.
    pub title: String,
    /// Lock-screen body.
    pub body: String,
    /// Where a tap leads.
    pub url: String,
    /// Image, if any.
    pub image_url: Option<String>,
    /// `normal` or `high` (any RFC 8030 urgency).
    pub urgency: String,
    /// How long delivery stays worth trying, in seconds.
    pub ttl_seconds: i32,
    /// `editor`, `source` or `story`.
    pub trigger: String,
    /// The editor who sent it.
    pub created_by: Option<Uuid>,
}

/// An alert as the fan-out sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedAlert {
    /// Id.
    pub id: Uuid,
    /// Story.
    pub story_id: Option<Uuid>,
    /// Article.
    pub article_id: Option<Uuid>,
    /// Topics whose followers get it.
    pub topics: Vec<String>,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Link.
    pub url: String,
    /// Image.
    pub image_url: Option<String>,
    /// Urgency as stored.
    pub urgency: String,
    /// TTL in seconds.
    pub ttl_seconds: i32,
    /// Lifecycle state.
    pub state: AlertState,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl QueuedAlert {
    /// When delivering stops being worth it.
    pub fn expires_at(&self) -> DateTime<Utc> {
        self.created_at + ChronoDuration::seconds(i64::from(std::cmp::max(self.ttl_seconds, 0)))
    }

    /// The once-per-story key: the story, or the alert itself when it has none.
    pub fn story_key(&self) -> Uuid {
        self.story_id.unwrap_or(self.id)
    }
}

fn to_queued(m: alert::Model) -> QueuedAlert {
    QueuedAlert {
        id: m.id,
        story_id: m.story_id,
        article_id: m.article_id,
        topics: serde_json::from_value(m.topics).unwrap_or_default(),
        title: m.title,
        body: m.body,
        url: m.url,
        image_url: m.image_url,
        urgency: m.urgency,
        ttl_seconds: m.ttl_seconds,
        state: AlertState::parse(&m.state),
        created_at: m.created_at,
    }
}

async fn finish<T>(
    txn: DatabaseTransaction,
    result: Result<T, StoreError>,
) -> Result<T, StoreError> {
    match result {
        Ok(value) => {
            txn.commit().await?;
            Ok(value)
        }
        Err(err) => {
            let _ = txn.rollback().await;
            Err(err)
        }
    }
}

/// Creates a queued alert and its first (unplanned) batch in one transaction.
pub async fn enqueue(
    db: &DatabaseConnection,
    new: NewQueuedAlert,
) -> Result<QueuedAlert, StoreError> {
    let now = Utc::now();
    let txn = crate::begin_write(db).await?;
    let result = async {
        let model = alert::ActiveModel {
            id: Set(Uuid::now_v7()),
            story_id: Set(new.story_id),
            article_id: Set(new.article_id),
            topics: Set(serde_json::json!(new.topics)),
            title: Set(new.title),
            body: Set(new.body),
            url: Set(new.url),
            image_url: Set(new.image_url),
            urgency: Set(new.urgency),
            ttl_seconds: Set(new.ttl_seconds),
            state: Set(AlertState::Queued.as_str().into()),
            trigger: Set(new.trigger),
            created_by: Set(new.created_by),
            created_at: Set(now),
            finished_at: Set(None),
        }
        .insert(&txn)
        .await?;
        insert_unplanned(&txn, model.id, None, now).await?;
        Ok(to_queued(model))
    }
    .await;
    finish(txn, result).await
}

async fn insert_unplanned(
    db: &impl ConnectionTrait,
    alert_id: Uuid,
    after: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    alert_batch::ActiveModel {
        id: Set(Uuid::now_v7()),
        alert_id: Set(alert_id),
        after_device_id: Set(after),
        until_device_id: Set(None),
        planned: Set(false),
        device_count: Set(0),
        state: Set("queued".into()),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        attempts: Set(0),
        created_at: Set(now),
        finished_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The alert, for the fan-out.
pub async fn alert(db: &DatabaseConnection, id: Uuid) -> Result<QueuedAlert, StoreError> {
    alert::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(to_queued)
        .ok_or(StoreError::NotFound)
}

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

async fn stop_alert(
    db: &DatabaseConnection,
    alert_id: Uuid,
    state: AlertState,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let txn = crate::begin_write(db).await?;
    let result = async {
        let updated = alert::Entity::update_many()
            .col_expr(alert::Column::State, Expr::value(state.as_str()))
            .col_expr(alert::Column::FinishedAt, Expr::value(now))
            .filter(alert::Column::Id.eq(alert_id))
            .filter(alert::Column::State.is_in(ACTIVE_ALERT_STATES))
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

/// Cancels what has not been sent yet. `NotFound` when there is no such alert, `Conflict`
/// when it already finished.
pub async fn cancel(db: &DatabaseConnection, alert_id: Uuid) -> Result<AlertCounters, StoreError> {
    if !stop_alert(db, alert_id, AlertState::Cancelled, Utc::now()).await? {
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
        if stop_alert(db, alert.id, AlertState::Expired, now).await? {
            expired += 1;
        }
    }
    Ok(expired)
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
    })
}

/// The batch columns that count outcomes, named as [`DeliveryStatus::as_str`].
const COUNTER_COLUMNS: [&str; 7] = [
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
        })
    }));
    let sets = COUNTER_COLUMNS
        .map(|c| format!("{c} = {c} + (SELECT COUNT(*) FROM recorded WHERE status = '{c}')"))
        .join(", ");
    let sql = format!(
        "WITH recorded AS (\
           INSERT INTO deliveries \
             (id, alert_id, user_id, device_id, story_id, status, reason, attempts, created_at, sent_at) \
           SELECT r.id, $1, r.user_id, r.device_id, $2, r.status, r.reason, r.attempts, r.at, \
                  CASE WHEN r.status = 'sent' THEN r.at END \
           FROM jsonb_to_recordset($3) AS r(id uuid, user_id uuid, device_id uuid, status text, \
                                             reason text, attempts integer, at timestamptz) \
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
