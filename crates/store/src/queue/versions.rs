//! What an alert said at each version, and the replacements an update or a retraction owes
//! the devices that already show an older one.
//!
//! Every delivery records the version it carried. An update (or a retraction) bumps the
//! alert's version and queues a replacement, on the retry queue with kind `replace`, for every
//! device whose delivery carries an older one; a batch that was sending the old version while
//! the update landed queues its own devices' replacements when it completes
//! ([`replace_stale`]). A replacement sends whatever the alert says when it goes out, so a
//! device is never sent a version that is already superseded.

use super::{AlertState, QueuedAlert, finish, to_queued};
use crate::StoreError;
use crate::entity::{alert, alert_version, delivery, delivery_retry};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::collections::HashMap;
use uuid::Uuid;

/// Why a version exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionKind {
    /// What the alert first said.
    Original,
    /// An editor's change after it was sent.
    Update,
    /// The notice that replaces a withdrawn alert.
    Retraction,
}

impl VersionKind {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Original => "original",
            Self::Update => "update",
            Self::Retraction => "retraction",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "update" => Self::Update,
            "retraction" => Self::Retraction,
            _ => Self::Original,
        }
    }
}

/// One version of an alert, with what became of its replacements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertVersion {
    /// 1 for the original.
    pub version: u32,
    /// Why it exists.
    pub kind: VersionKind,
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Link.
    pub url: String,
    /// Image.
    pub image_url: Option<String>,
    /// Replaces without sound.
    pub silent: bool,
    /// The editor who made it.
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Devices whose latest delivered version is this one.
    pub showing: u64,
    /// Replacements of an older version by this one that a push service accepted.
    pub replaced: u64,
    /// Replacements that failed.
    pub replace_failed: u64,
    /// Replacements held back by the reader's quiet hours.
    pub held_quiet_hours: u64,
}

/// A change to an alert: the fields to change (`None`: keep), and who makes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertChange {
    /// New title.
    pub title: Option<String>,
    /// New body.
    pub body: Option<String>,
    /// New link.
    pub url: Option<String>,
    /// New image: `Some(None)` removes it.
    pub image_url: Option<Option<String>>,
    /// Replace without sound (a correction).
    pub silent: bool,
    /// New send time (scheduled alerts only).
    pub send_at: Option<DateTime<Utc>>,
    /// The editor.
    pub by: Option<Uuid>,
}

pub(crate) async fn insert_original(
    txn: &DatabaseTransaction,
    model: &alert::Model,
) -> Result<(), StoreError> {
    alert_version::ActiveModel {
        alert_id: Set(model.id),
        version: Set(1),
        kind: Set(VersionKind::Original.as_str().into()),
        title: Set(model.title.clone()),
        body: Set(model.body.clone()),
        url: Set(model.url.clone()),
        image_url: Set(model.image_url.clone()),
        silent: Set(false),
        created_by: Set(model.created_by),
        created_at: Set(model.created_at),
        replaced: Set(0),
        replace_failed: Set(0),
        held_quiet_hours: Set(0),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// The alert row, locked for the rest of the transaction on PostgreSQL (SQLite's write lock,
/// taken by [`crate::begin_write`], already serialises writers).
async fn locked(txn: &DatabaseTransaction, alert_id: Uuid) -> Result<alert::Model, StoreError> {
    let mut query = alert::Entity::find_by_id(alert_id);
    if txn.get_database_backend() == DbBackend::Postgres {
        query = query.lock_exclusive();
    }
    query.one(txn).await?.ok_or(StoreError::NotFound)
}

/// Changes an alert. While it is scheduled the change is made in place; once it is queued,
/// sending or done it becomes a new version, and every device that shows an older one is
/// queued a replacement. `Conflict` when the alert is cancelled, expired or retracted,
/// or when `send_at` is changed on an alert that is no longer scheduled.
pub async fn update(
    db: &DatabaseConnection,
    alert_id: Uuid,
    change: AlertChange,
) -> Result<QueuedAlert, StoreError> {
    let now = Utc::now();
    let txn = crate::begin_write(db).await?;
    let result = async {
        let current = locked(&txn, alert_id).await?;
        let state = AlertState::parse(&current.state);
        if change.send_at.is_some() && state != AlertState::Scheduled {
            return Err(StoreError::Conflict(format!(
                "the alert is {}; only a scheduled alert can be moved",
                state.as_str()
            )));
        }
        let title = change.title.unwrap_or(current.title.clone());
        let body = change.body.unwrap_or(current.body.clone());
        let url = change.url.unwrap_or(current.url.clone());
        let image_url = change.image_url.unwrap_or(current.image_url.clone());
        let mut model: alert::ActiveModel = current.clone().into();
        model.title = Set(title.clone());
        model.body = Set(body.clone());
        model.url = Set(url.clone());
        model.image_url = Set(image_url.clone());
        model.updated_at = Set(Some(now));
        match state {
            AlertState::Scheduled => {
                if let Some(at) = change.send_at {
                    model.send_at = Set(Some(at));
                }
                let updated = model.update(&txn).await?;
                // Not sent yet: the first version is what it says now.
                alert_version::Entity::update_many()
                    .col_expr(alert_version::Column::Title, Expr::value(title))
                    .col_expr(alert_version::Column::Body, Expr::value(body))
                    .col_expr(alert_version::Column::Url, Expr::value(url))
                    .col_expr(alert_version::Column::ImageUrl, Expr::value(image_url))
                    .filter(alert_version::Column::AlertId.eq(alert_id))
                    .filter(alert_version::Column::Version.eq(1))
                    .exec(&txn)
                    .await?;
                Ok(to_queued(updated))
            }
            // Queued too: a notifier may be reading it for its first batch right now, and
            // what it sends is caught up by the version check when that batch completes.
            AlertState::Queued | AlertState::Sending | AlertState::Done => {
                let version = current.version + 1;
                model.version = Set(version);
                model.silent = Set(change.silent);
                let updated = model.update(&txn).await?;
                insert_version(&txn, &updated, VersionKind::Update, change.by, now).await?;
                queue_replacements(&txn, alert_id, version, None, now).await?;
                Ok(to_queued(updated))
            }
            other => Err(StoreError::Conflict(format!(
                "the alert is {}; it can no longer be changed",
                other.as_str()
            ))),
        }
    }
    .await;
    finish(txn, result).await
}

/// Withdraws a sent alert: it leaves every inbox, and each device that shows it is sent a
/// silent replacement saying `title` / `body`. `Conflict` unless the alert is done.
pub async fn retract(
    db: &DatabaseConnection,
    alert_id: Uuid,
    title: &str,
    body: &str,
    by: Option<Uuid>,
) -> Result<QueuedAlert, StoreError> {
    let now = Utc::now();
    let txn = crate::begin_write(db).await?;
    let result = async {
        let current = locked(&txn, alert_id).await?;
        let state = AlertState::parse(&current.state);
        if state != AlertState::Done {
            return Err(StoreError::Conflict(format!(
                "the alert is {}; only a sent (done) alert can be retracted",
                state.as_str()
            )));
        }
        let version = current.version + 1;
        let mut model: alert::ActiveModel = current.into();
        model.title = Set(title.to_owned());
        model.body = Set(body.to_owned());
        model.image_url = Set(None);
        model.version = Set(version);
        model.silent = Set(true);
        model.state = Set(AlertState::Retracted.as_str().into());
        model.retracted_at = Set(Some(now));
        model.updated_at = Set(Some(now));
        let updated = model.update(&txn).await?;
        insert_version(&txn, &updated, VersionKind::Retraction, by, now).await?;
        queue_replacements(&txn, alert_id, version, None, now).await?;
        Ok(to_queued(updated))
    }
    .await;
    finish(txn, result).await
}

async fn insert_version(
    txn: &DatabaseTransaction,
    model: &alert::Model,
    kind: VersionKind,
    by: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    alert_version::ActiveModel {
        alert_id: Set(model.id),
        version: Set(model.version),
        kind: Set(kind.as_str().into()),
        title: Set(model.title.clone()),
        body: Set(model.body.clone()),
        url: Set(model.url.clone()),
        image_url: Set(model.image_url.clone()),
        silent: Set(model.silent),
        created_by: Set(by),
        created_at: Set(now),
        replaced: Set(0),
        replace_failed: Set(0),
        held_quiet_hours: Set(0),
    }
    .insert(txn)
    .await?;
    Ok(())
}

/// Queues a replacement for every device of the alert whose delivery carries a version older
/// than `version` (within `(after, until]` when given), unless one is queued already: a
/// replacement sends the alert as it is when it goes out, so one queued for an older version
/// serves a newer one too.
async fn queue_replacements(
    db: &impl ConnectionTrait,
    alert_id: Uuid,
    version: i32,
    range: Option<(Option<Uuid>, Uuid)>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut select = Query::select();
    select
        .column(delivery::Column::AlertId)
        .column(delivery::Column::DeviceId)
        .column(delivery::Column::UserId)
        .expr(Expr::col(delivery::Column::Topic).if_null(""))
        .expr(Expr::val(0))
        .expr(Expr::val(now))
        .expr(Expr::val(now))
        .expr(Expr::val("replace"))
        .from(delivery::Entity)
        .and_where(Expr::col(delivery::Column::AlertId).eq(alert_id))
        .and_where(Expr::col(delivery::Column::Status).eq("sent"))
        .and_where(Expr::col(delivery::Column::Version).lt(version))
        .and_where(Expr::col(delivery::Column::DeviceId).is_not_null());
    if let Some((after, until)) = range {
        if let Some(after) = after {
            select.and_where(Expr::col(delivery::Column::DeviceId).gt(after));
        }
        select.and_where(Expr::col(delivery::Column::DeviceId).lte(until));
    }
    let mut insert = Query::insert();
    insert
        .into_table(delivery_retry::Entity)
        .columns([
            delivery_retry::Column::AlertId,
            delivery_retry::Column::DeviceId,
            delivery_retry::Column::UserId,
            delivery_retry::Column::Topic,
            delivery_retry::Column::Attempts,
            delivery_retry::Column::DueAt,
            delivery_retry::Column::CreatedAt,
            delivery_retry::Column::Kind,
        ])
        .select_from(select)
        .map_err(|e| StoreError::Other(DbErr::Custom(e.to_string())))?
        .on_conflict(
            OnConflict::columns([
                delivery_retry::Column::AlertId,
                delivery_retry::Column::DeviceId,
            ])
            .do_nothing()
            .to_owned(),
        );
    db.execute(&insert).await?;
    Ok(())
}

/// After a batch that was leased with version `sent_version` completes: if the alert has been
/// updated since, queues replacements for the batch's devices `(after, until]` that were sent
/// the older version. A read of one row when nothing changed.
pub async fn replace_stale(
    db: &DatabaseConnection,
    alert_id: Uuid,
    sent_version: u32,
    after: Option<Uuid>,
    until: Option<Uuid>,
) -> Result<(), StoreError> {
    let Some(until) = until else {
        return Ok(());
    };
    let current: Option<i32> = alert::Entity::find_by_id(alert_id)
        .select_only()
        .column(alert::Column::Version)
        .into_tuple()
        .one(db)
        .await?;
    match current {
        Some(version) if i64::from(version) > i64::from(sent_version) => {
            queue_replacements(db, alert_id, version, Some((after, until)), Utc::now()).await
        }
        _ => Ok(()),
    }
}

/// What became of one replacement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replacement {
    /// The push service accepted `version`.
    Replaced(u32),
    /// It failed for good, or the device is gone.
    Failed,
    /// The reader's quiet hours held it back.
    HeldQuietHours,
}

/// Records a replacement's outcome: the delivery now carries the version sent, the version's
/// counters move, the queue entry goes, and if the alert changed again meanwhile the device is
/// queued once more.
pub async fn record_replacement(
    db: &DatabaseConnection,
    alert_id: Uuid,
    device_id: Uuid,
    owner: &str,
    outcome: Replacement,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let txn = crate::begin_write(db).await?;
    let result = async {
        let removed = delivery_retry::Entity::delete_many()
            .filter(delivery_retry::Column::AlertId.eq(alert_id))
            .filter(delivery_retry::Column::DeviceId.eq(device_id))
            .filter(delivery_retry::Column::LeaseOwner.eq(owner))
            .exec(&txn)
            .await?;
        if removed.rows_affected == 0 {
            return Ok(()); // the lease lapsed and someone else has it now
        }
        let current = locked(&txn, alert_id).await?;
        let (version, column) = match outcome {
            Replacement::Replaced(v) => (
                i32::try_from(v).unwrap_or(i32::MAX),
                alert_version::Column::Replaced,
            ),
            Replacement::Failed => (current.version, alert_version::Column::ReplaceFailed),
            Replacement::HeldQuietHours => (current.version, alert_version::Column::HeldQuietHours),
        };
        if let Replacement::Replaced(_) = outcome {
            delivery::Entity::update_many()
                .col_expr(delivery::Column::Version, Expr::value(version))
                .filter(delivery::Column::AlertId.eq(alert_id))
                .filter(delivery::Column::DeviceId.eq(device_id))
                .exec(&txn)
                .await?;
        }
        alert_version::Entity::update_many()
            .col_expr(column, Expr::col(column).add(1))
            .filter(alert_version::Column::AlertId.eq(alert_id))
            .filter(alert_version::Column::Version.eq(version))
            .exec(&txn)
            .await?;
        if matches!(outcome, Replacement::Replaced(_)) && current.version > version {
            queue_one(&txn, alert_id, device_id, current.version, now).await?;
        }
        Ok(())
    }
    .await;
    finish(txn, result).await
}

/// Queues one device's replacement when its delivery carries a version older than `version`.
async fn queue_one(
    txn: &DatabaseTransaction,
    alert_id: Uuid,
    device_id: Uuid,
    version: i32,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let prior = delivery::Entity::find()
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::DeviceId.eq(device_id))
        .one(txn)
        .await?;
    let Some(prior) = prior else {
        return Ok(());
    };
    if prior.version >= version {
        return Ok(());
    }
    delivery_retry::Entity::insert(delivery_retry::ActiveModel {
        alert_id: Set(alert_id),
        device_id: Set(device_id),
        user_id: Set(prior.user_id),
        topic: Set(prior.topic.unwrap_or_default()),
        attempts: Set(0),
        due_at: Set(now),
        reason: Set(None),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(now),
        kind: Set("replace".into()),
    })
    .on_conflict(
        OnConflict::columns([
            delivery_retry::Column::AlertId,
            delivery_retry::Column::DeviceId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// The alert's versions, oldest first, with how many devices show each.
pub async fn versions(
    db: &DatabaseConnection,
    alert_id: Uuid,
) -> Result<Vec<AlertVersion>, StoreError> {
    let rows = alert_version::Entity::find()
        .filter(alert_version::Column::AlertId.eq(alert_id))
        .order_by_asc(alert_version::Column::Version)
        .all(db)
        .await?;
    if rows.is_empty() {
        return Err(StoreError::NotFound);
    }
    let showing: HashMap<i32, i64> = delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Version)
        .column_as(Expr::col(delivery::Column::Id).count(), "n")
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::Status.eq("sent"))
        .group_by(delivery::Column::Version)
        .into_tuple::<(i32, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let n = |v: i32| u64::try_from(v).unwrap_or(0);
    Ok(rows
        .into_iter()
        .map(|r| AlertVersion {
            version: u32::try_from(r.version).unwrap_or(0),
            kind: VersionKind::parse(&r.kind),
            showing: showing
                .get(&r.version)
                .map_or(0, |v| u64::try_from(*v).unwrap_or(0)),
            title: r.title,
            body: r.body,
            url: r.url,
            image_url: r.image_url,
            silent: r.silent,
            created_by: r.created_by,
            created_at: r.created_at,
            replaced: n(r.replaced),
            replace_failed: n(r.replace_failed),
            held_quiet_hours: n(r.held_quiet_hours),
        })
        .collect())
}
